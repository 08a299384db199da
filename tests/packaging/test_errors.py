#!/usr/bin/python3
"""What a newcomer meets: the mistakes that brickfs mount refuses with a message
saying what to do, and the ways a mount ends (SIGTERM to the daemon,
`fusermount3 -u`) that must still leave a finalized store with the data in it.

Needs root and /dev/fuse (else exit 77).

  /usr/bin/python3 tests/packaging/test_errors.py --brickfs build/brickfs --build-dir build
"""

import json
import os
import re
import shutil
import signal
import tempfile
import unittest

import numpy as np

import pkglib
from pkglib import Mounts, brickfs, mount_entry, run


class NewcomerErrorsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="brickfs-err-")
        self.mounts = Mounts()

    def tearDown(self):
        self.mounts.teardown()
        if not any(m.startswith(self.tmp + "/") for _, m, _ in pkglib.proc_mounts()):
            shutil.rmtree(self.tmp, ignore_errors=True)

    def dirs(self, name, make_mount=True):
        store = os.path.join(self.tmp, name + ".zarr")
        mnt = os.path.join(self.tmp, name)
        if make_mount:
            os.mkdir(mnt)
        self.mounts.add(mnt)
        return store, mnt

    def mount(self, store, mnt, opts="mem=256M"):
        r = brickfs("mount", store, mnt, "-o", opts)
        self.assertTrue(r.ok, str(r))
        self.assertIsNotNone(mount_entry(mnt))
        return self.mounts.note_daemon(mnt)

    def slices(self, n):
        paths, arrays = [], []
        for z in range(n):
            p = os.path.join(self.tmp, "img_%03d.tif" % z)
            arrays.append(pkglib.make_slice(p, z))
            paths.append(p)
        return paths, arrays

    def assert_refused(self, r, *needles):
        self.assertEqual(r.returncode, 2, str(r))
        for n in needles:
            self.assertIn(n, r.stderr, str(r))

    # ------------------------------------------------------ refused mounts

    def test_missing_mount_point_says_mkdir(self):
        store, mnt = self.dirs("nodir", make_mount=False)
        r = brickfs("mount", store, mnt)
        self.assert_refused(r, "does not exist", "mkdir -p " + mnt)
        self.assertIsNone(mount_entry(mnt))

    def test_mounted_mount_point_says_unmount_first(self):
        store, mnt = self.dirs("busy")
        self.mount(store, mnt)
        r = brickfs("mount", os.path.join(self.tmp, "other.zarr"), mnt)
        self.assert_refused(r, "already a mount point", "unmount it first")
        self.assertEqual(mount_entry(mnt)[0], store)
        self.assertTrue(brickfs("umount", mnt, timeout=60).ok)

    def test_store_in_use_names_the_daemon(self):
        store, mnt1 = self.dirs("locked")
        _, mnt2 = self.dirs("locked2")
        pid = self.mount(store, mnt1)
        r = brickfs("mount", store, mnt2)
        self.assert_refused(r, "in use by another brickfs daemon (pid %d)" % pid)
        self.assertIsNone(mount_entry(mnt2))
        self.assertTrue(brickfs("umount", mnt1, timeout=60).ok)

    def test_store_of_a_newer_format_is_refused(self):
        store, mnt = self.dirs("newer")
        r = brickfs("create", store, "--shape", "4,32,32", "--dtype", "uint8")
        self.assertTrue(r.ok, str(r))
        meta_path = os.path.join(store, "0", "zarr.json")
        with open(meta_path) as f:
            meta = json.load(f)
        meta["attributes"]["brickfs"]["format_version"] = 99
        with open(meta_path, "w") as f:
            json.dump(meta, f, indent=2)
        r = brickfs("mount", store, mnt)
        self.assert_refused(r, "written by a newer brickfs", "format 99")
        self.assertIsNone(mount_entry(mnt))
        r = brickfs("info", store)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("written by a newer brickfs", r.stderr)

    def test_mem_below_one_slab_fails_the_copy_and_says_how_much(self):
        store, mnt = self.dirs("tiny")
        self.mount(store, mnt, "mem=1K")
        paths, _ = self.slices(1)
        r = run(["cp", paths[0], os.path.join(mnt, "z") + "/"], timeout=60)
        self.assertNotEqual(r.returncode, 0, "cp into a mount with mem=1K succeeded:\n%s" % r)
        errors = pkglib.read_status(mnt)["errors"]
        self.assertEqual(len(errors), 1, errors)
        self.assertIn(os.path.basename(paths[0]), errors[0]["file"])
        msg = errors[0]["message"]
        self.assertIn("less than one slab", msg)
        m = re.search(r"mount with -o mem=(\d+)M or more", msg)
        self.assertTrue(m, msg)
        slab = 32 * 64 * 96 * 2  # 32 slices of 64x96 uint16
        self.assertGreaterEqual(int(m.group(1)) << 20, slab, msg)
        r = brickfs("status", mnt)
        self.assertTrue(r.ok, str(r))
        self.assertIn("errors 1", r.stdout)
        self.assertTrue(brickfs("umount", mnt, timeout=60).ok)

    # --------------------------------------------------- endings that finalize

    def ingest(self, mnt, n=3):
        paths, arrays = self.slices(n)
        r = run(["cp"] + paths + [os.path.join(mnt, "z") + "/"], timeout=60)
        self.assertTrue(r.ok, str(r))
        return arrays

    def assert_final_with(self, store, arrays):
        info = pkglib.info_json(store)
        self.assertTrue(info["finalized"], info)
        self.assertEqual(info["slices_present"], len(arrays))
        vol, _ = pkglib.read_store(store)
        np.testing.assert_array_equal(vol, np.stack(arrays))

    def test_sigterm_finalizes(self):
        store, mnt = self.dirs("term")
        pid = self.mount(store, mnt)
        arrays = self.ingest(mnt)
        self.assertFalse(pkglib.info_json(store)["finalized"])
        os.kill(pid, signal.SIGTERM)
        self.assertTrue(pkglib.wait_pid_gone(pid, 60), "daemon %d ignored SIGTERM" % pid)
        self.assertIsNone(mount_entry(mnt), "SIGTERM left the mount in place")
        self.assert_final_with(store, arrays)

    def test_fusermount_u_finalizes(self):
        store, mnt = self.dirs("fusermount")
        pid = self.mount(store, mnt)
        arrays = self.ingest(mnt)
        r = run(["fusermount3", "-u", mnt])
        self.assertTrue(r.ok, str(r))
        self.assertTrue(pkglib.wait_pid_gone(pid, 60), "daemon %d still running" % pid)
        self.assert_final_with(store, arrays)


if __name__ == "__main__":
    pkglib.main(require_fuse=True)
