"""(i) bad input and (j) apidestd unreachable: AWS-shaped errors, nothing
stored or delivered for a rejected request, per-entry errors counted right."""

import http.client
import json
import os
import signal
import time

import pytest

from harness import (assert_aws_error, assert_put_ok, check_envelope, destination, entry,
                     rule, unstartable_store)

SETTLE = 2.0
DELIVER = 10.0
UNREACHABLE_BOUND = 12.0  # seconds for a 503 when apidestd is down


def _conf(sink, extra=""):
    return extra + "ApiDestRetryBackoff 1 2\n" + destination("hooks", sink.url("/bad")) + rule(
        "r1", {"source": ["com.example.input"]}, [("t1", "hooks")])


def _sentinel(server, sink):
    """A valid event after the bad ones is delivered, and it is the only one."""
    status, hdrs, resp = server.put_events([entry("com.example.input", "Sentinel", {"ok": 1})])
    [sid] = assert_put_ok(status, hdrs, resp, 1)
    assert sink.wait_for(1, DELIVER), "sentinel not delivered"
    time.sleep(1.0)
    assert sink.event_ids() == [sid], "something besides the sentinel was delivered: %r" % [
        r["body"][:200] for r in sink.snapshot()]


@pytest.mark.parametrize("ctype", ["amz", "json"])
def test_body_not_json(server, sink, ctype):
    # Errors come in the request's form, as the answers to good requests do.
    answer_type = "application/x-amz-json-1.1" if ctype == "amz" else "application/json"
    server.start(_conf(sink))
    for body in (b"this is not json", b'{"Entries": [{"Source": "com.example.input",',
                 b"\xff\xfe{}"):
        status, hdrs, resp = server.put_events(body=body, content_type=ctype)
        assert_aws_error(status, hdrs, resp, 400, "SerializationException", server.last_raw)
        assert hdrs.get("content-type") == answer_type, hdrs
    status, hdrs, resp = server.put_events([entry("com.example.other")], content_type=ctype)
    assert_put_ok(status, hdrs, resp, 1)
    assert hdrs.get("content-type") == answer_type, hdrs
    time.sleep(SETTLE)
    assert sink.count() == 0
    _sentinel(server, sink)


def test_entries_missing(server, sink):
    server.start(_conf(sink))
    for body in ({}, {"Foo": [{"Source": "com.example.input"}]}, {"EndpointId": "a.b"}):
        status, hdrs, resp = server.put_events(body=body, content_type="amz")
        assert_aws_error(status, hdrs, resp, 400, "ValidationException", server.last_raw)
    time.sleep(SETTLE)
    assert sink.count() == 0
    _sentinel(server, sink)


def test_a_method_other_than_post_is_405_whatever_the_operation(server, sink):
    """GET with X-Amz-Target ListRules was told that PutEvents is a POST."""
    server.start(_conf(sink))
    status, hdrs, data = server.request("GET", "/events",
                                        headers={"X-Amz-Target": "AWSEvents.ListRules"})
    assert status == 405 and hdrs["allow"] == "POST", (status, hdrs)
    assert hdrs["x-amzn-errortype"].startswith("UnsupportedOperation"), hdrs
    assert "PutEvents" not in data.decode() and "POST" in data.decode(), data


@pytest.mark.parametrize("member,etype", [
    ({"EventBusName": ""}, "ValidationException"),
    ({"EventBusName": "bad bus!"}, "ValidationException"),
    ({"EventBusName": 7}, "SerializationException"),
    ({"TraceHeader": "t" * 501}, "ValidationException"),
    ({"Resources": ["r" * 2049]}, "ValidationException"),
    ({"Source": 5}, "SerializationException"),
], ids=["empty-bus", "bad-bus", "bus-number", "trace-header", "resource", "source-number"])
def test_member_past_the_model_fails_the_request(server, sink, member, etype):
    """AWS's front end checks the model's constraints on every member before
    any entry is taken: an empty EventBusName was once taken as the default
    bus and delivered."""
    server.start(_conf(sink))
    bad = entry("com.example.input", "Member", {"x": 1})
    bad.update(member)
    status, hdrs, resp = server.put_events(
        [entry("com.example.input", "Good", {"x": 0}), bad], content_type="amz")
    assert_aws_error(status, hdrs, resp, 400, etype, server.last_raw)
    time.sleep(SETTLE)
    assert sink.count() == 0
    _sentinel(server, sink)


