"""--autopath (issue 4): a pod's first search name answered for its whole search walk, in one round
trip. hdnsd watches this node's pods on the fake API server (fieldSelector=spec.nodeName=NODE) to map
the client's IP to its namespace; names outside the cluster go to Knot on a loopback port.

The client of every query is dig on 127.0.0.1 (or -b 127.0.0.X): the fake's pod "client" of node
NODE in namespace "shop" has podIP 127.0.0.1, so to hdnsd the test *is* that pod. Its resolv.conf
would say `search shop.svc.cluster.local svc.cluster.local cluster.local` and `ndots:5`."""

import sys
import time
from pathlib import Path

import pytest

from harness import dig, free_port, hdnsd_bin, http_get, parse_metrics, run_hdnsd
from upstream.knot import Knot, knot_missing

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakeapi"))
import kubeobjects as k  # noqa: E402
from watchenv import base_cluster, kube_api_supported, make_api, reqs, start_hdnsd, wait_for  # noqa: E402

_why = kube_api_supported(hdnsd_bin()) or knot_missing()
pytestmark = pytest.mark.skipif(_why is not None, reason=_why or "")

NODE = "node-a"
NS = "shop"      # the client pod's namespace
OTHER = "team"   # another namespace with a service "web"


@pytest.fixture(scope="module")
def knot(tmp_path_factory):
    kn = Knot(tmp_path_factory.mktemp("knot"), free_port()).start()
    yield kn
    kn.stop()


@pytest.fixture
def api(tmp_path):
    a = make_api(tmp_path)
    base_cluster(a, NS)
    a.add(k.service(OTHER, "web"))
    a.add(k.endpoint_slice(OTHER, "web", ["10.244.9.1"]))
    a.add(k.pod(NS, "client", NODE, ["127.0.0.1"]))
    a.add(k.pod("elsewhere", "far", "node-b", ["127.0.0.2"]))        # another node: not watched
    a.add(k.pod("kube-system", "agent", NODE, ["127.0.0.3"], host_network=True))  # the node's IP
    yield a
    a.stop()


def start(hdnsd, api, knot, *extra, wait="ready"):
    # One worker: the tests count upstream queries against ONE cache (each worker has its own).
    return start_hdnsd(hdnsd, api, "--upstream", f"127.0.0.1:{knot.port}", "--node-name", NODE, "--workers", "1",
                       *extra, wait=wait)


def metric(d, name, **labels):
    _, body, _ = http_get(d.metrics_port, "/metrics")
    return sum(v for n, lab, v in parse_metrics(body)
               if n == name and all(lab.get(a) == b for a, b in labels.items()))


def wait_pods(d, n):
    wait_for(lambda: metric(d, "hdnsd_autopath_pods") == n, 3, f"hdnsd_autopath_pods == {n}")


def test_outside_name_in_one_query_cname_plus_answer(hdnsd, api, knot):
    d = start(hdnsd, api, knot, "--autopath")
    wait_pods(d, 1)
    before = knot.queries()
    q = f"www.example.test.{NS}.svc.cluster.local"
    r = dig(d.port, q, "A")
    assert r.status == "NOERROR", r.describe()
    assert [(a.name, a.rtype) for a in r.answer] == [(q + ".", "CNAME"), ("www.example.test.", "A")], r.describe()
    assert r.answer[0].rdata == "www.example.test.", r.describe()
    assert r.rdatas("A") == ["192.0.2.1"], r.describe()
    assert r.answer[0].ttl <= 5, "the CNAME lives no longer than a cluster answer (--ttl)"
    assert r.question[0][0] == q + ".", r.describe()
    assert knot.queries() == before + 1, "one upstream query, for www.example.test, and only one"
    # Again: from the cache, still CNAME + A, no upstream query.
    r2 = dig(d.port, q, "A")
    assert [a.rtype for a in r2.answer] == ["CNAME", "A"] and r2.rdatas("A") == ["192.0.2.1"], r2.describe()
    assert knot.queries() == before + 1
    # AAAA over TCP: the same walk for another type.
    r3 = dig(d.port, q, "AAAA", tcp=True)
    assert r3.status == "NOERROR" and r3.rdatas("AAAA") == ["2001:db8::1"], r3.describe()
    assert metric(d, "hdnsd_autopath_hits_total", result="upstream") == 3
    # The pods were asked for this node only.
    pods = reqs(api, "pods")
    assert pods and all(p["query"].get("fieldSelector") == f"spec.nodeName={NODE}" for p in pods), pods


def test_without_autopath_the_same_query_is_nxdomain(hdnsd, api, knot):
    d = start(hdnsd, api, knot)
    before = knot.queries()
    r = dig(d.port, f"www.example.test.{NS}.svc.cluster.local", "A")
    assert r.status == "NXDOMAIN" and not r.answer, r.describe()
    assert knot.queries() == before
    assert not reqs(api, "pods"), "no pod watch without --autopath"


