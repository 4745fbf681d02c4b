#!/usr/bin/env python3
"""A recording HTTP/1.1 sink for mod_apidest's tests and quick start.

As a library (the integration tests)::

    from sink import Sink
    s = Sink()              # port=0: pick a free port on 127.0.0.1 at start()
    s.start()
    s.respond([500, 500, 200])           # next three answers, then the default
    s.set_default(503, headers={"Retry-After": "1"})
    s.wait_for(3, timeout=10)            # True once 3 requests were recorded
    s.requests                           # list of dicts, see Sink._record
    s.stop(); s.start()                  # down, then up again on the same port

As a program (the quick start's example API)::

    python3 t/sink.py --port 8081 --out /tmp/sink.jsonl

appends one JSON line per request: {"time", "method", "path", "headers", "body"}.

Only the Python standard library is used. Every request is recorded when its
body has been read, before the answer is chosen and sent.
"""

import argparse
import collections
import json
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["Sink", "Response"]


class Response:
    """One programmed answer.

    status:  HTTP status code to send.
    delay:   seconds to sleep before answering (the answer is still sent).
    hang:    seconds to sleep, then drop the connection without answering
             (a sink that hangs / resets).
    headers: extra response headers, e.g. {"Retry-After": "1"}.
    body:    response body (bytes or str).
    cut:     send only this many bytes of the body (its full length
             declared), then drop the connection: a body cut short.
    """

    __slots__ = ("status", "delay", "hang", "headers", "body", "cut")

    def __init__(self, status=200, delay=0.0, hang=0.0, headers=None, body=b"", cut=None):
        self.status = int(status)
        self.delay = float(delay)
        self.hang = float(hang)
        self.headers = dict(headers or {})
        self.body = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        self.cut = cut

    @classmethod
    def of(cls, spec):
        if isinstance(spec, Response):
            return spec
        if isinstance(spec, int):
            return cls(status=spec)
        if isinstance(spec, dict):
            return cls(**spec)
        raise TypeError("response spec must be int, dict or Response: %r" % (spec,))

    def __repr__(self):
        return "Response(%d, delay=%s, hang=%s, headers=%r)" % (
            self.status, self.delay, self.hang, self.headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, sink):
        self.sink = sink
        self._conns = set()
        self._conns_lock = threading.Lock()
        super().__init__(addr, _Handler)

    # Track the accepted sockets so that stop() also ends kept-alive
    # connections: a stopped sink must not answer on an old connection.
    def process_request(self, request, client_address):
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def drop_connections(self):
        with self._conns_lock:
            conns = list(self._conns)
            self._conns.clear()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                c.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        # Connection resets from the client side are normal in these tests.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "apidest-test-sink/1"
    timeout = 60  # idle keep-alive connections are closed after a minute

    def log_message(self, fmt, *args):  # keep the test output clean
        pass

    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    break
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # trailers up to the empty line
                    while True:
                        t = self.rfile.readline(65537)
                        if not t or t in (b"\r\n", b"\n"):
                            break
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)  # CRLF after the chunk
            return b"".join(chunks)
        n = self.headers.get("Content-Length")
        if n:
            return self.rfile.read(int(n))
        return b""

    def _handle(self):
        sink = self.server.sink
        if sink._stopping:
            self.close_connection = True
            return
        # 100-continue: BaseHTTPRequestHandler answers it in handle_expect_100.
        body = self._read_body()
        rec = {
            "method": self.command,
            "path": self.path,
            "headers": list(self.headers.items()),
            "body": body,
            "time": time.time(),
            "client_port": self.client_address[1],
            "version": self.request_version,
        }
        resp = sink._record(rec)
        if resp.hang:
            time.sleep(resp.hang)
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if resp.delay:
            time.sleep(resp.delay)
        if sink._stopping:
            self.close_connection = True
            return
        self.send_response(resp.status)
        for k, v in resp.headers.items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(resp.body)))
        if not any(k.lower() == "content-type" for k in resp.headers):
            self.send_header("Content-Type", "text/plain")
        self.end_headers()
        if resp.cut is not None:
            self.wfile.write(resp.body[:resp.cut])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if resp.body and self.command != "HEAD":
            self.wfile.write(resp.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


class Sink:
    """A recording HTTP/1.1 server on 127.0.0.1."""

    def __init__(self, port=0, host="127.0.0.1", out=None):
        self.host = host
        self.port = port
        self.out = out  # path of a JSON-lines file to append to, or None
        self.requests = []
        self._cond = threading.Condition()
        self._queue = collections.deque()
        self._default = Response(200)
        self._server = None
        self._thread = None
        self._stopping = False
        if self.port == 0:
            # Reserve a port now so that a config can name it before start()
            # (a sink that is down at first).
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            self.port = s.getsockname()[1]
            s.close()

    # ---- lifecycle -----------------------------------------------------
    def start(self, attempts=50):
        """Start listening on self.port (the same port after a stop())."""
        if self._server is not None:
            return self
        last = None
        for _ in range(attempts):  # bounded: the port may be in TIME_WAIT use
            try:
                self._server = _Server((self.host, self.port), self)
                break
            except OSError as e:
                last = e
                time.sleep(0.1)
        else:
            raise RuntimeError("sink: cannot bind %s:%d: %s" % (self.host, self.port, last))
        self._stopping = False
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="sink-%d" % self.port, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stop listening and drop every open connection."""
        srv = self._server
        if srv is None:
            return
        self._stopping = True
        srv.shutdown()
        srv.server_close()
        srv.drop_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    @property
    def running(self):
        return self._server is not None

    def url(self, path="/"):
        return "http://%s:%d%s" % (self.host, self.port, path)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- response policy ------------------------------------------------
    def respond(self, specs):
        """Queue answers (int status, dict of Response fields, or Response),
        used in order by the next requests; then the default applies."""
        with self._cond:
            for s in specs:
                self._queue.append(Response.of(s))

    def set_default(self, status=200, **kw):
        """Answer every request beyond the queue with this (e.g. 503)."""
        with self._cond:
            self._default = Response.of(dict(status=status, **kw))

    def clear_policy(self):
        with self._cond:
            self._queue.clear()
            self._default = Response(200)

    # ---- recording ------------------------------------------------------
    def _record(self, rec):
        with self._cond:
            resp = self._queue.popleft() if self._queue else self._default
            rec["status"] = resp.status if not resp.hang else None
            self.requests.append(rec)
            self._cond.notify_all()
        if self.out:
            line = {
                "time": rec["time"],
                "method": rec["method"],
                "path": rec["path"],
                "headers": rec["headers"],
                "body": rec["body"].decode("utf-8", errors="replace"),
            }
            with self._cond:
                with open(self.out, "a", encoding="utf-8") as f:
                    f.write(json.dumps(line, ensure_ascii=False) + "\n")
        return resp

    def count(self, path=None):
        with self._cond:
            if path is None:
                return len(self.requests)
            return sum(1 for r in self.requests if r["path"] == path)

    def snapshot(self, path=None):
        with self._cond:
            return [r for r in self.requests if path is None or r["path"] == path]

    def reset(self):
        with self._cond:
            self.requests.clear()

    def wait_for(self, n, timeout=10.0, path=None, pred=None):
        """Wait until at least n requests (on path, or satisfying pred) were
        recorded; return True, or False after timeout seconds."""
        def ok():
            reqs = self.requests
            if path is not None:
                reqs = [r for r in reqs if r["path"] == path]
            if pred is not None:
                reqs = [r for r in reqs if pred(r)]
            return len(reqs) >= n
        deadline = time.monotonic() + timeout
        with self._cond:
            while not ok():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.2))
            return True

    def wait_until(self, fn, timeout=10.0):
        """Wait until fn(list of requests) is true; bounded by timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not fn(list(self.requests)):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.2))
            return True

    # ---- convenience for event deliveries -------------------------------
    def json_bodies(self, path=None):
        return [json.loads(r["body"]) for r in self.snapshot(path)]

    def event_ids(self, path=None):
        """Ids of the delivered EventBridge envelopes (bodies that parse)."""
        ids = []
        for r in self.snapshot(path):
            try:
                ids.append(json.loads(r["body"])["id"])
            except (ValueError, KeyError, TypeError):
                pass
        return ids


