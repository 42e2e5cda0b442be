"""common - the HTTP plumbing shared by the kl test peers.

A peer is one process with several loopback listeners, each bound to port 0:
the API over plain HTTP and/or HTTPS, and a plain-HTTP control port that the
bats tests drive. Every API request is recorded (method, path, headers, body,
scheme, the status sent) and may be hit by a fault rule instead of being
processed. When all listeners are up, DIR/ports.json is written atomically:
{"http": p, "https": p2, "control": p3} (null for a listener not started).

Fault rules (POST /faults on the control port, a rule or a list of rules):
    {"method": "POST", "path": "regex", "scheme": "https",     -- what to match
     "status": 503, "headers": {"Retry-After": "3"},           -- what to answer
     "body": "text" | {...json...}, "content_type": "...",
     "delay": 1.5,            seconds to wait first (alone: then answer normally)
     "close": true,           close the connection without any reply
     "truncate": true,        announce a longer Content-Length, send part, close
     "huge": 20000000,        send a body of that many bytes
     "trickle": 1.0,          send the body one byte every that many seconds
     "count": 1}              next k matching requests; -1 for every one
A faulted request is recorded (with "fault": rule index) but not processed.
A peer started with --ports FILE (an earlier ports.json) listens on the same
ports again: a test can kill a peer and bring it back where the client looks.
"""

import argparse
import base64
import datetime
import json
import os
import re
import signal
import socket
import ssl
import sys
import threading
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 128 << 20            # above the verifier's 100 MiB upload limit
JSON_INDENT = 4                 # v2 envelope and session bodies (docs/protocol.md 3.3)
HTML_TYPE = "text/html; charset=UTF-8"


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def isotime(dt):
    """Python isoformat() of an aware UTC datetime, as Keylime sends it."""
    return dt.isoformat() if dt is not None else None


class Response:
    """What a route returns."""

    def __init__(self, status, body=b"", content_type=None, headers=None):
        self.status = status
        self.body = body if isinstance(body, bytes) else body.encode()
        self.content_type = content_type
        self.headers = list((headers or {}).items())


def empty(status):
    """Tornado's bare error page: no body, text/html (docs/protocol.md 3.3)."""
    return Response(status, b"", HTML_TYPE)


def json_response(status, obj, indent=None, content_type="application/json", headers=None):
    text = json.dumps(obj, indent=indent)
    return Response(status, text, content_type, headers)


class Request:
    def __init__(self, handler, body, scheme):
        self.method = handler.command
        url = urllib.parse.urlsplit(handler.path)
        self.path = url.path
        self.query = dict(urllib.parse.parse_qsl(url.query))
        self.headers = handler.headers
        self.body = body
        self.scheme = scheme
        self.client = handler.client_address[0]

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def media_type(self):
        """Content-Type without parameters, lowercased; '' when absent."""
        ct = self.headers.get("Content-Type")
        return ct.split(";", 1)[0].strip().lower() if ct else ""


class BadJson(Exception):
    pass


def parse_json(body):
    """Strict JSON: UTF-8, no NaN/Infinity, no duplicate keys."""
    def no_dups(pairs):
        out = {}
        for k, v in pairs:
            if k in out:
                raise BadJson("duplicate key %r" % k)
            out[k] = v
        return out

    def no_constants(name):
        raise BadJson("non-standard constant %s" % name)
    try:
        text = body.decode("utf-8")
        return json.loads(text, object_pairs_hook=no_dups, parse_constant=no_constants)
    except (UnicodeDecodeError, ValueError, BadJson):
        raise BadJson() from None


class Router:
    """(method, regex) -> handler(req, *groups) -> Response."""

    def __init__(self):
        self.routes = []

    def add(self, method, pattern, fn):
        self.routes.append((method, re.compile(pattern + r"\Z"), fn))

    def dispatch(self, req, not_found, bad_method=None):
        path_matched = False
        for method, rx, fn in self.routes:
            m = rx.match(req.path)
            if not m:
                continue
            path_matched = True
            if method == req.method or method == "*":
                return fn(req, *m.groups())
        if path_matched and bad_method:
            return bad_method(req)
        return not_found(req)


