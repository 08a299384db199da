#!/usr/bin/env python3
"""Any writer, any tool (issue 12): the writers people actually have must never
corrupt, lose or bloat a volume.

Each test is one finding of the red-team pass on 34fe815, on a real mount:
  1. plain `rsync -a` (temporary names, then rename), three times, then over a
     remount: every slice at the z of its final name, and a re-run sends nothing;
  2. two writers of one z: one whole version (the last to close), never a mix;
  3. a brick written through bricks/ racing a re-copy of a slice in its z range:
     ordered, never old data;
  4. a writer that leaves holes (out of order, killed; or ftruncate-extended):
     rejected, named in the status, nothing stored;
  5. write(); fsync() == 0; kill -9: the slice survives;
  6. re-copying a finished stack: <= 1.1x the fresh size; 12 single-slice
     rewrites: <= 1.2x;
  7. memory: a write or truncate past the largest possible slice is EFBIG without
     allocating; thousands of open handles stay inside mem=;
  8. O_RDWR on an existing slice reads the virtual TIFF; tiffset edits work;
  9. pyramid levels equal the reduction of level 0 after a history of sessions,
     and level planes read right while mounted.

Run: /usr/bin/python3 tests/integration/test_writers.py [--brickfs PATH]
"""

import os
import resource
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import tifffile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import brickfs_testlib as T  # noqa: E402
from test_pyramid import downsample, pyramid  # noqa: E402  (the hand-checked reference)






def tiff_bytes(plane, **kw):
    import io
    b = io.BytesIO()
    tifffile.imwrite(b, plane, photometric="minisblack", **kw)
    return b.getvalue()


def kill9(testcase, m):
    testcase.assertIsNotNone(m.pid)
    os.kill(m.pid, signal.SIGKILL)
    testcase.assertTrue(T.wait_pid_gone(m.pid, 15, m.starttime), "daemon survived kill -9")
    for argv in (["fusermount3", "-u", m.mnt], ["fusermount3", "-u", "-z", m.mnt],
                 ["umount", "-l", m.mnt]):
        if not T.is_mounted(m.mnt):
            break
        T.run(argv, timeout=30)
    m.umount_result = T.Ran([], 0, "", "", 0)  # nothing left for the teardown to unmount


class WritersCase(T.TestRootCase):
    maxDiff = 4000


    def stack(self, vol, name="stack", fmt="scan_%04d.tif", zs=None):
        d = self.root.sub(name)
        for z in (range(vol.shape[0]) if zs is None else zs):
            tifffile.imwrite(os.path.join(d, fmt % z), vol[z], photometric="minisblack")
        return d

    def assertStore(self, store, expected, what, level="0"):
        d = T.check_shard_reader(store, expected, level)
        self.assertEqual(d, "", "%s: %s" % (what, d))

    def plane(self, mnt, z, axis="z", level=None):
        base = mnt if level is None else os.path.join(mnt, "levels", str(level))
        return tifffile.imread(os.path.join(base, axis, T.canonical(z)))


# ----------------------------------------------------------------- 1. rsync ----


