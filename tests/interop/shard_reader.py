#!/usr/bin/python3
"""Independent reader of brickfs stores: Zarr v3 arrays with one sharding_indexed codec.

This file shares no code with brickfs. It reads a store the way any Zarr v3
reader would, but strictly: it checks what DESIGN.md section 4 promises and
what a lenient reader would let through.

  - STORE/ARRAY/zarr.json: zarr_format 3, node_type array, regular chunk grid
    (chunk = brick), default or v2 chunk-key encoding, one codec
    "sharding_indexed" with inner codecs bytes[, zstd][, crc32c] and index
    codecs bytes[, crc32c], index_location start or end.
  - each shard file: the index (offset u64le, nbytes u64le per inner chunk in
    C order, 2^64-1 twice = empty) with its crc32c, every entry range-checked
    against the file; each block's crc32c (Castagnoli, computed here with a
    table) is verified, each zstd frame must carry its content size and that
    size must be exactly one block.

Usage:
  shard_reader.py STORE [ARRAY]                       print a summary of the array
  shard_reader.py STORE [ARRAY] --expected RAW --dtype uint16 --shape Z,Y,X
                                                      compare with a raw little-endian file
  shard_reader.py --self-test                         test this reader (no brickfs needed)

Exit status: 0 ok / equal, 1 data differs, 2 store invalid or usage error.
Only the Python standard library, numpy, and zstd (the `zstandard` module, or
libzstd through ctypes when that module is missing) are used.
"""

import argparse
import ctypes
import ctypes.util
import json
import os
import struct
import sys

import numpy as np

EMPTY = 0xFFFFFFFFFFFFFFFF

# ---------------------------------------------------------------- crc32c ----

_CRC32C_POLY = 0x82F63B78  # Castagnoli, reflected


def _make_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ _CRC32C_POLY if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC32C_TABLE = _make_table()


def crc32c(data, crc=0):
    """CRC-32C (Castagnoli) of `data` (bytes-like), continuing from `crc`."""
    t = _CRC32C_TABLE
    c = crc ^ 0xFFFFFFFF
    for b in bytes(data):
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


# ------------------------------------------------------------------ zstd ----


