//! Helpers shared by the integration tests.
#![allow(dead_code)]

use rooflinebench::arch::{load_hf_config, Architecture};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn model_path(name: &str) -> PathBuf {
    repo().join("models").join(format!("{name}.json"))
}

pub fn model(name: &str) -> Architecture {
    load_hf_config(&model_path(name)).unwrap()
}

pub fn bin() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("rooflinebench").unwrap()
}

/// `|a - b| <= rel * |b|`.
pub fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs()
}

/// Runs the binary (at most two minutes); returns (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = bin().args(args).timeout(Duration::from_secs(120)).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Exit 2, no panic, and one line starting `error: ` (a search's progress line may precede it)
/// that holds every `needles`; returns stderr.
pub fn refused(args: &[&str], needles: &[&str]) -> String {
    let (code, out, err) = run(args);
    assert_eq!(code, Some(2), "{args:?}: {out}{err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.is_empty() && !l.contains(" candidates on ")).collect();
    assert!(lines.len() == 1 && lines[0].starts_with("error: "), "{args:?}: not one line: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: '{n}' not in: {err}");
    }
    err
}

/// Writes `dir/name` (making its folders); returns its path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    write_at(&dir.join(name), text)
}

/// Writes `path` (making its folders); returns it.
pub fn write_at(path: &Path, text: &str) -> PathBuf {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

/// A path as the `&str` an argument list wants.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
