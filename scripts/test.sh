#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, checks format and
# lints, and runs every test (unit, real containers, parity with runc, engines), then the same
# on a pure cgroup v2 host in a VM, and a short soak. Needs root. Each stage prints how long it
# took, and a summary closes the run.
#
# TEST_TIME_FACTOR (default 1) scales every deadline a test waits for the kernel with; the VM
# pass sets its own (see scripts/test-v2.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

declare -a STAGES=()
stage() {
    local name=$1 start=$SECONDS
    shift
    echo "=== stage: $name" >&2
    "$@"
    local took=$((SECONDS - start))
    STAGES+=("$(printf '%-28s %5d s' "$name" "$took")")
    echo "=== stage: $name took ${took} s" >&2
}
summary() {
    echo "=== stage durations:" >&2
    for s in "${STAGES[@]}"; do echo "    $s" >&2; done
}
trap summary EXIT

# Every test cleans up after itself, failed or not: no cgroup directory of the tests (or of the
# runtime's default /cofferdam parent) may be left in any hierarchy.
no_cgroups_left() {
    local left
    left=$(find /sys/fs/cgroup -maxdepth 2 -type d \( -name 'cofferdam-test-*' -o -name cofferdam -o -name 'cofferdam-example*' \) 2>/dev/null || true)
    if [ -n "$left" ]; then
        echo "cgroup directories left after the tests:" >&2
        echo "$left" >&2
        return 1
    fi
}
# The tests, and the examples' own binaries: tests/examples.rs runs each example and checks its
# output (in the "tests (host)" stage), and --all-targets builds only the examples' test
# harnesses.
build_tests() {
    cargo test --all-targets --no-run --quiet
    cargo build --examples --quiet
    cargo test -p containerd-shim-cofferdam --no-run --quiet
}

stage "install dependencies" bash scripts/deps.sh
stage "cargo fmt" cargo fmt --all --check
stage "cargo clippy" cargo clippy --workspace --all-targets --quiet -- -D warnings
stage "build tests" build_tests
stage "tests (host)" cargo test --all-targets
stage "doc tests" cargo test --doc
# The containerd shim (a workspace member of its own): under a private containerd.
stage "tests (containerd shim)" cargo test -p containerd-shim-cofferdam
# The same test against the shim as it ships (static, musl, the `shim` profile), a build of
# its own that the bench measures.
shim_as_shipped() {
    local bin
    bin=$(bash scripts/build-shim.sh)
    case $bin in /*) ;; *) bin=$PWD/$bin ;; esac
    COFFERDAM_SHIM_BIN=$bin cargo test -p containerd-shim-cofferdam
}
stage "tests (shim as shipped)" shim_as_shipped
stage "nothing left" no_cgroups_left
# The OCI validation suite (runtime-tools): every program, with only explained failures.
stage "validation suite (host)" bash scripts/validation.sh
# The same tests on a pure cgroup v2 host, in a VM, where the tool for it is present.
stage "tests (cgroup v2 VM)" bash scripts/test-v2.sh
# The systemd cgroup driver against a real systemd: the same VM with systemd as PID 1.
stage "tests (systemd VM)" bash scripts/test-systemd.sh
# Reliability soak, short form (the full one: bash scripts/soak.sh, 1000 + 200 cycles).
stage "soak" bash scripts/soak.sh 200 80
