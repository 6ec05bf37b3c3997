"""Hostile clients (issue 8, item 3): TCP slowloris, half-open connections, a client that
pipelines thousands of queries and never reads, oversized length prefixes, a connection flood
from one source, a UDP flood; the access list (--allow) and the UDP amplification cap. Every
attack runs beside a well-behaved client whose answers are measured: each test asserts they all
come back, within a bound, and prints the figures (pytest -s shows them).

Bounds checked here (defaults in parentheses): --max-tcp-connections (1024),
--max-tcp-connections-per-client (256), --tcp-max-in-flight (128), --tcp-max-pending-bytes
(256 KiB), a read buffer of at most 2 + 65535 bytes per connection, --tcp-idle-timeout (10 s).
Every loop is bounded in count and time; traffic stays on 127.0.0.0/8.
"""

import json
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness import DATA, dig, free_port, fqdn, header, http_get, parse_header, parse_metrics, poll, qname_wire
from upstream.fake_upstream import FakeUpstream

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakeapi"))
import kubeobjects as k  # noqa: E402

# A good client may see its answers slowed by an attack on a shared 2-core machine, never lost,
# and never by more than this (measured figures are printed; see bench/RESULTS.md).
P99_BOUND_S = 0.25


def query(name, qtype=1, qid=0x1234, edns=None):
    q = header(qid, 0x0100, ar=1 if edns else 0) + qname_wire(name) + struct.pack("!HH", qtype, 1)
    if edns:
        q += b"\x00" + struct.pack("!HHIH", 41, edns, 0, 0)
    return q


def metrics(d):
    status, body, _ = http_get(d.metrics_port, "/metrics")
    assert status == 200
    out = {}
    for name, labels, v in parse_metrics(body):
        if not labels:
            out[name] = v
    return out


def rss_kib(d):
    for line in Path(f"/proc/{d.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Prober:
    """The well-behaved client: one UDP query at a time for a cluster name, in a thread,
    recording each answer's latency (or a loss after 1 s)."""

    def __init__(self, port, name=fqdn("web"), interval=0.01, tcp_every=10):
        self.port, self.name, self.interval, self.tcp_every = port, name, interval, tcp_every
        self.lat, self.lost, self.tcp_lat, self.tcp_lost = [], 0, [], 0
        self.stop = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.t.join(5)

    def _run(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(1.0)
        i = 0
        deadline = time.monotonic() + 120  # bounded whatever the test does
        while not self.stop.is_set() and time.monotonic() < deadline:
            i += 1
            qid = i & 0xFFFF
            t0 = time.monotonic()
            s.sendto(query(self.name, qid=qid), ("127.0.0.1", self.port))
            try:
                while True:
                    r = s.recv(4096)
                    if struct.unpack("!H", r[:2])[0] == qid:
                        break
                self.lat.append(time.monotonic() - t0)
            except socket.timeout:
                self.lost += 1
            if self.tcp_every and i % self.tcp_every == 0:
                t0 = time.monotonic()
                try:
                    c = socket.create_connection(("127.0.0.1", self.port), timeout=1)
                    c.sendall(struct.pack("!H", len(query(self.name))) + query(self.name))
                    n = struct.unpack("!H", c.recv(2))[0]
                    got = b""
                    while len(got) < n:
                        chunk = c.recv(n - len(got))
                        if not chunk:
                            raise ConnectionError("closed")
                        got += chunk
                    c.close()
                    self.tcp_lat.append(time.monotonic() - t0)
                except (OSError, ConnectionError):
                    self.tcp_lost += 1
            time.sleep(self.interval)
        s.close()

    @staticmethod
    def pct(xs, p):
        if not xs:
            return float("nan")
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(p * len(xs)))]

    def report(self, what):
        line = {"attack": what, "udp_answers": len(self.lat), "udp_lost": self.lost,
                "udp_p50_ms": round(1000 * self.pct(self.lat, 0.5), 2),
                "udp_p99_ms": round(1000 * self.pct(self.lat, 0.99), 2),
                "tcp_answers": len(self.tcp_lat), "tcp_lost": self.tcp_lost,
                "tcp_p99_ms": round(1000 * self.pct(self.tcp_lat, 0.99), 2)}
        print("hostile:", json.dumps(line))
        return line

    def check(self, what, min_answers=20):
        r = self.report(what)
        assert len(self.lat) >= min_answers, r
        assert self.lost == 0, f"the good client lost UDP answers during {what}: {r}"
        assert self.tcp_lost == 0, f"the good client lost TCP answers during {what}: {r}"
        assert self.pct(self.lat, 0.99) < P99_BOUND_S, r
        if self.tcp_lat:
            assert self.pct(self.tcp_lat, 0.99) < P99_BOUND_S, r
        return r


