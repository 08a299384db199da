#!/usr/bin/python3
"""The demo (packaging/demo.sh) leaves nothing behind: its directory of about
170 MB (the stack and the store) is removed at the end unless --keep is given,
and then the demo says where it is and how to remove it.

Each test runs the whole demo (a mount, 160 slices copied in, an unmount) with
TMPDIR set to a directory of its own. Needs root and /dev/fuse (else exit 77).

  /usr/bin/python3 tests/packaging/test_demo.py --brickfs build/brickfs --build-dir build
"""

import os
import shutil
import tempfile
import unittest

import pkglib
from pkglib import ARGS, run

DEMO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../packaging/demo.sh")


class DemoTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="brickfs-demo-test-")

    def tearDown(self):
        if not any(m.startswith(self.tmp + "/") for _, m, _ in pkglib.proc_mounts()):
            shutil.rmtree(self.tmp, ignore_errors=True)

    def demo(self, *flags):
        env = dict(os.environ, TMPDIR=self.tmp)
        env.pop("BRICKFS_DEMO_DIR", None)
        r = run(["bash", DEMO] + list(flags) + [ARGS.brickfs], timeout=200, env=env)
        self.assertTrue(r.ok, str(r))
        self.assertIn("identical pixels", r.stdout, str(r))
        self.assertFalse([m for _, m, _ in pkglib.proc_mounts() if m.startswith(self.tmp + "/")],
                         "the demo left a mount")
        return r

    def test_the_demo_removes_its_directory(self):
        r = self.demo()
        self.assertEqual(os.listdir(self.tmp), [], "left behind:\n" + str(r))
        self.assertRegex(r.stdout, r"demo: removed %s/brickfs-demo\.\w+\n" % self.tmp)

    def test_keep_keeps_the_directory_and_says_where_it_is(self):
        r = self.demo("--keep")
        left = os.listdir(self.tmp)
        self.assertEqual(len(left), 1, left)
        kept = os.path.join(self.tmp, left[0])
        self.assertTrue(os.path.isfile(os.path.join(kept, "vol.zarr", "zarr.json")))
        self.assertIn("demo: kept %s " % kept, r.stdout)
        self.assertIn("rm -rf %s removes it" % kept, r.stdout)


if __name__ == "__main__":
    pkglib.main(require_fuse=True)
