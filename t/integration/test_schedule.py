"""Scheduled rules: rate() and cron() fire from apidestd's maintenance tick
with the event EventBridge sends, through the rule's targets; restarts
(kill -9 included) neither skip nor double a minute. Most tests run the
clock faster (APIDEST_TEST_CLOCK_RATE); one runs in real time."""

import json
import time

from harness import assert_config_error, destination, rule

FAST = "ApiDestRetryBackoff 1 2\nApiDestMaintenanceInterval 1\n"
KEYS = ["version", "id", "detail-type", "source", "account", "time", "region", "resources",
        "detail"]


def _sched_rule(name, expr, target="t1", dest="hooks", extra=""):
    return """
<ApiDestRule %s>
    ScheduleExpression "%s"
%s    <ApiDestTarget %s>
        Destination %s
    </ApiDestTarget>
</ApiDestRule>
""" % (name, expr, extra, target, dest)


def _fast_clock(monkeypatch, rate):
    base = int(time.time())
    monkeypatch.setenv("APIDEST_TEST_CLOCK_RATE", str(rate))
    monkeypatch.setenv("APIDEST_TEST_CLOCK_BASE", str(base))


def _events(sink):
    """Delivered events, one per event id (delivery is at-least-once: a kill -9
    between the sink's 200 and the delete sends the same event again)."""
    out, seen = [], set()
    for r in sink.snapshot():
        if r["status"] == 200:
            ev = json.loads(r["body"], object_pairs_hook=lambda kv: kv)
            if dict(ev)["id"] not in seen:
                seen.add(dict(ev)["id"])
                out.append(ev)
    return out


def _times(sink):
    return [dict(e)["time"] for e in _events(sink)]


