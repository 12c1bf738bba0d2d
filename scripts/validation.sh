#!/usr/bin/env bash
# The Open Containers validation suite (runtime-tools, ../shared/suites/README.md) against a
# runtime: builds the suite from its tarball once (cached under target/validation, rebuilt when
# the tarball changes), runs each of its 58 TAP programs with a private state root and TMPDIR,
# prints one line per program and a total, and fails on any failure that
# tests/validation-expected-failures.txt does not explain. Needs root.
#
# usage: scripts/validation.sh [PROGRAM...]          (default: all of them)
#   RUNTIME=/usr/sbin/runc        the runtime to test (default: cofferdam's debug build, built here)
#   TEST_TIME_FACTOR=3            scales the per-program timeout (default 1: 120 s each), as it
#                                 scales every deadline of the tests
#   VALIDATION_TRACE=1            records every runtime call, its exit status and stderr in the logs
#   VALIDATION_TARBALL, VALIDATION_EXPECTED, VALIDATION_CACHE override the paths below.
# Each program's stdout (TAP) and stderr are kept in $VALIDATION_CACHE/logs/<runtime>/. One run
# at a time on a machine (/run/lock/cofferdam-validation.lock).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
tarball=${VALIDATION_TARBALL:-$repo/../shared/suites/runtime-tools-260e151.tar.gz}
expected=${VALIDATION_EXPECTED:-$repo/tests/validation-expected-failures.txt}
cache=${VALIDATION_CACHE:-${CARGO_TARGET_DIR:-$repo/target}/validation}
factor=${TEST_TIME_FACTOR:-${TEST_TIMEOUT_FACTOR:-1}}
limit=$(awk -v f="$factor" 'BEGIN { if (f + 0 <= 0) exit 1; printf "%d", 120 * f + 0.5 }') ||
    { echo "validation: TEST_TIME_FACTOR=$factor is not a positive number" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "validation: run it as root (it creates containers and cgroups)" >&2; exit 2; }
[ -r "$tarball" ] || { echo "validation: the suite's tarball $tarball is missing" >&2; exit 2; }
[ -r "$expected" ] || { echo "validation: the expected failures list $expected is missing" >&2; exit 2; }

bash scripts/deps.sh
if [ -n "${RUNTIME:-}" ]; then
    runtime=$(command -v "$RUNTIME") || { echo "validation: RUNTIME=$RUNTIME not found" >&2; exit 2; }
else
    cargo build --quiet
    runtime=${CARGO_TARGET_DIR:-$repo/target}/debug/cofferdam
fi
mkdir -p "$cache"

# The suite's cgroup paths are fixed (/cgrouptest, and testdir/cgrouptest/container relative to
# the runtime's own cgroup), so two runs on one machine, from any checkout, would share them: one
# at a time. (The programs run with this fd closed, so no container can keep the lock.)
mkdir -p /run/lock
exec 9>/run/lock/cofferdam-validation.lock
if ! flock -n 9; then
    echo "validation: waiting for the other run holding /run/lock/cofferdam-validation.lock" >&2
    flock 9
fi

# --- the suite, built once per tarball -------------------------------------------------------
key=$(sha256sum "$tarball" | cut -c1-16)
suite=$cache/suite-$key
if [ ! -f "$suite/.built" ]; then
    echo "validation: building the suite from $tarball" >&2
    build=$(mktemp -d "$cache/build.XXXXXX")
    tar -xzf "$tarball" -C "$build"
    # Offline: the tarball holds its Go dependencies (vendor/). Go's caches stay in the cache dir.
    if ! (cd "$build/runtime-tools" &&
        GOFLAGS=-mod=vendor GOPROXY=off GOCACHE=$cache/gocache GOPATH=$cache/gopath \
            make runtimetest validation-executables) >"$build/build.log" 2>&1 9>&-; then
        tail -n 30 "$build/build.log" >&2
        echo "validation: the suite did not build (log: $build/build.log)" >&2
        exit 1
    fi
    rm -rf "$cache"/suite-*
    mv "$build/runtime-tools" "$suite"
    rm -rf "$build"
    touch "$suite/.built"
fi

if [ "$#" -gt 0 ]; then
    programs=("$@")
