// Unit tests of the readers and float helpers (no server needed): `npm test`.
import assert from "node:assert/strict";
import { test } from "node:test";

import { zipSync } from "fflate";
import { dump } from "npyjs";

import { bf16ToNumber, f16ToNumber, roundsTo16, shortest } from "../lib/floats.js";
import { readNpy, readNpz } from "../lib/numpy.js";
import { readSafetensors } from "../lib/safetensors.js";

/** A safetensors file from a header object and data bytes. @param {object} header @param {Uint8Array} data */
function safetensors(header, data) {
  let text = JSON.stringify(header);
  text += " ".repeat((8 - (text.length % 8)) % 8);
  const head = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + head.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  out.set(data, 8 + head.length);
  return out;
}

test("float16 and bfloat16 bit patterns decode exactly", () => {
  assert.equal(f16ToNumber(0x3c00), 1);
  assert.equal(f16ToNumber(0x0001), 2 ** -24); // smallest subnormal
  assert.equal(f16ToNumber(0x03ff), 1023 * 2 ** -24); // largest subnormal
  assert.equal(f16ToNumber(0x7bff), 65504);
  assert.ok(Object.is(f16ToNumber(0x8000), -0));
  assert.equal(bf16ToNumber(0x3f80), 1);
  assert.equal(bf16ToNumber(0xbfc0), -1.5);
  assert.equal(bf16ToNumber(0x0001), 2 ** -133); // bfloat16's smallest subnormal
});

test("shortest text reads back to the same value in its dtype", () => {
  assert.equal(shortest(Math.fround(0.1), "F32", 0), "0.1");
  assert.equal(shortest(f16ToNumber(0x2e66), "F16", 0x2e66), "0.1"); // the half nearest 0.1 is 0.099975586
  assert.equal(bf16ToNumber(0xbec3), -0.380859375);
  assert.equal(shortest(bf16ToNumber(0xbec3), "BF16", 0xbec3), "-0.38"); // what the service's JSON prints
  assert.ok(roundsTo16(0.1, 0x2e66, f16ToNumber, 0x7bff));
  assert.ok(!roundsTo16(0.1, 0x2e67, f16ToNumber, 0x7bff));
  assert.ok(!roundsTo16(-0.1, 0x2e66, f16ToNumber, 0x7bff)); // wrong sign
});

test("safetensors: tensors in data order, every dtype", () => {
  const data = new Uint8Array(4 + 8 + 2 + 2);
  const v = new DataView(data.buffer);
  v.setFloat32(0, 1.5, true);
  v.setFloat64(4, -2.25, true);
  v.setUint16(12, 0x3c00, true); // F16 1.0
  v.setUint16(14, 0xc000, true); // BF16 -2.0
  const file = safetensors({
    d: { dtype: "BF16", shape: [1], data_offsets: [14, 16] },
    __metadata__: { k: "v" },
    a: { dtype: "F32", shape: [1], data_offsets: [0, 4] },
    b: { dtype: "F64", shape: [1, 1], data_offsets: [4, 12] },
    c: { dtype: "F16", shape: [1], data_offsets: [12, 14] },
  }, data);
  const st = readSafetensors(file);
  assert.deepEqual(st.metadata, { k: "v" });
  assert.deepEqual(st.tensors.map((t) => [t.name, t.dtype, t.values[0]]),
    [["a", "F32", 1.5], ["b", "F64", -2.25], ["c", "F16", 1], ["d", "BF16", -2]]);
  assert.deepEqual(st.tensors[1].shape, [1, 1]);
});

test("safetensors: inconsistent files are refused", () => {
  const f = (/** @type {object} */ header, /** @type {number} */ n) => () => readSafetensors(safetensors(header, new Uint8Array(n)));
  assert.throws(f({ a: { dtype: "F32", shape: [2], data_offsets: [0, 8] } }, 10), /after the last tensor/);
  assert.throws(f({ a: { dtype: "F32", shape: [2], data_offsets: [0, 8] } }, 4), /past the data/);
  assert.throws(f({ a: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, 8), /gap or overlap/);
  assert.throws(f({ a: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, 8), /bytes for shape/);
  assert.throws(f({ a: { dtype: "I8", shape: [1], data_offsets: [0, 1] } }, 1), /unsupported dtype/);
  assert.throws(() => readSafetensors(new Uint8Array([255, 0, 0, 0, 0, 0, 0, 0])), /does not fit/);
});

test("npy and npz through npyjs and fflate, bfloat16 as '<u2'", () => {
  const f32 = new Uint8Array(dump(new Float32Array([0.5, -1, 2, 4]), [2, 2]));
  const t = readNpy("w", f32);
  assert.deepEqual([t.dtype, t.shape, Array.from(t.values)], ["F32", [2, 2], [0.5, -1, 2, 4]]);
  const bf = new Uint8Array(dump(new Uint16Array([0x3f80, 0xc040]), [2]));
  const b = readNpy("b", bf);
  assert.deepEqual([b.dtype, Array.from(b.values)], ["BF16", [1, -3]]);
  assert.equal(b.sha256(), "b03925d702f847b51270f81f4e3c1e895dfa210116814ac97afc9ae838559d4d"); // of 80 3f 40 c0
  // manifest: a 0-d '<U' array holding JSON text (UTF-32LE), as NumPy writes it
  const text = '{"seed": 7, "note": "é😀"}';
  const points = Array.from(text, (c) => c.codePointAt(0) ?? 0);
  let header = `{'descr': '<U${points.length}', 'fortran_order': False, 'shape': (), }`;
  header += " ".repeat(63 - ((10 + header.length) % 64)) + "\n";
  const manifest = new Uint8Array(10 + header.length + 4 * points.length);
  manifest.set([0x93, ...new TextEncoder().encode("NUMPY"), 1, 0], 0);
  new DataView(manifest.buffer).setUint16(8, header.length, true);
  manifest.set(new TextEncoder().encode(header), 10);
  points.forEach((p, i) => new DataView(manifest.buffer).setUint32(10 + header.length + 4 * i, p, true));
  const zip = zipSync({ "manifest.npy": manifest, "w.npy": f32, "b.npy": bf }, { level: 0 });
  const npz = readNpz(zip);
  assert.deepEqual(npz.manifest, { seed: 7, note: "é😀" });
  assert.deepEqual(npz.tensors.map((x) => [x.name, x.dtype]), [["w", "F32"], ["b", "BF16"]]);
});
