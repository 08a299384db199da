#!/usr/bin/python3
"""Ingest and read-back benchmark (issue 14), every figure a ratio against a
baseline measured in the same run, caches dropped before each step.

    sudo /usr/bin/python3 tests/bench/ingest_bench.py [--work /var/tmp/brickfs-bench]
        [--shape 1024,1024,1024] [--dtype uint8|uint16|both] [--rounds 2]
        [--brickfs build/brickfs] [--skip-peer] [--skip-read]

For each dtype it generates (once, cached) a noisy stack with make_stack.py
(smooth structures + Poisson shot noise + read noise: zstd level 1 ratio ~1.2
for uint8, ~1.55 for 12-bit uint16), then, alternating ROUNDS times:

  plain      cp of the stack into a directory on the same disk, + sync
  brickfs    cp into a new mount with the defaults (journal + pyramid) +
             brickfs umount (returns once flushed and fsynced)
  peer       zarr-python 2.13 (Debian python3-zarr): whole 32-slice slabs read
             with tifffile and assigned to a DirectoryStore array, chunks =
             brickfs's block, numcodecs.Zstd(level=1), 2 threads each writing
             its own slabs, os.sync() at the end
  ceiling    build/tests/encode_ceiling: brickfs's block encoder compressing
             the same slabs on all cores, nothing else running
  fuse sink  cp of the stack into tests/bench/sinkfs.c, a FUSE file system
             that discards what is written, answering with brickfs's FUSE
             settings: what the FUSE round trips alone cost the writer

and on the finished store (a -o ro mount, caches dropped before each):

  cat z/*    every z/ plane in order   vs   cat of the source TIFFs
  cat y/*    every y/ plane in order (a viewer paging through XZ)
  planes     the middle z/, y/ and x/ plane, each on a fresh mount

Prints each time (best of the rounds) and the ratios the issue sets targets
for: peer / brickfs (>= 1.5), brickfs / ceiling (<= 1.3 at steady state),
cat z/* and cat y/* / cat of the sources (<= 1.3), slowest / fastest cold
plane (<= 1.3), plus brickfs's peak RSS and write amplification.
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def sh(argv, **kw):
    return subprocess.run(argv, check=True, **kw)


def drop_caches():
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        sys.stderr.write("ingest_bench: cannot drop caches (not root?): cold figures are warm\n")


def timed(fn):
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0


def stack_for(work, shape, dtype):
    d = os.path.join(work, "stack-%s-%s" % (",".join(map(str, shape)), dtype))
    if not os.path.exists(os.path.join(d, ".done")):
        print("generating %s %s stack in %s ..." % (shape, dtype, d), flush=True)
        shutil.rmtree(d, ignore_errors=True)
        sh(["/usr/bin/python3", os.path.join(HERE, "make_stack.py"), d, "--shape",
            ",".join(map(str, shape)), "--dtype", dtype])
        open(os.path.join(d, ".done"), "w").close()
    return d, sorted(glob.glob(os.path.join(d, "*.tif")))


def status_of(mnt):
    with open(os.path.join(mnt, ".brickfs", "status")) as f:
        return json.load(f)


def run_plain(work, files):
    dst = os.path.join(work, "plain")
    shutil.rmtree(dst, ignore_errors=True)
    os.makedirs(dst)
    drop_caches()
    t = timed(lambda: (sh(["cp"] + files + [dst]), os.sync()))
    shutil.rmtree(dst)
    return t


def run_brickfs(work, brickfs, files, opts=()):
    store, mnt = os.path.join(work, "vol.zarr"), os.path.join(work, "mnt")
    shutil.rmtree(store, ignore_errors=True)
    os.makedirs(mnt, exist_ok=True)
    drop_caches()
    sh([brickfs, "mount", store, mnt] + (["-o", ",".join(opts)] if opts else []))
    t0 = time.monotonic()
    sh(["cp"] + files + [mnt + "/z/"])
    t_cp = time.monotonic() - t0
    st = status_of(mnt)
    sh([brickfs, "umount", mnt])
    t = time.monotonic() - t0
    hwm = 0
    with open(os.path.join(store, ".brickfs", "daemon.log"), errors="replace") as f:
        for line in f:
            if "peak_rss_kb=" in line:
                hwm = int(line.split("peak_rss_kb=")[1].split()[0])
    return t, t_cp, hwm, st


PEER = r"""
import os, sys, threading
import numpy as np, tifffile, zarr, numcodecs
out, block, files = sys.argv[1], [int(v) for v in sys.argv[2].split(",")], sys.argv[3:]
first = tifffile.imread(files[0])
arr = zarr.open_array(zarr.DirectoryStore(out), mode="w", shape=(len(files),) + first.shape,
                      chunks=block, dtype=first.dtype, compressor=numcodecs.Zstd(level=1),
                      fill_value=0)
