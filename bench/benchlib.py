"""Shared plumbing of the mod_apidest benchmarks (bench/ingest, bench/delivery,
bench/e2e, bench/scale, bench/run-all).

Everything runs on this machine and talks to 127.0.0.1 only: an httpd
(/usr/sbin/apache2) loading the built mod_apidest and the baseline handler
(bench/trivial), the C sink (bench/sink.c) and the bare libcurl client
(bench/curlbase.c). Every loop is bounded in count and in time, and every
process started here is stopped on exit (also on SIGINT/SIGTERM).

Environment:
  APIDEST_MODULE  the mod_apidest.so to measure (default: <repo>/.libs/mod_apidest.so
                  when it exists, else one built from the HEAD commit under
                  $BENCH_BUILD/src-<commit>)
  BENCH_BUILD     where the tools are built (default /tmp/apidest-bench/build)
  BENCH_OUT       where server roots and results go (default /tmp/apidest-bench)
  HTTPD           httpd binary (default /usr/sbin/apache2)
"""

import argparse
import atexit
import http.client
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path.insert(0, os.path.join(REPO, "t"))
from ports import free_port  # noqa: E402  (the tests' choice of httpd port)
OUT = os.environ.get("BENCH_OUT", "/tmp/apidest-bench")
BUILD = os.environ.get("BENCH_BUILD", os.path.join(OUT, "build"))
HTTPD = os.environ.get("HTTPD", "/usr/sbin/apache2")
AS_ROOT = os.geteuid() == 0

# ---- time bound ----------------------------------------------------------------


class BudgetExceeded(Exception):
    pass


class Budget:
    """A wall-clock bound for the whole command."""

    def __init__(self, seconds):
        self.t0 = time.monotonic()
        self.end = self.t0 + seconds

    def left(self):
        return self.end - time.monotonic()

    def need(self, seconds, what):
        if self.left() < seconds:
            raise BudgetExceeded("%s needs ~%.0f s, %.0f s left of the time bound" % (
                what, seconds, max(0, self.left())))


def log(*a):
    sys.stderr.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), " ".join(str(x) for x in a)))
    sys.stderr.flush()


# ---- cleanup -------------------------------------------------------------------

_cleanups = []


def on_exit(fn):
    _cleanups.append(fn)
    return fn


def _run_cleanups():
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception as e:  # keep cleaning
            log("cleanup failed:", e)


def _on_signal(sig, frame):
    log("signal %d: stopping what this benchmark started" % sig)
    _run_cleanups()
    os._exit(128 + sig)


atexit.register(_run_cleanups)
signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)
signal.signal(signal.SIGHUP, _on_signal)

# ---- building ------------------------------------------------------------------


