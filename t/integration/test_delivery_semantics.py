"""Delivery outcomes (eventbridge-semantics.md 5 and 7): what is retried, what
is not, the same body on every attempt, HttpMethod, and event-bus routing."""

import json
import time

import pytest

from harness import assert_put_ok, check_envelope, destination, entry, rule

FAST = "ApiDestRetryBackoff 1 2\nApiDestMaintenanceInterval 1\n"
SETTLE = 2.5


def _one(server, source="com.example.sem", **kw):
    e = entry(source, "Sem", {"k": "v"}, **kw)
    status, hdrs, resp = server.put_events([e])
    [eid] = assert_put_ok(status, hdrs, resp, 1)
    return e, eid


def test_5xx_retried_with_the_same_body(server, sink):
    sink.respond([500, 503])
    server.start(FAST + destination("h", sink.url("/r")) +
                 rule("r1", {"source": ["com.example.sem"]}, [("t", "h")]))
    e, eid = _one(server)
    assert sink.wait_for(3, 15), "attempts: %s" % [r["status"] for r in sink.snapshot()]
    time.sleep(SETTLE)
    reqs = sink.snapshot()
    assert [r["status"] for r in reqs] == [500, 503, 200]
    assert len({r["body"] for r in reqs}) == 1, "the body changed between attempts"
    check_envelope(reqs[-1], e, eid, "000000000000", "us-east-1")


def test_api_destination_retries_401_409_429(server, sink):
    sink.respond([401, 409, 429])
    server.start(FAST + destination("h", sink.url("/r")) +
                 rule("r1", {"source": ["com.example.sem"]}, [("t", "h")]))
    e, eid = _one(server)
    assert sink.wait_for(4, 20), "attempts: %s" % [r["status"] for r in sink.snapshot()]
    time.sleep(SETTLE)
    assert [r["status"] for r in sink.snapshot()] == [401, 409, 429, 200]


@pytest.mark.parametrize("status", [400, 404, 301])
def test_other_4xx_and_3xx_not_retried(server, sink, status):
    sink.respond([status])
    server.start(FAST + destination("h", sink.url("/r")) +
                 rule("r1", {"source": ["com.example.sem"]}, [("t", "h")]))
    e, eid = _one(server)
    assert sink.wait_for(1, 10)
    time.sleep(4.0)  # with a 1..2 s backoff a retry would have come by now
    assert [r["status"] for r in sink.snapshot()] == [status], "a %d was retried" % status


@pytest.mark.parametrize("status", [200, 400])
def test_a_body_cut_short_after_the_status_is_the_status(server, sink, status):
    """The target's answer is its status line: a body cut short after it
    (libcurl's "partial file") made a 200 a failure to retry, delivered
    twice, and a 400 a retryable one instead of a dead letter."""
    sink.respond([{"status": status, "body": "x" * 100, "cut": 3}])
    server.start(FAST + destination("h", sink.url("/cut")) +
                 rule("r1", {"source": ["com.example.sem"]}, [("t", "h")]))
    e, eid = _one(server)
    assert sink.wait_for(1, 10)
    time.sleep(4.0)  # with a 1..2 s backoff a retry would have come by now
    assert [r["status"] for r in sink.snapshot()] == [status], "the cut answer was retried"
    _, _, data = server.request("GET", "/apidest/dlq")
    recs = json.loads(data)["Records"]
    if status == 200:
        assert recs == []
    else:
        [rec] = recs
        assert rec["Attributes"]["ERROR_CODE"] == "ERROR_FROM_TARGET", rec
        assert rec["LastStatus"] == 400 and "EXHAUSTED_RETRY_CONDITION" not in rec["Attributes"]


