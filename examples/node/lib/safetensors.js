// A safetensors reader (https://github.com/huggingface/safetensors, "Format"):
//
//   offset 0    u64 little-endian N
//   offset 8    N bytes of UTF-8 JSON: {"__metadata__": {str: str},
//                 "<name>": {"dtype": "F32"|"F64"|"F16"|"BF16", "shape": [...], "data_offsets": [begin, end]}, ...}
//   offset 8+N  the data; each tensor's little-endian C-order bytes at [begin, end) from here,
//               together covering it with no gaps or overlaps.
import { ITEMSIZE } from "./floats.js";
import { Tensor } from "./tensor.js";

/**
 * @param {Uint8Array} bytes the whole file
 * @returns {{metadata: Record<string, string>, tensors: Tensor[]}} tensors in data order
 */
export function readSafetensors(bytes) {
  if (bytes.byteLength < 8) throw new Error("not a safetensors file: shorter than 8 bytes");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(bytes.byteLength - 8)) throw new Error(`header length ${n} does not fit the file`);
  const headerEnd = 8 + Number(n);
  /** @type {Record<string, any>} */
  const header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, headerEnd)));
  const data = bytes.subarray(headerEnd);
  const { __metadata__: metadata = {}, ...entries } = header;
  const tensors = Object.entries(entries)
    .map(([name, info]) => {
      const dtype = info.dtype;
      if (!(dtype in ITEMSIZE)) throw new Error(`${name}: unsupported dtype ${dtype}`);
      const [begin, end] = info.data_offsets;
      return { name, dtype: /** @type {keyof typeof ITEMSIZE} */ (dtype), shape: /** @type {number[]} */ (info.shape), begin, end };
    })
    .sort((a, b) => a.begin - b.begin);
  let expected = 0;
  const out = tensors.map(({ name, dtype, shape, begin, end }) => {
    if (begin !== expected) throw new Error(`${name} starts at ${begin}, expected ${expected} (gap or overlap)`);
    if (end > data.byteLength) throw new Error(`${name} ends at ${end}, past the data (${data.byteLength} bytes)`);
    expected = end;
    return new Tensor(name, dtype, shape, data.subarray(begin, end));
  });
  if (expected !== data.byteLength) throw new Error(`${data.byteLength - expected} bytes after the last tensor`);
  return { metadata, tensors: out };
}
