#!/usr/bin/python3
"""Corruption tests of brickfs: damaged shards through a real mount, fsck, compact.

    /usr/bin/python3 tests/integration/test_corruption.py --brickfs build/brickfs [-k PATTERN] [--keep]

Needs /dev/fuse and fusermount3 (else every test is skipped, exit status 77).

What a user meets when bytes on disk go bad (DESIGN.md section 10), and what
each test checks:
  TestFlippedBlock   a volume ingested through a mount; bytes flipped in one block
                     of one shard; a read-only remount: reads that need that block
                     fail with EIO, every other plane reads right, the daemon
                     survives and its status names the brick; `brickfs fsck` exits
                     4 naming the brick and block, `fsck --repair` exits 1 (the
                     block is LOST and reads as 0), `fsck` exits 0; copying the
                     slab's slices again restores the data; `brickfs compact`
                     shrinks the store and the data stays the same.
  TestTornAppend     garbage appended to a shard (an append torn by a crash): the
                     mount reports EIO for that brick, fsck names it, fsck
                     --repair cuts it back and nothing is lost.
  TestKilledDaemon   kill -9 of the daemon mid-ingest plus torn shard tails and a cut
                     journal record: fsck exits 4 naming them, fsck --repair recovers
                     the store (shards cut back, journal emptied), fsck exits 0, the
                     committed slabs read back and the rest is listed missing.
  TestInUse          fsck and compact refuse a store mounted read-write (exit 8); an
                     unreadable 0/zarr.json or a missing store is exit 8 too.
"""

import errno
import json
import os
import signal
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import brickfs_testlib as T  # noqa: E402

SHAPE = (48, 96, 80)     # z, y, x (uint8)
BLOCK = (16, 32, 32)
BRICK = (32, 64, 64)     # 2 x 2 x 2 bricks of 2 x 2 x 2 blocks






class CorruptionCase(T.ClassRootCase):
    maxDiff = 4000


    def ingest(self, label, vol):
        """brickfs create + mount + one cp of every slice + umount; returns the store."""
        store = self.tmp.join(label, "vol.zarr")
        T.brickfs_create(store, vol.shape, vol.dtype.name, block=BLOCK, brick=BRICK)
        src = self.tmp.sub(label, "src")
        files = T.write_stack(src, vol, lambda z: "slice_%03d.tif" % z, encodings=["raw", "zlib"])
        self.files = files
        with T.Mount(store, self.tmp.join(label, "mnt")) as m:
            r = T.cp([files[z] for z in sorted(files)], os.path.join(m.mnt, "z") + "/", timeout=300)
            self.assertTrue(r.ok, r.describe())
            m.umount_checked(self)
        return store

    def fsck(self, store, *args, expect):
        r = T.brickfs("fsck", *args, store, timeout=120)
        self.assertFalse(r.timed_out, r.describe())
        self.assertEqual(r.returncode, expect, "fsck %s: exit %s, want %s\n%s"
                         % (" ".join(args), r.returncode, expect, r.describe()))
        return r

    def assert_store_equals(self, store, expected, what):
        d = T.check_shard_reader(store, expected)
        self.assertEqual(d, "", "%s: %s" % (what, d))

    def read_plane(self, mnt, axis, i):
        arr, _ = T.tiff_from_bytes(T.read_bytes(os.path.join(mnt, axis, T.canonical(i))))
        return arr


