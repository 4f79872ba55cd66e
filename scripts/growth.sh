#!/usr/bin/env bash
# Cost growth with the number of concurrently open legs. For each concurrency C (default 1000,
# 100000 and 1000000) a capture of CALLS all-SIP calls (default 1 500 000) whose calls last about
# C / CPS seconds, so that about C legs are open at once. Each capture's CDRs must first equal the
# generator's expected CDRs (scripts/check-expected.py; the script fails if they differ).
#
# The first level is the reference: its capture stays while each other level's is written, and
# the two are run alternately, RUNS times each, so that both see the same host (this shared host
# drifts by 20-30 % within minutes; timing each level just after writing it once put the host's
# drift into the comparison). Per level it prints the median wall time, packets/s, the median
# user and system CPU and the peak RSS, and how much lower its throughput is than the reference's
# in the same rounds. Files go to DIR (default /tmp; two captures at a time, ~8 GB each at the
# default CALLS) and are deleted after use.
# SIPCDR=BINARY times another build than target/release/sipcdr (scripts/pgo.sh's, say).
# Usage: [SIPCDR=BINARY] scripts/growth.sh [CALLS] [RUNS] [DIR] [C…]
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${1:-1500000}; runs=${2:-3}; dir=${3:-/tmp}; shift $(( $# >= 3 ? 3 : $# ))
levels=("$@"); [ ${#levels[@]} -gt 0 ] || levels=(1000 100000 1000000)
cargo build --release --quiet --bin sipcdr --example gen --example floor --example touch
sipcdr=${SIPCDR:-./target/release/sipcdr}
echo "sipcdr: $sipcdr"
echo "host: $(./target/release/examples/touch 256)"
# The median of column K of the lines on standard input (the lower middle one for an even count).
median_of() { awk -v k="$1" '{print $k}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
files=()
trap 'rm -f "${files[@]}"' EXIT
# Writes level C's capture and checks sipcdr's CDRs of it against the expected ones.
make_level() {
  local c=$1 cps f
  cps=$(( c / 5 < 2000 ? c / 5 : 2000 )); [ "$cps" -ge 1 ] || cps=1
  f="$dir/growth-$c.pcap"
  files+=("$f")
  ./target/release/examples/gen --out "$f" --calls "$calls" --seed 11 --rtp-share 0 \
    --concurrency "$c" --cps "$cps" --expected "$dir/growth-$c.expected.csv" 2>/dev/null
  "$sipcdr" -q -o - -r "$f" > "$dir/growth-$c.csv"
  python3 scripts/check-expected.py "$dir/growth-$c.expected.csv" "$dir/growth-$c.csv" >&2
  rm -f "$dir/growth-$c.csv" "$dir/growth-$c.expected.csv"
}
run_once() { # prints "wall maxrss_kib user sys"
  /usr/bin/time -f "%e %M %U %S" "$sipcdr" -q -o - -r "$dir/growth-$1.pcap" 2>&1 >/dev/null
}
# One line for a level from its runs' "wall rss user sys" lines.
report() { # c packets results [note]
  local c=$1 p=$2 results=$3 note=${4:-} rss wall user sys
  rss=$(echo "$results" | awk '{if ($2 > m) m = $2} END {print m}')
  # CPU apart from wall time: the kernel's share (sys) is mostly first touches of memory, which
  # cost what the host makes them cost (examples/touch.rs).
  wall=$(echo "$results" | median_of 1)
  user=$(echo "$results" | median_of 3)
  sys=$(echo "$results" | median_of 4)
  awk -v c="$c" -v p="$p" -v t="$wall" -v r="$rss" -v u="$user" -v s="$sys" -v n="$note" \
    'BEGIN { printf "open legs ~%-8d %9d packets  %6.2f s  %9.0f packets/s  CPU user %.2f s sys %.2f s  peak RSS %d MiB%s\n", c, p, t, p / t, u, s, r / 1024, n }'
}
ref=${levels[0]}
make_level "$ref"
packets=$(./target/release/examples/floor "$dir/growth-$ref.pcap" | cut -d' ' -f1)
if [ ${#levels[@]} -eq 1 ]; then
  report "$ref" "$packets" "$(for _ in $(seq "$runs"); do run_once "$ref"; done)"
  exit 0
fi
for c in "${levels[@]:1}"; do
  make_level "$c"
  p=$(./target/release/examples/floor "$dir/growth-$c.pcap" | cut -d' ' -f1)
  ref_results=""; results=""
  for _ in $(seq "$runs"); do
    ref_results+="$(run_once "$ref")"$'\n'
    results+="$(run_once "$c")"$'\n'
  done
  ref_results=${ref_results%$'\n'}; results=${results%$'\n'}
  report "$ref" "$packets" "$ref_results" "  (reference, in the same rounds)"
  report "$c" "$p" "$results"
  ref_wall=$(echo "$ref_results" | median_of 1); wall=$(echo "$results" | median_of 1)
  awk -v a="$ref_wall" -v b="$wall" -v pa="$packets" -v pb="$p" -v c="$c" -v r="$ref" \
    'BEGIN { d = 100 * (1 - (pb / b) / (pa / a));
             printf "  ~%d open legs: throughput %.1f %% %s than at ~%d\n", c, (d < 0 ? -d : d), (d < 0 ? "higher" : "lower"), r }'
  rm -f "$dir/growth-$c.pcap"
done
