#!/usr/bin/env bash
# The whole test suite: unit tests, the integration tests on captures/, and the public captures in
# ../shared/captures/ (reported as SKIPPED when that directory is absent), and live capture on lo
# against sipp peers (SKIPPED without root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
cargo test --release "$@"