class TestFlippedBlock(CorruptionCase):

    def test_flipped_block_eio_fsck_repair_recopy_compact(self):
        vol = T.make_volume(SHAPE, "uint8", "random", seed=5)
        store = self.ingest("flip", vol)
        self.fsck(store, expect=0)

        # Block 0 of brick 0/0/0 = block (0,0,0): voxels z 0-15, y 0-31, x 0-31.
        path, off, nb = T.block_location(store, (0, 0, 0), 0)
        with open(path, "r+b") as f:
            f.seek(off + nb // 2)
            chunk = bytearray(f.read(16))
            f.seek(off + nb // 2)
            f.write(bytes(b ^ 0x5A for b in chunk))

        mnt = self.tmp.join("flip", "mnt_ro")
        with T.Mount(store, mnt, options=["ro"]) as m:
            for axis, i in (("z", 5), ("z", 15), ("y", 0), ("y", 31), ("x", 7)):
                with self.assertRaises(OSError, msg="%s/%d needs the corrupt block" % (axis, i)) as cm:
                    T.read_bytes(os.path.join(mnt, axis, T.canonical(i)))
                self.assertEqual(cm.exception.errno, errno.EIO, "%s/%d: %s" % (axis, i, cm.exception))
            for z in (16, 20, 47):
                np.testing.assert_array_equal(self.read_plane(mnt, "z", z), vol[z], "z/%d" % z)
            for y in (32, 40, 95):
                np.testing.assert_array_equal(self.read_plane(mnt, "y", y), vol[:, y, :], "y/%d" % y)
            for x in (32, 50, 79):
                np.testing.assert_array_equal(self.read_plane(mnt, "x", x), vol[:, :, x], "x/%d" % x)
            self.assertTrue(T.pid_alive(m.pid, m.starttime), "the daemon died on a corrupt block")
            st = T.read_status(mnt)
            msgs = [e.get("message", "") for e in st["errors"]]
            self.assertTrue(any("0/c/0/0/0" in s and "block 0" in s for s in msgs),
                            "status errors do not name brick 0/c/0/0/0 block 0: %s" % msgs)
            # The same read fails again (no garbage cached), and the good ones still work.
            with self.assertRaises(OSError):
                T.read_bytes(os.path.join(mnt, "z", T.canonical(5)))
            np.testing.assert_array_equal(self.read_plane(mnt, "z", 30), vol[30])
            m.umount_checked(self)

        r = self.fsck(store, expect=4)
        self.assertIn("0/c/0/0/0 block 0 (block z,y,x 0,0,0)", r.stdout, r.describe())
        self.assertIn("crc32c mismatch", r.stdout, r.describe())
        j = json.loads(self.fsck(store, "--json", expect=4).stdout)
        self.assertEqual(len(j["problems"]), 1, j)
        p = j["problems"][0]
        self.assertEqual((p["kind"], p["path"], p["block"], p["block_zyx"]),
                         ("block", "0/c/0/0/0", 0, [0, 0, 0]), p)
        self.assertFalse(p["repaired"])

        r = self.fsck(store, "--repair", expect=1)
        self.assertIn("LOST", r.stdout, r.describe())
        self.assertIn("copy slices z 0-15 again", r.stdout, r.describe())
        self.fsck(store, expect=0)
        lost = vol.copy()
        lost[0:16, 0:32, 0:32] = 0
        self.assert_store_equals(store, lost, "after fsck --repair (block 0,0,0 is fill)")

        # Copying slab 0 again restores the block; it leaves dead bytes behind.
        # nocompact: the dead bytes the re-copy leaves are what `compact` is tested on
        with T.Mount(store, self.tmp.join("flip", "mnt2"), options=["nocompact"]) as m:
            r = T.cp([self.files[z] for z in range(16)], os.path.join(m.mnt, "z") + "/")
            self.assertTrue(r.ok, r.describe())
            m.umount_checked(self)
        self.assert_store_equals(store, vol, "after copying slab 0 again")
        self.fsck(store, expect=0)
        info = T.brickfs_info_json(store)
        self.assertGreater(info["bytes_dead"], 0, info)
        before = T.store_bytes(store)
        self.assertEqual(info["bytes_stored"], before)

        r = T.brickfs("compact", store, timeout=120)
        self.assertEqual(r.returncode, 0, r.describe())
        self.assertIn("reclaimed", r.stdout, r.describe())
        after = T.store_bytes(store)
        self.assertLess(after, before, r.describe())
        self.assertEqual(before - after, info["bytes_dead"], r.describe())
        info2 = T.brickfs_info_json(store)
        self.assertEqual(info2["bytes_dead"], 0, info2)
        self.assertEqual(info2["bytes_live_blocks"], info["bytes_live_blocks"])
        self.assertEqual([f for _, _, fs in os.walk(store) for f in fs if f.endswith(".tmp")], [])
        self.assert_store_equals(store, vol, "after compact")
        self.fsck(store, expect=0)
        with T.Mount(store, self.tmp.join("flip", "mnt3"), options=["ro"]) as m:
            np.testing.assert_array_equal(self.read_plane(m.mnt, "z", 5), vol[5])
            np.testing.assert_array_equal(self.read_plane(m.mnt, "x", 7), vol[:, :, 7])
            m.umount_checked(self)


class TestTornAppend(CorruptionCase):

    def test_garbage_appended_is_cut_back_without_loss(self):
        vol = T.make_volume(SHAPE, "uint8", "smooth", seed=6)
        store = self.ingest("torn", vol)
        meta = T.shard_reader.meta_of(store)
        path = meta.shard_path((1, 1, 0))
        size = os.path.getsize(path)
        with open(path, "ab") as f:
            f.write(os.urandom(5000))

        with T.Mount(store, self.tmp.join("torn", "mnt_ro"), options=["ro"]) as m:
            with self.assertRaises(OSError) as cm:
                T.read_bytes(os.path.join(m.mnt, "z", T.canonical(40)))  # brick z 1, all y, x
            self.assertEqual(cm.exception.errno, errno.EIO)
            np.testing.assert_array_equal(self.read_plane(m.mnt, "z", 10), vol[10])
            self.assertTrue(T.pid_alive(m.pid, m.starttime))
            m.umount_checked(self)

        r = self.fsck(store, expect=4)
        self.assertIn("0/c/1/1/0", r.stdout, r.describe())
        self.assertIn("5000 bytes before the end", r.stdout, r.describe())
        self.assertEqual(os.path.getsize(path), size + 5000, "a check must not modify the store")
        r = self.fsck(store, "--repair", expect=1)
        self.assertIn("no block data was lost", r.stdout, r.describe())
        self.assertEqual(os.path.getsize(path), size)
        self.assertTrue(os.path.isfile(os.path.join(store, ".brickfs", "lost+found",
                                                    "0_c_1_1_0.bytes-%d-%d" % (size, size + 5000))))
        self.fsck(store, expect=0)
        self.assert_store_equals(store, vol, "after cutting the torn append")


class TestKilledDaemon(CorruptionCase):
    """The read-only mount of a store whose daemon died asks for `fsck --repair`:
    it recovers the store as a read-write mount would."""

    def test_fsck_repair_recovers_after_kill_9(self):
        vol = T.make_volume(SHAPE, "uint8", "random", seed=8)
        store = self.tmp.join("kill", "vol.zarr")
        T.brickfs_create(store, vol.shape, "uint8", block=BLOCK, brick=BRICK)
        src = self.tmp.sub("kill", "src")
        files = T.write_stack(src, vol, lambda z: "k%03d.tif" % z, encodings=["raw"],
                              zs=range(40))
        mnt = self.tmp.join("kill", "mnt")
        with T.Mount(store, mnt) as m:
            r = T.cp([files[z] for z in range(40)], os.path.join(mnt, "z") + "/")
            self.assertTrue(r.ok, r.describe())
            T.wait_status(mnt, lambda s: s["slabs"]["flushed"] >= 2, timeout=60,
                          what="slabs 0 and 1 flushed")
            os.kill(m.pid, signal.SIGKILL)
            self.assertTrue(T.wait_pid_gone(m.pid, 15, m.starttime), "daemon survived kill -9")
            for argv in (["fusermount3", "-u", mnt], ["fusermount3", "-u", "-z", mnt],
                         ["umount", "-l", mnt]):
                if T.is_mounted(mnt):
                    T.run(argv, timeout=30)
        # What a crash mid-append also leaves: bytes after every shard's committed
        # length, and a cut journal record.
        sizes = {}
        for root, _, fs in os.walk(os.path.join(store, "0", "c")):
            for fn in fs:
                p = os.path.join(root, fn)
                sizes[p] = os.path.getsize(p)
                with open(p, "ab") as f:
                    f.write(os.urandom(777))
        self.assertTrue(sizes, "no shard written before the kill")
        with open(os.path.join(store, ".brickfs", "journal"), "ab") as f:
            f.write(b"\x40\x00\x00\x00\x12\x34")

        j = json.loads(self.fsck(store, "--json", expect=4).stdout)
        kinds = sorted(set(p["kind"] for p in j["problems"]))
        # Level 1 was being built, but 0/zarr.json (written when the session
        # started) lists level 0 alone: the level is not part of the store yet.
        self.assertEqual(kinds, ["journal_torn", "stray", "torn_append", "unclean_shutdown"], j)
        self.assertEqual([p["path"] for p in j["problems"] if p["kind"] == "stray"], ["1"], j)
        self.assertEqual(sum(p["kind"] == "torn_append" for p in j["problems"]), len(sizes), j)
        j = json.loads(self.fsck(store, "--repair", "--json", expect=1).stdout)
        self.assertTrue(all(p["repaired"] for p in j["problems"]), j)
        for p, n in sizes.items():
            self.assertEqual(os.path.getsize(p), n, "%s not cut back to its committed length" % p)
        self.assertEqual(os.path.getsize(os.path.join(store, ".brickfs", "journal")), 0)
        self.fsck(store, expect=0)

        expected = vol.copy()
        expected[32:] = 0  # slab 2 (z 32-47) was never complete: nothing committed
        self.assert_store_equals(store, expected, "after fsck --repair of a killed daemon's store")
        info = T.brickfs_info_json(store)
        self.assertEqual([list(r) for r in info["missing"]], [[32, 47]], info)
        with T.Mount(store, self.tmp.join("kill", "mnt_ro"), options=["ro"]) as m:
            np.testing.assert_array_equal(self.read_plane(m.mnt, "z", 31), vol[31])
            np.testing.assert_array_equal(self.read_plane(m.mnt, "y", 50), expected[:, 50, :])
            m.umount_checked(self)


class TestInUse(CorruptionCase):

    def test_fsck_and_compact_refuse_a_mounted_store(self):
        vol = T.make_volume((16, 40, 40), "uint8", "random", seed=7)
        store = self.tmp.join("busy", "vol.zarr")
        src = self.tmp.sub("busy", "src")
        files = T.write_stack(src, vol, lambda z: "s%02d.tif" % z, encodings=["raw"])
        with T.Mount(store, self.tmp.join("busy", "mnt")) as m:
            r = T.cp([files[z] for z in sorted(files)], os.path.join(m.mnt, "z") + "/")
            self.assertTrue(r.ok, r.describe())
            for args in (["fsck"], ["fsck", "--repair"], ["compact"]):
                r = T.brickfs(*(args + [store]))
                self.assertEqual(r.returncode, 8, r.describe())
                self.assertIn("in use by a brickfs daemon", r.stderr, r.describe())
            m.umount_checked(self)
        self.fsck(store, expect=0)

        # Metadata that cannot be read: fsck cannot run (exit 8) and says why.
        with open(os.path.join(store, "0", "zarr.json"), "r+b") as f:
            f.truncate(40)
        r = self.fsck(store, expect=8)
        self.assertIn("0/zarr.json", r.stderr, r.describe())
        r = self.fsck(store + "-missing", expect=8)
        self.assertIn("does not exist", r.stderr, r.describe())


if __name__ == "__main__":
    T.main()
