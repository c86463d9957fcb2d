#!/usr/bin/env bash
# Run fuzz targets for SECONDS each (default 600) with no sanitizer, one after another.
# Usage: bench/fuzz-all.sh [SECONDS] [TARGET...]   (needs `cargo install cargo-fuzz`)
# Exits non-zero if any target crashed; the crashing input is in tests/fuzz/artifacts/.
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(sip_parse route_key tcp_framing sdp rtp srtp menu_yaml ics reorder deposit digest register uac refer)
status=0
for t in "${targets[@]}"; do
  mkdir -p "tests/fuzz/corpus/$t"
  log=$(mktemp)
  echo "== $t for ${secs}s"
  cargo fuzz run --fuzz-dir tests/fuzz -s none "$t" "tests/fuzz/corpus/$t" "tests/fuzz/seeds/$t" -- \
    -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1
  rc=$?
  grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss)|panicked|SUMMARY|crash-" "$log" || true
  if [ $rc -ne 0 ]; then echo "!! $t failed (exit $rc)"; status=1; fi
  rm -f "$log"
done
exit $status
