#!/usr/bin/env bash
# The 1 GiB upload of benches/baseline.sh section 3, for two builds side by side:
# each round runs curl -> nginx, then BEFORE's server and load generator, then AFTER's,
# each on an empty store, and prints one line per run. Alternating the builds inside a
# round keeps a noisy shared machine from favouring one of them.
#
#   benches/upload_ab.sh BEFORE_BINARY AFTER_BINARY
#
# With SEND=1 each round also times `congvan send` of the same file (the CLI path, which
# hashes the file from disk before signing) for both builds.
#
# Environment: ROUNDS (3), OUT (target/bench-upload), SIZE (1GiB), SEND (0).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
A=$(realpath "$1")
B=$(realpath "$2")
ROUNDS=${ROUNDS:-3}
SIZE=${SIZE:-1GiB}
OUT=${OUT:-$ROOT/target/bench-upload}
CV_PORT=${CV_PORT:-28443}
NG_PORT=${NG_PORT:-29443}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

cleanup() {
  [ -n "${CV_PID:-}" ] && kill "$CV_PID" 2>/dev/null || true
  [ -f "$OUT/nginx/nginx.pid" ] && $NGINX -c "$OUT/nginx/nginx.conf" -s stop 2>/dev/null || true
}
trap cleanup EXIT
rm -rf "$OUT"
mkdir -p "$OUT/nginx/www" "$OUT/files"

# The sample tree is enough: one sender, one recipient.
"$A" pki demo --out "$OUT/pki" >/dev/null
cat "$ROOT/benches/limits.toml" >> "$OUT/pki/server/congvan.toml"
SENDER=$OUT/pki/orgs/hn.cm/client.toml
URL=https://localhost:$CV_PORT
TLS=$OUT/pki/orgs/hn.cm

cat "$OUT/pki/ca/root.crl" "$OUT/pki/ca/intermediate.crl" > "$OUT/nginx/crls.pem"
cat > "$OUT/nginx/nginx.conf" <<EOF
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
  client_max_body_size 2g;
  client_body_buffer_size 1m;
  server {
    listen 127.0.0.1:$NG_PORT ssl http2;
    ssl_protocols TLSv1.3;
    ssl_certificate $OUT/pki/server/server.crt;
    ssl_certificate_key $OUT/pki/server/server.key;
    ssl_client_certificate $OUT/pki/ca/root.crt;
    ssl_crl $OUT/nginx/crls.pem;
    ssl_verify_client on;
    ssl_verify_depth 3;
    location /put/ { root $OUT/nginx/www; dav_methods PUT; create_full_put_path on; }
  }
}
EOF
if [ "$(id -u)" = 0 ]; then sed -i '1i user root;' "$OUT/nginx/nginx.conf"; fi
$NGINX -c "$OUT/nginx/nginx.conf"

start_congvan() {
  local bin=$1
  [ -n "${CV_PID:-}" ] && { kill "$CV_PID" 2>/dev/null || true; wait "$CV_PID" 2>/dev/null || true; }
  rm -rf "$OUT/data" "$OUT"/pki/orgs/*/state "$OUT"/latest-checkpoint.note*
  RUST_LOG=warn "$bin" serve --config "$OUT/pki/server/congvan.toml" \
    --listen 127.0.0.1:$CV_PORT --data "$OUT/data" 2>>"$OUT/congvan.log" &
  CV_PID=$!
  for _ in $(seq 100); do
    "$bin" whoami --profile "$SENDER" --server "$URL" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "congvan did not start"; exit 1
}

run_congvan() {
  local label=$1 bin=$2 r=$3
  start_congvan "$bin"
  local rss hwm
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$CV_PID/status")
  "$bin" bench submit --profile "$SENDER" --server "$URL" -c 1 --count 1 --size "$SIZE" \
    --json > "$OUT/$label-$r.json" 2>"$OUT/$label-$r.log"
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$CV_PID/status")
  python3 - "$OUT/$label-$r.json" "$label" "$r" "$rss" "$hwm" <<'PY'
import json, sys
rep = json.load(open(sys.argv[1]))
op = next(o for o in rep["kinds"] if o["kind"] == "submit")
growth = (int(sys.argv[5]) - int(sys.argv[4])) / 1024
print(f"round {sys.argv[3]} {sys.argv[2]}: {op['mb_per_s']:.0f} MB/s, server RSS +{growth:.1f} MiB")
PY
}

run_send() {
  local label=$1 bin=$2 r=$3
  start_congvan "$bin"
  local t0 t1
  t0=$(date +%s.%N)
  "$bin" send --profile "$SENDER" --server "$URL" --to hn/cm/chuc-son --type CV \
    --number "$label$r$$" --notation CV/HU --subject "Đo tải" "$OUT/files/payload.bin" \
    >"$OUT/send-$label-$r.log" 2>&1
  t1=$(date +%s.%N)
  python3 -c "import sys; s=float(sys.argv[2])-float(sys.argv[1]); print(f'round $r send $label: {s:.2f} s, {int(sys.argv[3])/s/1e6:.0f} MB/s')" \
    "$t0" "$t1" "$(stat -c %s "$OUT/files/payload.bin")"
}

head -c "$(numfmt --from=iec "${SIZE%iB}")" /dev/urandom > "$OUT/files/payload.bin"
for r in $(seq "$ROUNDS"); do
  curl -sS --fail --cacert "$OUT/pki/ca/root.crt" --cert "$TLS/tls.crt" --key "$TLS/tls.key" \
    -T "$OUT/files/payload.bin" "https://localhost:$NG_PORT/put/big.bin" -o /dev/null \
    -w "round $r nginx: %{speed_upload} B/s (%{time_total} s)\n"
  rm -f "$OUT/nginx/www/put/big.bin"
  run_congvan before "$A" "$r"
  run_congvan after "$B" "$r"
  if [ "${SEND:-0}" = 1 ]; then
    run_send before "$A" "$r"
    run_send after "$B" "$r"
  fi
done
