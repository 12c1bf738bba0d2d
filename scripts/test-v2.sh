#!/usr/bin/env bash
# Runs the container tests again on a pure cgroup v2 host: a throw-away QEMU VM made by
# ../shared/tools/vm-cgroup2 (see its README), which boots a stock kernel with only cgroup2
# mounted and runs the tests built here against the host's files. Skipped, saying so, when
# the tool is not there.
set -euo pipefail
cd "$(dirname "$0")/.."
vm=${VM_CGROUP2:-../shared/tools/vm-cgroup2}
if [ ! -x "$vm" ]; then
    echo "test-v2: $vm not found: the cgroup v2 pass is skipped" >&2
    exit 0
fi
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v cpio >/dev/null || need+=(cpio)
command -v depmod >/dev/null || need+=(kmod)
command -v xz >/dev/null || need+=(xz-utils)
if [ "${#need[@]}" -gt 0 ]; then
    echo "installing: ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Build on the host; the guest (software-emulated, several times slower) only runs the tests,
# with every deadline they wait for the kernel scaled (the guest gets this environment).
export TEST_TIME_FACTOR=${TEST_TIME_FACTOR_VM:-6}
cargo test --all-targets --no-run --quiet
cargo build --examples --quiet # the binaries tests/examples.rs runs
cargo test -p containerd-shim-cofferdam --no-run --quiet
# Every test file but those that need no second look on cgroup v2 and would take many minutes
# under emulation: Docker's (a whole dockerd; its cgroup side is docker_resources.rs, run here)
# and the systemd driver's (scripts/test-systemd.sh boots a VM of its own for it).
targets="--lib --bins --examples"
for f in tests/*.rs; do
    t=$(basename "$f" .rs)
    case $t in docker | systemd) continue ;; esac
    targets="$targets --test $t"
done
# The CRI test (a directory, like Docker's): containerd's CRI plugin runs pods through cofferdam
# in the VM too, where their limits, their update and the shim's stats are cgroup v2's (about
# 90 s under emulation). Its network stays in namespaces of its own, so `lo` is all it needs.
targets="$targets --test cri"
export COFFERDAM_V2_TARGETS=$targets
# Tests that are the same on any cgroup version and slow under emulation (podman's bridge
# network) run on the host pass only.
export COFFERDAM_TEST_V2_VM=1 VALIDATION_VM_ALL=${VALIDATION_VM_ALL:-0}
# One VM at a time on a machine (scripts/test-systemd.sh takes the same lock): two emulated
# guests on two cores would each take more than twice as long.
flock /run/lock/cofferdam-vm.lock "$vm" -q --mem 4G --timeout 3000 -- sh -c '
    grep -q " - cgroup2 " /proc/self/mountinfo && ! grep -q " - cgroup " /proc/self/mountinfo \
        || { echo "test-v2: the VM is not a pure cgroup2 host" >&2; exit 1; }
    status=0
    cargo test --offline --no-fail-fast $COFFERDAM_V2_TARGETS || status=$?
    # The containerd shim, under a private containerd (metrics are cgroup v2 ones here).
    cargo test --offline -p containerd-shim-cofferdam || status=$?
    # The OCI validation suite too, in the same boot (built on the host by scripts/test.sh):
    # the programs whose path differs on cgroup v2 (the lifecycle, cgroups, devices, pause
    # and kill through the cgroup), ten seconds and more each under emulation, so not all 58 of
    # them unless VALIDATION_VM_ALL=1 (the host pass runs every one).
    if [ "${VALIDATION_VM_ALL:-0}" = 1 ]; then set --; else
        set -- create start state kill delete delete_resources pidfile default             linux_cgroups_cpus linux_cgroups_memory linux_cgroups_pids linux_cgroups_devices             linux_cgroups_relative_pids linux_devices linux_ns_path process_oom_score_adj
    fi
    CARGO_NET_OFFLINE=true bash scripts/validation.sh "$@" || status=$?
    exit $status'
