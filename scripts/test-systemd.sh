#!/usr/bin/env bash
# Runs the systemd cgroup driver's tests (tests/systemd.rs) where systemd is PID 1: a
# throw-away QEMU VM made by ../shared/tools/vm-cgroup2 --systemd (see its README), in one
# boot. The host needs the systemd and dbus packages' files (scripts/deps.sh installs them);
# nothing of them runs on the host. Skipped, saying so, when the tool is not there.
set -euo pipefail
cd "$(dirname "$0")/.."
vm=${VM_CGROUP2:-../shared/tools/vm-cgroup2}
if [ ! -x "$vm" ]; then
    echo "test-systemd: $vm not found: the systemd pass is skipped" >&2
    exit 0
fi
# Build on the host; the guest (software-emulated, several times slower) only runs the tests,
# with every deadline they wait for the kernel scaled (the guest gets this environment).
export TEST_TIME_FACTOR=${TEST_TIME_FACTOR_VM:-6}
cargo test --test systemd --no-run --quiet
"$vm" --systemd -q --mem 2G --timeout 1500 -- sh -c '
    [ "$(cat /proc/1/comm)" = systemd ] || { echo "test-systemd: systemd is not PID 1 in the VM" >&2; exit 1; }
    cargo test --offline --test systemd -- --test-threads=2'
