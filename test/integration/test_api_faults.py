"""An API server that sends bad data (issue 8, item 5), against the fake API server: huge
objects, wrong types, duplicate and out-of-order resourceVersions, slices for services that do
not exist. For each: hdnsd logs, skips the bad object, keeps the rest, keeps watching (later
good events still arrive) and never serves a wrong answer for a good service.

The faults are objects stored in the fake's history (api.add of a broken dict), so a watch
restart meets them again, as it would with a real server: the regression these tests catch is
a watch that restarts on such an object and so never gets past it (issue 8 bug 1: every later
event of that resource was lost, and a list holding one bad item never synced).
"""

import copy
import sys
import time
from pathlib import Path

import pytest

from harness import dig, hdnsd_bin, http_get, parse_metrics

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakeapi"))
import kubeobjects as k  # noqa: E402
from watchenv import (NS, SLICES, base_cluster, fqdn, kube_api_supported, make_api, start_hdnsd,  # noqa: E402
                      wait_answer, wait_for, watches)

_why = kube_api_supported(hdnsd_bin())
pytestmark = pytest.mark.skipif(_why is not None, reason=_why or "")

WEB = ("NOERROR", ["10.244.1.1", "10.244.1.2"])
DB = ("NOERROR", ["10.244.3.1"])
API = ("NOERROR", ["10.96.0.10"])


@pytest.fixture
def api(tmp_path):
    a = make_api(tmp_path)
    base_cluster(a)
    yield a
    a.stop()


def errors(d, kind):
    _, body, _ = http_get(d.metrics_port, "/metrics")
    return sum(v for n, labels, v in parse_metrics(body)
               if n == "hdnsd_kube_watch_errors_total" and labels.get("kind") == kind)


def wrong_type_service(name):
    s = k.service(NS, name)
    s["spec"]["ports"] = "80"  # a string where a list of objects belongs
    return s


def wrong_type_slice(svc, name=None):
    s = k.endpoint_slice(NS, svc, ["10.244.9.9"], name=name)
    s["endpoints"][0]["addresses"] = [42]  # a number where an IP string belongs
    return s


def bad_ip_slice(svc, name=None):
    return k.endpoint_slice(NS, svc, ["10.244.1.300"], name=name)


def huge_slice(svc, size):
    s = k.endpoint_slice(NS, svc, ["10.244.7.7"])
    s["metadata"].setdefault("annotations", {})["pad"] = "x" * size
    return s


# Each fault: (name, objects to add, what "web" must answer afterwards). The faults target web's
# own objects (its last good version must stay) or unrelated ones (web untouched).
FAULTS = [
    ("service-wrong-type", lambda: [wrong_type_service("web")], WEB),
    ("slice-wrong-type", lambda: [wrong_type_slice("web")], WEB),
    ("slice-bad-ip", lambda: [bad_ip_slice("web")], WEB),
    ("slice-huge", lambda: [huge_slice("web", 300_000)], WEB),
    ("slice-for-missing-service", lambda: [k.endpoint_slice(NS, "ghost", ["10.244.8.8"])], WEB),
    ("service-type-not-object", lambda: [dict(k.service(NS, "odd"), spec=["not", "an", "object"])], WEB),
]


@pytest.mark.parametrize("name,objs,web", FAULTS, ids=[f[0] for f in FAULTS])
def test_bad_object_in_the_watch_is_skipped_and_later_events_arrive(api, hdnsd, name, objs, web):
    d = start_hdnsd(hdnsd, api, "--kube-max-event-bytes", "65536")
    wait_answer(dig, d, fqdn("web"), WEB, timeout=2)
    for o in objs():
        api.add(o)
    time.sleep(0.3)
    # Good changes after the bad object must arrive, on both watches: they got past it.
    api.add(k.endpoint_slice(NS, "db", ["10.244.3.2"]))
    api.add(k.service(NS, "late", cluster_ip="10.96.0.99"))
    wait_answer(dig, d, fqdn("db"), ("NOERROR", ["10.244.3.2"]), timeout=3)
    wait_answer(dig, d, fqdn("late"), ("NOERROR", ["10.96.0.99"]), timeout=3)
    # Good services answer as before; the bad object's service keeps its last good version.
    wait_answer(dig, d, fqdn("web"), web, timeout=0)
    wait_answer(dig, d, fqdn("api"), API, timeout=0)
    if name == "slice-for-missing-service":
        r = dig(d.port, fqdn("ghost"))
        assert r.status == "NXDOMAIN", r.describe()  # no Service: the slice serves nothing
    else:
        kind = "line_too_long" if name == "slice-huge" else "decode"
        assert errors(d, kind) >= 1
        assert "skip" in d.log()
    # The watches did not restart in a loop: a handful of watch requests, not dozens.
    time.sleep(1)
    assert len(watches(api, SLICES)) + len(watches(api, "services")) <= 6, \
        [(w["resource"], w["query"].get("resourceVersion")) for w in watches(api, SLICES)]


