"""The fake API server checked against a real client: kubectl (Debian's kubernetes-client, or
whatever `kubectl` is on PATH; KUBECTL=/path overrides). If the fake's discovery, TLS, auth, list
paging or watch framing were wrong, kubectl would refuse it."""

import json
import os
import shutil
import subprocess
import threading

import pytest

import kubeobjects as k

KUBECTL = os.environ.get("KUBECTL") or shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="no kubectl (make deps installs kubernetes-client)")


def kubectl(api, *args, timeout=20):
    cmd = [KUBECTL, f"--server={api.url}", f"--certificate-authority={api.ca_file}",
           f"--token={api.token()}", "--request-timeout=10s", *args]
    env = dict(os.environ, KUBECONFIG=os.devnull, HOME=str(api.dir))  # no user kubeconfig, no cache
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    assert p.returncode == 0, f"$ {' '.join(cmd)}\n{p.stdout}\n{p.stderr}"
    return p.stdout


@pytest.fixture
def cluster(api):
    api.add(k.service("shop", "web"))
    api.add(k.service("shop", "api", cluster_ip="10.96.0.10"))
    api.add(k.service("kube-system", "dns", cluster_ip="10.96.0.53"))
    api.add(k.endpoint_slice("shop", "web", ["10.244.1.1", ("10.244.1.2", False)]))
    api.add(k.endpoint_slice("shop", "api", ["10.244.2.1"], headless=False))
    return api


def test_get_endpointslices_json(cluster):
    out = json.loads(kubectl(cluster, "get", "endpointslices", "-A", "-o", "json"))
    assert sorted(o["metadata"]["name"] for o in out["items"]) == ["api-abcde", "web-abcde"]
    web = next(o for o in out["items"] if o["metadata"]["name"] == "web-abcde")
    assert [e["conditions"]["ready"] for e in web["endpoints"]] == [True, False]
    assert web["metadata"]["resourceVersion"].isdigit()


def test_get_services_all_namespaces(cluster):
    lines = kubectl(cluster, "get", "svc", "-A").splitlines()
    assert lines[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert sorted(tuple(l.split()[:2]) for l in lines[1:]) == [
        ("kube-system", "dns"), ("shop", "api"), ("shop", "web")]
    out = kubectl(cluster, "get", "svc", "-n", "shop", "-l", "app=web", "-o", "name")
    assert out.split() == ["service/web"]
    paths = [r["path"] for r in cluster.requests()]
    assert "/api/v1/namespaces/shop/services" in paths


def test_chunk_size_pages_with_continue(cluster):
    for i in range(7):
        cluster.add(k.service("bulk", f"b{i}"))
    cluster.clear_requests()
    out = kubectl(cluster, "get", "svc", "-A", "--chunk-size=2", "-o", "name")
    assert len(out.split()) == 10
    lists = [r for r in cluster.requests() if r["path"] == "/api/v1/services"]
    assert len(lists) == 5 and all(r["query"]["limit"] == "2" for r in lists)
    assert "continue" not in lists[0]["query"] and all("continue" in r["query"] for r in lists[1:])


def test_watch_sees_a_change_made_through_the_control_api(cluster):
    cmd = [KUBECTL, f"--server={cluster.url}", f"--certificate-authority={cluster.ca_file}",
           f"--token={cluster.token()}", "get", "endpointslices", "-A", "-w", "-o", "json",
           "--output-watch-events"]
    env = dict(os.environ, KUBECONFIG=os.devnull, HOME=str(cluster.dir))
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    events, dec, buf = [], json.JSONDecoder(), ""
    done = threading.Event()

    def reader():
        nonlocal buf
        for line in p.stdout:
            buf += line
            while True:
                s = buf.lstrip()
                try:
                    obj, end = dec.raw_decode(s)
                except ValueError:
                    break
                events.append(obj)
                buf = s[end:]
            if any(e["type"] == "MODIFIED" for e in events):
                done.set()
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        assert cluster.wait_watchers(1, timeout=15), "kubectl never opened a watch"
        cluster.add(k.endpoint_slice("shop", "web", ["10.244.1.1", "10.244.1.3"]))
        assert done.wait(10), f"kubectl printed no MODIFIED event: {events}"
    finally:
        p.terminate()
        p.wait(5)
    mod = next(e for e in events if e["type"] == "MODIFIED")
    assert [e["addresses"][0] for e in mod["object"]["endpoints"]] == ["10.244.1.1", "10.244.1.3"]
    assert sum(e["type"] == "ADDED" for e in events) == 2  # the initial list, as ADDED
    w = [r for r in cluster.requests() if r["watch"]]
    assert w and w[0]["query"].get("resourceVersion")  # watched from the list's RV


def test_watch_survives_split_chunks(cluster):
    cluster.set(chunk_mode="split", split_size=3)
    test_watch_sees_a_change_made_through_the_control_api(cluster)
