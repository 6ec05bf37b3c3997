#!/usr/bin/python3
"""A fake Kubernetes API server for hdnsd's watch tests and benchmarks (Python 3 stdlib + openssl CLI).

What it serves, over HTTPS (HTTP/1.1, keep-alive) with a CA made at start:
  - discovery: /api, /api/v1, /apis, /apis/discovery.k8s.io[/v1], /version
  - v1 services, v1 endpoints, v1 pods, discovery.k8s.io/v1 endpointslices: cluster-wide and
    /namespaces/NS/ paths, GET of one object, list (limit/continue) and watch (?watch=true and the
    legacy /watch/ paths), labelSelector (=, ==, !=, in, notin, key, !key) and fieldSelector
    (metadata.name, metadata.namespace; services also spec.clusterIP, spec.type; pods also
    spec.nodeName, status.podIP, status.phase).
  - resourceVersion like etcd: one global counter; a list carries the collection RV and is a
    consistent snapshot at it (continue pages too); a watch from RV sends every later event; a watch
    from an RV older than the retained history gets 410 Expired ("too old resource version"), as an
    ERROR event in a 200 stream (what the watch cache does since 1.27) or as an HTTP 410 (switch).
  - allowWatchBookmarks (BOOKMARK with only metadata.resourceVersion, every bookmark_interval_s),
    timeoutSeconds, sendInitialEvents=true&resourceVersionMatch=NotOlderThan (synthetic ADDED, then a
    BOOKMARK annotated k8s.io/initial-events-end: "true"); with watchlist=False the server answers
    such a request 422 Invalid, as a real apiserver with the WatchList feature off does.
  - watch streams: chunked, one JSON event per line; chunk_mode="split" cuts lines across chunks.

Checked against the Kubernetes apiserver's behaviour (staging/src/k8s.io/apiserver: cacher and
watch cache for "too old resource version" / reason Expired, metav1.Status shape, ListOptions
validation); no code from it.

Use it in-process (tests): `with FakeApiServer(dir) as api: api.add(obj); api.fail_next(500)`, or as a
process (benchmarks, kubectl): `fake_apiserver.py --dir D [--port 0] [--control-port 0]` prints one
JSON line {"port", "control_port", "ca", "token_file", "url"}; POST /METHOD to the plain-HTTP control
port with a JSON object of keyword arguments calls the method of the same name (see CONTROL_METHODS),
GET /requests returns the request log. Threads: one per connection (ThreadingHTTPServer); all
shared state is behind one lock (Store.cond).
"""

import argparse
import base64
import collections
import copy
import http.server
import json
import os
import secrets
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

# --------------------------------------------------------------------------------------------
# Resources

RESOURCES = {
    # name: (group, version, kind, listKind, shortNames)
    "services": ("", "v1", "Service", "ServiceList", ["svc"]),
    "endpoints": ("", "v1", "Endpoints", "EndpointsList", ["ep"]),
    "endpointslices": ("discovery.k8s.io", "v1", "EndpointSlice", "EndpointSliceList", []),
    "pods": ("", "v1", "Pod", "PodList", ["po"]),  # hdnsd --autopath: the pods of one node
}
KIND_TO_RESOURCE = {v[2]: k for k, v in RESOURCES.items()}
DISCOVERY_GROUP = "discovery.k8s.io"


def api_version(resource):
    group, version = RESOURCES[resource][0], RESOURCES[resource][1]
    return f"{group}/{version}" if group else version


def status(code, reason, message, details=None):
    """A metav1.Status as the apiserver writes it for a failure."""
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
         "message": message, "reason": reason, "code": code}
    if details is not None:
        s["details"] = details
    return s


def expired_status(message):
    return status(410, "Expired", message)


# --------------------------------------------------------------------------------------------
# Selectors


class SelectorError(ValueError):
    pass


