#!/usr/bin/env bash
# Media benchmark (issue 11): the engine and its floor under the same callers, in one run.
# For each N, N callers that stream G.711 (20 ms PCMU) first call `rtp-echo` (the floor: it
# only echoes RTP), then the engine on its embedded demo, hearing prompts; 20% press keys
# (RFC 4733) through the menus and 10% record voicemail. Prints, for both, CPU per
# call-second over the steady window, RSS per call, caller-side interarrival and loss, the
# engine's send lateness, and the ratio engine/floor.
# Usage: bench/media.sh [N ...]   (default: 100 1000)
# Environment: HOLD (window seconds, default 20), BRIDGED=1 (every caller presses 5 and is
# bridged to an agent echoed by rtp-echo on 127.0.0.1:5070: two legs per call),
# KEYS / VOICEMAIL (percentages, default 20 / 10), CPS (after the window, while the callers
# still hold media, SIPp's `uac` sets up and tears down calls at this rate, at most 200 at a
# time, for 5 s; prints the rate achieved, and the held calls' loss, interarrival and the
# engine's send lateness during it; default 0: none). Loopback only: the callers run on the
# same machine, and their own CPU (printed) is the same in both runs. The engine runs its
# default shards (one per core); IVR_SHARDS=N sets them (bench/shards.sh climbs N per S).
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cargo build --release -q -p ivr-server -p ivr-tests --bin ivr --bin ivr-load --bin rtp-echo
extra=()
if [[ "${BRIDGED:-0}" == 1 ]]; then extra+=(--bridged); fi
for n in ${@:-100 1000}; do
  target/release/ivr-load --media --calls "$n" --hold "${HOLD:-20}" \
    --keys "${KEYS:-20}" --voicemail "${VOICEMAIL:-10}" --cps "${CPS:-0}" "${extra[@]}" \
    --ivr target/release/ivr --echo target/release/rtp-echo
done
