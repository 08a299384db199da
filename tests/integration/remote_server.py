"""HTTP servers for the tests of remote stores (src/remote).

  - Nginx: a real nginx (Debian nginx-light or nginx) on 127.0.0.1 at a free
    port, started as a child (`daemon off`) with a config written here, stopped
    (and reaped) on exit. Serves a directory with byte ranges, ETags and
    keep-alive; optionally HTTPS + HTTP/2 with a self-signed certificate, basic
    auth ({PLAIN} htpasswd) or a bearer token. Every request is logged to an
    access log that requests() parses: method, path, status, body bytes sent,
    connection serial, the Range and conditional headers, protocol.
  - FaultProxy: a small HTTP/1.1 proxy (a thread of the test process) in front
    of a server, injecting faults by rule: added latency, dropped connections,
    error statuses (with Retry-After), truncated or over-long bodies, bodies
    that stall, a Range header stripped (the server answers 200) or a wrong
    Content-Range.
  - make_brickfs_store(): a store written by brickfs itself (create, mount,
    cp of TIFF slices, umount).
"""

import http.client
import os
import re
import shutil
import signal
import socket
import socketserver
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler

import brickfs_testlib as T

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def have_nginx():
    return os.path.exists(NGINX)


def make_cert(directory):
    """A self-signed certificate for 127.0.0.1 / localhost: (cert, key) paths."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    r = T.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
               "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
               "-keyout", key, "-out", cert], timeout=60)
    if not r.ok:
        raise AssertionError("openssl failed:\n" + r.describe())
    return cert, key


_LOG_RE = re.compile(r'^(\S+) (\S+) (\d+) (\d+) (\d+) "([^"]*)" "([^"]*)" "([^"]*)" (\S+)$')


class Nginx:
    """with Nginx(root_dir, workdir) as n: n.url -> "http://127.0.0.1:PORT"."""

    def __init__(self, root, workdir, tls=False, basic_auth=None, bearer=None):
        self.root = os.path.abspath(root)
        self.dir = os.path.abspath(workdir)
        self.tls = tls
        self.basic_auth = basic_auth   # (user, password)
        self.bearer = bearer           # token
        self.port = None
        self.proc = None
        self.log_path = os.path.join(self.dir, "access.log")
        self.cert = None

    @property
    def url(self):
        return "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.port)

    def _config(self):
        auth = ""
        if self.basic_auth:
            pw = os.path.join(self.dir, "htpasswd")
            with open(pw, "w") as f:
                f.write("%s:{PLAIN}%s\n" % self.basic_auth)
            auth = 'auth_basic "brickfs"; auth_basic_user_file %s;' % pw
        if self.bearer:
            auth = 'if ($http_authorization != "Bearer %s") { return 401; }' % self.bearer
        listen = "listen 127.0.0.1:%d;" % self.port
        if self.tls:
            self.cert, key = make_cert(self.dir)
            listen = ("listen 127.0.0.1:%d ssl http2; ssl_certificate %s; ssl_certificate_key %s;"
                      % (self.port, self.cert, key))
        user = "user root root;" if os.geteuid() == 0 else ""
        tmp = os.path.join(self.dir, "tmp")
        os.makedirs(tmp, exist_ok=True)
        return """
