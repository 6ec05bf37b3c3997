"""Harness for hdnsd's integration tests (fixtures live in conftest.py).

Starts the real daemon (HDNSD_BIN, default build/hdnsd) on free loopback ports and talks to it
with the real `dig`, raw sockets and plain HTTP. Every process started here is stopped in fixture
teardown (SIGTERM, then SIGKILL after 2 s). Nothing leaves 127.0.0.1 / ::1.

dig is the oracle: its output is parsed into a DigResult (rcode, flags, sections, OPT), and its
own warnings about malformed replies are kept so tests can fail on them.
"""

import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
ZONE = "cluster.local"
NS = "shop"  # the namespace of data/cluster.json
DEFAULT_TTL = 5  # the contract's --ttl default


def hdnsd_bin():
    p = Path(os.environ.get("HDNSD_BIN", "build/hdnsd"))
    return p if p.is_absolute() else REPO / p


def fqdn(name):
    """'web' -> 'web.shop.svc.cluster.local.'; names with a dot are taken as given (+ root)."""
    if "." not in name:
        name = f"{name}.{NS}.svc.{ZONE}"
    return name if name.endswith(".") else name + "."


# --------------------------------------------------------------------------------------------
# Ports


def _ephemeral_range():
    try:
        lo, hi = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def free_port(host="127.0.0.1"):
    """A port that is free for both UDP and TCP on `host` right now, chosen OUTSIDE the kernel's
    ephemeral range. hdnsd binds with SO_REUSEPORT, and so does dig (BIND's netmgr); as the same
    user (root here) the kernel may hand dig an ephemeral source port equal to hdnsd's port, and
    dig then receives its own query ("query response not set"). Ports below the ephemeral range
    are never handed out as source ports, so that cannot happen. (In production hdnsd listens on
    53, also outside the range.)"""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    lo, _ = _ephemeral_range()
    candidates = list(range(max(1024, lo - 12000), lo))
    random.shuffle(candidates)
    for port in candidates[:500]:
        t = socket.socket(family, socket.SOCK_STREAM)
        u = socket.socket(family, socket.SOCK_DGRAM)
        try:
            t.bind((host, port))
            u.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise RuntimeError("no free UDP+TCP port on " + host)


def ipv6_loopback_reason():
    """None if ::1 can be bound here, else why not (used to skip the IPv6 test, with the reason)."""
    if not socket.has_ipv6:
        return "Python was built without IPv6"
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    except OSError as e:
        return f"cannot create an AF_INET6 socket: {e}"
    try:
        s.bind(("::1", 0))
    except OSError as e:
        return f"::1 is not configured on this machine (bind failed: {e})"
    finally:
        s.close()
    return None


# --------------------------------------------------------------------------------------------
# dig


@dataclass
class Record:
    name: str
    ttl: int
    rclass: str
    rtype: str
    rdata: str  # dig's text, whitespace collapsed to single spaces


@dataclass
class DigResult:
    cmd: list
    text: str
    returncode: int
    status: str = None  # rcode mnemonic, None when no reply was printed
    id: int = None
    flags: set = field(default_factory=set)
    counts: dict = field(default_factory=dict)  # QUERY/ANSWER/AUTHORITY/ADDITIONAL from header
    question: list = field(default_factory=list)  # (name, class, type) as printed
    answer: list = field(default_factory=list)
    authority: list = field(default_factory=list)
    additional: list = field(default_factory=list)
    edns: dict = None  # {"version": int, "flags": set, "udp": int} when the reply had an OPT
    warnings: list = field(default_factory=list)
    retried_tcp: bool = False

    def rdatas(self, rtype, section="answer"):
        return sorted(r.rdata for r in getattr(self, section) if r.rtype == rtype)

    def describe(self):
        return "$ " + " ".join(self.cmd) + "\n" + self.text


# dig warnings that are about our setup, not about the reply's format.
_BENIGN_WARNINGS = ("recursion requested but not available",
                    ".local is reserved for multicast dns")  # our zone is cluster.local

_SECTION_HEADERS = {
    ";; QUESTION SECTION:": "question",
    ";; ANSWER SECTION:": "answer",
    ";; AUTHORITY SECTION:": "authority",
    ";; ADDITIONAL SECTION:": "additional",
    ";; OPT PSEUDOSECTION:": "opt",
}


