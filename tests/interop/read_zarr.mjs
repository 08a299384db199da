#!/usr/bin/env node
// Reads a Zarr v3 array with zarrita (an independent JavaScript implementation)
// and compares it with a raw little-endian C-order file.
//
//   node read_zarr.mjs STORE ARRAYPATH EXPECTED.raw DTYPE Z Y X
//
// STORE is the store directory (e.g. vol.zarr), ARRAYPATH the array inside it
// (e.g. 0). Exit status: 0 equal, 1 data differs, 2 usage / zarrita missing,
// 3 zarrita could not open or read the array.
//
// zarrita is found the usual way (node_modules beside this file), or in the
// directory named by the environment variable BRICKFS_NODE_MODULES, which must
// be a directory called node_modules (as made by `npm ci --prefix DIR`: then
// BRICKFS_NODE_MODULES=DIR/node_modules) so that zarrita finds its own
// dependencies beside it.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";

const DTYPES = {
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  float32: Float32Array,
  float64: Float64Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
};

function usage(msg) {
  if (msg) console.error(`read_zarr: ${msg}`);
  console.error("usage: node read_zarr.mjs STORE ARRAYPATH EXPECTED.raw DTYPE Z Y X");
  process.exit(2);
}

// Imports package `name` (optionally its export `sub`) from BRICKFS_NODE_MODULES
// when set, else by ordinary resolution from this file's directory.
async function importPackage(name, sub) {
  const dir = process.env.BRICKFS_NODE_MODULES;
  if (dir) {
    const pkgDir = path.join(dir, name);
    const pj = path.join(pkgDir, "package.json");
    if (!fs.existsSync(pj)) {
      throw new Error(`${name} is not installed in BRICKFS_NODE_MODULES=${dir}`);
    }
    const meta = JSON.parse(fs.readFileSync(pj, "utf8"));
    const key = sub ? `./${sub}` : ".";
    let entry = meta.exports ? meta.exports[key] : undefined;
    if (entry && typeof entry === "object") entry = entry.import ?? entry.default;
    if (!entry) entry = sub ? `${sub}.js` : meta.module ?? meta.main ?? "index.js";
    return import(pathToFileURL(path.join(pkgDir, entry)).href);
  }
  return import(sub ? `${name}/${sub}` : name);
}

function fmt(v) {
  return typeof v === "bigint" ? v.toString() : String(v);
}

async function main() {
  const args = process.argv.slice(2);
  if (args.length !== 7) usage(`expected 7 arguments, got ${args.length}`);
  const [store, arrayPath, expectedPath, dtype, ...dims] = args;
  const shape = dims.map((d) => Number.parseInt(d, 10));
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) usage(`bad shape ${dims.join(",")}`);
  const Typed = DTYPES[dtype];
  if (!Typed) usage(`unsupported dtype ${dtype}`);
  if (os.endianness() !== "LE") usage("this reader assumes a little-endian host");

  let zarr, storage;
  try {
    zarr = await importPackage("zarrita");
    storage = await importPackage("@zarrita/storage");
  } catch (e) {
    console.error(`read_zarr: cannot load zarrita: ${e.message}`);
    console.error("read_zarr: run `npm ci` in tests/interop or set BRICKFS_NODE_MODULES");
    process.exit(2);
  }

  // expected data
  const n = shape.reduce((a, b) => a * b, 1);
  const raw = fs.readFileSync(expectedPath);
  if (raw.length !== n * Typed.BYTES_PER_ELEMENT) {
    usage(`${expectedPath} has ${raw.length} bytes, ${dtype} ${shape.join("x")} needs ` +
      `${n * Typed.BYTES_PER_ELEMENT}`);
  }
  const expected = new Typed(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));

  let arr, result;
  try {
    const fsStore = new storage.FileSystemStore(path.resolve(store));
    const loc = zarr.root(fsStore).resolve(arrayPath);
    arr = await zarr.open.v3(loc, { kind: "array" });
  } catch (e) {
    console.error(`read_zarr: zarrita cannot open ${store} ${arrayPath}: ${e.stack || e}`);
    process.exit(3);
  }
  const problems = [];
  if (arr.dtype !== dtype) problems.push(`dtype: zarr.json says ${arr.dtype}, expected ${dtype}`);
  if (arr.shape.length !== shape.length || arr.shape.some((d, i) => d !== shape[i])) {
    problems.push(`shape: zarr.json says [${arr.shape}], expected [${shape}]`);
  }
  if (problems.length) {
    console.log("MISMATCH");
    for (const p of problems) console.log(`  ${p}`);
    process.exit(1);
  }
  try {
    result = await zarr.get(arr, null);
  } catch (e) {
    console.error(`read_zarr: zarrita failed reading ${store} ${arrayPath}: ${e.stack || e}`);
    process.exit(3);
  }
  const { data, stride } = result;
  if (!(data instanceof Typed)) {
    console.log(`MISMATCH\n  zarrita returned ${data.constructor.name}, expected ${Typed.name}`);
    process.exit(1);
  }
  const [Z, Y, X] = shape;
  const [sz, sy, sx] = stride;
  let mismatches = 0;
  const first = [];
  const planes = new Map(); // z -> count
  for (let z = 0; z < Z; z++) {
    for (let y = 0; y < Y; y++) {
      const eRow = (z * Y + y) * X;
      const gRow = z * sz + y * sy;
      for (let x = 0; x < X; x++) {
        const e = expected[eRow + x];
        const g = data[gRow + x * sx];
        if (e !== g && !(Number.isNaN(e) && Number.isNaN(g))) {
          mismatches++;
          planes.set(z, (planes.get(z) || 0) + 1);
          if (first.length < 10) first.push(`  at [${z},${y},${x}] expected ${fmt(e)} got ${fmt(g)}`);
        }
      }
    }
  }
  if (mismatches === 0) {
    console.log(`MATCH: zarrita read ${store}/${arrayPath} ${dtype} [${shape}], ${n} voxels equal`);
    process.exit(0);
  }
  console.log(`MISMATCH: ${mismatches} of ${n} voxels differ`);
  const zs = [...planes.keys()];
  console.log(`z planes with differences (${zs.length}): ` +
    zs.slice(0, 20).map((z) => `${z}(${planes.get(z)})`).join(" ") + (zs.length > 20 ? " ..." : ""));
  for (const l of first) console.log(l);
  process.exit(1);
}

main().catch((e) => {
  console.error(`read_zarr: ${e.stack || e}`);
  process.exit(3);
});
