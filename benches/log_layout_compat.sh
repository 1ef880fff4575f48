#!/usr/bin/env bash
# A store and a backup written by a build with the first log layout (one `log` tree,
# before issue 16) used by a build with four log trees: the new build verifies and
# serves the old store (migrating it on open) and restores a backup the old build took,
# then an incremental backup it takes into the same directory restores too.
#
#   benches/log_layout_compat.sh OLD_BINARY NEW_BINARY
set -uo pipefail
OLD=$(realpath "$1")
NEW=$(realpath "$2")
W=$(mktemp -d)
PORT=18744
URL=https://localhost:$PORT
"$OLD" pki demo --out "$W/pki" >/dev/null
C=$W/pki/server/congvan.toml
cat "$(dirname "$0")/limits.toml" >> "$C"
S=$W/pki/orgs/hn.cm/client.toml
PID=""
stop() { [ -n "$PID" ] && { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; }; PID=""; }
trap 'stop; rm -rf "$W"' EXIT
serve() {
  RUST_LOG=warn "$1" serve --config "$C" --listen 127.0.0.1:$PORT --data "$W/data" 2>>"$W/serve.log" &
  PID=$!
  for _ in $(seq 200); do "$1" whoami --profile "$S" --server "$URL" >/dev/null 2>&1 && break; sleep 0.1; done
}
submit() { "$1" bench submit --profile "$S" --server "$URL" -c 2 -d 2s --size 1KiB --json 2>/dev/null |
  python3 -c 'import json,sys;k=json.load(sys.stdin)["kinds"][0];print("  %d documents, %d errors" % (k["ok"], k["errors"]))'; }
fail=0
check() { if "$@" >"$W/out" 2>&1; then tail -1 "$W/out"; else echo "  FAILED: $*"; cat "$W/out"; fail=1; fi; }

echo "old build serves and backs up:"; serve "$OLD"; submit "$OLD"
check "$OLD" backup --config "$C" --data "$W/data" --out "$W/backup"
stop
echo "new build verifies the old store (migrating it):"; check "$NEW" audit verify-store --config "$C" --data "$W/data"
echo "new build restores the old build's backup:"; check "$NEW" restore "$W/backup" --data "$W/r1"
check "$NEW" audit verify-store --config "$C" --data "$W/r1"
echo "new build serves the migrated store:"; serve "$NEW"; submit "$NEW"
echo "new build backs up incrementally into the same directory:"
check "$NEW" backup --config "$C" --data "$W/data" --out "$W/backup"
stop
check "$NEW" backup verify "$W/backup"
echo "new build restores both sets:"; check "$NEW" restore "$W/backup" --data "$W/r2"
check "$NEW" audit verify-store --config "$C" --data "$W/r2"
check "$NEW" audit verify-store --config "$C" --data "$W/data"
exit $fail
