#!/usr/bin/env python3
"""Bounded-memory soak (issue 8, item 4): hdnsd under mixed load for DURATION seconds while its
RSS is sampled; shows whether every table and buffer has a bound (RSS flat once the bounded
tables are full) or something grows.

Load, all on 127.0.0.1 and bounded in time:
- queries (a separate process, ~QPS/s over UDP, 1 in 20 over TCP): cluster names that exist,
  cluster names that do not (random), forwarded names drawn from a space of 200,000 (more than
  --cache-size, so the cache fills and evicts), reverse names;
- API churn: the fake API server (test/fakeapi) with 500 headless services modifies slices at
  CHURN/s, and every 60 s adds and deletes 50 services;
- upstream flaps: the fake upstream answers for 20 s, then is silent for 10 s (timeouts,
  serve-stale, SERVFAIL), repeatedly.

Writes samples (t, RSS, cache entries/bytes, view, queries) to OUT/samples.csv and a summary
to OUT/summary.json; prints the summary. Usage: soak.py HDNSD_BIN OUT [--duration 600]
"""
import argparse
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "test" / "fakeapi"))
sys.path.insert(0, str(REPO / "test" / "integration"))
import kubeobjects as k  # noqa: E402
from upstream.fake_upstream import FakeUpstream  # noqa: E402

PY = "/usr/bin/python3"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


