"""--state-file: warm restart (issue 6 part 7). The last cluster view and the hottest cache answers
are written at shutdown (and every --state-file-interval seconds when something changed); the next
start serves the saved view as stale, with /ready 503, until the Kubernetes API syncs, and answers
cached names with the upstream gone. A damaged file is one warning and a cold start.

The API is the fake server of test/fakeapi; the upstream is test/integration/upstream/fake_upstream.py
(every name: A 192.0.2.53, TTL 60)."""

import json
import os
import re
import sys
import time
from pathlib import Path

import pytest

from harness import DATA, dig, free_port, fqdn as file_fqdn, hdnsd_bin, http_get, parse_metrics, poll
from test_ops_systemd import NotifySocket

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakeapi"))
import kubeobjects as k  # noqa: E402
from watchenv import NS, base_cluster, fqdn, kube_api_supported, make_api, start_hdnsd, wait_answer, wait_for  # noqa: E402
from upstream.fake_upstream import FakeUpstream  # noqa: E402

WEB = ["10.244.1.1", "10.244.1.2"]


def metric(d, name, **labels):
    _, body, _ = http_get(d.metrics_port, "/metrics")
    return sum(v for n, l, v in parse_metrics(body) if n == name and all(l.get(k) == x for k, x in labels.items()))


def stopped(d):
    problem = d.stop()
    assert problem is None, f"{problem}\n{d.log()}"
    return d.log()


def log_lines(d, needle):
    return [line for line in d.log().splitlines() if needle in line]


@pytest.fixture
def api(tmp_path):
    why = kube_api_supported(hdnsd_bin())
    if why:
        pytest.skip(why)
    a = make_api(tmp_path)
    base_cluster(a)
    yield a
    a.stop()


def api_failing(api, on):
    """Every API request answers 500 (on), or normally again (off)."""
    with api.store.cond:
        api._failures.clear()
        if on:
            api._failures.append([500, 10**9, None, None])


def test_saved_view_served_stale_until_the_api_syncs_then_replaced(api, hdnsd, tmp_path, monkeypatch):
    state = tmp_path / "state.json"
    d = start_hdnsd(hdnsd, api, "--state-file", state, "--state-file-interval", "0")
    wait_answer(dig, d, fqdn("web"), ("NOERROR", WEB), timeout=0)
    assert not state.exists(), "--state-file-interval 0 writes only at shutdown"
    log = stopped(d)
    assert re.search(r"state file: wrote .*: 3 services, 3 slices", log), log
    doc = json.loads(state.read_text())
    assert doc["kind"] == "List" and doc["hdnsdState"]["cluster"] is True, doc["hdnsdState"]
    assert doc["hdnsdState"]["zone"] == "cluster.local" and doc["hdnsdState"]["format"] == 1
    assert ("Service", "db") in {(i["kind"], i["metadata"]["name"]) for i in doc["items"]}

    # While hdnsd is down, db goes away; then the API fails every request.
    api.delete("EndpointSlice", NS, "db-abcde")
    api.delete("Service", NS, "db")
    api_failing(api, True)
    notify = NotifySocket(f"@hdnsd-state-{os.getpid()}-{time.monotonic_ns()}")
    monkeypatch.setenv("NOTIFY_SOCKET", notify.name)
    d2 = start_hdnsd(hdnsd, api, "--state-file", state, wait="health")
    wait_for(lambda: log_lines(d2, "state file: loaded"), 5, "the state file load")
    assert re.search(r"state file: loaded 3 services, 3 slices, 0 cache entries \(of 0\), age \d+ s",
                     d2.log()), d2.log()
    r = dig(d2.port, fqdn("web"))
    assert r.status == "NOERROR" and r.rdatas("A") == WEB, r.describe()
    assert all(0 < a.ttl <= 2 for a in r.answer), f"a saved view answers with TTL min(--ttl, 2): {r.describe()}"
    r = dig(d2.port, fqdn("db"))
    assert r.status == "NOERROR", f"the saved view still has db: {r.describe()}"
    st, body, _ = http_get(d2.metrics_port, "/ready")
    assert st == 503, body
    assert metric(d2, "hdnsd_view_stale") == 1
    assert metric(d2, "hdnsd_view_ready") == 0
    assert metric(d2, "hdnsd_state_loaded_total", kind="services") == 3
    assert metric(d2, "hdnsd_state_loaded_total", kind="slices") == 3
    assert not notify.seen("READY=1"), f"READY=1 means synced, as /ready does: {notify.messages}"
    assert any("STATUS=serving the view saved in --state-file" in m for m in notify.messages), notify.messages

    # The API is back: the first sync replaces the saved view completely.
    api_failing(api, False)
    d2.wait_up(timeout=20, ready=True)
    assert poll(lambda: notify.seen("READY=1"), 2), notify.messages
    notify.sock.close()
    wait_answer(dig, d2, fqdn("db"), ("NXDOMAIN", []), timeout=0)
    r = dig(d2.port, fqdn("web"))
    assert r.rdatas("A") == WEB and all(a.ttl == 5 for a in r.answer), r.describe()
    assert metric(d2, "hdnsd_view_stale") == 0
    log = stopped(d2)
    assert re.search(r"state file: wrote .*: 2 services, 2 slices", log), log
    assert "db" not in {i["metadata"]["name"] for i in json.loads(state.read_text())["items"]}


