//! Hugging Face model folders, as transformers' `save_pretrained` writes them (and
//! `weightinit generate REQUEST.json -o DIR/`, or the `hf` format's tar unpacked):
//!
//!     config.json                        {"model_type": ..., "architectures": [...], ...}
//!     model.safetensors                  every tensor, or, when the model is split:
//!     model.safetensors.index.json       {"metadata": {"total_size": N, ...},
//!                                         "weight_map": {"model.layers.0.self_attn.q_proj.weight":
//!                                                        "model-00001-of-00002.safetensors", ...}}
//!     model-00001-of-00002.safetensors   the shards (safetensors files)
//!
//! A loader (candle's `VarBuilder`, transformers) finds a tensor by its name in `weight_map`, then its
//! bytes through that shard's header. Here every shard's header is read and checked against the index
//! (each tensor in the shard the index names, none missing, none twice, `total_size` right), and the
//! tensors are read one at a time, so a folder of any size is read in the memory of its largest tensor.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::json::{self, Value};
use crate::safetensors::{self, Entry, Header};
use crate::tensor::Tensor;

pub const SINGLE: &str = "model.safetensors";
pub const INDEX: &str = "model.safetensors.index.json";

pub struct Shard {
    pub file: String,
    pub path: PathBuf,
    pub header: Header,
    data_start: u64,
}

pub struct Folder {
    pub model_type: String,
    pub architecture: String,
    pub shards: Vec<Shard>,
    /// The index's tensor -> shard map (empty for a single model.safetensors).
    pub weight_map: BTreeMap<String, String>,
}

fn read_text(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {}", path.display(), e))
}

pub fn is_folder(path: &str) -> bool {
    Path::new(path).is_dir()
}

/// Open a folder: its config, the index (when there is one) and every shard's header, checked.
pub fn open(dir: &Path) -> Result<Folder, String> {
    let config = json::parse(&read_text(&dir.join("config.json"))?).map_err(|e| format!("config.json: {}", e))?;
    let model_type = config.get("model_type").and_then(Value::as_str).ok_or("config.json has no model_type")?;
    let architecture = config
        .get("architectures")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .unwrap_or("(base model)");
    let index_path = dir.join(INDEX);
    let mut weight_map = BTreeMap::new();
    let mut total_size = None;
    let files: Vec<String> = if index_path.is_file() {
        let index = json::parse(&read_text(&index_path)?).map_err(|e| format!("{}: {}", INDEX, e))?;
        let map = index.get("weight_map").and_then(Value::as_object).ok_or_else(|| format!("{} has no weight_map", INDEX))?;
        for (name, file) in map {
            let file = file.as_str().ok_or_else(|| format!("{}: weight_map[{:?}] is not a file name", INDEX, name))?;
            // Only a plain file name of this folder: never a path elsewhere.
            if file.contains('/') || file.contains('\\') || file.starts_with('.') || !file.ends_with(".safetensors") {
                return Err(format!("{}: weight_map[{:?}] = {:?} is not a shard of this folder", INDEX, name, file));
            }
            weight_map.insert(name.clone(), file.to_string());
        }
        total_size = index.get("metadata").and_then(|m| m.get("total_size")).and_then(Value::as_u64);
        let mut files: Vec<String> = weight_map.values().cloned().collect();
        files.sort();
        files.dedup();
        files
    } else {
        vec![SINGLE.to_string()]
    };
    let mut shards = Vec::with_capacity(files.len());
    for file in files {
        shards.push(read_shard(dir, &file)?);
    }
    if !weight_map.is_empty() {
        let mut seen = BTreeMap::new();
        for s in &shards {
            for e in &s.header.entries {
                match weight_map.get(&e.name) {
                    Some(f) if *f == s.file => {}
                    Some(f) => return Err(format!("{} holds {}, which {} puts in {}", s.file, e.name, INDEX, f)),
                    None => return Err(format!("{} holds {}, which {} does not name", s.file, e.name, INDEX)),
                }
                if seen.insert(e.name.clone(), ()).is_some() {
                    return Err(format!("{} is in two shards", e.name));
                }
            }
        }
        if let Some(missing) = weight_map.keys().find(|k| !seen.contains_key(*k)) {
            return Err(format!("{} names {} in {}, whose header does not hold it", INDEX, missing, weight_map[missing]));
        }
        let size: u64 = shards.iter().flat_map(|s| s.header.entries.iter()).map(|e| e.end - e.begin).sum();
        if total_size != Some(size) {
            return Err(format!("{}: metadata.total_size is {:?}, the shards hold {} bytes", INDEX, total_size, size));
        }
    }
    Ok(Folder { model_type: model_type.to_string(), architecture: architecture.to_string(), shards, weight_map })
}

