"""Helpers of the packaging tests (tests/packaging/test_*.py).

Each test script takes `--brickfs PATH` (the built binary) and `--build-dir DIR`
(the configured CMake build tree) and runs under Debian's /usr/bin/python3
(numpy, tifffile, zstandard). It exits 77 (ctest SKIP_RETURN_CODE) when what it
needs is missing, e.g. /dev/fuse or root for the mount tests.

  - run(): every subprocess goes through it: a timeout, output in temp files (a
    daemon that inherits stdio can never hang a test), its own process group.
  - make_slice(): writes a uint16 TIFF slice with tifffile.
  - read_store(): an independent reader of a brickfs store written only from
    brickfs-format(5) (zarr.json, shard index, crc32c, zstd blocks); the tests
    compare what it reads with the slices that were copied in.
  - Mounts: remembers mount points and daemon pids and tears every one down
    (fusermount3 -u, umount -l, SIGTERM, wait) whatever happened.
  - GlobalLink: a symlink in a system directory (/usr/sbin/mount.brickfs), created
    only when absent (or dangling into a binary copy of a killed run) and removed
    only when this test created it.
  - main(require_fuse=True) runs a private copy of the binary, so a rebuild of the
    build tree during the run cannot replace it under the mounts.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np

SKIP = 77
ARGS = argparse.Namespace(brickfs=None, build_dir=None)


def parse_args():
    """Parses --brickfs/--build-dir and leaves the rest for unittest."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--brickfs", required=True)
    p.add_argument("--build-dir", required=True)
    ns, rest = p.parse_known_args()
    ARGS.brickfs = os.path.abspath(ns.brickfs)
    ARGS.build_dir = os.path.abspath(ns.build_dir)
    if not os.access(ARGS.brickfs, os.X_OK):
        sys.exit("brickfs binary %s is not executable" % ARGS.brickfs)
    return [sys.argv[0]] + rest


BIN_COPY_PREFIX = "brickfs-test-bin-"


def main(require_fuse=False):
    """Runs the unittest module; exit 77 when a precondition is missing.

    Mount tests run a private copy of the binary, so that a rebuild of the build
    tree while they run (others work in it too) cannot swap it under them."""
    argv = parse_args()
    copy_dir = None
    if require_fuse:
        why = fuse_unusable()
        if why:
            print("SKIP: " + why)
            sys.exit(SKIP)
        copy_dir = tempfile.mkdtemp(prefix=BIN_COPY_PREFIX)
        copy = os.path.join(copy_dir, "brickfs")
        shutil.copy2(ARGS.brickfs, copy)
        ARGS.brickfs = copy
    try:
        prog = unittest.main(argv=argv, exit=False, verbosity=2)
    finally:
        if copy_dir:
            shutil.rmtree(copy_dir, ignore_errors=True)
    sys.exit(0 if prog.result.wasSuccessful() else 1)


def fuse_unusable():
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing"
    if os.geteuid() != 0:
        return "these tests need root (they run mount(8) and mount FUSE volumes)"
    if not shutil.which("fusermount3"):
        return "fusermount3 is missing (Debian package fuse3)"
    return None


# ------------------------------------------------------------ subprocesses ----


class Ran:
    def __init__(self, argv, returncode, stdout, stderr, timed_out):
        self.argv, self.returncode = argv, returncode
        self.stdout, self.stderr, self.timed_out = stdout, stderr, timed_out

    @property
    def ok(self):
        return self.returncode == 0 and not self.timed_out

    def __str__(self):
        return "$ %s\n-> exit %s%s\n--- stdout:\n%s\n--- stderr:\n%s" % (
            " ".join(self.argv), self.returncode, " (TIMED OUT)" if self.timed_out else "",
            self.stdout[-3000:], self.stderr[-3000:])


