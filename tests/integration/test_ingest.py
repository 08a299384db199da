#!/usr/bin/python3
"""Integration tests of brickfs: slices in through FUSE, virtual TIFFs out.

    /usr/bin/python3 tests/integration/test_ingest.py --brickfs build/brickfs [-k PATTERN] [--keep]

(or env BRICKFS_BIN). Needs /dev/fuse and fusermount3 (else every test is
skipped, exit status 77), tiffinfo/tiffcp (libtiff-tools), and for the zarrita
check node + tests/interop/node_modules (`npm ci` there) or BRICKFS_NODE_MODULES;
BRICKFS_SKIP_NODE=1 skips only that check.

What a user does, and what each test checks (DESIGN.md sections 3-6, 10):
  TestUserSession     brickfs create; mount; one `cp` of shuffled, mixed-encoding
                      slices; ls/stat/read z, y, x through tifffile, PIL, tiffinfo,
                      tiffcp; random reads; umount; info --json; the store through
                      two independent readers; read-only remount.
  TestFirstIndex      -o first_index=1, mount -f.
  TestBadInput        every kind of bad slice is refused at close/create, named in
                      the status, and changes nothing.
  TestBufferedAndRewrites
                      reads of slices still in the slab buffer, missing slices,
                      slices written after their slab was committed, overwrites.
"""

import errno
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import brickfs_testlib as T  # noqa: E402


