"""Nothing lost, EventBridge's way: retries as EventBridge classifies them,
RetryAttempts and MaximumEventAge, the dead-letter queue with its
attributes, and the DLQ admin API (list, get, redrive, delete)."""

import base64
import email.utils
import json
import os
import signal
import threading
import time

import pytest

from harness import assert_put_ok, destination, entry, open_fds, unstartable_store, wait_until
from sink import Response

FAST = "ApiDestRetryBackoff 1 2\nApiDestMaintenanceInterval 1\n"


def _rule(name, pattern, targets):
    """targets: (id, destination, extra lines) triples."""
    body = "".join("    <ApiDestTarget %s>\n        Destination %s\n%s\n    </ApiDestTarget>\n"
                   % (t, d, extra) for t, d, extra in targets)
    return "\n<ApiDestRule %s>\n    EventPattern '%s'\n%s</ApiDestRule>\n" % (
        name, json.dumps(pattern), body)


def _conf(sink, target_extra="", target="t1"):
    return FAST + destination("hooks", sink.url("/d")) + _rule(
        "r1", {"source": ["com.example.dlq"]}, [(target, "hooks", target_extra)])


def _put(server, n=1, tag="x"):
    ids = []
    for i in range(n):
        status, hdrs, resp = server.put_events([entry("com.example.dlq", "D", {"tag": tag, "i": i})])
        ids += assert_put_ok(status, hdrs, resp, 1)
    return ids


def _admin(server, method, path):
    status, hdrs, data = server.request(method, "/apidest" + path)
    assert hdrs.get("content-type", "").startswith("application/json"), (status, data)
    return status, json.loads(data.decode("utf-8"))


def _dlq(server, query=""):
    status, body = _admin(server, "GET", "/dlq" + query)
    assert status == 200, body
    return body


