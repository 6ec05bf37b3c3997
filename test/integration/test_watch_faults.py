"""hdnsd's API watch under faults the fake API server injects: dropped streams (resume from the
last RV, no relist), 410 Expired (one relist), 5xx/401 (old answers kept), token rotation, 429
Retry-After, garbage and overlong lines. Skipped while hdnsd has no --kube-api (see test_watch.py).
"""

import sys
import time
from pathlib import Path

import pytest

from harness import dig, hdnsd_bin, http_get

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakeapi"))
import kubeobjects as k  # noqa: E402
from watchenv import (NS, SLICES, base_cluster, fqdn, is_streaming_list, kube_api_supported,  # noqa: E402
                      make_api, relists, reqs, start_hdnsd, wait_answer, wait_for, watches)

_why = kube_api_supported(hdnsd_bin())
pytestmark = pytest.mark.skipif(_why is not None, reason=_why or "")

WEB = ("NOERROR", ["10.244.1.1", "10.244.1.2"])


@pytest.fixture
def api(tmp_path):
    a = make_api(tmp_path)
    base_cluster(a)
    yield a
    a.stop()


def synced(hdnsd, api, *extra):
    """hdnsd ready, answering web, with a watch open on both resources."""
    d = start_hdnsd(hdnsd, api, *extra)
    wait_answer(dig, d, fqdn("web"), WEB, timeout=0)
    wait_for(lambda: watches(api, "services") and watches(api, SLICES), 3, "both watches")
    assert api.wait_watchers(2, timeout=3)
    return d


def next_request(api, resource, since, timeout=5.0):
    return wait_for(lambda: reqs(api, resource, since), timeout, f"a request for {resource}")[0]


def last_seen_rv(api, resource):
    """The RV of the last event or bookmark the fake wrote on the newest watch of `resource`."""
    w = watches(api, resource)[-1]
    if "last_rv" in w:
        return w["last_rv"]
    return int(w["query"]["resourceVersion"])  # nothing sent since: where the watch started


def assert_resumed(api, resource, since, want_rv):
    r = next_request(api, resource, since)
    assert r["watch"], f"after the drop the first {resource} request is a list, not a watch: {r}"
    assert not is_streaming_list(r), f"{resource}: resumed with sendInitialEvents (a relist): {r}"
    assert r["query"].get("resourceVersion") == str(want_rv), (
        f"{resource}: resumed from {r['query'].get('resourceVersion')}, last seen {want_rv}: {r}")
    time.sleep(0.3)
    assert not relists(api, resource, since), f"relisted {resource}: {reqs(api, resource, since)}"


WATCHLIST = pytest.mark.parametrize("watchlist", [True, False], ids=["streaming-list", "list-watch"])


@WATCHLIST
def test_dropped_stream_resumes_from_the_last_event_rv_without_relist(api, hdnsd, watchlist):
    api.set(watchlist=watchlist)  # False: a server without WatchList, hdnsd lists with limit
    d = synced(hdnsd, api)
    api.add(k.endpoint_slice(NS, "web", ["10.244.1.1"]))
    wait_answer(dig, d, fqdn("web"), ("NOERROR", ["10.244.1.1"]))
    want = {res: last_seen_rv(api, res) for res in ("services", SLICES)}
    assert want[SLICES] == api.rv()
    t = time.monotonic()
    assert api.drop_watches() >= 2
    for res in ("services", SLICES):
        assert_resumed(api, res, t, want[res])
    api.add(k.endpoint_slice(NS, "web", ["10.244.1.2"]))
    wait_answer(dig, d, fqdn("web"), ("NOERROR", ["10.244.1.2"]))


def test_dropped_stream_resumes_from_the_last_bookmark_rv(api, hdnsd):
    api.set(bookmark_interval_s=0.2)
    d = synced(hdnsd, api)
    # changes to services only: the slices stream learns the new RV from bookmarks alone
    api.add(k.service(NS, "extra", cluster_ip="10.96.5.5"))
    wait_answer(dig, d, fqdn("extra"), ("NOERROR", ["10.96.5.5"]))
    target = api.rv()
    wait_for(lambda: last_seen_rv(api, SLICES) == target, 3, "a bookmark on the slices stream")
    time.sleep(0.1)
    t = time.monotonic()
    api.drop_watches()
    assert_resumed(api, SLICES, t, target)


@WATCHLIST
@pytest.mark.parametrize("as_http", [False, True], ids=["error-event", "http-410"])
def test_410_expired_gives_exactly_one_relist(api, hdnsd, as_http, watchlist):
    api.set(expired_as_http=as_http, watchlist=watchlist)
    d = synced(hdnsd, api)
    api.stall_watches()  # hdnsd misses what follows until it relists
    api.add(k.endpoint_slice(NS, "web", ["10.244.1.9"]))
    api.compact()
    t = time.monotonic()
    api.drop_watches()
    api.stall_watches(False)
    wait_answer(dig, d, fqdn("web"), ("NOERROR", ["10.244.1.9"]), timeout=5)
    time.sleep(0.5)  # let any second relist show up
    for res in ("services", SLICES):
        full = relists(api, res, t)
        assert len(full) == 1, f"{res}: {len(full)} relists after one 410: {reqs(api, res, t)}"
        first = reqs(api, res, t)[0]
        assert first["watch"] and not is_streaming_list(first), (
            f"{res}: relisted before trying to resume: {first}")


