// Exact conversions between the stored bit patterns of float16 / bfloat16 and JS numbers, and
// the shortest text of a value in its dtype (what the service's JSON prints).
import { float16ToFloat32 } from "npyjs";

/** @typedef {"F32" | "F64" | "F16" | "BF16"} DType */

/** Bytes per element of each safetensors dtype. */
export const ITEMSIZE = /** @type {const} */ ({ F32: 4, F64: 8, F16: 2, BF16: 2 });

/** The request's dtype names as safetensors codes. */
export const DTYPE_CODES = /** @type {const} */ ({ float32: "F32", float64: "F64", float16: "F16", bfloat16: "BF16" });

const scratch = new DataView(new ArrayBuffer(8));

/** bfloat16 bits -> the float32 value they are the upper half of (exact). @param {number} bits */
export function bf16ToNumber(bits) {
  scratch.setUint32(0, (bits & 0xffff) << 16 >>> 0, true);
  return scratch.getFloat32(0, true);
}

/** IEEE half bits -> value (npyjs's converter; every half is exact as a double). @param {number} bits */
export function f16ToNumber(bits) {
  return float16ToFloat32(bits & 0xffff);
}

/** The 64 bits of a double, as 16 hex digits (keeps -0 and NaN payloads apart). @param {number} value */
export function f64Hex(value) {
  scratch.setFloat64(0, value, true);
  return scratch.getBigUint64(0, true).toString(16).padStart(16, "0");
}

/**
 * Does the decimal `x` round to the 16-bit value with bits `bits` (nearest, ties either way)?
 * The rounding interval of a value is the half-way points to its neighbours.
 * @param {number} x
 * @param {number} bits
 * @param {(bits: number) => number} decode
 * @param {number} maxFinite the largest finite magnitude's bits (0x7bff half, 0x7f7f bfloat16)
 */
export function roundsTo16(x, bits, decode, maxFinite) {
  const sign = bits & 0x8000;
  const mag = bits & 0x7fff;
  if (mag > maxFinite) return Number.isNaN(x) ? Number.isNaN(decode(bits)) : x === decode(bits);
  if (mag !== 0 && (x < 0) !== (sign !== 0)) return false;
  const ax = Math.abs(x);
  const cur = decode(mag);
  const below = mag === 0 ? -decode(1) : decode(mag - 1);
  const above = decode(mag + 1); // past the largest finite value this is +Infinity
  const high = Number.isFinite(above) ? (cur + above) / 2 : cur; // no overflow rounding in our data
  return (below + cur) / 2 <= ax && ax <= high;
}

/**
 * The shortest decimal text of an element that reads back to the same value in its dtype.
 * @param {number} value the decoded value
 * @param {DType} dtype
 * @param {number} bits its stored bit pattern (for F16 / BF16)
 */
export function shortest(value, dtype, bits) {
  if (!Number.isFinite(value) || value === 0 || dtype === "F64") return String(value);
  for (let p = 1; p <= 17; p++) {
    const text = value.toPrecision(p);
    const back = Number(text);
    const same =
      dtype === "F32" ? Math.fround(back) === value
      : dtype === "F16" ? roundsTo16(back, bits, f16ToNumber, 0x7bff)
      : roundsTo16(back, bits, bf16ToNumber, 0x7f7f);
    if (same) return String(back);
  }
  return String(value);
}
