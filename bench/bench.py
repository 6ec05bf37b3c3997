#!/usr/bin/env python3
"""Side-by-side benchmark of hdnsd, the reflector floor and five Debian peers (issue 7).

Run by bench/run INSIDE a loopback-only network namespace (bench/run creates it); never run this
file on the host network. Standard library only.

What it does, in order (every process is started here and stopped by the PID it got):
  1. generates the data: an authoritative zone of 100,000 names (+ a wildcard for cache misses),
     the query files, and a kubectl List JSON for hdnsd's cluster view;
  2. starts the upstream (knotd) and every server: the reflector, hdnsd, Unbound, dnsmasq, Knot
     Resolver, PowerDNS Recursor and dnsdist, each a single-threaded forwarding cache pinned to
     CPU 0, each on its own port, configured to forward everything to the local knotd;
  3. loads the 100,000 names through each server and records its RSS (memory phase);
  4. interleaved rounds: for each round, for each server (rotated order), the cache-hit run, the
     cluster-answer runs (hdnsd only), the fixed-rate latency run and the cache-miss run; dnsperf
     is pinned to CPU 1, and the server's CPU time is read from /proc/<pid>/stat before and after;
  5. callgrind: each selected server under valgrind, N and 2N queries after the same warm-up,
     instructions per query = (Ir(2N) - Ir(N)) / (answers(2N) - answers(N));
  6. hdnsd's RSS with a 10,000-service / 100,000-endpoint cluster view;
  7. writes results.json and summary.md into the output directory and prints the summary.
"""
import argparse
import atexit
import json
import os
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

ZONE = "bench.example"      # not a special-use name (peers block "test." and "invalid." by default)
CLUSTER = "cluster.local"
UPSTREAM_PORT = 5300
CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVER_CPU = "0"             # the server under test
CLIENT_CPU = "1"             # dnsperf, and the upstream knotd
N_ZONE_NAMES = 100_000
N_HIT_NAMES = 10_000


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------
# data

def ip_of(i):
    return f"198.{18 + (i >> 16)}.{(i >> 8) & 0xff}.{i & 0xff}"


def gen_data(d, miss_names_per_round, rounds):
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/{ZONE}.zone", "w") as f:
        f.write(f"$ORIGIN {ZONE}.\n$TTL 86400\n")
        f.write("@ SOA ns hostmaster 1 3600 600 86400 86400\n@ NS ns\nns A 127.0.0.1\n")
        f.write("*.miss A 192.0.2.1\n")           # every unique miss name resolves
        for i in range(N_ZONE_NAMES):
            f.write(f"h{i} A {ip_of(i)}\n")
    with open(f"{d}/all.txt", "w") as f:
        for i in range(N_ZONE_NAMES):
            f.write(f"h{i}.{ZONE} A\n")
    with open(f"{d}/hits.txt", "w") as f:
        for i in range(N_HIT_NAMES):
            f.write(f"h{i}.{ZONE} A\n")
    for r in range(rounds):
        with open(f"{d}/miss-{r}.txt", "w") as f:
            for i in range(miss_names_per_round):
                f.write(f"r{r}-{i}.miss.{ZONE} A\n")
    with open(f"{d}/cluster4.txt", "w") as f:
        f.write(f"web4.bench.svc.{CLUSTER} A\n")
    with open(f"{d}/cluster100.txt", "w") as f:
        f.write(f"web100.bench.svc.{CLUSTER} A\n")
    write_cluster(f"{d}/cluster-small.json", [("web4", 4), ("web100", 100)])
    write_cluster(f"{d}/cluster-10k.json", [(f"svc{i}", 10) for i in range(10_000)])


