"""Targets as EventBridge sends them: connections (Basic, API key, OAuth
client credentials) against a real recording sink and a real local token
endpoint, parameters from the event, input transformation (every case of
../shared/conformance/transformers.jsonl through a real rule and target),
InvocationRateLimit, egress security (private addresses, TLS) and secrets
that never show."""

import base64
import bisect
import json
import os
import re
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import (assert_config_error, destination, entry, header, header_all, rule,
                     wait_until)
from sink import Response

FAST = "ApiDestRetryBackoff 1 2\nApiDestMaintenanceInterval 1\n"
SECRETS = {"password": "pw-Secr3t-Basic", "apikey": "key-Secr3t-ApiKey",
           "client": "cs-Secr3t-OAuth", "token": "tok-Secr3t-Bearer", "param": "inv-Secr3t-Param"}


def _admin(server, method, path):
    status, _, data = server.request(method, "/apidest" + path)
    return status, json.loads(data)


def _dlq(server):
    return _admin(server, "GET", "/dlq")[1]["Records"]


def _wait_dlq(server, n, timeout=15):
    assert wait_until(lambda: len(_dlq(server)) >= n, timeout), _dlq(server)
    return _dlq(server)


def _conn_state(server, name):
    st = _admin(server, "GET", "/status")[1]
    return [c for c in st["Connections"] if c["Name"] == name][0]


def _dest_state(server, name):
    st = _admin(server, "GET", "/status")[1]
    return [d for d in st["Destinations"] if d["Name"] == name][0]["State"]


def _conn(name, body):
    return "\n<ApiDestConnection %s>\n%s\n</ApiDestConnection>\n" % (name, body)


def _dest(name, url, extra=""):
    return destination(name, url, extra=extra)


def _target_rule(name, source, target_body):
    return """
<ApiDestRule %s>
    EventPattern '{"source":["%s"]}'
    <ApiDestTarget t1>
%s
    </ApiDestTarget>
</ApiDestRule>
""" % (name, source, target_body)


# ---- connections -------------------------------------------------------------

def test_basic_api_key_and_invocation_parameters(monkeypatch, server, sink):
    secret_file = os.path.join(server.root, "apikey.secret")
    with open(secret_file, "w") as f:
        f.write(SECRETS["apikey"] + "\n")
    # env: secrets are read whenever httpd reads its config (stop included)
    monkeypatch.setenv("APIDEST_TEST_PW", SECRETS["password"])
    server.start(FAST
                 + _conn("basic", "AuthorizationType BASIC\nBasic alice env:APIDEST_TEST_PW\n"
                         "InvocationParameter header X-Tenant acme\n"
                         "InvocationParameter query tenant acme\n"
                         "InvocationParameter body tenant acme\nAllowInsecureHttp on")
                 + _conn("key", "AuthorizationType API_KEY\nApiKey X-Api-Key file:%s\n"
                         "AllowInsecureHttp on" % secret_file)
                 + _dest("d-basic", sink.url("/basic"), "    Connection basic\n")
                 + _dest("d-key", sink.url("/key"), "    Connection key\n")
                 + rule("r-basic", {"source": ["s.basic"]}, [("t", "d-basic")])
                 + rule("r-key", {"source": ["s.key"]}, [("t", "d-key")]))
    server.put_events([entry("s.basic", "D", {"k": 1})])
    server.put_events([entry("s.key", "D", {"k": 2})])
    assert sink.wait_for(2, 10)
    reqs = {r["path"].split("?")[0]: r for r in sink.snapshot()}
    b = reqs["/basic"]
    assert header(b, "Authorization") == "Basic " + base64.b64encode(
        ("alice:" + SECRETS["password"]).encode()).decode()
    assert header(b, "X-Tenant") == "acme"
    assert b["path"] == "/basic?tenant=acme"
    assert json.loads(b["body"])["tenant"] == "acme"
    assert json.loads(b["body"])["detail"] == {"k": 1}
    k = reqs["/key"]
    assert header(k, "X-Api-Key") == SECRETS["apikey"]
    assert header(k, "Authorization") is None
    for r in (b, k):
        assert header(r, "User-Agent") == "Amazon/EventBridge/ApiDestinations"
        assert header(r, "Range") == "bytes=0-1048575"
        assert header(r, "Content-Type") == "application/json; charset=utf-8"
    assert _conn_state(server, "basic")["ConnectionState"] == "AUTHORIZED"


def _token_sink(sink_factory, lifetime=3600, fail=False):
    tok = sink_factory()
    counter = {"n": 0}

    def answer(n):
        return Response(200, headers={"Content-Type": "application/json"},
                        body=json.dumps({"access_token": "%s-%d" % (SECRETS["token"], n),
                                         "token_type": "Bearer", "expires_in": lifetime}))
    tok.set_default(500) if fail else tok.respond([answer(i) for i in range(1, 50)])
    return tok, counter


def _oauth_conf(tok, sink, extra_conn="", lifetime_note=""):
    return (FAST + _conn("oa", "AuthorizationType OAUTH_CLIENT_CREDENTIALS\n"
                         "OAuthEndpoint %s\nOAuthClient my-client %s\n"
                         "OAuthParameter body scope events/write\n"
                         "AllowPrivateEndpoint on\nAllowInsecureHttp on\n%s"
                         % (tok.url("/oauth2/token"), SECRETS["client"], extra_conn))
            + _dest("d-oa", sink.url("/oa"), "    Connection oa\n")
            + rule("r-oa", {"source": ["s.oa"]}, [("t", "d-oa")]))


