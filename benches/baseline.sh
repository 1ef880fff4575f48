#!/usr/bin/env bash
# Side-by-side performance baselines for congvan, in one run on one machine:
#
#   benches/baseline.sh            # the full run (about 40 minutes on 2 cores, 15 GB of disk)
#   benches/baseline.sh --quick    # a smoke run (about 5 minutes; small store; CI runs it)
#
# It installs what it needs (nginx, gnupg, curl from Debian; matplotlib from PyPI), builds
# the release binary, makes a DEMO PKI for the sample tree plus 1,000 communes, starts
# congvan and nginx (same server certificate, TLS 1.3 only, client certificates
# required) and measures, alternating the two sides where there are two:
#
#   1. 100 KiB and 10 KiB documents at concurrency 64: `congvan bench submit` (two
#      signatures, durable before 201) against `congvan bench raw --method PUT` to nginx
#      (nginx stores the body in a file, no fsync), plus the signature ceiling;
#   2. latency against offered load (open loop), and throughput against concurrency;
#   3. a 1 GiB upload: congvan against curl -> nginx, with congvan's peak RSS growth;
#   4. sealing and opening 256 MiB: `congvan bench seal` against gpg;
#   5. cost against the number of recipients (1 … 1,000), unclassified and classified;
#   6. inbox and submit latency against store size (10^3 … STORE_DOCS documents), and
#      the disk each document takes;
#   7. the delivery log's append rates (`cargo bench --bench ledger`).
#
# With BEFORE=PATH (an older release binary of congvan), sections 1, 3, 4 and 6 also run
# that build, each build with its own client and server on its own empty store, in the
# same rounds, so the table shows before and after from one run on one machine:
#
#   BEFORE=/path/to/old/congvan benches/baseline.sh
#
# Results go to target/bench/results/*.json; benches/report.py prints the table that
# docs/PERFORMANCE.md shows and draws the plots into docs/perf/. Environment: DUR (10s),
# ROUNDS (3), STORE_DOCS (1000000), LOG_EVENTS (1000000), OUT (target/bench), BEFORE.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

QUICK=0
if [ "${1:-}" = "--quick" ]; then QUICK=1; fi
DUR=${DUR:-10s}
ROUNDS=${ROUNDS:-3}
STORE_DOCS=${STORE_DOCS:-1000000}
LOG_EVENTS=${LOG_EVENTS:-1000000}
if [ $QUICK = 1 ]; then
  DUR=${DUR_QUICK:-3s}; ROUNDS=1; STORE_DOCS=${STORE_DOCS_QUICK:-20000}; LOG_EVENTS=${LOG_EVENTS_QUICK:-20000}
fi
BEFORE=${BEFORE:-}
if [ -n "$BEFORE" ]; then BEFORE=$(realpath "$BEFORE"); [ -x "$BEFORE" ] || { echo "BEFORE=$BEFORE is not an executable"; exit 1; }; fi
# The builds measured: "congvan" is this tree's, "before" the one BEFORE names.
SIDES=(congvan)
if [ -n "$BEFORE" ]; then SIDES+=(before); fi
OUT=${OUT:-$ROOT/target/bench}
RES=$OUT/results
CV_PORT=18443
NG_PORT=19443

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v gpg >/dev/null || need+=(gnupg)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
python3 -c "import matplotlib" 2>/dev/null || python3 -m pip install -q matplotlib

echo "--- building"
cargo build --release -q
AFTER_BIN=$ROOT/target/release/congvan
BIN=$AFTER_BIN
# use SIDE: the following congvan commands (server and load generator) are that build's.
use() { if [ "$1" = before ]; then BIN=$BEFORE; else BIN=$AFTER_BIN; fi; }

cleanup() {
  [ -n "${CV_PID:-}" ] && kill "$CV_PID" 2>/dev/null || true
  [ -f "$OUT/nginx/nginx.pid" ] && $NGINX -c "$OUT/nginx/nginx.conf" -s stop 2>/dev/null || true
}
trap cleanup EXIT

rm -rf "$OUT"
mkdir -p "$RES" "$OUT/nginx/www" "$OUT/files"

echo "--- machine"
{
  echo "date: $(date -u +%FT%TZ)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
  echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
  echo "kernel: $(uname -r)"
  echo "disk: $(df -h "$OUT" | awk 'NR==2 {print $1, $2, "(" $4 " free)"}')"
  echo "nginx: $($NGINX -v 2>&1 | cut -d/ -f2)"
  echo "gpg: $(gpg --version | head -1)"
  echo "congvan: $(git -C "$ROOT" rev-parse --short HEAD)"
  if [ -n "$BEFORE" ]; then echo "before: $BEFORE ($(stat -c %y "$BEFORE" | cut -d. -f1))"; fi
} | tee "$RES/machine.txt"