def test_api_unreachable_saved_view_served_and_never_overwritten(api, hdnsd, tmp_path):
    state = tmp_path / "state.json"
    d = start_hdnsd(hdnsd, api, "--state-file", state)
    wait_answer(dig, d, fqdn("api"), ("NOERROR", ["10.96.0.10"]), timeout=0)
    stopped(d)
    before = state.read_bytes()
    # Nothing listens on this port: every connect fails.
    d2 = hdnsd.start(None, "--kube-api", f"https://127.0.0.1:{free_port()}", "--kube-token-file", api.token_file,
                     "--kube-ca-file", api.ca_file, "--state-file", state, "--state-file-interval", "1", wait="health")
    wait_for(lambda: log_lines(d2, "state file: loaded"), 5, "the state file load")
    wait_answer(dig, d2, fqdn("api"), ("NOERROR", ["10.96.0.10"]), timeout=0)
    wait_answer(dig, d2, fqdn("nope"), ("NXDOMAIN", []), timeout=0)
    assert http_get(d2.metrics_port, "/ready")[0] == 503
    time.sleep(1.5)  # a periodic write would be due: there is nothing synced to write
    log = stopped(d2)
    assert "not written: the Kubernetes API has not synced since start" in log, log
    assert state.read_bytes() == before, "a daemon that never synced must keep the saved view"


def test_cached_answer_survives_a_restart_with_the_upstream_gone(hdnsd, tmp_path):
    state = tmp_path / "state.json"
    up = FakeUpstream(free_port())
    try:
        d = hdnsd.start(DATA / "cluster.json", "--upstream", f"127.0.0.1:{up.port}", "--state-file", state,
                        "--workers", "1")
        r = dig(d.port, "www.example.test")
        assert r.rdatas("A") == ["192.0.2.53"], r.describe()
        stopped(d)
    finally:
        up.close()
    doc = json.loads(state.read_text())
    assert doc["hdnsdState"]["cluster"] is False and doc["items"] == [], doc["hdnsdState"]
    assert [(c["name"], c["type"], c["ttl"]) for c in doc["hdnsdCache"]] == [("www.example.test.", 1, 60)]

    # The upstream is gone. Two workers: the kernel spreads dig's source ports over both, and
    # every one must have the restored answer.
    d2 = hdnsd.start(DATA / "cluster.json", "--upstream", f"127.0.0.1:{up.port}", "--state-file", state,
                     "--workers", "2", "--upstream-timeout", "300", "--upstream-tries", "1")
    wait_for(lambda: log_lines(d2, "state file: loaded"), 5, "the state file load")
    assert "1 cache entries (of 1)" in d2.log(), d2.log()
    time.sleep(0.2)  # worker 1 restores on its own loop
    for _ in range(8):
        r = dig(d2.port, "www.example.test")
        assert r.status == "NOERROR" and r.rdatas("A") == ["192.0.2.53"], r.describe()
        assert 0 < r.answer[0].ttl <= 60, r.describe()
    r = dig(d2.port, "other.example.test")
    assert r.status == "SERVFAIL", f"the upstream must really be gone: {r.describe()}"
    r = dig(d2.port, file_fqdn("web"))
    assert r.status == "NOERROR" and r.rdatas("A"), f"the endpoints file is still the cluster source: {r.describe()}"
    assert metric(d2, "hdnsd_state_loaded_total", kind="cache_entries") == 1
    assert metric(d2, "hdnsd_view_stale") == 0


