"""Issue 6, systemd: the notify protocol (READY=1 when /ready turns 200, RELOADING=1 around a
reload, WATCHDOG=1, STOPPING=1) against a socket the test owns, and socket activation
(LISTEN_FDS/LISTEN_PID) with sockets the test binds and passes."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from harness import DATA, REPO, copy_fixture, dig, free_port, hdnsd_bin, http_get, poll


class NotifySocket:
    def __init__(self, name):
        self.name = name
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + name[1:] if name.startswith("@") else name)
        self.sock.settimeout(0.05)
        self.messages = []

    def drain(self):
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except (socket.timeout, BlockingIOError):
                return self.messages

    def seen(self, prefix):
        return [m for m in self.drain() if m.startswith(prefix)]


@pytest.fixture
def notify(monkeypatch, tmp_path):
    n = NotifySocket(f"@hdnsd-test-{os.getpid()}-{time.monotonic_ns()}")
    monkeypatch.setenv("NOTIFY_SOCKET", n.name)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    yield n
    n.sock.close()


def test_ready_after_first_sync_then_reload_then_stopping(hdnsd, notify, tmp_path):
    eps = tmp_path / "eps.json"  # missing at start: not ready, so no READY=1 yet
    d = hdnsd.start(eps, wait="health")
    time.sleep(0.3)
    assert not notify.seen("READY=1"), notify.messages
    assert any("STATUS=starting" in m for m in notify.messages)
    status, _, _ = http_get(d.metrics_port, "/ready")
    assert status == 503
    copy_fixture("cluster.json", eps)
    assert poll(lambda: notify.seen("READY=1"), 3), notify.messages
    ready = notify.seen("READY=1")[0]
    assert "STATUS=serving" in ready and f"MAINPID={d.pid}" in ready
    assert http_get(d.metrics_port, "/ready")[0] == 200  # READY=1 means what /ready means
    # Watchdog: WATCHDOG_USEC=200 ms, pings every 100 ms.
    n0 = len(notify.seen("WATCHDOG=1"))
    time.sleep(0.5)
    assert len(notify.seen("WATCHDOG=1")) - n0 >= 3
    # Reload: RELOADING=1, then READY=1 again.
    notify.messages.clear()
    d.signal(signal.SIGHUP)
    assert poll(lambda: len(notify.seen("READY=1")) >= 1, 2), notify.messages
    kinds = [m.split("=", 1)[0] for m in notify.messages if not m.startswith(("WATCHDOG", "STATUS"))]
    assert kinds[:2] == ["RELOADING", "READY"], notify.messages
    notify.messages.clear()
    d.signal(signal.SIGTERM)
    d.proc.wait(3)
    assert d.proc.returncode == 0
    assert notify.seen("STOPPING=1"), notify.messages


def _status(port, tcp=False):
    try:
        return dig(port, "web.shop.svc.cluster.local", "A", tcp=tcp, timeout=3).status
    except Exception:  # not up yet
        return None


# The exec wrapper systemd would be: fds to 3, 4, ...; LISTEN_PID = the pid that execs hdnsd.
_EXEC = """
import os, sys
fds = [int(x) for x in sys.argv[1].split(",")]
high = [os.dup(fd) for fd in fds]  # out of the way first: a source fd may itself be 3 or 4
for i, fd in enumerate(high):
    if fd != 3 + i:
        os.dup2(fd, 3 + i)
    os.set_inheritable(3 + i, True)  # os.dup's copy is close-on-exec, and dup2(fd, fd) keeps that
os.environ["LISTEN_PID"] = str(os.getpid())
os.environ["LISTEN_FDS"] = str(len(fds))
os.execv(sys.argv[2], sys.argv[2:])
"""


def _start_activated(tmp_path, socks, listen):
    """Starts hdnsd with `socks` as fds 3, 4, ... and LISTEN_PID = its own pid."""
    fds = [s.fileno() for s in socks]
    args = [str(hdnsd_bin()), "--endpoints-file", str(DATA / "cluster.json"), "--resolv-conf", "none",
            "--user", "root"]
    for a in listen:
        args += ["--listen", a]
    log = open(tmp_path / "activated.log", "w+b")
    p = subprocess.Popen([sys.executable, "-c", _EXEC, ",".join(map(str, fds)), *args], pass_fds=fds, stdout=log,
                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO)
    return p, tmp_path / "activated.log"


def test_socket_activation_serves_passed_sockets(tmp_path):
    port = free_port()
    # Bound without SO_REUSEPORT: if hdnsd bound 127.0.0.1:port itself it would fail (in use).
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", port))
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind(("127.0.0.1", port))
    t.listen(64)
    p, log = _start_activated(tmp_path, [u, t], [f"127.0.0.1:{port}"])
    try:
        assert poll(lambda: _status(port) == "NOERROR", 5), log.read_text()
        assert _status(port, tcp=True) == "NOERROR"
        text = log.read_text()
        assert "2 sockets passed" in text and "sockets from systemd" in text, text
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(5)
        u.close()
        t.close()
    assert p.returncode == 0, log.read_text()


def test_socket_activation_unlisted_socket_is_served_too(tmp_path):
    port, other = free_port(), free_port()
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", other))  # not in --listen
    p, log = _start_activated(tmp_path, [u], [f"127.0.0.1:{port}"])
    try:
        assert poll(lambda: _status(other) == "NOERROR", 5), log.read_text()
        assert dig(port, "web.shop.svc.cluster.local", "A").status == "NOERROR"  # --listen bound as usual
        assert "although --listen does not name it" in log.read_text()
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(5)
        u.close()
