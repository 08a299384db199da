#!/usr/bin/python3
"""Writes a seed corpus for each fuzz target: make_seeds.py OUTDIR [--brickfs BIN]

OUTDIR/<target>/ gets small valid inputs (and a few near-valid ones) in the layout
each target expects (see format_fuzz_bodies.h and the .cc files):
  tiff_fuzz         small slices in every flavour tests/integration writes (tifffile,
                    tiffcp: LZW, deflate, PackBits, zstd, tiles, BigTIFF, big-endian,
                    strips) in uint8/uint16/int16/uint32/float32, plus RGB and 2 pages
  json_fuzz         zarr.json files of stores made by `brickfs create`, status-like JSON
  volume_meta_fuzz  array zarr.json files of several geometries
  shard_index_fuzz  headers + encoded indexes (valid crc32c), empty and full
  journal_fuzz      journals of every record type (raw and in the framed layout)
  block_codec_fuzz  zstd + crc32c blocks
Only Debian's python3 with numpy and tifffile is needed (and tiffcp for the
tiffcp flavours, brickfs for the zarr.json seeds: both optional).
"""

import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
sys.path.insert(0, os.path.join(REPO, "tests", "interop"))
import shard_reader  # noqa: E402


def put(out, target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def tiff_seeds(out):
    import tifffile
    try:
        import brickfs_testlib as T
    except Exception:
        T = None
    rng = np.random.default_rng(1)
    tmp = tempfile.mkdtemp(prefix="fuzzseed-")
    try:
        n = 0
        for dt in ("uint8", "uint16", "int16", "uint32", "float32"):
            plane = (rng.random((13, 21)) * 200).astype(dt)
            p = os.path.join(tmp, "p.tif")
            for kw in ({}, {"compression": "zlib"}, {"tile": (16, 16)}, {"byteorder": ">"},
                       {"bigtiff": True}, {"rowsperstrip": 1}, {"compression": "packbits"}
                       if dt in ("uint8",) else {"compression": "lzma"}):
                try:
                    tifffile.imwrite(p, plane, photometric="minisblack", **kw)
                except Exception:
                    continue
                put(out, "tiff_fuzz", "tf_%s_%d.tif" % (dt, n), open(p, "rb").read())
                n += 1
            if T is not None and shutil.which("tiffcp") and dt in ("uint8", "uint16"):
                for enc in ("lzw", "zip_pred", "tiles_lzw", "bigendian_zip", "strips3", "zstd",
                            "packbits"):
                    try:
                        T.write_slice(p, plane, enc, verify=False)
                    except Exception:
                        continue
                    put(out, "tiff_fuzz", "cp_%s_%s.tif" % (dt, enc), open(p, "rb").read())
        p = os.path.join(tmp, "p.tif")
        tifffile.imwrite(p, np.zeros((8, 8, 3), np.uint8), photometric="rgb")
        put(out, "tiff_fuzz", "rgb.tif", open(p, "rb").read())
        tifffile.imwrite(p, np.zeros((2, 8, 8), np.uint8), photometric="minisblack")
        put(out, "tiff_fuzz", "pages.tif", open(p, "rb").read())
        tifffile.imwrite(p, np.zeros((8, 8), bool))
        put(out, "tiff_fuzz", "bilevel.tif", open(p, "rb").read())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def zarr_seeds(out, brickfs):
    tmp = tempfile.mkdtemp(prefix="fuzzseed-")
    try:
        n = 0
        if brickfs and os.access(brickfs, os.X_OK):
            for shape, dt, block, brick in (("40,70,90", "uint8", "8,16,16", "16,32,32"),
                                            ("5,6,7", "float32", None, None),
                                            ("1000,1000,1000", "uint16", "32,32,32", None),
                                            ("3,4,5", "int16", "1,1,1", "1,2,5")):
                s = os.path.join(tmp, "s%d.zarr" % n)
                argv = [brickfs, "create", s, "--shape", shape, "--dtype", dt]
                if block:
                    argv += ["--block", block]
                if brick:
                    argv += ["--brick", brick]
                if subprocess.run(argv, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL).returncode != 0:
                    continue
                arr = open(os.path.join(s, "0", "zarr.json"), "rb").read()
                grp = open(os.path.join(s, "zarr.json"), "rb").read()
                put(out, "volume_meta_fuzz", "array%d.json" % n, arr)
                put(out, "store_open_fuzz", "array%d.json" % n, b"\x00" + arr)
                put(out, "store_open_fuzz", "group%d.json" % n, b"\x01" + grp)
                put(out, "json_fuzz", "array%d.json" % n, arr)
                put(out, "json_fuzz", "group%d.json" % n, grp)
                n += 1
        # hand-written ones (also when brickfs is not built yet)
        meta = {"zarr_format": 3, "node_type": "array", "shape": [4, 6, 8], "data_type": "uint16",
                "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [4, 6, 8]}},
                "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
                "fill_value": 0, "dimension_names": ["z", "y", "x"],
                "codecs": [{"name": "sharding_indexed", "configuration": {
                    "chunk_shape": [2, 3, 4],
                    "codecs": [{"name": "bytes", "configuration": {"endian": "little"}},
                               {"name": "zstd", "configuration": {"level": 1, "checksum": False}},
                               {"name": "crc32c"}],
                    "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}},
                                     {"name": "crc32c"}],
                    "index_location": "end"}}],
                "attributes": {"brickfs": {"format": 1, "finalized": True,
                                           "present": [[0, 3]], "fixed_shape": True}}}
        put(out, "volume_meta_fuzz", "hand.json", json.dumps(meta).encode())
        put(out, "store_open_fuzz", "hand.json", b"\x00" + json.dumps(meta).encode())
        for name, doc in (("numbers", [0, -1, 1.5e300, 18446744073709551615, -9223372036854775808,
                                       1e-7, 123456789012345678901234567890]),
                          ("nested", {"a": [[[{"b": None}]]], "c": True, "d": "\u00e9\n\"\\"}),
                          ("status", {"store": "/x", "slices": {"missing": [[1, 2]]},
                                      "errors": [{"file": "a_1.tif", "message": "m"}]})):
            put(out, "json_fuzz", name + ".json", json.dumps(doc).encode())
        put(out, "json_fuzz", "escapes.json", b'["\\u0000\\ud83d\\ude00\\t", 1E5, -0.0]')
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def u64(*v):
    return struct.pack("<%dQ" % len(v), *v)


