#!/usr/bin/env bash
# The fastest sipcdr binary: a profile-guided build (PGO). Builds sipcdr instrumented, runs it on
# a training set, merges the profile and builds again with it, into target/pgo/release/sipcdr.
# The training set is fixed, so the binary is reproducible: a capture from the project's generator
# (seed 7, 30 000 calls, 30 % RTP-sized packets, written to CDR files as a sniffer would; the
# benchmark files use seeds 1 and 2) and every capture shipped in captures/ (real sipp, Kamailio
# and HEP peers). Then the new binary must reproduce captures/'s golden CDRs byte for byte, or the
# script fails. Needs llvm-profdata of the toolchain's own LLVM (rustup's llvm-tools component,
# installed here when missing). Takes ~3-4 minutes on 2 cores. EXTRA_RUSTFLAGS go to both builds,
# e.g. "-C target-cpu=native" for a binary that runs only on CPUs like the build machine's.
# Usage: [EXTRA_RUSTFLAGS=…] scripts/pgo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
host=$(rustc -vV | sed -n 's/^host: //p')
profdata="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata"
if [ ! -x "$profdata" ]; then
  echo "pgo: installing rustup's llvm-tools component (llvm-profdata)" >&2
  rustup component add llvm-tools >&2
fi
data="$PWD/target/pgo-data"
rm -rf "$data"; mkdir -p "$data/cdr"
# Instrumented and optimized builds each in a target directory of their own, so neither rebuilds
# the other nor the plain `cargo build --release` (their RUSTFLAGS differ).
extra=${EXTRA_RUSTFLAGS:-}
RUSTFLAGS="-Cprofile-generate=$data/raw $extra" \
  cargo build --release --quiet --bin sipcdr --target-dir target/pgo-gen
cargo build --release --quiet --example gen
./target/release/examples/gen --out "$data/train.pcap" --calls 30000 --seed 7 --rtp-share 0.3 \
  --concurrency 3000 --cps 500 2>/dev/null
train=target/pgo-gen/release/sipcdr
"$train" -q -o "$data/cdr" --rotate-interval 0 -r "$data/train.pcap"
# The shipped captures through --mmap's reader (the generated one went through read(2)).
for f in captures/*.pcap captures/*/*.pcap captures/*/*.pcapng; do
  if [ -f "$f" ]; then "$train" -q -o - --mmap -r "$f" > /dev/null; fi
done
"$profdata" merge -o "$data/sipcdr.profdata" "$data/raw"
RUSTFLAGS="-Cprofile-use=$data/sipcdr.profdata $extra" \
  cargo build --release --quiet --bin sipcdr --target-dir target/pgo
bin=target/pgo/release/sipcdr
# The same code, so the same CDRs: the golden files of captures/, made as scripts/update-golden.sh
# makes them.
golden=0
for pcap in captures/*.pcap captures/race/*.pcap; do
  if ! "$bin" -q --shards 1 -o - -r "$pcap" | cmp -s - "${pcap%.pcap}.csv"; then
    echo "pgo: $bin does not reproduce ${pcap%.pcap}.csv" >&2
    exit 1
  fi
  golden=$((golden + 1))
done
rm -rf "$data/raw" "$data/train.pcap" "$data/cdr"
echo "pgo: $bin ($golden golden captures reproduced)"
