#!/usr/bin/python3
"""Hostile users and a hostile environment must not harm the system or the data.

    /usr/bin/python3 tests/integration/test_safety.py --brickfs build/brickfs [-k PATTERN] [--keep]

(or env BRICKFS_BIN). Needs /dev/fuse and fusermount3 (else skipped, exit 77); the
tests with a second user or a tmpfs need root and are skipped otherwise. Each
class answers one finding of the red-team pass; README "What survives what".

SelfMount      a store inside its own mount point (also through a symlink, and
               in a directory that does not exist yet), the mount point inside
               the store, the store as its own mount point, log=FILE inside the
               mount point: refused before mounting (exit 2, saying why), nothing
               created. Run with a timeout; a mount that happens anyway is torn
               down hard (FUSE connection aborted, umount -l, kill -9).
OtherUsers     a user created for the test (useradd -M, removed afterwards):
               without allow_other it cannot even stat the mount; with
               allow_other it reads virtual TIFFs, but writing a slice into z/,
               a brick into bricks/, and anything else fails with EACCES and
               nothing in the store changes. Modes and owners are honest.
Symlinks       a user-owned store whose .brickfs/lock, journal, daemon.log, spool
               files or .brickfs itself are symlinks to a root-owned file, and a
               store whose shard, array directory or zarr.json.tmp is one,
               mounted by root: refused (or the file is refused) with a message;
               the target file is unchanged.
Names          names written through the mount with \\xff, \\n and \\x1b: the status
               stays valid UTF-8 JSON (Python's strict decoder) and daemon.log
               keeps one line per event.
FullDisk       the store on a tmpfs filled up while slices are buffered: `brickfs
               umount --timeout` names ENOSPC, the daemon pid and the filesystem,
               exits 3 and leaves the daemon running with the data in memory;
               after space is freed the daemon finalizes by itself and the store
               is complete.
Options        mem= above the physical memory, invalid block=/brick= shapes:
               refused before mounting with the reason (exit 2), store not
               created; brickfs create --block/--brick the same.
"""

import errno
import hashlib
import json
import os
import random
import re
import shutil
import stat
import sys
import time
import unittest

import numpy as np
import tifffile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import brickfs_testlib as T  # noqa: E402

LINE_RE = re.compile(rb"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d brickfs\[\d+\] [EWID] ")


def require_root(what):
    if os.geteuid() != 0:
        raise unittest.SkipTest("%s needs root" % what)


def tree_digest(root, skip=()):
    """{relative path: (type, sha256 or link target)} of everything below root."""
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            rel = os.path.relpath(p, root)
            if rel in skip:
                continue
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", "")
            else:
                with open(p, "rb") as f:
                    out[rel] = ("file", hashlib.sha256(f.read()).hexdigest())
    return out


def file_state(path):
    st = os.lstat(path)
    with open(path, "rb") as f:
        return (f.read(), st.st_size, st.st_mtime_ns, st.st_uid, st.st_mode)


class SafetyBase(T.ClassRootCase):
    maxDiff = 6000

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        os.chmod(cls.tmp.path, 0o755)  # other users must reach the mount points

    def mount_refused(self, store, mnt, options=(), timeout=20):
        """Runs `brickfs mount` expecting a refusal. Whatever happens, nothing is
        left mounted afterwards (hard teardown), and this never hangs."""
        argv = [T.brickfs_bin(), "mount", store, mnt]
        if options:
            argv += ["-o", ",".join(options)]
        r = T.run(argv, timeout=timeout)
        mounted = os.path.abspath(mnt) in T.fuse_mounts()
        notes = T.hard_unmount(mnt) if (mounted or r.timed_out) else []
        self.assertFalse(mounted, "brickfs mount %s %s mounted (exit %s) instead of refusing; "
                         "torn down: %s\n%s" % (store, mnt, r.returncode, notes, r.describe()))
        self.assertFalse(r.timed_out, "brickfs mount hung:\n" + r.describe())
        self.assertEqual(r.returncode, 2, "brickfs mount should refuse (exit 2):\n"
                         + r.describe())
        return r


# ===================================================================== self-mount

