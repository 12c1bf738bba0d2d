#!/usr/bin/env bash
# Installs what running containers and the tests need on a fresh Debian machine (root):
# a static busybox for rootfs fixtures, runc to compare against, ps(1) for `cofferdam ps`, the
# engines (podman, containerd, Docker, containerd's CRI with the CNI plugins), ip(8) for the
# namespace and device tests, protoc for the CRI client's build, and Go for the OCI validation
# suite. Safe to run again.
set -euo pipefail
need=()
# The rootfs fixtures hold nothing but /bin/busybox, so it must be the static build.
if ! [ -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then
    need+=(busybox-static)
fi
command -v runc >/dev/null || need+=(runc)
command -v find >/dev/null || need+=(findutils)
# `cofferdam ps` runs the host's ps(1), as runc does.
command -v ps >/dev/null || need+=(procps)
# ip(8) makes the network namespaces that tests/namespaces.rs joins by path (`ip netns add`).
command -v ip >/dev/null || need+=(iproute2)
# podman (with conmon) drives cofferdam in tests/engines.rs.
command -v podman >/dev/null || need+=(podman)
command -v conmon >/dev/null || need+=(conmon)
# podman's bridge network (tests/engines.rs, inside a network namespace of the test's own):
# netavark makes the bridge and veths, with iptables rules.
[ -x /usr/lib/podman/netavark ] || need+=(netavark)
command -v iptables >/dev/null || need+=(iptables)
# containerd (and ctr) runs its runc v2 shim with cofferdam as the runc binary, and the native
# shim (shim/tests/shim.rs, with podman to make its image); script(1) gives ctr a terminal.
command -v containerd >/dev/null || need+=(containerd)
# The CRI test (tests/cri): the pod network is Debian's CNI bridge, host-local and loopback
# plugins; its client's CRI types are generated at build time by protoc (k8s-cri's build
# script), so every build of the tests needs it.
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
command -v protoc >/dev/null || need+=(protobuf-compiler)
command -v script >/dev/null || need+=(bsdutils)
# The OCI validation suite (scripts/validation.sh) is built from source with Debian's Go; its
# programs unpack their rootfs with tar.
command -v go >/dev/null || need+=(golang-go)
command -v make >/dev/null || need+=(make)
command -v tar >/dev/null || need+=(tar)
# podman's default seccomp profile, a real-world fixture for the seccomp tests.
[ -f /usr/share/containers/seccomp.json ] || need+=(golang-github-containers-common)
# The systemd driver's tests boot this host's systemd and dbus-daemon in a VM
# (scripts/test-systemd.sh): their files only. Nothing of them may start here: dbus's install
# script would start a dbus-daemon, so a policy-rc.d forbids it for the install.
files_only=()
[ -x /lib/systemd/systemd ] || files_only+=(systemd)
command -v dbus-daemon >/dev/null && command -v dbus-send >/dev/null || files_only+=(dbus)
if [ "${#files_only[@]}" -gt 0 ]; then
    echo "installing (files only): ${files_only[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    policy=/usr/sbin/policy-rc.d
    made_policy=
    if [ ! -e $policy ]; then
        printf '#!/bin/sh\nexit 101\n' >$policy && chmod +x $policy && made_policy=1
    fi
    apt-get install -y -qq "${files_only[@]}" >/dev/null
    [ -z "$made_policy" ] || rm -f $policy
fi
# Docker (dockerd, its client, docker-init, iptables) for tests/docker and
# scripts/capture-docker-resources.sh (which also needs jq); docker-init is also the init of
# the CRI test's containerd. Without recommends: they would bring apparmor and cgroupfs-mount.
# (ip(8), which the Docker tests use too, is asked for above.)
lean=()
command -v dockerd >/dev/null || lean+=(docker.io)
command -v jq >/dev/null || lean+=(jq)
if [ "${#need[@]}" -gt 0 ] || [ "${#lean[@]}" -gt 0 ]; then
    echo "installing: ${need[*]} ${lean[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    [ "${#need[@]}" -eq 0 ] || apt-get install -y -qq "${need[@]}" >/dev/null
    [ "${#lean[@]}" -eq 0 ] || apt-get install -y -qq --no-install-recommends "${lean[@]}" >/dev/null
fi
