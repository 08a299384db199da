#!/usr/bin/python3
"""The maintenance tools over every pyramid level, through real mounts.

    /usr/bin/python3 tests/integration/test_maintenance.py --brickfs build/brickfs [-k PATTERN] [--keep]

Needs /dev/fuse and fusermount3 (else every test is skipped, exit status 77).
Volumes are 48 x 96 x 80 uint8 (or 128 deep), blocks 16,32,32, bricks 32,64,64:
level 1 (24 x 48 x 40) fits one brick, so stores have two levels.

  TestLevelBlock     bytes flipped in a level-1 block: levels/1 reads needing it
                     fail with EIO; `fsck` exits 4 naming 1/c/0/0/0 and the block;
                     `fsck --repair` exits 1 saying it rebuilt it from level 0 with
                     no data lost; `fsck --deep` exits 0; levels/1 reads the
                     reference downsampling again through a mount.
  TestCompactLevels  slab 0 copied again leaves dead bytes in level 1's shards
                     too; `compact` reclaims them in every level; info counts
                     every level; both levels still equal the reference.
  TestForeignGroup   STORE/zarr.json rewritten the way zarr-python's v3 API does
                     (a group without attributes.ome), as the v3 draft entry point
                     zarr-python 2.13 writes, and as garbage: `info` and `mount`
                     refuse, naming the file and advising `brickfs fsck --repair`;
                     fsck exits 4, --repair 1 (the foreign document kept in
                     lost+found); the mount works and lists levels/0 and levels/1.
  TestStaleShape     the journal deleted while mounted, then kill -9: 0/zarr.json
                     keeps the shape and slice list of the session's first slice;
                     `fsck` exits 4 naming the stale shape; `--repair` grows the
                     shape, lists the slabs stored, keeps every stored block (no
                     data lost, slices to check listed) and marks it finalized; a
                     read-write mount and unmount then build its pyramid
                     (`fsck --deep` exits 0).
  TestSpool          kill -9 while slabs are parked in STORE/.brickfs/spool/ (a
                     memory budget of 3 slabs, one slice of each of 8 slabs):
                     `fsck` reports every spool file, `--repair` removes them.
  TestInfoMount      `info MOUNT` prints the summary of the store mounted there
                     (JSON only with --json); `status MOUNT` stays the live view.
"""

import errno
import json
import os
import signal
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import brickfs_testlib as T  # noqa: E402
from test_pyramid import downsample  # noqa: E402  (the reference, checked by hand there)

SHAPE = (48, 96, 80)     # z, y, x (uint8)
BLOCK = (16, 32, 32)
BRICK = (32, 64, 64)
GEOMETRY = ["block=%d,%d,%d" % BLOCK, "brick=%d,%d,%d" % BRICK]




def shard_sizes(store):
    """{relative path: size} of every shard file of every level."""
    out = {}
    for level in os.listdir(store):
        if not level.isdigit():
            continue
        for root, _, files in os.walk(os.path.join(store, level, "c")):
            for f in files:
                p = os.path.join(root, f)
                out[os.path.relpath(p, store)] = os.path.getsize(p)
    return out


def mount_keeping_dead_bytes(store, mnt):
    """A Mount, already entered (the caller exits it), whose unmount leaves the
    dead bytes in the shards: `-o nocompact` where the daemon compacts shards
    itself at unmount, else no option (a brickfs without it refuses it as
    unknown, and mounts nothing)."""
    try:
        return T.Mount(store, mnt, ["nocompact"]).__enter__()
    except AssertionError as e:
        if "unknown option" not in str(e):
            raise
    return T.Mount(store, mnt).__enter__()


def kill_mount(m):
    """kill -9 of the daemon, then the mount point is cleared."""
    os.kill(m.pid, signal.SIGKILL)
    assert T.wait_pid_gone(m.pid, 15, m.starttime), "daemon survived kill -9"
    for argv in (["fusermount3", "-u", m.mnt], ["fusermount3", "-u", "-z", m.mnt],
                 ["umount", "-l", m.mnt]):
        if T.is_mounted(m.mnt):
            T.run(argv, timeout=30)


class MaintenanceCase(T.ClassRootCase):
    maxDiff = 4000


    def stack(self, label, vol, zs=None):
        return T.write_stack(self.tmp.sub(label, "src"), vol, lambda z: "s_%03d.tif" % z,
                             encodings=["raw"], zs=zs)

    def ingest(self, label, vol):
        """A new store (mount -o block,brick), every slice copied in, unmounted."""
        store = self.tmp.join(label, "vol.zarr")
        files = self.stack(label, vol)
        with T.Mount(store, self.tmp.join(label, "mnt"), GEOMETRY) as m:
            r = T.cp([files[z] for z in sorted(files)], os.path.join(m.mnt, "z") + "/", timeout=300)
            self.assertTrue(r.ok, r.describe())
            m.umount_checked(self)
        self.files = files
        return store

    def fsck(self, store, *args, expect):
        r = T.brickfs("fsck", *args, store, timeout=120)
        self.assertFalse(r.timed_out, r.describe())
        self.assertEqual(r.returncode, expect, "fsck %s: exit %s, want %s\n%s"
                         % (" ".join(args), r.returncode, expect, r.describe()))
        return r

    def fsck_json(self, store, *args, expect):
        return json.loads(self.fsck(store, "--json", *args, expect=expect).stdout)

    def assert_levels(self, store, vol, what):
        """Level 0 is vol and level 1 its reference downsampling (shard reader)."""
        self.assertEqual(T.check_shard_reader(store, vol, "0"), "", "%s: level 0" % what)
        self.assertEqual(T.check_shard_reader(store, downsample(vol), "1"), "", "%s: level 1" % what)

    def read_level_plane(self, mnt, level, k):
        arr, _ = T.tiff_from_bytes(T.read_bytes(os.path.join(mnt, "levels", str(level), "z",
                                                             T.canonical(k))))
        return arr


