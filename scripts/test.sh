#!/usr/bin/env bash
# The whole test suite: unit tests, the integration tests on captures/, and the public captures in
# ../shared/captures/ (reported as SKIPPED when that directory is absent).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo test --release "$@"
