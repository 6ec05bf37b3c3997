#!/usr/bin/env python3
"""--workers (issue 7) on this machine: throughput and CPU per query of cache hits for 1 and 2
workers, and what per-worker caches cost in hit ratio, upstream queries and memory.

    bench/workers/workers.py --hdnsd build/hdnsd [--out /tmp/hdnsd-workers] [--rounds 3]

Upstream: knotd on 127.0.0.1 serving `bench.example`, 10,000 names (TTL 1 day). hdnsd forwards to
it; everything stays on loopback. Every process is started here and stopped by its PID.

1. scaling: hdnsd --workers 1, then 2 (interleaved, `rounds` times), no CPU pinning (2 cores: the
   server and dnsperf share them, so this shows overhead and spread, not scaling; see README
   "Workers"). dnsperf -c 64 (64 source ports, so SO_REUSEPORT spreads them) -T 2 -q 200 over the
   10,000 warm names. Per run: QPS, the server's utime+stime per answer (all threads), each
   thread's CPU seconds and hdnsd_worker_queries_total{worker} (the kernel's spread).
2. hit ratio: one cold Zipf(0.9) stream of 200,000 queries over the 10,000 names (dnsperf -n 1
   -c 64 -Q 20000) per --workers 1, 2, 4, 8: cache hits, upstream queries, VmRSS.
"""
import argparse
import glob
import json
import os
import random
import re
import signal
import subprocess
import time
import urllib.request

ZONE = "bench.example"
N = 10_000
KPORT, PORT, MPORT = 15353, 15354, 15355