def test_slowloris_and_half_open_connections_are_closed_by_the_idle_timeout(hdnsd):
    d = hdnsd.start(DATA / "cluster.json", "--tcp-idle-timeout", "1")
    conns = []
    with Prober(d.port) as p:
        for _ in range(100):  # 50 trickle one byte of a frame at a time, 50 send nothing at all
            conns.append(socket.create_connection(("127.0.0.1", d.port), timeout=1))
        frame = struct.pack("!H", len(query(fqdn("web")))) + query(fqdn("web"))
        t0 = time.monotonic()
        closed_at = {}
        for step in range(40):  # 4 s: a byte every 100 ms never completes a query in time
            for i, c in enumerate(conns[:50]):
                if i in closed_at:
                    continue
                try:
                    c.send(frame[step % (len(frame) - 1):step % (len(frame) - 1) + 1])
                except OSError:
                    closed_at[i] = time.monotonic() - t0
            time.sleep(0.1)
        assert poll(lambda: metrics(d)["hdnsd_tcp_connections_open"] == 0, 2), metrics(d)
    m = metrics(d)
    assert m["hdnsd_tcp_idle_closed_total"] >= 100, m
    for c in conns:
        c.settimeout(0.5)
        try:
            assert c.recv(10) == b"", "an idle connection was answered"
        except OSError:
            pass  # reset: closed too
        c.close()
    p.check("slowloris + half-open")


def test_pipelining_thousands_without_reading_is_bounded(hdnsd):
    d = hdnsd.start(DATA / "cluster.json", "--tcp-max-pending-bytes", "65536")
    base = rss_kib(d)
    with Prober(d.port) as p:
        s = socket.create_connection(("127.0.0.1", d.port), timeout=2)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # keep the kernel's share small
        msg = query(fqdn("web"))
        frames = (struct.pack("!H", len(msg)) + msg) * 400_000  # ~19 MB: more than the kernel buffers hold; never read
        s.setblocking(False)
        sent, deadline = 0, time.monotonic() + 8
        while sent < len(frames) and time.monotonic() < deadline:
            try:
                sent += s.send(frames[sent:sent + 65536])
            except BlockingIOError:
                time.sleep(0.01)
        # hdnsd stopped reading once 64 KiB of answers were unsent: the rest sits in the kernel.
        assert sent < len(frames), "hdnsd read every query of a client that never reads its answers"
        time.sleep(1)
        grown = rss_kib(d) - base
        s.close()
    p.check("pipelining 400,000 queries, never reading")
    print(f"hostile: pipelining client: {sent} of {len(frames)} bytes accepted, hdnsd RSS +{grown} KiB")
    assert grown < 16 * 1024, f"RSS grew by {grown} KiB for one client"
    assert poll(lambda: metrics(d)["hdnsd_tcp_connections_open"] == 0, 2)