def main(argv=None):
    ap = argparse.ArgumentParser(description="Recording HTTP/1.1 sink (one JSON line per request).")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8081)
    ap.add_argument("--out", default="-", help="JSON-lines file to append to ('-' = stdout)")
    ap.add_argument("--status", type=int, default=200, help="status to answer with (default 200)")
    ap.add_argument("--respond", default="",
                    help="comma-separated statuses for the first requests, e.g. 500,500,200")
    args = ap.parse_args(argv)

    out = None if args.out == "-" else args.out
    sink = Sink(port=args.port, host=args.host, out=out)
    sink.set_default(args.status)
    if args.respond:
        sink.respond([int(x) for x in args.respond.split(",") if x.strip()])
    if out is None:
        orig = sink._record

        def _rec(rec):
            resp = orig(rec)
            sys.stdout.write(json.dumps({
                "time": rec["time"], "method": rec["method"], "path": rec["path"],
                "headers": rec["headers"],
                "body": rec["body"].decode("utf-8", errors="replace")},
                ensure_ascii=False) + "\n")
            sys.stdout.flush()
            return resp
        sink._record = _rec
    def _term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, _term)
    sink.start(attempts=1 if args.port else 50)
    sys.stderr.write("sink listening on http://%s:%d/ -> %s\n" % (args.host, sink.port, args.out))
    sys.stderr.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sink.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
