#!/usr/bin/env bash
# Build the Debian package from an `ivr` binary that is already built:
#
#   cargo build --release -p ivr-server && scripts/build-deb.sh
#   scripts/build-deb.sh target/debug/ivr target/deb      # what CI does (no second build)
#
# Prints the path of the .deb. The package holds /usr/bin/ivr, the systemd unit, the `ivr`
# system user (postinst), /etc/ivr/ivr.yaml (settings) and /etc/ivr/config.yaml with the
# demo's prompts (conffiles), /var/lib/ivr, man pages and bash/zsh/fish completions
# generated from the binary's own clap definitions, and the docs. dpkg-deb builds it: no
# cargo-deb to compile, and any binary (release, or CI's debug build) can be packaged.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/ivr}
out=${2:-target/deb}
[ -x "$bin" ] || { echo "$bin is missing: cargo build --release -p ivr-server" >&2; exit 1; }
command -v dpkg-deb >/dev/null || { echo "dpkg-deb is required (Debian's dpkg)" >&2; exit 1; }

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
arch=$(dpkg --print-architecture)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pkg=$work/ivr

install -D -m 0755 "$bin" "$pkg/usr/bin/ivr"
# Debug info stays with the build (a debug build's is most of its size); symbols stay for
# backtraces.
strip --strip-debug "$pkg/usr/bin/ivr"
install -D -m 0644 packaging/debian/ivr.service "$pkg/usr/lib/systemd/system/ivr.service"
install -D -m 0644 packaging/debian/ivr.yaml "$pkg/etc/ivr/ivr.yaml"
install -D -m 0644 examples/demo/config.yaml "$pkg/etc/ivr/config.yaml"
install -d "$pkg/etc/ivr/prompts"
install -m 0644 examples/demo/prompts/*.wav "$pkg/etc/ivr/prompts/"

# Man pages and completions from the clap definitions of this very binary.
"$pkg/usr/bin/ivr" man "$work/man"
install -d "$pkg/usr/share/man/man1"
for page in "$work"/man/*.1; do
  gzip -9n < "$page" > "$pkg/usr/share/man/man1/$(basename "$page").gz"
done
install -d "$pkg/usr/share/bash-completion/completions" \
  "$pkg/usr/share/zsh/vendor-completions" "$pkg/usr/share/fish/vendor_completions.d"
"$pkg/usr/bin/ivr" completions bash > "$pkg/usr/share/bash-completion/completions/ivr"
"$pkg/usr/bin/ivr" completions zsh > "$pkg/usr/share/zsh/vendor-completions/_ivr"
"$pkg/usr/bin/ivr" completions fish > "$pkg/usr/share/fish/vendor_completions.d/ivr.fish"

install -D -m 0644 packaging/debian/copyright "$pkg/usr/share/doc/ivr/copyright"
for doc in README.md docs/first-hour.md docs/menus.md docs/voicemail.md docs/proxy.md; do
  install -m 0644 "$doc" "$pkg/usr/share/doc/ivr/"
done

install -d "$pkg/DEBIAN"
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$pkg/DEBIAN/"
(cd "$pkg" && find etc -type f | sort | sed 's|^|/|') > "$pkg/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
cat > "$pkg/DEBIAN/control" <<CONTROL
Package: ivr
Version: $version
Architecture: $arch
Maintainer: ivr authors <ivr@example.invalid>
Installed-Size: $size
Depends: libc6 (>= 2.34), libgcc-s1
Recommends: espeak-ng
Suggests: sip-tester
Section: comm
Priority: optional
Homepage: https://example.invalid/ivr
Description: IVR telephony engine: SIP calls, menus in YAML, voicemail callback requests
 Point a SIP trunk or PBX at it: callers hear menus written in plain YAML, press keys,
 and can leave a message with a number to call back, which staff work through on a web
 page, an API or the command line. SIP over UDP and TCP, G.711 over RTP, keys as RFC 4733
 events, SIP INFO or in-band tones. Runs as the systemd service ivr.
CONTROL

mkdir -p "$out"
deb="$out/ivr_${version}_${arch}.deb"
# gzip: a quarter of xz's time for this binary, and CI builds a package every run.
dpkg-deb --root-owner-group -Zgzip --build "$pkg" "$deb" >/dev/null
echo "$deb"
