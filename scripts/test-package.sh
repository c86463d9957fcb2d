#!/usr/bin/env bash
# The Debian package, end to end, as CI runs it (scripts/test.sh calls this after the
# workspace tests): build it from the binary already built (no second compile), install it
# with dpkg, check what it put in place, run the unit's own command line as the ivr user
# (no systemd needed), place a SIPp call, reload with SIGHUP as `systemctl reload` does,
# stop it with SIGTERM, and purge the package. Fails loudly at the first problem.
#
#   scripts/test-package.sh [BINARY]     (default: target/debug/ivr)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/debug/ivr}
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
fail() { echo "package test: $*" >&2; exit 1; }
for tool in dpkg-deb runuser pgrep sipp; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool is required"
done
work=$(mktemp -d)
pid=""
# Set once this run installs the package: only then may the cleanup purge it (an ivr package
# that was there before is the machine's, with its data in /var/lib/ivr).
ours=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  if [ -n "$ours" ]; then $SUDO dpkg --purge ivr >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

start=$(date +%s)
deb=$(scripts/build-deb.sh "$bin" "$work/deb")
echo "package test: built $(basename "$deb") ($(du -h "$deb" | cut -f1)) in $(( $(date +%s) - start )) s" >&2
dpkg-deb --info "$deb" | grep "Package: ivr" >/dev/null || fail "no control file"
if dpkg -s ivr >/dev/null 2>&1; then fail "an ivr package is installed already: this test would replace it"; fi

ours=1
$SUDO dpkg -i "$deb" >/dev/null || fail "dpkg -i failed"
getent passwd ivr >/dev/null || fail "postinst made no ivr user"
[ "$(stat -c %U:%a /var/lib/ivr)" = "ivr:750" ] || fail "/var/lib/ivr is $(stat -c %U:%a /var/lib/ivr)"
for f in /usr/bin/ivr /etc/ivr/ivr.yaml /etc/ivr/config.yaml /etc/ivr/prompts/main_en.wav \
  /usr/lib/systemd/system/ivr.service /usr/share/man/man1/ivr.1.gz /usr/share/man/man1/ivr-serve.1.gz \
  /usr/share/bash-completion/completions/ivr /usr/share/zsh/vendor-completions/_ivr \
  /usr/share/fish/vendor_completions.d/ivr.fish /usr/share/doc/ivr/first-hour.md; do
  [ -s "$f" ] || fail "$f is missing or empty"
done
dpkg-query -W -f='${Conffiles}\n' ivr | grep /etc/ivr/ivr.yaml >/dev/null || fail "/etc/ivr/ivr.yaml is not a conffile"
bash -n /usr/share/bash-completion/completions/ivr || fail "the bash completion does not parse"
zcat /usr/share/man/man1/ivr-serve.1.gz | grep 'listen' >/dev/null || fail "ivr-serve(1) lacks --listen"
command -v systemd-analyze >/dev/null 2>&1 || fail "systemd-analyze is required (Debian: systemd)"
verified=$(systemd-analyze verify /usr/lib/systemd/system/ivr.service 2>&1) \
  || fail "systemd-analyze verify refuses the unit: $verified"
[ -z "$verified" ] || echo "package test: systemd-analyze says: $verified" >&2
unit=/usr/lib/systemd/system/ivr.service
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
exec_reload=$(sed -n 's/^ExecReload=//p' "$unit")
[ "$exec_reload" = '/bin/kill -HUP $MAINPID' ] || fail "ExecReload is not SIGHUP: $exec_reload"
grep -q '^User=ivr$' "$unit" || fail "the unit does not run as ivr"

# The installed binary reads /etc/ivr/ivr.yaml by itself: ivr callbacks finds /var/lib/ivr.
runuser -u ivr -- /usr/bin/ivr serve --print-config | grep '^data-dir: "/var/lib/ivr" *# settings file' >/dev/null \
  || fail "the installed ivr does not read /etc/ivr/ivr.yaml"

# The unit's command line, as the unit runs it (user ivr, in /var/lib/ivr), with the ports
# moved by environment variables (which win over the file) so that it cannot collide with
# anything else on this machine.
cd /var/lib/ivr
runuser -u ivr -- env RUST_LOG=info IVR_LISTEN=127.0.0.1:0 IVR_HTTP=127.0.0.1:0 \
  IVR_RTP_PORTS=36000-36099 $exec_start > "$work/out" 2> "$work/log" &
pid=$!
cd - >/dev/null
for _ in $(seq 1 200); do grep -q "^ivr listening" "$work/out" && break; sleep 0.1; done
line=$(head -n 1 "$work/out")
sip=$(sed -n 's/.* udp=\([^ ]*\) .*/\1/p' <<<"$line")
[ -n "$sip" ] || { cat "$work/log" >&2; fail "the service did not start: $line"; }
echo "package test: $exec_start listening on $sip"
sipp "$sip" -sn uac -m 1 -d 2000 -i 127.0.0.1 -p 0 -mi 127.0.0.1 -nostdin -timeout 30s -timeout_error \
  >"$work/sipp" 2>&1 || { tail -20 "$work/sipp" >&2; cat "$work/log" >&2; fail "the SIPp call failed"; }
grep -q "call ended" "$work/log" || { cat "$work/log" >&2; fail "no call in the log"; }
grep -q "menu=language" "$work/log" || { cat "$work/log" >&2; fail "the call did not reach the demo's menu"; }

# systemctl reload = SIGHUP: the config reloads.
kill -HUP "$(pgrep -P "$pid" -x ivr || echo "$pid")"
for _ in $(seq 1 100); do grep -q "config reloaded" "$work/log" && break; sleep 0.1; done
grep -q "config reloaded" "$work/log" || { cat "$work/log" >&2; fail "SIGHUP did not reload"; }

# systemctl stop = SIGTERM: a clean exit, 0.
kill -TERM "$(pgrep -P "$pid" -x ivr || echo "$pid")"
status=0
wait "$pid" || status=$?
pid=""
[ "$status" -eq 0 ] || { cat "$work/log" >&2; fail "exit status $status after SIGTERM"; }
runuser -u ivr -- /usr/bin/ivr callbacks list >/dev/null || fail "ivr callbacks cannot read /var/lib/ivr"

$SUDO dpkg --purge ivr >/dev/null || fail "dpkg --purge failed"
[ ! -e /var/lib/ivr ] && [ ! -e /etc/ivr/ivr.yaml ] && [ ! -e /usr/bin/ivr ] || fail "purge left files behind"
echo "package test: ok in $(( $(date +%s) - start )) s"