class TestRsync(WritersCase):
    SHAPE = (40, 64, 64)

    def test_plain_rsync_puts_every_slice_at_the_z_of_its_final_name(self):
        if not T.run(["which", "rsync"]).ok:
            self.skipTest("rsync is not installed (Debian package rsync)")
        vol = T.make_volume(self.SHAPE, "uint16", "random", seed=1)
        src = self.stack(vol)
        store, mnt = self.root.join("v.zarr"), self.root.join("mnt")
        with T.Mount(store, mnt) as m:
            for run in range(3):
                r = T.run(["rsync", "-a", "--stats", src + "/", mnt + "/z/"], timeout=120)
                self.assertTrue(r.ok, "rsync run %d:\n%s\n%s" % (run, r.describe(), m.log_tail()))
                st = T.read_status(mnt)
                self.assertEqual(st["shape"], list(self.SHAPE), "after rsync run %d" % run)
                self.assertEqual(st["slices"]["missing"], [])
                self.assertEqual(st["errors"], [], "rsync run %d" % run)
                if run > 0:
                    self.assertIn("Number of regular files transferred: 0", r.stdout,
                                  "a second rsync -a over an unchanged stack must send nothing")
            self.assertNotIn(".scan_0013.tif", "".join(os.listdir(mnt + "/z")))
            for z in (0, 13, 39):
                np.testing.assert_array_equal(self.plane(mnt, z), vol[z])
            # A changed source file is sent again and lands at its z.
            vol[7] = 1234
            tifffile.imwrite(os.path.join(src, "scan_0007.tif"), vol[7], photometric="minisblack")
            os.utime(os.path.join(src, "scan_0007.tif"), (1e9, 1e9))
            r = T.run(["rsync", "-a", "--stats", src + "/", mnt + "/z/"], timeout=120)
            self.assertTrue(r.ok, r.describe())
            self.assertIn("Number of regular files transferred: 1", r.stdout)
            np.testing.assert_array_equal(self.plane(mnt, 7), vol[7])
            self.assertEqual(int(os.stat(mnt + "/z/scan_0007.tif").st_mtime), 1000000000)
            m.umount_checked(self)
        self.assertStore(store, vol, "after three rsyncs")
        # The writers' sizes and times survive a remount: rsync still sends nothing.
        with T.Mount(store, mnt) as m:
            r = T.run(["rsync", "-a", "--stats", src + "/", mnt + "/z/"], timeout=120)
            self.assertTrue(r.ok, r.describe())
            self.assertIn("Number of regular files transferred: 0", r.stdout,
                          "after a remount, rsync -a re-sent files:\n" + r.stdout)
            m.umount_checked(self)

    def test_write_then_rename_and_staged_names(self):
        vol = T.make_volume((8, 32, 32), "uint8", "random", seed=2)
        store, mnt = self.root.join("v.zarr"), self.root.join("mnt")
        with T.Mount(store, mnt) as m:
            z = mnt + "/z/"
            # Temporary names of rsync, editors, install, tempfile: staged, not ingested.
            for z_, tmp in ((0, ".scan_0000.tif.Xa12Bc"), (1, "scan_0001.tif.tmp"),
                            (2, "scan_0002.tif.part"), (3, "scan_0003.tif~"), (4, "tmpa1b2c3d4")):
                before = T.read_status(mnt)["slices"]["received"]
                with open(z + tmp, "wb") as f:
                    f.write(tiff_bytes(vol[z_]))
                st = T.read_status(mnt)
                self.assertEqual(st["slices"]["received"], before, "staged %s was ingested" % tmp)
                self.assertIn(tmp, os.listdir(z))
                self.assertEqual(os.path.getsize(z + tmp), len(tiff_bytes(vol[z_])))
                os.rename(z + tmp, z + "scan_%04d.tif" % z_)
                np.testing.assert_array_equal(self.plane(mnt, z_), vol[z_])
            # Rename over an existing slice replaces it atomically.
            with open(z + ".new.tif", "wb") as f:
                f.write(tiff_bytes(vol[5]))
            np.testing.assert_array_equal(self.plane(mnt, 1), vol[1])
            os.rename(z + ".new.tif", z + "scan_0001.tif")
            np.testing.assert_array_equal(self.plane(mnt, 1), vol[5])
            # A staged file can be removed; one never renamed is dropped at unmount.
            with open(z + ".gone.tif.XYZ", "wb") as f:
                f.write(tiff_bytes(vol[6]))
            os.unlink(z + ".gone.tif.XYZ")
            self.assertFalse(os.path.exists(z + ".gone.tif.XYZ"))
            with open(z + ".left_0007.tif.XYZ", "wb") as f:
                f.write(tiff_bytes(vol[7]))
            m.umount_checked(self)
        exp = np.zeros((5, 32, 32), np.uint8)
        exp[:5] = vol[:5]
        exp[1] = vol[5]
        self.assertStore(store, exp, "after renames")
        log = open(os.path.join(store, ".brickfs", "daemon.log"), errors="replace").read()
        self.assertIn(".left_0007.tif.XYZ", log, "the dropped staged file is not named in the log")


