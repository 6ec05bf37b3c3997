"""Issue 7, --workers N: one loop per worker, each with its own SO_REUSEPORT sockets, responder,
cache and upstream channel. The kernel hashes each client (address and port) to one worker, so
these tests talk from many UDP source ports and read hdnsd_worker_queries_total{worker} to see
which workers answered: a change (view, reload, lame duck) counts as reaching every worker only
when a round of queries answered by every worker shows it."""

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype

from harness import (DATA, config_file, copy_fixture, free_port, hdnsd_bin, http_get, parse_metrics, poll,
                     write_atomic)
from upstream.fake_upstream import FakeUpstream

RL = "rl.shop.svc.cluster.local."  # reload-v1.json: 10.251.0.1; reload-v2.json: 10.251.0.2
V2 = (DATA / "reload-v2.json").read_text()
WEB = "web.shop.svc.cluster.local."
PORTS = 64  # source ports per round: P(a worker of 3 gets none) = 3 × (2/3)^64 ≈ 2e-11


def per_worker(d):
    _, body, _ = http_get(d.metrics_port, "/metrics")
    return {l["worker"]: v for n, l, v in parse_metrics(body) if n == "hdnsd_worker_queries_total"}


def metric(d, name, **labels):
    _, body, _ = http_get(d.metrics_port, "/metrics")
    return sum(v for n, l, v in parse_metrics(body) if n == name and all(l.get(k) == x for k, x in labels.items()))


def round_of_queries(port, name=RL, n=PORTS, rdtype="A", wait=2.0):
    """One query from each of n fresh UDP sockets (n source ports); returns the n replies
    (dns.message.Message, or None for no reply within `wait`)."""
    socks = []
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        q = dns.message.make_query(name, rdtype)
        q.id = i
        s.sendto(q.to_wire(), ("127.0.0.1", port))
        socks.append(s)
    replies = []
    deadline = time.monotonic() + wait
    for s in socks:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            replies.append(dns.message.from_wire(s.recv(65535)))
        except (socket.timeout, dns.exception.DNSException):
            replies.append(None)
        s.close()
    return replies


def addresses(reply):
    if reply is None:
        return None
    if reply.rcode() != dns.rcode.NOERROR:
        return dns.rcode.to_text(reply.rcode())
    return sorted(r.address for rrset in reply.answer if rrset.rdtype == dns.rdatatype.A for r in rrset)


def answered_by(d, fn):
    """Runs fn() and returns (its result, {worker: queries it answered meanwhile})."""
    before = per_worker(d)
    out = fn()
    after = per_worker(d)
    return out, {w: after[w] - before.get(w, 0) for w in after}


def until_every_worker_shows(d, want, name=RL, timeout=5.0):
    """Rounds of PORTS queries until one round is all `want` (addresses(reply) == want); returns
    that round's per-worker deltas, or fails with the last round's answers."""
    deadline = time.monotonic() + timeout
    while True:
        got, delta = answered_by(d, lambda: [addresses(r) for r in round_of_queries(d.port, name)])
        if all(g == want for g in got):
            return delta
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout}s a round still had {sorted(map(str, set(map(str, got))))}, "
                                 f"want {want} from every worker: {delta}\n{d.log()[-2000:]}")
        time.sleep(0.05)


def worker_threads(pid):
    """Names of the process's threads that are hdnsd workers (the main thread is worker 0)."""
    names = []
    for t in Path(f"/proc/{pid}/task").iterdir():
        try:
            names.append((t / "comm").read_text().strip())
        except OSError:
            pass
    return sorted(n for n in names if n.startswith("hdnsd-w"))