def run(argv, timeout=30, env=None, cwd=None):
    argv = [str(a) for a in argv]
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        p = subprocess.Popen(argv, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL, env=env,
                             cwd=cwd, start_new_session=True)
        timed_out = False
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(timeout=10)
        fo.seek(0)
        fe.seek(0)
        return Ran(argv, p.returncode, fo.read().decode("utf-8", "replace"),
                   fe.read().decode("utf-8", "replace"), timed_out)


def brickfs(*args, timeout=30):
    return run([ARGS.brickfs] + list(args), timeout=timeout)


def info_json(store):
    r = brickfs("info", "--json", store)
    if not r.ok:
        raise AssertionError("brickfs info --json failed:\n%s" % r)
    return json.loads(r.stdout)


# ------------------------------------------------------------------ slices ----


def make_slice(path, z, shape=(64, 96), seed=None):
    """A uint16 slice whose values encode z, y and x; returns the array."""
    import tifffile
    rng = np.random.default_rng(seed if seed is not None else z)
    a = rng.integers(1, 60000, size=shape, dtype=np.uint16)
    a[0, 0] = z + 1
    tifffile.imwrite(path, a)
    return a


# ---------------------------------------------------------------- mounts ----


def proc_mounts():
    """[(source, mountpoint, type)] from /proc/mounts, octal escapes decoded."""
    def unescape(s):
        return s.encode().decode("unicode_escape")
    out = []
    with open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3:
                out.append((unescape(parts[0]), unescape(parts[1]), parts[2]))
    return out


def mount_entry(mountpoint):
    for src, mnt, typ in proc_mounts():
        if mnt == mountpoint:
            return src, mnt, typ
    return None


def read_status(mountpoint):
    with open(os.path.join(mountpoint, ".brickfs", "status")) as f:
        return json.load(f)


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def wait_pid_gone(pid, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)


class Mounts:
    """Mount points a test used; teardown() leaves none mounted and no daemon."""

    def __init__(self):
        self.points = []
        self.pids = set()

    def add(self, mountpoint):
        self.points.append(mountpoint)

    def note_daemon(self, mountpoint):
        """Remembers the daemon pid serving mountpoint; returns it."""
        pid = read_status(mountpoint)["pid"]
        self.pids.add(pid)
        return pid

    def teardown(self):
        for m in reversed(self.points):
            if mount_entry(m) is None:
                continue
            try:
                self.pids.add(read_status(m)["pid"])
            except (OSError, ValueError, KeyError):
                pass
            run(["fusermount3", "-u", m], timeout=20)
            if mount_entry(m) is not None:
                run(["umount", "-l", m], timeout=20)
        for pid in self.pids:
            if not wait_pid_gone(pid, 30):
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                if not wait_pid_gone(pid, 10):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass


class GlobalLink:
    """A symlink path -> target in a system directory, made only when absent."""

    def __init__(self, path, target):
        self.path, self.target, self.created = path, target, False

    def ensure(self):
        """Returns None when path resolves to target (created or already there),
        else a message saying what is in the way."""
        if os.path.lexists(self.path):
            if os.path.realpath(self.path) == os.path.realpath(self.target):
                return None
            stale = os.readlink(self.path) if os.path.islink(self.path) else ""
            if (not os.path.exists(self.path) and
                    os.path.basename(os.path.dirname(stale)).startswith(BIN_COPY_PREFIX)):
                os.unlink(self.path)  # left by a run of these tests that was killed
                return self.ensure()
            return "%s exists and is not the binary under test (%s)" % (
                self.path, os.path.realpath(self.path))
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        os.symlink(self.target, self.path)
        self.created = True
        return None

    def remove(self):
        if self.created and os.path.islink(self.path) and os.readlink(self.path) == self.target:
            os.unlink(self.path)
        self.created = False


# ---------------------------------------------- reader from brickfs-format(5) ----

_CRC32C_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC32C_TABLE.append(_c)


