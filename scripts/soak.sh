#!/usr/bin/env bash
# Soak: SEQ create/start/delete cycles in a row, then PAR more with 8 at a time, counting
# cgroup directories, mounts, processes and open files on the machine before and after; any
# difference fails. Needs root.   usage: scripts/soak.sh [SEQ=1000] [PAR=200]
set -euo pipefail
cd "$(dirname "$0")/.."
seq_n=${1:-1000}
par_n=${2:-200}
bash scripts/deps.sh
cargo build --quiet
bin=${CARGO_TARGET_DIR:-$PWD/target}/debug/cofferdam
work=$(mktemp -d /tmp/cofferdam-soak.XXXXXX)
prefix=cofferdam-soak-$$
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/rootfs/bin" "$work/rootfs"/{proc,sys,dev,etc,tmp}
cp /bin/busybox "$work/rootfs/bin/"
for a in $(/bin/busybox --list); do [ -e "$work/rootfs/bin/$a" ] || ln -s busybox "$work/rootfs/bin/$a"; done
# One bundle per worker, sharing the rootfs, each with a cgroup of its own.
for w in $(seq 0 8); do
    mkdir -p "$work/b$w"
    "$bin" spec --bundle "$work/b$w"
    sed -i -e 's/"terminal": true/"terminal": false/' \
        -e "s|\"path\": \"rootfs\"|\"path\": \"$work/rootfs\"|" \
        -e 's/^\t\t\t"sh"$/\t\t\t"true"/' \
        -e "s|\"linux\": {|\"linux\": {\n\t\t\"cgroupsPath\": \"/$prefix-$w/c\",|" "$work/b$w/config.json"
done

counts() {
    local cg mounts procs files
    cg=$(find /sys/fs/cgroup -mindepth 1 -type d 2>/dev/null | wc -l)
    mounts=$(wc -l < /proc/self/mountinfo)
    # Live processes only: a zombie holds nothing but its pid until its reaper (the machine's
    # pid 1 here, the engine's subreaper elsewhere) collects it.
    procs=0
    for f in $(grep -l "$prefix" /proc/[0-9]*/cgroup 2>/dev/null || true); do
        st=$(sed 's/.*) //' "${f%/cgroup}/stat" 2>/dev/null | cut -c1) || continue
        [ -n "$st" ] && [ "$st" != Z ] && procs=$((procs + 1))
    done
    # and any cofferdam process still running (by /proc, as pgrep may not be installed). An init
    # killed before its execve still has our name; once dead it waits as a zombie for the
    # machine's reaper, which on some CI hosts is a pid 1 that never reaps, so zombies are not
    # counted.
    for d in /proc/[0-9]*; do
        [ "$(cat "$d/comm" 2>/dev/null)" = cofferdam ] || continue
        st=$(sed 's/.*) //' "$d/stat" 2>/dev/null | cut -c1) || continue
        [ -n "$st" ] && [ "$st" != Z ] && procs=$((procs + 1)) && echo "live: $(tr '\0' ' ' <"$d/cmdline" 2>/dev/null) state=$st" >&2
    done
    files=$(cut -f1 /proc/sys/fs/file-nr)
    echo "cgroups=$cg mounts=$mounts processes=$procs open-files=$files"
}

cycle() { # worker id
    local id="soak-$$-$1-$RANDOM$RANDOM"
    "$bin" --root "$work/state" create --bundle "$work/b$2" "$id" </dev/null >/dev/null
    "$bin" --root "$work/state" start "$id"
    "$bin" --root "$work/state" delete --force "$id"
}
before=$(counts)
echo "before: $before"
t0=$(date +%s.%N)
for i in $(seq "$seq_n"); do cycle "$i" 0; done
t1=$(date +%s.%N)
for w in $(seq 1 8); do
    ( for i in $(seq "$w" 8 "$par_n"); do cycle "p$i" "$w"; done ) &
done
wait
t2=$(date +%s.%N)
sleep 0.5 # let the subreaper reap the last inits
after=$(counts)
echo "after:  $after"
awk -v a="$t0" -v b="$t1" -v c="$t2" -v s="$seq_n" -v p="$par_n" 'BEGIN {
    printf "sequential: %d cycles in %.1f s; parallel (8 at a time): %d cycles in %.1f s\n", s, b - a, p, c - b }'
left=$(ls -A "$work/state" 2>/dev/null | wc -l)
# Open files are machine-wide and move with unrelated activity; the rest must match exactly.
strip() { sed 's/ open-files=.*//' <<<"$1"; }
if [ "$(strip "$before")" != "$(strip "$after")" ] || [ "$left" != 0 ]; then
    echo "soak: something leaked (state entries left: $left)" >&2
    exit 1
fi
fb=${before##*open-files=}; fa=${after##*open-files=}
if [ $((fa - fb)) -gt 64 ]; then
    echo "soak: open files grew by $((fa - fb))" >&2
    exit 1
fi
echo "soak: nothing leaked"