# ---------------------------------------------------------- 2. racing writers ----


class TestRacingWriters(WritersCase):
    def test_two_writers_of_one_z_leave_one_whole_version(self):
        shape = (8, 4096, 4096)
        store, mnt = self.root.join("v.zarr"), self.root.join("mnt")
        T.brickfs_create(store, shape, "uint16")
        rng = np.random.default_rng(3)
        a = rng.integers(0, 4000, size=shape[1:], dtype=np.uint16)
        b = (a + 1000).astype(np.uint16)
        # A deflate (slow to decode), B uncompressed (fast): a B closed after A
        # finishes decoding first
        data = {"A": tiff_bytes(a, compression="zlib", rowsperstrip=64),
                "B": tiff_bytes(b, rowsperstrip=64)}
        with T.Mount(store, mnt) as m:
            for rnd, (first, gap) in enumerate([("A", 0.03), ("B", 0.03), ("A", 0.01),
                                                ("B", 0.0), ("A", 0.0), ("A", 0.05)]):
                second = "B" if first == "A" else "A"
                fds = {w: os.open("%s/z/%s_5.tif" % (mnt, w), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                       for w in ("A", "B")}
                for w, fd in fds.items():
                    os.write(fd, data[w])
                errs = {}

                def close(w, delay):
                    time.sleep(delay)
                    try:
                        os.close(fds[w])
                    except OSError as e:
                        errs[w] = e
                t1 = threading.Thread(target=close, args=(first, 0))
                t2 = threading.Thread(target=close, args=(second, gap))
                t1.start()
                t2.start()
                t1.join(60)
                t2.join(60)
                self.assertEqual(errs, {}, "round %d: close failed" % rnd)
                got = self.plane(mnt, 5)
                is_a, is_b = np.array_equal(got, a), np.array_equal(got, b)
                self.assertTrue(is_a or is_b, "round %d: z=5 is a mix: %d rows of A, %d of B"
                                % (rnd, int((got == a).all(axis=1).sum()),
                                   int((got == b).all(axis=1).sum())))
                if gap >= 0.03:
                    self.assertTrue(np.array_equal(got, a if second == "A" else b),
                                    "round %d: %s closed 30 ms after %s but %s won"
                                    % (rnd, second, first, first))
            m.umount_checked(self)


# ----------------------------------------------------- 3. brick vs slice race ----


class TestBrickSliceRace(WritersCase):
    def test_brick_write_and_slice_recopy_are_ordered(self):
        shape, brick = (64, 256, 256), (64, 128, 128)
        old = T.make_volume(shape, "uint8", "random", seed=4)
        store, mnt = self.root.join("v.zarr"), self.root.join("mnt")
        src = self.stack(old)
        with T.Mount(store, mnt, ["brick=%d,%d,%d" % brick]) as m:
            r = T.cp(sorted(os.path.join(src, f) for f in os.listdir(src)), mnt + "/z/")
            self.assertTrue(r.ok, r.describe())
            T.wait_status(mnt, lambda s: s["slabs"]["buffered"] == 0 and s["slabs"]["flushing"] == 0,
                          what="all slabs flushed")
            cur = old.copy()
            rng = np.random.default_rng(5)
            for rnd in range(6):
                new_brick = rng.integers(0, 255, size=brick, dtype=np.uint8)
                z = int(rng.integers(0, 64))
                new_slice = rng.integers(0, 255, size=shape[1:], dtype=np.uint8)
                sl = os.path.join(self.root.path, "s_%02d.tif" % z)
                tifffile.imwrite(sl, new_slice, photometric="minisblack")
                errs = []

                def write_brick():
                    try:
                        with open(mnt + "/bricks/z0000_y0000_x0000.raw", "wb") as f:
                            f.write(new_brick.tobytes())
                    except OSError as e:
                        errs.append(("brick", e))

                def copy_slice():
                    r = T.cp([sl], mnt + "/z/")
                    if not r.ok:
                        errs.append(("slice", r.describe()))
                ts = [threading.Thread(target=write_brick), threading.Thread(target=copy_slice)]
                for t in ts:
                    t.start()
                for t in ts:
                    t.join(120)
                self.assertEqual(errs, [], "round %d" % rnd)
                T.wait_status(mnt, lambda s: s["slabs"]["flushing"] == 0, what="flushes done")
                got = np.stack([self.plane(mnt, k) for k in range(64)])
                # Planes the slice did not touch hold the brick, whole.
                region = got[:, :128, :128]
                stale = [k for k in range(64) if k != z
                         and not np.array_equal(region[k], new_brick[k])]
                self.assertEqual(stale, [], "round %d: brick planes not holding the new brick "
                                 "(old data): %s" % (rnd, stale))
                # The raced plane: brick then slice, or slice then brick; nothing else.
                slice_last = np.array_equal(got[z], new_slice)
                brick_last = (np.array_equal(got[z, :128, :128], new_brick[z])
                              and np.array_equal(got[z, 128:, :], new_slice[128:, :])
                              and np.array_equal(got[z, :128, 128:], new_slice[:128, 128:]))
                self.assertTrue(slice_last or brick_last, "round %d: z=%d is a mix" % (rnd, z))
                cur[:, :128, :128] = new_brick
                cur[z] = got[z]
            m.umount_checked(self)
        self.assertStore(store, cur, "after the races")


# -------------------------------------------------------------- 4. holes ----


WRITER_WITH_HOLES = r"""
import os, sys, time
path, data_path, mode = sys.argv[1], sys.argv[2], sys.argv[3]
data = open(data_path, "rb").read()
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
if mode == "tail_first":
    half = len(data) // 2
    os.pwrite(fd, data[half:], half)          # the second half first ...
    os.pwrite(fd, data[:4096], 0)             # ... then the header, not the middle
    print("ready", flush=True)
    time.sleep(60)                            # killed here
elif mode == "truncate":
    os.ftruncate(fd, len(data))               # full size, then only the header
    os.pwrite(fd, data[:4096], 0)
    try:
        os.close(fd)
        print("close-ok", flush=True)
    except OSError as e:
        print("close-failed", e.errno, flush=True)
"""


class TestHoles(WritersCase):
    def test_files_with_holes_are_rejected(self):
        shape = (4, 200, 300)
        store, mnt = self.root.join("v.zarr"), self.root.join("mnt")
        T.brickfs_create(store, shape, "uint16")
        plane = T.make_volume((1,) + shape[1:], "uint16", "random", seed=6)[0] | 1
        data_path = self.root.join("slice.tif")
        with open(data_path, "wb") as f:
            f.write(tiff_bytes(plane, rowsperstrip=8))
        data = T.read_bytes(data_path)
        script = self.root.join("writer.py")
        with open(script, "w") as f:
            f.write(WRITER_WITH_HOLES)
        with T.Mount(store, mnt) as m:
            # (a) out of order, then killed mid-file
            p = subprocess.Popen([T.PYTHON, script, mnt + "/z/scan_0001.tif", data_path,
                                  "tail_first"], stdout=subprocess.PIPE)
            self.assertEqual(p.stdout.readline().strip(), b"ready")
            p.kill()
            p.wait(30)
            st = T.wait_status(mnt, lambda s: s["errors_total"] >= 1, timeout=20,
                               what="an error about the killed writer's file")
            self.assertIn("scan_0001.tif", str(st["errors"]))
            self.assertEqual(st["slices"]["present"], 0, "a file with holes was accepted")
            # (b) extended by ftruncate, only the header written: close() fails
            r = T.run([T.PYTHON, script, mnt + "/z/scan_0002.tif", data_path, "truncate"])
            self.assertIn("close-failed", r.stdout, r.describe())
            st = T.read_status(mnt)
            self.assertEqual(st["slices"]["present"], 0, "a file with holes was accepted")
            self.assertIn("scan_0002.tif", str(st["errors"]))
            # the same file written whole is fine
            with open(mnt + "/z/scan_0002.tif", "wb") as f:
                f.write(data)
            np.testing.assert_array_equal(self.plane(mnt, 2), plane)
            m.umount_checked(self)
        exp = np.zeros(shape, np.uint16)
        exp[2] = plane
        self.assertStore(store, exp, "after the writers with holes")


# -------------------------------------------------------------- 5. fsync ----


FSYNC_WRITER = r"""
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
os.write(fd, open(sys.argv[2], "rb").read())
os.fsync(fd)
if sys.argv[3] == "close":
    os.close(fd)
print("synced", flush=True)
time.sleep(60)
"""


class TestFsync(WritersCase):
    def test_fsync_then_kill9_keeps_the_slice(self):
        shape = (64, 96, 128)
        vol = T.make_volume(shape, "uint16", "random", seed=7)
        store, mnt = self.root.join("v.zarr"), self.root.join("mnt")
        T.brickfs_create(store, shape, "uint16")
        script = self.root.join("fsync.py")
        with open(script, "w") as f:
            f.write(FSYNC_WRITER)
        srcs = {}
        for z in (3, 4, 40):
            srcs[z] = self.root.join("s%d.tif" % z)
            tifffile.imwrite(srcs[z], vol[z], photometric="minisblack")
        with T.Mount(store, mnt) as m:
            procs = []
            for z, how in ((3, "open"), (4, "close"), (40, "close")):
                p = subprocess.Popen([T.PYTHON, script, "%s/z/scan_%d.tif" % (mnt, z), srcs[z],
                                      how], stdout=subprocess.PIPE)
                self.assertEqual(p.stdout.readline().strip(), b"synced")
                procs.append(p)
            kill9(self, m)
            for p in procs:
                p.kill()
                p.wait(30)
        exp = np.zeros(shape, np.uint16)
        for z in (3, 4, 40):
            exp[z] = vol[z]
        with T.Mount(store, mnt) as m:
            st = T.read_status(mnt)
            missing = set()
            for a, b in st["slices"]["missing"]:
                missing |= set(range(a, b + 1))
            self.assertFalse({3, 4, 40} & missing, "fsynced slices lost: %s" % st["slices"])
            for z in (3, 4, 40):
                np.testing.assert_array_equal(self.plane(mnt, z), vol[z], "z=%d" % z)
            m.umount_checked(self)
        self.assertStore(store, exp, "after fsync + kill -9 + remount")


# --------------------------------------------------------- 6. no bloat ----


class TestRecopyBloat(WritersCase):
    def test_recopies_do_not_bloat_the_store(self):
        shape = (256, 256, 256)
        vol = T.make_volume(shape, "uint8", "random", seed=8)
        src = self.stack(vol)
        files = [os.path.join(src, "scan_%04d.tif" % z) for z in range(shape[0])]
        store, mnt = self.root.join("v.zarr"), self.root.join("mnt")
        with T.Mount(store, mnt) as m:
            self.assertTrue(T.cp(files, mnt + "/z/").ok)
            m.umount_checked(self)
        fresh = T.store_bytes(store)
        with T.Mount(store, mnt) as m:
            self.assertTrue(T.cp(files, mnt + "/z/", timeout=300).ok)
            m.umount_checked(self)
        after = T.store_bytes(store)
        sys.stderr.write("[fresh %.1f MiB, after a full re-copy %.1f MiB] "
                         % (fresh / 2**20, after / 2**20))
        self.assertLessEqual(after, 1.1 * fresh, "a full re-copy bloated the store "
                             "%.2fx" % (after / fresh))
        self.assertStore(store, vol, "after the re-copy")
        with T.Mount(store, mnt) as m:
            for z in range(5, 256, 21):  # 12 single-slice rewrites, one at a time
                vol[z] = 255 - vol[z]
                tifffile.imwrite(files[z], vol[z], photometric="minisblack")
                self.assertTrue(T.cp([files[z]], mnt + "/z/").ok)
                time.sleep(0.2)
            m.umount_checked(self)
        after12 = T.store_bytes(store)
        sys.stderr.write("[after 12 single-slice rewrites %.1f MiB] " % (after12 / 2**20))
        self.assertLessEqual(after12, 1.2 * fresh, "12 rewrites bloated the store %.2fx"
                             % (after12 / fresh))
        self.assertStore(store, vol, "after 12 rewrites")


# ----------------------------------------------------------- 7. memory ----


class TestMemoryCaps(WritersCase):
    def hwm(self, m):
        return T.vm_kib(m.pid, "VmHWM") * 1024

    def test_writes_past_any_slice_size_fail_without_allocating(self):
        store, mnt = self.root.join("v.zarr"), self.root.join("mnt")
        with T.Mount(store, mnt, ["mem=64M"]) as m:
            for name in ("far_1.tif", "trunc_2.tif"):
                fd = os.open(mnt + "/z/" + name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                with self.assertRaises(OSError) as cm:
                    if name == "far_1.tif":
                        os.pwrite(fd, b"x", 2 << 30)
                    else:
                        os.ftruncate(fd, 3 << 30)
                self.assertEqual(cm.exception.errno, T.errno.EFBIG, name)
                try:
                    os.close(fd)
                except OSError:
                    pass
            self.assertLess(self.hwm(m), 200 << 20, "daemon peak RSS %d MiB after the far "
                            "write/truncate with mem=64M" % (self.hwm(m) >> 20))
            st = T.read_status(mnt)
            self.assertIn("far_1.tif", str(st["errors"]))
            m.umount_checked(self)

    def test_many_open_handles_stay_inside_the_budget(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 4200), max(hard, 4200)))
        store, mnt = self.root.join("v.zarr"), self.root.join("mnt")
        chunk = b"\0" * (256 << 10)
        with T.Mount(store, mnt, ["mem=64M"]) as m:
            fds, refused = [], 0
            t0 = time.monotonic()
            for i in range(4000):
                try:
                    fd = os.open("%s/z/h_%d.tif" % (mnt, i), os.O_WRONLY | os.O_CREAT)
                except OSError as e:
                    self.assertIn(e.errno, (T.errno.ENOSPC, T.errno.EAGAIN, T.errno.EMFILE), e)
                    refused += 1
                    continue
                fds.append(fd)
                try:
                    os.write(fd, chunk)
                except OSError as e:
                    self.assertIn(e.errno, (T.errno.ENOSPC, T.errno.EAGAIN), e)
                    refused += 1
                if time.monotonic() - t0 > 240:
                    self.fail("opening and writing handles took over 240 s (writers blocked?)")
            peak = self.hwm(m)
            for fd in fds:
                try:
                    os.close(fd)
                except OSError:
                    pass
            sys.stderr.write("[4000 handles x 256 KiB with mem=64M: %d refused, daemon peak "
                             "%d MiB] " % (refused, peak >> 20))
            self.assertGreater(refused, 0, "1 GiB of handle data accepted with mem=64M")
            self.assertLess(peak, 200 << 20, "daemon peak RSS %d MiB with mem=64M" % (peak >> 20))
            st = T.read_status(mnt)
            self.assertLessEqual(st["memory"]["peak"], 64 << 20, st["memory"])
            m.umount_checked(self)


