#!/usr/bin/python3
"""Generates a synthetic TIFF slice stack of realistic, noisy data: smooth
structures (blobs drifting with z, a gradient) with photon shot noise on top,
as a camera records them (Poisson noise of the signal, plus read noise). So it
compresses like real microscopy data, which is mostly noise: uint8 at about
1.15x with zstd level 1, uint16 (a 12-bit camera range) at about 1.55x; not like
random bytes or all zeros. --noise gauss gives the older, smoother data
(Gaussian noise of sigma 3, about 2x).

usage: make_stack.py OUTDIR --shape Z,Y,X [--dtype uint8|uint16] [--prefix scan_]
                     [--first 0] [--compression none|zlib] [--seed 1]
                     [--noise poisson|gauss] [--workers N]
Writes OUTDIR/<prefix><z+first>.tif and, with --npy, the volume as OUTDIR.npy.
"""
import argparse
import os
import sys

import numpy as np
import tifffile


def slice_at(z, shape, dtype, rng, noise="poisson"):
    _, ny, nx = shape
    y = np.arange(ny, dtype=np.float32)[:, None]
    x = np.arange(nx, dtype=np.float32)[None, :]
    # A few blobs that drift with z, a gradient, and sensor noise.
    img = 20 + 10 * (x / max(nx, 1)) + 5 * (y / max(ny, 1))
    for k in range(6):
        cy = ny * (0.2 + 0.12 * k) + 8 * np.sin(z / (9.0 + k))
        cx = nx * (0.15 + 0.13 * k) + 8 * np.cos(z / (7.0 + k))
        r2 = (y - cy) ** 2 + (x - cx) ** 2
        img += (60 + 15 * k) * np.exp(-r2 / (2 * (0.04 * min(ny, nx) + 3) ** 2))
    if noise == "gauss":
        img += rng.normal(0, 3, size=img.shape).astype(np.float32)
        if dtype == np.uint16:
            img = img * 40
    else:
        # photons: Poisson of the signal (uint8: ~60-250 counts; uint16: the
        # 12-bit range of a camera), plus Gaussian read noise
        scale, read = (3.0, 30.0) if dtype == np.uint8 else (40.0, 20.0)
        img = rng.poisson(img * scale).astype(np.float32) + rng.normal(0, read, size=img.shape)
        if dtype == np.uint16:
            img = np.minimum(img, 4095)
    info = np.iinfo(dtype)
    return np.clip(img, info.min, info.max).astype(dtype)


def write_one(job):
    z, shape, dtype, a = job
    img = slice_at(z, shape, dtype, np.random.default_rng((a.seed, z)), a.noise)
    tifffile.imwrite(os.path.join(a.outdir, f"{a.prefix}{z + a.first}.tif"), img,
                     compression=None if a.compression == "none" else "zlib")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--shape", required=True, help="Z,Y,X")
    ap.add_argument("--dtype", default="uint8", choices=["uint8", "uint16"])
    ap.add_argument("--prefix", default="scan_")
    ap.add_argument("--first", type=int, default=0, help="number of the first file")
    ap.add_argument("--compression", default="none", choices=["none", "zlib"])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--npy", action="store_true", help="also save the volume as OUTDIR.npy")
    ap.add_argument("--noise", default="poisson", choices=["poisson", "gauss"])
    ap.add_argument("--workers", type=int, default=1,
                    help="processes writing slices in parallel (each slice then has a "
                         "generator seeded by (seed, z); 1 keeps the sequential stream)")
    a = ap.parse_args()
    shape = tuple(int(v) for v in a.shape.split(","))
    if len(shape) != 3 or min(shape) <= 0:
        sys.exit("make_stack.py: --shape must be Z,Y,X with positive sizes")
    dtype = np.uint8 if a.dtype == "uint8" else np.uint16
    os.makedirs(a.outdir, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    vol = np.empty(shape, dtype) if a.npy else None
    comp = None if a.compression == "none" else "zlib"
    if a.workers > 1:
        if a.npy:
            sys.exit("make_stack.py: --npy needs --workers 1")
        import multiprocessing
        args = [(z, shape, dtype, a) for z in range(shape[0])]
        with multiprocessing.Pool(a.workers) as pool:
            for _ in pool.imap_unordered(write_one, args, chunksize=8):
                pass
        return
    for z in range(shape[0]):
        img = slice_at(z, shape, dtype, rng, a.noise)
        if vol is not None:
            vol[z] = img
        tifffile.imwrite(os.path.join(a.outdir, f"{a.prefix}{z + a.first}.tif"), img,
                         compression=comp)
    if vol is not None:
        np.save(a.outdir.rstrip("/") + ".npy", vol)


if __name__ == "__main__":
    main()