class SelfMount(SafetyBase):
    def test_store_inside_its_mount_point(self):
        mnt = self.tmp.sub("self1")
        store = os.path.join(mnt, "inner.zarr")
        r = self.mount_refused(store, mnt)
        self.assertIn("inside the mount point", r.stderr, r.describe())
        self.assertIn(mnt, r.stderr)
        self.assertEqual(os.listdir(mnt), [], "the refused mount created files in " + mnt)

    def test_store_deeper_inside_its_mount_point_not_yet_existing(self):
        mnt = self.tmp.sub("self2")
        store = os.path.join(mnt, "a", "b", "inner.zarr")
        r = self.mount_refused(store, mnt)
        self.assertIn("inside the mount point", r.stderr, r.describe())
        self.assertEqual(os.listdir(mnt), [])

    def test_store_inside_its_mount_point_through_a_symlink(self):
        mnt = self.tmp.sub("self3")
        link = self.tmp.join("self3_link")
        os.symlink(mnt, link)
        r = self.mount_refused(os.path.join(link, "inner.zarr"), mnt)
        self.assertIn("inside the mount point", r.stderr, r.describe())
        self.assertEqual(os.listdir(mnt), [])
        # and the other way round: the mount point given through the link
        r = self.mount_refused(os.path.join(mnt, "inner.zarr"), link)
        self.assertIn("inside the mount point", r.stderr, r.describe())
        self.assertEqual(os.listdir(mnt), [])

    def test_mount_point_inside_the_store(self):
        store = self.tmp.join("self4.zarr")
        T.brickfs_create(store, (4, 32, 32), "uint8")
        before = tree_digest(store)
        inner = os.path.join(store, "mnt")
        os.mkdir(inner)
        r = self.mount_refused(store, inner)
        self.assertIn("inside the store", r.stderr, r.describe())
        os.rmdir(inner)
        self.assertEqual(tree_digest(store), before)

    def test_store_is_its_own_mount_point(self):
        d = self.tmp.sub("self5")
        r = self.mount_refused(d, d, options=["nonempty"])
        self.assertRegex(r.stderr, "inside the mount point|is the mount point", r.describe())
        self.assertEqual(os.listdir(d), [])

    def test_log_file_inside_the_mount_point(self):
        mnt = self.tmp.sub("self6")
        store = self.tmp.join("self6.zarr")
        r = self.mount_refused(store, mnt, options=["log=" + os.path.join(mnt, "d.log")])
        self.assertIn("log", r.stderr)
        self.assertIn("inside the mount point", r.stderr, r.describe())
        self.assertFalse(os.path.exists(store), "the refused mount created the store")


# =================================================================== other users

class UserFixture(SafetyBase):
    """A system user made for this class (useradd -M) and removed afterwards."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        require_root("creating a second user")
        if not (shutil.which("useradd") and shutil.which("runuser")):
            raise unittest.SkipTest("useradd/runuser are missing")
        cls.user = "bfs%06x" % random.randrange(1 << 24)
        r = T.run(["useradd", "-M", "-N", "-s", "/usr/sbin/nologin", cls.user], timeout=30)
        if not r.ok:
            raise unittest.SkipTest("useradd failed:\n" + r.describe())
        cls.addClassCleanup(T.run, ["userdel", cls.user], 30)
        import pwd
        pw = pwd.getpwnam(cls.user)
        cls.uid, cls.gid = pw.pw_uid, pw.pw_gid

    def as_user(self, code, *args, timeout=60):
        """Runs Python `code` as the test user; returns (Ran, the JSON objects it
        printed, one a line, merged; None when there is none)."""
        r = T.run(["runuser", "-u", self.user, "--", T.PYTHON, "-c", code] + list(args),
                  timeout=timeout, cwd="/")
        out = None
        for line in r.stdout.splitlines():
            try:
                out = dict(out or {}, **json.loads(line))
            except ValueError:
                pass
        return r, out

    def make_store(self, name, slices=4):
        store = self.tmp.join(name + ".zarr")
        T.brickfs_create(store, (16, 32, 32), "uint8", block=(8, 16, 16), brick=(16, 32, 32))
        vol = T.make_volume((16, 32, 32), "uint8", "random", seed=5)
        src = self.tmp.sub(name + "_src")
        files = []
        for z in range(slices):
            p = os.path.join(src, "s_%d.tif" % z)
            tifffile.imwrite(p, vol[z], photometric="minisblack")
            os.chmod(p, 0o644)
            files.append(p)
        return store, vol, files


# Tries every way to change the mount and reports the errno of each.
_ATTEMPTS = r"""
import errno, json, os, sys
mnt, slice_file, brick = sys.argv[1], sys.argv[2], sys.argv[3]
data = open(slice_file, 'rb').read()
out = {}
def attempt(name, fn):
    try:
        fn()
        out[name] = 'ok'
    except OSError as e:
        out[name] = errno.errorcode.get(e.errno, str(e.errno))
    print(json.dumps({name: out[name]}), flush=True)  # one line each: a hang keeps the rest
def write(path, flags, payload):
    fd = os.open(path, flags, 0o644)
    try:
        os.write(fd, payload)
    finally:
        os.close(fd)
