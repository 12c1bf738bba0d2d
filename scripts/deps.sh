#!/usr/bin/env bash
# Installs what running containers and the tests need on a fresh Debian machine (root):
# a static busybox for rootfs fixtures, runc to compare against, ps(1) for `cofferdam ps`, and Go
# for the OCI validation suite. Safe to run again.
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
# podman (with conmon) drives cofferdam in tests/engines.rs.
command -v podman >/dev/null || need+=(podman)
command -v conmon >/dev/null || need+=(conmon)
# containerd (and ctr) runs its runc v2 shim with cofferdam as the runc binary.
command -v containerd >/dev/null || need+=(containerd)
# The OCI validation suite (scripts/validation.sh) is built from source with Debian's Go; its
# programs unpack their rootfs with tar.
command -v go >/dev/null || need+=(golang-go)
command -v make >/dev/null || need+=(make)
command -v tar >/dev/null || need+=(tar)
# podman's default seccomp profile, a real-world fixture for the seccomp tests.
[ -f /usr/share/containers/seccomp.json ] || need+=(golang-github-containers-common)
if [ "${#need[@]}" -gt 0 ]; then
    echo "installing: ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi
