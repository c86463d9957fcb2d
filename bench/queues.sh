#!/usr/bin/env bash
# Queue benchmark, black box: the release `ivr` binary on 127.0.0.1, a round-robin queue
# worked by 5 static SIPp agents (one SIPp UAS each: answers after 0.3 s, talks 2 s, hangs
# up), and 300 SIPp callers (2 per second) who press 1, stream a known recording and wait
# for the engine's BYE (max wait 30 s, then hung up). Prints each agent's share, the queue
# report's service level and abandon figures, and the engine's CPU (utime + stime from
# /proc/PID/stat, before the first call and after the last) per bridged call-second.
# It is tests/tests/queue_load.rs run with bigger numbers (QUEUE_LOAD_*).
# Usage: bench/queues.sh [CALLS [AGENTS [STRATEGY [RATE]]]]   (default: 300 5 round_robin 2)
# Loopback only; SIPp runs on the same machine and its CPU competes with the engine's.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || true
cargo build --release -q -p ivr-server
export IVR_BIN="$PWD/target/release/ivr"
export QUEUE_LOAD_CALLS="${1:-300}" QUEUE_LOAD_AGENTS="${2:-5}"
export QUEUE_LOAD_STRATEGY="${3:-round_robin}" QUEUE_LOAD_RATE="${4:-2}"
export QUEUE_LOAD_TALK_MS=2000 QUEUE_LOAD_MAX_WAIT=30 QUEUE_LOAD_PRINT=1
cargo test --release -q -p ivr-tests --test queue_load -- --nocapture 2>&1 |
  grep -v '^\(running\|test result\|$\)'
