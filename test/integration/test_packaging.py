"""Packaging, checked without building a package: the systemd units (systemd-analyze), the
Kubernetes manifests (parsed with python3-yaml), the Dockerfile (no engine here: parsed), the man
page (groff) and `make install`. The .deb itself: test_packaging_deb.py (after `make deb`).

kubectl is not used: `kubectl create --dry-run=client` still asks an API server for discovery (the
REST mapping of each kind), even with --validate=false, so it cannot run offline.
"""
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import hdnsd_bin

REPO = Path(__file__).resolve().parents[2]
SYSTEMD = REPO / "systemd"
MANIFEST = REPO / "packaging" / "kubernetes" / "hdnsd.yaml"
DOCKERFILE = REPO / "packaging" / "container" / "Dockerfile"
MAN = REPO / "man" / "hdnsd.8"


def unit_entries(path):
    """A unit file as {(section, key): [values...]} (keys repeat in systemd units)."""
    out, section = {}, None
    for raw in Path(path).read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.setdefault((section, key.strip()), []).append(value.strip())
    return out


def analyze(*args, env=None):
    r = subprocess.run(["systemd-analyze", *args], capture_output=True, text=True, timeout=60, env=env)
    return r.returncode, (r.stdout + r.stderr).strip()


@pytest.fixture
def unit_dir(tmp_path):
    """The units with ExecStart pointing at the built binary (verify checks it is executable)."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian's systemd package; make deps)")
    d = tmp_path / "units"
    (d / "hdnsd.service.d").mkdir(parents=True)
    for name in ("hdnsd.service", "hdnsd.socket"):
        (d / name).write_text((SYSTEMD / name).read_text().replace("/usr/sbin/hdnsd", str(hdnsd_bin())))
    (d / "hdnsd.service.d" / "link-local.conf").write_text(
        (SYSTEMD / "link-local.conf").read_text().replace("/usr/sbin/hdnsd", str(hdnsd_bin())))
    return d


# --------------------------------------------------------------------------------------------
# systemd


def test_units_pass_systemd_analyze_verify(unit_dir):
    # No PID 1 systemd is needed for verify; it prints warnings (unknown keys, bad values) and
    # still exits 0, so the output must be empty too. The man page check is
    # test_packaging_deb.py's (against the installed page).
    rc, out = analyze("verify", "--man=no", str(unit_dir / "hdnsd.service"), str(unit_dir / "hdnsd.socket"))
    assert rc == 0 and out == "", out


def test_verify_would_catch_a_bad_key(unit_dir):
    with open(unit_dir / "hdnsd.service.d" / "link-local.conf", "a") as f:
        f.write("ProtectSytem=strict\n")  # a typo: the drop-in is read, and verify says so
    rc, out = analyze("verify", "--man=no", str(unit_dir / "hdnsd.service"))
    assert "ProtectSytem" in out


def test_service_is_notify_with_watchdog_and_hardened():
    u = unit_entries(SYSTEMD / "hdnsd.service")
    one = lambda k: u[("Service", k)][-1]
    assert one("Type") == "notify"
    assert one("NotifyAccess") == "main"
    assert re.fullmatch(r"\d+s", one("WatchdogSec"))
    assert one("ExecStart").startswith("/usr/sbin/hdnsd --config /etc/hdnsd/hdnsd.json")
    assert one("ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one("DynamicUser") == "yes"
    # Port 53 and nothing else: CAP_NET_ADMIN only through the link-local drop-in.
    assert one("AmbientCapabilities") == "CAP_NET_BIND_SERVICE"
    assert one("CapabilityBoundingSet") == "CAP_NET_BIND_SERVICE"
    for key, value in [("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                       ("PrivateTmp", "yes"), ("SystemCallArchitectures", "native")]:
        assert one(key) == value, key
    assert set(one("RestrictAddressFamilies").split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert "@system-service" in u[("Service", "SystemCallFilter")]
    assert re.fullmatch(r"\d+[KMG]", one("MemoryMax"))
    assert int(one("LimitNOFILE")) >= 4096
    # A socket unit of the same name hands its fds over by default; Sockets= would force it on.
    assert ("Service", "Sockets") not in u
    assert u[("Install", "WantedBy")] == ["multi-user.target"]


def test_link_local_dropin_adds_exactly_what_setup_interface_needs():
    u = unit_entries(SYSTEMD / "link-local.conf")
    starts = u[("Service", "ExecStart")]
    assert starts[0] == "" and "--setup-interface" in starts[1] and "--listen 169.254.20.10:53" in starts[1]
    assert set(u[("Service", "AmbientCapabilities")][0].split()) == {"CAP_NET_ADMIN", "CAP_NET_RAW"}
    assert set(u[("Service", "CapabilityBoundingSet")][0].split()) == {"CAP_NET_ADMIN", "CAP_NET_RAW"}
    assert u[("Service", "RestrictAddressFamilies")] == ["AF_NETLINK"]


def test_service_exposure_score(unit_dir):
    rc, out = analyze("security", "--offline=yes", str(unit_dir / "hdnsd.service"))
    m = re.search(r"Overall exposure level for hdnsd.service: ([0-9.]+)", out)
    assert m, out[-2000:]
    assert float(m.group(1)) <= 2.5, out[-3000:]  # 0 = locked down, 10 = unprotected; ~1.8 today


def test_socket_unit_listens_on_loopback_53_udp_and_tcp():
    u = unit_entries(SYSTEMD / "hdnsd.socket")
    assert u[("Socket", "ListenDatagram")] == ["127.0.0.1:53"]
    assert u[("Socket", "ListenStream")] == ["127.0.0.1:53"]
    assert u[("Install", "WantedBy")] == ["sockets.target"]


# --------------------------------------------------------------------------------------------
# Kubernetes


@pytest.fixture(scope="module")
def docs():
    yaml = pytest.importorskip("yaml", reason="python3-yaml is not installed (make deps)")
    out = {}
    for d in yaml.safe_load_all(MANIFEST.read_text()):
        assert d["kind"] not in out, f"two {d['kind']}s"
        out[d["kind"]] = d
    return out


def test_manifest_kinds_and_namespace(docs):
    assert set(docs) == {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet"}
    for kind in ("ServiceAccount", "ConfigMap", "DaemonSet"):
        assert docs[kind]["metadata"]["namespace"] == "kube-system"


def test_rbac_is_list_watch_of_services_and_endpointslices_only(docs):
    granted = set()
    for rule in docs["ClusterRole"]["rules"]:
        assert set(rule["verbs"]) == {"list", "watch"}, rule
        for group in rule["apiGroups"]:
            for res in rule["resources"]:
                granted.add((group, res))
    # v1 Endpoints: the fallback when the EndpointSlice API is absent (README, Kubernetes API).
    assert granted == {("", "services"), ("", "endpoints"), ("discovery.k8s.io", "endpointslices")}
    b = docs["ClusterRoleBinding"]
    assert b["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": docs["ClusterRole"]["metadata"]["name"]}
    assert b["subjects"] == [{"kind": "ServiceAccount", "name": docs["ServiceAccount"]["metadata"]["name"],
                              "namespace": "kube-system"}]
    assert "# - apiGroups" in MANIFEST.read_text() and "pods" in MANIFEST.read_text()  # the commented autopath rule


def test_daemonset_node_local_dns_shape(docs):
    ds = docs["DaemonSet"]
    spec, pod = ds["spec"], ds["spec"]["template"]["spec"]
    assert spec["selector"]["matchLabels"].items() <= ds["spec"]["template"]["metadata"]["labels"].items()
    # One pod per node: maxUnavailable counts nodes, so 0 keeps DNS on every node; the surge pod
    # starts beside the old one (SO_REUSEPORT) before the old one goes.
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    assert pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "Default"
    assert pod["priorityClassName"] == "system-node-critical"
    assert pod["serviceAccountName"] == docs["ServiceAccount"]["metadata"]["name"]
    assert {"operator": "Exists"} in pod["tolerations"]  # every taint
    (c,) = pod["containers"]
    assert "ports" not in c  # on the host network they would be hostPorts and block the surge
    env = {e["name"]: e for e in c["env"]}
    assert env["NODE_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert set(c["resources"]["requests"]) == {"cpu", "memory"}
    assert "memory" in c["resources"]["limits"]
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert set(sc["capabilities"]["add"]) <= {"NET_BIND_SERVICE", "NET_ADMIN", "NET_RAW"}
    assert "privileged" not in sc or sc["privileged"] is False


def test_daemonset_probes_and_config_agree(docs, tmp_path):
    pod = docs["DaemonSet"]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    cfg = json.loads(docs["ConfigMap"]["data"]["hdnsd.json"])
    assert cfg["listen"] == ["169.254.20.10:53"] and cfg["setup-interface"] is True
    metrics_port = int(cfg["metrics"].rsplit(":", 1)[1])
    assert c["livenessProbe"]["httpGet"] == {"path": "/health", "port": metrics_port}
    assert c["readinessProbe"]["httpGet"] == {"path": "/ready", "port": metrics_port}
    # The config file the args name is the ConfigMap's key, mounted where the args say.
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    vols = {v["name"]: v for v in pod["volumes"]}
    cfg_vol = next(n for n, v in vols.items() if "configMap" in v)
    assert vols[cfg_vol]["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"]
    path = c["args"][c["args"].index("--config") + 1]
    assert path == mounts[cfg_vol] + "/hdnsd.json"
    # And hdnsd itself accepts that configuration (every key known, every value valid).
    f = tmp_path / "hdnsd.json"
    f.write_text(docs["ConfigMap"]["data"]["hdnsd.json"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    r = subprocess.run([str(hdnsd_bin()), "--config", str(f), "--check-config"], capture_output=True, text=True,
                       timeout=10, env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["setup-interface"] == "true"


# --------------------------------------------------------------------------------------------
# Dockerfile (parsed: there is no container engine here)


def dockerfile_instructions():
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_stages_copies_and_user():
    stages, current, users = [], None, {}
    for word, rest in dockerfile_instructions():
        if word == "FROM":
            m = re.fullmatch(r"(\S+)(?: AS (\S+))?", rest, re.I)
            assert m, rest
            image, name = m.group(1), m.group(2)
            assert image in stages or image.startswith("debian:12"), f"FROM {image}: Debian 12 or an earlier stage"
            current = name or image
            stages.append(current)
        elif word == "COPY":
            args = rest.split()
            opts = [a for a in args if a.startswith("--")]
            srcs = [a for a in args if not a.startswith("--")][:-1]
            src_stage = next((o.split("=", 1)[1] for o in opts if o.startswith("--from=")), None)
            if src_stage:
                assert src_stage in stages[:-1], f"COPY --from={src_stage}: no such earlier stage"
            else:
                for s in srcs:  # the build context is the repository root
                    assert (REPO / s).exists(), f"COPY {s}: not in the repository"
        elif word == "USER":
            users[current] = rest
    assert len(stages) >= 2, "multi-stage: a build stage and a runtime stage"
    final = stages[-1]
    assert final in users, "the runtime stage sets USER"
    uid = users[final].split(":")[0]
    assert uid not in ("0", "root"), users[final]


def test_dockerfile_runtime_stage_installs_every_library_hdnsd_needs():
    # Each NEEDED soname of the binary → the Debian package that ships it; it must be installed
    # in the runtime stage or already be in debian:12-slim (libc6, libstdc++6, libgcc-s1).
    if shutil.which("objdump") is None:
        pytest.skip("objdump (binutils) is not installed")
    needed = re.findall(r"NEEDED\s+(\S+)", subprocess.run(["objdump", "-p", str(hdnsd_bin())], capture_output=True,
                                                            text=True, check=True).stdout)
    assert needed
    ldconfig = subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True, text=True, check=True).stdout
    instrs = dockerfile_instructions()
    last_from = max(i for i, (w, _) in enumerate(instrs) if w == "FROM")
    runtime_runs = " ".join(r for w, r in instrs[last_from:] if w == "RUN")
    in_slim = {"libc6", "libstdc++6", "libgcc-s1"}
    # A SANITIZE build links the sanitizer runtimes; the image ships the normal build.
    needed = [n for n in needed if not re.match(r"lib(asan|ubsan|tsan|lsan)\.so", n)]
    for soname in needed:
        m = re.search(r"^\s*" + re.escape(soname) + r" \(libc6,x86-64\) => (\S+)", ldconfig, re.M)
        assert m, f"{soname} not found by ldconfig"
        real = os.path.realpath(m.group(1))  # merged /usr: dpkg may know it as /lib/...
        owners = [subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
                  for p in (real, re.sub(r"^/usr/lib/", "/lib/", real))]
        found = [o.stdout for o in owners if o.returncode == 0]
        assert found, f"no package owns {real}"
        pkg = found[0].split(":")[0]
        assert pkg in in_slim or re.search(r"\b" + re.escape(pkg) + r"\b", runtime_runs), \
            f"{soname} comes from {pkg}, which the runtime stage does not install"


# --------------------------------------------------------------------------------------------
# Man page and make install


def test_man_page_renders_cleanly_and_lists_every_option():
    r = subprocess.run(["groff", "-man", "-ww", "-z", str(MAN)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    help_text = subprocess.run([str(hdnsd_bin()), "--help"], capture_output=True, text=True, check=True).stdout
    options = set(re.findall(r"^\s+(--[a-z0-9-]+)", help_text, re.M)) - {"--help", "--version", "--check-config"}
    assert re.search(r"\\fB\\-\\-check\\-config\\fR|\\-\\-check\\-config", MAN.read_text())
    assert len(options) > 10
    page = MAN.read_text().replace("\\-", "-")
    missing = sorted(o for o in options if not re.search(r"\\fB" + re.escape(o) + r"\\fR", page))
    assert not missing, (f"{missing}: in --help but not in man/hdnsd.8; add a row to README's option "
                         "table and run python3 man/gen_options.py build/hdnsd")


def test_make_install_into_destdir(tmp_path):
    dest = tmp_path / "root"
    build = hdnsd_bin().parent
    # -o: take the binary as it is (make test built it), never rebuild it here.
    r = subprocess.run(["make", "-s", "-C", str(REPO), f"BUILD={build}", f"DESTDIR={dest}", "PREFIX=/usr",
                        "-o", f"{build}/hdnsd", "install"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    for rel in ("usr/sbin/hdnsd", "lib/systemd/system/hdnsd.service", "lib/systemd/system/hdnsd.socket",
                "usr/share/man/man8/hdnsd.8", "etc/hdnsd/hdnsd.json"):
        assert (dest / rel).is_file(), rel
    assert os.access(dest / "usr/sbin/hdnsd", os.X_OK)
    # PREFIX=/usr/local rewrites ExecStart to match.
    r = subprocess.run(["make", "-s", "-C", str(REPO), f"BUILD={build}", f"DESTDIR={tmp_path / 'local'}",
                        "PREFIX=/usr/local", "-o", f"{build}/hdnsd", "install"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    svc = (tmp_path / "local/lib/systemd/system/hdnsd.service").read_text()
    assert "ExecStart=/usr/local/sbin/hdnsd --config" in svc


def test_debian_changelog_version_is_the_makefile_version():
    version = re.search(r"^VERSION\s*:=\s*(\S+)", (REPO / "Makefile").read_text(), re.M).group(1)
    first = (REPO / "packaging/debian/changelog").read_text().splitlines()[0]
    assert first.startswith(f"hdnsd ({version}) "), first
    assert os.access(REPO / "packaging/debian/rules", os.X_OK)


def test_service_execstart_speaks_the_notify_protocol(tmp_path):
    """The unit's own ExecStart line under a fake systemd: READY=1 after binding, WATCHDOG=1 at
    half of WatchdogSec, alive after ExecReload's SIGHUP, exit 0 on SIGTERM."""
    import socket
    import signal
    import time

    from harness import free_port

    u = unit_entries(SYSTEMD / "hdnsd.service")
    argv = u[("Service", "ExecStart")][-1].split()
    assert argv[0] == "/usr/sbin/hdnsd"
    cfg = tmp_path / "hdnsd.json"
    cfg.write_text((REPO / "packaging/debian/hdnsd.json").read_text())
    argv = [str(hdnsd_bin())] + [str(cfg) if a == "/etc/hdnsd/hdnsd.json" else a for a in argv[1:]]
    argv += ["--listen", f"127.0.0.1:{free_port()}", "--metrics", f"127.0.0.1:{free_port()}", "--resolv-conf", "none",
             "--endpoints-file", str(REPO / "examples/demo-cluster.json")]
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    # World-writable in a traversable directory, as systemd's own: hdnsd started as root (this
    # test) runs on as nobody after binding. The packaged config's --state-file (systemd's
    # StateDirectory) goes there too: it is written on SIGTERM, by nobody.
    import tempfile
    sock_dir = Path(tempfile.mkdtemp(prefix="hdnsd-notify-", dir="/tmp"))
    os.chmod(sock_dir, 0o777)
    assert json.loads(cfg.read_text())["state-file"] == "/var/lib/hdnsd/state.json"
    assert u[("Service", "StateDirectory")] == ["hdnsd"]
    argv += ["--state-file", str(sock_dir / "state.json")]
    sock_path = sock_dir / "notify"
    notify.bind(str(sock_path))
    os.chmod(sock_path, 0o777)
    notify.settimeout(0.2)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBERNETES_", "LISTEN_"))}
    env.update(NOTIFY_SOCKET=str(sock_path), WATCHDOG_USEC="1000000")  # WatchdogSec=1s
    # systemd sets WATCHDOG_PID to the main process; exec keeps the shell's pid.
    p = subprocess.Popen(["sh", "-c", 'WATCHDOG_PID=$$ exec "$@"', "sh", *argv], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not ("READY=1" in seen and "WATCHDOG=1" in seen):
            try:
                seen += notify.recv(4096).decode().split("\n")
            except socket.timeout:
                assert p.poll() is None, p.communicate()[0]
        assert "READY=1" in seen and "WATCHDOG=1" in seen, seen
        p.send_signal(signal.SIGHUP)  # ExecReload=/bin/kill -HUP $MAINPID
        time.sleep(0.3)
        assert p.poll() is None
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=10)
        assert p.returncode == 0, out
        assert "hdnsdState" in (sock_dir / "state.json").read_text(), out
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        notify.close()
        shutil.rmtree(sock_dir, ignore_errors=True)
