//! weightinit-read: prints the tensors of weightinit .safetensors and .npy files and Hugging Face
//! model folders (names, dtypes, shapes, first values, sha256) and checks them against the sha256 a
//! JSON response of `POST /v1/weights` reported. Rust standard library only.
//!
//!     weightinit-read [--report WEIGHTS.json] [--name NAME] [--show N] [--dump OUT.json] FILE|DIR...
//!
//! Exit status: 0 all good, 1 a tensor disagrees with the report, 2 bad usage or a bad file.

mod hf;
mod json;
mod npy;
mod safetensors;
mod sha256;
mod tensor;

use std::process::ExitCode;

use json::Value;
use tensor::{DType, Tensor};

const USAGE: &str = "usage: weightinit-read [--report WEIGHTS.json] [--name NAME] [--show N] [--dump OUT.json] FILE|DIR...
  FILE            a .safetensors or .npy file from weightinit (POST /v1/weights or `weightinit generate`)
  DIR             a Hugging Face model folder (`weightinit generate REQUEST.json -o DIR/`, the hf format's
                  tar unpacked): config.json, model.safetensors or the shards and their index
  --report FILE   the JSON response of POST /v1/weights (format json) for the same request:
                  every tensor's sha256, dtype and shape are checked against it
  --name NAME     the tensor name of a .npy file (default: the report's only tensor, else the file name);
                  in a folder, read only this tensor, found through the index's weight_map
  --show N        how many leading values to print per tensor (default 6)
  --dump FILE     write every tensor's stored bit patterns and decoded values (as f64 bits) as JSON";

struct Options {
    report: Option<String>,
    name: Option<String>,
    show: usize,
    dump: Option<String>,
    files: Vec<String>,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options { report: None, name: None, show: 6, dump: None, files: Vec::new() };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| format!("{} needs a value", flag));
        match a.as_str() {
            "--report" => o.report = Some(value("--report")?),
            "--name" => o.name = Some(value("--name")?),
            "--dump" => o.dump = Some(value("--dump")?),
            "--show" => o.show = value("--show")?.parse().map_err(|_| "--show needs a number".to_string())?,
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with("--") => return Err(format!("unknown option {}", s)),
            _ => o.files.push(a),
        }
    }
    if o.files.is_empty() {
        return Err("no input files".into());
    }
    Ok(o)
}

/// What the JSON report says about one tensor.
struct Reported {
    name: String,
    dtype: Option<DType>,
    shape: Vec<u64>,
    sha256: String,
}

fn load_report(path: &str) -> Result<Vec<Reported>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {}", path, e))?;
    let doc = json::parse(&text).map_err(|e| format!("{}: {}", path, e))?;
    let tensors = doc.get("tensors").and_then(Value::as_array).ok_or_else(|| format!("{}: no \"tensors\" list", path))?;
    tensors
        .iter()
        .map(|t| {
            let s = |k: &str| t.get(k).and_then(Value::as_str).map(str::to_string);
            let sha256 = s("sha256").ok_or_else(|| {
                format!("{}: tensor without \"sha256\" (is this the JSON of POST /v1/weights, not /v1/plan?)", path)
            })?;
            let shape = t.get("shape").and_then(Value::as_array).and_then(|a| a.iter().map(Value::as_u64).collect());
            Ok(Reported {
                name: s("name").ok_or_else(|| format!("{}: tensor without \"name\"", path))?,
                dtype: s("dtype").as_deref().and_then(DType::from_request_name),
                shape: shape.ok_or_else(|| format!("{}: tensor without a \"shape\"", path))?,
                sha256,
            })
        })
        .collect()
}

fn file_stem(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    base.strip_suffix(".npy").unwrap_or(base).to_string()
}

/// Read one file: its tensors and a line describing it.
fn read_file(path: &str, o: &Options, report: Option<&[Reported]>) -> Result<(String, Vec<Tensor>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {}", path, e))?;
    if bytes.starts_with(npy::MAGIC) {
        let name = match (&o.name, report) {
            (Some(n), _) => n.clone(),
            (None, Some([only])) => only.name.clone(),
            _ => file_stem(path),
        };
        let t = npy::read(&name, &bytes).map_err(|e| format!("{}: {}", path, e))?;
        return Ok((format!("{}: .npy, 1 tensor", path), vec![t]));
    }
    let st = safetensors::read(&bytes).map_err(|e| format!("{}: {}", path, e))?;
    let mut line = format!("{}: safetensors, {} tensors", path, st.tensors.len());
    // weightinit puts its whole report (without values) in __metadata__.weightinit.
    if let Some((_, text)) = st.metadata.iter().find(|(k, _)| k == "weightinit") {
        line.push_str(&describe_report(text).map_err(|e| format!("{}: {}", path, e))?);
    }
    Ok((line, st.tensors))
}

