//! safetensors reader.
//!
//!     offset 0    u64 little-endian N
//!     offset 8    N bytes of UTF-8 JSON: {"__metadata__": {str: str}, name: {"dtype", "shape",
//!                 "data_offsets": [begin, end]}, ...}
//!     offset 8+N  the data: each tensor's little-endian C-order bytes at [begin, end) relative to
//!                 here; together they cover the data with no gaps or overlaps.

use crate::json::{self, Value};
use crate::tensor::{element_count, DType, Tensor};

/// The format's own bound on the JSON header (the reference implementation's).
pub const MAX_HEADER: u64 = 100_000_000;

pub struct SafeTensors {
    pub metadata: Vec<(String, String)>,
    pub tensors: Vec<Tensor>, // in data order
}

/// One tensor of a header: where its bytes are, relative to the data section.
pub struct Entry {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<u64>,
    pub begin: u64,
    pub end: u64,
}

pub struct Header {
    pub metadata: Vec<(String, String)>,
    pub entries: Vec<Entry>, // in data order, tiling the data section
}

/// N, the header's length, from a file's first 8 bytes and the file's length: it must fit the file.
pub fn header_length(first8: &[u8], file_len: u64) -> Result<u64, String> {
    if first8.len() < 8 || file_len < 8 {
        return Err("not a safetensors file (shorter than 8 bytes)".into());
    }
    let n = u64::from_le_bytes(first8[..8].try_into().unwrap());
    if n > file_len - 8 || n > MAX_HEADER {
        return Err(format!("header length {} does not fit the file", n));
    }
    Ok(n)
}

/// The header (its N bytes of JSON) of a file whose data section has `data_len` bytes: every tensor's
/// dtype, shape and offsets, checked to tile the data section exactly.
pub fn parse_header(text: &[u8], data_len: u64) -> Result<Header, String> {
    let header = std::str::from_utf8(text).map_err(|_| "the header is not UTF-8")?;
    let header = json::parse(header)?;
    let members = header.as_object().ok_or("the header is not a JSON object")?;
    let mut metadata = Vec::new();
    let mut entries = Vec::new();
    for (name, info) in members {
        if name == "__metadata__" {
            for (k, v) in info.as_object().ok_or("__metadata__ is not an object")? {
                metadata.push((k.clone(), v.as_str().ok_or("__metadata__ values must be strings")?.to_string()));
            }
            continue;
        }
        let field = |k: &str| info.get(k).ok_or_else(|| format!("tensor {:?} has no {:?}", name, k));
        let code = field("dtype")?.as_str().ok_or("dtype is not a string")?;
        let dtype = DType::from_safetensors(code).ok_or_else(|| format!("tensor {:?}: unsupported dtype {}", name, code))?;
        let shape = u64_list(field("shape")?).ok_or_else(|| format!("tensor {:?}: bad shape", name))?;
        let offsets = u64_list(field("data_offsets")?).ok_or_else(|| format!("tensor {:?}: bad data_offsets", name))?;
        if offsets.len() != 2 || offsets[0] > offsets[1] {
            return Err(format!("tensor {:?}: bad data_offsets {:?}", name, offsets));
        }
        let want = element_count(&shape).and_then(|c| c.checked_mul(dtype.itemsize() as u64));
        if want != Some(offsets[1] - offsets[0]) {
            return Err(format!("tensor {:?}: {} bytes for shape {:?} of {}", name, offsets[1] - offsets[0], shape, code));
        }
        entries.push(Entry { name: name.clone(), dtype, shape, begin: offsets[0], end: offsets[1] });
    }
    entries.sort_by_key(|e| (e.begin, e.end));
    let mut expected = 0u64;
    for e in &entries {
        if e.begin != expected {
            return Err(format!("tensor {:?} starts at {}, expected {} (gap or overlap)", e.name, e.begin, expected));
        }
        if e.end > data_len {
            return Err(format!("tensor {:?} ends at {}, past the data ({} bytes)", e.name, e.end, data_len));
        }
        expected = e.end;
    }
    if expected != data_len {
        return Err(format!("{} bytes after the last tensor", data_len - expected));
    }
    Ok(Header { metadata, entries })
}

/// A whole file in memory: its metadata and every tensor.
pub fn read(bytes: &[u8]) -> Result<SafeTensors, String> {
    let n = header_length(bytes, bytes.len() as u64)? as usize;
    let data = &bytes[8 + n..];
    let h = parse_header(&bytes[8..8 + n], data.len() as u64)?;
    let tensors = h
        .entries
        .into_iter()
        .map(|e| Tensor { data: data[e.begin as usize..e.end as usize].to_vec(), name: e.name, dtype: e.dtype, shape: e.shape })
        .collect();
    Ok(SafeTensors { metadata: h.metadata, tensors })
}

fn u64_list(v: &Value) -> Option<Vec<u64>> {
    v.as_array()?.iter().map(Value::as_u64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn reads_tensors_in_data_order() {
        let header = r#"{"b":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]},"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
        let mut data: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        data.extend_from_slice(&[0x80, 0x3f, 0xc0, 0xbf]);
        let st = read(&file(header, &data)).unwrap();
        assert_eq!(st.metadata, vec![("k".to_string(), "v".to_string())]);
        let names: Vec<&str> = st.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(st.tensors[1].value(1), -1.5);
    }

    #[test]
    fn rejects_inconsistent_files() {
        let ok = r#"{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}"#;
        assert!(read(&file(ok, &[0; 4])).is_ok());
        assert!(read(&file(ok, &[0; 6])).is_err()); // trailing bytes
        assert!(read(&file(ok, &[0; 2])).is_err()); // truncated
        let gap = r#"{"a":{"dtype":"F16","shape":[2],"data_offsets":[2,6]}}"#;
        assert!(read(&file(gap, &[0; 6])).is_err());
        let wrong = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#;
        assert!(read(&file(wrong, &[0; 4])).is_err());
        let dtype = r#"{"a":{"dtype":"I8","shape":[2],"data_offsets":[0,2]}}"#;
        assert!(read(&file(dtype, &[0; 2])).is_err());
        assert!(read(&[1, 0, 0, 0, 0, 0, 0, 0xff]).is_err());
    }
}