def test_oauth_one_token_serves_many_and_a_401_refreshes_once(server, sink, sink_factory):
    tok, _ = _token_sink(sink_factory)
    server.start(_oauth_conf(tok, sink))
    for i in range(5):
        server.put_events([entry("s.oa", "D", {"i": i})])
    assert sink.wait_for(5, 10)
    assert tok.count() == 1, "one token serves many deliveries"
    t = tok.snapshot()[0]
    assert t["method"] == "POST"
    assert header(t, "Authorization") == "Basic " + base64.b64encode(
        ("my-client:" + SECRETS["client"]).encode()).decode()
    assert header(t, "Content-Type") == "application/x-www-form-urlencoded"
    form = dict(kv.split("=") for kv in t["body"].decode().split("&"))
    assert form == {"grant_type": "client_credentials", "scope": "events%2Fwrite"}
    assert all(header(r, "Authorization") == "Bearer %s-1" % SECRETS["token"]
               for r in sink.snapshot())
    # a 401 refreshes the token exactly once; the event still arrives
    sink.respond([401])
    server.put_events([entry("s.oa", "D", {"i": "after"})])
    assert sink.wait_until(lambda reqs: len([r for r in reqs if r["status"] == 200]) == 6, 10)
    time.sleep(1)
    assert tok.count() == 2
    last = [r for r in sink.snapshot() if r["status"] == 200][-1]
    assert header(last, "Authorization") == "Bearer %s-2" % SECRETS["token"]
    assert _dlq(server) == []
    assert _conn_state(server, "oa")["ConnectionState"] == "AUTHORIZED"


def test_oauth_token_refreshed_before_expiry(server, sink, sink_factory):
    tok, _ = _token_sink(sink_factory, lifetime=8)
    server.start(_oauth_conf(tok, sink))
    server.put_events([entry("s.oa", "D", {})])
    assert sink.wait_for(1, 10)
    t0 = tok.snapshot()[0]["time"]
    # refreshed in the background once, never in the first half of its 8 s
    # lifetime: on the first 1 s maintenance tick after 4 s (slack for a
    # loaded machine; an expiry-driven fetch would come at 8 s or later)
    assert tok.wait_for(2, 8)
    assert 3.5 <= tok.snapshot()[1]["time"] - t0 <= 7.5
    time.sleep(0.5)
    assert tok.count() == 2
    exp = _conn_state(server, "oa")["TokenExpiry"]
    assert exp and exp.endswith("Z")


def test_failed_refresh_ahead_keeps_the_token_until_it_expires(server, sink, sink_factory):
    """The refresh ahead of expiry is beyond EventBridge and must not cost
    more than not refreshing: when it fails, the token still in date keeps
    serving (the connection stays AUTHORIZED); only a fetch after expiry
    that fails de-authorizes it. A token this short is not fetched again on
    every tick either."""
    tok = sink_factory()
    tok.respond([Response(200, headers={"Content-Type": "application/json"},
                          body=json.dumps({"access_token": SECRETS["token"], "expires_in": 8}))])
    tok.set_default(503)
    server.start(_oauth_conf(tok, sink))
    server.put_events([entry("s.oa", "D", {"i": 0})])
    assert sink.wait_for(1, 10)
    t0 = tok.snapshot()[0]["time"]
    assert tok.wait_for(2, 8), "no refresh ahead of expiry"
    assert tok.snapshot()[1]["time"] - t0 >= 3.5, "refreshed in the first half of its life"
    time.sleep(0.5)
    assert _conn_state(server, "oa")["ConnectionState"] == "AUTHORIZED"
    server.put_events([entry("s.oa", "D", {"i": 1})])
    assert sink.wait_for(2, 5), "the token in date was dropped with the failed refresh"
    assert header(sink.snapshot()[1], "Authorization") == "Bearer " + SECRETS["token"]
    assert "refreshing its token failed (token endpoint: " in server.log_text()
    # once it has expired, a fetch that fails de-authorizes, as before
    assert wait_until(lambda: time.time() - t0 > 8.5, 10)
    server.put_events([entry("s.oa", "D", {"i": 2})])
    assert wait_until(lambda: _conn_state(server, "oa")["ConnectionState"] == "DEAUTHORIZED", 10)
    assert sink.count() == 2 and _dlq(server) == []
    assert tok.count() <= 5, "token fetches: %d" % tok.count()
    assert SECRETS["token"] not in server.log_text()


def test_failing_token_endpoint_deauthorizes_records_wait_then_authorize(server, sink,
                                                                          sink_factory):
    tok, _ = _token_sink(sink_factory, fail=True)
    server.start(_oauth_conf(tok, sink))
    ids = [server.put_events([entry("s.oa", "D", {"i": i})])[2]["Entries"][0]["EventId"]
           for i in range(3)]
    assert wait_until(lambda: _conn_state(server, "oa")["ConnectionState"] == "DEAUTHORIZED", 10)
    assert _dest_state(server, "d-oa") == "INACTIVE"
    time.sleep(2)
    assert sink.count() == 0 and _dlq(server) == [], "records wait, they are not dropped"
    assert _admin(server, "GET", "/status")[1]["Daemon"]["Pending"] == 3
    assert "connection oa: AUTHORIZING -> DEAUTHORIZED" in server.log_text()
    # the operator fixes the token endpoint and re-authorizes
    tok.respond([Response(200, body=json.dumps({"access_token": SECRETS["token"],
                                                "expires_in": 3600}))])
    status, out = _admin(server, "POST", "/connections/oa/authorize")
    assert status == 200 and out["Name"] == "oa"
    assert sink.wait_until(lambda reqs: {json.loads(r["body"])["id"] for r in reqs} == set(ids), 10)
    assert _dest_state(server, "d-oa") == "ACTIVE"
    assert _admin(server, "POST", "/connections/nope/authorize")[0] == 404