def _split_top(s):
    """Splits on commas outside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def parse_label_selector(text):
    """→ list of (key, op, values); op in =, !=, in, notin, exists, !exists."""
    reqs = []
    for part in _split_top(text or ""):
        low = part
        if low.startswith("!"):
            reqs.append((low[1:].strip(), "!exists", ()))
            continue
        for word, op in ((" notin ", "notin"), (" in ", "in")):
            if word in low:
                key, rest = low.split(word, 1)
                rest = rest.strip()
                if not (rest.startswith("(") and rest.endswith(")")):
                    raise SelectorError(f"unable to parse requirement: {part!r}")
                vals = tuple(v.strip() for v in rest[1:-1].split(",") if v.strip())
                reqs.append((key.strip(), op, vals))
                break
        else:
            if "!=" in low:
                k, v = low.split("!=", 1)
                reqs.append((k.strip(), "!=", (v.strip(),)))
            elif "==" in low:
                k, v = low.split("==", 1)
                reqs.append((k.strip(), "=", (v.strip(),)))
            elif "=" in low:
                k, v = low.split("=", 1)
                reqs.append((k.strip(), "=", (v.strip(),)))
            else:
                reqs.append((low.strip(), "exists", ()))
    for key, _, _ in reqs:
        if not key or " " in key:
            raise SelectorError(f"unable to parse requirement: invalid label key {key!r}")
    return reqs


def labels_match(reqs, labels):
    labels = labels or {}
    for key, op, vals in reqs:
        have = key in labels
        v = labels.get(key)
        if op == "exists" and not have:
            return False
        if op == "!exists" and have:
            return False
        if op == "=" and v != vals[0]:
            return False
        if op == "!=" and v == vals[0]:
            return False
        if op == "in" and v not in vals:
            return False
        if op == "notin" and have and v in vals:
            return False
    return True


FIELDS = {
    "metadata.name": lambda o: o["metadata"].get("name", ""),
    "metadata.namespace": lambda o: o["metadata"].get("namespace", ""),
    "spec.clusterIP": lambda o: o.get("spec", {}).get("clusterIP", ""),
    "spec.type": lambda o: o.get("spec", {}).get("type", ""),
    "spec.nodeName": lambda o: o.get("spec", {}).get("nodeName", ""),
    "status.podIP": lambda o: o.get("status", {}).get("podIP", ""),
    "status.phase": lambda o: o.get("status", {}).get("phase", ""),
}
FIELDS_BY_RESOURCE = {
    "services": ("metadata.name", "metadata.namespace", "spec.clusterIP", "spec.type"),
    "endpoints": ("metadata.name", "metadata.namespace"),
    "endpointslices": ("metadata.name", "metadata.namespace"),
    "pods": ("metadata.name", "metadata.namespace", "spec.nodeName", "status.podIP", "status.phase"),
}


def parse_field_selector(text, resource):
    reqs = []
    for part in _split_top(text or ""):
        if "!=" in part:
            k, v, op = *part.split("!=", 1), "!="
        elif "==" in part:
            k, v, op = *part.split("==", 1), "="
        elif "=" in part:
            k, v, op = *part.split("=", 1), "="
        else:
            raise SelectorError(f"invalid selector: '{part}'; can't understand '{part}'")
        k = k.strip()
        if k not in FIELDS_BY_RESOURCE[resource]:
            raise SelectorError(f'field label "{k}" not supported for {RESOURCES[resource][2]}')
        reqs.append((k, op, v.strip()))
    return reqs


def fields_match(reqs, obj):
    for k, op, v in reqs:
        have = FIELDS[k](obj)
        if (op == "=") != (have == v):
            return False
    return True


# --------------------------------------------------------------------------------------------
# The store: objects, history, resourceVersion


class Event:
    __slots__ = ("rv", "resource", "type", "obj", "prev")

    def __init__(self, rv, resource, etype, obj, prev):
        self.rv, self.resource, self.type, self.obj, self.prev = rv, resource, etype, obj, prev


class Store:
    """Objects keyed (resource, namespace, name); one global RV; history of events since the
    last compaction (a watch or continue from before it gets 410)."""

    def __init__(self, history_limit=100000):
        self.cond = threading.Condition()
        self.rv = 1
        self.objects = {}
        self.by_res = {r: {} for r in RESOURCES}  # the same objects, per resource
        self._sorted = {}  # resource → sorted keys, while no key was added or removed
        self.history = collections.deque()
        self.compacted_rv = 1  # events with rv > compacted_rv are in history
        self.history_limit = history_limit
        self.watchers = set()
        self.seq = 0  # uid counter

    def _key(self, obj):
        res = KIND_TO_RESOURCE[obj["kind"]]
        md = obj["metadata"]
        return res, md.get("namespace", ""), md["name"]

    def apply(self, obj, etype=None):
        """Adds or replaces `obj` (a dict with kind, metadata.name/namespace). Returns its new RV."""
        obj = copy.deepcopy(obj)
        res, ns, name = key = self._key(obj)
        obj["apiVersion"] = api_version(res)
        with self.cond:
            prev = self.objects.get(key)
            self.rv += 1
            md = obj["metadata"]
            md["resourceVersion"] = str(self.rv)
            if prev is not None:
                md["uid"] = prev["metadata"]["uid"]
                md["creationTimestamp"] = prev["metadata"]["creationTimestamp"]
            else:
                self.seq += 1
                md.setdefault("uid", f"00000000-0000-4000-8000-{self.seq:012d}")
                md.setdefault("creationTimestamp", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            self.objects[key] = obj
            self.by_res[res][key] = obj
            if prev is None:
                self._sorted.pop(res, None)
            self._record(Event(self.rv, res, etype or ("MODIFIED" if prev else "ADDED"), obj, prev))
            return self.rv

    def delete(self, kind, namespace, name):
        res = KIND_TO_RESOURCE[kind]
        with self.cond:
            prev = self.objects.pop((res, namespace, name), None)
            if prev is None:
                raise KeyError(f"{kind} {namespace}/{name} not found")
            del self.by_res[res][(res, namespace, name)]
            self._sorted.pop(res, None)
            self.rv += 1
            gone = copy.deepcopy(prev)
            gone["metadata"]["resourceVersion"] = str(self.rv)
            self._record(Event(self.rv, res, "DELETED", gone, prev))
            return self.rv

    def _record(self, ev):
        self.history.append(ev)
        while len(self.history) > self.history_limit:
            self.compacted_rv = self.history.popleft().rv
        for w in self.watchers:
            w.pending.append(ev)
        self.cond.notify_all()

    def compact(self, rv=None):
        """Forgets history up to rv (default: everything): older RVs then give 410."""
        with self.cond:
            rv = self.rv if rv is None else rv
            while self.history and self.history[0].rv <= rv:
                self.history.popleft()
            self.compacted_rv = max(self.compacted_rv, rv)

    def snapshot(self, resource, at_rv):
        """Objects of `resource` as they were at at_rv (>= compacted_rv), sorted by (ns, name)."""
        state = self.by_res[resource]
        copied = False
        for ev in reversed(self.history):
            if ev.rv <= at_rv:
                break
            if ev.resource != resource:
                continue
            if not copied:
                state, copied = dict(state), True
            md = ev.obj["metadata"]
            k = (resource, md.get("namespace", ""), md["name"])
            if ev.prev is None:
                state.pop(k, None)
            else:
                state[k] = ev.prev
        if copied:
            return [state[k] for k in sorted(state)]
        keys = self._sorted.get(resource)
        if keys is None:
            keys = self._sorted[resource] = sorted(state)
        return [state[k] for k in keys]


# --------------------------------------------------------------------------------------------
# Watchers


class Watcher:
    def __init__(self):
        self.pending = collections.deque()  # Events, appended under Store.cond
        self.inject = collections.deque()  # raw lines to send (faults)
        self.drop = False


# --------------------------------------------------------------------------------------------
# HTTP


class _ClientGone(Exception):
    pass


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-apiserver"
    sys_version = ""

    def setup(self):
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.settimeout(10)
            try:
                self.connection.do_handshake()
            except (ssl.SSLError, OSError):
                self.close_connection = True
                raise _ClientGone()
            self.connection.settimeout(None)

    def handle(self):
        try:
            super().handle()
        except (_ClientGone, ConnectionError, ssl.SSLError, OSError, socket.timeout):
            pass

    def log_message(self, fmt, *args):  # quiet; the request log is in api.requests()
        if self.server.api.verbose:
            sys.stderr.write("fakeapi: " + (fmt % args) + "\n")

    def do_GET(self):
        self.server.api._serve(self)

    # ---- response helpers

    def send_json(self, code, obj, headers=None):
        body = json.dumps(obj, separators=(",", ":")).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def drop_connection(self):
        """Closes the TCP connection under TLS without close_notify or a last chunk."""
        self.close_connection = True
        try:
            socket.socket.shutdown(self.connection, socket.SHUT_RDWR)
        except OSError:
            pass


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        if self.api.verbose:
            super().handle_error(request, client_address)


class _ControlHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        api = self.server.api
        if self.path.startswith("/requests"):
            return self._reply(200, api.requests())
        if self.path.startswith("/state"):
            return self._reply(200, {"rv": api.store.rv, "compacted_rv": api.store.compacted_rv,
                                     "watchers": api.watch_count(), "churn": api.churn_stats})
        self._reply(404, {"error": "GET /requests or /state; POST /<method>"})

    def do_POST(self):
        api = self.server.api
        n = int(self.headers.get("Content-Length") or 0)
        try:
            kwargs = json.loads(self.rfile.read(n) or b"{}")
            name = self.path.strip("/")
            if name not in CONTROL_METHODS:
                return self._reply(404, {"error": f"unknown method {name}"})
            result = getattr(api, name)(**kwargs)
            self._reply(200, {"result": result})
        except Exception as e:  # noqa: BLE001 - the control port reports any failure to the caller
            self._reply(400, {"error": f"{type(e).__name__}: {e}"})


CONTROL_METHODS = ("add", "apply", "delete", "apply_many", "compact", "drop_watches",
                   "stall_lists", "stall_watches", "inject_line", "inject_garbage",
                   "inject_overlong", "fail_next", "set", "rotate_token", "set_tokens",
                   "forbid", "clear_requests", "hide_discovery_v1", "wait_watchers", "churn",
                   "write_time", "rv", "token")


def make_certs(directory):
    """CA + server cert (SAN 127.0.0.1, ::1, localhost) with the openssl CLI. → (cert, key, ca)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = d / "ca.key", d / "ca.crt"
    key, csr, crt, ext = d / "server.key", d / "server.csr", d / "server.crt", d / "server.ext"
    run = lambda *a: subprocess.run(["openssl", *map(str, a)], check=True,  # noqa: E731
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", ca_key)
    run("req", "-x509", "-new", "-key", ca_key, "-sha256", "-days", "2", "-subj",
        "/CN=fake-apiserver-ca", "-out", ca_crt)
    run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key)
    run("req", "-new", "-key", key, "-subj", "/CN=kube-apiserver", "-out", csr)
    ext.write_text("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                   "extendedKeyUsage=serverAuth\n"
                   "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost,DNS:kubernetes.default.svc\n")
    run("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
        "-days", "2", "-sha256", "-extfile", ext, "-out", crt)
    return crt, key, ca_crt


