//! NumPy .npy reader (format versions 1.0, 2.0 and 3.0; little-endian floats, C order).
//!
//!     offset 0  b"\x93NUMPY", then major and minor version bytes
//!     offset 8  header length: u16 LE (1.0) or u32 LE (2.0, 3.0)
//!     then      a Python dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (m, n), }
//!     then      the raw data
//!
//! weightinit stores bfloat16 tensors as '<u2' (their bit patterns), so '<u2' reads as BF16.

use crate::tensor::{element_count, DType, Tensor};

pub const MAGIC: &[u8] = b"\x93NUMPY";

pub fn read(name: &str, bytes: &[u8]) -> Result<Tensor, String> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("not a .npy file (bad magic)".into());
    }
    let major = bytes[6];
    let (header_len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err("truncated .npy header".into());
            }
            (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
        }
        v => return Err(format!("unsupported .npy version {}", v)),
    };
    let header = bytes.get(start..start + header_len).ok_or("truncated .npy header")?;
    let header = std::str::from_utf8(header).map_err(|_| "the .npy header is not text")?;
    let descr = dict_value(header, "descr").ok_or("no 'descr' in the .npy header")?;
    let fortran = dict_value(header, "fortran_order").ok_or("no 'fortran_order' in the .npy header")?;
    let shape = dict_value(header, "shape").ok_or("no 'shape' in the .npy header")?;
    let dtype = match descr.trim_matches(|c| c == '\'' || c == '"') {
        "<f4" => DType::F32,
        "<f8" => DType::F64,
        "<f2" => DType::F16,
        "<u2" => DType::BF16, // weightinit's bfloat16 bit patterns
        other => return Err(format!("unsupported .npy dtype {}", other)),
    };
    if fortran != "False" {
        return Err("Fortran-order .npy files are not supported".into());
    }
    let shape = parse_tuple(shape)?;
    let count = element_count(&shape).ok_or("shape overflows")?;
    let data = &bytes[start + header_len..];
    let want = count.checked_mul(dtype.itemsize() as u64).ok_or("shape overflows")?;
    if data.len() as u64 != want {
        return Err(format!("the .npy data has {} bytes, its shape needs {}", data.len(), want));
    }
    Ok(Tensor { name: name.to_string(), dtype, shape, data: data.to_vec() })
}

/// The text of `key`'s value in a Python dict literal (a quoted string, a word or a tuple).
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let pattern_single = format!("'{}'", key);
    let pattern_double = format!("\"{}\"", key);
    let at = header.find(&pattern_single).map(|i| i + pattern_single.len())
        .or_else(|| header.find(&pattern_double).map(|i| i + pattern_double.len()))?;
    let rest = header[at..].trim_start().strip_prefix(':')?.trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else if rest.starts_with('\'') || rest.starts_with('"') {
        let q = rest.as_bytes()[0] as char;
        rest[1..].find(q)? + 2
    } else {
        rest.find(|c: char| c == ',' || c == '}').unwrap_or(rest.len())
    };
    Some(rest[..end].trim())
}

fn parse_tuple(text: &str) -> Result<Vec<u64>, String> {
    let inner = text.strip_prefix('(').and_then(|t| t.strip_suffix(')')).ok_or("bad shape tuple")?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<u64>().map_err(|_| format!("bad dimension {:?}", s)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut header = format!("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", descr, shape);
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn reads_shapes_and_dtypes() {
        let data: Vec<u8> = [1.0f32, -2.5, 3.0, 0.5, 0.0, 7.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let t = read("w", &npy("<f4", "(2, 3)", &data)).unwrap();
        assert_eq!((t.dtype, t.shape.clone(), t.len()), (DType::F32, vec![2, 3], 6));
        assert_eq!(t.value(1), -2.5);
        let t = read("b", &npy("<u2", "(1,)", &0x3f80u16.to_le_bytes())).unwrap();
        assert_eq!((t.dtype, t.value(0)), (DType::BF16, 1.0));
        let t = read("s", &npy("<f8", "()", &2.0f64.to_le_bytes())).unwrap();
        assert_eq!((t.shape.len(), t.value(0)), (0, 2.0));
    }

    #[test]
    fn rejects_bad_files() {
        assert!(read("x", b"PK\x03\x04 not npy").is_err());
        assert!(read("x", &npy("<i4", "(1,)", &[0, 0, 0, 0])).is_err());
        assert!(read("x", &npy("<f4", "(2,)", &[0, 0, 0, 0])).is_err()); // short data
        assert!(read("x", &npy("<f4", "(1,)", &[0, 0, 0, 0, 0])).is_err()); // trailing data
    }
}
