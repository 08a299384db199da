#!/usr/bin/python3
"""Tests of ome_check.py, the independent OME-Zarr 0.5 metadata checker.

    /usr/bin/python3 tests/interop/test_ome_check.py [--brickfs PATH]
    /usr/bin/python3 -m pytest tests/interop/test_ome_check.py

  - A hand-written 3-level store (group zarr.json with OME 0.5 multiscales in
    the form brickfs writes, three array zarr.json files; no brickfs needed)
    passes, also against strict_image.schema; each of a set of mutations
    (wrong version, missing level array, wrong level shape, scale, translation,
    axis order, unit, ...) fails with a message naming the file.
  - A store made by `brickfs create` passes `ome_check.py STORE`. The binary:
    env BRICKFS_BIN, else --brickfs PATH, else <repo>/build/brickfs; the test is
    skipped when none exists.

Needs Debian's python3-jsonschema (packaging/bootstrap.sh installs it).
"""

import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CHECK = os.path.join(HERE, "ome_check.py")
PYTHON = "/usr/bin/python3"
sys.path.insert(0, HERE)
import ome_check  # noqa: E402

_ARGS = {"brickfs": None}

SHAPE0 = [301, 200, 99]          # odd sides: the level shapes round up
VOXEL = [2.0, 0.25, 0.1]         # anisotropic, in micrometer
LEVELS = 3


def group_doc(name="vol", levels=LEVELS, voxel=VOXEL, unit="micrometer"):
    """STORE/zarr.json as brickfs writes it (src/format/volume_meta.cc GroupJson)."""
    axes = []
    for a in ("z", "y", "x"):
        axis = {"name": a, "type": "space"}
        if unit:
            axis["unit"] = unit
        axes.append(axis)
    datasets = []
    for level in range(levels):
        f = 2.0 ** level
        ts = [{"type": "scale", "scale": [v * f for v in voxel]}]
        if level > 0:
            ts.append({"type": "translation", "translation": [v * (f - 1) / 2 for v in voxel]})
        datasets.append({"path": str(level), "coordinateTransformations": ts})
    ms = {"name": name, "axes": axes, "datasets": datasets}
    if levels > 1:
        ms["type"] = "mean"
        ms["metadata"] = {"description": "2x2x2 mean of each window of up to 8 voxels",
                          "method": "brickfs", "version": "0.1.0"}
    return {"zarr_format": 3, "node_type": "group",
            "attributes": {"ome": {"version": "0.5", "multiscales": [ms]}}}


def array_doc(shape, level=0, dtype="uint16"):
    """STORE/L/zarr.json as brickfs writes it (ArrayJson), brickfs state trimmed."""
    brickfs = {"format_version": 1, "writer": "brickfs 0.1.0", "finalized": True,
               "fixed_shape": True, "slices_present": [[0, SHAPE0[0] - 1]]}
    if level:
        brickfs = {"format_version": 1, "level": level}
    bytes_le = {"name": "bytes", "configuration": {"endian": "little"}}
    return {
        "zarr_format": 3, "node_type": "array", "shape": list(shape), "data_type": dtype,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [256, 256, 256]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0,
        "codecs": [{"name": "sharding_indexed", "configuration": {
            "chunk_shape": [32, 32, 32],
            "codecs": [bytes_le, {"name": "zstd", "configuration": {"level": 1,
                                                                    "checksum": False}},
                       {"name": "crc32c"}],
            "index_codecs": [bytes_le, {"name": "crc32c"}],
            "index_location": "end"}}],
        "dimension_names": ["z", "y", "x"],
        "attributes": {"brickfs": brickfs}}