def test_oversized_length_prefixes_are_bounded(hdnsd):
    d = hdnsd.start(DATA / "cluster.json", "--tcp-idle-timeout", "1.5")
    base = rss_kib(d)
    with Prober(d.port) as p:
        conns = []
        for _ in range(200):  # each announces a 65535-byte message and sends 1000 bytes of it
            c = socket.create_connection(("127.0.0.1", d.port), timeout=1)
            c.sendall(b"\xff\xff" + b"\x00" * 1000)
            conns.append(c)
        time.sleep(0.5)
        grown = rss_kib(d) - base
        # A length below a DNS header cannot be a message: that connection is closed at once.
        bad = socket.create_connection(("127.0.0.1", d.port), timeout=1)
        bad.sendall(b"\x00\x05hello")
        bad.settimeout(1)
        assert bad.recv(10) == b""
        bad.close()
        assert poll(lambda: metrics(d)["hdnsd_tcp_connections_open"] == 0, 3), metrics(d)
        for c in conns:
            c.close()
    p.check("200 oversized length prefixes")
    print(f"hostile: 200 connections announcing 64 KiB frames: RSS +{grown} KiB")
    # At most 2 + 65535 bytes of buffer per connection: 200 × 64 KiB = 12.5 MiB.
    assert grown < 200 * 66 + 4096, grown
    assert metrics(d)["hdnsd_tcp_bad_frames_total"] >= 1


def test_connection_flood_from_one_source_hits_the_caps_not_other_clients(hdnsd):
    d = hdnsd.start(DATA / "cluster.json", "--max-tcp-connections", "40", "--max-tcp-connections-per-client", "10")
    flood = []
    with Prober(d.port, tcp_every=0) as p:
        for _ in range(300):  # one source (127.0.0.1) opens 300 connections and holds them
            try:
                flood.append(socket.create_connection(("127.0.0.1", d.port), timeout=1))
            except OSError:
                pass
        time.sleep(0.3)
        m = metrics(d)
        assert m["hdnsd_tcp_connections_open"] <= 10, m
        assert m["hdnsd_tcp_per_client_refused_total"] >= 280, m
        # Another client address still gets TCP service.
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.bind(("127.0.0.2", 0))
        c.settimeout(1)
        c.connect(("127.0.0.1", d.port))
        msg = query(fqdn("web"))
        c.sendall(struct.pack("!H", len(msg)) + msg)
        n = struct.unpack("!H", c.recv(2))[0]
        assert n > 12
        c.close()
    for s in flood:
        s.close()
    p.check("300 TCP connections from one source")


FLOODER = """
import socket, sys, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
msg = bytes.fromhex(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.3", 0))  # never reads its answers
n, t_end = 0, time.monotonic() + seconds
while time.monotonic() < t_end and n < 5_000_000:
    for _ in range(200):
        try:
            s.sendto(msg, ("127.0.0.1", port)); n += 1
        except OSError:
            pass
print(n)
"""


