//! weightinit-read: prints the tensors of weightinit .safetensors and .npy files (names,
//! dtypes, shapes, first values, sha256) and checks them against the sha256 a JSON response
//! of `POST /v1/weights` reported. Rust standard library only.
//!
//!     weightinit-read [--report WEIGHTS.json] [--name NAME] [--show N] [--dump OUT.json] FILE...
//!
//! Exit status: 0 all good, 1 a tensor disagrees with the report, 2 bad usage or a bad file.

mod json;
mod npy;
mod safetensors;
mod sha256;
mod tensor;

use std::fmt::Write as _;
use std::process::ExitCode;

use json::Value;
use tensor::{DType, Tensor};

const USAGE: &str = "usage: weightinit-read [--report WEIGHTS.json] [--name NAME] [--show N] [--dump OUT.json] FILE...
  FILE            a .safetensors or .npy file from weightinit (POST /v1/weights or `weightinit generate`)
  --report FILE   the JSON response of POST /v1/weights (format json) for the same request:
                  every tensor's sha256, dtype and shape are checked against it
  --name NAME     the tensor name of a .npy file (default: the report's only tensor, else the file name)
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
        let meta = json::parse(text).map_err(|e| format!("{}: __metadata__.weightinit: {}", path, e))?;
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
        let _ = write!(
            line,
            "; seed {}, scheme {}, {} {} (numpy {})",
            num(meta.get("seed")),
            scheme,
            num(engine.and_then(|e| e.get("name"))),
            num(engine.and_then(|e| e.get("version"))),
            num(engine.and_then(|e| e.get("numpy"))),
        );
    }
    Ok((line, st.tensors))
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

fn run(o: &Options) -> Result<bool, String> {
    let report = match &o.report {
        Some(p) => Some(load_report(p)?),
        None => None,
    };
    let mut ok = true;
    let mut dumped = Vec::new();
    for path in &o.files {
        let (line, tensors) = read_file(path, o, report.as_deref())?;
        println!("{}", line);
        let width = tensors.iter().map(|t| t.name.len()).max().unwrap_or(0);
        for t in &tensors {
            let digest = t.sha256();
            let shown = t.len().min(o.show);
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
            match &report {
                Some(r) => {
                    let problems = check(t, &digest, r);
                    if problems.is_empty() {
                        println!("  {:<width$}  sha256 matches the report", "", width = width);
                    } else {
                        ok = false;
                        for p in problems {
                            println!("  {:<width$}  MISMATCH: {}", "", p, width = width);
                        }
                    }
                }
                None => {}
            }
            if o.dump.is_some() {
                dumped.push(dump_entry(t, &digest));
            }
        }
        // A safetensors file holds every selected tensor: the report's tensors must all be there.
        if let Some(r) = &report {
            if tensors.len() > 1 || !std::fs::read(path).map(|b| b.starts_with(npy::MAGIC)).unwrap_or(false) {
                for missing in r.iter().filter(|r| !tensors.iter().any(|t| t.name == r.name)) {
                    ok = false;
                    println!("  MISMATCH: the report's tensor {} is not in {}", missing.name, path);
                }
            }
        }
    }
    if let Some(path) = &o.dump {
        let text = format!("{{\"tensors\":[{}]}}\n", dumped.join(",\n"));
        std::fs::write(path, text).map_err(|e| format!("{}: {}", path, e))?;
    }
    if report.is_none() {
        println!("(no --report given: sha256 printed, not verified)");
    }
    Ok(ok)
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
