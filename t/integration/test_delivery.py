"""Ingest -> match -> deliver: the EventBridge envelope reaches the API
destination, once per matched target, and nothing reaches it otherwise."""

import json
import time

import pytest

from harness import (assert_put_ok, check_envelope, destination, entry, header, rule,
                     USER_AGENT, CONTENT_TYPE)

SETTLE = 2.0      # seconds to wait before asserting that nothing (more) arrived
DELIVER = 10.0    # seconds to wait for an expected delivery


def _by_id(reqs):
    out = {}
    for r in reqs:
        out.setdefault(json.loads(r["body"])["id"], []).append(r)
    return out


@pytest.mark.parametrize("ctype", ["amz", "json"])
def test_three_entries_delivered_as_envelopes(server, sink, ctype):
    """(a) 3 matching entries -> exactly 3 requests whose bodies are the
    EventBridge envelopes, with account/region from the config."""
    conf = """
ApiDestAccount 123456789012
ApiDestRegion eu-west-3
ApiDestRetryBackoff 1 2
""" + destination("hooks", sink.url("/hooks/a")) + rule(
        "r1", {"source": ["com.example.orders"]}, [("t1", "hooks")])
    server.start(conf)

    detail = {"order": {"id": "o-1", "lines": [1, 2, 3], "paid": True, "note": None},
              "tags": ["a", "b/c"], "count": 42, "neg": -7, "empty": {}, "none": []}
    entries = [
        entry("com.example.orders", "OrderPlaced", detail, Time=1700000000.75,
              Resources=["arn:aws:s3:::bucket-1", "arn:aws:s3:::bucket-2"]),
        entry("com.example.orders", "OrderPaid", {"order": "o-2", "amount": 1999},
              Time="2024-02-29T23:59:58Z"),
        entry("com.example.orders", "OrderShipped", {}),
    ]
    t0 = time.time()
    status, hdrs, resp = server.put_events(entries, content_type=ctype)
    t1 = time.time()
    ids = assert_put_ok(status, hdrs, resp, 3)

    assert sink.wait_for(3, DELIVER), "only %d of 3 delivered" % sink.count()
    time.sleep(SETTLE)
    reqs = sink.snapshot()
    assert len(reqs) == 3, "expected exactly 3 requests, got %d" % len(reqs)
    got = _by_id(reqs)
    assert sorted(got) == sorted(ids)
    for e, eid in zip(entries, ids):
        assert len(got[eid]) == 1
        check_envelope(got[eid][0], e, eid, "123456789012", "eu-west-3",
                       t_range=(t0, t1), path="/hooks/a")


def test_defaults_account_region_and_plain_single_entry(server, sink):
    """Default account 000000000000 / region us-east-1; plain JSON ingest of
    a single entry object (DESIGN 3)."""
    conf = destination("hooks", sink.url("/in")) + rule(
        "r1", {"source": ["com.example.single"]}, [("t1", "hooks")])
    server.start(conf)
    e = entry("com.example.single", "One", {"k": "v"})
    t0 = time.time()
    status, hdrs, resp = server.put_events(body=e, content_type="json")
    t1 = time.time()
    [eid] = assert_put_ok(status, hdrs, resp, 1)
    assert sink.wait_for(1, DELIVER)
    time.sleep(1.0)
    reqs = sink.snapshot()
    assert len(reqs) == 1
    check_envelope(reqs[0], e, eid, "000000000000", "us-east-1", t_range=(t0, t1), path="/in")


