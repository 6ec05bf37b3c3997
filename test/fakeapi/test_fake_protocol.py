"""The fake API server's protocol, checked with a raw HTTPS client: what hdnsd's watch relies on
must behave like a real apiserver (resourceVersion, 410 Expired, bookmarks, paging, selectors)."""

import http.client
import time

import kubeobjects as k
from kubeclient import KubeClient

SLICES = "/apis/discovery.k8s.io/v1/endpointslices"


def test_auth_missing_and_wrong_token_get_401_status(api):
    for tok in ("", "wrong"):
        st, body, _ = KubeClient(api, token=tok).get("/api/v1/services")
        assert st == 401
        assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                        "message": "Unauthorized", "reason": "Unauthorized", "code": 401}
    assert [r["auth"] for r in api.requests()] == ["missing", "invalid"]


def test_forbidden_has_rbac_message(api):
    api.forbid("endpointslices")
    st, body, _ = KubeClient(api).get("/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices")
    assert st == 403 and body["reason"] == "Forbidden"
    assert body["message"] == ('endpointslices.discovery.k8s.io is forbidden: User '
                               '"system:serviceaccount:kube-system:hdnsd" cannot list resource '
                               '"endpointslices" in API group "discovery.k8s.io" in the namespace "shop"')
    assert body["details"] == {"group": "discovery.k8s.io", "kind": "endpointslices"}


def test_list_rv_is_global_and_paging_is_a_consistent_snapshot(api):
    for i in range(5):
        api.add(k.service("a", f"s{i}"))
    api.add(k.endpoint_slice("a", "s0", ["10.0.0.1"]))
    c = KubeClient(api)
    st, page1, _ = c.get("/api/v1/services?limit=2")
    assert st == 200 and page1["metadata"]["resourceVersion"] == str(api.rv())
    assert page1["metadata"]["remainingItemCount"] == 3
    api.delete("Service", "a", "s4")  # after the first page: the list must still show it
    api.add(k.service("a", "s5"))
    names = [o["metadata"]["name"] for o in page1["items"]]
    cont = page1["metadata"]["continue"]
    while cont:
        st, p, _ = c.get(f"/api/v1/services?limit=2&continue={cont}")
        assert st == 200 and p["metadata"]["resourceVersion"] == page1["metadata"]["resourceVersion"]
        names += [o["metadata"]["name"] for o in p["items"]]
        cont = p["metadata"].get("continue")
    assert names == ["s0", "s1", "s2", "s3", "s4"]


def test_expired_continue_is_410_expired(api):
    for i in range(3):
        api.add(k.service("a", f"s{i}"))
    c = KubeClient(api)
    _, p, _ = c.get("/api/v1/services?limit=1")
    api.add(k.service("a", "new"))
    api.compact()
    st, body, _ = c.get(f"/api/v1/services?limit=1&continue={p['metadata']['continue']}")
    assert st == 410 and body["reason"] == "Expired" and body["kind"] == "Status"


def test_selectors(api):
    api.add(k.service("a", "x", labels={"tier": "web", "env": "prod"}))
    api.add(k.service("a", "y", labels={"tier": "db"}))
    api.add(k.service("b", "z", labels={}))
    c = KubeClient(api)

    def names(q):
        st, body, _ = c.get("/api/v1/services?" + q)
        assert st == 200, body
        return sorted(o["metadata"]["name"] for o in body["items"])
    assert names("labelSelector=tier%3Dweb") == ["x"]
    assert names("labelSelector=tier%21%3Dweb") == ["y", "z"]
    assert names("labelSelector=tier") == ["x", "y"]
    assert names("labelSelector=%21tier") == ["z"]
    assert names("labelSelector=tier+in+%28db%2Cweb%29%2Cenv") == ["x"]
    assert names("fieldSelector=metadata.namespace%3Db") == ["z"]
    assert names("fieldSelector=metadata.name%21%3Dx") == ["y", "z"]
    st, _, _ = c.get("/api/v1/namespaces/a/services")
    assert st == 200
    st, body, _ = c.get("/api/v1/namespaces/a/services")
    assert sorted(o["metadata"]["name"] for o in body["items"]) == ["x", "y"]
    st, body, _ = c.get("/api/v1/services?fieldSelector=spec.bogus%3D1")
    assert st == 400 and body["reason"] == "BadRequest"


