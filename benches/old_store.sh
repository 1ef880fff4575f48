#!/usr/bin/env bash
# A store and a backup written by the previous build, read by this one (issue 16): the previous
# build serves 10 documents and takes a backup; this build opens the same store and serves
# every document and the sent list with the same bytes, continues the backup incrementally,
# verifies and restores it, and the restored server serves the same bytes again.
#
#   benches/old_store.sh OLD_BINARY NEW_BINARY [WORKDIR]
set -uo pipefail
OLD=$(realpath "$1"); NEW=$(realpath "$2"); W=${3:-$(pwd)/target/old_store}; PORT=18745; URL=https://localhost:$PORT
LIMITS=$(realpath "$(dirname "$0")/limits.toml")
rm -rf $W; mkdir -p $W; cd $W
$OLD pki demo --out pki >/dev/null
cat "$LIMITS" >> pki/server/congvan.toml
P=pki/orgs/hn.cm/client.toml; C=pki/orgs/hn.cm
start() { RUST_LOG=warn $1 serve --config pki/server/congvan.toml --listen 127.0.0.1:$PORT --data $2 2>>serve.log & PID=$!; for _ in $(seq 100); do $1 whoami --profile $P --server $URL >/dev/null 2>&1 && break; sleep 0.1; done; }
stop() { kill $PID; wait $PID 2>/dev/null; }
get() { curl -s --http2 --cacert pki/ca/root.crt --cert $C/tls.crt --key $C/tls.key "$URL$1"; }
start $OLD d1
$OLD bench submit --profile $P --server $URL -c 2 --count 5 --size 1KiB --warmup 0s --json > /dev/null 2>bench.log
get "/v1/sent?limit=100" > sent.old.json
python3 -c "import json;d=json.load(open('sent.old.json'));print('\n'.join(x['id'] for x in d['items']))" > ids.txt 2>/dev/null || { head -c 600 sent.old.json; echo; }
for id in $(cat ids.txt); do get /v1/documents/$id > doc.$id.old.json; done
$OLD backup --config pki/server/congvan.toml --data d1 --out b1 > backup.old.log 2>&1; echo "old backup rc=$?"
stop
echo "documents: $(wc -l < ids.txt)"
# 1. The new build on the old store, as it is.
start $NEW d1
get "/v1/sent?limit=100" > sent.new-on-old.json
cmp sent.old.json sent.new-on-old.json && echo "sent list: same bytes (new build, old store)"
for id in $(cat ids.txt); do get /v1/documents/$id | cmp - doc.$id.old.json || echo "DIFF $id"; done; echo "documents compared (new build, old store)"
$NEW bench submit --profile $P --server $URL -c 2 --count 5 --size 1KiB --warmup 0s --json > /dev/null 2>>bench.log
$NEW backup --config pki/server/congvan.toml --data d1 --out b1 > backup.new.log 2>&1; echo "new incremental backup onto the old one rc=$?"
get "/v1/sent?limit=100" > sent.mixed.json
stop
$NEW backup verify b1 > verify.log 2>&1; echo "verify rc=$?"
# 2. The old build's backup (set 1) + the new build's (set 2), restored by the new build.
$NEW restore b1 --data d2 > restore.log 2>&1; echo "restore rc=$?"
start $NEW d2
get "/v1/sent?limit=100" | cmp - sent.mixed.json && echo "sent list: same bytes after restore (old + new sets)"
for id in $(cat ids.txt); do get /v1/documents/$id | cmp - doc.$id.old.json || echo "DIFF $id"; done; echo "old documents compared after restore"
stop
