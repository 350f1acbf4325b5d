//! Helpers shared by the integration tests.
#![allow(dead_code)]

use rooflinebench::arch::{load_hf_config, Architecture};
use std::path::PathBuf;

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
