#!/usr/bin/env bash
# End-to-end throughput on one capture, in one run: sipcdr, a floor (read every packet with the
# same reader, nothing else) and `tshark -q -z sip,stat`. Prints each tool's median wall time over
# RUNS runs (default 5; tshark TSHARK_RUNS, default 1 because it is ~100x slower), packets/s and
# the ratios. The page cache is warmed first. With EXPECTED=CSV (gen --expected) it also checks
# that the CDRs equal the generator's. Usage: [EXPECTED=CSV] scripts/bench.sh FILE [RUNS] [sipcdr args…]
set -euo pipefail
cd "$(dirname "$0")/.."
file=$1; runs=${2:-5}; shift $(( $# >= 2 ? 2 : 1 ))
tshark_runs=${TSHARK_RUNS:-1}
cargo build --release --quiet --bin sipcdr --example floor
cat "$file" > /dev/null
packets=$(./target/release/examples/floor "$file" | cut -d' ' -f1)
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
time_runs() { # n command…
  local n=$1; shift
  for _ in $(seq "$n"); do
    local t0 t1; t0=$(date +%s%N); "$@" > /dev/null 2>&1; t1=$(date +%s%N)
    echo $(( (t1 - t0) / 1000 ))
  done | median
}
floor_us=$(time_runs "$runs" ./target/release/examples/floor "$file")
sipcdr_us=$(time_runs "$runs" ./target/release/sipcdr -q -o "$out/cdr" --rotate-interval 0 -r "$file" "$@")
./target/release/sipcdr -q -o - -r "$file" "$@" > "$out/all.csv"
rows=$(tail -n +2 "$out/all.csv" | wc -l)
# EXPECTED=FILE (the generator's --expected CSV): the CDRs must equal it, or the run fails.
[ -z "${EXPECTED:-}" ] || python3 scripts/check-expected.py "$EXPECTED" "$out/all.csv"
if command -v tshark >/dev/null; then
  tshark_us=$(time_runs "$tshark_runs" tshark -n -r "$file" -q -z sip,stat)
else
  tshark_us=0
fi
pps() { awk -v p="$packets" -v us="$1" 'BEGIN { if (us > 0) printf "%.0f", p / (us / 1e6); else print "n/a" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "n/a" }'; }
echo "file: $file ($packets packets, $(stat -c %s "$file") bytes), $(nproc) cores, medians of $runs runs (tshark: $tshark_runs)"
printf '%-10s %12s %14s\n' tool "median s" "packets/s"
printf '%-10s %12.3f %14s\n' floor "$(awk -v u="$floor_us" 'BEGIN{print u/1e6}')" "$(pps "$floor_us")"
printf '%-10s %12.3f %14s\n' sipcdr "$(awk -v u="$sipcdr_us" 'BEGIN{print u/1e6}')" "$(pps "$sipcdr_us")"
printf '%-10s %12.3f %14s\n' tshark "$(awk -v u="$tshark_us" 'BEGIN{print u/1e6}')" "$(pps "$tshark_us")"
echo "sipcdr CDRs: $rows; sipcdr vs tshark: $(ratio "$tshark_us" "$sipcdr_us")x faster; floor vs sipcdr: sipcdr takes $(ratio "$sipcdr_us" "$floor_us")x the floor's time"