def test_no_matching_rule_accepted_not_delivered(server, sink):
    """(b) an entry that matches no rule: 200 with an EventId, nothing sent."""
    conf = destination("hooks", sink.url("/hooks")) + rule(
        "r1", {"source": ["com.example.match"]}, [("t1", "hooks")])
    server.start(conf)
    status, hdrs, resp = server.put_events([entry("com.example.other", "X", {"a": 1})])
    [lost] = assert_put_ok(status, hdrs, resp, 1)
    time.sleep(SETTLE)
    assert sink.count() == 0, "unmatched event was delivered: %r" % sink.snapshot()

    # the pipeline works: a matching event after it is delivered, and only it
    status, hdrs, resp = server.put_events([entry("com.example.match", "X", {"a": 2})])
    [sentinel] = assert_put_ok(status, hdrs, resp, 1)
    assert sink.wait_for(1, DELIVER)
    time.sleep(1.0)
    assert sink.event_ids() == [sentinel]
    assert lost not in sink.event_ids()


def test_disabled_rule_not_delivered(server, sink):
    """(c) a rule with State DISABLED delivers nothing, even when an enabled
    rule matches the same event."""
    conf = (destination("off", sink.url("/disabled")) +
            destination("on", sink.url("/enabled")) +
            rule("r-off", {"source": ["com.example.state"]}, [("t1", "off")], state="DISABLED") +
            rule("r-on", {"source": ["com.example.state"]}, [("t1", "on")], state="ENABLED"))
    server.start(conf)
    status, hdrs, resp = server.put_events([entry("com.example.state", "S", {"i": i})
                                            for i in range(2)])
    ids = assert_put_ok(status, hdrs, resp, 2)
    assert sink.wait_for(2, DELIVER, path="/enabled")
    time.sleep(SETTLE)
    assert sink.count("/disabled") == 0, "DISABLED rule delivered"
    assert sorted(sink.event_ids("/enabled")) == sorted(ids)
    assert sink.count() == 2


def test_two_targets_each_get_the_event_once(server, sink):
    """(d) two targets on one rule (two destinations): each gets every event once."""
    conf = (destination("d-one", sink.url("/one")) +
            destination("d-two", sink.url("/two")) +
            rule("r1", {"source": ["com.example.fan"]}, [("first", "d-one"), ("second", "d-two")]))
    server.start(conf)
    entries = [entry("com.example.fan", "Fan", {"i": i}) for i in range(2)]
    status, hdrs, resp = server.put_events(entries)
    ids = assert_put_ok(status, hdrs, resp, 2)
    assert sink.wait_for(2, DELIVER, path="/one"), sink.snapshot()
    assert sink.wait_for(2, DELIVER, path="/two"), sink.snapshot()
    time.sleep(SETTLE)
    assert sorted(sink.event_ids("/one")) == sorted(ids)
    assert sorted(sink.event_ids("/two")) == sorted(ids)
    assert sink.count() == 4
    for r in sink.snapshot():
        e = entries[ids.index(json.loads(r["body"])["id"])]
        check_envelope(r, e, json.loads(r["body"])["id"], "000000000000", "us-east-1")


def _unicode_detail(size=10 * 1024):
    d = {
        "greeting": "héllo wörld — ñandú, Ελληνικά, русский, 日本語, 한국어, עברית, العربية",
        "emoji": "😀🎉🚀 👩‍👩‍👧‍👦 🇫🇷 ❤️",
        "astral": "𝄞 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \U0010fffd",
        "escapes": "quote \" backslash \\ slash / tab\t newline\n",
        "nested": {"ключ": ["значение", {"🔑": "🗝️"}], "n": 12345678901234},
    }
    filler, i = [], 0
    while len(json.dumps(d, ensure_ascii=False).encode("utf-8")) < size:
        filler.append("%05d:%s" % (i, "é😀漢" * 8))
        d["filler"] = filler
        i += 1
    return d