# ------------------------------------------------------------ 8. O_RDWR ----


class TestReadWrite(WritersCase):
    def test_rdwr_on_an_existing_slice_is_served(self):
        shape = (4, 64, 80)
        vol = T.make_volume(shape, "uint16", "random", seed=9)
        src = self.stack(vol)
        store, mnt = self.root.join("v.zarr"), self.root.join("mnt")
        with T.Mount(store, mnt) as m:
            self.assertTrue(T.cp([os.path.join(src, f) for f in sorted(os.listdir(src))],
                                 mnt + "/z/").ok)
            path = mnt + "/z/00002.tif"
            ro = T.read_bytes(path)
            with open(path, "r+b") as f:
                got = f.read()
            self.assertEqual(len(got), os.path.getsize(path))
            self.assertEqual(got, ro, "O_RDWR reads differ from a read-only open")
            r = T.run(["tiffset", "-s", "270", "edited by tiffset", path])
            self.assertTrue(r.ok, r.describe())
            np.testing.assert_array_equal(self.plane(mnt, 2), vol[2])
            # a full rewrite through O_RDWR replaces the slice
            new = (vol[2] ^ 0x5555).astype(np.uint16)
            with open(path, "r+b") as f:
                f.truncate(0)
                f.write(tiff_bytes(new))
            np.testing.assert_array_equal(self.plane(mnt, 2), new)
            vol[2] = new
            st = T.read_status(mnt)
            self.assertEqual(st["errors"], [])
            m.umount_checked(self)
        self.assertStore(store, vol, "after O_RDWR edits")


