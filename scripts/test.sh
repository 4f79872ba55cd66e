#!/usr/bin/env bash
# The whole test suite: unit tests, the integration tests on captures/, and the public captures in
# ../shared/captures/ (reported as SKIPPED when that directory is absent), and live capture on lo
# against sipp peers (SKIPPED without root); then the fuzz job: the cargo-fuzz targets built with
# nightly and each run for SIPCDR_FUZZ_SECONDS (default 30; 0 = skip) on the committed corpus;
# then the profile-guided build (scripts/pgo.sh), held to the golden CDRs of captures/.
# Without nightly, or when cargo-fuzz cannot be installed, the fuzz job says SKIPPED, never passed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
# The `ci` profile (Cargo.toml): release code without the whole-program link of the shipped binary.
cargo test --profile ci "$@"

fuzz_secs=${SIPCDR_FUZZ_SECONDS:-30}
skip() {
    echo "=================================================================" >&2
    echo "fuzz: SKIPPED ($1): the fuzz targets were NOT built or run" >&2
    echo "=================================================================" >&2
}
if [ "$fuzz_secs" = 0 ]; then
    skip "SIPCDR_FUZZ_SECONDS=0"
elif ! rustup run nightly rustc --version >/dev/null 2>&1; then
    skip "no nightly toolchain; rustup toolchain install nightly"
elif ! command -v cargo-fuzz >/dev/null && ! cargo install cargo-fuzz --locked; then
    skip "cargo-fuzz is not installed and could not be installed"
else
    started=$SECONDS
    bash scripts/fuzz.sh "$fuzz_secs"
    echo "fuzz: every target ran ${fuzz_secs}s without a crash ($((SECONDS - started))s with the build)" >&2
fi

# The profile-guided build (scripts/pgo.sh, the binary the performance figures are measured on):
# built and held to captures/'s golden CDRs. SIPCDR_PGO=0 skips it; without rustup's llvm-tools
# (llvm-profdata), when it cannot be installed, it says SKIPPED, never passed.
if [ "${SIPCDR_PGO:-1}" = 0 ]; then
    echo "pgo: SKIPPED (SIPCDR_PGO=0): the profile-guided build was NOT built or checked" >&2
elif ! rustup component add llvm-tools >/dev/null 2>&1; then
    echo "pgo: SKIPPED (rustup's llvm-tools component cannot be installed): the profile-guided build was NOT built or checked" >&2
else
    started=$SECONDS
    bash scripts/pgo.sh
    echo "pgo: built and checked in $((SECONDS - started))s" >&2
fi