class _Zstd:
    """zstd frame decoding: the zstandard module if present, else libzstd via ctypes."""

    def __init__(self):
        self.backend = None
        try:
            import zstandard  # noqa: F401
            self._zs = zstandard
            self.backend = "zstandard"
            return
        except ImportError:
            pass
        name = ctypes.util.find_library("zstd") or "libzstd.so.1"
        lib = ctypes.CDLL(name)
        lib.ZSTD_getFrameContentSize.restype = ctypes.c_ulonglong
        lib.ZSTD_getFrameContentSize.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        lib.ZSTD_findFrameCompressedSize.restype = ctypes.c_size_t
        lib.ZSTD_findFrameCompressedSize.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        lib.ZSTD_decompress.restype = ctypes.c_size_t
        lib.ZSTD_decompress.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p,
                                        ctypes.c_size_t]
        lib.ZSTD_isError.restype = ctypes.c_uint
        lib.ZSTD_isError.argtypes = [ctypes.c_size_t]
        lib.ZSTD_getErrorName.restype = ctypes.c_char_p
        lib.ZSTD_getErrorName.argtypes = [ctypes.c_size_t]
        lib.ZSTD_compress.restype = ctypes.c_size_t
        lib.ZSTD_compress.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p,
                                      ctypes.c_size_t, ctypes.c_int]
        lib.ZSTD_compressBound.restype = ctypes.c_size_t
        lib.ZSTD_compressBound.argtypes = [ctypes.c_size_t]
        self._lib = lib
        self.backend = "libzstd(ctypes)"

    def content_size(self, frame):
        """Frame content size from the frame header, or None when the header lacks it."""
        if self.backend == "zstandard":
            try:
                cs = self._zs.frame_content_size(frame)
            except self._zs.ZstdError as e:
                raise ValueError("not a zstd frame: %s" % e)
            return None if cs < 0 else cs
        cs = self._lib.ZSTD_getFrameContentSize(frame, len(frame))
        if cs == 0xFFFFFFFFFFFFFFFE:
            raise ValueError("not a zstd frame")
        if cs == 0xFFFFFFFFFFFFFFFF:
            return None
        return cs

    def decompress_exact(self, frame, size):
        """Decompresses one frame that must fill `frame` exactly and yield `size` bytes."""
        if self.backend == "zstandard":
            d = self._zs.ZstdDecompressor().decompressobj()
            try:
                out = d.decompress(frame)
            except self._zs.ZstdError as e:
                raise ValueError("zstd error: %s" % e)
            if d.unused_data:
                raise ValueError("%d bytes after the zstd frame" % len(d.unused_data))
            if not d.eof:
                raise ValueError("zstd frame is incomplete")
        else:
            n = self._lib.ZSTD_findFrameCompressedSize(frame, len(frame))
            if self._lib.ZSTD_isError(n):
                raise ValueError("zstd error: %s" % self._lib.ZSTD_getErrorName(n).decode())
            if n != len(frame):
                raise ValueError("%d bytes after the zstd frame" % (len(frame) - n))
            buf = ctypes.create_string_buffer(max(size, 1))
            r = self._lib.ZSTD_decompress(buf, size, frame, len(frame))
            if self._lib.ZSTD_isError(r):
                raise ValueError("zstd error: %s" % self._lib.ZSTD_getErrorName(r).decode())
            out = buf.raw[:r]
        if len(out) != size:
            raise ValueError("zstd frame decodes to %d bytes, block needs %d" % (len(out), size))
        return out

    def compress(self, data, level=1):
        """For --self-test only: a frame with its content size."""
        if self.backend == "zstandard":
            return self._zs.ZstdCompressor(level=level, write_content_size=True).compress(data)
        bound = self._lib.ZSTD_compressBound(len(data))
        buf = ctypes.create_string_buffer(bound)
        r = self._lib.ZSTD_compress(buf, bound, bytes(data), len(data), level)
        if self._lib.ZSTD_isError(r):
            raise ValueError("zstd error")
        return buf.raw[:r]


_zstd = None


def zstd():
    global _zstd
    if _zstd is None:
        _zstd = _Zstd()
    return _zstd


# ------------------------------------------------------------- metadata ----


class StoreError(Exception):
    """The store does not follow the format; the message says where and why."""


_DTYPES = {
    "bool": "|b1", "int8": "|i1", "uint8": "|u1", "int16": "<i2", "uint16": "<u2",
    "int32": "<i4", "uint32": "<u4", "int64": "<i8", "uint64": "<u8",
    "float32": "<f4", "float64": "<f8",
}


def _load_json(path):
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise StoreError("%s: %s" % (path, e))