class FakeApiServer:
    """The fake. Construct, start() (or use as a context manager), then drive it with the methods
    below; every mutation generates watch events with new resourceVersions."""

    def __init__(self, directory, port=0, host="127.0.0.1", control_port=None, verbose=False,
                 history_limit=100000):
        self.dir = Path(directory)
        self.host, self.port_wanted, self.control_port_wanted = host, port, control_port
        self.verbose = verbose
        self.store = Store(history_limit)
        self.token_file = self.dir / "token"
        self.tokens = set()
        self._log = []
        self._log_lock = threading.Lock()
        # switches (set(name=value) changes them)
        self.bookmark_interval_s = 1.0
        self.default_watch_timeout_s = 1800.0
        self.expired_as_http = False  # 410 for a too-old watch RV: ERROR event (False) or HTTP 410
        self.watchlist = True  # sendInitialEvents supported
        self.chunk_mode = "line"  # "line": one event per chunk; "split": lines cut across chunks
        self.split_size = 7
        self.delay_s = 0.0  # added before every API response
        self.discovery_v1 = True
        self.max_limit = 500  # the most objects a page carries, whatever limit asks for
        self.track_writes = False  # record when each event RV was first written (benchmarks)
        self._write_times = {}
        self.churn_stats = None
        self._stall_lists = threading.Event()
        self._stall_watches = threading.Event()
        self._failures = []  # [code, count, retry_after, match]
        self._forbidden = set()
        self._unstall = threading.Condition()

    # ---- lifecycle

    def start(self):
        crt, key, ca = make_certs(self.dir)
        self.ca_file = ca
        self.rotate_token()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        self.httpd = _Server((self.host, self.port_wanted), Handler)
        self.httpd.api = self
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True,
                                            do_handshake_on_connect=False)
        self.port = self.httpd.server_address[1]
        self.url = f"https://{self.host}:{self.port}"
        self._threads = [threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                          daemon=True, name="fakeapi")]
        self.control_port = None
        if self.control_port_wanted is not None:
            self.ctl = _Server((self.host, self.control_port_wanted), _ControlHandler)
            self.ctl.api = self
            self.control_port = self.ctl.server_address[1]
            self._threads.append(threading.Thread(target=self.ctl.serve_forever, daemon=True,
                                                  kwargs={"poll_interval": 0.05}))
        for t in self._threads:
            t.start()
        return self

    def stop(self):
        self._closing = True
        self._stall_lists.clear()
        self._stall_watches.clear()
        with self._unstall:
            self._unstall.notify_all()
        self.drop_watches()
        self.httpd.shutdown()
        self.httpd.server_close()
        if self.control_port is not None:
            self.ctl.shutdown()
            self.ctl.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- objects

    def add(self, obj):
        """Adds or replaces one object (Service, Endpoints or EndpointSlice dict). → new RV."""
        return self.store.apply(obj)

    apply = add

    def apply_many(self, objs):
        rv = None
        for o in objs:
            rv = self.store.apply(o)
        return rv

    def delete(self, kind, namespace, name):
        return self.store.delete(kind, namespace, name)

    def get(self, kind, namespace, name):
        with self.store.cond:
            o = self.store.objects.get((KIND_TO_RESOURCE[kind], namespace, name))
            return copy.deepcopy(o)

    def rv(self):
        return self.store.rv

    def compact(self, rv=None):
        """Drops history up to rv (default: all): watches/continues from older RVs get 410."""
        self.store.compact(rv)
        return self.store.compacted_rv

    # ---- switches and faults

    def set(self, **kv):
        """set(bookmark_interval_s=0.2, expired_as_http=True, watchlist=False, chunk_mode="split",
        delay_s=0.1, max_limit=100, default_watch_timeout_s=5)."""
        for k, v in kv.items():
            if k.startswith("_") or not hasattr(self, k) or callable(getattr(self, k)):
                raise AttributeError(f"no switch {k}")
            setattr(self, k, v)

    def hide_discovery_v1(self, hidden=True):
        """Hides discovery.k8s.io/v1 (as on a cluster before 1.21): not in /apis, its paths 404."""
        self.discovery_v1 = not hidden

    def stall_lists(self, on=True):
        """While on, list requests (and sendInitialEvents watches, which are lists) are accepted
        and answered nothing."""
        self._set_stall(self._stall_lists, on)

    def stall_watches(self, on=True):
        """While on, watch streams send nothing (events wait); new watches get headers only."""
        self._set_stall(self._stall_watches, on)

    def _set_stall(self, ev, on):
        ev.set() if on else ev.clear()
        with self._unstall:
            self._unstall.notify_all()
        with self.store.cond:
            self.store.cond.notify_all()

    def drop_watches(self):
        """Cuts every open watch connection now (TCP FIN, no last chunk, no TLS close_notify)."""
        with self.store.cond:
            n = len(self.store.watchers)
            for w in self.store.watchers:
                w.drop = True
            self.store.cond.notify_all()
        return n

    def inject_line(self, line):
        """Sends `line` (str or bytes, a newline is added) on every open watch stream."""
        data = line.encode() if isinstance(line, str) else bytes(line)
        with self.store.cond:
            n = len(self.store.watchers)
            for w in self.store.watchers:
                w.inject.append(data + b"\n")
            self.store.cond.notify_all()
        return n

    def inject_garbage(self):
        return self.inject_line(b"{this is not json")

    def inject_overlong(self, size=8 * 1024 * 1024):
        """A syntactically valid event line of `size` bytes (a huge annotation)."""
        pad = "x" * size
        return self.inject_line(json.dumps({"type": "MODIFIED", "object": {
            "kind": "Service", "apiVersion": "v1",
            "metadata": {"name": "huge", "namespace": "default", "resourceVersion": str(self.store.rv),
                         "annotations": {"pad": pad}}, "spec": {"clusterIP": "None"}}}))

    def fail_next(self, code, count=1, retry_after=None, match=None):
        """The next `count` API requests (whose path+query contains `match`, if given; "watch=" for
        watches, "list" for non-watch requests) answer `code` (401, 403, 410, 429, 500, 503) with a
        real Status body; 429/503 carry Retry-After when retry_after is given."""
        with self.store.cond:
            self._failures.append([int(code), int(count), retry_after, match])

    def forbid(self, resource, on=True):
        """403 Forbidden (RBAC message) for every request on `resource` while on."""
        (self._forbidden.add if on else self._forbidden.discard)(resource)

    def rotate_token(self, keep_stat=False):
        """New token written to the token file (write + rename); only the new one is valid.
        keep_stat=True rewrites the same inode with a token of the same length and puts the old
        mtime back, so a client that checks the file's stat cannot see the change: only a 401
        makes it re-read the file."""
        tok = secrets.token_urlsafe(24)
        if keep_stat and self.token_file.exists():
            st = os.stat(self.token_file)
            with open(self.token_file, "r+") as f:
                f.write(tok)
            os.utime(self.token_file, ns=(st.st_atime_ns, st.st_mtime_ns))
        else:
            tmp = self.token_file.with_name(".token.tmp")
            tmp.write_text(tok)
            os.replace(tmp, self.token_file)
        self.tokens = {tok}
        return tok

    def set_tokens(self, tokens):
        self.tokens = set(tokens)

    def token(self):
        return next(iter(self.tokens))

    def churn(self, rate=1000.0, seconds=60.0, kind="EndpointSlice", limit=None):
        """Starts a thread that modifies existing objects of `kind` round-robin, `rate` per second
        for `seconds` (each change flips the last endpoint's ready condition of a slice, or
        bumps an annotation). Progress in churn_stats / GET /state."""
        res = KIND_TO_RESOURCE[kind]
        with self.store.cond:
            keys = sorted(self.store.by_res[res])[:limit]
        if not keys:
            raise ValueError(f"no {kind} to churn")
        self.churn_stats = {"events": 0, "seconds": 0.0, "target_rate": rate, "done": False}

        def run():
            t0 = time.monotonic()
            i = 0
            while True:
                now = time.monotonic()
                if now - t0 >= seconds:
                    break
                due = int((now - t0) * rate) + 1
                while i < due:
                    with self.store.cond:
                        obj = self.store.by_res[res].get(keys[i % len(keys)])
                    if obj is not None:
                        o = copy.deepcopy(obj)
                        if o.get("endpoints"):
                            c = o["endpoints"][-1].setdefault("conditions", {})
                            c["ready"] = not c.get("ready", True)
                        else:
                            o["metadata"].setdefault("annotations", {})["churn"] = str(i)
                        self.store.apply(o)
                    i += 1
                self.churn_stats.update(events=i, seconds=time.monotonic() - t0)
                time.sleep(0.001)
            self.churn_stats.update(events=i, seconds=time.monotonic() - t0, done=True)
        threading.Thread(target=run, daemon=True, name="churn").start()
        return len(keys)

    def write_time(self, rv):
        """With track_writes on: time.monotonic() when the event with this RV was first written
        to a watch stream (CLOCK_MONOTONIC is system-wide: comparable across processes)."""
        return self._write_times.get(int(rv))

    # ---- observation

    def requests(self):
        """Copies of the request log: {t (time.monotonic), method, path, query (dict of str),
        auth ("valid"/"invalid"/"missing"), status, watch (bool), resource, t_done (the response,
        or a streaming list's initial events, fully written); watches also
        last_rv: the RV of the last event or bookmark written, events: how many}."""
        with self._log_lock:
            return [dict(r) for r in self._log]

    def clear_requests(self):
        with self._log_lock:
            self._log.clear()

    def watch_count(self):
        with self.store.cond:
            return len(self.store.watchers)

    def wait_watchers(self, n=1, timeout=5.0):
        """Waits until at least n watch streams are open (and have sent their headers)."""
        deadline = time.monotonic() + timeout
        with self.store.cond:
            while len(self.store.watchers) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.store.cond.wait(left)
        return True

    # ---- serving

    def _record(self, h, path, query, auth, watch, resource):
        entry = {"t": time.monotonic(), "method": h.command, "path": path, "query": query,
                 "auth": auth, "status": None, "watch": watch, "resource": resource}
        with self._log_lock:
            self._log.append(entry)
        return entry

    @staticmethod
    def _log_initial_done(entry):
        entry["t_done"] = time.monotonic()  # the streaming list's last initial event is out

    def _take_failure(self, full):
        with self.store.cond:
            for f in self._failures:
                m = f[3]
                if m is None or (m == "list" and "watch=" not in full) or (m != "list" and m in full):
                    f[1] -= 1
                    if f[1] <= 0:
                        self._failures.remove(f)
                    return f[0], f[2]
        return None

    def _serve(self, h):
        u = urllib.parse.urlsplit(h.path)
        path = u.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(u.query, keep_blank_values=True).items()}
        auth_hdr = h.headers.get("Authorization")
        if auth_hdr is None:
            auth = "missing"
        elif auth_hdr.startswith("Bearer ") and auth_hdr[7:].strip() in self.tokens:
            auth = "valid"
        else:
            auth = "invalid"
        route = self._route(path)
        watch = bool(route and (route[3] or query.get("watch") in ("true", "1")))
        entry = self._record(h, path, query, auth, watch, route[0] if route else None)

        def reply(code, obj, headers=None):
            entry["status"] = code
            h.send_json(code, obj, headers)
            entry["t_done"] = time.monotonic()

        if self.delay_s:
            time.sleep(self.delay_s)
        if auth != "valid":
            return reply(401, status(401, "Unauthorized", "Unauthorized"))
        fail = self._take_failure(h.path)
        if fail:
            return self._fail(reply, fail[0], fail[1], route)
        if path == "/version":
            return reply(200, {"major": "1", "minor": "29", "gitVersion": "v1.29.0-fakeapi",
                               "gitCommit": "0" * 40, "gitTreeState": "clean",
                               "buildDate": "2024-01-01T00:00:00Z", "goVersion": "go1.21",
                               "compiler": "gc", "platform": "linux/amd64"})
        disc = self._discovery(path)
        if disc is not None:
            return reply(200, disc)
        if route is None:
            return reply(404, status(404, "NotFound", "the server could not find the requested resource",
                                     {}))
        resource, ns, name, _ = route
        if resource in self._forbidden:
            return self._fail(reply, 403, None, route)
        if watch:
            return self._watch(h, entry, resource, ns, name, query)
        if name:
            obj = self.get(RESOURCES[resource][2], ns, name)
            if obj is None:
                return reply(404, status(404, "NotFound", f'{resource}{self._gdot(resource)} "{name}" not found',
                                         {"name": name, "group": RESOURCES[resource][0], "kind": resource}))
            return reply(200, obj)
        return self._list(h, entry, reply, resource, ns, query)

    @staticmethod
    def _gdot(resource):
        g = RESOURCES[resource][0]
        return "." + g if g else ""

    def _fail(self, reply, code, retry_after, route):
        headers = {}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        if code == 401:
            return reply(401, status(401, "Unauthorized", "Unauthorized"))
        if code == 403:
            res = route[0] if route else "resource"
            group = RESOURCES[res][0] if route else ""
            scope = f'in the namespace "{route[1]}"' if route and route[1] else "at the cluster scope"
            verb = "watch" if route and route[3] else "list"
            msg = (f'{res}{self._gdot(res) if route else ""} is forbidden: User '
                   f'"system:serviceaccount:kube-system:hdnsd" cannot {verb} resource "{res}" in API '
                   f'group "{group}" {scope}')
            return reply(403, status(403, "Forbidden", msg, {"group": group, "kind": res}))
        if code == 410:
            return reply(410, expired_status("The resourceVersion for the provided list is too old."))
        if code == 429:
            d = {"retryAfterSeconds": int(retry_after)} if retry_after is not None else {}
            return reply(429, status(429, "TooManyRequests", "Too many requests, please try again later.", d),
                         headers)
        if code == 503:
            return reply(503, status(503, "ServiceUnavailable", "the server is currently unable to handle the request", {}),
                         headers)
        if code == 500:
            return reply(500, status(500, "InternalError", "Internal error occurred: fake failure",
                                     {"causes": [{"message": "fake failure"}]}), headers)
        return reply(code, status(code, "", f"fake failure {code}"), headers)

    # ---- discovery

    def _discovery(self, path):
        res = lambda r: {"name": r, "singularName": RESOURCES[r][2].lower(), "namespaced": True,  # noqa: E731
                         "kind": RESOURCES[r][2], "verbs": ["get", "list", "watch"],
                         "shortNames": RESOURCES[r][4]} | ({"categories": ["all"]} if r == "services" else {})
        gv = {"groupVersion": "discovery.k8s.io/v1", "version": "v1"}
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": f"{self.host}:{self.port}"}]}
        if path == "/api/v1":
            return {"kind": "APIResourceList", "groupVersion": "v1",
                    "resources": [res("services"), res("endpoints"), res("pods")]}
        group = {"name": DISCOVERY_GROUP, "versions": [gv], "preferredVersion": gv}
        if path == "/apis":
            return {"kind": "APIGroupList", "apiVersion": "v1",
                    "groups": [group] if self.discovery_v1 else []}
        if self.discovery_v1 and path == "/apis/discovery.k8s.io":
            return {"kind": "APIGroup", "apiVersion": "v1", **group}
        if self.discovery_v1 and path == "/apis/discovery.k8s.io/v1":
            return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "discovery.k8s.io/v1",
                    "resources": [res("endpointslices")]}
        return None

    def _route(self, path):
        """→ (resource, namespace, name, legacy_watch) or None."""
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "v1"]:
            rest, group = parts[2:], ""
        elif parts[:3] == ["apis", "discovery.k8s.io", "v1"] and self.discovery_v1:
            rest, group = parts[3:], DISCOVERY_GROUP
        else:
            return None
        legacy = bool(rest) and rest[0] == "watch"
        if legacy:
            rest = rest[1:]
        ns = ""
        if len(rest) >= 2 and rest[0] == "namespaces":
            ns, rest = rest[1], rest[2:]
        if not rest or rest[0] not in RESOURCES or RESOURCES[rest[0]][0] != group or len(rest) > 2:
            return None
        name = rest[1] if len(rest) == 2 else ""
        return rest[0], ns, name, legacy

    # ---- list

    def _filters(self, resource, ns, name, query):
        lsel = parse_label_selector(query.get("labelSelector", ""))
        fsel = parse_field_selector(query.get("fieldSelector", ""), resource)
        if name:
            fsel.append(("metadata.name", "=", name))

        def ok(obj):
            md = obj["metadata"]
            return ((not ns or md.get("namespace") == ns) and labels_match(lsel, md.get("labels"))
                    and fields_match(fsel, obj))
        return ok

    def _invalid(self, reply, errs):
        causes = [{"reason": "FieldValueForbidden", "message": m, "field": f} for f, m in errs]
        msg = 'ListOptions.meta.k8s.io "" is invalid: ' + (
            "[" + ", ".join(f"{f}: Forbidden: {m}" for f, m in errs) + "]" if len(errs) > 1
            else f"{errs[0][0]}: Forbidden: {errs[0][1]}")
        return reply(422, status(422, "Invalid", msg, {"group": "meta.k8s.io", "kind": "ListOptions",
                                                       "causes": causes}))

    def _list(self, h, entry, reply, resource, ns, query):
        try:
            ok = self._filters(resource, ns, "", query)
        except SelectorError as e:
            return reply(400, status(400, "BadRequest", str(e)))
        if query.get("sendInitialEvents") in ("true", "1"):
            return self._invalid(reply, [("sendInitialEvents", "sendInitialEvents is forbidden for list")])
        while self._stall_lists.is_set() and not getattr(self, "_closing", False):
            with self._unstall:
                self._unstall.wait(0.1)
        limit = int(query.get("limit") or 0)
        cont = query.get("continue")
        with self.store.cond:
            if cont:
                try:
                    tok = json.loads(base64.urlsafe_b64decode(cont.encode()))
                    at_rv, after = int(tok["rv"]), tuple(tok["after"])
                except (ValueError, KeyError, TypeError):
                    return reply(400, status(400, "BadRequest", "continue key is not valid: invalid token"))
                if at_rv < self.store.compacted_rv:
                    return reply(410, expired_status(
                        "The provided continue parameter is too old to display a consistent list result. "
                        "You can start a new list without the continue parameter, or use the continue "
                        "token in this response to retrieve the remainder of the results. Continuing "
                        "with the provided token results in an inconsistent list - objects that were "
                        "created, modified, or deleted between the time the first chunk was returned "
                        "and now may show up in the list."))
            else:
                at_rv, after = self.store.rv, None
                rv_q = query.get("resourceVersion")
                if rv_q and rv_q != "0" and int(rv_q) > self.store.rv:
                    return reply(504, status(504, "Timeout", f"Too large resource version: {rv_q}, current: {self.store.rv}",
                                             {"causes": [{"reason": "ResourceVersionTooLarge",
                                                          "message": "Too large resource version"}],
                                              "retryAfterSeconds": 1}))
                if (query.get("resourceVersionMatch") == "Exact" and rv_q
                        and int(rv_q) < self.store.compacted_rv):
                    return reply(410, expired_status(f"too old resource version: {rv_q} ({self.store.compacted_rv})"))
                if query.get("resourceVersionMatch") == "Exact" and rv_q:
                    at_rv = int(rv_q)
            objs = self.store.snapshot(resource, at_rv)
        items = []
        for o in objs:
            md = o["metadata"]
            key = (md.get("namespace", ""), md["name"])
            if after is not None and key <= after:
                continue
            if not ok(o):
                continue
            items.append(o)
        if self.max_limit and (not limit or limit > self.max_limit) and limit:
            limit = self.max_limit
        remaining, next_tok = None, None
        if limit and len(items) > limit:
            last = items[limit - 1]["metadata"]
            remaining = len(items) - limit
            items = items[:limit]
            next_tok = base64.urlsafe_b64encode(json.dumps(
                {"rv": at_rv, "after": [last.get("namespace", ""), last["name"]]}).encode()).decode()
        group, version, kind, list_kind, _ = RESOURCES[resource]
        md = {"resourceVersion": str(at_rv)}
        if next_tok:
            md["continue"] = next_tok
            md["remainingItemCount"] = remaining
        body = {"kind": list_kind, "apiVersion": api_version(resource), "metadata": md,
                "items": [{**o, "kind": kind, "apiVersion": api_version(resource)} for o in items]}
        reply(200, body)

    # ---- watch

    def _watch(self, h, entry, resource, ns, name, query):
        def reply(code, obj, headers=None):
            entry["status"] = code
            h.send_json(code, obj, headers)

        try:
            ok = self._filters(resource, ns, name, query)
        except SelectorError as e:
            return reply(400, status(400, "BadRequest", str(e)))
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        sie = query.get("sendInitialEvents")
        rvm = query.get("resourceVersionMatch")
        if sie is not None or rvm:
            if not self.watchlist:
                errs = []
                if rvm:
                    errs.append(("resourceVersionMatch", "resourceVersionMatch is forbidden for watch"))
                if sie is not None:
                    errs.append(("sendInitialEvents", "sendInitialEvents is forbidden for watch"))
                return self._invalid(reply, errs)
            errs = []
            if sie is not None and rvm != "NotOlderThan":
                errs.append(("resourceVersionMatch", "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"))
            if sie is not None and not bookmarks:
                errs.append(("allowWatchBookmarks", "sendInitialEvents requires setting allowWatchBookmarks to true"))
            if rvm and sie is None:
                errs.append(("resourceVersionMatch", "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"))
            if errs:
                return self._invalid(reply, errs)
        send_initial = sie in ("true", "1")
        while send_initial and self._stall_lists.is_set() and not getattr(self, "_closing", False):
            with self._unstall:  # a streaming list is a list: stall_lists holds it too
                self._unstall.wait(0.1)
        timeout = float(query.get("timeoutSeconds") or self.default_watch_timeout_s)
        rv_q = query.get("resourceVersion", "")
        group, version, kind, _, _ = RESOURCES[resource]
        w = Watcher()
        initial = []
        with self.store.cond:
            cur = self.store.rv
            if rv_q in ("", "0") or send_initial:
                # Synthetic ADDED for the current state (etcd "get state and start at most recent").
                if send_initial and rv_q not in ("", "0") and int(rv_q) > cur:
                    return reply(504, status(504, "Timeout", f"Too large resource version: {rv_q}, current: {cur}"))
                start = cur
                initial = [("ADDED", o) for o in self.store.snapshot(resource, cur) if ok(o)]
            else:
                try:
                    start = int(rv_q)
                except ValueError:
                    return reply(400, status(400, "BadRequest", f"invalid resource version: {rv_q}"))
                if start < self.store.compacted_rv:
                    msg = f"too old resource version: {start} ({self.store.compacted_rv})"
                    if self.expired_as_http:
                        return reply(410, expired_status(msg))
                    start = None
                    initial = [("ERROR", expired_status(msg))]
                else:
                    for ev in self.store.history:
                        if ev.rv > start and ev.resource == resource:
                            w.pending.append(ev)
            if start is not None:
                self.store.watchers.add(w)
                self.store.cond.notify_all()
        entry["status"] = 200
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        h.wfile.flush()
        writer = _ChunkWriter(h, self, entry)
        try:
            if start is None:  # expired: one ERROR event, then the stream ends
                writer.event("ERROR", initial[0][1])
                writer.end()
                return
            self._stream(h, writer, w, resource, ok, bookmarks, timeout, initial, send_initial,
                         start, kind, group, version)
        except (OSError, ssl.SSLError, _ClientGone):
            h.close_connection = True
        finally:
            with self.store.cond:
                self.store.watchers.discard(w)

    def _stream(self, h, writer, w, resource, ok, bookmarks, timeout, initial, send_initial, start,
                kind, group, version):
        api_v = f"{group}/{version}" if group else version
        deadline = time.monotonic() + timeout
        last_rv = start

        def bookmark(rv, initial_end=False):
            md = {"resourceVersion": str(rv), "creationTimestamp": None}
            if initial_end:
                md["annotations"] = {"k8s.io/initial-events-end": "true"}
            writer.event("BOOKMARK", {"kind": kind, "apiVersion": api_v, "metadata": md})

        while self._stall_watches.is_set() and not w.drop and time.monotonic() < deadline:
            with self._unstall:
                self._unstall.wait(0.1)
        for etype, obj in initial:  # many events per chunk, as a real server's buffered writes
            writer.event(etype, {**obj, "kind": kind, "apiVersion": api_v}, batch=True)
        writer.flush()
        if send_initial:
            bookmark(start, initial_end=True)
            writer.flush()
            self._log_initial_done(writer.entry)
        next_bm = time.monotonic() + self.bookmark_interval_s
        while True:
            batch = []
            with self.store.cond:
                while True:
                    now = time.monotonic()
                    if w.drop:
                        break
                    stalled = self._stall_watches.is_set()
                    if not stalled and (w.pending or w.inject):
                        break
                    if now >= deadline or (bookmarks and not stalled and now >= next_bm):
                        break
                    wake = min(deadline, next_bm if bookmarks else deadline) - now
                    self.store.cond.wait(max(0.001, min(wake, 0.1)))
                if w.drop:
                    h.drop_connection()
                    return
                injected = list(w.inject)
                w.inject.clear()
                while w.pending:
                    batch.append(w.pending.popleft())
                cur_rv = self.store.rv
            for line in injected:
                writer.raw(line)
            for ev in batch:
                if ev.resource != resource:
                    continue
                last_rv = ev.rv
                now_ok = ev.type != "DELETED" and ok(ev.obj)
                was_ok = ev.prev is not None and ok(ev.prev)
                if ev.type == "DELETED":
                    if was_ok:
                        writer.event("DELETED", ev.obj)
                elif now_ok and was_ok:
                    writer.event("MODIFIED", ev.obj)
                elif now_ok:
                    writer.event("ADDED", ev.obj)
                elif was_ok:  # moved out of the selector: the cacher sends DELETED
                    gone = copy.deepcopy(ev.prev)
                    gone["metadata"]["resourceVersion"] = str(ev.rv)
                    writer.event("DELETED", gone)
            writer.flush()
            now = time.monotonic()
            if now >= deadline:
                writer.end()
                return
            if bookmarks and now >= next_bm and not self._stall_watches.is_set():
                bookmark(max(last_rv, cur_rv))
                writer.flush()
                next_bm = now + self.bookmark_interval_s