def test_watch_from_rv_sends_later_events_and_bookmarks(api):
    api.add(k.endpoint_slice("a", "s", ["10.0.0.1"]))
    rv = api.rv()
    api.add(k.endpoint_slice("a", "s", ["10.0.0.2"]))
    api.add(k.service("a", "s"))  # another resource: not on this stream
    w = KubeClient(api).watch(f"{SLICES}?watch=true&resourceVersion={rv}&allowWatchBookmarks=true")
    assert w.status == 200 and w.headers["Transfer-Encoding"] == "chunked"
    ev = w.next_event()
    assert ev["type"] == "MODIFIED" and ev["object"]["endpoints"][0]["addresses"] == ["10.0.0.2"]
    assert int(ev["object"]["metadata"]["resourceVersion"]) == rv + 1
    api.delete("EndpointSlice", "a", "s-abcde")
    ev = w.next_event()
    assert ev["type"] == "DELETED"
    bm = w.next_event(timeout=2)
    assert bm["type"] == "BOOKMARK"
    assert bm["object"]["metadata"] == {"resourceVersion": str(api.rv()), "creationTimestamp": None}
    assert bm["object"]["kind"] == "EndpointSlice"


def test_watch_from_compacted_rv_is_410_error_event_or_http(api):
    api.add(k.service("a", "s"))
    old = api.rv() - 1
    api.add(k.service("a", "t"))
    api.compact()
    w = KubeClient(api).watch(f"/api/v1/services?watch=1&resourceVersion={old}")
    assert w.status == 200
    ev = w.next_event()
    assert ev["type"] == "ERROR"
    assert ev["object"]["code"] == 410 and ev["object"]["reason"] == "Expired"
    assert ev["object"]["message"].startswith(f"too old resource version: {old} (")
    assert w.next_event() is None  # the stream ends
    api.set(expired_as_http=True)
    w = KubeClient(api).watch(f"/api/v1/services?watch=1&resourceVersion={old}")
    assert w.status == 410


def test_watch_timeout_seconds_ends_the_stream(api):
    w = KubeClient(api).watch("/api/v1/services?watch=true&resourceVersion=1&timeoutSeconds=1")
    t0 = time.monotonic()
    assert w.next_event(timeout=3) is None
    assert 0.8 < time.monotonic() - t0 < 2.5


def test_send_initial_events_and_its_rejection_when_unsupported(api):
    api.add(k.endpoint_slice("a", "s", ["10.0.0.1"]))
    api.add(k.endpoint_slice("a", "t", ["10.0.0.2"], name="t-1"))
    q = f"{SLICES}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"
    w = KubeClient(api).watch(q)
    evs = [w.next_event(), w.next_event(), w.next_event()]
    assert [e["type"] for e in evs] == ["ADDED", "ADDED", "BOOKMARK"]
    assert evs[2]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert evs[2]["object"]["metadata"]["resourceVersion"] == str(api.rv())
    api.set(watchlist=False)
    w = KubeClient(api).watch(q)
    assert w.status == 422
    st = __import__("json").loads(w.resp.read())
    assert st["reason"] == "Invalid" and "sendInitialEvents is forbidden for watch" in st["message"]


def test_split_chunks_and_injected_lines(api):
    api.set(chunk_mode="split", split_size=5)
    w = KubeClient(api).watch("/api/v1/services?watch=true&resourceVersion=1")
    api.wait_watchers(1)
    api.add(k.service("a", "s"))
    assert w.next_event()["object"]["metadata"]["name"] == "s"
    api.inject_garbage()
    assert w.readline() == b"{this is not json"
    api.inject_overlong(100000)
    assert len(w.readline()) > 100000


def test_drop_stall_and_fail_next(api):
    c = KubeClient(api)
    w = c.watch("/api/v1/services?watch=true&resourceVersion=1")
    assert api.wait_watchers(1)
    assert api.drop_watches() == 1
    try:
        end = w.readline(timeout=2)
    except (ConnectionError, OSError, http.client.IncompleteRead):
        end = b""  # cut mid-stream: no last chunk
    assert end == b""
    api.fail_next(429, 1, retry_after=3)
    st, body, headers = c.get("/api/v1/services")
    assert st == 429 and headers["Retry-After"] == "3" and body["details"]["retryAfterSeconds"] == 3
    api.fail_next(500, 2, match="watch=")
    assert c.get("/api/v1/services")[0] == 200  # a list: not matched
    assert KubeClient(api).watch("/api/v1/services?watch=true").status == 500
    api.stall_lists()
    c2 = KubeClient(api, timeout=0.5)
    try:
        c2.get("/api/v1/services")
        stalled = False
    except TimeoutError:
        stalled = True
    assert stalled
    api.stall_lists(False)


def test_hidden_discovery_v1(api):
    c = KubeClient(api)
    st, body, _ = c.get("/apis")
    assert [g["name"] for g in body["groups"]] == ["discovery.k8s.io"]
    api.hide_discovery_v1()
    st, body, _ = c.get("/apis")
    assert body["groups"] == []
    assert c.get(SLICES)[0] == 404
    assert c.get("/api/v1/endpoints")[0] == 200