def test_max_entries_is_configurable(server, sink):
    server.start(_conf(sink, "ApiDestMaxEntries 20\n"))
    status, hdrs, resp = server.put_events(
        [entry("com.example.input", "Many", {"i": i}) for i in range(20)])
    assert_put_ok(status, hdrs, resp, 20)
    assert sink.wait_for(20, DELIVER)
    status, hdrs, resp = server.put_events(
        [entry("com.example.input", "Many", {"i": i}) for i in range(21)])
    assert_aws_error(status, hdrs, resp, 400, "ValidationException", server.last_raw)
    assert "Member must have length less than or equal to 20" in resp["message"], resp


@pytest.mark.parametrize("ctype", ["amz", "json"])
def test_body_over_max_request_size(server, sink, ctype):
    server.start(_conf(sink, "ApiDestMaxRequestSize 4096\n"))
    big = entry("com.example.input", "Big", {"pad": "x" * 6000})
    status, hdrs, resp = server.put_events([big], content_type=ctype)
    assert_aws_error(status, hdrs, resp, 400, "ValidationException", server.last_raw)
    # just under the limit is fine
    small = entry("com.example.input", "Small", {"pad": "y" * 3000})
    status, hdrs, resp = server.put_events([small], content_type=ctype)
    [sid] = assert_put_ok(status, hdrs, resp, 1)
    assert sink.wait_for(1, DELIVER)
    time.sleep(SETTLE)
    assert sink.event_ids() == [sid], "the oversize request was delivered"


def test_per_entry_errors_and_valid_entries_delivered(server, sink):
    server.start(_conf(sink))
    good1 = entry("com.example.input", "Good", {"n": 1})
    no_source = {"DetailType": "NoSource", "Detail": json.dumps({"n": 2})}
    detail_array = entry("com.example.input", "BadDetail", None)
    detail_array["Detail"] = "[]"
    good2 = entry("com.example.input", "Good", {"n": 3})
    detail_text = entry("com.example.input", "BadDetail", None)
    detail_text["Detail"] = "NotJSON"
    entries = [good1, no_source, detail_array, good2, detail_text]
    status, hdrs, resp = server.put_events(entries)
    assert status == 200, resp
    assert resp["FailedEntryCount"] == 3, resp
    es = resp["Entries"]
    assert len(es) == 5, resp
    assert set(es[0]) == {"EventId"} and set(es[3]) == {"EventId"}, resp
    assert es[1] == {"ErrorCode": "InvalidArgument",
                     "ErrorMessage": "Parameter Source is not valid. Reason: Source is a required argument."}
    assert es[2] == {"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."}
    assert es[4] == {"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."}
    ids = [es[0]["EventId"], es[3]["EventId"]]
    assert sink.wait_for(2, DELIVER)
    time.sleep(SETTLE)
    reqs = sink.snapshot()
    assert sorted(sink.event_ids()) == sorted(ids), [r["body"][:200] for r in reqs]
    for r in reqs:
        rid = json.loads(r["body"])["id"]
        check_envelope(r, good1 if rid == ids[0] else good2, rid, "000000000000", "us-east-1")


def test_daemon_unreachable_503(server, sink):
    """(j) apidestd cannot start (its store directory is not writable): PutEvents
    answers 503 ServiceUnavailable, never 200."""
    server.start(_conf(sink), store=unstartable_store(server), wait_daemon=False)
    # The ingest side may wait a bounded while for apidestd to come (back) up
    # before it gives up; each answer must still come within UNREACHABLE_BOUND.
    for i, ctype in enumerate(("amz", "json")):
        t0 = time.monotonic()
        status, hdrs, resp = server.put_events(
            [entry("com.example.input", "Unreachable", {"try": i})], content_type=ctype)
        took = time.monotonic() - t0
        assert_aws_error(status, hdrs, resp, 503, "ServiceUnavailable", server.last_raw)
        assert "nothing was accepted" in resp["message"], resp
        assert took < UNREACHABLE_BOUND, "503 took %.1fs" % took
    assert sink.count() == 0


