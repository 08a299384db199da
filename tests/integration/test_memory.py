#!/usr/bin/python3
"""Bounded memory for any arrival order, and a full disk.

    /usr/bin/python3 tests/integration/test_memory.py --brickfs build/brickfs [-k PATTERN] [--keep]

(or env BRICKFS_BIN). Needs /dev/fuse and fusermount3 (else skipped, exit 77); the
disk-full test also needs root (it mounts a tmpfs) and is skipped otherwise.
DESIGN.md section 5 (items 4 and 6) and section 10 ("disk full / I/O error while
flushing").

TestMemoryBudget   a store of 8 slabs (128 x 256 x 256 uint16, block 16,32,32: a
                   slab is 2 MiB), mounted with -o mem= exactly 3 slabs, one `cp`
                   of the whole stack in (i) reverse order, (ii) a random
                   permutation, (iii) stride order (every 8th slice first: the first
                   pass touches every slab). Checks: cp succeeds, every plane right
                   (read through the mount, then shard_reader after umount),
                   status memory.peak <= budget, slabs.spooled_total > 0 for (ii) and
                   (iii). Prints the daemon's VmHWM next to the budget.
TestDiskFull       the store on an 8 MiB tmpfs, 16 MiB of incompressible slices: cp
                   fails with ENOSPC or EIO, the status names the failure; the tmpfs
                   is grown to 256 MiB: the retried flush completes by itself
                   (retried every second), `brickfs umount` succeeds, every shard is
                   valid and the data is all there.
"""

import json
import os
import re
import subprocess
import sys
import time
import unittest

import numpy as np
import tifffile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import brickfs_testlib as T  # noqa: E402


