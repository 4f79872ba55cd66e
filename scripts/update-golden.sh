#!/usr/bin/env bash
# Regenerates the expected CDRs of every capture in captures/ (captures/NAME.csv) with the current
# build, and the independent tshark truth (captures/truth/NAME.pcap.csv) with the oracle from
# ../shared/captures/oracle.py. Review the diff by hand before committing: the golden files are
# the specification of what sipcdr writes for these calls.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
# captures/race/: captures the tshark truth cannot model (see captures/README.md); no truth file.
for pcap in captures/*.pcap captures/race/*.pcap; do
  ./target/release/sipcdr -q --shards 1 -o - -r "$pcap" > "${pcap%.pcap}.csv"
done
if command -v tshark >/dev/null && [ -f ../shared/captures/oracle.py ]; then
  tmp=$(mktemp -d)
  python3 ../shared/captures/oracle.py --no-stat --out "$tmp" captures/*.pcap >/dev/null
  mkdir -p captures/truth
  cp "$tmp"/*.csv captures/truth/
  rm -rf "$tmp"
else
  echo "tshark or ../shared/captures/oracle.py missing: captures/truth/ not refreshed" >&2
fi
git status --short captures
