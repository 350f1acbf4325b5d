//! llama-bench's output, as people post it: `-o json` (an array), `-o jsonl` (one object per
//! line) or the markdown table it prints by default. Each row becomes a record with its test,
//! its time and what identifies its model (llama.cpp's exact parameter count in JSON, the
//! rounded `params` column in markdown).

use crate::dtype::DType;
use crate::error::{clip, Error, Result};
use crate::files::read::read_text;
use crate::roofline::BenchTest;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One llama-bench result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    /// llama-bench's model description, e.g. `llama 1B Q4_K - Medium`.
    pub model: String,
    /// Parameters as llama.cpp counts them (exact from JSON, rounded from markdown).
    pub params: f64,
    pub params_exact: bool,
    /// Weight format, when llama-bench's type is one this tool models.
    pub weights: Option<DType>,
    pub backend: String,
    pub threads: Option<u32>,
    pub test: BenchTest,
    /// Mean time of the test, seconds.
    pub seconds: f64,
    pub build: Option<String>,
    /// The model file llama-bench ran (`model_filename` in its JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The model's Hugging Face config, when the file carries it (this tool's own runs do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
}

/// The weight format of llama-bench's model type (`llama 1B Q4_K - Medium` -> q4_k_m).
pub fn weights_of(model_type: &str) -> Option<DType> {
    let t = model_type.to_ascii_lowercase();
    let t = t.trim();
    let ends = |s: &str| t.ends_with(s);
    if ends("q4_k - medium") {
        Some(DType::Q4KM)
    } else if ends("q8_0") {
        Some(DType::Q8_0)
    } else if ends("q4_0") {
        Some(DType::Q4_0)
    } else if ends("bf16") {
        Some(DType::Bf16)
    } else if ends("f16") {
        Some(DType::F16)
    } else if ends("all f32") || ends(" f32") {
        Some(DType::F32)
    } else {
        None
    }
}

/// Where a llama-bench file's numbers come from: `source:`, `date:`, `build:` and `note:` lines
/// above the table (this repository's data files carry them; llama-bench itself writes none).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Origin {
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The `key: value` lines of a file before its first table row.
pub fn origin_of(text: &str, file: &str) -> Origin {
    let mut o = Origin { file: file.to_string(), ..Origin::default() };
    for line in text.lines().map(str::trim).take_while(|l| !l.starts_with('|') && !l.starts_with('[')) {
        let Some((k, v)) = line.split_once(':') else { continue };
        let v = Some(v.trim().to_string()).filter(|v| !v.is_empty());
        match k.trim() {
            "source" => o.source = v,
            "date" => o.date = v,
            "build" => o.build = v,
            "note" => o.note = v,
            _ => {}
        }
    }
    o
}

/// The largest llama-bench file read (about 1 KB a JSON row, 70 bytes a markdown row), and the
/// most all the files one flag names may hold together: parsing holds several times the text.
pub const MAX_LLAMA_BENCH_BYTES: u64 = 16 << 20;
/// The most llama-bench rows one command reads.
pub const MAX_RECORDS: usize = 100_000;

/// Refuses, before any is read, files that together hold more than [`MAX_LLAMA_BENCH_BYTES`]
/// (`flag` names them in the message). One file, or one that cannot be sized, is left to the
/// reader's own error, which names the file.
pub fn check_total_size(files: &[impl AsRef<Path>], flag: &str) -> Result<()> {
    if files.len() < 2 {
        return Ok(());
    }
    let total: u64 = files.iter().filter_map(|f| std::fs::metadata(f.as_ref()).ok()).map(|m| m.len()).sum();
    if total > MAX_LLAMA_BENCH_BYTES {
        return Err(Error::Usage(format!(
            "{flag}: the {} file(s) hold {total} bytes together, more than the {MAX_LLAMA_BENCH_BYTES} bytes (16 MiB) \
             read across them",
            files.len()
        )));
    }
    Ok(())
}