def run(cmd, timeout=600, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if p.returncode != 0:
        raise RuntimeError("%s failed (rc %d):\n%s%s" % (" ".join(cmd), p.returncode,
                                                        p.stdout[-3000:], p.stderr[-3000:]))
    return p.stdout


def _newer(src, dst):
    return not os.path.exists(dst) or os.path.getmtime(src) > os.path.getmtime(dst)


def build_tools():
    """Compile the sink, the libcurl client and the baseline handler module."""
    need("gcc", "gcc")
    need("curl-config", "libcurl4-openssl-dev")
    if not (shutil.which("apxs") or shutil.which("apxs2")):
        need("apxs", "apache2-dev")
    os.makedirs(BUILD, exist_ok=True)
    os.chmod(OUT, 0o755)
    sink = os.path.join(BUILD, "sink")
    curlbase = os.path.join(BUILD, "curlbase")
    trivial = os.path.join(BUILD, "mod_bench_trivial.so")
    gdbm_put = os.path.join(BUILD, "gdbm_put")
    if (_newer(os.path.join(BENCH, "gdbm_put.c"), gdbm_put)
            or _newer(os.path.join(BENCH, "put_records.h"), gdbm_put)):
        run(["gcc", "-O2", "-Wall", "-o", gdbm_put, os.path.join(BENCH, "gdbm_put.c"), "-lgdbm"])
    if _newer(os.path.join(BENCH, "sink.c"), sink):
        run(["gcc", "-O2", "-Wall", "-o", sink, os.path.join(BENCH, "sink.c")])
    if _newer(os.path.join(BENCH, "curlbase.c"), curlbase):
        libs = run(["curl-config", "--libs"]).split()
        run(["gcc", "-O2", "-Wall", "-o", curlbase, os.path.join(BENCH, "curlbase.c")] + libs)
    src = os.path.join(BENCH, "trivial", "mod_bench_trivial.c")
    if _newer(src, trivial):
        d = os.path.join(BUILD, "trivial")
        os.makedirs(d, exist_ok=True)
        shutil.copy(src, d)
        apxs = shutil.which("apxs") or shutil.which("apxs2") or "/usr/bin/apxs"
        run([apxs, "-c", "mod_bench_trivial.c"], cwd=d)
        shutil.copy(os.path.join(d, ".libs", "mod_bench_trivial.so"), trivial)
    return {"sink": sink, "curlbase": curlbase, "trivial": trivial, "gdbm_put": gdbm_put}


def find_module():
    """The mod_apidest.so to measure: $APIDEST_MODULE, else an in-tree build
    (<repo>/.libs/mod_apidest.so), else one built out of tree from the
    repository's HEAD commit (git archive; cached per commit under $BUILD), so
    that a working tree in the middle of an edit does not get in the way."""
    m = os.environ.get("APIDEST_MODULE")
    if m:
        if not os.path.exists(m):
            raise RuntimeError("APIDEST_MODULE=%s does not exist" % m)
        return m
    m = os.path.join(REPO, ".libs", "mod_apidest.so")
    if os.path.exists(m):
        return m
    rev = run(["git", "-C", REPO, "rev-parse", "HEAD"], timeout=30).strip()
    src = os.path.join(BUILD, "src-" + rev[:12])
    so = os.path.join(src, ".libs", "mod_apidest.so")
    if os.path.exists(so):
        return so
    shutil.rmtree(src, ignore_errors=True)
    os.makedirs(src)
    log("building mod_apidest from commit %s in %s" % (rev[:12], src))
    archive = subprocess.Popen(["git", "-C", REPO, "archive", "--format=tar", rev],
                               stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", src], stdin=archive.stdout, check=True, timeout=120)
    archive.wait(60)
    run(["autoreconf", "-fi"], cwd=src, timeout=600)
    run(["./configure"], cwd=src, timeout=600)
    run(["make", "-j2", "mod_apidest.la"], cwd=src, timeout=900)
    return so


_module_path = None


def git_describe():
    """The commit measured (with a note when the module is not built from it)."""
    if _module_path and "/src-" in _module_path:
        return _module_path.split("/src-")[1].split("/")[0]
    try:
        rev = run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], timeout=10).strip()
        dirty = run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no",
                     "--", "mod_apidest"], timeout=10).strip()
        return rev + ("+uncommitted changes in mod_apidest/" if dirty else "")
    except Exception:
        return "unknown"