else
    programs=()
    for t in "$suite"/validation/*/*.t; do programs+=("$(basename "$t" .t)"); done
fi
for p in "${programs[@]}"; do
    [ -x "$suite/validation/$p/$p.t" ] || { echo "validation: no program named $p" >&2; exit 2; }
done

work=$(mktemp -d /tmp/cofferdam-validation.XXXXXX)
# Reachable by the ids a user namespace maps root to (linux_uid_mappings, linux_ns_nopath).
chmod 0755 "$work"
logs=$cache/logs/$(basename "$runtime")
rm -rf "$logs"
mkdir -p "$logs"
current=
trap '[ -z "$current" ] || clean_after "$current"; rm -rf --one-file-system "$work"' EXIT

# --- cgroups: what the suite's runs may leave --------------------------------------------------
# Every cgroup hierarchy's mount point, and our own cgroup in it (a relative cgroupsPath is
# relative to the runtime's own cgroup, which is ours).
hierarchies=()
v1ctrls=
v2mnt=
while read -r _ _ _ _ mnt _ rest; do
    fstype=${rest#*- }
    fstype=${fstype%% *}
    case $fstype in cgroup | cgroup2) ;; *) continue ;; esac
    super=${rest##* }
    own=
    while IFS=: read -r _ ctrls path; do
        if [ "$fstype" = cgroup2 ]; then
            if [ -z "$ctrls" ]; then own=$path; fi
        else
            for c in ${ctrls//,/ }; do
                case ",$super," in *",$c,"*) own=$path ;; esac
            done
        fi
    done </proc/self/cgroup
    hierarchies+=("$mnt:$own")
    if [ "$fstype" = cgroup2 ]; then v2mnt=$mnt; else v1ctrls+=",$super"; fi
done </proc/self/mountinfo

# The directories the suite names itself, deepest first.
suite_cgroups() {
    local h mnt own
    for h in "${hierarchies[@]}"; do
        mnt=${h%%:*}
        own=${h#*:}
        own=${own%/}
        echo "$mnt/cgrouptest"
        echo "$mnt$own/testdir/cgrouptest/container"
        echo "$mnt$own/testdir/cgrouptest"
        echo "$mnt$own/testdir"
    done
}

# Removes a cgroup directory of ours and what is under it: thaws it, kills what still runs in
# it (the processes of a container of this run), then removes the directories, deepest first.
remove_cgroup() {
    local dir=$1 d pid i
    [ -d "$dir" ] || return 0
    while read -r d; do
        if [ -f "$d/freezer.state" ]; then echo THAWED >"$d/freezer.state" 2>/dev/null || true; fi
        if [ -f "$d/cgroup.freeze" ]; then echo 0 >"$d/cgroup.freeze" 2>/dev/null || true; fi
        for pid in $(cat "$d/cgroup.procs" 2>/dev/null); do
            echo "validation: killing $pid, left in $d" >&2
            kill -KILL "$pid" 2>/dev/null || true
        done
    done < <(find "$dir" -type d)
    for i in $(seq 50); do
        find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
        [ -d "$dir" ] || return 0
        sleep 0.1
    done
    echo "validation: could not remove $dir" >&2
    return 1
}

for d in $(suite_cgroups); do
    if [ -d "$d" ]; then
        echo "validation: $d is there before the run (a run killed earlier?): removing it" >&2
        remove_cgroup "$d"
    fi
done

# Cleans up after one program (its dir $1): the containers it left (force-deleted with the same
# runtime), the cgroup directories the suite names and those named after the ids it created,
# mounts under the work dir. What it found is added to `notes`.
clean_after() {
    local d=$1 s id ids left c m h names
    for s in "$d"/state/*/; do
        [ -d "$s" ] || continue
        id=$(basename "$s")
        notes+=("the program left container $id: deleted")
        "$runtime" --root "$d/state" delete --force "$id" >/dev/null 2>&1 || true
    done
    # (No calls file: the program never ran the runtime.)
    ids=$(sed -n 's/^\(create\|run\)\( .*\)\? \([^ /-][^ /]*\)$/\3/p' "$d/calls" 2>/dev/null | sort -u || true)
    left=$(suite_cgroups)
    if [ -n "$ids" ]; then
        names=()
        for id in $ids; do names+=(-o -name "$id"); done
        for h in "${hierarchies[@]}"; do
            left+=$'\n'$(find "${h%%:*}" -maxdepth 6 -type d \( -false "${names[@]}" \) -prune -print 2>/dev/null)
        done
    fi
    for c in $left; do
        [ -d "$c" ] || continue
        if find "$c" -name cgroup.procs -exec cat {} + 2>/dev/null | grep -q .; then
            notes+=("processes were still running in $c: killed")
        fi
        remove_cgroup "$c" || notes+=("cannot remove $c")
    done
    while read -r m; do
        notes+=("mount left at $m: unmounted")
        umount -l "$m" 2>/dev/null || true
    done < <(awk -v w="$work/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
}