/// The error of a file whose rows take those read so far past [`MAX_RECORDS`].
fn too_many_records(source: &str) -> Error {
    Error::Usage(format!(
        "{}: too many llama-bench rows; at most {MAX_RECORDS} are read per command (this file and those before it)",
        clip(source)
    ))
}

/// Reads a llama-bench file and where its numbers come from.
pub fn parse_file_with_origin(path: &Path) -> Result<(Vec<Record>, Origin)> {
    parse_file_with_origin_limited(path, MAX_RECORDS)
}

/// [`parse_file_with_origin`], refusing a file of more than `max_records` rows.
pub fn parse_file_with_origin_limited(path: &Path, max_records: usize) -> Result<(Vec<Record>, Origin)> {
    let text = read_text(path, MAX_LLAMA_BENCH_BYTES)?;
    let name = path.display().to_string();
    Ok((parse_limited(&text, &name, max_records)?, origin_of(&text, &name)))
}

/// Physical bounds on what a llama-bench row may say: a number outside them is a typing or
/// transcription error (or a crafted file), refused rather than fitted into an infinite rate.
pub mod bounds {
    /// The shortest and longest time of one test: a microsecond (less than one kernel launch)
    /// to a day.
    pub const MIN_TEST_S: f64 = 1e-6;
    pub const MAX_TEST_S: f64 = 86_400.0;
    /// Tokens one test processes, and the context depth it starts at (the depth bound test
    /// names such as `tg128 @ d4096` are read with).
    pub const MAX_TEST_TOKENS: u64 = 1 << 20;
    pub const MAX_DEPTH: u64 = 1 << 20;
    /// Parameters of a model: ten trillion is past any model llama.cpp runs.
    pub const MAX_PARAMS: f64 = 1e13;
    pub const MAX_THREADS: u64 = 4096;
}
use bounds::*;

/// llama-bench's JSON fields this tool reads (integers wide, so a bound names the field).
#[derive(Debug, Deserialize)]
struct JsonRow {
    model_type: String,
    #[serde(default)]
    model_filename: Option<String>,
    model_n_params: f64,
    #[serde(default)]
    backends: Option<String>,
    #[serde(default)]
    n_threads: Option<u64>,
    n_prompt: u64,
    n_gen: u64,
    #[serde(default)]
    n_depth: u64,
    avg_ns: f64,
    #[serde(default)]
    build_commit: Option<String>,
    #[serde(default)]
    build_number: Option<u64>,
    #[serde(default)]
    config: Option<serde_json::Value>,
}

/// Reads a llama-bench output file (JSON array, JSON lines or markdown table). Rows llama-bench
/// combines (`pp512+tg128`) are skipped: they time two phases at once.
pub fn parse_file(path: &Path) -> Result<Vec<Record>> {
    let text = read_text(path, MAX_LLAMA_BENCH_BYTES)?;
    parse(&text, &path.display().to_string())
}

pub fn parse(text: &str, source: &str) -> Result<Vec<Record>> {
    parse_limited(text, source, MAX_RECORDS)
}

