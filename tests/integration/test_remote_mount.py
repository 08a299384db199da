#!/usr/bin/python3
"""Remote volumes mounted over HTTP (issue 17): `brickfs mount http://.../v.zarr MNT`
against a real nginx on 127.0.0.1 serving a store brickfs wrote. Planes along
every axis (and of a pyramid level) equal numpy's (and a local mount's); a cold
plane fetches at most 1.1x the stored bytes of its blocks and shard indexes
(counted from nginx's access log); a second mount reads cached planes with no
request but the metadata's revalidation; -o offline reads only the cache; a
server failing reads gives EIO with the URL and HTTP status in .brickfs/status
and the log; bad options are refused before mounting; brickfs cache info/clear.

    /usr/bin/python3 tests/integration/test_remote_mount.py --brickfs build/brickfs [-k name]
"""
import errno
import json
import os
import shutil
import struct
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import brickfs_testlib as T  # noqa: E402
import remote_server as RS  # noqa: E402
import shard_reader  # noqa: E402

SHAPE = (40, 96, 100)
BLOCK = (8, 16, 16)
BRICK = (16, 32, 32)
EMPTY = 0xFFFFFFFFFFFFFFFF
AXES = ("z", "y", "x")


def plane_of(vol, axis, i):
    return {"z": lambda: vol[i], "y": lambda: vol[:, i, :], "x": lambda: vol[:, :, i]}[axis]()


def read_plane(mnt, axis, i, level=None):
    d = mnt if level is None else os.path.join(mnt, "levels", str(level))
    return T.tiff_from_bytes(T.read_bytes(os.path.join(d, axis, T.canonical(i))))[0]


