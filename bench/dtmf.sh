#!/usr/bin/env bash
# In-band DTMF receivers side by side: this engine's detector, spandsp's dtmf_rx (Debian
# libspandsp-dev) and the detector it replaced, on one generated receiver test set (every
# accept/reject row of the Q.24 limits, plus prompt and espeak-ng speech), each case from
# every starting offset.
# Usage: bench/dtmf.sh [STEP]   (offsets 0..160 every STEP samples; default 1)
set -euo pipefail
cd "$(dirname "$0")/.."
step="${1:-1}"
need_apt=()
[ -f /usr/include/spandsp/dtmf.h ] || need_apt+=(libspandsp-dev)
command -v espeak-ng >/dev/null 2>&1 || need_apt+=(espeak-ng)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
out="target/dtmf-bench"
rm -rf "$out"
mkdir -p "$out"
cargo build --release -q -p ivr-tests --bin dtmf-bench
cc -O2 -o "$out/dtmf_spandsp" bench/dtmf_spandsp.c -lspandsp -lm
target/release/dtmf-bench write "$out" "$step"
"$out/dtmf_spandsp" "$out" > "$out/spandsp.tsv"
target/release/dtmf-bench report "$out"