def write_cluster(path, services):
    """kubectl `get svc,endpointslices -o json` shape: headless services, one slice each."""
    items = []
    ep = 0
    for name, n in services:
        items.append({"apiVersion": "v1", "kind": "Service",
                      "metadata": {"name": name, "namespace": "bench"},
                      "spec": {"clusterIP": "None", "clusterIPs": ["None"], "type": "ClusterIP",
                               "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})
        eps = []
        for _ in range(n):
            eps.append({"addresses": [f"10.{64 + (ep >> 16)}.{(ep >> 8) & 0xff}.{ep & 0xff}"],
                        "conditions": {"ready": True}})
            ep += 1
        items.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                      "addressType": "IPv4", "endpoints": eps,
                      "metadata": {"name": f"{name}-1", "namespace": "bench",
                                   "labels": {"kubernetes.io/service-name": name}},
                      "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]})
    with open(path, "w") as f:
        json.dump({"apiVersion": "v1", "kind": "List", "items": items}, f)


# ---------------------------------------------------------------------------------------------
# processes

def cpu_ticks(pid):
    """utime+stime of the whole process (all threads, live and exited), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_sched_ns(pid):
    """Sum of the live threads' on-CPU time in ns (/proc/<pid>/task/*/schedstat): finer grained."""
    total = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def system_busy():
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


def dns_query(name, qtype=1, qid=0x4242):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack(">HH", qtype, 1)


def probe(port, name, want_rcode=0, timeout=0.3):
    """One UDP query; True when an answer with rcode want_rcode (None: any) comes back."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(dns_query(name), ("127.0.0.1", port))
        data, _ = s.recvfrom(4096)
        return len(data) >= 12 and (want_rcode is None or (data[3] & 0xf) == want_rcode)
    except OSError:
        return False
    finally:
        s.close()


class Proc:
    """A process we started: stopped by its PID (SIGTERM, then SIGKILL after a grace period)."""

    def __init__(self, name, argv, logpath, cwd=None):
        self.name = name
        self.argv = argv
        self.log = open(logpath, "w")
        self.log.write("$ " + " ".join(shlex.quote(a) for a in argv) + "\n")
        self.log.flush()
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, cwd=cwd,
                                  stdin=subprocess.DEVNULL)
        self.pid = self.p.pid

    def alive(self):
        return self.p.poll() is None

    def stop(self, grace=10.0):
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.p.wait(grace)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.p.wait()
        self.log.close()
        return self.p.returncode


# ---------------------------------------------------------------------------------------------
# servers: each writes its config into the run directory and returns the argv to start

class Server:
    name = "?"
    port = 0
    hits = misses = cache = True      # which rows apply
    cluster = False
    ready_name = f"h1.{ZONE}"
    ready_rcode = 0

    def __init__(self, rd):
        self.rd = rd
        self.dir = f"{rd}/{self.name}"
        os.makedirs(self.dir, exist_ok=True)
        self.proc = None

    def argv(self):
        raise NotImplementedError

    def start(self, wrap=(), ready_timeout=30.0):
        argv = ["taskset", "-c", SERVER_CPU] + list(wrap) + self.argv()
        self.proc = Proc(self.name, argv, f"{self.dir}/{'callgrind-' if wrap else ''}log.txt",
                         cwd=self.dir)
        deadline = time.time() + ready_timeout
        while time.time() < deadline:
            if not self.proc.alive():
                raise RuntimeError(f"{self.name} exited at startup (see {self.dir}/log.txt)")
            if probe(self.port, self.ready_name, self.ready_rcode):
                return
            time.sleep(0.2)
        self.proc.stop()
        raise RuntimeError(f"{self.name} not answering on port {self.port} after {ready_timeout}s")

    def stop(self):
        if self.proc:
            rc = self.proc.stop()
            self.proc = None
            return rc


class Reflector(Server):
    name, port = "reflector", 5301
    misses = cache = False

    def __init__(self, rd, binary):
        super().__init__(rd)
        self.binary = binary
        self.ready_rcode = None

    def argv(self):
        return [self.binary, "127.0.0.1", str(self.port)]


class ReflectorSendto(Reflector):
    """The reflector answering with one sendto(2) per datagram: batched receive, unbatched send."""
    name, port = "reflector-sendto", 5308

    def argv(self):
        return super().argv() + ["--sendto"]


class Hdnsd(Server):
    name, port = "hdnsd", 5302
    cluster = True

    def __init__(self, rd, binary, data, extra_flags, endpoints="cluster-small.json", port=None):
        super().__init__(rd)
        self.binary = binary
        self.data = data
        self.extra = extra_flags
        self.endpoints = endpoints
        if port:
            self.port = port
        helptext = subprocess.run([binary, "--help"], capture_output=True, text=True).stdout
        self.has_upstream = "--upstream" in helptext
        self.has_max_answers = "--max-answers" in helptext
        self.has_user = "--user" in helptext
        self.hits = self.misses = self.cache = self.has_upstream
        if not self.has_upstream:
            self.ready_name = f"web4.bench.svc.{CLUSTER}"

    def argv(self):
        a = [self.binary, "--listen", f"127.0.0.1:{self.port}", "--log-level", "warn",
             "--endpoints-file", f"{self.data}/{self.endpoints}", "--ttl", "3600"]
        if self.has_upstream:
            a += ["--upstream", f"127.0.0.1:{UPSTREAM_PORT}"]
        if self.has_max_answers:
            a += ["--max-answers", "8"]
        # Started as root (bench/run needs it), hdnsd would drop to `nobody`, and callgrind, which
        # runs inside the process, could then no longer write its root-owned output file.
        if self.has_user and os.geteuid() == 0:
            a += ["--user", "root"]
        return a + self.extra


class Unbound(Server):
    name, port = "unbound", 5303

    def argv(self):
        conf = f"""server:
    interface: 127.0.0.1@{self.port}
    port: {self.port}
    access-control: 127.0.0.0/8 allow
    do-daemonize: no
    chroot: ""
    username: ""
    pidfile: ""
    directory: "{self.dir}"
    use-syslog: no
    logfile: ""
    verbosity: 0
    num-threads: 1
    so-reuseport: no
    module-config: "iterator"
    do-not-query-localhost: no
    qname-minimisation: no
    prefetch: no
    msg-cache-size: 128m
    rrset-cache-size: 256m
    num-queries-per-thread: 4096
    outgoing-range: 8192
    statistics-interval: 0
remote-control:
    control-enable: no
forward-zone:
    name: "."
    forward-addr: 127.0.0.1@{UPSTREAM_PORT}
"""
        with open(f"{self.dir}/unbound.conf", "w") as f:
            f.write(conf)
        return ["unbound", "-d", "-c", f"{self.dir}/unbound.conf"]


class Dnsmasq(Server):
    name, port = "dnsmasq", 5304

    def argv(self):
        return ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
                "--no-hosts", "--no-poll", f"--server=127.0.0.1#{UPSTREAM_PORT}",
                "--listen-address=127.0.0.1", "--bind-interfaces", f"--port={self.port}",
                # dnsmasq's own limit: above 10,000 it warns of "performance issues", and a
                # full 150,000-entry cache made it spin for seconds per miss (measured)
                "--cache-size=10000", "--dns-forward-max=1000", f"--pid-file={self.dir}/pid",
                "--user=root", "--group=root", "--log-facility=-"]


class Kresd(Server):
    name, port = "kresd", 5305

    def argv(self):
        self.cachedir = f"/dev/shm/hdnsd-bench-kresd-{os.getpid()}"
        os.makedirs(self.cachedir, exist_ok=True)
        conf = f"""-- generated by bench/bench.py: single process, forwarding cache, nothing fetched
net.listen('127.0.0.1', {self.port}, {{ kind = 'dns' }})
for _, m in ipairs({{'ta_update', 'ta_signal_query', 'ta_sentinel', 'priming',
                    'detect_time_skew', 'detect_time_jump', 'hints', 'watchdog'}}) do
    pcall(modules.unload, m)
end
pcall(trust_anchors.remove, '.')
cache.open(512 * MB, 'lmdb://{self.cachedir}')
policy.add(policy.all(policy.FORWARD('127.0.0.1@{UPSTREAM_PORT}')))
"""
        with open(f"{self.dir}/kresd.conf", "w") as f:
            f.write(conf)
        return ["kresd", "-n", "-q", "-c", f"{self.dir}/kresd.conf", self.dir]

    def stop(self):
        rc = super().stop()
        subprocess.run(["rm", "-rf", getattr(self, "cachedir", "/nonexistent")])
        return rc


class PdnsRecursor(Server):
    name, port = "pdns-recursor", 5306

    def argv(self):
        conf = f"""local-address=127.0.0.1
local-port={self.port}
allow-from=127.0.0.0/8
forward-zones-recurse=.=127.0.0.1:{UPSTREAM_PORT}
threads=1
pdns-distributes-queries=no
reuseport=no
security-poll-suffix=
dnssec=off
daemon=no
write-pid=no
disable-syslog=yes
quiet=yes
loglevel=3
socket-dir={self.dir}
max-cache-entries=2000000
max-packetcache-entries=1000000
"""
        with open(f"{self.dir}/recursor.conf", "w") as f:
            f.write(conf)
        return ["pdns_recursor", f"--config-dir={self.dir}"]


class Dnsdist(Server):
    name, port = "dnsdist", 5307

    def argv(self):
        conf = f"""-- generated by bench/bench.py: packet cache in front of the local upstream, no console
setLocal('127.0.0.1:{self.port}')
setACL({{'127.0.0.0/8'}})
setSecurityPollSuffix('')
newServer({{address='127.0.0.1:{UPSTREAM_PORT}', checkName='{ZONE}.', checkType='SOA',
           checkInterval=60, name='knotd'}})
pc = newPacketCache(1000000, {{maxTTL=86400, minTTL=0, numberOfShards=1}})
getPool(''):setCache(pc)
"""
        with open(f"{self.dir}/dnsdist.conf", "w") as f:
            f.write(conf)
        return ["dnsdist", "--supervised", "--disable-syslog", "-C", f"{self.dir}/dnsdist.conf"]


class Knotd:
    """The authoritative upstream: the generated zone, one UDP worker, pinned to the client CPU."""

    def __init__(self, rd, data):
        self.dir = f"{rd}/knotd"
        os.makedirs(self.dir, exist_ok=True)
        self.data = data
        self.proc = None

    def start(self):
        conf = f"""server:
    rundir: "{self.dir}"
    listen: 127.0.0.1@{UPSTREAM_PORT}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "{self.dir}/db"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "{self.data}"
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: {ZONE}
    file: "{ZONE}.zone"
"""
        with open(f"{self.dir}/knot.conf", "w") as f:
            f.write(conf)
        self.proc = Proc("knotd", ["taskset", "-c", CLIENT_CPU, "knotd", "-c",
                                   f"{self.dir}/knot.conf"], f"{self.dir}/log.txt")
        deadline = time.time() + 60
        while time.time() < deadline:
            if not self.proc.alive():
                raise RuntimeError(f"knotd exited (see {self.dir}/log.txt)")
            if probe(UPSTREAM_PORT, f"h{N_ZONE_NAMES - 1}.{ZONE}"):
                return
            time.sleep(0.2)
        raise RuntimeError("knotd did not load the zone in 60 s")

    def stop(self):
        if self.proc:
            self.proc.stop()


# ---------------------------------------------------------------------------------------------
# measurements

DNSPERF_RE = {
    "sent": r"Queries sent:\s+(\d+)",
    "completed": r"Queries completed:\s+(\d+)",
    "lost": r"Queries lost:\s+(\d+)",
    "runtime_s": r"Run time \(s\):\s+([\d.]+)",
    "qps": r"Queries per second:\s+([\d.]+)",
    "avg_latency_s": r"Average Latency \(s\):\s+([\d.]+)",
}


def dnsperf(port, datafile, seconds, outfile, qps=None, maxruns=None, verbose=False,
            outstanding=100, timeout=2):
    argv = ["taskset", "-c", CLIENT_CPU, "dnsperf", "-s", "127.0.0.1", "-p", str(port),
            "-d", datafile, "-l", str(seconds), "-q", str(outstanding), "-t", str(timeout)]
    if qps:
        argv += ["-Q", str(qps)]
    if maxruns:
        argv += ["-n", str(maxruns)]
    if verbose:
        argv += ["-v"]
    with open(outfile, "w") as f:
        f.write("$ " + " ".join(argv) + "\n")
        f.flush()
        # dnsperf stops itself after -l seconds; the outer timeout is only a safety net
        subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, timeout=seconds + timeout + 30)
    text = open(outfile).read()
    r = {}
    for k, rx in DNSPERF_RE.items():
        m = re.search(rx, text)
        r[k] = float(m.group(1)) if m else None
    m = re.search(r"Response codes:\s+(.*)", text)
    r["rcodes"] = m.group(1).strip() if m else ""
    if verbose:
        lat = sorted(float(x) for x in re.findall(r"^> \S+ \S+ \S+ ([\d.]+)$", text, re.M))
        if lat:
            def pct(p):
                return lat[min(len(lat) - 1, int(p / 100.0 * len(lat)))]
            r.update(p50_ms=pct(50) * 1e3, p99_ms=pct(99) * 1e3, p999_ms=pct(99.9) * 1e3,
                     max_ms=lat[-1] * 1e3, samples=len(lat))
        # the per-query lines are ~4 MB per run: keep the percentiles, not the lines
        with open(outfile, "w") as f:
            f.write("".join(line for line in text.splitlines(True) if not line.startswith("> ")))
            f.write(f"(per-query lines dropped after computing the percentiles: {r.get('samples')} "
                    f"samples, p50 {r.get('p50_ms')} ms, p99 {r.get('p99_ms')} ms, "
                    f"p99.9 {r.get('p999_ms')} ms)\n")
    return r


def measure(server, label, datafile, seconds, outdir, **kw):
    pid = server.proc.pid
    t0, s0, (b0, a0) = cpu_ticks(pid), cpu_sched_ns(pid), system_busy()
    r = dnsperf(server.port, datafile, seconds, f"{outdir}/{server.name}-{label}.txt", **kw)
    t1, s1, (b1, a1) = cpu_ticks(pid), cpu_sched_ns(pid), system_busy()
    done = r["completed"] or 0
    r["avg_latency_ms"] = r["avg_latency_s"] * 1e3 if r["avg_latency_s"] is not None else None
    r["server_cpu_s"] = t1 - t0
    r["server_sched_s"] = (s1 - s0) / 1e9
    r["us_per_query"] = (t1 - t0) / done * 1e6 if done else None
    r["sched_us_per_query"] = (s1 - s0) / 1e3 / done if done else None
    # machine-wide busy share over the run (2 CPUs = 100 %): ours is server + dnsperf
    r["machine_busy_pct"] = 100.0 * (b1 - b0) / max(1, a1 - a0)
    r["loadavg"] = open("/proc/loadavg").read().split()[0]
    return r


def callgrind_total(path):
    """Total Ir of one callgrind output file ("totals:" or "summary:" line)."""
    total = 0
    with open(path) as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                total = int(line.split()[1])
    return total


def annotate(path):
    """{file:function: self Ir} from callgrind_annotate over one output file."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", "--auto=no",
                          path], capture_output=True, text=True).stdout
    fns = {}
    for line in out.splitlines():
        m = re.match(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*?)(\s+\[.*\])?$", line)
        if m and "PROGRAM TOTALS" not in line:
            fns[m.group(2)] = fns.get(m.group(2), 0) + int(m.group(1).replace(",", ""))
    return fns


def per_function_diff(files_n, files_2n, queries):
    """Self Ir per query of each function: the 2N profile minus the N profile, over the answers."""
    a, b = {}, {}
    for path in files_n:
        for k, v in annotate(path).items():
            a[k] = a.get(k, 0) + v
    for path in files_2n:
        for k, v in annotate(path).items():
            b[k] = b.get(k, 0) + v
    diff = [((b.get(k, 0) - a.get(k, 0)) / queries, k) for k in set(a) | set(b)]
    return sorted((d for d in diff if d[0] > 0.5), reverse=True)


def callgrind_run(server, datafile, warm_file, n_runs, tag):
    outpat = f"{server.dir}/callgrind.{tag}.%p.out"
    wrap = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={outpat}", "--trace-children=no"]
    before = set(os.listdir(server.dir))
    server.start(wrap=wrap, ready_timeout=120)
    try:
        if warm_file:
            dnsperf(server.port, warm_file, 120, f"{server.dir}/callgrind-{tag}-warm.txt",
                    maxruns=1, outstanding=20, timeout=10)
        r = dnsperf(server.port, datafile, 300, f"{server.dir}/callgrind-{tag}.txt",
                    maxruns=n_runs, outstanding=20, timeout=10)
    finally:
        server.stop()
    files = [f for f in set(os.listdir(server.dir)) - before if f.startswith(f"callgrind.{tag}.")]
    ir = sum(callgrind_total(f"{server.dir}/{f}") for f in files)
    return ir, int(r["completed"] or 0), files


# ---------------------------------------------------------------------------------------------
# the run

def fmt(v, spec="{:.2f}", none="—"):
    return none if v is None else spec.format(v)


def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--hdnsd", required=True)
    ap.add_argument("--reflector", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--hdnsd-flags", default="", help="extra hdnsd flags, e.g. '--workers 2'")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5, help="length of each dnsperf run")
    ap.add_argument("--rate", type=int, default=20000, help="fixed-rate latency run, QPS")
    ap.add_argument("--servers", default="reflector,reflector-sendto,hdnsd,unbound,dnsmasq,kresd,"
                                          "pdns-recursor,dnsdist")
    ap.add_argument("--callgrind", default="reflector,hdnsd,unbound,dnsmasq,kresd,pdns-recursor,dnsdist",
                    help="servers to run under callgrind ('' for none)")
    ap.add_argument("--callgrind-queries", type=int, default=20000)
    ap.add_argument("--no-memory", action="store_true", help="skip the 100,000-name load + RSS")
    ap.add_argument("--keep-data", action="store_true",
                    help="keep the generated zone/query files and raw callgrind outputs")
    args = ap.parse_args()

    rd = os.path.abspath(args.out)
    data = f"{rd}/data"
    os.makedirs(rd, exist_ok=True)
    started = time.time()
    meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "uname": os.uname().release,
            "cpus": os.cpu_count(), "loadavg_start": open("/proc/loadavg").read().strip(),
            "args": vars(args)}
    with open("/proc/cpuinfo") as f:
        m = re.search(r"model name\s*:\s*(.*)", f.read())
        meta["cpu_model"] = m.group(1) if m else "?"
    log(f"output in {rd}; load {meta['loadavg_start']}")
    if float(meta["loadavg_start"].split()[0]) > 0.7:
        log("WARNING: the machine is not quiet (1-min load > 0.7): other processes share the "
            "CPUs, so CPU-per-query and tail latency figures are inflated; the summary says so")

    miss_names = 120_000 * args.seconds        # more than any server forwards in one run
    gen_data(data, miss_names, args.rounds)
    log("data generated")

    extra = shlex.split(args.hdnsd_flags)
    classes = {"reflector": lambda: Reflector(rd, args.reflector),
               "reflector-sendto": lambda: ReflectorSendto(rd, args.reflector),
               "hdnsd": lambda: Hdnsd(rd, args.hdnsd, data, extra),
               "unbound": lambda: Unbound(rd), "dnsmasq": lambda: Dnsmasq(rd),
               "kresd": lambda: Kresd(rd), "pdns-recursor": lambda: PdnsRecursor(rd),
               "dnsdist": lambda: Dnsdist(rd)}
    servers = [classes[n]() for n in args.servers.split(",") if n]
    res = {"meta": meta, "notes": [], "servers": {s.name: {"rounds": []} for s in servers}}
    hd = next((s for s in servers if s.name == "hdnsd"), None)
    if hd:
        meta["hdnsd_flags"] = hd.argv()[1:]
        if not hd.has_upstream:
            res["notes"].append("hdnsd: --upstream not available in this build: no cache-hit, "
                                "cache-miss or 100,000-name rows for hdnsd")
        if not hd.has_max_answers:
            res["notes"].append("hdnsd: --max-answers not available in this build: the "
                                "100-endpoint cluster row is skipped (its answer would be truncated)")
    for n in res["notes"]:
        log(n)

    knot = Knotd(rd, data)
    atexit.register(knot.stop)   # also when a measurement raises: no knotd left running
    knot.start()
    log("knotd serving the zone")
    try:
        up = []
        for s in servers:
            try:
                s.start()
                up.append(s)
                res["servers"][s.name]["rss_start_kb"] = rss_kb(s.proc.pid)
            except RuntimeError as e:
                res["notes"].append(f"{s.name}: not measured: {e}")
                log(str(e))
        servers = up
        log("up: " + ", ".join(f"{s.name}:{s.port}(pid {s.proc.pid})" for s in servers))

        # memory + warm-up: every server sees every zone name once, then the RSS is read
        for s in servers:
            if not s.cache:      # the reflector, and hdnsd without --upstream: nothing to warm
                continue
            f = f"{data}/all.txt" if not args.no_memory else f"{data}/hits.txt"
            r = dnsperf(s.port, f, 120, f"{rd}/{s.name}-warm.txt", maxruns=1, timeout=5)
            time.sleep(0.5)
            res["servers"][s.name]["warm"] = r
            if not args.no_memory:
                res["servers"][s.name]["rss_100k_kb"] = rss_kb(s.proc.pid)
            log(f"{s.name}: warmed with {int(r['completed'] or 0)} answers, "
                f"RSS {rss_kb(s.proc.pid) / 1024:.1f} MiB")

        for rnd in range(args.rounds):
            order = servers[rnd % len(servers):] + servers[:rnd % len(servers)]
            log(f"round {rnd + 1}/{args.rounds}: {', '.join(s.name for s in order)}; "
                f"load {open('/proc/loadavg').read().split()[0]}")
            for s in order:
                row = {}
                rdir = f"{rd}/round{rnd + 1}"
                os.makedirs(rdir, exist_ok=True)
                if s.cache:   # the previous round's misses may have evicted some hit names
                    dnsperf(s.port, f"{data}/hits.txt", 60, f"{rdir}/{s.name}-rewarm.txt",
                            maxruns=1, timeout=5)
                if s.hits:
                    row["hits"] = measure(s, "hits", f"{data}/hits.txt", args.seconds, rdir)
                    row["rate"] = measure(s, "rate", f"{data}/hits.txt", args.seconds, rdir,
                                          qps=args.rate, verbose=True)
                if s.cluster:
                    row["cluster4"] = measure(s, "cluster4", f"{data}/cluster4.txt",
                                              args.seconds, rdir)
                    if not s.hits:    # no cache yet: the latency run uses the cluster answer
                        row["rate"] = measure(s, "rate", f"{data}/cluster4.txt", args.seconds,
                                              rdir, qps=args.rate, verbose=True)
                    if s.has_max_answers:
                        row["cluster100"] = measure(s, "cluster100", f"{data}/cluster100.txt",
                                                    args.seconds, rdir)
                if s.misses:
                    row["misses"] = measure(s, "misses", f"{data}/miss-{rnd}.txt", args.seconds,
                                            rdir, maxruns=1)
                res["servers"][s.name]["rounds"].append(row)
                brief = {k: (fmt(v.get("qps"), "{:.0f}"), fmt(v.get("us_per_query")))
                         for k, v in row.items()}
                log(f"  {s.name}: " + "  ".join(f"{k} {q} qps {u} us/q" for k, (q, u) in
                                                  brief.items()))
        for s in servers:
            res["servers"][s.name]["rss_end_kb"] = rss_kb(s.proc.pid)
    finally:
        for s in servers:
            rc = s.stop()
            log(f"stopped {s.name} (exit {rc})")
        knot_needed = bool(args.callgrind)
        if not knot_needed:
            knot.stop()

    # callgrind: N and 2N queries after the same warm-up, difference over the answers
    try:
        jobs = []     # (server, result key, query file, warm-up file, runs of the file, what)
        for name in [n for n in args.callgrind.split(",") if n]:
            s = next((x for x in servers if x.name == name), None)
            if s is None:
                continue
            if s.hits:     # 10,000 names per pass of the file
                runs = max(1, args.callgrind_queries // N_HIT_NAMES)
                jobs.append((s, "callgrind", f"{data}/hits.txt", f"{data}/hits.txt", runs,
                             "cache hit"))
            if s.cluster:  # a one-line file, repeated -n times
                jobs.append((s, "callgrind_cluster", f"{data}/cluster4.txt", None,
                             args.callgrind_queries, "cluster answer (4 endpoints)"))
        for s, key, qfile, warm, runs, what in jobs:
            tag = key.replace("callgrind", "cg")
            try:
                ir1, q1, f1 = callgrind_run(s, qfile, warm, runs, f"{tag}-n")
                ir2, q2, f2 = callgrind_run(s, qfile, warm, 2 * runs, f"{tag}-2n")
                per = (ir2 - ir1) / (q2 - q1) if q2 > q1 else None
                res["servers"][s.name][key] = {
                    "what": what, "ir_n": ir1, "answers_n": q1, "ir_2n": ir2, "answers_2n": q2,
                    "ir_per_query": per, "files": f1 + f2}
                log(f"callgrind {s.name}: {fmt(per, '{:.0f}')} Ir per {what} "
                    f"({ir1} Ir/{q1} answers, {ir2} Ir/{q2} answers)")
                if per and f1 and f2:
                    top = per_function_diff([f"{s.dir}/{x}" for x in f1],
                                            [f"{s.dir}/{x}" for x in f2], q2 - q1)
                    with open(f"{s.dir}/{key}-per-query.txt", "w") as f:
                        f.write(f"# {s.name}: self Ir per {what} by function: (2N run - N run) / "
                                f"{q2 - q1} answers; startup and warm-up cancel out\n")
                        for ir, fn in top[:40]:
                            f.write(f"{ir:10.1f}  {fn}\n")
                    res["servers"][s.name][key]["top"] = top[:15]
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                res["notes"].append(f"callgrind {s.name}: failed: {e}")
                log(f"callgrind {s.name} failed: {e}")
                s.stop()
    finally:
        knot.stop()

    # hdnsd with a 10,000-service / 100,000-endpoint view
    if hd and hd in servers:
        big = Hdnsd(rd, args.hdnsd, data, extra, endpoints="cluster-10k.json", port=5312)
        big.name = "hdnsd-10k"
        big.dir = f"{rd}/hdnsd-10k"
        os.makedirs(big.dir, exist_ok=True)
        big.ready_name = f"svc9999.bench.svc.{CLUSTER}"
        big.ready_rcode = 0
        try:
            big.start(ready_timeout=120)
            time.sleep(1.0)
            res["servers"]["hdnsd"]["rss_cluster_10k_kb"] = rss_kb(big.proc.pid)
            log(f"hdnsd with 10,000 services / 100,000 endpoints: RSS "
                f"{rss_kb(big.proc.pid) / 1024:.1f} MiB")
        except RuntimeError as e:
            res["notes"].append(f"hdnsd 10k-service view: {e}")
        finally:
            big.stop()

    if not args.keep_data:     # regenerated on every run; tens of MB
        shutil.rmtree(data, ignore_errors=True)
        for s in servers:
            for f in os.listdir(s.dir):
                if f.startswith("callgrind.") and f.endswith(".out"):
                    os.unlink(f"{s.dir}/{f}")
    meta["loadavg_end"] = open("/proc/loadavg").read().strip()
    meta["wall_s"] = time.time() - started
    with open(f"{rd}/results.json", "w") as f:
        json.dump(res, f, indent=1)
    summary = summarize(res, args)
    with open(f"{rd}/summary.md", "w") as f:
        f.write(summary)
    print(summary)
    log(f"done in {meta['wall_s']:.0f} s; results in {rd}")


def summarize(res, args):
    m = res["meta"]
    out = [f"# hdnsd benchmark {m['date']}", "",
           f"Machine: {m['cpu_model']}, {m['cpus']} CPUs, Linux {m['uname']}; server on CPU "
           f"{SERVER_CPU}, dnsperf and knotd on CPU {CLIENT_CPU}. Load average at start "
           f"`{m['loadavg_start']}`, at end `{m.get('loadavg_end', '?')}`.",
           f"{args.rounds} interleaved rounds of {args.seconds} s per dnsperf run; figures are "
           "the mean over rounds (per-round values in results.json). µs/q = server utime+stime "
           "over the run / answers. 'busy' = whole-machine CPU busy share during the run (our "
           "server + dnsperf ≈ 100 % at saturation on 2 CPUs; more means someone else ran).", ""]
    if m.get("hdnsd_flags"):
        out.append(f"hdnsd flags: `{' '.join(m['hdnsd_flags'])}`\n")
    for n in res["notes"]:
        out.append(f"- {n}")
    out.append("")

    def rows(kind, title, cols):
        lines = [f"## {title}", "", "| server | " + " | ".join(c[0] for c in cols) + " |",
                 "| --- |" + " ---: |" * len(cols)]
        any_row = False
        for name, sres in res["servers"].items():
            rr = [r[kind] for r in sres["rounds"] if kind in r]
            if not rr:
                continue
            any_row = True
            vals = []
            for _, key, spec in cols:
                if key == "lost":
                    vals.append(f"{int(sum((r.get('lost') or 0) for r in rr))}")
                else:
                    vals.append(fmt(mean([r.get(key) for r in rr]), spec))
            lines.append(f"| {name} | " + " | ".join(vals) + " |")
        return lines + [""] if any_row else []

    sat = [("QPS", "qps", "{:,.0f}"), ("avg latency ms", "avg_latency_ms", "{:.3f}"),
           ("lost", "lost", ""), ("server µs/q", "us_per_query", "{:.2f}"),
           ("(schedstat µs/q)", "sched_us_per_query", "{:.2f}"),
           ("busy %", "machine_busy_pct", "{:.0f}")]
    out += rows("hits", "Cache hits (10,000 distinct warm names, saturation)", sat)
    out += rows("cluster4", "Cluster answer: headless service, 4 endpoints (hdnsd only)", sat)
    out += rows("cluster100", "Cluster answer: headless service, 100 endpoints, --max-answers 8",
                sat)
    out += rows("rate", f"Fixed rate {args.rate:,} QPS (hdnsd: cache hits, or cluster answers "
                "when it has no cache)", [("p50 ms", "p50_ms", "{:.3f}"),
                                         ("p99 ms", "p99_ms", "{:.3f}"),
                                         ("p99.9 ms", "p999_ms", "{:.3f}"),
                                         ("max ms", "max_ms", "{:.2f}"), ("lost", "lost", ""),
                                         ("server µs/q", "us_per_query", "{:.2f}")])
    out += rows("misses", "Cache misses (unique names forwarded to knotd)",
                [("QPS", "qps", "{:,.0f}"), ("lost", "lost", ""),
                 ("server µs/q", "us_per_query", "{:.2f}"),
                 ("(schedstat µs/q)", "sched_us_per_query", "{:.2f}"),
                 ("busy %", "machine_busy_pct", "{:.0f}")])
    out += ["## Callgrind (user-space instructions per query, two-run difference)", "",
            "| server | what | Ir/query | N-run Ir / answers | 2N-run Ir / answers |",
            "| --- | --- | ---: | ---: | ---: |"]
    for name, sres in res["servers"].items():
        for c in (sres.get("callgrind"), sres.get("callgrind_cluster")):
            if not c:
                continue
            out.append(f"| {name} | {c['what']} | {fmt(c['ir_per_query'], '{:,.0f}')} | "
                       f"{c['ir_n']:,} / {c['answers_n']:,} | {c['ir_2n']:,} / {c['answers_2n']:,} |")
    out += ["", "## Memory (VmRSS)", "",
            "| server | at start MiB | 100,000 names cached MiB | end of run MiB | "
            "10k services / 100k endpoints MiB |", "| --- | ---: | ---: | ---: | ---: |"]
    for name, sres in res["servers"].items():
        def mib(k):
            return fmt(sres[k] / 1024, "{:.1f}") if k in sres else "—"
        out.append(f"| {name} | {mib('rss_start_kb')} | {mib('rss_100k_kb')} | "
                   f"{mib('rss_end_kb')} | {mib('rss_cluster_10k_kb')} |")
    out.append("")
    out += targets(res)
    return "\n".join(out) + "\n"


PEERS = ("unbound", "dnsmasq", "kresd", "pdns-recursor", "dnsdist")


def targets(res):
    """Issue 7's targets against hdnsd's figures from this same run."""
    sv = res["servers"]
    if "hdnsd" not in sv:
        return []

    def avg(name, kind, key):
        return mean([r[kind].get(key) for r in sv.get(name, {}).get("rounds", []) if kind in r])

    def lost(name, kind):
        rr = [r[kind] for r in sv.get(name, {}).get("rounds", []) if kind in r]
        return int(sum((r.get("lost") or 0) for r in rr)) if rr else None

    def verdict(v, limit):
        if v is None or limit is None:
            return "not measured"
        return "met" if v <= limit else "**not met**"

    lines = ["## Targets (issue 7), hdnsd in this run", "",
             "| target | limit | hdnsd | verdict |", "| --- | ---: | ---: | --- |"]
    ub = avg("unbound", "hits", "us_per_query")
    for kind, what in (("hits", "cache hit"), ("cluster4", "cluster answer (4 endpoints)"),
                       ("cluster100", "cluster answer (100 endpoints, --max-answers)")):
        v = avg("hdnsd", kind, "us_per_query")
        lines.append(f"| {what}: server CPU per query | 2.2 µs | {fmt(v, '{:.2f} µs')} | "
                     f"{verdict(v, 2.2)} |")
        if ub:
            lines.append(f"| {what}: ≤ 0.8 × Unbound's cache hit ({ub:.2f} µs) | "
                         f"{0.8 * ub:.2f} µs | {fmt(v, '{:.2f} µs')} | {verdict(v, 0.8 * ub)} |")
        lo = lost("hdnsd", kind)
        lines.append(f"| {what}: lost queries at saturation | 0 | {fmt(lo, '{}')} | "
                     f"{verdict(lo, 0)} |")
    for key in ("callgrind", "callgrind_cluster"):
        c = sv["hdnsd"].get(key)
        lines.append(f"| user-space instructions per query ({c['what'] if c else '—'}) | 1,500 | "
                     f"{fmt(c['ir_per_query'] if c else None, '{:,.0f}')} | "
                     f"{verdict(c['ir_per_query'] if c else None, 1500)} |")
    peer_p999 = [(avg(p, "rate", "p999_ms"), p) for p in PEERS if avg(p, "rate", "p999_ms")]
    best = min(peer_p999) if peer_p999 else (None, "—")
    v = avg("hdnsd", "rate", "p999_ms")
    lines.append(f"| p99.9 at the fixed rate ≤ best peer ({best[1]}) | "
                 f"{fmt(best[0], '{:.3f} ms')} | {fmt(v, '{:.3f} ms')} | {verdict(v, best[0])} |")
    v = avg("hdnsd", "misses", "us_per_query")
    lines.append(f"| cache miss: server CPU per forwarded query | 8 µs | {fmt(v, '{:.2f} µs')} | "
                 f"{verdict(v, 8.0)} |")
    v = sv["hdnsd"].get("rss_100k_kb")
    lines.append(f"| RSS with 100,000 cached names | 64 MiB | {fmt(v / 1024 if v else None, '{:.1f} MiB')} "
                 f"| {verdict(v / 1024 if v else None, 64)} |")
    v = sv["hdnsd"].get("rss_cluster_10k_kb")
    lines.append(f"| RSS with 10,000 services / 100,000 endpoints | 100 MiB | "
                 f"{fmt(v / 1024 if v else None, '{:.1f} MiB')} | {verdict(v / 1024 if v else None, 100)} |")
    return lines + [""]


if __name__ == "__main__":
    sys.exit(main())
