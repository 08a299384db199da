#!/usr/bin/python3
"""Read benchmark: virtual slices along z, y and x, cold and warm, against the
FUSE read ceiling and (optionally) HDF5 with the same chunk shape.

usage: read_bench.py --brickfs BIN --work DIR [--shape 1024,1024,1024] [--dtype uint8]
                     [--block Z,Y,X] [--repeat 20] [--cold-repeat 3] [--no-hdf5]

Builds (once, cached in DIR) a store by mounting and cp'ing a generated stack
(make_stack.py), then mounts it read-only and measures, in one run:
  cold  = a fresh mount (empty block cache) after dropping the kernel caches;
          median of --cold-repeat such mounts per axis
  remount = a fresh mount (empty block cache) with the shards still in the
          kernel page cache: brickfs's own cold cost, without the disk
  warm  = the same plane again (block cache warm; the kernel page cache is
          dropped at every open since brickfs files use keep_cache=0)
  all z = cat of every z/ file, sequentially (a viewer paging through)
  ceiling = the same-sized file read from tests/bench/nullfs.c (zeros)
Prints MB/s and ratios (slowest axis / fastest, warm XY / ceiling).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, timeout=kw.pop("timeout", 900), **kw)


def drop_caches():
    subprocess.run(["sync"], check=False)
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        pass


def read_file(path):
    t = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        n = 0
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            n += len(b)
    return time.perf_counter() - t, n


def drop_page_cache():
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("1\n")
    except OSError:
        pass


def best_of(path, repeat, drop=False):
    """Median time of `repeat` reads; drop=True empties the kernel page cache
    before each, so brickfs's own block cache is what is measured."""
    times = []
    n = 0
    for _ in range(repeat):
        if drop:
            drop_page_cache()
        dt, n = read_file(path)
        times.append(dt)
    times.sort()
    return times[len(times) // 2], n  # median


class Mount:
    def __init__(self, brickfs, store, mnt, opts="ro"):
        self.brickfs, self.store, self.mnt, self.opts = brickfs, store, mnt, opts

    def __enter__(self):
        os.makedirs(self.mnt, exist_ok=True)
        run([self.brickfs, "mount", self.store, self.mnt, "-o", self.opts], timeout=60)
        os.listdir(self.mnt)  # the daemon is up and answering
        time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        r = subprocess.run([self.brickfs, "umount", self.mnt], timeout=300)
        if r.returncode != 0:
            subprocess.run(["fusermount3", "-u", self.mnt])
            subprocess.run(["umount", "-l", self.mnt])


def ensure_store(args, work):
    tag = f"-block{args.block}" if args.block else ""
    store = os.path.join(work, f"read-{args.shape}-{args.dtype}{tag}.zarr")
    if os.path.exists(os.path.join(store, "0", "zarr.json")):
        return store
    stack = os.path.join(work, f"stack-{args.shape}-{args.dtype}")
    if not os.path.exists(os.path.join(stack, ".done")):
        print(f"generating {args.shape} {args.dtype} stack ...", flush=True)
        shutil.rmtree(stack, ignore_errors=True)
        run(["/usr/bin/python3", os.path.join(HERE, "make_stack.py"), stack, "--shape", args.shape,
             "--dtype", args.dtype], timeout=3600)
        open(os.path.join(stack, ".done"), "w").close()
    print("ingesting it into", store, flush=True)
    if args.block:
        run([args.brickfs, "create", store, "--shape", args.shape, "--dtype", args.dtype,
             "--block", args.block])
    mnt = os.path.join(work, "mnt-ingest")
    with Mount(args.brickfs, store, mnt, "rw"):
        files = sorted(f for f in os.listdir(stack) if f.endswith(".tif"))
        run(["cp"] + [os.path.join(stack, f) for f in files] + [mnt + "/z/"], timeout=3600)
    return store


def h5_bench(args, work, z, y, x, chunk):
    try:
        import h5py
        import numpy as np
    except ImportError:
        return None
    path = os.path.join(work, f"read-{args.shape}-{args.dtype}-{'x'.join(map(str, chunk))}-lzf.h5")
    Z, Y, X = (int(v) for v in args.shape.split(","))
    if not os.path.exists(path):
        stack = os.path.join(work, f"stack-{args.shape}-{args.dtype}")
        import tifffile
        with h5py.File(path + ".tmp", "w") as f:
            d = f.create_dataset("v", (Z, Y, X), dtype=args.dtype, chunks=tuple(chunk),
                                 compression="lzf")
            for k in range(Z):
                d[k] = tifffile.imread(os.path.join(stack, f"scan_{k}.tif"))
        os.rename(path + ".tmp", path)
    res = {}
    for axis, sel in (("z", (z, slice(None), slice(None))), ("y", (slice(None), y, slice(None))),
                      ("x", (slice(None), slice(None), x))):
        drop_caches()
        with h5py.File(path, "r") as f:
            t = time.perf_counter()
            a = f["v"][sel]
            res[axis] = (time.perf_counter() - t, a.nbytes)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brickfs", default=os.path.join(HERE, "../../build/brickfs"))
    ap.add_argument("--work", default="/var/tmp/brickfs-bench")
    ap.add_argument("--shape", default="1024,1024,1024")
    ap.add_argument("--dtype", default="uint8")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--cold-repeat", type=int, default=3,
                    help="fresh mounts per axis for the cold reads (the median is printed)")
    ap.add_argument("--no-hdf5", action="store_true")
    ap.add_argument("--mount-opts", default="")
    ap.add_argument("--block", default="",
                    help="Z,Y,X block shape of the store (default: brickfs's default for the dtype)")
    args = ap.parse_args()
    args.brickfs = os.path.abspath(args.brickfs)
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    store = ensure_store(args, work)
    Z, Y, X = (int(v) for v in args.shape.split(","))
    z, y, x = Z // 2, Y // 2, X // 2
    mnt = os.path.join(work, "mnt-read")
    opts = "ro" + ("," + args.mount_opts if args.mount_opts else "")
    planes = {"z": f"z/{z:05d}.tif", "y": f"y/{y:05d}.tif", "x": f"x/{x:05d}.tif"}
    cold, remount, warm, cached = {}, {}, {}, {}
    colds = {axis: [] for axis in planes}
    remounts = {axis: [] for axis in planes}
    for round_ in range(args.cold_repeat):
        for axis, rel in planes.items():
            drop_caches()
            with Mount(args.brickfs, store, mnt, opts):
                colds[axis].append(read_file(os.path.join(mnt, rel)))
                if round_ == 0:
                    warm[axis] = best_of(os.path.join(mnt, rel), args.repeat, drop=True)
                    cached[axis] = best_of(os.path.join(mnt, rel), args.repeat)
            with Mount(args.brickfs, store, mnt, opts):
                remounts[axis].append(read_file(os.path.join(mnt, rel)))
    for medians, samples_of in ((cold, colds), (remount, remounts)):
        for axis, samples in samples_of.items():
            samples.sort()
            medians[axis] = samples[len(samples) // 2]
    drop_caches()
    with Mount(args.brickfs, store, mnt, opts):
        t = time.perf_counter()
        total = 0
        for name in sorted(os.listdir(os.path.join(mnt, "z"))):
            total += read_file(os.path.join(mnt, "z", name))[1]
        allz = (time.perf_counter() - t, total)
        status = json.load(open(os.path.join(mnt, ".brickfs", "status")))

    # FUSE ceiling: a file of the XY plane's size from a null file system.
    ceiling = None
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc:
        nullfs = os.path.join(work, "nullfs")
        cflags = subprocess.run(["pkg-config", "--cflags", "--libs", "fuse3"], capture_output=True,
                                text=True, check=True).stdout.split()
        run([cc, "-O2", "-o", nullfs, os.path.join(HERE, "nullfs.c")] + cflags)
        nmnt = os.path.join(work, "mnt-null")
        os.makedirs(nmnt, exist_ok=True)
        env = dict(os.environ, ZERO_SIZE=str(cold["z"][1]))
        p = subprocess.Popen([nullfs, nmnt, "-f", "-o", "max_threads=16"], env=env)
        try:
            for _ in range(100):
                if os.path.ismount(nmnt):
                    break
                time.sleep(0.05)
            read_file(os.path.join(nmnt, "zero"))
            ceiling = best_of(os.path.join(nmnt, "zero"), args.repeat, drop=True)
        finally:
            subprocess.run(["fusermount3", "-u", nmnt])
            p.wait(timeout=30)

    h5 = None if args.no_hdf5 else h5_bench(args, work, z, y, x, status["block"])

    def mbs(t_n):
        return t_n[1] / t_n[0] / 1e6

    print(f"\nvolume {args.shape} {args.dtype}, block {status['block']}, brick {status['brick']}; "
          f"planes z={z} y={y} x={x}; median of {args.cold_repeat} cold and {args.repeat} warm reads")
    print("cold: fresh mount, kernel caches dropped; remount: fresh mount, shards in the page "
          "cache; warm: brickfs block cache warm, page cache dropped before each read; cached: "
          "kernel page cache kept (unchanged file)")
    print(f"{'':10s}{'cold ms':>9s}{'MB/s':>7s}{'remount ms':>12s}{'MB/s':>7s}{'warm ms':>9s}{'MB/s':>7s}"
          f"{'cached ms':>11s}{'MB/s':>7s}")
    for axis, label in (("z", "XY  z/"), ("y", "XZ  y/"), ("x", "YZ  x/")):
        print(f"{label:10s}{cold[axis][0]*1e3:9.1f}{mbs(cold[axis]):7.0f}"
              f"{remount[axis][0]*1e3:12.1f}{mbs(remount[axis]):7.0f}"
              f"{warm[axis][0]*1e3:9.2f}{mbs(warm[axis]):7.0f}"
              f"{cached[axis][0]*1e3:11.2f}{mbs(cached[axis]):7.0f}")
    def ratio(d):
        return max(v[0] for v in d.values()) / min(v[0] for v in d.values())
    print(f"slowest/fastest axis: cold {ratio(cold):.2f}x, remount {ratio(remount):.2f}x, "
          f"warm {ratio(warm):.2f}x, "
          f"cached {ratio(cached):.2f}x")
    print(f"all of z/ sequentially: {allz[0]:.2f} s, {mbs(allz):.0f} MB/s "
          f"(cache used {status['memory']['cache_used']/2**20:.0f} MiB of "
          f"{status['memory']['cache_budget']/2**20:.0f} MiB)")
    if ceiling:
        print(f"FUSE ceiling (nullfs, same size): {ceiling[0]*1e3:.2f} ms, {mbs(ceiling):.0f} MB/s; "
              f"warm XY / ceiling = {mbs(warm['z'])/mbs(ceiling):.2f}")
    if h5:
        print(f"HDF5 (h5py, lzf, chunks {status['block']}), cold: " +
              ", ".join(f"{a} {h5[a][0]*1e3:.1f} ms" for a in ("z", "y", "x")) +
              f"; slowest/fastest {max(v[0] for v in h5.values())/min(v[0] for v in h5.values()):.2f}x")


if __name__ == "__main__":
    main()