def test_timeout_is_retried(server, sink):
    """A sink that does not answer within the destination's Timeout: the
    attempt is abandoned and retried."""
    sink.respond([{"status": 200, "hang": 4}])
    server.start(FAST + destination("h", sink.url("/slow"), timeout=1) +
                 rule("r1", {"source": ["com.example.sem"]}, [("t", "h")]))
    e, eid = _one(server)
    assert sink.wait_for(2, 15), "no retry after a timeout"
    reqs = sink.snapshot()
    assert reqs[0]["status"] is None and reqs[1]["status"] == 200
    assert reqs[1]["time"] - reqs[0]["time"] >= 0.9, "retried before the 1 s timeout"
    assert reqs[0]["body"] == reqs[1]["body"]


def test_http_method_put(server, sink):
    server.start(FAST + destination("h", sink.url("/put/here"), method="PUT") +
                 rule("r1", {"source": ["com.example.sem"]}, [("t", "h")]))
    e, eid = _one(server)
    assert sink.wait_for(1, 10)
    time.sleep(1.0)
    [req] = sink.snapshot()
    check_envelope(req, e, eid, "000000000000", "us-east-1", method="PUT", path="/put/here")


def test_event_bus_routing(server, sink):
    """Rules see only the events of their bus; an entry for a bus that has no
    rule, or for a bus of another account or region, is accepted and dropped
    (as AWS)."""
    server.start(FAST + destination("d-default", sink.url("/default")) +
                 destination("d-orders", sink.url("/orders")) +
                 rule("on-default", {"source": ["com.example.bus"]}, [("t", "d-default")]) +
                 rule("on-orders", {"source": ["com.example.bus"]}, [("t", "d-orders")],
                      bus="orders"))
    arn = "arn:aws:events:us-east-1:000000000000:event-bus/orders"
    cases = [("absent", None, "/default"), ("default", "default", "/default"),
             ("orders", "orders", "/orders"), ("orders-arn", arn, "/orders"),
             ("nobus", "no-such-bus", None),
             # the same name in another account or region is another bus
             ("other-account", arn.replace("000000000000", "999999999999"), None),
             ("other-region", arn.replace("us-east-1", "eu-west-3"), None)]
    expect = {}
    for tag, bus, path in cases:
        kw = {"EventBusName": bus} if bus else {}
        e = entry("com.example.bus", "Bus", {"tag": tag}, **kw)
        status, hdrs, resp = server.put_events([e])
        [eid] = assert_put_ok(status, hdrs, resp, 1)
        expect[eid] = path
    assert sink.wait_for(4, 10), sink.snapshot()
    time.sleep(SETTLE)
    got = {}
    for r in sink.snapshot():
        got.setdefault(json.loads(r["body"])["id"], []).append(r["path"])
    want = {eid: [p] for eid, p in expect.items() if p}
    assert got == want


def test_methods_alternate_on_one_engine(server, sink):
    """apidestd keeps its HTTP handles configured between attempts and resets
    them only when the method changes: with one delivery thread, attempts of
    every method in turn each go out with their own method and body."""
    methods = ["POST", "GET", "PUT", "HEAD", "PATCH", "OPTIONS", "DELETE"]
    conf = FAST + "ApiDestWorkers 1\n"
    for m in methods:
        conf += destination("d-" + m, sink.url("/m/" + m), method=m)
        conf += rule("r-" + m, {"source": ["com.example.meth"], "detail-type": [m]},
                     [("t", "d-" + m)])
    server.start(conf)
    sent = []
    for rnd in range(3):
        for m in ([*methods] if rnd % 2 == 0 else methods[::-1]):
            e = entry("com.example.meth", m, {"k": m})
            status, hdrs, resp = server.put_events([e])
            [eid] = assert_put_ok(status, hdrs, resp, 1)
            assert sink.wait_for(len(sent) + 1, 10), "no delivery for %s" % m
            sent.append((m, e, eid))
    reqs = sink.snapshot()
    assert len(reqs) == len(sent)
    for (m, e, eid), req in zip(sent, reqs):
        assert req["method"] == m and req["path"] == "/m/" + m, (m, req["method"], req["path"])
        if m in ("GET", "HEAD"):
            assert req["body"] == b"", (m, req["body"][:100])
        else:
            check_envelope(req, e, eid, "000000000000", "us-east-1", method=m, path="/m/" + m)
