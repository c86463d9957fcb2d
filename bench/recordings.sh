#!/usr/bin/env bash
# Recording at scale (issue 11): N callers leave voicemail at once on the engine's embedded
# demo (English, 4, 1, 1), each streaming a pattern only it sends (so every stored WAV
# names its caller and each 20 ms frame its place), talk TALK seconds and hang up with the
# BYE right after their last packet. Then every stored WAV is compared with what its
# caller sent, frame by frame, and the tool prints: recordings stored vs callers, frames
# sent / in place / lost (missing at the end, silence) / out of place, the voicemail
# writer's fsync time per recording p50/p99/max (the engine logs it at exit; /metrics has
# it as ivr_recording_fsync_seconds), the engine's CPU, UDP receive drops on its RTP ports.
# Usage: bench/recordings.sh [N ...]   (default: 100 1000)
# Environment: TALK (seconds of message, default 10), KEEP=1 (keep the data and log).
# Loopback only: the callers run on the same machine (and share its cores).
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cargo build --release -q -p ivr-server -p ivr-tests --bin ivr --bin ivr-load
extra=()
if [[ "${KEEP:-0}" == 1 ]]; then extra+=(--keep); fi
for n in ${@:-100 1000}; do
  target/release/ivr-load --recordings --calls "$n" --talk "${TALK:-10}" \
    --ivr target/release/ivr "${extra[@]}"
done
