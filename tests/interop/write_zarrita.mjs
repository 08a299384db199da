#!/usr/bin/env node
// Writes an OME-Zarr 0.5 image (Zarr v3, unsharded) with zarrita, an
// independent JavaScript implementation, from a raw little-endian C-order
// file: the foreign-store tests (tests/integration/test_foreign.py) mount it.
//
//   node write_zarrita.mjs STORE DTYPE Z,Y,X CZ,CY,CX ENDIAN COMPRESSOR TRANSPOSE DATA.raw
//
// ENDIAN little|big (the bytes codec), COMPRESSOR none|zstd|blosc (zarrita
// 0.7 cannot encode gzip, crc32c or sharded arrays), TRANSPOSE none|reverse.
// One level ("0"), axes z, y, x in micrometer, scale 1.5, 0.5, 0.25.
// zarrita is found as in read_zarr.mjs (node_modules beside this file, or
// BRICKFS_NODE_MODULES). Exit status: 0 written, 2 usage or zarrita missing.

import * as fs from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";

const DTYPES = {
  int8: Int8Array, uint8: Uint8Array, int16: Int16Array, uint16: Uint16Array,
  int32: Int32Array, uint32: Uint32Array, float32: Float32Array, float64: Float64Array,
};

async function importPackage(name) {
  const dir = process.env.BRICKFS_NODE_MODULES;
  if (dir) {
    const pkgDir = path.join(dir, name);
    const meta = JSON.parse(fs.readFileSync(path.join(pkgDir, "package.json"), "utf8"));
    let entry = meta.exports ? meta.exports["."] : undefined;
    if (entry && typeof entry === "object") entry = entry.import ?? entry.default;
    if (!entry) entry = meta.module ?? meta.main ?? "index.js";
    return import(pathToFileURL(path.join(pkgDir, entry)).href);
  }
  return import(name);
}

function usage(msg) {
  console.error(`write_zarrita: ${msg}`);
  console.error("usage: node write_zarrita.mjs STORE DTYPE Z,Y,X CZ,CY,CX ENDIAN COMPRESSOR TRANSPOSE DATA.raw");
  process.exit(2);
}

async function main() {
  const a = process.argv.slice(2);
  if (a.length !== 8) usage(`expected 8 arguments, got ${a.length}`);
  const [store, dtype, shapeS, chunkS, endian, compressor, transpose, rawPath] = a;
  const Typed = DTYPES[dtype];
  if (!Typed) usage(`unsupported dtype ${dtype}`);
  const shape = shapeS.split(",").map(Number);
  const chunks = chunkS.split(",").map(Number);
  if (shape.length !== 3 || chunks.length !== 3) usage("shapes are Z,Y,X");
  let zarr, storage;
  try {
    zarr = await importPackage("zarrita");
    storage = await importPackage("@zarrita/storage");
  } catch (e) {
    usage(`cannot load zarrita: ${e.message}`);
  }
  const raw = fs.readFileSync(rawPath);
  const data = new Typed(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
  const codecs = [];
  if (transpose === "reverse") codecs.push({ name: "transpose", configuration: { order: [2, 1, 0] } });
  codecs.push({ name: "bytes", configuration: { endian } });
  if (compressor === "zstd") codecs.push({ name: "zstd", configuration: { level: 3, checksum: false } });
  if (compressor === "blosc") {
    codecs.push({ name: "blosc", configuration: { cname: "lz4", clevel: 5, shuffle: "shuffle",
                                                  typesize: Typed.BYTES_PER_ELEMENT, blocksize: 0 } });
  }
  fs.mkdirSync(store, { recursive: true });
  const root = zarr.root(new storage.FileSystemStore(path.resolve(store)));
  await zarr.create(root, {
    attributes: { ome: { version: "0.5", multiscales: [{
      axes: ["z", "y", "x"].map((n) => ({ name: n, type: "space", unit: "micrometer" })),
      datasets: [{ path: "0", coordinateTransformations: [{ type: "scale", scale: [1.5, 0.5, 0.25] }] }],
    }] } },
  });
  const arr = await zarr.create(root.resolve("0"), {
    shape, chunkShape: chunks, dtype, codecs, fillValue: 0, dimensionNames: ["z", "y", "x"],
  });
  const stride = [shape[1] * shape[2], shape[2], 1];
  await zarr.set(arr, null, { data, shape, stride });
}

main().catch((e) => {
  console.error(`write_zarrita: ${e.stack || e}`);
  process.exit(3);
});