%(user)s
worker_processes 1;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log warn;
events { worker_connections 512; }
http {
  log_format brickfs '$request_method $uri $status $body_bytes_sent $connection "$http_range" "$http_if_none_match" "$http_if_match" $server_protocol';
  access_log %(log)s brickfs;
  client_body_temp_path %(tmp)s/body;
  proxy_temp_path %(tmp)s/proxy;
  fastcgi_temp_path %(tmp)s/fastcgi;
  uwsgi_temp_path %(tmp)s/uwsgi;
  scgi_temp_path %(tmp)s/scgi;
  default_type application/octet-stream;
  types { application/json json; }
  sendfile on;
  keepalive_timeout 60;
  keepalive_requests 100000;
  server {
    %(listen)s
    root %(root)s;
    location / { %(auth)s }
  }
}
""" % {"user": user, "dir": self.dir, "log": self.log_path, "tmp": tmp, "listen": listen,
       "root": self.root, "auth": auth}

    def __enter__(self):
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(self._config())
        self._out = open(os.path.join(self.dir, "nginx.out"), "wb")
        self.proc = subprocess.Popen([NGINX, "-p", self.dir, "-e", os.path.join(self.dir, "error.log"),
                                      "-c", conf, "-g", "daemon off;"],
                                     stdout=self._out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        if not wait_port(self.port):
            self.stop()
            raise AssertionError("nginx did not start:\n" + self.error_log())
        return self

    def error_log(self):
        out = []
        for name in ("nginx.out", "error.log"):
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    out.append(f.read()[-3000:])
            except OSError:
                pass
        return "\n".join(out)

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None
        self._out.close()

    def __exit__(self, *exc):
        self.stop()

    def requests(self):
        """The access log so far: a list of dicts."""
        out = []
        try:
            with open(self.log_path) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return out
        for line in lines:
            m = _LOG_RE.match(line)
            if not m:
                continue
            out.append({"method": m.group(1), "path": m.group(2), "status": int(m.group(3)),
                        "bytes": int(m.group(4)), "conn": int(m.group(5)),
                        "range": m.group(6) if m.group(6) != "-" else "",
                        "if_none_match": m.group(7) if m.group(7) != "-" else "",
                        "if_match": m.group(8) if m.group(8) != "-" else "",
                        "protocol": m.group(9)})
        return out

    def mark(self):
        """A position in the access log: requests(since=mark) lists what came after."""
        return len(self.requests())

    def since(self, mark):
        return self.requests()[mark:]


# ------------------------------------------------------------ fault proxy ----


class Rule:
    """A fault for requests whose path contains `match` ("" = any), applied to the
    next `count` of them (-1: all). kinds:
      delay       sleep `ms` then forward
      drop        close the connection without answering
      status      answer `status` (and Retry-After: `retry_after` when given)
      truncate    forward; send the full headers but only half the body, then close
      stall       forward; send the headers and a few bytes, then hang `ms` and close
      hang        read the request and answer nothing for `ms`, then close
      ignore_range  forward without the Range header (the server answers 200)
      bad_range   forward; shift the first byte of Content-Range by one
      extra       forward; append 16 bytes to the body (Content-Length adjusted)
    """

    def __init__(self, kind, match="", count=1, **params):
        self.kind = kind
        self.match = match
        self.count = count
        self.params = params
        self.hits = 0


class FaultProxy:
    def __init__(self, upstream_port, latency_ms=0):
        self.upstream_port = upstream_port
        self.latency_ms = latency_ms
        self.rules = []
        self.lock = threading.Lock()
        self.seen = []   # (method, path, range, fault kind or "")
        self.server = None
        self.thread = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def add(self, kind, match="", count=1, **params):
        r = Rule(kind, match, count, **params)
        with self.lock:
            self.rules.append(r)
        return r

    def clear(self):
        with self.lock:
            self.rules = []

    def _take(self, path):
        with self.lock:
            for r in self.rules:
                if r.count != 0 and r.match in path:
                    if r.count > 0:
                        r.count -= 1
                    r.hits += 1
                    return r
        return None

    def __enter__(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _upstream(self):
                if getattr(self, "_conn", None) is None:
                    self._conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port,
                                                            timeout=30)
                return self._conn

            def _forward(self, drop_range=False):
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("connection", "keep-alive", "proxy-connection")}
                if drop_range:
                    headers = {k: v for k, v in headers.items() if k.lower() != "range"}
                for attempt in range(2):
                    conn = self._upstream()
                    try:
                        conn.request(self.command, self.path, headers=headers)
                        resp = conn.getresponse()
                        body = resp.read()
                        return resp.status, resp.reason, resp.getheaders(), body
                    except (http.client.HTTPException, OSError):
                        conn.close()
                        self._conn = None
                        if attempt:
                            raise

            def _send(self, status, reason, headers, body, body_to_send=None, length=None):
                self.send_response(status, reason)
                for k, v in headers:
                    if k.lower() in ("connection", "keep-alive", "transfer-encoding",
                                     "content-length"):
                        continue
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body if body_to_send is None else body_to_send)
                self.wfile.flush()

            def _handle(self):
                rule = proxy._take(self.path)
                kind = rule.kind if rule else ""
                with proxy.lock:
                    proxy.seen.append((self.command, self.path, self.headers.get("Range", ""), kind))
                if proxy.latency_ms:
                    time.sleep(proxy.latency_ms / 1000.0)
                p = rule.params if rule else {}
                if kind == "delay":
                    time.sleep(p.get("ms", 100) / 1000.0)
                if kind == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if kind == "hang":
                    time.sleep(p.get("ms", 5000) / 1000.0)
                    self.close_connection = True
                    return
                if kind == "status":
                    self.send_response(p.get("status", 503))
                    if "retry_after" in p:
                        self.send_header("Retry-After", str(p["retry_after"]))
                    self.send_header("Content-Length", "5")
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(b"fault")
                    return
                status, reason, headers, body = self._forward(drop_range=(kind == "ignore_range"))
                if kind == "truncate" and len(body) > 1:
                    self._send(status, reason, headers, body, body_to_send=body[:len(body) // 2])
                    self.close_connection = True
                    return
                if kind == "stall" and len(body) > 1:
                    self._send(status, reason, headers, body, body_to_send=b"")
                    self.wfile.write(body[:1])
                    self.wfile.flush()
                    time.sleep(p.get("ms", 5000) / 1000.0)
                    self.close_connection = True
                    return
                if kind == "bad_range":
                    fixed = []
                    for k, v in headers:
                        if k.lower() == "content-range":
                            m = re.match(r"bytes (\d+)-(\d+)/(\S+)", v)
                            if m:
                                v = "bytes %d-%d/%s" % (int(m.group(1)) + 1, int(m.group(2)) + 1,
                                                        m.group(3))
                        fixed.append((k, v))
                    headers = fixed
                if kind == "extra":
                    body = body + b"\xEE" * 16
                    headers = [(k, v) for k, v in headers if k.lower() != "content-range"] + [
                        (k, v) for k, v in headers if k.lower() == "content-range"]
                self._send(status, reason, headers, body)

            def finish(self):
                try:
                    super().finish()
                finally:
                    if getattr(self, "_conn", None) is not None:
                        self._conn.close()
                        self._conn = None

            def do_GET(self):
                try:
                    self._handle()
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            do_HEAD = do_GET

        class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request, client_address):
                pass  # clients that drop connections are what the tests make

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


# -------------------------------------------------------------- the store ----


def make_brickfs_store(root, store, vol, block, brick, options=()):
    """Writes `vol` (z, y, x) into a new store by brickfs itself: create, mount,
    cp of one TIFF per z, umount. Returns the store path."""
    T.brickfs_create(store, vol.shape, str(vol.dtype), block=block, brick=brick)
    src = os.path.join(root, "slices")
    T.write_stack(src, vol, lambda z: "img_%05d.tif" % z, encodings=["raw"])
    mnt = os.path.join(root, "mnt-make")
    with T.Mount(store, mnt, list(options)) as m:
        names = sorted(os.listdir(src))
        r = T.cp([os.path.join(src, n) for n in names], os.path.join(mnt, "z"), timeout=300)
        if not r.ok:
            raise AssertionError("cp into the mount failed:\n" + r.describe())
        m.umount()
        if m.umount_result is not None and not m.umount_result.ok:
            raise AssertionError("umount failed:\n" + m.umount_result.describe())
    shutil.rmtree(src)
    return store
