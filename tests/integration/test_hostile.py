#!/usr/bin/python3
"""Hostile input matrix: every way a writer can misuse the mount.

    /usr/bin/python3 tests/integration/test_hostile.py --brickfs build/brickfs [-k PATTERN] [--keep]

(or env BRICKFS_BIN). Needs /dev/fuse and fusermount3 (else skipped, exit 77).
DESIGN.md section 10 and README "Bad input" / "Not supported in the mount".

For each case: the exact errno the writer gets (at open, write or close), a status
error naming the file, and the stored slice unchanged. One store (`brickfs create`,
24 x 48 x 40 uint8, block 8,16,16, brick 16,32,32) is mounted for the whole class;
z 5 and 13 start missing and must stay missing until the last test copies them in,
unmounts, and checks the store: `brickfs info`, a read-only mount compared plane by
plane, tests/interop/shard_reader.py, and `brickfs fsck STORE` exit 0 when that
subcommand exists.

  content     not a TIFF; zero bytes (os.open/close, touch, cp /dev/null); truncated
              at many offsets (header, IFD, tag values, before/mid/end of the strip,
              libtiff layout with the IFD last); RGB; palette; 1/12/16/64-bit, int8,
              float; two pages; wrong width/height; IFD chain looping on itself
  dimensions  header claiming 2^20 x 2^20 uint16 (classic and BigTIFF, tiny files)
              and a deflate bomb (16384 x 65536 from 128 KiB) into a fixed store and
              into a new store: an error within 2 s, daemon VmRSS growth < 64 MiB
  names       no digits; z beyond the fixed Z; a 30-digit number
  places      y/, x/, z itself, .brickfs/status, new files in /, y/, .brickfs/
  namespace   rename, unlink, truncate(non-zero), mkdir, rmdir, symlink, link,
              mknod; truncate(0) of a stored slice changes nothing
  writers     pwrite at 1 TiB (no 1 TiB buffer), writes out of order, two processes
              writing the same slice at once (the result is one of them, never a
              mix), 8 parallel cp of different slices into a second store
"""

import errno
import json
import os
import shutil
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import tifffile
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import brickfs_testlib as T  # noqa: E402

Z, Y, X = 24, 48, 40
MISSING = (5, 13)
BAD_CONTENT = (errno.EINVAL, errno.EIO)
REFUSED = (errno.EPERM, errno.EACCES, errno.EROFS)


# ------------------------------------------------------------ TIFF by hand ----

_TYPES = {1: ("B", 1), 3: ("H", 2), 4: ("I", 4), 16: ("Q", 8)}


def craft_tiff(entries, data=b"", next_ifd=0, self_loop=False):
    """A classic little-endian TIFF: header, `data` at offset 8, then one IFD.
    entries: (tag, type, [values]); the value "DATA" stands for offset 8."""
    ifd_off = 8 + len(data) + ((8 + len(data)) & 1)
    n = len(entries)
    extra_off = ifd_off + 2 + 12 * n + 4
    ifd, extra = struct.pack("<H", n), b""
    for tag, typ, vals in sorted(entries):
        vals = [8 if v == "DATA" else v for v in vals]
        fmt, _ = _TYPES[typ]
        payload = struct.pack("<%d%s" % (len(vals), fmt), *vals)
        if len(payload) <= 4:
            ifd += struct.pack("<HHI", tag, typ, len(vals)) + payload.ljust(4, b"\0")
        else:
            ifd += struct.pack("<HHII", tag, typ, len(vals), extra_off + len(extra))
            extra += payload
    ifd += struct.pack("<I", ifd_off if self_loop else next_ifd)
    return (b"II*\0" + struct.pack("<I", ifd_off) + data + b"\0" * ((8 + len(data)) & 1)
            + ifd + extra)


def craft_bigtiff(width, height, bps, strip_bytes, data=b"\0" * 64):
    """A BigTIFF (little-endian) with one strip whose byte count is strip_bytes."""
    entries = [(256, 16, width), (257, 16, height), (258, 3, bps), (259, 3, 1), (262, 3, 1),
               (273, 16, 16), (277, 3, 1), (278, 16, height), (279, 16, strip_bytes)]
    ifd_off = 16 + len(data)
    out = b"II+\0" + struct.pack("<HHQ", 8, 0, ifd_off) + data
    out += struct.pack("<Q", len(entries))
    for tag, typ, v in entries:
        fmt = _TYPES[typ][0]
        out += struct.pack("<HHQ", tag, typ, 1) + struct.pack("<" + fmt, v).ljust(8, b"\0")
    return out + struct.pack("<Q", 0)


