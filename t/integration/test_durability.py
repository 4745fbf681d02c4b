"""Nothing accepted is lost: a sink that is down, kill -9 of apidestd, kill -9
of the whole server, graceful restart. Delivery is at-least-once, so these
tests count distinct event ids that got a 2xx."""

import json
import os
import time

import pytest

from harness import (ApiDestServer, HttpdError, assert_put_ok, destination, entry, pid_alive,
                     rule, wait_until)

RETRY_CONF = """
ApiDestRetryBackoff 1 2
ApiDestMaintenanceInterval 1
"""
DELIVER = 25.0  # backoff cap is 2 s: every pending record is tried at least every ~3 s


def _conf(sink):
    return RETRY_CONF + destination("hooks", sink.url("/d")) + rule(
        "r1", {"source": ["com.example.durable"]}, [("t1", "hooks")])


def _put(server, n, tag):
    ids = []
    for i in range(n):
        status, hdrs, resp = server.put_events([entry("com.example.durable", "D",
                                                      {"tag": tag, "i": i})])
        ids += assert_put_ok(status, hdrs, resp, 1)
    return ids


def _ids_with(reqs, statuses=None):
    out = set()
    for r in reqs:
        if statuses is None or r["status"] in statuses:
            out.add(json.loads(r["body"])["id"])
    return out


def _wait_delivered(sink, ids, timeout=DELIVER):
    """Every id got a 2xx from the sink (at least once)."""
    want = set(ids)
    ok = sink.wait_until(lambda reqs: want <= _ids_with(reqs, {200}), timeout)
    got = _ids_with(sink.snapshot(), {200})
    assert ok, "not delivered within %ss: %s" % (timeout, sorted(want - got))
    return got


def _wait_attempted(sink, ids, timeout=15.0):
    """Every id was tried at least once (so it is stored and pending)."""
    want = set(ids)
    ok = sink.wait_until(lambda reqs: want <= _ids_with(reqs), timeout)
    assert ok, "not attempted within %ss: %s" % (timeout, sorted(want - _ids_with(sink.snapshot())))


def test_sink_down_at_first_then_up(server, sink_factory):
    """(e) the sink is down when events are accepted; once it comes up on the
    same port, every accepted event arrives."""
    sink = sink_factory(start=False)
    server.start(_conf(sink))
    ids = _put(server, 3, "down")
    status, hdrs, resp = server.put_events([entry("com.example.durable", "D", {"batch": i})
                                            for i in range(2)])
    ids += assert_put_ok(status, hdrs, resp, 2)
    time.sleep(2.5)  # a few connection-refused attempts
    assert sink.count() == 0
    sink.start()
    got = _wait_delivered(sink, ids)
    assert got == set(ids), "unknown ids delivered: %s" % sorted(got - set(ids))


def test_kill9_daemon_with_pending_records(server, sink):
    """(f) kill -9 of apidestd while records are pending (sink answers 503):
    the master restarts it (new pid) and every accepted event arrives once the
    sink answers 200."""
    sink.set_default(503)
    server.start(_conf(sink))
    ids = _put(server, 5, "kill9")
    _wait_attempted(sink, ids)
    old = server.kill9_daemon()
    new = server.wait_daemon_restarted(old, timeout=10)
    assert new != old
    sink.set_default(200)
    got = _wait_delivered(sink, ids)
    assert got == set(ids)
    # and ingest works with the new daemon
    more = _put(server, 1, "after")
    _wait_delivered(sink, more, timeout=10)


def test_kill9_whole_server_with_pending_records(server, sink):
    """kill -9 of the master, its children and apidestd with records pending;
    a fresh start delivers every accepted event."""
    sink.set_default(503)
    server.start(_conf(sink))
    ids = _put(server, 4, "killall")
    _wait_attempted(sink, ids)
    server.kill9_all()
    server.start()  # same config, same store, stale pid and socket files left behind
    sink.set_default(200)
    got = _wait_delivered(sink, ids)
    assert got == set(ids)