class BrickfsCase(T.ClassRootCase):
    maxDiff = 4000


    # ---------------------------------------------------------------- status

    def check_status_basics(self, st, mnt_pid=None):
        for key in ("store", "pid", "shape", "dtype", "slices", "slabs", "memory", "bytes",
                    "errors"):
            self.assertIn(key, st, "status lacks %r: %s" % (key, json.dumps(st)))
        for key in ("received", "expected", "missing"):
            self.assertIn(key, st["slices"])
        for key in ("buffered", "flushing", "flushed", "spooled"):
            self.assertIn(key, st["slabs"])
        for key in ("used", "budget", "peak"):
            self.assertIn(key, st["memory"])
        for key in ("received", "written", "compressed", "write_amplification"):
            self.assertIn(key, st["bytes"])
        if mnt_pid is not None:
            self.assertEqual(st["pid"], mnt_pid)
        mem = st["memory"]
        self.assertLessEqual(mem["used"], mem["budget"], "memory used over budget: %s" % mem)
        self.assertLessEqual(mem["peak"], mem["budget"], "memory peak over budget: %s" % mem)

    # -------------------------------------------------------------- listings

    def check_listing(self, mnt, axis, n):
        names = sorted(os.listdir(os.path.join(mnt, axis)))
        want = [T.canonical(i) for i in range(n)]
        if names != want:
            extra = sorted(set(names) - set(want))
            missing = sorted(set(want) - set(names))
            self.fail("ls %s/: %d entries; unexpected %s; missing %s"
                      % (axis, len(names), extra[:10], missing[:10]))

    # ---------------------------------------------------------------- planes

    def check_virtual_layout(self, where, info, shape, dtype):
        """DESIGN 6: little-endian classic TIFF, one IFD, uncompressed strips."""
        problems = []
        if info["pages"] != 1:
            problems.append("%d pages" % info["pages"])
        if info["byteorder"] != "<":
            problems.append("byte order %r" % info["byteorder"])
        if info["bigtiff"]:
            problems.append("BigTIFF for a file under 4 GiB")
        if info["compression"] != 1:
            problems.append("compression %d" % info["compression"])
        if info["tiled"]:
            problems.append("tiled")
        if info["samplesperpixel"] != 1:
            problems.append("%d samples per pixel" % info["samplesperpixel"])
        if info["photometric"] != 1:
            problems.append("photometric %d (want 1 = min-is-black)" % info["photometric"])
        if tuple(info["shape"]) != tuple(shape):
            problems.append("shape %r want %r" % (info["shape"], shape))
        if np.dtype(info["dtype"]) != np.dtype(dtype):
            problems.append("dtype %s want %s" % (info["dtype"], dtype))
        if problems:
            self.fail("%s: %s" % (where, ", ".join(problems)))

    def check_axis_planes(self, mnt, vol, axis, step=1, pil=False):
        """Every `step`-th plane of MOUNT/axis/ equals the volume's plane:
        size from stat before reading == bytes read; tifffile (and PIL) decode."""
        n = {"z": vol.shape[0], "y": vol.shape[1], "x": vol.shape[2]}[axis]
        bad = []
        for i in range(0, n, step):
            p = os.path.join(mnt, axis, T.canonical(i))
            want = {"z": lambda: vol[i], "y": lambda: vol[:, i, :], "x": lambda: vol[:, :, i]}[axis]()
            try:
                size = os.stat(p).st_size
                data = T.read_bytes(p)
                if len(data) != size:
                    bad.append("%s: st_size %d but %d bytes read" % (p, size, len(data)))
                    continue
                got, info = T.tiff_from_bytes(data)
                self.check_virtual_layout(p, info, want.shape, vol.dtype)
                if not np.array_equal(got, want):
                    nd = int((got != want).sum()) if got.shape == want.shape else -1
                    bad.append("%s: %s voxels differ (tifffile)" % (p, nd))
                    continue
                if pil:
                    g2 = T.pil_array(data)
                    if g2.dtype != vol.dtype or not np.array_equal(g2, want):
                        bad.append("%s: PIL reads %s %s, differs" % (p, g2.dtype, g2.shape))
            except (OSError, ValueError, AssertionError) as e:
                bad.append("%s: %s: %s" % (p, type(e).__name__, e))
            if len(bad) >= 5:
                break
        if bad:
            self.fail("%s/ planes wrong (first %d):\n  %s" % (axis, len(bad), "\n  ".join(bad)))

    def check_tiff_tools(self, mnt, vol, zs, workdir):
        """tiffinfo exits 0 without errors; tiffcp copies a virtual slice to a real file
        whose pixels equal the plane; cp gives a file of exactly st_size bytes."""
        for z in zs:
            p = os.path.join(mnt, "z", T.canonical(z))
            r = T.run(["tiffinfo", p], timeout=30)
            self.assertTrue(r.ok and "error" not in (r.stdout + r.stderr).lower(),
                            "tiffinfo %s:\n%s" % (p, r.describe()))
            self.assertIn("Image Width: %d Image Length: %d" % (vol.shape[2], vol.shape[1]),
                          r.stdout)
            self.assertIn("Bits/Sample: %d" % (vol.dtype.itemsize * 8), r.stdout)
            out = os.path.join(workdir, "tiffcp_%d.tif" % z)
            r = T.run(["tiffcp", p, out], timeout=60)
            self.assertTrue(r.ok and "error" not in r.stderr.lower(),
                            "tiffcp %s:\n%s" % (p, r.describe()))
            got = T.decode_tiff_file(out)
            self.assertTrue(np.array_equal(got, vol[z]), "tiffcp of %s differs from plane" % p)
            out2 = os.path.join(workdir, "cp_%d.tif" % z)
            r = T.run(["cp", p, out2], timeout=60)
            self.assertTrue(r.ok, r.describe())
            self.assertEqual(os.path.getsize(out2), os.stat(p).st_size,
                             "cp of %s: size differs from st_size" % p)

    def check_random_reads(self, path, workdir, seed, n_random=40):
        """pread(offset, length) == the bytes of the same file copied out with cp,
        including ranges across the header/pixel boundary and past EOF."""
        ref_path = os.path.join(workdir, "ref_%s_%s" % (os.path.basename(os.path.dirname(path)),
                                                       os.path.basename(path)))
        r = T.run(["cp", path, ref_path], timeout=60)
        self.assertTrue(r.ok, r.describe())
        ref = T.read_bytes(ref_path)
        size = os.stat(path).st_size
        self.assertEqual(len(ref), size, "cp of %s gave %d bytes, st_size %d"
                         % (path, len(ref), size))
        _, info = T.tiff_from_bytes(ref)
        b = info["dataoffsets"][0]  # first pixel byte
        ranges = [(0, 1), (0, 8), (0, b), (0, b + 1), (max(b - 1, 0), 2), (max(b - 5, 0), 100),
                  (max(b - 100, 0), 4096 + 7), (b, 1), (b, size - b), (size - 1, 1),
                  (size - 10, 100), (size, 10), (size + 1000, 10), (0, size + 5),
                  (4095, 2), (4096, 4096), (65535, 3), (131071, 131075)]
        rng = np.random.default_rng(seed)
        for _ in range(n_random):
            off = int(rng.integers(0, size + 64))
            ln = int(np.exp(rng.uniform(0, np.log(200000))))
            ranges.append((off, ln))
        bad = []
        fd = os.open(path, os.O_RDONLY)
        try:
            for off, ln in ranges:
                if off < 0 or ln <= 0:
                    continue
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                try:
                    got = os.pread(fd, ln, off)
                except OSError as e:
                    bad.append("pread(%d, %d): %s" % (off, ln, e))
                    continue
                want = ref[off:off + ln]
                if got != want:
                    diff = next((i for i, (a, c) in enumerate(zip(got, want)) if a != c), None)
                    bad.append("pread(off=%d, len=%d): got %d bytes, want %d; first diff at +%s"
                               % (off, ln, len(got), len(want), diff))
        finally:
            os.close(fd)
        if bad:
            self.fail("%s (size %d, pixels at %d):\n  %s" % (path, size, b, "\n  ".join(bad[:10])))

    # ------------------------------------------------------------- the store

    def check_info(self, store, shape, dtype, block=None, brick=None, missing=(),
                   finalized=True):
        info = T.brickfs_info_json(store)
        for key in ("shape", "dtype", "block", "brick", "zstd_level", "slices_present",
                    "missing", "bytes_stored", "bytes_raw", "compression_ratio", "finalized"):
            self.assertIn(key, info, "info --json lacks %r: %s" % (key, info))
        self.assertEqual(list(info["shape"]), list(shape))
        self.assertEqual(info["dtype"], np.dtype(dtype).name)
        if block is not None:
            self.assertEqual(list(info["block"]), list(block))
        if brick is not None:
            self.assertEqual(list(info["brick"]), list(brick))
        self.assertEqual([list(m) for m in info["missing"]], [list(m) for m in missing])
        n_missing = sum(b - a + 1 for a, b in missing)
        self.assertEqual(info["slices_present"], shape[0] - n_missing)
        self.assertEqual(info["bytes_raw"], int(np.prod(shape)) * np.dtype(dtype).itemsize)
        if finalized is not None:
            self.assertIs(info["finalized"], finalized)
        if info["bytes_stored"] > 0:
            self.assertAlmostEqual(info["compression_ratio"],
                                   info["bytes_raw"] / info["bytes_stored"], delta=0.05
                                   * info["bytes_raw"] / info["bytes_stored"] + 0.01)
        r = T.brickfs("info", store)
        self.assertTrue(r.ok and r.stdout.strip(), "brickfs info:\n" + r.describe())
        return info

    def check_store_format(self, store, shape, dtype, block, brick):
        """DESIGN 4: OME-Zarr 0.5 group + level-0 array with one sharding codec."""
        with open(os.path.join(store, "zarr.json")) as f:
            g = json.load(f)
        self.assertEqual(g.get("zarr_format"), 3)
        self.assertEqual(g.get("node_type"), "group")
        ome = g.get("attributes", {}).get("ome", {})
        self.assertEqual(ome.get("version"), "0.5", "attributes.ome.version")
        ms = ome.get("multiscales")
        self.assertTrue(isinstance(ms, list) and ms, "attributes.ome.multiscales")
        self.assertEqual([a.get("name") for a in ms[0].get("axes", [])], ["z", "y", "x"])
        paths = [d.get("path") for d in ms[0].get("datasets", [])]
        self.assertEqual(paths[:1], ["0"], "first dataset is level 0")
        meta = T.shard_reader.meta_of(store, "0")  # raises StoreError on any deviation
        a = meta.raw
        self.assertEqual(list(a["shape"]), list(shape))
        self.assertEqual(a["data_type"], np.dtype(dtype).name)
        self.assertEqual(list(meta.shard_shape), list(brick))
        self.assertEqual(list(meta.block_shape), list(block))
        self.assertEqual(a.get("fill_value"), 0)
        self.assertEqual(a.get("dimension_names"), ["z", "y", "x"])
        self.assertEqual(a.get("chunk_key_encoding", {}).get("name"), "default")
        self.assertEqual(meta.key_sep, "/")
        sc = a["codecs"][0]["configuration"]
        self.assertEqual([c["name"] for c in sc["codecs"]], ["bytes", "zstd", "crc32c"])
        self.assertEqual(sc["codecs"][0].get("configuration", {}).get("endian"), "little")
        self.assertEqual([c["name"] for c in sc["index_codecs"]], ["bytes", "crc32c"])
        self.assertEqual(sc.get("index_location"), "end")
        # shard files only inside the grid, at c/KZ/KY/KX
        grid = meta.shard_grid()
        cdir = os.path.join(store, "0", "c")
        found = []
        for root, dirs, files in os.walk(cdir):
            for fn in files:
                rel = os.path.relpath(os.path.join(root, fn), cdir).split(os.sep)
                self.assertEqual(len(rel), 3, "odd file in 0/c: %s" % "/".join(rel))
                k = tuple(int(v) for v in rel)
                self.assertTrue(all(0 <= k[i] < grid[i] for i in range(3)),
                                "shard %s outside grid %s" % (k, grid))
                found.append(k)
        # further pyramid levels, if listed, must be readable and half the size
        prev = tuple(shape)
        for p in paths[1:]:
            lvl = T.shard_reader.read_array(store, p)
            want = tuple((n + 1) // 2 for n in prev)
            self.assertEqual(lvl.shape, want, "level %s shape" % p)
            prev = lvl.shape
        return meta, found

    def check_interop(self, store, vol):
        d = T.check_shard_reader(store, vol)
        self.assertEqual(d, "", d)
        d = T.check_zarrita(store, vol, workdir=self.tmp.path)
        self.assertEqual(d, "", d)

    def snapshot_store(self, store):
        """{relative path: bytes} of every file except brickfs's private .brickfs/."""
        out = {}
        for root, dirs, files in os.walk(store):
            rel_root = os.path.relpath(root, store)
            if rel_root.split(os.sep)[0] == ".brickfs":
                continue
            for fn in files:
                p = os.path.join(root, fn)
                out[os.path.relpath(p, store)] = T.read_bytes(p)
        return out

    def check_readonly_mount(self, store, mnt, vol, workdir, planes_step=1, extra=()):
        before = self.snapshot_store(store)
        with T.Mount(store, mnt, options=["ro"] + list(extra)) as m:
            with self.subTest("ro: status"):
                st = T.read_status(mnt)
                self.check_status_basics(st)
                self.assertEqual(list(st["shape"]), list(vol.shape))
            with self.subTest("ro: listings"):
                self.check_listing(mnt, "z", vol.shape[0])
                self.check_listing(mnt, "y", vol.shape[1])
                self.check_listing(mnt, "x", vol.shape[2])
            with self.subTest("ro: z planes"):
                self.check_axis_planes(mnt, vol, "z", pil=True)
            with self.subTest("ro: y planes"):
                self.check_axis_planes(mnt, vol, "y", step=planes_step)
            with self.subTest("ro: x planes"):
                self.check_axis_planes(mnt, vol, "x", step=planes_step)
            with self.subTest("ro: writing is refused"):
                src = os.path.join(workdir, "ro_probe_1.tif")
                T.write_slice(src, vol[1], "raw")
                r = T.cp([src], os.path.join(mnt, "z") + "/")
                self.assertNotEqual(r.returncode, 0, "cp into a read-only mount succeeded")
                try:
                    fd = os.open(os.path.join(mnt, "z", "probe_2.tif"),
                                 os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                    os.close(fd)
                    self.fail("creating z/probe_2.tif on a read-only mount succeeded")
                except OSError as e:
                    self.assertIn(e.errno, (errno.EROFS, errno.EACCES, errno.EPERM), e)
            m.umount_checked(self)
        after = self.snapshot_store(store)
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        self.assertEqual(changed, [], "a read-only mount changed store files")


# =====================================================================================


def name_styles(z):
    """Several real-world spellings of slice z (last run of digits is the index)."""
    return ["scan_%d.tif" % z, "stack-v2_%04d.tiff" % z, "%d.tif" % z,
            "img.%05d.tif" % z][z % 4]


class TestUserSession(BrickfsCase):
    """DESIGN 3-6: the session from the brief, on two volumes."""

    def session(self, label, vol, store, src_names, geometry, created, planes_step=1,
                pil_every=1, tools_zs=(), read_paths=(), zero_bricks=(), zero_blocks=()):
        Z, Y, X = vol.shape
        work = self.tmp.sub(label, "work")
        mnt = self.tmp.join(label, "mnt")
        src = self.tmp.sub(label, "src")
        files = T.write_stack(src, vol, src_names)
        order = T.shuffled(files.values(), seed=Z * 31 + Y)
        block, brick = geometry

        with T.Mount(store, mnt) as m:
            self.assertTrue(os.path.isdir(store), "store directory missing after mount")
            with self.subTest("status before the first slice"):
                st = T.read_status(mnt)
                self.check_status_basics(st, m.pid)
                self.assertEqual(os.path.realpath(st["store"]), os.path.realpath(store))
                if created:
                    self.assertEqual(list(st["shape"]), list(vol.shape))
                    self.assertEqual(st["dtype"], vol.dtype.name)
                    self.assertEqual(st["slices"]["expected"], Z)
                    self.assertEqual(st["slices"]["missing"], [[0, Z - 1]])
                else:
                    self.assertIsNone(st["shape"])
                    self.assertIsNone(st["dtype"])
                    self.assertIsNone(st["slices"]["expected"])
                self.assertEqual(st["slices"]["received"], 0)
                self.assertEqual(st["errors"], [])

            t0 = time.monotonic()
            r = T.cp(order, os.path.join(mnt, "z") + "/", timeout=300)
            t_cp = time.monotonic() - t0
            self.assertTrue(r.ok, "one cp of %d slices failed:\n%s" % (len(order), r.describe()))

            with self.subTest("status after cp"):
                st = T.read_status(mnt)
                self.check_status_basics(st, m.pid)
                self.assertEqual(st["errors"], [])
                self.assertEqual(list(st["shape"]), list(vol.shape))
                self.assertEqual(st["dtype"], vol.dtype.name)
                self.assertEqual(st["slices"]["received"], Z)
                self.assertEqual(st["slices"]["missing"], [])
                self.assertGreater(st["bytes"]["received"], 0)
                if created:
                    self.assertEqual(st["slices"]["expected"], Z)
                    # every slab is complete: all get flushed without unmount
                    n_slabs = -(-Z // block[0])
                    st = T.wait_status(mnt, lambda s: s["slabs"]["flushed"] >= n_slabs,
                                       what="all %d slabs flushed" % n_slabs)
                    self.assertEqual(st["slabs"]["buffered"], 0)
                else:
                    self.assertIn(st["slices"]["expected"], (None, Z))
                    # a growing volume's last partial slab cannot be known complete
                    full = Z // block[0]
                    st = T.wait_status(mnt, lambda s: s["slabs"]["flushed"] >= full,
                                       what="%d complete slabs flushed" % full)
                    if Z % block[0]:
                        self.assertGreaterEqual(st["slabs"]["buffered"]
                                                + st["slabs"]["spooled"], 1)

            with self.subTest("ls z/ y/ x/"):
                self.check_listing(mnt, "z", Z)
                self.check_listing(mnt, "y", Y)
                self.check_listing(mnt, "x", X)
            with self.subTest("stat of the writer's names still resolves"):
                # DESIGN 3: so that cp -p and rsync work. Its size is either the size
                # written (what rsync compares) or the virtual plane's size.
                for z in range(min(Z, 4)):
                    p = os.path.join(mnt, "z", src_names(z))
                    st = os.stat(p)
                    self.assertTrue(os.path.isfile(p), p)
                    self.assertIn(st.st_size, (os.path.getsize(files[z]), os.stat(
                        os.path.join(mnt, "z", T.canonical(z))).st_size), p)
            with self.subTest("z planes (tifffile, PIL), during ingest"):
                self.check_axis_planes(mnt, vol, "z", pil=True)
            with self.subTest("y planes during ingest"):
                self.check_axis_planes(mnt, vol, "y", step=planes_step)
            with self.subTest("x planes during ingest"):
                self.check_axis_planes(mnt, vol, "x", step=planes_step)
            with self.subTest("tiffinfo, tiffcp, cp"):
                self.check_tiff_tools(mnt, vol, tools_zs, work)
            for i, rp in enumerate(read_paths):
                with self.subTest("random reads of %s" % rp):
                    self.check_random_reads(os.path.join(mnt, rp), work, seed=i)
            with self.subTest("status at the end"):
                st = T.read_status(mnt)
                self.check_status_basics(st, m.pid)
                self.assertEqual(st["errors"], [])
            m.umount_checked(self)

        with self.subTest("brickfs info after umount"):
            self.check_info(store, vol.shape, vol.dtype, block, brick, missing=())
        with self.subTest("store format"):
            meta, shards = self.check_store_format(store, vol.shape, vol.dtype, block, brick)
            for k in zero_bricks:
                self.assertNotIn(k, shards, "brick %s is all fill value but has a file" % (k,))
        with self.subTest("all-fill blocks are not stored"):
            for brick_k, block_i in zero_blocks:
                info, blocks = T.shard_reader.read_shard(meta, brick_k)
                self.assertIsNotNone(info, "brick %s has no file" % (brick_k,))
                self.assertNotIn(block_i, blocks, "all-zero block %d of brick %s is stored"
                                 % (block_i, brick_k))
        with self.subTest("independent readers (shard_reader.py, zarrita)"):
            self.check_interop(store, vol)
        with self.subTest("read-only remount"):
            self.check_readonly_mount(store, self.tmp.join(label, "mnt_ro"), vol, work,
                                      planes_step=planes_step)
        sys.stderr.write("[%s: cp of %d slices took %.2fs] " % (label, Z, t_cp))

    def test_small_geometry_uint8_created(self):
        """40 slices of 70x90 uint8 into a store made by `brickfs create` with
        block 8,16,16 and brick 16,32,32 (non-multiple edges in y and x)."""
        vol = T.make_volume((40, 70, 90), "uint8", "random", seed=1)
        vol[:, :32, 64:] = 0      # bricks (kz, 0, 2) are all fill value: no files
        vol[8:16, 32:48, 0:16] = 0  # block (1,2,0) = block 4 of brick (0,1,0) is all fill
        store = self.tmp.join("u8", "vol.zarr")
        T.brickfs_create(store, vol.shape, "uint8", block=(8, 16, 16), brick=(16, 32, 32))
        with self.subTest("info --json of a fresh store"):
            info = T.brickfs_info_json(store)
            self.assertEqual(list(info["shape"]), [40, 70, 90])
            self.assertEqual(info["dtype"], "uint8")
            self.assertEqual(list(info["block"]), [8, 16, 16])
            self.assertEqual(list(info["brick"]), [16, 32, 32])
            self.assertEqual(info["slices_present"], 0)
            self.assertEqual([list(m) for m in info["missing"]], [[0, 39]])
        # block 4 in brick (0,1,0): local block (1,0,0) -> (1*2+0)*2+0 = 4
        self.session("u8", vol, store, name_styles, ((8, 16, 16), (16, 32, 32)), created=True,
                     tools_zs=range(0, 40, 3),
                     read_paths=["z/00003.tif", "y/00010.tif", "x/00077.tif"],
                     zero_bricks=[(kz, 0, 2) for kz in range(3)],
                     zero_blocks=[((0, 1, 0), 4)])

    def test_default_geometry_uint16_new_store(self):
        """70 slices of 300x260 uint16, store created by mount, default block 32^3 and
        brick 256^3: the last slab (z 64..69) stays buffered until unmount."""
        vol = T.make_volume((70, 300, 260), "uint16", "smooth", seed=2)
        store = self.tmp.join("u16", "vol.zarr")
        self.assertFalse(os.path.exists(store))
        self.session("u16", vol, store, lambda z: "scan_%d.tif" % z,
                     ((32, 32, 32), (256, 256, 256)), created=False,
                     tools_zs=range(0, 70, 9),
                     read_paths=["z/00066.tif", "z/00001.tif", "y/00299.tif", "x/00130.tif"])


class TestFirstIndex(BrickfsCase):
    """-o first_index=1 (names img_0001.tif ... are z 0 ...), mount in the foreground."""

    def test_first_index_foreground(self):
        vol = T.make_volume((12, 20, 30), "uint8", "smooth", seed=3)
        src = self.tmp.sub("src")
        files = T.write_stack(src, vol, lambda z: "img_%04d.tif" % (z + 1))
        store = self.tmp.join("fi.zarr")
        mnt = self.tmp.join("mnt")
        with T.Mount(store, mnt, options=["first_index=1"], foreground=True) as m:
            r = T.cp(T.shuffled(files.values(), 5), os.path.join(mnt, "z") + "/")
            self.assertTrue(r.ok, r.describe())
            with self.subTest("ls z/"):
                self.check_listing(mnt, "z", 12)
            with self.subTest("planes"):
                self.check_axis_planes(mnt, vol, "z", pil=True)
                self.check_axis_planes(mnt, vol, "y")
                self.check_axis_planes(mnt, vol, "x")
            with self.subTest("index below first_index is refused"):
                p0 = os.path.join(src, "img_0000.tif")
                T.write_slice(p0, vol[0] // 2 + 1, "raw")
                r = T.cp([p0], os.path.join(mnt, "z") + "/")
                self.assertNotEqual(r.returncode, 0, "img_0000.tif (z=-1) was accepted")
                self.check_listing(mnt, "z", 12)
                self.check_axis_planes(mnt, vol, "z")
            with self.subTest("status"):
                st = T.read_status(mnt)
                self.check_status_basics(st, m.pid)
                self.assertEqual(list(st["shape"]), [12, 20, 30])
                self.assertEqual(st["slices"]["received"], 12)
            m.umount_checked(self)
        with self.subTest("info"):
            self.check_info(store, vol.shape, vol.dtype, missing=())
        with self.subTest("independent readers"):
            self.check_interop(store, vol)


class TestBadInput(BrickfsCase):
    """DESIGN 10: bad slices are refused at close() (or create), named in the status,
    and change nothing; good slices afterwards still work."""

    def test_bad_input_matrix(self):
        import tifffile
        Z, Y, X = 16, 24, 40
        vol = T.make_volume((Z, Y, X), "uint8", "random", seed=4)
        store = self.tmp.join("bad.zarr")
        T.brickfs_create(store, vol.shape, "uint8", block=(8, 16, 16), brick=(16, 32, 32))
        src = self.tmp.sub("src")
        good = T.write_stack(src, vol, lambda z: "good_%d.tif" % z,
                             zs=[z for z in range(Z) if z != 5])
        expect = vol.copy()
        expect[5] = 0  # z=5 is never written by a good file until the end
        bad_dir = self.tmp.sub("badsrc")
        other = (255 - vol[3]).astype(np.uint8)  # what a wrongly accepted file would store

        def tiff_bytes(arr, **kw):
            p = os.path.join(bad_dir, "tmp.tif")
            tifffile.imwrite(p, arr, **kw)
            return T.read_bytes(p)

        def tiffcp_bytes(arr, flags):
            p = os.path.join(bad_dir, "tmp2.tif")
            T.write_slice(p, arr, flags)
            return T.read_bytes(p)

        raw_ok = tiff_bytes(other, photometric="minisblack")
        lc = tiffcp_bytes(other, "lzw")  # libtiff writes the IFD after the data
        zipped = tiffcp_bytes(other, "zip")
        cases = [
            # name, bytes, what
            ("notiff_3.tif", b"this is not a TIFF\n" * 200, "not a TIFF"),
            ("notiff_5.tif", os.urandom(Y * X + 200), "not a TIFF (random bytes)"),
            ("trunc_3.tif", raw_ok[:len(raw_ok) // 2], "truncated in the pixel data"),
            ("trunc_hdr_3.tif", raw_ok[:8], "truncated after the header"),
            ("trunc_lzw_3.tif", lc[:len(lc) // 2], "truncated, IFD lost (libtiff layout)"),
            ("trunc_zip_5.tif", zipped[:len(zipped) * 2 // 3], "truncated compressed strip"),
            ("rgb_3.tif", tiff_bytes(np.stack([other] * 3, axis=-1), photometric="rgb"),
             "RGB"),
            ("rgb_5.tif", tiff_bytes(np.stack([other] * 3, axis=-1), photometric="rgb",
                                     compression="zlib"), "RGB, deflate"),
            ("size_x_3.tif", tiff_bytes(np.zeros((Y, X + 1), np.uint8) + 7), "wrong width"),
            ("size_y_3.tif", tiff_bytes(np.zeros((Y - 1, X), np.uint8) + 7), "wrong height"),
            ("size_t_3.tif", tiff_bytes(np.ascontiguousarray(other.T)), "transposed"),
            ("dtype_u16_3.tif", tiff_bytes(other.astype(np.uint16)), "uint16 into uint8"),
            ("dtype_i8_3.tif", tiff_bytes(other.astype(np.int8)), "int8 into uint8"),
            ("dtype_f32_5.tif", tiff_bytes(other.astype(np.float32)), "float32 into uint8"),
        ]
        bad_paths = []
        for name, data, what in cases:
            p = os.path.join(bad_dir, name)
            with open(p, "wb") as f:
                f.write(data)
            bad_paths.append((name, p, what))
        nodigits = os.path.join(bad_dir, "nodigits.tif")
        tifffile.imwrite(nodigits, other)
        outside = os.path.join(bad_dir, "slice_%d.tif" % (Z + 3))
        tifffile.imwrite(outside, other)

        mnt = self.tmp.join("mnt")
        with T.Mount(store, mnt) as m:
            r = T.cp(T.shuffled(good.values(), 9), os.path.join(mnt, "z") + "/")
            self.assertTrue(r.ok, r.describe())
            T.wait_status(mnt, lambda s: s["slices"]["received"] == Z - 1,
                          what="%d slices received" % (Z - 1))
            with self.subTest("before"):
                self.check_axis_planes(mnt, expect, "z")

            zdir = os.path.join(mnt, "z") + "/"
            for name, p, what in bad_paths:
                with self.subTest("cp %s (%s) fails" % (name, what)):
                    r = T.cp([p], zdir)
                    self.assertNotEqual(r.returncode, 0, "cp of %s (%s) succeeded" % (name, what))
                    z = int(name.split("_")[-1].split(".")[0])
                    got, _ = T.tiff_from_bytes(T.read_bytes(os.path.join(mnt, "z",
                                                                          T.canonical(z))))
                    self.assertTrue(np.array_equal(got, expect[z]),
                                    "z=%d changed after rejected %s" % (z, name))
                    self.assertNotIn(name, os.listdir(os.path.join(mnt, "z")))

            with self.subTest("close() returns EINVAL/EIO"):
                for name, p, what in bad_paths[:3] + bad_paths[8:9]:
                    data = T.read_bytes(p)
                    target = os.path.join(mnt, "z", "py_" + name)
                    stage, err = None, None
                    fd = None
                    try:
                        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                        stage = "write"
                        off = 0
                        while off < len(data):
                            off += os.write(fd, data[off:off + 65536])
                        stage = "close"
                        f, fd = fd, None
                        os.close(f)
                        stage = "done"
                    except OSError as e:
                        err = e.errno
                    finally:
                        if fd is not None:
                            try:
                                os.close(fd)
                            except OSError:
                                pass
                    self.assertNotEqual(stage, "done", "writing %s through os.write/close "
                                        "succeeded" % target)
                    self.assertIn(err, (errno.EINVAL, errno.EIO),
                                  "%s failed at %s with %s" % (target, stage,
                                                               errno.errorcode.get(err, err)))

            with self.subTest("name without digits: create fails (EINVAL)"):
                r = T.cp([nodigits], zdir)
                self.assertNotEqual(r.returncode, 0, "cp of nodigits.tif succeeded")
                with self.assertRaises(OSError) as cm:
                    fd = os.open(os.path.join(mnt, "z", "nodigits.tif"),
                                 os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                    os.close(fd)
                self.assertEqual(cm.exception.errno, errno.EINVAL, cm.exception)
            with self.subTest("z outside the created shape: create fails"):
                r = T.cp([outside], zdir)
                self.assertNotEqual(r.returncode, 0, "cp of %s succeeded" % outside)

            with self.subTest("status names every rejected file"):
                st = T.read_status(mnt)
                self.check_status_basics(st, m.pid)
                errs = st["errors"]
                self.assertTrue(all(isinstance(e, dict) and isinstance(e.get("file"), str)
                                    and isinstance(e.get("message"), str) and e["message"]
                                    for e in errs), errs)
                unnamed = [name for name, p, what in bad_paths
                           if not any(name in e["file"] for e in errs)]
                self.assertEqual(unnamed, [], "no status error names these files; errors: %s"
                                 % json.dumps(errs, indent=1)[:3000])
                self.assertEqual(st["slices"]["received"], Z - 1)
                self.assertEqual(st["slices"]["missing"], [[5, 5]])

            with self.subTest("volume unchanged"):
                self.check_listing(mnt, "z", Z)
                self.check_axis_planes(mnt, expect, "z")
                self.check_axis_planes(mnt, expect, "y")
                self.check_axis_planes(mnt, expect, "x")

            with self.subTest("a good slice after all that is accepted"):
                p5 = os.path.join(src, "good_5.tif")
                T.write_slice(p5, vol[5], "lzw")
                r = T.cp([p5], zdir)
                self.assertTrue(r.ok, r.describe())
                expect = vol
                self.check_axis_planes(mnt, expect, "z")
                self.check_axis_planes(mnt, expect, "y")
            m.umount_checked(self)
        with self.subTest("info and independent readers"):
            self.check_info(store, vol.shape, vol.dtype, missing=())
            self.check_interop(store, expect)


class TestBufferedAndRewrites(BrickfsCase):
    """Reads served from the slab buffer, missing slices reported and read as zeros,
    a slice written after its slab was committed (re-encode), and an overwrite."""

    def test_buffered_missing_late_and_overwrite(self):
        Z, Y, X = 20, 40, 50
        vol = T.make_volume((Z, Y, X), "uint16", "random", seed=6)
        store = self.tmp.join("buf.zarr")
        T.brickfs_create(store, vol.shape, "uint16", block=(8, 16, 16), brick=(16, 32, 32))
        src = self.tmp.sub("src")
        files = T.write_stack(src, vol, lambda z: "s%03d.tif" % z)
        mnt = self.tmp.join("mnt")
        expect = vol.copy()
        expect[3] = 0
        expect[17] = 0
        with T.Mount(store, mnt, options=["mem=64M", "cache=1M"]) as m:
            first = [files[z] for z in range(Z) if z not in (3, 17)]
            r = T.cp(T.shuffled(first, 11), os.path.join(mnt, "z") + "/")
            self.assertTrue(r.ok, r.describe())
            with self.subTest("status: missing slices, buffered slabs"):
                st = T.wait_status(mnt, lambda s: s["slabs"]["flushed"] >= 1,
                                   what="slab 1 (z 8..15) flushed")
                self.check_status_basics(st, m.pid)
                self.assertEqual(st["memory"]["budget"], 64 << 20)
                self.assertEqual(st["slices"]["received"], Z - 2)
                self.assertEqual(st["slices"]["expected"], Z)
                self.assertEqual(st["slices"]["missing"], [[3, 3], [17, 17]])
                self.assertGreaterEqual(st["slabs"]["buffered"] + st["slabs"]["spooled"], 2)
            with self.subTest("planes with slices still buffered"):
                self.check_axis_planes(mnt, expect, "z")
                self.check_axis_planes(mnt, expect, "y")
                self.check_axis_planes(mnt, expect, "x")
            r = T.cp([files[3]], os.path.join(mnt, "z") + "/")
            self.assertTrue(r.ok, r.describe())
            expect[3] = vol[3]
            with self.subTest("slab 0 completes"):
                T.wait_status(mnt, lambda s: s["slabs"]["flushed"] >= 2,
                              what="slabs 0 and 1 flushed")
                self.check_axis_planes(mnt, expect, "z")
                self.check_axis_planes(mnt, expect, "x")
            m.umount_checked(self)
        with self.subTest("umount with a missing slice"):
            self.check_info(store, vol.shape, vol.dtype, missing=[[17, 17]])
            d = T.check_shard_reader(store, expect)
            self.assertEqual(d, "", d)

        new8 = T.make_volume((1, Y, X), "uint16", "smooth", seed=8)[0]
        p8 = os.path.join(src, "again_8.tif")
        T.write_slice(p8, new8, "zip")
        with T.Mount(store, mnt) as m:
            with self.subTest("remount: missing slice reads as zeros"):
                st = T.read_status(mnt)
                self.assertEqual(st["slices"]["missing"], [[17, 17]])
                self.check_axis_planes(mnt, expect, "z")
            r = T.cp([files[17], p8], os.path.join(mnt, "z") + "/")
            self.assertTrue(r.ok, r.describe())
            expect[17] = vol[17]
            expect[8] = new8
            with self.subTest("late slice and overwrite visible"):
                self.check_axis_planes(mnt, expect, "z")
                self.check_axis_planes(mnt, expect, "y")
                self.check_axis_planes(mnt, expect, "x")
                st = T.read_status(mnt)
                self.assertEqual(st["slices"]["missing"], [])
                self.assertEqual(st["errors"], [])
            m.umount_checked(self)
        with self.subTest("store after late writes"):
            self.check_info(store, vol.shape, vol.dtype, missing=())
            self.check_interop(store, expect)


def tearDownModule():
    left = T.own_leftover_mounts()
    if left:
        raise AssertionError("mounts left behind: %s" % left)


if __name__ == "__main__":
    T.main()
