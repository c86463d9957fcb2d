#!/usr/bin/env bash
# Relay cost of bridged calls next to menu calls, in the engine alone (no sockets):
# engine time per call-second. Usage: bench/bridge.sh [N ...]   (default: 100 500).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p ivr-tests --bin bridge-bench
for n in "${@:-100 500}"; do
  echo "== $n calls"
  target/release/bridge-bench --calls "$n" --seconds 20
done
