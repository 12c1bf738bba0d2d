# Sourced by scripts/build-static.sh and scripts/build-shim.sh.
# install_static WHO BIN DEST [HINT]: copy the binary cargo built to DEST (atomically: a running
# engine may be reading the old one) and print DEST, refusing a dynamically linked one: a
# static binary has no program interpreter, and one that needs the loader must not ship as
# the static build.
install_static() {
    local who=$1 bin=$2 dest=$3 hint=${4:-}
    if LC_ALL=C readelf -lW "$bin" | grep -q 'Requesting program interpreter'; then
        echo "$who: $bin is dynamically linked${hint:+ ($hint)}" >&2
        exit 1
    fi
    mkdir -p "$(dirname "$dest")"
    cp "$bin" "$dest.tmp" && mv "$dest.tmp" "$dest"
    echo "$dest"
}