def test_basic_401_deauthorizes_and_records_wait(server, sink):
    sink.respond([401])
    server.start(FAST + _conn("b", "AuthorizationType BASIC\nBasic u %s\nAllowInsecureHttp on"
                              % SECRETS["password"])
                 + _dest("d", sink.url("/b"), "    Connection b\n")
                 + rule("r", {"source": ["s.b"]}, [("t", "d")]))
    server.put_events([entry("s.b", "D", {})])
    assert wait_until(lambda: _conn_state(server, "b")["ConnectionState"] == "DEAUTHORIZED", 10)
    time.sleep(1.5)
    assert sink.count() == 1 and _dlq(server) == []
    assert _admin(server, "POST", "/connections/b/authorize")[0] == 200
    assert sink.wait_until(lambda reqs: any(r["status"] == 200 for r in reqs), 10)


def test_records_expiring_unsent_say_why_in_the_dlq(server, sink, monkeypatch):
    """A record that reaches its maximum age before any attempt (here: its
    connection was de-authorized by an earlier 401) had no ERROR_CODE or
    ERROR_MESSAGE in its DLQ record; it says why it was never sent. (The
    clock runs 10 times faster: the first record must be attempted within
    its 6 real seconds.)"""
    monkeypatch.setenv("APIDEST_TEST_CLOCK_RATE", "10")
    monkeypatch.setenv("APIDEST_TEST_CLOCK_BASE", str(int(time.time())))
    sink.set_default(401)
    server.start(FAST + _conn("b", "AuthorizationType BASIC\nBasic u %s\nAllowInsecureHttp on"
                              % SECRETS["password"])
                 + _dest("d", sink.url("/b"), "    Connection b\n")
                 + _target_rule("r", "s.b", "        Destination d\n"
                                "        MaximumEventAge 60\n"))
    server.put_events([entry("s.b", "D", {"i": 0})])
    assert wait_until(lambda: _conn_state(server, "b")["ConnectionState"] == "DEAUTHORIZED", 10)
    server.put_events([entry("s.b", "D", {"i": 1})])
    recs = _wait_dlq(server, 2, timeout=15)
    assert sink.count() == 1
    by_i = {json.loads(r["Body"])["detail"]["i"]: r["Attributes"] for r in recs}
    assert by_i[0]["ERROR_CODE"] == "ERROR_FROM_TARGET", by_i
    assert by_i[1]["ERROR_CODE"] == "NO_PERMISSIONS", by_i
    assert by_i[1]["ERROR_MESSAGE"] == ("The event reached its maximum age unsent: its "
                                        "connection b is DEAUTHORIZED"), by_i
    assert by_i[1]["EXHAUSTED_RETRY_CONDITION"] == "MaximumEventAgeInSeconds"
    assert by_i[1]["RETRY_ATTEMPTS"] == "0"


# ---- parameters from the event -----------------------------------------------------

def test_blank_and_colliding_parameters(server, sink):
    """A path parameter blank in an event (missing, empty, null, or a
    wildcard that matched nothing) is not delivered (it would drop a
    segment: /u/*/o -> /u//o); a blank Content-Type from the event leaves
    the default; a connection's query parameter replaces the target's of
    the same name, which came from the event."""
    server.start(FAST
                 + _conn("c", "AuthorizationType API_KEY\nApiKey X-Key k1\n"
                         "InvocationParameter query tenant acme\nAllowInsecureHttp on")
                 + _dest("d", sink.url("/u/*/o"), "    Connection c\n")
                 + _target_rule("r", "s.b", """        Destination d
        PathParameter $.detail.id
        QueryParameter tenant $.detail.tenant
        Header Content-Type $.detail.ct""")
                 + _target_rule("rw", "s.w", """        Destination d
        PathParameter $.detail.ids[*]"""))
    # null went out as /u/null/o, a wildcard that matched nothing as /u/%5B%5D/o
    server.put_events([entry("s.b", "D", {"id": "", "tenant": "evil"}),
                       entry("s.b", "D", {"tenant": "evil"}),
                       entry("s.b", "D", {"id": None, "tenant": "evil"}),
                       entry("s.w", "D", {"ids": []}),
                       entry("s.b", "D", {"id": "7", "tenant": "evil"}),
                       entry("s.b", "D", {"id": "8", "tenant": "evil", "ct": "text/plain"})])
    assert sink.wait_for(2, 10)
    time.sleep(1)
    reqs = sorted(sink.snapshot(), key=lambda r: r["path"])
    assert [r["path"] for r in reqs] == ["/u/7/o?tenant=acme", "/u/8/o?tenant=acme"], reqs
    assert header(reqs[0], "Content-Type") == "application/json; charset=utf-8"
    assert header(reqs[1], "Content-Type") == "text/plain"
    assert _admin(server, "GET", "/status")[1]["Ingest"]["TargetInputsDropped"] == 4


