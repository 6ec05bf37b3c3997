"""Command line and JSON config: bad input exits 2 with one line naming it; --help/--version exit
0; a config file sets values and flags override them."""

import socket

from harness import DATA, Daemon, config_file, dig, fqdn, free_port, run_hdnsd

CONTRACT_FLAGS = ["--config", "--listen", "--cluster-domain", "--endpoints-file", "--ttl",
                  "--metrics", "--log-level", "--help", "--version"]


def base_args():
    return ["--listen", f"127.0.0.1:{free_port()}", "--endpoints-file", DATA / "cluster.json"]


def expect_usage_error(p, *mentions):
    """Exit 2, exactly one non-empty line on stderr, naming what was wrong."""
    assert p.returncode == 2, f"exit {p.returncode}, expected 2; stderr:\n{p.stderr}"
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, f"expected ONE line on stderr, got {len(lines)}:\n{p.stderr}"
    assert any(m.lower() in lines[0].lower() for m in mentions), \
        f"stderr line does not name {mentions}: {lines[0]!r}"


# ---- flags ------------------------------------------------------------------------------------

def test_unknown_flag():
    expect_usage_error(run_hdnsd(*base_args(), "--nope"), "--nope")


def test_ttl_not_a_number():
    expect_usage_error(run_hdnsd(*base_args(), "--ttl", "abc"), "ttl")


def test_ttl_negative():
    expect_usage_error(run_hdnsd(*base_args(), "--ttl", "-1"), "ttl")


def test_ttl_missing_value():
    expect_usage_error(run_hdnsd(*base_args(), "--ttl"), "ttl")


def test_listen_nonsense():
    expect_usage_error(run_hdnsd("--listen", "nonsense", "--endpoints-file", DATA / "cluster.json"),
                       "listen", "nonsense")


def test_listen_port_out_of_range():
    expect_usage_error(run_hdnsd("--listen", "127.0.0.1:70000",
                                 "--endpoints-file", DATA / "cluster.json"), "listen", "70000")


def test_listen_ipv6_without_brackets():
    # The contract spells IPv6 as [::1]:5353; "::1:5353" is ambiguous.
    expect_usage_error(run_hdnsd("--listen", "::1:5353", "--endpoints-file", DATA / "cluster.json"),
                       "listen", "::1:5353")


def test_bad_log_level():
    expect_usage_error(run_hdnsd(*base_args(), "--log-level", "loud"), "log-level", "loud")


def test_bad_metrics_address():
    expect_usage_error(run_hdnsd(*base_args(), "--metrics", "localhost"), "metrics", "localhost")


def test_bad_cluster_domain():
    expect_usage_error(run_hdnsd(*base_args(), "--cluster-domain", "bad..domain"),
                       "cluster-domain", "bad..domain")


def test_help_exits_0_and_lists_flags():
    p = run_hdnsd("--help")
    assert p.returncode == 0, f"exit {p.returncode}\n{p.stdout}{p.stderr}"
    out = p.stdout + p.stderr
    missing = [f for f in CONTRACT_FLAGS if f not in out]
    assert not missing, f"--help does not mention {missing}:\n{out}"


def test_version_exits_0():
    p = run_hdnsd("--version")
    assert p.returncode == 0, f"exit {p.returncode}\n{p.stdout}{p.stderr}"
    assert (p.stdout + p.stderr).strip(), "--version printed nothing"


# ---- config file ------------------------------------------------------------------------------

def test_config_bad_value(tmp_path):
    cfg = config_file(tmp_path / "c.json", ttl="abc")
    expect_usage_error(run_hdnsd("--config", cfg, *base_args()), "ttl")


def test_config_unknown_key(tmp_path):
    # A typo must not be silently ignored: "tll" is a bad config name, as --tll is a bad flag.
    cfg = config_file(tmp_path / "c.json", tll=7)
    expect_usage_error(run_hdnsd("--config", cfg, *base_args()), "tll")


