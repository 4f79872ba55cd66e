#!/usr/bin/env bash
# Builds the cargo-fuzz targets in fuzz/ (nightly Rust, installing cargo-fuzz if missing) and runs
# each for SECONDS (default 60) on a scratch copy of the committed corpus. A crashing input is
# copied to fuzz/regressions/TARGET/ (commit it: the test suite replays that folder) and the
# script exits 1.
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET ...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SECS=${1:-60}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(sip_message decode tcp_stream ws_hep pipeline)
bash scripts/setup.sh
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
rustup run nightly rustc --version >/dev/null 2>&1 || {
    echo "fuzz: needs the nightly toolchain (rustup toolchain install nightly)" >&2
    exit 1
}
cargo +nightly fuzz build -O
failed=0
for t in "${TARGETS[@]}"; do
    scratch=$(mktemp -d)
    mkdir -p "fuzz/artifacts/$t"
    before=$(ls "fuzz/artifacts/$t" | wc -l)
    echo "== fuzz $t for ${SECS}s"
    cargo +nightly fuzz run -O "$t" "$scratch" "fuzz/corpus/$t" -- \
        -max_total_time="$SECS" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        2>&1 | grep -E "^(stat::|#[0-9]+ *DONE|==[0-9]+==|SUMMARY|Done )" || true
    rm -rf "$scratch"
    after=$(ls "fuzz/artifacts/$t" | wc -l)
    if [ "$after" -gt "$before" ]; then
        mkdir -p "fuzz/regressions/$t"
        cp "fuzz/artifacts/$t"/* "fuzz/regressions/$t/"
        echo "fuzz: $t found $((after - before)) crashing input(s), copied to fuzz/regressions/$t/" >&2
        failed=1
    fi
done
exit $failed
