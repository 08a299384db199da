#!/usr/bin/python3
"""Foreign OME-Zarr stores mounted read-only (issue 16): stores written here by
real tools, mounted, and every plane along every axis of every level (and every
t/c) compared with what the writing tool reads back.

  - zarr-python 2.13 (Debian python3-zarr) writing OME-Zarr 0.4 on Zarr v2:
    Blosc lz4+shuffle, zstd+bitshuffle, blosclz, zlib, lz4hc; gzip, zlib, zstd,
    none; eight dtypes; chunks that do not divide the shape (or exceed it);
    missing chunks; "/" separators; F order; 3D, 5D (t=2, c=3) with channel
    labels, 2D and 2D+c.
  - zarrita (npm, tests/interop/write_zarrita.mjs) writing OME-Zarr 0.5 on
    Zarr v3, unsharded: bytes big- and little-endian, transpose, blosc, zstd.
  - sharded Zarr v3 (index at end and at start, crc32c, gzip/zstd inner
    codecs, big-endian bytes, missing shards, empty inner chunks, the v2 key
    encoding): zarrita 0.7 cannot write shards (nor gzip or crc32c), so these
    are written by the small spec-following writer below and checked with
    zarrita's reader (tests/interop/read_zarr.mjs) before they are mounted
    (zarrita 0.7 reads shard indexes from the end only: an index-at-start
    store is checked through its twin with the index at the end).
  - the bad-metadata matrix: each refused at mount, naming the file and field.

    /usr/bin/python3 tests/integration/test_foreign.py --brickfs build/brickfs
"""
import errno
import gzip
import json
import os
import struct
import sys
import unittest

import numpy as np
import tifffile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import brickfs_testlib as T  # noqa: E402
from shard_reader import crc32c, zstd  # noqa: E402  (tests/interop)

import numcodecs  # noqa: E402
import zarr  # noqa: E402

CM_PER = {"micrometer": 1e-4, "nanometer": 1e-7, "millimeter": 0.1}


def data(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return (rng.standard_normal(shape) * 1000).astype(dt)
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dt)


def axes_meta(names):
    kinds = {"t": "time", "c": "channel"}
    return [{"name": n, "type": kinds.get(n, "space"),
             **({"unit": "micrometer"} if n in "zyx" else {})} for n in names]


def write_ome04(path, levels, names, chunks, compressor, fill_value=0, order="C",
                separator=None, scales=None, omero=None, drop=()):
    """zarr-python 2.13: an OME-Zarr 0.4 image, one dataset per array of
    `levels`; `drop`: (level, chunk key) files removed after writing."""
    g = zarr.open_group(path, mode="w")
    kw = {}
    if separator:
        kw["dimension_separator"] = separator
    for i, a in enumerate(levels):
        g.create_dataset(str(i), data=a, chunks=chunks, compressor=compressor, order=order,
                         fill_value=fill_value, **kw)
    scales = scales or [[2.0 ** i if n in "zyx" else 1.0 for n in names] for i in range(len(levels))]
    g.attrs["multiscales"] = [{
        "version": "0.4", "name": "test", "axes": axes_meta(names),
        "datasets": [{"path": str(i), "coordinateTransformations": [{"type": "scale", "scale": s}]}
                     for i, s in enumerate(scales)]}]
    if omero:
        g.attrs["omero"] = omero
    for level, key in drop:
        os.unlink(os.path.join(path, str(level), key))
    # what zarr-python itself reads back (missing chunks as the fill value)
    return [zarr.open_array(os.path.join(path, str(i)), mode="r")[...] for i in range(len(levels))]


# ----------------------------------------------- a small Zarr v3 shard writer ----

EMPTY = 2 ** 64 - 1


