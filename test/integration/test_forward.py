"""Forwarding (issue 4) against a real authoritative upstream: Knot DNS on a loopback port,
zone and config generated per test module (test/integration/upstream/knot.py). Every daemon here
gets --upstream pointing at it; nothing leaves 127.0.0.1."""

import socket
import struct
import time

import pytest

from harness import DATA, dig, free_port, fqdn, http_get, parse_metrics, run_hdnsd
from upstream.knot import Knot, knot_missing

pytestmark = pytest.mark.skipif(knot_missing() is not None, reason=knot_missing() or "")


@pytest.fixture(scope="module")
def knot(tmp_path_factory):
    k = Knot(tmp_path_factory.mktemp("knot"), free_port()).start()
    yield k
    k.stop()


def start(hdnsd, knot_port, *extra):
    # One worker: these tests count upstream queries and cache hits of ONE cache (each worker has
    # its own: with several, a repeated query may land on a worker that has not seen it yet;
    # test_workers.py covers that).
    return hdnsd.start(None, "--upstream", f"127.0.0.1:{knot_port}", "--workers", "1", *extra)


def metric(d, name, **labels):
    _, body, _ = http_get(d.metrics_port, "/metrics")
    return sum(v for n, l, v in parse_metrics(body) if n == name and all(l.get(k) == x for k, x in labels.items()))


def test_answer_forwarded_then_cached_and_ttl_counts_down(hdnsd, knot):
    d = start(hdnsd, knot.port)
    before = knot.queries()
    r = dig(d.port, "WwW.Example.Test", "A")
    assert r.status == "NOERROR", r.describe()
    assert "ra" in r.flags and "aa" not in r.flags, r.describe()
    assert r.question[0][0] == "WwW.Example.Test.", r.describe()  # letter case as asked
    assert r.rdatas("A") == ["192.0.2.1"], r.describe()
    first_ttl = r.answer[0].ttl
    assert knot.queries() == before + 1
    time.sleep(1.2)
    r2 = dig(d.port, "www.example.test", "A")
    assert r2.rdatas("A") == ["192.0.2.1"], r2.describe()
    assert r2.answer[0].ttl < first_ttl, (first_ttl, r2.describe())
    r3 = dig(d.port, "www.example.test", "A", tcp=True)
    assert r3.rdatas("A") == ["192.0.2.1"], r3.describe()
    assert knot.queries() == before + 1, "the second and third queries must come from the cache"
    assert metric(d, "hdnsd_cache_hits_total") >= 2
    assert metric(d, "hdnsd_upstream_queries_total", upstream="default", rcode="NOERROR") == 1


def test_nxdomain_cached_with_soa(hdnsd, knot):
    d = start(hdnsd, knot.port)
    before = knot.queries()
    for _ in range(3):
        r = dig(d.port, "nope.example.test", "A")
        assert r.status == "NXDOMAIN", r.describe()
        assert [a.rtype for a in r.authority] == ["SOA"], r.describe()
    assert knot.queries() == before + 1


def test_large_answer_retried_over_tcp_upstream(hdnsd, knot):
    d = start(hdnsd, knot.port)
    before = knot.stats().get("tcp4", 0)
    r = dig(d.port, "big.example.test", "A", tcp=True)
    assert r.status == "NOERROR", r.describe()
    assert len(r.rdatas("A")) == 120, r.describe()
    assert knot.stats().get("tcp4", 0) == before + 1, "the truncated UDP answer must be retried over TCP"
    # Over UDP the client gets TC=1 (the answer is > 1232 bytes) and dig retries over TCP.
    u = dig(d.port, "big.example.test", "A", "+ignore")
    assert "tc" in u.flags, u.describe()


def test_cluster_names_still_answered_by_the_view(hdnsd, knot):
    d = hdnsd.start(DATA / "cluster.json", "--upstream", f"127.0.0.1:{knot.port}")
    before = knot.queries()
    r = dig(d.port, fqdn("web"), "A")
    assert r.status == "NOERROR" and r.answer, r.describe()
    assert "aa" in r.flags and "ra" in r.flags, r.describe()
    # Search-path expansion of an outside name: NXDOMAIN from the view, never forwarded.
    r = dig(d.port, "www.example.test.shop.svc.cluster.local", "A")
    assert r.status == "NXDOMAIN", r.describe()
    assert knot.queries() == before


def test_aaaa_nodata_policy_answers_at_once(hdnsd, knot):
    d = start(hdnsd, knot.port, "--aaaa", "nodata")
    before = knot.queries()
    r = dig(d.port, "www.example.test", "AAAA")
    assert r.status == "NOERROR" and not r.answer, r.describe()
    assert knot.queries() == before
    d2 = start(hdnsd, knot.port)  # auto: outside names are forwarded
    r = dig(d2.port, "www.example.test", "AAAA")
    assert r.rdatas("AAAA") == ["2001:db8::1"], r.describe()


