#!/usr/bin/env bash
# The brickfs demo: generate a slice stack, mount a new store, copy the stack
# in with cp, read virtual slices back with libtiff's tools, unmount, info.
#
#   packaging/demo.sh [--keep] [PATH/TO/brickfs]
#
# It works in a new directory under ${TMPDIR:-/tmp} (about 170 MB: the stack
# and the store) and removes it at the end, whether the demo succeeded or not,
# unless --keep is given: then it says where the directory is and how to
# remove it. BRICKFS_DEMO_DIR=DIR works in DIR instead and always keeps it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
keep=0
if [[ ${1:-} == --keep ]]; then
  keep=1
  shift
fi
if [[ ${1:-} == -* ]]; then
  echo "usage: $0 [--keep] [PATH/TO/brickfs]" >&2
  exit 2
fi
brickfs=${1:-$here/build/brickfs}
if [[ -n ${BRICKFS_DEMO_DIR:-} ]]; then
  dir=$BRICKFS_DEMO_DIR
  keep=1
else
  dir=$(mktemp -d "${TMPDIR:-/tmp}/brickfs-demo.XXXXXX")
fi
mnt=$dir/mnt
mkdir -p "$mnt"

cleanup() {
  local rc=$?
  if mountpoint -q "$mnt" 2>/dev/null; then
    timeout 60 "$brickfs" umount "$mnt" || fusermount3 -u "$mnt" || umount -l "$mnt" || true
  fi
  if ((keep)); then
    echo "demo: kept $dir (the stack, the store vol.zarr and the empty mount point;" \
         "rm -rf $dir removes it)"
  elif mountpoint -q "$mnt" 2>/dev/null || grep -qF " $dir/" /proc/mounts; then
    # Never rm -rf through a mount: the store would lose its files.
    echo "demo: $mnt is still mounted; $dir is left in place" >&2
  else
    rm -rf "$dir"
    echo "demo: removed $dir$( ((rc == 0)) || echo " (run with --keep to look at it)")"
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
if ((keep)); then
  echo "demo: done. The store $dir/vol.zarr is a Zarr v3 / OME-Zarr 0.5 group."
else
  echo "demo: done. The store was a Zarr v3 / OME-Zarr 0.5 group (--keep keeps it)."
fi