def write_v3_sharded(path, a, shard, inner, endian="little", compressor="zstd", inner_crc=True,
                     index_crc=True, at_start=False, key="default", drop_shards=(),
                     empty_inner=(), fill=0):
    """An OME-Zarr 0.5 image whose array 0 is sharded (sharding_indexed, per the
    Zarr v3 spec and its sharding extension)."""
    os.makedirs(os.path.join(path, "0"), exist_ok=True)
    names = "zyx"
    with open(os.path.join(path, "zarr.json"), "w") as f:
        json.dump({"zarr_format": 3, "node_type": "group", "attributes": {"ome": {
            "version": "0.5", "multiscales": [{
                "axes": axes_meta(names),
                "datasets": [{"path": "0", "coordinateTransformations": [
                    {"type": "scale", "scale": [1.0, 0.5, 0.5]}]}]}]}}}, f)
    codecs = [{"name": "bytes", "configuration": {"endian": endian}}]
    if compressor == "zstd":
        codecs.append({"name": "zstd", "configuration": {"level": 1, "checksum": False}})
    elif compressor == "gzip":
        codecs.append({"name": "gzip", "configuration": {"level": 5}})
    if inner_crc:
        codecs.append({"name": "crc32c"})
    index_codecs = [{"name": "bytes", "configuration": {"endian": "little"}}]
    if index_crc:
        index_codecs.append({"name": "crc32c"})
    sep = "/" if key == "default" else "."
    meta = {"zarr_format": 3, "node_type": "array", "shape": list(a.shape),
            "data_type": a.dtype.name,
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(shard)}},
            "chunk_key_encoding": {"name": key, "configuration": {"separator": sep}},
            "fill_value": fill,
            "codecs": [{"name": "sharding_indexed", "configuration": {
                "chunk_shape": list(inner), "codecs": codecs, "index_codecs": index_codecs,
                "index_location": "start" if at_start else "end"}}],
            "dimension_names": list(names), "attributes": {}}
    with open(os.path.join(path, "0", "zarr.json"), "w") as f:
        json.dump(meta, f)
    per = [s // i for s, i in zip(shard, inner)]
    n = int(np.prod(per))
    index_len = 16 * n + (4 if index_crc else 0)
    expected = a.copy()
    bo = "<" if endian == "little" else ">"
    for sc in np.ndindex(*[-(-s // c) for s, c in zip(a.shape, shard)]):
        if sc in drop_shards:
            expected[tuple(slice(c * s, (c + 1) * s) for c, s in zip(sc, shard))] = fill
            continue
        payload = bytearray()
        index = np.full((n, 2), EMPTY, dtype="<u8")
        for i in range(n):
            local = np.unravel_index(i, per)
            start = [c * s + l * b for c, s, l, b in zip(sc, shard, local, inner)]
            sl = tuple(slice(s, s + b) for s, b in zip(start, inner))
            src = a[sl]
            if src.size == 0:
                continue
            if (sc, i) in empty_inner:
                expected[sl] = fill
                continue
            blk = np.full(inner, fill, dtype=a.dtype)
            blk[tuple(slice(0, k) for k in src.shape)] = src
            enc = blk.astype(a.dtype.newbyteorder(bo)).tobytes()
            if compressor == "zstd":
                enc = zstd().compress(enc)
            elif compressor == "gzip":
                enc = gzip.compress(enc)
            if inner_crc:
                enc += struct.pack("<I", crc32c(enc))
            index[i] = ((index_len if at_start else 0) + len(payload), len(enc))
            payload += enc
        ib = index.tobytes()
        if index_crc:
            ib += struct.pack("<I", crc32c(ib))
        parts = [str(c) for c in sc]
        rel = ("c/" + "/".join(parts)) if key == "default" else ".".join(parts)
        p = os.path.join(path, "0", rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(ib + bytes(payload) if at_start else bytes(payload) + ib)
    return expected


# --------------------------------------------------------------- checking ----


def plane_name(i, n):
    return "%0*d.tif" % (max(5, len(str(n - 1))), i)


class ForeignTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        T.require_fuse()

    def setUp(self):
        self.root = T.TempRoot()
        self.addCleanup(self.root.cleanup)

    def check_view(self, base, vol, level_dir):
        """Every plane of the 3D (or 2D) array `vol` under base/level_dir."""
        d = os.path.join(base, level_dir)
        if vol.ndim == 2:
            listed = set(os.listdir(d)) - {".brickfs"}
            self.assertEqual(sorted(listed), ["z"] if level_dir else ["levels", "z"])
            self.assertEqual(os.listdir(os.path.join(d, "z")), ["00000.tif"])
            got = tifffile.imread(os.path.join(d, "z", "00000.tif"))
            self.assertEqual(got.dtype, vol.dtype)
            np.testing.assert_array_equal(got, vol)
            return
        for ai, axis in enumerate("zyx"):
            n = vol.shape[ai]
            names = sorted(os.listdir(os.path.join(d, axis)))
            self.assertEqual(names, [plane_name(i, n) for i in range(n)], d + "/" + axis)
            for i in range(n):
                got = tifffile.imread(os.path.join(d, axis, plane_name(i, n)))
                want = np.take(vol, i, axis=ai)
                self.assertEqual(got.dtype, vol.dtype, "%s/%s/%d" % (d, axis, i))
                if not np.array_equal(got, want, equal_nan=vol.dtype.kind == "f"):
                    bad = np.argwhere(got != want)[:5].tolist()
                    self.fail("%s/%s plane %d differs at %s" % (d, axis, i, bad))

    def check_image(self, store, levels, others=()):
        """Mounts `store` and checks every level of every (t, c); `levels` are
        the full N-d arrays, `others` the names of the leading axes."""
        mnt = self.root.join("mnt")
        with T.Mount(store, mnt) as m:
            st = T.read_status(mnt)
            self.assertTrue(st["read_only"])
            self.assertTrue(st["foreign"])
            self.assertEqual(len(st["levels"]), len(levels))
            for fixed in np.ndindex(*levels[0].shape[:len(others)]):
                base = os.path.join(mnt, *["%s%d" % (n, i) for n, i in zip(others, fixed)])
                for li, lv in enumerate(levels):
                    vol = lv[fixed]
                    if li == 0:
                        self.check_view(base, vol, "")
                    self.check_view(base, vol, os.path.join("levels", str(li)))
            # never writable
            probe = os.path.join(mnt, *["%s0" % n for n in others], "z", "00000.tif")
            with self.assertRaises(OSError) as cm:
                open(probe, "r+b")
            self.assertEqual(cm.exception.errno, errno.EROFS)
            with self.assertRaises(OSError) as cm:
                os.mkdir(os.path.join(mnt, "new"))
            self.assertIn(cm.exception.errno, (errno.EROFS, errno.EPERM))
            m.umount_checked(self)
        self.assertFalse(os.path.exists(os.path.join(store, ".brickfs")),
                         "nothing may be written into a foreign store")
        return st

    # ------------------------------------------------------ zarr-python 2.13 ----

    def test_zarr_python_blosc_lz4_two_levels_missing_chunks(self):
        a = data((23, 37, 41), "uint16", 1)
        store = self.root.join("lz4.zarr")
        levels = write_ome04(store, [a, np.ascontiguousarray(a[::2, ::2, ::2])], "zyx", (8, 16, 16),
                             numcodecs.Blosc("lz4", 5, shuffle=numcodecs.Blosc.SHUFFLE),
                             fill_value=7, drop=[(0, "1.0.2"), (0, "2.2.0"), (1, "0.0.0")])
        self.assertTrue((levels[0][8:16, 0:16, 32:41] == 7).all())
        st = self.check_image(store, levels)
        self.assertEqual(st["format"], "OME-Zarr 0.4 on Zarr v2")
        # voxel size: level 1 has scale 2, 2, 2 micrometer = 5000 pixels per cm
        mnt = self.root.join("mnt")
        with T.Mount(store, mnt):
            with tifffile.TiffFile(os.path.join(mnt, "levels", "1", "y", "00003.tif")) as t:
                tags = t.pages[0].tags
                self.assertEqual(tags["ResolutionUnit"].value, 3)
                xr = tags["XResolution"].value
                self.assertAlmostEqual(xr[0] / xr[1], 1 / (2 * CM_PER["micrometer"]), places=3)

    def test_zarr_python_codecs_and_dtypes(self):
        cases = [
            ("uint8", numcodecs.Blosc("zstd", 3, shuffle=numcodecs.Blosc.BITSHUFFLE), (5, 32, 7), "/", "C"),
            ("int8", numcodecs.Blosc("zlib", 3, shuffle=numcodecs.Blosc.SHUFFLE), (4, 8, 8), None, "C"),
            ("int16", numcodecs.GZip(5), (5, 6, 7), None, "F"),
            ("int32", numcodecs.Zlib(3), (64, 64, 64), None, "C"),
            ("uint32", numcodecs.Zstd(3), (6, 5, 4), "/", "C"),
            ("float32", numcodecs.Blosc("blosclz", 5, shuffle=numcodecs.Blosc.NOSHUFFLE), (7, 9, 11), None, "C"),
            ("float64", None, (3, 10, 6), None, "C"),
            ("uint16", numcodecs.Blosc("lz4hc", 5, shuffle=numcodecs.Blosc.BITSHUFFLE), (9, 9, 9), None, "C"),
        ]
        for i, (dtype, comp, chunks, sep, order) in enumerate(cases):
            with self.subTest(dtype=dtype, codec=comp and comp.codec_id, order=order):
                a = data((11, 17, 13), dtype, 10 + i)
                store = self.root.join("c%d.zarr" % i)
                levels = write_ome04(store, [a], "zyx", chunks, comp, separator=sep, order=order)
                self.check_image(store, levels)

    def test_zarr_python_5d_and_2d(self):
        a = data((2, 3, 9, 17, 13), "float32", 20)
        store = self.root.join("5d.zarr")
        labels = [{"label": n, "color": "FFFFFF"} for n in ("DAPI", "GFP", "RFP")]
        levels = write_ome04(store, [a, np.ascontiguousarray(a[:, :, ::2, ::2, ::2])], "tczyx",
                             (1, 2, 5, 9, 11), numcodecs.Blosc("lz4", 5, shuffle=numcodecs.Blosc.SHUFFLE),
                             omero={"channels": labels}, drop=[(0, "1.1.0.1.0")])
        st = self.check_image(store, levels, others=("t", "c"))
        self.assertEqual(st["channel_names"], ["DAPI", "GFP", "RFP"])
        mnt = self.root.join("mnt")
        with T.Mount(store, mnt):
            self.assertEqual(sorted(os.listdir(mnt)), [".brickfs", "t0", "t1"])
            self.assertEqual(sorted(os.listdir(os.path.join(mnt, "t1"))), ["c0", "c1", "c2"])
            self.assertEqual(sorted(os.listdir(os.path.join(mnt, "t1", "c2"))),
                             ["levels", "x", "y", "z"])
            self.assertFalse(os.path.exists(os.path.join(mnt, "t2")))
            self.assertFalse(os.path.exists(os.path.join(mnt, "t0", "c3")))
        b = data((45, 38), "uint16", 21)
        store = self.root.join("2d.zarr")
        self.check_image(store, write_ome04(store, [b], "yx", (16, 16), numcodecs.GZip()))
        c = data((2, 45, 38), "uint8", 22)
        store = self.root.join("2dc.zarr")
        self.check_image(store, write_ome04(store, [c], "cyx", (1, 16, 16), numcodecs.Zstd()),
                         others=("c",))

    def test_long_time_series_lists_in_pieces(self):
        # 3000 t directories and 1200 z planes: listed over many readdir calls
        a = data((3000, 1200, 2, 2), "uint8", 23)
        store = self.root.join("long.zarr")
        write_ome04(store, [a], "tzyx", (1000, 600, 2, 2), numcodecs.Zlib())
        mnt = self.root.join("mnt")
        with T.Mount(store, mnt) as m:
            names = os.listdir(mnt)
            self.assertEqual(len(names), 3001)
            self.assertEqual(set(names), {".brickfs"} | {"t%d" % i for i in range(3000)})
            planes = os.listdir(os.path.join(mnt, "t2345", "z"))
            self.assertEqual(sorted(planes), ["%05d.tif" % i for i in range(1200)])
            got = tifffile.imread(os.path.join(mnt, "t2345", "x", "00001.tif"))
            np.testing.assert_array_equal(got, a[2345, :, :, 1])
            m.umount_checked(self)

    # -------------------------------------------------------------- Zarr v3 ----

    def test_zarrita_v3_unsharded(self):
        T.require_zarrita()
        cases = [("uint16", "big", "blosc", "reverse"), ("float32", "little", "zstd", "none"),
                 ("int8", "little", "none", "none"), ("int32", "big", "zstd", "reverse")]
        for i, (dtype, endian, comp, transpose) in enumerate(cases):
            with self.subTest(dtype=dtype, endian=endian, compressor=comp, transpose=transpose):
                a = data((10, 21, 19), dtype, 30 + i)
                raw = self.root.join("z%d.raw" % i)
                a.astype(a.dtype.newbyteorder("<")).tofile(raw)
                store = self.root.join("zarrita%d.zarr" % i)
                r = T.run(["node", os.path.join(T.INTEROP, "write_zarrita.mjs"), store, dtype,
                           "10,21,19", "4,8,5", endian, comp, transpose, raw], timeout=120)
                self.assertTrue(r.ok, r.describe())
                st = self.check_image(store, [a])
                self.assertEqual(st["format"], "OME-Zarr 0.5 on Zarr v3")

    def test_sharded_v3_index_at_end_and_start(self):
        cases = [
            dict(dtype="uint16", endian="little", compressor="zstd", at_start=False,
                 drop_shards=[(1, 0, 1)], empty_inner=[((0, 0, 0), 3)]),
            dict(dtype="int16", endian="big", compressor="gzip", at_start=True, inner_crc=False,
                 index_crc=False, key="v2"),
            dict(dtype="float64", endian="big", compressor="none", at_start=True, fill=1.5),
        ]
        for i, c in enumerate(cases):
            with self.subTest(**{k: str(v) for k, v in c.items()}):
                a = data((21, 30, 26), c.pop("dtype"), 40 + i)
                store = self.root.join("sharded%d.zarr" % i)
                want = write_v3_sharded(store, a, (16, 16, 16), (8, 8, 4), **c)
                checked = store
                if c.get("at_start"):
                    # zarrita 0.7 reads every index from the shard's end: it
                    # checks this writer on the same store with the index there.
                    checked = self.root.join("sharded%d-end.zarr" % i)
                    write_v3_sharded(checked, a, (16, 16, 16), (8, 8, 4), **dict(c, at_start=False))
                problem = T.check_zarrita(checked, want, workdir=self.root.path)
                self.assertEqual(problem, "", "the test's writer disagrees with zarrita:\n" + problem)
                self.check_image(store, [want])

    def test_corrupt_chunk_is_eio_for_its_planes_only(self):
        a = data((16, 16, 16), "uint16", 60)
        store = self.root.join("corrupt.zarr")
        write_ome04(store, [a], "zyx", (8, 8, 8), numcodecs.Blosc("lz4", 5, shuffle=1))
        bad = os.path.join(store, "0", "1.0.1")
        with open(bad, "r+b") as f:  # a Blosc header that declares another size
            f.seek(4)
            f.write(struct.pack("<I", 12345))
        mnt = self.root.join("mnt")
        with T.Mount(store, mnt) as m:
            with self.assertRaises(OSError) as cm:
                tifffile.imread(os.path.join(mnt, "z", "00009.tif"))
            self.assertEqual(cm.exception.errno, errno.EIO)
            np.testing.assert_array_equal(tifffile.imread(os.path.join(mnt, "z", "00003.tif")), a[3])
            np.testing.assert_array_equal(tifffile.imread(os.path.join(mnt, "x", "00002.tif")),
                                          a[:, :, 2])
            errors = T.read_status(mnt)["errors"]
            self.assertTrue(any(bad in e for e in errors), errors)
            m.umount_checked(self)

    # ---------------------------------------------------------- bad metadata ----

    def test_bad_metadata_is_refused_at_mount(self):
        def v2_store(name, zarray=None, zattrs=None, raw_zattrs=None):
            a = data((6, 7, 8), "uint16", 50)
            store = self.root.join(name)
            write_ome04(store, [a], "zyx", (4, 4, 4), numcodecs.Zlib())
            if zarray:
                p = os.path.join(store, "0", ".zarray")
                with open(p) as f:
                    meta = json.load(f)
                meta.update(zarray)
                with open(p, "w") as f:
                    json.dump(meta, f)
            if zattrs is not None or raw_zattrs is not None:
                with open(os.path.join(store, ".zattrs"), "w") as f:
                    f.write(raw_zattrs if raw_zattrs is not None else json.dumps(zattrs))
            return store

        def v3_store(name, codecs):
            a = data((6, 7, 8), "uint16", 51)
            store = self.root.join(name)
            write_v3_sharded(store, a, (4, 4, 4), (4, 4, 4))
            p = os.path.join(store, "0", "zarr.json")
            with open(p) as f:
                meta = json.load(f)
            meta["codecs"] = codecs
            with open(p, "w") as f:
                json.dump(meta, f)
            return store

        cases = [
            (v2_store("unknown-codec.zarr", {"compressor": {"id": "lzma"}}),
             ["0/.zarray", "compressor", "lzma"]),
            (v2_store("chunk0.zarr", {"chunks": [0, 4, 4]}), ["0/.zarray", "chunks"]),
            (v2_store("rank.zarr", {"chunks": [4, 4]}), ["0/.zarray", "chunks"]),
            (v2_store("int64.zarr", {"dtype": "<i8"}), ["0/.zarray", "dtype", "i8"]),
            (v2_store("filters.zarr", {"filters": [{"id": "delta", "dtype": "<u2"}]}),
             ["0/.zarray", "filters"]),
            (v2_store("badjson.zarr", raw_zattrs='{"multiscales": [}'), [".zattrs"]),
            (v2_store("nomulti.zarr", zattrs={"foo": 1}), [".zattrs", "multiscales"]),
            (v2_store("axes.zarr", zattrs={"multiscales": [{"version": "0.4", "axes": axes_meta("yx"),
                                                            "datasets": [{"path": "0", "coordinateTransformations": [
                                                                {"type": "scale", "scale": [1, 1]}]}]}]}),
             ["0/.zarray", "3 dimensions", "2 axes"]),
            (v3_store("v3-unknown.zarr", [{"name": "bytes", "configuration": {"endian": "little"}},
                                          {"name": "lzma"}]), ["0/zarr.json", "codecs", "lzma"]),
        ]
        for store, parts in cases:
            with self.subTest(store=os.path.basename(store)):
                mnt = self.root.sub("mnt-" + os.path.basename(store))
                r = T.run([T.brickfs_bin(), "mount", store, mnt], timeout=30)
                try:
                    self.assertNotEqual(r.returncode, 0, r.describe())
                    self.assertFalse(T.is_mounted(mnt))
                    for p in parts:
                        self.assertIn(p, r.stderr, r.describe())
                    self.assertIn(store, r.stderr)
                    self.assertNotIn("Traceback", r.stderr)
                finally:
                    if T.is_mounted(mnt):
                        T.hard_unmount(mnt)


if __name__ == "__main__":
    T.main()
