#!/usr/bin/env bash
# Disk per document (issue 16): a fresh server of build BIN on an empty store, COUNT documents of
# 1 KiB per worker from 16 workers (`congvan bench submit`), then `du -sb` of its data directory.
#
#   benches/disk.sh BIN OUTDIR COUNT_PER_WORKER      # 6250: 100,000 documents
#
# Divide the data directory's size by 16 × COUNT_PER_WORKER. Disk use does not depend on the
# machine's load; sled grows its file in 8 MiB segments.
set -euo pipefail
BIN=$1; OUT=$2; COUNT=$3; PORT=${PORT:-18743}; URL=https://localhost:$PORT
rm -rf "$OUT"; mkdir -p "$OUT"
"$BIN" pki demo --out "$OUT/pki" >/dev/null
cat "$(dirname "$0")/limits.toml" >> "$OUT/pki/server/congvan.toml"
SENDER=$OUT/pki/orgs/hn.cm/client.toml
RUST_LOG=warn "$BIN" serve --config "$OUT/pki/server/congvan.toml" --listen 127.0.0.1:$PORT --data "$OUT/data" 2>>"$OUT/serve.log" &
PID=$!
for _ in $(seq 100); do "$BIN" whoami --profile "$SENDER" --server "$URL" >/dev/null 2>&1 && break; sleep 0.1; done
date -u
"$BIN" bench submit --profile "$SENDER" --server "$URL" -c 16 --count "$COUNT" --size 1KiB --warmup 0s --json > "$OUT/bench.json" 2>"$OUT/bench.log"
date -u
du -sb "$OUT/data" "$OUT/data/db"
kill $PID; wait $PID || true
sleep 1
echo "after stop:"; du -sb "$OUT/data" "$OUT/data/db"; ls -la "$OUT/data" "$OUT/data/db"
python3 -c "import json;k=json.load(open('$OUT/bench.json'))['kinds'][0];print('ok',k['ok'],'errors',k['errors'],'ops/s',k['ops_per_s'])"
