#!/usr/bin/python3
"""Writable brick files (MOUNT/bricks/): a pipeline writes whole bricks with
numpy, 8 processes in parallel; the data is read back through the brick files,
through z/ TIFFs (tifffile), through y/ and x/, and after unmount through
zarrita and the independent shard reader. Short, oversized and partial writes
fail at close() and change nothing.

    /usr/bin/python3 tests/integration/test_bricks.py --brickfs build/brickfs
"""
import errno
import multiprocessing
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import brickfs_testlib as T  # noqa: E402

SHAPE = (45, 70, 90)      # not multiples of the brick: edge bricks are clipped
BLOCK = (8, 16, 16)
BRICK = (16, 32, 32)


def brick_names(shape, brick):
    width = max(4, len(str(max(shape))))
    for z in range(0, shape[0], brick[0]):
        for y in range(0, shape[1], brick[1]):
            for x in range(0, shape[2], brick[2]):
                yield "z%0*d_y%0*d_x%0*d.raw" % (width, z, width, y, width, x), (z, y, x)


def write_brick(args):
    """Worker: writes one brick file whole, as a pipeline would."""
    mnt, name, origin, vol_path = args
    vol = np.load(vol_path, mmap_mode="r")
    z, y, x = origin
    sub = np.ascontiguousarray(vol[z:z + BRICK[0], y:y + BRICK[1], x:x + BRICK[2]])
    with open(os.path.join(mnt, "bricks", name), "wb") as f:
        f.write(sub.astype(sub.dtype.newbyteorder("<")).tobytes())
    return name


class BricksTest(T.TestRootCase):
    def read_brick(self, mnt, name, shape, dtype):
        return np.fromfile(os.path.join(mnt, "bricks", name), dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape)

    def test_parallel_brick_writers_then_every_reader(self):
        store, mnt = self.root.join("v.zarr"), self.root.join("mnt")
        T.brickfs_create(store, SHAPE, "uint16", block=BLOCK, brick=BRICK)
        vol = T.make_volume(SHAPE, "uint16", kind="smooth", seed=3)
        vol[:, :20, :40] = 0  # whole blocks of fill: not stored
        vol_path = self.root.join("vol.npy")
        np.save(vol_path, vol)
        names = list(brick_names(SHAPE, BRICK))
        with T.Mount(store, mnt) as m:
            listed = sorted(os.listdir(os.path.join(mnt, "bricks")))
            self.assertEqual(listed, sorted(n for n, _ in names))
            for name, (z, y, x) in names:
                expect = vol[z:z + BRICK[0], y:y + BRICK[1], x:x + BRICK[2]]
                self.assertEqual(os.path.getsize(os.path.join(mnt, "bricks", name)), expect.nbytes,
                                 name)
            with multiprocessing.Pool(8) as pool:
                done = pool.map(write_brick, [(mnt, n, o, vol_path) for n, o in names])
            self.assertEqual(sorted(done), sorted(n for n, _ in names))
            st = T.read_status(mnt)
            self.assertEqual(st["errors"], [], st["errors"])
            self.assertEqual(st["blocks"]["bricks_replaced"], len(names))
            for name, (z, y, x) in names:
                expect = vol[z:z + BRICK[0], y:y + BRICK[1], x:x + BRICK[2]]
                got = self.read_brick(mnt, name, expect.shape, "uint16")
                self.assertTrue(np.array_equal(got, expect), name)
            for z in range(SHAPE[0]):
                got = T.decode_tiff_file(os.path.join(mnt, "z", T.canonical(z)))
                self.assertTrue(np.array_equal(got, vol[z]), "z=%d" % z)
            for y in (0, 31, 32, 69):
                got = T.decode_tiff_file(os.path.join(mnt, "y", T.canonical(y)))
                self.assertTrue(np.array_equal(got, vol[:, y, :]), "y=%d" % y)
            for x in (0, 63, 64, 89):
                got = T.decode_tiff_file(os.path.join(mnt, "x", T.canonical(x)))
                self.assertTrue(np.array_equal(got, vol[:, :, x]), "x=%d" % x)
            m.umount_checked(self)
        info = T.brickfs_info_json(store)
        self.assertTrue(info["finalized"])
        self.assertEqual(info["missing"], [])
        self.assertEqual(T.check_shard_reader(store, vol), "")
        self.assertEqual(T.check_zarrita(store, vol, workdir=self.root.join()), "")
        # The store holds no file for the all-fill brick z0_y0_x0 (rows 0-31 < 20? no:
        # it has data in y 20..31) but every level-0 brick file is dense: no dead
        # bytes (the levels above are updated by appends, so theirs may have some).
        self.assertEqual(info["levels_stored"][0]["bytes_dead"], 0, info["levels_stored"])

    def test_short_oversized_and_partial_writes_change_nothing(self):
        store, mnt = self.root.join("v.zarr"), self.root.join("mnt")
        T.brickfs_create(store, SHAPE, "uint8", block=BLOCK, brick=BRICK)
        vol = T.make_volume(SHAPE, "uint8", kind="random", seed=4)
        name = "z0016_y0032_x0064.raw"  # an edge brick: 16 x 32 x 26
        expect = vol[16:32, 32:64, 64:90]
        with T.Mount(store, mnt) as m:
            path = os.path.join(mnt, "bricks", name)
            with open(path, "wb") as f:
                f.write(expect.tobytes())
            self.assertTrue(np.array_equal(self.read_brick(mnt, name, expect.shape, "uint8"), expect))
            other = (255 - expect).astype(np.uint8)
            # short
            with self.assertRaises(OSError) as cm:
                with open(path, "wb") as f:
                    f.write(other.tobytes()[:-1])
            self.assertEqual(cm.exception.errno, errno.EINVAL)
            # oversized
            with self.assertRaises(OSError) as cm:
                with open(path, "wb") as f:
                    f.write(other.tobytes() + b"x")
            self.assertIn(cm.exception.errno, (errno.EFBIG, errno.EINVAL))
            # partial: only the first half, at offset 0
            with self.assertRaises(OSError):
                with open(path, "r+b") as f:
                    f.write(other.tobytes()[: other.nbytes // 2])
            self.assertTrue(np.array_equal(self.read_brick(mnt, name, expect.shape, "uint8"), expect),
                            "a failed write changed the brick")
            st = T.read_status(mnt)
            self.assertTrue(any(name in e["file"] for e in st["errors"]), st["errors"])
            # names that are not bricks of this volume
            for bad in ("z0001_y0000_x0000.raw", "z0064_y0000_x0000.raw", "junk.raw"):
                with self.assertRaises(OSError) as cm:
                    open(os.path.join(mnt, "bricks", bad), "wb").close()
                self.assertIn(cm.exception.errno, (errno.EPERM, errno.ENOENT, errno.EACCES), bad)
            m.umount_checked(self)
        with T.Mount(store, mnt, options=["ro"]):
            self.assertTrue(np.array_equal(self.read_brick(mnt, name, expect.shape, "uint8"), expect))
            with self.assertRaises(OSError):
                with open(os.path.join(mnt, "bricks", name), "wb") as f:
                    f.write(expect.tobytes())


if __name__ == "__main__":
    T.main()
