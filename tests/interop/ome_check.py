#!/usr/bin/python3
"""Independent check of a brickfs store's OME-Zarr 0.5 metadata.

    /usr/bin/python3 tests/interop/ome_check.py STORE [--strict]

Prints "ok: N levels" and exits 0 when STORE's metadata is valid; otherwise
prints each problem (naming the file it is in) and exits 1. Exit 2: usage.

What is checked (written from the OME-Zarr 0.5 specification, not from brickfs's
code; see tests/interop/ome_zarr_0.5/README.txt for the schemas' source):

  - STORE/zarr.json `attributes` against the official 0.5 image.schema (with
    --strict also strict_image.schema, which wants the SHOULD fields "name",
    "type" and "metadata" of a multiscale), by Debian's python3-jsonschema.
    The schemas' $refs are resolved from the local copies, keyed by $id: no
    network.
  - STORE/zarr.json is a Zarr v3 group (zarr_format 3, node_type group) and
    attributes.ome.version is "0.5".
  - multiscales[0].axes are z, y, x, each of type "space", with a unit (when
    given) that is one of the spec's UDUNITS-2 space units.
  - every dataset path P has STORE/P/zarr.json, a Zarr v3 array (zarr_format 3,
    node_type array) of a 3-d shape with dimension_names [z, y, x].
  - level L (its index in "datasets") has shape ceil(shape_0 / 2^L) per axis,
    exactly one "scale" (first) and at most one "translation" (after it), no
    other transforms, each of 3 finite numbers, with
        scale_L       = scale_0 * 2^L
        translation_L = scale_0 * (2^L - 1) / 2   (voxel centres; absent or 0 at L=0)
    compared with a relative tolerance of 1e-9; the levels go from the highest
    resolution to the lowest.

For the tests: `check_store(path, strict=False) -> list[str]` (empty = valid).
"""

import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA_DIR = os.path.join(HERE, "ome_zarr_0.5")
SCHEMA_FILES = ("_version.schema", "image.schema", "strict_image.schema")
REL_TOL = 1e-9
AXES = ["z", "y", "x"]

# OME-Zarr 0.5, "axes" metadata: the units (UDUNITS-2) for "space" axes.
OME_SPACE_UNITS = frozenset((
    "angstrom", "attometer", "centimeter", "decimeter", "exameter", "femtometer", "foot",
    "gigameter", "hectometer", "inch", "kilometer", "megameter", "meter", "micrometer",
    "mile", "millimeter", "nanometer", "parsec", "petameter", "picometer", "terameter",
    "yard", "yoctometer", "yottameter", "zeptometer", "zettameter"))


# ------------------------------------------------------------ the schemas ----

def _load_schemas():
    """{file name: schema} of the local copies."""
    out = {}
    for name in SCHEMA_FILES:
        with open(os.path.join(SCHEMA_DIR, name), encoding="utf-8") as f:
            out[name] = json.load(f)
    return out


def _no_network(uri):
    raise LookupError("schema %s is not among the local copies in %s (no network)"
                      % (uri, SCHEMA_DIR))


def schema_validator(name="image.schema"):
    """A Draft 2020-12 validator for the local schema `name`, with every $ref
    resolved from the local copies by $id."""
    from jsonschema import Draft202012Validator
    schemas = _load_schemas()
    for s in schemas.values():
        Draft202012Validator.check_schema(s)
    by_id = {s["$id"]: s for s in schemas.values()}
    root = schemas[name]
    try:  # jsonschema >= 4.18 resolves through the `referencing` library
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012
    except ImportError:  # Debian 12's jsonschema 4.10: RefResolver with a store
        from jsonschema import RefResolver
        resolver = RefResolver(base_uri=root["$id"], referrer=root, store=dict(by_id),
                               handlers={"http": _no_network, "https": _no_network})
        return Draft202012Validator(root, resolver=resolver)
    registry = Registry().with_resources(
        (sid, Resource.from_contents(s, default_specification=DRAFT202012))
        for sid, s in by_id.items())
    return Draft202012Validator(root, registry=registry)


def _short(text, limit=300):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def schema_problems(attributes, where, name="image.schema"):
    """Problems of a group's `attributes` against the schema `name`."""
    try:
        validator = schema_validator(name)
    except ImportError:
        return ["%s: cannot validate against %s: python3-jsonschema is not installed"
                % (where, name)]
    errors = sorted(validator.iter_errors(attributes),
                    key=lambda e: [str(p) for p in e.absolute_path])
    out = []
    for e in errors:
        at = "/".join(["attributes"] + [str(p) for p in e.absolute_path])
        out.append("%s: %s: %s: %s" % (where, name, at, _short(e.message)))
    return out


# ------------------------------------------------------------ hand checks ----

def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _read_json(path, problems):
    """The parsed document, or None after adding a problem."""
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read().decode("utf-8"))
    except FileNotFoundError:
        problems.append("%s: missing" % path)
        return None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        problems.append("%s: not readable JSON: %s" % (path, _short(e)))
        return None
    if not isinstance(doc, dict):
        problems.append("%s: not a JSON object" % path)
        return None
    return doc