class ArrayMeta:
    """The parts of a Zarr v3 array's zarr.json this reader understands."""

    def __init__(self, store, array_path):
        self.store = store
        self.array_path = array_path
        self.dir = os.path.join(store, array_path) if array_path else store
        path = os.path.join(self.dir, "zarr.json")
        m = _load_json(path)
        self.raw = m

        def need(cond, what):
            if not cond:
                raise StoreError("%s: %s" % (path, what))

        need(m.get("zarr_format") == 3, "zarr_format is %r, want 3" % m.get("zarr_format"))
        need(m.get("node_type") == "array", "node_type is %r, want array" % m.get("node_type"))
        self.shape = tuple(int(v) for v in m["shape"])
        dt = m.get("data_type")
        need(dt in _DTYPES, "data_type %r unsupported" % dt)
        self.dtype_name = dt
        self.dtype = np.dtype(_DTYPES[dt])
        fv = m.get("fill_value", 0)
        need(isinstance(fv, (int, float)) and not isinstance(fv, bool) or dt == "bool",
             "fill_value %r is not a number" % (fv,))
        self.fill_value = fv
        grid = m.get("chunk_grid", {})
        need(grid.get("name") == "regular", "chunk_grid %r, want regular" % grid.get("name"))
        self.shard_shape = tuple(int(v) for v in grid["configuration"]["chunk_shape"])
        need(len(self.shard_shape) == len(self.shape), "chunk_shape rank != shape rank")
        cke = m.get("chunk_key_encoding", {"name": "default"})
        self.key_kind = cke.get("name")
        need(self.key_kind in ("default", "v2"), "chunk_key_encoding %r" % self.key_kind)
        self.key_sep = cke.get("configuration", {}).get(
            "separator", "/" if self.key_kind == "default" else ".")
        codecs = m.get("codecs", [])
        need(len(codecs) == 1 and codecs[0].get("name") == "sharding_indexed",
             "codecs must be exactly one sharding_indexed, got %r"
             % [c.get("name") for c in codecs])
        sc = codecs[0]["configuration"]
        self.block_shape = tuple(int(v) for v in sc["chunk_shape"])
        need(len(self.block_shape) == len(self.shape), "inner chunk_shape rank")
        need(all(s % b == 0 for s, b in zip(self.shard_shape, self.block_shape)),
             "shard shape %r is not a multiple of block shape %r"
             % (self.shard_shape, self.block_shape))
        self.index_location = sc.get("index_location", "end")
        need(self.index_location in ("start", "end"),
             "index_location %r" % self.index_location)

        inner = sc.get("codecs", [])
        names = [c.get("name") for c in inner]
        need(names and names[0] == "bytes", "inner codecs must start with bytes: %r" % names)
        endian = inner[0].get("configuration", {}).get("endian", "little")
        need(endian in ("little", "big"), "bytes endian %r" % endian)
        self.block_dtype = self.dtype.newbyteorder("<" if endian == "little" else ">") \
            if self.dtype.itemsize > 1 else self.dtype
        rest = names[1:]
        self.inner_zstd = "zstd" in rest
        self.inner_crc = "crc32c" in rest
        need(rest in ([], ["zstd"], ["crc32c"], ["zstd", "crc32c"]),
             "inner codecs after bytes must be [zstd][, crc32c], got %r" % rest)
        if self.inner_zstd:
            self.zstd_conf = inner[1].get("configuration", {})
        else:
            self.zstd_conf = None

        idx = sc.get("index_codecs", [])
        inames = [c.get("name") for c in idx]
        need(inames in (["bytes"], ["bytes", "crc32c"]),
             "index_codecs must be bytes[, crc32c], got %r" % inames)
        iend = idx[0].get("configuration", {}).get("endian", "little")
        need(iend in ("little", "big"), "index bytes endian %r" % iend)
        self.index_endian = "<" if iend == "little" else ">"
        self.index_crc = len(inames) == 2
        self.dimension_names = m.get("dimension_names")
        self.attributes = m.get("attributes", {})

        self.blocks_per_shard = tuple(s // b for s, b in zip(self.shard_shape, self.block_shape))
        self.n_index = int(np.prod(self.blocks_per_shard))
        self.index_bytes = 16 * self.n_index + (4 if self.index_crc else 0)
        self.block_nbytes = int(np.prod(self.block_shape)) * self.dtype.itemsize

    def shard_grid(self):
        return tuple(-(-s // c) for s, c in zip(self.shape, self.shard_shape))

    def shard_path(self, coord):
        parts = [str(int(c)) for c in coord]
        if self.key_kind == "default":
            key = self.key_sep.join(["c"] + parts)
        else:
            key = self.key_sep.join(parts) if parts else "0"
        return os.path.join(self.dir, *key.split("/"))


# ---------------------------------------------------------------- shards ----


class ShardInfo:
    def __init__(self, path, size):
        self.path = path
        self.file_size = size
        self.blocks = 0          # non-empty index entries
        self.live_bytes = 0      # bytes referenced by the index (+ the index itself)


def read_shard(meta, coord, out_blocks=None):
    """Reads one shard. Returns (ShardInfo or None if the file is absent, dict of
    block C-index within the shard -> ndarray of block_shape)."""
    path = meta.shard_path(coord)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None, {}
    info = ShardInfo(path, len(data))
    where = "shard %s (%s)" % ("/".join(map(str, coord)), path)
    if len(data) < meta.index_bytes:
        raise StoreError("%s: %d bytes, smaller than its index (%d bytes)"
                         % (where, len(data), meta.index_bytes))
    if meta.index_location == "end":
        idx_raw = data[len(data) - meta.index_bytes:]
        data_lo, data_hi = 0, len(data) - meta.index_bytes
    else:
        idx_raw = data[:meta.index_bytes]
        data_lo, data_hi = meta.index_bytes, len(data)
    body = idx_raw[:16 * meta.n_index]
    if meta.index_crc:
        want = struct.unpack("<I", idx_raw[16 * meta.n_index:])[0]
        got = crc32c(body)
        if want != got:
            raise StoreError("%s: index crc32c stored %08x, computed %08x" % (where, want, got))
    index = np.frombuffer(body, dtype=meta.index_endian + "u8").reshape(meta.n_index, 2)
    info.live_bytes = meta.index_bytes
    blocks = {}
    spans = []
    for i in range(meta.n_index):
        off, nb = int(index[i, 0]), int(index[i, 1])
        if off == EMPTY and nb == EMPTY:
            continue
        bwhere = "%s block %d (offset %d, nbytes %d)" % (where, i, off, nb)
        if off == EMPTY or nb == EMPTY:
            raise StoreError("%s: only one of offset/nbytes is the empty marker" % bwhere)
        if off < data_lo or nb == 0 or off + nb > data_hi:
            raise StoreError("%s: outside the data area [%d, %d)" % (bwhere, data_lo, data_hi))
        spans.append((off, off + nb, i))
        enc = data[off:off + nb]
        if meta.inner_crc:
            if nb < 4:
                raise StoreError("%s: shorter than its crc32c" % bwhere)
            want = struct.unpack("<I", enc[-4:])[0]
            enc = enc[:-4]
            got = crc32c(enc)
            if want != got:
                raise StoreError("%s: crc32c stored %08x, computed %08x" % (bwhere, want, got))
        if meta.inner_zstd:
            try:
                cs = zstd().content_size(enc)
                if cs is None:
                    raise ValueError("zstd frame header has no content size")
                if cs != meta.block_nbytes:
                    raise ValueError("zstd content size %d, block is %d bytes"
                                     % (cs, meta.block_nbytes))
                raw = zstd().decompress_exact(enc, meta.block_nbytes)
            except ValueError as e:
                raise StoreError("%s: %s" % (bwhere, e))
        else:
            raw = enc
            if len(raw) != meta.block_nbytes:
                raise StoreError("%s: raw block is %d bytes, want %d"
                                 % (bwhere, len(raw), meta.block_nbytes))
        blocks[i] = np.frombuffer(raw, dtype=meta.block_dtype).reshape(meta.block_shape)
        info.blocks += 1
        info.live_bytes += nb
    spans.sort()
    for (a0, a1, ai), (b0, b1, bi) in zip(spans, spans[1:]):
        if b0 < a1:
            raise StoreError("%s: blocks %d [%d,%d) and %d [%d,%d) overlap"
                             % (where, ai, a0, a1, bi, b0, b1))
    return info, blocks


def read_array(store, array_path="0", stats=None):
    """Reads the whole array. `stats`, if a list, receives one ShardInfo per shard file."""
    meta = ArrayMeta(store, array_path)
    out = np.full(meta.shape, meta.fill_value, dtype=meta.dtype.newbyteorder("="))
    bps = meta.blocks_per_shard
    for coord in np.ndindex(*meta.shard_grid()):
        info, blocks = read_shard(meta, coord)
        if info is None:
            continue
        if stats is not None:
            stats.append(info)
        for i, blk in blocks.items():
            local = np.unravel_index(i, bps)
            start = [c * s + l * b for c, s, l, b in
                     zip(coord, meta.shard_shape, local, meta.block_shape)]
            sel_out, sel_blk = [], []
            skip = False
            for st, b, n in zip(start, meta.block_shape, meta.shape):
                stop = min(st + b, n)
                if stop <= st:
                    skip = True  # block entirely outside the array: legal, ignored
                    break
                sel_out.append(slice(st, stop))
                sel_blk.append(slice(0, stop - st))
            if not skip:
                out[tuple(sel_out)] = blk[tuple(sel_blk)]
    # shard files outside the grid are not an error, but say so via stats
    return out


def meta_of(store, array_path="0"):
    return ArrayMeta(store, array_path)


# ------------------------------------------------------------- comparing ----


def diff_summary(expected, got, limit=10):
    """Human summary of where two arrays differ; '' when equal."""
    if expected.shape != got.shape:
        return "shape differs: expected %r, got %r" % (expected.shape, got.shape)
    if expected.dtype.newbyteorder("=") != got.dtype.newbyteorder("="):
        return "dtype differs: expected %s, got %s" % (expected.dtype, got.dtype)
    bad = expected != got
    if expected.dtype.kind == "f":
        bad &= ~(np.isnan(expected) & np.isnan(got))
    n = int(bad.sum())
    if n == 0:
        return ""
    lines = ["%d of %d voxels differ" % (n, expected.size)]
    if expected.ndim == 3:
        zs = np.nonzero(bad.any(axis=(1, 2)))[0]
        lines.append("z planes with differences (%d): %s%s" % (
            len(zs), list(map(int, zs[:20])), " ..." if len(zs) > 20 else ""))
    for c in np.argwhere(bad)[:limit]:
        c = tuple(int(v) for v in c)
        lines.append("  at %r expected %r got %r" % (c, expected[c].item(), got[c].item()))
    return "\n".join(lines)


# ------------------------------------------------------------- self test ----


def write_reference_store(root, vol, block, brick, dtype_name, gaps=False, key_kind="default",
                          dead_copy=False):
    """Test-only writer of the format in DESIGN.md section 4, used to test the readers
    (this file's self-test and tests/interop/test_readers.py). It shares nothing with
    brickfs's writer. gaps: blocks in reverse order with junk between them;
    dead_copy: an older complete shard in front (as the append protocol leaves)."""
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "zarr.json"), "w") as f:
        json.dump({"zarr_format": 3, "node_type": "group", "attributes": {"ome": {
            "version": "0.5", "multiscales": [{
                "axes": [{"name": a, "type": "space"} for a in "zyx"],
                "datasets": [{"path": "0", "coordinateTransformations": [
                    {"type": "scale", "scale": [1.0, 1.0, 1.0]}]}]}]}}}, f)
    os.makedirs(os.path.join(root, "0"), exist_ok=True)
    meta = {
        "zarr_format": 3, "node_type": "array", "shape": list(vol.shape),
        "data_type": dtype_name,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(brick)}},
        "chunk_key_encoding": {"name": key_kind, "configuration": {"separator": "/"}},
        "fill_value": 0,
        "codecs": [{"name": "sharding_indexed", "configuration": {
            "chunk_shape": list(block),
            "codecs": [{"name": "bytes", "configuration": {"endian": "little"}},
                       {"name": "zstd", "configuration": {"level": 1, "checksum": False}},
                       {"name": "crc32c"}],
            "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}},
                             {"name": "crc32c"}],
            "index_location": "end"}}],
        "dimension_names": ["z", "y", "x"], "attributes": {},
    }
    with open(os.path.join(root, "0", "zarr.json"), "w") as f:
        json.dump(meta, f)
    m = ArrayMeta(root, "0")
    bps = m.blocks_per_shard
    for coord in np.ndindex(*m.shard_grid()):
        payload = bytearray(b"DEAD" * 5 if gaps else b"")
        index = np.full((m.n_index, 2), EMPTY, dtype="<u8")
        order = list(range(m.n_index))
        if gaps:
            order.reverse()
        for i in order:
            local = np.unravel_index(i, bps)
            start = [c * s + l * b for c, s, l, b in zip(coord, brick, local, block)]
            blk = np.zeros(block, dtype=vol.dtype)
            src = vol[tuple(slice(s, s + b) for s, b in zip(start, block))]
            blk[tuple(slice(0, n) for n in src.shape)] = src
            if src.size == 0 or not blk.any():
                continue
            frame = zstd().compress(blk.astype(blk.dtype.newbyteorder("<")).tobytes())
            enc = frame + struct.pack("<I", crc32c(frame))
            index[i] = (len(payload), len(enc))
            payload += enc
            if gaps:
                payload += b"\x00" * 3
        if (index == EMPTY).all():
            continue
        ib = index.tobytes()
        p = m.shard_path(coord)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        shard = bytes(payload) + ib + struct.pack("<I", crc32c(ib))
        if dead_copy:
            moved = index.copy()
            live = moved[:, 0] != EMPTY
            moved[live, 0] += len(shard)
            mb = moved.tobytes()
            shard = shard + bytes(payload) + mb + struct.pack("<I", crc32c(mb))
        with open(p, "wb") as f:
            f.write(shard)
    return m


