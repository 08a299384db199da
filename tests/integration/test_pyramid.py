#!/usr/bin/python3
"""The multiresolution pyramid, built while ingesting (issue 5 part B).

Slices are copied into a real mount in shuffled order; after unmount every
level must equal a reference 2x2x2 downsampling (numpy, written here) of the
level below, for shapes that are not powers of two (odd edges), for mean and
for mode. Levels are read by the independent shard reader and by zarrita, the
group metadata is checked against the OME-Zarr 0.5 schema (ome_check.py), and
levels/L/{z,y,x}/ serve virtual TIFFs of each level (read with tifffile).
Brick writes, slice rewrites and a kill -9 mid-ingest must leave every level
equal to the reference of the final level 0.

    /usr/bin/python3 tests/integration/test_pyramid.py --brickfs build/brickfs
"""
import json
import os
import signal
import sys
import unittest

import numpy as np
import tifffile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import brickfs_testlib as T  # noqa: E402

sys.path.insert(0, T.INTEROP)
import ome_check  # noqa: E402

SHAPE = (70, 90, 110)     # z, y, x: no side a power of two or a multiple of the brick
BLOCK = (8, 16, 16)
BRICK = (16, 32, 32)      # levels: 70x90x110, 35x45x55, 18x23x28, 9x12x14 (fits one brick)
GEOMETRY = ["block=%d,%d,%d" % BLOCK, "brick=%d,%d,%d" % BRICK]


def load_json(path):
    with open(path) as f:
        return json.load(f)


