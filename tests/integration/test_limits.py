#!/usr/bin/env python3
"""Hostile or huge metadata (issue 13, findings 1-4): every number read from
disk or from a name is checked before it sizes anything.

  1. zarr.json with shape[0] = 2^40: mount, info and fsck refuse it with a
     message naming the file (no std::bad_alloc, no abort);
  2. zarr.json with Y = X = 2^30: refused the same way (a plane would be 1 EiB);
  3. brickfs create --shape 100000,100000,100000 is a legal volume: info
     answers at once, the mount lists bricks/ and z/ in bounded memory;
  4. a stray slice number far past the volume (scan_16777216.tif) is refused
     with EINVAL naming the limit (max_growth); the volume does not grow.
"""

import json
import os
import sys
import time

import numpy as np
import tifffile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import brickfs_testlib as T  # noqa: E402




class LimitsTest(T.TestRootCase):
    def damaged_store(self, label, edit):
        store = self.root.join(label, "v.zarr")
        os.makedirs(os.path.dirname(store))
        T.brickfs_create(store, (64, 64, 64), "uint8")
        p = os.path.join(store, "0", "zarr.json")
        with open(p) as f:
            doc = json.load(f)
        edit(doc)
        with open(p, "w") as f:
            json.dump(doc, f)
        return store

    def assert_refused(self, store, what):
        mnt = self.root.join(what, "mnt")
        os.makedirs(mnt, exist_ok=True)
        for argv in (["mount", store, mnt], ["info", store], ["fsck", store],
                     ["fsck", "--repair", store]):
            r = T.brickfs(*argv, timeout=30)
            self.assertFalse(r.timed_out, "%s: brickfs %s spun:\n%s" % (what, argv[0], r.describe()))
            self.assertNotIn(r.returncode, (0, 134, -6, -9, 139, -11),
                             "%s: brickfs %s:\n%s" % (what, " ".join(argv), r.describe()))
            self.assertNotIn("bad_alloc", r.stderr + r.stdout)
            self.assertIn("0/zarr.json", r.stderr + r.stdout,
                          "%s: brickfs %s does not name the file:\n%s"
                          % (what, argv[0], r.describe()))
            if T.is_mounted(mnt):
                T.run(["fusermount3", "-u", "-z", mnt])
                self.fail("%s: mounted a store with %s" % (what, what))

    def test_deep_shape_is_refused(self):
        store = self.damaged_store("deep", lambda d: d["shape"].__setitem__(0, 1 << 40))
        self.assert_refused(store, "shape[0] = 2^40")

    def test_huge_planes_are_refused(self):
        def edit(d):
            d["shape"][1] = d["shape"][2] = 1 << 30
        self.assert_refused(self.damaged_store("wide", edit), "Y = X = 2^30")

    def test_a_huge_declared_volume_costs_nothing_to_list(self):
        store = self.root.join("huge.zarr")
        T.brickfs_create(store, (100000, 100000, 100000), "uint8")
        t0 = time.monotonic()
        r = T.brickfs("info", store, timeout=30)
        self.assertTrue(r.ok, r.describe())
        self.assertLess(time.monotonic() - t0, 10, "info took %.1f s" % (time.monotonic() - t0))
        mnt = self.root.join("mnt")
        with T.Mount(store, mnt) as m:
            t0 = time.monotonic()
            names = []
            with os.scandir(os.path.join(mnt, "bricks")) as it:
                for e in it:
                    names.append(e.name)
                    if len(names) >= 5000:
                        break
            self.assertEqual(len(names), 5000)
            self.assertIn("z000000_y000000_x000000.raw", names)
            st = os.stat(os.path.join(mnt, "bricks", "z099840_y099840_x099840.raw"))
            self.assertEqual(st.st_size, 160 * 160 * 160)
            n = sum(1 for _ in os.scandir(os.path.join(mnt, "z")))
            self.assertEqual(n, 100000)
            took = time.monotonic() - t0
            hwm = T.vm_kib(m.pid, "VmHWM")
            sys.stderr.write("[100000^3: listing took %.1f s, daemon VmHWM %d MiB] "
                             % (took, hwm >> 10))
            self.assertLess(hwm, 256 << 10, "daemon VmHWM %d KiB listing a huge volume" % hwm)
            r = T.brickfs("status", mnt, timeout=30)
            self.assertTrue(r.ok, r.describe())
            m.umount_checked(self)

    def test_a_stray_number_does_not_grow_the_volume(self):
        vol = T.make_volume((100, 32, 32), "uint8", "random", seed=1)
        src = self.root.sub("src")
        for z in range(100):
            tifffile.imwrite(os.path.join(src, "scan_%04d.tif" % z), vol[z],
                             photometric="minisblack")
        stray = os.path.join(src, "scan_16777216.tif")
        tifffile.imwrite(stray, vol[0], photometric="minisblack")
        store, mnt = self.root.join("v.zarr"), self.root.join("mnt")
        with T.Mount(store, mnt) as m:
            r = T.cp([os.path.join(src, "scan_%04d.tif" % z) for z in range(100)], mnt + "/z/")
            self.assertTrue(r.ok, r.describe())
            r = T.cp([stray], mnt + "/z/")
            self.assertNotEqual(r.returncode, 0, "the stray slice was accepted")
            self.assertIn("Invalid argument", r.stderr)
            st = T.read_status(mnt)
            self.assertEqual(st["shape"][0], 100)
            self.assertIn("max_growth", json.dumps(st["errors"]))
            self.assertIn("scan_16777216.tif", json.dumps(st["errors"]))
            self.assertEqual(len(os.listdir(mnt + "/z")), 100)
            m.umount_checked(self)
        self.assertEqual(T.check_shard_reader(store, vol), "")


if __name__ == "__main__":
    T.main()
