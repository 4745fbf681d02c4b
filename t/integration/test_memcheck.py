"""httpd and apidestd under valgrind memcheck: a request, delivery attempts
(success, retry, dead letter), admin and status calls, then a clean stop.
Every process must report no errors and no definitely-lost memory."""

import glob
import json
import os
import shutil
import signal
import subprocess
import time

from harness import _clean_env, destination, entry, rule, wait_until, HTTPD


def test_valgrind_clean(server, sink_factory):
    assert shutil.which("valgrind"), "valgrind is required (conf/debian-packages)"
    ok, bad, tok = sink_factory(), sink_factory(), sink_factory()
    bad.set_default(400)
    ok.respond([503, 200])
    # a token answer over the 64 KiB apidestd keeps (once read past its buffer)
    tok.set_default(200, body=json.dumps({"access_token": "t", "pad": "x" * 100000}))
    conf = ("ApiDestRetryBackoff 1 2\nApiDestWorkers 2\n"
            + destination("ok", ok.url("/ok")) + destination("bad", bad.url("/bad"))
            + "<ApiDestConnection oa>\nAuthorizationType OAUTH_CLIENT_CREDENTIALS\n"
              "OAuthEndpoint %s\nOAuthClient c s\nAllowPrivateEndpoint on\n"
              "AllowInsecureHttp on\n</ApiDestConnection>\n" % tok.url("/token")
            + destination("oa", ok.url("/oa"), extra="    Connection oa\n")
            + rule("r-ok", {"source": ["vg.ok"]}, [("t", "ok")])
            + rule("r-bad", {"source": ["vg.bad"]}, [("t", "bad")])
            + rule("r-oa", {"source": ["vg.oa"]}, [("t", "oa")]))
    path = server.write_conf(conf)
    logs = os.path.join(server.root, "vg.%p.log")
    proc = subprocess.Popen(
        ["valgrind", "--leak-check=full", "--errors-for-leak-kinds=definite",
         "--show-leak-kinds=definite", "--error-exitcode=99", "--log-file=" + logs,
         HTTPD, "-X", "-d", server.root, "-f", path],
        env=_clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(server._can_connect, 60), server.log_tail()
        assert wait_until(server.live_daemon_pid, 60), server.log_tail()
        for src in ("vg.ok", "vg.bad"):
            status, _, resp = server.put_events([entry(src, "V", {"x": 1})], timeout=60)
            assert status == 200 and resp["FailedEntryCount"] == 0
        # a Detail with a repeated key: ingest writes it from jansson's tree
        # (an envelope once sized from an unset length on this path)
        status, _, resp = server.put_events(
            [{"Source": "vg.ok", "DetailType": "V", "Detail": '{"k":1,"k":2}'}], timeout=60)
        assert status == 200 and resp["FailedEntryCount"] == 0
        status, _, resp = server.put_events([entry("vg.oa", "V", {"x": 1})], timeout=60)
        assert status == 200 and resp["FailedEntryCount"] == 0
        assert ok.wait_for(3, 60) and bad.wait_for(1, 60) and tok.wait_for(1, 60)
        deadline = time.time() + 60
        while time.time() < deadline:
            st, _, data = server.request("GET", "/apidest/dlq", timeout=60)
            if st == 200 and json.loads(data)["Records"]:
                break
            time.sleep(0.5)
        assert json.loads(data)["Records"], "the 400 never reached the DLQ"
        for p in ("/apidest/status", "/apidest/metrics", "/server-status?auto",
                  "/server-status"):
            assert server.request("GET", p, timeout=60)[0] == 200
        rec = json.loads(data)["Records"][0]
        assert server.request("DELETE", "/apidest/dlq/" + rec["Id"], timeout=60)[0] == 200
    finally:
        # apidestd first, waiting for its report: httpd gives it only 3 s
        # (APR's kill timeout) before SIGKILL, less than valgrind's leak
        # check may need on a busy machine. In -X mode nothing restarts it.
        dpid = server.live_daemon_pid()
        if dpid:
            os.kill(dpid, signal.SIGTERM)
            report = os.path.join(server.root, "vg.%d.log" % dpid)
            wait_until(lambda: "ERROR SUMMARY" in open(report, errors="replace").read()
                       if os.path.exists(report) else False, 90)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(90)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        # whatever happened above, no apidestd outlives the test
        if dpid:
            try:
                os.kill(dpid, signal.SIGKILL)
            except OSError:
                pass
    reports = glob.glob(os.path.join(server.root, "vg.*.log"))
    assert len(reports) >= 2, "expected reports from httpd and apidestd: %s" % reports
    for r in reports:
        text = open(r, encoding="utf-8", errors="replace").read()
        assert "ERROR SUMMARY: 0 errors" in text, "%s:\n%s" % (r, text[-4000:])
        assert "definitely lost: 0 bytes" in text or "no leaks are possible" in text \
            or "All heap blocks were freed" in text, "%s:\n%s" % (r, text[-4000:])
