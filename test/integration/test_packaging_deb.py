"""The Debian package built by `make deb` (HDNSD_DEB=path/to/hdnsd_<version>_<arch>.deb).

Building the package is a full -O2 build by dpkg-buildpackage (~5 minutes on 2 cores), too slow for
`make test` itself: .ci/run runs `make deb` first and exports HDNSD_DEB, so these tests then run
inside `make test` and count in its total; `make test-packaging` does both for a developer. Without
HDNSD_DEB they are skipped. The package is unpacked into a scratch root (`dpkg -x`), never
installed on this machine; lintian runs in `make deb` (--fail-on error,warning).
"""
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from harness import free_port

REPO = Path(__file__).resolve().parents[2]
DEB = os.environ.get("HDNSD_DEB", "")
VERSION = re.search(r"^VERSION\s*:=\s*(\S+)", (REPO / "Makefile").read_text(), re.M).group(1)

pytestmark = pytest.mark.skipif(not DEB, reason="HDNSD_DEB is not set (make test-packaging, or .ci/run, builds the .deb)")


def dpkg_deb(*args):
    return subprocess.run(["dpkg-deb", *args], capture_output=True, text=True, check=True, timeout=60).stdout


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("debroot")
    subprocess.run(["dpkg", "-x", DEB, str(r)], check=True, timeout=60)
    return r


def test_file_name_and_control_fields():
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    assert Path(DEB).name == f"hdnsd_{VERSION}_{arch}.deb"
    fields = dpkg_deb("-f", DEB, "Package", "Version", "Architecture", "Depends", "Section")
    assert "Package: hdnsd" in fields and f"Version: {VERSION}" in fields and f"Architecture: {arch}" in fields
    depends = re.search(r"^Depends: (.*)$", fields, re.M).group(1)
    for lib in ("libuv1", "libc-ares2", "libcurl4", "libhttp-parser2.9", "libc6", "libstdc++6"):
        assert re.search(r"\b" + re.escape(lib) + r"\b", depends), f"{lib} missing from Depends: {depends}"


def test_contents_and_conffile(tmp_path):
    listing = dpkg_deb("-c", DEB)
    for path in ("./usr/sbin/hdnsd", "./etc/hdnsd/hdnsd.json", "./lib/systemd/system/hdnsd.service",
                 "./lib/systemd/system/hdnsd.socket", "./usr/share/man/man8/hdnsd.8.gz",
                 "./usr/share/doc/hdnsd/copyright", "./usr/share/doc/hdnsd/examples/link-local.conf",
                 "./usr/share/doc/hdnsd/examples/hdnsd.yaml"):
        assert re.search(r"\s" + re.escape(path) + r"$", listing, re.M), f"{path} is not in the package"
    assert re.search(r"^-rwxr-xr-x root/root .* \./usr/sbin/hdnsd$", listing, re.M)
    control = tmp_path / "control"
    subprocess.run(["dpkg-deb", "-e", DEB, str(control)], check=True)
    assert (control / "conffiles").read_text().split() == ["/etc/hdnsd/hdnsd.json"]
    # The service is enabled on install; the socket unit is shipped but left to the administrator.
    # (--no-enable: the socket is enabled again on upgrade only if the administrator had enabled it.)
    postinst = (control / "postinst").read_text()
    assert "deb-systemd-helper enable 'hdnsd.service'" in postinst
    assert re.search(r"deb-systemd-invoke \$_dh_action 'hdnsd\.service'", postinst)
    assert not re.search(r"deb-systemd-invoke [^\n]*hdnsd\.socket", postinst), postinst
    assert "deb-systemd-helper debian-installed 'hdnsd.socket'" in postinst, postinst


def test_installed_binary_runs(root):
    exe = root / "usr/sbin/hdnsd"
    r = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and r.stdout.strip() == f"hdnsd {VERSION}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    r = subprocess.run([str(exe), "--config", str(root / "etc/hdnsd/hdnsd.json"), "--check-config"],
                       capture_output=True, text=True, timeout=10, env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["listen"] == ["127.0.0.1:53"]


def test_installed_binary_serves_with_the_packaged_config(root):
    exe = root / "usr/sbin/hdnsd"
    port, mport = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    p = subprocess.Popen([str(exe), "--config", str(root / "etc/hdnsd/hdnsd.json"), "--listen", f"127.0.0.1:{port}",
                          "--metrics", f"127.0.0.1:{mport}", "--endpoints-file", str(REPO / "examples/demo-cluster.json"),
                          "--resolv-conf", "none", "--state-file", f"/tmp/hdnsd-deb-test-{port}.json"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        answer = ""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and p.poll() is None:
            r = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "+short", "+tries=1", "+time=1",
                                "web.demo.svc.cluster.local", "A"], capture_output=True, text=True)
            answer = r.stdout
            if "10.244.1.10" in answer:
                break
            time.sleep(0.1)
        assert set(answer.split()) == {"10.244.1.10", "10.244.1.11", "10.244.1.12"}, answer
        with urllib.request.urlopen(f"http://127.0.0.1:{mport}/health", timeout=5) as resp:
            assert resp.status == 200
    finally:
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=10)
        state = Path(f"/tmp/hdnsd-deb-test-{port}.json")
        written = state.exists()
        state.unlink(missing_ok=True)
    assert p.returncode == 0, out
    assert written, out  # the packaged config names a state file: written on SIGTERM


def test_installed_units_verify_with_the_installed_man_page(root, tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    units = tmp_path / "units"
    units.mkdir()
    exe = root / "usr/sbin/hdnsd"
    for name in ("hdnsd.service", "hdnsd.socket"):
        (units / name).write_text((root / "lib/systemd/system" / name).read_text().replace("/usr/sbin/hdnsd", str(exe)))
    # Documentation=man:hdnsd(8) is checked against the page the package installs.
    env = dict(os.environ, MANPATH=str(root / "usr/share/man") + ":")
    r = subprocess.run(["systemd-analyze", "verify", str(units / "hdnsd.service"), str(units / "hdnsd.socket")],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0 and (r.stdout + r.stderr).strip() == "", r.stdout + r.stderr