@pytest.mark.parametrize("code", [500, 503, 401])
def test_failures_keep_the_old_answers(api, hdnsd, code):
    d = synced(hdnsd, api)
    api.fail_next(code, count=4)
    t = time.monotonic()
    api.drop_watches()
    wait_for(lambda: sum(r["status"] == code for r in reqs(api, None, t)) >= 2, 10,
             f"hdnsd retrying through {code}s")
    wait_answer(dig, d, fqdn("web"), WEB, timeout=0)
    wait_answer(dig, d, fqdn("api"), ("NOERROR", ["10.96.0.10"]), timeout=0)
    st, body, _ = http_get(d.metrics_port, "/ready")
    assert st == 200, f"/ready went {st} while serving last good data: {body}"
    api.add(k.endpoint_slice(NS, "web", ["10.244.1.8"]))  # and it recovers
    wait_answer(dig, d, fqdn("web"), ("NOERROR", ["10.244.1.8"]), timeout=15)


def test_rotated_token_file_is_used(api, hdnsd):
    d = synced(hdnsd, api)
    api.rotate_token()  # new token in the file (rename); the old one is now refused
    t = time.monotonic()
    api.drop_watches()
    wait_for(lambda: watches(api, SLICES, t) and watches(api, "services", t)
             and all(r["auth"] == "valid" for r in reqs(api, None, t)[-2:]), 10,
             "both watches back with the rotated token")
    seen = [r["auth"] for r in reqs(api, None, t)]
    # at most one refused request per collection (each may try the old token once)
    assert seen.count("invalid") <= 2, f"kept using the old token: {seen}"
    api.add(k.endpoint_slice(NS, "web", ["10.244.1.6"]))
    wait_answer(dig, d, fqdn("web"), ("NOERROR", ["10.244.1.6"]), timeout=5)


def test_401_forces_a_token_reread_even_when_the_file_looks_unchanged(api, hdnsd):
    d = synced(hdnsd, api)
    api.rotate_token(keep_stat=True)  # same inode, size and mtime: only a 401 tells
    t = time.monotonic()
    api.drop_watches()
    wait_for(lambda: any(r["auth"] == "valid" for r in reqs(api, None, t)), 10,
             "a request with the rotated token")
    seen = [r["auth"] for r in reqs(api, None, t)]
    first_valid = seen.index("valid")
    assert "invalid" in seen[:first_valid], f"expected a 401 before the new token: {seen}"
    wait_for(lambda: len(reqs(api, None, t)) >= first_valid + 2 and
             all(r["auth"] == "valid" for r in reqs(api, None, t)[first_valid:]), 5,
             "every later request with the new token")
    assert seen.count("invalid") <= 2, f"kept using the old token after a 401: {seen}"
    api.add(k.endpoint_slice(NS, "web", ["10.244.1.6"]))
    wait_answer(dig, d, fqdn("web"), ("NOERROR", ["10.244.1.6"]), timeout=5)


def test_429_retry_after_is_honoured(api, hdnsd):
    d = synced(hdnsd, api)
    api.fail_next(429, count=1, retry_after=2, match="endpointslices")
    t = time.monotonic()
    api.drop_watches()
    r429 = wait_for(lambda: [r for r in reqs(api, SLICES, t) if r["status"] == 429], 5, "the 429")[0]
    nxt = wait_for(lambda: [r for r in reqs(api, SLICES, r429["t"] + 1e-6)], 8,
                   "a slices request after the 429")[0]
    waited = nxt["t"] - r429["t"]
    assert waited >= 1.95, f"next endpointslices request {waited:.3f}s after 429 Retry-After: 2"
    wait_answer(dig, d, fqdn("web"), WEB, timeout=0)


# An overlong line is skipped without a restart (issue 8): test_api_faults.py checks that.
@pytest.mark.parametrize("fault", ["garbage"])
def test_bad_line_restarts_the_watch_from_the_last_good_rv(api, hdnsd, fault):
    d = synced(hdnsd, api)
    api.add(k.endpoint_slice(NS, "web", ["10.244.1.1"]))
    wait_answer(dig, d, fqdn("web"), ("NOERROR", ["10.244.1.1"]))
    want = last_seen_rv(api, SLICES)
    t = time.monotonic()
    if fault == "garbage":
        api.inject_garbage()
    else:
        api.inject_overlong(32 * 1024 * 1024)
    assert_resumed(api, SLICES, t, want)
    wait_answer(dig, d, fqdn("web"), ("NOERROR", ["10.244.1.1"]), timeout=0)
    r = dig(d.port, "huge.default.svc.cluster.local.")
    assert r.status == "NXDOMAIN", r.describe()  # the overlong object was not taken in
    api.add(k.endpoint_slice(NS, "web", ["10.244.1.3"]))
    wait_answer(dig, d, fqdn("web"), ("NOERROR", ["10.244.1.3"]))