def test_udp_flood_from_one_source_leaves_other_clients_answered(hdnsd):
    d = hdnsd.start()
    with Prober(d.port, tcp_every=0) as p:
        time.sleep(0.5)
        f = subprocess.run([sys.executable, "-c", FLOODER, str(d.port), "5", query(fqdn("web")).hex()],
                           capture_output=True, text=True, timeout=30)
    sent = int(f.stdout.strip() or 0)
    r = p.report(f"UDP flood of {sent} queries from one source")
    # A flood shares one socket buffer with everyone, and hdnsd has no per-source rate limit
    # yet: at saturation (~200,000 queries/s from one Python process here) the buffer overflows
    # and a few of the good client's datagrams are lost with the flood's (measured: 5 of 62).
    # Those that arrive are answered at once (the loop never waits on the flooder).
    assert sent > 10_000, f.stderr
    assert len(p.lat) >= 30, r
    assert p.lost <= max(3, (len(p.lat) + p.lost) // 5), r
    assert p.pct(p.lat, 0.99) < P99_BOUND_S, r


def test_tcp_in_flight_cap_keeps_one_connection_from_filling_the_upstream_table(hdnsd, tmp_path):
    up = FakeUpstream(free_port(), delay=3.0)  # slow-* names answer after 3 s
    try:
        d = hdnsd.start(None, "--upstream", f"127.0.0.1:{up.port}", "--upstream-timeout", "5000",
                        "--tcp-max-in-flight", "50")
        s = socket.create_connection(("127.0.0.1", d.port), timeout=2)
        frames = b""
        for i in range(1000):
            msg = query(f"slow-{i}.example.", qid=i)
            frames += struct.pack("!H", len(msg)) + msg
        s.sendall(frames)
        time.sleep(0.5)
        m = metrics(d)
        assert m["hdnsd_upstream_in_flight"] <= 50, m  # without the cap: 1000
        # Everyone else's forwarded queries still find room.
        r = dig(d.port, "other.example.", "A")
        assert r.status == "NOERROR", r.describe()
        # The capped connection is served in turn: its first answers arrive after the delay.
        s.settimeout(6)
        n = struct.unpack("!H", s.recv(2))[0]
        assert n > 12
        s.close()
    finally:
        up.close()


def write_big_cluster(path, n):
    items = [k.service("shop", "big"), k.endpoint_slice("shop", "big", [f"10.250.{i // 250}.{i % 250 + 1}"
                                                                         for i in range(n)])]
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    return path


def test_udp_answers_are_capped_at_ten_times_the_query(hdnsd, tmp_path):
    d = hdnsd.start(write_big_cluster(tmp_path / "big.json", 60))  # 60 A records: ~1000 bytes
    name = "big.shop.svc.cluster.local."
    q = query(name, edns=4096)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1)
    s.sendto(q, ("127.0.0.1", d.port))
    r = s.recv(65535)
    _, qr, _, _, tc, rcode = parse_header(r)
    assert (qr, tc, rcode) == (1, 1, 0)
    assert len(r) <= max(512, 10 * len(q)), (len(r), len(q))
    # dig retries over TCP and gets all 60.
    full = dig(d.port, name, "A", "+bufsize=4096")
    assert full.retried_tcp and len(full.rdatas("A")) == 60, full.describe()
    assert metrics(d)["hdnsd_dns_amplification_truncated_total"] >= 1
    # --max-udp-amplification 0: the EDNS size alone decides (1232 here: it fits).
    d2 = hdnsd.start(tmp_path / "big.json", "--max-udp-amplification", "0")
    s.sendto(q, ("127.0.0.1", d2.port))
    r2 = s.recv(65535)
    assert parse_header(r2)[4] == 0 and len(r2) > 900
    s.close()


def test_allow_list_refuses_other_clients(hdnsd):
    d = hdnsd.start(DATA / "cluster.json", "--allow", "127.0.0.2/32", "--allow", "::1")
    name = fqdn("web")
    for src, want in (("127.0.0.2", 0), ("127.0.0.1", 5), ("127.0.0.9", 5)):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((src, 0))
        s.settimeout(1)
        q = query(name, edns=1232)
        s.sendto(q, ("127.0.0.1", d.port))
        r = s.recv(4096)
        s.close()
        assert parse_header(r)[5] == want, (src, parse_header(r))
        if want == 5:
            assert len(r) <= len(q), "a REFUSED answer must not be larger than the query"
    # Over TCP too.
    c = socket.create_connection(("127.0.0.1", d.port), timeout=1)
    msg = query(name)
    c.sendall(struct.pack("!H", len(msg)) + msg)
    n = struct.unpack("!H", c.recv(2))[0]
    assert parse_header(c.recv(n))[5] == 5
    c.close()
    # Garbage from an outsider gets nothing at all (not even FORMERR).
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    s.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x3f", ("127.0.0.1", d.port))
    with pytest.raises(socket.timeout):
        s.recv(4096)
    s.close()
    assert metrics(d)["hdnsd_dns_acl_refused_total"] >= 4


def test_default_allow_list_answers_loopback(hdnsd):
    d = hdnsd.start()  # the default: loopback, link-local, private ranges
    assert dig(d.port, fqdn("web")).status in ("NOERROR", "NXDOMAIN")
    assert metrics(d).get("hdnsd_dns_acl_refused_total", 0) == 0


@pytest.mark.parametrize("bad", ["10.1.0.0/8", "10.0.0.0/33", "example.com", "10.0.0.0/"])
def test_bad_allow_values_exit_2(bad):
    from harness import run_hdnsd
    p = run_hdnsd("--allow", bad, "--listen", f"127.0.0.1:{free_port()}")
    assert p.returncode == 2, p.stderr
    assert "--allow" in p.stderr
