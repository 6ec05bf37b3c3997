"""Reloads (file watch, SIGHUP), HTTP probes and metrics, and shutdown signals. Each test starts
its own daemon, since all of them change or end it."""

import signal
import socket
import threading
import time

import dns.message
import dns.query
import dns.rcode
import pytest

from harness import (DATA, config_file, copy_fixture, dig, http_get,
                     parse_metrics, poll, write_atomic, write_in_place)

RL = "rl.shop.svc.cluster.local."  # reload-v1.json: 10.251.0.1; reload-v2.json: 10.251.0.2
V1 = (DATA / "reload-v1.json").read_text()
V2 = (DATA / "reload-v2.json").read_text()
RELOAD_WITHIN_S = 1.5  # "answers change within ~1 s"


def rl_answer(d):
    r = dig(d.port, RL, "A")
    return r.rdatas("A") if r.status == "NOERROR" else r.status


def extra_answer(d):
    r = dig(d.port, "extra.shop.svc.cluster.local.", "A")
    return r.status


# ---- reload by file watch ---------------------------------------------------------------------

@pytest.mark.parametrize("writer", [write_atomic, write_in_place], ids=["rename", "in-place"])
def test_file_change_reloads_without_sighup(hdnsd, tmp_path, writer):
    f = copy_fixture("reload-v1.json", tmp_path / "eps.json")
    d = hdnsd.start(f)
    assert rl_answer(d) == ["10.251.0.1"]
    assert extra_answer(d) == "NXDOMAIN"
    writer(f, V2)
    assert poll(lambda: rl_answer(d) == ["10.251.0.2"], RELOAD_WITHIN_S), \
        f"no reload within {RELOAD_WITHIN_S}s of {writer.__name__}: {rl_answer(d)}\n{d.log()}"
    assert extra_answer(d) == "NOERROR"
    # Again: after a rename the watched inode is gone, so a watch that is not re-armed (or not
    # on the directory) sees the first change only.
    writer(f, V1)
    assert poll(lambda: rl_answer(d) == ["10.251.0.1"], RELOAD_WITHIN_S), \
        f"second {writer.__name__} not picked up: {rl_answer(d)}\n{d.log()}"
    assert extra_answer(d) == "NXDOMAIN"