@pytest.mark.parametrize("outer_ascii", [True, False], ids=["escaped", "raw-utf8"])
def test_unicode_10k_detail_round_trips(server, sink, outer_ascii):
    """(k) one entry with a 10 KB detail full of non-ASCII and emoji arrives
    intact (parsed compare), whether the request escapes it (\\uXXXX,
    surrogate pairs) or sends raw UTF-8."""
    conf = destination("hooks", sink.url("/u")) + rule(
        "r1", {"source": ["com.example.unicode"]}, [("t1", "hooks")])
    server.start(conf)
    detail = _unicode_detail()
    e = {"Source": "com.example.unicode", "DetailType": "Ünïcødé 😀",
         "Detail": json.dumps(detail, ensure_ascii=False)}
    assert len(e["Detail"].encode("utf-8")) >= 10 * 1024
    status, hdrs, resp = server.put_events([e], ensure_ascii=outer_ascii)
    [eid] = assert_put_ok(status, hdrs, resp, 1)
    assert sink.wait_for(1, DELIVER)
    time.sleep(1.0)
    [req] = sink.snapshot()
    env = check_envelope(req, e, eid, "000000000000", "us-east-1", exact_format=False)
    assert env["detail"] == detail
    assert env["detail-type"] == "Ünïcødé 😀"
    assert env["detail"]["emoji"] == detail["emoji"]
    assert header(req, "User-Agent") == USER_AGENT
    assert header(req, "Content-Type") == CONTENT_TYPE


def test_detail_numbers_written_as_eventbridge_writes_them(server, sink):
    """The detail is re-serialised (eventbridge-semantics.md 2) by Jackson:
    reals as Java's Double.toString, never C's %g (2500.00 arrived as
    2.5e+03), integers as written; the same through an InputTransformer."""
    server.start(destination("hooks", sink.url("/n")) + rule(
        "r1", {"source": ["com.example.num"]}, [("t1", "hooks")]) + """
<ApiDestRule r2>
    EventPattern '{"source": ["com.example.num"]}'
    <ApiDestTarget t2>
        Destination hooks
        InputTransformer '{"p": <p>, "s": "<p> and <t>"}'
        InputPathsMap p $.detail.price
        InputPathsMap t $.detail.tiny
    </ApiDestTarget>
</ApiDestRule>
""")
    text = ('{"t":20.0,"price":2500.00,"n":123456.0,"tiny":0.0001,"big":1e21,"i":100,'
            '"neg":-0.5,"c":-122.42916360922355,"m":12345678.5}')
    status, hdrs, resp = server.put_events([{"Source": "com.example.num", "DetailType": "N",
                                             "Detail": text}])
    assert_put_ok(status, hdrs, resp, 1)
    assert sink.wait_for(2, DELIVER)
    bodies = sorted(r["body"].decode() for r in sink.snapshot())
    assert bodies[0] == '{"p":2500.0,"s":"2500.0 and 1.0E-4"}', bodies[0]
    detail = bodies[1][bodies[1].index('"detail":') + 9:-1]
    assert detail == ('{"t":20.0,"price":2500.0,"n":123456.0,"tiny":1.0E-4,"big":1.0E21,'
                      '"i":100,"neg":-0.5,"c":-122.42916360922355,"m":1.23456785E7}'), detail


def test_destinations_sharing_a_host_share_its_connections(server, sink):
    """Three destinations on one host, 60 events each, against a slow host:
    together they never hold more than the engine's 64 connections to it,
    and no attempt times out while waiting for one (apidestd keeps the
    excess queued itself instead of handing libcurl transfers that would
    wait for a connection with their timeout running)."""
    sink.set_default(200, delay=0.8)
    conf = "ApiDestRetryBackoff 30 30\n"
    for k in range(3):
        conf += destination("d%d" % k, sink.url("/d/%d" % k), timeout=2)
        conf += rule("r%d" % k, {"detail-type": ["share.%d" % k]}, [("t", "d%d" % k)])
    server.start(conf)
    for k in range(3):
        for _ in range(6):
            status, hdrs, resp = server.put_events(
                [entry("share.src", "share.%d" % k, {"k": k})] * 10)
            assert_put_ok(status, hdrs, resp, 10)
    assert sink.wait_for(180, 60), "delivered %d of 180" % sink.count()
    time.sleep(SETTLE)
    reqs = sink.snapshot()
    assert len(reqs) == 180, "retries or duplicates: %d requests" % len(reqs)
    conns = {r["client_port"] for r in reqs}
    assert len(conns) <= 64, "%d connections to one host" % len(conns)
    st = json.loads(server.request("GET", "/apidest/status")[2])
    for d in st["Destinations"]:
        assert d["Timeouts"] == 0, d