def level_shape(shape0, level):
    return [-(-s // 2 ** level) for s in shape0]


def write_json(path, doc):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)


def write_store(store, group=None, arrays=None):
    """Writes STORE/zarr.json and STORE/L/zarr.json; `arrays` maps path -> doc."""
    group = group_doc() if group is None else group
    if arrays is None:
        arrays = {str(l): array_doc(level_shape(SHAPE0, l), l) for l in range(LEVELS)}
    write_json(os.path.join(store, "zarr.json"), group)
    for path, doc in arrays.items():
        write_json(os.path.join(store, path, "zarr.json"), doc)
    return store


def brickfs_bin():
    """env BRICKFS_BIN, else --brickfs, else <repo>/build/brickfs; None when none is
    given and build/brickfs does not exist (a binary named but absent is an error)."""
    for c in (os.environ.get("BRICKFS_BIN"), _ARGS["brickfs"]):
        if c:
            c = os.path.abspath(c)
            if not (os.path.isfile(c) and os.access(c, os.X_OK)):
                raise AssertionError("brickfs binary %s does not exist or is not executable" % c)
            return c
    c = os.path.join(REPO, "build", "brickfs")
    return c if os.path.isfile(c) and os.access(c, os.X_OK) else None


def run_check(*args):
    return subprocess.run([PYTHON, CHECK] + list(args), capture_output=True, text=True,
                          timeout=120)


class TestOmeCheck(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ome-check-")
        self.n = 0

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def store(self, mutate=None):
        """A fresh valid 3-level store; mutate(group, arrays) edits the documents
        before they are written."""
        self.n += 1
        group = group_doc()
        arrays = {str(l): array_doc(level_shape(SHAPE0, l), l) for l in range(LEVELS)}
        if mutate:
            mutate(group, arrays)
        return write_store(os.path.join(self.tmp, "s%d.zarr" % self.n), group, arrays)

    def assert_fails(self, mutate, *needles):
        """The mutated store fails, with a message that names a zarr.json and
        contains every needle."""
        store = self.store(mutate)
        problems = ome_check.check_store(store)
        self.assertTrue(problems, "mutation was not detected")
        text = "\n".join(problems)
        for needle in needles:
            self.assertIn(needle, text)
        for p in problems:
            self.assertIn("zarr.json", p)
        return problems

    # ------------------------------------------------------- valid stores ----

    def test_valid_three_levels(self):
        store = self.store()
        self.assertEqual(ome_check.check_store(store), [])
        self.assertEqual(ome_check.check_store(store, strict=True), [])
        r = run_check(store)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout.strip(), "ok: 3 levels")

    def test_valid_single_level_without_unit(self):
        store = write_store(os.path.join(self.tmp, "one.zarr"),
                            group_doc(levels=1, voxel=[1, 1, 1], unit=None),
                            {"0": array_doc(SHAPE0)})
        self.assertEqual(ome_check.check_store(store), [])
        r = run_check(store)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout.strip(), "ok: 1 levels")

    def test_tolerance(self):
        def tiny(g, a):
            ds = g["attributes"]["ome"]["multiscales"][0]["datasets"]
            ds[2]["coordinateTransformations"][0]["scale"][1] *= 1 + 1e-12
            ds[1]["coordinateTransformations"][1]["translation"][2] *= 1 - 1e-12
        self.assertEqual(ome_check.check_store(self.store(tiny)), [])

    def test_schema_is_offline_and_sees_the_version(self):
        attrs = group_doc()["attributes"]
        self.assertEqual(ome_check.schema_problems(attrs, "g"), [])
        attrs["ome"]["version"] = "0.4"
        p = ome_check.schema_problems(attrs, "g")
        self.assertTrue(any("image.schema" in x and "version" in x for x in p), p)

    # ----------------------------------------------------------- mutations ----

    def test_wrong_version(self):
        def m(g, a):
            g["attributes"]["ome"]["version"] = "0.4"
        p = self.assert_fails(m, 'attributes.ome.version is \'0.4\', not "0.5"', "image.schema")
        r = run_check(self.store(m))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("zarr.json", r.stdout)
        self.assertEqual(len(r.stdout.strip().splitlines()), len(p))

    def test_missing_dataset_array(self):
        def m(g, a):
            del a["1"]
        self.assert_fails(m, os.path.join("1", "zarr.json") + ": missing")

    def test_wrong_level_shape(self):
        def m(g, a):
            a["2"]["shape"] = [s // 4 for s in SHAPE0]  # rounded down, not up
        self.assert_fails(m, os.path.join("2", "zarr.json") + ": level 2 shape is [75, 50, 24]",
                          "[76, 50, 25]")

    def test_wrong_scale(self):
        def m(g, a):
            ds = g["attributes"]["ome"]["multiscales"][0]["datasets"]
            ds[1]["coordinateTransformations"][0]["scale"][0] *= 1 + 1e-7
        self.assert_fails(m, "datasets[1] scale is")

    def test_scale_not_doubled(self):
        def m(g, a):
            ds = g["attributes"]["ome"]["multiscales"][0]["datasets"]
            ds[2]["coordinateTransformations"][0]["scale"] = list(VOXEL)
        self.assert_fails(m, "datasets[2] scale is", "not ordered from the highest resolution")

    def test_wrong_translation(self):
        def m(g, a):  # corner convention (scale_0 * 2^L / 2) instead of voxel centres
            ds = g["attributes"]["ome"]["multiscales"][0]["datasets"]
            ds[2]["coordinateTransformations"][1]["translation"] = [v * 2 for v in VOXEL]
        self.assert_fails(m, "datasets[2] translation is [4.0, 0.5, 0.2]",
                          "[3.0, 0.375, 0.15000000000000002]")

    def test_missing_translation(self):
        def m(g, a):
            ds = g["attributes"]["ome"]["multiscales"][0]["datasets"]
            del ds[1]["coordinateTransformations"][1]
        self.assert_fails(m, "datasets[1] translation is absent")

    def test_level0_translation(self):
        def m(g, a):
            ds = g["attributes"]["ome"]["multiscales"][0]["datasets"]
            ds[0]["coordinateTransformations"].append(
                {"type": "translation", "translation": [0, 0, 0.5]})
        self.assert_fails(m, "datasets[0] translation is [0.0, 0.0, 0.5], not absent or zero")

    def test_translation_before_scale(self):
        def m(g, a):
            ds = g["attributes"]["ome"]["multiscales"][0]["datasets"]
            ds[1]["coordinateTransformations"].reverse()
        self.assert_fails(m, "the first transform is 'translation', not the scale")

    def test_two_scales(self):
        def m(g, a):
            ds = g["attributes"]["ome"]["multiscales"][0]["datasets"]
            ds[1]["coordinateTransformations"].insert(1, copy.deepcopy(
                ds[1]["coordinateTransformations"][0]))
        self.assert_fails(m, "has 2 scale transforms, not exactly 1", "image.schema")

    def test_axes_in_another_order(self):
        def m(g, a):
            g["attributes"]["ome"]["multiscales"][0]["axes"].reverse()
        self.assert_fails(m, "axes are ['x', 'y', 'z'], not ['z', 'y', 'x']")

    def test_axis_not_space(self):
        def m(g, a):
            g["attributes"]["ome"]["multiscales"][0]["axes"][0]["type"] = "time"
        self.assert_fails(m, "axis 0 ('z') has type 'time'")

    def test_unit_not_ome(self):
        def m(g, a):
            for axis in g["attributes"]["ome"]["multiscales"][0]["axes"]:
                axis["unit"] = "micron"
        self.assert_fails(m, "has unit 'micron', not an OME-Zarr space unit")

    def test_levels_reversed(self):
        def m(g, a):
            g["attributes"]["ome"]["multiscales"][0]["datasets"].reverse()
        self.assert_fails(m, "not ordered from the highest resolution to the lowest")

    def test_array_documents(self):
        def m(g, a):
            a["1"]["dimension_names"] = ["x", "y", "z"]
            a["2"]["node_type"] = "group"
            a["0"]["zarr_format"] = 2
        self.assert_fails(m, os.path.join("1", "zarr.json") + ": dimension_names are",
                          os.path.join("2", "zarr.json") + ": node_type is 'group', not 'array'",
                          os.path.join("0", "zarr.json") + ": zarr_format is 2, not 3")

    def test_group_document(self):
        def m(g, a):
            g["node_type"] = "array"
        self.assert_fails(m, "node_type is 'array', not 'group'")

    def test_strict_wants_type_and_metadata(self):
        def m(g, a):
            del g["attributes"]["ome"]["multiscales"][0]["type"]
        store = self.store(m)
        self.assertEqual(ome_check.check_store(store), [])
        p = ome_check.check_store(store, strict=True)
        self.assertTrue(p and all("strict_image.schema" in x for x in p), p)

    def test_usage_and_missing_store(self):
        r = run_check()
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        r = run_check(os.path.join(self.tmp, "absent.zarr"))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("zarr.json: missing", r.stdout)


class TestBrickfsStore(unittest.TestCase):
    def test_created_store(self):
        exe = brickfs_bin()
        if exe is None:
            self.skipTest("no brickfs binary: set BRICKFS_BIN or pass --brickfs PATH")
        tmp = tempfile.mkdtemp(prefix="ome-check-")
        try:
            store = os.path.join(tmp, "ome_demo.zarr")
            r = subprocess.run([exe, "create", store, "--shape", "300,200,100",
                                "--dtype", "uint16"], capture_output=True, text=True,
                               timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            r = run_check(store)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertEqual(r.stdout.strip(), "ok: 1 levels")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def main():
    argv = [sys.argv[0]]
    it = iter(sys.argv[1:])
    for a in it:
        if a == "--brickfs":
            _ARGS["brickfs"] = next(it, None)
        elif a.startswith("--brickfs="):
            _ARGS["brickfs"] = a.split("=", 1)[1]
        else:
            argv.append(a)
    unittest.main(argv=argv, verbosity=2)


if __name__ == "__main__":
    main()
