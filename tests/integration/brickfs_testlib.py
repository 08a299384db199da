"""Helpers shared by the brickfs integration tests.

Run the tests with Debian's /usr/bin/python3 (numpy, tifffile, PIL); zstd for
the independent shard reader comes from the `zstandard` module (Debian package
python3-zstandard) or, without it, from libzstd through ctypes.

  - brickfs_bin(): the binary under test: env BRICKFS_BIN, else the command-line
    argument --brickfs PATH (see main()), else <repo>/build/brickfs.
  - run(): every subprocess goes through it; every call has a timeout, output
    goes to files (never pipes, so a daemon that keeps stdio open cannot hang us).
  - TempRoot: a temporary directory that is never deleted while something is
    mounted below it.
  - make_volume(), write_slice(), ENCODINGS: test stacks, written by tifffile,
    tiffcp and PIL in many TIFF flavours; each written file is checked to decode
    back to the intended plane before it is used.
  - Mount: context manager around `brickfs mount` (daemon or -f) whose exit
    always tears the mount down: `brickfs umount`, then `fusermount3 -u`, then
    killing the daemon by its pid, then hard_unmount().
  - hard_unmount(): for a mount that may hang (a daemon stuck on its own mount):
    aborts its FUSE connection (/sys/fs/fuse/connections/N/abort), `umount -l`,
    SIGKILL to its daemon; never stats the mount point.
  - read_status(), wait_status(): MOUNT/.brickfs/status.
  - require_fuse(): unittest.SkipTest when /dev/fuse or fusermount3 is missing.
  - interop: check_shard_reader() and check_zarrita() compare a store with a volume
    through the two independent readers in tests/interop/.
"""

import errno
import io
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import numpy as np
import tifffile
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
INTEROP = os.path.join(REPO, "tests", "interop")
PYTHON = "/usr/bin/python3"

sys.path.insert(0, INTEROP)
import shard_reader  # noqa: E402  (tests/interop/shard_reader.py)

_ARGS = {"brickfs": None, "keep": False}

# ------------------------------------------------------------- the binary ----


def brickfs_bin():
    """Path of the brickfs binary: env BRICKFS_BIN, else --brickfs, else build/brickfs."""
    cands = [os.environ.get("BRICKFS_BIN"), _ARGS["brickfs"],
             os.path.join(REPO, "build", "brickfs")]
    for c in cands:
        if c:
            c = os.path.abspath(c)
            if not (os.path.isfile(c) and os.access(c, os.X_OK)):
                raise AssertionError("brickfs binary %s does not exist or is not executable" % c)
            return c
    raise AssertionError("no brickfs binary: set BRICKFS_BIN or pass --brickfs PATH")


def require_fuse():
    """Raises unittest.SkipTest unless FUSE mounts can work here."""
    if not os.path.exists("/dev/fuse"):
        raise unittest.SkipTest("/dev/fuse is missing: FUSE integration tests need it")
    if not shutil.which("fusermount3"):
        raise unittest.SkipTest("fusermount3 is not installed (Debian package fuse3)")
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        raise unittest.SkipTest("/dev/fuse is not readable and writable by this user")


# ------------------------------------------------------------ subprocesses ----


class Ran:
    """Result of run(): argv, returncode, stdout, stderr (text), seconds."""

    def __init__(self, argv, returncode, stdout, stderr, seconds, timed_out=False):
        self.argv, self.returncode = argv, returncode
        self.stdout, self.stderr = stdout, stderr
        self.seconds, self.timed_out = seconds, timed_out

    @property
    def ok(self):
        return self.returncode == 0 and not self.timed_out

    def describe(self, limit=3000):
        out = (self.stdout or "")[-limit:]
        err = (self.stderr or "")[-limit:]
        return "$ %s\n-> exit %s%s after %.1fs\n--- stdout:\n%s\n--- stderr:\n%s" % (
            " ".join(map(str, self.argv)), self.returncode,
            " (TIMED OUT)" if self.timed_out else "", self.seconds, out, err)