def write_zone(d):
    lines = [f"$ORIGIN {ZONE}.", "$TTL 86400", f"@ SOA ns.{ZONE}. a.{ZONE}. 1 3600 600 86400 60", "@ NS ns",
             "ns A 127.0.0.1"] + [f"h{i} A 10.{i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(N)]
    with open(f"{d}/{ZONE}.zone", "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(f"{d}/hits.txt", "w") as f:
        f.write("".join(f"h{i}.{ZONE} A\n" for i in range(N)))
    rng = random.Random(7)
    names = rng.choices(range(N), weights=[1 / (i + 1) ** 0.9 for i in range(N)], k=200_000)
    with open(f"{d}/zipf.txt", "w") as f:
        f.write("".join(f"h{i}.{ZONE} A\n" for i in names))


def start_knot(d):
    os.makedirs(f"{d}/kdb", exist_ok=True)
    with open(f"{d}/knot.conf", "w") as f:
        f.write(f"""server:
    rundir: "{d}"
    listen: 127.0.0.1@{KPORT}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "{d}/kdb"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "{d}"
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: {ZONE}
    file: "{ZONE}.zone"
""")
    p = subprocess.Popen(["knotd", "-c", f"{d}/knot.conf"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(150):
        r = subprocess.run(["dig", "+short", "+time=1", "+tries=1", "@127.0.0.1", "-p", str(KPORT), f"h{N - 1}.{ZONE}"],
                           capture_output=True, text=True)
        if r.stdout.strip():
            return p
        time.sleep(0.2)
    p.kill()
    raise SystemExit("knotd did not serve the zone within 30 s")


def start_hdnsd(exe, workers, d):
    p = subprocess.Popen([exe, "--listen", f"127.0.0.1:{PORT}", "--metrics", f"127.0.0.1:{MPORT}", "--upstream",
                          f"127.0.0.1:{KPORT}", "--resolv-conf", "none", "--user", "root", "--workers", str(workers),
                          "--max-udp-amplification", "0", "--log-level", "warn"],
                         stdout=subprocess.DEVNULL, stderr=open(f"{d}/hdnsd-{workers}.log", "a"))
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{MPORT}/ready", timeout=1)
            return p
        except OSError:
            time.sleep(0.05)
    p.kill()
    raise SystemExit("hdnsd not ready within 5 s")


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(5)


def metrics():
    return urllib.request.urlopen(f"http://127.0.0.1:{MPORT}/metrics", timeout=5).read().decode()


def scalar(body, name):
    m = re.search(rf"^{name} (\S+)", body, re.M)
    return float(m.group(1)) if m else 0.0


def per_worker(body):
    return {w: float(v) for w, v in re.findall(r'^hdnsd_worker_queries_total\{worker="(\d+)"\} (\S+)', body, re.M)}


def thread_cpu(pid):
    out = {}
    for t in glob.glob(f"/proc/{pid}/task/*"):
        try:
            name = open(f"{t}/comm").read().strip()
            f = open(f"{t}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[name] = out.get(name, 0.0) + (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    return out


def dnsperf(d, datafile, *extra):
    out = subprocess.run(["dnsperf", "-s", "127.0.0.1", "-p", str(PORT), "-d", f"{d}/{datafile}", "-c", "64",
                          "-t", "3", *extra], capture_output=True, text=True, timeout=300).stdout
    g = lambda rx: float(re.search(rx, out).group(1))  # noqa: E731
    return {"qps": g(r"Queries per second:\s+([\d.]+)"), "completed": g(r"Queries completed:\s+(\d+)"),
            "lost": g(r"Queries lost:\s+(\d+)"), "avg_latency_ms": g(r"Average Latency \(s\):\s+([\d.]+)") * 1e3}


def scaling(exe, d, rounds, seconds):
    for _ in range(rounds):
        for workers in (1, 2):
            p = start_hdnsd(exe, workers, d)
            try:
                dnsperf(d, "hits.txt", "-n", "3", "-q", "200")  # warms every worker's cache
                b0, c0 = metrics(), thread_cpu(p.pid)
                r = dnsperf(d, "hits.txt", "-l", str(seconds), "-T", "2", "-q", "200")
                b1, c1 = metrics(), thread_cpu(p.pid)
            finally:
                stop(p)
            w0, w1 = per_worker(b0), per_worker(b1)
            r.update(workers=workers, load=open("/proc/loadavg").read().split()[0],
                     server_us_per_query=round(sum(c1.values()) - sum(c0.values()), 3) / r["completed"] * 1e6,
                     thread_cpu_s={k: round(c1[k] - c0.get(k, 0), 2) for k in c1 if c1[k] - c0.get(k, 0) >= 0.01},
                     queries_by_worker={k: int(w1[k] - w0.get(k, 0)) for k in w1})
            print(json.dumps({"scaling": r}), flush=True)


def hit_ratio(exe, d):
    for workers in (1, 2, 4, 8):
        p = start_hdnsd(exe, workers, d)
        try:
            r = dnsperf(d, "zipf.txt", "-n", "1", "-q", "100", "-Q", "20000")
            body = metrics()
            rss = int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{p.pid}/status").read()).group(1))
        finally:
            stop(p)
        hits = scalar(body, "hdnsd_cache_hits_total")
        upstream = sum(float(v) for v in re.findall(r"^hdnsd_upstream_queries_total\{[^}]*\} (\S+)", body, re.M))
        print(json.dumps({"hit_ratio": {"workers": workers, "queries": r["completed"], "cache_hits": hits,
                                        "hit_ratio": round(hits / max(1, r["completed"]), 4),
                                        "upstream_queries": upstream, "cache_entries": scalar(body, "hdnsd_cache_entries"),
                                        "vmrss_kib": rss}}), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hdnsd", required=True)
    ap.add_argument("--out", default="/tmp/hdnsd-workers")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=8)
    args = ap.parse_args()
    d = os.path.abspath(args.out)
    os.makedirs(d, exist_ok=True)
    write_zone(d)
    knot = start_knot(d)
    try:
        print(json.dumps({"machine": {"cpus": len(os.sched_getaffinity(0)),
                                      "loadavg_start": open("/proc/loadavg").read().strip()}}), flush=True)
        scaling(os.path.abspath(args.hdnsd), d, args.rounds, args.seconds)
        hit_ratio(os.path.abspath(args.hdnsd), d)
    finally:
        stop(knot)


if __name__ == "__main__":
    main()