def _self_test():
    """Tests this reader on shards built here byte by byte (no brickfs involved)."""
    import tempfile
    import shutil

    failures = []
    passed = []

    def check(cond, what):
        print(("ok   " if cond else "FAIL ") + what)
        (passed if cond else failures).append(what)

    # crc32c reference values (RFC 3720 B.4 and the usual check value)
    check(crc32c(b"123456789") == 0xE3069283, "crc32c('123456789') == e3069283")
    check(crc32c(bytes(32)) == 0x8A9136AA, "crc32c(32 zero bytes) == 8a9136aa")
    check(crc32c(bytes([0xFF] * 32)) == 0x62A8AB43, "crc32c(32 0xff bytes) == 62a8ab43")
    check(crc32c(bytes(range(32))) == 0x46DD794E, "crc32c(0..31) == 46dd794e")
    check(crc32c(b"") == 0, "crc32c('') == 0")
    check(crc32c(b"6789", crc32c(b"12345")) == 0xE3069283, "crc32c continues")

    tmp = tempfile.mkdtemp(prefix="shard_reader_selftest_")
    try:
        rng = np.random.default_rng(7)
        for dtype_name, shape, block, brick, gaps in [
            ("uint8", (11, 21, 35), (4, 8, 8), (8, 16, 16), False),
            ("uint16", (9, 17, 19), (2, 4, 8), (4, 8, 16), True),
            ("float32", (5, 6, 7), (2, 2, 2), (4, 4, 4), False),
        ]:
            root = os.path.join(tmp, "%s.zarr" % dtype_name)
            dt = np.dtype(_DTYPES[dtype_name]).newbyteorder("=")
            if dt.kind == "f":
                vol = rng.standard_normal(shape).astype(dt)
            else:
                vol = rng.integers(0, np.iinfo(dt).max, size=shape, dtype=dt)
            vol[:, :, : shape[2] // 3] = 0  # some all-fill blocks and bricks
            write_reference_store(root, vol, block, brick, dtype_name, gaps=gaps,
                                  dead_copy=gaps)
            stats = []
            got = read_array(root, "0", stats)
            d = diff_summary(vol, got)
            check(d == "", "%s %r block %r brick %r gaps=%s round trip%s"
                  % (dtype_name, shape, block, brick, gaps, (": " + d) if d else ""))
            check(len(stats) > 0 and all(s.blocks > 0 for s in stats),
                  "%s: shard stats collected" % dtype_name)

        # corruption is detected, with a message naming the shard and block
        root = os.path.join(tmp, "corrupt.zarr")
        vol = rng.integers(1, 200, size=(8, 16, 16), dtype=np.uint8)
        m = write_reference_store(root, vol, (4, 8, 8), (8, 16, 16), "uint8")
        shard = m.shard_path((0, 0, 0))
        pristine = open(shard, "rb").read()

        def expect_error(mutated, what, needle):
            with open(shard, "wb") as f:
                f.write(mutated)
            try:
                read_array(root, "0")
                check(False, "%s is detected" % what)
            except StoreError as e:
                check(needle in str(e), "%s is detected (%s)" % (what, e))
            with open(shard, "wb") as f:
                f.write(pristine)

        b = bytearray(pristine)
        b[5] ^= 0x40
        expect_error(bytes(b), "flipped bit in block 0", "crc32c")
        b = bytearray(pristine)
        b[-10] ^= 0x01
        expect_error(bytes(b), "flipped bit in the index", "index crc32c")
        expect_error(pristine[:40], "truncated shard", "smaller than its index")
        # index entry pointing past the data: rebuild index with a valid crc
        n = m.n_index
        idx = np.frombuffer(pristine[-(16 * n + 4):-4], dtype="<u8").reshape(n, 2).copy()
        idx[1, 1] = 10 ** 6
        ib = idx.tobytes()
        expect_error(pristine[:-(16 * n + 4)] + ib + struct.pack("<I", crc32c(ib)),
                     "index entry past the end", "outside the data area")
        # zstd frame without content size: rebuild block 0 with a streaming frame
        idx = np.frombuffer(pristine[-(16 * n + 4):-4], dtype="<u8").reshape(n, 2).copy()
        off0, nb0 = int(idx[0, 0]), int(idx[0, 1])
        frame = pristine[off0:off0 + nb0 - 4]
        # re-encode block 0 as a frame without content size (needs the zstandard module)
        if zstd().backend == "zstandard":
            import zstandard
            raw = zstd().decompress_exact(frame, m.block_nbytes)
            fr2 = zstandard.ZstdCompressor(level=1, write_content_size=False).compress(raw)
            enc = fr2 + struct.pack("<I", crc32c(fr2))
            body = pristine[:-(16 * n + 4)] + enc
            idx[0] = (len(body) - len(enc), len(enc))
            ib = idx.tobytes()
            expect_error(body + ib + struct.pack("<I", crc32c(ib)),
                         "zstd frame without content size", "no content size")
        # empty store directory: array of fill value
        os.remove(shard)
        got = read_array(root, "0")
        check(got.shape == vol.shape and not got.any(), "no shard files -> all fill value")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("zstd backend: %s" % zstd().backend)
    print("%d passed, %d failed" % (len(passed), len(failures)))
    return 1 if failures else 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("store", nargs="?")
    p.add_argument("array", nargs="?", default="0")
    p.add_argument("--expected", help="raw little-endian C-order file to compare with")
    p.add_argument("--dtype", help="dtype of --expected (default: the array's)")
    p.add_argument("--shape", help="Z,Y,X of --expected (default: the array's)")
    p.add_argument("--self-test", action="store_true")
    a = p.parse_args(argv)
    if a.self_test:
        return _self_test()
    if not a.store:
        p.error("STORE is required")
    try:
        stats = []
        meta = ArrayMeta(a.store, a.array)
        arr = read_array(a.store, a.array, stats)
    except StoreError as e:
        print("INVALID: %s" % e)
        return 2
    live = sum(s.live_bytes for s in stats)
    size = sum(s.file_size for s in stats)
    print("array %s: shape %s dtype %s brick %s block %s" % (
        os.path.join(a.store, a.array), list(meta.shape), meta.dtype_name,
        list(meta.shard_shape), list(meta.block_shape)))
    print("shards %d, blocks %d, bytes on disk %d, live %d, raw %d" % (
        len(stats), sum(s.blocks for s in stats), size, live, arr.nbytes))
    if a.expected:
        dt = np.dtype(_DTYPES[a.dtype or meta.dtype_name])
        shape = tuple(int(v) for v in a.shape.split(",")) if a.shape else meta.shape
        exp = np.fromfile(a.expected, dtype=dt).reshape(shape)
        d = diff_summary(exp, arr)
        if d:
            print("MISMATCH:\n" + d)
            return 1
        print("MATCH: %d voxels equal" % arr.size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
