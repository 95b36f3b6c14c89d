// .npy with npyjs, and .npz (a ZIP of .npy files) with fflate + npyjs.
//
// weightinit writes float32 '<f4', float64 '<f8', float16 '<f2' and bfloat16 as '<u2' (its bit
// patterns: NumPy has no bfloat16), so a '<u2' array is read as BF16 here.
import { unzipSync } from "fflate";
import { parse } from "npyjs";

import { bf16ToNumber } from "./floats.js";
import { Tensor } from "./tensor.js";

const DTYPES = /** @type {const} */ ({ f4: "F32", f8: "F64", f2: "F16", u2: "BF16" });

/** A Uint8Array's bytes as a standalone ArrayBuffer (what npyjs parses; aligned for typed arrays). @param {Uint8Array} u8 */
function ownBuffer(u8) {
  const copy = new Uint8Array(u8.byteLength);
  copy.set(u8);
  return copy.buffer;
}

/** Offset of the data in a .npy file (after magic, version, header length and header). @param {Uint8Array} u8 */
function dataOffset(u8) {
  const view = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  return u8[6] === 1 ? 10 + view.getUint16(8, true) : 12 + view.getUint32(8, true);
}

/**
 * @param {string} name
 * @param {Uint8Array} file the .npy bytes
 */
export function readNpy(name, file) {
  const arr = parse(ownBuffer(file)); // npyjs: converts '<f2' to float32 values by default
  const dtype = DTYPES[/** @type {keyof typeof DTYPES} */ (arr.dtype)];
  if (!dtype) throw new Error(`${name}: unexpected .npy dtype ${arr.dtype}`);
  if (arr.fortranOrder) throw new Error(`${name}: Fortran order is not expected`);
  const data = /** @type {ArrayLike<number>} */ (/** @type {unknown} */ (arr.data));
  const values = dtype === "BF16" ? Float64Array.from(data, bf16ToNumber) : data;
  return new Tensor(name, dtype, arr.shape, file.subarray(dataOffset(file)), values);
}

/**
 * An .npz from weightinit: `manifest.npy` (the report as JSON text in a 0-d '<U' array) and one
 * `<name>.npy` per tensor.
 * @param {Uint8Array} zip
 * @returns {{manifest: any, tensors: Tensor[]}}
 */
export function readNpz(zip) {
  const files = unzipSync(zip);
  const manifestFile = files["manifest.npy"];
  if (!manifestFile) throw new Error("no manifest.npy in the archive");
  const tensors = Object.entries(files)
    .filter(([entry]) => entry !== "manifest.npy")
    .map(([entry, bytes]) => readNpy(entry.replace(/\.npy$/, ""), bytes));
  return { manifest: JSON.parse(unicodeScalar(manifestFile)), tensors };
}

/** The text of a 0-d '<U' .npy array (UTF-32LE code points), decoded in slices. @param {Uint8Array} file */
function unicodeScalar(file) {
  const start = dataOffset(file);
  const view = new DataView(file.buffer, file.byteOffset + start, file.byteLength - start);
  let text = "";
  /** @type {number[]} */
  const points = [];
  for (let i = 0; i + 4 <= view.byteLength; i += 4) {
    const cp = view.getUint32(i, true);
    if (cp === 0) break; // NumPy pads with NULs
    points.push(cp);
    if (points.length === 8192) text += String.fromCodePoint(...points.splice(0));
  }
  return text + String.fromCodePoint(...points);
}
