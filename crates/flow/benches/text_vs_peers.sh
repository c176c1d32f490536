#!/usr/bin/env bash
# Zeek conn.log and Argus binetflow parsing: `mamori flows` beside peer readers on the same
# bytes, in the same run (issue 5). Peers: zat's LogToDataFrame (PyPI `zat`, the Zeek
# Analysis Tools) for conn.log, and pandas.read_csv for binetflow (what Slips and the
# CTU-13 notebooks use). Each input is one real file's data lines repeated to ~1 M lines
# (header once). Prints lines/s per tool, median of REPS runs.
#   pip install zat==0.4.9 pandas
#   bash crates/flow/benches/text_vs_peers.sh [REPS] [COPIES]   (bash, not dash)
set -eu
REPS=${1:-5}
COPIES=${2:-200}
DATA=${MAMORI_TEST_DATA:-$(cd "$(dirname "$0")/../../../.." && pwd)/shared/data}
MAMORI=${MAMORI:-target/release/mamori}
[ -x "$MAMORI" ] || cargo build --release -q -p mamori
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

conn="$DATA/botnet/sdt-008-zeek-mixed/conn.log.labeled"
grep '^#' "$conn" | grep -v '^#close' > "$tmp/conn.log"
for _ in $(seq "$COPIES"); do grep -v '^#' "$conn"; done >> "$tmp/conn.log"
argus="$DATA/botnet/slips-argus-binetflow/test2-malicious.binetflow"
head -n 1 "$argus" > "$tmp/flows.binetflow"
for _ in $(seq "$COPIES"); do tail -n +2 "$argus"; done >> "$tmp/flows.binetflow"
zeek_lines=$(grep -vc '^#' "$tmp/conn.log")
argus_lines=$(($(wc -l < "$tmp/flows.binetflow") - 1))

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
secs() { s=$(date +%s.%N); "$@" > /dev/null; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
rate() { echo "$1 / $2" | bc -l | xargs printf '%.0f'; }

run() { # name lines command…
  name=$1; lines=$2; shift 2
  t=$(for _ in $(seq "$REPS"); do secs "$@"; done | median)
  printf '%-40s %10d lines %8.3f s %12s lines/s\n' "$name" "$lines" "$t" "$(rate "$lines" "$t")"
}

cat /proc/loadavg
run "mamori flows --output none (conn.log)" "$zeek_lines" "$MAMORI" flows --output none "$tmp/conn.log"
run "zat LogToDataFrame (conn.log)" "$zeek_lines" python3 -c "
import sys; from zat.log_to_dataframe import LogToDataFrame
df = LogToDataFrame().create_dataframe(sys.argv[1]); assert len(df) == $zeek_lines, len(df)" "$tmp/conn.log"
run "mamori flows --output none (binetflow)" "$argus_lines" "$MAMORI" flows --output none "$tmp/flows.binetflow"
run "pandas.read_csv (binetflow)" "$argus_lines" python3 -c "
import sys, pandas; df = pandas.read_csv(sys.argv[1]); assert len(df) == $argus_lines, len(df)" "$tmp/flows.binetflow"