class _ChunkWriter:
    """Writes watch events as HTTP/1.1 chunks; in "split" mode lines are cut across chunks."""

    def __init__(self, h, api, entry):
        self.h, self.api, self.entry = h, api, entry
        self.buf = bytearray()

    def event(self, etype, obj, batch=False):
        if etype != "ERROR":  # the log tells tests which RV the client has seen last on this stream
            self.entry["last_rv"] = int(obj["metadata"]["resourceVersion"])
            self.entry["events"] = self.entry.get("events", 0) + 1
        line = json.dumps({"type": etype, "object": obj}, separators=(",", ":")).encode() + b"\n"
        if batch and self.api.chunk_mode != "split":
            self.buf += line
            if len(self.buf) >= 65536:
                self._chunk(bytes(self.buf))
                self.buf.clear()
        else:
            if self.api.track_writes and etype != "BOOKMARK":  # taken before the write starts
                self.api._write_times.setdefault(int(obj["metadata"]["resourceVersion"]), time.monotonic())
            self.raw(line)

    def raw(self, data):
        if self.api.chunk_mode == "split":
            self.buf += data
        else:
            self._chunk(data)
        self.api._last_write = time.monotonic()

    def flush(self):
        if self.buf and self.api.chunk_mode != "split":
            self._chunk(bytes(self.buf))
            self.buf.clear()
        if self.buf:
            data, n = bytes(self.buf), max(1, int(self.api.split_size))
            self.buf.clear()
            for i in range(0, len(data), n):
                self._chunk(data[i:i + n])
        self.api._last_write = time.monotonic()

    def _chunk(self, data):
        self.h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.h.wfile.flush()

    def end(self):
        self.flush()
        self.h.wfile.write(b"0\r\n\r\n")
        self.h.wfile.flush()


# --------------------------------------------------------------------------------------------
# Command line


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True, help="where ca.crt, the token file and keys go")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--control-port", type=int, default=0)
    ap.add_argument("--load", help="a JSON file: a list of objects (or a kubectl List) to add at start")
    ap.add_argument("--bookmark-interval", type=float, default=1.0)
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    api = FakeApiServer(a.dir, port=a.port, control_port=a.control_port, verbose=a.verbose)
    api.bookmark_interval_s = a.bookmark_interval
    if a.load:
        data = json.loads(Path(a.load).read_text())
        api.apply_many(data["items"] if isinstance(data, dict) else data)
    api.start()
    print(json.dumps({"port": api.port, "control_port": api.control_port, "url": api.url,
                      "ca": str(api.ca_file), "token_file": str(api.token_file)}), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        api.stop()


if __name__ == "__main__":
    main()
