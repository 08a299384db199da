#!/usr/bin/python3
"""The mount helper for real: `mount -t brickfs` (through /sbin/mount.brickfs),
`mount -t fuse.brickfs` (through fuse3's mount.fuse3, which runs `brickfs STORE
MOUNT -o OPTS`), and fstab lines of both forms (`mount --fstab FILE`, so
/etc/fstab is never touched). Each mount must be ready when mount(8) returns,
show in /proc/mounts as STORE on MOUNT type fuse.brickfs, take slices with cp,
and leave a finalized store after `brickfs umount`.

Needs root and /dev/fuse (else exit 77). For the duration of a test it creates
/usr/sbin/mount.brickfs and /usr/local/sbin/brickfs as symlinks to the binary
under test when they do not exist, and removes them afterwards. mount(8) drops
PATH before running helpers and mount.fuse3 then runs `brickfs` through /bin/sh
with its default PATH, which starts with /usr/local/sbin: hence that link.

  /usr/bin/python3 tests/packaging/test_mount_helper.py --brickfs build/brickfs --build-dir build
"""

import os
import shutil
import tempfile
import unittest

import numpy as np

import pkglib
from pkglib import ARGS, GlobalLink, Mounts, brickfs, mount_entry, run

HELPER = "/usr/sbin/mount.brickfs"   # /sbin/mount.brickfs on usrmerged Debian 12
PATH_LINK = "/usr/local/sbin/brickfs"


class MountHelperTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="brickfs-mnt-")
        self.mounts = Mounts()
        self.links = []
        self.slices = []
        self.arrays = []
        for z in range(2):
            path = os.path.join(self.tmp, "scan_%04d.tif" % z)
            self.arrays.append(pkglib.make_slice(path, z))
            self.slices.append(path)

    def tearDown(self):
        try:
            self.mounts.teardown()
        finally:
            for link in self.links:
                link.remove()
            if not any(m.startswith(self.tmp + "/") for _, m, _ in pkglib.proc_mounts()):
                shutil.rmtree(self.tmp, ignore_errors=True)

    # ---------------------------------------------------------------- helpers

    def link(self, path):
        link = GlobalLink(path, ARGS.brickfs)
        why = link.ensure()
        if why:
            self.skipTest(why)
        self.links.append(link)

    def dirs(self, name):
        store = os.path.join(self.tmp, name + ".zarr")
        mnt = os.path.join(self.tmp, name)
        os.mkdir(mnt)
        self.mounts.add(mnt)
        return store, mnt

    def assert_ready(self, store, mnt, ran):
        """Right after mount(8) returned: mounted, typed, serving."""
        self.assertTrue(ran.ok, str(ran))
        entry = mount_entry(mnt)
        self.assertIsNotNone(entry, "%s is not in /proc/mounts after mount returned\n%s" % (mnt, ran))
        self.assertEqual(entry[0], store, "source in /proc/mounts")
        self.assertEqual(entry[2], "fuse.brickfs", "type in /proc/mounts")
        status = pkglib.read_status(mnt)
        self.assertEqual(status["store"], store)
        self.mounts.note_daemon(mnt)
        return status["pid"]

    def ingest_and_unmount(self, store, mnt, pid):
        r = run(["cp"] + self.slices + [os.path.join(mnt, "z") + "/"], timeout=60)
        self.assertTrue(r.ok, str(r))
        status = pkglib.read_status(mnt)
        self.assertEqual(status["errors"], [])
        self.assertEqual(status["slices"]["present"], len(self.slices))
        r = brickfs("umount", mnt, timeout=60)
        self.assertTrue(r.ok, str(r))
        self.assertIsNone(mount_entry(mnt))
        self.assertFalse(pkglib.pid_alive(pid), "daemon %d still alive after brickfs umount" % pid)
        info = pkglib.info_json(store)
        self.assertTrue(info["finalized"], info)
        self.assertEqual(info["slices_present"], len(self.slices))
        self.assertEqual(info["missing"], [])
        vol, _ = pkglib.read_store(store)
        np.testing.assert_array_equal(vol, np.stack(self.arrays))

    # ------------------------------------------------------------------ tests

    def test_mount_t_brickfs(self):
        self.link(HELPER)
        store, mnt = self.dirs("helper")
        r = run(["mount", "-t", "brickfs", store, mnt, "-o", "mem=256M,noauto,x-test"])
        pid = self.assert_ready(store, mnt, r)
        self.ingest_and_unmount(store, mnt, pid)

    def test_mount_t_fuse_brickfs(self):
        if not (os.path.exists("/sbin/mount.fuse3") or os.path.exists("/sbin/mount.fuse")):
            self.skipTest("mount.fuse3 is missing (Debian package fuse3)")
        self.link(PATH_LINK)
        store, mnt = self.dirs("fuse")
        env = dict(os.environ, PATH=os.path.dirname(ARGS.brickfs) + ":" + os.environ.get("PATH", ""))
        r = run(["mount", "-t", "fuse.brickfs", store, mnt, "-o", "mem=256M,noauto,x-test"],
                env=env)
        pid = self.assert_ready(store, mnt, r)
        self.ingest_and_unmount(store, mnt, pid)

    def test_mount_t_fuse_brickfs_new_store_by_relative_name(self):
        # mount.fuse3 passes the source as given: `brickfs rel.zarr /abs/mnt -o ...`.
        if not (os.path.exists("/sbin/mount.fuse3") or os.path.exists("/sbin/mount.fuse")):
            self.skipTest("mount.fuse3 is missing (Debian package fuse3)")
        self.link(PATH_LINK)
        store, mnt = self.dirs("relative")
        r = run(["mount", "-t", "fuse.brickfs", os.path.basename(store), mnt], cwd=self.tmp)
        pid = self.assert_ready(store, mnt, r)
        self.ingest_and_unmount(store, mnt, pid)

    def test_fstab_lines_of_both_forms(self):
        self.link(HELPER)
        if os.path.exists("/sbin/mount.fuse3") or os.path.exists("/sbin/mount.fuse"):
            self.link(PATH_LINK)
            forms = ["brickfs", "fuse.brickfs"]
        else:
            forms = ["brickfs"]
        fstab = os.path.join(self.tmp, "fstab")
        entries = []
        with open(fstab, "w") as f:
            f.write("# written by test_mount_helper.py\n")
            for i, typ in enumerate(forms):
                store, mnt = self.dirs("fstab%d" % i)
                f.write("%s %s %s defaults,noauto,mem=256M 0 0\n" % (store, mnt, typ))
                entries.append((store, mnt))
        for store, mnt in entries:
            r = run(["mount", "--fstab", fstab, mnt])
            pid = self.assert_ready(store, mnt, r)
            self.ingest_and_unmount(store, mnt, pid)

    def test_helper_called_as_mount8_does(self):
        # mount.brickfs SPEC DIR [-sfnv] [-o OPTS], through a private symlink.
        helper = os.path.join(self.tmp, "mount.brickfs")
        os.symlink(ARGS.brickfs, helper)
        store, mnt = self.dirs("direct")
        r = run([helper, store, mnt, "-f", "-o", "mem=64M"], timeout=10)
        self.assertTrue(r.ok, "mount -f (fake) must not mount:\n%s" % r)
        self.assertIsNone(mount_entry(mnt))
        r = run([helper, store, mnt, "-s", "-n", "-v", "-o", "mem=64M,rw"])
        pid = self.assert_ready(store, mnt, r)
        self.ingest_and_unmount(store, mnt, pid)

    def test_fake_mount(self):
        self.link(HELPER)
        store, mnt = self.dirs("fake")
        r = run(["mount", "-f", "-t", "brickfs", store, mnt], timeout=10)
        self.assertTrue(r.ok, str(r))
        self.assertIsNone(mount_entry(mnt))

    def test_mistyped_command_is_not_a_mount(self):
        _, mnt = self.dirs("typo")
        r = run([ARGS.brickfs, "stauts", mnt], cwd=self.tmp)
        self.assertEqual(r.returncode, 2, str(r))
        self.assertIn('unknown command "stauts"', r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "stauts")))
        self.assertIsNone(mount_entry(mnt))


if __name__ == "__main__":
    pkglib.main(require_fuse=True)
