#!/usr/bin/env bash
# Two engines behind one Kamailio (kamailio/kamailio.cfg) on loopback, called by SIPp with
# the route-following scenario: N calls (default 200) with both engines up, then N calls
# during which one engine is killed with SIGKILL after the first quarter. Prints the calls
# each engine took, SIPp's successes and failures, and the failovers Kamailio logged.
# Usage: bench/proxy.sh [N] [--release]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200}
profile=debug
if [ "${2:-}" = "--release" ]; then profile=release; cargo build --release -q -p ivr-server; else cargo build -q -p ivr-server; fi
ivr=target/$profile/ivr
kam=$(command -v kamailio || echo /usr/sbin/kamailio)
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

start_engine() { # name rtp-range
  "$ivr" serve --listen 127.0.0.1:0 --http off --rtp-ports "$2" --data-dir "$work/$1" \
    --log-format json > "$work/$1.out" 2> "$work/$1.log" &
  echo $! > "$work/$1.pid"
  for _ in $(seq 100); do grep -q listening "$work/$1.out" 2>/dev/null && break; sleep 0.05; done
  sed -n 's/.*udp=\([^ ]*\).*/\1/p' "$work/$1.out"
}
a=$(start_engine a 32000-32999); b=$(start_engine b 33000-33999)
pids+=("$(cat "$work/a.pid")" "$(cat "$work/b.pid")")
printf '1 sip:%s\n1 sip:%s\n' "$a" "$b" > "$work/ds.list"
port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/run"
"$kam" -f kamailio/kamailio.cfg -DD -E -m 64 -M 8 -l "udp:127.0.0.1:$port" -l "tcp:127.0.0.1:$port" \
  -Y "$work/run" -P "$work/run/k.pid" -A "DISPATCHER_LIST=\"$work/ds.list\"" -A PING_INTERVAL=1 \
  -A CHILDREN=4 -A INVITE_TIMEOUT=1500 > /dev/null 2> "$work/kamailio.log" &
pids+=($!)
sleep 1
calls() { grep -c '"call started"' "$work/$1.log" || true; }
run() { # label sipp-args...
  local label=$1; shift
  sipp "127.0.0.1:$port" -i 127.0.0.1 -p 0 -mi 127.0.0.1 -sf tests/sipp/proxy_call.xml -nostdin \
    -timeout 120s -timeout_error "$@" > "$work/$label.sipp" 2>&1 || true
  echo "== $label: a=$(calls a) b=$(calls b) (cumulative calls per engine)"
  grep -E "Successful call|Failed call" "$work/$label.sipp" | tail -2 | sed 's/  */ /g'
}
ended() { grep -c '"call ended"' "$work/$1.log" || true; }
run both-up -m "$n" -r 20 -l 60 -d 2000
before_b=$(calls b); before_a=$(calls a); ended_a=$(ended a)
( sleep $(( n / 4 / 20 + 1 )); kill -9 "$(cat "$work/a.pid")"; echo "== engine a killed (kill -9)" ) &
run kill-a -m "$n" -r 20 -l 60 -d 2000
echo "== calls on b during the kill run: $(( $(calls b) - before_b ))"
echo "== calls in progress on a when it was killed (lost with it): $(( $(calls a) - before_a - ($(ended a) - ended_a) ))"
grep -c "failed for" "$work/kamailio.log" | sed 's/^/== kamailio failovers logged: /'
