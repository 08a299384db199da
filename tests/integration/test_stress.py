#!/usr/bin/env python3
"""Randomized stress of every kind of writer at once, with kill -9 (issue 12).

Writer threads race on a small volume with:
  - slice writes under their own names (w<T>_<z>.tif), some fsynced before close;
  - rsync-style writes to a temporary name, then rename(2) onto a slice name;
  - whole-brick writes through bricks/;
while the daemon is killed with SIGKILL at random moments, remounted (recovery)
and the writers go on. After a last clean unmount the store, read by the
independent shard reader, must equal a model at every (z, brick region):

  - within one session, a region holds a write that no other write of it
    started after it finished (the last of the writes that raced, never a
    mix of two);
  - across a kill, a region holds a write acknowledged or in flight in that
    session that no durable write (fsync acknowledged, or a brick) started
    after, or else what the previous sessions left, unless a durable write
    touched it.

and every pyramid level must equal the 2x2x2 reduction of the level below.

Bounded for CI (about a minute); BRICKFS_STRESS_SECONDS=600 runs longer, and
BRICKFS_STRESS_SEED picks the seed (printed at the start).
"""

import io
import os
import random
import signal
import sys
import threading
import time

import numpy as np
import tifffile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import brickfs_testlib as T  # noqa: E402
from test_pyramid import pyramid  # noqa: E402