def test_path_query_and_header_parameters(server, sink):
    detail = {"tenant": "a b/c%d\u00e9\u2603", "state": "on&off=1", "id": 42,
              "bad": "x\r\nInjected: yes"}
    server.start(FAST + _dest("d", sink.url("/t/*/items/*"))
                 + _target_rule("r", "s.p", """        Destination d
        PathParameter $.detail.tenant
        PathParameter "fixed value"
        QueryParameter state $.detail.state
        QueryParameter v 1
        Header X-Id $.detail.id
        Header X-Static hello""")
                 + _target_rule("r-bad", "s.crlf", """        Destination d
        PathParameter one
        PathParameter two
        Header X-Bad $.detail.bad
        RetryAttempts 0"""))
    server.put_events([entry("s.p", "D", detail)])
    assert sink.wait_for(1, 10)
    r = sink.snapshot()[0]
    assert r["path"] == ("/t/a%20b%2Fc%25d%C3%A9%E2%98%83/items/fixed%20value"
                         "?state=on%26off%3D1&v=1")
    assert header(r, "X-Id") == "42" and header(r, "X-Static") == "hello"
    # an API destination gets none of an API Gateway target's source headers
    assert header(r, "X-Amz-Source-Arn") is None and header(r, "X-Amzn-Trace-Id") is None
    # CR/LF from the event never reaches a header: the record is dead-lettered
    server.put_events([entry("s.crlf", "D", detail)])
    [rec] = _wait_dlq(server, 1)
    assert rec["Attributes"]["ERROR_CODE"] == "INVALID_PARAMETER"
    # it names the header, never its value
    assert "header X-Bad: the value holds a forbidden character" in \
        rec["Attributes"]["ERROR_MESSAGE"], rec
    time.sleep(0.5)
    assert sink.count() == 1
    assert all(header(x, "Injected") is None for x in sink.snapshot())
    # nor does any other control character but tab
    server.put_events([entry("s.crlf", "D", dict(detail, bad="bell\x07 del\x7f"))])
    assert len(_wait_dlq(server, 2)) == 2
    time.sleep(0.5)
    assert sink.count() == 1
    # a value past the 8 KiB header line says so (it said "forbidden
    # character"), and is not sent either
    server.put_events([entry("s.crlf", "D", dict(detail, bad="x" * 9000))])
    recs = _wait_dlq(server, 3)
    assert sum("header X-Bad: the line is over 8 KiB" in r["Attributes"]["ERROR_MESSAGE"]
               for r in recs) == 1, recs
    assert not any("xxxx" in r["Attributes"]["ERROR_MESSAGE"] for r in recs), recs
    time.sleep(0.5)
    assert sink.count() == 1
    # so does a URL made longer than 8 KiB by the event's path or query
    # values (a 256 KiB entry made a 420 KB request line), and it is not sent
    for i, big in enumerate([dict(detail, tenant="\u2603" * 3000),
                             dict(detail, state="&" * 3000)]):
        server.put_events([entry("s.p", "D", big)])
        recs = _wait_dlq(server, 4 + i)
    assert sum("the URL with its path and query parameters is over 8 KiB" in
               r["Attributes"]["ERROR_MESSAGE"] for r in recs) == 2, recs
    assert not any("%26%26" in r["Attributes"]["ERROR_MESSAGE"] for r in recs), recs
    time.sleep(0.5)
    assert sink.count() == 1
    # "." or ".." from the event would move the request (and a connection's
    # credentials) to another path: dead-lettered, never sent; so would
    # "../admin" on a server that decodes %2F or %5C before it resolves
    for i, bad in enumerate(["..", ".", "../admin", "..\\admin", "a/.."]):
        server.put_events([entry("s.p", "D", dict(detail, tenant=bad))])
        recs = _wait_dlq(server, 6 + i)
        assert all(r["Attributes"]["ERROR_CODE"] == "INVALID_PARAMETER" for r in recs), recs
    assert sum("path parameter is or holds a '.' or '..' segment" in
               r["Attributes"]["ERROR_MESSAGE"] for r in recs) == 5, recs
    # dots inside a value are just characters
    server.put_events([entry("s.p", "D", dict(detail, tenant="..."))])
    assert sink.wait_for(2, 10)
    assert sink.snapshot()[1]["path"].startswith("/t/.../items/fixed%20value?"), sink.snapshot()[1]
    time.sleep(0.5)
    assert sink.count() == 2


