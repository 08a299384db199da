#!/usr/bin/python3
"""Tests of the two independent readers the integration tests rely on.

    /usr/bin/python3 tests/interop/test_readers.py

  - shard_reader.py --self-test: crc32c vectors, round trips, corruption detection.
  - read_zarr.mjs (zarrita) on stores written by shard_reader.write_reference_store
    (the format of DESIGN.md section 4, written without brickfs): exit 0 and MATCH
    on equal data, exit 1 and a diff summary on unequal data. This also checks that
    our reading of the format is the one zarrita has.

node + zarrita (tests/interop/node_modules, or env BRICKFS_NODE_MODULES) are
required; with BRICKFS_SKIP_NODE=1 the zarrita tests are skipped instead of failing.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import shard_reader  # noqa: E402


def node_modules_dir():
    d = os.environ.get("BRICKFS_NODE_MODULES") or os.path.join(HERE, "node_modules")
    return d if os.path.isfile(os.path.join(d, "zarrita", "package.json")) else None


class TestShardReader(unittest.TestCase):
    def test_self_test(self):
        r = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "shard_reader.py"),
                            "--self-test"], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(" 0 failed", r.stdout)

    def test_cli_compare(self):
        tmp = tempfile.mkdtemp(prefix="readers-")
        try:
            vol = np.random.default_rng(3).integers(0, 60000, (9, 20, 30), dtype=np.uint16)
            shard_reader.write_reference_store(os.path.join(tmp, "v.zarr"), vol, (4, 8, 8),
                                               (8, 16, 16), "uint16", dead_copy=True)
            raw = os.path.join(tmp, "v.raw")
            vol.astype("<u2").tofile(raw)
            cmd = ["/usr/bin/python3", os.path.join(HERE, "shard_reader.py"),
                   os.path.join(tmp, "v.zarr"), "0", "--expected", raw]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("MATCH", r.stdout)
            vol[4, 5, 6] ^= 1
            vol.astype("<u2").tofile(raw)
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn("at (4, 5, 6)", r.stdout)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class TestZarritaReader(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        problem = None
        if not shutil.which("node"):
            problem = "node is not installed"
        elif node_modules_dir() is None:
            problem = ("zarrita is not installed: run `npm ci` in tests/interop or set "
                       "BRICKFS_NODE_MODULES")
        if problem:
            if os.environ.get("BRICKFS_SKIP_NODE") == "1":
                raise unittest.SkipTest(problem + " (BRICKFS_SKIP_NODE=1)")
            raise AssertionError(problem + "; BRICKFS_SKIP_NODE=1 skips this")
        cls.tmp = tempfile.mkdtemp(prefix="readers-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def node(self, store, raw, dtype, shape):
        return subprocess.run(["node", os.path.join(HERE, "read_zarr.mjs"), store, "0", raw,
                               dtype] + [str(n) for n in shape],
                              capture_output=True, text=True, timeout=120)

    def roundtrip(self, name, dtype, shape, block, brick, **kw):
        rng = np.random.default_rng(len(name))
        dt = np.dtype(dtype)
        if dt.kind == "f":
            vol = rng.standard_normal(shape).astype(dt)
        else:
            vol = rng.integers(0, np.iinfo(dt).max, size=shape, dtype=dt)
        vol[:, :, : shape[2] // 3] = 0  # empty blocks and missing shard files
        store = os.path.join(self.tmp, name + ".zarr")
        shard_reader.write_reference_store(store, vol, block, brick, dt.name, **kw)
        raw = os.path.join(self.tmp, name + ".raw")
        vol.astype(dt.newbyteorder("<")).tofile(raw)
        r = self.node(store, raw, dt.name, shape)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("MATCH", r.stdout)
        self.assertEqual(shard_reader.diff_summary(vol, shard_reader.read_array(store)), "")
        return vol, store, raw

    def test_uint8_edges(self):
        self.roundtrip("u8", "uint8", (13, 37, 45), (4, 8, 16), (8, 16, 32))

    def test_uint16_append_protocol_layout(self):
        self.roundtrip("u16", "uint16", (20, 40, 50), (8, 16, 16), (16, 32, 32),
                       gaps=True, dead_copy=True)

    def test_float32(self):
        self.roundtrip("f32", "float32", (5, 9, 11), (2, 4, 4), (4, 8, 8))

    def test_mismatch_is_reported(self):
        vol, store, raw = self.roundtrip("mm", "uint16", (6, 10, 12), (2, 4, 4), (4, 8, 8))
        bad = vol.copy()
        bad[2, 3, 4] += 1
        bad[5, 9, 11] += 7
        bad.astype("<u2").tofile(raw)
        r = self.node(store, raw, "uint16", vol.shape)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("MISMATCH: 2 of 720 voxels differ", r.stdout)
        self.assertIn("at [2,3,4]", r.stdout)
        r = self.node(store, raw, "uint8", vol.shape)  # wrong size of expected file
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        vol.astype("<u2").tofile(raw)
        r = self.node(store, raw, "int16", vol.shape)  # dtype differs from zarr.json
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("dtype", r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
