#!/usr/bin/env bash
# The brickfs demo: generate a slice stack, mount a new store, copy the stack
# in with cp, read virtual slices back with libtiff's tools, unmount, info.
#
#   packaging/demo.sh [PATH/TO/brickfs]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
brickfs=${1:-$here/build/brickfs}
dir=${BRICKFS_DEMO_DIR:-$(mktemp -d /tmp/brickfs-demo.XXXXXX)}
mnt=$dir/mnt
mkdir -p "$mnt"

cleanup() {
  if mountpoint -q "$mnt" 2>/dev/null; then
    timeout 60 "$brickfs" umount "$mnt" || fusermount3 -u "$mnt" || umount -l "$mnt" || true
  fi
}
trap cleanup EXIT

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

if [[ ! -e /dev/fuse ]]; then
  echo "demo: /dev/fuse is missing; load the fuse module (modprobe fuse) first" >&2
  exit 1
fi

echo "demo: working in $dir"
echo "demo: generating 160 slices of 600x512 uint16 (scan_1.tif ... scan_160.tif)"
/usr/bin/python3 "$here/tests/bench/make_stack.py" "$dir/stack" --shape 160,600,512 --dtype uint16 --first 1

step brickfs mount "$dir/vol.zarr" "$mnt" -o first_index=1
"$brickfs" mount "$dir/vol.zarr" "$mnt" -o first_index=1

step "cp $dir/stack/scan_*.tif $mnt/z/"
time cp "$dir"/stack/scan_*.tif "$mnt/z/"

step "ls $mnt/z | head -3; ls $mnt/z | wc -l"
ls "$mnt/z" | head -3
ls "$mnt/z" | wc -l

step brickfs status "$mnt"
"$brickfs" status "$mnt"

step tiffinfo "$mnt/z/00016.tif"
tiffinfo "$mnt/z/00016.tif"

step tiffcmp "$dir/stack/scan_17.tif" "$mnt/z/00016.tif"   "# same pixels?"
tiffcmp "$dir/stack/scan_17.tif" "$mnt/z/00016.tif" && echo "identical pixels"

step tiffinfo "$mnt/y/00300.tif"   "# an XZ plane, generated from the bricks"
tiffinfo "$mnt/y/00300.tif" | grep -E "Image Width|Bits"

step brickfs umount "$mnt"
"$brickfs" umount "$mnt"

step brickfs info "$dir/vol.zarr"
"$brickfs" info "$dir/vol.zarr"

echo
echo "demo: done. The store $dir/vol.zarr is a Zarr v3 / OME-Zarr 0.5 group."