BROKEN = {
    "truncated-json": V2[: len(V2) // 2],
    "wrong-shape": V2.replace('"addresses": [\n                        "10.251.0.2"\n                    ]',
                              '"addresses": "10.251.0.2"'),
    "empty": "",
}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_broken_file_keeps_last_good_view(hdnsd, tmp_path, kind):
    assert BROKEN[kind] != V2
    f = copy_fixture("reload-v1.json", tmp_path / "eps.json")
    d = hdnsd.start(f)
    assert rl_answer(d) == ["10.251.0.1"]
    log_before = d.log().splitlines()
    write_atomic(f, BROKEN[kind])
    deadline = time.monotonic() + RELOAD_WITHIN_S
    while time.monotonic() < deadline:
        assert rl_answer(d) == ["10.251.0.1"], "a bad file replaced the last good view"
        time.sleep(0.1)
    status, body, _ = http_get(d.metrics_port, "/ready")
    assert status == 200, f"/ready after a bad reload: {status} {body!r}"
    new = d.log().splitlines()[len(log_before):]
    naming = [l for l in new if "eps.json" in l]
    assert naming, f"no log line names the bad file eps.json; new lines: {new}"
    # The watch survives a failed load: a good file is picked up again.
    write_atomic(f, V2)
    assert poll(lambda: rl_answer(d) == ["10.251.0.2"], RELOAD_WITHIN_S), d.log()


# ---- SIGHUP -------------------------------------------------------------------------------------

def test_sighup_reloads_config(hdnsd, tmp_path):
    f = copy_fixture("reload-v1.json", tmp_path / "eps.json")
    cfg = config_file(tmp_path / "c.json", ttl=7, endpoints_file=str(f))
    d = hdnsd.start(None, "--config", cfg)
    r = dig(d.port, RL, "A")
    assert {a.ttl for a in r.answer} == {7}, r.describe()
    config_file(cfg, ttl=9, endpoints_file=str(f))
    d.signal(signal.SIGHUP)
    assert poll(lambda: {a.ttl for a in dig(d.port, RL, "A").answer} == {9}, RELOAD_WITHIN_S), \
        "SIGHUP did not apply the new ttl:\n" + d.log()
    assert d.alive()


def test_sighup_under_query_load_drops_nothing(hdnsd, tmp_path):
    """2,000 UDP queries over ~2 s while SIGHUP reloads config + endpoints 8 times: every query
    must get its answer. The config's ttl alternates 5/6 so the reloads are visible."""
    f = copy_fixture("reload-v1.json", tmp_path / "eps.json")
    cfg = config_file(tmp_path / "c.json", ttl=5, endpoints_file=str(f))
    d = hdnsd.start(None, "--config", cfg)
    total, lost, bad, ttls = 2000, [], [], set()
    wire = {}

    def blaster():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(1.0)
        t0 = time.monotonic()
        for i in range(total):
            delay = t0 + i * 0.001 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            q = dns.message.make_query(RL, "A")
            q.id = i
            s.sendto(q.to_wire(), ("127.0.0.1", d.port))
            while True:
                try:
                    m = dns.message.from_wire(s.recv(4096))
                except socket.timeout:
                    lost.append(i)
                    break
                if m.id != i:
                    continue  # a late reply to an earlier query would count as lost there
                addrs = [rr.address for rrset in m.answer for rr in rrset]
                if m.rcode() != dns.rcode.NOERROR or addrs != ["10.251.0.1"]:
                    bad.append((i, m.to_text()))
                ttls.update(rrset.ttl for rrset in m.answer)
                break
            if len(lost) > 20:
                break  # clearly broken: don't spend 1 s per remaining query
        wire["elapsed"] = time.monotonic() - t0
        s.close()

    th = threading.Thread(target=blaster)
    th.start()
    for k in range(8):
        time.sleep(0.2)
        config_file(cfg, ttl=6 if k % 2 == 0 else 5, endpoints_file=str(f))
        d.signal(signal.SIGHUP)
    th.join(30)
    assert not th.is_alive()
    assert d.alive(), d.log()
    assert not lost, f"{len(lost)} of {total} queries got no answer (first ids {lost[:10]})"
    assert not bad, f"{len(bad)} wrong answers, first:\n{bad[0][1]}"
    print(f"{total} queries in {wire['elapsed']:.2f}s, TTLs seen {sorted(ttls)}")
    assert ttls <= {5, 6} and 6 in ttls, f"the SIGHUP reloads never took effect: TTLs {ttls}"
    # The last config written has ttl 5 (k = 7).
    assert poll(lambda: {a.ttl for a in dig(d.port, RL, "A").answer} == {5}, RELOAD_WITHIN_S)


# ---- probes -------------------------------------------------------------------------------------

def test_health_and_ready_after_load(hdnsd):
    d = hdnsd.start(DATA / "cluster.json")
    assert http_get(d.metrics_port, "/health")[0] == 200
    assert http_get(d.metrics_port, "/ready")[0] == 200


def test_ready_503_until_endpoints_file_appears(hdnsd, tmp_path):
    f = tmp_path / "later" / "eps.json"
    f.parent.mkdir()
    d = hdnsd.start(f, wait="health")
    status, body, _ = http_get(d.metrics_port, "/ready")
    assert status == 503, f"/ready before the endpoints file loaded: {status} {body!r}"
    assert body.strip() and "\n" not in body.strip(), f"expected a one-line reason: {body!r}"
    assert http_get(d.metrics_port, "/health")[0] == 200
    write_atomic(f, V1)
    assert poll(lambda: http_get(d.metrics_port, "/ready")[0] == 200, 2.0), \
        "/ready did not turn 200 after the file appeared:\n" + d.log()
    assert rl_answer(d) == ["10.251.0.1"]


def test_unknown_http_path_404(hdnsd):
    d = hdnsd.start(DATA / "cluster.json")
    assert http_get(d.metrics_port, "/nope")[0] == 404


def _families(text):
    fam = {}
    for name, labels, value in parse_metrics(text):
        fam.setdefault(name, []).append(({k: v.lower() for k, v in labels.items()}, value))
    return fam


def _delta(before, after, name, label, value):
    def total(fam):
        return sum(v for labels, v in fam.get(name, []) if labels.get(label) == value)
    return total(after) - total(before)


def test_metrics_query_counters(hdnsd):
    d = hdnsd.start(DATA / "cluster.json")
    status, text, ctype = http_get(d.metrics_port, "/metrics")
    assert status == 200 and ctype.startswith("text/plain"), (status, ctype)
    before = _families(text)
    addr = "127.0.0.1"
    for _ in range(3):
        dns.query.udp(dns.message.make_query("api.shop.svc.cluster.local.", "A"), addr,
                      port=d.port, timeout=1)
    for _ in range(2):
        dns.query.tcp(dns.message.make_query("dual.shop.svc.cluster.local.", "AAAA"), addr,
                      port=d.port, timeout=1)
    dns.query.udp(dns.message.make_query("example.com.", "A"), addr, port=d.port, timeout=1)
    dns.query.udp(dns.message.make_query("nope.shop.svc.cluster.local.", "TXT"), addr,
                  port=d.port, timeout=1)
    after = _families(http_get(d.metrics_port, "/metrics")[1])
    expected = {("transport", "udp"): 5, ("transport", "tcp"): 2,
                ("type", "a"): 4, ("type", "aaaa"): 2, ("type", "txt"): 1,
                ("rcode", "noerror"): 5, ("rcode", "refused"): 1, ("rcode", "nxdomain"): 1}
    ours = [n for n in after if n.startswith("hdnsd_")]
    assert ours, "no hdnsd_ metrics:\n" + text
    for (label, value), want in expected.items():
        deltas = {n: _delta(before, after, n, label, value) for n in ours
                  if any(label in lb for lb, _ in after[n])}
        assert deltas, f"no hdnsd_ metric has a {label!r} label; families: {sorted(ours)}"
        assert want in deltas.values(), \
            f"{label}={value}: expected some hdnsd_ counter to grow by {want}, got {deltas}"


def test_metrics_view_size_follows_reload(hdnsd, tmp_path):
    f = copy_fixture("reload-v1.json", tmp_path / "eps.json")
    d = hdnsd.start(f)
    def view():
        fam = _families(http_get(d.metrics_port, "/metrics")[1])
        return {(n, tuple(sorted(lb.items()))): v for n, samples in fam.items()
                if n.startswith("hdnsd_") and "view" in n for lb, v in samples}
    v1 = view()
    assert v1, "no hdnsd_*view* metric (the view size)"
    assert any(v > 0 for v in v1.values()), f"view size is 0 with a loaded file: {v1}"
    write_atomic(f, V2)  # one more service
    assert poll(lambda: rl_answer(d) == ["10.251.0.2"], RELOAD_WITHIN_S)
    v2 = view()
    assert v2 != v1, f"view-size metrics did not change after a reload: {v1}"


# ---- signals ------------------------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_exits_0_within_2s(hdnsd, sig):
    d = hdnsd.start(DATA / "cluster.json")
    assert dig(d.port, "api.shop.svc.cluster.local.", "A").status == "NOERROR"
    t0 = time.monotonic()
    d.signal(sig)
    try:
        rc = d.proc.wait(2.0)
    except Exception:
        pytest.fail(f"still running 2 s after {sig.name}:\n{d.log()}")
    assert rc == 0, f"exit status {rc} after {sig.name}:\n{d.log()}"
    print(f"exited {time.monotonic() - t0:.3f}s after {sig.name}")


def test_sigterm_with_open_idle_tcp_client(hdnsd):
    d = hdnsd.start(DATA / "cluster.json")
    clients = [socket.create_connection(("127.0.0.1", d.port), timeout=1) for _ in range(3)]
    clients[0].sendall(b"\x00\x20")  # and one in the middle of a message
    try:
        time.sleep(0.1)
        d.signal(signal.SIGTERM)
        try:
            rc = d.proc.wait(2.0)
        except Exception:
            pytest.fail("idle TCP clients kept hdnsd alive for more than 2 s after SIGTERM:\n"
                        + d.log())
        assert rc == 0, d.log()
    finally:
        for c in clients:
            c.close()


def test_sigterm_stops_metrics_and_dns(hdnsd):
    d = hdnsd.start(DATA / "cluster.json")
    d.signal(signal.SIGTERM)
    d.proc.wait(2.0)
    assert dig(d.port, "api.shop.svc.cluster.local.", "A").status is None
    with pytest.raises(OSError):
        http_get(d.metrics_port, "/health", timeout=0.5)


# ---- more reload shapes -------------------------------------------------------------------------

def test_sighup_switches_endpoints_file(hdnsd, tmp_path):
    a = copy_fixture("reload-v1.json", tmp_path / "a.json")
    b = copy_fixture("reload-v2.json", tmp_path / "b.json")
    cfg = config_file(tmp_path / "c.json", endpoints_file=str(a))
    d = hdnsd.start(None, "--config", cfg)
    assert rl_answer(d) == ["10.251.0.1"]
    config_file(cfg, endpoints_file=str(b))
    d.signal(signal.SIGHUP)
    assert poll(lambda: rl_answer(d) == ["10.251.0.2"], RELOAD_WITHIN_S), \
        "SIGHUP did not load the config's new endpoints-file:\n" + d.log()
    # The watch follows the new file, and the old one no longer matters.
    write_atomic(a, V2)
    write_atomic(b, V1)
    assert poll(lambda: rl_answer(d) == ["10.251.0.1"], RELOAD_WITHIN_S), \
        "a change to the new endpoints file was not picked up:\n" + d.log()


def test_deleted_file_keeps_view_until_recreated(hdnsd, tmp_path):
    f = copy_fixture("reload-v1.json", tmp_path / "eps.json")
    d = hdnsd.start(f)
    f.unlink()
    deadline = time.monotonic() + RELOAD_WITHIN_S
    while time.monotonic() < deadline:
        assert rl_answer(d) == ["10.251.0.1"], "deleting the file dropped the last good view"
        time.sleep(0.1)
    assert http_get(d.metrics_port, "/ready")[0] == 200
    write_atomic(f, V2)
    assert poll(lambda: rl_answer(d) == ["10.251.0.2"], RELOAD_WITHIN_S), \
        "the re-created file was not picked up:\n" + d.log()


def test_configmap_style_symlink_swap(hdnsd, tmp_path):
    """How a ConfigMap volume updates a file: eps.json -> ..data/eps.json, and ..data is a
    symlink to a timestamped directory that is swapped by rename. The watched path's content
    changes although no file named eps.json is ever written."""
    vol = tmp_path / "vol"
    (vol / "..2024_05_02_v1").mkdir(parents=True)
    (vol / "..2024_05_02_v1" / "eps.json").write_text(V1)
    (vol / "..data").symlink_to("..2024_05_02_v1")
    (vol / "eps.json").symlink_to("..data/eps.json")
    d = hdnsd.start(vol / "eps.json")
    assert rl_answer(d) == ["10.251.0.1"]
    (vol / "..2024_05_02_v2").mkdir()
    (vol / "..2024_05_02_v2" / "eps.json").write_text(V2)
    (vol / "..data_tmp").symlink_to("..2024_05_02_v2")
    (vol / "..data_tmp").rename(vol / "..data")  # atomic swap, as kubelet's AtomicWriter does
    assert poll(lambda: rl_answer(d) == ["10.251.0.2"], RELOAD_WITHIN_S), \
        "a ConfigMap-style symlink swap was not picked up:\n" + d.log()


def test_log_level_error_is_quiet(hdnsd):
    d = hdnsd.start(DATA / "cluster.json", "--log-level", "error")
    assert dig(d.port, "api.shop.svc.cluster.local.", "A").status == "NOERROR"
    d.signal(signal.SIGTERM)
    d.proc.wait(2.0)
    lines = [l for l in d.log().splitlines() if l.strip()]
    noisy = [l for l in lines if " info " in l or " debug " in l or " warn " in l]
    assert not noisy, f"--log-level error still logged: {noisy}"
