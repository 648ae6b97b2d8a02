#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each.
#
#   fuzz/run.sh                 # every target, 30 s each, AddressSanitizer
#   SECONDS_PER_TARGET=600 fuzz/run.sh builder quote
#   SANITIZER=none fuzz/run.sh  # no ASan: faster, plain stable
#
# Works on the stable toolchain: cargo-fuzz's default sanitizer needs `-Z`
# flags, which RUSTC_BOOTSTRAP=1 allows; `-s none` needs nothing. cargo-fuzz
# is installed when missing. Crashes land in fuzz/artifacts/<target>/; the
# script fails if any target crashed.
set -euo pipefail
cd "$(dirname "$0")"
SECS="${SECONDS_PER_TARGET:-30}"
SANITIZER="${SANITIZER:-address}"
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
    TARGETS=(quote env_string builder spawn)
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# The spawn target runs the test helper.
(cd .. && cargo build --quiet --bin safespawn-testhelper)
export SAFESPAWN_TESTHELPER="${CARGO_TARGET_DIR:-$PWD/../target}/debug/safespawn-testhelper"
export RUSTC_BOOTSTRAP=1
for t in "${TARGETS[@]}"; do
    mkdir -p "corpus/$t"
    echo "== fuzz target $t: ${SECS}s, sanitizer $SANITIZER"
    rc=0
    cargo fuzz run -s "$SANITIZER" "$t" "corpus/$t" -- \
        -max_total_time="$SECS" -print_final_stats=1 > "/tmp/safespawn-fuzz-$t.log" 2>&1 || rc=$?
    grep -E '^stat::number_of_executed_units|ERROR|SUMMARY|panicked' "/tmp/safespawn-fuzz-$t.log" || true
    if [ "$rc" -ne 0 ]; then
        tail -40 "/tmp/safespawn-fuzz-$t.log" >&2
        echo "fuzz target $t FAILED; see /tmp/safespawn-fuzz-$t.log and fuzz/artifacts/$t/" >&2
        exit 1
    fi
done
