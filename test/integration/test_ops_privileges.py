"""Issue 6, privileges: started as root, hdnsd binds, then runs as --user (default nobody)."""

import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from harness import DATA, REPO, dig, free_port, hdnsd_bin, poll

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (tests the drop from root)")


def uids(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return [int(x) for x in line.split()[1:]]
    return None


def world_readable_copy():
    """The endpoints file in a directory nobody can read (pytest's tmp_path is root-only)."""
    d = Path(tempfile.mkdtemp(prefix="hdnsd-priv-"))
    d.chmod(0o755)
    f = d / "cluster.json"
    f.write_text((DATA / "cluster.json").read_text())
    f.chmod(0o644)
    return d, f


@pytest.mark.parametrize("user_args,uid", [([], 65534), (["--user", "nobody"], 65534), (["--user", "65534"], 65534)],
                         ids=["default", "name", "uid"])
def test_root_drops_to_user_after_binding(tmp_path, user_args, uid):
    d, f = world_readable_copy()
    port = free_port()
    log = open(tmp_path / "log", "w+b")
    p = subprocess.Popen([str(hdnsd_bin()), "--listen", f"127.0.0.1:{port}", "--endpoints-file", str(f),
                          "--resolv-conf", "none", *user_args], stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        def up():
            try:
                return dig(port, "web.shop.svc.cluster.local", "A", timeout=3).status == "NOERROR"
            except Exception:
                return False
        assert poll(up, 5), (tmp_path / "log").read_text()
        assert uids(p.pid) == [uid] * 4  # real, effective, saved, filesystem
        status = Path(f"/proc/{p.pid}/status").read_text()
        groups = [l for l in status.splitlines() if l.startswith("Groups:")][0].split()[1:]
        assert "0" not in groups, status
        assert "CapEff:\t0000000000000000" in status
        # Files read later are read as the new user: a change of the endpoints file still loads.
        f.write_text('{"apiVersion": "v1", "kind": "List", "items": []}')
        assert poll(lambda: dig(port, "web.shop.svc.cluster.local", "A").status == "NXDOMAIN", 3)
        assert "now running as nobody" in (tmp_path / "log").read_text()
    finally:
        p.terminate()
        p.wait(5)
        f.unlink()
        d.rmdir()
    assert p.returncode == 0, (tmp_path / "log").read_text()


def test_user_root_keeps_root(hdnsd):
    d = hdnsd.start()  # the harness passes --user root when run as root
    assert uids(d.pid) == [0, 0, 0, 0]


def test_unknown_user_is_a_startup_error(tmp_path):
    r = subprocess.run([str(hdnsd_bin()), "--listen", f"127.0.0.1:{free_port()}", "--resolv-conf", "none",
                        "--user", "no-such-user-hdnsd"], capture_output=True, text=True, timeout=5, cwd=REPO)
    assert r.returncode == 1
    assert "--user no-such-user-hdnsd: no such user" in r.stderr
