"""The store under faults: a full disk refuses new events instead of taking
what it cannot keep (and never damages the DBM file), and a torn record is
detected at start, set aside and reported while the rest loads."""

import json
import os
import re
import subprocess
import time

from harness import destination, entry, rule, wait_until

CONF = "ApiDestRetryBackoff 1 2\nApiDestMaintenanceInterval 1\n"
SOURCE = "com.example.store"


def _conf(sink, extra=""):
    return CONF + extra + destination("hooks", sink.url("/d")) + rule(
        "r1", {"source": [SOURCE]}, [("t1", "hooks")])


def _put_big(server, i):
    status, _, resp = server.put_events([entry(SOURCE, "Big", {"i": i, "pad": "a" * 6000})])
    assert status == 200, (status, resp)
    e = resp["Entries"][0]
    return e.get("EventId"), e.get("ErrorCode")


def _fill_until_refused(server):
    """Big events until the 1 MB disk refuses one: the accepted EventIds."""
    accepted = []
    for i in range(300):
        eid, _ = _put_big(server, i)
        if not eid:
            break
        accepted.append(eid)
    assert 80 < len(accepted) < 300, len(accepted)
    return accepted


def _delivered(sink):
    return {json.loads(r["body"])["id"] for r in sink.snapshot() if r["status"] == 200}


def test_full_disk_refuses_then_recovers(server, sink):
    mnt = os.path.join(server.root, "small")
    os.makedirs(mnt)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0777", "tmpfs", mnt], check=True)
    try:
        sink.set_default(503)
        server.start(_conf(sink, "ApiDestStoreMinFree 256K\n"),
                     store="dbm:gdbm:%s/store/apidest" % mnt)
        accepted, refused = [], 0
        for i in range(300):
            eid, code = _put_big(server, i)
            if eid:
                accepted.append(eid)
            else:
                assert code == "InternalFailure"
                refused += 1
                if refused >= 5:
                    break
        assert refused >= 5, "the disk never filled up"
        assert len(accepted) > 10
        log = server.log_text()
        assert "under ApiDestStoreMinFree" in log
        # everything accepted is still there and arrives once the sink is back
        sink.set_default(200)
        assert sink.wait_until(lambda reqs: set(accepted) <= _delivered(sink), 40), \
            "accepted events were lost after the disk filled"
        assert _delivered(sink) <= set(accepted)
        # compaction gives the space back: new events are accepted again
        deadline = time.time() + 30
        eid = None
        while time.time() < deadline and not eid:
            eid, _ = _put_big(server, 1000)
            time.sleep(0.5)
        assert eid, "the store never accepted events again after draining"
        assert sink.wait_until(lambda reqs: eid in _delivered(sink), 15)
        log = server.log_text()
        assert "needs recovery" not in log and "store compaction done" in log
    finally:
        server.stop()
        subprocess.run(["umount", "-l", mnt])


def _five_pending_then_stop(server, sink, detail_type):
    """Five events tried once (the sink answers 503) and still queued, then a
    stopped server: their EventIds and the store's path."""
    sink.set_default(503)
    server.start(_conf(sink))
    ids = []
    for i in range(5):
        status, _, resp = server.put_events([entry(SOURCE, detail_type, {"i": i})])
        ids.append(resp["Entries"][0]["EventId"])
    assert sink.wait_until(lambda reqs: len({json.loads(r["body"])["id"] for r in reqs}) == 5, 10)
    server.stop()
    return ids, os.path.join(server.store_dir, "apidest")


