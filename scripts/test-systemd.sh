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
# with every deadline they wait for the kernel scaled (the guest gets this environment). The
# guest runs the test binary itself, not cargo: cargo's checks take seconds there, and where
# the build script's inputs look changed (a git worktree has no .git/HEAD) it would rebuild
# under emulation.
export TEST_TIME_FACTOR=${TEST_TIME_FACTOR_VM:-6}
tests=$(cargo test --test systemd --no-run --quiet --message-format=json |
    jq -r 'select(.executable != null and .target.kind[0] == "test") | .executable')
[ -x "$tests" ] || { echo "test-systemd: no test binary built ($tests)" >&2; exit 1; }
# One VM at a time on this machine (each takes both cores for minutes); other users of the VM
# here take the same lock. The time of the whole pass, boot included, is printed at the end.
start=$(date +%s)
status=0
flock /run/lock/cofferdam-vm.lock "$vm" --systemd -q --mem 2G --timeout 1500 -- sh -c '
    [ "$(cat /proc/1/comm)" = systemd ] || { echo "test-systemd: systemd is not PID 1 in the VM" >&2; exit 1; }
    # The 100 lifecycles compare every unit and slice of the machine before and after: alone,
    # after the others, so that no other test makes or removes one in between.
    "$0" --test-threads=2 --skip a_hundred_lifecycles && "$0" --exact a_hundred_lifecycles_leave_no_unit_slice_or_directory' "$tests" || status=$?
echo "test-systemd: the systemd VM pass took $(($(date +%s) - start)) s (limit 1500 s), status $status" >&2
exit $status
