#!/usr/bin/python3
"""Crash tests of brickfs: kill -9 the daemon, remount, re-copy what is missing.

    /usr/bin/python3 tests/integration/test_recovery.py --brickfs build/brickfs [-k PATTERN] [--keep]

(or env BRICKFS_BIN). Needs /dev/fuse and fusermount3 (else every test is skipped,
exit 77). DESIGN.md section 4 (journal, append protocol) and section 10 ("daemon
killed: remount recovers every committed slab; missing slices are listed").

Every scenario is the same user story:
  1. a store (`brickfs create --block 8,16,16 --brick 16,32,32`, or a new store with
     the default geometry), a daemon mount, slices copied in with real `cp`;
  2. `kill -9` of the daemon at some point of the ingest;
  3. the dead mount is cleaned up (fusermount3 -u, else umount -l);
  4. `brickfs info --json STORE` lists the missing z ranges; what it calls present
     must be slices that were sent, in whole committed slabs, and at least every
     slab the status reported flushed before the kill;
  5. the same store is mounted again: every shard file is a valid shard again (no
     torn tail: tests/interop/shard_reader.py validates index and block checksums)
     and holds exactly the present slices (missing ones read as fill value);
  6. exactly the missing slices are copied in, `brickfs umount`;
  7. the volume equals the source voxel for voxel, through a fresh read-only mount
     (every z plane with tifffile, some y/x planes) and through shard_reader.

Kill points:
  TestCrashBeforeCommit   (a) a few slices of the first slab, nothing committed
  TestCrashMidIngest      (b) cp running in the background, slabs flushed > 0
                              (two kill points; one run also appends garbage to every
                              shard file and a torn frame to the journal before the
                              remount, as a torn append would leave them)
  TestCrashAfterFlush     every slab flushed, daemon idle, not yet unmounted:
                              nothing may be missing
  TestCrashDuringFinalize (c) `fusermount3 -u` starts the finalize of 12 partial
                              slabs; kill -9 at once, after its first and after its
                              sixth slab commit appeared in the journal (it may
                              have finished)
  TestCrashGrowingVolume  new store, default geometry, Z grows with the slices
  TestNoJournal           -o nojournal ingests correctly; prints its cost
"""

import json
import os
import signal
import struct
import subprocess
import sys
import time

import numpy as np
import tifffile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import brickfs_testlib as T  # noqa: E402

SHAPE = (96, 200, 230)
BLOCK = (8, 16, 16)
BRICK = (16, 32, 32)


def expand(ranges):
    """[[a, b], ...] (inclusive) -> set of z."""
    out = set()
    for a, b in ranges:
        out.update(range(int(a), int(b) + 1))
    return out


def ranges_of(zs):
    out = []
    for z in sorted(zs):
        if out and out[-1][1] == z - 1:
            out[-1][1] = z
        else:
            out.append([z, z])
    return out


def z_of(path):
    name = os.path.basename(path)
    digits = "".join(c if c.isdigit() else " " for c in name.rsplit(".", 1)[0]).split()
    return int(digits[-1])


class BackgroundFeeder:
    """Copies slices one `cp` per file in a background shell, in the given order,
    with a pause between files, so that the daemon can be killed while it runs.
    Logs "start PATH" before and "ok PATH"/"fail PATH" after each cp."""

    SCRIPT = r'''
log="$1"; dest="$2"; pause="$3"; shift 3
for f in "$@"; do
  echo "start $f" >> "$log"
  if cp "$f" "$dest"/ 2>>"$log.err"; then echo "ok $f" >> "$log"; else echo "fail $f" >> "$log"; fi
  sleep "$pause"
done
echo done >> "$log"
'''

    def __init__(self, files, dest, log, pause=0.02):
        self.log = log
        open(log, "w").close()
        self.proc = subprocess.Popen(["sh", "-c", self.SCRIPT, "sh", log, dest, str(pause)]
                                     + list(files), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)

    def running(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=30)

    def wait(self, timeout):
        self.proc.wait(timeout=timeout)

    def entries(self):
        with open(self.log) as f:
            return [line.split(" ", 1) for line in f.read().splitlines() if " " in line]

    def started(self):
        return {z_of(p) for k, p in self.entries() if k == "start"}

    def acked(self):
        return {z_of(p) for k, p in self.entries() if k == "ok"}


