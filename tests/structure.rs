//! The stages' import order (ARCHITECTURE.md): a module may use only the modules below it, so
//! data flows one way, arch -> workload -> device -> plan -> roofline -> search -> report, with
//! the engines, the paper reproduction and the command line on top. Read from the source's
//! `crate::` paths (test modules excluded), so a new import that runs back up fails here.

use crate::common::repo;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lowest first. `files`, `units` and `error` sit below every stage.
const ORDER: &[&str] = &[
    "error",
    "units",
    "files",
    "dtype",
    "arch",
    "workload",
    "device",
    "plan",
    "roofline",
    "quality",
    "warnings",
    "analysis",
    "fit",
    "search",
    "report",
    "measure",
    "reproduce",
    "cli",
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()) {
        if e.is_dir() {
            sources(&e, out);
        } else if e.extension().is_some_and(|x| x == "rs") && e.file_name().unwrap() != "tests.rs" {
            out.push(e);
        }
    }
}

/// The code of a file without its `#[cfg(test)]` module, and without comments.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = text.split("#[cfg(test)]").next().unwrap();
    text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// Names after `prefix` in `text`: `prefix::name` and each item of `prefix::{a, b::c}`.
fn names_after(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    for (i, _) in text.match_indices(prefix) {
        let rest = &text[i + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            for item in group.split('}').next().unwrap().split(',') {
                out.insert(ident(item.trim()));
            }
        } else {
            out.insert(ident(rest));
        }
    }
    out.retain(|n| !n.is_empty());
    out
}

#[test]
fn imports_follow_the_stages_one_way() {
    let src = repo().join("src");
    let rank: BTreeMap<&str, usize> = ORDER.iter().enumerate().map(|(i, m)| (*m, i)).collect();
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut wrong = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel.components().next().unwrap().as_os_str().to_str().unwrap().trim_end_matches(".rs");
        let Some(&here) = rank.get(top) else { continue };
        for m in names_after(&code(f), "crate::") {
            if rank.get(m.as_str()).is_some_and(|&r| r > here) {
                wrong.push(format!("{} uses crate::{m}", rel.display()));
            }
        }
    }
    // A new top-level module must be placed in ORDER (and in ARCHITECTURE.md).
    for f in std::fs::read_dir(&src).unwrap().map(|e| e.unwrap().path()) {
        let name = f.file_stem().unwrap().to_str().unwrap().to_string();
        // The entry points: the binaries (main.rs, bin/) only call cli.
        if !["lib", "main", "bin"].contains(&name.as_str()) && !rank.contains_key(name.as_str()) {
            wrong.push(format!("src/{name} is not placed in the stage order"));
        }
    }
    assert!(wrong.is_empty(), "imports that run back up the stages:\n{}", wrong.join("\n"));
}

#[test]
fn sibling_modules_form_no_circle() {
    // Within each folder, which sibling files use which (`super::x` or `crate::top::x`).
    let src = repo().join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut by_folder: BTreeMap<PathBuf, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for f in &files {
        let folder = f.parent().unwrap().to_path_buf();
        if folder == src {
            continue;
        }
        let me = f.file_stem().unwrap().to_str().unwrap().to_string();
        let top = folder.strip_prefix(&src).unwrap().to_str().unwrap().replace('/', "::");
        let text = code(f);
        let mut uses = names_after(&text, "super::");
        uses.extend(names_after(&text, &format!("crate::{top}::")));
        uses.remove(&me);
        by_folder.entry(folder).or_default().insert(me, uses);
    }
    for (folder, graph) in &by_folder {
        // Depth-first search for a back edge among the folder's files (mod.rs excluded: it
        // declares its children).
        fn visit<'a>(
            n: &'a str,
            g: &'a BTreeMap<String, BTreeSet<String>>,
            path: &mut Vec<&'a str>,
            done: &mut BTreeSet<&'a str>,
        ) -> Option<String> {
            if let Some(i) = path.iter().position(|p| *p == n) {
                return Some(format!("{} -> {n}", path[i..].join(" -> ")));
            }
            if !done.insert(n) {
                return None;
            }
            path.push(n);
            for m in g.get(n).into_iter().flatten().filter(|m| g.contains_key(*m) && *m != "mod") {
                if let Some(c) = visit(m, g, path, done) {
                    return Some(c);
                }
            }
            path.pop();
            None
        }
        let mut done = BTreeSet::new();
        for n in graph.keys().filter(|n| *n != "mod") {
            if let Some(circle) = visit(n, graph, &mut Vec::new(), &mut done) {
                panic!("{}: a circle of imports: {circle}", folder.display());
            }
        }
    }
}