class TestLevelBlock(MaintenanceCase):

    def test_flipped_level_block_is_found_and_rebuilt_from_level_0(self):
        vol = T.make_volume(SHAPE, "uint8", "random", seed=21)
        store = self.ingest("lvl", vol)
        self.fsck(store, expect=0)
        level1 = downsample(vol)
        self.assertEqual(level1.shape, (24, 48, 40))

        # Block 0 of level 1's only brick: level-1 voxels z 0-15, y 0-31, x 0-31.
        path, off, nb = T.block_location(store, (0, 0, 0), 0, array="1")
        with open(path, "r+b") as f:
            f.seek(off + nb // 2)
            chunk = bytearray(f.read(8))
            f.seek(off + nb // 2)
            f.write(bytes(b ^ 0x3C for b in chunk))

        with T.Mount(store, self.tmp.join("lvl", "mnt_ro"), ["ro"]) as m:
            with self.assertRaises(OSError) as cm:
                self.read_level_plane(m.mnt, 1, 5)
            self.assertEqual(cm.exception.errno, errno.EIO, cm.exception)
            np.testing.assert_array_equal(self.read_level_plane(m.mnt, 1, 20), level1[20])
            m.umount_checked(self)

        r = self.fsck(store, expect=4)
        self.assertIn("1/c/0/0/0 block 0 (block z,y,x 0,0,0)", r.stdout, r.describe())
        self.assertIn("crc32c mismatch", r.stdout, r.describe())
        j = self.fsck_json(store, expect=4)
        self.assertEqual([(p["kind"], p["level"], p["path"], p["block"]) for p in j["problems"]],
                         [("block", 1, "1/c/0/0/0", 0)], j)
        self.assertEqual([lv["level"] for lv in j["levels"]], [0, 1], j)

        r = self.fsck(store, "--repair", expect=1)
        self.assertIn("rebuilt from level 0", r.stdout, r.describe())
        self.assertIn("no data lost", r.stdout, r.describe())
        self.assertNotIn("LOST", r.stdout, r.describe())
        self.fsck(store, expect=0)
        self.fsck(store, "--deep", expect=0)
        self.assert_levels(store, vol, "after fsck --repair")
        with T.Mount(store, self.tmp.join("lvl", "mnt_ro2"), ["ro"]) as m:
            for k in range(level1.shape[0]):
                np.testing.assert_array_equal(self.read_level_plane(m.mnt, 1, k), level1[k],
                                              "levels/1/z/%d" % k)
            m.umount_checked(self)


class TestCompactLevels(MaintenanceCase):

    def test_compact_reclaims_dead_bytes_of_every_level(self):
        vol = T.make_volume(SHAPE, "uint8", "smooth", seed=22)
        store = self.ingest("cmp", vol)
        # Slab 0 again: level 0's bricks of z 0 and level 1's brick get appends
        # (left as they are: the dead bytes are what compact is tested on).
        m = mount_keeping_dead_bytes(store, self.tmp.join("cmp", "mnt2"))
        try:
            r = T.cp([self.files[z] for z in range(16)], os.path.join(m.mnt, "z") + "/")
            self.assertTrue(r.ok, r.describe())
            m.umount_checked(self)
        finally:
            m.__exit__(None, None, None)
        info = T.brickfs_info_json(store)
        lv = info["levels_stored"]
        self.assertEqual(len(lv), 2, info)
        self.assertGreater(lv[1]["bytes_dead"], 0, lv)
        self.assertEqual(info["bytes_stored"], sum(shard_sizes(store).values()), info)
        self.assertEqual(info["bytes_dead"], lv[0]["bytes_dead"] + lv[1]["bytes_dead"], info)
        before = shard_sizes(store)

        r = T.brickfs("compact", store, timeout=120)
        self.assertEqual(r.returncode, 0, r.describe())
        self.assertIn("compacted 1/c/0/0/0", r.stdout, r.describe())
        after = shard_sizes(store)
        self.assertLess(after["1/c/0/0/0"], before["1/c/0/0/0"], r.describe())
        self.assertEqual(sum(before.values()) - sum(after.values()), info["bytes_dead"], r.describe())
        info2 = T.brickfs_info_json(store)
        self.assertEqual([x["bytes_dead"] for x in info2["levels_stored"]], [0, 0], info2)
        self.assertEqual(info2["bytes_live_blocks"], info["bytes_live_blocks"])
        self.assertEqual([f for _, _, fs in os.walk(store) for f in fs if f.endswith(".tmp")], [])
        self.assert_levels(store, vol, "after compact")
        self.fsck(store, "--deep", expect=0)


class TestForeignGroup(MaintenanceCase):

    FOREIGN = [
        ("zarr-python v3 group", b'{"zarr_format":3,"node_type":"group","attributes":{}}'),
        ("zarr-python 2.13 v3 entry point",
         b'{"zarr_format": "https://purl.org/zarr/spec/protocol/core/3.0",'
         b' "metadata_encoding": "https://purl.org/zarr/spec/protocol/core/3.0",'
         b' "metadata_key_suffix": ".json", "extensions": []}'),
        ("garbage", b"\x00\x01 not json at all"),
    ]

    def test_info_and_mount_refuse_with_advice_and_fsck_rebuilds_the_group(self):
        vol = T.make_volume(SHAPE, "uint8", "smooth", seed=23)
        store = self.ingest("grp", vol)
        group = os.path.join(store, "zarr.json")
        with open(group, "rb") as f:
            good = json.loads(f.read())
        for what, doc in self.FOREIGN:
            with self.subTest(what):
                with open(group, "wb") as f:
                    f.write(doc)
                r = T.brickfs("info", store)
                self.assertNotEqual(r.returncode, 0, r.describe())
                self.assertIn(group, r.stderr, r.describe())
                self.assertIn("brickfs fsck --repair " + store, r.stderr, r.describe())
                mnt = self.tmp.join("grp", "mnt_refused")
                os.makedirs(mnt, exist_ok=True)
                try:
                    r = T.brickfs("mount", store, mnt, "-o", "ro", timeout=30)
                    self.assertNotEqual(r.returncode, 0, r.describe())
                    self.assertIn("brickfs fsck --repair", r.stderr, r.describe())
                    self.assertFalse(T.is_mounted(mnt))
                finally:
                    if T.is_mounted(mnt):
                        T.run(["fusermount3", "-u", mnt], timeout=30)
                with open(group, "rb") as f:
                    self.assertEqual(f.read(), doc, "a refused open changed zarr.json")

                j = self.fsck_json(store, expect=4)
                self.assertEqual([(p["kind"], p["path"]) for p in j["problems"]],
                                 [("metadata", "zarr.json")], j)
                r = self.fsck(store, "--repair", expect=1)
                self.assertIn("rebuilt from the arrays' metadata", r.stdout, r.describe())
                self.fsck(store, expect=0)
                with open(group) as f:
                    fixed = json.load(f)
                self.assertEqual(fixed["attributes"]["ome"], good["attributes"]["ome"])
                r = T.brickfs("info", store)
                self.assertTrue(r.ok, r.describe())
                with T.Mount(store, self.tmp.join("grp", "mnt_ro"), ["ro"]) as m:
                    self.assertEqual(sorted(os.listdir(os.path.join(m.mnt, "levels"))), ["0", "1"])
                    np.testing.assert_array_equal(self.read_level_plane(m.mnt, 1, 3), downsample(vol)[3])
                    m.umount_checked(self)
        kept = sorted(os.listdir(os.path.join(store, ".brickfs", "lost+found")))
        self.assertEqual(len(kept), 2, "the two documents that were not a v3 group are kept: %s" % kept)


class TestStaleShape(MaintenanceCase):

    def test_lost_journal_and_kill_9_grow_the_shape_instead_of_dropping_blocks(self):
        vol = T.make_volume(SHAPE, "uint8", "random", seed=24)
        store = self.tmp.join("stale", "vol.zarr")
        files = self.stack("stale", vol)
        with T.Mount(store, self.tmp.join("stale", "mnt"), GEOMETRY) as m:
            r = T.cp([files[0]], os.path.join(m.mnt, "z") + "/")
            self.assertTrue(r.ok, r.describe())
            T.wait_status(m.mnt, lambda s: s["slices"]["received"] >= 1, what="slice 0 received")
            os.unlink(os.path.join(store, ".brickfs", "journal"))  # an over-eager cleanup
            r = T.cp([files[z] for z in range(1, SHAPE[0])], os.path.join(m.mnt, "z") + "/")
            self.assertTrue(r.ok, r.describe())
            T.wait_status(m.mnt, lambda s: s["slabs"]["flushed"] >= 3, timeout=60,
                          what="the 3 slabs flushed")
            kill_mount(m)
        self.assertFalse(os.path.exists(os.path.join(store, ".brickfs", "journal")))
        with open(os.path.join(store, "0", "zarr.json")) as f:
            recorded = json.load(f)
        self.assertEqual(recorded["shape"], [1, 96, 80], "the shape of the session's first slice")
        sizes = {p: n for p, n in shard_sizes(store).items() if p.startswith("0/")}
        self.assertEqual(T.check_shard_reader(store, vol[:1], "0"), "")

        j = self.fsck_json(store, expect=4)
        shape = [p for p in j["problems"] if p["kind"] == "shape"]
        self.assertEqual(len(shape), 1, j)
        self.assertEqual(shape[0]["check_z"], [[1, 47]], shape)
        self.assertEqual([p for p in j["problems"] if p["kind"] == "block_outside_shape"], [], j)
        j = self.fsck_json(store, "--repair", expect=1)
        self.assertTrue(all(p["repaired"] for p in j["problems"]), j)
        self.assertFalse(any(p["data_lost"] for p in j["problems"]), j)
        self.assertEqual(j["lost_z"], [], j)
        self.assertEqual(j["check_z"], [[0, 47]], j)
        self.assertEqual(j["shape"], list(SHAPE), j)
        self.assertEqual({p: n for p, n in shard_sizes(store).items() if p.startswith("0/")}, sizes,
                         "level-0 shards changed: blocks were dropped")
        self.fsck(store, expect=0)
        self.assertEqual(T.check_shard_reader(store, vol, "0"), "", "a stored block was lost")
        info = T.brickfs_info_json(store)
        self.assertEqual(info["shape"], list(SHAPE), info)
        self.assertEqual(info["missing"], [], "the three slabs were stored whole: %s" % info)
        self.assertIs(info["finalized"], True, "recovered from the shards: %s" % info)
        kinds = sorted(set(p["kind"] for p in j["problems"]))
        self.assertEqual(kinds, ["shape", "slices_present", "stray", "unclean_shutdown"], j)

        # A read-write mount and unmount finalize it and build its pyramid.
        with T.Mount(store, self.tmp.join("stale", "mnt2")) as m:
            np.testing.assert_array_equal(
                T.tiff_from_bytes(T.read_bytes(os.path.join(m.mnt, "z", T.canonical(40))))[0], vol[40])
            m.umount_checked(self)
        self.fsck(store, "--deep", expect=0)
        self.assert_levels(store, vol, "after a mount finalized it")


class TestSpool(MaintenanceCase):

    def test_spool_files_of_a_killed_daemon_are_reported_and_removed(self):
        shape = (128, 96, 80)
        vol = T.make_volume(shape, "uint8", "random", seed=25)
        store = self.tmp.join("spool", "vol.zarr")
        zs = list(range(0, shape[0], BLOCK[0]))  # one slice of each of the 8 slabs
        files = self.stack("spool", vol, zs=zs)
        slab = BLOCK[0] * shape[1] * shape[2]
        with T.Mount(store, self.tmp.join("spool", "mnt"),
                     GEOMETRY + ["mem=%dK" % (3 * slab // 1024)]) as m:
            r = T.cp([files[z] for z in zs], os.path.join(m.mnt, "z") + "/")
            self.assertTrue(r.ok, r.describe())
            st = T.wait_status(m.mnt, lambda s: s["slabs"]["spooled"] >= 1, what="a slab spooled")
            kill_mount(m)
        spool = os.path.join(store, ".brickfs", "spool")
        left = sorted(os.listdir(spool))
        self.assertGreaterEqual(len(left), 1, st["slabs"])

        j = self.fsck_json(store, expect=4)
        reported = sorted(p["path"] for p in j["problems"] if p["kind"] == "spool")
        self.assertEqual(reported, sorted(".brickfs/spool/" + n for n in left), j)
        j = self.fsck_json(store, "--repair", expect=1)
        self.assertTrue(all(p["repaired"] for p in j["problems"]), j)
        self.assertFalse(os.path.isdir(spool) and os.listdir(spool), "spool files left")
        self.fsck(store, expect=0)
        info = T.brickfs_info_json(store)
        # Nothing was committed: every slice received (up to z 112) is missing.
        self.assertEqual(info["missing"], [[0, zs[-1]]], info)


class TestInfoMount(MaintenanceCase):

    def test_info_of_a_mount_point_is_the_summary_of_its_store(self):
        vol = T.make_volume(SHAPE, "uint8", "smooth", seed=26)
        store = self.ingest("info", vol)
        by_store = T.brickfs("info", store)
        self.assertTrue(by_store.ok, by_store.describe())
        with T.Mount(store, self.tmp.join("info", "mnt_ro"), ["ro"]) as m:
            r = T.brickfs("info", m.mnt)
            self.assertTrue(r.ok, r.describe())
            self.assertFalse(r.stdout.lstrip().startswith("{"), "JSON without --json:\n" + r.stdout)
            self.assertIn("store:        " + store + "\n", r.stdout)
            self.assertIn("mounted:      at " + m.mnt, r.stdout)
            for line in by_store.stdout.splitlines():
                self.assertIn(line + "\n", r.stdout, "the store's summary line is missing")
            j = json.loads(T.brickfs("info", "--json", m.mnt).stdout)
            self.assertEqual((j["store"], j["mountpoint"]), (store, m.mnt), j)
            self.assertEqual(j["bytes_stored"], sum(shard_sizes(store).values()), j)
            r = T.brickfs("status", m.mnt)
            self.assertTrue(r.ok and r.stdout.startswith("slices "), r.describe())
            m.umount_checked(self)


if __name__ == "__main__":
    T.main()
