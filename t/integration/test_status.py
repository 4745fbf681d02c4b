"""Observability: after a known sequence, every counter in
server-status?auto, /apidest/status and /apidest/metrics shows exactly it;
the HTML page names each destination; the Prometheus text is valid; status
keeps answering while apidestd is down or a destination is stalled."""

import json
import os
import re
import shutil
import subprocess
import time

from harness import destination, entry, rule, unstartable_store, wait_until
from sink import Response

FAST = "ApiDestRetryBackoff 1 2\nApiDestMaintenanceInterval 1\n"


def _conf(good, bad, flaky):
    return (FAST + destination("good", good.url("/g")) + destination("bad", bad.url("/b"))
            + destination("flaky", flaky.url("/f"))
            + rule("ok", {"source": ["s.ok"]}, [("t-good", "good")])
            + rule("broken", {"source": ["s.bad"]}, [("t-bad", "bad")])
            + rule("wobbly", {"source": ["s.flaky"]}, [("t-flaky", "flaky")])
            # matched, but its InputPath finds nothing: EventBridge delivers nothing
            + """
<ApiDestRule lossy>
    EventPattern '{"source": ["s.lossy"]}'
    <ApiDestTarget t-lossy>
        Destination good
        InputPath $.detail.nope
    </ApiDestTarget>
</ApiDestRule>
""")


def _auto(server):
    status, _, data = server.request("GET", "/server-status?auto")
    assert status == 200
    out = {}
    for line in data.decode().splitlines():
        if line.startswith("ApiDest"):
            k, _, v = line.partition(": ")
            assert k not in out, "%s twice in ?auto" % k
            out[k] = v
    return out


def _status(server):
    status, _, data = server.request("GET", "/apidest/status")
    assert status == 200
    return json.loads(data)


def _metrics(server):
    status, hdrs, data = server.request("GET", "/apidest/metrics")
    assert status == 200 and hdrs["content-type"].startswith("text/plain; version=0.0.4")
    return data.decode()


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*)\})? '
                    r'(-?[0-9.e+-]+|\+Inf|NaN)$')


def parse_prometheus(text):
    """A strict reader of the text exposition format: every family has HELP
    and TYPE before its samples, names and labels are well formed, counters
    end in _total, histogram buckets are cumulative and end with +Inf equal to
    _count. Returns {(name, frozenset(labels)): value}."""
    assert text.endswith("\n")
    types, helps, samples, seen = {}, set(), {}, set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            assert name not in helps, "HELP twice for " + name
            helps.add(name)
            continue
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ")
            assert typ in ("counter", "gauge", "histogram"), line
            assert name in helps and name not in types, line
            types[name] = typ
            continue
        m = SAMPLE.match(line)
        assert m, "bad sample line: %r" % line
        name, labels = m.group(1), m.group(3) or ""
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        assert family in types, "sample before its TYPE: " + line
        if types[family] == "counter":
            assert name.endswith("_total"), name
        lab = frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', labels))
        key = (name, lab)
        assert key not in seen, "duplicate sample " + line
        seen.add(key)
        samples[key] = float(m.group(4))
    for fam, typ in types.items():
        if typ == "histogram":
            buckets = sorted(((float("inf") if dict(k[1])["le"] == "+Inf" else float(dict(k[1])["le"])), v)
                             for k, v in samples.items() if k[0] == fam + "_bucket")
            assert buckets and buckets[-1][0] == float("inf")
            assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), "not cumulative"
            assert buckets[-1][1] == samples[(fam + "_count", frozenset())]
    return samples


