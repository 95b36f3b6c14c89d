// A decoded tensor: name, dtype, shape, its raw little-endian bytes and its values as numbers.
import { createHash } from "node:crypto";

import { ITEMSIZE, bf16ToNumber, f16ToNumber, f64Hex, shortest } from "./floats.js";

/** @typedef {import("./floats.js").DType} DType */

export class Tensor {
  /**
   * @param {string} name
   * @param {DType} dtype
   * @param {number[]} shape
   * @param {Uint8Array} bytes raw little-endian C-order bytes
   * @param {ArrayLike<number>} [values] already decoded values (e.g. by npyjs); else decoded here
   */
  constructor(name, dtype, shape, bytes, values) {
    const count = shape.reduce((a, b) => a * b, 1);
    if (bytes.byteLength !== count * ITEMSIZE[dtype]) {
      throw new Error(`${name}: ${bytes.byteLength} bytes for shape [${shape}] of ${dtype}`);
    }
    this.name = name;
    this.dtype = dtype;
    this.shape = shape;
    this.bytes = bytes;
    this.values = values ?? decode(bytes, dtype);
    if (this.values.length !== count) throw new Error(`${name}: ${this.values.length} values for shape [${shape}]`);
  }

  get size() {
    return this.values.length;
  }

  /** sha256 of the raw bytes, as the service reports it. */
  sha256() {
    return createHash("sha256").update(this.bytes).digest("hex");
  }

  /** Element i's stored bit pattern (an unsigned integer of the dtype's width). @param {number} i */
  bits(i) {
    const view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
    switch (this.dtype) {
      case "F64": return view.getBigUint64(8 * i, true);
      case "F32": return view.getUint32(4 * i, true);
      default: return view.getUint16(2 * i, true);
    }
  }

  /** The first n values as the shortest text that reads back to them in the dtype. @param {number} n */
  head(n) {
    const out = [];
    for (let i = 0; i < Math.min(n, this.size); i++) {
      const b = this.bits(i);
      out.push(shortest(this.values[i], this.dtype, typeof b === "bigint" ? 0 : b));
    }
    return out;
  }

  /** Every element's stored bits and decoded value (as f64 bits), in hex: for exact comparisons. */
  dump() {
    const width = 2 * ITEMSIZE[this.dtype];
    const bits = [];
    const f64 = [];
    for (let i = 0; i < this.size; i++) {
      bits.push(this.bits(i).toString(16).padStart(width, "0"));
      f64.push(f64Hex(this.values[i]));
    }
    return { name: this.name, dtype: this.dtype, shape: this.shape, sha256: this.sha256(), bits, f64_bits: f64 };
  }
}

/**
 * Raw little-endian bytes -> numbers (DataView: no alignment needs, any host byte order).
 * @param {Uint8Array} bytes
 * @param {DType} dtype
 */
export function decode(bytes, dtype) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.byteLength / ITEMSIZE[dtype];
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    switch (dtype) {
      case "F64": out[i] = view.getFloat64(8 * i, true); break;
      case "F32": out[i] = view.getFloat32(4 * i, true); break;
      case "F16": out[i] = f16ToNumber(view.getUint16(2 * i, true)); break;
      case "BF16": out[i] = bf16ToNumber(view.getUint16(2 * i, true)); break;
      default: throw new Error(`unsupported dtype ${dtype}`);
    }
  }
  return out;
}