def test_periodic_writes_only_when_something_changed(api, hdnsd, tmp_path):
    state = tmp_path / "state.json"
    d = start_hdnsd(hdnsd, api, "--state-file", state, "--state-file-interval", "1")
    wait_for(state.exists, 3, "the first periodic write")
    first = json.loads(state.read_text())["hdnsdState"]["writtenAtUnixMs"]
    time.sleep(2.2)
    assert json.loads(state.read_text())["hdnsdState"]["writtenAtUnixMs"] == first, "nothing changed: no write"
    assert metric(d, "hdnsd_state_writes_total") == 1
    api.add(k.service(NS, "late", cluster_ip="10.96.9.9"))
    wait_answer(dig, d, fqdn("late"), ("NOERROR", ["10.96.9.9"]))
    wait_for(lambda: "late" in {i["metadata"]["name"] for i in json.loads(state.read_text())["items"]}, 3,
             "the new service in the state file")
    wait_for(lambda: metric(d, "hdnsd_state_writes_total") == 2, 1, "the write counted (after the rename)")
    assert metric(d, "hdnsd_state_written_bytes_total") > 2 * 500
    assert metric(d, "hdnsd_state_write_failures_total") == 0
    assert not list(tmp_path.glob("state.json.tmp*")), "no temporary left behind"
    log = stopped(d)
    assert "is up to date (nothing changed since the last write)" in log, log


@pytest.mark.parametrize("damage", ["garbage", "truncated", "format", "zone", "not_state"])
def test_damaged_file_is_one_warning_and_a_cold_start(hdnsd, tmp_path, damage):
    state = tmp_path / "state.json"
    up = FakeUpstream(free_port())
    try:
        d = hdnsd.start(DATA / "cluster.json", "--upstream", f"127.0.0.1:{up.port}", "--state-file", state,
                        "--workers", "1")
        assert dig(d.port, "www.example.test").rdatas("A") == ["192.0.2.53"]
        stopped(d)
        good = state.read_text()
        bad = {"garbage": "\x00\x01{{not json at all",
               "truncated": good[: len(good) // 2],
               "format": good.replace('"format":1', '"format":99'),
               "zone": good.replace('"zone":"cluster.local"', '"zone":"other.local"'),
               "not_state": (DATA / "cluster.json").read_text()}[damage]
        state.write_text(bad)
        d2 = hdnsd.start(DATA / "cluster.json", "--upstream", f"127.0.0.1:{up.port}", "--state-file", state,
                         "--workers", "1")
        wait_for(lambda: log_lines(d2, "state file:"), 5, "the state file verdict")
        warnings = log_lines(d2, "state file:")
        assert len(warnings) == 1 and " warn " in f" {warnings[0]} " and "cold start" in warnings[0], warnings
        why = {"garbage": "not valid JSON", "truncated": "not valid JSON", "format": "format 99",
               "zone": "written for zone other.local", "not_state": "not an hdnsd state file"}[damage]
        assert why in warnings[0], warnings
        # Cold, and serving: the cluster view from the file, forwarding through the upstream.
        assert dig(d2.port, file_fqdn("web")).status == "NOERROR"
        assert metric(d2, "hdnsd_state_loaded_total", kind="cache_entries") == 0
        before = up.queries_for("www")
        assert dig(d2.port, "www.example.test").rdatas("A") == ["192.0.2.53"]
        assert up.queries_for("www") == before + 1, "a cold cache forwards"
        stopped(d2)
        assert json.loads(state.read_text())["hdnsdState"]["format"] == 1, "replaced by a good file at shutdown"
    finally:
        up.close()
