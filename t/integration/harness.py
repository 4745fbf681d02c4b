"""Integration harness (library part; the fixtures are in conftest.py): a real
httpd loading the built mod_apidest, a real recording sink (t/sink.py), real
DBM files, real kill -9.

Environment:
  APIDEST_MODULE  path of the built mod_apidest.so (required)
  HTTPD           httpd binary (default /usr/sbin/apache2)
  APIDEST_KEEP    set to 1 to keep every test's server root (kept on failure anyway)

Each test gets its own server root in a fresh directory under /tmp (not
pytest's tmp_path: httpd's children and apidestd run as `daemon` when the
suite runs as root, and pytest's base directory is private to root).
"""

import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # t/ : sink.py, ports.py
sys.path.insert(0, HERE)

from ports import free_port  # noqa: E402

HTTPD = os.environ.get("HTTPD", "/usr/sbin/apache2")
MODULE = os.environ.get("APIDEST_MODULE", "")

# "runtime error:" is UBSan's, which writes to stderr (error.log) when
# libasan is preloaded, whatever its log_path says
BAD_LOG_MARKERS = ("Sanitizer", "runtime error:", "[core:crit]", "Segmentation fault",
                   "exit signal Segmentation", "exit signal Aborted",
                   "exit signal Bus error")


def _libexecdir():
    for apxs in ("apxs", "apxs2", "/usr/bin/apxs"):
        try:
            out = subprocess.run([apxs, "-q", "LIBEXECDIR"], capture_output=True,
                                 text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        d = out.stdout.strip()
        if out.returncode == 0 and d and os.path.isdir(d):
            return d
    return "/usr/lib/apache2/modules"


LIBEXECDIR = _libexecdir()


def _clean_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("APACHE_")}
    env.setdefault("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    env["LANG"] = "C"
    # a module built with --enable-asan needs libasan in httpd (and in the
    # apidestd it forks); not in pytest's own process
    if os.environ.get("APIDEST_SAN_PRELOAD"):
        env["LD_PRELOAD"] = os.environ["APIDEST_SAN_PRELOAD"]
    if os.environ.get("APIDEST_SAN_LIBPATH"):
        env["LD_LIBRARY_PATH"] = os.environ["APIDEST_SAN_LIBPATH"]
    return env


def _become_subreaper():
    """Make this process the reaper of orphaned descendants (Linux
    PR_SET_CHILD_SUBREAPER): httpd's detached master and the processes that
    kill -9 orphans are then reaped here at once, instead of lingering as
    zombies that `httpd -k start` takes for a running server."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)
    except Exception:  # not Linux / no prctl: zombies are reaped by init
        pass


_become_subreaper()


def _reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except OSError:  # not our child
        pass


def pid_exists(pid):
    """The pid names a process table entry (possibly a zombie not ours)."""
    if not pid:
        return False
    _reap(pid)
    return os.path.exists("/proc/%d" % pid)


def proc_stat(pid):
    """The fields of /proc/<pid>/stat after the command name, the state
    first (that name may hold spaces and ')'); OSError once pid is gone."""
    with open("/proc/%s/stat" % pid) as f:
        st = f.read()
    return st[st.rindex(")") + 2:].split()


def open_fds(pid):
    """How many descriptors pid has open."""
    return len(os.listdir("/proc/%d/fd" % pid))


def pid_alive(pid):
    """The pid names a running (non-zombie) process; zombies of ours are reaped."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = proc_stat(pid)[0]
    except (OSError, ValueError, IndexError):
        return False
    if state == "Z":
        _reap(pid)
        return False
    return True


def _ppid_map():
    """pid -> ppid for every process, from /proc/*/stat."""
    m = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            m[int(d)] = int(proc_stat(d)[1])
        except (OSError, ValueError, IndexError):
            continue
    return m


def descendants(pid):
    """All live descendants of pid (children, grandchildren, ...)."""
    m = _ppid_map()
    out, todo = [], [pid]
    seen = set()
    while todo:
        p = todo.pop()
        for c, pp in m.items():
            if pp == p and c not in seen:
                seen.add(c)
                out.append(c)
                todo.append(c)
    return out


def pids_serving(root):
    """Live httpd processes started with `-d root` (the master, its children,
    apidestd), wherever they were reparented."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if b"-d" in args and root.encode() in args and pid_alive(int(d)):
            out.append(int(d))
    return out


def wait_until(fn, timeout, interval=0.05):
    """Call fn until it returns a truthy value (returned) or timeout (None)."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def unstartable_store(server):
    """A store apidestd cannot open once it runs as the httpd user: its
    directory is not writable. (A store under a regular file is a
    configtest error now.) The daemon gives up and is not restarted."""
    locked = os.path.join(server.root, "locked-store")
    os.makedirs(locked, exist_ok=True)
    os.chmod(locked, 0o500)
    return "dbm:gdbm:%s/apidest" % locked


def find_line(path, needle, start=1):
    """1-based number of the first line at or after `start` containing needle."""
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if i >= start and needle in line:
                return i
    raise AssertionError("%r not found in %s" % (needle, path))


class HttpdError(AssertionError):
    pass


class ApiDestServer:
    """One httpd server root with mod_apidest, in its own directory."""

    def __init__(self):
        if not MODULE:
            pytest.fail("APIDEST_MODULE is not set (path of the built mod_apidest.so): "
                        "run the suite with make check")
        if not os.path.exists(MODULE):
            pytest.fail("APIDEST_MODULE=%s does not exist" % MODULE)
        self.root = tempfile.mkdtemp(prefix="apidest-it-")
        self.port = free_port()
        self.conf_path = os.path.join(self.root, "conf", "httpd.conf")
        self.run_dir = os.path.join(self.root, "run")
        self.store_dir = os.path.join(self.root, "store")
        self.store = "dbm:gdbm:%s/apidest" % self.store_dir
        self.error_log = os.path.join(self.root, "error.log")
        self.pid_file = os.path.join(self.root, "httpd.pid")
        self.daemon_pid_file = os.path.join(self.run_dir, "apidestd.pid")
        self.as_root = os.geteuid() == 0
        for d, mode in ((self.root, 0o755), (os.path.join(self.root, "conf"), 0o755),
                        (os.path.join(self.root, "htdocs"), 0o755),
                        (self.run_dir, 0o777), (self.store_dir, 0o777)):
            os.makedirs(d, exist_ok=True)
            os.chmod(d, mode)
        self.master_pid = None
        self.nofile = None
        self.known_pids = set()  # every process of ours we ever saw
        self.started = False
        self.body = ""

    # ---- config ----------------------------------------------------------
    def preamble(self, store=None):
        mods = "\n".join(
            "LoadModule %s %s/%s" % (name, LIBEXECDIR, so) for name, so in (
                ("mpm_event_module", "mod_mpm_event.so"),
                ("authz_core_module", "mod_authz_core.so"),
                ("authz_host_module", "mod_authz_host.so"),
                ("status_module", "mod_status.so")))
        user = "User daemon\nGroup daemon\n" if self.as_root else ""
        return """# generated by t/integration/conftest.py
ServerRoot "{root}"
Listen 127.0.0.1:{port}
ServerName 127.0.0.1
PidFile "{root}/httpd.pid"
ErrorLog "{root}/error.log"
LogLevel warn apidest:debug
DefaultRuntimeDir "{run}"
DocumentRoot "{root}/htdocs"
{user}{mods}
StartServers 2
ServerLimit 4
ThreadsPerChild 16
MaxRequestWorkers 32
MinSpareThreads 8
MaxSpareThreads 32
GracefulShutdownTimeout 10
LoadModule apidest_module "{module}"
ApiDestStore "{store}"
<Location /events>
    SetHandler apidest-events
</Location>
<Location /apidest>
    SetHandler apidest-admin
</Location>
<Location /server-status>
    SetHandler server-status
</Location>
# ---- test configuration ----
""".format(root=self.root, port=self.port, run=self.run_dir, user=user, mods=mods,
           module=MODULE, store=store or self.store)

    def write_conf(self, body, store=None, path=None):
        path = path or self.conf_path
        text = self.preamble(store) + body.strip("\n") + "\n"
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(path, 0o644)
        return path

    def conf_line(self, needle, start=1, path=None):
        return find_line(path or self.conf_path, needle, start)

    # ---- httpd control -----------------------------------------------------
    def _httpd(self, *args, timeout=30):
        cmd = [HTTPD, "-d", self.root, "-f", self.conf_path] + list(args)
        limit = self.nofile  # (soft, hard) open files for httpd and apidestd, or None
        return subprocess.run(cmd, env=_clean_env(), capture_output=True, text=True,
                              timeout=timeout, cwd=self.root,
                              preexec_fn=(lambda: resource.setrlimit(resource.RLIMIT_NOFILE,
                                                                     limit)) if limit else None)

    def configtest(self, body, store=None):
        """`httpd -t` on preamble + body; returns (rc, output, conf path)."""
        path = os.path.join(self.root, "conf", "configtest-%d.conf" % int(time.time() * 1e6))
        self.write_conf(body, store=store, path=path)
        p = subprocess.run([HTTPD, "-t", "-d", self.root, "-f", path], env=_clean_env(),
                           capture_output=True, text=True, timeout=30, cwd=self.root)
        return p.returncode, (p.stdout or "") + (p.stderr or ""), path

    def read_pid(self, path):
        try:
            with open(path) as f:
                return int(f.read().strip() or 0) or None
        except (OSError, ValueError):
            return None

    def daemon_pid(self):
        """The pid in <DefaultRuntimeDir>/apidestd.pid, or None."""
        return self.read_pid(self.daemon_pid_file)

    def live_daemon_pid(self, other_than=None):
        pid = self.daemon_pid()
        if pid and pid != other_than and pid_alive(pid):
            self.known_pids.add(pid)
            return pid
        return None

    def wait_first_tick(self, timeout=30):
        """Until apidestd's first maintenance tick has run (it publishes the
        store's size, 0 before): read from shared memory, so no round trip
        to apidestd and no connection left kept by a child."""
        def ticked():
            status, _, data = self.request("GET", "/apidest/status")
            return status == 200 and json.loads(data)["Daemon"]["StoreBytes"] > 0
        assert wait_until(ticked, timeout), "apidestd's first maintenance tick did not come"

    def _can_connect(self):
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=0.5)
            s.close()
            return True
        except OSError:
            return False

    def _remember_pids(self):
        if self.master_pid and pid_alive(self.master_pid):
            self.known_pids.add(self.master_pid)
            self.known_pids.update(descendants(self.master_pid))

    def start(self, body=None, store=None, wait_daemon=True, timeout=10, verb="start"):
        """Write the config (when body is given) and start httpd (`-k verb`:
        restart and graceful start a server that is not running); wait until
        a TCP connect succeeds and (wait_daemon) apidestd's pid file names a
        live process."""
        if body is not None:
            self.body = body
            self.write_conf(body, store=store)
        p = self._httpd("-k", verb)
        if p.returncode != 0 or "already running" in (p.stdout + p.stderr):
            raise HttpdError("httpd -k %s failed (rc %d):\n%s%s\n%s" % (
                verb, p.returncode, p.stdout, p.stderr, self.log_tail()))
        self.started = True
        master = wait_until(lambda: (self.read_pid(self.pid_file)
                                     if pid_alive(self.read_pid(self.pid_file)) else None),
                            timeout)
        if not master:
            raise HttpdError("httpd did not write a live pid file within %ss\n%s" % (
                timeout, self.log_tail()))
        self.master_pid = master
        self.known_pids.add(master)
        if not wait_until(self._can_connect, timeout):
            raise HttpdError("httpd not accepting on 127.0.0.1:%d within %ss\n%s" % (
                self.port, timeout, self.log_tail()))
        if wait_daemon and not wait_until(self.live_daemon_pid, timeout):
            raise HttpdError("apidestd pid file %s has no live pid within %ss\n%s" % (
                self.daemon_pid_file, timeout, self.log_tail()))
        self._remember_pids()
        return self

    def stop(self, timeout=15):
        """`httpd -k stop`, wait for the master and every process of ours to
        exit; kill -9 whatever is left after the timeout."""
        if not self.started:
            return
        self._remember_pids()
        master = self.master_pid
        if master and pid_alive(master):
            try:
                self._httpd("-k", "stop", timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
            wait_until(lambda: not pid_alive(master), timeout)
        # apidestd and children must go away with the master
        wait_until(lambda: not any(pid_alive(p) for p in self.known_pids), 5)
        leftovers = [p for p in self.known_pids if pid_alive(p)]
        for p in leftovers:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        wait_until(lambda: not any(pid_alive(p) for p in leftovers), 5)
        self.started = False
        self.master_pid = None
        return leftovers

    def graceful(self, timeout=10, wait_new_daemon=True):
        """`httpd -k graceful`; wait until apidestd was replaced (a new live pid)."""
        old = self.live_daemon_pid()
        self._remember_pids()
        p = self._httpd("-k", "graceful")
        if p.returncode != 0:
            raise HttpdError("httpd -k graceful failed (rc %d): %s%s" % (
                p.returncode, p.stdout, p.stderr))
        if wait_new_daemon:
            new = wait_until(lambda: self.live_daemon_pid(other_than=old), timeout)
            if not new:
                raise HttpdError("apidestd (pid %s) not replaced within %ss of graceful\n%s" % (
                    old, timeout, self.log_tail()))
        if not wait_until(self._can_connect, timeout):
            raise HttpdError("httpd not accepting after graceful\n" + self.log_tail())
        self._remember_pids()
        return self.live_daemon_pid()

    def kill9_daemon(self):
        pid = self.live_daemon_pid()
        assert pid, "no live apidestd to kill"
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not pid_alive(pid), 5)
        return pid

    def wait_daemon_restarted(self, old_pid, timeout=10):
        new = wait_until(lambda: self.live_daemon_pid(other_than=old_pid), timeout)
        if not new:
            raise HttpdError("apidestd not restarted within %ss after pid %s died\n%s" % (
                timeout, old_pid, self.log_tail()))
        return new

    def kill9_all(self):
        """kill -9 the master and every descendant (children, apidestd)."""
        master = self.master_pid or self.read_pid(self.pid_file)
        assert master and pid_alive(master), "httpd master not running"
        victims = [master] + descendants(master)
        for p in victims:  # master first so that it restarts nothing
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        # A child the master forked while it was being killed is not among
        # its descendants by then, but holds the listening socket: found by
        # its command line (bounded: the master is dead, no new ones come).
        for _ in range(20):
            late = [p for p in pids_serving(self.root) if p not in victims]
            if not late:
                break
            for p in late:
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
            victims += late
            time.sleep(0.05)
        self.known_pids.update(victims)
        if not wait_until(lambda: not any(pid_alive(p) for p in victims), 10):
            raise HttpdError("processes survived kill -9: %s" % [p for p in victims if pid_alive(p)])
        # Wait until they are reaped too: `httpd -k start` takes a zombie named
        # in the pid file for a running server.
        if not wait_until(lambda: not any(pid_exists(p) for p in victims), 10):
            sys.stderr.write("kill9_all: zombies not reaped: %s; removing %s\n" % (
                [p for p in victims if pid_exists(p)], self.pid_file))
            os.unlink(self.pid_file)
        self.started = False
        self.master_pid = None
        return victims

    # ---- HTTP --------------------------------------------------------------
    def request(self, method, path, body=None, headers=None, timeout=15):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def put_events(self, entries=None, content_type="amz", target="AWSEvents.PutEvents",
                   body=None, path="/events", ensure_ascii=True, extra_headers=None,
                   timeout=15):
        """POST to /events. entries: list of entry dicts (wrapped in
        {"Entries": ...}); or body: raw bytes/str/dict to send as is.
        content_type: "amz" (AWS JSON 1.1 + X-Amz-Target), "json"
        (application/json) or a literal Content-Type value.
        Returns (status, headers (lower-case keys), parsed JSON or None)."""
        if body is None:
            body = {"Entries": entries}
        if isinstance(body, (dict, list)):
            body = json.dumps(body, ensure_ascii=ensure_ascii)
        if isinstance(body, str):
            body = body.encode("utf-8")
        headers = {}
        if content_type == "amz":
            headers["Content-Type"] = "application/x-amz-json-1.1"
            if target:
                headers["X-Amz-Target"] = target
        elif content_type == "json":
            headers["Content-Type"] = "application/json"
        elif content_type:
            headers["Content-Type"] = content_type
        headers.update(extra_headers or {})
        status, hdrs, data = self.request("POST", path, body=body, headers=headers,
                                          timeout=timeout)
        try:
            parsed = json.loads(data.decode("utf-8")) if data else None
        except ValueError:
            parsed = None
        self.last_raw = data
        return status, hdrs, parsed

    def accepted_ids(self, resp):
        """EventIds of the successful entries of a 200 PutEvents response."""
        return [e["EventId"] for e in resp["Entries"] if "EventId" in e]

    # ---- logs --------------------------------------------------------------
    def log_text(self):
        try:
            with open(self.error_log, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_tail(self, n=60):
        lines = self.log_text().splitlines()
        return "---- %s (last %d lines) ----\n%s" % (self.error_log, n, "\n".join(lines[-n:]))

    def bad_log_lines(self):
        return [l for l in self.log_text().splitlines()
                if any(m in l for m in BAD_LOG_MARKERS)]

    def cleanup(self, keep):
        if keep:
            return
        shutil.rmtree(self.root, ignore_errors=True)


# ---- config snippets shared by the tests ---------------------------------------

def destination(name, url, method="POST", timeout=5, extra=""):
    return """
<ApiDestDestination {name}>
    Endpoint {url}
    HttpMethod {method}
    Timeout {timeout}
    AllowPrivateEndpoint on
{extra}</ApiDestDestination>
""".format(name=name, url=url, method=method, timeout=timeout, extra=extra)


def rule(name, pattern, targets, state="ENABLED", bus="default", extra=""):
    """targets: list of (target id, destination name)."""
    t = "".join("""    <ApiDestTarget {id}>
        Destination {dest}
    </ApiDestTarget>
""".format(id=i, dest=d) for i, d in targets)
    return """
<ApiDestRule {name}>
    EventBus {bus}
    EventPattern '{pattern}'
    State {state}
{extra}{targets}</ApiDestRule>
""".format(name=name, bus=bus, pattern=pattern if isinstance(pattern, str) else json.dumps(pattern),
           state=state, extra=extra, targets=t)


def entry(source="com.example.test", detail_type="TestEvent", detail=None, **kw):
    e = {"Source": source, "DetailType": detail_type,
         "Detail": json.dumps(detail if detail is not None else {"n": 1})}
    e.update(kw)
    return e


# ---- assertions shared by the tests ----------------------------------------------

ENVELOPE_KEYS = ["version", "id", "detail-type", "source", "account", "time",
                 "region", "resources", "detail"]
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
USER_AGENT = "Amazon/EventBridge/ApiDestinations"
CONTENT_TYPE = "application/json; charset=utf-8"


def iso_utc(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch)))