def parse_dig(cmd, text, returncode):
    r = DigResult(cmd=cmd, text=text, returncode=returncode)
    r.retried_tcp = "Truncated, retrying in TCP mode" in text
    # With a TCP retry dig prints two replies; the last one is what the resolver would use.
    chunks = text.split(";; Got answer:")
    for line in text.splitlines():
        low = line.lower()
        if low.startswith(";; warning") and not any(b in low for b in _BENIGN_WARNINGS):
            r.warnings.append(line.strip())
    if len(chunks) < 2:
        return r
    section = None
    for line in chunks[-1].splitlines():
        s = line.strip()
        m = re.match(r";; ->>HEADER<<- opcode: (\S+), status: (\S+), id: (\d+)", s)
        if m:
            r.status, r.id = m.group(2), int(m.group(3))
            continue
        m = re.match(r";; flags:([^;]*);(.*)", s)
        if m and section is None:
            r.flags = set(m.group(1).split())
            for k, v in re.findall(r"(\w+): (\d+)", m.group(2)):
                r.counts[k] = int(v)
            continue
        if s in _SECTION_HEADERS:
            section = _SECTION_HEADERS[s]
            continue
        if not s:
            if section != "opt":
                section = None
            continue
        if s.startswith(";; "):
            section = None
            continue
        if section == "opt":
            m = re.match(r"; EDNS: version: (\d+), flags:([^;]*); udp: (\d+)", s)
            if m:
                r.edns = {"version": int(m.group(1)), "flags": set(m.group(2).split()),
                          "udp": int(m.group(3))}
        elif section == "question":
            parts = s.lstrip(";").split()
            r.question.append(tuple(parts[:3]))
        elif section in ("answer", "authority", "additional"):
            parts = s.split(None, 4)
            if len(parts) >= 4:
                r_ = Record(parts[0], int(parts[1]), parts[2], parts[3],
                            " ".join(parts[4].split()) if len(parts) > 4 else "")
                getattr(r, section).append(r_)
    return r


def dig(port, name, rtype="A", *opts, server="127.0.0.1", tcp=False, reverse=False, timeout=10):
    """Runs dig once (+time=1 +tries=1) and parses its output. tcp=False forces UDP (+notcp),
    which still lets dig retry over TCP after TC unless +ignore is given."""
    cmd = ["dig", f"@{server}", "-p", str(port), "+time=1", "+tries=1",
           "+tcp" if tcp else "+notcp", *opts]
    cmd += ["-x", name] if reverse else [name, rtype]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return parse_dig(cmd, p.stdout + p.stderr, p.returncode)


# --------------------------------------------------------------------------------------------
# HTTP


def http_get(port, path, timeout=1.0):
    """(status, body text, content-type). Raises OSError when nothing listens."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        resp = c.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace"), resp.getheader("Content-Type", "")
    finally:
        c.close()


_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?\s*$")
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Prometheus text format → list of (name, {label: value}, float)."""
    out = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise AssertionError(f"not a Prometheus sample line: {line!r}")
        labels = dict(_LABEL.findall(m.group(2) or ""))
        out.append((m.group(1), labels, float(m.group(3))))
    return out


# --------------------------------------------------------------------------------------------
# Raw DNS helpers (for what dig will not send)


def header(qid, flags, qd=1, an=0, ns=0, ar=0):
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


def qname_wire(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def parse_header(resp):
    """(id, qr, opcode, aa, tc, rcode) of a reply's first 4 bytes."""
    qid, flags = struct.unpack("!HH", resp[:4])
    return qid, flags >> 15, (flags >> 11) & 0xF, (flags >> 10) & 1, (flags >> 9) & 1, flags & 0xF


def udp_exchange(port, payload, wait=0.3, host="127.0.0.1"):
    """Sends one datagram; returns the reply or None when nothing came within `wait` seconds."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.settimeout(wait)
    try:
        s.sendto(payload, (host, port))
        return s.recv(65535)
    except socket.timeout:
        return None
    finally:
        s.close()


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def tcp_read_msg(sock):
    (length,) = struct.unpack("!H", recv_exact(sock, 2))
    return recv_exact(sock, length)


def tcp_exchange(port, payload, wait=0.3):
    """Sends one length-prefixed message on a new connection. Returns ("reply", bytes),
    ("closed", None) when the server closed without replying, or ("silent", None)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=1)
    try:
        s.sendall(struct.pack("!H", len(payload)) + payload)
        s.settimeout(wait)
        try:
            return "reply", tcp_read_msg(s)
        except socket.timeout:
            return "silent", None
        except (ConnectionError, OSError):
            return "closed", None
    finally:
        s.close()


# --------------------------------------------------------------------------------------------
# The daemon