echo "--- PKI: the sample tree plus 1,000 communes under hn/cm"
python3 - "$ROOT/config/orgs.toml" > "$OUT/orgs.toml" <<'PY'
import sys
print(open(sys.argv[1], encoding="utf-8").read())
for i in range(1, 1001):
    print(f'''[[org]]
id = "hn/cm/bench-{i:04d}"
name = "Chi bộ đo tải {i:04d}"
status = "active"
signer_name = "Người ký {i:04d}"
signer_position = "Bí thư Chi bộ"
''')
PY
"$BIN" pki demo --out "$OUT/pki" --orgs "$OUT/orgs.toml" >/dev/null
cat "$ROOT/benches/limits.toml" >> "$OUT/pki/server/congvan.toml"
SENDER=$OUT/pki/orgs/hn.cm/client.toml
RECIPIENT=$OUT/pki/orgs/hn.cm.chuc-son/client.toml
URL=https://localhost:$CV_PORT

# Every measurement but the store-growth one (section 6) starts the server on an empty
# store: one step's documents neither slow the next nor fill the disk (a quick run on a
# machine with a few GiB free must pass).
start_congvan() {
  [ -n "${CV_PID:-}" ] && { kill "$CV_PID" 2>/dev/null || true; wait "$CV_PID" 2>/dev/null || true; }
  # A fresh store: forget the checkpoints the last one signed too (the server refuses
  # to start on a log that does not extend them; see docs/SECURITY.md, "Backup and restore").
  rm -rf "$OUT/data" "$OUT"/pki/orgs/*/state "$OUT"/latest-checkpoint.note*
  RUST_LOG=warn "$BIN" serve --config "$OUT/pki/server/congvan.toml" \
    --listen 127.0.0.1:$CV_PORT --data "$OUT/data" 2>>"$OUT/congvan.log" &
  CV_PID=$!
  for _ in $(seq 100); do
    "$BIN" whoami --profile "$SENDER" --server "$URL" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "congvan did not start"; exit 1
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# bench NAME ARGS...: runs `congvan bench ARGS --json`, saving the report and the
# server's CPU seconds over the run.
bench() {
  local name=$1; shift
  local before after
  before=$(cpu_ticks "$CV_PID")
  "$BIN" bench "$@" --json > "$RES/$name.json" 2>"$RES/$name.log" || {
    echo "bench $name failed:"; tail -5 "$RES/$name.log"; exit 1; }
  after=$(cpu_ticks "$CV_PID")
  echo "{\"server_cpu_s\": $(( after - before ))e-2}" > "$RES/$name.cpu.json"
  python3 "$ROOT/benches/report.py" --one "$RES/$name.json"
}

echo "--- nginx"
cat "$OUT/pki/ca/root.crl" "$OUT/pki/ca/intermediate.crl" > "$OUT/nginx/crls.pem"
cat > "$OUT/nginx/nginx.conf" <<EOF
user root;
worker_processes 2;
pid $OUT/nginx/nginx.pid;
error_log $OUT/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $OUT/nginx/body;
  proxy_temp_path $OUT/nginx/proxy;
  fastcgi_temp_path $OUT/nginx/fcgi;
  uwsgi_temp_path $OUT/nginx/uwsgi;
  scgi_temp_path $OUT/nginx/scgi;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  client_max_body_size 2g;
  client_body_buffer_size 1m;
  server {
    listen 127.0.0.1:$NG_PORT ssl http2;
    ssl_protocols TLSv1.3;
    ssl_session_tickets off;
    ssl_certificate $OUT/pki/server/server.crt;
    ssl_certificate_key $OUT/pki/server/server.key;
    ssl_client_certificate $OUT/pki/ca/root.crt;
    ssl_crl $OUT/nginx/crls.pem;
    ssl_verify_client on;
    ssl_verify_depth 3;
    # PUT stores the body in a file (write, rename; no fsync).
    location /put/ { root $OUT/nginx/www; dav_methods PUT; create_full_put_path on; }
  }
}
EOF
if [ "$(id -u)" != 0 ]; then sed -i '/^user root;/d' "$OUT/nginx/nginx.conf"; fi
$NGINX -c "$OUT/nginx/nginx.conf"
NGINX_URL=https://localhost:$NG_PORT/put

echo "--- 1. headline: 100 KiB and 10 KiB at concurrency 64, alternating"
for r in $(seq "$ROUNDS"); do
  for size in 100KiB 10KiB; do
    "$BIN" bench raw --profile "$SENDER" --url "$NGINX_URL/doc-$size.bin" --method PUT \
      -c 64 -d "$DUR" --size $size --json > "$RES/pair-$size-$r-nginx.json" 2>/dev/null
    python3 "$ROOT/benches/report.py" --one "$RES/pair-$size-$r-nginx.json"
    extra=()
    if [ "$size" = 10KiB ]; then extra=(--ceiling); fi
    for side in "${SIDES[@]}"; do
      use "$side"
      start_congvan
      bench "pair-$size-$r-$side" submit --profile "$SENDER" --server "$URL" \
        -c 64 -d "$DUR" --size $size "${extra[@]}"
    done
    use congvan
  done
done

echo "--- 2a. latency against offered load (100 KiB, open loop)"
MAXRATE=$(python3 "$ROOT/benches/report.py" --median-rate "$RES" 100KiB)
for pct in 25 50 75 90; do
  rate=$(python3 -c "print(round($MAXRATE * $pct / 100, 1))")
  start_congvan
  bench "load-$pct" submit --profile "$SENDER" --server "$URL" -c 64 -d "$DUR" \
    --size 100KiB --rate "$rate"
done

echo "--- 2b. throughput against concurrency"
for size in 10KiB 100KiB; do
  for c in 1 4 16 64 128; do
    start_congvan
    bench "conc-$size-$c" submit --profile "$SENDER" --server "$URL" -c $c -d "$DUR" --size $size
  done
done

echo "--- 3. 1 GiB upload: curl -> nginx and congvan, alternating"
head -c 1G /dev/urandom > "$OUT/files/1g.bin"
TLS=$OUT/pki/orgs/hn.cm
for r in $(seq "$ROUNDS"); do
  curl -sS --fail --cacert "$OUT/pki/ca/root.crt" --cert "$TLS/tls.crt" --key "$TLS/tls.key" \
    -T "$OUT/files/1g.bin" "$NGINX_URL/big.bin" -o /dev/null \
    -w '{"seconds": %{time_total}, "bytes": %{size_upload}}\n' > "$RES/upload-$r-nginx.json"
  cat "$RES/upload-$r-nginx.json"
  rm -f "$OUT/nginx/www/put/big.bin"
  for side in "${SIDES[@]}"; do
    use "$side"
    start_congvan
    rss_before=$(awk '/VmRSS/ {print $2}' "/proc/$CV_PID/status")
    bench "upload-$r-$side" submit --profile "$SENDER" --server "$URL" -c 1 --count 1 --size 1GiB
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$CV_PID/status")
    echo "{\"rss_before_kib\": $rss_before, \"hwm_kib\": $hwm}" > "$RES/upload-$r-$side.rss.json"
    echo "server RSS before ${rss_before} KiB, peak ${hwm} KiB"
  done
  use congvan
done
rm -f "$OUT/files/1g.bin"

echo "--- 4. sealing and opening 256 MiB: congvan against gpg"
head -c 256M /dev/urandom > "$OUT/files/256m.bin"
export GNUPGHOME=$OUT/gnupg
mkdir -p "$GNUPGHOME" && chmod 700 "$GNUPGHOME"
gpg --batch --quiet --import "$TLS/openpgp.key" 2>/dev/null
FPR=$(gpg --batch --with-colons --list-secret-keys | awk -F: '/^fpr/ {print $10; exit}')
now() { date +%s.%N; }
# The before build seals with keys it made itself: the OpenPGP keys a build issues (their
# advertised ciphers) are part of what it is.
if [ -n "$BEFORE" ]; then "$BEFORE" pki demo --out "$OUT/pki-before" >/dev/null; fi
for r in $(seq "$ROUNDS"); do
  for side in "${SIDES[@]}"; do
    use "$side"
    profile=$SENDER
    if [ "$side" = before ]; then profile=$OUT/pki-before/orgs/hn.cm/client.toml; fi
    "$BIN" bench seal --profile "$profile" --input "$OUT/files/256m.bin" \
      --output "$OUT/files/256m.sealed" --json > "$RES/seal-$r-$side.json"
    cat "$RES/seal-$r-$side.json"
    rm -f "$OUT/files/256m.sealed"
  done
  use congvan
  # gpg's defaults compress (zlib), which dominates its time on incompressible data;
  # the -z0 variants turn that off, for the strictest comparison.
  for variant in encrypt sign-encrypt encrypt-z0 sign-encrypt-z0; do
    case $variant in
      encrypt) args=(--encrypt) ;;
      sign-encrypt) args=(--sign --encrypt) ;;
      encrypt-z0) args=(--compress-algo none --encrypt) ;;
      sign-encrypt-z0) args=(--compress-algo none --sign --encrypt) ;;
    esac
    t0=$(now)
    gpg --batch --yes --quiet --trust-model always -r "$FPR" "${args[@]}" \
      -o "$OUT/files/256m.gpg" "$OUT/files/256m.bin"
    t1=$(now)
    gpg --batch --yes --quiet -o "$OUT/files/256m.out" -d "$OUT/files/256m.gpg" 2>/dev/null
    t2=$(now)
    cmp -s "$OUT/files/256m.out" "$OUT/files/256m.bin" || { echo "gpg round trip differs"; exit 1; }
    python3 -c "import json; print(json.dumps({'variant': '$variant', 'bytes': 268435456, 'seal_s': $t1 - $t0, 'open_s': $t2 - $t1}))" \
      > "$RES/seal-$r-gpg-$variant.json"
    cat "$RES/seal-$r-gpg-$variant.json"
    rm -f "$OUT/files/256m.gpg" "$OUT/files/256m.out"
  done
done
rm -f "$OUT/files/256m.bin"

echo "--- 5. cost against recipients"
for class in thuong mat; do
  for k in 1 10 100 1000; do
    start_congvan
    bench "recip-$class-$k" submit --profile "$SENDER" --server "$URL" -c 1 --count 30 \
      --size 100KiB --recipients $k --classification $class
  done
done

echo "--- 6. store growth: inbox and submit latency against stored documents, disk per document"
for side in "${SIDES[@]}"; do
  use "$side"
  # This build's files: "store-…" for this tree, "before-store-…" for BEFORE.
  pre=""
  if [ "$side" = before ]; then pre="before-"; fi
  start_congvan
  stored=0
  for target in 1000 10000 100000 1000000; do
    if [ "$target" -gt "$STORE_DOCS" ]; then target=$STORE_DOCS; fi
    if [ "$target" -le "$stored" ]; then continue; fi
    per=$(( (target - stored + 63) / 64 ))
    "$BIN" bench submit --profile "$SENDER" --server "$URL" -c 64 --count "$per" --to hn/cm/chuc-son \
      --size 1KiB --json > "$RES/${pre}fill-$target.json" 2>/dev/null
    stored=$(( stored + per * 64 ))
    echo "$side: stored $stored documents"
    bench "${pre}store-$target-inbox" inbox --profile "$RECIPIENT" --server "$URL" -c 16 -d "$DUR"
    bench "${pre}store-$target-submit" submit --profile "$SENDER" --server "$URL" -c 16 -d "$DUR" --size 10KiB \
      --to hn/cm/chuc-son
    stored=$(( stored + $(python3 -c "import json; print(json.load(open('$RES/${pre}store-$target-submit.json'))['kinds'][0]['ok'])") ))
    du -sk "$OUT/data" | awk -v n="$stored" '{print "{\"data_kib\": " $1 ", \"documents\": " n "}"}' \
      > "$RES/${pre}store-$target.du.json"
  done
done
use congvan
# The last store is no longer needed: free its disk before the log benchmark.
kill "$CV_PID" 2>/dev/null || true; wait "$CV_PID" 2>/dev/null || true; CV_PID=""
rm -rf "$OUT/data"

echo "--- 7. the delivery log: appends per second (cargo bench --bench ledger)"
CONGVAN_BENCH_EVENTS=$LOG_EVENTS cargo bench -q --bench ledger 2>"$RES/ledger.log" | tee "$RES/ledger.txt"
# sled's pieces, with the first layout's five writes in one tree as the before row.
COSTS_EVENTS=$(( LOG_EVENTS < 200000 ? LOG_EVENTS : 200000 ))
CONGVAN_BENCH_EVENTS=$COSTS_EVENTS cargo bench -q --bench sled_costs 2>"$RES/sled_costs.log" | tee "$RES/sled_costs.txt"

echo "--- report"
# A quick run's plots stay out of the documentation.
PLOTS=${PLOTS:-$ROOT/docs/perf}
if [ $QUICK = 1 ]; then PLOTS=$OUT/plots; fi
python3 "$ROOT/benches/report.py" --table "$RES" --plots "$PLOTS" | tee "$RES/table.md"
