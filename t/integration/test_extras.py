"""Smaller promises: the sdbm store refuses records over its item limit with
a clear error and delivers the rest; plain HTTP targets retry as API Gateway
targets do (429 and 5xx only); other modules run work on apidestd's
maintenance tick through the apidest_maintenance optional hook."""

import json
import os
import shutil
import subprocess
import time

from harness import destination, entry, rule, wait_until

FAST = "ApiDestRetryBackoff 1 2\nApiDestMaintenanceInterval 1\n"
HERE = os.path.dirname(os.path.abspath(__file__))


def test_sdbm_store_refuses_oversize_records_and_delivers_the_rest(server, sink):
    server.start(FAST + destination("d", sink.url("/s")) + rule("r", {"source": ["s.sdbm"]},
                                                                [("t", "d")]),
                 store="dbm:sdbm:%s/apidest" % server.store_dir)
    status, _, resp = server.put_events([entry("s.sdbm", "D", {"small": 1}),
                                         entry("s.sdbm", "D", {"big": "x" * 2000})])
    assert status == 200 and resp["FailedEntryCount"] == 1
    ok, big = resp["Entries"]
    assert "EventId" in ok
    assert big["ErrorCode"] == "InternalFailure"
    assert "sdbm limit of" in big["ErrorMessage"] and "gdbm" in big["ErrorMessage"]
    assert sink.wait_for(1, 10)
    time.sleep(1)
    assert [json.loads(r["body"])["id"] for r in sink.snapshot()] == [ok["EventId"]]
    assert any(n.endswith(".pag") for n in os.listdir(server.store_dir))


def test_plain_http_target_retries_only_429_and_5xx(server, sink):
    sink.respond([401, 503, 200])
    server.start(FAST + """
<ApiDestRule r>
    EventPattern '{"source":["s.plain"]}'
    <ApiDestTarget gw>
        Endpoint %s
        AllowPrivateEndpoint on
        RetryAttempts 3
    </ApiDestTarget>
</ApiDestRule>
""" % sink.url("/gw"))
    server.put_events([entry("s.plain", "D", {"n": 1})])
    assert sink.wait_for(1, 10)
    time.sleep(2.5)
    assert [r["status"] for r in sink.snapshot()] == [401], "a 401 is final for a plain target"
    status, _, data = server.request("GET", "/apidest/dlq")
    [rec] = json.loads(data)["Records"]
    assert rec["LastStatus"] == 401 and rec["Destination"] == ""
    assert rec["Attributes"]["TARGET_ARN"] == sink.url("/gw")
    server.put_events([entry("s.plain", "D", {"n": 2})])
    assert sink.wait_for(3, 10)
    assert [r["status"] for r in sink.snapshot()] == [401, 503, 200]
    # the headers EventBridge adds for an API Gateway target, the same on
    # every attempt; an API destination gets none of them
    first, retry = sink.snapshot()[1:]
    hdrs = {k.lower(): v for k, v in first["headers"]}
    assert hdrs["x-amz-source-account"] == "000000000000"
    assert hdrs["x-amz-source-arn"] == "arn:aws:events:us-east-1:000000000000:rule/r"
    # as AWS recorded it at an API Gateway target: no charset
    assert hdrs["content-type"] == "application/json", hdrs
    eid = json.loads(first["body"])["id"]
    assert hdrs["x-amzn-trace-id"].startswith("Root=1-") and \
        hdrs["x-amzn-trace-id"].endswith("-" + eid.replace("-", "")[:24]), hdrs
    assert {k.lower(): v for k, v in retry["headers"]}["x-amzn-trace-id"] == hdrs["x-amzn-trace-id"]


def test_maintenance_hook_runs_other_modules_on_the_tick(server, sink):
    build = os.path.join(server.root, "hookmod")
    shutil.copytree(os.path.join(os.path.dirname(HERE), "hookmod"), build)
    apxs = shutil.which("apxs") or shutil.which("apxs2")
    assert apxs, "apxs is needed (apache2-dev)"
    include = "-I" + os.path.join(os.path.dirname(os.path.dirname(HERE)), "mod_apidest")
    subprocess.run([apxs, include, "-c", "-o", "mod_apidest_hooktest.so", "mod_apidest_hooktest.c"],
                   cwd=build, check=True, capture_output=True, timeout=120)
    so = os.path.join(build, ".libs", "mod_apidest_hooktest.so")
    ticks = os.path.join(server.run_dir, "ticks.log")
    server.start(FAST + "LoadModule apidest_hooktest_module %s\nApiDestHookTestFile %s\n"
                 % (so, ticks) + destination("d", sink.url("/h"))
                 + rule("r", {"source": ["s.h"]}, [("t", "d")]))
    assert wait_until(lambda: os.path.exists(ticks) and len(open(ticks).readlines()) >= 3, 10)
    lines = open(ticks).read().splitlines()
    pids = {l.split()[-1] for l in lines}
    assert pids == {str(server.daemon_pid())}, "the hook runs in apidestd: %s" % lines
    secs = [int(l.split()[1]) for l in lines[:3]]
    assert secs == sorted(secs)


def test_make_install_through_apxs(server, sink):
    """make install (apxs -i) into a staging DESTDIR; httpd runs the
    installed module."""
    import harness
    builddir = os.path.dirname(os.path.dirname(harness.MODULE))
    stage = os.path.join(server.root, "stage")
    p = subprocess.run(["make", "-C", builddir, "install", "DESTDIR=" + stage],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    found = [os.path.join(d, f) for d, _, fs in os.walk(stage) for f in fs
             if f == "mod_apidest.so"]
    assert len(found) == 1, found
    harness.MODULE, saved = found[0], harness.MODULE
    try:
        server.start(FAST + destination("d", sink.url("/i"))
                     + rule("r", {"source": ["s.inst"]}, [("t", "d")]))
    finally:
        harness.MODULE = saved
    assert found[0] in open(server.conf_path).read()
    status, _, resp = server.put_events([entry("s.inst", "D", {})])
    assert status == 200 and sink.wait_for(1, 10)


def test_gdbm_store_is_not_memory_mapped(server, sink):
    """gdbm maps the whole store file by default (and remaps it as it grows):
    apidestd turns the map off, so the store is read and written with
    pread/pwrite and its size never shows in apidestd's memory."""
    server.start(FAST + destination("d", sink.url("/m")) + rule("r", {"source": ["s.map"]},
                                                                [("t", "d")]))
    status, _, resp = server.put_events([entry("s.map", "D", {"pad": "x" * 4000, "n": i})
                                         for i in range(10)])
    assert status == 200 and resp["FailedEntryCount"] == 0
    assert sink.wait_for(10, 10)
    store_file = os.path.realpath(os.path.join(server.store_dir, "apidest"))
    assert os.path.getsize(store_file) > 40000
    pid = server.live_daemon_pid()
    with open("/proc/%d/maps" % pid) as f:
        mapped = [line for line in f if line.rstrip().endswith(store_file)]
    assert mapped == [], "apidestd maps its store: %s" % mapped
