"""Issue 6, observing it run: the whole /metrics exposition checked by a real parser (Prometheus'
own promtool), latency histograms by source, --log-format json, the sampled query log."""

import json
import shutil
import subprocess
import time

import pytest

from harness import dig, http_get, parse_metrics, poll

PROMTOOL = shutil.which("promtool")


def scrape(d):
    status, body, _ = http_get(d.metrics_port, "/metrics")
    assert status == 200
    return body


def duration_counts(text):
    """{source: count} from hdnsd_dns_query_duration_seconds_count."""
    out = {}
    for line in text.splitlines():
        if line.startswith("hdnsd_dns_query_duration_seconds_count{"):
            src = line.split('source="', 1)[1].split('"', 1)[0]
            out[src] = float(line.rsplit(" ", 1)[1])
    return out


@pytest.mark.skipif(PROMTOOL is None, reason="promtool missing (Debian package prometheus; make deps installs it)")
def test_promtool_accepts_the_whole_exposition(hdnsd):
    """Every family has HELP and TYPE, names and labels are valid, histograms are complete:
    promtool check metrics is the reference linter (exit 0, no complaint)."""
    d = hdnsd.start()
    for name in ("web", "nope", "www.example.com"):
        dig(d.port, name if "." in name else f"{name}.shop.svc.cluster.local", "A")
    dig(d.port, "web.shop.svc.cluster.local", "A", tcp=True)
    text = scrape(d)
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=20)
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), \
        f"promtool: rc={r.returncode}\n{r.stdout}{r.stderr}"
    # And it notices breakage (the oracle is not blind): a TYPE line removed.
    broken = text.replace("# TYPE hdnsd_dns_query_duration_seconds histogram\n", "", 1)
    broken = broken.replace("hdnsd_dns_query_duration_seconds_count", "hdnsd_dns_query_duration_seconds_count 1\nbad metric", 1)
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=broken, capture_output=True, text=True, timeout=20)
    assert r.returncode != 0


def test_every_family_has_help_and_type(hdnsd):
    d = hdnsd.start()
    dig(d.port, "web.shop.svc.cluster.local", "A")
    families, helps, types = set(), set(), set()
    for line in scrape(d).splitlines():
        if line.startswith("# HELP "):
            helps.add(line.split()[2])
        elif line.startswith("# TYPE "):
            types.add(line.split()[2])
        elif line and not line.startswith("#"):
            name = line.split("{", 1)[0].split(" ", 1)[0]
            for suffix in ("_bucket", "_sum", "_count"):
                if name.endswith(suffix) and name[: -len(suffix)] in types:
                    name = name[: -len(suffix)]
            families.add(name)
    assert families <= helps, f"no HELP: {sorted(families - helps)}"
    assert families <= types, f"no TYPE: {sorted(families - types)}"


def test_latency_histogram_by_source(hdnsd):
    """A cluster answer counts under source=view, a REFUSED (no upstream) under source=local."""
    d = hdnsd.start()
    before = duration_counts(scrape(d))
    for _ in range(5):
        assert dig(d.port, "web.shop.svc.cluster.local", "A").status == "NOERROR"
    assert dig(d.port, "www.example.com", "A").status == "REFUSED"
    after = duration_counts(scrape(d))
    assert after["view"] - before.get("view", 0) == 5
    assert after["local"] - before.get("local", 0) == 1
    assert set(after) == {"view", "cache", "upstream", "local"}


def test_log_format_json_every_line_is_an_object(hdnsd):
    d = hdnsd.start(None, "--log-format", "json", "--log-level", "debug", wait="health")
    dig(d.port, "web.shop.svc.cluster.local", "A")
    d.stop()
    lines = [l for l in d.log().splitlines() if l.strip()]
    assert len(lines) >= 3
    for line in lines:
        obj = json.loads(line)  # raises on any line that is not one JSON object
        assert {"ts", "level", "msg"} <= set(obj), line
        assert obj["level"] in ("error", "warn", "info", "debug")


def test_query_log_off_by_default(hdnsd):
    d = hdnsd.start()
    dig(d.port, "web.shop.svc.cluster.local", "A")
    time.sleep(0.1)
    assert "query: client=" not in d.log()


def test_query_log_fields_and_sampling(hdnsd):
    d = hdnsd.start(None, "--query-log", "--query-log-sample", "4", "--log-format", "json", wait="health")
    for _ in range(20):
        dig(d.port, "web.shop.svc.cluster.local", "SRV")
    assert poll(lambda: d.log().count('"msg":"query"') >= 5, 2)
    time.sleep(0.2)
    entries = [json.loads(l) for l in d.log().splitlines() if '"msg":"query"' in l]
    # 20 queries (plus wait_up's probe query over dig) at 1 in 4: 5 or 6 lines.
    assert 5 <= len(entries) <= 6, len(entries)
    e = entries[-1]
    assert e["client"].startswith("127.0.0.1:")
    assert e["transport"] == "udp"
    assert e["qname"] == "web.shop.svc.cluster.local."
    assert e["qtype"] == "SRV"
    assert e["rcode"] in ("NOERROR", "NXDOMAIN")
    assert e["source"] == "view"
    assert 0 <= e["duration_us"] < 1_000_000
