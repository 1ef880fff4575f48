#!/usr/bin/env bash
# Builds the Debian package from the release binary (built here if missing) and checks it
# in a clean directory tree: the files, their modes, the unit, the maintainer script and
# that the packaged binary runs. CI calls this after benches/baseline.sh has built the
# release binary, so it adds only the packaging (and, once per machine, cargo-deb).
set -euo pipefail
cd "$(dirname "$0")/../.."

# cargo-deb computes the package's library dependencies with dpkg-shlibdeps (dpkg-dev).
command -v dpkg-shlibdeps >/dev/null || { apt-get update -q && apt-get install -y -q dpkg-dev; }
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked
[ -x target/release/congvan ] || cargo build --release
cargo deb --no-build --output target/debian/congvan.deb >/dev/null

deb=target/debian/congvan.deb
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
dpkg-deb -x "$deb" "$root"
dpkg-deb -e "$deb" "$root/DEBIAN"

fail() { echo "check-deb: $*" >&2; exit 1; }
[ -x "$root/usr/bin/congvan" ] || fail "usr/bin/congvan missing or not executable"
[ -f "$root/lib/systemd/system/congvan.service" ] || [ -f "$root/usr/lib/systemd/system/congvan.service" ] \
  || fail "the systemd unit is missing"
grep -q '^ExecStart=/usr/bin/congvan serve' "$root"/*lib/systemd/system/congvan.service 2>/dev/null \
  || grep -q '^ExecStart=/usr/bin/congvan serve' "$root"/usr/lib/systemd/system/congvan.service \
  || fail "the unit does not start /usr/bin/congvan"
grep -q 'useradd --system' "$root/DEBIAN/postinst" || fail "postinst does not create the user"
grep -q '^Package: congvan$' "$root/DEBIAN/control" || fail "control: wrong package name"
[ -f "$root/usr/share/doc/congvan/examples/congvan.toml" ] || fail "example configuration missing"
"$root/usr/bin/congvan" --help >/dev/null || fail "the packaged binary does not run"
echo "check-deb: $(basename "$deb") $(stat -c %s "$deb") bytes; $(find "$root" -type f -not -path '*/DEBIAN/*' | wc -l) files: ok"
