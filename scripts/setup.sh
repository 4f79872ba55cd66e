#!/usr/bin/env bash
# Installs the system packages sipcdr needs on Debian/Ubuntu: libpcap's development files (the
# pcap crate links libpcap for BPF filters and live capture); with --test also sipp (sip-tester),
# the real SIP peer of the live-capture tests, and sngrep, the real HEP sender of the collector test. Idempotent and quiet when everything is there.
set -euo pipefail
need=()
[ -e /usr/include/pcap.h ] || [ -e /usr/include/pcap/pcap.h ] || need+=(libpcap-dev)
if [ "${1:-}" = "--test" ]; then
    command -v sipp >/dev/null || need+=(sip-tester)
    command -v sngrep >/dev/null || need+=(sngrep)
fi
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "setup: installing ${need[*]}" >&2
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
