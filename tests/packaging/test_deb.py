#!/usr/bin/python3
"""The Debian package: cpack builds it from the build tree; extracted with
`dpkg -x` into a scratch root, it holds a working brickfs, the mount.brickfs
symlink, man pages that render, bash completion and the right Depends.

  /usr/bin/python3 tests/packaging/test_deb.py --brickfs build/brickfs --build-dir build
"""

import glob
import gzip
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import pkglib
from pkglib import ARGS, run

RUNTIME_DEPENDS = ["fuse3", "libfuse3-3", "libtiff6", "libzstd1", "libboost-filesystem1.74.0"]
SUBCOMMANDS = ["mount", "umount", "create", "info", "status"]
MAN_PAGES = ["man1/brickfs.1", "man8/mount.brickfs.8", "man5/brickfs-format.5"]


class DebPackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="brickfs-deb-")
        cfg = os.path.join(ARGS.build_dir, "CPackConfig.cmake")
        if not os.path.exists(cfg):
            raise AssertionError("%s is missing: configure the build with CMake first" % cfg)
        # cpack from the build tree; its staging area and the .deb go to a scratch
        # directory (-B) so the build tree is left as it was.
        out = os.path.join(cls.tmp, "out")
        r = run(["cpack", "-G", "DEB", "--config", cfg, "-B", out], timeout=90,
                cwd=ARGS.build_dir)
        if not r.ok:
            raise AssertionError("cpack failed:\n%s" % r)
        debs = glob.glob(os.path.join(out, "*.deb"))
        if len(debs) != 1:
            raise AssertionError("expected one .deb in %s, found %s\n%s" % (out, debs, r))
        cls.deb = debs[0]
        cls.root = os.path.join(cls.tmp, "root")
        r = run(["dpkg", "-x", cls.deb, cls.root], timeout=60)
        if not r.ok:
            raise AssertionError("dpkg -x failed:\n%s" % r)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def field(self, name):
        r = run(["dpkg-deb", "-f", self.deb, name])
        self.assertTrue(r.ok, str(r))
        return r.stdout.strip()

    def bin(self):
        return os.path.join(self.root, "usr/bin/brickfs")

    def test_file_name_and_control_fields(self):
        version = run([ARGS.brickfs, "--version"]).stdout.split()[1]
        self.assertEqual(self.field("Package"), "brickfs")
        self.assertTrue(self.field("Version").startswith(version), self.field("Version"))
        self.assertIn(self.field("Version"), os.path.basename(self.deb))
        self.assertRegex(self.field("Maintainer"), r".+ <[^@ ]+@[^@ ]+>")
        desc = self.field("Description")
        self.assertIn("FUSE", desc.splitlines()[0])
        self.assertGreater(len(desc.splitlines()), 3, "no long description")
        self.assertEqual(self.field("Architecture"),
                         run(["dpkg", "--print-architecture"]).stdout.strip())

    def test_depends_lists_runtime_packages(self):
        depends = self.field("Depends")
        names = {re.split(r"[\s(]", d.strip())[0] for d in depends.split(",")}
        for pkg in RUNTIME_DEPENDS:
            self.assertIn(pkg, names, "Depends: " + depends)

    def test_depends_cover_every_shared_library(self):
        # Every library the packaged binary needs comes from a package in Depends.
        depends = self.field("Depends")
        names = {re.split(r"[\s(]", d.strip())[0] for d in depends.split(",")}
        r = run(["readelf", "-d", self.bin()])
        if not r.ok:
            self.skipTest("readelf is missing")
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", r.stdout)
        self.assertTrue(needed)
        self.assertNotIn("RPATH", r.stdout)
        self.assertNotIn("RUNPATH", r.stdout)
        for lib in needed:
            q = run(["dpkg", "-S", "*/" + lib])
            self.assertTrue(q.ok, "no package owns %s:\n%s" % (lib, q))
            owners = {line.split(":")[0] for line in q.stdout.splitlines()}
            self.assertTrue(owners & names, "%s comes from %s, not in Depends: %s" %
                            (lib, owners, depends))

    def test_binary_runs_from_the_package(self):
        r = run([self.bin(), "--version"])
        self.assertTrue(r.ok, str(r))
        self.assertRegex(r.stdout, r"^brickfs \d+\.\d+\.\d+")
        r = run([self.bin(), "--help"])
        self.assertTrue(r.ok, str(r))
        for cmd in SUBCOMMANDS:
            self.assertIn("brickfs " + cmd, r.stdout)
        for cmd in SUBCOMMANDS:
            r = run([self.bin(), cmd, "--help"])
            self.assertTrue(r.ok, str(r))
            self.assertIn("Usage: brickfs " + cmd, r.stdout)

    def test_mount_helper_is_a_symlink_to_the_binary(self):
        helper = os.path.join(self.root, "usr/sbin/mount.brickfs")
        self.assertTrue(os.path.islink(helper), helper + " is not a symlink")
        self.assertFalse(os.path.isabs(os.readlink(helper)),
                         "link should be relative: " + os.readlink(helper))
        self.assertEqual(os.path.realpath(helper), os.path.realpath(self.bin()))
        # Called by that name it is `brickfs mount`.
        r = run([helper, "--help"])
        self.assertTrue(r.ok, str(r))
        self.assertIn("Usage: brickfs mount", r.stdout)

    def test_man_pages_render(self):
        version = run([ARGS.brickfs, "--version"]).stdout.split()[1]
        env = dict(os.environ, MANWIDTH="80")
        env.pop("MAN_KEEP_FORMATTING", None)
        for page in MAN_PAGES:
            cands = glob.glob(os.path.join(self.root, "usr/share/man", page + "*"))
            self.assertEqual(len(cands), 1, "man page %s: %s" % (page, cands))
            path = cands[0]
            r = run(["man", "-l", path], env=env)
            self.assertTrue(r.ok, str(r))
            self.assertEqual(r.stderr.strip(), "", "man -l %s warns:\n%s" % (path, r.stderr))
            text = re.sub(".\x08", "", r.stdout)  # drop overstrike bold/underline
            self.assertIn("NAME", text)
            self.assertIn("SEE ALSO", text)
            self.assertIn("brickfs " + version, text.splitlines()[-1], "version in the footer")
            too_long = [l for l in text.splitlines() if len(l) > 80]
            self.assertEqual(too_long, [], "lines over 80 columns in " + page)
            if shutil.which("groff"):
                opener = gzip.open if path.endswith(".gz") else open
                with opener(path, "rb") as f:
                    src = f.read()
                p = subprocess.run(["groff", "-man", "-ww", "-z"], input=src,
                                   capture_output=True, timeout=30)
                self.assertEqual(p.returncode, 0)
                self.assertEqual(p.stderr.decode().strip(), "", "groff warns on " + page)

    def test_bash_completion(self):
        path = os.path.join(self.root, "usr/share/bash-completion/completions/brickfs")
        self.assertTrue(os.path.isfile(path), path)
        r = run(["bash", "-n", path])
        self.assertTrue(r.ok, str(r))
        script = ('source "$1"; COMP_WORDS=(brickfs mo); COMP_CWORD=1; _brickfs; '
                  'echo "${COMPREPLY[*]}"; COMP_WORDS=(brickfs create s --dtype ui); '
                  'COMP_CWORD=4; _brickfs; echo "${COMPREPLY[*]}"; '
                  'complete -p brickfs')
        r = run(["bash", "-c", script, "bash", path])
        self.assertTrue(r.ok, str(r))
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0], "mount")
        self.assertEqual(lines[1].split(), ["uint8", "uint16", "uint32"])
        self.assertIn("-F _brickfs brickfs", lines[2])

    def test_docs_and_examples(self):
        doc = os.path.join(self.root, "usr/share/doc/brickfs")
        for f in ["README.md", "examples/fstab.example", "examples/brickfs@.service",
                  "examples/mnt-vol.mount"]:
            self.assertTrue(os.path.isfile(os.path.join(doc, f)), f)
        # The example fstab parses (libmount) and has one line of each form.
        if shutil.which("findmnt"):
            r = run(["findmnt", "--tab-file", os.path.join(doc, "examples/fstab.example"),
                     "-n", "-o", "FSTYPE"])
            self.assertTrue(r.ok, str(r))
            self.assertEqual(sorted(r.stdout.split()), ["brickfs", "fuse.brickfs"])

    def test_files_belong_to_root(self):
        r = run(["dpkg-deb", "-c", self.deb])
        self.assertTrue(r.ok, str(r))
        for line in r.stdout.splitlines():
            self.assertIn(" root/root ", line)
            self.assertRegex(line.split()[-1] if "->" not in line else line.split()[-3],
                             r"^\./usr/")


if __name__ == "__main__":
    pkglib.main()