def crc32c(data):
    crc = 0xFFFFFFFF
    t = _CRC32C_TABLE
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


DTYPES = {"uint8": "<u1", "uint16": "<u2", "int16": "<i2", "uint32": "<u4", "float32": "<f4"}


def read_store(store):
    """Returns (volume as a numpy array, array metadata) of a brickfs store."""
    import zstandard
    with open(os.path.join(store, "zarr.json")) as f:
        group = json.load(f)
    assert group["zarr_format"] == 3 and group["node_type"] == "group", group
    path = group["attributes"]["ome"]["multiscales"][0]["datasets"][0]["path"]
    adir = os.path.join(store, path)
    with open(os.path.join(adir, "zarr.json")) as f:
        meta = json.load(f)
    assert meta["zarr_format"] == 3 and meta["node_type"] == "array"
    assert meta["chunk_key_encoding"]["configuration"]["separator"] == "/"
    assert meta["fill_value"] == 0
    (shard,) = meta["codecs"]
    assert shard["name"] == "sharding_indexed"
    cfg = shard["configuration"]
    assert [c["name"] for c in cfg["codecs"]] == ["bytes", "zstd", "crc32c"]
    assert [c["name"] for c in cfg["index_codecs"]] == ["bytes", "crc32c"]
    assert cfg["index_location"] == "end"
    dtype = np.dtype(DTYPES[meta["data_type"]])
    shape = meta["shape"]
    brick = meta["chunk_grid"]["configuration"]["chunk_shape"]
    block = cfg["chunk_shape"]
    n = [brick[i] // block[i] for i in range(3)]
    nblocks = n[0] * n[1] * n[2]
    block_bytes = block[0] * block[1] * block[2] * dtype.itemsize
    grid = [-(-shape[i] // brick[i]) for i in range(3)]
    vol = np.zeros(shape, dtype)
    dctx = zstandard.ZstdDecompressor()
    for kz in range(grid[0]):
        for ky in range(grid[1]):
            for kx in range(grid[2]):
                fname = os.path.join(adir, "c", str(kz), str(ky), str(kx))
                if not os.path.exists(fname):
                    continue
                with open(fname, "rb") as f:
                    data = f.read()
                isz = 16 * nblocks + 4
                assert len(data) >= isz, fname
                index = data[-isz:]
                assert crc32c(index[:-4]) == int.from_bytes(index[-4:], "little"), fname
                entries = np.frombuffer(index[:-4], "<u8").reshape(nblocks, 2)
                data_end = len(data) - isz
                for i, (off, nb) in enumerate(entries):
                    off, nb = int(off), int(nb)
                    if off == 2**64 - 1 and nb == 2**64 - 1:
                        continue
                    assert 4 < nb and off + nb <= data_end, (fname, i, off, nb)
                    enc = data[off:off + nb]
                    frame = enc[:-4]
                    assert crc32c(frame) == int.from_bytes(enc[-4:], "little"), (fname, i)
                    params = zstandard.get_frame_parameters(frame)
                    assert params.content_size == block_bytes, (fname, i, params.content_size)
                    raw = dctx.decompress(frame)
                    assert len(raw) == block_bytes
                    blk = np.frombuffer(raw, dtype).reshape(block)
                    iz, rem = divmod(i, n[1] * n[2])
                    iy, ix = divmod(rem, n[2])
                    z0 = kz * brick[0] + iz * block[0]
                    y0 = ky * brick[1] + iy * block[1]
                    x0 = kx * brick[2] + ix * block[2]
                    z1, y1, x1 = (min(z0 + block[0], shape[0]), min(y0 + block[1], shape[1]),
                                  min(x0 + block[2], shape[2]))
                    if z1 <= z0 or y1 <= y0 or x1 <= x0:
                        continue
                    vol[z0:z1, y0:y1, x0:x1] = blk[:z1 - z0, :y1 - y0, :x1 - x0]
    return vol, meta
