"""Helpers for test/integration/test_watch*.py: hdnsd started against the fake API server, answers
polled with dig against a deadline, and the fake's request log read per resource."""

import subprocess
import time

import pytest

from fake_apiserver import FakeApiServer, parse_label_selector
import kubeobjects as k

NS = "shop"
ZONE = "cluster.local"
SLICES = "endpointslices"


def kube_api_supported(hdnsd_bin):
    """None when hdnsd --help lists --kube-api, else why the watch tests cannot run yet."""
    if not hdnsd_bin.exists():
        return None  # the harness fails with its own message
    p = subprocess.run([str(hdnsd_bin), "--help"], capture_output=True, text=True, timeout=5)
    if "--kube-api" not in p.stdout + p.stderr:
        return f"{hdnsd_bin} --help does not list --kube-api (the API watch is not built in yet)"
    return None


def base_cluster(api, ns=NS):
    """web: headless, 2 ready endpoints; api: ClusterIP 10.96.0.10; db: headless, 1 ready."""
    api.add(k.service(ns, "web"))
    api.add(k.endpoint_slice(ns, "web", ["10.244.1.1", "10.244.1.2"]))
    api.add(k.service(ns, "api", cluster_ip="10.96.0.10"))
    api.add(k.endpoint_slice(ns, "api", ["10.244.2.1"], headless=False))
    api.add(k.service(ns, "db"))
    api.add(k.endpoint_slice(ns, "db", ["10.244.3.1"]))


def make_api(tmp_path, bookmark_interval_s=3600.0):
    api = FakeApiServer(tmp_path / "kube")
    api.bookmark_interval_s = bookmark_interval_s
    api.start()
    return api


def start_hdnsd(factory, api, *extra, wait="ready"):
    return factory.start(None, "--kube-api", api.url, "--kube-token-file", api.token_file,
                         "--kube-ca-file", api.ca_file, "--log-level", "debug", *extra, wait=wait)


def fqdn(name, ns=NS):
    return f"{name}.{ns}.svc.{ZONE}."


def answer(dig, d, name, rtype="A"):
    """(rcode, sorted rdatas) of one UDP query."""
    r = dig(d.port, name, rtype)
    return r.status, r.rdatas(rtype)


def wait_answer(dig, d, name, want, timeout=1.0, rtype="A"):
    """Polls until (rcode, rdatas) == want; fails with the last answer. → seconds it took."""
    t0 = time.monotonic()
    last = None
    while True:
        last = answer(dig, d, name, rtype)
        if last == want:
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            pytest.fail(f"{name} {rtype}: wanted {want} within {timeout}s, last {last}\n"
                        + "\n".join(d.log().splitlines()[-20:]))
        time.sleep(0.02)


def reqs(api, resource=None, since=0.0):
    return [r for r in api.requests() if r["t"] >= since and r["resource"] is not None
            and (resource is None or r["resource"] == resource)]


def lists(api, resource, since=0.0):
    return [r for r in reqs(api, resource, since) if not r["watch"]]


def watches(api, resource, since=0.0):
    return [r for r in reqs(api, resource, since) if r["watch"]]


def is_streaming_list(r):
    return r["watch"] and r["query"].get("sendInitialEvents") == "true"


def relists(api, resource, since=0.0):
    """Full (re)lists: a list without continue, or a watch with sendInitialEvents=true."""
    return [r for r in reqs(api, resource, since)
            if (not r["watch"] and "continue" not in r["query"]) or is_streaming_list(r)]


def wait_for(fn, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def label_requirements(query):
    return parse_label_selector(query.get("labelSelector", ""))