j = lambda *p: os.path.join(mnt, *p)
attempt('stat_root', lambda: os.stat(mnt))
attempt('read_z', lambda: open(j('z', '00000.tif'), 'rb').read())
attempt('read_y', lambda: open(j('y', '00000.tif'), 'rb').read())
attempt('read_status', lambda: open(j('.brickfs', 'status'), 'rb').read())
attempt('new_slice', lambda: write(j('z', 'evil_7.tif'), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, data))
attempt('replace_slice', lambda: write(j('z', '00001.tif'), os.O_WRONLY | os.O_TRUNC, data))
attempt('replace_slice_by_name', lambda: write(j('z', 's_1.tif'), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, data))
attempt('status', lambda: write(j('.brickfs', 'status'), os.O_WRONLY, b'{}'))
attempt('new_root_file', lambda: write(j('evil_3.tif'), os.O_WRONLY | os.O_CREAT, data))
attempt('write_y', lambda: write(j('y', '00000.tif'), os.O_WRONLY, data))
attempt('truncate_slice', lambda: os.truncate(j('z', '00002.tif'), 0))
attempt('mkdir', lambda: os.mkdir(j('z', 'd')))
attempt('unlink', lambda: os.unlink(j('z', '00001.tif')))
attempt('rename', lambda: os.rename(j('z', '00001.tif'), j('z', '00009.tif')))
attempt('chmod', lambda: os.chmod(j('z', '00001.tif'), 0o666))
attempt('utime', lambda: os.utime(j('z', '00001.tif'), (1, 1)))
attempt('brick', lambda: write(j('bricks', brick), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, bytes(16 * 32 * 32)))
"""


class OtherUsers(UserFixture):
    def test_private_mount_is_invisible_to_other_users(self):
        store, vol, files = self.make_store("private")
        mnt = self.tmp.sub("private_mnt")
        with T.Mount(store, mnt) as m:
            r = T.cp(files, os.path.join(mnt, "z") + "/")
            self.assertTrue(r.ok, r.describe())
            r, out = self.as_user("import os, sys, json\n"
                                  "res = {}\n"
                                  "for p in sys.argv[1:]:\n"
                                  "    try:\n"
                                  "        os.stat(p); res[p] = 'ok'\n"
                                  "    except OSError as e:\n"
                                  "        res[p] = e.errno\n"
                                  "print(json.dumps(res))\n",
                                  mnt, os.path.join(mnt, "z", "00000.tif"))
            self.assertIsNotNone(out, r.describe())
            self.assertEqual(set(out.values()), {errno.EACCES},
                             "another user could stat a mount made without allow_other: %s"
                             % out)
            m.umount_checked(self)

    def test_allow_other_lets_others_read_but_not_write(self):
        store, vol, files = self.make_store("shared")
        mnt = self.tmp.sub("shared_mnt")
        with T.Mount(store, mnt, options=["allow_other"]) as m:
            r = T.cp(files, os.path.join(mnt, "z") + "/")
            self.assertTrue(r.ok, r.describe())
            T.wait_status(mnt, lambda s: s["slices"]["present"] == len(files), what="slices in")
            before = tree_digest(store, skip={".brickfs/daemon.log"})
            status_before = T.read_status(mnt)
            z0 = T.read_bytes(os.path.join(mnt, "z", "00000.tif"))
            r, out = self.as_user(_ATTEMPTS, mnt, files[1], "z0000_y0000_x0000.raw")
            self.assertIsNotNone(out, r.describe())
            sys.stderr.write("[other user with allow_other: %s] " % out)
            self.assertFalse(r.timed_out, "another user's requests hung the mount after %s:\n%s"
                             % (out, r.describe()))
            for k in ("stat_root", "read_z", "read_y", "read_status"):
                self.assertEqual(out[k], "ok", "%s: %s" % (k, out))
            writes = {k: v for k, v in out.items()
                      if k not in ("stat_root", "read_z", "read_y", "read_status")}
            # chmod and utime by a non-owner are EPERM in the kernel, the rest EACCES
            self.assertEqual(writes, {k: "EPERM" if k in ("chmod", "utime") else "EACCES"
                                      for k in writes},
                             "another user changed or tried to change the mount: %s" % writes)
            self.assertEqual(T.read_bytes(os.path.join(mnt, "z", "00000.tif")), z0)
            # honest owners and modes: the daemon's uid/gid, writable only where
            # brickfs takes writes, and then only by the owner
            want = {"": 0o555, "z": 0o755, "y": 0o555, "x": 0o555, "bricks": 0o755,
                    "levels": 0o555, ".brickfs": 0o555, "z/00000.tif": 0o644,
                    "y/00000.tif": 0o444, "x/00000.tif": 0o444, ".brickfs/status": 0o444,
                    "bricks/z0000_y0000_x0000.raw": 0o644}
            got = {}
            for rel, mode in want.items():
                st = os.stat(os.path.join(mnt, rel) if rel else mnt)
                got[rel] = stat.S_IMODE(st.st_mode)
                self.assertEqual((st.st_uid, st.st_gid), (os.getuid(), os.getgid()), rel)
            self.assertEqual({k: oct(v) for k, v in got.items()},
                             {k: oct(v) for k, v in want.items()})
            st = T.read_status(mnt)
            self.assertEqual(st["slices"], status_before["slices"])
            self.assertEqual(st["errors_total"], status_before["errors_total"],
                             "brickfs saw another user's requests: %s" % st["errors"])
            self.assertEqual(tree_digest(store, skip={".brickfs/daemon.log"}), before,
                             "the store changed")
            m.umount_checked(self)
        d = T.check_shard_reader(store, np.concatenate(
            [vol[:len(files)], np.zeros((16 - len(files), 32, 32), np.uint8)]))
        self.assertEqual(d, "", d)

    def test_mount_by_a_user_shows_that_users_uid(self):
        r = T.run(["runuser", "-u", self.user, "--", "test", "-r", "/dev/fuse", "-a", "-w",
                   "/dev/fuse"], timeout=30)
        if not r.ok:
            self.skipTest("/dev/fuse is not usable by other users here (mode %o)"
                          % stat.S_IMODE(os.stat("/dev/fuse").st_mode))
        home = self.tmp.sub("userhome")
        os.chown(home, self.uid, self.gid)
        store, mnt = os.path.join(home, "u.zarr"), os.path.join(home, "mnt")
        r = T.run(["runuser", "-u", self.user, "--", "mkdir", mnt], timeout=30)
        self.assertTrue(r.ok, r.describe())
        r = T.run(["runuser", "-u", self.user, "--", T.brickfs_bin(), "mount", store, mnt],
                  timeout=30)
        try:
            if not r.ok and "fusermount" in r.stderr:
                self.skipTest("a non-root mount does not work here:\n" + r.describe())
            self.assertTrue(r.ok, r.describe())
            for rel in ("", "z", ".brickfs/status"):
                st = os.stat(os.path.join(mnt, rel) if rel else mnt)
                self.assertEqual((st.st_uid, st.st_gid), (self.uid, self.gid), rel)
            r = T.run(["runuser", "-u", self.user, "--", T.brickfs_bin(), "umount", mnt],
                      timeout=60)
            self.assertTrue(r.ok, r.describe())
        finally:
            if mnt in T.fuse_mounts():
                T.hard_unmount(mnt)


# ====================================================================== symlinks

class Symlinks(UserFixture):
    def setUp(self):
        # a root-owned file outside any store: what an attacker wants overwritten
        self.victim = self.tmp.join("victim_%d" % random.randrange(1 << 30))
        with open(self.victim, "wb") as f:
            f.write(b"root:precious:19000:0:99999:7:::\n" * 8)
        os.chmod(self.victim, 0o640)
        self.victim_before = file_state(self.victim)
        # a root-owned directory with a file in it: nothing may be created in
        # it, and nothing removed from it (slab-N: the name brickfs uses)
        self.victim_dir = self.tmp.sub("victimdir_%d" % random.randrange(1 << 30))
        for name in ("important", "slab-0", "slab-1"):
            with open(os.path.join(self.victim_dir, name), "wb") as f:
                f.write(b"keep me\n")
        self.victim_dir_before = tree_digest(self.victim_dir)

    def assert_victim_intact(self, what):
        self.assertEqual(file_state(self.victim), self.victim_before,
                         "%s: the symlink target was changed" % what)
        self.assertEqual(tree_digest(self.victim_dir), self.victim_dir_before,
                         "%s: files were created or removed through a symlinked directory"
                         % what)

    def user_store(self, name):
        """A store created (`brickfs create`) and owned by the test user, with
        lock, journal and daemon.log files of its own."""
        d = self.tmp.sub(name)
        os.chown(d, self.uid, self.gid)
        store = os.path.join(d, "vol.zarr")
        r = T.run(["runuser", "-u", self.user, "--", T.brickfs_bin(), "create", store,
                   "--shape", "16,32,32", "--dtype", "uint8", "--block", "8,16,16",
                   "--brick", "16,32,32"], timeout=30)
        self.assertTrue(r.ok, r.describe())
        for f in ("lock", "journal", "daemon.log"):
            p = os.path.join(store, ".brickfs", f)
            with open(p, "ab"):
                pass
            os.chown(p, self.uid, self.gid)
        return store

    def plant(self, path, target):
        if os.path.lexists(path):
            os.unlink(path)
        os.symlink(target, path)
        os.lchown(path, self.uid, self.gid)

    def test_user_store_with_symlinked_private_files(self):
        for name in ("lock", "journal", "daemon.log"):
            with self.subTest(name):
                store = self.user_store("sym_" + name.replace(".", "_"))
                self.plant(os.path.join(store, ".brickfs", name), self.victim)
                mnt = self.tmp.sub("sym_mnt_" + name.replace(".", "_"))
                r = self.mount_refused(store, mnt)
                self.assertRegex(r.stderr, "symbolic link|owned by uid", r.describe())
                self.assertIn(".brickfs", r.stderr)
                self.assert_victim_intact(name)

    def test_planted_links_and_fifos_in_a_private_directory(self):
        """.brickfs owned by root (as when root made it), its files replaced by a
        symlink, a hard link to a root-owned file, or a FIFO (that would block an
        open): each refused before mounting, naming the file."""
        for name in ("lock", "journal", "daemon.log"):
            for kind in ("symlink", "hardlink", "fifo"):
                with self.subTest(name=name, kind=kind):
                    store = self.tmp.join("planted_%s_%s.zarr" % (name.replace(".", "_"), kind))
                    T.brickfs_create(store, (4, 32, 32), "uint8")
                    p = os.path.join(store, ".brickfs", name)
                    if os.path.lexists(p):
                        os.unlink(p)
                    if kind == "symlink":
                        os.symlink(self.victim, p)
                    elif kind == "hardlink":
                        os.link(self.victim, p)
                    else:
                        os.mkfifo(p)
                    mnt = self.tmp.sub("planted_mnt_%s_%s" % (name.replace(".", "_"), kind))
                    r = self.mount_refused(store, mnt)
                    self.assertIn(p, r.stderr, r.describe())
                    self.assertRegex(r.stderr, {"symlink": "symbolic link",
                                                "hardlink": "hard link",
                                                "fifo": "not a regular file"}[kind])
                    self.assert_victim_intact("%s as a %s" % (name, kind))

    def test_user_store_refused_for_root_but_readable_read_only(self):
        store = self.user_store("owned")
        mnt = self.tmp.sub("owned_mnt")
        before = tree_digest(store)
        r = self.mount_refused(store, mnt)
        self.assertIn("owned by uid %d" % self.uid, r.stderr, r.describe())
        self.assertEqual(tree_digest(store), before)
        with T.Mount(store, mnt, options=["ro"]) as m:
            self.assertEqual(len(os.listdir(os.path.join(mnt, "z"))), 16)
            m.umount_checked(self)
        self.assertEqual(tree_digest(store), before)

    def test_symlinked_private_directory(self):
        store = self.user_store("symdir")
        shutil.rmtree(os.path.join(store, ".brickfs"))
        self.plant(os.path.join(store, ".brickfs"), self.victim_dir)
        mnt = self.tmp.sub("symdir_mnt")
        r = self.mount_refused(store, mnt)
        self.assertIn("symbolic link", r.stderr, r.describe())
        self.assert_victim_intact(".brickfs")

    def root_store(self, name, **kw):
        store = self.tmp.join(name + ".zarr")
        T.brickfs_create(store, (32, 64, 64), "uint8", block=(8, 16, 16), brick=(16, 32, 32),
                         **kw)
        vol = T.make_volume((32, 64, 64), "uint8", "random", seed=9)
        src = self.tmp.sub(name + "_src")
        files = {}
        for z in range(32):
            files[z] = os.path.join(src, "p_%d.tif" % z)
            tifffile.imwrite(files[z], vol[z], photometric="minisblack")
        return store, vol, files

    def test_symlinked_spool_files_and_spool_directory(self):
        """Spool leftovers are cleared at mount (links removed, never followed),
        so the links are planted while mounted, before the daemon spools."""
        # slabs of 8 x 64 x 64 = 32 KiB; a budget of 2 slabs and slices of 4
        # slabs arriving interleaved make the daemon spool
        for variant in ("files", "dir", "dir_at_mount"):
            with self.subTest(variant):
                store, vol, files = self.root_store("spool_" + variant)
                spool = os.path.join(store, ".brickfs", "spool")
                if variant == "dir_at_mount":
                    self.plant(spool, self.victim_dir)
                mnt = self.tmp.sub("spool_mnt_" + variant)
                with T.Mount(store, mnt, options=["mem=64K"]) as m:
                    if variant == "files":
                        os.makedirs(spool, exist_ok=True)
                        for k in range(4):
                            self.plant(os.path.join(spool, "slab-%d" % k), self.victim)
                    elif variant == "dir":
                        if os.path.isdir(spool) and not os.path.islink(spool):
                            os.rmdir(spool)
                        self.plant(spool, self.victim_dir)
                    order = [z for k in range(8) for z in range(k, 32, 8)]
                    for z in order:
                        T.cp([files[z]], os.path.join(mnt, "z") + "/")
                    st = T.read_status(mnt)
                    msgs = " ".join(e["message"] for e in st["errors"])
                    self.assertIn("symbolic link", msgs, json.dumps(st["errors"], indent=1))
                    m.umount()
                self.assert_victim_intact("spool " + variant)

    def test_symlinked_shard_array_dir_and_temporary_files(self):
        """Links planted in the store (as its owner could): a shard that does not
        exist yet pointing at a new file elsewhere, the array's c/ directory, the
        temporary file of a brick replacement and of a zarr.json update."""
        brick = "z0000_y0000_x0000.raw"
        for variant in ("shard", "array_dir", "brick_tmp", "zarr_json_tmp"):
            with self.subTest(variant):
                store, vol, files = self.root_store("shard_" + variant)
                mnt = self.tmp.sub("shard_mnt_" + variant)
                c000 = os.path.join(store, "0", "c", "0", "0", "0")
                if variant == "shard":
                    os.makedirs(os.path.dirname(c000))
                    self.plant(c000, os.path.join(self.victim_dir, "evil"))
                elif variant == "array_dir":
                    os.makedirs(os.path.join(store, "0"), exist_ok=True)
                    self.plant(os.path.join(store, "0", "c"), self.victim_dir)
                elif variant == "brick_tmp":
                    os.makedirs(os.path.dirname(c000))
                    self.plant(c000 + ".tmp", self.victim)
                else:
                    self.plant(os.path.join(store, "0", "zarr.json.tmp"), self.victim)
                with T.Mount(store, mnt) as m:
                    if variant == "brick_tmp":
                        # (no slice of the brick buffered: writing it would be EBUSY)
                        try:
                            with open(os.path.join(mnt, "bricks", brick), "wb") as f:
                                f.write(bytes(16 * 32 * 32))
                        except OSError as e:
                            sys.stderr.write("[brick write: %s] " % e)
                    else:
                        T.cp([files[z] for z in range(8)], os.path.join(mnt, "z") + "/")
                    T.wait_status(mnt, lambda s: s["slabs"]["flushing"] == 0, what="flushes")
                    st = T.read_status(mnt)
                    # a refused flush keeps its slab in memory and retries it:
                    # end the daemon without waiting for a finalize that cannot be
                    m.umount_result = T.run([T.brickfs_bin(), "umount", "--timeout", "5", mnt],
                                            timeout=30)
                    if T.pid_alive(m.pid, m.starttime):
                        os.kill(m.pid, 9)
                        T.wait_pid_gone(m.pid, 10, m.starttime)
                self.assert_victim_intact(variant)
                if variant in ("shard", "array_dir"):
                    msgs = " ".join(e["message"] for e in st["errors"])
                    self.assertIn("symbolic link", msgs, json.dumps(st["errors"], indent=1))

    def test_fsck_repair_and_compact_never_follow_a_symlinked_shard(self):
        """Root runs the maintenance tools on a store whose shard was replaced
        by a link to a root-owned file: nothing may be read through the link
        into the store (an information leak) or written through it."""
        for tool in ("fsck", "fsck_repair", "compact"):
            with self.subTest(tool):
                store, vol, files = self.root_store("maint_" + tool)
                mnt = self.tmp.sub("maint_mnt_" + tool)
                with T.Mount(store, mnt) as m:
                    T.cp([files[z] for z in range(16)], os.path.join(mnt, "z") + "/")
                    m.umount()
                c000 = os.path.join(store, "0", "c", "0", "0", "0")
                with open(c000, "rb") as f:
                    shard = f.read()
                # the victim holds the shard's bytes and a torn tail, so a
                # repair would want to cut it and compact would want to copy it
                with open(self.victim, "wb") as f:
                    f.write(shard + b"\x5a" * 100)
                self.victim_before = file_state(self.victim)
                self.plant(c000, self.victim)
                args = {"fsck": ["fsck"], "fsck_repair": ["fsck", "--repair"],
                        "compact": ["compact"]}[tool]
                r = T.brickfs(*args, store, timeout=120)
                # fsck names the link as a problem (--repair moves the link
                # itself to lost+found); compact refuses the store
                self.assertFalse(r.ok, r.describe())
                self.assertRegex(r.stdout + r.stderr, "symbolic link|not a regular file",
                                 r.describe())
                self.assert_victim_intact(tool)
                lost = os.path.join(store, ".brickfs", "lost+found", "0_c_0_0_0")
                self.assertTrue(os.path.islink(lost if tool == "fsck_repair" else c000),
                                "%s: the link itself was replaced" % tool)

    def test_fsck_repair_never_moves_files_through_a_symlinked_lost_and_found(self):
        """.brickfs/lost+found planted as a link to a root-owned directory:
        fsck --repair must not create or move anything there."""
        store, vol, files = self.root_store("lostfound")
        mnt = self.tmp.sub("lostfound_mnt")
        with T.Mount(store, mnt) as m:
            T.cp([files[z] for z in range(16)], os.path.join(mnt, "z") + "/")
            m.umount()
        c000 = os.path.join(store, "0", "c", "0", "0", "0")
        with open(c000, "ab") as f:
            f.write(b"\x5a" * 100)  # a torn tail: --repair saves it to lost+found
        stray = os.path.join(store, "0", "c", "7", "7", "7")  # a file outside the grid
        os.makedirs(os.path.dirname(stray))
        with open(stray, "wb") as f:
            f.write(b"stray")
        lost = os.path.join(store, ".brickfs", "lost+found")
        self.plant(lost, self.victim_dir)
        r = T.brickfs("fsck", "--repair", store, timeout=120)
        self.assertFalse(r.ok, r.describe())
        self.assertIn("symbolic link", r.stdout + r.stderr, r.describe())
        self.assert_victim_intact("lost+found")


# ========================================================================= names

class Names(SafetyBase):
    def test_hostile_names_keep_status_json_and_log_lines_well_formed(self):
        store = self.tmp.join("names.zarr")
        T.brickfs_create(store, (8, 32, 32), "uint8", block=(8, 16, 16), brick=(8, 32, 32))
        mnt = self.tmp.sub("names_mnt")
        names = [b"scan_\xff\xfe_3.tif", b"bad\nname_4.tif", b"esc\x1b[31mred_5.tif",
                 b"cr\rtab\t_6.tif", b"nodigits\n\xc3.tif", b"utf8_\xc3\xa9_\xe2\x82_7.tif"]
        with T.Mount(store, mnt) as m:
            zdir = os.path.join(mnt, "z").encode()
            results = {}
            for n in names:
                try:
                    fd = os.open(os.path.join(zdir, n), os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                                 0o644)
                    try:
                        os.write(fd, b"this is not a TIFF\n" * 10)
                    finally:
                        os.close(fd)
                    results[n] = "ok"
                except OSError as e:
                    results[n] = errno.errorcode[e.errno]
            sys.stderr.write("[%s] " % results)
            self.assertNotIn("ok", results.values(), results)
            raw = T.read_bytes(os.path.join(mnt, ".brickfs", "status"))
            try:
                text = raw.decode("utf-8", errors="strict")
            except UnicodeDecodeError as e:
                self.fail("status is not valid UTF-8 (%s): %r" % (e, raw[-1500:]))
            st = json.loads(text)
            self.assertGreaterEqual(len(st["errors"]), len(names), st["errors"])
            for e in st["errors"]:
                for k in ("file", "message"):
                    self.assertFalse(re.search("[\x00-\x1f\x7f]", e[k]),
                                     "control character in status %s: %r" % (k, e[k]))
            files = " ".join(e["file"] for e in st["errors"])
            for needle in ("scan_\\xff\\xfe_3.tif", "bad\\nname_4.tif", "esc\\x1b[31mred_5.tif",
                           "utf8_\u00e9_\\xe2\\x82_7.tif"):
                self.assertIn(needle, files, "status errors do not name %r: %s"
                              % (needle, files))
            m.umount_checked(self)
        log = T.read_bytes(os.path.join(store, ".brickfs", "daemon.log"))
        log.decode("utf-8", errors="strict")
        lines = log.split(b"\n")
        self.assertEqual(lines[-1], b"", "daemon.log does not end with a newline")
        bad = [l for l in lines[:-1] if not LINE_RE.match(l)
               or re.search(rb"[\x00-\x1f\x7f]", l)]
        self.assertEqual(bad, [], "daemon.log has lines that are not one event each")
        for needle in (b"scan_\\xff\\xfe_3.tif", b"bad\\nname_4.tif", b"esc\\x1b[31mred_5.tif"):
            self.assertIn(needle, log)


# ===================================================================== full disk

class FullDisk(SafetyBase):
    SHAPE = (16, 256, 256)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        require_root("mounting a tmpfs")
        cls.vol = T.make_volume(cls.SHAPE, "uint8", "random", seed=41)  # incompressible
        src = cls.tmp.sub("src")
        cls.files = {}
        for z in range(cls.SHAPE[0]):
            cls.files[z] = os.path.join(src, "full_%d.tif" % z)
            tifffile.imwrite(cls.files[z], cls.vol[z], photometric="minisblack")

    def mount_tmpfs(self, d, size):
        os.makedirs(d, exist_ok=True)
        r = T.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", d], timeout=30)
        if not r.ok:
            raise unittest.SkipTest("cannot mount a tmpfs here:\n" + r.describe())
        self.addCleanup(lambda: os.path.ismount(d) and T.run(["umount", "-l", d], timeout=30))

    def fill(self, path):
        """Writes `path` until the filesystem is full; returns the bytes written."""
        n = 0
        with open(path, "wb", buffering=0) as f:
            for chunk in (1 << 20, 1 << 12, 1):
                try:
                    while True:
                        n += f.write(b"\xa5" * chunk)
                except OSError as e:
                    self.assertEqual(e.errno, errno.ENOSPC, e)
        return n

    def test_umount_on_a_full_disk_names_enospc_and_keeps_the_data(self):
        tfs = self.tmp.join("tfs")
        self.mount_tmpfs(tfs, "4m")
        store = os.path.join(tfs, "vol.zarr")
        # a brick of 16 x 256 x 256 holds the volume: no pyramid levels
        T.brickfs_create(store, self.SHAPE, "uint8", block=(8, 32, 32), brick=(16, 256, 256))
        mnt = self.tmp.sub("full_mnt")
        present = list(range(11))  # slab 0 complete (flushed), slab 1 buffered (3 of 8)
        with T.Mount(store, mnt, log_dir=self.tmp.path, umount_timeout=30) as m:
            r = T.cp([self.files[z] for z in present], os.path.join(mnt, "z") + "/")
            self.assertTrue(r.ok, r.describe())
            T.wait_status(mnt, lambda s: s["slabs"]["flushed"] >= 1, what="slab 0 flushed")
            filler = os.path.join(tfs, "filler")
            sys.stderr.write("[filled the tmpfs with %d bytes] " % self.fill(filler))
            t0 = time.monotonic()
            r = T.run([T.brickfs_bin(), "umount", "--timeout", "12", mnt], timeout=60)
            dt = time.monotonic() - t0
            sys.stderr.write("[brickfs umount --timeout 12 on a full disk: exit %s after "
                             "%.1fs:\n%s] " % (r.returncode, dt, r.stderr[-1500:]))
            self.assertFalse(r.timed_out, r.describe())
            self.assertEqual(r.returncode, 3, "brickfs umount --timeout should exit 3:\n"
                             + r.describe())
            self.assertGreaterEqual(dt, 11, r.describe())
            for needle in ("cannot finalize " + store, "No space left on device", "ENOSPC",
                           "pid %d" % m.pid, "retries every 5 s", "free space on " + tfs,
                           "df -h " + tfs):
                self.assertIn(needle, r.stderr, r.describe())
            self.assertTrue(T.pid_alive(m.pid, m.starttime),
                            "the daemon exited on a full disk: the buffered slices are lost\n"
                            + m.log_tail())
            self.assertNotIn(mnt, T.fuse_mounts())
            time.sleep(6)  # at least one more retry: still alive, still waiting
            self.assertTrue(T.pid_alive(m.pid, m.starttime), m.log_tail())
            os.unlink(filler)
            self.assertTrue(T.wait_pid_gone(m.pid, 30, m.starttime),
                            "the daemon did not finish after space was freed\n" + m.log_tail())
            m.umount_result = r  # nothing left for the teardown to unmount
        info = T.brickfs_info_json(store)
        self.assertIs(info["finalized"], True, info)
        self.assertEqual(info["slices_present"], len(present), info)
        expect = self.vol.copy()
        expect[len(present):] = 0
        d = T.check_shard_reader(store, expect)
        self.assertEqual(d, "", d)
        self.assertFalse(os.path.exists(os.path.join(store, ".brickfs", "finalize")),
                         "the finalize state file outlived a successful finalize")


# ======================================================================= options

class Options(SafetyBase):
    def physical_memory(self):
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")

    def test_mem_above_physical_memory_is_refused(self):
        phys = self.physical_memory()
        ask = max(1 << 40, 2 * phys)
        store, mnt = self.tmp.join("mem.zarr"), self.tmp.sub("mem_mnt")
        r = self.mount_refused(store, mnt, options=["mem=%d" % ask])
        self.assertIn("mem=", r.stderr)
        self.assertIn(str(ask), r.stderr, r.describe())
        self.assertIn(str(phys), r.stderr, r.describe())
        self.assertFalse(os.path.exists(store))

    def test_invalid_block_and_brick_are_refused_before_mounting(self):
        cases = [(["block=0,16,16"], "> 0"),
                 (["block=32,32,32", "brick=48,48,48"], "not a multiple"),
                 (["brick=16,16,16"], "not a multiple"),
                 (["block=8192,8,8", "brick=8192,8,8"], "4096"),
                 (["block=4096,4096,8", "brick=4096,4096,8"], "64 MiB"),
                 (["block=1,1,1", "brick=256,256,256"], "2^20 blocks")]
        for i, (opts, needle) in enumerate(cases):
            with self.subTest(opts=opts):
                store, mnt = self.tmp.join("shape%d.zarr" % i), self.tmp.sub("shape%d_mnt" % i)
                r = self.mount_refused(store, mnt, options=opts)
                self.assertIn(needle, r.stderr, r.describe())
                self.assertIn(opts[0].split("=")[0] + "=", r.stderr)
                self.assertFalse(os.path.exists(store))

    def test_create_refuses_invalid_block_and_brick_as_a_usage_error(self):
        for i, (args, needle) in enumerate([(["--block", "0,32,32"], "> 0"),
                                            (["--block", "32,32,32", "--brick", "48,48,48"],
                                             "not a multiple")]):
            store = self.tmp.join("c%d.zarr" % i)
            r = T.brickfs("create", store, "--shape", "4,32,32", "--dtype", "uint8", *args)
            self.assertEqual(r.returncode, 2, r.describe())
            self.assertIn(needle, r.stderr)
            self.assertIn(args[-2], r.stderr)
            self.assertFalse(os.path.exists(store))


def tearDownModule():
    left = T.own_leftover_mounts()
    if left:
        for m in left:
            T.hard_unmount(m)
        raise AssertionError("mounts left behind: %s" % left)


if __name__ == "__main__":
    T.main()
