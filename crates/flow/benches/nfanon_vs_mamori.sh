#!/bin/sh
# Crypto-PAn side by side with nfanon (Debian nfdump 1.7.1) on the same records, in the
# same run: REPS alternating runs of each, medians reported. See BENCH_CRYPTOPAN.md.
#   sh crates/flow/benches/nfanon_vs_mamori.sh [COPIES] [REPS]
# Needs: apt-get install -y nfdump; ../shared/data/netflow/slips-nfcapd/test1-malicious.nfdump
set -eu
COPIES=${1:-200}
REPS=${2:-5}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
DATA=${MAMORI_TEST_DATA:-$ROOT/../shared/data}
SRC=$DATA/netflow/slips-nfcapd/test1-malicious.nfdump
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
KEYHEX=6d616d6f7269206e66616e6f6e2062656e6368206b6579203332206279746573  # "mamori nfanon bench key 32 bytes"

mkdir "$W/in"
i=0
while [ $i -lt "$COPIES" ]; do
  cp "$SRC" "$W/in/nfcapd.20180112$(printf %04d $i)"
  i=$((i + 1))
done
nfdump -R "$W/in" -w "$W/big.nfcapd" >/dev/null 2>&1
nfdump -r "$W/big.nfcapd" -q -o "fmt:%sa %da" > "$W/orig.txt"
(cd "$ROOT" && cargo build -q --release -p mamori-flow --example nfanon_compare)

for r in $(seq 1 "$REPS"); do
  /usr/bin/time -f "%e %U" -o "$W/t.$r" nfanon -q -K "0x$KEYHEX" -r "$W/big.nfcapd" -w "$W/anon.nfcapd" >/dev/null
  "$ROOT/target/release/examples/nfanon_compare" "$KEYHEX" "$W/orig.txt" /dev/null 1 2>/dev/null | grep batch || true
done
nfdump -r "$W/anon.nfcapd" -q -o "fmt:%sa %da" > "$W/anon.txt"
RECORDS=$(wc -l < "$W/orig.txt")
echo "records: $RECORDS"
echo "nfanon runs (wall s, user s):"; cat "$W"/t.*
sort -n "$W"/t.* | awk -v n="$RECORDS" '{w[NR]=$1; u[NR]=$2} END {m=int((NR+1)/2); printf "nfanon median: %.0f records/s wall, %.0f records/s user CPU\n", n/w[m], n/u[m]}'
"$ROOT/target/release/examples/nfanon_compare" "$KEYHEX" "$W/orig.txt" "$W/anon.txt" "$REPS"
