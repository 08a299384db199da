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

# 2. brickfs: the default (journal + pyramid), without the pyramid
#    (-o pyramid=0) and without the journal (-o nojournal), ROUNDS times each,
#    interleaved, so all see the same machine; the best time of each is kept.
rounds=${ROUNDS:-2}
variants=("" "pyramid=0" "nojournal")
run_brickfs() {  # $1 = extra mount options; prints "cp total hwm_kb slab_peak pyr_peak"
  local opts=${MOUNT_OPTS:-}
  [[ -n $1 ]] && opts=${opts:+$opts,}$1
  rm -rf "$work/vol.zarr"; mkdir -p "$work/mnt"; sync
  "$brickfs" mount "$work/vol.zarr" "$work/mnt" ${opts:+-o $opts}
  local t3 t4 t5
  t3=$(now); cp "$stack"/*.tif "$work/mnt/z/"; t4=$(now)
  cp "$work/mnt/.brickfs/status" "$work/status.json"
  "$brickfs" umount "$work/mnt"; t5=$(now)
  local hwm
  hwm=$(grep -o 'peak_rss_kb=[0-9]*' "$work/vol.zarr/.brickfs/daemon.log" | tail -1 | cut -d= -f2)
  /usr/bin/python3 - "$t3" "$t4" "$t5" "$hwm" "$work/status.json" <<'PY'
import json, sys
t3, t4, t5 = (float(v) for v in sys.argv[1:4])
s = json.load(open(sys.argv[5]))
print(t4 - t3, t5 - t3, sys.argv[4], s["memory"]["peak"], s.get("pyramid", {}).get("peak_buffer_bytes", 0))
PY
}
trap 'mountpoint -q "$work/mnt" && { fusermount3 -u "$work/mnt" || umount -l "$work/mnt"; }' EXIT
best=("" "" "")
for ((r = 0; r < rounds; r++)); do
  for i in 0 1 2; do
    res=$(run_brickfs "${variants[$i]}")
    echo "round $r ${variants[$i]:-default}: $res" >&2
    if [[ -z ${best[$i]} || $(echo "$res ${best[$i]}" | awk '{print ($2 < $7)}') == 1 ]]; then
      best[$i]=$res
    fi
  done
done
info=$("$brickfs" info --json "$work/vol.zarr")
/usr/bin/python3 - "$bytes" "$t0" "$t1" "$t2" "${best[0]}" "${best[1]}" "${best[2]}" "$info" <<'PY'
import json, sys
b, t0, t1, t2 = (float(v) for v in sys.argv[1:5])
runs = [r.split() for r in sys.argv[5:8]]
info = json.loads(sys.argv[8])
mb = b / 1e6
plain_all = t2 - t0
print(f"\ninput: {mb:.0f} MB in TIFF slices, volume {info['shape']} {info['dtype']}")
print(f"{'':30s}{'cp s':>7s}{'+umount s':>10s}{'MB/s':>7s}{'peak RSS':>10s}{'slab peak':>10s}{'levels':>8s}")
print(f"{'plain dir: cp + sync':30s}{t1-t0:7.2f}{plain_all:10.2f}{mb/plain_all:7.0f}")
names = ["brickfs (journal, pyramid)", "brickfs -o pyramid=0", "brickfs -o nojournal"]
for name, (cp, total, hwm, slab, pyr) in zip(names, runs):
    rss = f"{int(hwm)/1024:.0f} MiB" if hwm.isdigit() else "?"
    print(f"{name:30s}{float(cp):7.2f}{float(total):10.2f}{mb/float(total):7.0f}{rss:>10s}"
          f"{int(slab)/2**20:8.0f} M{int(pyr)/2**20:6.1f} M")
full, nopyr, nojournal = (float(r[1]) for r in runs)
print(f"ratio brickfs(cp+umount) / plain(cp+sync) time: {full/plain_all:.2f}")
print(f"pyramid cost: time with / without: {full/nopyr:.2f}; peak RSS with / without: "
      f"{int(runs[0][2])/int(runs[2-1][2]):.2f}; pyramid buffers peak / level-0 slab peak: "
      f"{int(runs[0][4])/max(1,int(runs[0][3])):.3f} (target < 1/7 = 0.143)")
print(f"journal cost: time with / without: {full/nojournal:.2f}")
l0 = info["levels_stored"][0]
amp = l0["bytes_stored"] / l0["bytes_live_blocks"]
print(f"level 0 stored {l0['bytes_stored']/1e6:.1f} MB (compression ratio {l0['bytes_raw']/l0['bytes_stored']:.2f}); "
      f"write amplification (shard bytes / block bytes) {amp:.3f}")
PY