def _wait_dlq(server, n, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        recs = _dlq(server)["Records"]
        if len(recs) >= n:
            return recs
        time.sleep(0.1)
    raise AssertionError("DLQ did not reach %d records: %s" % (n, _dlq(server)))


def _attempts(sink, event_id):
    return [r for r in sink.snapshot() if json.loads(r["body"])["id"] == event_id]


def test_500_500_200_delivered_on_third_attempt(server, sink):
    sink.respond([500, 500, 200])
    server.start(_conf(sink))
    [eid] = _put(server)
    assert sink.wait_for(3, timeout=15)
    time.sleep(1.5)
    tries = _attempts(sink, eid)
    assert [r["status"] for r in tries] == [500, 500, 200]
    assert len({r["body"] for r in tries}) == 1, "every attempt sends the same body"
    assert _dlq(server)["Records"] == []
    _, status = _admin(server, "GET", "/status")
    assert status["Daemon"]["Delivered"] == 1 and status["Daemon"]["Pending"] == 0


def test_400_one_attempt_then_dlq_with_attributes(server, sink):
    sink.set_default(400)
    server.start(_conf(sink))
    [eid] = _put(server)
    [rec] = _wait_dlq(server, 1)
    time.sleep(1.0)
    assert len(_attempts(sink, eid)) == 1, "a 400 is not retried"
    a = rec["Attributes"]
    assert rec["EventId"] == eid and rec["Rule"] == "r1" and rec["Target"] == "t1"
    assert rec["Destination"] == "hooks" and rec["LastStatus"] == 400
    assert a["RULE_ARN"] == "arn:aws:events:us-east-1:000000000000:rule/r1"
    assert a["TARGET_ARN"] == "arn:aws:events:us-east-1:000000000000:api-destination/hooks"
    assert a["ERROR_CODE"] == "ERROR_FROM_TARGET"
    assert "400" in a["ERROR_MESSAGE"]
    assert a["RETRY_ATTEMPTS"] == "0"
    assert "EXHAUSTED_RETRY_CONDITION" not in a, "a non-retryable failure exhausts nothing"
    assert json.loads(rec["Body"]) == json.loads(_attempts(sink, eid)[0]["body"])
    assert rec["FailedAt"] >= rec["FirstSeen"] > 0
    # get one by id
    status, one = _admin(server, "GET", "/dlq/" + rec["Id"])
    assert status == 200 and one == rec


def test_retry_attempts_2_always_503(server, sink):
    sink.set_default(503)
    server.start(_conf(sink, target_extra="RetryAttempts 2"))
    [eid] = _put(server)
    [rec] = _wait_dlq(server, 1)
    time.sleep(2.5)  # no further attempt may come
    assert [r["status"] for r in _attempts(sink, eid)] == [503, 503, 503]
    assert rec["Attributes"]["EXHAUSTED_RETRY_CONDITION"] == "MaximumRetryAttempts"
    assert rec["Attributes"]["RETRY_ATTEMPTS"] == "2"
    assert rec["LastStatus"] == 503


def test_maximum_event_age_with_a_fast_clock(server, sink, monkeypatch):
    # 20 clock seconds pass in one real second (0.75 s of slack under the
    # bound below); attempts keep failing with 503 well within the retry
    # budget, so age is what ends them.
    monkeypatch.setenv("APIDEST_TEST_CLOCK_RATE", "20")
    monkeypatch.setenv("APIDEST_TEST_CLOCK_BASE", str(int(time.time())))
    sink.set_default(503)
    server.start(_conf(sink, target_extra="MaximumEventAge 60"))
    t0 = time.time()
    [eid] = _put(server)
    [rec] = _wait_dlq(server, 1, timeout=15)
    assert time.time() - t0 < 10
    assert rec["Attributes"]["EXHAUSTED_RETRY_CONDITION"] == "MaximumEventAgeInSeconds"
    assert 58 <= rec["FailedAt"] - rec["FirstSeen"] <= 75
    assert 1 < len(_attempts(sink, eid)) < 186
    assert "clock runs 20 times faster" in server.log_text()


def test_retry_after_is_honoured(server, sink):
    sink.respond([Response(503, headers={"Retry-After": "2"}), 200])
    server.start(_conf(sink))
    [eid] = _put(server)
    assert sink.wait_for(2, timeout=15)
    first, second = _attempts(sink, eid)[:2]
    assert second["time"] - first["time"] >= 1.9, "Retry-After: 2 asks for two seconds"


@pytest.mark.parametrize("value", ["3600", "99999999999999999999", "date"])
def test_retry_after_is_capped_by_the_backoff_cap(server, sink, value):
    """A target cannot park an event for longer than ApiDestRetryBackoff's cap
    (2 s here), whether it asks in seconds, past what a long holds, or with
    an HTTP date an hour ahead."""
    if value == "date":
        value = email.utils.formatdate(time.time() + 3600, usegmt=True)
    sink.respond([Response(503, headers={"Retry-After": value}), 200])
    server.start(_conf(sink))
    [eid] = _put(server)
    assert sink.wait_for(2, timeout=15), "the retry did not come within the cap"
    first, second = _attempts(sink, eid)[:2]
    assert 1.9 <= second["time"] - first["time"] <= 6, "Retry-After %s, cap 2 s" % value


def test_a_target_retry_backoff_overrides_the_servers(server, sink):
    """RetryBackoff in a target sets its own cap (5 s here, against the
    server's 2 s): a Retry-After of an hour is retried at that cap."""
    sink.respond([Response(503, headers={"Retry-After": "3600"}), 200])
    server.start(_conf(sink, target_extra="        RetryBackoff 1 5"))
    [eid] = _put(server)
    assert sink.wait_for(2, timeout=20)
    first, second = _attempts(sink, eid)[:2]
    assert 4.8 <= second["time"] - first["time"] <= 9, "the target's cap is 5 s"


def test_retry_after_date_is_honoured(server, sink):
    server.start("ApiDestRetryBackoff 1 30\nApiDestMaintenanceInterval 1\n"
                 + destination("hooks", sink.url("/d"))
                 + _rule("r1", {"source": ["com.example.dlq"]}, [("t1", "hooks", "")]))
    when = email.utils.formatdate(time.time() + 4, usegmt=True)
    sink.respond([Response(503, headers={"Retry-After": when}), 200])
    [eid] = _put(server)
    assert sink.wait_for(2, timeout=20)
    first, second = _attempts(sink, eid)[:2]
    # the date has a resolution of one second, and part of it has passed
    assert second["time"] - first["time"] >= 2, "Retry-After: %s" % when


def test_negative_retry_after_stops_retrying(server, sink):
    sink.respond([Response(503, headers={"Retry-After": "-1"})])
    server.start(_conf(sink))
    [eid] = _put(server)
    [rec] = _wait_dlq(server, 1)
    time.sleep(2.5)
    assert len(_attempts(sink, eid)) == 1
    assert rec["LastStatus"] == 503


def test_redrive_after_recovery_delivers_and_empties_the_dlq(server, sink):
    sink.set_default(400)
    server.start(_conf(sink))
    ids = _put(server, 3, "redrive")
    recs = _wait_dlq(server, 3)
    sink.set_default(200)
    # paging: one at a time, in id order
    page1 = _dlq(server, "?limit=1")
    assert len(page1["Records"]) == 1 and "NextToken" in page1
    page2 = _dlq(server, "?limit=5&after=" + page1["NextToken"])
    assert [r["Id"] for r in page1["Records"] + page2["Records"]] == sorted(r["Id"] for r in recs)
    assert "NextToken" not in page2
    # filters
    assert _dlq(server, "?rule=nope")["Records"] == []
    assert len(_dlq(server, "?destination=hooks")["Records"]) == 3
    # redrive one by id, delete one, redrive the rest by filter
    status, out = _admin(server, "POST", "/dlq/%s/redrive" % recs[0]["Id"])
    assert status == 200 and out == {"Redriven": 1}
    status, out = _admin(server, "DELETE", "/dlq/" + recs[1]["Id"])
    assert status == 200
    status, out = _admin(server, "POST", "/dlq/redrive?rule=r1")
    assert status == 200 and out == {"Redriven": 1}
    want = {recs[0]["EventId"], recs[2]["EventId"]}
    assert sink.wait_until(lambda reqs: want <= {json.loads(r["body"])["id"] for r in reqs
                                                 if r["status"] == 200}, 15)
    assert _dlq(server)["Records"] == []
    deleted = recs[1]["EventId"]
    assert all(r["status"] == 400 for r in _attempts(sink, deleted))
    assert set(ids) == {r["EventId"] for r in recs}
    # unknown ids and bad parameters
    assert _admin(server, "GET", "/dlq/" + recs[1]["Id"])[0] == 404
    assert _admin(server, "GET", "/dlq/not-hex")[0] == 404
    assert _admin(server, "GET", "/dlq?limit=0")[0] == 400
    assert _admin(server, "GET", "/dlq?since=yesterday")[0] == 400


def test_dead_letter_off_drops_and_counts(server, sink):
    sink.set_default(400)
    server.start(_conf(sink, target_extra="DeadLetter off"))
    [eid] = _put(server)
    deadline = time.time() + 15
    while time.time() < deadline:
        _, st = _admin(server, "GET", "/status")
        if st["Daemon"].get("Dropped") == 1:
            break
        time.sleep(0.1)
    assert st["Daemon"]["Dropped"] == 1 and st["Daemon"]["DeadLettered"] == 0
    assert _dlq(server)["Records"] == []
    assert "dropped (DeadLetter off)" in server.log_text()


def test_target_removed_by_a_config_change_goes_to_the_dlq(server, sink):
    sink.set_default(503)
    server.start(_conf(sink))
    ids = _put(server, 2, "removed")
    assert sink.wait_for(2, timeout=10)
    # the new config has the rule, but its target t1 is gone
    server.write_conf(_conf(sink, target="t2"))
    server.graceful()
    recs = _wait_dlq(server, 2)
    assert {r["EventId"] for r in recs} == set(ids)
    for r in recs:
        assert r["Attributes"]["ERROR_CODE"] == "NO_RESOURCE"
        assert "no target t1" in r["Attributes"]["ERROR_MESSAGE"]


def test_a_backlog_moved_to_the_dlq_does_not_hold_up_ingest(server, sink):
    """Records that fail for good without a send (here: 3,000 whose target
    a restart removed) were all moved to the DLQ in one turn of apidestd,
    an fsync each with ApiDestStoreSync on, while a PutEvents waited for
    its acknowledgement behind them. The moves now go a bounded number a
    turn: the PutEvents is acknowledged while most are still to come."""
    conf = ("ApiDestStoreSync on\nApiDestRetryBackoff 1 2\n"
            + destination("hooks", sink.url("/d"), extra="    InvocationRateLimit 1\n"))
    keep = _rule("keep", {"source": ["com.example.keep"]}, [("t1", "hooks", "")])
    sink.set_default(503)
    server.start(conf + keep + _rule("gone", {"source": ["com.example.dlq"]},
                                     [("t1", "hooks", "")]))
    for b in range(300):
        status, hdrs, resp = server.put_events(
            [entry("com.example.dlq", "D", {"b": b, "i": i}) for i in range(10)])
        assert_put_ok(status, hdrs, resp, 10)
    server.stop()
    server.start(conf + keep)
    status, hdrs, resp = server.put_events([entry("com.example.keep", "D", {"k": 1})])
    assert_put_ok(status, hdrs, resp, 1)
    _, st = _admin(server, "GET", "/status")
    assert st["Daemon"]["DlqCount"] < 3000, st["Daemon"]
    assert _wait_until_dlq_count(server, 3000, 60), _admin(server, "GET", "/status")[1]["Daemon"]


def _wait_until_dlq_count(server, n, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if _admin(server, "GET", "/status")[1]["Daemon"]["DlqCount"] >= n:
            return True
        time.sleep(0.2)
    return False


def test_admin_answers_while_the_daemon_is_down(server, sink):
    server.start(_conf(sink), store=unstartable_store(server), wait_daemon=False)
    status, body = _admin(server, "GET", "/status")
    assert status == 200 and body["Daemon"]["State"] == "down"
    status, body = _admin(server, "GET", "/dlq")
    assert status == 503 and body["error"] == "DaemonUnavailable"


def test_restart_counts_the_dlq_and_the_queue_in_one_scan(server, sink):
    """apidestd loads the store in a single scan that sorts queued records,
    dead letters and schedule state by key: after a kill -9 the status has
    the same DLQ count and pending records as before, and both kinds still
    work (the pending ones are delivered, the dead letters listed)."""
    sink.set_default(400)
    server.start(_conf(sink))
    dead = _put(server, 3, tag="dead")
    _wait_dlq(server, 3)
    sink.set_default(503)
    pending = _put(server, 2, tag="pending")

    def counts():
        daemon = _admin(server, "GET", "/status")[1]["Daemon"]
        return daemon["DlqCount"], daemon["Pending"]
    # published to shared memory each tick
    assert wait_until(lambda: counts() == (3, 2), 5), counts()
    pid = server.live_daemon_pid()
    server.kill9_daemon()
    assert server.wait_daemon_restarted(pid)
    # the counters live on in shared memory: read them once the new
    # apidestd has loaded the store (its second "loaded" line)
    deadline = time.time() + 15
    while time.time() < deadline and server.log_text().count("AD00108") < 2:
        time.sleep(0.1)
    loaded = [line for line in server.log_text().splitlines() if "AD00108" in line]
    assert len(loaded) == 2, loaded
    assert "2 pending record(s), 3 in the DLQ" in loaded[1], loaded[1]
    assert wait_until(lambda: counts() == (3, 2), 5), counts()
    assert {r["EventId"] for r in _dlq(server)["Records"]} == set(dead)
    sink.set_default(200)
    assert sink.wait_until(
        lambda reqs: set(pending) <= {json.loads(r["body"])["id"] for r in reqs
                                      if r["status"] == 200}, 30)


def test_admin_names_that_are_not_utf8_are_not_found(server, sink):
    """Such a name can name no record or connection; it once crashed the
    httpd child that built the request to apidestd."""
    server.start(_conf(sink))
    for method, path in (("GET", "/dlq/%ff"), ("DELETE", "/dlq/%ff"),
                         ("POST", "/dlq/%ff/redrive"), ("POST", "/connections/%ff/authorize")):
        status, body = _admin(server, method, path)
        assert status == 404, (method, path, body)
    assert "Segmentation" not in server.log_text()


def test_unusable_dlq_filters_are_refused_not_dropped(server, sink):
    """A filter given but unusable (not UTF-8, a time past any date, or for
    a redrive empty) is a 400: dropped, it made a filtered redrive redrive
    everything."""
    sink.set_default(400)
    server.start(_conf(sink))
    _put(server, 2, "filters")
    _wait_dlq(server, 2)
    sink.set_default(200)
    for query in ("?rule=%ff", "?rule=", "?destination=", "?since=9223372036854775807",
                  "?since="):
        if "=%" in query or "=9" in query:
            assert _admin(server, "GET", "/dlq" + query)[0] == 400, query
        else:  # listing reads an empty value as absent
            assert len(_dlq(server, query)["Records"]) == 2, query
        status, out = _admin(server, "POST", "/dlq/redrive" + query)
        assert status == 400 and out["error"] == "InvalidParameter", (query, out)
    assert len(_dlq(server, "?after=")["Records"]) == 2
    time.sleep(1.5)
    assert len(_dlq(server)["Records"]) == 2
    assert not [r for r in sink.snapshot() if r["status"] == 200], "something was redriven"


def test_an_empty_id_never_widens_a_redrive(server, sink):
    """httpd merges "//": "/dlq//redrive" (a script's "dlq/$ID/redrive" with
    $ID empty) reached the handler as the unfiltered bulk redrive and
    redrove every record. A wrong method is answered with Allow."""
    sink.set_default(400)
    server.start(_conf(sink))
    _put(server, 2, "empty-id")
    _wait_dlq(server, 2)
    sink.set_default(200)
    for method, path in (("POST", "/dlq//redrive"), ("GET", "//dlq"), ("DELETE", "/dlq//")):
        status, out = _admin(server, method, path)
        assert status == 404 and out["error"] == "NotFound", (method, path, out)
    time.sleep(1.5)
    assert len(_dlq(server)["Records"]) == 2
    assert not [r for r in sink.snapshot() if r["status"] == 200], "something was redriven"
    # a record's redrive without -X POST was told the record did not exist
    for method, path, allow in (("PUT", "/status", "GET, HEAD"), ("GET", "/dlq/redrive", "POST"),
                                ("POST", "/dlq/00", "GET, HEAD, DELETE"),
                                ("GET", "/dlq/00/redrive", "POST"),
                                ("DELETE", "/dlq/00/redrive", "POST")):
        status, hdrs, data = server.request(method, "/apidest" + path)
        assert status == 405 and hdrs.get("allow") == allow, (method, path, hdrs, data)


def test_a_dead_letter_whose_body_is_not_utf8(server, sink, tmp_path):
    """A transformer's literal bytes need not be UTF-8. The DLQ shows such a
    body with U+FFFD and whole in BodyBase64; reading it once crashed
    apidestd, and listing skipped it."""
    tmpl = tmp_path / "latin1.tmpl"
    tmpl.write_bytes(b'"caf\xe9 <aws.events.rule-name>"')
    os.chmod(str(tmp_path), 0o755)
    os.chmod(str(tmpl), 0o644)
    sink.set_default(400)
    server.start(_conf(sink, target_extra="        InputTransformerFile %s" % tmpl))
    _put(server, 1, "latin1")
    [rec] = _wait_dlq(server, 1)
    assert rec["Body"] == '"caf\ufffd r1"'
    assert base64.b64decode(rec["BodyBase64"]) == b'"caf\xe9 r1"'
    status, one = _admin(server, "GET", "/dlq/" + rec["Id"])
    assert status == 200 and one == rec
    assert server.log_text().count("AD10014") == 1, "apidestd restarted"


def test_a_page_of_large_dead_letters_ends_at_its_byte_budget(server, sink):
    """A page holds at most 16 MiB of bodies, whatever its limit: 100 records
    of 1 MB each once made an answer too large to reach the child, and
    listing the DLQ failed as DaemonUnavailable."""
    sink.set_default(400)
    server.start("ApiDestMaxEntrySize 1048576\nApiDestMaxRequestSize 2097152\n" + _conf(sink))
    pad = "p" * 1000000
    for i in range(20):
        status, hdrs, resp = server.put_events([entry("com.example.dlq", "Big", {"i": i, "pad": pad})])
        assert_put_ok(status, hdrs, resp, 1)
    deadline = time.time() + 60
    while time.time() < deadline and _admin(server, "GET", "/status")[1]["Daemon"]["DlqCount"] < 20:
        time.sleep(0.5)
    first = _dlq(server)
    assert 10 <= len(first["Records"]) < 20 and "NextToken" in first, len(first["Records"])
    seen = [r["Id"] for r in first["Records"]]
    token = first["NextToken"]
    while token:
        page = _dlq(server, "?after=" + token)
        seen += [r["Id"] for r in page["Records"]]
        token = page.get("NextToken")
    assert len(seen) == 20 and seen == sorted(set(seen))


def test_store_sync_covers_the_move_to_the_dlq(server, sink, tmp_path):
    """With ApiDestStoreSync on, the DLQ record is on disk before the queued
    one is deleted: unsynced, a power loss could keep the delete alone and
    lose the event. Counted on apidestd's own fsync calls (strace): one for
    the group commit of the event, one for its move to the DLQ."""
    import shutil
    import subprocess
    assert shutil.which("strace"), "strace is missing (conf/debian-packages lists it)"
    sink.set_default(400)  # not retried: straight to the DLQ
    server.start("ApiDestStoreSync on\n" + _conf(sink))
    _put(server, tag="warm")
    _wait_dlq(server, 1)
    out = str(tmp_path / "strace.out")
    tracer = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=fsync,fdatasync", "-o", out,
                               "-p", str(server.daemon_pid())],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        pid = server.daemon_pid()
        tasks = lambda: os.listdir("/proc/%d/task" % pid)

        def traced(task):
            try:
                with open("/proc/%d/task/%s/status" % (pid, task)) as f:
                    return "TracerPid:\t%d\n" % tracer.pid in f.read()
            except FileNotFoundError:
                return True  # the thread is gone

        assert wait_until(lambda: all(traced(t) for t in tasks()), 15), "strace did not attach"
        _put(server, tag="traced")
        _wait_dlq(server, 2)
        time.sleep(0.5)
    finally:
        tracer.terminate()
        tracer.wait(timeout=10)
    with open(out) as f:
        syncs = [line for line in f if "fsync(" in line or "fdatasync(" in line]
    assert len(syncs) == 2, syncs


def test_parameters_a_dlq_resource_does_not_take_are_refused(server, sink):
    """A bulk redrive read only rule, destination and since: ?id=, ?limit=,
    ?after= or a typo (?rul=) redrove the whole DLQ. A DLQ resource that
    changes state now refuses a parameter it does not take; a listing or a
    read changes nothing and reads past one (a cache-buster)."""
    sink.set_default(400)
    server.start(_conf(sink))
    _put(server, 2, "params")
    recs = _wait_dlq(server, 2)
    sink.set_default(200)
    rid = recs[0]["Id"]
    for method, path in (("POST", "/dlq/redrive?id=" + rid), ("POST", "/dlq/redrive?limit=1"),
                         ("POST", "/dlq/redrive?after=" + rid), ("POST", "/dlq/redrive?rul=r1"),
                         ("DELETE", "/dlq/%s?force" % rid),
                         ("POST", "/dlq/%s/redrive?rule=r1" % rid)):
        status, out = _admin(server, method, path)
        assert status == 400 and out["error"] == "InvalidParameter", (method, path, out)
    _, out = _admin(server, "POST", "/dlq/redrive?rul=r1")
    assert "unknown parameter 'rul'" in out["message"], out
    time.sleep(1.5)
    assert len(_dlq(server)["Records"]) == 2
    assert not [r for r in sink.snapshot() if r["status"] == 200], "something was redriven"
    # reads take what they know, in any case, and read past the rest
    assert len(_dlq(server, "?Rule=r1&destination=hooks&since=0&Limit=1&_=123")["Records"]) == 1
    assert _admin(server, "GET", "/dlq/%s?_=1" % rid)[0] == 200
    status, out = _admin(server, "POST", "/dlq/redrive?Rule=nope")
    assert status == 200 and out == {"Redriven": 0}, out
    status, out = _admin(server, "POST", "/dlq/redrive?rule=r1&destination=hooks&since=0")
    assert status == 200 and out == {"Redriven": 2}, out


def test_a_state_changing_admin_request_from_another_site_is_refused(server, sink):
    """A page on another site, in a browser on a host the admin location
    admits, could redrive or delete: a POST without a body is a "simple"
    cross-origin request, sent without a preflight. Browsers mark such
    requests Sec-Fetch-Site: cross-site (or same-site); their own pages'
    requests say same-origin, typed URLs none, and curl sends nothing."""
    sink.set_default(400)
    server.start(_conf(sink))
    _put(server, 1, "origin")
    [rec] = _wait_dlq(server, 1)
    sink.set_default(200)
    for method, path in (("POST", "/dlq/redrive"), ("POST", "/dlq/%s/redrive" % rec["Id"]),
                         ("DELETE", "/dlq/" + rec["Id"]), ("POST", "/connections/c/authorize")):
        for site in ("cross-site", "same-site", "Cross-Site"):
            status, hdrs, data = server.request(method, "/apidest" + path,
                                                headers={"Sec-Fetch-Site": site,
                                                         "Origin": "http://evil.example"})
            assert status == 403 and json.loads(data)["error"] == "Forbidden", (path, site, data)
    # reading is not refused: the browser keeps the answer from the page
    status, _, _ = server.request("GET", "/apidest/dlq", headers={"Sec-Fetch-Site": "cross-site"})
    assert status == 200
    assert len(_dlq(server)["Records"]) == 1
    # the admin's own pages (behind a proxy that rewrites Host, too) pass
    status, hdrs, data = server.request("POST", "/apidest/dlq/redrive",
                                        headers={"Sec-Fetch-Site": "same-origin",
                                                 "Origin": "https://admin.example"})
    assert status == 200 and json.loads(data) == {"Redriven": 1}, data


def _rss_anon_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise AssertionError("no RssAnon for pid %d" % pid)


def _list_side_by_side(server, n, limit):
    errors = []

    def one():
        try:
            assert len(_dlq(server, "?limit=%d" % limit)["Records"]) == limit
        except Exception as ex:  # reported below, in the test's thread
            errors.append(ex)
    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and not any(t.is_alive() for t in threads), errors


def test_childrens_connections_keep_one_bounded_store_of_freed_memory(server, sink):
    """A child keeps a connection to apidestd per busy thread, and each
    connection's allocator kept every block its largest message had needed
    for as long as the connection lived: a page of 1,000 dead letters needs
    megabytes, so listings spread over four connections held four pages'
    worth (12 MB) for good, and with a cap of 256 KiB each a busy server's
    hundreds of connections still held up to hundreds of times that. The
    connections now share one allocator and one bound."""
    mpm = ("ThreadsPerChild 64\nMaxRequestWorkers 256\nMinSpareThreads 64\n"
           "MaxSpareThreads 256\n")
    sink.set_default(400)
    server.start(mpm + FAST + destination("hooks", sink.url("/d"))
                 + _rule("r1", {"source": ["com.example.dlq"]}, [("t1", "hooks", "")]))
    for b in range(100):
        status, hdrs, resp = server.put_events(
            [entry("com.example.dlq", "D", {"b": b, "i": i, "pad": "p" * 300})
             for i in range(10)])
        assert_put_ok(status, hdrs, resp, 10)
    assert _wait_until_dlq_count(server, 1000, 60)
    pid = server.daemon_pid()
    _list_side_by_side(server, 1, 300)
    before, fds_before = _rss_anon_kb(pid), open_fds(pid)
    for _ in range(2):
        _list_side_by_side(server, 96, 300)
    more = open_fds(pid) - fds_before
    assert more >= 32, "only %d more connections: the test shows nothing" % more
    grown = _rss_anon_kb(pid) - before
    assert grown < 16 * 1024, "apidestd kept %d kB more after listing over %d more " \
        "connections" % (grown, more)


def _fill_dlq_by_removing_a_rule(server, sink, n):
    """n dead letters of rule "gone", fast: its target is removed by a
    restart before any delivery. Returns the config with the rule back.
    Records of 2 KB and ApiDestStoreSync on make a redrive of them last
    seconds, not a fraction of one."""
    conf = ("ApiDestStoreSync on\n" + FAST
            + destination("hooks", sink.url("/d"), extra="    InvocationRateLimit 1\n"))
    keep = _rule("keep", {"source": ["com.example.keep"]}, [("t1", "hooks", "")])
    gone = _rule("gone", {"source": ["com.example.dlq"]}, [("t1", "hooks", "")])
    sink.set_default(503)
    server.start(conf + keep + gone)
    for b in range(n // 10):
        status, hdrs, resp = server.put_events(
            [entry("com.example.dlq", "D", {"b": b, "i": i, "pad": "p" * 2000})
             for i in range(10)])
        assert_put_ok(status, hdrs, resp, 10)
    server.stop()
    server.start(conf + keep)
    assert _wait_until_dlq_count(server, n, 120), _admin(server, "GET", "/status")[1]["Daemon"]
    server.stop()
    return conf + keep + gone


def _redrive_in_background(server):
    result = {}

    def redrive():
        result["reply"] = server.request("POST", "/apidest/dlq/redrive", timeout=300)

    t = threading.Thread(target=redrive)
    t.start()
    return t, result


def _count_while_running(server, t, n):
    deadline = time.time() + 120
    while time.time() < deadline and t.is_alive():
        count = _admin(server, "GET", "/status")[1]["Daemon"]["DlqCount"]
        if 0 < count < n:
            return count
        time.sleep(0.02)  # the redrive takes ~0.6 s; no need to load the CPU it runs on
    return None


def test_a_bulk_redrive_goes_in_steps_between_ingests(server, sink):
    """A bulk redrive of 20,000 dead letters ran in one turn of apidestd:
    every PutEvents waited behind it, and the status showed the DLQ full
    until it was all over. It now goes a step at a time between the core's
    other work: the count is seen falling, and a PutEvents is acknowledged
    while the redrive is still under way."""
    n = 20000
    server.start(_fill_dlq_by_removing_a_rule(server, sink, n))
    t, result = _redrive_in_background(server)
    try:
        seen = _count_while_running(server, t, n)
        assert seen is not None, "no count between %d and 0 while the redrive ran" % n
        status, hdrs, resp = server.put_events([entry("com.example.keep", "D", {"k": 1})])
        assert_put_ok(status, hdrs, resp, 1)
        after = _admin(server, "GET", "/status")[1]["Daemon"]["DlqCount"]
        assert after > 0, "the PutEvents waited for the whole redrive"
    finally:
        t.join(300)
    status, _, data = result["reply"]
    assert status == 200 and json.loads(data) == {"Redriven": n}, (status, data)
    assert _admin(server, "GET", "/status")[1]["Daemon"]["DlqCount"] == 0


def test_a_bulk_redrive_cut_short_by_a_restart_loses_nothing(server, sink):
    """apidestd stops in the middle of a bulk redrive (a graceful restart):
    the request is answered 503 with how many were redriven, and every
    record is either back in the queue or still in the DLQ."""
    n = 20000
    server.start(_fill_dlq_by_removing_a_rule(server, sink, n))
    t, result = _redrive_in_background(server)
    try:
        assert _count_while_running(server, t, n) is not None
        old = server.live_daemon_pid()
        # the signal itself: `httpd -k graceful` reads the configuration
        # first, and on a loaded machine the redrive (~0.6 s) ended before
        os.kill(server.master_pid, signal.SIGUSR1)
        assert wait_until(lambda: server.live_daemon_pid(other_than=old), 15)
    finally:
        t.join(300)
    status, _, data = result["reply"]
    body = json.loads(data)
    assert status == 503 and body["error"] == "ShuttingDown", (status, body)
    assert 0 < body["Redriven"] < n, body

    def counts():
        daemon = _admin(server, "GET", "/status")[1]["Daemon"]
        return daemon["DlqCount"], daemon["Pending"]
    assert wait_until(lambda: counts() == (n - body["Redriven"], body["Redriven"]), 30), counts()
