"""A real glibc stub resolver against hdnsd: resolv.conf is bind-mounted in a private mount
namespace (unshare -m), exactly as a pod sees it (search path, ndots:5), and getent resolves
through NSS. glibc only talks to port 53, so hdnsd also listens on 127.53.x.y:53, an address of
the loopback range that nothing else uses."""

import os
import random
import shutil
import subprocess

import pytest

from harness import DATA


def _need_namespaces():
    if os.geteuid() != 0:
        pytest.fail("this test needs root (unshare -m and mount --bind); CI runs as root")
    if not shutil.which("unshare") or not shutil.which("getent"):
        pytest.fail("unshare/getent missing: `make deps` installs util-linux and libc-bin")


def _getent(resolv_conf, *args, timeout=10):
    script = f'mount --bind "{resolv_conf}" /etc/resolv.conf && exec getent "$@"'
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                           "getent", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def pod_resolv(hdnsd, tmp_path):
    _need_namespaces()
    addr = f"127.53.{random.randint(1, 254)}.{random.randint(1, 254)}"
    d = hdnsd.start(DATA / "cluster.json", "--listen", f"{addr}:53")
    conf = tmp_path / "resolv.conf"
    conf.write_text(f"nameserver {addr}\n"
                    "search shop.svc.cluster.local svc.cluster.local cluster.local\n"
                    "options ndots:5 timeout:1 attempts:1\n")
    return d, conf


def test_glibc_resolves_a_headless_service_by_short_name_through_the_search_path(pod_resolv):
    _, conf = pod_resolv
    r = _getent(conf, "ahostsv4", "web")
    assert r.returncode == 0, r.stdout + r.stderr
    addrs = {line.split()[0] for line in r.stdout.splitlines() if line.strip()}
    assert addrs == {"10.250.1.10", "10.250.1.11", "10.250.1.12"}, r.stdout


def test_glibc_gets_a_and_aaaa_in_parallel_for_a_dual_stack_headless_service(pod_resolv):
    _, conf = pod_resolv
    r = _getent(conf, "ahosts", "pods6.shop.svc.cluster.local")
    assert r.returncode == 0, r.stdout + r.stderr
    addrs = {line.split()[0] for line in r.stdout.splitlines() if line.strip()}
    assert addrs == {"10.250.7.1", "fd00:250::7:1"}, r.stdout


def test_glibc_reverse_lookup_of_an_endpoint_ip(pod_resolv):
    _, conf = pod_resolv
    r = _getent(conf, "hosts", "10.250.1.10")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "web-0.web.shop.svc.cluster.local" in r.stdout


def test_glibc_gets_a_fast_clean_failure_for_a_name_hdnsd_does_not_serve(pod_resolv):
    _, conf = pod_resolv
    r = _getent(conf, "ahostsv4", "nosuchservice")
    assert r.returncode == 2, r.stdout + r.stderr  # "key not found": NXDOMAIN down the search path
    r = _getent(conf, "ahostsv4", "web.shop.svc.cluster.local.")
    assert r.returncode == 0
