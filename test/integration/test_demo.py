"""One smoke test over examples/demo-cluster.json, the file `make run` serves (namespace demo).
The other tests use their own fixtures in data/ so they do not depend on the demo's details."""

import pytest

from harness import REPO, dig

DEMO = REPO / "examples" / "demo-cluster.json"


def test_demo_file_smoke(hdnsd):
    if not DEMO.exists():
        pytest.fail(f"{DEMO} is missing (make run serves it)")
    d = hdnsd.start(DEMO)
    r = dig(d.port, "web.demo.svc.cluster.local.", "A")
    assert r.status == "NOERROR" and "aa" in r.flags, r.describe()
    assert r.rdatas("A") == ["10.244.1.10", "10.244.1.11", "10.244.1.12"], r.describe()
    r = dig(d.port, "api.demo.svc.cluster.local.", "A", tcp=True)
    assert r.rdatas("A") == ["10.96.0.10"], r.describe()
    r = dig(d.port, "dual.demo.svc.cluster.local.", "AAAA")
    assert r.rdatas("AAAA") == ["fd00:10:96::20"], r.describe()
    r = dig(d.port, "search.demo.svc.cluster.local.", "CNAME")
    assert r.rdatas("CNAME") == ["www.example.com."], r.describe()
    r = dig(d.port, "_postgres._tcp.db.demo.svc.cluster.local.", "SRV")
    assert sorted(a.rdata.split()[3] for a in r.answer) == [
        "10-244-2-5.db.demo.svc.cluster.local.", "10-244-2-6.db.demo.svc.cluster.local."], \
        r.describe()
