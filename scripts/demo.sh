#!/usr/bin/env bash
# Runs a real busybox container with the cofferdam CLI: it prints its hostname, its pid (1)
# and its mounts. Needs root; installs busybox-static if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-$PWD/target}/release/cofferdam
work=$(mktemp -d /tmp/cofferdam-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/rootfs/bin"
cp /bin/busybox "$work/rootfs/bin/"
for a in $(/bin/busybox --list); do [ -e "$work/rootfs/bin/$a" ] || ln -s busybox "$work/rootfs/bin/$a"; done
mkdir -p "$work/rootfs"/{proc,sys,dev,etc,tmp}
"$bin" spec --bundle "$work"
# Turn the default spec (interactive `sh`) into a one-shot command, without needing jq.
python3 - "$work/config.json" <<'PY' 2>/dev/null || sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"sh", "-c", "echo hostname: $(hostname); echo pid: $$; echo mounts:; cat \/proc\/mounts"/' "$work/config.json"
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", "echo hostname: $(hostname); echo pid: $$; echo mounts:; cat /proc/mounts"]
json.dump(c, open(p, "w"), indent=2)
PY
"$bin" --root "$work/state" run --bundle "$work" "demo-$$"
