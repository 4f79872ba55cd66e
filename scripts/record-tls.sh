#!/usr/bin/env bash
# Records captures/tls_sip_5061.pcap: a real TLS 1.3 connection on 127.0.0.1:5061 (OpenSSL's
# s_server and s_client, a throw-away self-signed certificate) carrying one SIP INVITE. A passive
# sniffer cannot read it: sipcdr must count the connection as TLS and write no CDR.
#
#   bash scripts/record-tls.sh
#
# Needs root (tcpdump on lo) and openssl; the key is deleted afterwards, so the capture cannot be
# decrypted by anyone.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/captures/tls_sip_5061.pcap"
for tool in openssl tcpdump; do
    command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'kill "${tcpdump_pid:-}" "${server_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"
openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 1 \
    -subj "/CN=sipcdr-test" 2>/dev/null
tcpdump -i lo -U -w "$OUT" 'tcp port 5061' 2>/dev/null &
tcpdump_pid=$!
sleep 1
openssl s_server -accept 127.0.0.1:5061 -naccept 1 -cert cert.pem -key key.pem -quiet \
    >server.out 2>&1 &
server_pid=$!
sleep 0.5
printf 'INVITE sip:bob@127.0.0.1:5061;transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1;branch=z9hG4bK-tls-1\r\nFrom: <sip:alice@127.0.0.1>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: tls-call-1@127.0.0.1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n' |
    timeout 10 openssl s_client -connect 127.0.0.1:5061 -quiet -no_ign_eof >/dev/null 2>&1
wait "$server_pid" || true
sleep 0.5
kill -INT "$tcpdump_pid"
wait "$tcpdump_pid" || true
echo "wrote $OUT"