def plain_tags(width, height, bps=8, nbytes=None, photometric=1, spp=1, sampleformat=None):
    t = [(256, 4, [width]), (257, 4, [height]), (258, 3, [bps] * spp), (259, 3, [1]),
         (262, 3, [photometric]), (273, 4, ["DATA"]), (277, 3, [spp]), (278, 4, [height]),
         (279, 4, [nbytes if nbytes is not None else (width * bps * spp + 7) // 8 * height])]
    if sampleformat:
        t.append((339, 3, [sampleformat] * spp))
    return t


def tiff_bytes(arr, **kw):
    import io
    b = io.BytesIO()
    tifffile.imwrite(b, arr, **kw)
    return b.getvalue()


def vm(pid, key):
    """VmRSS / VmHWM of pid in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (key, pid))


def attempt(path, data, chunk=65536, flags=os.O_WRONLY | os.O_CREAT | os.O_TRUNC):
    """Writes data to path with open/write/close. Returns (stage, errno): stage is
    where it failed ('open', 'write', 'close') or 'done'."""
    stage, fd = "open", None
    try:
        fd = os.open(path, flags, 0o644)
        stage = "write"
        off = 0
        while off < len(data):
            off += os.write(fd, data[off:off + chunk])
        stage = "close"
        f, fd = fd, None
        os.close(f)
        return "done", 0
    except OSError as e:
        return stage, e.errno
    finally:
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


def ename(e):
    return errno.errorcode.get(e, str(e))


class HostileCase(T.ClassRootCase):
    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.vol = T.make_volume((Z, Y, X), "uint8", "random", seed=17)
        cls.store = cls.tmp.join("hostile.zarr")
        T.brickfs_create(cls.store, (Z, Y, X), "uint8", block=(8, 16, 16), brick=(16, 32, 32))
        cls.src = cls.tmp.sub("src")
        cls.bad = cls.tmp.sub("bad")
        cls.files = {}
        for z in range(Z):
            p = os.path.join(cls.src, "good_%d.tif" % z)
            tifffile.imwrite(p, cls.vol[z], photometric="minisblack")
            cls.files[z] = p
        cls.expect = cls.vol.copy()
        for z in MISSING:
            cls.expect[z] = 0
        cls.mnt = cls.tmp.join("mnt")
        cls.m = T.Mount(cls.store, cls.mnt)
        cls.m.__enter__()
        cls.addClassCleanup(cls.m.__exit__, None, None, None)
        r = T.cp([cls.files[z] for z in range(Z) if z not in MISSING],
                 os.path.join(cls.mnt, "z") + "/")
        if not r.ok:
            raise AssertionError("copying the good slices failed:\n" + r.describe())
        cls.zdir = os.path.join(cls.mnt, "z")
        cls.other = (255 - cls.vol[3]).astype(np.uint8)  # what a wrong acceptance stores

    # ------------------------------------------------------------ checks

    def status(self):
        return T.read_status(self.mnt)

    def assert_named(self, name, what=""):
        st = self.status()
        errs = st["errors"]
        hit = [e for e in errs if name in e.get("file", "") or name in e.get("message", "")]
        self.assertTrue(hit, "%s: no status error names %r; errors (last 5): %s"
                        % (what or name, name, json.dumps(errs[-5:], indent=1)))
        self.assertTrue(all(e.get("message") for e in hit), hit)
        return hit[-1]

    def assert_unchanged(self, zs=None, what=""):
        """The z planes read through the mount equal what is stored (all, or zs)."""
        bad = []
        for z in (range(Z) if zs is None else zs):
            got = tifffile.imread(os.path.join(self.zdir, T.canonical(z)))
            if got.shape != (Y, X) or not np.array_equal(got, self.expect[z]):
                bad.append(z)
        self.assertEqual(bad, [], "%s: slices changed: %s" % (what, bad))
        st = self.status()
        self.assertEqual([list(r) for r in st["slices"]["missing"]],
                         [[z, z] for z in MISSING], "%s: missing slices changed" % what)

    def assert_daemon_alive(self):
        self.assertTrue(T.pid_alive(self.m.pid, self.m.starttime), "the daemon died")
        self.assertTrue(T.is_mounted(self.mnt), "the mount is gone")

    def bad_content(self, name, data, what, errnos=BAD_CONTENT, z=None):
        """Writes data as z/name (os.open/write/close, then cp of the same bytes)."""
        z = z if z is not None else int(name.rsplit("_", 1)[1].split(".")[0])
        stage, err = attempt(os.path.join(self.zdir, name), data)
        self.assertNotEqual(stage, "done", "%s (%s) was accepted" % (name, what))
        self.assertIn(err, errnos, "%s (%s): %s failed with %s, want one of %s"
                      % (name, what, stage, ename(err), [ename(e) for e in errnos]))
        self.assert_named(name, what)
        p = os.path.join(self.bad, name)
        with open(p, "wb") as f:
            f.write(data)
        r = T.cp([p], self.zdir + "/")
        self.assertNotEqual(r.returncode, 0, "cp of %s (%s) succeeded" % (name, what))
        self.assert_unchanged([z], what)
        self.assertNotIn(name, os.listdir(self.zdir), "%s is listed in z/" % name)
        return stage, err

    # ========================================================== content

    def test_not_a_tiff(self):
        self.bad_content("text_3.tif", b"this is not a TIFF\n" * 100, "text")
        self.bad_content("random_4.tif", os.urandom(Y * X + 300), "random bytes")
        self.bad_content("magic_6.tif", b"II*\0" + os.urandom(2000), "TIFF magic, random IFD")
        self.bad_content("ifdoff_7.tif", b"II*\0" + struct.pack("<I", 0xFFFFFFF0) + b"\0" * 64,
                         "IFD offset beyond the file")
        self.bad_content("mm_8.tif", b"MM\0*" + struct.pack(">I", 8) + b"\xff" * 40,
                         "big-endian, garbage IFD")
        self.assert_daemon_alive()

    def test_zero_bytes(self):
        for name in ("empty_5.tif", "empty_3.tif"):
            stage, err = attempt(os.path.join(self.zdir, name), b"")
            self.assertEqual((stage, err), ("close", errno.EINVAL),
                             "open+close of an empty %s: %s %s" % (name, stage, ename(err)))
            self.assert_named(name, "empty file")
        r = T.run(["cp", "/dev/null", os.path.join(self.zdir, "scan_5.tif")])
        self.assertNotEqual(r.returncode, 0, "cp /dev/null z/scan_5.tif succeeded")
        self.assert_named("scan_5.tif", "cp /dev/null")
        r = T.run(["touch", os.path.join(self.zdir, "touched_5.tif")])
        # touch dup2()s the fd to stdin: the first close gets EINVAL, touch ignores it
        # and checks only the second close. The status must still name the file.
        sys.stderr.write("[touch z/touched_5.tif exit %d] " % r.returncode)
        self.assert_named("touched_5.tif", "touch")
        self.assert_unchanged(what="after empty files")

    def test_truncated(self):
        raw = tiff_bytes(self.other, photometric="minisblack")  # IFD at 8, data last
        data_at = tifffile.TiffFile(__import__("io").BytesIO(raw)).pages[0].dataoffsets[0]
        cuts = {"magic": 2, "header": 4, "header_only": 8, "ifd_count": 9, "ifd_entries": 30,
                "ifd_end": 8 + 2 + 12 * 4, "tag_values": data_at - 20, "no_data": data_at,
                "strip_first_row": data_at + X, "mid_strip": data_at + Y * X // 2,
                "last_byte": len(raw) - 1}
        for what, n in cuts.items():
            self.bad_content("trunc_%s_3.tif" % what, raw[:n], "truncated at %d (%s)" % (n, what))
        # libtiff layout: data first, IFD at the end
        p = os.path.join(self.bad, "lt_src.tif")
        T.write_slice(p, self.other, "lzw")
        lt = T.read_bytes(p)
        for frac in (0.25, 0.5, 0.9):
            n = int(len(lt) * frac)
            self.bad_content("trunc_lzw%d_4.tif" % int(frac * 100), lt[:n],
                             "libtiff LZW truncated at %d of %d" % (n, len(lt)))
        p = os.path.join(self.bad, "zip_src.tif")
        T.write_slice(p, self.other, "zip")
        zp = T.read_bytes(p)
        self.bad_content("trunc_zip_4.tif", zp[:len(zp) * 2 // 3], "deflate strip truncated")
        self.assert_daemon_alive()

    def test_rgb_palette_pages(self):
        rgb = np.stack([self.other] * 3, axis=-1)
        st, _ = self.bad_content("rgb_3.tif", tiff_bytes(rgb, photometric="rgb"), "RGB")
        msg = self.assert_named("rgb_3.tif")["message"]
        self.assertTrue("RGB" in msg or "sample" in msg, "RGB message says why: %s" % msg)
        self.bad_content("rgba_3.tif", tiff_bytes(np.dstack([rgb, self.other]),
                                                  photometric="rgb", extrasamples=[2]), "RGBA")
        self.bad_content("rgbplanar_3.tif", tiff_bytes(np.stack([self.other] * 3),
                                                       photometric="rgb", planarconfig="separate"),
                         "RGB planar")
        self.bad_content("twosamples_3.tif", tiff_bytes(np.stack([self.other] * 2, -1),
                                                        photometric="minisblack",
                                                        planarconfig="contig"),
                         "2 samples per pixel")
        import io
        b = io.BytesIO()
        Image.fromarray(self.other).convert("P").save(b, format="TIFF")
        self.bad_content("palette_3.tif", b.getvalue(), "palette")
        self.bad_content("pages_3.tif", tiff_bytes(np.stack([self.other, self.other]),
                                                   photometric="minisblack"), "two pages")
        loop = craft_tiff(plain_tags(X, Y), self.other.tobytes(), self_loop=True)
        t0 = time.monotonic()
        stage, err = attempt(os.path.join(self.zdir, "loop_3.tif"), loop)
        dt = time.monotonic() - t0
        self.assertLess(dt, 5, "an IFD chain looping on itself took %.1fs" % dt)
        if stage == "done":
            # libtiff stops at the loop and sees one image: acceptable, the pixels are right
            self.expect[3] = self.other
            self.assert_unchanged([3], "IFD loop accepted")
            self.expect[3] = self.vol[3]
            r = T.cp([self.files[3]], self.zdir + "/")
            self.assertTrue(r.ok, r.describe())
        else:
            self.assertIn(err, BAD_CONTENT, "IFD loop: %s %s" % (stage, ename(err)))
        self.assert_unchanged([3], "after RGB/palette/pages")

    def test_wrong_bit_depth(self):
        o = self.other
        self.bad_content("u16_3.tif", tiff_bytes(o.astype(np.uint16)), "uint16 into uint8")
        self.bad_content("i8_3.tif", tiff_bytes(o.astype(np.int8)), "int8 into uint8")
        self.bad_content("f32_3.tif", tiff_bytes(o.astype(np.float32)), "float32 into uint8")
        self.bad_content("f64_3.tif", tiff_bytes(o.astype(np.float64)), "float64")
        self.bad_content("u64_3.tif", tiff_bytes(o.astype(np.uint64)), "uint64")
        self.bad_content("bilevel_3.tif", tiff_bytes(o > 127), "1 bit")
        packed12 = b"\x12" * ((X * 12 + 7) // 8 * Y)
        self.bad_content("b12_3.tif", craft_tiff(plain_tags(X, Y, bps=12), packed12), "12 bit")
        self.bad_content("b4_3.tif", craft_tiff(plain_tags(X, Y, bps=4), b"\x34" * (X // 2 * Y)),
                         "4 bit")
        self.bad_content("b8cplx_3.tif", craft_tiff(plain_tags(X, Y, sampleformat=6),
                                                    o.tobytes()), "complex sample format")
        self.assert_daemon_alive()

    def test_wrong_size(self):
        self.bad_content("w_3.tif", tiff_bytes(np.zeros((Y, X + 1), np.uint8) + 7), "X+1")
        self.bad_content("h_3.tif", tiff_bytes(np.zeros((Y - 1, X), np.uint8) + 7), "Y-1")
        self.bad_content("t_3.tif", tiff_bytes(np.ascontiguousarray(self.other.T)), "transposed")
        self.bad_content("one_3.tif", tiff_bytes(np.zeros((1, 1), np.uint8)), "1x1")
        self.bad_content("zero_3.tif", craft_tiff(plain_tags(0, 0, nbytes=0), b"\0" * 8),
                         "0x0 (hand-made)")
        self.bad_content("nostrip_3.tif", craft_tiff([t for t in plain_tags(X, Y)
                                                      if t[0] not in (273, 279)], b""),
                         "no strip offsets")
        self.assert_daemon_alive()

    # ======================================================== dimensions

    def huge_cases(self):
        W = H = 1 << 20
        classic = craft_tiff(plain_tags(W, H, bps=16, nbytes=0xFFFFFFF0), b"\0" * 64)
        big = craft_bigtiff(W, H, 16, W * H * 2)
        Wb, Hb = 65536, 16384
        blob = zlib.compress(b"\0" * Wb, 9)
        bomb = craft_tiff([(256, 4, [Wb]), (257, 4, [Hb]), (258, 3, [8]), (259, 3, [8]),
                           (262, 3, [1]), (273, 4, ["DATA"] * Hb), (277, 3, [1]), (278, 4, [1]),
                           (279, 4, [len(blob)] * Hb)], blob)
        return [("huge_classic_%d.tif", classic, "2^20 x 2^20 uint16, classic TIFF, %d bytes"
                 % len(classic)),
                ("huge_big_%d.tif", big, "2^20 x 2^20 uint16, BigTIFF, %d bytes" % len(big)),
                ("bomb_%d.tif", bomb, "deflate bomb 16384 x 65536 uint8 (1 GiB) in %d bytes"
                 % len(bomb))]

    def check_huge(self, zdir, pid, z, errnos, label):
        rss0 = vm(pid, "VmRSS")
        for pattern, data, what in self.huge_cases():
            name = pattern % z
            t0 = time.monotonic()
            stage, err = attempt(os.path.join(zdir, name), data)
            dt = time.monotonic() - t0
            rss1 = vm(pid, "VmRSS")
            sys.stderr.write("[%s %s: %s %s in %.2fs, VmRSS %d -> %d KiB, VmHWM %d KiB] "
                             % (label, name, stage, ename(err), dt, rss0, rss1,
                                vm(pid, "VmHWM")))
            self.assertNotEqual(stage, "done", "%s: %s (%s) was accepted" % (label, name, what))
            self.assertIn(err, errnos, "%s: %s (%s): %s failed with %s"
                          % (label, name, what, stage, ename(err)))
            self.assertLess(dt, 2.0, "%s: %s (%s) took %.1fs to refuse" % (label, name, what, dt))
            self.assertLess(rss1 - rss0, 64 * 1024, "%s: %s: daemon VmRSS grew from %d to %d KiB"
                            % (label, name, rss0, rss1))
            self.assertLess(vm(pid, "VmHWM") - rss0, 256 * 1024,
                            "%s: %s: daemon VmHWM %d KiB" % (label, name, vm(pid, "VmHWM")))

    def test_huge_dimensions_fixed_store(self):
        self.check_huge(self.zdir, self.m.pid, 3, BAD_CONTENT, "fixed store")
        self.assert_named("huge_classic_3.tif")
        self.assert_unchanged(what="after huge headers")

    def test_huge_dimensions_new_store(self):
        """The first slice of a new store defines its shape: here nothing but the
        decoder's limits and the memory budget stand between the header and RAM."""
        store = self.tmp.join("new_huge.zarr")
        mnt = self.tmp.join("mnt_new_huge")
        with T.Mount(store, mnt, options=["mem=256M"]) as m:
            zdir = os.path.join(mnt, "z")
            self.check_huge(zdir, m.pid, 0, BAD_CONTENT + (errno.ENOSPC, errno.ENOMEM,
                                                           errno.EFBIG), "new store")
            st = T.read_status(mnt)
            for pattern, _, _ in self.huge_cases():
                name = pattern % 0
                self.assertTrue(any(name in e["file"] or name in e["message"]
                                    for e in st["errors"]), "no error names %s: %s"
                                % (name, st["errors"]))
            # the store is still new: a normal slice defines it
            r = T.cp([self.files[0]], zdir + "/")
            self.assertTrue(r.ok, r.describe())
            st = T.read_status(mnt)
            self.assertEqual(list(st["shape"][1:]), [Y, X], st)
            m.umount_checked(self)

    # ============================================================== names

    def test_names(self):
        p = os.path.join(self.bad, "nodigits.tif")
        tifffile.imwrite(p, self.other)
        data = T.read_bytes(p)
        cases = [("nodigits.tif", "no digits"), ("scan_%d.tif" % Z, "z = Z (fixed shape)"),
                 ("scan_%d.tif" % (Z + 1000), "z far beyond Z"),
                 ("scan_%s.tif" % ("9" * 30), "30-digit number"),
                 ("scan_18446744073709551616.tif", "2^64")]
        for name, what in cases:
            stage, err = attempt(os.path.join(self.zdir, name), data)
            self.assertEqual((stage, err), ("open", errno.EINVAL),
                             "%s (%s): %s %s" % (name, what, stage, ename(err)))
            self.assert_named(name, what)
            q = os.path.join(self.bad, name)
            with open(q, "wb") as f:
                f.write(data)
            r = T.cp([q], self.zdir + "/")
            self.assertNotEqual(r.returncode, 0, "cp of %s succeeded" % name)
        # ".tif" is a dot-file: a staged (temporary) name, held but never stored.
        stage, err = attempt(os.path.join(self.zdir, ".tif"), data)
        self.assertEqual((stage, err), ("done", 0), ".tif: %s %s" % (stage, ename(err)))
        self.assertIn(".tif", os.listdir(self.zdir))
        os.unlink(os.path.join(self.zdir, ".tif"))
        self.assertNotIn(".tif", os.listdir(self.zdir))
        self.assert_unchanged(what="after bad names")

    # ============================================================= places

    def test_write_elsewhere(self):
        data = T.read_bytes(self.files[3])
        cases = [("y/00000.tif", os.O_WRONLY, REFUSED), ("y/00000.tif", os.O_RDWR, REFUSED),
                 ("x/00000.tif", os.O_WRONLY | os.O_TRUNC, REFUSED),
                 ("y/new_1.tif", os.O_WRONLY | os.O_CREAT, REFUSED),
                 ("x/new_1.tif", os.O_WRONLY | os.O_CREAT, REFUSED),
                 ("new_1.tif", os.O_WRONLY | os.O_CREAT, REFUSED),
                 (".brickfs/status", os.O_WRONLY, REFUSED),
                 (".brickfs/status", os.O_WRONLY | os.O_TRUNC, REFUSED),
                 (".brickfs/new_1.tif", os.O_WRONLY | os.O_CREAT, REFUSED),
                 ("z", os.O_WRONLY, (errno.EISDIR,) + REFUSED),
                 ("z", os.O_RDWR, (errno.EISDIR,) + REFUSED)]
        y0 = tifffile.imread(os.path.join(self.mnt, "y", "00000.tif"))
        for rel, flags, errnos in cases:
            stage, err = attempt(os.path.join(self.mnt, rel), data, flags=flags)
            self.assertEqual(stage, "open", "%s (flags %o): %s %s" % (rel, flags, stage,
                                                                      ename(err)))
            self.assertIn(err, errnos, "%s: %s" % (rel, ename(err)))
        self.assert_named("/y/00000.tif", "write to y/")
        self.assert_named("/x/00000.tif", "write to x/")
        self.assertTrue(np.array_equal(tifffile.imread(os.path.join(self.mnt, "y", "00000.tif")),
                                       y0))
        json.loads(T.read_bytes(os.path.join(self.mnt, ".brickfs", "status")))
        r = T.cp([self.files[3]], os.path.join(self.mnt, "y", "00000.tif"))
        self.assertNotEqual(r.returncode, 0)
        r = T.cp([self.files[3]], os.path.join(self.mnt, ".brickfs", "status"))
        self.assertNotEqual(r.returncode, 0)
        self.assert_unchanged(what="after writes outside z/")

    # ========================================================== namespace

    def test_namespace_operations(self):
        j = lambda *p: os.path.join(self.mnt, *p)  # noqa: E731
        outside = os.path.join(self.bad, "outside_1.tif")
        tifffile.imwrite(outside, self.other)
        # (what, call, name the status must give, the created name or None).
        # Creating a name that resolves already (any name numbered like a stored
        # slice resolves to it) fails in the kernel with EEXIST before brickfs sees it.
        ops = [
            ("rename z/00001 -> z/00002", lambda: os.rename(j("z", "00001.tif"),
                                                            j("z", "00002.tif")),
             "/z/00001.tif", None),
            ("rename z/00001 -> z/new_5", lambda: os.rename(j("z", "00001.tif"),
                                                            j("z", "new_5.tif")),
             "/z/00001.tif", None),
            ("rename z/00005 (missing) -> z/x_13", lambda: os.rename(j("z", "00005.tif"),
                                                                     j("z", "x_13.tif")),
             None, None),
            ("rename z -> w", lambda: os.rename(j("z"), j("w")), None, None),
            ("rename y/00001 -> z/00001", lambda: os.rename(j("y", "00001.tif"),
                                                            j("z", "00001.tif")), None, None),
            ("unlink z/00001", lambda: os.unlink(j("z", "00001.tif")), "/z/00001.tif", None),
            ("unlink z/00005 (missing)", lambda: os.unlink(j("z", "00005.tif")), None, None),
            ("unlink y/00001", lambda: os.unlink(j("y", "00001.tif")), None, None),
            ("unlink .brickfs/status", lambda: os.unlink(j(".brickfs", "status")), None, None),
            ("truncate z/00001 to 10", lambda: os.truncate(j("z", "00001.tif"), 10), None, None),
            ("truncate z/00001 to 1 TiB", lambda: os.truncate(j("z", "00001.tif"), 1 << 40),
             None, None),
            ("truncate y/00001 to 10", lambda: os.truncate(j("y", "00001.tif"), 10), None, None),
            ("mkdir z/d", lambda: os.mkdir(j("z", "d")), "/z/d", "z/d"),
            ("mkdir d", lambda: os.mkdir(j("d")), "/d", "d"),
            ("mkdir z/d_5.tif", lambda: os.mkdir(j("z", "d_5.tif")), "d_5.tif", "z/d_5.tif"),
            ("mkdir z/d_7.tif (7 stored)", lambda: os.mkdir(j("z", "d_7.tif")), None,
             "z/d_7.tif"),
            ("rmdir y", lambda: os.rmdir(j("y")), "/y", None),
            ("rmdir z", lambda: os.rmdir(j("z")), None, None),
            ("rmdir .brickfs", lambda: os.rmdir(j(".brickfs")), None, None),
            ("symlink z/sym_5.tif", lambda: os.symlink(outside, j("z", "sym_5.tif")),
             "sym_5.tif", "z/sym_5.tif"),
            ("symlink z/link.tif", lambda: os.symlink(outside, j("z", "link.tif")),
             "link.tif", "z/link.tif"),
            ("symlink z/7.tif (7 stored)", lambda: os.symlink(outside, j("z", "7.tif")), None,
             "z/7.tif"),
            ("link z/00001 -> z/hard_13.tif", lambda: os.link(j("z", "00001.tif"),
                                                              j("z", "hard_13.tif")),
             "hard_13.tif", "z/hard_13.tif"),
            ("link z/00001 -> z/8.tif (8 stored)", lambda: os.link(j("z", "00001.tif"),
                                                                   j("z", "8.tif")),
             None, "z/8.tif"),
            ("link outside -> z/h_5.tif", lambda: os.link(outside, j("z", "h_5.tif")), None,
             "z/h_5.tif"),
        ]
        root_before = sorted(os.listdir(self.mnt))
        self.assertTrue({"x", "y", "z"} <= set(root_before), root_before)
        problems = []
        for what, fn, named, created in ops:
            existed = created is not None and os.path.lexists(j(created))
            allowed = REFUSED
            if existed:
                allowed += (errno.EEXIST,)
            if what.startswith(("rmdir", "rename z ->")):
                allowed += (errno.EISDIR, errno.ENOTEMPTY, errno.EBUSY)
            if what.startswith("link outside"):
                allowed += (errno.EXDEV,)
            try:
                fn()
                problems.append("%s: succeeded" % what)
            except OSError as e:
                if e.errno not in allowed:
                    problems.append("%s: %s (want %s)" % (what, ename(e.errno),
                                                          "/".join(map(ename, allowed))))
            if named and not existed:
                try:
                    self.assert_named(named, what)
                except AssertionError as e:
                    problems.append(str(e)[:300])
        self.assertEqual(problems, [], "\n".join(problems))
        self.assertEqual(sorted(os.listdir(self.mnt)), root_before,
                         "the mount's root changed")
        self.assertEqual(sorted(os.listdir(j("z"))), [T.canonical(i) for i in range(Z)])
        self.assert_unchanged(what="after namespace operations")

    def test_truncate_zero_and_mknod(self):
        """Not refused by every implementation, but must not change what is stored."""
        j = lambda *p: os.path.join(self.mnt, *p)  # noqa: E731
        notes = []
        for what, fn in (("truncate(z/00001.tif, 0)", lambda: os.truncate(j("z", "00001.tif"), 0)),
                         ("open(z/00002.tif, O_TRUNC) + close",
                          lambda: os.close(os.open(j("z", "00002.tif"), os.O_WRONLY | os.O_TRUNC))),
                         ("mknod z/node_5.tif", lambda: os.mknod(j("z", "node_5.tif"), 0o644)),
                         ("mkfifo z/fifo_13.tif", lambda: os.mkfifo(j("z", "fifo_13.tif"))),
                         ("mknod z/7.tif (7 stored)", lambda: os.mknod(j("z", "7.tif"), 0o644))):
            try:
                fn()
                notes.append("%s: ok" % what)
            except OSError as e:
                notes.append("%s: %s" % (what, ename(e.errno)))
        sys.stderr.write("[%s] " % "; ".join(notes))
        self.assertEqual(sorted(os.listdir(j("z"))), [T.canonical(i) for i in range(Z)])
        self.assert_unchanged(what="after truncate(0)/mknod")
        self.assert_daemon_alive()

    # ============================================================ writers

    def test_sparse_and_out_of_order_writes(self):
        pid = self.m.pid
        rss0 = vm(pid, "VmRSS")
        path = os.path.join(self.zdir, "sparse_3.tif")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        failed = None
        try:
            try:
                os.pwrite(fd, b"x", 1 << 40)
            except OSError as e:
                failed = ("pwrite", e.errno)
        finally:
            try:
                os.close(fd)
                if failed is None:
                    failed = ("done", 0)
            except OSError as e:
                failed = failed or ("close", e.errno)
        self.assertNotEqual(failed[0], "done", "a 1-byte write at 1 TiB was accepted")
        self.assertIn(failed[1], (errno.EFBIG, errno.EINVAL, errno.ENOSPC, errno.EIO),
                      "pwrite at 1 TiB: %s %s" % (failed[0], ename(failed[1])))
        self.assertLess(vm(pid, "VmRSS") - rss0, 64 * 1024, "VmRSS grew after pwrite at 1 TiB")
        self.assert_named("sparse_3.tif")
        # a valid TIFF written back to front in 1000-byte pieces
        data = tiff_bytes(self.other, photometric="minisblack")
        path = os.path.join(self.zdir, "backwards_3.tif")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        res = "done"
        try:
            for off in reversed(range(0, len(data), 1000)):
                os.pwrite(fd, data[off:off + 1000], off)
        except OSError as e:
            res = "pwrite %s" % ename(e.errno)
        try:
            os.close(fd)
        except OSError as e:
            res = res if res != "done" else "close %s" % ename(e.errno)
        sys.stderr.write("[backwards pwrite of a valid slice: %s] " % res)
        if res == "done":
            self.expect[3] = self.other
            try:
                self.assert_unchanged([3], "backwards write accepted: it must store the slice")
            finally:
                self.expect[3] = self.vol[3]
                r = T.cp([self.files[3]], self.zdir + "/")
                self.assertTrue(r.ok, r.describe())
        else:
            self.assertTrue(res.endswith(("EINVAL", "EIO")), res)
        self.assert_unchanged(what="after sparse/backwards writes")

    def test_same_slice_from_two_writers(self):
        """Two processes write z=9 at the same time; the result is one of them exactly."""
        a = T.make_volume((1, Y, X), "uint8", "random", seed=91)[0]
        b = T.make_volume((1, Y, X), "uint8", "random", seed=92)[0]
        da, db = self.tmp.sub("wa"), self.tmp.sub("wb")
        pa, pb = os.path.join(da, "scan_9.tif"), os.path.join(db, "scan_9.tif")
        tifffile.imwrite(pa, a, photometric="minisblack", rowsperstrip=1)
        tifffile.imwrite(pb, b, photometric="minisblack", rowsperstrip=1)
        results = []
        for rnd in range(6):
            if rnd < 3:
                # two cp processes
                procs = [subprocess.Popen(["cp", p, self.zdir + "/"], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE) for p in (pa, pb)]
                rcs = [(p.wait(timeout=60), p.communicate(timeout=60)[1].decode()) for p in procs]
            else:
                # two python writers, 64-byte writes interleaved by a shared start time
                code = ("import os,sys,time\n"
                        "d=open(sys.argv[1],'rb').read(); t=float(sys.argv[3])\n"
                        "time.sleep(max(0,t-time.time()))\n"
                        "fd=os.open(sys.argv[2],os.O_WRONLY|os.O_CREAT|os.O_TRUNC,0o644)\n"
                        "for i in range(0,len(d),64):\n"
                        "    os.write(fd,d[i:i+64]); time.sleep(0.0005)\n"
                        "os.close(fd)\n")
                t = time.time() + 0.3
                procs = [subprocess.Popen([sys.executable, "-c", code, p,
                                           os.path.join(self.zdir, "scan_9.tif"), str(t)],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                         for p in (pa, pb)]
                rcs = [(p.wait(timeout=60), p.communicate(timeout=60)[1].decode()) for p in procs]
            got = tifffile.imread(os.path.join(self.zdir, T.canonical(9)))
            which = "a" if np.array_equal(got, a) else "b" if np.array_equal(got, b) else None
            results.append((rnd, [rc for rc, _ in rcs], which))
            self.assertTrue(any(rc == 0 for rc, _ in rcs),
                            "round %d: both writers failed: %s" % (rnd, rcs))
            self.assertIsNotNone(which, "round %d: z=9 is neither input (a mix?) after %s; "
                                 "%d voxels differ from a, %d from b"
                                 % (rnd, rcs, int((got != a).sum()), int((got != b).sum())))
            if any(rc != 0 for rc, _ in rcs):
                self.assertEqual(which, "ab"[[rc for rc, _ in rcs].index(0)],
                                 "round %d: the failed writer's data was stored" % rnd)
        sys.stderr.write("[two writers of z=9: %s] " % results)
        r = T.cp([self.files[9]], self.zdir + "/")
        self.assertTrue(r.ok, r.describe())
        self.assert_unchanged(what="after concurrent writers")

    def test_parallel_cp_into_new_store(self):
        """8 cp processes at once, each with its own interleaved set of slices."""
        Zp = 64
        vol = T.make_volume((Zp, Y, X), "uint16", "random", seed=23)
        src = self.tmp.sub("par_src")
        files = {}
        for z in range(Zp):
            files[z] = os.path.join(src, "p_%03d.tif" % z)
            tifffile.imwrite(files[z], vol[z], photometric="minisblack")
        store = self.tmp.join("par.zarr")
        T.brickfs_create(store, vol.shape, "uint16", block=(8, 16, 16), brick=(16, 32, 32))
        mnt = self.tmp.join("mnt_par")
        with T.Mount(store, mnt) as m:
            zdir = os.path.join(mnt, "z")
            procs = [subprocess.Popen(["cp"] + [files[z] for z in range(k, Zp, 8)] + [zdir + "/"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                     for k in range(8)]
            rcs = [(p.wait(timeout=120), p.communicate(timeout=60)[1].decode()) for p in procs]
            self.assertEqual([rc for rc, _ in rcs], [0] * 8, rcs)
            st = T.read_status(mnt)
            self.assertEqual(st["errors"], [])
            self.assertEqual(st["slices"]["missing"], [])
            bad = [z for z in range(Zp)
                   if not np.array_equal(tifffile.imread(os.path.join(zdir, T.canonical(z))),
                                         vol[z])]
            self.assertEqual(bad, [], "planes differ after 8 parallel cp")
            m.umount_checked(self)
        d = T.check_shard_reader(store, vol)
        self.assertEqual(d, "", d)
        info = T.brickfs_info_json(store)
        self.assertEqual(info["missing"], [])

    # ========================================================== the end

    def test_zz_store_consistent_afterwards(self):
        """Runs last: fill the two missing slices, unmount, check the store."""
        r = T.cp([self.files[z] for z in MISSING], self.zdir + "/")
        self.assertTrue(r.ok, r.describe())
        st = T.read_status(self.mnt)
        self.assertEqual(st["slices"]["missing"], [])
        sys.stderr.write("[status: %d errors recorded] " % st.get("errors_total",
                                                                   len(st["errors"])))
        self.m.umount_checked(self)
        info = T.brickfs_info_json(self.store)
        self.assertEqual(info["missing"], [])
        self.assertIs(info["finalized"], True)
        d = T.check_shard_reader(self.store, self.vol)
        self.assertEqual(d, "", d)
        mnt = self.tmp.join("mnt_ro")
        with T.Mount(self.store, mnt, options=["ro"]) as m:
            for axis, n in (("z", Z), ("y", Y), ("x", X)):
                for i in range(n):
                    got = tifffile.imread(os.path.join(mnt, axis, T.canonical(i)))
                    want = (self.vol[i] if axis == "z" else self.vol[:, i, :] if axis == "y"
                            else self.vol[:, :, i])
                    self.assertTrue(np.array_equal(got, want), "%s/%s differs" % (axis, i))
            m.umount_checked(self)
        if T.brickfs("fsck", "--help").ok:
            r = T.brickfs("fsck", self.store, timeout=120)
            self.assertTrue(r.ok, "brickfs fsck on the store:\n" + r.describe())
        else:
            sys.stderr.write("[brickfs fsck not available: skipped] ")


def tearDownModule():
    left = T.own_leftover_mounts()
    if left:
        raise AssertionError("mounts left behind: %s" % left)


if __name__ == "__main__":
    T.main()
