#!/usr/bin/env bash
# Fuzz what create does with a config.json before it touches the system (parse, validate,
# seccomp compile, device program, mount options): fuzz/fuzz_targets/config.rs.
# usage: scripts/fuzz.sh [SECONDS=600]
# cargo-fuzz wants a nightly compiler; this machine has only stable, so RUSTC_BOOTSTRAP=1 lets
# stable take the flags, and `-s none` leaves out the sanitizer (the code under test is safe
# Rust: what we look for is a panic).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
mkdir -p corpus/config
RUSTC_BOOTSTRAP=1 cargo fuzz run config -s none corpus/config seeds -- \
    -max_total_time="${1:-600}" -timeout=10 2>&1 | tail -3