/// [`parse`], refusing more than `max_records` rows.
pub fn parse_limited(text: &str, source: &str, max_records: usize) -> Result<Vec<Record>> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let rows: Vec<JsonRow> = serde_json::from_str(trimmed).map_err(|e| Error::json(source, &e))?;
        if rows.len() > max_records {
            return Err(too_many_records(source));
        }
        return rows
            .into_iter()
            .enumerate()
            .filter_map(|(i, r)| from_json(r, source, &format!("[{i}].")).transpose())
            .collect();
    }
    if trimmed.starts_with('{') {
        // A profile calibrated by this tool keeps its runs as llama-bench rows in notes.runs.
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(trimmed) {
            if let Some(rows) = v.pointer("/notes/runs").and_then(|r| r.as_array()) {
                if rows.len() > max_records {
                    return Err(too_many_records(source));
                }
                let rows: Vec<JsonRow> = serde_json::from_value(serde_json::Value::from(rows.clone()))
                    .map_err(|e| Error::json(source, &e))?;
                return rows
                    .into_iter()
                    .enumerate()
                    .filter_map(|(i, r)| from_json(r, source, &format!("notes.runs[{i}].")).transpose())
                    .collect();
            }
        }
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let r: JsonRow = serde_json::from_str(line).map_err(|e| Error::Parse {
                path: source.into(),
                format: "JSON line",
                line: i + 1,
                column: e.column(),
                message: crate::error::clip_line(&e.to_string()),
            })?;
            out.extend(from_json(r, &format!("{source}:{}", i + 1), "")?);
            if out.len() > max_records {
                return Err(too_many_records(source));
            }
        }
        return Ok(out);
    }
    parse_markdown(text, source, max_records)
}

/// A measured time within [`MIN_TEST_S`, `MAX_TEST_S`].
fn plausible_time(s: f64) -> bool {
    s.is_finite() && (MIN_TEST_S..=MAX_TEST_S).contains(&s)
}

/// A parameter count in (0, [`MAX_PARAMS`]).
fn plausible_params(p: f64) -> bool {
    p.is_finite() && p > 0.0 && p < MAX_PARAMS
}

/// One JSON row (`at`: the row's place, e.g. `[3].`, prefixed to each field it names).
fn from_json(r: JsonRow, source: &str, at: &str) -> Result<Option<Record>> {
    let field = |name: &str| format!("{at}{name}");
    for (name, v, max) in [
        ("n_prompt", r.n_prompt, MAX_TEST_TOKENS),
        ("n_gen", r.n_gen, MAX_TEST_TOKENS),
        ("n_depth", r.n_depth, MAX_DEPTH),
    ] {
        if v > max {
            return Err(Error::field(source, field(name), format!("tokens from 0 to {max}"), v));
        }
    }
    if let Some(t) = r.n_threads.filter(|t| !(1..=MAX_THREADS).contains(t)) {
        return Err(Error::field(source, field("n_threads"), format!("threads from 1 to {MAX_THREADS}"), t));
    }
    if !plausible_params(r.model_n_params) {
        let want = format!("a parameter count above 0 and below {MAX_PARAMS:e}");
        return Err(Error::field(source, field("model_n_params"), want, r.model_n_params));
    }
    // Bounded above, so these fit u32.
    let (prompt, generate, depth) = (r.n_prompt as u32, r.n_gen as u32, r.n_depth as u32);
    let test = match (prompt, generate) {
        (p, 0) if p > 0 => BenchTest { prompt: p, generate: 0, depth },
        (0, g) if g > 0 => BenchTest::tg(g, depth),
        _ => return Ok(None),
    };
    let seconds = r.avg_ns * 1e-9;
    if !plausible_time(seconds) {
        let want =
            format!("a time in nanoseconds from {:e} to {:e} (1 us to 1 day)", MIN_TEST_S * 1e9, MAX_TEST_S * 1e9);
        return Err(Error::field(source, field("avg_ns"), want, r.avg_ns));
    }
    let build = match (r.build_commit, r.build_number) {
        (Some(c), Some(n)) => Some(format!("b{n} ({})", clip(&c))),
        (c, n) => c.map(|c| clip(&c)).or(n.map(|n| format!("b{n}"))),
    };
    Ok(Some(Record {
        weights: weights_of(&r.model_type),
        model: r.model_type,
        params: r.model_n_params,
        params_exact: true,
        backend: r.backends.map(|b| clip(&b)).unwrap_or_default(),
        threads: r.n_threads.map(|t| t as u32),
        test,
        seconds,
        build,
        file: r.model_filename,
        config: r.config,
    }))
}

