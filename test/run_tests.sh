#!/usr/bin/env bash
# Runs the unit tests (doctest) and the integration tests (pytest) and prints one combined
# "N passed, M failed" line, the line CI reads. Exit status: 0 only if everything passed.
set -u
cd "$(dirname "$0")/.."
build=${HDNSD_BUILD:-build}
py=/usr/bin/python3   # Debian's python3, where python3-pytest and python3-dnspython are installed

unit_out=$(mktemp)
"$build/unit_tests" 2>&1 | tee "$unit_out"
unit_rc=${PIPESTATUS[0]}
# doctest: "[doctest] test cases:  12 |  12 passed | 0 failed | 0 skipped"
u_pass=$(sed -n 's/.*test cases: *[0-9]* *| *\([0-9]*\) passed.*/\1/p' "$unit_out" | tail -1)
u_fail=$(sed -n 's/.*test cases:.*| *\([0-9]*\) failed.*/\1/p' "$unit_out" | tail -1)
u_pass=${u_pass:-0}; u_fail=${u_fail:-0}
if [ "$unit_rc" -ne 0 ] && [ "$u_fail" -eq 0 ]; then u_fail=1; fi  # crashed before its summary

# Fuzz corpus replays (g++ builds of the libFuzzer targets): one test per target.
f_pass=0; f_fail=0
for replay in "$build"/fuzz/replay_*; do
  [ -x "$replay" ] || continue
  name=${replay##*/replay_}
  if "$replay" "test/fuzz/corpus/$name"; then f_pass=$((f_pass + 1)); else f_fail=$((f_fail + 1)); echo "FAILED: fuzz corpus replay $name"; fi
done
u_pass=$((u_pass + f_pass)); u_fail=$((u_fail + f_fail))

int_out=$(mktemp)
HDNSD_BIN="$build/hdnsd" "$py" -m pytest -q -p no:cacheprovider test/integration test/fakeapi 2>&1 | tee "$int_out"
int_rc=${PIPESTATUS[0]}
# pytest: "3 failed, 40 passed in 12.3s" (either order; errors count as failures)
i_pass=$(grep -Eo '[0-9]+ passed' "$int_out" | tail -1 | grep -Eo '[0-9]+')
i_fail=$(grep -Eo '[0-9]+ (failed|error|errors)' "$int_out" | awk '{s+=$1} END {print s+0}')
i_pass=${i_pass:-0}; i_fail=${i_fail:-0}
if [ "$int_rc" -ne 0 ] && [ "$i_fail" -eq 0 ]; then i_fail=1; fi  # collection error, no tests
rm -f "$unit_out" "$int_out"

echo "unit: $u_pass passed, $u_fail failed; integration: $i_pass passed, $i_fail failed"
echo "$((u_pass + i_pass)) passed, $((u_fail + i_fail)) failed"
[ "$u_fail" -eq 0 ] && [ "$i_fail" -eq 0 ] && [ $((u_pass + i_pass)) -gt 0 ]
