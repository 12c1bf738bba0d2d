#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, checks format and
# lints, and runs every test (unit, real containers, parity with runc). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test --all-targets
cargo test --doc
# Every test cleans up after itself, failed or not: no cgroup directory of the tests (or of the
# runtime's default /cofferdam parent) may be left in any hierarchy.
left=$(find /sys/fs/cgroup -maxdepth 2 -type d \( -name 'cofferdam-test-*' -o -name cofferdam -o -name 'cofferdam-example*' \) 2>/dev/null || true)
if [ -n "$left" ]; then
    echo "cgroup directories left after the tests:" >&2
    echo "$left" >&2
    exit 1
fi
# The examples run real containers too.
cargo run --quiet --example busybox >/dev/null
cargo run --quiet --example memory_limit
# The same tests on a pure cgroup v2 host, in a VM, where the tool for it is present.
bash scripts/test-v2.sh
# Reliability soak, short form (the full one: bash scripts/soak.sh, 1000 + 200 cycles).
bash scripts/soak.sh 200 80