/// "; seed S, scheme X, engine V (numpy N)" from the report weightinit embeds in a safetensors header.
fn describe_report(text: &str) -> Result<String, String> {
    let meta = json::parse(text).map_err(|e| format!("__metadata__.weightinit: {}", e))?;
    let num = |v: Option<&Value>| match v {
        Some(Value::Number(n)) => n.clone(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => format!("{:?}", other),
        None => "?".into(),
    };
    let scheme = match meta.get("scheme") {
        Some(Value::String(s)) => s.clone(),
        Some(obj) => obj.get("name").and_then(Value::as_str).unwrap_or("?").to_string(),
        None => "?".into(),
    };
    let engine = meta.get("engine");
    Ok(format!(
        "; seed {}, scheme {}, {} {} (numpy {})",
        num(meta.get("seed")),
        scheme,
        num(engine.and_then(|e| e.get("name"))),
        num(engine.and_then(|e| e.get("version"))),
        num(engine.and_then(|e| e.get("numpy"))),
    ))
}

/// The embedded report's tensors (name, dtype, shape) against a folder's headers: the same set.
fn check_embedded(text: &str, folder: &hf::Folder) -> Result<Vec<String>, String> {
    let meta = json::parse(text).map_err(|e| format!("__metadata__.weightinit: {}", e))?;
    let tensors = meta.get("tensors").and_then(Value::as_array).ok_or("__metadata__.weightinit has no tensors")?;
    let mut problems = Vec::new();
    for t in tensors {
        let name = t.get("name").and_then(Value::as_str).unwrap_or("?");
        let shape: Option<Vec<u64>> = t.get("shape").and_then(Value::as_array).and_then(|a| a.iter().map(Value::as_u64).collect());
        let dtype = t.get("dtype").and_then(Value::as_str).and_then(DType::from_request_name);
        match folder.locate(name) {
            None => problems.push(format!("the embedded report's tensor {} is in no shard", name)),
            Some((_, e)) if Some(&e.shape) != shape.as_ref() || Some(e.dtype) != dtype => {
                problems.push(format!("{}: {} {:?} in its shard, the embedded report says {:?} {:?}", name, e.dtype.code(), e.shape, dtype.map(DType::code), shape))
            }
            Some(_) => {}
        }
    }
    if tensors.len() != folder.tensor_count() {
        problems.push(format!("the embedded report lists {} tensors, the shards hold {}", tensors.len(), folder.tensor_count()));
    }
    Ok(problems)
}

/// Problems of one tensor against the report (empty when it matches).
fn check(t: &Tensor, digest: &str, report: &[Reported]) -> Vec<String> {
    // A match, not let-else: Debian bookworm's rustc is 1.63.
    let r = match report.iter().find(|r| r.name == t.name) {
        Some(r) => r,
        None => return vec![format!("{} is not in the report", t.name)],
    };
    let mut problems = Vec::new();
    if r.sha256 != digest {
        problems.push(format!("sha256 {} but the report says {}", digest, r.sha256));
    }
    if r.shape != t.shape {
        problems.push(format!("shape {} but the report says {:?}", t.shape_text(), r.shape));
    }
    if r.dtype != Some(t.dtype) {
        problems.push(format!("dtype {} but the report says {:?}", t.dtype.code(), r.dtype.map(DType::code)));
    }
    problems
}

fn dump_entry(t: &Tensor, digest: &str) -> String {
    let width = 2 * t.dtype.itemsize();
    let n = t.len();
    let mut bits = Vec::with_capacity(n);
    let mut values = Vec::with_capacity(n);
    for i in 0..n {
        bits.push(format!("\"{:0w$x}\"", t.bits(i), w = width));
        values.push(format!("\"{:016x}\"", t.value(i).to_bits()));
    }
    let shape: Vec<String> = t.shape.iter().map(u64::to_string).collect();
    format!(
        "{{\"name\":{},\"dtype\":\"{}\",\"shape\":[{}],\"sha256\":\"{}\",\"bits\":[{}],\"f64_bits\":[{}]}}",
        json::quote(&t.name),
        t.dtype.code(),
        shape.join(","),
        digest,
        bits.join(","),
        values.join(",")
    )
}

/// Prints tensors, checks them against the report, and keeps what `--dump` writes.
struct Shown<'a> {
    o: &'a Options,
    report: Option<&'a [Reported]>,
    ok: bool,
    dumped: Vec<String>,
}

impl<'a> Shown<'a> {
    fn show(&mut self, t: &Tensor, width: usize) {
        let digest = t.sha256();
        let shown = t.len().min(self.o.show);
        let first: Vec<String> = (0..shown).map(|i| t.display(i)).collect();
        let more = if t.len() > shown { ", ..." } else { "" };
        println!(
            "  {:<width$}  {:<4}  {:<16}  sha256 {}  [{}{}]",
            t.name,
            t.dtype.code(),
            t.shape_text(),
            &digest[..16],
            first.join(", "),
            more,
            width = width
        );
        if let Some(r) = self.report {
            let problems = check(t, &digest, r);
            if problems.is_empty() {
                println!("  {:<width$}  sha256 matches the report", "", width = width);
            } else {
                self.ok = false;
                for p in problems {
                    println!("  {:<width$}  MISMATCH: {}", "", p, width = width);
                }
            }
        }
        if self.o.dump.is_some() {
            self.dumped.push(dump_entry(t, &digest));
        }
    }