LOADGEN = r'''
import random, socket, struct, sys, time
port, qps, seconds = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
rnd = random.Random(1)
def wire(name):
    return b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".")) + b"\0"
def q(name, qtype=1, qid=0):
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 1) + wire(name) + struct.pack("!HH", qtype, 1) + \
        b"\0" + struct.pack("!HHIH", 41, 1232, 0, 0)
def name():
    r = rnd.random()
    if r < 0.4: return "svc-%d.ns-%d.svc.cluster.local" % (rnd.randrange(500), rnd.randrange(5)), 1
    if r < 0.5: return "nope-%d.ns-1.svc.cluster.local" % rnd.randrange(10**6), 1
    if r < 0.9: return "host-%d.example.com" % rnd.randrange(200000), rnd.choice((1, 28))
    return "%d.%d.64.10.in-addr.arpa" % (rnd.randrange(256), rnd.randrange(256)), 12
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.setblocking(False)
sent = got = 0
t0 = time.monotonic(); end = t0 + seconds
while time.monotonic() < end:
    target = (time.monotonic() - t0) * qps
    while sent < target:
        n, t = name()
        if sent % 20 == 0:
            try:
                c = socket.create_connection(("127.0.0.1", port), timeout=0.5)
                m = q(n, t, sent & 0xffff); c.sendall(struct.pack("!H", len(m)) + m); c.settimeout(0.5)
                c.recv(65535); c.close(); got += 1
            except OSError:
                pass
        else:
            try: u.sendto(q(n, t, sent & 0xffff), ("127.0.0.1", port))
            except OSError: pass
        sent += 1
    try:
        while True: u.recv(65535); got += 1
    except BlockingIOError: pass
    time.sleep(0.002)
print(sent, got)
'''


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def scrape(mport):
    body = urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=2).read().decode()
    out = {}
    for line in body.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, v = line.rpartition(" ")
        key = name.split("{")[0]
        try:
            out[key] = out.get(key, 0.0) + float(v)
        except ValueError:
            pass
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("hdnsd")
    ap.add_argument("out")
    ap.add_argument("--duration", type=float, default=600)
    ap.add_argument("--qps", type=float, default=3000)
    ap.add_argument("--churn", type=float, default=50)
    ap.add_argument("--cache-size", type=int, default=50000)
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    work = out / "work"
    work.mkdir(exist_ok=True)

    # The fake API server with 500 headless services over 5 namespaces.
    objs = []
    for i in range(500):
        ns = f"ns-{i % 5}"
        objs.append(k.service(ns, f"svc-{i}"))
        objs.append(k.endpoint_slice(ns, f"svc-{i}", [f"10.64.{i // 50}.{(i % 50) * 5 + j + 1}" for j in range(4)]))
    (work / "objs.json").write_text(json.dumps(objs))
    api = subprocess.Popen([PY, str(REPO / "test/fakeapi/fake_apiserver.py"), "--dir", str(work / "kube"),
                            "--load", str(work / "objs.json"), "--bookmark-interval", "5"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    info = json.loads(api.stdout.readline())
    ctl = info["control_port"]

    def control(method, **kw):
        req = urllib.request.Request(f"http://127.0.0.1:{ctl}/{method}", data=json.dumps(kw).encode(), method="POST")
        return urllib.request.urlopen(req, timeout=10).read()

    upstream = FakeUpstream(free_port())
    port, mport = free_port(), free_port()
    log = open(out / "hdnsd.log", "w")
    d = subprocess.Popen([a.hdnsd, "--listen", f"127.0.0.1:{port}", "--metrics", f"127.0.0.1:{mport}",
                          "--kube-api", info["url"], "--kube-ca-file", info["ca"], "--kube-token-file",
                          info["token_file"], "--upstream", f"127.0.0.1:{upstream.port}", "--resolv-conf", "none",
                          "--upstream-timeout", "500", "--cache-size", str(a.cache_size), "--log-level", "warn"],
                         stderr=log)
    try:
        for _ in range(300):
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{mport}/ready", timeout=1).status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        load = subprocess.Popen([PY, "-c", LOADGEN, str(port), str(a.qps), str(a.duration)],
                                stdout=subprocess.PIPE, text=True)
        control("churn", rate=a.churn, seconds=a.duration)
        stop = threading.Event()

        def flap():  # the upstream answers 20 s, then is silent 10 s
            real = upstream._respond
            while not stop.is_set():
                stop.wait(20)
                upstream._respond = lambda q, tcp: []
                stop.wait(10)
                upstream._respond = real

        def services():  # every 60 s: 50 services come, 50 go
            n = 0
            while not stop.wait(60):
                for i in range(50):
                    control("add", obj=k.service("ns-extra", f"x-{n}-{i}"))
                    control("add", obj=k.endpoint_slice("ns-extra", f"x-{n}-{i}", [f"10.65.{n % 250}.{i + 1}"]))
                if n > 0:
                    for i in range(50):
                        control("delete", kind="Service", namespace="ns-extra", name=f"x-{n - 1}-{i}")
                n += 1

        threads = [threading.Thread(target=f, daemon=True) for f in (flap, services)]
        for t in threads:
            t.start()
        samples = []
        t0 = time.monotonic()
        with open(out / "samples.csv", "w") as f:
            f.write("t_s,rss_kib,cache_entries,cache_bytes,view_services,queries,upstream_in_flight\n")
            while time.monotonic() - t0 < a.duration and d.poll() is None:
                m = scrape(mport)
                row = (round(time.monotonic() - t0, 1), rss_kib(d.pid), m.get("hdnsd_cache_entries", 0),
                       m.get("hdnsd_cache_bytes", 0), m.get("hdnsd_view_services", 0),
                       m.get("hdnsd_dns_queries_total", 0), m.get("hdnsd_upstream_in_flight", 0))
                samples.append(row)
                f.write(",".join(str(x) for x in row) + "\n")
                f.flush()
                time.sleep(5)
        stop.set()
        sent, got = (load.communicate(timeout=60)[0].split() + ["0", "0"])[:2]
        alive = d.poll() is None
        rss = [r[1] for r in samples]

        def at(frac):
            i = min(len(samples) - 1, int(frac * len(samples)))
            return samples[i][1]
        half = [r for r in samples if r[0] >= a.duration / 2]
        slope = 0.0
        if len(half) > 2:  # least squares, KiB per minute, over the second half
            n = len(half)
            mx = sum(r[0] for r in half) / n
            my = sum(r[1] for r in half) / n
            sxx = sum((r[0] - mx) ** 2 for r in half)
            slope = 60 * sum((r[0] - mx) * (r[1] - my) for r in half) / sxx if sxx else 0.0
        summary = {"duration_s": a.duration, "qps_target": a.qps, "queries_sent": int(sent),
                   "answers_seen_by_loadgen": int(got), "churn_per_s": a.churn, "cache_size": a.cache_size,
                   "alive_at_end": alive, "rss_kib_first": rss[0] if rss else 0, "rss_kib_at_10pct": at(0.1),
                   "rss_kib_at_50pct": at(0.5), "rss_kib_last": rss[-1] if rss else 0, "rss_kib_max": max(rss or [0]),
                   "rss_slope_kib_per_min_second_half": round(slope, 1),
                   "cache_entries_last": samples[-1][2] if samples else 0,
                   "hdnsd_queries_total": samples[-1][5] if samples else 0}
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        print(json.dumps(summary, indent=2))
        return 0 if alive else 1
    finally:
        d.send_signal(signal.SIGTERM)
        try:
            d.wait(5)
        except subprocess.TimeoutExpired:
            d.kill()
        upstream.close()
        api.terminate()
        api.wait(5)


if __name__ == "__main__":
    sys.exit(main())
