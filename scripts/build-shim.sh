#!/usr/bin/env bash
# The native containerd shim as it ships: a static musl binary built with the `shim` profile
# (Cargo.toml), for the shim's resident memory (see ARCHITECTURE.md, The containerd shim: with
# glibc, even linked statically, each shim maps 0.8 MiB more of libc code and data).
#
#   bash scripts/build-shim.sh [DEST]    # default DEST: target/static/containerd-shim-cofferdam-v2
#
# containerd finds the shim on its PATH by its name, so DEST must keep that name (for instance
# /usr/local/bin/containerd-shim-cofferdam-v2). The musl target's standard library comes from
# rustup when it is missing; Rust ships musl itself, so nothing else is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/install-static.sh
host=$(rustc -vV | sed -n 's/^host: //p')
target=${host%-gnu}-musl
dest=${1:-${CARGO_TARGET_DIR:-target}/static/containerd-shim-cofferdam-v2}
if [ "$(basename "$dest")" != containerd-shim-cofferdam-v2 ]; then
    echo "build-shim: $dest: containerd looks the shim up as containerd-shim-cofferdam-v2" >&2
    exit 1
fi
if [ ! -d "$(rustc --print sysroot)/lib/rustlib/$target/lib" ]; then
    if ! command -v rustup >/dev/null; then
        echo "build-shim: the $target standard library is missing, and there is no rustup to add it" >&2
        exit 1
    fi
    rustup target add "$target"
fi
cargo build --profile shim --quiet --target "$target" -p containerd-shim-cofferdam
bin=${CARGO_TARGET_DIR:-target}/$target/shim/containerd-shim-cofferdam-v2
install_static build-shim "$bin" "$dest"
