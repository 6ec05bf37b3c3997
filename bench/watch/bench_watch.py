#!/usr/bin/python3
"""Benchmarks of hdnsd's Kubernetes API watch against the fake API server (a separate process, so
its Python threads do not share a GIL with the measuring loop).

  latency  event → answer: the fake writes a changed EndpointSlice to the watch stream (it records
           CLOCK_MONOTONIC at the write; that clock is system-wide), this process spins raw UDP
           queries until the answer carries the new address. N changes; p50/p90/p99/max.
  sync     initial sync of S services × E endpoints (headless, one slice each): hdnsd spawn →
           GET /ready 200, then VmRSS and VmHWM of hdnsd. R runs against one fake.
  churn    dnsperf (fixed rate, per-query latencies from -v) against hdnsd with the big cluster,
           first without churn, then while the fake modifies slices at 1,000 events/s.

Usage: bench_watch.py {latency,sync,churn,all} --hdnsd build/hdnsd [--out results.json]
Every loop is bounded in count and time; everything stays on 127.0.0.1.
"""

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "test" / "fakeapi"))
import kubeobjects as k  # noqa: E402

PY = "/usr/bin/python3"


def free_port():
    for _ in range(100):
        t, u = socket.socket(), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            t.bind(("127.0.0.1", 0))
            p = t.getsockname()[1]
            u.bind(("127.0.0.1", p))
            return p
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise RuntimeError("no free port")


class Fake:
    def __init__(self, workdir, load=None, bookmark=5.0):
        args = [PY, str(REPO / "test/fakeapi/fake_apiserver.py"), "--dir", str(workdir),
                "--bookmark-interval", str(bookmark)]
        if load:
            args += ["--load", str(load)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("fake API server did not start")
        self.info = json.loads(line)

    def ctl(self, method, **kw):
        data = json.dumps(kw).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.info['control_port']}/{method}",
                                     data=data, method="POST")
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())["result"]

    def get(self, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.info['control_port']}{path}", timeout=30) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


class Hdnsd:
    def __init__(self, binary, fake, workdir, *extra):
        self.port, self.mport = free_port(), free_port()
        self.log = open(Path(workdir) / f"hdnsd-{self.port}.log", "wb")
        self.args = [str(binary), "--listen", f"127.0.0.1:{self.port}", "--metrics",
                     f"127.0.0.1:{self.mport}", "--kube-api", fake.info["url"], "--kube-token-file",
                     fake.info["token_file"], "--kube-ca-file", fake.info["ca"], "--log-level", "warn",
                     "--resolv-conf", "none", *extra]
        self.t_spawn = time.monotonic()
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hdnsd exited {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.mport}/ready", timeout=1) as r:
                    if r.status == 200:
                        return time.monotonic() - self.t_spawn
            except OSError:
                pass
            time.sleep(0.01)
        raise RuntimeError("hdnsd not ready within %ss" % timeout)

    def status(self):
        out = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS", "VmHWM")):
                out[line.split(":")[0]] = int(line.split()[1]) // 1024  # MiB
        return out

    def cpu_s(self):
        f = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def query_packet(name, qid):
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00\x00\x01\x00\x01"


def a_records(resp):
    """The A rdatas of a reply (answers use a compression pointer to the question)."""
    an = struct.unpack("!H", resp[6:8])[0]
    pos = 12
    while resp[pos]:
        pos += resp[pos] + 1
    pos += 5
    out = []
    for _ in range(an):
        if resp[pos] & 0xC0 == 0xC0:
            pos += 2
        else:
            while resp[pos]:
                pos += resp[pos] + 1
            pos += 1
        rtype, _, _, rdlen = struct.unpack("!HHIH", resp[pos:pos + 10])
        pos += 10
        if rtype == 1:
            out.append(socket.inet_ntoa(resp[pos:pos + 4]))
        pos += rdlen
    return out


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def summary_ms(xs):
    return {"n": len(xs), "p50_ms": round(pct(xs, 50) * 1e3, 3), "p90_ms": round(pct(xs, 90) * 1e3, 3),
            "p99_ms": round(pct(xs, 99) * 1e3, 3), "max_ms": round(max(xs) * 1e3, 3),
            "mean_ms": round(statistics.mean(xs) * 1e3, 3)}