def test_stub_zone_routes_by_longest_suffix(hdnsd, knot):
    dead = free_port()  # nothing listens there: the default upstream would fail
    d = hdnsd.start(None, "--upstream", f"127.0.0.1:{dead}", "--stub-zone", f"example.test=127.0.0.1:{knot.port}",
                    "--upstream-timeout", "200", "--upstream-tries", "1")
    r = dig(d.port, "www.example.test", "A")
    assert r.rdatas("A") == ["192.0.2.1"], r.describe()
    r = dig(d.port, "www.elsewhere.test", "A")
    assert r.status == "SERVFAIL", r.describe()
    assert metric(d, "hdnsd_upstream_queries_total", upstream="example.test", rcode="NOERROR") == 1


def test_upstream_stopped_stale_then_servfail(hdnsd, tmp_path):
    k = Knot(tmp_path, free_port()).start()
    try:
        d = hdnsd.start(None, "--upstream", f"127.0.0.1:{k.port}", "--max-stale", "3", "--stale-ttl", "7",
                        "--upstream-timeout", "300", "--upstream-tries", "1", "--workers", "1")  # one cache
        r = dig(d.port, "short.example.test", "A")  # TTL 2 in the zone
        assert r.rdatas("A") == ["192.0.2.2"], r.describe()
        inserted = time.monotonic()
        k.stop()
        time.sleep(2.3)  # expired, but within --max-stale
        t0 = time.monotonic()
        r = dig(d.port, "short.example.test", "A")
        assert r.status == "NOERROR" and r.rdatas("A") == ["192.0.2.2"], r.describe()
        assert r.answer[0].ttl == 7, r.describe()  # --stale-ttl
        assert time.monotonic() - t0 < 1.5, "a stale answer comes within the upstream timeout"
        assert metric(d, "hdnsd_cache_stale_served_total") >= 1
        time.sleep(max(0.0, inserted + 2 + 3 + 0.5 - time.monotonic()))  # past TTL + max-stale
        r = dig(d.port, "short.example.test", "A")
        assert r.status == "SERVFAIL", r.describe()
    finally:
        k.stop()


def test_upstream_that_is_our_own_listen_address_is_refused_at_startup(tmp_path):
    port = free_port()
    p = run_hdnsd("--listen", f"127.0.0.1:{port}", "--upstream", f"127.0.0.1:{port}", "--resolv-conf", "none")
    assert p.returncode == 1, p.stderr
    assert "forwarding loop" in p.stderr, p.stderr


def test_resolv_conf_nameservers_are_the_default_and_ours_skipped(hdnsd, knot, tmp_path):
    port = free_port()
    rc = tmp_path / "resolv.conf"
    # resolv.conf nameservers are port 53: the file is read and its servers become the default
    # set (no query is sent in this test; the skip of our own address is a unit test).
    rc.write_text("nameserver 127.0.0.9\nsearch svc.cluster.local\n")
    d = hdnsd.start(None, "--resolv-conf", str(rc), port=port)
    assert "upstream default: 127.0.0.9:53" in d.log(), d.log()


def _first_records(port, name, n):
    firsts = []
    for _ in range(n):
        r = dig(port, name, "A")
        assert r.status == "NOERROR" and len(r.answer) == 4, r.describe()
        assert sorted(a.rdata for a in r.answer) == [f"198.51.100.{i}" for i in range(1, 5)], r.describe()
        firsts.append(r.answer[0].rdata)
    return firsts


def test_forwarded_rrsets_are_rotated_from_the_cache_under_round_robin(hdnsd, knot):
    # Issue 5 part 4: like Unbound's rrset-roundrobin, each cache hit starts the RRset one record on.
    d = start(hdnsd, knot.port, "--policy", "round-robin")
    before = knot.queries()
    firsts = _first_records(d.port, "multi.example.test", 8)
    assert knot.queries() == before + 1, "rotation happens on cache hits, not by asking again"
    hits = firsts[1:]  # the first answer came straight from upstream, in Knot's order
    assert set(hits) == {f"198.51.100.{i}" for i in range(1, 5)}, firsts
    assert all(a != b for a, b in zip(hits, hits[1:])), f"every cache hit must move the first record: {firsts}"


def test_forwarded_rrsets_keep_the_upstream_order_under_policy_none(hdnsd, knot):
    d = start(hdnsd, knot.port, "--policy", "none")
    firsts = _first_records(d.port, "multi.example.test", 6)
    assert len(set(firsts)) == 1, firsts
