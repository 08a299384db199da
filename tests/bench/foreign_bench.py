#!/usr/bin/python3
"""Foreign-store read benchmark (issue 16): a cold XY, XZ and YZ plane of an
OME-Zarr 0.4 store written by zarr-python 2.13 (Blosc lz4 + shuffle, 64^3
chunks), read through a brickfs mount, against zarr-python reading the same
plane, in the same run.

usage: foreign_bench.py [--brickfs build/brickfs] [--work DIR]
                        [--shape 512,512,512] [--dtype uint16] [--rounds 3]

The store is written once into DIR (kept for the next run) and mounted once
per axis.
Per axis and round (plus a first, uncounted warm-up round), a plane that no
earlier round touched (index 32 + 64 r: other chunks) is read by both, each after the kernel caches are dropped
when allowed (root; otherwise the store's files stay in the page cache for
both readers, and the line says so):
  brickfs = the plane's virtual TIFF read whole (1 MiB reads), header
            included, from the mount (its block cache has none of its chunks);
  zarr    = zarr.open(...)[plane] in this process (a fresh open; zarr-python
            2 keeps no chunk cache).
Prints the medians in MB/s of plane pixels and brickfs / zarr per axis.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def drop_caches():
    subprocess.run(["sync"], check=False)
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def make_store(path, shape, dtype):
    import numcodecs
    import zarr
    if os.path.isfile(os.path.join(path, "0", ".zarray")):
        return
    tmp = path + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    g = zarr.open_group(tmp, mode="w")
    a = g.create_dataset("0", shape=shape, chunks=(64, 64, 64), dtype=dtype,
                         compressor=numcodecs.Blosc("lz4", 5, shuffle=numcodecs.Blosc.SHUFFLE))
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:shape[1], 0:shape[2]].astype(np.float32)
    for z0 in range(0, shape[0], 64):
        slab = []
        for z in range(z0, min(shape[0], z0 + 64)):
            base = 400 + 300 * np.sin(x / 37.0 + z / 11.0) * np.cos(y / 53.0)
            slab.append(rng.poisson(np.clip(base, 1, None)))
        a[z0:z0 + len(slab)] = np.clip(np.array(slab), 0, np.iinfo(dtype).max).astype(dtype)
    g.attrs["multiscales"] = [{"version": "0.4", "axes": [
        {"name": n, "type": "space", "unit": "micrometer"} for n in "zyx"],
        "datasets": [{"path": "0", "coordinateTransformations": [
            {"type": "scale", "scale": [1, 1, 1]}]}]}]
    os.rename(tmp, path)


def read_file(path):
    t = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        while f.read(1 << 20):
            pass
    return time.perf_counter() - t


def mount(brickfs, store, mnt):
    subprocess.run([brickfs, "mount", store, mnt], check=True, timeout=60,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def umount(brickfs, mnt):
    r = subprocess.run([brickfs, "umount", mnt], timeout=60, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    if r.returncode != 0:
        subprocess.run(["fusermount3", "-u", "-z", mnt], timeout=60)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brickfs", default=os.path.join(REPO, "build", "brickfs"))
    ap.add_argument("--work", default=None)
    ap.add_argument("--shape", default="512,512,512")
    ap.add_argument("--dtype", default="uint16")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    import zarr
    shape = tuple(int(s) for s in args.shape.split(","))
    work = args.work or tempfile.mkdtemp(prefix="foreign-bench-")
    os.makedirs(work, exist_ok=True)
    store = os.path.join(work, "bench-%s-%s.zarr" % ("x".join(map(str, shape)), args.dtype))
    t = time.perf_counter()
    make_store(store, shape, args.dtype)
    print("store %s (%.1f s to make or find)" % (store, time.perf_counter() - t))
    mnt = os.path.join(work, "mnt")
    os.makedirs(mnt, exist_ok=True)
    cold = True
    results = {}
    for axis, ai in (("z", 0), ("y", 1), ("x", 2)):
        # A mount per axis: planes of one axis must not find chunks that
        # planes of another left in the block cache.
        mount(args.brickfs, store, mnt)
        try:
            time.sleep(2)  # the daemon faults in its first block buffers at start
            bt, zt, plane_bytes = [], [], 0
            # round 0 is a warm-up, not counted (a daemon's first reads
            # also fault in its threads' memory)
            for r in range(args.rounds + 1):
                # a plane no earlier round touched (other chunks): cold for both
                index = (32 + 64 * r) % shape[ai]
                sel = tuple(index if i == ai else slice(None) for i in range(3))
                cold = drop_caches() and cold
                bt.append(read_file(os.path.join(mnt, axis, "%05d.tif" % index)))
                cold = drop_caches() and cold
                t = time.perf_counter()
                plane = zarr.open_array(os.path.join(store, "0"), mode="r")[sel]
                zt.append(time.perf_counter() - t)
                plane_bytes = plane.nbytes
            results[axis] = (statistics.median(bt[1:]), statistics.median(zt[1:]), plane_bytes)
        finally:
            umount(args.brickfs, mnt)
    print("%s %s, chunks 64^3 blosc lz4; median of %d rounds; %s" % (
        "x".join(map(str, shape)), args.dtype, args.rounds,
        "kernel caches dropped before each read" if cold else
        "kernel caches NOT dropped (not root): both readers read the store from the page cache"))
    for axis, (b, z, n) in results.items():
        print("%s-plane  brickfs %7.1f MB/s  zarr-python %7.1f MB/s  brickfs/zarr %.2f" % (
            axis, n / b / 1e6, n / z / 1e6, z / b))
    return 0


if __name__ == "__main__":
    sys.exit(main())
