#!/usr/bin/env bash
# Live load run: sipcdr captures on lo while a sipp UAC/UAS pair on 127.0.0.1 runs answered calls
# (INVITE/100/180/200/ACK, ~1 s of talk, BYE/200) at rising call rates. For each rate it reports
# whether sipp sustained it, sipcdr's drops (kernel, interface, shard queues), whether every call
# got exactly one CDR, and sipcdr's CPU use. Both cores are shared with sipp.
#
#   bash scripts/load-run.sh [RATE ...]        # default rates: 50 100 200 400 800
#   SECONDS_PER_RATE=20 bash scripts/load-run.sh
#
# Needs root (capture on lo) and sipp (scripts/setup.sh --test installs it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh --test
cargo build --release --quiet
BIN="$ROOT/target/release/sipcdr"
SCEN="$ROOT/scripts/sipp"
DUR=${SECONDS_PER_RATE:-20}
RATES=("$@")
[ ${#RATES[@]} -gt 0 ] || RATES=(50 100 200 400 800)
WORK=$(mktemp -d)
trap 'pkill -P $$ 2>/dev/null || true; rm -rf "$WORK"' EXIT
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

printf '%-6s %-10s %-8s %-10s %-10s %-8s %s\n' rate calls sipp_s cdrs drops cpu% verdict
for rate in "${RATES[@]}"; do
    out="$WORK/cdr-$rate"
    mkdir -p "$out"
    uac_port=6100 uas_port=6101
    "$BIN" -i lo --rotate-interval 0 --stats-interval 0 -o "$out" \
        "udp port $uac_port or udp port $uas_port" 2>"$WORK/sipcdr-$rate.log" &
    pid=$!
    for _ in $(seq 100); do grep -q "listening on" "$WORK/sipcdr-$rate.log" && break; sleep 0.05; done
    calls=$((rate * DUR))
    sipp -sf "$SCEN/answered_caller_bye_uas.xml" -i 127.0.0.1 -p $uas_port -mp 40000 -t u1 \
        -nostdin -nd -m "$calls" -bg >/dev/null 2>&1 || true
    sleep 0.3
    cpu0=$(ticks $pid)
    t0=$(date +%s.%N)
    uac_rc=0
    sipp -sf "$SCEN/answered_caller_bye_uac.xml" 127.0.0.1:$uas_port -i 127.0.0.1 -p $uac_port \
        -mp 41000 -t u1 -nostdin -nd -m "$calls" -r "$rate" -l $((rate * 3)) \
        -cid_str "%u-load-$rate@sipcdr.test" -timeout $((DUR * 4))s -timeout_error \
        >"$WORK/uac-$rate.log" 2>&1 || uac_rc=$?
    t1=$(date +%s.%N)
    sleep 1
    cpu1=$(ticks $pid)
    kill -TERM $pid
    wait $pid || true
    pkill -f "answered_caller_bye_uas.xml" 2>/dev/null || true
    elapsed=$(echo "$t1 - $t0" | bc -l)
    rows=$(cat "$out"/*.csv 2>/dev/null | grep -c -- "-load-$rate@" || true)
    uniq=$(cat "$out"/*.csv 2>/dev/null | grep -- "-load-$rate@" | cut -d, -f3 | sort -u | wc -l)
    drops=$(grep -o "[0-9]* dropped by the kernel, [0-9]* by the interface, [0-9]* SIP messages" \
        "$WORK/sipcdr-$rate.log" | awk '{print $1 + $6 + $9}')
    cpu=$(echo "100 * ($cpu1 - $cpu0) / $hz / $elapsed" | bc -l)
    verdict=ok
    [ "$uac_rc" -eq 0 ] || verdict="sipp failed calls (rc $uac_rc)"
    # sipp sustained the rate if the calls took no more than 10 % longer than planned (+1 s talk).
    if (( $(echo "$elapsed > $DUR * 1.1 + 2" | bc -l) )); then verdict="sipp could not sustain"; fi
    [ "$rows" -eq "$calls" ] && [ "$uniq" -eq "$calls" ] || verdict="CDRs $rows/$uniq of $calls"
    [ "${drops:-1}" -eq 0 ] || verdict="drops $drops"
    printf '%-6s %-10s %-8.1f %-10s %-10s %-8.1f %s\n' "$rate" "$calls" "$elapsed" "$rows" \
        "${drops:-?}" "$cpu" "$verdict"
done