class Daemon:
    """One running build/hdnsd. `port` serves DNS on 127.0.0.1 (UDP+TCP), `metrics_port` HTTP."""

    def __init__(self, args, workdir, name, port=None, metrics_port=None):
        args = [*map(str, args)]
        # Never forward to this machine's resolvers: without an explicit --resolv-conf the
        # daemon reads no resolv.conf (tests that forward pass --upstream at a local server).
        if not any(a == "--resolv-conf" or a.startswith("--resolv-conf=") for a in args):
            args += ["--resolv-conf", "none"]
        # Started as root, hdnsd drops to --user (default nobody) after binding; pytest's
        # tmp_path (/tmp/pytest-of-root, mode 0700) would then be unreadable. Tests stay root
        # unless they test the drop (test_ops_privileges.py passes --user itself).
        if os.geteuid() == 0 and not any(a == "--user" or a.startswith("--user=") for a in args):
            args += ["--user", "root"]
        self.args = [str(hdnsd_bin()), *args]
        self.port, self.metrics_port = port, metrics_port
        self.log_path = Path(workdir) / f"{name}.log"
        self._log = open(self.log_path, "w+b")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, cwd=REPO)

    @property
    def pid(self):
        return self.proc.pid

    def log(self):
        return self.log_path.read_text(errors="replace")

    def alive(self):
        return self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_up(self, timeout=5.0, ready=True):
        """Waits for GET /ready == 200 (ready=True) or GET /health == 200 (ready=False) when a
        metrics port is set, else for a dig answer on the DNS port."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(f"hdnsd exited with {self.proc.returncode} while starting:\n"
                                     + " ".join(self.args) + "\n" + self.log())
            try:
                if self.metrics_port:
                    status, body, _ = http_get(self.metrics_port, "/ready" if ready else "/health",
                                               timeout=0.5)
                    last = f"HTTP {status} {body.strip()!r}"
                    if status == 200:
                        return self
                else:
                    r = dig(self.port, f"dns-version.{ZONE}", "TXT")
                    last = r.status
                    if r.status is not None:
                        return self
            except OSError as e:
                last = repr(e)
            time.sleep(0.05)
        raise AssertionError(f"hdnsd not up within {timeout}s (last: {last}):\n"
                             + " ".join(self.args) + "\n" + self.log())

    def stop(self):
        """SIGTERM (SIGKILL after 2 s). Returns a problem description, or None for exit 0."""
        problem = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                problem = "still running 2 s after SIGTERM (killed)"
        if problem is None and self.proc.returncode != 0:
            problem = f"exit status {self.proc.returncode}"
        if not self._log.closed:
            self._log.close()
        if problem is None and re.search(r"AddressSanitizer|LeakSanitizer|runtime error:", self.log()):
            problem = "sanitizer report in the log"
        return problem


class DaemonFactory:
    """start(...) launches a daemon and remembers it; close() stops them all (fixture teardown)."""

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.daemons = []

    def start(self, endpoints=DATA / "cluster.json", *extra, port=None, metrics=True, wait="ready",
              listen=True, name=None):
        exe = hdnsd_bin()
        if not exe.exists():
            pytest.fail(f"{exe} does not exist: build it (make build/hdnsd) or set HDNSD_BIN")
        port = port or free_port()
        metrics_port = free_port() if metrics else None
        args = []
        if listen:
            args += ["--listen", f"127.0.0.1:{port}"]
        if endpoints is not None:
            args += ["--endpoints-file", endpoints]
        if metrics:
            args += ["--metrics", f"127.0.0.1:{metrics_port}"]
        args += list(extra)
        d = Daemon(args, self.workdir, name or f"hdnsd-{len(self.daemons)}", port, metrics_port)
        self.daemons.append(d)
        if wait == "ready":
            d.wait_up(ready=True)
        elif wait == "health":
            d.wait_up(ready=False)
        return d

    def close(self):
        """Stops every daemon; then fails if one of them crashed or did not stop cleanly, so
        a crash in a test that did not look (or a sanitizer report) is not lost."""
        problems = []
        for d in self.daemons:
            why = d.stop()
            if why:
                tail = "\n".join(d.log().splitlines()[-30:])
                problems.append(f"{' '.join(d.args)}: {why}\n{tail}")
        self.daemons = []
        if problems:
            raise AssertionError("hdnsd did not stop cleanly:\n" + "\n\n".join(problems))


def run_hdnsd(*args, timeout=5):
    """Runs the binary to completion (option parsing tests). Fails if it keeps running."""
    exe = hdnsd_bin()
    if not exe.exists():
        pytest.fail(f"{exe} does not exist: build it (make build/hdnsd) or set HDNSD_BIN")
    try:
        return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, cwd=REPO)
    except subprocess.TimeoutExpired:
        pytest.fail(f"hdnsd {' '.join(map(str, args))} still running after {timeout}s "
                    "(expected it to exit)")


def write_atomic(path, text):
    """Write-then-rename, the way kubectl-driven tooling and editors replace files."""
    path = Path(path)
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_in_place(path, text):
    """Truncate and rewrite the same inode (what `cat new > file` does)."""
    with open(path, "r+" if Path(path).exists() else "w") as f:
        f.seek(0)
        f.truncate()
        f.write(text)


def copy_fixture(name, dest):
    shutil.copyfile(DATA / name, dest)
    return Path(dest)


def poll(fn, timeout, interval=0.05):
    """Calls fn() until it returns a truthy value or `timeout` passes; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def config_file(path, **kv):
    """Writes a JSON config with the contract's key names (underscores become dashes)."""
    path = Path(path)
    path.write_text(json.dumps({k.replace("_", "-"): v for k, v in kv.items()}))
    return path