def loadavg():
    return Path("/proc/loadavg").read_text().split()[:3]


# --------------------------------------------------------------------------------------------


def bench_latency(a, work):
    objs = [k.service("bench", "lat"), k.endpoint_slice("bench", "lat", ["10.200.0.1"])]
    for i in range(a.background_services):  # a realistic view to update, not an empty one
        objs += [k.service("bg", f"s{i}"), k.endpoint_slice("bg", f"s{i}", [f"10.201.{i // 250}.{i % 250 + 1}"])]
    load = Path(work) / "lat.json"
    load.write_text(json.dumps(objs))
    fake = Fake(Path(work) / "lat-api", load=load)
    d = Hdnsd(a.hdnsd, fake, work)
    try:
        d.wait_ready()
        fake.ctl("set", track_writes=True)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.5)
        name = "lat.bench.svc.cluster.local"
        lat_write, lat_ctl = [], []
        for i in range(a.changes):
            ip = f"10.200.{1 + i // 250}.{i % 250 + 1}"
            t0 = time.monotonic()
            rv = fake.ctl("apply", obj=k.endpoint_slice("bench", "lat", [ip]))
            deadline = time.monotonic() + 2.0
            t1 = None
            qid = 0
            while time.monotonic() < deadline:
                qid = (qid + 1) & 0xFFFF
                s.sendto(query_packet(name, qid), ("127.0.0.1", d.port))
                resp = s.recv(4096)
                if a_records(resp) == [ip]:
                    t1 = time.monotonic()
                    break
            if t1 is None:
                raise RuntimeError(f"change {i} ({ip}) not seen within 2 s")
            tw = fake.ctl("write_time", rv=rv)
            lat_write.append(t1 - tw)
            lat_ctl.append(t1 - t0)
            time.sleep(0.02)
        return {"changes": a.changes, "background_services": a.background_services,
                "event_write_to_answer": summary_ms(lat_write),
                "control_call_to_answer": summary_ms(lat_ctl), "loadavg_after": loadavg()}
    finally:
        d.stop()
        fake.stop()


def big_cluster_file(work, services, per):
    path = Path(work) / f"cluster-{services}x{per}.json"
    if not path.exists():
        path.write_text(json.dumps(list(k.big_cluster(services, per))))
    return path


def bench_sync(a, work):
    load = big_cluster_file(work, a.services, a.endpoints_per_service)
    t = time.monotonic()
    fake = Fake(Path(work) / "sync-api", load=load)
    fake_load_s = time.monotonic() - t
    runs = []
    try:
        for mode in ("true", "false"):
            for _ in range(a.runs):
                d = Hdnsd(a.hdnsd, fake, work, "--kube-streaming-list", mode)
                try:
                    ready_s = d.wait_ready(timeout=120)
                    st_ready = d.status()
                    time.sleep(1.0)
                    st = d.status()
                    # one answer from the middle of the cluster, to be sure the view is whole
                    i = a.services // 2
                    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    s.settimeout(1)
                    s.sendto(query_packet(f"svc{i}.ns{i % 50}.svc.cluster.local", 7), ("127.0.0.1", d.port))
                    got = len(a_records(s.recv(65535)))
                    reqs = [r for r in fake.get("/requests") if r["t"] >= d.t_spawn and r.get("t_done")]
                    served = max(r["t_done"] for r in reqs) - d.t_spawn if reqs else None
                    runs.append({"streaming_list": mode, "ready_s": round(ready_s, 3),
                                 "fake_sent_last_byte_s": round(served, 3) if served else None,
                                 "api_requests": len(reqs),
                                 "rss_at_ready_mib": st_ready.get("VmRSS"), "rss_1s_later_mib": st["VmRSS"],
                                 "peak_rss_mib": st["VmHWM"], "cpu_s": round(d.cpu_s(), 2),
                                 "answer_records": got, "loadavg": loadavg()})
                finally:
                    d.stop()
                print("  sync run:", runs[-1], flush=True)
    finally:
        fake.stop()
    return {"services": a.services, "endpoints": a.services * a.endpoints_per_service,
            "fake_start_and_load_s": round(fake_load_s, 2), "runs": runs}


