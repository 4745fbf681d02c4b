"""pytest fixtures for the integration suite; the harness itself is harness.py.

Run:  APIDEST_MODULE=/path/to/.libs/mod_apidest.so HTTPD=/usr/sbin/apache2 \
      /usr/bin/python3 -m pytest -q t/integration
"""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from harness import ApiDestServer  # noqa: E402  (also puts t/ on sys.path)
from sink import Sink  # noqa: E402


# ---- pytest plumbing ---------------------------------------------------------

@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def server(request):
    """An ApiDestServer, not started: call server.start(conf_body)."""
    srv = ApiDestServer()
    # under a sanitizer (README), its reports go to files in this directory
    sandir = os.environ.get("APIDEST_SAN_LOGDIR")
    before = set(os.listdir(sandir)) if sandir else set()
    yield srv
    leftovers = srv.stop()
    san_new = sorted(set(os.listdir(sandir)) - before) if sandir else []
    rep = getattr(request.node, "rep_call", None)
    failed = rep is None or rep.failed
    if failed:
        sys.stderr.write("\n%s\n(server root kept: %s)\n" % (srv.log_tail(80), srv.root))
    bad = srv.bad_log_lines()
    srv.cleanup(keep=failed or bool(bad) or os.environ.get("APIDEST_KEEP") == "1")
    assert not bad, "error.log has crash/critical lines:\n" + "\n".join(bad[:20])
    assert not san_new, "sanitizer reports in %s: %s" % (sandir, san_new)
    assert not leftovers, "processes outlived `httpd -k stop` and were killed: %s" % leftovers


@pytest.fixture
def sink():
    """A started recording sink on a free 127.0.0.1 port."""
    s = Sink().start()
    yield s
    s.stop()


@pytest.fixture
def sink_factory():
    sinks = []

    def make(start=True):
        s = Sink()
        if start:
            s.start()
        sinks.append(s)
        return s
    yield make
    for s in sinks:
        s.stop()