slabs = list(range(0, len(files), block[0]))
def work(mine):
    for s in mine:
        arr[s:s + block[0]] = np.stack([tifffile.imread(f) for f in files[s:s + block[0]]])
ts = [threading.Thread(target=work, args=(slabs[i::2],)) for i in range(2)]
for t in ts: t.start()
for t in ts: t.join()
os.sync()
"""


def run_peer(work, files, block):
    out = os.path.join(work, "peer.zarr")
    shutil.rmtree(out, ignore_errors=True)
    script = os.path.join(work, "peer.py")
    with open(script, "w") as f:
        f.write(PEER)
    drop_caches()
    t = timed(lambda: sh(["/usr/bin/python3", script, out, ",".join(map(str, block))] + files))
    shutil.rmtree(out, ignore_errors=True)
    return t


def build_sinkfs(work):
    exe = os.path.join(work, "sinkfs")
    cflags = subprocess.run(["pkg-config", "--cflags", "--libs", "fuse3"], check=True,
                            capture_output=True, text=True).stdout.split()
    sh([os.environ.get("CC", "cc"), "-O2", "-o", exe, os.path.join(HERE, "sinkfs.c")] + cflags
       + ["-lpthread"])
    return exe


def run_sink(work, exe, files):
    mnt = os.path.join(work, "sinkmnt")
    os.makedirs(mnt, exist_ok=True)
    p = subprocess.Popen([exe, mnt, "-f", "-o", "max_threads=16"])
    try:
        for _ in range(100):
            if os.path.ismount(mnt):
                break
            time.sleep(0.05)
        drop_caches()
        return timed(lambda: sh(["cp"] + files + [mnt + "/z/"]))
    finally:
        subprocess.run(["fusermount3", "-u", mnt])
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            subprocess.run(["umount", "-l", mnt])


def run_ceiling(stack, block):
    exe = os.path.join(REPO, "build", "tests", "encode_ceiling")
    r = subprocess.run([exe, stack, "--block", ",".join(map(str, block)), "--repeat", "2"],
                       check=True, capture_output=True, text=True)
    return float(r.stdout.split()[1])


def read_all(paths):
    n = 0
    for p in paths:
        with open(p, "rb") as f:
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                n += len(b)
    return n


def run_reads(work, brickfs, files, rounds):
    store, mnt = os.path.join(work, "vol.zarr"), os.path.join(work, "mnt")
    res = {"src": [], "z": [], "y": [], "plane_z": [], "plane_y": [], "plane_x": []}
    for _ in range(rounds):
        drop_caches()
        res["src"].append(timed(lambda: read_all(files)))
        for axis in ("z", "y"):
            drop_caches()
            sh([brickfs, "mount", store, mnt, "-o", "ro"])
            names = sorted(os.listdir(os.path.join(mnt, axis)))
            res[axis].append(timed(lambda: read_all([os.path.join(mnt, axis, n) for n in names])))
            sh([brickfs, "umount", mnt])
        for axis in ("z", "y", "x"):
            drop_caches()
            sh([brickfs, "mount", store, mnt, "-o", "ro"])
            names = sorted(os.listdir(os.path.join(mnt, axis)))
            mid = os.path.join(mnt, axis, names[len(names) // 2])
            res["plane_" + axis].append(timed(lambda: read_all([mid])))
            sh([brickfs, "umount", mnt])
    return {k: min(v) for k, v in res.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="/var/tmp/brickfs-bench")
    ap.add_argument("--shape", default="1024,1024,1024")
    ap.add_argument("--dtype", default="both", choices=["uint8", "uint16", "both"])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--brickfs", default=os.path.join(REPO, "build", "brickfs"))
    ap.add_argument("--skip-peer", action="store_true")
    ap.add_argument("--skip-read", action="store_true")
    ap.add_argument("--mount-opts", default="", help="extra -o for the brickfs ingest")
    a = ap.parse_args()
    shape = tuple(int(v) for v in a.shape.split(","))
    block = (32, 32, 32)
    os.makedirs(a.work, exist_ok=True)
    for dtype in (["uint8", "uint16"] if a.dtype == "both" else [a.dtype]):
        stack, files = stack_for(a.work, shape, dtype)
        gb = sum(os.path.getsize(f) for f in files) / 1e9
        times = {"plain": [], "brickfs": [], "peer": [], "sink": []}
        extra = {}
        sinkfs = build_sinkfs(a.work)
        for r in range(a.rounds):
            times["plain"].append(run_plain(a.work, files))
            times["sink"].append(run_sink(a.work, sinkfs, files))
            t, t_cp, hwm, st = run_brickfs(a.work, a.brickfs, files,
                                           [o for o in a.mount_opts.split(",") if o])
            times["brickfs"].append(t)
            extra.setdefault("cp", []).append(t_cp)
            extra["hwm_kb"] = max(extra.get("hwm_kb", 0), hwm)
            extra["wa"] = st["bytes"]["write_amplification"]
            extra["ratio"] = st["bytes"]["compression_ratio"]
            if not a.skip_peer:
                times["peer"].append(run_peer(a.work, files, block))
            print("  round %d: plain %.2f s, fuse sink %.2f s, brickfs %.2f s (cp %.2f s)%s" % (
                r, times["plain"][-1], times["sink"][-1], t, t_cp,
                ", peer %.2f s" % times["peer"][-1] if times["peer"] else ""), flush=True)
        ceiling = run_ceiling(stack, block)
        best = {k: min(v) for k, v in times.items() if v}
        print("\n%s %s, %.2f GB of TIFF (zstd ratio %.2f); best of %d rounds:"
              % (dtype, "x".join(map(str, shape)), gb, extra["ratio"], a.rounds))
        print("  plain cp + sync          %6.2f s" % best["plain"])
        print("  brickfs cp + umount      %6.2f s  (%.0f MB/s; cp alone %.2f s; peak RSS %d MiB; "
              "write amplification %.3f)" % (best["brickfs"], gb * 1e3 / best["brickfs"],
                                              min(extra["cp"]), extra["hwm_kb"] >> 10, extra["wa"]))
        if "peer" in best:
            print("  zarr-python slab writer  %6.2f s" % best["peer"])
        print("  encoder ceiling          %6.2f s  (all cores, nothing else)" % ceiling)
        print("  cp into the FUSE sink    %6.2f s  (FUSE round trips alone; brickfs cp / sink %.2f)"
              % (best["sink"], min(extra["cp"]) / best["sink"]))
        print("  floor max(sink, ceiling) %6.2f s  brickfs / floor %.2f"
              % (max(best["sink"], ceiling), best["brickfs"] / max(best["sink"], ceiling)))
        if "peer" in best:
            print("  peer / brickfs           %6.2f   (target >= 1.5)" % (best["peer"] / best["brickfs"]))
        print("  brickfs / ceiling        %6.2f   (target <= 1.3 at steady state)"
              % (best["brickfs"] / ceiling))
        if not a.skip_read:
            rd = run_reads(a.work, a.brickfs, files, a.rounds)
            print("  cat of the source TIFFs  %6.2f s" % rd["src"])
            print("  cat z/*                  %6.2f s  ratio %.2f (target <= 1.3)"
                  % (rd["z"], rd["z"] / rd["src"]))
            print("  cat y/*                  %6.2f s  ratio %.2f (target <= 1.3)"
                  % (rd["y"], rd["y"] / rd["src"]))
            planes = {k: rd["plane_" + k] * 1e3 for k in "zyx"}
            print("  cold plane z/y/x         %.1f / %.1f / %.1f ms  slowest/fastest %.2f "
                  "(target <= 1.3)" % (planes["z"], planes["y"], planes["x"],
                                       max(planes.values()) / min(planes.values())))
        print(flush=True)


if __name__ == "__main__":
    sys.exit(main())