SHAPE = (48, 64, 64)
BLOCK = (8, 16, 16)
BRICK = (16, 32, 32)
REGIONS = [(ry, rx) for ry in range(SHAPE[1] // BRICK[1]) for rx in range(SHAPE[2] // BRICK[2])]
THREADS = 4


def slice_plane(z, v):
    return np.random.default_rng(z * 1000003 + v).integers(0, 65535, size=SHAPE[1:],
                                                          dtype=np.uint16)


def brick_data(b, v):
    bz, by, bx = b
    seed = ((bz * 7 + by) * 7 + bx) * 1000003 + v + 17
    return np.random.default_rng(seed).integers(0, 65535, size=BRICK, dtype=np.uint16)


def tiff_bytes(plane):
    buf = io.BytesIO()
    tifffile.imwrite(buf, plane, photometric="minisblack")
    return buf.getvalue()


class Write:
    """One write: kind 'slice' (z, v) or 'brick' (b, v); times; outcome."""

    def __init__(self, kind, key, version, durable):
        self.kind, self.key, self.version = kind, key, version
        self.durable = durable      # fsync'd slice, or a brick (durable on close)
        self.start = time.monotonic()
        self.end = None
        self.ok = False

    def regions(self):
        if self.kind == "slice":
            return [(self.key, r) for r in REGIONS]
        bz, by, bx = self.key
        return [(z, (by, bx)) for z in range(bz * BRICK[0], (bz + 1) * BRICK[0])]

    def region_data(self, z, r):
        ry, rx = r
        ys, xs = slice(ry * BRICK[1], (ry + 1) * BRICK[1]), slice(rx * BRICK[2], (rx + 1) * BRICK[2])
        if self.kind == "slice":
            return slice_plane(self.key, self.version)[ys, xs]
        return brick_data(self.key, self.version)[z - self.key[0] * BRICK[0]]


class Model:
    """Candidate writes per (z, region): None stands for 'as never written' (zeros)."""

    def __init__(self):
        self.cand = {(z, r): {None} for z in range(SHAPE[0]) for r in REGIONS}

    def end_session(self, writes, crashed):
        by_region = {}
        for w in writes:
            for zr in w.regions():
                by_region.setdefault(zr, []).append(w)
        for zr, ws in by_region.items():
            done = [w for w in ws if w.ok]
            if not crashed:
                if not done:
                    continue
                self.cand[zr] = {w for w in done
                                 if not any(o.start > w.end for o in done if o is not w)}
                continue
            # A kill: what was acknowledged but not durable may be lost.
            durable = [w for w in done if w.durable]
            live = [w for w in ws if w.ok or w.end is not None]  # acknowledged or in flight
            new = {w for w in live if not any(d.start > w.end for d in durable if d is not w)}
            if not durable:
                new |= self.cand[zr]
            self.cand[zr] = new

    def check(self, vol):
        bad = []
        for (z, r), cands in sorted(self.cand.items(), key=lambda kv: (kv[0][0], kv[0][1])):
            ry, rx = r
            got = vol[z, ry * BRICK[1]:(ry + 1) * BRICK[1], rx * BRICK[2]:(rx + 1) * BRICK[2]]
            ok = False
            for w in cands:
                want = np.zeros_like(got) if w is None else w.region_data(z, r)
                if np.array_equal(got, want):
                    ok = True
                    break
            if not ok:
                bad.append((z, r, ["zeros" if w is None else "%s %s v%d" % (w.kind, w.key, w.version)
                                   for w in cands]))
        return bad


class StressTest(T.TestRootCase):
    def test_random_writers_renames_bricks_and_kill9_match_the_model(self):
        seconds = float(os.environ.get("BRICKFS_STRESS_SECONDS", "50"))
        seed = int(os.environ.get("BRICKFS_STRESS_SEED", str(random.randrange(1 << 30))))
        sys.stderr.write("[stress: seed %d, %.0f s] " % (seed, seconds))
        rnd = random.Random(seed)
        store, mnt = self.root.join("v.zarr"), self.root.join("mnt")
        T.brickfs_create(store, SHAPE, "uint16", block=BLOCK, brick=BRICK)
        model = Model()
        versions = iter(range(1, 1 << 30))
        lock = threading.Lock()
        t_end = time.monotonic() + seconds
        sessions = kills = 0
        counts = {"slice": 0, "rename": 0, "fsync": 0, "brick": 0, "failed": 0}
        while True:
            last = time.monotonic() >= t_end
            crash = not last and rnd.random() < 0.6
            writes = []
            stop = threading.Event()
            with T.Mount(store, mnt) as m:
                sessions += 1

                def writer(tid, wseed):
                    wr = random.Random(wseed)
                    while not stop.is_set():
                        kind = wr.choices(["slice", "rename", "fsync", "brick"], [4, 3, 1, 1])[0]
                        with lock:
                            v = next(versions)
                        if kind == "brick":
                            b = (wr.randrange(SHAPE[0] // BRICK[0]), wr.randrange(2), wr.randrange(2))
                            w = Write("brick", b, v, True)
                            data = brick_data(b, v).astype("<u2").tobytes()
                            name = "%s/bricks/z%04d_y%04d_x%04d.raw" % (
                                mnt, b[0] * BRICK[0], b[1] * BRICK[1], b[2] * BRICK[2])
                        else:
                            z = wr.randrange(SHAPE[0])
                            w = Write("slice", z, v, kind == "fsync")
                            data = tiff_bytes(slice_plane(z, v))
                            name = "%s/z/w%d_%04d.tif" % (mnt, tid, z)
                        with lock:
                            writes.append(w)
                        try:
                            if kind == "rename":
                                tmp = "%s/z/.w%d_%04d.tif.%06x" % (mnt, tid, z, wr.randrange(1 << 24))
                                with open(tmp, "wb") as f:
                                    f.write(data)
                                w.start = time.monotonic()
                                os.rename(tmp, name)
                            else:
                                fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                                try:
                                    os.write(fd, data)
                                    if kind == "fsync":
                                        os.fsync(fd)
                                finally:
                                    os.close(fd)
                            w.end = time.monotonic()
                            w.ok = True
                            counts[kind] += 1
                        except OSError:
                            w.end = time.monotonic()  # failed or cut off by the kill: in flight
                            counts["failed"] += 1
                            if stop.is_set():
                                return
                            time.sleep(0.01)

                threads = [threading.Thread(target=writer, args=(t, rnd.randrange(1 << 30)),
                                            daemon=True)
                           for t in range(THREADS)]
                for t in threads:
                    t.start()
                time.sleep(rnd.uniform(1.0, 4.0) if not last else 2.0)
                if crash:
                    os.kill(m.pid, signal.SIGKILL)
                    kills += 1
                    T.wait_pid_gone(m.pid, 15, m.starttime)
                stop.set()
                if crash:
                    T.abort_fuse_connection(m.mnt)
                for argv in (["fusermount3", "-u", "-z", m.mnt], ["umount", "-l", m.mnt]):
                    if crash and T.is_mounted(m.mnt):
                        T.run(argv, timeout=30)
                for t in threads:
                    t.join(120)
                    if t.is_alive():
                        T.abort_fuse_connection(m.mnt)
                        self.fail("a writer thread hung (seed %d)" % seed)
                if crash:
                    m.umount_result = T.Ran([], 0, "", "", 0)
                else:
                    m.umount_checked(self)
            model.end_session(writes, crashed=crash)
            if last:
                break
        sys.stderr.write("[%d sessions, %d kills, writes %s] " % (sessions, kills, counts))
        info = T.brickfs_info_json(store)
        self.assertIs(info["finalized"], True, info)
        vol = T.shard_reader.read_array(store, "0")
        bad = model.check(vol)
        self.assertEqual(bad[:10], [], "seed %d: %d regions hold no acceptable version"
                         % (seed, len(bad)))
        levels = pyramid(vol, BRICK)
        for level in range(1, len(levels)):
            self.assertEqual(T.check_shard_reader(store, levels[level], str(level)), "",
                             "seed %d: level %d is not the reduction of level %d"
                             % (seed, level, level - 1))


if __name__ == "__main__":
    T.main()