class Recorder:
    """Thread-safe list of recorded requests and the fault rules."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []
        self.faults = []
        self.seq = 0
        self.keep = True                # False: count only (GET /stats), no bodies kept
        self.per_second = {}            # int(time) -> [requests, bytes, max lag ms]
        self.per_second_kind = {}       # int(time) -> {kind: requests}
        self.per_kind = {}              # "POST /sessions" ... -> [requests, bytes, body bytes]

    def record(self, req, lag=0.0):
        """lag: seconds from the connection's accept to this record (0: unknown)."""
        try:
            text, b64 = req.body.decode("utf-8"), None
        except UnicodeDecodeError:
            text, b64 = None, base64.b64encode(req.body).decode()
        now = time.time()
        with self.lock:
            self.count(req, now, lag)
            self.seq += 1
            rec = {"seq": self.seq, "time": now, "scheme": req.scheme,
                   "method": req.method, "path": req.path, "query": req.query,
                   "headers": {k.lower(): v for k, v in req.headers.items()},
                   "body": text, "status": None, "fault": None}
            if b64 is not None:
                rec["body_b64"] = b64
            if self.keep:
                self.requests.append(rec)
        return rec

    def count(self, req, now, lag=0.0):
        """Requests and bytes per second and per kind, and the longest wait
        between accept and record in each second: a starved server that reads
        queued requests in bursts shows there (scripts/fleet). Lock held."""
        # The HTTP bytes as sent: request line, headers, blank line, body.
        size = (len(req.method) + len(req.path) + len(urllib.parse.urlencode(req.query))
                + 12 + sum(len(k) + len(v) + 4 for k, v in req.headers.items())
                + 2 + len(req.body))
        sec = self.per_second.setdefault(int(now), [0, 0, 0])
        sec[0] += 1
        sec[1] += size
        sec[2] = max(sec[2], round(lag * 1000))
        kind = "%s %s" % (req.method, re.sub(r"/(agents|sessions|attestations)/[^/]+",
                                             r"/\1/-", req.path))
        by_kind = self.per_second_kind.setdefault(int(now), {})
        by_kind[kind] = by_kind.get(kind, 0) + 1
        k = self.per_kind.setdefault(kind, [0, 0, 0])
        k[0] += 1
        k[1] += size
        k[2] += len(req.body)

    def match_fault(self, req):
        with self.lock:
            for i, rule in enumerate(self.faults):
                if rule["count"] == 0:
                    continue
                if rule.get("method") and rule["method"].upper() != req.method:
                    continue
                if rule.get("scheme") and rule["scheme"] != req.scheme:
                    continue
                if rule.get("path") and not re.search(rule["path"], req.path):
                    continue
                if rule["count"] > 0:
                    rule["count"] -= 1
                rule["hits"] = rule.get("hits", 0) + 1
                return i, dict(rule)
        return None, None

    def add_faults(self, rules):
        if isinstance(rules, dict):
            rules = [rules]
        if not isinstance(rules, list):
            raise ValueError("a fault rule or a list of rules")
        known = {"method", "path", "scheme", "status", "headers", "body", "content_type",
                 "delay", "close", "truncate", "huge", "trickle", "count"}
        clean = []
        for rule in rules:
            if not isinstance(rule, dict) or set(rule) - known:
                raise ValueError("unknown fault field(s): %s"
                                 % sorted(set(rule) - known if isinstance(rule, dict) else []))
            rule = dict(rule)
            rule.setdefault("count", 1)
            if not isinstance(rule["count"], int):
                raise ValueError("count must be an integer")
            if rule.get("path"):
                re.compile(rule["path"])
            clean.append(rule)
        with self.lock:
            self.faults.extend(clean)
            return len(self.faults)