def index_seeds(out):
    E = 0xFFFFFFFFFFFFFFFF
    for n, entries, data_end in ((1, [(E, E)], 0), (8, [(i * 100, 100) for i in range(8)], 800),
                                 (4, [(0, 50), (E, E), (50, 10), (E, E)], 60),
                                 (2, [(10, 20), (0, 10)], 30)):
        body = b"".join(u64(o, b) for o, b in entries)
        idx = body + struct.pack("<I", shard_reader.crc32c(body))
        for flags in (0, 1, 3):
            head = struct.pack("<HQIB", n, data_end, 1 << 20, flags)
            put(out, "shard_index_fuzz", "idx_%d_%d_%d" % (n, data_end, flags), head + idx)


def frame(payload):
    return struct.pack("<II", len(payload), shard_reader.crc32c(payload)) + payload


def journal_seeds(out):
    recs = [
        bytes([5]) + u64(96, 200, 230) + bytes([0]) + u64(8, 16, 16) + u64(16, 32, 32),
        bytes([4]) + u64(3),
        bytes([4]) + u64(4),
        bytes([1, 0]) + u64(0, 1, 2) + u64(0),
        bytes([2, 0]) + u64(0, 1, 2) + u64(4096),
        bytes([3, 0]) + u64(0) + struct.pack("<I", 2) + u64(3, 4),
        bytes([6, 0]) + u64(1, 1, 1) + u64(100),  # kBrickReplace in newer journals
    ]
    raw = b"".join(frame(r) for r in recs)
    put(out, "journal_fuzz", "raw_all", b"\0" + raw)
    put(out, "journal_fuzz", "raw_torn", b"\0" + raw + frame(recs[1])[:5])
    framed = b"".join(bytes([len(r)]) + r for r in recs)
    put(out, "journal_fuzz", "framed_all", b"\1" + framed)
    for i, r in enumerate(recs):
        put(out, "journal_fuzz", "framed_%d" % i, b"\1" + bytes([len(r)]) + r)


def block_seeds(out):
    z = shard_reader.zstd()
    rng = np.random.default_rng(2)
    for i, raw in enumerate((bytes(64), rng.integers(0, 255, 300, dtype=np.uint8).tobytes(),
                             (np.arange(1024) % 7).astype(np.uint8).tobytes())):
        try:
            fr = z.compress(raw, 1)
        except Exception:
            return
        head = struct.pack("<HB", len(raw) - 1, 0)
        put(out, "block_codec_fuzz", "blk%d_crc" % i,
            head + fr + struct.pack("<I", shard_reader.crc32c(fr)))
        put(out, "block_codec_fuzz", "blk%d_fix" % i, struct.pack("<HB", len(raw) - 1, 1) + fr)


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    out = args[0]
    brickfs = None
    if "--brickfs" in args:
        brickfs = args[args.index("--brickfs") + 1]
    os.makedirs(out, exist_ok=True)
    tiff_seeds(out)
    zarr_seeds(out, brickfs)
    index_seeds(out)
    journal_seeds(out)
    block_seeds(out)
    for t in sorted(os.listdir(out)):
        print("%-18s %d seeds" % (t, len(os.listdir(os.path.join(out, t)))))


if __name__ == "__main__":
    main()