    /// The report's tensors must all be among `names` (a file or folder holding every selected tensor).
    fn all_there(&mut self, names: &[&str], path: &str) {
        if let Some(r) = self.report {
            for missing in r.iter().filter(|r| !names.contains(&r.name.as_str())) {
                self.ok = false;
                println!("  MISMATCH: the report's tensor {} is not in {}", missing.name, path);
            }
        }
    }

    fn file(&mut self, path: &str) -> Result<(), String> {
        let (line, tensors) = read_file(path, self.o, self.report)?;
        println!("{}", line);
        let width = tensors.iter().map(|t| t.name.len()).max().unwrap_or(0);
        for t in &tensors {
            self.show(t, width);
        }
        // A safetensors file holds every selected tensor: the report's tensors must all be there.
        if tensors.len() > 1 || !std::fs::read(path).map(|b| b.starts_with(npy::MAGIC)).unwrap_or(false) {
            let names: Vec<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
            self.all_there(&names, path);
        }
        Ok(())
    }

    /// A Hugging Face folder: the index and every shard header checked, then each tensor read from its
    /// shard, one at a time (or only `--name`, found as a loader finds it, through the index).
    fn folder(&mut self, path: &str) -> Result<(), String> {
        let folder = hf::open(std::path::Path::new(path)).map_err(|e| format!("{}: {}", path, e))?;
        let mut line = format!(
            "{}: hf folder, {} {}, {} tensors in {}",
            path,
            folder.model_type,
            folder.architecture,
            folder.tensor_count(),
            if folder.weight_map.is_empty() { hf::SINGLE.to_string() } else { format!("{} shards (index checked)", folder.shards.len()) }
        );
        let mut problems = Vec::new();
        if let Some(text) = folder.shards[0].metadata("weightinit") {
            line.push_str(&describe_report(text).map_err(|e| format!("{}: {}", path, e))?);
            if folder.shards.iter().any(|s| s.metadata("weightinit") != Some(text)) {
                return Err(format!("{}: the shards embed different reports", path));
            }
            problems = check_embedded(text, &folder).map_err(|e| format!("{}: {}", path, e))?;
        }
        println!("{}", line);
        for p in &problems {
            println!("  MISMATCH: {}", p);
        }
        self.ok &= problems.is_empty();
        let width = folder.shards.iter().flat_map(|s| s.header.entries.iter()).map(|e| e.name.len()).max().unwrap_or(0);
        if let Some(name) = &self.o.name {
            let (shard, e) = folder.locate(name).ok_or_else(|| format!("{}: no tensor {} in the folder", path, name))?;
            println!("  {} -> {}", name, shard.file);
            let t = shard.read_tensor(&mut open(&shard.path)?, e)?;
            self.show(&t, width);
            return Ok(());
        }
        let mut names = Vec::new();
        for shard in &folder.shards {
            println!("  {}: {} tensors", shard.file, shard.header.entries.len());
            let mut f = open(&shard.path)?;
            for e in &shard.header.entries {
                let t = shard.read_tensor(&mut f, e)?;
                self.show(&t, width);
                names.push(e.name.as_str());
            }
        }
        self.all_there(&names, path);
        Ok(())
    }
}

fn open(path: &std::path::Path) -> Result<std::fs::File, String> {
    std::fs::File::open(path).map_err(|e| format!("{}: {}", path.display(), e))
}

fn run(o: &Options) -> Result<bool, String> {
    let report = match &o.report {
        Some(p) => Some(load_report(p)?),
        None => None,
    };
    let mut shown = Shown { o, report: report.as_deref(), ok: true, dumped: Vec::new() };
    for path in &o.files {
        if hf::is_folder(path) {
            shown.folder(path)?;
        } else {
            shown.file(path)?;
        }
    }
    if let Some(path) = &o.dump {
        let text = format!("{{\"tensors\":[{}]}}\n", shown.dumped.join(",\n"));
        std::fs::write(path, text).map_err(|e| format!("{}: {}", path, e))?;
    }
    if report.is_none() {
        println!("(no --report given: sha256 printed, not verified)");
    }
    Ok(shown.ok)
}

fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("weightinit-read: {}", e);
            }
            eprintln!("{}", USAGE);
            return ExitCode::from(2);
        }
    };
    match run(&o) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("weightinit-read: some tensors do not match the report");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("weightinit-read: {}", e);
            ExitCode::from(2)
        }
    }
}