/// A shard's header (only the header is read).
fn read_shard(dir: &Path, file: &str) -> Result<Shard, String> {
    let path = dir.join(file);
    let fail = |e: String| format!("{}: {}", file, e);
    let mut f = File::open(&path).map_err(|e| fail(e.to_string()))?;
    let len = f.metadata().map_err(|e| fail(e.to_string()))?.len();
    let mut first8 = [0u8; 8];
    f.read_exact(&mut first8).map_err(|_| fail("not a safetensors file (shorter than 8 bytes)".into()))?;
    let n = safetensors::header_length(&first8, len).map_err(fail)?;
    let mut text = vec![0u8; n as usize];
    f.read_exact(&mut text).map_err(|e| fail(e.to_string()))?;
    let header = safetensors::parse_header(&text, len - 8 - n).map_err(fail)?;
    Ok(Shard { file: file.to_string(), path, header, data_start: 8 + n })
}

impl Shard {
    /// One tensor's bytes, read from the shard (`f` is the shard opened for reading).
    pub fn read_tensor(&self, f: &mut File, e: &Entry) -> Result<Tensor, String> {
        let mut data = vec![0u8; (e.end - e.begin) as usize];
        f.seek(SeekFrom::Start(self.data_start + e.begin)).map_err(|err| format!("{}: {}", self.file, err))?;
        f.read_exact(&mut data).map_err(|err| format!("{}: {}: {}", self.file, e.name, err))?;
        Ok(Tensor { name: e.name.clone(), dtype: e.dtype, shape: e.shape.clone(), data })
    }

    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.header.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

impl Folder {
    /// Where a tensor is, by its name (candle-style: `model.layers.0.self_attn.q_proj.weight`).
    pub fn locate(&self, name: &str) -> Option<(&Shard, &Entry)> {
        self.shards.iter().find_map(|s| s.header.entries.iter().find(|e| e.name == name).map(|e| (s, e)))
    }

    pub fn tensor_count(&self) -> usize {
        self.shards.iter().map(|s| s.header.entries.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(dir: &Path, name: &str, header: &str, data: &[u8]) {
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        std::fs::write(dir.join(name), out).unwrap();
    }

    fn folder(tag: &str, index: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("weightinit-read-hf-{}-{}", tag, std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.json"), r#"{"model_type":"llama","architectures":["LlamaForCausalLM"]}"#).unwrap();
        shard(&dir, "model-00001-of-00002.safetensors", r#"{"a.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, &[0; 8]);
        shard(&dir, "model-00002-of-00002.safetensors", r#"{"b.weight":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}"#, &[0; 4]);
        std::fs::write(dir.join(INDEX), index).unwrap();
        dir
    }

    const GOOD: &str = r#"{"metadata":{"total_size":12},"weight_map":{"a.weight":"model-00001-of-00002.safetensors","b.weight":"model-00002-of-00002.safetensors"}}"#;

    #[test]
    fn reads_a_sharded_folder_through_its_index() {
        let dir = folder("good", GOOD);
        let f = open(&dir).unwrap();
        assert_eq!((f.model_type.as_str(), f.architecture.as_str(), f.shards.len(), f.tensor_count()), ("llama", "LlamaForCausalLM", 2, 2));
        let (s, e) = f.locate("b.weight").unwrap();
        assert_eq!(s.file, "model-00002-of-00002.safetensors");
        let t = s.read_tensor(&mut File::open(&s.path).unwrap(), e).unwrap();
        assert_eq!((t.len(), t.value(1)), (2, 0.0));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn refuses_an_index_that_disagrees_with_the_shards() {
        for (tag, index) in [
            ("moved", GOOD.replace(r#""b.weight":"model-00002"#, r#""b.weight":"model-00001"#)),
            ("unnamed", GOOD.replace(r#","b.weight":"model-00002-of-00002.safetensors""#, r#","c.weight":"model-00002-of-00002.safetensors""#)),
            ("size", GOOD.replace("12", "13")),
            ("outside", GOOD.replace(r#""model-00001-of-00002.safetensors""#, r#""../x.safetensors""#)),
            ("no map", r#"{"metadata":{"total_size":12}}"#.to_string()),
        ] {
            let dir = folder(tag, &index);
            assert!(open(&dir).is_err(), "{}", tag);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