def test_store_that_does_not_confirm_in_time_503_says_it_may_have_accepted(server, sink):
    """apidestd stalled (a slow disk; here SIGSTOP) reads the message but
    does not answer within 30 s. The 503 said "nothing was accepted", yet
    the events were stored and delivered once it resumed: a producer that
    trusted the text and sent them again made duplicates it did not expect.
    It now says the events may have been accepted."""
    server.start(_conf(sink))
    daemon = server.live_daemon_pid()
    os.kill(daemon, signal.SIGSTOP)
    try:
        status, hdrs, resp = server.put_events(
            [entry("com.example.input", "Stalled", {"n": 1})], timeout=60)
    finally:
        os.kill(daemon, signal.SIGCONT)
    assert_aws_error(status, hdrs, resp, 503, "ServiceUnavailable", server.last_raw)
    assert "may have been accepted" in resp["message"], resp
    assert sink.wait_for(1, DELIVER), "the stalled store did not keep the event"



def test_a_full_listen_queue_of_a_stalled_apidestd_answers_503(server, sink):
    """apidestd stalled and its listen queue full: a child that needs a new
    connection waited in connect() for good (connect was unbounded; only
    reads and writes had a timeout). It now gives up with the I/O timeout
    and answers 503, nothing stored."""
    import glob
    import socket
    import threading

    server.start(_conf(sink))
    [path] = glob.glob(os.path.join(server.root, "run", "apidest.*.sock"))
    daemon = server.live_daemon_pid()
    os.kill(daemon, signal.SIGSTOP)
    held = []
    results = []
    try:
        for _ in range(70000):  # apidestd listens with a queue of 511
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect(path)
            except BlockingIOError:
                s.close()
                break
            held.append(s)
        else:
            pytest.fail("the listen queue never filled")

        def put(i):
            try:
                results.append(server.put_events(
                    [entry("com.example.input", "Queued", {"n": i})], timeout=60)[:3:2])
            except OSError as e:  # no answer in 60 s: still in connect()
                results.append(("no answer", {"message": str(e)}))

        threads = [threading.Thread(target=put, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(70)
        hung = sum(t.is_alive() for t in threads)
    finally:
        os.kill(daemon, signal.SIGCONT)
        for s in held:
            s.close()
    assert hung == 0, "%d request(s) still waiting" % hung
    assert len(results) == 4 and all(st == 503 for st, _ in results), results
    assert any("is not reachable; nothing was accepted" in r["message"] for _, r in results), \
        results


def test_records_past_one_store_message_are_stored_in_several(server, sink):
    """One copy of an event per matched target: two 490 KB events matched
    by 70 targets need 65 MiB of records, past the 64 MiB of one message
    to apidestd. The request failed whole with a retryable InternalFailure
    that no retry could get past. Entries now go in as many messages as
    they need; an event whose own copies cannot fit fails, saying why."""
    conf = ("ApiDestMaxEntrySize 1048576\nApiDestMaxRequestSize 4194304\n"
            "ApiDestRetryBackoff 1 2\n" + destination("hooks", sink.url("/many")))
    for r in range(14):
        conf += rule("r%d" % r, {"source": ["com.example.many"]},
                     [("t%d" % t, "hooks") for t in range(5)])
    server.start(conf)
    pad = "p" * 490000
    status, hdrs, resp = server.put_events(
        [entry("com.example.many", "Big", {"n": n, "pad": pad}) for n in range(2)], timeout=60)
    ids = assert_put_ok(status, hdrs, resp, 2)
    assert sink.wait_for(140, 60), "%d of 140 delivered" % sink.count()
    got = {}
    for r in sink.snapshot():
        got[json.loads(r["body"])["id"]] = got.get(json.loads(r["body"])["id"], 0) + 1
    assert got == {ids[0]: 70, ids[1]: 70}, got
    status, hdrs, resp = server.put_events(
        [entry("com.example.many", "Huge", {"pad": "h" * 1000000})], timeout=60)
    assert status == 200 and resp["FailedEntryCount"] == 1, resp
    assert resp["Entries"][0]["ErrorCode"] == "InternalFailure"
    assert "the event's 70 target copies need" in resp["Entries"][0]["ErrorMessage"], resp
    time.sleep(SETTLE)
    assert sink.count() == 140


def test_body_over_limit_request_body(server, sink):
    """httpd's LimitRequestBody below ApiDestMaxRequestSize: a declared
    length over it gets the AWS-shaped error, not httpd's HTML page."""
    server.start(_conf(sink, "LimitRequestBody 4096\n"))
    big = entry("com.example.input", "Big", {"pad": "x" * 6000})
    status, hdrs, resp = server.put_events([big])
    assert_aws_error(status, hdrs, resp, 400, "ValidationException", server.last_raw)
    assert "LimitRequestBody (4096 bytes)" in resp["message"], resp
    time.sleep(SETTLE)
    assert sink.count() == 0
    _sentinel(server, sink)


def _post_chunked(server, raw):
    """POST raw bytes as the chunked body (raw carries the chunk framing)."""
    c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=15)
    try:
        c.putrequest("POST", "/events")
        c.putheader("Content-Type", "application/x-amz-json-1.1")
        c.putheader("X-Amz-Target", "AWSEvents.PutEvents")
        c.putheader("Transfer-Encoding", "chunked")
        c.endheaders()
        c.send(raw)
        r = c.getresponse()
        data = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
    finally:
        c.close()
    try:
        parsed = json.loads(data.decode("utf-8"))
    except ValueError:
        parsed = None
    return r.status, hdrs, parsed, data


def _chunked(body, size=1000):
    out = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size])
                   for i in range(0, len(body), size))
    return out + b"0\r\n\r\n"