def _val(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


def test_auto_keys_of_dotted_names_do_not_collide(server, sink):
    """Rule and target names may hold '.': rule a's target b.c and rule
    a.b's target c were both ApiDestTarget.a.b.c, the second line's 0
    hiding the first's count from a parser that keeps the last."""
    server.start(FAST + destination("d", sink.url("/x"))
                 + rule("a", {"source": ["s.a"]}, [("b.c", "d")])
                 + rule("a.b", {"source": ["s.ab"]}, [("c", "d")]))
    server.put_events([entry("s.a", "D", {})])
    assert sink.wait_for(1, 10)
    assert wait_until(lambda: _auto(server).get("ApiDestTarget.a/b.c.Invocations") == "1", 10), \
        _auto(server)
    assert _auto(server)["ApiDestTarget.a.b/c.Invocations"] == "0"


def test_counters_after_a_known_sequence(server, sink_factory):
    good, bad, flaky = sink_factory(), sink_factory(), sink_factory()
    bad.set_default(400)
    flaky.respond([500, 200])
    server.start(_conf(good, bad, flaky))
    for i in range(3):
        server.put_events([entry("s.ok", "D", {"i": i})])
    server.put_events([entry("s.bad", "D", {"i": 0}), entry("s.bad", "D", {"i": 1})])
    server.put_events([entry("s.flaky", "D", {})])
    server.put_events([entry("s.nothing", "D", {}), entry("s.nothing", "D", {})])
    server.put_events([entry("s.lossy", "D", {"x": 1})])
    assert good.wait_for(3, 10) and bad.wait_for(2, 10) and flaky.wait_for(2, 15)
    deadline = time.time() + 10
    while time.time() < deadline and (_auto(server).get("ApiDestDeadLettered") != "2"
                                      or _auto(server).get("ApiDestDelivered") != "4"):
        time.sleep(0.1)
    a = _auto(server)
    expect = {"ApiDestDaemon": "up", "ApiDestDelivered": "4", "ApiDestDeadLettered": "2",
              "ApiDestRetried": "1", "ApiDestDropped": "0", "ApiDestPending": "0",
              "ApiDestDeadLetter": "2", "ApiDestInFlight": "0", "ApiDestEventsAccepted": "9",
              "ApiDestEventsFailed": "0", "ApiDestUnmatchedEvents": "2",
              "ApiDestTargetInputsDropped": "1", "ApiDestRule.lossy.MatchedEvents": "1",
              "ApiDestPutEventsRequests": "7",
              "ApiDestRule.ok.MatchedEvents": "3", "ApiDestRule.broken.MatchedEvents": "2",
              "ApiDestRule.wobbly.MatchedEvents": "1",
              "ApiDestTarget.ok/t-good.Invocations": "3",
              "ApiDestTarget.ok/t-good.SuccessfulInvocationAttempts": "3",
              "ApiDestTarget.broken/t-bad.Invocations": "2",
              "ApiDestTarget.broken/t-bad.FailedInvocations": "2",
              "ApiDestTarget.broken/t-bad.InvocationsSentToDLQ": "2",
              "ApiDestTarget.wobbly/t-flaky.InvocationAttempts": "2",
              "ApiDestTarget.wobbly/t-flaky.RetryInvocationAttempts": "1",
              "ApiDestTarget.wobbly/t-flaky.SuccessfulInvocationAttempts": "1",
              "ApiDestDestination.good.Responses2xx": "3",
              "ApiDestDestination.bad.Responses4xx": "2",
              "ApiDestDestination.flaky.Responses5xx": "1",
              "ApiDestDestination.flaky.Responses2xx": "1",
              "ApiDestDestination.good.Queued": "0"}
    for k, v in expect.items():
        assert a.get(k) == v, "%s: expected %s, got %s" % (k, v, a.get(k))
    st = _status(server)
    assert st["Daemon"]["State"] == "up" and st["Daemon"]["Delivered"] == 4
    assert st["Daemon"]["DeadLettered"] == 2 and st["Daemon"]["Retried"] == 1
    assert st["Ingest"]["UnmatchedEvents"] == 2 and st["Ingest"]["EventsAccepted"] == 9
    assert st["Ingest"]["TargetInputsDropped"] == 1
    dests = {d["Name"]: d for d in st["Destinations"]}
    assert dests["bad"]["Responses4xx"] == 2 and "400" in dests["bad"]["LastError"]
    rules = {r["Name"]: r for r in st["Rules"]}
    assert rules["broken"]["Targets"][0]["InvocationsSentToDLQ"] == 2
    assert st["Latency"]["IngestionToInvocationStart"]["Count"] == 6
    assert st["Latency"]["IngestionToInvocationSuccess"]["Count"] == 4
    text = _metrics(server)
    s = parse_prometheus(text)
    assert _val(s, "apidest_daemon_up") == 1
    assert _val(s, "apidest_matched_events_total", event_bus="default", rule="ok") == 3
    assert _val(s, "apidest_invocations_total", event_bus="default", rule="ok", target="t-good") == 3
    assert _val(s, "apidest_invocations_sent_to_dlq_total", event_bus="default", rule="broken",
                target="t-bad") == 2
    assert _val(s, "apidest_failed_invocations_total", event_bus="default", rule="broken",
                target="t-bad") == 2
    assert _val(s, "apidest_retry_invocation_attempts_total", event_bus="default", rule="wobbly",
                target="t-flaky") == 1
    assert _val(s, "apidest_invocation_attempts_total", event_bus="default", rule="wobbly",
                target="t-flaky") == 2
    assert _val(s, "apidest_unmatched_events_total") == 2
    assert _val(s, "apidest_target_inputs_dropped_total") == 1
    assert _val(s, "apidest_dead_letter_records") == 2
    assert _val(s, "apidest_destination_responses_total", destination="bad", **{"class": "4xx"}) == 2
    assert _val(s, "apidest_ingestion_to_invocation_start_latency_seconds_count") == 6
    assert _val(s, "apidest_ingestion_to_invocation_success_latency_seconds_count") == 4
    promtool = shutil.which("promtool")
    if promtool:
        p = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 0, p.stdout + p.stderr
    # the HTML page names every destination
    status, _, html = server.request("GET", "/server-status")
    assert status == 200
    for name in ("good", "bad", "flaky"):
        assert ("<td>%s</td>" % name).encode() in html
    assert b"<h2>mod_apidest</h2>" in html


def test_status_answers_while_the_daemon_is_down(server, sink):
    server.start(FAST + destination("d", sink.url("/x")) + rule("r", {"source": ["s"]},
                                                                  [("t", "d")]))
    # Killed before it has started (counted its start, published its pid),
    # the first apidestd would never count: wait for it to be up.
    assert wait_until(lambda: _auto(server)["ApiDestDaemonStarts"] == "1" and
                      _auto(server)["ApiDestDaemon"] == "up", 10)
    # The master restarts it within a second or so; until then it is down.
    # A restart that wins the race leaves nothing to see: kill it again.
    kills, seen_down = 0, False
    while not seen_down and kills < 3:
        old = server.kill9_daemon()
        kills += 1
        t0 = time.time()
        a = _auto(server)
        st = _status(server)
        assert time.time() - t0 < 3
        if not server.live_daemon_pid(other_than=old):
            assert a["ApiDestDaemon"] == "down" and st["Daemon"]["State"] == "down"
            seen_down = True
        _metrics(server)
        assert server.wait_daemon_restarted(old)
        assert wait_until(lambda: _auto(server)["ApiDestDaemon"] == "up", 5)
    assert seen_down, "apidestd was back before every status read"
    a = _auto(server)
    assert a["ApiDestDaemon"] == "up" and a["ApiDestDaemonStarts"] == str(1 + kills)


def test_counters_continue_across_a_daemon_restart(server, sink, sink_factory):
    """The counters live in shared memory through an apidestd restart: the
    new daemon loads the same backlog and must not add it, or what the dead
    one had in flight, to the gauges again; its totals go on from the old
    one's."""
    # Retry-After at the cap: every retry waits the full 60 s (full jitter
    # alone put one, now and then, within the test's few seconds: Retried 6)
    sink.set_default(503, headers={"Retry-After": "60"})
    slow = sink_factory()
    slow.set_default(200, delay=20)
    server.start("ApiDestRetryBackoff 60 60\nApiDestMaintenanceInterval 1\n"
                 + destination("hooks", sink.url("/s")) + destination("slow", slow.url("/w"))
                 + rule("r", {"source": ["s.x"]}, [("t", "hooks")])
                 + rule("w", {"source": ["s.w"]}, [("t", "slow")]))
    for i in range(5):
        server.put_events([entry("s.x", "D", {"i": i})])
    server.put_events([entry("s.w", "D", {})])
    assert sink.wait_for(5, 10) and slow.wait_for(1, 10)

    def snapshot():
        st = _status(server)
        d = {x["Name"]: x for x in st["Destinations"]}
        r = {x["Name"]: x for x in st["Rules"]}
        return (d["hooks"]["Queued"], d["hooks"]["InFlight"], r["r"]["Targets"][0]["Queued"],
                d["slow"]["Queued"], d["slow"]["InFlight"], st["Daemon"]["Pending"],
                st["Daemon"]["Retried"])

    # the slow one is in flight before and after: the new daemon sends it again
    assert wait_until(lambda: snapshot() == (5, 0, 5, 1, 1, 6, 5), 5), snapshot()
    old = server.daemon_pid()
    server.kill9_daemon()
    assert server.wait_daemon_restarted(old)
    assert wait_until(lambda: _status(server)["Daemon"]["State"] == "up", 5)
    assert slow.wait_for(2, 10)
    time.sleep(1.5)  # a tick: publish() has run
    assert snapshot() == (5, 0, 5, 1, 1, 6, 5)
    a = _auto(server)
    assert a["ApiDestDestination.hooks.Queued"] == "5", a
    assert sink.count() == 5  # nothing was due again


def test_status_while_the_daemon_cannot_start(server, sink, tmp_path):
    server.start(FAST + destination("d", sink.url("/x")) + rule("r", {"source": ["s"]},
                                                                  [("t", "d")]),
                 store=unstartable_store(server), wait_daemon=False)
    time.sleep(1)
    assert _auto(server)["ApiDestDaemon"] == "down"
    assert _status(server)["Daemon"]["State"] == "down"
    assert _val(parse_prometheus(_metrics(server)), "apidest_daemon_up") == 0


def test_status_answers_while_a_destination_is_stalled(server, sink):
    sink.set_default(200, hang=8)
    server.start(FAST + destination("slow", sink.url("/x"), timeout=10)
                 + rule("r", {"source": ["s"]}, [("t", "slow")]))
    for i in range(5):
        server.put_events([entry("s", "D", {"i": i})])
    assert sink.wait_for(5, 10)
    t0 = time.time()
    a = _auto(server)
    st = _status(server)
    assert time.time() - t0 < 2, "status waited for the stalled destination"
    assert a["ApiDestDestination.slow.InFlight"] == "5"
    assert st["Daemon"]["InFlight"] == 5


def _journal_lines(path, n, timeout=15):
    deadline = time.time() + timeout
    lines = []
    while time.time() < deadline:
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except OSError:
            lines = []
        if len(lines) >= n:
            break
        time.sleep(0.1)
    return lines


def _fields(line):
    return dict(kv.split("=", 1) for kv in line.split(" ")[1:])


def test_journal_has_one_line_per_attempt(server, sink_factory):
    good, bad = sink_factory(), sink_factory()
    good.respond([503, 200])
    bad.set_default(400)
    path = server.root + "/journal.log"
    piped = server.root + "/piped.log"
    server.start(FAST + 'ApiDestJournal "%s"\n' % path
                 + destination("good", good.url("/g")) + destination("bad", bad.url("/b"))
                 + rule("ok", {"source": ["s.ok"]}, [("t-good", "good")])
                 + rule("broken", {"source": ["s.bad"]}, [("t-bad", "bad")]))
    _, _, r1 = server.put_events([entry("s.ok", "D", {})])
    _, _, r2 = server.put_events([entry("s.bad", "D", {})])
    lines = _journal_lines(path, 3)
    assert len(lines) == 3, lines
    by_outcome = {_fields(l)["outcome"]: _fields(l) for l in lines}
    assert set(by_outcome) == {"retry", "delivered", "dead-letter"}
    assert by_outcome["retry"]["status"] == "503" and by_outcome["retry"]["attempt"] == "1"
    assert by_outcome["delivered"]["attempt"] == "2"
    assert by_outcome["delivered"]["event"] == r1["Entries"][0]["EventId"]
    assert by_outcome["dead-letter"]["error"] == "ERROR_FROM_TARGET"
    assert by_outcome["dead-letter"]["event"] == r2["Entries"][0]["EventId"]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ", lines[0])
    # the same through a piped logger, as httpd's own logs allow
    server.stop()
    server.start(FAST + "ApiDestJournal \"|/bin/sh -c 'cat >> %s'\"\n" % piped
                 + destination("good", good.url("/g"))
                 + rule("ok", {"source": ["s.ok"]}, [("t-good", "good")]))
    server.put_events([entry("s.ok", "D", {})])
    lines = _journal_lines(piped, 1)
    assert len(lines) == 1 and _fields(lines[0])["outcome"] == "delivered"


def test_admin_resources_do_not_depend_on_the_document_root(server):
    """The admin resource is the URI past its <Location>, whatever lies under
    DocumentRoot: a missing DocumentRoot (a fresh machine without the
    apache2 package's /var/www/html) moved httpd's path_info and made every
    admin resource a 404."""
    gone = os.path.join(server.root, "gone", "htdocs")
    os.makedirs(gone)
    server.start('DocumentRoot "%s"\n<Location /apidest/dlq>\n'
                 '    Require all granted\n</Location>\n' % gone)
    shutil.rmtree(os.path.dirname(gone))  # httpd checks it only when it reads the config
    try:
        for path in ("/apidest/status", "/apidest/metrics", "/apidest/dlq"):
            status, _, body = server.request("GET", path)
            assert status == 200, (path, body)
        status, _, body = server.request("GET", "/apidest/nothing-here")
        assert status == 404 and b"no such admin resource" in body
    finally:
        os.makedirs(gone)  # `httpd -k stop` reads the config again
