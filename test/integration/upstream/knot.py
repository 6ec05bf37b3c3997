"""A real authoritative upstream for the forwarding tests: Knot DNS (Debian package `knot`) on a
loopback port, with its zone and config generated in a temp dir, and its mod-stats counters read
through knotc (so a test can tell how many queries reached the upstream)."""

import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

ZONE = "example.test"


def knot_missing():
    for exe in ("knotd", "knotc"):
        if not shutil.which(exe) and not Path("/usr/sbin/" + exe).exists():
            return f"{exe} not installed (Debian package knot; make deps installs it)"
    return None


def _exe(name):
    return shutil.which(name) or "/usr/sbin/" + name


def zone_text(big_records=120):
    """The test zone: www (A), a CNAME, a TXT, and `big` with enough A records that its answer is
    larger than 1232 bytes (TC over UDP at the upstream, so the forwarder must retry over TCP)."""
    lines = [
        f"$ORIGIN {ZONE}.",
        "$TTL 300",
        f"@ IN SOA ns.{ZONE}. admin.{ZONE}. 1 3600 600 86400 60",
        "@ IN NS ns",
        "ns IN A 127.0.0.1",
        "www IN A 192.0.2.1",
        "www IN AAAA 2001:db8::1",
        "short 2 IN A 192.0.2.2",
        "alias IN CNAME www",
        'txt IN TXT "hello"',
        "multi IN A 198.51.100.1",  # four addresses: forwarded answers are rotated from the cache
        "multi IN A 198.51.100.2",
        "multi IN A 198.51.100.3",
        "multi IN A 198.51.100.4",
    ]
    for i in range(big_records):
        lines.append(f"big IN A 10.{i // 250}.{i % 250}.1")
    return "\n".join(lines) + "\n"


class Knot:
    def __init__(self, workdir, port):
        self.dir = Path(workdir) / f"knot-{port}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.conf = self.dir / "knot.conf"
        (self.dir / f"{ZONE}.zone").write_text(zone_text())
        self.conf.write_text(f"""server:
    rundir: "{self.dir}"
    listen: 127.0.0.1@{port}
    user: root:root
    pidfile: "{self.dir}/knot.pid"
    udp-max-payload: 1232
log:
  - target: stderr
    any: warning
database:
    storage: "{self.dir}/db"
control:
    listen: "{self.dir}/knot.sock"
mod-stats:
  - id: default
    request-protocol: on
    query-type: on
template:
  - id: default
    storage: "{self.dir}"
    global-module: mod-stats/default
    semantic-checks: off
zone:
  - domain: {ZONE}
    file: "{ZONE}.zone"
""")
        self.proc = None
        self.log = open(self.dir / "knotd.log", "w+b")

    def start(self):
        self.proc = subprocess.Popen([_exe("knotd"), "-c", str(self.conf)], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("knotd exited: " + self.log_text())
            if self._answers():
                return self
            time.sleep(0.05)
        raise RuntimeError("knotd did not answer within 5 s: " + self.log_text())

    def _answers(self):
        q = (b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00" + b"\x02ns\x07example\x04test\x00"
             + b"\x00\x01\x00\x01")
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.2)
        try:
            s.sendto(q, ("127.0.0.1", self.port))
            return len(s.recv(4096)) > 12
        except OSError:
            return False
        finally:
            s.close()

    def log_text(self):
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def stats(self):
        """{'udp4': n, 'tcp4': n, 'A': n, ...}: queries Knot has received (mod-stats)."""
        p = subprocess.run([_exe("knotc"), "-c", str(self.conf), "stats"], capture_output=True, text=True,
                           timeout=5)
        out = {}
        for m in re.finditer(r"mod-stats\.(?:request-protocol|query-type)\[([^\]]+)\] = (\d+)", p.stdout):
            out[m.group(1)] = int(m.group(2))
        return out

    def queries(self):
        s = self.stats()
        return s.get("udp4", 0) + s.get("tcp4", 0)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