def _check_zarr_node(doc, where, node_type, problems):
    fmt = doc.get("zarr_format")
    if not (_is_int(fmt) and fmt == 3):
        problems.append("%s: zarr_format is %r, not 3" % (where, fmt))
    if doc.get("node_type") != node_type:
        problems.append("%s: node_type is %r, not %r" % (where, doc.get("node_type"), node_type))


def _vector(t, key, where, what, problems):
    v = t.get(key)
    if not (isinstance(v, list) and len(v) == 3 and all(_is_number(x) for x in v)):
        problems.append("%s: %s %s is %r, not 3 finite numbers" % (where, what, key, v))
        return None
    return [float(x) for x in v]


def _transforms(ts, where, what, problems):
    """(scale, translation) of a coordinateTransformations list, each a list of 3
    floats or None; problems for anything but one scale first and at most one
    translation after it."""
    if not isinstance(ts, list) or not ts:
        problems.append("%s: %s coordinateTransformations is %r, not a non-empty list"
                        % (where, what, ts))
        return None, None
    types = [t.get("type") if isinstance(t, dict) else None for t in ts]
    n_scale, n_shift = types.count("scale"), types.count("translation")
    bad = [t for t in types if t not in ("scale", "translation")]
    if bad:
        problems.append("%s: %s has transforms of types %r; only scale and translation "
                        "are allowed" % (where, what, bad))
    if n_scale != 1:
        problems.append("%s: %s has %d scale transforms, not exactly 1" % (where, what, n_scale))
    if n_shift > 1:
        problems.append("%s: %s has %d translation transforms, not at most 1"
                        % (where, what, n_shift))
    if types and types[0] != "scale":
        problems.append("%s: %s: the first transform is %r, not the scale"
                        % (where, what, types[0]))
    scale = shift = None
    if n_scale == 1:
        scale = _vector(ts[types.index("scale")], "scale", where, what, problems)
        if scale is not None and not all(s > 0 for s in scale):
            problems.append("%s: %s scale %r is not positive" % (where, what, scale))
            scale = None
    if n_shift == 1:
        shift = _vector(ts[types.index("translation")], "translation", where, what, problems)
    return scale, shift


def _close(got, want, ref):
    """got == want within REL_TOL (relative to want, or to `ref` when want is 0)."""
    return math.isclose(got, want, rel_tol=REL_TOL, abs_tol=REL_TOL * abs(ref))


def _check_axes(axes, where, problems):
    if not isinstance(axes, list):
        problems.append("%s: multiscales[0].axes is %r, not a list" % (where, axes))
        return
    names = [a.get("name") if isinstance(a, dict) else None for a in axes]
    if names != AXES:
        problems.append("%s: multiscales[0].axes are %r, not %r" % (where, names, AXES))
    for i, a in enumerate(axes):
        if not isinstance(a, dict):
            continue
        if a.get("type") != "space":
            problems.append("%s: axis %d (%r) has type %r, not \"space\""
                            % (where, i, a.get("name"), a.get("type")))
        if "unit" in a and a["unit"] not in OME_SPACE_UNITS:
            problems.append("%s: axis %d (%r) has unit %r, not an OME-Zarr space unit "
                            "(angstrom ... micrometer, millimeter, nanometer, ...)"
                            % (where, i, a.get("name"), a["unit"]))


def _check_level_array(store, path, where_group, dtype0, problems):
    """The array document of dataset `path`: its shape, or None."""
    parts = path.split("/")
    if (not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts)):
        problems.append("%s: dataset path %r is not a relative path below the group"
                        % (where_group, path))
        return None, None
    where = os.path.join(store, *parts, "zarr.json")
    doc = _read_json(where, problems)
    if doc is None:
        return None, None
    _check_zarr_node(doc, where, "array", problems)
    shape = doc.get("shape")
    if not (isinstance(shape, list) and len(shape) == 3
            and all(_is_int(s) and s >= 0 for s in shape)):
        problems.append("%s: shape is %r, not 3 non-negative integers" % (where, shape))
        shape = None
    if doc.get("dimension_names") != AXES:
        problems.append("%s: dimension_names are %r, not %r"
                        % (where, doc.get("dimension_names"), AXES))
    dtype = doc.get("data_type")
    if dtype0 is not None and dtype != dtype0:
        problems.append("%s: data_type %r differs from level 0's %r" % (where, dtype, dtype0))
    return shape, dtype


