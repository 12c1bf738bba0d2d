#!/usr/bin/env bash
# The release binary as it ships: glibc linked in statically, as a static-pie (still ASLR), so
# that each CLI call skips the dynamic loader (see README, Performance, for what that saves).
#
#   bash scripts/build-static.sh [DEST]    # default DEST: target/static/cofferdam
#
# `crt-static` must reach only what runs on the machine, not the build scripts and proc-macros
# cargo builds for itself (those cannot be static). Cargo keeps RUSTFLAGS from them only when a
# --target is given, so this names the host's own triple, whatever the architecture; a plain
# `cargo build --release` (target/release/cofferdam) stays an ordinary dynamic binary that
# builds anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/install-static.sh
host=$(rustc -vV | sed -n 's/^host: //p')
dest=${1:-${CARGO_TARGET_DIR:-target}/static/cofferdam}
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --release --quiet --target "$host" --bin cofferdam
bin=${CARGO_TARGET_DIR:-target}/$host/release/cofferdam
install_static build-static "$bin" "$dest" "no static glibc on this machine?"