# --- the expected failures -----------------------------------------------------------------------
# What this machine lacks, each a named condition the list can name. Machine-limited failures
# are expected only where their condition holds.
v1_has() { case "$v1ctrls," in *",$1,"*) return 0 ;; esac; return 1; }
condition() {
    local mnt
    case $1 in
    always | race) return 0 ;; # the suite's bugs; "race": one that fails only now and then
    no-blkio-leaf-weight) # v1 blkio without the CFQ knobs (blk-mq kernels): no leaf weight
        for h in "${hierarchies[@]}"; do
            mnt=${h%%:*}
            [ -e "$mnt/blkio.leaf_weight" ] && return 1
        done
        v1_has blkio ;;
    no-hugetlb) # neither a v1 hugetlb hierarchy nor hugetlb passed down from the cgroup2 root
        ! v1_has hugetlb && ! { [ -n "$v2mnt" ] && grep -qw hugetlb "$v2mnt/cgroup.subtree_control"; } ;;
    no-net-cls) # net_cls and net_prio are v1 only; not mounted here
        ! { v1_has net_cls && v1_has net_prio; } ;;
    no-apparmor-profile) # AppArmor off, or the profile the suite names not loaded
        [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" != Y ] ||
            ! grep -q '^acme_secure_profile ' /sys/kernel/security/apparmor/profiles 2>/dev/null ;;
    no-kmem-limit) # no v1 memory hierarchy, or a kernel that refuses or ignores kmem limits (5.16+)
        local v
        v=$(uname -r | awk -F. '{ printf "%d%03d", $1, $2 }')
        ! v1_has memory || [ "$v" -ge 5016 ] ;;
    cgroup2-only) # the suite reads cgroups through v1 paths only
        [ -z "$v1ctrls" ] && [ -n "$v2mnt" ] ;;
    incomplete-bounding-set) # we (so the runtime) lack a capability the kernel has
        local bnd last
        bnd=$(awk '/^CapBnd:/ { print $2 }' /proc/self/status)
        last=$(cat /proc/sys/kernel/cap_last_cap)
        [ "$((16#$bnd))" != "$(((1 << (last + 1)) - 1))" ] ;;
    *)
        echo "validation: unknown condition '$1' in $expected" >&2
        exit 2 ;;
    esac
}

# Lines: `program | assertion | condition | reason`; the program and the assertion are shell
# patterns, the latter matched against the failures a program reports (see tap_failures; "*":
# any of them); the entry holds only where the condition does.
exp_prog=()
exp_pat=()
exp_cond=()
held=()
while IFS= read -r line; do
    case $line in '' | '#'*) continue ;; esac
    IFS='|' read -r p a c _ <<<"$line"
    p=$(echo "$p" | xargs)
    c=$(echo "$c" | xargs)
    a=${a#"${a%%[![:space:]]*}"}
    a=${a%"${a##*[![:space:]]}"}
    compgen -G "$suite/validation/$p/$p.t" >/dev/null ||
        { echo "validation: $expected names no program '$p'" >&2; exit 2; }
    condition "$c" || continue
    case " ${held[*]} always race " in *" $c "*) ;; *) held+=("$c") ;; esac
    exp_prog+=("$p")
    exp_pat+=("$a")
    exp_cond+=("$c")
done <"$expected"