def header(req, name):
    """Value of a request header (first occurrence, case-insensitive) or None."""
    for k, v in req["headers"]:
        if k.lower() == name.lower():
            return v
    return None


def header_all(req, name):
    return [v for k, v in req["headers"] if k.lower() == name.lower()]


def assert_put_ok(status, hdrs, resp, n):
    """A 200 PutEvents answer for n entries, all accepted; returns the ids."""
    assert status == 200, "PutEvents answered %s: %r" % (status, resp)
    assert isinstance(resp, dict), "PutEvents body is not a JSON object"
    assert resp.get("FailedEntryCount") == 0, resp
    assert isinstance(resp.get("Entries"), list) and len(resp["Entries"]) == n, resp
    ids = []
    assert UUID_RE.match(hdrs.get("x-amzn-requestid", "")), "no x-amzn-RequestId: %r" % (hdrs,)
    for e in resp["Entries"]:
        assert set(e) == {"EventId"}, "accepted entry has other keys: %r" % (e,)
        assert UUID_RE.match(e["EventId"]), "EventId is not a UUID: %r" % (e["EventId"],)
        ids.append(e["EventId"])
    assert len(set(ids)) == n, "EventIds not distinct: %r" % ids
    return ids


def assert_aws_error(status, hdrs, resp, expect_status, expect_type, raw=None):
    assert status == expect_status, "expected %s %s, got %s: %r" % (
        expect_status, expect_type, status, raw if resp is None else resp)
    assert hdrs.get("x-amzn-errortype") == expect_type, \
        "x-amzn-ErrorType is %r, expected %r" % (hdrs.get("x-amzn-errortype"), expect_type)
    assert UUID_RE.match(hdrs.get("x-amzn-requestid", "")), "no x-amzn-RequestId: %r" % (hdrs,)
    assert isinstance(resp, dict), "error body is not a JSON object: %r" % (raw,)
    assert resp.get("__type") == expect_type, resp
    assert isinstance(resp.get("message"), str) and resp["message"], resp
    assert "Entries" not in resp and "FailedEntryCount" not in resp, resp


