"""Load spreading (issue 5) through the real daemon and dig: the first record of a headless
service moves as --policy says, annotations steer weights/policy/cap per Service, --max-answers
keeps every pod reachable, topology prefers local endpoints, consistent keeps a client's
first record, --terminating-fallback answers during a rollout.

Queries go in batches: one dig process per 1,000 queries (dig -f), each query a separate
UDP exchange; only loopback addresses are used."""

import json
import subprocess
from collections import Counter

import pytest

from harness import dig

NS = "spread"


def svc(name, annotations=None, ports=True):
    s = {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": name, "namespace": NS, "annotations": annotations or {}},
         "spec": {"clusterIP": "None"}}
    if ports:
        s["spec"]["ports"] = [{"name": "http", "port": 80}]
    return s


def slice_(service, endpoints):
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": service + "-1", "namespace": NS,
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}],
            "endpoints": endpoints}


def ep(ip, node="", zone="", pod="", ready=True, serving=None, terminating=None):
    e = {"addresses": [ip], "conditions": {"ready": ready}}
    if serving is not None:
        e["conditions"]["serving"] = serving
    if terminating is not None:
        e["conditions"]["terminating"] = terminating
    if node:
        e["nodeName"] = node
    if zone:
        e["zone"] = zone
    if pod:
        e["targetRef"] = {"kind": "Pod", "name": pod, "namespace": NS}
    return e


SIX = [f"10.60.0.{i}" for i in range(1, 7)]
BIG = [f"10.61.{i // 250}.{i % 250 + 1}" for i in range(300)]


def cluster_json():
    items = [
        svc("six"), slice_("six", [ep(ip, pod=f"six-{i}") for i, ip in enumerate(SIX)]),
        svc("big"), slice_("big", [ep(ip) for ip in BIG]),
        svc("weighted", {"hdnsd.io/policy": "weighted",
                         "hdnsd.io/weights": json.dumps({"pod/w-0": 1, "10.62.0.2": 3, "zone/z9": 0})}),
        slice_("weighted", [ep("10.62.0.1", pod="w-0"), ep("10.62.0.2", pod="w-1"),
                            ep("10.62.0.3", zone="z9")]),
        svc("pinned", {"hdnsd.io/policy": "none", "hdnsd.io/max-answers": "2"}),
        slice_("pinned", [ep(f"10.63.0.{i}") for i in range(1, 5)]),
        svc("topo"),
        slice_("topo", [ep("10.64.0.1", node="n2", zone="z1"), ep("10.64.0.2", node="n1", zone="z1"),
                        ep("10.64.0.3", node="n3", zone="z2"), ep("10.64.0.4", node="n4", zone="z1"),
                        ep("10.64.0.5", node="n1", zone="z1", ready=False)]),
        svc("rollout"),
        slice_("rollout", [ep("10.65.0.1", ready=False, serving=True, terminating=True),
                           ep("10.65.0.2", ready=False, serving=False, terminating=True)]),
    ]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


@pytest.fixture
def cluster(tmp_path):
    p = tmp_path / "spread.json"
    p.write_text(cluster_json())
    return p


def name(s):
    return f"{s}.{NS}.svc.cluster.local."


def dig_batch(port, lines):
    """Runs one dig over many queries (dig -f); returns the A records of each answer, in order."""
    batch = "\n".join(lines) + "\n"
    p = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "+notcp", "+time=2", "+tries=1",
                        "+noall", "+question", "+answer", "-f", "-"],
                       input=batch, capture_output=True, text=True, timeout=120)
    answers = []
    for line in p.stdout.splitlines():
        if line.startswith(";") and not line.startswith(";;"):
            answers.append([])
        elif line.strip() and not line.startswith(";"):
            f = line.split()
            if len(f) >= 5 and f[3] == "A" and answers:
                answers[-1].append(f[4])
    assert len(answers) == len(lines), p.stdout[-2000:] + p.stderr[-2000:]
    return answers


def firsts(port, service, n=1000, opts=""):
    answers = dig_batch(port, [f"{opts} {name(service)} A".strip()] * n)
    assert all(answers), "an empty answer"
    return answers


def test_round_robin_is_the_default_and_rotates_every_query(hdnsd, cluster):
    # One worker: each worker rotates with counters of its own (no shared cache line per query),
    # so strict alternation holds per worker; test_workers.py checks the spread over several.
    d = hdnsd.start(cluster, "--workers", "1")
    answers = firsts(d.port, "six")
    for a in answers:
        assert sorted(a) == sorted(SIX)  # the same set every time; only the order moves
    first = [a[0] for a in answers]
    assert all(x != y for x, y in zip(first, first[1:])), "round-robin: each query starts elsewhere"
    c = Counter(first)
    assert set(c) == set(SIX) and max(c.values()) - min(c.values()) <= 1, c


def test_none_keeps_the_stored_order(hdnsd, cluster):
    d = hdnsd.start(cluster, "--policy", "none")
    answers = firsts(d.port, "six", n=50)
    assert all(a == SIX for a in answers), answers[:3]


