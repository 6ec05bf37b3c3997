"""Forwarding against a misbehaving fake upstream (test/integration/upstream/fake_upstream.py):
slow, wrong ID, wrong question, duplicate answers, TC, silent, SERVFAIL; coalescing of identical
misses; cluster answers stay fast while upstream queries wait."""

import socket
import struct
import time

import pytest

from harness import DATA, dig, free_port, fqdn, http_get, parse_metrics
from upstream.fake_upstream import FakeUpstream


@pytest.fixture
def fake():
    f = FakeUpstream(free_port(), delay=1.5)
    yield f
    f.close()


def start(hdnsd, fake, *extra):
    return hdnsd.start(DATA / "cluster.json", "--upstream", f"127.0.0.1:{fake.port}", "--upstream-timeout", "400",
                       "--upstream-tries", "1", *extra)


def metric(d, name, **labels):
    _, body, _ = http_get(d.metrics_port, "/metrics")
    return sum(v for n, l, v in parse_metrics(body) if n == name and all(l.get(k) == x for k, x in labels.items()))


def query_bytes(qid, name, qtype=1):
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack("!HH", qtype, 1)


def test_identical_concurrent_misses_make_one_upstream_query(hdnsd, fake):
    # One worker: coalescing is per worker (test_workers.py: at most one upstream query each).
    d = start(hdnsd, fake, "--upstream-timeout", "3000", "--workers", "1")
    socks = []
    for i in range(100):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(5)
        s.sendto(query_bytes(i, "slow-coalesce.example"), ("127.0.0.1", d.port))
        socks.append(s)
    answered = 0
    for i, s in enumerate(socks):
        data = s.recv(4096)
        assert struct.unpack("!H", data[:2])[0] == i  # each client gets its own ID back
        assert data[3] & 0x0F == 0
        answered += 1
        s.close()
    assert answered == 100
    assert fake.queries_for("slow-coalesce") == 1
    assert metric(d, "hdnsd_upstream_coalesced_total") == 99


def test_slow_upstream_does_not_delay_cluster_answers(hdnsd, fake):
    d = start(hdnsd, fake, "--upstream-timeout", "3000")
    waiting = []
    for i in range(20):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(query_bytes(i, f"slow-{i}.example"), ("127.0.0.1", d.port))
        waiting.append(s)
    time.sleep(0.1)
    for _ in range(5):
        t0 = time.monotonic()
        r = dig(d.port, fqdn("web"), "A")
        assert r.status == "NOERROR" and r.answer, r.describe()
        assert time.monotonic() - t0 < 0.5, "a cluster answer waited for the slow upstream"
    assert metric(d, "hdnsd_upstream_in_flight") == 20
    for s in waiting:
        s.settimeout(5)
        assert len(s.recv(4096)) > 12
        s.close()


@pytest.mark.parametrize("name,status", [
    ("wrongid-1.example", "SERVFAIL"),   # the only answer has another ID: ignored, then timeout
    ("wrongq-1.example", "SERVFAIL"),    # the answer echoes another question: ignored
    ("silent-1.example", "SERVFAIL"),    # nothing comes back
    ("servfail-1.example", "SERVFAIL"),  # SERVFAIL from the only server
    ("dup-1.example", "NOERROR"),        # the second copy is ignored
    ("tc-1.example", "NOERROR"),         # TC over UDP: c-ares retries over TCP
])
def test_misbehaving_upstream(hdnsd, fake, name, status):
    d = start(hdnsd, fake)
    t0 = time.monotonic()
    r = dig(d.port, name, "A", timeout=10)
    assert r.status == status, r.describe()
    assert time.monotonic() - t0 < 2.0, "failures must end within the upstream timeout"
    if status == "NOERROR":
        assert r.rdatas("A") == ["192.0.2.53"], r.describe()
    r2 = dig(d.port, fqdn("web"), "A")  # the daemon is fine afterwards
    assert r2.status == "NOERROR", r2.describe()
    errors = metric(d, "hdnsd_upstream_errors_total")
    assert (errors >= 1) == (status == "SERVFAIL")


def test_tcp_client_gets_upstream_answer_and_closing_client_is_harmless(hdnsd, fake):
    d = start(hdnsd, fake, "--upstream-timeout", "3000")
    r = dig(d.port, "plain.example", "A", tcp=True)
    assert r.rdatas("A") == ["192.0.2.53"], r.describe()
    # A TCP client that asks a slow name and hangs up: its waiter is cancelled, nothing breaks.
    s = socket.create_connection(("127.0.0.1", d.port))
    q = query_bytes(7, "slow-gone.example")
    s.sendall(struct.pack("!H", len(q)) + q)
    s.close()
    time.sleep(2.0)  # the answer arrives after the connection is gone
    r = dig(d.port, fqdn("web"), "A", tcp=True)
    assert r.status == "NOERROR", r.describe()