def test_many_source_ports_are_answered_and_spread_over_workers(hdnsd):
    d = hdnsd.start(DATA / "cluster.json", "--workers", "3")
    assert worker_threads(d.pid) == ["hdnsd-w1", "hdnsd-w2"]
    got, delta = answered_by(d, lambda: [addresses(r) for r in round_of_queries(d.port, WEB, n=3 * PORTS)])
    assert all(g == ["10.250.1.10", "10.250.1.11", "10.250.1.12"] for g in got), got
    assert sorted(delta) == ["0", "1", "2"], delta
    assert sum(delta.values()) == 3 * PORTS
    assert all(v > 0 for v in delta.values()), f"a worker answered nothing: {delta}"
    # TCP: each connection is accepted by one worker's listener.
    for _ in range(12):
        r = subprocess.run(["dig", "@127.0.0.1", "-p", str(d.port), "+tcp", "+short", "+time=2", "+tries=1", WEB, "A"],
                           capture_output=True, text=True, timeout=10)
        assert sorted(r.stdout.split()) == ["10.250.1.10", "10.250.1.11", "10.250.1.12"], r.stdout + r.stderr
    assert metric(d, "hdnsd_dns_queries_total", transport="tcp") == 12
    assert sum(per_worker(d).values()) == metric(d, "hdnsd_dns_queries_total")  # the families agree


def test_round_robin_rotates_per_worker_and_stays_balanced(hdnsd):
    # Each worker keeps its own counters (from a random start): over all workers the first
    # record is spread within one per worker of even, though not strictly alternating.
    d = hdnsd.start(DATA / "cluster.json", "--workers", "3")
    firsts = []
    for _ in range(5):
        for r in round_of_queries(d.port, WEB, n=60):
            assert r is not None
            firsts.append(r.answer[0][0].address)
    counts = {a: firsts.count(a) for a in set(firsts)}
    assert sorted(counts) == ["10.250.1.10", "10.250.1.11", "10.250.1.12"], counts
    assert max(counts.values()) - min(counts.values()) <= 3, counts


def test_workers_1_is_the_single_loop(hdnsd):
    d = hdnsd.start(DATA / "cluster.json", "--workers", "1")
    assert worker_threads(d.pid) == []
    got = [addresses(r) for r in round_of_queries(d.port, WEB, n=16)]
    assert all(g == ["10.250.1.10", "10.250.1.11", "10.250.1.12"] for g in got), got
    assert per_worker(d) == {"0": 16}


def test_endpoints_file_change_reaches_every_worker(hdnsd, tmp_path):
    f = copy_fixture("reload-v1.json", tmp_path / "eps.json")
    d = hdnsd.start(f, "--workers", "3")
    delta = until_every_worker_shows(d, ["10.251.0.1"], timeout=0)
    assert all(delta.get(w, 0) > 0 for w in "012"), delta
    write_atomic(f, V2)
    delta = until_every_worker_shows(d, ["10.251.0.2"])
    assert all(delta.get(w, 0) > 0 for w in "012"), delta
    assert metric(d, "hdnsd_view_services") == 2


def test_sighup_reload_applies_to_every_worker(hdnsd, tmp_path):
    # --allow is a responder option (not part of the view): a reload must reach each worker's own
    # responder. Loopback leaves the allowed set, so every worker answers REFUSED.
    cfg = config_file(tmp_path / "c.json", allow=["127.0.0.0/8"])
    d = hdnsd.start(DATA / "reload-v1.json", "--config", cfg, "--workers", "3")
    until_every_worker_shows(d, ["10.251.0.1"], timeout=0)
    cfg.write_text('{"allow": ["10.0.0.0/8"]}')
    d.signal(signal.SIGHUP)
    delta = until_every_worker_shows(d, "REFUSED")
    assert all(delta.get(w, 0) > 0 for w in "012"), delta
    assert metric(d, "hdnsd_dns_acl_refused_total") >= PORTS
    cfg.write_text('{"allow": ["127.0.0.0/8"]}')
    d.signal(signal.SIGHUP)
    until_every_worker_shows(d, ["10.251.0.1"])


