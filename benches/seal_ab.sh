#!/usr/bin/env bash
# Sealing and opening 256 MiB with two builds of congvan and with gpg, alternating round by
# round so that drift of the machine falls on all of them (the commands of
# benches/baseline.sh section 4).
#
#   benches/seal_ab.sh BEFORE_BINARY AFTER_BINARY          # 5 rounds
#   ROUNDS=3 benches/seal_ab.sh OLD NEW
#
# Variants: A, the before build with keys it made itself; B, the after build with keys it
# made (SEIPDv2 with AES-GCM when its keys advertise it); C, the after build with the before
# build's keys (what keys issued earlier get); G, `gpg -z 0 --sign --encrypt` and its
# decrypt. Wall MB/s from `congvan bench seal --json`; CPU seconds (user + sys) of the whole
# process from /usr/bin/time (for congvan also the bench's untimed re-read and hash of the
# input). Prints one line per run; take medians.
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE=$(realpath "$1")
AFTER=$(realpath "$2")
ROUNDS=${ROUNDS:-5}
OUT=${OUT:-$(pwd)/target/seal-ab}
rm -rf "$OUT"
mkdir -p "$OUT"
cd "$OUT"
"$BEFORE" pki demo --out pki-before >/dev/null
"$AFTER" pki demo --out pki-after >/dev/null
head -c 256M /dev/urandom > 256m.bin
export GNUPGHOME=$OUT/gnupg
mkdir -p "$GNUPGHOME" && chmod 700 "$GNUPGHOME"
gpg --batch --quiet --import pki-before/orgs/hn.cm/openpgp.key 2>/dev/null
FPR=$(gpg --batch --with-colons --list-secret-keys | awk -F: '/^fpr/ {print $10; exit}')
cv() { # label binary profile
  /usr/bin/time -f "%U %S %e" -o t.txt "$2" bench seal --profile "$3" --input 256m.bin \
    --output 256m.sealed --json > j.json
  python3 -c "import json; j=json.load(open('j.json')); u,s,e=open('t.txt').read().split(); print('$1 seal_mb_s %.0f open_mb_s %.0f cpu_s %.2f' % (j['seal_mb_s'], j['open_mb_s'], float(u)+float(s)))"
  rm -f 256m.sealed
}
for r in $(seq "$ROUNDS"); do
  echo "round $r $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  cv A "$BEFORE" pki-before/orgs/hn.cm/client.toml
  cv B "$AFTER" pki-after/orgs/hn.cm/client.toml
  cv C "$AFTER" pki-before/orgs/hn.cm/client.toml
  /usr/bin/time -f "%U %S %e" -o g1.txt gpg --batch --yes --quiet --trust-model always -r "$FPR" \
    --compress-algo none --sign --encrypt -o 256m.gpg 256m.bin
  /usr/bin/time -f "%U %S %e" -o g2.txt gpg --batch --yes --quiet -o 256m.out -d 256m.gpg 2>/dev/null
  cmp -s 256m.out 256m.bin || { echo "gpg round trip differs"; exit 1; }
  python3 -c "
u1,s1,e1=map(float,open('g1.txt').read().split()); u2,s2,e2=map(float,open('g2.txt').read().split())
print('G seal_mb_s %.0f open_mb_s %.0f cpu_s %.2f (seal %.2f open %.2f)' % (268.435456/e1, 268.435456/e2, u1+s1+u2+s2, u1+s1, u2+s2))"
  rm -f 256m.gpg 256m.out
done
rm -f 256m.bin
