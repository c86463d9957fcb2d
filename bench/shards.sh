#!/usr/bin/env bash
# Scaling with shards (issue 11): for S = 1, 2, ... MAX engine shards, the most calls the
# engine holds while 99 % of its RTP packets leave within 1 ms of their time (the steady
# window's own lateness, from /metrics) and no caller loses a packet. N climbs through
# STEPS until a step misses; each step is one `ivr-load --media` run (floor and engine,
# the same callers: 20 % pressing keys, 10 % recording; BRIDGED=1 for two legs per call).
# Prints each step, the most calls held per S, and N(S)/N(1).
#
# Usage: bench/shards.sh [MAX_SHARDS]   (default: the number of cores)
# Environment: STEPS (default "100 200 300 400 600 800 1200 1600 2400"), HOLD (window
# seconds, default 10), BRIDGED=1.
#
# The callers and the echo run on the same machine as the engine: a scaling figure needs
# cores beyond the S the engine's shards use (the load generator takes about a core per
# 1,000 callers). On a 2-core machine shared with the load generator the steps measure
# the generator as much as the engine.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cargo build --release -q -p ivr-server -p ivr-tests --bin ivr --bin ivr-load --bin rtp-echo
max=${1:-$(nproc)}
extra=()
if [[ "${BRIDGED:-0}" == 1 ]]; then extra+=(--bridged); fi
declare -A held
for s in $(seq 1 "$max"); do
  held[$s]=0
  for n in ${STEPS:-100 200 300 400 600 800 1200 1600 2400}; do
    out=$(IVR_SHARDS=$s target/release/ivr-load --media --calls "$n" --hold "${HOLD:-10}" \
      "${extra[@]}" --ivr target/release/ivr --echo target/release/rtp-echo 2>&1) || true
    window=$(grep "send lateness in the window" <<<"$out" || true)
    within=$(grep -o '[0-9.]*% ≤ 1 ms' <<<"$window" | grep -o '^[0-9.]*' || echo 0)
    lost=$(grep "caller loss" <<<"$out" | grep -o '([0-9]* of' | tail -1 | grep -o '[0-9]*' || echo '?')
    ratio=$(grep -o 'ratio engine/floor, CPU per call-second: [0-9.]*x' <<<"$out" | grep -o '[0-9.]*x' || echo '?')
    echo "shards=$s calls=$n: ${within}% of packets within 1 ms in the window, caller loss $lost, CPU ratio $ratio"
    if awk -v w="$within" 'BEGIN { exit !(w >= 99) }' && [[ "$lost" == 0 ]]; then
      held[$s]=$n
    else
      break
    fi
  done
  echo "shards=$s: ${held[$s]} calls held with p99 send lateness < 1 ms"
done
for s in $(seq 1 "$max"); do
  awk -v s="$s" -v n="${held[$s]}" -v one="${held[1]}" \
    'BEGIN { printf "N(%d) = %d, N(%d)/N(1) = %s\n", s, n, s, (one > 0 ? sprintf("%.2f", n / one) : "-") }'
done