def machine():
    info = {"nproc": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    info["mem_gib"] = round(int(line.split()[1]) / 1048576, 1)
        info["kernel"] = os.uname().release
        info["httpd"] = run([HTTPD, "-v"], timeout=10).splitlines()[0].split(":", 1)[1].strip()
        info["curl"] = run(["curl-config", "--version"], timeout=10).strip()
    except Exception:
        pass
    return info


def cpu_ticks():
    """(all, steal) jiffies of the machine so far, from /proc/stat: steal is
    the time the hypervisor gave this VM's CPUs to someone else."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v[:8]), v[7]
    except (OSError, ValueError, IndexError):
        return 0, 0


def steal_share(before, after):
    """Steal time between two cpu_ticks() as a share of all CPU time."""
    total = after[0] - before[0]
    return (after[1] - before[1]) / total if total > 0 else 0.0


# ---- small helpers -------------------------------------------------------------


def http_req(port, method, path, body=None, headers=None, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def wait_until(fn, timeout, interval=0.05):
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() >= end:
            return None
        time.sleep(interval)


def pid_alive(pid):
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
        if st[st.rindex(")") + 2:].split()[0] == "Z":
            try:
                os.waitpid(pid, os.WNOHANG)
            except OSError:
                pass
            return False
    except (OSError, ValueError):
        return False
    return True


def proc_status(pid):
    """VmRSS / VmHWM / Threads of a process, in kB (Threads: count)."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "VmSize", "Threads", "RssAnon", "RssFile"):
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    """User + system CPU seconds used so far by these processes (all their
    threads). A noise-robust cost on a shared machine: CPU time per request
    does not depend on how much of the machine others take."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                st = f.read()
            x = st[st.rindex(")") + 2:].split()
            total += int(x[11]) + int(x[12])
        except (OSError, ValueError, IndexError):
            pass
    return total / float(_CLK_TCK)


def pct(values, p):
    if not values:
        return 0.0
    v = sorted(values)
    i = int(round(p / 100.0 * (len(v) - 1)))
    return float(v[min(i, len(v) - 1)])


def ratio(a, b):
    return (a / b) if b else float("nan")


# ---- the sink ------------------------------------------------------------------


class Sink:
    """bench/sink.c on an ephemeral 127.0.0.1 port."""

    def __init__(self, tools):
        self.proc = subprocess.Popen([tools["sink"], "-p", "0"], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError("sink did not start: %r" % line)
        self.port = int(line.split()[1])
        on_exit(self.stop)

    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def ctl(self, path):
        st, body = http_req(self.port, "GET", "/_ctl/" + path)
        if st != 200:
            raise RuntimeError("sink control %s: %d" % (path, st))
        return body

    def set(self, code=None, retry=None, hang=None):
        q = []
        if code is not None:
            q.append("code=%d" % code)
        if retry is not None:
            q.append("retry=%d" % retry)
        if hang is not None:
            q.append("hang=%d" % (1 if hang else 0))
        return json.loads(self.ctl("set?" + "&".join(q)))

    def reset(self):
        self.ctl("reset")

    def stats(self):
        return json.loads(self.ctl("stats"))

    def lastbody(self):
        return self.ctl("lastbody")

    def rss_kb(self):
        return proc_status(self.proc.pid).get("VmRSS", 0)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# ---- httpd ---------------------------------------------------------------------

# One set of MPM settings for the module and the baseline handler: the same
# server serves both (/events and /trivial). No process is started or stopped
# during a run (MinSpareThreads..MaxSpareThreads covers all threads), and
# keep-alive connections are never closed by the server.
MPM = """StartServers 2
ServerLimit 2
ThreadLimit 32
ThreadsPerChild 32
MaxRequestWorkers 64
MinSpareThreads 32
MaxSpareThreads 64
MaxConnectionsPerChild 0
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 60
Timeout 60
"""


class Httpd:
    """One httpd server root with mod_apidest and the baseline handler."""

    def __init__(self, name, tools, module):
        os.makedirs(OUT, exist_ok=True)
        self.root = tempfile.mkdtemp(prefix="srv-%s-" % name, dir=OUT)
        os.chmod(self.root, 0o755)
        self.port = free_port()
        self.tools = tools
        self.module = module
        self.conf = os.path.join(self.root, "httpd.conf")
        self.run_dir = os.path.join(self.root, "run")
        self.store_dir = os.path.join(self.root, "store")
        self.error_log = os.path.join(self.root, "error.log")
        self.pid_file = os.path.join(self.root, "httpd.pid")
        for d in (self.run_dir, self.store_dir, os.path.join(self.root, "htdocs")):
            os.makedirs(d, exist_ok=True)
            os.chmod(d, 0o777)
        self.master = None
        self.known = set()
        on_exit(self.cleanup)

    def write_conf(self, body, sync=False, server_extra="", apidest=True):
        """apidest=False: the baseline server, the trivial handler alone (no
        mod_apidest, so no apidestd either)."""
        self.apidest = apidest
        mods = "\n".join("LoadModule %s /usr/lib/apache2/modules/%s" % m for m in (
            ("mpm_event_module", "mod_mpm_event.so"),
            ("authz_core_module", "mod_authz_core.so"),
            ("authz_host_module", "mod_authz_host.so")))
        text = """# generated by bench/benchlib.py
ServerRoot "{root}"
Listen 127.0.0.1:{port}
ServerName 127.0.0.1
PidFile "{root}/httpd.pid"
ErrorLog "{root}/error.log"
LogLevel warn
DefaultRuntimeDir "{run}"
DocumentRoot "{root}/htdocs"
# as Debian's apache2.conf: no .htaccess lookups, nothing outside the docroot
<Directory />
    AllowOverride None
    Require all denied
</Directory>
<Directory "{root}/htdocs">
    Require all granted
</Directory>
{user}{mods}
{mpm}
LoadModule bench_trivial_module "{trivial}"
<Location /trivial>
    SetHandler bench-trivial
</Location>
""".format(root=self.root, port=self.port, run=self.run_dir,
           user="User daemon\nGroup daemon\n" if AS_ROOT else "", mods=mods, mpm=MPM,
           trivial=self.tools["trivial"])
        if apidest:
            text += """LoadModule apidest_module "{module}"
ApiDestStore "dbm:gdbm:{store}/apidest"
ApiDestStoreSync {sync}
{extra}
<Location /events>
    SetHandler apidest-events
    Require ip 127.0.0.1
</Location>
<Location /apidest>
    SetHandler apidest-admin
    Require ip 127.0.0.1
</Location>
# ---- benchmark configuration ----
{body}
""".format(module=self.module, store=self.store_dir, sync="on" if sync else "off",
           extra=server_extra, body=body)
        with open(self.conf, "w") as f:
            f.write(text)
        os.chmod(self.conf, 0o644)

    def _httpd(self, *args, timeout=60):
        env = {k: v for k, v in os.environ.items() if not k.startswith("APACHE_")}
        env["LANG"] = "C"
        return subprocess.run([HTTPD, "-d", self.root, "-f", self.conf] + list(args),
                              capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=self.root)

    def read_pid(self, path):
        try:
            with open(path) as f:
                return int(f.read().strip() or 0) or None
        except (OSError, ValueError):
            return None

    def daemon_pid(self):
        p = self.read_pid(os.path.join(self.run_dir, "apidestd.pid"))
        return p if p and pid_alive(p) else None

    def _descendants(self, pid):
        kids = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open("/proc/%s/stat" % d) as f:
                        st = f.read()
                    kids.setdefault(int(st[st.rindex(")") + 2:].split()[1]), []).append(int(d))
                except (OSError, ValueError, IndexError):
                    pass
        out, todo = [], [pid]
        while todo:
            for c in kids.get(todo.pop(), []):
                out.append(c)
                todo.append(c)
        return out

    def start(self, timeout=60, wait_daemon=None):
        if wait_daemon is None:
            wait_daemon = getattr(self, "apidest", True)
        p = self._httpd("-k", "start")
        if p.returncode != 0:
            raise RuntimeError("httpd -k start failed: %s%s\n%s" % (p.stdout, p.stderr,
                                                                    self.log_tail()))
        self.master = wait_until(lambda: (self.read_pid(self.pid_file)
                                          if pid_alive(self.read_pid(self.pid_file)) else None),
                                 timeout)
        if not self.master:
            raise RuntimeError("httpd did not start\n" + self.log_tail())
        self.known.add(self.master)

        def up():
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return True
            except OSError:
                return False
        if not wait_until(up, timeout):
            raise RuntimeError("httpd not accepting\n" + self.log_tail())
        if wait_daemon and not wait_until(self.daemon_pid, timeout):
            raise RuntimeError("apidestd did not start\n" + self.log_tail())
        self.known.update(self._descendants(self.master))
        return self

    def stop(self, timeout=30):
        if not self.master:
            return
        self.known.update(self._descendants(self.master))
        master = self.master
        try:
            self._httpd("-k", "stop", timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        wait_until(lambda: not pid_alive(master), timeout)
        wait_until(lambda: not any(pid_alive(p) for p in self.known), 10)
        for p in list(self.known):
            if pid_alive(p):
                log("killing leftover pid", p)
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
        self.known.clear()
        self.master = None

    def pids(self):
        """The master and all its descendants (children, apidestd)."""
        if not self.master:
            return []
        return [self.master] + self._descendants(self.master)

    def cpu(self):
        """{"children": s, "apidestd": s}: CPU seconds used so far."""
        d = self.daemon_pid() if getattr(self, "apidest", True) else None
        pids = self.pids()
        return {"children": cpu_seconds([p for p in pids if p != d]),
                "apidestd": cpu_seconds([d]) if d else 0.0}

    def cleanup(self):
        self.stop()
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(self.root, ignore_errors=True)

    def wipe_store(self):
        for f in os.listdir(self.store_dir):
            os.unlink(os.path.join(self.store_dir, f))

    def store_bytes(self):
        """(apparent size, allocated bytes) of the store's files."""
        size = alloc = 0
        for f in os.listdir(self.store_dir):
            st = os.stat(os.path.join(self.store_dir, f))
            size += st.st_size
            alloc += st.st_blocks * 512
        return size, alloc

    def status(self):
        try:
            st, body = http_req(self.port, "GET", "/apidest/status", timeout=10)
        except OSError:
            return None
        if st != 200:
            return None
        try:
            return json.loads(body)
        except ValueError:
            return None

    def log_tail(self, n=30):
        try:
            with open(self.error_log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)


def destination(name, url, extra=""):
    return """<ApiDestDestination {name}>
    Endpoint {url}
    HttpMethod POST
    Timeout 600
    InvocationRateLimit 1000000
    AllowPrivateEndpoint on
{extra}</ApiDestDestination>
""".format(name=name, url=url, extra=extra)


def rule(name, pattern, dest, target="t"):
    return """<ApiDestRule {name}>
    EventBus default
    EventPattern '{pattern}'
    State ENABLED
    <ApiDestTarget {target}>
        Destination {dest}
    </ApiDestTarget>
</ApiDestRule>
""".format(name=name, pattern=json.dumps(pattern), dest=dest, target=target)


# ---- bodies --------------------------------------------------------------------


def detail_of(size, extra=None):
    """A Detail string (a JSON object as text) of exactly `size` bytes."""
    d = dict(extra or {})
    d["pad"] = ""
    base = len(json.dumps(d, separators=(",", ":")))
    d["pad"] = "x" * max(0, size - base)
    return json.dumps(d, separators=(",", ":"))


def put_events_body(entries):
    return json.dumps({"Entries": entries}, separators=(",", ":"))


AMZ_HEADERS = ["Content-Type: application/x-amz-json-1.1",
               "X-Amz-Target: AWSEvents.PutEvents"]


# ---- load generators -----------------------------------------------------------


def curlbase(tools, url, bodies, count, conc, seconds, rate=0, headers=None, plain=False):
    """Run bench/curlbase.c; bodies: list of str (one request body each, cycled)."""
    fd, path = tempfile.mkstemp(prefix="bodies-", suffix=".txt", dir=OUT)
    with os.fdopen(fd, "w") as f:
        for b in bodies:
            assert "\n" not in b
            f.write(b + "\n")
    cmd = [tools["curlbase"], "-u", url, "-B", path, "-n", str(count), "-c", str(conc),
           "-t", str(seconds)]
    if rate:
        cmd += ["-r", str(rate)]
    if plain:
        cmd += ["-k"]
    for h in headers or []:
        cmd += ["-H", h]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30)
    finally:
        os.unlink(path)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        r = json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError("curlbase failed: %s %s" % (p.stdout, p.stderr))
    # the client's own CPU time (the only child reaped meanwhile)
    r["cpu_s"] = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    return r


