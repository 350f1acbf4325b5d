//! Regression check: compares a batch's outputs with committed baselines, within a tolerance.

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

fn read(path: &Path) -> Result<String> {
    crate::files::read_text(path, crate::files::read::MAX_SEARCH_FILE_BYTES)
}

/// Front rows keyed by candidate index, each a map of column to value.
fn front(path: &Path) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
    let text = read(path)?;
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let headers = r.headers().map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?.clone();
    let mut out = BTreeMap::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
        let row: BTreeMap<String, String> =
            headers.iter().zip(rec.iter()).map(|(h, v)| (h.to_string(), v.to_string())).collect();
        out.insert(row.get("index").cloned().unwrap_or_default(), row);
    }
    Ok(out)
}

fn differs(a: &str, b: &str, tolerance: f64) -> bool {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => (x - y).abs() > tolerance * x.abs().max(y.abs()),
        _ => a != b,
    }
}

/// Differences between `fresh` and `baseline` result folders of one space on one device.
pub fn compare(label: &str, fresh: &Path, baseline: &Path, tolerance: f64) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    if !baseline.join("recommended.json").exists() {
        problems.push(format!("{label}: no baseline at {}", baseline.display()));
        return Ok(problems);
    }
    let parse =
        |p: &Path| -> Result<serde_json::Value> { serde_json::from_str(&read(p)?).map_err(|e| Error::json(p, &e)) };
    let (new_rec, old_rec) = (parse(&fresh.join("recommended.json"))?, parse(&baseline.join("recommended.json"))?);
    let (new_front, old_front) = (front(&fresh.join("pareto.csv"))?, front(&baseline.join("pareto.csv"))?);
    if new_rec != old_rec {
        let pick = |f: &BTreeMap<String, BTreeMap<String, String>>| {
            f.values()
                .find(|r| r.get("recommended").map(|v| v == "true").unwrap_or(false))
                .map(|r| format!("#{} {} L{} H{}", r["index"], r["attention"], r["layers"], r["hidden"]))
                .unwrap_or_else(|| "?".into())
        };
        problems.push(format!("{label}: recommendation changed from {} to {}", pick(&old_front), pick(&new_front)));
    }
    let added: Vec<_> = new_front.keys().filter(|k| !old_front.contains_key(*k)).cloned().collect();
    let removed: Vec<_> = old_front.keys().filter(|k| !new_front.contains_key(*k)).cloned().collect();
    if !added.is_empty() || !removed.is_empty() {
        problems.push(format!(
            "{label}: front changed: {} added (#{}), {} removed (#{})",
            added.len(),
            added.iter().take(5).cloned().collect::<Vec<_>>().join(", #"),
            removed.len(),
            removed.iter().take(5).cloned().collect::<Vec<_>>().join(", #")
        ));
    }
    for (k, new) in &new_front {
        if let Some(old) = old_front.get(k) {
            for (col, v) in new {
                let before = old.get(col).map(String::as_str).unwrap_or("");
                if differs(before, v, tolerance) {
                    problems.push(format!("{label}: #{k} {col} moved from {before} to {v}"));
                }
            }
        }
    }
    Ok(problems)
}
