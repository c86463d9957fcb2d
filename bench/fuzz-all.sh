#!/usr/bin/env bash
# Run every fuzz target for SECONDS each (default 600) with no sanitizer, one after another.
# Usage: bench/fuzz-all.sh [SECONDS]   (needs `cargo install cargo-fuzz`)
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
status=0
for t in sip_parse tcp_framing sdp rtp; do
  mkdir -p tests/fuzz/corpus/$t
  echo "== $t for ${secs}s"
  cargo fuzz run --fuzz-dir tests/fuzz -s none "$t" tests/fuzz/corpus/$t tests/fuzz/seeds/$t -- \
    -max_total_time="$secs" -print_final_stats=1 2>&1 | grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss)|panicked|SUMMARY|crash-" || true
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
done
exit $status
