#!/usr/bin/env bash
# Valgrind memcheck of hdnsd (issue 8): the daemon under memcheck serves test/integration's
# cluster, answers dig over UDP and TCP (cluster names, a forwarded name twice: miss then cache
# hit, malformed packets), reloads on SIGHUP, answers again, and stops on SIGTERM. Fails on any
# memcheck error or definitely/indirectly lost block. Usage: test/valgrind/run.sh build/hdnsd
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-build/hdnsd}
work=$(mktemp -d /tmp/hdnsd-valgrind.XXXXXX)
py=/usr/bin/python3
# Below the ephemeral range, like test/integration/harness.py's free_port (dig sets SO_REUSEPORT
# too and, as the same user, could otherwise be handed hdnsd's port as its source port).
free_port() { "$py" -c 'import sys; sys.path.insert(0, "test/integration"); from harness import free_port; print(free_port())'; }
port=$(free_port); mport=$(free_port); uport=$(free_port)
cp test/integration/data/cluster.json "$work/cluster.json"
chmod 755 "$work"; chmod 644 "$work/cluster.json"  # run as root, hdnsd drops to nobody (--user)

# A fake upstream (answers A 192.0.2.53) for the forwarded names.
"$py" -c "
import sys, time; sys.path.insert(0, 'test/integration')
from upstream.fake_upstream import FakeUpstream
u = FakeUpstream($uport); time.sleep(600)" &
up=$!
trap 'kill $up 2>/dev/null || true; kill $vg 2>/dev/null || true; rm -rf "$work"' EXIT

valgrind --tool=memcheck --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \
  --errors-for-leak-kinds=definite,indirect --track-origins=yes --log-file="$work/valgrind.log" \
  "$bin" --listen "127.0.0.1:$port" --endpoints-file "$work/cluster.json" --metrics "127.0.0.1:$mport" \
  --upstream "127.0.0.1:$uport" --resolv-conf none --log-level info 2> "$work/hdnsd.log" &
vg=$!
for _ in $(seq 100); do curl -sf "127.0.0.1:$mport/ready" >/dev/null 2>&1 && break; sleep 0.2; done
curl -sf "127.0.0.1:$mport/ready" >/dev/null || { cat "$work/hdnsd.log"; echo "valgrind: hdnsd never got ready"; exit 1; }

q() { dig @127.0.0.1 -p "$port" +time=3 +tries=1 "$@" >/dev/null; }
round() {
  q web.shop.svc.cluster.local A; q +tcp web.shop.svc.cluster.local A
  q _http._tcp.web.shop.svc.cluster.local SRV; q -x 10.250.1.10; q nope.shop.svc.cluster.local
  q dns-version.cluster.local TXT; q www.example.com A; q www.example.com A; q +tcp www.example.org A
  "$py" -c "
import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for p in (b'\x12\x34', b'\x12\x34\x01\x00\x00\x02' + bytes(6), b'\x12\x34\x01\x00\x00\x01' + bytes(6) + b'\x3f'):
    s.sendto(p, ('127.0.0.1', $port))"
}
round
curl -sf "127.0.0.1:$mport/metrics" >/dev/null
kill -HUP $vg; sleep 1
round
kill -TERM $vg
rc=0; wait $vg || rc=$?
grep -E "ERROR SUMMARY|definitely lost|indirectly lost|possibly lost" "$work/valgrind.log" || true
if [ "$rc" -ne 0 ]; then
  echo "valgrind: hdnsd exited with $rc"; cat "$work/valgrind.log" | tail -60; tail -20 "$work/hdnsd.log"; exit 1
fi
echo "valgrind: clean (0 errors, no definite or indirect leaks)"
