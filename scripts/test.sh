#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need when missing,
# then formatting, lints, the binary, and every test (unit, property, virtual-time, SIPp,
# PostgreSQL, headless Chromium, schemathesis).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v sipp >/dev/null 2>&1 || need_apt+=(sip-tester)
command -v espeak-ng >/dev/null 2>&1 || need_apt+=(espeak-ng)
command -v unshare >/dev/null 2>&1 || need_apt+=(util-linux)   # baresip's test: own network namespace
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 || need_apt+=(postgresql)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# Kamailio (the proxy the behind-a-proxy tests put in front of two engines) lives in sbin.
kamailio_bin() { command -v kamailio || ls /usr/sbin/kamailio 2>/dev/null; }
kamailio_bin >/dev/null 2>&1 || need_apt+=(kamailio)
python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
# scripts/test-package.sh finds the packaged server's process with pgrep (minimal images lack it).
command -v pgrep >/dev/null 2>&1 || need_apt+=(procps)
# The clean-stop test holds the SQLite write lock from another process (tests/tests/voicemail_sipp.rs).
command -v sqlite3 >/dev/null 2>&1 || need_apt+=(sqlite3)
# The TLS test calls the engine with baresip over SIP-over-TLS with SRTP (tests/tests/tls.rs);
# its srtp, sndfile and aufile modules come with baresip-core.
{ command -v baresip >/dev/null 2>&1 && [ -e /usr/lib/baresip/modules/srtp.so ]; } || need_apt+=(baresip)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
  # Debian's kamailio package enables and starts its own service, which takes port 5060 on
  # every address, 127.0.0.1 included: `ivr serve` (README) would then find its port taken.
  # The tests start their own Kamailio; the one installed here is only a program.
  if [[ " ${need_apt[*]} " == *" kamailio "* ]] && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now kamailio.service >/dev/null 2>&1 || true
  fi
fi
command -v sipp >/dev/null 2>&1 || { echo "SIPp is required and could not be installed" >&2; exit 1; }
command -v espeak-ng >/dev/null 2>&1 || { echo "espeak-ng is required (say: prompts) and could not be installed" >&2; exit 1; }
command -v baresip >/dev/null 2>&1 || { echo "baresip is required (the bridged-transfer test's destination) and could not be installed" >&2; exit 1; }
kamailio_bin >/dev/null 2>&1 || { echo "kamailio is required (tests/tests/proxy.rs) and could not be installed" >&2; exit 1; }
command -v chromium >/dev/null 2>&1 || { echo "chromium is required (the staff page test) and could not be installed" >&2; exit 1; }
command -v curl >/dev/null 2>&1 || { echo "curl is required (the documented sign-in is run as written) and could not be installed" >&2; exit 1; }
command -v sqlite3 >/dev/null 2>&1 || { echo "sqlite3 is required (the clean-stop test) and could not be installed" >&2; exit 1; }
for m in srtp sndfile aufile aubridge account menu g711; do
  [ -e "/usr/lib/baresip/modules/$m.so" ] || { echo "baresip with its $m module is required (tests/tests/tls.rs) and could not be installed" >&2; exit 1; }
done

# The schema test validates the examples with Python's jsonschema, as editors would.
# The staff page test drives the system's chromium with Playwright (no browser download).
# schemathesis tests the staff API against its OpenAPI document.
# prometheus_client's parsers read /metrics back as Prometheus would.
py_pkgs=(jsonschema pyyaml playwright schemathesis prometheus-client)
if ! python3 -c "import jsonschema, yaml, playwright, schemathesis, prometheus_client" 2>/dev/null; then
  # Debian's own python3 refuses pip installs outside a virtualenv (PEP 668) unless asked.
  python3 -m pip install -q "${py_pkgs[@]}" 2>/dev/null \
    || python3 -m pip install -q --break-system-packages "${py_pkgs[@]}"
fi
# pip may put the schemathesis command in the user's script folder.
PATH="$PATH:$(python3 -m site --user-base)/bin"
python3 -c "import jsonschema, yaml, playwright, schemathesis, prometheus_client" || { echo "python3 with jsonschema, pyyaml, playwright, schemathesis and prometheus_client is required" >&2; exit 1; }
command -v schemathesis >/dev/null 2>&1 || { echo "the schemathesis command is not on PATH" >&2; exit 1; }

# The store is tested on SQLite and on PostgreSQL: a throwaway server for this run.
pg_dir=$(scripts/postgres.sh)
trap 'scripts/postgres.sh stop "$pg_dir"' EXIT
export IVR_TEST_POSTGRES="postgres://postgres@127.0.0.1:${PGPORT:-55432}/ivr_test"
# CI tests PostgreSQL: never let a stray IVR_SKIP_POSTGRES turn those tests into skips.
unset IVR_SKIP_POSTGRES

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# The black-box suites run the real binary: build it first.
cargo build --workspace --bins
# Unit, property and virtual-time tests run in parallel. The black-box suites (every
# tests/tests file that starts the engine or SIPp) run one binary after the other, each
# one test at a time: on a 2-core machine two engines, two SIPp and Chromium at once
# starve each other of CPU and make timing a matter of luck.
black_box=()
other_tests=()
for f in tests/tests/*.rs; do
  name=$(basename "$f" .rs)
  if grep -qE 'Ivr::start|sipp::run|sipp::spawn_uas' "$f"; then black_box+=("$name"); else other_tests+=(--test "$name"); fi
done
cargo test --workspace --exclude ivr-tests
cargo test -p ivr-tests --lib --bins "${other_tests[@]}"
cargo test -p ivr-tests --doc
for name in "${black_box[@]}"; do
  cargo test -p ivr-tests --test "$name" -- --test-threads=1
done
# The Debian package, built from the binary above, installed, run as its unit runs it, called,
# reloaded, stopped and purged.
scripts/test-package.sh target/debug/ivr
