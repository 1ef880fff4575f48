#!/usr/bin/env bash
# Two builds of congvan side by side on one machine, in one run: `congvan bench submit`
# against its own server, alternating the builds round by round so that drift of the
# machine falls on both.
#
#   benches/ab.sh BEFORE_BINARY AFTER_BINARY            # 10 KiB at c=16 and c=64, 10 s, 5 rounds
#   SIZES="10KiB 100KiB" CONC="16" DUR=10s ROUNDS=5 benches/ab.sh OLD NEW
#
# Each run starts the build's own server on an empty store (DEMO PKI made once, by the
# after build), so each side measures its whole path: client, TLS, server, store. Results
# go to $OUT (target/ab) as JSON per run; the summary (median docs/s and server CPU per
# document for each side, and their ratio) is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE=$(realpath "$1")
AFTER=$(realpath "$2")
SIZES=${SIZES:-10KiB}
CONC=${CONC:-16 64}
DUR=${DUR:-10s}
ROUNDS=${ROUNDS:-5}
OUT=${OUT:-$(pwd)/target/ab}
PORT=18643
URL=https://localhost:$PORT

rm -rf "$OUT"
mkdir -p "$OUT/results"
"$AFTER" pki demo --out "$OUT/pki" >/dev/null
cat benches/limits.toml >> "$OUT/pki/server/congvan.toml"
SENDER=$OUT/pki/orgs/hn.cm/client.toml
PID=""
stop() { [ -n "$PID" ] && { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }; PID=""; }
trap stop EXIT

{
  echo "date: $(date -u +%FT%TZ)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
  echo "before: $BEFORE ($(sha256sum "$BEFORE" | cut -c1-12))"
  echo "after: $AFTER ($(sha256sum "$AFTER" | cut -c1-12))"
} | tee "$OUT/results/machine.txt"

for r in $(seq "$ROUNDS"); do
  for size in $SIZES; do
    for c in $CONC; do
      for side in before after; do
        bin=$BEFORE; [ $side = after ] && bin=$AFTER
        stop
        # A fresh store: forget the checkpoint the last one signed too (docs/SECURITY.md).
        rm -rf "$OUT/data" "$OUT"/pki/orgs/*/state "$OUT"/latest-checkpoint.note*
        RUST_LOG=warn "$bin" serve --config "$OUT/pki/server/congvan.toml" \
          --listen 127.0.0.1:$PORT --data "$OUT/data" 2>>"$OUT/serve.log" &
        PID=$!
        for _ in $(seq 100); do
          "$bin" whoami --profile "$SENDER" --server "$URL" >/dev/null 2>&1 && break
          sleep 0.1
        done
        t0=$(awk '{print $14 + $15}' "/proc/$PID/stat")
        name="$side-$size-c$c-$r"
        "$bin" bench submit --profile "$SENDER" --server "$URL" -c "$c" -d "$DUR" --size "$size" \
          --json > "$OUT/results/$name.json" 2>"$OUT/results/$name.log"
        t1=$(awk '{print $14 + $15}' "/proc/$PID/stat")
        echo "{\"server_cpu_s\": $(( t1 - t0 ))e-2}" > "$OUT/results/$name.cpu.json"
        python3 - "$OUT/results/$name" <<'PY'
import json, sys
base = sys.argv[1]
k = json.load(open(base + ".json"))["kinds"][0]
cpu = json.load(open(base + ".cpu.json"))["server_cpu_s"]
print(f"  {base.rsplit('/', 1)[1]}: {k['ops_per_s']:.1f} docs/s, p99 {k['latency_ms']['p99']:.1f} ms, "
      f"server CPU {1000 * cpu / max(k['ok'], 1):.3f} ms/doc, errors {k['errors']}")
PY
      done
    done
  done
done
stop

python3 - "$OUT/results" "$SIZES" "$CONC" <<'PY'
import glob, json, os, statistics, sys
res, sizes, concs = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
print("\n| size | c | before docs/s | after docs/s | after ÷ before | before CPU ms/doc | after CPU ms/doc |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for size in sizes:
    for c in concs:
        row = {}
        for side in ("before", "after"):
            rates, cpus = [], []
            for f in glob.glob(f"{res}/{side}-{size}-c{c}-*.json"):
                if f.endswith(".cpu.json"):
                    continue
                k = json.load(open(f))["kinds"][0]
                cpu = json.load(open(f[:-5] + ".cpu.json"))["server_cpu_s"]
                rates.append(k["ops_per_s"])
                cpus.append(1000 * cpu / max(k["ok"], 1))
            row[side] = (statistics.median(rates), statistics.median(cpus))
        b, a = row["before"], row["after"]
        print(f"| {size} | {c} | {b[0]:.0f} | {a[0]:.0f} | {a[0] / b[0]:.3f} | {b[1]:.3f} | {a[1]:.3f} |")
PY
