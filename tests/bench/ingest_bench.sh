#!/usr/bin/env bash
# Ingest benchmark (issue: measure cp of a 1 GiB uint8 stack into the mount).
#
#   tests/bench/ingest_bench.sh [BRICKFS] [WORKDIR]
#
# Generates (once, cached in WORKDIR/stack) 1024 slices of 1024x1024 uint8
# with make_stack.py, then in the same run:
#   1. baseline: cp into a plain directory on the same disk, then sync
#   2. brickfs:  mount a new store, cp into MOUNT/z/, brickfs umount (which
#                returns after flush + fsync)
# and prints throughput, the ratio to the baseline, the daemon's peak RSS, and
# write amplification (bytes in shard files / compressed block bytes).
# Env: SHAPE (default 1024,1024,1024), DTYPE (uint8), MOUNT_OPTS (extra -o).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
brickfs=${1:-$here/../../build/brickfs}
work=${2:-/var/tmp/brickfs-bench}
shape=${SHAPE:-1024,1024,1024}
dtype=${DTYPE:-uint8}
stack=$work/stack-$shape-$dtype
mkdir -p "$work"
if [[ ! -f $stack/.done ]]; then
  echo "generating $shape $dtype stack in $stack ..."
  rm -rf "$stack"
  /usr/bin/python3 "$here/make_stack.py" "$stack" --shape "$shape" --dtype "$dtype"
  touch "$stack/.done"
fi
bytes=$(du -sb --exclude=.done "$stack" | cut -f1)
now() { date +%s.%N; }
mb_s() { /usr/bin/python3 -c "print(f'{$bytes/($2-$1)/1e6:.0f}')"; }

now() { date +%s.%N; }
# 1. Baseline: plain directory, same disk.
rm -rf "$work/plain"; mkdir -p "$work/plain"; sync
t0=$(now); cp "$stack"/*.tif "$work/plain/"; t1=$(now); sync; t2=$(now)
rm -rf "$work/plain"

# 2. brickfs, with the journal (default) and without (-o nojournal), ROUNDS
#    times each, alternating, so both see the same machine; best time kept.
rounds=${ROUNDS:-2}
results=()
run_brickfs() {  # $1 = extra mount options ("" or nojournal); prints "cp total hwm_kb"
  local opts=${MOUNT_OPTS:-}
  [[ -n $1 ]] && opts=${opts:+$opts,}$1
  rm -rf "$work/vol.zarr"; mkdir -p "$work/mnt"; sync
  "$brickfs" mount "$work/vol.zarr" "$work/mnt" ${opts:+-o $opts}
  local t3 t4 t5
  t3=$(now); cp "$stack"/*.tif "$work/mnt/z/"; t4=$(now)
  "$brickfs" umount "$work/mnt"; t5=$(now)
  local hwm
  hwm=$(grep -o 'peak_rss_kb=[0-9]*' "$work/vol.zarr/.brickfs/daemon.log" | tail -1 | cut -d= -f2)
  echo "$(/usr/bin/python3 -c "print($t4-$t3, $t5-$t3)") $hwm"
}
trap 'mountpoint -q "$work/mnt" && { fusermount3 -u "$work/mnt" || umount -l "$work/mnt"; }' EXIT
best_j=""; best_n=""
for ((r = 0; r < rounds; r++)); do
  j=$(run_brickfs ""); n=$(run_brickfs nojournal)
  echo "round $r: journal: $j   nojournal: $n" >&2
  [[ -z $best_j || $(echo "$j $best_j" | awk '{print ($2 < $5)}') == 1 ]] && best_j=$j
  [[ -z $best_n || $(echo "$n $best_n" | awk '{print ($2 < $5)}') == 1 ]] && best_n=$n
done
info=$("$brickfs" info --json "$work/vol.zarr")
/usr/bin/python3 - "$bytes" "$t0" "$t1" "$t2" "$best_j" "$best_n" "$info" <<'PY'
import json, sys
b, t0, t1, t2 = (float(v) for v in sys.argv[1:5])
fs_cp, fs_all, hwm = sys.argv[5].split()
nj_cp, nj_all, nj_hwm = sys.argv[6].split()
fs_cp, fs_all, nj_cp, nj_all = float(fs_cp), float(fs_all), float(nj_cp), float(nj_all)
info = json.loads(sys.argv[7])
mb = b / 1e6
plain_cp, plain_all = t1 - t0, t2 - t0
amp = info["bytes_stored"] / info["bytes_live_blocks"]
print(f"\ninput: {mb:.0f} MB in TIFF slices, volume {info['shape']} {info['dtype']}")
print(f"{'':28s}{'seconds':>9s}{'MB/s':>9s}")
print(f"{'plain dir: cp':28s}{plain_cp:9.2f}{mb/plain_cp:9.0f}")
print(f"{'plain dir: cp + sync':28s}{plain_all:9.2f}{mb/plain_all:9.0f}")
print(f"{'brickfs: cp':28s}{fs_cp:9.2f}{mb/fs_cp:9.0f}")
print(f"{'brickfs: cp + umount':28s}{fs_all:9.2f}{mb/fs_all:9.0f}")
print(f"{'brickfs -o nojournal: cp':28s}{nj_cp:9.2f}{mb/nj_cp:9.0f}")
print(f"{'  ... cp + umount':28s}{nj_all:9.2f}{mb/nj_all:9.0f}")
print(f"ratio brickfs(cp+umount) / plain(cp+sync) time: {fs_all/plain_all:.2f}")
print(f"journal cost: cp+umount with / without journal: {fs_all/nj_all:.2f}")
print(f"peak daemon RSS: {int(hwm)/1024:.0f} MiB" if hwm.isdigit() else "peak daemon RSS: ?")
print(f"stored {info['bytes_stored']/1e6:.1f} MB (compression ratio {info['compression_ratio']:.2f}); "
      f"write amplification (shard bytes / block bytes) {amp:.3f}")
PY