def test_walk_reaches_cluster_names_of_other_namespaces(hdnsd, api, knot):
    d = start(hdnsd, api, knot, "--autopath")
    wait_pods(d, 1)
    before = knot.queries()
    # The pod asked "web.team": web.team.shop.svc... (absent) → web.team.svc.cluster.local.
    r = dig(d.port, f"web.{OTHER}.{NS}.svc.cluster.local", "A")
    assert r.status == "NOERROR" and "aa" in r.flags, r.describe()
    assert [(a.rtype, a.rdata) for a in r.answer] == [("CNAME", f"web.{OTHER}.svc.cluster.local."),
                                                      ("A", "10.244.9.1")], r.describe()
    assert r.answer[1].name == f"web.{OTHER}.svc.cluster.local.", r.describe()
    # The pod asked "web.team.svc": third step, <X>.<zone>.
    r = dig(d.port, f"web.{OTHER}.svc.{NS}.svc.cluster.local", "A")
    assert [(a.rtype, a.rdata) for a in r.answer] == [("CNAME", f"web.{OTHER}.svc.cluster.local."),
                                                      ("A", "10.244.9.1")], r.describe()
    # A name of its own namespace is answered as it is: no walk, no CNAME.
    r = dig(d.port, f"web.{NS}.svc.cluster.local", "A")
    assert [a.rtype for a in r.answer] == ["A", "A"], r.describe()
    # The walk stops at a name that exists without the type (NODATA): CNAME, no A, the zone's SOA.
    r = dig(d.port, f"web.{OTHER}.{NS}.svc.cluster.local", "TXT")
    assert r.status == "NOERROR" and [a.rtype for a in r.answer] == ["CNAME"], r.describe()
    assert [a.rtype for a in r.authority] == ["SOA"], r.describe()
    assert knot.queries() == before, "cluster names never go upstream"
    assert metric(d, "hdnsd_autopath_hits_total", result="view") == 3


def test_nxdomain_upstream_gives_the_first_names_own_nxdomain(hdnsd, api, knot):
    d = start(hdnsd, api, knot, "--autopath")
    wait_pods(d, 1)
    before = knot.queries()
    q = f"nope.example.test.{NS}.svc.cluster.local"
    r = dig(d.port, q, "A")
    # Like CoreDNS: the client's own name is NXDOMAIN (the zone's SOA, AA), so its stub walks on.
    assert r.status == "NXDOMAIN" and not r.answer and "aa" in r.flags, r.describe()
    assert [(a.name, a.rtype) for a in r.authority] == [("cluster.local.", "SOA")], r.describe()
    assert knot.queries() == before + 1
    # Again: the upstream's NXDOMAIN for nope.example.test is cached (negative, with its SOA).
    r = dig(d.port, q, "A")
    assert r.status == "NXDOMAIN", r.describe()
    assert knot.queries() == before + 1
    # An upstream failure (Knot refuses "nosuchhost.", outside its zone: every try fails) is not a
    # SERVFAIL for the client either: its own NXDOMAIN, and its stub walks on.
    r = dig(d.port, f"nosuchhost.{NS}.svc.cluster.local", "A")
    assert r.status == "NXDOMAIN" and "aa" in r.flags, r.describe()
    assert metric(d, "hdnsd_autopath_hits_total", result="nxdomain") == 3


def test_only_pods_of_this_node_and_not_host_network(hdnsd, api, knot):
    d = start(hdnsd, api, knot, "--autopath")
    wait_pods(d, 1)
    q = f"www.example.test.{NS}.svc.cluster.local"
    for src in ("127.0.0.2", "127.0.0.3", "127.0.0.9"):  # other node's pod, host-network pod, nobody
        r = dig(d.port, q, "A", "-b", src)
        assert r.status == "NXDOMAIN" and not r.answer, (src, r.describe())
    # A pod scheduled here later (a watch event) is served at once; its namespace is its own.
    api.add(k.pod(OTHER, "newcomer", NODE, ["127.0.0.4"]))
    wait_pods(d, 2)
    r = dig(d.port, f"www.example.test.{OTHER}.svc.cluster.local", "A", "-b", "127.0.0.4")
    assert [a.rtype for a in r.answer] == ["CNAME", "A"], r.describe()
    r = dig(d.port, f"www.example.test.{NS}.svc.cluster.local", "A", "-b", "127.0.0.4")  # not its namespace
    assert r.status == "NXDOMAIN", r.describe()
    api.delete("Pod", OTHER, "newcomer")
    wait_pods(d, 1)
    r = dig(d.port, f"www.example.test.{OTHER}.svc.cluster.local", "A", "-b", "127.0.0.4")
    assert r.status == "NXDOMAIN", r.describe()


def test_pods_sync_is_part_of_readiness(hdnsd, api, knot):
    api.forbid("pods")
    d = start(hdnsd, api, knot, "--autopath", wait="health")
    time.sleep(0.5)
    st, body, _ = http_get(d.metrics_port, "/ready")
    assert st == 503 and "pods" in body, (st, body)
    api.forbid("pods", on=False)
    wait_for(lambda: http_get(d.metrics_port, "/ready")[0] == 200, 5, "ready once pods synced")


@pytest.mark.parametrize("args, why", [
    (["--autopath", "--kube-api", "https://127.0.0.1:1"], "--node-name"),
    (["--autopath", "--node-name", NODE, "--endpoints-file", "/nonexistent.json"], "--endpoints-file"),
    (["--autopath", "--node-name", NODE, "--kube-api", "https://127.0.0.1:1", "--headless-only"], "--headless-only"),
])
def test_autopath_startup_errors(args, why, monkeypatch):
    monkeypatch.delenv("NODE_NAME", raising=False)
    p = run_hdnsd(*args)
    assert p.returncode == 2, p.stderr
    assert "--autopath" in p.stderr and why in p.stderr, p.stderr