# ------------------------------------------------------------ 9. levels ----


def reduction_chain(vol, levels):
    out = [vol]
    for _ in range(1, levels):
        out.append(downsample(out[-1]))
    return out


class TestLevels(WritersCase):
    OPTS = ["block=8,16,16", "brick=16,32,32"]

    def test_levels_equal_the_reduction_over_sessions(self):
        shape = (41, 64, 64)
        vol = T.make_volume(shape, "uint16", "random", seed=10)
        src = self.stack(vol)
        store, mnt = self.root.join("v.zarr"), self.root.join("mnt")
        exp = np.zeros(shape, np.uint16)
        depth = 0
        for session, zs in enumerate((range(0, 21), [40], range(21, 30))):
            with T.Mount(store, mnt, self.OPTS) as m:
                r = T.cp([os.path.join(src, "scan_%04d.tif" % z) for z in zs], mnt + "/z/")
                self.assertTrue(r.ok, r.describe())
                m.umount_checked(self)
            for z in zs:
                exp[z] = vol[z]
            depth = max(depth, max(zs) + 1)
            for level, ref in enumerate(pyramid(exp[:depth], (16, 32, 32))):
                self.assertStore(store, ref, "session %d" % session, level=str(level))

    def test_level_planes_read_right_while_mounted(self):
        shape = (100, 64, 64)
        vol = T.make_volume(shape, "uint16", "random", seed=11)
        src = self.stack(vol)
        store, mnt = self.root.join("v.zarr"), self.root.join("mnt")
        refs = reduction_chain(vol, 3)
        with T.Mount(store, mnt, ["brick=32,32,32"]) as m:
            r = T.cp([os.path.join(src, f) for f in sorted(os.listdir(src))], mnt + "/z/")
            self.assertTrue(r.ok, r.describe())
            T.wait_status(mnt, lambda s: s["slabs"]["flushing"] == 0, what="flushes done")
            for level, k in ((1, 48), (1, 49), (2, 24), (1, 0), (2, 0)):
                np.testing.assert_array_equal(self.plane(mnt, k, level=level), refs[level][k],
                                              "levels/%d/z/%05d while mounted" % (level, k))
            m.umount_checked(self)
        for level, ref in enumerate(refs):
            self.assertStore(store, ref, "after umount", level=str(level))


if __name__ == "__main__":
    T.main()