def test_torn_record_is_set_aside_and_the_rest_loads(server, sink):
    import dbm.gnu

    ids, path = _five_pending_then_stop(server, sink, "Torn")
    db = dbm.gnu.open(path, "w")
    keys = sorted(k for k in db.keys() if k.startswith(b"q"))
    assert len(keys) == 5
    victim = keys[2]
    torn_id = None
    raw = db[victim]
    for i in ids:
        if i.encode() in raw:
            torn_id = i
    db[victim] = raw[: len(raw) // 2]  # a write cut in half
    db.close()
    sink.set_default(200)
    server.start()
    want = set(ids) - {torn_id}
    assert sink.wait_until(lambda reqs: want <= _delivered(sink), 20)
    time.sleep(1.0)
    assert torn_id not in _delivered(sink)
    log = server.log_text()
    assert "is damaged (torn write?)" in log and "1 damaged set aside" in log
    server.stop()
    db = dbm.gnu.open(path, "r")
    assert (b"x" + victim) in db.keys(), "the damaged record is kept aside, not deleted"
    db.close()


def test_an_unreadable_commit_marker_keeps_every_record(server, sink):
    """The marker names the last acknowledged batch; records of later batches
    were never acknowledged and go at start. A marker that cannot be read is
    not "nothing was acknowledged": every record stays and is delivered."""
    import dbm.gnu

    ids, path = _five_pending_then_stop(server, sink, "Marker")
    db = dbm.gnu.open(path, "w")
    assert db[b"m/commit"].isdigit()
    db[b"m/commit"] = b"\x00garbage"
    db.close()
    sink.set_default(200)
    server.start()
    assert sink.wait_until(lambda reqs: set(ids) <= _delivered(sink), 20), _delivered(sink)
    log = server.log_text()
    assert "the commit marker cannot be read" in log and "0 unacknowledged discarded" in log
    # new events after it are committed and delivered as usual
    status, _, resp = server.put_events([entry(SOURCE, "Marker", {"i": 9})])
    assert sink.wait_until(lambda reqs: resp["Entries"][0]["EventId"] in _delivered(sink), 10)


def test_a_lost_marker_never_gives_out_the_ids_of_dead_letters(server, sink):
    """Dead letters keep the id (batch and index) they were stored with. With
    the marker unreadable and the queue empty, new records once took the
    same ids: a new failure overwrote a dead letter, and a redrive of an
    old one overwrote a pending record, an acknowledged event lost."""
    import dbm.gnu

    sink.set_default(400)
    server.start(_conf(sink))
    old = []
    for i in range(3):
        status, _, resp = server.put_events([entry(SOURCE, "Dead", {"i": i})])
        old.append(resp["Entries"][0]["EventId"])
    assert wait_until(lambda: len(_dlq(server)) == 3, 15), _dlq(server)
    server.stop()
    path = os.path.join(server.store_dir, "apidest")
    db = dbm.gnu.open(path, "w")
    assert not [k for k in db.keys() if k.startswith(b"q")]
    db[b"m/commit"] = b"\x00garbage"
    db.close()
    server.start()
    # a new failure is a fourth dead letter, not one in place of the first
    status, _, resp = server.put_events([entry(SOURCE, "Dead", {"i": 3})])
    assert wait_until(lambda: len(_dlq(server)) == 4, 15), _dlq(server)
    # a pending event and a redrive of every old dead letter: all delivered
    sink.set_default(503)
    status, _, resp = server.put_events([entry(SOURCE, "Pending", {"i": 4})])
    pending = resp["Entries"][0]["EventId"]
    assert sink.wait_until(lambda reqs: pending in {json.loads(r["body"])["id"] for r in reqs},
                           10)
    for rec in _dlq(server):
        if json.loads(rec["Body"])["id"] in old:
            status, _, _ = server.request("POST", "/apidest/dlq/%s/redrive" % rec["Id"])
            assert status == 200
    sink.set_default(200)
    assert sink.wait_until(lambda reqs: set(old + [pending]) <= _delivered(sink), 20), \
        _delivered(sink)
    server.stop()


def _dlq(server):
    status, _, data = server.request("GET", "/apidest/dlq")
    assert status == 200
    return json.loads(data)["Records"]


def test_a_damaged_dead_letter_is_set_aside_not_counted_and_unreachable(server, sink):
    """A dead letter that no longer decodes was counted in DlqCount but could
    not be listed, read, deleted or redriven (each a 404), and nothing said
    why. It is now set aside at load, as a damaged queue record is."""
    import dbm.gnu

    sink.set_default(400)
    server.start(_conf(sink))
    for i in range(2):
        server.put_events([entry(SOURCE, "Dead", {"i": i})])
    assert wait_until(lambda: len(_dlq(server)) == 2, 15), _dlq(server)
    server.stop()
    path = os.path.join(server.store_dir, "apidest")
    db = dbm.gnu.open(path, "w")
    victim = sorted(k for k in db.keys() if k.startswith(b"d"))[0]
    raw = bytearray(db[victim])
    raw[len(raw) // 2] ^= 0xFF  # one byte flipped on disk
    db[victim] = bytes(raw)
    db.close()
    loads = server.log_text().count("AD00108")
    server.start()
    # start() returns once apidestd's pid is alive, before it loads the store
    assert wait_until(lambda: server.log_text().count("AD00108") > loads, 15), server.log_tail()
    log = server.log_text()
    assert "1 in the DLQ" in log and "1 damaged set aside" in log, server.log_tail()
    assert "store record %s is damaged" % victim.decode() in log
    def dlq_count():
        return json.loads(server.request("GET", "/apidest/status")[2])["Daemon"]["DlqCount"]
    assert wait_until(lambda: dlq_count() == 1, 5), dlq_count()
    assert [r["Id"] for r in _dlq(server)] != [victim.decode()[1:]] and len(_dlq(server)) == 1
    server.stop()
    db = dbm.gnu.open(path, "r")
    assert (b"x" + victim) in db.keys() and victim not in db.keys()
    db.close()


def test_compaction_waits_for_a_draining_backlog(server, sink):
    """A compaction stops deliveries for the time of its copy of the live
    records; while a backlog drains, each later one copies less. 400 records
    drain at 60/s: compaction is due (deletes >= 2 x live + 64) after ~290 of
    them, and must wait until the drain has ended, then copy nothing."""
    server.start(_conf_limited(sink))
    ids = []
    for b in range(40):
        status, _, resp = server.put_events(
            [entry(SOURCE, "Drain", {"b": b, "i": i, "pad": "p" * 500}) for i in range(10)])
        assert status == 200 and resp["FailedEntryCount"] == 0, resp
        ids += [e["EventId"] for e in resp["Entries"]]
    assert sink.wait_until(lambda reqs: set(ids) <= _delivered(sink), 30)
    deadline = time.time() + 15
    while time.time() < deadline and "store compaction done" not in server.log_text():
        time.sleep(0.2)
    done = [line for line in server.log_text().splitlines() if "store compaction done" in line]
    assert done, "no compaction after the drain"
    assert all(" 0 live records" in line for line in done), done
    server.stop()


def _conf_limited(sink, rate=60, extra=""):
    return CONF + extra + destination(
        "hooks", sink.url("/d"), extra="    InvocationRateLimit %d\n" % rate) + \
        rule("r1", {"source": [SOURCE]}, [("t1", "hooks")])


def test_a_short_disk_compacts_without_waiting_for_the_drain(server, sink):
    """With the disk nearly full, new events are refused until a compaction
    gives space back: then the compaction does not wait for a draining
    backlog. A full 1 MB store drains at 10/s; compaction comes due with
    about 15 records left, and runs then, not after the drain."""
    mnt = os.path.join(server.root, "small")
    os.makedirs(mnt)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0777", "tmpfs", mnt], check=True)
    try:
        sink.set_default(503)
        server.start(_conf_limited(sink, 10, "ApiDestStoreMinFree 256K\n"),
                     store="dbm:gdbm:%s/store/apidest" % mnt)
        accepted = _fill_until_refused(server)
        sink.set_default(200)
        assert sink.wait_until(lambda reqs: set(accepted) <= _delivered(sink), 60)
        done = [line for line in server.log_text().splitlines()
                if "store compaction done" in line]
        assert done, "no compaction"
        assert " 0 live records" not in done[0], done
    finally:
        server.stop()
        subprocess.run(["umount", "-l", mnt])


def _conf_retries(sink, attempts):
    return CONF + "ApiDestStoreMinFree 256K\n" + destination("hooks", sink.url("/d")) + """
<ApiDestRule r1>
    EventPattern '{"source": ["%s"]}'
    <ApiDestTarget t1>
        Destination hooks
        RetryAttempts %d
    </ApiDestTarget>
</ApiDestRule>
""" % (SOURCE, attempts)


def _admin_json(server, path):
    status, _, data = server.request("GET", "/apidest" + path)
    assert status == 200, (status, data)
    return json.loads(data.decode("utf-8"))


def test_dead_letters_move_while_new_events_are_refused(server, sink):
    """On a disk short enough that new events are refused, the events already
    accepted still end the EventBridge way: their retry bookkeeping may go to
    3/4 of ApiDestStoreMinFree, and their moves to the dead-letter queue to
    1/2. The rest wait, still queued; none is lost."""
    mnt = os.path.join(server.root, "small")
    os.makedirs(mnt)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0777", "tmpfs", mnt], check=True)
    try:
        sink.set_default(503)
        store = "dbm:gdbm:%s/store/apidest" % mnt
        server.start(_conf_retries(sink, 185), store=store)
        accepted = _fill_until_refused(server)
        server.stop()
        # the same records, now past their retry budget at the next failure
        server.start(_conf_retries(sink, 1), store=store)
        eid, code = _put_big(server, 1000)
        assert code == "InternalFailure", "the disk is no longer short: the test proves nothing"
        deadline = time.time() + 20
        while time.time() < deadline and "dead-letter moves of accepted events wait" not in \
                server.log_text():
            time.sleep(0.5)
        assert "dead-letter moves of accepted events wait" in server.log_text(), \
            "every move went through: the reserve was never reached"
        dlq = _admin_json(server, "/dlq?limit=1000")["Records"]
        assert dlq, "no record reached the dead-letter queue while new events were refused"
        assert all(r["Attributes"]["EXHAUSTED_RETRY_CONDITION"] == "MaximumRetryAttempts"
                   for r in dlq)
        daemon = _admin_json(server, "/status")["Daemon"]
        assert daemon["DlqCount"] + daemon["Pending"] == len(accepted), \
            "an accepted event was lost"
        assert daemon["Pending"] > 0, "none waited, still queued, past the reserve"
        assert "needs recovery" not in server.log_text()
    finally:
        server.stop()
        subprocess.run(["umount", "-l", mnt])


def test_store_directories_given_to_the_httpd_user_only_when_made(server, sink):
    """apidestd starts as root when httpd does: it gave the store's parent
    directory to the httpd user even when that directory existed, so a
    store in ServerRoot (or /var/lib) handed ServerRoot (or /var/lib) to the
    user the web server runs as. It now gives only the directories it makes,
    and names a store directory that user cannot write."""
    import pwd
    user_uid = pwd.getpwnam("daemon").pw_uid if server.as_root else os.getuid()
    keep = os.path.join(server.root, "keep")
    os.mkdir(keep, 0o755)
    owner = os.stat(keep).st_uid
    server.start(_conf(sink), store="dbm:gdbm:%s/new/deeper/apidest" % keep)
    status, _, resp = server.put_events([entry(SOURCE, "Made")])
    assert status == 200 and "EventId" in resp["Entries"][0], (status, resp)
    assert sink.wait_for(1, 10), server.log_tail()
    assert os.stat(keep).st_uid == owner, "an existing directory changed owner"
    for d in ("new", "new/deeper"):
        assert os.stat(os.path.join(keep, d)).st_uid == user_uid, d
    server.stop()

    # A store right in an existing directory the httpd user cannot write:
    # refused at start with the reason; the directory keeps its owner.
    if not server.as_root:
        os.chmod(keep, 0o555)
    try:
        server.start(_conf(sink), store="dbm:gdbm:%s/apidest" % keep, wait_daemon=False)
        assert wait_until(lambda: "is not writable by the user httpd runs as"
                          in server.log_text(), 10), server.log_tail()
        status, _, resp = server.put_events([entry(SOURCE, "Refused")], timeout=60)
        assert status == 503, (status, resp)
        assert os.stat(keep).st_uid == owner
    finally:
        os.chmod(keep, 0o755)


def test_a_store_that_cannot_open_says_why_at_once(server, sink):
    """A store file that is not a DBM was retried for 30 s as if another
    process held it (every PutEvents meanwhile waited ~33 s for its 503),
    and the log said "APR does not understand this error code". It now
    fails at once with gdbm's own reason."""
    with open(server.store_dir + "/apidest", "wb") as f:
        f.write(b"this is not a gdbm file\n" * 100)
    server.start(_conf(sink), wait_daemon=False)
    assert wait_until(lambda: "cannot open DBM" in server.log_text(), 10), server.log_tail()
    line = [x for x in server.log_text().splitlines() if "cannot open DBM" in x][0]
    assert "does not understand" not in line, line
    t0 = time.monotonic()
    status, _, resp = server.put_events([entry(SOURCE, "NoStore")], timeout=60)
    assert status == 503, (status, resp)
    assert time.monotonic() - t0 < 12, "the 503 took %.1f s" % (time.monotonic() - t0)


def test_no_compaction_where_it_cannot_shrink_the_file(server, sink):
    """The DBM reuses deleted records' space: with a backlog held and
    deliveries going on, deletes add up while the file does not grow, and a
    compaction every 10 s copied the whole backlog for nothing (the core
    busy 40-90 ms each time in bench/ingest). Once a compaction has shown
    what the live records take, another waits until the file is twice
    that (and 1 MiB more)."""
    server.start(CONF + destination("hooks", sink.url("/d"))
                 + destination("held", "http://127.0.0.1:9/x") + rule(
                     "r1", {"source": [SOURCE]}, [("t1", "hooks")]) + """
<ApiDestRule r2>
    EventPattern '{"source": ["s.held"]}'
    <ApiDestTarget t2>
        Destination held
        RetryBackoff 120 120
    </ApiDestTarget>
</ApiDestRule>
""")

    def put(source, n):
        for b in range(n // 10):
            status, _, resp = server.put_events(
                [entry(source, "C", {"b": b, "i": i, "pad": "p" * 300}) for i in range(10)])
            assert status == 200 and resp["FailedEntryCount"] == 0, resp

    def compactions():
        return [l for l in server.log_text().splitlines() if "store compaction done" in l]

    put("s.held", 1100)  # live: refused connections, retried in 0-120 s
    put(SOURCE, 2400)    # delivered: 2,400 deletes >= 2 x 1,100 + 64
    assert sink.wait_for(2400, 30)
    assert wait_until(lambda: compactions(), 20), "no first compaction"
    first = time.time()
    live = int(re.search(r" (\d+) live records", compactions()[0]).group(1))
    assert 1100 <= live <= 3500, compactions()  # enough to learn from
    # 2,400 more, 100 at a time: the file holds 1,200 live records at most
    for wave in range(24):
        put(SOURCE, 100)
        assert sink.wait_for(2500 + 100 * wave, 30)
    # the first compaction allows the next 10 s later, once the drain stops
    time.sleep(max(0, first + 14 - time.time()))
    assert len(compactions()) == 1, compactions()
