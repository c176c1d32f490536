#!/usr/bin/env bash
# Zeek conn.log and Argus binetflow parsing: `mamori flows` beside peer readers on the same
# bytes, in the same run (issue 5). Peers: zat's LogToDataFrame (PyPI `zat`, the Zeek
# Analysis Tools) for conn.log TSV, zat's JSONLogToDataFrame (pandas.read_json underneath)
# for conn.log JSON, and pandas.read_csv for binetflow (what Slips and the CTU-13 notebooks
# use). Each input is one real file's data lines repeated COPIES times, ~1 M lines (header
# once); the JSON input COPIES/4 times (225 k lines at 200: pandas.read_json is slow).
# Prints lines/s per tool, median of REPS runs. CASES picks the inputs (default: tsv json
# argus).
#   pip install zat==0.4.9 pandas
#   [CASES="json"] bash crates/flow/benches/text_vs_peers.sh [REPS] [COPIES]   (bash, not dash)
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
json="$DATA/botnet/sdt-002-port-scanning/conn.log"
for _ in $(seq $((COPIES / 4))); do cat "$json"; done > "$tmp/conn.json.log"
argus="$DATA/botnet/slips-argus-binetflow/test2-malicious.binetflow"
head -n 1 "$argus" > "$tmp/flows.binetflow"
for _ in $(seq "$COPIES"); do tail -n +2 "$argus"; done >> "$tmp/flows.binetflow"
zeek_lines=$(grep -vc '^#' "$tmp/conn.log")
json_lines=$(wc -l < "$tmp/conn.json.log")
argus_lines=$(($(wc -l < "$tmp/flows.binetflow") - 1))

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
secs() { s=$(date +%s.%N); "$@" > /dev/null; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
rate() { echo "$1 / $2" | bc -l | xargs printf '%.0f'; }

run() { # name lines command…
  name=$1; lines=$2; shift 2
  t=$(for _ in $(seq "$REPS"); do secs "$@"; done | median)
  printf '%-40s %10d lines %8.3f s %12s lines/s\n' "$name" "$lines" "$t" "$(rate "$lines" "$t")"
}

CASES=${CASES:-tsv json argus}
cat /proc/loadavg
case " $CASES " in *" tsv "*)
run "mamori flows --output none (conn.log)" "$zeek_lines" "$MAMORI" flows --output none "$tmp/conn.log"
run "zat LogToDataFrame (conn.log)" "$zeek_lines" python3 -c "
import sys; from zat.log_to_dataframe import LogToDataFrame
df = LogToDataFrame().create_dataframe(sys.argv[1]); assert len(df) == $zeek_lines, len(df)" "$tmp/conn.log"
;; esac
case " $CASES " in *" json "*)
run "mamori flows --output none (conn.log JSON)" "$json_lines" "$MAMORI" flows --output none "$tmp/conn.json.log"
run "zat JSONLogToDataFrame (conn.log JSON)" "$json_lines" python3 -c "
import sys; from zat.json_log_to_dataframe import JSONLogToDataFrame
df = JSONLogToDataFrame().create_dataframe(sys.argv[1]); assert len(df) == $json_lines, len(df)" "$tmp/conn.json.log"
;; esac
case " $CASES " in *" argus "*)
run "mamori flows --output none (binetflow)" "$argus_lines" "$MAMORI" flows --output none "$tmp/flows.binetflow"
run "pandas.read_csv (binetflow)" "$argus_lines" python3 -c "
import sys, pandas; df = pandas.read_csv(sys.argv[1]); assert len(df) == $argus_lines, len(df)" "$tmp/flows.binetflow"
;; esac
cat /proc/loadavg
