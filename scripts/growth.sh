#!/usr/bin/env bash
# Cost growth with the number of concurrently open legs: for each concurrency C (default 1000,
# 100000 and 1000000) a capture of CALLS all-SIP calls (default 1 500 000) whose calls last about
# C / CPS seconds, so that about C legs are open at once; prints sipcdr's median wall time over RUNS
# runs, packets/s, the median user and system CPU and the peak RSS, after one more run whose CDRs
# must equal the generator's expected CDRs (scripts/check-expected.py; the script fails if they
# differ). Files go to DIR (default /tmp) and are deleted after use.
# Usage: scripts/growth.sh [CALLS] [RUNS] [DIR] [C…]
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${1:-1500000}; runs=${2:-3}; dir=${3:-/tmp}; shift $(( $# >= 3 ? 3 : $# ))
levels=("$@"); [ ${#levels[@]} -gt 0 ] || levels=(1000 100000 1000000)
cargo build --release --quiet --bin sipcdr --example gen --example floor --example touch
echo "host: $(./target/release/examples/touch 256)"
# The median of column K of the lines on standard input (the lower middle one for an even count).
median_of() { awk -v k="$1" '{print $k}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for c in "${levels[@]}"; do
  cps=$(( c / 5 < 2000 ? c / 5 : 2000 )); [ "$cps" -ge 1 ] || cps=1
  f="$dir/growth-$c.pcap"
  ./target/release/examples/gen --out "$f" --calls "$calls" --seed 11 --rtp-share 0 \
    --concurrency "$c" --cps "$cps" --expected "$dir/growth-$c.expected.csv" 2>/dev/null
  packets=$(./target/release/examples/floor "$f" | cut -d' ' -f1)
  ./target/release/sipcdr -q -o - -r "$f" > "$dir/growth-$c.csv"
  python3 scripts/check-expected.py "$dir/growth-$c.expected.csv" "$dir/growth-$c.csv" >&2
  rm -f "$dir/growth-$c.csv" "$dir/growth-$c.expected.csv"
  results=$(for _ in $(seq "$runs"); do
    /usr/bin/time -f "%e %M %U %S" ./target/release/sipcdr -q -o - -r "$f" 2>&1 >/dev/null
  done)
  rss=$(echo "$results" | awk '{if ($2 > m) m = $2} END {print m}')
  # CPU apart from wall time: the kernel's share (sys) is mostly first touches of memory, which
  # cost what the host makes them cost (examples/touch.rs).
  wall=$(echo "$results" | median_of 1)
  user=$(echo "$results" | median_of 3)
  sys=$(echo "$results" | median_of 4)
  awk -v c="$c" -v p="$packets" -v t="$wall" -v r="$rss" -v u="$user" -v s="$sys" \
    'BEGIN { printf "open legs ~%-8d %9d packets  %6.2f s  %9.0f packets/s  CPU user %.2f s sys %.2f s  peak RSS %d MiB\n", c, p, t, p / t, u, s, r / 1024 }'
  rm -f "$f"
done