def check_envelope(req, entry, event_id, account, region, t_range=None,
                   method="POST", path=None, exact_format=True):
    """The request req (from the sink) carries the EventBridge envelope of
    entry with id event_id. Returns the parsed envelope."""
    assert req["method"] == method, req["method"]
    if path is not None:
        assert req["path"] == path, req["path"]
    assert header(req, "User-Agent") == USER_AGENT, req["headers"]
    assert header(req, "Content-Type") == CONTENT_TYPE, req["headers"]
    body = req["body"]
    text = body.decode("utf-8")  # strict: the body is valid UTF-8
    pairs = json.loads(text, object_pairs_hook=list)
    assert isinstance(pairs, list) and all(isinstance(p, tuple) for p in pairs), text[:200]
    assert [k for k, _ in pairs] == ENVELOPE_KEYS, "envelope key order: %r" % [k for k, _ in pairs]
    env = json.loads(text)
    if exact_format:
        # compact: exactly what a compact serialiser makes of the same
        # document, control characters escaped in upper case as Jackson does
        want = re.sub(r"(?<!\\)\\u00([01][0-9a-f])", lambda m: "\\u00" + m.group(1).upper(),
                      json.dumps(env, separators=(",", ":"), ensure_ascii=False))
        assert text == want, "envelope is not compact JSON: %s" % text[:300]
    assert env["version"] == "0"
    assert env["id"] == event_id
    assert env["detail-type"] == entry["DetailType"]
    assert env["source"] == entry["Source"]
    assert env["account"] == account
    assert env["region"] == region
    assert isinstance(env["time"], str) and TIME_RE.match(env["time"]), env["time"]
    t = entry.get("Time")
    if isinstance(t, (int, float)):
        assert env["time"] == iso_utc(t), (env["time"], t)
    elif isinstance(t, str):
        assert env["time"] == t[:19] + "Z", (env["time"], t)
    elif t_range is not None:
        lo, hi = t_range
        assert iso_utc(lo) <= env["time"] <= iso_utc(hi + 1), (env["time"], t_range)
    assert env["resources"] == entry.get("Resources", []), env["resources"]
    assert env["detail"] == json.loads(entry["Detail"])
    return env


def lines_for_path(output, path):
    """Line numbers that output attributes to file `path`: 'line N of PATH',
    'PATH:N', 'PATH, line N', 'PATH line N' (anywhere on a line naming PATH)."""
    nums = set()
    for l in output.splitlines():
        if path not in l:
            continue
        for m in re.finditer(r"line\s+(\d+)", l):
            nums.add(int(m.group(1)))
        for m in re.finditer(re.escape(path) + r":(\d+)", l):
            nums.add(int(m.group(1)))
    return nums


def assert_config_error(rc, out, path, lines, *needles):
    """httpd -t failed and named file `path` with one of `lines` (a line
    number or a collection of acceptable ones); the output contains every
    needle (case-insensitive)."""
    if isinstance(lines, int):
        lines = {lines}
    lines = set(lines)
    assert rc != 0, "httpd -t accepted the bad config:\n" + out
    assert "Syntax OK" not in out, out
    nums = lines_for_path(out, path)
    assert nums, "output does not name %s with a line number:\n%s" % (path, out)
    assert nums & lines, "lines %s named, expected one of %s:\n%s" % (
        sorted(nums), sorted(lines), out)
    for n in needles:
        assert n.lower() in out.lower(), "%r not in output:\n%s" % (n, out)