def test_config_errors_for_targets_and_connections(server, sink):
    d = _dest("d", sink.url("/x"))
    cases = [
        (_target_rule("r", "s", "        Destination d\n        Header Host evil"),
         "Header Host evil", "may not be set"),
        (_target_rule("r", "s", "        Destination d\n        Header Content-Length 1"),
         "Header Content-Length 1", "may not be set"),
        (_target_rule("r", "s", "        Destination d\n        PathParameter x"),
         "<ApiDestTarget t1>", "PathParameter(s) for 0"),
        (_target_rule("r", "s", "        Destination d\n        InputPath $.detail\n"
                      "        Input '{}'"), "<ApiDestTarget t1>", "Only one of"),
        (_target_rule("r", "s", "        Destination d\n        InputTransformer '{\"a\": <nope>}'"),
         "<ApiDestTarget t1>", "invalid placeholder nope"),
    ]
    port = sink.port
    for url, msg in [("http://127.0.0.1:%d/a/../b" % port, "'.' or '..' path segment"),
                     ("http://*.example:%d/x" % port, "may only stand in the path"),
                     ("http://127.0.0.1:%d/x?a=*" % port, "may only stand in the path"),
                     ("http://127.0.0.1:%d/x#*" % port, "a #fragment is not sent"),
                     ("http://127.0.0.1:%d/x?k=v#" % port, "a #fragment is not sent"),
                     ("http://%s.example:%d/x" % ("h" * 250, port), "longer than 253"),
                     ("http://u:%s@127.0.0.1:%d/x" % (SECRETS["password"], port),
                      "use an ApiDestConnection")]:
        cases.append((_dest("d-%d" % len(cases), url), "Endpoint " + url, msg))
    for body, needle, msg in cases:
        rc, out, path = server.configtest(d + body)
        assert rc != 0, body
        assert msg in out, out
        line = server.conf_line(needle, path=path)
        assert "%s:%d" % (path, line) in out, out
        assert SECRETS["password"] not in out, out
    rc, out, path = server.configtest(_conn(
        "c", "AuthorizationType OAUTH_CLIENT_CREDENTIALS\nOAuthEndpoint %s\n"
        "OAuthClient id %s" % (sink.url("/t#x"), SECRETS["client"])))
    assert rc != 0 and "a #fragment is not sent" in out, out
    assert "%s:%d" % (path, server.conf_line("OAuthEndpoint", path=path)) in out, out
    # credentials over plain http need AllowInsecureHttp
    body = (_conn("c", "AuthorizationType API_KEY\nApiKey X-K %s" % SECRETS["apikey"])
            + _dest("d2", sink.url("/x"), "    Connection c\n"))
    rc, out, path = server.configtest(body)
    assert rc != 0 and "AllowInsecureHttp" in out and SECRETS["apikey"] not in out
    rc, out, path = server.configtest(_conn("c", "AuthorizationType MAGIC"))
    assert rc != 0 and "Member must satisfy enum value set: [BASIC, OAUTH_CLIENT_CREDENTIALS, API_KEY]" in out
    rc, out, path = server.configtest(_conn("c", "AuthorizationType BASIC\nBasic u env:NOPE_NOT_SET"))
    assert rc != 0 and "NOPE_NOT_SET is not set" in out
    rc, out, path = server.configtest(d + _dest("d3", sink.url("/x"), "    Connection ghost\n"))
    assert rc != 0 and "unknown connection 'ghost'" in out
    # secret files: never cut short, and checked at configtest, not at every send
    big = os.path.join(server.root, "big-secret")
    broken = os.path.join(server.root, "broken-secret")
    with open(big, "w") as f:
        f.write("k" * 5000 + "\n")
    with open(broken, "w") as f:
        f.write(SECRETS["apikey"] + "\r\nX-Injected: 1\n")
    escaped = os.path.join(server.root, "escaped-secret")
    with open(escaped, "w") as f:
        f.write(SECRETS["apikey"] + "\x1b[0m\n")
    cut = os.path.join(server.root, "cut-secret")
    with open(cut, "w") as f:
        f.write("k" * 4097 + "\r\n")  # fills the read to its last byte
    nul = os.path.join(server.root, "nul-secret")
    with open(nul, "w") as f:
        f.write(SECRETS["apikey"] + "\x00tail\n")  # was cut short at the NUL
    for conn, needle, msg in (
            ("ApiKey X-K file:%s" % big, "ApiKey X-K", "is over 4096 bytes"),
            ("ApiKey X-K file:%s" % cut, "ApiKey X-K", "is over 4096 bytes"),
            ("ApiKey X-K file:%s" % escaped, "ApiKey X-K", "other control characters"),
            ("ApiKey X-K file:%s" % nul, "ApiKey X-K", "holds a NUL byte"),
            ("ApiKey X-K %s\nInvocationParameter header X-P file:%s" % (SECRETS["apikey"], broken),
             "InvocationParameter", "X-P value holds a control character")):
        rc, out, path = server.configtest(
            _conn("c", "AuthorizationType API_KEY\nAllowInsecureHttp on\n" + conn))
        assert rc != 0 and msg in out, out
        assert "%s:%d" % (path, server.conf_line(needle, path=path)) in out, out
        assert SECRETS["apikey"] not in out and "k" * 100 not in out, out


# ---- input transformation: the conformance data through a real target --------------

