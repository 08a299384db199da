#!/usr/bin/python3
"""An acquisition program's ingest with and without fsync after every frame.

Writes the same stack of slices (noisy uint16 camera frames by default) one
after another, as an acquisition program does (open, write, [fsync], close),
into a fresh brickfs mount, once with fsync after every frame and once
without, alternating ROUNDS times in the same run; the store is unmounted
(flushed, fsynced) before the clock stops. Prints both rates and their
ratio (issue 12 target: fsync'd ingest at >= 50 % of the rate without).

usage: fsync_bench.py [--brickfs build/brickfs] [--work DIR] [--frames 256]
                      [--shape 1024,1024] [--dtype uint16] [--rounds 2]
"""
import argparse
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import tifffile

HERE = os.path.dirname(os.path.abspath(__file__))


def frames(n, shape, dtype, seed=1):
    """Camera-like frames: smooth structure plus shot noise (compresses ~1.3x)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    out = []
    for z in range(n):
        base = 400 + 300 * np.sin(x / 37.0 + z / 11.0) * np.cos(y / 53.0)
        img = rng.poisson(np.clip(base, 1, None)).astype(np.float64)
        if dtype == "uint8":
            img = img / 16
        out.append(np.clip(img, 0, np.iinfo(dtype).max).astype(dtype))
    return out


def run(brickfs, work, data, sync):
    store, mnt = os.path.join(work, "vol.zarr"), os.path.join(work, "mnt")
    shutil.rmtree(store, ignore_errors=True)
    os.makedirs(mnt, exist_ok=True)
    subprocess.run([brickfs, "mount", store, mnt], check=True)
    t0 = time.monotonic()
    for z, b in enumerate(data):
        fd = os.open(os.path.join(mnt, "z", "frame_%05d.tif" % z),
                     os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, b)
        if sync:
            os.fsync(fd)
        os.close(fd)
    t1 = time.monotonic()
    subprocess.run([brickfs, "umount", mnt], check=True)
    return t1 - t0, time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--brickfs", default=os.path.join(HERE, "..", "..", "build", "brickfs"))
    ap.add_argument("--work", default="/var/tmp/brickfs-bench/fsync")
    ap.add_argument("--frames", type=int, default=256)
    ap.add_argument("--shape", default="1024,1024")
    ap.add_argument("--dtype", default="uint16", choices=["uint8", "uint16"])
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    shape = tuple(int(v) for v in a.shape.split(","))
    os.makedirs(a.work, exist_ok=True)
    data = []
    for img in frames(a.frames, shape, a.dtype):
        path = os.path.join(a.work, "frame.tif")
        tifffile.imwrite(path, img, photometric="minisblack")
        with open(path, "rb") as f:
            data.append(f.read())
    mb = sum(len(b) for b in data) / 1e6
    best = {False: None, True: None}
    for r in range(a.rounds):
        for sync in (False, True):
            w, total = run(a.brickfs, a.work, data, sync)
            print("round %d %-8s writes %.2f s, writes + umount %.2f s (%.0f MB/s)"
                  % (r, "fsync" if sync else "no fsync", w, total, mb / total), flush=True)
            if best[sync] is None or total < best[sync]:
                best[sync] = total
    print("%d frames %s %s, %.0f MB: best %.2f s without fsync, %.2f s with; "
          "fsync'd rate / plain rate = %.2f (target >= 0.5)"
          % (a.frames, a.shape, a.dtype, mb, best[False], best[True], best[False] / best[True]))


if __name__ == "__main__":
    sys.exit(main())