def run_dnsperf(port, qfile, seconds, qps):
    cmd = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(qfile), "-l", str(seconds),
           "-Q", str(qps), "-c", "4", "-q", "200", "-t", "2", "-v"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    lat, rcodes = [], {}
    for line in p.stdout.splitlines():
        # "> NOERROR svc1.ns1.svc.cluster.local A 0.000123"
        if line.startswith("> "):
            parts = line.split()
            rcodes[parts[1]] = rcodes.get(parts[1], 0) + 1
            try:
                lat.append(float(parts[-1]))
            except ValueError:
                pass
    summ = {}
    for line in p.stdout.splitlines():
        line = line.strip()
        for key in ("Queries sent:", "Queries completed:", "Queries lost:", "Queries per second:"):
            if line.startswith(key):
                summ[key.rstrip(":")] = line.split(":", 1)[1].strip()
    return {"cmd": " ".join(cmd), "summary": summ, "rcodes": rcodes, **summary_ms(lat)}


def bench_churn(a, work):
    load = big_cluster_file(work, a.services, a.endpoints_per_service)
    fake = Fake(Path(work) / "churn-api", load=load, bookmark=5.0)
    d = Hdnsd(a.hdnsd, fake, work)
    try:
        d.wait_ready(timeout=120)
        rnd = random.Random(1)
        qfile = Path(work) / "queries.txt"
        qfile.write_text("".join(f"svc{i}.ns{i % 50}.svc.cluster.local A\n"
                                 for i in (rnd.randrange(a.services) for _ in range(10000))))
        c0 = d.cpu_s()
        base = run_dnsperf(d.port, qfile, a.seconds, a.qps)
        base["hdnsd_cpu_s"] = round(d.cpu_s() - c0, 2)
        base["loadavg"] = loadavg()
        print("  no churn:", base, flush=True)
        rv0 = fake.get("/state")["rv"]
        fake.ctl("churn", rate=a.rate, seconds=a.seconds + 2)
        time.sleep(1.0)
        c0 = d.cpu_s()
        churn = run_dnsperf(d.port, qfile, a.seconds, a.qps)
        churn["hdnsd_cpu_s"] = round(d.cpu_s() - c0, 2)
        churn["loadavg"] = loadavg()
        st = fake.get("/state")
        time.sleep(2)
        churn["churn"] = fake.get("/state")["churn"]
        churn["events_total"] = st["rv"] - rv0
        print("  churn:", churn, flush=True)
        return {"services": a.services, "qps": a.qps, "seconds": a.seconds, "rate": a.rate,
                "no_churn": base, "with_churn": churn}
    finally:
        d.stop()
        fake.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["latency", "sync", "churn", "all"])
    ap.add_argument("--hdnsd", default=str(REPO / "build/hdnsd"))
    ap.add_argument("--out")
    ap.add_argument("--changes", type=int, default=100)
    ap.add_argument("--background-services", type=int, default=1000)
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--endpoints-per-service", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--qps", type=int, default=20000)
    ap.add_argument("--rate", type=float, default=1000)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-watch-")
    out = {"machine": {"nproc": os.cpu_count(), "loadavg_start": loadavg(),
                       "hdnsd": a.hdnsd, "date": time.strftime("%Y-%m-%d %H:%M:%S")}}
    try:
        for what in (["latency", "sync", "churn"] if a.what == "all" else [a.what]):
            print(f"== {what}", flush=True)
            out[what] = globals()[f"bench_{what}"](a, work)
            print(json.dumps(out[what], indent=1), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if a.out:
        Path(a.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