def test_plain_targets_share_their_hosts_connections_too(server, sink):
    """The same for plain HTTP targets (no destination), on the host of an
    API destination: a plain target's transfers count against the host's
    connections as well, so none waits inside libcurl with its timeout
    running and none is abandoned unsent."""
    sink.set_default(200, delay=0.8)
    conf = ("ApiDestRetryBackoff 30 30\n" + destination("d", sink.url("/d"), timeout=2)
            + rule("rd", {"detail-type": ["share.d"]}, [("t", "d")]))
    for k in range(2):
        conf += """
<ApiDestRule rp%d>
    EventPattern '{"detail-type": ["share.p%d"]}'
    <ApiDestTarget t>
        Endpoint %s
        AllowPrivateEndpoint on
        Timeout 2
    </ApiDestTarget>
</ApiDestRule>
""" % (k, k, sink.url("/p/%d" % k))
    server.start(conf)
    for kind in ("share.p0", "share.p1", "share.d"):
        for _ in range(6):
            status, hdrs, resp = server.put_events([entry("share.src", kind, {})] * 10)
            assert_put_ok(status, hdrs, resp, 10)
    assert sink.wait_for(180, 60), "delivered %d of 180" % sink.count()
    time.sleep(SETTLE)
    reqs = sink.snapshot()
    assert len(reqs) == 180, "retries or duplicates: %d requests" % len(reqs)
    assert len({r["client_port"] for r in reqs}) <= 64
    st = json.loads(server.request("GET", "/apidest/status")[2])
    assert st["Daemon"]["Retried"] == 0 and st["Daemon"]["DlqCount"] == 0, st["Daemon"]


def test_a_slow_plain_target_does_not_stall_other_hosts(server, sink, sink_factory):
    """A backlog for a plain HTTP target on a slow host is held back in the
    core once the host has its connections and a prefetch in flight: held in
    the worker instead, it kept the total in flight at ApiDestMaxInFlight and
    nothing for any other host was sent until the backlog drained."""
    slow = sink_factory()
    slow.set_default(200, delay=6)
    server.start("ApiDestRetryBackoff 30 30\nApiDestMaxInFlight 150\n"
                 + destination("fast", sink.url("/fast"))
                 + rule("rf", {"source": ["host.fast"]}, [("t", "fast")]) + """
<ApiDestRule rs>
    EventPattern '{"source": ["host.slow"]}'
    <ApiDestTarget t>
        Endpoint %s
        AllowPrivateEndpoint on
        Timeout 15
    </ApiDestTarget>
</ApiDestRule>
""" % slow.url("/slow"))
    for _ in range(25):
        status, hdrs, resp = server.put_events([entry("host.slow", "S", {})] * 10)
        assert_put_ok(status, hdrs, resp, 10)
    assert slow.wait_for(64, 10)
    t0 = time.time()
    status, hdrs, resp = server.put_events([entry("host.fast", "F", {"i": i}) for i in range(10)])
    assert_put_ok(status, hdrs, resp, 10)
    assert sink.wait_for(10, 4.5), "the fast host waited %.1f s" % (time.time() - t0)
    assert slow.count() <= 64 + 1, "more transfers than connections to the slow host"


