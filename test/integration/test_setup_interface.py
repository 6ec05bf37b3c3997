"""--setup-interface for real: the link-local address, the NOTRACK rules, their removal.

Each test makes its own network namespace (`ip netns add`), so the interface, the address
169.254.20.10 and the iptables rules live and die there; nothing touches the machine's own
network. hdnsd runs as root inside it (`ip netns exec`), as the DaemonSet does, and is queried with
dig inside the same namespace. Needs root, network namespaces, iproute2 and iptables (`make deps`);
skipped with the reason otherwise. This kernel may lack the dummy driver: hdnsd then makes a
port-less bridge, which these tests accept (the kind is not what they check).
"""
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from harness import hdnsd_bin

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "demo-cluster.json"
LL = "169.254.20.10"
LL2 = "169.254.20.11"
IFACE = "nodelocaldns"
TAG = f'"hdnsd:{IFACE}"'
WEB = {"10.244.1.10", "10.244.1.11", "10.244.1.12"}  # web.demo's ready endpoints in DEMO


def _unavailable():
    if os.geteuid() != 0:
        return "needs root (network namespaces, iptables)"
    for tool in ("ip", "iptables", "dig"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (make deps installs it)"
    name = f"hdnsd-probe-{os.getpid()}"
    r = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if r.returncode != 0:
        return f"cannot create a network namespace: {r.stderr.strip()}"
    try:
        r = subprocess.run(["ip", "netns", "exec", name, "iptables", "-w", "5", "-t", "raw", "-S"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            return f"iptables does not work in a network namespace here: {r.stderr.strip()}"
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


REASON = _unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")


class Netns:
    def __init__(self, name):
        self.name = name
        self.procs = []

    def run(self, *cmd, check=False):
        return subprocess.run(["ip", "netns", "exec", self.name, *cmd], capture_output=True, text=True,
                              timeout=20, check=check)

    def start(self, *args, wait_for=LL):
        log = open(f"/tmp/hdnsd-{self.name}-{len(self.procs)}.log", "w+")
        p = subprocess.Popen(["ip", "netns", "exec", self.name, str(hdnsd_bin()), "--endpoints-file", str(DEMO),
                              "--resolv-conf", "none", *args], stdout=log, stderr=subprocess.STDOUT)
        p.log = log
        self.procs.append(p)
        if wait_for:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if p.poll() is not None:
                    pytest.fail(f"hdnsd exited with {p.returncode}:\n{self.log_of(p)}")
                # The log line first: with SO_REUSEPORT another instance may answer already.
                if " started: " in self.log_of(p) and self.dig(wait_for, tries=1, timeout=1) == WEB:
                    break
                time.sleep(0.1)
            else:
                pytest.fail(f"hdnsd did not answer on {wait_for} within 10 s:\n{self.log_of(p)}")
        return p

    @staticmethod
    def log_of(p):
        p.log.flush()
        p.log.seek(0)
        return p.log.read()

    def stop(self, p, sig=signal.SIGTERM):
        p.send_signal(sig)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            pytest.fail(f"hdnsd did not exit within 10 s of {sig.name}:\n{self.log_of(p)}")
        return p.returncode

    def dig(self, server, *extra, tries=2, timeout=2):
        r = self.run("dig", f"@{server}", "+short", f"+tries={tries}", f"+time={timeout}", *extra,
                     "web.demo.svc.cluster.local", "A")
        return {line for line in r.stdout.split() if line and line[0].isdigit()} if r.returncode == 0 else set()

    def addresses(self):
        r = self.run("ip", "-o", "addr", "show", "dev", IFACE)
        if r.returncode != 0:
            return None  # no interface
        return {w.split("/")[0] for line in r.stdout.splitlines() for i, w in enumerate(line.split())
                if i > 0 and line.split()[i - 1] == "inet"}

    def rules(self):
        """Our tagged rules, per table, as iptables -S prints them."""
        out = {}
        for table in ("raw", "filter"):
            r = self.run("iptables", "-w", "5", "-t", table, "-S", check=True)
            out[table] = [line for line in r.stdout.splitlines() if TAG in line]
        return out


@pytest.fixture
def ns():
    name = f"hdnsd-si-{os.getpid()}-{time.monotonic_ns() % 100000}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    n = Netns(name)
    n.run("ip", "link", "set", "lo", "up", check=True)
    yield n
    for p in n.procs:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.log.close()
    subprocess.run(["ip", "netns", "del", name], capture_output=True)


def test_link_local_address_rules_answers_and_removal(ns):
    p = ns.start("--listen", f"{LL}:53", "--setup-interface")
    assert ns.addresses() == {LL}
    link = ns.run("ip", "-o", "link", "show", "dev", IFACE).stdout
    assert ",UP" in link or "<UP" in link, link
    rules = ns.rules()
    assert len(rules["raw"]) == 6, rules  # PREROUTING -d, OUTPUT -s, OUTPUT -d; udp and tcp
    assert len(rules["filter"]) == 4, rules  # INPUT -d, OUTPUT -s; udp and tcp
    assert all("-j NOTRACK" in r for r in rules["raw"])
    assert any(r.startswith(f"-A PREROUTING -d {LL}/32 -p udp") and "--dport 53" in r for r in rules["raw"])
    assert any(r.startswith(f"-A OUTPUT -s {LL}/32 -p tcp") and "--sport 53" in r for r in rules["raw"])
    assert all("-j ACCEPT" in r for r in rules["filter"])
    assert ns.dig(LL) == WEB
    assert ns.dig(LL, "+tcp") == WEB
    assert ns.stop(p) == 0
    log = ns.log_of(p)
    # Started as root, hdnsd ran on as nobody (--user's default) and still removed everything:
    # the capabilities `ip` and `iptables` need were passed to them (ambient set).
    assert "now running as nobody" in log, log
    assert ns.addresses() is None, f"the interface is still there after SIGTERM:\n{log}"
    assert ns.rules() == {"raw": [], "filter": []}, log


def test_notrack_false_sets_up_only_the_interface(ns):
    p = ns.start("--listen", f"{LL}:53", "--listen", "127.0.0.1:53", "--setup-interface", "--notrack=false")
    assert ns.addresses() == {LL}  # 127.0.0.1 stays on lo
    assert ns.rules() == {"raw": [], "filter": []}
    assert ns.dig("127.0.0.1") == WEB
    assert ns.stop(p) == 0
    assert ns.addresses() is None


def test_next_start_cleans_up_after_a_crash(ns):
    p = ns.start("--listen", f"{LL}:53", "--listen", f"{LL2}:53", "--setup-interface")
    assert ns.addresses() == {LL, LL2}
    assert ns.stop(p, signal.SIGKILL) == -signal.SIGKILL
    # A crash leaves everything behind.
    assert ns.addresses() == {LL, LL2}
    left = ns.rules()
    assert len(left["raw"]) == 12 and len(left["filter"]) == 8
    # The next start, now without LL2: adopts the interface, removes LL2 and its rules, keeps one
    # copy of each LL rule (nothing added twice).
    p = ns.start("--listen", f"{LL}:53", "--setup-interface")
    assert ns.addresses() == {LL}
    rules = ns.rules()
    assert len(rules["raw"]) == 6 and len(rules["filter"]) == 4, rules
    assert not any(LL2 in r for r in rules["raw"] + rules["filter"])
    assert len(set(rules["raw"])) == 6, "a rule is there twice"
    assert "adopting the existing interface" in ns.log_of(p)
    assert ns.stop(p) == 0
    assert ns.addresses() is None
    assert ns.rules() == {"raw": [], "filter": []}


def test_second_instance_keeps_the_interface_until_the_last_one_stops(ns):
    # A DaemonSet surge: the new pod binds beside the old one (SO_REUSEPORT); the old one stops
    # and must leave the address and rules to the new one.
    old = ns.start("--listen", f"{LL}:53", "--setup-interface")
    new = ns.start("--listen", f"{LL}:53", "--setup-interface")
    assert len(ns.rules()["raw"]) == 6  # the second start added nothing
    assert ns.stop(old) == 0
    assert "still served by another process" in ns.log_of(old)
    assert ns.addresses() == {LL}
    assert len(ns.rules()["raw"]) == 6
    assert ns.dig(LL) == WEB
    assert ns.stop(new) == 0
    assert ns.addresses() is None
    assert ns.rules() == {"raw": [], "filter": []}


def test_setup_interface_needs_a_non_loopback_listen_address(ns):
    r = subprocess.run([str(hdnsd_bin()), "--listen", "127.0.0.1:5353", "--setup-interface"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2
    assert "--setup-interface" in r.stderr and "169.254.20.10" in r.stderr