@pytest.mark.parametrize("raw,etype", [
    (b"zz\r\n{}\r\n0\r\n\r\n", "SerializationException"),
    (b"2\r\n{}XX0\r\n\r\n", "SerializationException"),
    (b"ffffffffffffffffffff\r\n{}\r\n0\r\n\r\n", "ValidationException"),  # past any limit
], ids=["size", "framing", "overflow"])
def test_broken_chunked_body(server, sink, raw, etype):
    """A chunked body httpd cannot de-chunk gets the AWS-shaped error, not
    httpd's HTML page, and the connection is closed after it (the rest of
    the bytes cannot be framed)."""
    server.start(_conf(sink))
    status, hdrs, resp, data = _post_chunked(server, raw)
    assert_aws_error(status, hdrs, resp, 400, etype, data)
    assert hdrs.get("connection", "").lower() == "close", hdrs
    time.sleep(SETTLE)
    assert sink.count() == 0
    _sentinel(server, sink)


def test_chunked_body_over_limit_request_body(server, sink):
    """The same limit as a declared length, for a body sent in chunks: httpd's
    input filter counts it, and its refusal gets the AWS-shaped error."""
    server.start(_conf(sink, "LimitRequestBody 4096\n"))
    body = json.dumps({"Entries": [entry("com.example.input", "Big", {"pad": "x" * 6000})]})
    status, hdrs, resp, data = _post_chunked(server, _chunked(body.encode()))
    assert_aws_error(status, hdrs, resp, 400, "ValidationException", data)
    assert "LimitRequestBody (4096 bytes)" in resp["message"], resp
    time.sleep(SETTLE)
    assert sink.count() == 0
    _sentinel(server, sink)


def test_ingest_skips_the_filesystem_walk_but_keeps_location_authz(server, sink):
    """PutEvents is not a file: httpd does not walk the DocumentRoot for it
    (a broken .htaccess there fails a static request, not PutEvents), while
    the <Location>'s access control still applies."""
    htdocs = os.path.join(server.root, "htdocs")
    with open(os.path.join(htdocs, ".htaccess"), "w") as f:
        f.write("ThisIsNotADirective on\n")
    server.start(_conf(sink, """<Directory "%s">
    AllowOverride All
</Directory>
<Location /events-denied>
    SetHandler apidest-events
    Require all denied
</Location>
""" % htdocs))
    status, _, _ = server.request("GET", "/static.txt")
    assert status == 500, "the .htaccess was not read: the test proves nothing"
    status, _, resp = server.put_events([entry("com.example.input", "Denied", {"n": 1})],
                                        path="/events-denied")
    assert status == 403
    _sentinel(server, sink)


def test_a_request_rewritten_away_from_ingest_keeps_directory_rules(server, sink):
    """Only a request that stays PutEvents skips the filesystem walk: one
    that mod_rewrite passes on to another handler ([PT], which keeps it
    untranslated) is walked, so <Directory> still guards it, while
    PutEvents itself answers under the same deny."""
    htdocs = os.path.join(server.root, "htdocs")
    server.start(_conf(sink, """LoadModule rewrite_module /usr/lib/apache2/modules/mod_rewrite.so
RewriteEngine on
RewriteRule ^/events/st$ /server-status [PT]
<Directory "%s">
    Require all denied
</Directory>
""" % htdocs))
    status, _, _ = server.request("GET", "/server-status")
    assert status == 403, "the <Directory> deny does not apply: the test proves nothing"
    status, _, data = server.request("GET", "/events/st")
    assert status == 403, (status, data[:200])
    _sentinel(server, sink)
