#!/usr/bin/env bash
# Live soak run: sipcdr captures on lo for DURATION seconds (default 660) while sipp runs answered
# calls at a steady RATE (default 20 calls/s, ~1 s of talk each), files rotating every minute.
# Reports sipcdr's RSS every 30 s, then checks that no record was lost: every sipp call has
# exactly one CDR, every file was renamed, and the files rotated each minute.
#
#   bash scripts/soak-run.sh                  # 11 minutes at 20 calls/s
#   DURATION=120 RATE=50 bash scripts/soak-run.sh
#
# Needs root (capture on lo) and sipp (scripts/setup.sh --test installs it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh --test
cargo build --release --quiet
BIN="$ROOT/target/release/sipcdr"
SCEN="$ROOT/scripts/sipp"
DURATION=${DURATION:-660}
RATE=${RATE:-20}
CALLS=$((DURATION * RATE))
WORK=$(mktemp -d)
OUT="$WORK/cdr"
mkdir -p "$OUT"
trap 'pkill -P $$ 2>/dev/null || true; rm -rf "$WORK"' EXIT
uac_port=6200 uas_port=6201

"$BIN" -i lo --rotate-interval 1m --stats-interval 60s -o "$OUT" \
    "udp port $uac_port or udp port $uas_port" 2>"$WORK/sipcdr.log" &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$WORK/sipcdr.log" && break; sleep 0.05; done
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
sipp -sf "$SCEN/answered_caller_bye_uas.xml" -i 127.0.0.1 -p $uas_port -mp 42000 -t u1 \
    -nostdin -nd -m "$CALLS" -bg >/dev/null 2>&1 || true
sleep 0.3
sipp -sf "$SCEN/answered_caller_bye_uac.xml" 127.0.0.1:$uas_port -i 127.0.0.1 -p $uac_port \
    -mp 43000 -t u1 -nostdin -nd -m "$CALLS" -r "$RATE" -l $((RATE * 3)) \
    -cid_str "%u-soak@sipcdr.test" >"$WORK/uac.log" 2>&1 &
uac=$!
start=$(date +%s)
echo "soak: $CALLS calls at $RATE/s for ${DURATION}s; RSS of sipcdr (KiB):"
while kill -0 $uac 2>/dev/null; do
    echo "  t=$(( $(date +%s) - start ))s rss=$(rss) files=$(ls "$OUT" | grep -c '\.csv$' || true)"
    for _ in $(seq 30); do kill -0 $uac 2>/dev/null || break; sleep 1; done
done
uac_rc=0
wait $uac || uac_rc=$?
sleep 2
end_rss=$(rss)
kill -TERM $pid
wait $pid || true
grep "sipcdr stats" "$WORK/sipcdr.log" | tail -3 || true
rows=$(cat "$OUT"/*.csv | grep -c -- "-soak@" || true)
uniq=$(cat "$OUT"/*.csv | grep -- "-soak@" | cut -d, -f3 | sort -u | wc -l)
files=$(ls "$OUT" | grep -c "\.csv$" || true)
parts=$(ls "$OUT" | grep -c '\.part$' || true)
echo "soak: sipp exit $uac_rc; $rows CDRs ($uniq distinct Call-IDs) for $CALLS calls;" \
    "$files files, $parts .part; RSS at the end ${end_rss} KiB"
[ "$uac_rc" -eq 0 ] && [ "$rows" -eq "$CALLS" ] && [ "$uniq" -eq "$CALLS" ] && [ "$parts" -eq 0 ] \
    && [ "$files" -ge $((DURATION / 60)) ] && echo "soak: OK" || { echo "soak: FAILED"; exit 1; }