/// `1.10 B`, `135.00 M`, `494.03 M` -> parameters.
fn parse_params(s: &str) -> Option<f64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic())?);
    let v: f64 = num.trim().parse().ok()?;
    match unit.trim() {
        "B" => Some(v * 1e9),
        "M" => Some(v * 1e6),
        "K" => Some(v * 1e3),
        _ => None,
    }
}

/// `pp512`, `tg128`, `pp512 @ d4096`; `pp512+tg128` is not a single phase.
fn parse_test(s: &str) -> Option<BenchTest> {
    if s.contains('+') {
        return None;
    }
    BenchTest::parse(s).ok()
}

/// `123.45 ± 1.2` -> 123.45.
fn parse_rate(s: &str) -> Option<f64> {
    s.split('±').next()?.trim().replace(',', "").parse().ok()
}

fn parse_markdown(text: &str, source: &str, max_records: usize) -> Result<Vec<Record>> {
    let mut header: Option<Vec<String>> = None;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if !line.starts_with('|') {
            header = None;
            continue;
        }
        let cells: Vec<String> = line.trim_matches('|').split('|').map(|c| c.trim().to_string()).collect();
        if cells.iter().all(|c| c.chars().all(|ch| ch == '-' || ch == ':' || ch == ' ')) {
            continue;
        }
        let Some(h) = &header else {
            if cells.iter().any(|c| c == "test") && cells.iter().any(|c| c == "t/s") {
                header = Some(cells);
            }
            continue;
        };
        let col = |name: &str| h.iter().position(|c| c == name).and_then(|i| cells.get(i)).map(String::as_str);
        let bad = |field: &str, got: &str| {
            Error::field(format!("{source}:{}", n + 1), field, "a llama-bench table cell", got.to_string())
        };
        let (Some(model), Some(test_s), Some(rate_s)) = (col("model"), col("test"), col("t/s")) else {
            continue;
        };
        let Some(test) = parse_test(test_s) else { continue };
        let rate = parse_rate(rate_s).filter(|r| r.is_finite() && *r > 0.0).ok_or_else(|| bad("t/s", rate_s))?;
        let seconds = test.tokens() as f64 / rate;
        if !plausible_time(seconds) {
            let want = format!(
                "tokens/s giving {} tokens a time from {MIN_TEST_S:e} to {MAX_TEST_S:e} s (1 us to 1 day)",
                test.tokens()
            );
            return Err(Error::field(format!("{source}:{}", n + 1), "t/s", want, rate_s));
        }
        let params_s = col("params").unwrap_or("");
        let params = parse_params(params_s).ok_or_else(|| bad("params", params_s))?;
        if !plausible_params(params) {
            let want = format!("a parameter count above 0 and below {MAX_PARAMS:e}");
            return Err(Error::field(format!("{source}:{}", n + 1), "params", want, params_s));
        }
        // A count of threads, when the column holds one number (llama-bench may list several).
        let threads = match col("threads").map(|t| t.parse::<u64>()) {
            Some(Ok(t)) if (1..=MAX_THREADS).contains(&t) => Some(t as u32),
            Some(Ok(t)) => {
                let want = format!("threads from 1 to {MAX_THREADS}");
                return Err(Error::field(format!("{source}:{}", n + 1), "threads", want, t));
            }
            _ => None,
        };
        out.push(Record {
            model: model.to_string(),
            params,
            params_exact: false,
            weights: weights_of(model),
            backend: clip(col("backend").unwrap_or("")),
            threads,
            test,
            seconds,
            build: None,
            file: None,
            config: None,
        });
        if out.len() > max_records {
            return Err(too_many_records(source));
        }
    }
    if out.is_empty() {
        return Err(Error::Usage(format!(
            "{source}: no llama-bench results found (expected -o json, -o jsonl or its markdown table)"
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_markdown_table_llama_bench_prints() {
        let t = "| model | size | params | backend | ngl | test | t/s |\n\
                 | --- | ---: | ---: | --- | --: | ---: | ---: |\n\
                 | llama 1B Q4_K - Medium | 636.18 MiB | 1.10 B | CUDA | 99 | pp512 | 10802.35 ± 98.63 |\n\
                 | llama 1B Q4_K - Medium | 636.18 MiB | 1.10 B | CUDA | 99 | pp4096+tg128 | 9752.17 ± 68.03 |\n\
                 | llama 1B Q8_0 | 1.09 GiB | 1.10 B | CUDA | 99 | tg128 @ d4096 | 500.00 ± 4.41 |\n";
        let r = parse(t, "t.md").unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].weights, Some(DType::Q4KM));
        assert_eq!(r[0].test, BenchTest::pp(512));
        // 512 tokens at 10802.35 tokens/s.
        assert!((r[0].seconds - 512.0 / 10802.35).abs() < 1e-12);
        assert_eq!(r[0].params, 1.10e9);
        assert_eq!(r[1].test, BenchTest::tg(128, 4096));
        assert_eq!(r[1].weights, Some(DType::Q8_0));
    }

    #[test]
    fn reads_where_a_file_comes_from() {
        let t = "source: https://example.org/pr/1\ndate: 2024-01\nbuild: b1833\n\n| model | params | test | t/s |\n|---|---|---|---|\n| llama 7B Q4_0 | 6.74 B | tg128 | 100.0 |\n";
        let o = origin_of(t, "f.md");
        assert_eq!(o.source.as_deref(), Some("https://example.org/pr/1"));
        assert_eq!(o.date.as_deref(), Some("2024-01"));
        assert_eq!(o.build.as_deref(), Some("b1833"));
        assert_eq!(o.note, None);
        assert_eq!(parse(t, "f.md").unwrap().len(), 1);
    }

    #[test]
    fn reads_json_and_json_lines() {
        let row = r#"{"model_type":"qwen2 0.5B F16","model_n_params":494032768,"n_prompt":0,"n_gen":128,"n_depth":512,"avg_ns":1280000000,"n_threads":4,"backends":"CPU","build_commit":"abc","build_number":7}"#;
        let r = parse(&format!("[{row}]"), "t.json").unwrap();
        assert_eq!(r[0].test, BenchTest::tg(128, 512));
        assert_eq!(r[0].seconds, 1.28);
        assert_eq!(r[0].params, 494032768.0);
        assert_eq!(r[0].build.as_deref(), Some("b7 (abc)"));
        assert_eq!(parse(&format!("{row}\n{row}\n"), "t.jsonl").unwrap().len(), 2);
    }

    #[test]
    fn refuses_impossible_numbers_naming_the_row_and_field() {
        let row = |k: &str, v: &str| {
            let mut r = serde_json::json!({
                "model_type": "llama 1B Q8_0", "model_n_params": 1235814400u64, "n_prompt": 512, "n_gen": 0,
                "avg_ns": 5e9
            });
            r[k] = serde_json::from_str(v).unwrap();
            parse(&format!("[{r}]"), "t.json")
        };
        assert!(row("n_threads", "4").is_ok());
        for (k, v) in [("avg_ns", "1e300"), ("avg_ns", "999"), ("n_prompt", "1048577"), ("n_depth", "4294967296")] {
            let e = row(k, v).unwrap_err().to_string();
            assert!(e.starts_with(&format!("t.json: field '[0].{k}'")), "{e}");
        }
        // One microsecond and 2^20 tokens are the bounds themselves.
        assert!(row("avg_ns", "1000").is_ok() && row("n_prompt", "1048576").is_ok());
        let md = "| model | params | test | t/s |\n|---|---|---|---|\n| llama 1B Q8_0 | 1.24 B | pp512 | 1e300 |\n";
        let e = parse(md, "t.md").unwrap_err().to_string();
        assert!(e.starts_with("t.md:3: field 't/s'"), "{e}");
    }
}