def run(argv, timeout=60, env=None, cwd=None, stdin_data=None):
    """Runs argv with a timeout; output to temp files. On timeout the process group
    started for this command is killed and the result says timed_out."""
    argv = [str(a) for a in argv]
    t0 = time.monotonic()
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        stdin = subprocess.DEVNULL
        if stdin_data is not None:
            stdin = tempfile.TemporaryFile()
            stdin.write(stdin_data)
            stdin.seek(0)
        p = subprocess.Popen(argv, stdout=fo, stderr=fe, stdin=stdin, env=env, cwd=cwd,
                             start_new_session=True)
        timed_out = False
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if stdin_data is not None:
            stdin.close()
        fo.seek(0)
        fe.seek(0)
        out = fo.read().decode("utf-8", "replace")
        err = fe.read().decode("utf-8", "replace")
    return Ran(argv, p.returncode, out, err, time.monotonic() - t0, timed_out)


def brickfs(*args, timeout=60):
    return run([brickfs_bin()] + list(args), timeout=timeout)


def brickfs_create(store, shape, dtype, block=None, brick=None, zstd_level=None):
    args = ["create", store, "--shape", ",".join(map(str, shape)), "--dtype", dtype]
    if block:
        args += ["--block", ",".join(map(str, block))]
    if brick:
        args += ["--brick", ",".join(map(str, brick))]
    if zstd_level is not None:
        args += ["--zstd-level", str(zstd_level)]
    r = brickfs(*args)
    if not r.ok:
        raise AssertionError("brickfs create failed:\n" + r.describe())
    return r


def brickfs_info_json(store):
    r = brickfs("info", "--json", store)
    if not r.ok:
        raise AssertionError("brickfs info --json failed:\n" + r.describe())
    try:
        return json.loads(r.stdout)
    except ValueError as e:
        raise AssertionError("brickfs info --json printed no JSON (%s):\n%s" % (e, r.describe()))


def cp(sources, dest, timeout=120):
    """One `cp` command with all sources (in the given order)."""
    return run(["cp"] + list(sources) + [dest], timeout=timeout)


# --------------------------------------------------------------- processes ----