class RecoveryCase(T.ClassRootCase):
    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.vol = T.make_volume(SHAPE, "uint8", "smooth", seed=41)
        src = cls.tmp.sub("src")
        cls.files = {}
        for z in range(SHAPE[0]):
            p = os.path.join(src, "scan_%d.tif" % z)
            tifffile.imwrite(p, cls.vol[z], photometric="minisblack")
            cls.files[z] = p

    # ------------------------------------------------------------ helpers

    def new_store(self, label, created=True):
        store = self.tmp.join(label, "vol.zarr")
        os.makedirs(os.path.dirname(store), exist_ok=True)
        if created:
            T.brickfs_create(store, self.vol.shape, "uint8", block=BLOCK, brick=BRICK)
        return store, self.tmp.join(label, "mnt")

    def kill9(self, m, what):
        """kill -9 of the daemon, then the dead mount is cleaned up. Returns True when
        the daemon was alive at the kill."""
        self.assertIsNotNone(m.pid, "daemon pid unknown")
        alive = T.pid_alive(m.pid, m.starttime)
        if alive:
            try:
                os.kill(m.pid, signal.SIGKILL)
            except ProcessLookupError:
                alive = False
        self.assertTrue(T.wait_pid_gone(m.pid, 15, m.starttime),
                        "daemon %d survived kill -9 (%s)" % (m.pid, what))
        self.cleanup_dead_mount(m.mnt)
        return alive

    def cleanup_dead_mount(self, mnt):
        for argv in (["fusermount3", "-u", mnt], ["fusermount3", "-u", "-z", mnt],
                     ["umount", "-l", mnt]):
            if not T.is_mounted(mnt):
                break
            T.run(argv, timeout=30)
        self.assertFalse(T.is_mounted(mnt), "%s still mounted after cleanup" % mnt)

    def info_after_crash(self, store, sent, flushed_before, whole_slabs=True, label=""):
        """brickfs info --json on the crashed store (before any remount): returns
        (info, present set, missing set) after checking what may be present."""
        info = T.brickfs_info_json(store)
        Z = self.vol.shape[0]
        zmax = int(info["shape"][0]) if info.get("shape") else 0
        missing = expand(info["missing"]) | set(range(zmax, Z))
        present = set(range(Z)) - missing
        msg = "%s: info --json after kill -9: %s" % (label, json.dumps(info)[:1500])
        self.assertTrue(present <= set(sent),
                        "%s\nslices present that were never sent: %s"
                        % (msg, ranges_of(present - set(sent))))
        self.assertEqual(info.get("slices_present"), len(set(range(zmax)) - expand(info["missing"])),
                         msg)
        if whole_slabs:
            bz = BLOCK[0]
            partial = sorted({z // bz for z in present
                              if not all(w in present for w in range(z // bz * bz,
                                                                     min(z // bz * bz + bz, Z)))})
            self.assertEqual(partial, [], "%s\nslabs only partly present (a slab commits "
                             "whole): %s" % (msg, partial))
        self.assertGreaterEqual(len(present) // BLOCK[0], flushed_before,
                                "%s\nthe status reported %d slabs flushed before the kill, "
                                "but only %d slices survived" % (msg, flushed_before,
                                                                 len(present)))
        return info, present, missing

    def expected_with(self, present):
        exp = np.zeros_like(self.vol)
        for z in present:
            exp[z] = self.vol[z]
        return exp

    def check_shards_valid(self, store, expected, when):
        """Every shard file validates (index crc, entries in range, block crc, zstd
        content size) and the array equals `expected`."""
        d = T.check_shard_reader(store, expected)
        self.assertEqual(d, "", "%s: %s" % (when, d))
        meta = T.shard_reader.meta_of(store, "0")
        grid = meta.shard_grid()
        cdir = os.path.join(store, "0", "c")
        for root, dirs, files in os.walk(cdir):
            for fn in files:
                rel = os.path.relpath(os.path.join(root, fn), cdir).split(os.sep)
                self.assertEqual(len(rel), 3, "%s: odd file 0/c/%s" % (when, "/".join(rel)))
                k = tuple(int(v) for v in rel)
                self.assertTrue(all(0 <= k[i] < grid[i] for i in range(3)),
                                "%s: shard %s outside the grid %s" % (when, k, grid))

    def recover_and_complete(self, store, mnt, info_missing, label, present):
        """Remount, check the recovered store, re-copy exactly the missing slices,
        umount, check everything. `present`: what info called present."""
        Z = self.vol.shape[0]
        with T.Mount(store, mnt) as m:
            st = T.read_status(mnt)
            with self.subTest("%s: status after recovery" % label):
                self.assertEqual(expand(st["slices"]["missing"]) | set(range(
                    int(st["shape"][0]) if st.get("shape") else 0, Z)), info_missing,
                    "status missing %s, info said %s" % (st["slices"]["missing"],
                                                          ranges_of(info_missing)))
            with self.subTest("%s: shards valid after recovery" % label):
                # nothing is written while the mount is idle: the files are stable
                self.assertEqual(list(st["shape"]), list(self.vol.shape))
                self.check_shards_valid(store, self.expected_with(present),
                                        "%s, after recovery" % label)
            todo = [self.files[z] for z in sorted(info_missing)]
            sys.stderr.write("[%s: %d present, re-copying %d: %s] "
                             % (label, len(present), len(todo), ranges_of(info_missing)))
            if todo:
                r = T.cp(T.shuffled(todo, 7), os.path.join(mnt, "z") + "/")
                self.assertTrue(r.ok, "%s: re-copying the missing slices:\n%s"
                                % (label, r.describe()))
            st = T.read_status(mnt)
            self.assertEqual(st["slices"]["missing"], [],
                             "%s: status after re-copy: %s" % (label, json.dumps(st)[:2000]))
            self.assertEqual(st["errors"], [], "%s: status errors" % label)
            m.umount_checked(self)
        self.check_complete(store, label)

    def check_complete(self, store, label):
        info = T.brickfs_info_json(store)
        self.assertEqual(list(info["shape"]), list(self.vol.shape), label)
        self.assertEqual(info["missing"], [], "%s: info after umount: %s" % (label, info))
        self.assertEqual(info["slices_present"], self.vol.shape[0])
        self.assertIs(info["finalized"], True, label)
        journal = os.path.join(store, ".brickfs", "journal")
        if os.path.exists(journal):
            self.assertEqual(os.path.getsize(journal), 0,
                             "%s: journal not emptied by a clean unmount" % label)
        self.check_shards_valid(store, self.vol, "%s, final store" % label)
        self.check_ro_mount(store, self.tmp.join(label, "mnt_ro"), label)

    def check_ro_mount(self, store, mnt, label):
        vol = self.vol
        bad = []
        with T.Mount(store, mnt, options=["ro"]) as m:
            st = T.read_status(mnt)
            self.assertEqual(st["slices"]["missing"], [], label)
            for z in range(vol.shape[0]):
                got = tifffile.imread(os.path.join(mnt, "z", T.canonical(z)))
                if got.shape != vol[z].shape or not np.array_equal(got, vol[z]):
                    bad.append(z)
            for y in (0, 17, vol.shape[1] - 1):
                got = tifffile.imread(os.path.join(mnt, "y", T.canonical(y)))
                if not np.array_equal(got, vol[:, y, :]):
                    bad.append("y%d" % y)
            for x in (0, 100, vol.shape[2] - 1):
                got = tifffile.imread(os.path.join(mnt, "x", T.canonical(x)))
                if not np.array_equal(got, vol[:, :, x]):
                    bad.append("x%d" % x)
            m.umount_checked(self)
        self.assertEqual(bad, [], "%s: read-only mount: planes differ from the source" % label)


# =====================================================================================


class TestCrashBeforeCommit(RecoveryCase):
    """(a) three slices of slab 0 copied, no slab complete: nothing committed."""

    def test_kill_before_any_commit(self):
        store, mnt = self.new_store("a")
        sent = [0, 1, 2]
        with T.Mount(store, mnt) as m:
            r = T.cp([self.files[z] for z in sent], os.path.join(mnt, "z") + "/")
            self.assertTrue(r.ok, r.describe())
            st = T.wait_status(mnt, lambda s: s["slices"]["received"] == 3, what="3 received")
            self.assertEqual(st["slabs"]["flushed"], 0)
            self.kill9(m, "before commit")
        info, present, missing = self.info_after_crash(store, sent, 0, label="a")
        self.assertEqual(present, set(), "nothing was committed, yet info lists %s present"
                         % ranges_of(present))
        self.assertEqual(info["missing"], [[0, SHAPE[0] - 1]])
        self.assertIs(info["finalized"], False)
        self.recover_and_complete(store, mnt, missing, "a", present)


class TestCrashMidIngest(RecoveryCase):
    """(b) kill -9 while a background cp loop is copying, after slabs were flushed."""

    def crash_mid_ingest(self, label, kill_after_flushed, garbage=False, seed=1):
        store, mnt = self.new_store(label)
        order = list(range(SHAPE[0]))
        if seed:
            # slabs arrive in a shuffled slab order, slices in order within a slab,
            # so that several bricks are in flight at once
            slabs = T.shuffled(range(SHAPE[0] // BLOCK[0]), seed)
            order = [s * BLOCK[0] + i for s in slabs for i in range(BLOCK[0])]
        with T.Mount(store, mnt) as m:
            feeder = BackgroundFeeder([self.files[z] for z in order],
                                      os.path.join(mnt, "z"), self.tmp.join(label, "feed.log"))
            try:
                st = T.wait_status(mnt, lambda s: s["slabs"]["flushed"] >= kill_after_flushed,
                                   timeout=60, what="%d slabs flushed" % kill_after_flushed)
                was_running = feeder.running()
                flushed_before = st["slabs"]["flushed"]
                self.kill9(m, label)
            finally:
                feeder.stop()
            sent = feeder.started()
            acked = feeder.acked()
        sys.stderr.write("[%s: killed after %d slabs flushed, %d slices acked, cp %s] "
                         % (label, flushed_before, len(acked),
                            "running" if was_running else "ALREADY DONE"))
        self.assertTrue(was_running, "the feeder finished before the kill: no mid-ingest crash")
        info, present, missing = self.info_after_crash(store, sent, flushed_before, label=label)
        self.assertIs(info["finalized"], False)
        self.assertTrue(set(range(SHAPE[0])) - acked <= missing,
                        "slices never acknowledged are not all listed missing")
        if garbage:
            self.add_torn_tails(store)
        self.recover_and_complete(store, mnt, missing, label, present)

    def add_torn_tails(self, store):
        """What a crash mid-append can leave: bytes after the last committed length of
        every shard, and a partial frame at the end of the journal."""
        rng = np.random.default_rng(5)
        n = 0
        for root, dirs, files in os.walk(os.path.join(store, "0", "c")):
            for fn in files:
                with open(os.path.join(root, fn), "ab") as f:
                    f.write(rng.integers(0, 256, int(rng.integers(1, 5000)),
                                         dtype=np.uint8).tobytes())
                n += 1
        self.assertGreater(n, 0, "no shard files to tear")
        journal = os.path.join(store, ".brickfs", "journal")
        self.assertTrue(os.path.exists(journal), "no journal %s after a crash" % journal)
        with open(journal, "ab") as f:
            f.write(b"\x40\x00\x00\x00\x12\x34")  # a frame header claiming 64 bytes, cut

    def test_kill_mid_ingest_early(self):
        self.crash_mid_ingest("b1", 1)

    def test_kill_mid_ingest_late_with_torn_tails(self):
        self.crash_mid_ingest("b2", 6, garbage=True, seed=3)


class TestCrashAfterFlush(RecoveryCase):
    """All slabs complete and flushed, the daemon idle: a kill -9 loses nothing."""

    def test_kill_after_all_slabs_flushed(self):
        store, mnt = self.new_store("idle")
        with T.Mount(store, mnt) as m:
            r = T.cp(T.shuffled(self.files.values(), 2), os.path.join(mnt, "z") + "/")
            self.assertTrue(r.ok, r.describe())
            n = SHAPE[0] // BLOCK[0]
            st = T.wait_status(mnt, lambda s: s["slabs"]["flushed"] >= n, timeout=60,
                               what="all %d slabs flushed" % n)
            self.kill9(m, "idle")
        info, present, missing = self.info_after_crash(store, range(SHAPE[0]),
                                                       st["slabs"]["flushed"], label="idle")
        self.assertEqual(info["missing"], [], "every slab was flushed before the kill")
        self.recover_and_complete(store, mnt, missing, "idle", present)


def journal_commits(store):
    """Level-0 slab commits in STORE/.brickfs/journal (src/format/journal.h: frames of
    length u32, crc32c u32, payload; payload type 3 = kSlabCommit, then level u8)."""
    try:
        with open(os.path.join(store, ".brickfs", "journal"), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return 0
    pos, n = 0, 0
    while pos + 8 <= len(data):
        ln, crc = struct.unpack_from("<II", data, pos)
        if ln == 0 or pos + 8 + ln > len(data):
            break
        payload = data[pos + 8:pos + 8 + ln]
        if T.shard_reader.crc32c(payload) != crc:
            break
        if payload[0] == 3 and len(payload) > 1 and payload[1] == 0:
            n += 1
        pos += 8 + ln
    return n


class TestCrashDuringFinalize(RecoveryCase):
    """(c) every slab partial (z % 8 == 5 never sent), so the finalize started by
    fusermount3 -u flushes 12 slabs; kill -9 at once, or once the journal shows the
    first / the sixth slab commit of the finalize."""

    def crash_during_finalize(self, label, after_commits):
        store, mnt = self.new_store(label)
        sent = [z for z in range(SHAPE[0]) if z % BLOCK[0] != 5]
        with T.Mount(store, mnt) as m:
            r = T.cp(T.shuffled([self.files[z] for z in sent], 4),
                     os.path.join(mnt, "z") + "/")
            self.assertTrue(r.ok, r.describe())
            st = T.wait_status(mnt, lambda s: s["slices"]["received"] == len(sent),
                               what="all sent slices received")
            self.assertEqual(st["slabs"]["flushed"], 0)
            self.assertEqual(journal_commits(store), 0)
            t0 = time.monotonic()
            p = subprocess.Popen(["fusermount3", "-u", mnt], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            p.wait(timeout=30)
            seen = 0
            if after_commits:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and T.pid_alive(m.pid, m.starttime):
                    seen = journal_commits(store)
                    if seen >= after_commits:
                        break
                    time.sleep(0.002)
            dt = time.monotonic() - t0
            alive = self.kill9(m, label)
        sys.stderr.write("[%s: kill -9 %.0f ms after fusermount3 -u, %d commits seen: %s] "
                         % (label, dt * 1000, seen, "finalize interrupted" if alive
                            else "finalize had already finished"))
        info, present, missing = self.info_after_crash(store, sent, 0, whole_slabs=False,
                                                       label=label)
        # a slab is flushed whole: all its sent slices are present, or none
        for s in range(SHAPE[0] // BLOCK[0]):
            zs = {z for z in sent if z // BLOCK[0] == s}
            got = zs & present
            self.assertIn(got, (set(), zs), "%s: slab %d partly present: %s"
                          % (label, s, sorted(got)))
        if alive:
            self.assertGreaterEqual(len(present) // (BLOCK[0] - 1), seen,
                                    "%s: %d slab commits were in the journal before the kill, "
                                    "%d slices survived" % (label, seen, len(present)))
        else:
            self.assertIs(info["finalized"], True, "%s: the daemon had exited, so the "
                          "finalize was complete: %s" % (label, info))
            self.assertEqual(missing, set(range(5, SHAPE[0], BLOCK[0])))
        self.recover_and_complete(store, mnt, missing, label, present)

    def test_kill_at_once(self):
        self.crash_during_finalize("c0", 0)

    def test_kill_after_first_commit(self):
        self.crash_during_finalize("c1", 1)

    def test_kill_after_six_commits(self):
        self.crash_during_finalize("c6", 6)


class TestCrashGrowingVolume(RecoveryCase):
    """A new store (no `brickfs create`), default geometry (block 32,32,32):
    Z grows with the slices. kill -9 after the first slab was flushed."""

    def test_kill_growing_volume(self):
        store, mnt = self.new_store("grow", created=False)
        with T.Mount(store, mnt) as m:
            feeder = BackgroundFeeder([self.files[z] for z in range(SHAPE[0])],
                                      os.path.join(mnt, "z"), self.tmp.join("grow", "feed.log"))
            try:
                st = T.wait_status(mnt, lambda s: s["slabs"]["flushed"] >= 1, timeout=60,
                                   what="slab 0 flushed")
                was_running = feeder.running()
                self.kill9(m, "grow")
            finally:
                feeder.stop()
            sent = feeder.started()
        self.assertTrue(was_running, "the feeder finished before the kill")
        info = T.brickfs_info_json(store)
        self.assertEqual(list(info["block"]), [32, 32, 32], info)
        Z = SHAPE[0]
        zmax = int(info["shape"][0])
        missing = expand(info["missing"]) | set(range(zmax, Z))
        present = set(range(Z)) - missing
        self.assertTrue(present <= sent, "never-sent slices present: %s"
                        % ranges_of(present - sent))
        self.assertGreaterEqual(len(present), 32, "slab 0 (z 0..31) was flushed before the "
                                "kill but is not present: %s" % info)
        self.assertEqual(list(info["shape"][1:]), list(SHAPE[1:]))
        with T.Mount(store, mnt) as m:
            st = T.read_status(mnt)
            self.assertEqual(list(st["shape"][1:]), list(SHAPE[1:]))
            todo = [self.files[z] for z in sorted(missing)]
            r = T.cp(todo, os.path.join(mnt, "z") + "/")
            self.assertTrue(r.ok, r.describe())
            m.umount_checked(self)
        self.check_complete(store, "grow")


class TestNoJournal(RecoveryCase):
    """-o nojournal: the same ingest works and writes no journal records; prints
    cp + umount seconds with and without the journal."""

    def test_nojournal_ingest_and_cost(self):
        r = T.brickfs("mount", "--help")
        if "journal" not in (r.stdout + r.stderr):
            self.fail("`brickfs mount --help` does not mention the nojournal option:\n"
                      + r.describe())
        times = {}
        for label, opts in (("journal", []), ("nojournal", ["nojournal"])):
            store, mnt = self.new_store("nj_" + label)
            with T.Mount(store, mnt, options=opts) as m:
                t0 = time.monotonic()
                r = T.cp([self.files[z] for z in range(SHAPE[0])],
                         os.path.join(mnt, "z") + "/")
                self.assertTrue(r.ok, r.describe())
                if label == "nojournal":
                    j = os.path.join(store, ".brickfs", "journal")
                    self.assertTrue(not os.path.exists(j) or os.path.getsize(j) == 0,
                                    "-o nojournal wrote %s" % j)
                m.umount_checked(self)
                times[label] = time.monotonic() - t0
            d = T.check_shard_reader(store, self.vol)
            self.assertEqual(d, "", "%s: %s" % (label, d))
            info = T.brickfs_info_json(store)
            self.assertEqual(info["missing"], [])
            self.assertIs(info["finalized"], True)
        sys.stderr.write("[cp+umount of %d slices: journal %.2fs, nojournal %.2fs] "
                         % (SHAPE[0], times["journal"], times["nojournal"]))


def tearDownModule():
    left = T.own_leftover_mounts()
    if left:
        raise AssertionError("mounts left behind: %s" % left)


if __name__ == "__main__":
    T.main()