def check_store(store, strict=False):
    """Problems of STORE's OME-Zarr 0.5 metadata; an empty list when it is valid."""
    problems = []
    where = os.path.join(store, "zarr.json")
    group = _read_json(where, problems)
    if group is None:
        return problems
    _check_zarr_node(group, where, "group", problems)
    attrs = group.get("attributes")
    if not isinstance(attrs, dict):
        problems.append("%s: attributes is %r, not an object" % (where, attrs))
        return problems
    problems += schema_problems(attrs, where)
    if strict:
        problems += schema_problems(attrs, where, "strict_image.schema")

    ome = attrs.get("ome")
    if not isinstance(ome, dict):
        problems.append("%s: attributes.ome is missing or not an object" % where)
        return problems
    if ome.get("version") != "0.5":
        problems.append("%s: attributes.ome.version is %r, not \"0.5\""
                        % (where, ome.get("version")))
    ms = ome.get("multiscales")
    if not (isinstance(ms, list) and ms and isinstance(ms[0], dict)):
        problems.append("%s: attributes.ome.multiscales is not a non-empty list of objects" % where)
        return problems
    m = ms[0]
    _check_axes(m.get("axes"), where, problems)
    if "coordinateTransformations" in m:
        _transforms(m["coordinateTransformations"], where, "multiscales[0]", problems)

    datasets = m.get("datasets")
    if not (isinstance(datasets, list) and datasets):
        problems.append("%s: multiscales[0].datasets is not a non-empty list" % where)
        return problems
    paths = [d.get("path") if isinstance(d, dict) else None for d in datasets]
    if len(set(map(str, paths))) != len(paths):
        problems.append("%s: dataset paths %r are not unique" % (where, paths))

    shapes, scales, shifts = [], [], []
    dtype0 = None
    for level, d in enumerate(datasets):
        what = "datasets[%d]" % level
        if not isinstance(d, dict) or not isinstance(d.get("path"), str):
            problems.append("%s: %s has no string path" % (where, what))
            shapes.append(None), scales.append(None), shifts.append(None)
            continue
        what += " (path %r)" % d["path"]
        shape, dtype = _check_level_array(store, d["path"], where, dtype0, problems)
        if level == 0:
            dtype0 = dtype
        scale, shift = _transforms(d.get("coordinateTransformations"), where, what, problems)
        shapes.append(shape), scales.append(scale), shifts.append(shift)

    # Order: from the highest resolution (level 0) to the lowest.
    for level in range(1, len(datasets)):
        a, b = shapes[level - 1], shapes[level]
        sa, sb = scales[level - 1], scales[level]
        if ((a and b and any(y > x for x, y in zip(a, b)))
                or (sa and sb and any(y < x for x, y in zip(sa, sb)))):
            problems.append("%s: datasets are not ordered from the highest resolution to the "
                            "lowest: level %d (shape %r, scale %r) follows level %d (shape %r, "
                            "scale %r)" % (where, level, b, sb, level - 1, a, sa))

    # Each level against level 0.
    shape0, scale0 = shapes[0], scales[0]
    if shifts[0] is not None and scale0 is not None and not all(
            _close(t, 0.0, s) for t, s in zip(shifts[0], scale0)):
        problems.append("%s: datasets[0] translation is %r, not absent or zero"
                        % (where, shifts[0]))
    for level in range(1, len(datasets)):
        f = 2.0 ** level
        shape = shapes[level]
        if shape0 is not None and shape is not None:
            want = [-(-s // (1 << level)) for s in shape0]  # ceil(s / 2^L)
            if shape != want:
                arr = os.path.join(store, *datasets[level]["path"].split("/"), "zarr.json")
                problems.append("%s: level %d shape is %r, not ceil(%r / 2^%d) = %r"
                                % (arr, level, shape, shape0, level, want))
        if scale0 is None:
            continue
        scale, shift = scales[level], shifts[level]
        want_scale = [s * f for s in scale0]
        if scale is not None and not all(_close(g, w, w) for g, w in zip(scale, want_scale)):
            problems.append("%s: datasets[%d] scale is %r, not scale_0 * 2^%d = %r"
                            % (where, level, scale, level, want_scale))
        want_shift = [s * (f - 1) / 2 for s in scale0]
        got_shift = shift if shift is not None else [0.0, 0.0, 0.0]
        if not all(_close(g, w, s) for g, w, s in zip(got_shift, want_shift, scale0)):
            problems.append("%s: datasets[%d] translation is %s, not scale_0 * (2^%d - 1) / 2 "
                            "= %r (voxel centres)"
                            % (where, level, "absent" if shift is None else repr(shift),
                               level, want_shift))
    return problems


def main(argv):
    args = [a for a in argv[1:] if a != "--strict"]
    if len(args) != 1 or args[0].startswith("-"):
        sys.stderr.write("usage: %s STORE [--strict]\n" % os.path.basename(argv[0]))
        return 2
    problems = check_store(args[0], strict="--strict" in argv[1:])
    if problems:
        for p in problems:
            print(p)
        return 1
    with open(os.path.join(args[0], "zarr.json"), "rb") as f:
        n = len(json.loads(f.read())["attributes"]["ome"]["multiscales"][0]["datasets"])
    print("ok: %d levels" % n)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