def vm(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


class TestMemoryBudget(unittest.TestCase):
    SHAPE = (128, 256, 256)
    DTYPE = "uint16"
    BLOCK = (16, 32, 32)
    BRICK = (32, 64, 64)

    @classmethod
    def setUpClass(cls):
        T.require_fuse()
        T.brickfs_bin()
        cls.tmp = T.TempRoot()
        cls.addClassCleanup(cls.tmp.cleanup)
        cls.vol = T.make_volume(cls.SHAPE, cls.DTYPE, "smooth", seed=31)
        src = cls.tmp.sub("src")
        cls.files = {}
        for z in range(cls.SHAPE[0]):
            cls.files[z] = os.path.join(src, "plane_%04d.tif" % z)
            tifffile.imwrite(cls.files[z], cls.vol[z], photometric="minisblack")
        cls.slab_bytes = (cls.BLOCK[0] * cls.SHAPE[1] * cls.SHAPE[2]
                          * np.dtype(cls.DTYPE).itemsize)
        cls.budget = 3 * cls.slab_bytes

    def ingest(self, label, order, expect_spool):
        n_slabs = self.SHAPE[0] // self.BLOCK[0]
        self.assertGreaterEqual(n_slabs, 8)
        store = self.tmp.join(label, "vol.zarr")
        os.makedirs(os.path.dirname(store), exist_ok=True)
        T.brickfs_create(store, self.SHAPE, self.DTYPE, block=self.BLOCK, brick=self.BRICK)
        mnt = self.tmp.join(label, "mnt")
        opts = ["mem=%dK" % (self.budget // 1024)]
        with T.Mount(store, mnt, options=opts) as m:
            st = T.read_status(mnt)
            self.assertEqual(st["memory"]["budget"], self.budget, st["memory"])
            if "slab_bytes" in st["memory"]:
                self.assertEqual(st["memory"]["slab_bytes"], self.slab_bytes)
            t0 = time.monotonic()
            r = T.cp([self.files[z] for z in order], os.path.join(mnt, "z") + "/", timeout=300)
            t_cp = time.monotonic() - t0
            self.assertTrue(r.ok, "%s: cp failed:\n%s\n%s" % (label, r.describe(), m.log_tail()))
            st = T.wait_status(mnt, lambda s: s["slabs"]["flushed"] >= n_slabs, timeout=60,
                               what="all %d slabs flushed" % n_slabs)
            self.assertEqual(st["errors"], [], label)
            self.assertEqual(st["slices"]["missing"], [], label)
            mem = st["memory"]
            hwm = vm(m.pid, "VmHWM")
            sys.stderr.write("[%s: budget %.1f MiB (3 slabs of %.1f MiB), status peak %.1f MiB, "
                             "spooled_total %d, daemon VmHWM %.1f MiB, cp %.2fs] "
                             % (label, self.budget / 2**20, self.slab_bytes / 2**20,
                                mem["peak"] / 2**20, st["slabs"]["spooled_total"],
                                (hwm or 0) / 1024, t_cp))
            self.assertLessEqual(mem["peak"], self.budget, "%s: memory.peak over the budget: %s"
                                 % (label, mem))
            self.assertLessEqual(mem["used"], self.budget, mem)
            if expect_spool:
                self.assertGreater(st["slabs"]["spooled_total"], 0,
                                   "%s: 8 slabs in flight with room for 3, yet nothing was "
                                   "spooled: %s" % (label, st["slabs"]))
            # gross sanity: slab buffers + block cache (unused: no reads yet) + handles
            self.assertLess(hwm * 1024, self.budget + (96 << 20),
                            "%s: daemon VmHWM %d KiB for a %d-byte budget" % (label, hwm,
                                                                              self.budget))
            bad = [z for z in range(self.SHAPE[0])
                   if not np.array_equal(tifffile.imread(os.path.join(mnt, "z", T.canonical(z))),
                                         self.vol[z])]
            self.assertEqual(bad, [], "%s: planes differ through the mount" % label)
            spool = os.path.join(store, ".brickfs", "spool")
            m.umount_checked(self)
        if os.path.isdir(spool):
            self.assertEqual(os.listdir(spool), [], "%s: spool files left after umount" % label)
        d = T.check_shard_reader(store, self.vol)
        self.assertEqual(d, "", "%s: %s" % (label, d))
        info = T.brickfs_info_json(store)
        self.assertEqual(info["missing"], [])
        self.assertIs(info["finalized"], True)

    def test_reverse_order(self):
        self.ingest("reverse", list(reversed(range(self.SHAPE[0]))), expect_spool=False)

    def test_random_permutation(self):
        self.ingest("random", T.shuffled(range(self.SHAPE[0]), 12345), expect_spool=True)

    def test_stride_order(self):
        order = [z for k in range(8) for z in range(k, self.SHAPE[0], 8)]
        self.assertEqual(sorted(order), list(range(self.SHAPE[0])))
        self.ingest("stride", order, expect_spool=True)


class TestDiskFull(unittest.TestCase):
    SHAPE = (64, 512, 512)
    BLOCK = (8, 32, 32)
    BRICK = (32, 128, 128)

    @classmethod
    def setUpClass(cls):
        T.require_fuse()
        T.brickfs_bin()
        if os.geteuid() != 0:
            raise unittest.SkipTest("mounting a tmpfs needs root")
        cls.tmp = T.TempRoot()
        cls.addClassCleanup(cls.tmp.cleanup)
        cls.vol = T.make_volume(cls.SHAPE, "uint8", "random", seed=77)  # incompressible
        src = cls.tmp.sub("src")
        cls.files = {}
        for z in range(cls.SHAPE[0]):
            cls.files[z] = os.path.join(src, "full_%d.tif" % z)
            tifffile.imwrite(cls.files[z], cls.vol[z], photometric="minisblack")

    def mount_tmpfs(self, d, size):
        os.makedirs(d, exist_ok=True)
        r = T.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", d], timeout=30)
        if not r.ok:
            raise unittest.SkipTest("cannot mount a tmpfs here:\n" + r.describe())
        self.addCleanup(self.umount_tmpfs, d)

    def umount_tmpfs(self, d):
        if os.path.ismount(d):
            r = T.run(["umount", d], timeout=30)
            if not r.ok:
                T.run(["umount", "-l", d], timeout=30)

    def test_enospc_then_more_space(self):
        n_slabs = self.SHAPE[0] // self.BLOCK[0]
        tfs = self.tmp.join("tfs")
        self.mount_tmpfs(tfs, "8m")
        store = os.path.join(tfs, "vol.zarr")
        T.brickfs_create(store, self.SHAPE, "uint8", block=self.BLOCK, brick=self.BRICK)
        mnt = self.tmp.join("mnt")
        with T.Mount(store, mnt, log_dir=self.tmp.path, umount_timeout=120) as m:
            r = T.cp([self.files[z] for z in range(self.SHAPE[0])],
                     os.path.join(mnt, "z") + "/", timeout=180)
            self.assertFalse(r.ok, "cp of 16 MiB of incompressible slices into a store on an "
                             "8 MiB tmpfs succeeded:\n" + r.describe())
            self.assertRegex(r.stderr, "No space left on device|Input/output error",
                             "cp failed, but not with ENOSPC/EIO:\n" + r.describe())
            failed = {int(x) for x in re.findall(r"full_(\d+)\.tif", r.stderr)}
            sys.stderr.write("[cp: %d slices failed at close: %s] " % (len(failed),
                                                                       sorted(failed)))
            st = T.read_status(mnt)
            msgs = " ".join(e.get("message", "") for e in st["errors"])
            self.assertRegex(msgs, "(?i)no space|ENOSPC|I/O error|Input/output",
                             "status errors do not report the failed flush: %s"
                             % json.dumps(st["errors"][:5], indent=1))
            self.assertLess(st["slabs"]["flushed"], n_slabs, st["slabs"])
            # the disk grows: the flush retried every second now succeeds by itself
            r2 = T.run(["mount", "-o", "remount,size=256m", tfs], timeout=30)
            self.assertTrue(r2.ok, r2.describe())
            with self.subTest("retried flush completes while mounted"):
                T.wait_status(mnt, lambda s: s["slabs"]["flushed"] >= n_slabs
                              and s["slabs"]["buffered"] == 0, timeout=15,
                              what="all %d slabs flushed after the tmpfs grew" % n_slabs)
            t0 = time.monotonic()
            m.umount_checked(self)
            sys.stderr.write("[brickfs umount after the disk grew: %.2fs] "
                             % (time.monotonic() - t0))
        info = T.brickfs_info_json(store)
        missing = set()
        for a, b in info["missing"]:
            missing.update(range(a, b + 1))
        self.assertTrue(missing <= failed, "slices lost although their close() succeeded: %s"
                        % sorted(missing - failed))
        self.assertEqual(missing, set(), "slices missing after the retried flush (their "
                         "close() reported ENOSPC, the status said accepted): %s"
                         % sorted(missing))
        self.assertIs(info["finalized"], True)
        d = T.check_shard_reader(store, self.vol)
        self.assertEqual(d, "", d)
        mnt_ro = self.tmp.join("mnt_ro")
        with T.Mount(store, mnt_ro, options=["ro"], log_dir=self.tmp.path) as m:
            bad = [z for z in range(0, self.SHAPE[0], 5)
                   if not np.array_equal(tifffile.imread(os.path.join(mnt_ro, "z",
                                                                      T.canonical(z))),
                                         self.vol[z])]
            self.assertEqual(bad, [])
            m.umount_checked(self)


def tearDownModule():
    left = T.own_leftover_mounts()
    if left:
        raise AssertionError("mounts left behind: %s" % left)


if __name__ == "__main__":
    T.main()
