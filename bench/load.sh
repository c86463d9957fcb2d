#!/usr/bin/env bash
# Load benchmark: hold N concurrent calls in the demo menu and measure the engine.
# Usage: bench/load.sh [N ...]   (default: 100 1000). Loopback only; the load tool runs on
# the same machine and its own CPU use competes with the engine's.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || true
cargo build --release -q -p ivr-server -p ivr-tests --bins
for n in "${@:-100 1000}"; do
  for c in $n; do
    echo "== $c concurrent calls"
    target/release/ivr-load --calls "$c" --hold 20 --cps-calls 2000 --ivr target/release/ivr
  done
done
