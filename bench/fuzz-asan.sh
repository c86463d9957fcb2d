#!/usr/bin/env bash
# Fuzz each target with AddressSanitizer for a budget of CPU time (not wall time), so that
# a run shared with other work still gets its full hour of fuzzing.
#
# Usage: bench/fuzz-asan.sh [CPU_SECONDS] [TARGET...]     (default 3600 s each, every parser)
# Needs `cargo install cargo-fuzz`. Runs at the lowest priority (nice 19).
#
# The corpus of each target is kept in tests/fuzz/corpus/TARGET (minimized at the end with
# `cargo fuzz cmin`, committed); a crash leaves its input in tests/fuzz/artifacts/TARGET and
# makes the script exit non-zero. One line per run is appended to tests/fuzz/RUNS.md.
set -uo pipefail
cd "$(dirname "$0")/.."
budget=${1:-3600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(sip_parse route_key sdp rtp srtp tcp_framing digest uac refer register menu_yaml)
export RUSTC_BOOTSTRAP=1
status=0
for t in "${targets[@]}"; do
  mkdir -p "tests/fuzz/corpus/$t" "tests/fuzz/artifacts/$t"
  nice -n 19 cargo fuzz build --fuzz-dir tests/fuzz -s address "$t" >/dev/null 2>&1 || {
    echo "!! $t: build failed"; status=1; continue; }
  bin=$(ls -d tests/fuzz/target/*/release/"$t" | head -1)
  log="tests/fuzz/artifacts/$t/last-run.log"
  start=$(date -u +%Y-%m-%dT%H:%MZ)
  # -timeout is wall time: at nice 19 on a busy machine an input may wait its turn for
  # seconds, so only a long stall counts as a hang.
  nice -n 19 "$bin" -artifact_prefix="tests/fuzz/artifacts/$t/" -print_final_stats=1 \
    -timeout=300 -rss_limit_mb=2048 "tests/fuzz/corpus/$t" "tests/fuzz/seeds/$t" >"$log" 2>&1 &
  pid=$!
  ticks=$(getconf CLK_TCK)
  cpu=0
  # Stop it (SIGINT: libFuzzer prints its stats and exits cleanly) once it has used the budget.
  while kill -0 "$pid" 2>/dev/null; do
    sleep 5
    read -r ut st < <(awk '{print $14, $15}' "/proc/$pid/stat" 2>/dev/null) || break
    cpu=$(( (ut + st) / ticks ))
    if [ "$cpu" -ge "$budget" ]; then kill -INT "$pid"; fi
  done
  wait "$pid"; rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}')
  crashed=$(grep -c -E 'ERROR: AddressSanitizer|panicked|deadly signal|ERROR: libFuzzer' "$log")
  # Exit 0, or 72/130 after our SIGINT, is a clean finish; anything else with a report is a crash.
  if [ "$crashed" -gt 0 ]; then
    result="CRASH (see tests/fuzz/artifacts/$t)"; status=1
  else
    result="no crash"
  fi
  nice -n 19 cargo fuzz cmin --fuzz-dir tests/fuzz -s address "$t" "tests/fuzz/corpus/$t" >/dev/null 2>&1 || true
  files=$(ls "tests/fuzz/corpus/$t" | wc -l)
  line="| $start | $t | ${cpu} s CPU | ${execs:-?} execs | $files corpus files | $result (exit $rc) |"
  echo "$line"
  echo "$line" >> tests/fuzz/RUNS.md
done
exit $status
