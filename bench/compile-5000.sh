#!/usr/bin/env bash
# Benchmark: validate and compile a generated config of about 5,000 lines with `ivr check`.
# Usage: bench/compile-5000.sh   (builds the release binary; prints lines and timings)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p ivr-server
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 - "$dir" <<'PY'
import struct, sys, math
d = sys.argv[1]
# one 1-second 8 kHz WAV shared by every prompt name
n = 8000
data = b"".join(struct.pack("<h", int(3000 * math.sin(2 * math.pi * 440 * i / 8000))) for i in range(n))
hdr = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16) + b"data" + struct.pack("<I", len(data))
open(f"{d}/p.wav", "wb").write(hdr + data)
menus = 600
lines = ["entry: m0", "prompts:"]
for i in range(200):
    lines.append(f"  p{i}: p.wav")
lines.append("menus:")
for i in range(menus):
    lines += [
        f"  m{i}:",
        f"    prompt: [p{i % 200}, p{(i + 1) % 200}]",
        "    timeout: 5",
        "    retries: { no_input: 2, invalid: 3 }",
        "    options:",
        f"      \"1\": {{ goto: m{(i + 1) % menus} }}",
        f"      \"2\": {{ play: p{(i + 7) % 200} }}",
        "      \"9\": { hangup: p0 }",
    ]
open(f"{d}/big.yaml", "w").write("\n".join(lines) + "\n")
print(len(lines), "lines")
PY
for i in 1 2 3 4 5; do
  /usr/bin/time -f "%e s elapsed, %M KiB max RSS" target/release/ivr check "$dir/big.yaml" 2>&1 | tail -1
done
