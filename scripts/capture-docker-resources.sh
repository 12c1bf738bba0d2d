#!/usr/bin/env bash
# Captures what Docker hands a runtime in `linux.resources`, into tests/fixtures/ (run as root):
#   docker-create.json   the resources of `docker run IMG true` (Docker's defaults)
#   docker-limits.json   the resources of `docker run --cpu-shares 512 -m 32m --memory-reservation 16m
#                        --pids-limit 100 IMG true`
#   docker-update.json   what `docker update --memory 64m` sends to `runc update -r -`, for a
#                        container run with `-m 32m`
#
# Docker runs privately and leaves nothing behind:
# - dockerd runs in a new network and mount namespace (`unshare --net --mount`), with only `lo`
#   (up), no bridge, no iptables rules; containers use `--network none`.
# - its own --data-root, --exec-root, --pidfile, socket and (empty) --config-file under a
#   mktemp dir, and its own containerd, which dockerd starts because the namespace's
#   /run/containerd is an empty tmpfs (dockerd would use a system containerd's socket there).
# - cgroupfs driver with --cgroup-parent /cofferdam-dockercap-PID.
# - a runtime `capture` (--add-runtime) that saves the bundle's config.json on `create` and
#   the stdin of `update`, then execs runc with the same arguments.
# - the image is a busybox-static rootfs imported with `docker import` (no registry).
# Cleanup, on any exit: containers removed, dockerd TERMed (then KILLed) by its pid, every
# process left in its mount namespace KILLed by pid, the cgroup parent removed in every
# hierarchy, the directory removed (its mounts lived only in the namespace).
set -euo pipefail
cd "$(dirname "$0")/.."
out_dir=$PWD/tests/fixtures
for c in dockerd docker unshare jq runc; do
    command -v "$c" >/dev/null || { echo "$c is missing (bash scripts/deps.sh installs it)" >&2; exit 1; }
done
# The image holds nothing but busybox, so it must be the static one (busybox-static).
if ! [ -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then
    echo "/bin/busybox is not a static busybox (bash scripts/deps.sh installs it)" >&2
    exit 1
fi
docker=$(command -v docker)
[ -x /usr/bin/docker ] && docker=/usr/bin/docker # docker.io's client, matching its daemon

W=$(mktemp -d /tmp/cofferdam-dockercap.XXXXXX)
cg_parent=cofferdam-dockercap-$$
made_run_containerd=
dockerd_pid=
mnt_ns=

cleanup() {
    set +e
    if [ -n "$dockerd_pid" ] && [ -S "$W/docker.sock" ]; then
        ids=$(timeout 30 "$docker" -H "unix://$W/docker.sock" ps -aq 2>/dev/null)
        [ -n "$ids" ] && timeout 60 "$docker" -H "unix://$W/docker.sock" rm -f $ids >/dev/null 2>&1
    fi
    if [ -n "$dockerd_pid" ] && kill -0 "$dockerd_pid" 2>/dev/null; then
        kill -TERM "$dockerd_pid"
        for _ in $(seq 200); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$dockerd_pid" 2>/dev/null && kill -KILL "$dockerd_pid"
    fi
    # Whatever is left: containerd and shims live in dockerd's mount namespace, container
    # processes (in namespaces of their own) in the cgroup parent.
    for p in /proc/[0-9]*; do
        if { [ -n "$mnt_ns" ] && [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$mnt_ns" ]; } ||
            grep -q ":/$cg_parent/" "$p/cgroup" 2>/dev/null; then
            kill -KILL "${p#/proc/}" 2>/dev/null
        fi
    done
    for h in /sys/fs/cgroup /sys/fs/cgroup/*; do
        [ -d "$h/$cg_parent" ] && find "$h/$cg_parent" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    rm -rf "$W"
    [ -n "$made_run_containerd" ] && rmdir /run/containerd 2>/dev/null
    return 0
}
trap cleanup EXIT

dk() { "$docker" -H "unix://$W/docker.sock" "$@"; }

mkdir -p "$W/captured" "$W/rootfs/bin"
cat >"$W/capture" <<EOF
#!/bin/sh
# The runtime dockerd runs through containerd's runc shim: keep what it is given, then runc.
cmd= bundle= prev=
for a in "\$@"; do
    case "\$prev" in --bundle|-b) bundle=\$a ;; esac
    case "\$a" in --bundle=*) bundle=\${a#--bundle=} ;; esac
    case "\$a" in create|update) [ -z "\$cmd" ] && cmd=\$a ;; esac
    prev=\$a
done
n=\$(date +%s%N)
case "\$cmd" in
create) cp "\$bundle/config.json" "$W/captured/create-\$n.json" ;;
update) cat >"$W/captured/update-\$n.json"; exec runc "\$@" <"$W/captured/update-\$n.json" ;;
esac
exec runc "\$@"
EOF
chmod +x "$W/capture"
echo '{}' >"$W/daemon.json"

if ! [ -e /run/containerd ]; then
    mkdir /run/containerd
    made_run_containerd=1
fi
# `exec`s all the way down: the pid of this background job is dockerd's.
unshare --net --mount --propagation private sh -c '
    mount -t tmpfs tmpfs /run/containerd && ip link set lo up && exec "$@"' sh \
    dockerd --data-root "$W/data" --exec-root "$W/exec" --pidfile "$W/docker.pid" \
    -H "unix://$W/docker.sock" --config-file "$W/daemon.json" \
    --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
    --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "/$cg_parent" \
    --storage-driver overlay2 --add-runtime "capture=$W/capture" \
    >"$W/dockerd.log" 2>&1 &
dockerd_pid=$!
for _ in $(seq 300); do
    dk version >/dev/null 2>&1 && break
    kill -0 "$dockerd_pid" 2>/dev/null || { cat "$W/dockerd.log" >&2; exit 1; }
    sleep 0.1
done
dk version >/dev/null || { cat "$W/dockerd.log" >&2; exit 1; }
mnt_ns=$(readlink "/proc/$dockerd_pid/ns/mnt")

cp /bin/busybox "$W/rootfs/bin/busybox"
for a in $("$W/rootfs/bin/busybox" --list); do
    [ -e "$W/rootfs/bin/$a" ] || ln -s busybox "$W/rootfs/bin/$a"
done
tar -C "$W/rootfs" -c . | dk import - cofferdam-bb >/dev/null

# Picks the newest capture of a kind and keeps its resources object only.
newest() { ls "$W/captured/$1"-*.json | sort | tail -n 1; }
resources_of_create() { jq -S '.linux.resources' "$(newest create)"; }

dk run --rm --runtime capture --network none cofferdam-bb true
resources_of_create >"$out_dir/docker-create.json"

dk run --rm --runtime capture --network none --cpu-shares 512 -m 32m \
    --memory-reservation 16m --pids-limit 100 cofferdam-bb true
resources_of_create >"$out_dir/docker-limits.json"

# Docker refuses `update --memory` alone on a container without a memory limit (its swap
# limit would be below the memory): the container has one, and its swap defaults to 2x.
dk run -d --runtime capture --network none -m 32m --name upd cofferdam-bb sleep 1000 >/dev/null
dk update --memory 64m upd >/dev/null
jq -S . "$(newest update)" >"$out_dir/docker-update.json"

echo "captured from Docker $(dk version --format "{{.Server.Version}}"):" \
    "$out_dir/docker-{create,limits,update}.json"