def _proc_state(pid):
    """(state letter, starttime) of pid, or None when it does not exist."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    rest = s[s.rindex(")") + 2:].split()
    return rest[0], int(rest[19])


def pid_alive(pid, starttime=None):
    st = _proc_state(pid)
    if st is None or st[0] in ("Z", "X"):
        return False
    if starttime is not None and st[1] != starttime:
        return False  # pid was reused
    return True


def wait_pid_gone(pid, timeout, starttime=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid, starttime):
            return True
        time.sleep(0.05)
    return not pid_alive(pid, starttime)


def fuse_mounts():
    """Mount points of fuse filesystems in /proc/mounts."""
    out = []
    with open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and "fuse" in parts[2]:
                out.append(parts[1].replace("\\040", " "))
    return out


def fuse_connection(path):
    """The FUSE connection number (the mount's device minor) of mount point `path`,
    read from /proc/self/mountinfo (never stat: a stuck mount would hang it)."""
    path = os.path.abspath(path)
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 4 and parts[4].replace("\\040", " ") == path:
                    return int(parts[2].split(":")[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def abort_fuse_connection(path):
    """Aborts the FUSE connection of mount `path` (/sys/fs/fuse/connections/N/abort):
    every request pending on it fails at once. True when it was aborted."""
    n = fuse_connection(path)
    if n is None:
        return False
    try:
        with open("/sys/fs/fuse/connections/%d/abort" % n, "w") as f:
            f.write("1")
        return True
    except OSError:
        return False


def is_mounted(path):
    path = os.path.abspath(path)
    return path in fuse_mounts() or os.path.ismount(path)


def fuse_connection_ids(path):
    """The FUSE connection numbers (/sys/fs/fuse/connections/N) of the mounts at
    `path`, from /proc/self/mountinfo (never stats the path: it may hang)."""
    path = os.path.abspath(path)
    ids = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            if "-" not in parts:
                continue
            fstype = parts[parts.index("-") + 1]
            mp = parts[4].replace("\\040", " ")
            if mp == path and fstype.startswith("fuse"):
                major, minor = parts[2].split(":")
                ids.append((int(major) << 20) | int(minor))
    return ids


def abort_fuse_connections(path):
    """Aborts the FUSE connections of the mounts at `path` (every request pending on
    them fails with ENOTCONN, so a daemon or a reader stuck in D state on its own
    mount wakes up). Mounts fusectl on /sys/fs/fuse/connections when needed.
    Returns the connection numbers aborted."""
    ids = fuse_connection_ids(path)
    conns = "/sys/fs/fuse/connections"
    if ids and os.path.isdir(conns) and not os.listdir(conns):
        run(["mount", "-t", "fusectl", "fusectl", conns], timeout=10)
    done = []
    for n in ids:
        try:
            with open(os.path.join(conns, str(n), "abort"), "w") as f:
                f.write("1")
            done.append(n)
        except OSError:
            pass
    return done


def daemon_pids_for(mnt):
    """Pids of brickfs processes whose argv names `mnt` (daemons or mount helpers)."""
    mnt_b = os.path.abspath(mnt).encode()
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if args and b"brickfs" in os.path.basename(args[0]) and mnt_b in args:
            pids.append(int(d))
    return pids


def hard_unmount(mnt, pids=()):
    """Tears down a mount that may hang (a daemon blocked on its own mount): aborts
    its FUSE connection, detaches it (umount -l), kills its daemon with SIGKILL and
    waits for it. Never stats `mnt` while it is mounted. Returns what it did."""
    notes = []
    mnt = os.path.abspath(mnt)
    for _ in range(3):
        if mnt not in fuse_mounts():
            break
        aborted = abort_fuse_connections(mnt)
        if aborted:
            notes.append("aborted FUSE connection %s" % aborted)
        r = run(["umount", "-l", mnt], timeout=30)
        notes.append("umount -l (exit %s)" % r.returncode)
    for pid in set(pids) | set(daemon_pids_for(mnt)):
        if pid_alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
                notes.append("killed %d" % pid)
            except ProcessLookupError:
                pass
            wait_pid_gone(pid, 10)
    return notes


# --------------------------------------------------------------- temp dirs ----


_OWN_ROOTS = []  # temp roots made by this process


def own_leftover_mounts():
    """FUSE mounts still alive below a temp root this process made (other test
    processes running at the same time are not our business)."""
    return [m for m in fuse_mounts()
            if any(m == r or m.startswith(r + "/") for r in _OWN_ROOTS)]


class TempRoot:
    """A temp directory; cleanup() never deletes through a live mount."""

    def __init__(self, prefix="brickfs-it-"):
        self.path = tempfile.mkdtemp(prefix=prefix)
        _OWN_ROOTS.append(self.path)

    def sub(self, *names):
        p = os.path.join(self.path, *names)
        os.makedirs(p, exist_ok=True)
        return p

    def join(self, *names):
        return os.path.join(self.path, *names)

    def mounts_below(self):
        return [m for m in fuse_mounts() if m == self.path or m.startswith(self.path + "/")]

    def cleanup(self):
        left = self.mounts_below()
        for m in left:
            run(["fusermount3", "-u", "-z", m], timeout=30)
            if is_mounted(m):
                run(["umount", "-l", m], timeout=30)
        left = self.mounts_below()
        if left:
            sys.stderr.write("brickfs_testlib: NOT deleting %s, still mounted: %s\n"
                             % (self.path, left))
            return
        if _ARGS["keep"]:
            sys.stderr.write("brickfs_testlib: keeping %s\n" % self.path)
            return
        shutil.rmtree(self.path, ignore_errors=True)



# ------------------------------------------------------------ store bytes ----

EMPTY = 2 ** 64 - 1  # an index entry of a block never stored


def block_location(store, brick, block, array="0"):
    """(path, offset, nbytes) of a block from the index at the end of its shard."""
    meta = shard_reader.meta_of(store, array)
    path = meta.shard_path(brick)
    with open(path, "rb") as f:
        data = f.read()
    idx = data[len(data) - meta.index_bytes:]
    off, nb = struct.unpack_from("<QQ", idx, 16 * block)
    assert (off, nb) != (EMPTY, EMPTY), "block %d of brick %s is not stored" % (block, brick)
    return path, off, nb


def store_bytes(store):
    """Bytes of every shard file of every level (STORE/L/c/...)."""
    total = 0
    for level in os.listdir(store):
        if not level.isdigit():
            continue
        for root, _, files in os.walk(os.path.join(store, level, "c")):
            total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def vm_kib(pid, key):
    """A /proc/PID/status field in KiB (VmHWM, VmRSS, ...); 0 when absent."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


class ClassRootCase(unittest.TestCase):
    """Base of mount tests sharing one TempRoot per class (self.tmp): skips
    without /dev/fuse, fails clearly when the brickfs binary is missing."""

    @classmethod
    def setUpClass(cls):
        require_fuse()
        brickfs_bin()
        cls.tmp = TempRoot()
        cls.addClassCleanup(cls.tmp.cleanup)


class TestRootCase(unittest.TestCase):
    """Base of mount tests with a fresh TempRoot per test (self.root)."""

    @classmethod
    def setUpClass(cls):
        require_fuse()
        brickfs_bin()

    def setUp(self):
        self.root = TempRoot()
        self.addCleanup(self.root.cleanup)


# -------------------------------------------------------------------- mount ----


def read_status(mnt):
    """MOUNT/.brickfs/status parsed as JSON."""
    p = os.path.join(mnt, ".brickfs", "status")
    with open(p, "rb") as f:
        data = f.read()
    try:
        return json.loads(data)
    except ValueError as e:
        raise AssertionError("%s is not JSON (%s): %r" % (p, e, data[:500]))


def wait_status(mnt, pred, timeout=20, what="condition"):
    """Polls the status until pred(status) is true; returns the last status."""
    deadline = time.monotonic() + timeout
    st = read_status(mnt)
    while not pred(st):
        if time.monotonic() > deadline:
            raise AssertionError("status never reached %s within %ss; last status:\n%s"
                                 % (what, timeout, json.dumps(st, indent=1)))
        time.sleep(0.1)
        st = read_status(mnt)
    return st


class Mount:
    """`with Mount(store, mnt, options=["ro"]) as m:` ... the mount is torn down on
    exit even when the body raised. Call m.umount() to unmount with `brickfs umount`
    and check its result; __exit__ then only makes sure nothing is left behind."""

    def __init__(self, store, mnt, options=(), foreground=False, ready_timeout=30,
                 umount_timeout=60, log_dir=None):
        self.store = os.path.abspath(store)
        self.mnt = os.path.abspath(mnt)
        self.options = list(options)
        self.foreground = foreground
        self.ready_timeout = ready_timeout
        self.umount_timeout = umount_timeout
        self.log_path = os.path.join(log_dir or os.path.dirname(self.mnt),
                                     "mount-%s-%d.log" % (os.path.basename(self.mnt),
                                                          int(time.time() * 1000)))
        self.proc = None      # the -f process
        self.pid = None       # the daemon (or -f process) pid
        self.starttime = None
        self.mount_result = None
        self.umount_result = None
        self.notes = []       # what teardown had to do beyond `brickfs umount`

    # -- start
    def argv(self):
        a = [brickfs_bin(), "mount", self.store, self.mnt]
        if self.options:
            a += ["-o", ",".join(self.options)]
        if self.foreground:
            a.append("-f")
        return a

    def __enter__(self):
        os.makedirs(self.mnt, exist_ok=True)
        if is_mounted(self.mnt):
            raise AssertionError("%s is already mounted" % self.mnt)
        try:
            self._start()
        except BaseException:
            self._teardown()
            raise
        return self

    def _start(self):
        argv = self.argv()
        if self.foreground:
            self._log = open(self.log_path, "wb")
            self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
            self.pid = self.proc.pid
            # reap the -f process as soon as it exits, so that a `brickfs umount` that
            # waits for the daemon pid to vanish does not wait for our zombie
            self._reaper = threading.Thread(target=self.proc.wait, daemon=True)
            self._reaper.start()
            st = _proc_state(self.pid)
            self.starttime = st[1] if st else None
            deadline = time.monotonic() + self.ready_timeout
            while not is_mounted(self.mnt):
                if self.proc.poll() is not None:
                    raise AssertionError("brickfs mount -f exited %s before mounting:\n%s"
                                         % (self.proc.returncode, self.log_tail()))
                if time.monotonic() > deadline:
                    raise AssertionError("brickfs mount -f: %s not mounted after %ss:\n%s"
                                         % (self.mnt, self.ready_timeout, self.log_tail()))
                time.sleep(0.05)
        else:
            r = run(argv, timeout=self.ready_timeout)
            self.mount_result = r
            if not r.ok:
                self._find_pid()
                raise AssertionError("brickfs mount failed:\n" + r.describe() + "\n"
                                     + self.log_tail())
            # `brickfs mount` returns once the mount is ready: no waiting should be needed
            if not is_mounted(self.mnt):
                deadline = time.monotonic() + 5
                while not is_mounted(self.mnt) and time.monotonic() < deadline:
                    time.sleep(0.05)
                self._find_pid()
                raise AssertionError("brickfs mount exited 0 but %s is not a mount point%s"
                                     % (self.mnt, " (it became one within 5 s)"
                                        if is_mounted(self.mnt) else ""))
            self._find_pid()

    def _find_pid(self):
        """The daemon pid: from the status file, else the process whose argv is our mount."""
        if self.pid is not None:
            return
        try:
            self.pid = int(read_status(self.mnt)["pid"])
        except Exception:
            self.pid = None
        if self.pid is None:
            for d in os.listdir("/proc"):
                if not d.isdigit():
                    continue
                try:
                    with open("/proc/%s/cmdline" % d, "rb") as f:
                        args = f.read().split(b"\0")
                except OSError:
                    continue
                if self.mnt.encode() in args and b"mount" in args and \
                        any(a.endswith(b"brickfs") for a in args[:2]):
                    self.pid = int(d)
                    break
        if self.pid is not None:
            st = _proc_state(self.pid)
            self.starttime = st[1] if st else None

    def log_tail(self, n=4000):
        """Tail of the -f output and of the daemon log (STORE/.brickfs/daemon.log)."""
        out = []
        for p in (self.log_path, os.path.join(self.store, ".brickfs", "daemon.log")):
            try:
                with open(p, "rb") as f:
                    out.append("--- %s:\n%s" % (p, f.read()[-n:].decode("utf-8", "replace")))
            except OSError:
                pass
        return "\n".join(out) or "(no log)"

    # -- stop
    def umount(self):
        """`brickfs umount MNT`; returns the Ran. Afterwards the daemon must be gone."""
        r = run([brickfs_bin(), "umount", self.mnt], timeout=self.umount_timeout)
        self.umount_result = r
        if self.proc is not None:
            try:
                self.proc.wait(timeout=30 if r.ok else 1)
            except subprocess.TimeoutExpired:
                pass
        return r

    def umount_checked(self, testcase):
        """brickfs umount, and checks: exit 0, not mounted, daemon exited."""
        r = self.umount()
        testcase.assertTrue(r.ok, "brickfs umount failed:\n" + r.describe() + "\n"
                            + self.log_tail())
        testcase.assertFalse(is_mounted(self.mnt), "still mounted after brickfs umount")
        if self.pid is not None:
            testcase.assertFalse(pid_alive(self.pid, self.starttime),
                                 "daemon pid %d still running after brickfs umount returned"
                                 % self.pid)
        if self.proc is not None:
            testcase.assertEqual(self.proc.returncode, 0,
                                 "brickfs mount -f exit status:\n" + self.log_tail())
        return r

    def __exit__(self, et, ev, tb):
        self._teardown()
        return False

    def _teardown(self):
        try:
            if self.umount_result is None and is_mounted(self.mnt):
                r = self.umount()
                if not r.ok:
                    self.notes.append("brickfs umount failed:\n" + r.describe())
                    if is_mounted(self.mnt) and abort_fuse_connection(self.mnt):
                        self.notes.append("aborted the FUSE connection")
            for argv in (["fusermount3", "-u", self.mnt], ["fusermount3", "-u", "-z", self.mnt],
                         ["umount", "-l", self.mnt]):
                if not is_mounted(self.mnt):
                    break
                r = run(argv, timeout=30)
                self.notes.append("needed %s (exit %s)" % (" ".join(argv), r.returncode))
            if self.pid is not None and pid_alive(self.pid, self.starttime):
                if not wait_pid_gone(self.pid, 15, self.starttime):
                    self.notes.append("killed daemon %d with SIGTERM" % self.pid)
                    try:
                        os.kill(self.pid, signal.SIGTERM)
                        os.kill(self.pid, signal.SIGCONT)  # in case it was stopped
                    except ProcessLookupError:
                        pass
                    if not wait_pid_gone(self.pid, 10, self.starttime):
                        self.notes.append("killed daemon %d with SIGKILL" % self.pid)
                        try:
                            os.kill(self.pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                        wait_pid_gone(self.pid, 10, self.starttime)
            if self.proc is not None:
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
                self._log.close()
            if self.mnt in fuse_mounts():
                self.notes.extend(hard_unmount(self.mnt, [self.pid] if self.pid else []))
        finally:
            if self.notes:
                sys.stderr.write("brickfs_testlib: teardown of %s: %s\n"
                                 % (self.mnt, "; ".join(self.notes)))


# ---------------------------------------------------------------- volumes ----


def make_volume(shape, dtype, kind="random", seed=0):
    """A test volume: 'random' (uniform over the dtype) or 'smooth' (gradients,
    waves and mild noise: compresses like real images)."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    hi = np.iinfo(dt).max
    if kind == "random":
        return rng.integers(0, hi, size=shape, dtype=dt, endpoint=True)
    z, y, x = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    f = (0.35 + 0.25 * np.sin(x / 9.0 + z / 5.0) * np.cos(y / 13.0)
         + 0.2 * (x + 2 * y + 3 * z) / (shape[2] + 2 * shape[1] + 3 * shape[0]))
    f += rng.normal(0, 0.02, size=shape)
    return np.clip(f * hi, 0, hi).astype(dt)


def _tiffcp_flags(enc):
    return {
        "lzw": ["-c", "lzw"],
        "lzw_pred": ["-c", "lzw:2"],
        "packbits": ["-c", "packbits"],
        "zip": ["-c", "zip"],
        "zip_pred": ["-c", "zip:2"],
        "zstd": ["-c", "zstd"],
        "tiles": ["-t", "-w", "16", "-l", "16"],
        "tiles_lzw": ["-t", "-w", "16", "-l", "16", "-c", "lzw"],
        "bigtiff": ["-8"],
        "bigendian": ["-B"],
        "bigendian_zip": ["-B", "-c", "zip"],
        "strips3": ["-r", "3"],
    }.get(enc)


# Every encoding write_slice() knows. Tests cycle through them.
ENCODINGS = [
    "raw",            # tifffile, uncompressed, one strip
    "lzw",            # tiffcp -c lzw
    "zlib",           # tifffile compression='zlib' (Adobe deflate, 8)
    "packbits",       # tiffcp -c packbits
    "tiles",          # tiffcp -t -w 16 -l 16 (edge tiles partly outside the image)
    "bigtiff",        # tiffcp -8
    "bigendian",      # tiffcp -B
    "pil",            # PIL, uncompressed
    "zip",            # tiffcp -c zip
    "lzw_pred",       # tiffcp -c lzw:2 (horizontal predictor)
    "raw_rps1",       # tifffile, one row per strip
    "tf_tiles",       # tifffile tile=(16,16)
    "tf_bigendian",   # tifffile byteorder='>'
    "tf_bigtiff",     # tifffile bigtiff=True
    "zstd",           # tiffcp -c zstd
    "pil_deflate",    # PIL compression='tiff_deflate'
    "strips3",        # tiffcp -r 3
    "zip_pred",       # tiffcp -c zip:2
    "tiles_lzw",      # tiffcp -t -w 16 -l 16 -c lzw
    "lzma",           # tifffile compression='lzma'
    "bigendian_zip",  # tiffcp -B -c zip
]


def decode_tiff_file(path):
    """Decodes any TIFF libtiff can read: tiffcp to uncompressed strips, then tifffile."""
    fd, tmp = tempfile.mkstemp(suffix=".tif")
    os.close(fd)
    try:
        r = run(["tiffcp", "-c", "none", "-s", path, tmp], timeout=60)
        if not r.ok:
            raise AssertionError("tiffcp cannot decode %s:\n%s" % (path, r.describe()))
        return tifffile.imread(tmp)
    finally:
        os.unlink(tmp)


def write_slice(path, plane, encoding="raw", verify=True):
    """Writes a 2D plane as a TIFF in the given encoding (see ENCODINGS)."""
    plane = np.ascontiguousarray(plane)
    if encoding == "raw":
        tifffile.imwrite(path, plane, photometric="minisblack")
    elif encoding == "raw_rps1":
        tifffile.imwrite(path, plane, photometric="minisblack", rowsperstrip=1)
    elif encoding == "zlib":
        tifffile.imwrite(path, plane, photometric="minisblack", compression="zlib")
    elif encoding == "lzma":
        tifffile.imwrite(path, plane, photometric="minisblack", compression="lzma")
    elif encoding == "tf_tiles":
        tifffile.imwrite(path, plane, photometric="minisblack", tile=(16, 16))
    elif encoding == "tf_bigendian":
        tifffile.imwrite(path, plane, photometric="minisblack", byteorder=">")
    elif encoding == "tf_bigtiff":
        tifffile.imwrite(path, plane, photometric="minisblack", bigtiff=True)
    elif encoding in ("pil", "pil_deflate"):
        if plane.dtype not in (np.uint8, np.uint16):
            raise ValueError("PIL writer: uint8/uint16 only")
        img = Image.fromarray(plane)
        if encoding == "pil":
            img.save(path, format="TIFF")
        else:
            img.save(path, format="TIFF", compression="tiff_deflate")
    elif _tiffcp_flags(encoding) is not None:
        src = path + ".src.tif"
        tifffile.imwrite(src, plane, photometric="minisblack")
        try:
            r = run(["tiffcp"] + _tiffcp_flags(encoding) + [src, path], timeout=60)
            if not r.ok:
                raise AssertionError("tiffcp failed:\n" + r.describe())
        finally:
            os.unlink(src)
    else:
        raise ValueError("unknown encoding %r" % encoding)
    if verify:
        back = decode_tiff_file(path)
        if back.shape != plane.shape or back.dtype != plane.dtype or not np.array_equal(back, plane):
            raise AssertionError("test fixture %s (%s) does not decode to its plane"
                                 % (path, encoding))
    return path


def write_stack(directory, vol, name_of, encodings=None, zs=None):
    """Writes vol[z] for z in zs as directory/name_of(z); encodings cycle.
    Returns {z: path}."""
    os.makedirs(directory, exist_ok=True)
    encs = encodings or ENCODINGS
    out = {}
    for i, z in enumerate(range(vol.shape[0]) if zs is None else zs):
        p = os.path.join(directory, name_of(z))
        write_slice(p, vol[z], encs[i % len(encs)])
        out[z] = p
    return out


def shuffled(items, seed):
    items = list(items)
    random.Random(seed).shuffle(items)
    return items


def canonical(i):
    return "%05d.tif" % i


# ------------------------------------------------------- reading the mount ----


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def tiff_from_bytes(data):
    """(array, info dict) of a TIFF held in memory, decoded by tifffile."""
    with tifffile.TiffFile(io.BytesIO(data)) as t:
        page = t.pages[0]
        info = {
            "pages": len(t.pages), "bigtiff": t.is_bigtiff, "byteorder": t.byteorder,
            "compression": int(page.compression), "photometric": int(page.photometric),
            "samplesperpixel": page.samplesperpixel, "shape": page.shape,
            "dtype": page.dtype, "tiled": page.is_tiled,
            "dataoffsets": tuple(page.dataoffsets), "databytecounts": tuple(page.databytecounts),
        }
        return page.asarray(), info


def pil_array(data):
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        return np.array(img)


# ------------------------------------------------------------------ interop ----


def check_shard_reader(store, expected, array_path="0"):
    """'' when tests/interop/shard_reader.py reads `expected` from the store, else why not."""
    try:
        got = shard_reader.read_array(store, array_path)
    except shard_reader.StoreError as e:
        return "shard_reader: store is invalid: %s" % e
    d = shard_reader.diff_summary(np.asarray(expected), got)
    return ("shard_reader: " + d) if d else ""


def node_modules_dir():
    """Directory holding zarrita: env BRICKFS_NODE_MODULES or tests/interop/node_modules."""
    d = os.environ.get("BRICKFS_NODE_MODULES") or os.path.join(INTEROP, "node_modules")
    return d if os.path.isfile(os.path.join(d, "zarrita", "package.json")) else None


def skip_node():
    return os.environ.get("BRICKFS_SKIP_NODE") == "1"


def require_zarrita():
    """Raises SkipTest when BRICKFS_SKIP_NODE=1 and node/zarrita are missing;
    AssertionError (a failure) when they are missing otherwise."""
    problem = None
    if not shutil.which("node"):
        problem = "node is not installed"
    elif node_modules_dir() is None:
        problem = ("zarrita is not installed (looked in %s): run `npm ci` in tests/interop "
                   "or set BRICKFS_NODE_MODULES to a node_modules directory holding it"
                   % (os.environ.get("BRICKFS_NODE_MODULES")
                      or os.path.join(INTEROP, "node_modules")))
    if problem:
        if skip_node():
            raise unittest.SkipTest(problem + " (BRICKFS_SKIP_NODE=1)")
        raise AssertionError(problem + "; set BRICKFS_SKIP_NODE=1 to skip the zarrita check")


def check_zarrita(store, expected, array_path="0", workdir=None):
    """'' when zarrita (tests/interop/read_zarr.mjs) reads `expected` from the store."""
    require_zarrita()
    expected = np.asarray(expected)
    fd, raw = tempfile.mkstemp(suffix=".raw", dir=workdir)
    os.close(fd)
    try:
        expected.astype(expected.dtype.newbyteorder("<")).tofile(raw)
        env = dict(os.environ)
        r = run(["node", os.path.join(INTEROP, "read_zarr.mjs"), store, array_path, raw,
                 expected.dtype.name] + [str(n) for n in expected.shape], timeout=180, env=env)
    finally:
        os.unlink(raw)
    if r.ok:
        return ""
    return "zarrita (read_zarr.mjs):\n" + r.describe()


# --------------------------------------------------------------------- main ----


def main():
    """unittest.main() accepting --brickfs PATH and --keep (keep temp dirs).
    Exits 77 (ctest SKIP_RETURN_CODE) when every test was skipped."""
    argv = [sys.argv[0]]
    it = iter(sys.argv[1:])
    for a in it:
        if a == "--brickfs":
            _ARGS["brickfs"] = next(it, None)
        elif a.startswith("--brickfs="):
            _ARGS["brickfs"] = a.split("=", 1)[1]
        elif a == "--keep":
            _ARGS["keep"] = True
        else:
            argv.append(a)
    prog = unittest.main(argv=argv, exit=False, verbosity=2)
    res = prog.result
    leftover = own_leftover_mounts()
    if leftover:
        sys.stderr.write("LEFT-OVER MOUNTS: %s\n" % leftover)
    if res.testsRun and len(res.skipped) == res.testsRun and res.wasSuccessful():
        sys.exit(77)
    sys.exit(0 if res.wasSuccessful() and not leftover else 1)


__all__ = [n for n in dir() if not n.startswith("_")] + ["errno"]