def _busy_beside_slow(server, sink, busy_extra, busy_requests, per_request, busy_out):
    """A busy destination and a 10/s one on the same host (the sink): the
    busy one's events are posted and busy_out of them out first; then 20
    events for the slow one. Returns when those were posted."""
    conf = ("ApiDestRetryBackoff 30 30\n"
            + destination("busy", sink.url("/busy"),
                          extra="    InvocationRateLimit 100000\n" + busy_extra)
            + destination("slow", sink.url("/slow"), extra="    InvocationRateLimit 10\n")
            + rule("rb", {"source": ["host.busy"]}, [("t", "busy")])
            + rule("rs", {"source": ["host.slow"]}, [("t", "slow")]))
    server.start(conf)
    for _ in range(busy_requests):
        status, hdrs, resp = server.put_events([entry("host.busy", "B", {})] * per_request)
        assert_put_ok(status, hdrs, resp, per_request)
    assert sink.wait_for(busy_out, 10, path="/busy")
    t0 = time.time()
    for k in range(2):
        status, hdrs, resp = server.put_events([entry("host.slow", "S", {"i": 10 * k + i})
                                                for i in range(10)])
        assert_put_ok(status, hdrs, resp, 10)
    return t0


def _slow_times_within_its_rate(sink):
    assert sink.wait_for(20, 20, path="/slow")
    times = sorted(r["time"] for r in sink.snapshot("/slow"))
    worst = max(sum(1 for t in times if t0 <= t < t0 + 1.0) for t0 in times)
    assert worst <= 10, "%d requests in one second at a limit of 10" % worst
    return times


def test_rate_limited_destination_not_starved_by_a_busy_one_on_its_host(server, sink):
    """A destination with a low InvocationRateLimit shares its host with a
    busy one whose backlog keeps the host's connections full: its events
    still go out at once, in turn with the busy one's, not after the
    backlog; and however long they waited for a connection, they leave
    spaced by its rate (no one-second window with more than 10)."""
    sink.set_default(200, delay=1.0)  # a 10 s backlog
    t0 = _busy_beside_slow(server, sink, "    MaxInFlight 60\n", 60, 10, 60)
    assert sink.wait_for(1, 10, path="/slow")
    first = min(r["time"] for r in sink.snapshot("/slow"))
    busy_left = 600 - sink.count("/busy")
    assert first - t0 < 4.0, "waited %.1f s behind the busy destination" % (first - t0)
    assert busy_left > 0, "the busy backlog was gone before: the test proved nothing"
    _slow_times_within_its_rate(sink)


def test_held_jobs_keep_the_rate_limit_after_a_stall(server, sink):
    """A busy destination's 64 requests stall its host for 2 s while a
    10/s destination on the same host keeps getting jobs handed to the
    worker, which must hold them (the host's 64 connections are busy).
    When the stall ends they must still leave 10 a second, not at once."""
    sink.respond([{"status": 200, "delay": 2.0}] * 64)
    _busy_beside_slow(server, sink, "", 8, 8, 64)
    times = _slow_times_within_its_rate(sink)
    # from the stalled requests' own arrival: the host frees 2 s after it
    busy0 = min(r["time"] for r in sink.snapshot("/busy"))
    assert times[0] >= busy0 + 1.9, "the slow destination was not held behind the stall"


def test_one_at_a_time_destination_keeps_pace(server, sink):
    """With MaxInFlight 1 every attempt waits for the outcome of the one
    before to reach apidestd's core: the worker that returns it must wake
    the core's poll at once, not leave it to the poll's 200 ms bound (20
    attempts would then take about 2 s)."""
    server.start(destination("one", sink.url("/one"), extra="    MaxInFlight 1\n")
                 + rule("r", {"source": ["s.one"]}, [("t", "one")]))
    for batch in range(2):
        status, _, _ = server.put_events([entry("s.one", "D", {"b": batch, "i": i})
                                          for i in range(10)])
        assert status == 200
    assert sink.wait_for(20, 15)
    times = sorted(r["time"] for r in sink.snapshot())
    # the third quartile of the gaps: a few stalls of a loaded machine do
    # not move it, a wake-up missed on one attempt in four does
    gaps = sorted(b - a for a, b in zip(times, times[1:]))
    assert gaps[3 * len(gaps) // 4] < 0.06, "gaps between one-at-a-time attempts: %s" % gaps