def _epoch(t):
    return int(time.mktime(time.strptime(t, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone)


def _check_envelope(ev, rule_name):
    d = dict(ev)
    assert [k for k, _ in ev] == KEYS
    assert d["version"] == "0" and d["source"] == "aws.events"
    assert d["detail-type"] == "Scheduled Event"
    assert d["account"] == "000000000000" and d["region"] == "us-east-1"
    assert d["resources"] == ["arn:aws:events:us-east-1:000000000000:rule/" + rule_name]
    assert d["detail"] == [] or d["detail"] == {}, d["detail"]  # {} parsed with pairs hook
    assert d["time"].endswith(":00Z"), "a schedule fires on the minute: " + d["time"]
    assert len(d["id"]) == 36


def test_rate_fires_every_minute_across_kill9_and_graceful(server, sink, monkeypatch):
    _fast_clock(monkeypatch, 10)  # one clock minute = 6 s
    server.start(FAST + destination("hooks", sink.url("/s")) + _sched_rule("every-minute",
                                                                           "rate(1 minute)"))
    assert sink.wait_until(lambda reqs: len(_events(sink)) >= 1, 15)
    old = server.daemon_pid()
    server.kill9_daemon()
    assert server.wait_daemon_restarted(old)
    assert sink.wait_until(lambda reqs: len(_events(sink)) >= 2, 15)
    server.graceful()
    assert sink.wait_until(lambda reqs: len(_events(sink)) >= 4, 25)
    evs = _events(sink)
    for ev in evs:
        _check_envelope(ev, "every-minute")
    times = [_epoch(t) for t in _times(sink)]
    assert len(set(times)) == len(times), "a minute fired twice: %s" % _times(sink)
    assert all(b - a == 60 for a, b in zip(sorted(times), sorted(times)[1:])), \
        "a minute was skipped: %s" % _times(sink)


def test_rate_longer_than_the_time_between_restarts_still_fires(server, sink, monkeypatch):
    """The start of a rate() is stored when the rule is first seen: a daemon
    restarted more often than the rate's period (a daily logrotate's graceful
    restart against rate(1 day)) must not start the period again each time."""
    _fast_clock(monkeypatch, 60)  # one clock minute = 1 s
    server.start(FAST + destination("hooks", sink.url("/s"))
                 + _sched_rule("every-five", "rate(5 minutes)"))
    t0 = time.time()
    while time.time() - t0 < 16:  # 16 clock minutes, a kill -9 every ~3
        time.sleep(3)
        old = server.daemon_pid()
        server.kill9_daemon()
        assert server.wait_daemon_restarted(old)
    assert sink.wait_until(lambda reqs: len(_events(sink)) >= 2, 5), \
        "rate(5 minutes) fired %d time(s) in 16 clock minutes" % len(_events(sink))
    times = sorted(_epoch(t) for t in _times(sink))
    assert all(b - a == 300 for a, b in zip(times, times[1:])), _times(sink)


def test_months_of_downtime_fire_once_for_the_latest_minute(server, sink):
    """After downtime a schedule fires once, for the latest minute it missed.
    The walk from the last fire to it stopped after 100,000 steps: after 100
    days of a minutely schedule it fired for a minute 30 days old, then
    again for the latest on the next tick."""
    import dbm.gnu
    import os

    conf = FAST + destination("hooks", sink.url("/s")) + _sched_rule("minutely", "rate(1 minute)")
    server.start(conf)
    server.wait_first_tick()  # it stores the schedule's start
    server.stop()
    path = os.path.join(server.store_dir, "apidest")
    then = (int(time.time()) - 100 * 86400) // 60 * 60
    db = dbm.gnu.open(path, "w")
    assert b"s/minutely" in db.keys(), db.keys()
    db[b"s/minutely"] = b"%d %d %d 0" % (then, then, then)
    db.close()
    start = time.time()
    server.start(conf)
    assert sink.wait_until(lambda reqs: len(_events(sink)) >= 1, 10)
    time.sleep(3)
    times = [_epoch(t) for t in _times(sink)]
    assert all(t >= start - 120 for t in times), "fired for a stale minute: %s" % _times(sink)
    assert len(times) <= 2, _times(sink)  # a second only if a minute turned meanwhile
    # the state written above was read, not dropped as unreadable for a
    # fresh start (which would pass the checks above too): its anchor stays
    server.stop()
    db = dbm.gnu.open(path, "r")
    state = db[b"s/minutely"].split()
    db.close()
    assert int(state[0]) == then and int(state[1]) >= start - 120, state


def test_a_clock_set_back_does_not_stop_schedules(server, sink, monkeypatch):
    """A last fire ahead of the clock (the clock set back after it) stopped
    the schedule until the clock had caught up with it. It now fires from
    the clock's time on, and says so."""
    import dbm.gnu
    import os

    _fast_clock(monkeypatch, 60)  # one clock minute = 1 s
    conf = FAST + destination("hooks", sink.url("/s")) + _sched_rule("minutely", "rate(1 minute)")
    server.start(conf)
    server.wait_first_tick()  # it stores the schedule's start
    server.stop()
    path = os.path.join(server.store_dir, "apidest")
    ahead = (int(time.time()) + 24 * 3600) // 60 * 60  # hours ahead even of the fast clock
    db = dbm.gnu.open(path, "w")
    anchor = int(db[b"s/minutely"].split()[0])
    db[b"s/minutely"] = b"%d %d %d 0" % (anchor, ahead, ahead)
    db.close()
    sink.reset()
    server.start(conf)
    assert sink.wait_until(lambda reqs: len(_events(sink)) >= 1, 10), "no fire after the clock"
    assert "ahead of the clock (set back?)" in server.log_text()
    assert all(_epoch(t) < ahead for t in _times(sink)), _times(sink)


def test_cron_every_two_minutes(server, sink, monkeypatch):
    _fast_clock(monkeypatch, 60)  # one clock minute = 1 s
    server.start(FAST + destination("hooks", sink.url("/s"))
                 + _sched_rule("even", "cron(0/2 * * * ? *)"))
    assert sink.wait_until(lambda reqs: len(_events(sink)) >= 3, 20)
    times = [_epoch(t) for t in _times(sink)]
    assert all(t % 120 == 0 for t in times), _times(sink)
    assert all(b - a == 120 for a, b in zip(times, times[1:])), _times(sink)
    # status shows the next fire, after the last one
    status, _, data = server.request("GET", "/apidest/status")
    r = [x for x in json.loads(data)["Rules"] if x["Name"] == "even"][0]
    assert r["ScheduleExpression"] == "cron(0/2 * * * ? *)"
    assert _epoch(r["NextFire"]) - _epoch(r["LastFire"]) == 120
    status, _, data = server.request("GET", "/server-status?auto")
    assert b"ApiDestRule.even.NextFire: " in data


def test_scheduled_event_is_retried_like_any_target(server, sink, monkeypatch):
    _fast_clock(monkeypatch, 60)
    sink.respond([503, 200])
    server.start(FAST + destination("hooks", sink.url("/s")) + _sched_rule("once", "rate(1 minute)"))
    assert sink.wait_for(2, 15)
    first, second = sink.snapshot()[:2]
    assert (first["status"], second["status"]) == (503, 200)
    assert first["body"] == second["body"]


def test_disabled_schedule_does_not_fire(server, sink, monkeypatch):
    _fast_clock(monkeypatch, 60)
    server.start(FAST + destination("hooks", sink.url("/s"))
                 + _sched_rule("off", "rate(1 minute)", extra="    State DISABLED\n"))
    time.sleep(4)
    assert sink.count() == 0


def test_state_of_a_removed_schedule_leaves_the_store(server, sink):
    """A store outlives its configs: the state of a scheduled rule that is
    gone (removed, or now without a schedule) is deleted at the next start;
    a disabled rule keeps its own, as at EventBridge."""
    import dbm.gnu
    import os

    dest = FAST + destination("hooks", sink.url("/s"))
    server.start(dest + _sched_rule("kept", "rate(1 minute)") + _sched_rule("gone", "rate(5 minutes)")
                 + _sched_rule("paused", "rate(1 minute)")
                 + _sched_rule("plain", "cron(0 12 * * ? *)"))
    server.wait_first_tick()  # it stores each schedule's start
    server.stop()
    path = os.path.join(server.store_dir, "apidest")
    db = dbm.gnu.open(path, "r")
    before = {k: db[k] for k in db.keys() if k.startswith(b"s/")}
    db.close()
    assert set(before) == {b"s/kept", b"s/gone", b"s/paused", b"s/plain"}, before
    server.start(dest + _sched_rule("kept", "rate(1 minute)")
                 + _sched_rule("paused", "rate(1 minute)", extra="    State DISABLED\n")
                 + rule("plain", {"source": ["x"]}, [("t1", "hooks")]))
    server.wait_first_tick()  # the load, which drops the others' state, is over
    server.stop()
    db = dbm.gnu.open(path, "r")
    after = {k: db[k] for k in db.keys() if k.startswith(b"s/")}
    db.close()
    assert set(after) == {b"s/kept", b"s/paused"}, after
    assert after[b"s/paused"] == before[b"s/paused"]
    assert after[b"s/kept"].split()[0] == before[b"s/kept"].split()[0]  # same anchor


def test_real_time_rate_one_minute(server, sink):
    server.start(FAST + destination("hooks", sink.url("/s")) + _sched_rule("real", "rate(1 minute)"))
    assert sink.wait_until(lambda reqs: len(_events(sink)) >= 1, 75), "no fire within 75 s"
    arrived = sink.snapshot()[0]["time"]
    ev = _events(sink)[0]
    _check_envelope(ev, "real")
    fired = _epoch(dict(ev)["time"])
    assert 0 <= arrived - fired < 5, "fired %.1f s after its minute" % (arrived - fired)


def test_bad_schedules_fail_configtest(server, sink):
    hooks = destination("hooks", sink.url("/s"))
    for expr in ("rate(1 minutes)", "rate(10 seconds)", "cron(0 1 * * * *)", "cron(71 8 1 * ? *)",
                 "cron(INVALID)"):
        rc, out, path = server.configtest(hooks + _sched_rule("bad", expr))
        assert rc != 0, expr
        assert "Parameter ScheduleExpression is not valid." in out, out
        line = server.conf_line('ScheduleExpression "%s"' % expr, path=path)
        assert "%s:%d" % (path, line) in out, out
    rc, out, _ = server.configtest(hooks + _sched_rule("bus", "rate(5 minutes)",
                                                    extra="    EventBus custom\n"))
    assert rc != 0 and "ScheduleExpression is supported only on the default event bus." in out
    rc, out, _ = server.configtest(hooks + """
<ApiDestRule empty>
    <ApiDestTarget t>
        Destination hooks
    </ApiDestTarget>
</ApiDestRule>
""")
    assert rc != 0 and "needs an EventPattern" in out
    rc, out, _ = server.configtest(hooks + _sched_rule("both", "rate(5 minutes)",
                                                    extra="    EventPattern '{\"source\":[\"x\"]}'\n"))
    assert rc == 0, out