def _cases():
    path = os.path.join(os.environ.get("AD_CONFORMANCE_DIR", ""), "transformers.jsonl")
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def test_transformers_conformance_through_a_real_target(server, sink):
    """Every case through its own rule, target and sink path: a case AWS
    delivers nothing for must get nothing at its path (matched by body
    before, a wrong delivery of one went unseen), the others exactly one
    request each."""
    cases = [c for c in _cases() if "expect_error" not in c]
    assert len(cases) >= 30
    parts = ["ApiDestAccount 111111111111\n"]
    for i, c in enumerate(cases):
        parts.append(_dest("d%d" % i, sink.url("/tr/%d" % i)))
        lines = ["        Destination d%d" % i]
        if c.get("input_path") is not None:
            lines.append("        InputPath %s" % c["input_path"])
        if c.get("input_template") is not None:
            tmpl = os.path.join(server.root, "tmpl-%d" % i)
            with open(tmpl, "w", encoding="utf-8") as f:
                f.write(c["input_template"])
            lines.append("        InputTransformerFile %s" % tmpl)
        for k, v in (c.get("input_paths_map") or {}).items():
            lines.append("        InputPathsMap %s %s" % (k, v))
        parts.append("""
<ApiDestRule trrule%d>
    EventBus trbus
    EventPattern '{"source":["tr.case.%d"]}'
    <ApiDestTarget t1>
%s
    </ApiDestTarget>
</ApiDestRule>
""" % (i, i, "\n".join(lines)))
    server.start("".join(parts))
    ids = {}
    for i, c in enumerate(cases):
        ev = c["event"]
        e = {"Source": "tr.case.%d" % i, "DetailType": ev["detail-type"],
             "Detail": json.dumps(ev["detail"]), "Resources": ev.get("resources", []),
             "EventBusName": "trbus"}
        status, _, resp = server.put_events([e])
        assert status == 200 and resp["FailedEntryCount"] == 0
        ids[i] = resp["Entries"][0]["EventId"]
    want = sum(1 for c in cases if c["expect_delivered"])
    assert want < len(cases), "no case where AWS delivers nothing"
    assert sink.wait_for(want, 20)
    time.sleep(1.0)  # a delivery AWS would not make has had its time too
    failures = []
    for i, c in enumerate(cases):
        mine = [r["body"].decode("utf-8") for r in sink.snapshot("/tr/%d" % i)]
        if not c["expect_delivered"]:
            if mine:
                failures.append("%s: delivered but AWS does not: %s" % (c["name"], mine))
            continue
        if len(mine) != 1:
            failures.append("%s: %d deliveries, want 1: %s" % (c["name"], len(mine), mine))
            continue
        body = mine[0]
        if c["expect_output_format"] == "json":
            if not _matches_json(body, c, ids[i], i):
                failures.append("%s: got %s want %s" % (c["name"], body, c["expect_output"]))
        elif _normalise(body, c, ids[i], i) != _expected_text(c):
            failures.append("%s: got %r want %r" % (c["name"], body, _expected_text(c)))
    assert not failures, "\n".join(failures)
    assert sink.count() == want


def _expected_text(c):
    out = c["expect_output"]
    return out if isinstance(out, str) else json.dumps(out)


def _normalise(body, c, event_id, i):
    ev = c["event"]
    ctx = c.get("context") or {}
    body = body.replace(event_id, ev["id"])
    body = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "date", body)
    body = body.replace("arn:aws:events:us-east-1:111111111111:rule/trbus/trrule%d" % i,
                        ctx.get("rule_arn", "arn"))
    body = body.replace("trrule%d" % i, ctx.get("rule_name", "rule"))
    body = body.replace("tr.case.%d" % i, ev["source"])
    body = body.replace("us-east-1", ev["region"])
    return body


def _drop(doc, path):
    keys = path.split(".")
    for k in keys[:-1]:
        doc = doc.get(k, {}) if isinstance(doc, dict) else {}
    if isinstance(doc, dict):
        doc.pop(keys[-1], None)


def _matches_json(body, c, event_id, i):
    try:
        got = json.loads(_normalise(body, c, event_id, i))
    except ValueError:
        return False
    want = json.loads(json.dumps(c["expect_output"]))
    for p in c.get("ignore_paths") or []:
        _drop(got, p)
        _drop(want, p)
    return got == want


# ---- flow control ------------------------------------------------------------

def _most_within(times, span):
    """The most of the sorted arrival times in any [t, t + span)."""
    return max(bisect.bisect_left(times, t0 + span) - i for i, t0 in enumerate(times))


def test_invocation_rate_limit_20(server, sink):
    server.start(FAST + _dest("slowly", sink.url("/r"), "    InvocationRateLimit 20\n")
                 + rule("r", {"source": ["s.r"]}, [("t", "slowly")]))
    for k in range(6):
        server.put_events([entry("s.r", "D", {"i": k * 10 + j}) for j in range(10)])
    assert sink.wait_for(60, 15), "excess waits, it is not dropped"
    times = sorted(r["time"] for r in sink.snapshot())
    worst = _most_within(times, 1.0)
    assert worst <= 20, "%d requests in one second" % worst
    assert times[-1] - times[0] >= 2.5
    st = _admin(server, "GET", "/status")[1]
    assert st["Rules"][0]["Targets"][0]["ThrottledRules"] > 0


def test_invocation_rate_limit_600_bursts_within_the_limit(server, sink):
    """Above 525/s the limiter lets a start come 2 ms early (bursts of 2
    here): the core and the worker still hold 900 events to the rate. The
    sink stamps arrivals with some jitter of its own; the exact bound is
    the unit tests' (t/unit/test_schedule.c)."""
    server.start(FAST + _dest("fast", sink.url("/f"), "    InvocationRateLimit 600\n")
                 + rule("r", {"source": ["s.f"]}, [("t", "fast")]))
    for k in range(90):
        server.put_events([entry("s.f", "D", {"i": k * 10 + j}) for j in range(10)])
    assert sink.wait_for(900, 30), "excess waits, it is not dropped"
    times = sorted(r["time"] for r in sink.snapshot())
    worst = _most_within(times, 1.0)
    assert worst <= 630, "%d requests in one second" % worst
    # 898 spacings of 1.75 ms after a burst of 2: at least 1.57 s
    assert times[-1] - times[0] >= 1.3, times[-1] - times[0]


def test_max_in_flight_per_destination(server, sink):
    sink.set_default(200, delay=0.5)
    server.start(FAST + _dest("narrow", sink.url("/n"), "    MaxInFlight 2\n")
                 + rule("r", {"source": ["s.n"]}, [("t", "narrow")]))
    server.put_events([entry("s.n", "D", {"i": j}) for j in range(6)])
    peak = 0
    deadline = time.time() + 10
    while time.time() < deadline and sink.count() < 6:
        peak = max(peak, _admin(server, "GET", "/status")[1]["Destinations"][0]["InFlight"])
        time.sleep(0.05)
    assert sink.wait_for(6, 10)
    assert 1 <= peak <= 2
    # At the sink: a third request can only start once one of the first two
    # has had its 0.5 s answer, so no three arrivals fall within 0.45 s.
    times = sorted(r["time"] for r in sink.snapshot())
    worst = _most_within(times, 0.45)
    assert worst <= 2, "%d requests in flight at once" % worst