def test_config_not_json(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text('{"ttl": 5,')
    expect_usage_error(run_hdnsd("--config", cfg, *base_args()), "c.json", "config", "json")


def test_config_missing_file(tmp_path):
    expect_usage_error(run_hdnsd("--config", tmp_path / "absent.json", *base_args()),
                       "absent.json", "config")


def _ttls(port, name="api"):
    r = dig(port, fqdn(name), "A")
    assert r.status == "NOERROR" and r.answer, r.describe()
    return {a.ttl for a in r.answer}


def test_config_file_sets_everything(hdnsd, tmp_path):
    port, mport = free_port(), free_port()
    cfg = config_file(tmp_path / "c.json", listen=[f"127.0.0.1:{port}"], ttl=17,
                      cluster_domain="cluster.local", endpoints_file=str(DATA / "cluster.json"),
                      metrics=f"127.0.0.1:{mport}", log_level="info")
    d = Daemon(["--config", cfg], tmp_path, "cfg", port, mport)
    hdnsd.daemons.append(d)
    d.wait_up()
    assert _ttls(port) == {17}


def test_flag_overrides_config_ttl(hdnsd, tmp_path):
    cfg = config_file(tmp_path / "c.json", ttl=17)
    d = hdnsd.start(DATA / "cluster.json", "--config", cfg, "--ttl", "23")
    assert _ttls(d.port) == {23}


def test_config_ttl_without_flag(hdnsd, tmp_path):
    cfg = config_file(tmp_path / "c.json", ttl=17)
    d = hdnsd.start(DATA / "cluster.json", "--config", cfg)
    assert _ttls(d.port) == {17}


def test_ttl_flag_applies_to_headless_and_srv(hdnsd):
    d = hdnsd.start(DATA / "cluster.json", "--ttl", "42")
    r = dig(d.port, fqdn("web"), "A")
    assert {a.ttl for a in r.answer} == {42}, r.describe()
    r = dig(d.port, "_http._tcp.web.shop.svc.cluster.local.", "SRV")
    assert {a.ttl for a in r.answer} == {42}, r.describe()


def test_listen_flag_replaces_config_listen(hdnsd, tmp_path):
    cfg_port = free_port()
    cfg = config_file(tmp_path / "c.json", listen=[f"127.0.0.1:{cfg_port}"])
    d = hdnsd.start(DATA / "cluster.json", "--config", cfg)  # start() passes --listen <its port>
    r = dig(d.port, fqdn("api"), "A")
    assert r.status == "NOERROR", r.describe()
    r = dig(cfg_port, fqdn("api"), "A")
    assert r.status is None, "the --listen flag overrides the config's listen list:\n" + r.describe()


def test_listen_repeated(hdnsd):
    other = free_port()
    d = hdnsd.start(DATA / "cluster.json", "--listen", f"127.0.0.1:{other}")
    for port in (d.port, other):
        for tcp in (False, True):
            r = dig(port, fqdn("api"), "A", tcp=tcp)
            assert r.status == "NOERROR" and r.rdatas("A") == ["10.96.5.10"], r.describe()


def test_cluster_domain_flag(hdnsd):
    d = hdnsd.start(DATA / "cluster.json", "--cluster-domain", "k8s.example")
    r = dig(d.port, "api.shop.svc.k8s.example.", "A")
    assert r.status == "NOERROR" and r.rdatas("A") == ["10.96.5.10"], r.describe()
    assert "aa" in r.flags
    r = dig(d.port, "dns-version.k8s.example.", "TXT")
    assert r.rdatas("TXT") == ['"1.1.0"'], r.describe()
    r = dig(d.port, fqdn("api"), "A")  # cluster.local is now outside the zone
    assert r.status == "REFUSED", r.describe()


def test_listen_port_in_use_fails_at_startup(tmp_path):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    try:
        p = run_hdnsd("--listen", f"127.0.0.1:{port}", "--endpoints-file", DATA / "cluster.json")
        assert p.returncode != 0, "binding a busy port must fail at startup"
        assert p.stderr.strip(), "startup failure without a message"
    finally:
        s.close()
