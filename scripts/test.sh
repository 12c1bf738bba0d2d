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
# The same tests on a pure cgroup v2 host, in a VM, where the tool for it is present.
bash scripts/test-v2.sh
# Reliability soak, short form (the full one: bash scripts/soak.sh, 1000 + 200 cycles).
bash scripts/soak.sh 200 80