def request_id(req):
    """X-Request-ID echoed with non-word characters removed (docs/protocol.md 2.1)."""
    return re.sub(r"[^A-Za-z0-9_]", "", req.header("X-Request-ID", ""))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kl-test-peer/1"
    sys_version = ""
    timeout = 60
    # Headers and body go out in two writes: with Nagle's algorithm the body
    # waits for the client's delayed ACK (40 ms a reply), which make bench
    # would count as the agent's time. Real servers (tornado) set TCP_NODELAY.
    disable_nagle_algorithm = True

    # set per server class: peer (Peer), scheme, control (bool)

    def date_time_string(self, timestamp=None):
        """The Date header, shifted by the peer's date_skew() seconds (clock-skew tests)."""
        skew = getattr(self.server.peer, "date_skew", lambda: 0)()
        return super().date_time_string((timestamp or time.time()) + skew)

    def log_message(self, fmt, *args):
        self.server.peer.log("%s %s" % (self.address_string(), fmt % args))

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    raise ValueError("body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY:
            raise ValueError("bad Content-Length")
        return self.rfile.read(length) if length else b""

    def handle_one(self):
        peer = self.server.peer
        try:
            body = self.read_body()
        except (ValueError, OSError):
            self.close_connection = True
            self.send_plain(empty(400), "")
            return
        req = Request(self, body, self.server.scheme)
        if self.server.control:
            try:
                resp = peer.control(req)
            except Exception:
                peer.log("control error: " + traceback.format_exc())
                resp = json_response(500, {"error": traceback.format_exc(limit=2)})
            self.send_plain(resp, None)
            return
        # The wait since accept, for the first request of a connection only
        # (a later one waited for the client, not for the server).
        accepted = self.client_address[2] if len(self.client_address) > 2 else None
        lag = time.time() - accepted if accepted and not getattr(self, "lag_done", False) else 0.0
        self.lag_done = True
        rec = peer.recorder.record(req, lag)
        idx, rule = peer.recorder.match_fault(req)
        if rule is not None:
            rec["fault"] = idx
            if self.apply_fault(rule, req, rec):
                peer.log("%s %s %s -> fault %d" % (req.scheme, req.method, req.path, idx))
                return
        t0 = time.monotonic()
        try:
            resp = peer.api(req)
        except Exception:
            peer.log("API error: " + traceback.format_exc())
            resp = empty(500)
        # The peer's own handling time, for make bench's floor (not the network's).
        rec["handled_ms"] = round((time.monotonic() - t0) * 1000, 3)
        rec["status"] = resp.status
        peer.log("%s %s %s -> %d" % (req.scheme, req.method, req.path, resp.status))
        self.send_plain(resp, request_id(req))

    def send_plain(self, resp, rid):
        self.send_response(resp.status)
        if resp.content_type:
            self.send_header("Content-Type", resp.content_type)
        if rid is not None:
            self.send_header("X-Request-Id", rid)
        for k, v in resp.headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(resp.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(resp.body)
        self.wfile.flush()

    def apply_fault(self, rule, req, rec):
        """Answer as the rule says; False if only a delay (process normally)."""
        if rule.get("delay"):
            time.sleep(float(rule["delay"]))
        acting = any(rule.get(k) for k in ("status", "close", "truncate", "huge", "trickle"))
        if not acting:
            return False
        if rule.get("close"):
            rec["status"] = "closed"
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return True
        body = rule.get("body", "")
        ctype = rule.get("content_type")
        if not isinstance(body, str):
            body = json.dumps(body)
            ctype = ctype or "application/json"
        body = body.encode()
        status = int(rule.get("status") or 200)
        rec["status"] = status
        self.send_response(status)
        if ctype or body:
            self.send_header("Content-Type", ctype or "text/plain")
        self.send_header("X-Request-Id", request_id(req))
        for k, v in (rule.get("headers") or {}).items():
            self.send_header(k, str(v))
        if rule.get("huge"):
            n = int(rule["huge"])
            self.send_header("Content-Length", str(n))
            self.end_headers()
            chunk = b"x" * 65536
            try:
                while n > 0:
                    self.wfile.write(chunk[:n])
                    n -= len(chunk)
                self.wfile.flush()
            except OSError:
                self.close_connection = True
            return True
        if rule.get("truncate"):
            if not body:
                body = b'{"data": {"type": "attestation"'
            self.send_header("Content-Length", str(len(body) + 1000))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body[:max(1, len(body) // 2)])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return True
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if rule.get("trickle"):
            return self.send_trickle(body, float(rule["trickle"]))
        self.wfile.write(body)
        self.wfile.flush()
        return True

    def send_trickle(self, body, every):
        """A slow server: the body one byte at a time (the client gives up first)."""
        try:
            for i in range(len(body)):
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()
                time.sleep(every)
        except OSError:
            self.close_connection = True
        return True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_one


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, peer, scheme, control=False, tls_context=None, port=0):
        super().__init__(("127.0.0.1", port), Handler)
        self.peer = peer
        self.scheme = scheme
        self.control = control
        self.tls_context = tls_context

    def process_request(self, request, client_address):
        # The accept time rides along in the address, for the lag in GET /stats.
        super().process_request(request, tuple(client_address) + (time.time(),))

    def finish_request(self, request, client_address):
        # The TLS handshake runs here, in the connection's own thread, so a
        # slow or broken client cannot stall the accept loop.
        if self.tls_context is not None:
            request.settimeout(10)
            try:
                request = self.tls_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as e:
                self.peer.log("TLS handshake failed from %s: %s" % (client_address[0], e))
                return
            request.settimeout(None)
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, socket.timeout, TimeoutError)):
            return
        self.peer.log("connection error: " + traceback.format_exc())


class Peer:
    """Base of registrar and verifier: listeners, log, control of faults/requests."""

    name = "peer"

    def ctl_delete(self, req, agent_id):
        """DELETE /agents/{id} on the control port (subclasses keep lock and agents)."""
        with self.lock:
            found = self.agents.pop(agent_id, None) is not None
        return json_response(200 if found else 404, {"deleted": found})

    def __init__(self, state_dir, ports=None):
        self.state_dir = state_dir
        self.fixed_ports = {}
        if ports:
            with open(ports) as f:
                self.fixed_ports = {k: v for k, v in json.load(f).items() if v}
        os.makedirs(state_dir, exist_ok=True)
        self.recorder = Recorder()
        self.logf = open(os.path.join(state_dir, self.name + ".log"), "a", buffering=1)
        self.log_lock = threading.Lock()
        self.servers = {}
        self.control_router = Router()
        r = self.control_router
        r.add("GET", r"/requests", self.ctl_requests)
        r.add("DELETE", r"/requests", self.ctl_clear_requests)
        r.add("GET", r"/faults", self.ctl_faults)
        r.add("POST", r"/faults", self.ctl_add_faults)
        r.add("DELETE", r"/faults", self.ctl_clear_faults)
        r.add("GET", r"/ping", lambda req: json_response(200, {"peer": self.name}))
        r.add("GET", r"/stats", self.ctl_stats)
        r.add("POST", r"/outage", self.ctl_outage)

    def log(self, msg):
        with self.log_lock:
            self.logf.write("%s %s\n" % (utcnow().strftime("%H:%M:%S.%f")[:-3], msg))

    # -- overridden -----------------------------------------------------
    def api(self, req):
        return empty(404)

    def control(self, req):
        return self.control_router.dispatch(
            req, lambda r: json_response(404, {"error": "no control route %s %s"
                                                % (r.method, r.path)}))

    # -- control: requests and faults ------------------------------------
    def ctl_requests(self, req):
        since = int(req.query.get("since", 0))
        method = req.query.get("method")
        path = req.query.get("path")
        with self.recorder.lock:
            out = [r for r in self.recorder.requests if r["seq"] > since
                   and (not method or r["method"] == method.upper())
                   and (not path or re.search(path, r["path"]))]
            return json_response(200, out)

    def ctl_clear_requests(self, req):
        with self.recorder.lock:
            self.recorder.requests.clear()
        return json_response(200, {})

    def ctl_faults(self, req):
        with self.recorder.lock:
            return json_response(200, self.recorder.faults)

    def ctl_add_faults(self, req):
        try:
            n = self.recorder.add_faults(parse_json(req.body))
        except (BadJson, ValueError, re.error) as e:
            return json_response(400, {"error": "bad fault rule: %s" % e})
        return json_response(200, {"faults": n})

    def ctl_clear_faults(self, req):
        with self.recorder.lock:
            self.recorder.faults.clear()
        return json_response(200, {})

    def ctl_stats(self, req):
        """{"per_second": {"<unix s>": [requests, bytes, max lag ms]}, "per_kind":
        {"POST /v3/...": [requests, bytes, body bytes]}, "per_second_kind": {"<unix s>":
        {"POST /v3/...": requests}}}; ?keep=0 stops keeping request records."""
        with self.recorder.lock:
            if req.query.get("keep") in ("0", "1"):
                self.recorder.keep = req.query["keep"] == "1"
            return json_response(200, {"per_second": dict(self.recorder.per_second),
                                       "per_kind": dict(self.recorder.per_kind),
                                       "per_second_kind": dict(self.recorder.per_second_kind)})

    def ctl_outage(self, req):
        """{"seconds": S}: close the API listeners (connections are refused) and
        open them again on the same ports after S seconds. The records stay, as
        Keylime's database does over a restart."""
        try:
            secs = float(parse_json(req.body or b"{}").get("seconds", 30))
        except (BadJson, ValueError, AttributeError) as e:
            return json_response(400, {"error": "bad outage: %s" % e})
        api = {k: s for k, s in self.servers.items() if not s.control}
        for srv in api.values():
            srv.shutdown()
            srv.server_close()
        self.log("outage: API listeners closed for %gs" % secs)

        def back():
            time.sleep(secs)
            for key, old in api.items():
                self.listen(key, old.scheme, tls_context=old.tls_context,
                            port=old.server_address[1])
            self.log("outage over: API listeners open again")
        threading.Thread(target=back, name="outage", daemon=True).start()
        return json_response(200, {"seconds": secs})

    # -- start-up ----------------------------------------------------------
    def listen(self, key, scheme, control=False, tls_context=None, port=0):
        srv = Server(self, scheme, control, tls_context, port or self.fixed_ports.get(key, 0))
        self.servers[key] = srv
        threading.Thread(target=srv.serve_forever, name=key, daemon=True).start()
        return srv.server_address[1]

    def write_ports(self):
        ports = {k: None for k in ("http", "https", "control")}
        ports.update({k: s.server_address[1] for k, s in self.servers.items()})
        path = os.path.join(self.state_dir, "ports.json")
        with open(path + ".tmp", "w") as f:
            json.dump(ports, f)
        os.replace(path + ".tmp", path)
        self.log("listening: %s" % json.dumps(ports))

    def run_forever(self):
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *a: stop.set())
        signal.signal(signal.SIGINT, lambda *a: stop.set())
        with open(os.path.join(self.state_dir, self.name + ".pid"), "w") as f:
            f.write("%d\n" % os.getpid())
        while not stop.wait(0.5):
            pass
        self.log("stopping")
        for srv in self.servers.values():
            srv.server_close()


def tls_context(cert, key, max_version=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if max_version in ("1.0", "1.1"):
        # An old server, for the client's TLS >= 1.2 check: OpenSSL's default
        # security level refuses these versions, so lower it.
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = (ssl.TLSVersion.TLSv1 if max_version == "1.0"
                               else ssl.TLSVersion.TLSv1_1)
    ctx.load_cert_chain(cert, key)
    return ctx


def base_args(description):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--state", required=True, help="directory for ports.json and logs")
    ap.add_argument("--tls-cert", help="server certificate (PEM)")
    ap.add_argument("--tls-key", help="server key (PEM)")
    ap.add_argument("--tls-max-version", choices=("1.0", "1.1", "1.2"),
                    help="an old server (tests of the client's TLS floor)")
    ap.add_argument("--ports", help="listen on the ports of this earlier ports.json")
    return ap
