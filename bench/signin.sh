#!/usr/bin/env bash
# Sign-in under attack, measured (issue 8): how long a sign-in takes for a real user and for
# a name that is not a user (they should match: no user enumeration by timing), what 64
# concurrent guesses get, and the engine's RSS over bursts of 256 concurrent sign-ins.
# Usage: bench/signin.sh [IVR_BINARY]   (default: the debug build). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/debug/ivr}
[ -x "$bin" ] || cargo build -q -p ivr-server --bin ivr
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
echo "a long staff password" | "$bin" staff --users "$dir/staff.yaml" add-user alice --mailbox '*' 2>/dev/null
echo "a long staff password" | "$bin" staff --users "$dir/staff.yaml" add-user bob --mailbox '*' 2>/dev/null
"$bin" serve --listen 127.0.0.1:0 --http 127.0.0.1:0 --rtp-ports 41000-41199 --data-dir "$dir" \
  >"$dir/out" 2>"$dir/log" &
pid=$!
for _ in $(seq 100); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.1; done
addr=$(grep -o 'http=[0-9.:]*' "$dir/out" | cut -d= -f2)
python3 - "$addr" "$pid" <<'PY'
import sys, time, threading, http.client, statistics
host, port = sys.argv[1].split(':'); pid = int(sys.argv[2])
def rss():
    for l in open(f'/proc/{pid}/status'):
        if l.startswith('VmRSS'): return int(l.split()[1]) // 1024
def login(user, pw):
    try:
        c = http.client.HTTPConnection(host, int(port), timeout=120)
        t = time.perf_counter()
        c.request("POST", "/staff/login", f"user={user}&password={pw}",
                  {"Content-Type": "application/x-www-form-urlencoded"})
        r = c.getresponse(); r.read()
        return r.status, time.perf_counter() - t
    except Exception:
        return None, 0
# Alternate, 4 each (the limit is 5 failures per user and address).
known, unknown = [], []
for i in range(4):
    unknown.append(login(f'nobody{i}', 'wrongguess99')[1])
    known.append(login('alice', 'wrongguess99')[1])
print(f"sign-in, real user:    median {statistics.median(known)*1000:.1f} ms")
print(f"sign-in, unknown user: median {statistics.median(unknown)*1000:.1f} ms")
def burst(n, user, pw):
    res = []
    th = [threading.Thread(target=lambda: res.append(login(user, pw)[0])) for _ in range(n)]
    [t.start() for t in th]; [t.join() for t in th]
    return {s: res.count(s) for s in set(res)}
time.sleep(0.5)
print("64 concurrent guesses for a fresh user:", burst(64, 'bob', 'wrongguess99'))
print("idle RSS", rss(), "MiB")
for b in range(6):
    print(f"burst {b} of 256 right-password sign-ins:", burst(256, 'alice', 'a+long+staff+password'), "RSS", rss(), "MiB")
PY