# The failures in one program's output, one a line: each `not ok` ("#N description", and
# " -- stderr: LINE" with the first line of the runtime's stderr its diagnostic holds), each
# diagnostic with an "error" that follows no test point (since the stream's start or the last
# diagnostic: how this suite's lifecycle programs report a failed check), a plan that does not
# match the points run. Programs may print several TAP streams, one after the other.
tap_failures() {
    awk '
        function flush() { if (pending != "") print pending; pending = "" }
        function endstream() {
            flush()
            if (planned && plan != n) printf "(planned %d assertions, ran %d)\n", plan, n
            planned = 0; n = 0
        }
        function value(s) { s = substr(s, RLENGTH + 1); sub(/",?$/, "", s); sub(/\\n.*/, "", s); return s }
        /^TAP version/ { endstream(); prev = "header"; next }
        /^  ---$/ && !yaml { yaml = 1; orphan = (prev != "point"); err = ""; next }
        yaml && /^  \.\.\.$/ {
            yaml = 0; if (orphan && err != "") print err; flush(); prev = "yaml"; next
        }
        yaml {
            if (match($0, /^    "error": "/)) err = value($0)
            if (pending != "" && match($0, /^    "stderr": "/)) pending = pending " -- stderr: " value($0)
            next
        }
        /^ok [0-9]+/ { flush(); n++; prev = "point"; next }
        /^not ok [0-9]+/ {
            flush(); n++; d = $0; sub(/^not ok /, "", d); num = d; sub(/ .*/, "", num)
            sub(/^[0-9]+( - )?/, "", d); pending = "#" num " " d; prev = "point"; next
        }
        /^1\.\.[0-9]+/ { flush(); plan = substr($0, 4) + 0; planned = 1; next }
        END { endstream() }
    ' "$1"
}

# --- the run ----------------------------------------------------------------------------------
declare -A verdicts hit
total_pass=0 total_xfail=0 total_fail=0 ok_sum=0 notok_sum=0 skip_sum=0 unexpected=0
start_all=$(date +%s.%N)
printf 'validation: %s programs against %s (timeout %ss each); this machine: %s\n' \
    "${#programs[@]}" "$runtime" "$limit" "${held[*]:-nothing missing}"
# A program with an unexpected failure runs once more (the suite's programs race now and then
# on a busy machine); a pass then is reported as FLAKY with the first run's failures, so that a
# real regression (which fails twice) still fails the run and an intermittent one stays visible.
queue=("${programs[@]}")
declare -A tried firstfail
while [ "${#queue[@]}" -gt 0 ]; do
    p=${queue[0]}
    queue=("${queue[@]:1}")
    d=$work/$p${tried[$p]:+.retry}
    current=$d
    mkdir -p "$d/state" "$d/tmp"
    # The suite runs $RUNTIME with runc's command line and no --root: this gives it one, and
    # records the calls (the container ids, for the cleanup). With VALIDATION_TRACE=1 it also
    # records each call's exit status and stderr in $logs/$p.calls; the runtime is then the
    # wrapper's child, and a container's own stderr goes to that record too.
    if [ "${VALIDATION_TRACE:-0}" = 1 ]; then
        printf '#!/bin/sh\necho "$*" >>%q\ne=$(mktemp %q)\n%q --root %q "$@" 2>"$e"\nrc=$?\ncat "$e" >&2\n{ echo "$ $*  => exit $rc"; sed "s/^/    /" "$e"; } >>%q\nrm -f "$e"\nexit $rc\n' \
            "$d/calls" "$work/stderr.XXXXXX" "$runtime" "$d/state" "$logs/$p.calls" >"$d/rt"
    else
        printf '#!/bin/sh\necho "$*" >>%q\nexec %q --root %q "$@"\n' "$d/calls" "$runtime" "$d/state" >"$d/rt"
    fi
    chmod +x "$d/rt"
    t0=$(date +%s.%N)
    rc=0
    (cd "$suite" && TMPDIR=$d/tmp RUNTIME=$d/rt timeout -k 10 "$limit" "./validation/$p/$p.t") \
        </dev/null >"$logs/$p.out" 2>"$logs/$p.err" 9>&- || rc=$?
    secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')

    notes=()
    clean_after "$d"
    current=

    # Score it.
    failures=$(tap_failures "$logs/$p.out")
    case $rc in
    0) ;;
    124) failures+=$'\n'"(timed out after ${limit}s)" ;;
    *) failures+=$'\n'"(exit status $rc)" ;;
    esac
    ok=$(grep -c '^ok [0-9]' "$logs/$p.out" || true)
    skip=$(grep -ci '^ok [0-9]* .*# skip' "$logs/$p.out" || true)
    nfail=0 nunexp=0
    unexp=()
    while IFS= read -r f; do
        [ -n "$f" ] || continue
        nfail=$((nfail + 1))
        matched=0
        # An entry that names no stderr holds whatever the runtime said.
        bare=${f%% -- stderr: *}
        for i in "${!exp_prog[@]}"; do
            # shellcheck disable=SC2053 # the pattern is a glob on purpose
            if [[ $p == ${exp_prog[$i]} && ($f == ${exp_pat[$i]} || $bare == ${exp_pat[$i]}) ]]; then
                matched=1
                hit[$i:$p]=1
            fi
        done
        [ "$matched" = 1 ] || { nunexp=$((nunexp + 1)); unexp+=("$f"); }
    done <<<"$failures"
    for n in "${notes[@]}"; do
        # A process still running after its container was deleted is the runtime's leak.
        case $n in processes*) nunexp=$((nunexp + 1)); unexp+=("$n") ;; esac
    done
    ok_sum=$((ok_sum + ok))
    notok_sum=$((notok_sum + nfail))
    skip_sum=$((skip_sum + skip))
    if [ "$nfail" = 0 ] && [ "$nunexp" = 0 ]; then
        verdict=PASS
        total_pass=$((total_pass + 1))
    elif [ "$nunexp" = 0 ]; then
        verdict=XFAIL
        total_xfail=$((total_xfail + 1))
    elif [ -z "${tried[$p]:-}" ]; then
        # Not counted yet: run it again at once.
        tried[$p]=1
        firstfail[$p]=$(printf '%s; ' "${unexp[@]}")
        printf '%-5s %-32s %4d ok %3d failed (unexpected: %s) - running it again\n' \
            "RERUN" "$p" "$ok" "$nfail" "${firstfail[$p]}"
        ok_sum=$((ok_sum - ok))
        notok_sum=$((notok_sum - nfail))
        skip_sum=$((skip_sum - skip))
        queue=("$p" "${queue[@]}")
        continue
    else
        verdict=FAIL
        total_fail=$((total_fail + 1))
        unexpected=1
    fi
    if [ -n "${tried[$p]:-}" ] && [ "$verdict" != FAIL ]; then
        notes+=("FLAKY: the first run failed: ${firstfail[$p]}")
    fi
    verdicts[$p]=$verdict
    printf '%-5s %-32s %4d ok %3d failed %3d skipped  rc=%-3s %6ss\n' \
        "$verdict" "$p" "$ok" "$nfail" "$skip" "$rc" "$secs"
    for f in "${unexp[@]}"; do printf '        unexpected: %s\n' "$f"; done
    for n in "${notes[@]}"; do printf '        note: %s\n' "$n"; done
    if [ "$verdict" = FAIL ] && [ "$rc" != 0 ]; then
        tail -n 3 "$logs/$p.err" | sed 's/^/        stderr: /'
    fi
done

# Expected failures that did not happen: reported, not failed. Not for a race, nor for a program
# that failed otherwise or that this machine lets fail wholly ("*"): it may have stopped before
# the assertion.
for i in "${!exp_prog[@]}"; do
    [ "${exp_cond[$i]}" != race ] || continue
    for p in "${programs[@]}"; do
        # shellcheck disable=SC2053 # the pattern is a glob on purpose
        [[ $p == ${exp_prog[$i]} ]] || continue
        [ -z "${hit[$i:$p]:-}" ] || continue
        case ${verdicts[$p]} in PASS | XFAIL) ;; *) continue ;; esac
        whole=
        if [ "${exp_pat[$i]}" != "*" ]; then
            for j in "${!exp_prog[@]}"; do
                # shellcheck disable=SC2053
                if [[ $p == ${exp_prog[$j]} && ${exp_pat[$j]} == "*" && -n ${hit[$j:$p]:-} ]]; then
                    whole=1
                fi
            done
        fi
        [ -n "$whole" ] || printf 'now passes (expected to fail): %s | %s\n' "$p" "${exp_pat[$i]}"
    done
done
secs=$(awk -v a="$start_all" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
printf 'validation total (%s): %d programs: %d passed, %d expected failures, %d failed; assertions: %d ok (%d skipped), %d failed; %ss; logs in %s\n' \
    "$(basename "$runtime")" "${#programs[@]}" "$total_pass" "$total_xfail" "$total_fail" \
    "$ok_sum" "$skip_sum" "$notok_sum" "$secs" "$logs"
exit "$unexpected"
