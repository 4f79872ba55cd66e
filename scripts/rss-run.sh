#!/usr/bin/env bash
# Memory over a long run: the generator streams CALLS calls (default 10 M, every call ends)
# straight into sipcdr through a pipe, and sipcdr's resident set size is sampled every
# SAMPLE seconds (default 5). Prints "seconds rss_kib" lines, then sipcdr's summary.
# Usage: scripts/rss-run.sh [CALLS] [SAMPLE] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${1:-10000000}; sample=${2:-5}; out=${3:-$(mktemp -d)}
cargo build --release --quiet --bin sipcdr --example gen
mkfifo "$out/pipe"
./target/release/examples/gen --out "$out/pipe" --calls "$calls" --seed 9 --rtp-share 0 \
  --concurrency 20000 --cps 2000 2> "$out/gen.log" &
./target/release/sipcdr -r "$out/pipe" -o "$out/cdr" --rotate-interval 1h 2> "$out/summary.txt" &
pid=$!
t=0
while kill -0 "$pid" 2>/dev/null; do
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
  [ -n "$rss" ] && echo "$t $rss"
  sleep "$sample"; t=$((t + sample))
done
wait "$pid"
cat "$out/summary.txt"
echo "rows: $(cat "$out"/cdr/*.csv | grep -vc '^leg_id')"