class RemoteMountTest(T.ClassRootCase):
    @classmethod
    def setUpClass(cls):
        if not RS.have_nginx():
            raise unittest.SkipTest("nginx is not installed (Debian nginx-light)")
        super().setUpClass()
        cls.root = cls.tmp
        cls.vol = T.make_volume(SHAPE, "uint16", kind="smooth", seed=71)
        cls.vol[:16, :32, :32] = 0   # brick (0,0,0) all fill: no shard file (a 404 means fill)
        cls.store = RS.make_brickfs_store(cls.root.join(), cls.root.join("srv", "v.zarr"),
                                          cls.vol, BLOCK, BRICK)
        cls.meta = shard_reader.meta_of(cls.store, "0")
        cls.nginx = RS.Nginx(cls.root.join("srv"), cls.root.join("nginx"))
        cls.nginx.__enter__()
        cls.addClassCleanup(cls.nginx.stop)  # runs before the root's cleanup
        cls.url = cls.nginx.url + "/v.zarr"

    def cache(self, name):
        d = self.root.join("caches", name)
        shutil.rmtree(d, ignore_errors=True)
        return d

    def mount(self, name, cache, options=(), url=None):
        return T.Mount(url or self.url, self.root.join("mnt-" + name),
                       ["cache_dir=" + cache] + list(options))

    def stored_bytes_of(self, m, axis, i):
        """Bytes of the blocks plane (axis, i) needs plus the indexes of their shards."""
        k = AXES.index(axis)
        grid = tuple(-(-s // b) for s, b in zip(m.shape, m.block_shape))
        ranges = [range(g) for g in grid]
        ranges[k] = [i // m.block_shape[k]]
        indexes = {}
        total = 0
        for b in np.ndindex(*[len(r) for r in ranges]):
            block = tuple(ranges[d][b[d]] for d in range(3))
            shard = tuple(block[d] // m.blocks_per_shard[d] for d in range(3))
            path = m.shard_path(shard)
            if not os.path.exists(path):
                continue  # fill: its 404 has no body
            if path not in indexes:
                with open(path, "rb") as f:
                    data = f.read()
                ib = data[len(data) - m.index_bytes:]
                indexes[path] = [struct.unpack_from("<QQ", ib, 16 * j) for j in range(m.n_index)]
                total += m.index_bytes
            inner = tuple(block[d] % m.blocks_per_shard[d] for d in range(3))
            off, n = indexes[path][int(np.ravel_multi_index(inner, m.blocks_per_shard))]
            if off != EMPTY:
                total += n
        return total

    # ------------------------------------------------------------------ reads
    def test_planes_along_every_axis_match_numpy(self):
        cache = self.cache("planes")
        with self.mount("planes", cache) as m:
            st = T.read_status(m.mnt)
            self.assertEqual(st["store"], self.url)
            self.assertTrue(st["read_only"])
            for axis in AXES:
                n = self.vol.shape[AXES.index(axis)]
                self.assertEqual(len(os.listdir(os.path.join(m.mnt, axis))), n)
                for i in range(n):
                    got = read_plane(m.mnt, axis, i)
                    want = plane_of(self.vol, axis, i)
                    self.assertTrue(np.array_equal(got, want), (axis, i))
            with self.assertRaises(OSError) as e:
                with open(os.path.join(m.mnt, "z", "00100.tif"), "wb") as f:
                    f.write(b"x")
            self.assertIn(e.exception.errno, (errno.EROFS, errno.EACCES, errno.EPERM))
            remote_levels = {axis: read_plane(m.mnt, axis, 1, level=1) for axis in AXES}
            m.umount_checked(self)
        with T.Mount(self.store, self.root.join("mnt-planes-local"), ["ro"]) as m:
            for axis in AXES:
                self.assertTrue(np.array_equal(remote_levels[axis], read_plane(m.mnt, axis, 1, level=1)),
                                axis)
            m.umount_checked(self)

    def test_a_cold_plane_fetches_its_blocks_and_indexes_only(self):
        self.check_cold_planes(self.url, self.store, self.meta, self.vol)

    def test_a_cold_plane_of_a_larger_volume_fetches_each_block_once(self):
        # Planes of many block rows: the engine prefetches rows ahead of the
        # reader, in other groupings than the reads ask for.
        vol = T.make_volume((32, 256, 256), "uint16", kind="smooth", seed=72)
        store = RS.make_brickfs_store(self.root.join(), self.root.join("srv", "big.zarr"),
                                      vol, (16, 32, 32), (32, 128, 128))
        self.check_cold_planes(self.nginx.url + "/big.zarr", store,
                               shard_reader.meta_of(store, "0"), vol)

    def check_cold_planes(self, url, store, meta, vol):
        for axis in AXES:
            i = vol.shape[AXES.index(axis)] // 2 + 1
            with self.mount("cold-" + axis, self.cache("cold-" + axis), url=url) as m:
                mark = self.nginx.mark()
                got = read_plane(m.mnt, axis, i)
                reqs = self.nginx.since(mark)
                m.umount_checked(self)
            self.assertTrue(np.array_equal(got, plane_of(vol, axis, i)), axis)
            fetched = sum(q["bytes"] for q in reqs if "/0/c/" in q["path"])
            stored = self.stored_bytes_of(meta, axis, i)
            print("cold %s plane %d: fetched %d bytes in %d requests, its blocks + indexes %d "
                  "(ratio %.3f)" % (axis, i, fetched, len(reqs), stored, fetched / stored))
            self.assertGreaterEqual(fetched, stored, (axis, reqs))
            self.assertLessEqual(fetched, 1.1 * stored, (axis, reqs))
            self.assertFalse([q for q in reqs if "/0/c/" not in q["path"] and
                              not q["path"].endswith("zarr.json")], reqs)

    def test_a_second_mount_reads_cached_planes_with_only_metadata_revalidation(self):
        cache = self.cache("second")
        planes = [("z", 3), ("z", 30), ("y", 50), ("x", 7), ("x", 99)]
        with self.mount("second-a", cache) as m:
            for axis, i in planes:
                read_plane(m.mnt, axis, i)
            m.umount_checked(self)
        mark = self.nginx.mark()
        with self.mount("second-b", cache) as m:
            for axis, i in planes:
                self.assertTrue(np.array_equal(read_plane(m.mnt, axis, i), plane_of(self.vol, axis, i)))
            m.umount_checked(self)
        # The second mount's requests: the metadata, revalidated (304, no body).
        reqs = self.nginx.since(mark)
        self.assertEqual(sorted(q["path"] for q in reqs), ["/v.zarr/0/zarr.json", "/v.zarr/zarr.json"], reqs)
        self.assertEqual({q["status"] for q in reqs}, {304}, reqs)

        # Offline: the cached planes, no request at all; anything else is EIO.
        mark = self.nginx.mark()
        with self.mount("offline", cache, ["offline"]) as m:
            for axis, i in planes:
                self.assertTrue(np.array_equal(read_plane(m.mnt, axis, i), plane_of(self.vol, axis, i)))
            with self.assertRaises(OSError) as e:
                read_plane(m.mnt, "y", 10)
            self.assertEqual(e.exception.errno, errno.EIO)
            errors = T.read_status(m.mnt)["errors"]
            self.assertTrue(any("offline" in x["message"] and self.url in x["message"] for x in errors),
                            errors)
            m.umount_checked(self)
        self.assertEqual(self.nginx.since(mark), [], "an offline mount made requests")

        # brickfs cache info / clear URL.
        r = T.brickfs("cache", "info", "--cache-dir", cache)
        self.assertTrue(r.ok, r.describe())
        self.assertIn(self.url + ":", r.stdout)
        r = T.brickfs("cache", "clear", self.url + "/", "--cache-dir", cache)
        self.assertTrue(r.ok, r.describe())
        self.assertIn("removed", r.stdout)
        r = T.brickfs("cache", "info", "--cache-dir", cache)
        self.assertNotIn(self.url, r.stdout)
        os.makedirs(self.root.join("mnt-offline-cleared"), exist_ok=True)
        r = T.brickfs("mount", self.url, self.root.join("mnt-offline-cleared"), "-o",
                      "offline,cache_dir=" + cache)
        self.assertEqual(r.returncode, 2, r.describe())
        self.assertIn("offline", r.stderr)

    # ----------------------------------------------------------------- errors
    def test_a_failing_server_gives_eio_with_url_and_status_in_the_status(self):
        with RS.FaultProxy(self.nginx.port) as proxy:
            url = proxy.url + "/v.zarr"
            cache = self.cache("forbidden")
            proxy.add("status", match="/0/c/1/", count=-1, status=403)  # z 16..31
            with self.mount("forbidden", cache, url=url) as m:
                with self.assertRaises(OSError) as e:
                    read_plane(m.mnt, "z", 20)
                self.assertEqual(e.exception.errno, errno.EIO)
                errors = T.read_status(m.mnt)["errors"]
                self.assertTrue(any(url + "/0/c/1/" in x["message"] and "HTTP 403" in x["message"]
                                    for x in errors), errors)
                # 404 is fill, not an error: the plane through the all-fill brick reads.
                got = read_plane(m.mnt, "z", 0)
                self.assertTrue(np.array_equal(got, self.vol[0]))
                self.assertFalse(got[:32, :32].any())
                m.umount_checked(self)
            with open(os.path.join(cache, "daemon.log"), errors="replace") as f:
                log = f.read()
            self.assertIn("HTTP 403", log)
            self.assertIn(url + "/0/c/1/", log)
        # No server at all: the mount fails, naming the URL.
        port = RS.free_port()
        dead = "http://127.0.0.1:%d/v.zarr" % port
        os.makedirs(self.root.join("mnt-dead"), exist_ok=True)
        r = T.brickfs("mount", dead, self.root.join("mnt-dead"), "-o",
                      "cache_dir=" + self.cache("dead"), timeout=120)
        self.assertEqual(r.returncode, 2, r.describe())
        self.assertIn(dead + "/", r.stderr)
        self.assertFalse(T.is_mounted(self.root.join("mnt-dead")))

    def test_options_are_checked_before_mounting(self):
        mnt = self.root.join("mnt-refused")
        os.makedirs(mnt, exist_ok=True)
        cases = [
            (["-o", "rw"], "read-only"),
            (["-o", "cache_size=0"], "more than 0"),
            (["-o", "cache_dir=" + os.path.join(mnt, "c")], "inside the mount point"),
        ]
        for extra, needle in cases:
            r = T.brickfs("mount", self.url, mnt, *extra)
            self.assertEqual(r.returncode, 2, (extra, r.describe()))
            self.assertIn(needle, r.stderr, extra)
        r = T.brickfs("mount", "http://user:secret@127.0.0.1:1/v.zarr", mnt)
        self.assertEqual(r.returncode, 2, r.describe())
        self.assertNotIn("secret", r.stderr)
        auth = self.root.join("open.auth")
        with open(auth, "w") as f:
            f.write("reader:pa55word\n")
        os.chmod(auth, 0o644)
        r = T.brickfs("mount", self.url, mnt, "-o", "auth_file=" + auth + ",cache_dir=" + self.cache("a"))
        self.assertEqual(r.returncode, 2, r.describe())
        self.assertIn("chmod 600", r.stderr)
        self.assertNotIn("pa55word", r.stderr)
        r = T.brickfs("mount", self.store, mnt, "-o", "offline")
        self.assertEqual(r.returncode, 2, r.describe())
        self.assertIn("remote store", r.stderr)
        self.assertFalse(T.is_mounted(mnt))


if __name__ == "__main__":
    T.main()
