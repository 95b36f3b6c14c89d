// A safetensors reader for the browser (https://github.com/huggingface/safetensors, "Format"):
//
//   offset 0    u64 little-endian N
//   offset 8    N bytes of UTF-8 JSON: {"__metadata__": {str: str},
//                 "<name>": {"dtype": "F32"|"F64"|"F16"|"BF16", "shape": [...], "data_offsets": [begin, end]}, ...}
//   offset 8+N  the data: each tensor's little-endian C-order bytes at [begin, end) from here,
//               together covering it with no gaps or overlaps.
//
// weightinit puts its report (seed, scheme, versions, the normalized request, every tensor's
// theory) in __metadata__.weightinit as JSON text.

/** Bytes per element of each dtype. */
export const ITEMSIZE = Object.freeze({ F32: 4, F64: 8, F16: 2, BF16: 2 });

/** The request document's dtype names as safetensors codes. */
export const DTYPE_CODES = Object.freeze({ float32: "F32", float64: "F64", float16: "F16", bfloat16: "BF16" });

/**
 * @param {ArrayBuffer} buffer the whole file
 * @returns {{metadata: Record<string, string>, tensors: {name: string, dtype: string, shape: number[], bytes: Uint8Array}[]}}
 *   the tensors in data order
 */
export function readSafetensors(buffer) {
  const bytes = new Uint8Array(buffer);
  if (bytes.byteLength < 8) throw new Error("not a safetensors file: shorter than 8 bytes");
  const n = new DataView(buffer).getBigUint64(0, true);
  if (n > BigInt(bytes.byteLength - 8)) throw new Error(`header length ${n} does not fit the file`);
  const headerEnd = 8 + Number(n);
  const header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, headerEnd)));
  const data = bytes.subarray(headerEnd);
  const { __metadata__: metadata = {}, ...entries } = header;
  const tensors = Object.entries(entries)
    .map(([name, info]) => ({ name, dtype: info.dtype, shape: info.shape, begin: info.data_offsets[0], end: info.data_offsets[1] }))
    .sort((a, b) => a.begin - b.begin);
  let expected = 0;
  const out = tensors.map(({ name, dtype, shape, begin, end }) => {
    if (!(dtype in ITEMSIZE)) throw new Error(`${name}: unsupported dtype ${dtype}`);
    if (begin !== expected) throw new Error(`${name} starts at byte ${begin}, expected ${expected} (gap or overlap)`);
    const count = shape.reduce((a, b) => a * b, 1);
    if (end - begin !== count * ITEMSIZE[dtype]) throw new Error(`${name}: ${end - begin} bytes for shape [${shape}] of ${dtype}`);
    if (end > data.byteLength) throw new Error(`${name} ends at byte ${end}, past the data (${data.byteLength} bytes)`);
    expected = end;
    return { name, dtype, shape, bytes: data.subarray(begin, end) };
  });
  if (expected !== data.byteLength) throw new Error(`${data.byteLength - expected} bytes after the last tensor`);
  return { metadata, tensors: out };
}

/** IEEE half bits -> its value (exact: every half is a double). @param {number} bits */
export function f16ToNumber(bits) {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24; // zero and subnormals
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1024 + fraction) * 2 ** (exponent - 25);
}

const scratch = new DataView(new ArrayBuffer(8));

/** bfloat16 bits -> the float32 value they are the upper half of (exact). @param {number} bits */
export function bf16ToNumber(bits) {
  scratch.setUint32(0, (bits & 0xffff) << 16 >>> 0, true);
  return scratch.getFloat32(0, true);
}

/** The 64 bits of a double as 16 hex digits (keeps -0 apart from 0). @param {number} value */
export function f64Hex(value) {
  scratch.setFloat64(0, value, true);
  return scratch.getBigUint64(0, true).toString(16).padStart(16, "0");
}

/**
 * Element i's stored bit pattern: a number (16 or 32 bits) or a bigint (64 bits).
 * @param {DataView} view
 * @param {string} dtype
 * @param {number} i
 */
export function bitsAt(view, dtype, i) {
  switch (dtype) {
    case "F64": return view.getBigUint64(8 * i, true);
    case "F32": return view.getUint32(4 * i, true);
    default: return view.getUint16(2 * i, true);
  }
}

/**
 * A tensor's little-endian bytes -> its values as doubles (exact for every dtype here). DataView:
 * a tensor after a 16-bit one need not be aligned, and the host's byte order does not matter.
 * @param {Uint8Array} bytes
 * @param {string} dtype
 * @param {number} [limit] decode only the first `limit` values
 */
export function decode(bytes, dtype, limit = Infinity) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Math.min(bytes.byteLength / ITEMSIZE[dtype], limit);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    switch (dtype) {
      case "F64": out[i] = view.getFloat64(8 * i, true); break;
      case "F32": out[i] = view.getFloat32(4 * i, true); break;
      case "F16": out[i] = f16ToNumber(view.getUint16(2 * i, true)); break;
      default: out[i] = bf16ToNumber(view.getUint16(2 * i, true));
    }
  }
  return out;
}