def test_random_spreads_the_first_record(hdnsd, cluster):
    d = hdnsd.start(cluster, "--policy", "random")
    c = Counter(a[0] for a in firsts(d.port, "six"))
    # 1000 draws over 6: expected 167 each, sd ~12; 100..240 is beyond 5 sd either way.
    assert set(c) == set(SIX) and all(100 <= v <= 240 for v in c.values()), c


def test_weights_annotation_steers_the_shares(hdnsd, cluster):
    d = hdnsd.start(cluster)  # global round-robin; the Service says weighted
    c = Counter(a[0] for a in firsts(d.port, "weighted"))
    # weights 1 : 3 : 0 → 25 % / 75 % / never first (sd ~14 over 1000 draws).
    assert 150 <= c["10.62.0.1"] <= 350 and 650 <= c["10.62.0.2"] <= 850, c
    assert c["10.62.0.3"] == 0, c
    r = dig(d.port, "_http._tcp." + name("weighted"), "SRV")
    weights = sorted(int(rec.rdata.split()[1]) for rec in r.answer if rec.rtype == "SRV")
    assert weights == [0, 1, 3], r.describe()


def test_policy_and_max_answers_annotations_override_per_service(hdnsd, cluster):
    d = hdnsd.start(cluster, "--policy", "random")
    answers = firsts(d.port, "pinned", n=30)
    assert all(a == ["10.63.0.1", "10.63.0.2"] for a in answers), answers[:3]


def test_max_answers_300_pods_every_pod_reachable(hdnsd, cluster):
    d = hdnsd.start(cluster, "--max-answers", "8")
    answers = firsts(d.port, "big")
    assert all(len(a) == 8 and len(set(a)) == 8 for a in answers)
    seen = Counter(ip for a in answers for ip in a)
    assert set(seen) == set(BIG), f"{len(set(BIG) - set(seen))} pods never answered"
    r = dig(d.port, name("big"), "A")
    assert "tc" not in r.flags and len(r.answer) == 8, r.describe()


def test_topology_prefers_this_node_then_this_zone(hdnsd, cluster):
    # One worker: the exact 100/100 split below is one loop's rotation (each worker rotates alone).
    d = hdnsd.start(cluster, "--policy", "topology", "--node-name", "n1", "--zone", "z1", "--workers", "1")
    answers = firsts(d.port, "topo", n=200)
    for a in answers:
        assert a[0] == "10.64.0.2", a                       # the ready endpoint on n1
        assert set(a[1:3]) == {"10.64.0.1", "10.64.0.4"}, a  # zone z1, rotated
        assert a[3] == "10.64.0.3", a                       # the rest
    assert Counter(a[1] for a in answers) == {"10.64.0.1": 100, "10.64.0.4": 100}
    r = dig(d.port, "_http._tcp." + name("topo"), "SRV")
    prio = sorted(int(rec.rdata.split()[0]) for rec in r.answer if rec.rtype == "SRV")
    assert prio == [0, 1, 1, 2], r.describe()


def test_topology_zone_learned_from_endpoints_on_our_node(hdnsd, cluster):
    d = hdnsd.start(cluster, "--policy", "topology", "--node-name", "n3")
    for a in firsts(d.port, "topo", n=40):
        assert a[0] == "10.64.0.3", a  # n3's own; its zone z2 has no other endpoint
        assert set(a[1:]) == {"10.64.0.1", "10.64.0.2", "10.64.0.4"}


def test_consistent_each_client_keeps_its_first_record(hdnsd, cluster):
    d = hdnsd.start(cluster, "--policy", "consistent")
    per_client = {}
    for host in range(2, 42):
        src = f"127.0.0.{host}"
        a = firsts(d.port, "six", n=5, opts=f"-b {src}")
        assert len({x[0] for x in a}) == 1, (src, a)
        per_client[src] = a[0][0]
    assert len(set(per_client.values())) >= 4, per_client  # 40 clients over 6 endpoints


def test_terminating_fallback(hdnsd, cluster):
    d = hdnsd.start(cluster)
    assert dig(d.port, name("rollout"), "A").status == "NXDOMAIN"  # the specification
    d2 = hdnsd.start(cluster, "--terminating-fallback")
    r = dig(d2.port, name("rollout"), "A")
    assert r.status == "NOERROR" and r.rdatas("A") == ["10.65.0.1"], r.describe()


def test_policy_flags_are_validated_and_listed():
    from harness import run_hdnsd
    p = run_hdnsd("--policy", "fastest")
    assert p.returncode == 2 and "--policy" in p.stderr and "fastest" in p.stderr, p.stderr
    p = run_hdnsd("--max-answers", "5000")
    assert p.returncode == 2 and "--max-answers" in p.stderr, p.stderr
    h = run_hdnsd("--help").stdout
    for flag in ("--policy", "--max-answers", "--node-name", "--zone", "--terminating-fallback"):
        assert flag in h, h


def test_config_file_keys(hdnsd, cluster, tmp_path):
    from harness import config_file
    cfg = config_file(tmp_path / "c.json", policy="none", max_answers=3, terminating_fallback=True)
    d = hdnsd.start(cluster, "--config", str(cfg))
    assert all(a == SIX[:3] for a in firsts(d.port, "six", n=10))
    r = dig(d.port, name("rollout"), "A")
    assert r.rdatas("A") == ["10.65.0.1"], r.describe()