# ---- egress security --------------------------------------------------------------

@pytest.mark.parametrize("url_of", [
    lambda p: "http://127.0.0.1:%d/x" % p,
    lambda p: "http://[::1]:%d/x" % p,
    lambda p: "http://localhost:%d/x" % p,
    lambda p: "http://pinned.example:%d/x" % p,
    lambda p: "http://two.example:%d/x" % p,
    lambda p: "http://mixed.example:%d/x" % p,
], ids=["ipv4", "ipv6", "localhost", "pinned-name", "two-addresses", "two-families"])
def test_private_targets_refused(server, sink, monkeypatch, url_of):
    """Every address a name resolves to is judged as it is connected to. The
    sink listens on the last address of each multi-address name: curl moves
    on to the next address after a refused one, so checks (at socket open
    and again when the request starts) of the first address only would let
    the attempt through."""
    monkeypatch.setenv("APIDEST_TEST_RESOLVE", ";".join(
        "%s:%d:%s" % (name, sink.port, addrs) for name, addrs in (
            ("pinned.example", "127.0.0.1"),
            ("two.example", "127.0.0.2,127.0.0.1"),
            ("mixed.example", "[::1],127.0.0.1"))))
    url = url_of(sink.port)
    server.start(FAST + """
<ApiDestDestination closed>
    Endpoint %s
</ApiDestDestination>
""" % url + rule("r", {"source": ["s.e"]}, [("t", "closed")]))
    server.put_events([entry("s.e", "D", {})])
    [rec] = _wait_dlq(server, 1)
    assert rec["Attributes"]["ERROR_CODE"] == "NO_PERMISSIONS"
    assert "refused to connect to a loopback address" in rec["Attributes"]["ERROR_MESSAGE"]
    assert "AllowPrivateEndpoint" in rec["Attributes"]["ERROR_MESSAGE"]
    assert sink.count() == 0, "the sink on that port received something"


def test_pending_records_follow_a_moved_endpoint(server, sink, sink_factory):
    """Records accepted for an endpoint the operator has since moved (another
    port here; another host or https alike) go to the endpoint configured
    now, with its connection's credentials, never to the old one."""
    old = sink_factory()
    old.set_default(503)
    server.start(FAST + _dest("d", old.url("/v1/x?a=1"))
                 + rule("r", {"source": ["s.mv"]}, [("t", "d")]))
    [eid] = server.accepted_ids(server.put_events([entry("s.mv", "D", {})])[2])
    assert old.wait_for(1, 10)
    server.stop()
    seen = old.count()
    server.start(FAST + _conn("key", "AuthorizationType API_KEY\nApiKey X-Api-Key %s\n"
                              "AllowInsecureHttp on" % SECRETS["apikey"])
                 + _dest("d", sink.url("/v2/y"), "    Connection key\n")
                 + rule("r", {"source": ["s.mv"]}, [("t", "d")]))
    assert sink.wait_for(1, 15)
    r = sink.snapshot()[0]
    assert json.loads(r["body"])["id"] == eid
    assert r["path"] == "/v1/x?a=1", "the path and query the event was accepted with"
    assert header(r, "X-Api-Key") == SECRETS["apikey"]
    time.sleep(1)
    assert old.count() == seen, "an attempt went to the endpoint no longer configured"


def test_proxy_environment_is_not_used(server, sink, sink_factory, monkeypatch):
    """A proxy in httpd's environment would be judged by the egress check
    instead of the endpoint: deliveries ignore it and connect directly."""
    proxy = sink_factory()
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:%d" % proxy.port)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    server.start(FAST + _dest("d", sink.url("/direct")) + rule("r", {"source": ["s.px"]},
                                                              [("t", "d")]))
    server.put_events([entry("s.px", "D", {})])
    assert sink.wait_for(1, 10)
    assert sink.snapshot()[0]["path"] == "/direct"
    time.sleep(0.5)
    assert proxy.count() == 0, proxy.snapshot()[0]["path"]


def test_oauth_token_answer_over_64k_is_a_token_failure(server, sink, sink_factory):
    """Only the first 64 KiB of a token answer are kept; a longer one is
    refused as a whole (it was read past its buffer before)."""
    tok = sink_factory()
    big = json.dumps({"access_token": SECRETS["token"], "expires_in": 3600,
                      "pad": "x" * (200 * 1024)})
    tok.set_default(200, headers={"Content-Type": "application/json"}, body=big)
    server.start(_oauth_conf(tok, sink))
    pid = server.live_daemon_pid()
    server.put_events([entry("s.oa", "D", {})])
    assert wait_until(lambda: _conn_state(server, "oa")["ConnectionState"] == "DEAUTHORIZED", 15)
    assert server.live_daemon_pid() == pid, "apidestd restarted"
    assert sink.count() == 0 and _dlq(server) == []
    assert "no access_token" in server.log_text()


