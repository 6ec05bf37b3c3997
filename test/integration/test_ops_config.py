"""Issue 6, configuration: --check-config, the watched --config file (a change reloads like
SIGHUP, dropping no query), and README's option table against --help."""

import json
import re
import socket
import threading
import time
from pathlib import Path

import dns.message
import dns.rcode

from harness import REPO, config_file, copy_fixture, dig, poll, run_hdnsd

RL = "rl.shop.svc.cluster.local."


def test_check_config_prints_effective_config(tmp_path):
    cfg = config_file(tmp_path / "c.json", ttl=9, listen=["127.0.0.1:5301"], policy="random")
    r = run_hdnsd("--check-config", "--config", cfg, "--log-format", "json")
    assert r.returncode == 0, r.stderr
    eff = json.loads(r.stdout)
    assert eff["ttl"] == 9  # from the file
    assert eff["listen"] == ["127.0.0.1:5301"]
    assert eff["policy"] == "random"
    assert eff["log-format"] == "json"  # from the flag
    assert eff["cluster-domain"] == "cluster.local"  # a default
    assert eff["lameduck"] == 0


def test_check_config_error_is_one_line_exit_2(tmp_path):
    cfg = config_file(tmp_path / "c.json", ttl="soon")
    r = run_hdnsd("--check-config", "--config", cfg)
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "ttl" in lines[0] and str(cfg) in lines[0], r.stderr
    r = run_hdnsd("--check-config", "--query-log-sample", "0")
    assert r.returncode == 2 and "--query-log-sample" in r.stderr


def test_readme_table_documents_every_flag_of_help():
    help_text = run_hdnsd("--help").stdout
    flags = set(re.findall(r"^\s+(--[a-z0-9-]+)", help_text, re.M))
    assert len(flags) > 40
    readme = (REPO / "README.md").read_text()
    rows = set(re.findall(r"^\| `(--[a-z0-9-]+)", readme, re.M))
    missing = sorted(flags - rows)
    assert not missing, f"README's option table lacks: {missing}"
    unknown = sorted(rows - flags)
    assert not unknown, f"README's option table documents flags --help does not know: {unknown}"


def test_config_file_change_reloads_under_load_without_sighup(hdnsd, tmp_path):
    """1,500 UDP queries while the --config file is rewritten 6 times (ttl 5 ↔ 6), never a
    SIGHUP: the file watch reloads, and every query gets its answer."""
    f = copy_fixture("reload-v1.json", tmp_path / "eps.json")
    cfg = config_file(tmp_path / "c.json", ttl=5, endpoints_file=str(f))
    d = hdnsd.start(None, "--config", cfg)
    total, lost, bad, ttls = 1500, [], [], set()

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
                    continue
                if m.rcode() != dns.rcode.NOERROR:
                    bad.append(m.to_text())
                ttls.update(rrset.ttl for rrset in m.answer)
                break
            if len(lost) > 20:
                break
        s.close()

    th = threading.Thread(target=blaster)
    th.start()
    for k in range(6):
        time.sleep(0.2)
        config_file(cfg, ttl=6 if k % 2 == 0 else 5, endpoints_file=str(f))
    th.join(30)
    assert not th.is_alive()
    assert not lost, f"{len(lost)} of {total} queries got no answer"
    assert not bad, bad[0]
    assert 6 in ttls, f"the file changes never took effect: TTLs {ttls}\n{d.log()}"
    assert poll(lambda: {a.ttl for a in dig(d.port, RL, "A").answer} == {5}, 2)
    assert d.log().count("changed: reloading") >= 3
    assert "SIGHUP" not in d.log()


def test_bad_config_file_change_keeps_running_config(hdnsd, tmp_path):
    f = copy_fixture("reload-v1.json", tmp_path / "eps.json")
    cfg = config_file(tmp_path / "c.json", ttl=7, endpoints_file=str(f))
    d = hdnsd.start(None, "--config", cfg)
    cfg.write_text("{not json")
    assert poll(lambda: "keeping the running configuration" in d.log(), 2), d.log()
    assert {a.ttl for a in dig(d.port, RL, "A").answer} == {7}
    assert d.alive()