# Extra slices of web and db (their good slices stay): in the list, only the bad item goes.
@pytest.mark.parametrize("bad", [wrong_type_service("broken"), wrong_type_slice("web", "web-extra"),
                                 bad_ip_slice("db", "db-extra")],
                         ids=["service-wrong-type", "slice-wrong-type", "slice-bad-ip"])
@pytest.mark.parametrize("watchlist", [True, False], ids=["streaming-list", "list-watch"])
def test_bad_object_in_the_initial_list_does_not_block_sync(api, hdnsd, bad, watchlist):
    api.set(watchlist=watchlist)
    api.add(bad)
    d = start_hdnsd(hdnsd, api)  # waits for /ready: the list synced despite the bad item
    wait_answer(dig, d, fqdn("web"), WEB, timeout=2)
    wait_answer(dig, d, fqdn("db"), DB, timeout=0)
    wait_answer(dig, d, fqdn("api"), API, timeout=0)
    assert "skip" in d.log()


def test_duplicate_and_out_of_order_resource_versions(api, hdnsd):
    d = start_hdnsd(hdnsd, api)
    wait_answer(dig, d, fqdn("web"), WEB, timeout=2)
    wait_for(lambda: watches(api, SLICES), 3, "a slice watch")
    good = k.endpoint_slice(NS, "web", ["10.244.1.5"])
    api.add(good)
    wait_answer(dig, d, fqdn("web"), ("NOERROR", ["10.244.1.5"]), timeout=2)
    cur = api.get("EndpointSlice", NS, good["metadata"]["name"])
    rv = int(cur["metadata"]["resourceVersion"])
    line = '{"type":"MODIFIED","object":%s}'
    import json
    # The same event twice (a duplicate): idempotent.
    api.inject_line(line % json.dumps(cur))
    api.inject_line(line % json.dumps(cur))
    # An event carrying an older resourceVersion than one already seen (out of order): applied
    # in arrival order like any event (resourceVersions are opaque to clients), never a crash.
    old = copy.deepcopy(cur)
    old["metadata"]["resourceVersion"] = str(rv - 3)
    old["endpoints"][0]["addresses"] = ["10.244.1.6"]
    api.inject_line(line % json.dumps(old))
    wait_answer(dig, d, fqdn("web"), ("NOERROR", ["10.244.1.6"]), timeout=2)
    # The server's next real event wins, and other services never moved.
    api.add(k.endpoint_slice(NS, "web", ["10.244.1.7"]))
    wait_answer(dig, d, fqdn("web"), ("NOERROR", ["10.244.1.7"]), timeout=2)
    wait_answer(dig, d, fqdn("db"), DB, timeout=0)
    wait_answer(dig, d, fqdn("api"), API, timeout=0)
    assert d.alive()


def test_huge_list_object_is_bounded(api, hdnsd):
    """A 3 MB object in the initial list (under the 4 MiB event limit): taken, memory returns."""
    api.add(huge_slice("db", 3_000_000))
    d = start_hdnsd(hdnsd, api)
    wait_answer(dig, d, fqdn("web"), WEB, timeout=2)
    wait_answer(dig, d, fqdn("db"), ("NOERROR", ["10.244.7.7"]), timeout=0)
    assert d.alive()
