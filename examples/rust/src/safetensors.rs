//! safetensors reader.
//!
//!     offset 0    u64 little-endian N
//!     offset 8    N bytes of UTF-8 JSON: {"__metadata__": {str: str}, name: {"dtype", "shape",
//!                 "data_offsets": [begin, end]}, ...}
//!     offset 8+N  the data: each tensor's little-endian C-order bytes at [begin, end) relative to
//!                 here; together they cover the data with no gaps or overlaps.

use crate::json::{self, Value};
use crate::tensor::{element_count, DType, Tensor};

pub struct SafeTensors {
    pub metadata: Vec<(String, String)>,
    pub tensors: Vec<Tensor>, // in data order
}

pub fn read(bytes: &[u8]) -> Result<SafeTensors, String> {
    if bytes.len() < 8 {
        return Err("not a safetensors file (shorter than 8 bytes)".into());
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap());
    if n > (bytes.len() - 8) as u64 || n > 100_000_000 {
        return Err(format!("header length {} does not fit the file", n));
    }
    let n = n as usize;
    let header = std::str::from_utf8(&bytes[8..8 + n]).map_err(|_| "the header is not UTF-8")?;
    let header = json::parse(header)?;
    let members = header.as_object().ok_or("the header is not a JSON object")?;
    let data = &bytes[8 + n..];
    let mut metadata = Vec::new();
    let mut entries: Vec<(u64, u64, String, DType, Vec<u64>)> = Vec::new();
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
        entries.push((offsets[0], offsets[1], name.clone(), dtype, shape));
    }
    entries.sort_by_key(|e| (e.0, e.1));
    let mut expected = 0u64;
    let mut tensors = Vec::with_capacity(entries.len());
    for (begin, end, name, dtype, shape) in entries {
        if begin != expected {
            return Err(format!("tensor {:?} starts at {}, expected {} (gap or overlap)", name, begin, expected));
        }
        if end > data.len() as u64 {
            return Err(format!("tensor {:?} ends at {}, past the data ({} bytes)", name, end, data.len()));
        }
        tensors.push(Tensor { name, dtype, shape, data: data[begin as usize..end as usize].to_vec() });
        expected = end;
    }
    if expected != data.len() as u64 {
        return Err(format!("{} bytes after the last tensor", data.len() as u64 - expected));
    }
    Ok(SafeTensors { metadata, tensors })
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