class PerfStat:
    """perf stat counting syscalls and context switches of some processes
    (all their threads) until stop(); stop() returns {event: count}."""

    def __init__(self, pids):
        need("perf", "linux-perf")
        self.out = os.path.join(OUT, "perf-stat-%d.txt" % os.getpid())
        self.p = subprocess.Popen(
            ["perf", "stat", "-x", ",", "-e", "raw_syscalls:sys_enter,context-switches",
             "-p", ",".join(str(p) for p in pids), "-o", self.out],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        on_exit(self.kill)
        time.sleep(0.2)  # attached before the measured run starts

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()

    def stop(self):
        self.p.send_signal(signal.SIGINT)
        self.p.wait(timeout=30)
        counts = {}
        with open(self.out) as f:
            for line in f:
                parts = line.strip().split(",")
                if len(parts) > 2 and parts[0].replace(".", "").isdigit():
                    counts[parts[2]] = float(parts[0])
        os.unlink(self.out)
        return counts


def need(tool, package):
    if not shutil.which(tool):
        raise SystemExit("bench: %s is missing: apt-get install -y %s" % (tool, package))


def wrk(url, script, args, seconds, conns, threads=1):
    need("wrk", "wrk")
    cmd = ["wrk", "-t", str(threads), "-c", str(conns), "-d", "%ds" % seconds,
           "--timeout", "10s", "-s", script, url, "--"] + [str(a) for a in args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    for line in p.stdout.splitlines():
        if line.startswith("JSON "):
            r = json.loads(line[5:])
            r["rps"] = r["requests"] / (r["duration_us"] / 1e6) if r["duration_us"] else 0
            return r
    raise RuntimeError("wrk gave no summary: %s %s" % (p.stdout, p.stderr))


# ---- command line and output ---------------------------------------------------


def common_args(description, default_budget):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--budget", type=float, default=default_budget,
                    help="wall-clock bound of the whole command, seconds (default %(default)s)")
    ap.add_argument("--json", help="also write the results as JSON to this file")
    return ap


def setup():
    os.makedirs(OUT, exist_ok=True)
    tools = build_tools()
    module = find_module()
    global _module_path
    _module_path = module
    log("module:", module, "(%s)" % git_describe())
    return tools, module


def table(rows, headers):
    """Plain text table."""
    cols = [headers] + [[("%s" % c) for c in r] for r in rows]
    w = [max(len(r[i]) for r in cols) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w[i]) for i, c in enumerate(r)) for r in cols]
    lines.insert(1, "  ".join("-" * x for x in w))
    return "\n".join(lines)


def write_json(path, data):
    if path:
        with open(path, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)


def fmt(x, nd=0):
    if isinstance(x, float):
        if x != x:
            return "n/a"
        return ("%%.%df" % nd) % x
    return str(x)


def spread_conf(ndest, sink):
    """ndest destinations at paths of the sink, each with the rule for its
    detail-type (bench/delivery, bench/profile --destinations)."""
    out = []
    for k in range(ndest):
        out.append(destination("d%d" % k, sink.url("/d/%d" % k)))
        out.append(rule("r%d" % k, {"detail-type": ["bench.d%d" % k]}, "d%d" % k))
    return "".join(out)


def spread_bodies(ndest, detail_bytes=400):
    """PutEvents bodies of 10 entries each, the detail-types spread evenly over
    the destinations when cycled through."""
    n = max(1, ndest // 10) if ndest >= 10 else 1
    bodies = []
    k = 0
    for _ in range(n):
        entries = []
        for _ in range(10):
            entries.append({"Source": "bench.delivery", "DetailType": "bench.d%d" % (k % ndest),
                            "Detail": detail_of(detail_bytes)})
            k += 1
        bodies.append(put_events_body(entries))
    return bodies