def test_sigterm_exits_cleanly_with_upstream_queries_and_tcp_in_flight(hdnsd):
    fake = FakeUpstream(free_port(), delay=30)
    try:
        d = hdnsd.start(DATA / "cluster.json", "--workers", "3", "--upstream", f"127.0.0.1:{fake.port}",
                        "--upstream-timeout", "5000", "--upstream-tries", "1")
        # Upstream queries that will not be answered before the exit, from every worker.
        socks = []
        for i in range(PORTS):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.sendto(dns.message.make_query(f"silent-{i}.example.", "A").to_wire(), ("127.0.0.1", d.port))
            socks.append(s)
        tcp = socket.create_connection(("127.0.0.1", d.port), timeout=1)  # an idle TCP client
        assert poll(lambda: metric(d, "hdnsd_upstream_in_flight") == PORTS, 3), metric(d, "hdnsd_upstream_in_flight")
        t = time.monotonic()
        d.signal(signal.SIGTERM)
        d.proc.wait(5)
        took = time.monotonic() - t
        assert d.proc.returncode == 0, d.log()
        assert took < 2.5, f"exit {took:.2f}s after SIGTERM"
        assert "still had handles open" not in d.log(), d.log()
        tcp.close()
        for s in socks:
            s.close()
    finally:
        fake.close()


def test_lameduck_keeps_every_worker_answering_then_exits(hdnsd):
    d = hdnsd.start(DATA / "reload-v1.json", "--workers", "3", "--lameduck", "1.5")
    t = time.monotonic()
    d.signal(signal.SIGTERM)
    assert poll(lambda: http_get(d.metrics_port, "/ready")[0] == 503, 1)
    delta = until_every_worker_shows(d, ["10.251.0.1"], timeout=0)
    assert all(delta.get(w, 0) > 0 for w in "012"), delta
    assert time.monotonic() - t < 1.4, "the lame duck's answers above came too late to count"
    d.proc.wait(5)
    took = time.monotonic() - t
    assert d.proc.returncode == 0, d.log()
    assert 1.4 <= took <= 3.0, f"exited {took:.2f}s after SIGTERM (lameduck 1.5 s)"
    # Each worker detached its own socket from the SO_REUSEPORT group, then drained it.
    assert len(re.findall(r"take no new queries", d.log())) == 3, d.log()


def test_identical_misses_make_at_most_one_upstream_query_per_worker(hdnsd):
    # Per-worker forwarders coalesce within a worker: 100 clients over 3 workers, one upstream
    # query for each worker that got any of them, and every client answered.
    fake = FakeUpstream(free_port(), delay=1.0)
    try:
        d = hdnsd.start(DATA / "cluster.json", "--workers", "3", "--upstream", f"127.0.0.1:{fake.port}",
                        "--upstream-timeout", "3000")
        got, delta = answered_by(d, lambda: round_of_queries(d.port, "slow-coalesce.example.", n=100, wait=5))
        assert all(r is not None and r.rcode() == dns.rcode.NOERROR for r in got)
        workers_used = sum(1 for v in delta.values() if v > 0)
        assert fake.queries_for("slow-coalesce") == workers_used, (delta, fake.queries_for("slow-coalesce"))
        assert metric(d, "hdnsd_upstream_coalesced_total") == 100 - workers_used
        # Each worker's cache now answers it; a cache is per worker, so a hit needs its own miss first.
        got = round_of_queries(d.port, "slow-coalesce.example.", n=PORTS, wait=1)
        assert all(r is not None and r.rcode() == dns.rcode.NOERROR for r in got)
        assert fake.queries_for("slow-coalesce") == workers_used  # no new upstream query
        assert metric(d, "hdnsd_cache_hits_total") == PORTS
    finally:
        fake.close()


def test_default_is_one_worker_per_usable_cpu():
    exe = str(hdnsd_bin())
    one = subprocess.run(["taskset", "-c", "0", exe, "--check-config"], capture_output=True, text=True, timeout=10)
    assert one.returncode == 0, one.stderr
    assert '"workers": 1' in one.stdout  # affinity of one CPU: one worker
    every = subprocess.run([exe, "--check-config"], capture_output=True, text=True, timeout=10)
    cpus = min(len(os.sched_getaffinity(0)), 64)
    cpu_max = Path("/sys/fs/cgroup/cpu.max")
    if not cpu_max.exists() or cpu_max.read_text().startswith("max"):  # no CFS quota lowers it
        assert f'"workers": {cpus}' in every.stdout, every.stdout
    forced = subprocess.run([exe, "--check-config", "--workers", "5"], capture_output=True, text=True, timeout=10)
    assert '"workers": 5' in forced.stdout
