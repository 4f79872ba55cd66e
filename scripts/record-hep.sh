#!/usr/bin/env bash
# Record real HEP captures for the tests: sngrep (Debian's build has EEP/HEP support) reads one
# of our sipp captures and sends every SIP message as HEP v2 and v3 to 127.0.0.1:9060, where a
# small sink receives them (without a listener the kernel's ICMP port-unreachable makes every
# second send on sngrep's connected socket fail); tcpdump on lo records the HEP datagrams.
#
#   bash scripts/record-hep.sh            # writes captures/hep/hep{2,3}_<source>.pcap
#
# The HEP packets carry the original addresses, ports and capture times of the source capture,
# while their own capture time is the time of the recording: tests/encaps.rs checks that sipcdr
# gives exactly the source capture's CDRs from them. Everything stays on 127.0.0.1. Needs root
# (tcpdump on lo, apt-get) and python3 for the sink. The captures live in captures/hep/, not in
# captures/, because tshark 4.0 has no HEP dissector to make a truth file from.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT_DIR="$ROOT/captures/hep"
SOURCE="${SOURCE:-udp_answered_caller_bye}"
PORT=9060

for tool in sngrep tcpdump python3; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        [[ "$tool" == python3 ]] && { echo "python3 is needed" >&2; exit 1; }
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq sngrep tcpdump
    fi
done

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]:-}"; do
        [[ -n "$pid" ]] && kill -INT "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$OUT_DIR"
for version in 2 3; do
    out="$OUT_DIR/hep${version}_${SOURCE}.pcap"
    # sngrep reads its settings from $HOME/.sngreprc.
    printf 'set eep.send.version %s\n' "$version" >"$WORK/.sngreprc"
    python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('127.0.0.1', $PORT))
s.settimeout(5)
try:
    while True:
        s.recv(65535)
except OSError:
    pass
" &
    sink=$!
    PIDS+=("$sink")
    tcpdump -i lo -U -w "$out" "udp dst port $PORT" 2>"$WORK/tcpdump.log" &
    dump=$!
    PIDS+=("$dump")
    sleep 1
    HOME="$WORK" timeout 30 sngrep -N -q -I "$ROOT/captures/$SOURCE.pcap" -H "udp:127.0.0.1:$PORT" \
        </dev/null >/dev/null
    sleep 1
    kill -INT "$dump"
    wait "$dump" || true
    wait "$sink" || true
    PIDS=()
    sent=$(tcpdump -r "$out" 2>/dev/null | wc -l)
    want=$(tcpdump -r "$ROOT/captures/$SOURCE.pcap" 2>/dev/null | wc -l)
    echo "$out: $sent HEP v$version packets for $want SIP packets"
    [[ "$sent" == "$want" ]] || { echo "some messages were not sent" >&2; exit 1; }
done