def test_graceful_restart_with_pending_records(server, sink):
    """(g) `httpd -k graceful` with records pending: apidestd is replaced,
    nothing is lost, everything is delivered after."""
    sink.set_default(503)
    server.start(_conf(sink))
    ids = _put(server, 5, "graceful")
    _wait_attempted(sink, ids)
    old = server.live_daemon_pid()
    new = server.graceful(timeout=15)
    assert new and new != old
    sink.set_default(200)
    more = _put(server, 2, "after-graceful")
    got = _wait_delivered(sink, ids + more)
    assert got == set(ids + more)


def test_a_restart_onto_another_store_warns_of_what_the_old_one_holds(server, sink):
    """Nothing moves records between stores: a graceful restart onto a new
    ApiDestStore left the old store's pending records undelivered, and the
    log said nothing. It now warns, naming both; pointing ApiDestStore back
    delivers them."""
    sink.set_default(503)
    server.start(_conf(sink))
    ids = _put(server, 3, "old-store")
    _wait_attempted(sink, ids)
    other = "dbm:gdbm:%s/other/apidest" % server.root
    server.write_conf(_conf(sink), store=other)
    server.graceful(timeout=15)
    assert wait_until(lambda: "ApiDestStore changed from %s to %s" % (server.store, other)
                      in server.log_text(), 10), server.log_tail()
    sink.set_default(200)
    server.write_conf(_conf(sink))
    server.graceful(timeout=15)
    assert _wait_delivered(sink, ids) == set(ids)


def test_a_second_httpd_on_the_same_store_is_refused_at_its_start(server, sink):
    """Two servers on one ApiDestStore: the second's apidestd waited 30 s
    for the store's lock, gave up, and left that server up answering 503 to
    every PutEvents. The second start now fails at once, on the console,
    naming the httpd that holds the store; the first keeps working."""
    server.start(_conf(sink))
    # apidestd takes the store's lock after its pid file: a stored event
    # shows it holds it
    assert_put_ok(*server.put_events([entry("com.example.durable", "D", {})]), 1)
    first_daemon = server.live_daemon_pid()
    other = ApiDestServer()
    try:
        t0 = time.monotonic()
        with pytest.raises(HttpdError) as refused:
            other.start(_conf(sink), store=server.store)
        assert time.monotonic() - t0 < 10
        assert ("ApiDestStore %s is in use by another httpd (master pid %d, its apidestd pid %d"
                % (server.store, server.master_pid, first_daemon)) in other.log_text()
        assert "rc 1" in str(refused.value)
    finally:
        other.stop()
        other.cleanup(keep=False)
    assert server.live_daemon_pid() == first_daemon
    _wait_delivered(sink, _put(server, 1, "first-server"), timeout=10)


@pytest.mark.parametrize("verb", ["start", "restart"])
def test_a_start_while_the_same_server_is_still_stopping_waits_for_its_store(server, sink, verb):
    """httpd removes its PidFile before its children and apidestd are gone:
    a start of the same server in that window (`-k restart` starts one too)
    found the store held by an httpd master of the same binary and was
    refused as if it were another server. It waits for the store as before,
    then works; the old master's exit leaves the new apidestd's pid file."""
    import signal
    from harness import descendants
    from ports import free_port
    server.start(_conf(sink))
    old_master, old_daemon = server.master_pid, server.live_daemon_pid()
    children = lambda: [p for p in descendants(old_master) if p != old_daemon]
    assert wait_until(children, 10), "no child process"  # the port listens before they are forked
    child = children()[0]
    os.kill(child, signal.SIGSTOP)  # graceful-stop waits for it
    try:
        server._httpd("-k", "graceful-stop")
        assert wait_until(lambda: not os.path.exists(server.pid_file), 10)
        server.port = free_port()  # the old one may still be bound
        server.start(_conf(sink), wait_daemon=False, verb=verb)
        assert "is in use by another httpd" not in server.log_text()
    finally:
        os.kill(child, signal.SIGCONT)
    assert wait_until(lambda: not pid_alive(old_master), 15)
    assert wait_until(lambda: server.live_daemon_pid() not in (None, old_daemon), 30)
    ids = _put(server, 1, "after-restart")
    _wait_delivered(sink, ids, timeout=15)