def downsample(a, method="mean"):
    """Reference 2x2x2 downsampling. Window (k,j,i) = a[2k:2k+2, 2j:2j+2, 2i:2i+2]
    clipped at odd edges. mean: round half up, (sum + n//2) // n for unsigned
    integers; mode: the most frequent value of the window, the smallest on ties."""
    out_shape = tuple((s + 1) // 2 for s in a.shape)
    vals, valid = [], []
    for dz in (0, 1):
        for dy in (0, 1):
            for dx in (0, 1):
                sub = a[dz::2, dy::2, dx::2]
                v = np.zeros(out_shape, np.int64)
                m = np.zeros(out_shape, bool)
                v[:sub.shape[0], :sub.shape[1], :sub.shape[2]] = sub
                m[:sub.shape[0], :sub.shape[1], :sub.shape[2]] = True
                vals.append(v)
                valid.append(m)
    vals, valid = np.stack(vals), np.stack(valid)
    if method == "mean":
        s = np.where(valid, vals, 0).sum(axis=0)
        n = valid.sum(axis=0)
        return ((s + n // 2) // n).astype(a.dtype)
    counts = np.zeros(vals.shape, np.int64)
    for j in range(8):
        counts += valid[j] & (vals[j] == vals)
    score = np.where(valid, counts * (1 << 40) - vals, -(1 << 62))
    pick = np.argmax(score, axis=0)
    return np.take_along_axis(vals, pick[None], axis=0)[0].astype(a.dtype)


def pyramid(vol, brick, method="mean"):
    levels = [vol]
    while any(s > b for s, b in zip(levels[-1].shape, brick)):
        levels.append(downsample(levels[-1], method))
    return levels


class DownsampleReferenceTest(unittest.TestCase):
    """The reference itself, on cases worked by hand (so it cannot agree with
    brickfs by sharing a mistake)."""

    def test_mean_rounds_half_up_and_averages_what_exists_at_odd_edges(self):
        a = np.array([[[1, 2, 7]], [[1, 1, 9]]], np.uint8)  # shape (2, 1, 3)
        # window x 0..1: {1,2,1,1} -> 5/4 -> 1; window x 2: {7, 9} -> 8
        np.testing.assert_array_equal(downsample(a), [[[1, 8]]])
        np.testing.assert_array_equal(downsample(np.array([[[1, 2]]], np.uint16)), [[[2]]])
        np.testing.assert_array_equal(downsample(np.array([[[0, 0, 0, 0, 1, 1, 1, 1]]],
                                                          np.uint8).reshape(2, 2, 2)), [[[1]]])

    def test_mode_takes_the_most_frequent_then_the_smallest(self):
        a = np.array([5, 3, 3, 5, 9, 9, 9, 1], np.uint16).reshape(2, 2, 2)
        np.testing.assert_array_equal(downsample(a, "mode"), [[[9]]])
        b = np.array([5, 3, 3, 5, 7, 8, 2, 1], np.uint16).reshape(2, 2, 2)
        np.testing.assert_array_equal(downsample(b, "mode"), [[[3]]])


class PyramidTest(T.TestRootCase):
    def stack(self, vol, name="stack"):
        d = self.root.sub(name)
        T.write_stack(d, vol, lambda z: "img_%04d.tif" % z)
        return [os.path.join(d, "img_%04d.tif" % z) for z in range(vol.shape[0])]

    def ingest(self, store, mnt, files, options=()):
        with T.Mount(store, mnt, GEOMETRY + list(options)) as m:
            r = T.cp(T.shuffled(files, 7), m.mnt + "/z/")
            self.assertTrue(r.ok, r.describe())
            status = T.read_status(m.mnt)
            m.umount_checked(self)
        return status

    def check_store(self, store, vol, method="mean", zarrita=True):
        levels = pyramid(vol, BRICK, method)
        group = load_json(os.path.join(store, "zarr.json"))
        datasets = group["attributes"]["ome"]["multiscales"][0]["datasets"]
        self.assertEqual([d["path"] for d in datasets], [str(i) for i in range(len(levels))])
        problems = ome_check.check_store(store)
        self.assertEqual(problems, [], "\n".join(problems))
        for level, ref in enumerate(levels):
            self.assertEqual(T.check_shard_reader(store, ref, str(level)), "",
                             "level %d differs from the reference %s of level %d"
                             % (level, method, level - 1))
            if zarrita:
                self.assertEqual(T.check_zarrita(store, ref, str(level), self.root.path), "",
                                 "zarrita, level %d" % level)
        self.assertFalse(os.path.exists(os.path.join(store, str(len(levels)))),
                         "a level beyond the pyramid was left in the store")
        return levels

    def test_levels_are_the_reference_mean_and_every_reader_reads_them(self):
        vol = T.make_volume(SHAPE, "uint16", kind="random", seed=11)
        store, mnt = self.root.join("v.zarr"), self.root.join("mnt")
        self.ingest(store, mnt, self.stack(vol), ["voxel_size=2:0.5:0.25", "unit=micrometer"])
        levels = self.check_store(store, vol)
        self.assertEqual(len(levels), 4)
        ms = load_json(os.path.join(store, "zarr.json"))["attributes"]["ome"]["multiscales"][0]
        scale = ms["datasets"][2]["coordinateTransformations"][0]["scale"]
        self.assertEqual(scale, [8.0, 2.0, 1.0])
        self.assertEqual(ms["axes"][0].get("unit"), "micrometer")

        # levels/L/{z,y,x}/ on a read-only mount: every plane, with tifffile.
        with T.Mount(store, mnt, ["ro"]) as m:
            self.assertEqual(sorted(os.listdir(m.mnt + "/levels")), ["0", "1", "2", "3"])
            for level, ref in enumerate(levels):
                for axis, planes in (("z", ref), ("y", ref.transpose(1, 0, 2)),
                                     ("x", ref.transpose(2, 0, 1))):
                    d = os.path.join(m.mnt, "levels", str(level), axis)
                    names = sorted(os.listdir(d))
                    self.assertEqual(len(names), planes.shape[0], d)
                    for i, name in enumerate(names):
                        with tifffile.TiffFile(os.path.join(d, name)) as tf:
                            got = tf.pages[0].asarray()
                            if level == 2 and axis == "z" and i == 0:
                                # Resolution tags: pixels per cm from the level's voxel size.
                                xres = tf.pages[0].tags["XResolution"].value
                                self.assertAlmostEqual(xres[0] / xres[1], 1e4 / (0.25 * 4), places=3)
                                self.assertEqual(tf.pages[0].tags["ResolutionUnit"].value, 3)
                        np.testing.assert_array_equal(got, planes[i], "%s/%s" % (d, name))
            m.umount_checked(self)

    def test_mode_for_label_volumes(self):
        rng = np.random.default_rng(5)
        vol = rng.integers(0, 4, size=SHAPE, dtype=np.uint8) * 60  # few labels: many ties
        store, mnt = self.root.join("labels.zarr"), self.root.join("mnt")
        self.ingest(store, mnt, self.stack(vol), ["downsample=mode"])
        self.check_store(store, vol, "mode", zarrita=False)
        ms = load_json(os.path.join(store, "zarr.json"))["attributes"]["ome"]["multiscales"][0]
        self.assertEqual(ms.get("type"), "mode")

    def test_brick_writes_and_slice_rewrites_update_the_levels(self):
        vol = T.make_volume(SHAPE, "uint16", kind="smooth", seed=2)
        store, mnt = self.root.join("v.zarr"), self.root.join("mnt")
        self.ingest(store, mnt, self.stack(vol))
        new = vol.copy()
        patch = T.make_volume(BRICK, "uint16", kind="random", seed=9)
        z0, y0, x0 = 16, 32, 96          # brick (1, 1, 3); x is clipped at 110
        clipped = np.ascontiguousarray(patch[:, :, :SHAPE[2] - x0])
        new[z0:z0 + 16, y0:y0 + 32, x0:] = clipped
        slice_ = T.make_volume((1,) + SHAPE[1:], "uint16", kind="random", seed=4)[0]
        new[51] = slice_
        redo = self.root.sub("redo")
        T.write_stack(redo, slice_[None], lambda z: "img_0051.tif")
        with T.Mount(store, mnt, GEOMETRY) as m:
            name = [n for n in os.listdir(m.mnt + "/bricks") if n.startswith("z0016_y0032_x0096")][0]
            with open(os.path.join(m.mnt, "bricks", name), "wb") as f:
                f.write(clipped.astype("<u2").tobytes())
            r = T.cp([os.path.join(redo, "img_0051.tif")], m.mnt + "/z/")
            self.assertTrue(r.ok, r.describe())
            m.umount_checked(self)
        self.check_store(store, new, zarrita=False)

    def test_kill_mid_ingest_then_remount_rebuilds_the_levels(self):
        vol = T.make_volume(SHAPE, "uint16", kind="random", seed=21)
        files = self.stack(vol)
        store, mnt = self.root.join("v.zarr"), self.root.join("mnt")
        # A first session ends cleanly with 3 levels; the second is killed.
        self.ingest(store, mnt, files[:32])
        self.assertEqual(T.brickfs_info_json(store)["num_levels"], 3)
        with T.Mount(store, mnt, GEOMETRY) as m:
            r = T.cp(files[32:60], m.mnt + "/z/")
            self.assertTrue(r.ok, r.describe())
            T.wait_status(m.mnt, lambda s: s["slabs"]["flushed"] >= 3, what="3 slabs flushed")
            os.kill(m.pid, signal.SIGKILL)
            T.wait_pid_gone(m.pid, 10)
        # Copy again only what `brickfs info` says is missing, as the README
        # tells users: the levels over the committed slabs then come from the
        # rebuild at remount alone (their pending level rows died with the daemon).
        info = T.brickfs_info_json(store)
        missing = set(range(int(info["shape"][0]), SHAPE[0]))
        for a, b in info["missing"]:
            missing.update(range(int(a), int(b) + 1))
        self.assertLess(len(missing), SHAPE[0], "nothing was committed before the kill")
        with T.Mount(store, mnt, GEOMETRY) as m:
            r = T.cp([files[z] for z in sorted(missing)], m.mnt + "/z/")
            self.assertTrue(r.ok, r.describe())
            m.umount_checked(self)
        self.check_store(store, vol, zarrita=False)

    def test_a_volume_growing_over_sessions_gets_its_new_levels(self):
        # Session 1: 13 slices of 30x30 fit one brick (one level; the level 1
        # fed meanwhile is removed at unmount). Session 2 adds the rest: the
        # levels are built from level 0, and the level-1 plane averaged at the
        # old odd edge (z 12) must be redone with its new partner.
        shape = (70, 30, 30)
        vol = T.make_volume(shape, "uint8", kind="random", seed=8)
        files = self.stack(vol)
        store, mnt = self.root.join("grow.zarr"), self.root.join("mnt")
        self.ingest(store, mnt, files[:13])
        self.assertEqual(T.brickfs_info_json(store)["num_levels"], 1)
        self.assertFalse(os.path.exists(os.path.join(store, "1")))
        self.ingest(store, mnt, files[13:33])
        self.check_store(store, vol[:33], zarrita=False)
        self.ingest(store, mnt, files[33:])
        levels = self.check_store(store, vol, zarrita=False)
        self.assertEqual(len(levels), 4)

    def test_without_pyramid_the_store_has_one_level(self):
        vol = T.make_volume(SHAPE, "uint8", kind="smooth", seed=1)
        store, mnt = self.root.join("v.zarr"), self.root.join("mnt")
        status = self.ingest(store, mnt, self.stack(vol), ["pyramid=0"])
        self.assertEqual(status["pyramid"]["rows_written"], 0)
        self.assertEqual(ome_check.check_store(store), [])
        self.assertFalse(os.path.exists(os.path.join(store, "1")))
        self.assertEqual(T.check_shard_reader(store, vol, "0"), "")


if __name__ == "__main__":
    T.main()