def test_private_target_refused_on_a_connection_another_destination_opened(server, sink):
    """Two destinations on one host share its connections; the one that does
    not allow private addresses must not reach the host through a kept-alive
    connection the other one opened."""
    server.start(FAST + _dest("open", sink.url("/open")) + """
<ApiDestDestination closed>
    Endpoint %s
</ApiDestDestination>
""" % sink.url("/closed") + rule("r-open", {"source": ["s.open"]}, [("t", "open")])
                 + rule("r-closed", {"source": ["s.closed"]}, [("t", "closed")]))
    server.put_events([entry("s.open", "D", {})])
    assert sink.wait_for(1, 10)
    server.put_events([entry("s.closed", "D", {})])
    [rec] = _wait_dlq(server, 1)
    assert rec["Attributes"]["ERROR_CODE"] == "NO_PERMISSIONS"
    assert "loopback" in rec["Attributes"]["ERROR_MESSAGE"]
    server.put_events([entry("s.open", "D", {})])
    assert sink.wait_for(2, 10)
    assert [r["path"] for r in sink.snapshot()] == ["/open", "/open"]


class _TlsSink:
    """A HTTPS sink with a self-signed certificate for 127.0.0.1."""

    def __init__(self, root):
        self.cert = os.path.join(root, "tls.pem")
        self.key = os.path.join(root, "tls.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", self.key, "-out", self.cert], check=True,
                       capture_output=True, timeout=60)
        os.chmod(self.cert, 0o644)
        self.hits = []
        hits = self.hits

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                hits.append(self.rfile.read(n))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_self_signed_tls_refused_by_default_accepted_with_its_ca(server):
    tls = _TlsSink(server.root)
    try:
        conf = ("""
<ApiDestDestination secure>
    Endpoint https://127.0.0.1:%d/x
    AllowPrivateEndpoint on
</ApiDestDestination>
""" % tls.port) + _target_rule("r", "s.tls", "        Destination secure\n        RetryAttempts 0")
        server.start(FAST + conf)
        server.put_events([entry("s.tls", "D", {})])
        [rec] = _wait_dlq(server, 1)
        assert rec["Attributes"]["ERROR_CODE"] == "CONNECTION_FAILURE"
        assert tls.hits == []
        server.stop()
        # readable by root only, as a file in /etc/ssl/private would be:
        # read with the configuration, not by apidestd (which runs as User)
        os.chmod(tls.cert, 0o600)
        server.start(FAST + "ApiDestCAFile %s\n" % tls.cert + conf)
        server.put_events([entry("s.tls", "D", {"ok": 1})])
        assert wait_until(lambda: len(tls.hits) == 1, 10), server.log_text()[-2000:]
        assert json.loads(tls.hits[0])["detail"] == {"ok": 1}
    finally:
        tls.stop()


# ---- secrets never show ----------------------------------------------------------------

def test_no_secret_in_logs_status_or_store(server, sink, sink_factory):
    tok, _ = _token_sink(sink_factory)
    sink.respond([400])  # one record goes to the DLQ
    # a parameter is secret when it comes from env: or file: (AWS's IsValueSecret)
    param_file = os.path.join(server.root, "param.secret")
    with open(param_file, "w") as f:
        f.write(SECRETS["param"])
    server.start("LogLevel debug\n" + FAST + "ApiDestJournal journal.log\n"
                 + _conn("b", "AuthorizationType BASIC\nBasic u %s\n"
                         "InvocationParameter header X-P file:%s\nAllowInsecureHttp on"
                         % (SECRETS["password"], param_file))
                 + _conn("k", "AuthorizationType API_KEY\nApiKey X-Key %s\nAllowInsecureHttp on"
                         % SECRETS["apikey"])
                 + _oauth_conf(tok, sink).replace(FAST, "")
                 + _dest("db", sink.url("/b"), "    Connection b\n")
                 + _dest("dk", sink.url("/k"), "    Connection k\n")
                 + rule("rb", {"source": ["s.b"]}, [("t", "db")])
                 + rule("rk", {"source": ["s.k"]}, [("t", "dk")]))
    for src in ("s.b", "s.k", "s.oa"):
        server.put_events([entry(src, "D", {"x": 1})])
    assert sink.wait_for(3, 10) and _wait_dlq(server, 1)
    seen = [server.log_text()]
    for path in ("/apidest/status", "/apidest/metrics", "/apidest/dlq", "/server-status",
                 "/server-status?auto"):
        seen.append(server.request("GET", path)[2].decode("utf-8", "replace"))
    for op, body in (("ListConnections", {}), ("DescribeConnection", {"Name": "b"}),
                     ("DescribeConnection", {"Name": "k"}), ("DescribeConnection", {"Name": "oa"}),
                     ("ListApiDestinations", {}), ("ListTargetsByRule", {"Rule": "rb"})):
        status, _, data = server.request("POST", "/events", body=json.dumps(body),
                                         headers={"Content-Type": "application/x-amz-json-1.1",
                                                  "X-Amz-Target": "AWSEvents." + op})
        assert status == 200, (op, data)
        seen.append(data.decode("utf-8", "replace"))
    described = json.loads(seen[-3])
    assert described["Name"] == "oa" and described["ConnectionState"] == "AUTHORIZED"
    server.stop()
    for name in os.listdir(server.store_dir):
        with open(os.path.join(server.store_dir, name), "rb") as f:
            seen.append(f.read().decode("latin-1"))
    with open(os.path.join(server.root, "journal.log")) as f:
        seen.append(f.read())
    text = "\n".join(seen)
    for what, secret in SECRETS.items():
        assert secret not in text, "the %s appears somewhere it must not" % what
    # and the secrets were really used on the wire
    wire = " ".join("%s" % r["headers"] for r in sink.snapshot())
    assert SECRETS["apikey"] in wire and SECRETS["param"] in wire
