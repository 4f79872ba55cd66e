#!/usr/bin/env bash
# End-to-end throughput on one capture, in one run: sipcdr, a floor (read every packet with the
# same reader, nothing else) and `tshark -q -z sip,stat`. Prints each tool's median wall time,
# packets/s and the ratios. The page cache is warmed first. tshark runs TSHARK_RUNS times (default
# 1: it is ~40x slower), each just after a round of RUNS sipcdr runs (default 5), and the ratio is
# the median of each tshark run over the median of its round: the host's speed drifts over the
# minutes tshark takes, and comparing neighbours keeps the drift out of the ratio. With
# EXPECTED=CSV (gen --expected) it also checks that the CDRs equal the generator's. The file is
# put in the page cache first by scripts/warm.sh (its pages dropped and read back, so they are
# cached the same way every time; KEEP=1 keeps them as they are).
# SIPCDR=BINARY times another build than target/release/sipcdr (scripts/pgo.sh's, say).
# Usage: [EXPECTED=CSV] [TSHARK_RUNS=N] [SIPCDR=BINARY] [KEEP=1] scripts/bench.sh FILE [RUNS] [sipcdr args…]
set -euo pipefail
cd "$(dirname "$0")/.."
file=$1; runs=${2:-5}; shift $(( $# >= 2 ? 2 : 1 ))
tshark_runs=${TSHARK_RUNS:-1}
cargo build --release --quiet --bin sipcdr --example floor --example touch
sipcdr=${SIPCDR:-./target/release/sipcdr}
echo "sipcdr: $sipcdr"
# The host's state: what a first touch of memory costs (examples/touch.rs), before and after.
echo "host before: $(./target/release/examples/touch 256)"
bash scripts/warm.sh "$file"   # page cache warm, in one known state (KEEP=1: as it is)
# The floor reads with sipcdr's reader: the mapped one when sipcdr is given --mmap.
floor=(./target/release/examples/floor)
for a in "$@"; do [ "$a" = --mmap ] && floor+=(--mmap); done
packets=$("${floor[@]}" "$file" | cut -d' ' -f1)
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
time_runs() { # n command…
  local n=$1; shift
  for _ in $(seq "$n"); do
    local t0 t1; t0=$(date +%s%N); "$@" > /dev/null 2>&1; t1=$(date +%s%N)
    echo $(( (t1 - t0) / 1000 ))
  done | median
}
floor_us=$(time_runs "$runs" "${floor[@]}" "$file")
sipcdr_round() { time_runs "$runs" "$sipcdr" -q -o "$out/cdr" --rotate-interval 0 -r "$file" "$@"; }
"$sipcdr" -q -o - -r "$file" "$@" > "$out/all.csv"
rows=$(tail -n +2 "$out/all.csv" | wc -l)
# EXPECTED=FILE (the generator's --expected CSV): the CDRs must equal it, or the run fails.
[ -z "${EXPECTED:-}" ] || python3 scripts/check-expected.py "$EXPECTED" "$out/all.csv"
rounds=""
if command -v tshark >/dev/null; then
  for _ in $(seq "$tshark_runs"); do
    s=$(sipcdr_round "$@")
    t=$(time_runs 1 tshark -n -r "$file" -q -z sip,stat)
    rounds+="$s $t"$'\n'
    echo "round: sipcdr $(awk -v u="$s" 'BEGIN{printf "%.3f", u/1e6}') s, tshark $(awk -v u="$t" 'BEGIN{printf "%.3f", u/1e6}') s, $(awk -v a="$t" -v b="$s" 'BEGIN{printf "%.1f", a/b}')x"
  done
  sipcdr_us=$(printf '%s' "$rounds" | cut -d' ' -f1 | median)
  tshark_us=$(printf '%s' "$rounds" | cut -d' ' -f2 | median)
  ratio_x=$(printf '%s' "$rounds" | awk '{printf "%.3f\n", $2 / $1}' | median)
else
  sipcdr_us=$(sipcdr_round "$@")
  tshark_us=0
  ratio_x=n/a
fi
pps() { awk -v p="$packets" -v us="$1" 'BEGIN { if (us > 0) printf "%.0f", p / (us / 1e6); else print "n/a" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "n/a" }'; }
echo "file: $file ($packets packets, $(stat -c %s "$file") bytes), $(nproc) cores, medians of $runs runs (sipcdr: of each round's median; tshark: $tshark_runs)"
printf '%-10s %12s %14s\n' tool "median s" "packets/s"
printf '%-10s %12.3f %14s\n' floor "$(awk -v u="$floor_us" 'BEGIN{print u/1e6}')" "$(pps "$floor_us")"
printf '%-10s %12.3f %14s\n' sipcdr "$(awk -v u="$sipcdr_us" 'BEGIN{print u/1e6}')" "$(pps "$sipcdr_us")"
printf '%-10s %12.3f %14s\n' tshark "$(awk -v u="$tshark_us" 'BEGIN{print u/1e6}')" "$(pps "$tshark_us")"
echo "sipcdr CDRs: $rows; sipcdr vs tshark: $(awk -v r="$ratio_x" 'BEGIN { if (r == "n/a") print r; else printf "%.1f", r }')x faster (median of the rounds' ratios); floor vs sipcdr: sipcdr takes $(ratio "$sipcdr_us" "$floor_us")x the floor's time"
echo "host after: $(./target/release/examples/touch 256)"
