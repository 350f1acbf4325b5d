//! Hardening II (issue 23), outputs and search folders: one regression test per defect class
//! the sweep found. A folder the tool did not write is never emptied or replaced; only the
//! tool's own temporaries are removed; special files at an output path are refused; every input
//! is read through a bounded reader; a search folder is checked before `verify`, `export` or
//! `plot` act on it; every writer takes a lock; every command exits 130 when interrupted.

use crate::common::*;
use rooflinebench::files::outdir::MARKER;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SPACE: &str = r#"name = "tiny"
[architecture]
layers = [4, 8]
hidden = [256]
heads = [4]
attention = ["mha", "gqa"]
kv_heads = [2]
ffn_multiplier = [2.0]
vocab = [8000]
[workload]
scenario = "siso"
"#;

/// A search folder of the tiny space, written by the binary.
fn searched(dir: &Path) -> PathBuf {
    let space = write_at(&dir.join("tiny.toml"), SPACE);
    let out = dir.join("search");
    bin().args(["search", s(&space), "--device", "rpi5", "--out", s(&out)]).assert().success();
    out
}

/// Rewrites `name` in a search folder and its hash in the marker, as a forger would: the
/// content checks must then catch what the hash no longer does.
fn forge(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
    let mut marker: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join(MARKER)).unwrap()).unwrap();
    let hash: String = Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    marker["files"][name] = serde_json::Value::from(hash);
    std::fs::write(dir.join(MARKER), serde_json::to_vec(&marker).unwrap()).unwrap();
}

// 1. Data loss.

#[test]
fn a_search_into_a_folder_of_someone_elses_files_is_refused_and_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let space = write_at(&dir.path().join("tiny.toml"), SPACE);
    let home = dir.path().join("home");
    let thesis = write_at(&home.join("docs/thesis.tex"), "four years");
    for cmd in [vec!["search", s(&space), "--device", "rpi5", "--out", s(&home)], vec!["reproduce", "--out", s(&home)]]
    {
        refused(&cmd, &[s(&home), "did not write or that were changed since (docs)", "new or empty folder"]);
        assert_eq!(std::fs::read_to_string(&thesis).unwrap(), "four years");
    }
    // batch writes SPACE/DEVICE below its --out: a foreign folder there is refused too.
    let foreign = write_at(&home.join("tiny/rpi5/notes.txt"), "mine");
    refused(&["batch", s(dir.path()), "--devices", "rpi5", "--out", s(&home)], &["notes.txt"]);
    assert!(foreign.exists());
    // Files a user adds to a folder the tool wrote are theirs: the next run refuses too.
    let out = searched(dir.path());
    let notes = write_at(&out.join("my-notes.md"), "mine");
    refused(&["search", s(&space), "--device", "rpi5", "--out", s(&out)], &["my-notes.md"]);
    assert!(notes.exists());
    // An empty folder is fine, and so is a link to nothing being replaced: a link is refused.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    bin().args(["search", s(&space), "--device", "rpi5", "--out", s(&empty)]).assert().success();
    #[cfg(unix)]
    {
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&home, &link).unwrap();
        refused(&["search", s(&space), "--device", "rpi5", "--out", s(&link)], &["is a link"]);
        assert!(thesis.exists());
    }
}

#[test]
fn siblings_named_like_old_temporaries_are_not_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let space = write_at(&dir.path().join("tiny.toml"), SPACE);
    let out = dir.path().join("out");
    let a = write_at(&dir.path().join(".out.old.1/keep.txt"), "x");
    let b = write_at(&dir.path().join(".out.staging.1/keep.txt"), "x");
    let c = write_at(&dir.path().join(".report.csv.1.tmp"), "x");
    bin().args(["search", s(&space), "--device", "rpi5", "--out", s(&out)]).assert().success();
    bin()
        .args(["analyze", "--model", s(&model_path("SmolLM2-135M")), "--device", "rpi5", "--format", "csv", "--out"])
        .arg(dir.path().join("report.csv"))
        .assert()
        .success();
    assert!(a.exists() && b.exists() && c.exists());
}

#[test]
fn special_files_at_an_output_path_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = searched(dir.path());
    // /dev/null is a character device on every Unix; as root a rename would replace it.
    let null = Path::new("/dev/null");
    if !null.exists() {
        return;
    }
    let model = model_path("SmolLM2-135M");
    for cmd in [
        vec!["export", s(&out), "recommended", "--out", "/dev/null"],
        vec!["plot", "front", s(&out), "--out", "/dev/null"],
        vec!["analyze", "--model", s(&model), "--device", "rpi5", "--out", "/dev/null"],
    ] {
        refused(&cmd, &["/dev/null", "not a regular file"]);
    }
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata(null).unwrap().file_type().is_char_device(), "/dev/null is still a device");
}

// 3. Unbounded reads.

#[test]
fn oversized_or_endless_inputs_are_refused_naming_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let out = searched(dir.path());
    // Sparse files: large to the reader, nothing on disk.
    let big = |p: &Path, len: u64| std::fs::OpenOptions::new().write(true).open(p).unwrap().set_len(len).unwrap();
    big(&out.join("space.toml"), 58 << 20);
    refused(
        &["export", s(&out), "#0", "--out", s(&dir.path().join("c.json"))],
        &["space.toml", "at most 1048576 bytes"],
    );
    let out = searched(&dir.path().join("again"));
    big(&out.join("pareto.csv"), 200 << 20);
    refused(&["plot", "front", s(&out), "--out", s(&dir.path().join("f.svg"))], &["pareto.csv", "at most"]);
    // A device is refused before it is opened, and so is a folder.
    let space = write_at(&dir.path().join("tiny.toml"), SPACE);
    refused(&["search", "/dev/zero", "--device", "rpi5"], &["/dev/zero", "a regular file"]);
    refused(&["analyze", "--model", "/dev/zero", "--device", "rpi5"], &["/dev/zero", "a regular file"]);
    refused(&["analyze", "--model", s(dir.path()), "--device", "rpi5"], &["a folder"]);
    refused(&["search", s(&space), "--device", "/dev/zero"], &["/dev/zero"]);
    // verify --top is bounded where it is parsed.
    refused(&["verify", s(&out), "--top", "1000000000"], &["--top"]);
}

// 4. Search folders are checked before they are used.

#[test]
fn a_hand_edited_search_folder_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = searched(dir.path());
    let c = dir.path().join("c.json");
    // An edited file no longer matches the hash the search recorded.
    std::fs::write(out.join("space.toml"), SPACE.replace("[4, 8]", "[4, 8, 12]")).unwrap();
    refused(&["export", s(&out), "#0", "--out", s(&c)], &["space.toml", "changed since rooflinebench wrote it"]);
    let out = searched(&dir.path().join("b"));
    std::fs::write(out.join("pareto.csv"), "parameters,rip,attention,recommended\n").unwrap();
    refused(&["plot", "front", s(&out)], &["pareto.csv", "changed since"]);
    // A folder with no marker is not a search folder.
    let bare = dir.path().join("bare");
    write_at(&bare.join("space.toml"), SPACE);
    refused(&["export", s(&bare), "#0", "--out", s(&c)], &["not a folder written by `rooflinebench search`"]);
    assert!(!c.exists());
}

#[test]
fn a_forged_search_folder_is_still_checked_like_a_shard() {
    let dir = tempfile::tempdir().unwrap();
    let out = searched(dir.path());
    let outcome: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("outcome.json")).unwrap()).unwrap();
    // The tiny space has 2 x 2 = 4 candidates: #0 to #3.
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: [(&str, Edit); 4] = [
        ("outcome.top", Box::new(|o| o["top"] = serde_json::json!([]))),
        ("outcome.front", Box::new(|o| o["front"] = serde_json::json!([]))),
        ("index", Box::new(|o| o["top"][0]["index"] = serde_json::Value::from(1_000_000u64))),
        ("outcome.space", Box::new(|o| o["space"] = serde_json::Value::from("another"))),
    ];
    for (needle, edit) in cases {
        let mut o = outcome.clone();
        edit(&mut o);
        forge(&out, "outcome.json", &serde_json::to_string_pretty(&o).unwrap());
        let e = rooflinebench::search::saved::load(&out).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("outcome.json") && e.contains(needle), "{needle}: {e}");
    }
    // A forged, smaller space: the recommendation's index is past it (found by the fuzz
    // target: `export recommended` panicked).
    let small = searched(&dir.path().join("fresh"));
    // The tiny space recommends #2 (GQA, 4 layers); the forged one has #0 only (MHA, 4 layers).
    forge(&small, "space.toml", &SPACE.replace("[4, 8]", "[4]").replace(r#"["mha", "gqa"]"#, r#"["mha"]"#));
    refused(
        &["export", s(&small), "recommended", "--out", s(&dir.path().join("c.json"))],
        &["outcome.json", "outcome.candidates"],
    );
    // plot front on a forged front with no rows, or an infinite value, ends with a refusal.
    let header = "index,parameters,rip,attention,recommended\n";
    for (csv, needle) in
        [(header.to_string(), "at least one front member"), (format!("{header}0,inf,0.5,mha,true\n"), "finite")]
    {
        forge(&out, "pareto.csv", &csv);
        let start = Instant::now();
        refused(&["plot", "front", s(&out), "--out", s(&dir.path().join("f.svg"))], &[needle]);
        assert!(start.elapsed() < Duration::from_secs(60));
    }
}

// 7. Locks and interruption.

#[test]
fn every_writer_takes_its_outputs_lock() {
    let dir = tempfile::tempdir().unwrap();
    let out = searched(dir.path());
    let profile = dir.path().join("p.json");
    let held = rooflinebench::files::Lock::take(&profile).unwrap();
    // Refused before any timing run, with or without the engines built.
    let (code, _, err) = run(&["calibrate", "--engine", "llama.cpp", "--quick", "--out", s(&profile)]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("another rooflinebench run") || err.contains("needs llama.cpp"), "{err}");
    drop(held);
    let held = rooflinebench::files::Lock::take(&out).unwrap();
    let (code, _, err) = run(&["verify", s(&out), "--quick"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("another rooflinebench run") || err.contains("needs llama.cpp"), "{err}");
    let repro = dir.path().join("paper");
    drop(held);
    let _held = rooflinebench::files::Lock::take(&repro).unwrap();
    refused(&["reproduce", "--out", s(&repro)], &["another rooflinebench run"]);
}

#[test]
fn sigterm_exits_130_even_with_nothing_in_progress() {
    // A shard run registers nothing while it searches: the handler still answers 130.
    let dir = tempfile::tempdir().unwrap();
    let big = repo().join("benches/spaces/ten-million.toml");
    let exe = assert_cmd::cargo::cargo_bin("rooflinebench");
    let mut child = std::process::Command::new(exe)
        .args(["search", s(&big), "--device", "rpi5", "--force", "--threads", "1", "--shard", "0/1", "--out"])
        .arg(dir.path().join("shards"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
}

// The second sweep (755 cases): what it found in classes 1 and 4, each pinned.

#[test]
fn a_users_lock_named_file_is_kept_and_a_lock_link_refused() {
    let dir = tempfile::tempdir().unwrap();
    let space = write_at(&dir.path().join("tiny.toml"), SPACE);
    let out = dir.path().join("out");
    let mine = write_at(&dir.path().join(".out.lock"), "mine");
    bin().args(["search", s(&space), "--device", "rpi5", "--out", s(&out)]).assert().success();
    assert_eq!(std::fs::read_to_string(&mine).unwrap(), "mine");
    std::fs::remove_file(&mine).unwrap();
    #[cfg(unix)]
    {
        let target = dir.path().join("made-by-the-lock");
        std::os::unix::fs::symlink(&target, &mine).unwrap();
        refused(&["search", s(&space), "--device", "rpi5", "--out", s(&out)], &["is a link"]);
        assert!(!target.exists(), "the link's target is not created");
    }
}

#[test]
fn a_folder_is_replaced_only_with_a_valid_marker_and_unchanged_files_of_the_same_command() {
    let dir = tempfile::tempdir().unwrap();
    let space = write_at(&dir.path().join("tiny.toml"), SPACE);
    let search = |out: &Path| ["search", s(&space), "--device", "rpi5", "--out", s(out)].map(String::from);
    // A marker that is not the tool's.
    let m = dir.path().join("m");
    let settings = write_at(&m.join(MARKER), r#"{"theme":"dark"}"#);
    refused(&search(&m).each_ref().map(|a| a.as_str()), &[MARKER]);
    assert!(settings.exists());
    // A listed name that became a folder of the user's, and an edited summary.md.
    let out = searched(dir.path());
    std::fs::remove_file(out.join("summary.md")).unwrap();
    let keep = write_at(&out.join("summary.md/keep.txt"), "mine");
    refused(&search(&out).each_ref().map(|a| a.as_str()), &["summary.md"]);
    assert!(keep.exists());
    let out = searched(&dir.path().join("b"));
    let summary = out.join("summary.md");
    std::fs::write(&summary, std::fs::read_to_string(&summary).unwrap() + "\nmy notes\n").unwrap();
    refused(&search(&out).each_ref().map(|a| a.as_str()), &["summary.md"]);
    // Another command's folder.
    refused(&["reproduce", "--out", s(&out)], &["holds the output of `rooflinebench search`"]);
}

#[test]
fn a_file_put_in_the_output_folder_during_a_run_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let out = searched(dir.path());
    let big = repo().join("benches/spaces/ten-million.toml");
    let exe = assert_cmd::cargo::cargo_bin("rooflinebench");
    let child = std::process::Command::new(exe)
        .args(["search", s(&big), "--device", "rpi5", "--force", "--threads", "1", "--out", s(&out)])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let keep = write_at(&out.join("keep.txt"), "mine");
    let done = child.wait_with_output().unwrap();
    assert_eq!(done.status.code(), Some(2), "{}", String::from_utf8_lossy(&done.stderr));
    assert!(keep.exists());
}

#[test]
fn batch_keeps_a_users_summary_and_outputs_never_overwrite_inputs() {
    let dir = tempfile::tempdir().unwrap();
    write_at(&dir.path().join("spaces/tiny.toml"), SPACE);
    let b = dir.path().join("b");
    let mine = write_at(&b.join("summary.md"), "mine");
    refused(&["batch", s(&dir.path().join("spaces")), "--devices", "rpi5", "--out", s(&b)], &["summary.md"]);
    assert_eq!(std::fs::read_to_string(&mine).unwrap(), "mine");
    // The same run into a fresh folder, then again: its own summary is replaced.
    let c = dir.path().join("c");
    for _ in 0..2 {
        bin().args(["batch", s(&dir.path().join("spaces")), "--devices", "rpi5", "--out", s(&c)]).assert().success();
    }
    let m = dir.path().join("m.json");
    std::fs::copy(model_path("SmolLM2-135M"), &m).unwrap();
    let before = std::fs::read(&m).unwrap();
    refused(&["analyze", "--model", s(&m), "--device", "rpi5", "--out", s(&m)], &["is also an input"]);
    assert_eq!(std::fs::read(&m).unwrap(), before);
    let out = searched(&dir.path().join("s"));
    refused(&["export", s(&out), "#0", "--out", s(&out.join("space.toml"))], &["reads back"]);
    refused(&["plot", "front", s(&out), "--out", s(&out.join("pareto.csv"))], &["reads back"]);
    // plot front's own default output keeps the folder the tool's.
    bin().args(["plot", "front", s(&out)]).assert().success();
    bin()
        .args(["search", s(&dir.path().join("spaces/tiny.toml")), "--device", "rpi5", "--out", s(&out)])
        .assert()
        .success();
}

#[test]
fn a_consistently_forged_outcome_or_profile_is_refused_by_rescoring() {
    let dir = tempfile::tempdir().unwrap();
    let out = searched(dir.path());
    let outcome: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("outcome.json")).unwrap()).unwrap();
    // An invented score.
    let mut o = outcome.clone();
    o["front"][0]["rip"] = serde_json::Value::from(0.99);
    forge(&out, "outcome.json", &serde_json::to_string_pretty(&o).unwrap());
    let e = rooflinebench::search::saved::load(&out).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("outcome.front[0]") && e.contains("changed after the search"), "{e}");
    refused(&["export", s(&out), "recommended", "--out", s(&dir.path().join("c.json"))], &["changed after the search"]);
    // A profile with 100x the bandwidth: the figures no longer follow from it.
    forge(&out, "outcome.json", &serde_json::to_string_pretty(&outcome).unwrap());
    let mut device: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("device.json")).unwrap()).unwrap();
    let bw = device["bandwidth_bytes_per_s"].as_f64().unwrap();
    device["bandwidth_bytes_per_s"] = serde_json::Value::from(bw * 100.0);
    forge(&out, "device.json", &serde_json::to_string_pretty(&device).unwrap());
    let e = rooflinebench::search::saved::load(&out).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("changed after the search"), "{e}");
    // Control characters in pareto.csv's attention column never reach an SVG.
    let out = searched(&dir.path().join("p"));
    let csv = std::fs::read_to_string(out.join("pareto.csv")).unwrap();
    let forged = csv.replacen(",mha,", ",m\u{1b}[31mha,", 1).replacen(",gqa,", ",g\u{1b}[31mqa,", 1);
    forge(&out, "pareto.csv", &forged);
    refused(&["plot", "front", s(&out), "--out", s(&dir.path().join("f.svg"))], &["mha, gqa, mqa or mla"]);
}

#[test]
fn a_merged_shard_with_an_invented_score_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spaces = dir.path().join("spaces");
    write_at(&spaces.join("tiny.toml"), SPACE);
    let shards = dir.path().join("shards");
    for k in 0..2 {
        let shard = format!("{k}/2");
        bin()
            .args(["batch", s(&spaces), "--devices", "rpi5", "--shard", &shard, "--out", s(&shards)])
            .assert()
            .success();
    }
    let file = shards.join("tiny/rpi5/shard-0-of-2.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    v["outcome"]["front"][0]["decode_tokens_per_s"] = serde_json::Value::from(1e9);
    std::fs::write(&file, serde_json::to_vec(&v).unwrap()).unwrap();
    refused(
        &["merge", s(&spaces), "--devices", "rpi5", "--shards", s(&shards), "--out", s(&dir.path().join("m"))],
        &["shard-0-of-2.json", "changed after the search"],
    );
}

// The re-sweep (209 new cases): what it still found, pinned.

#[test]
fn files_a_user_put_or_edited_are_never_replaced_by_single_file_writers() {
    let dir = tempfile::tempdir().unwrap();
    let out = searched(dir.path());
    // plot front's default output, edited by the user.
    std::fs::write(out.join("front.svg"), "mine").unwrap();
    refused(&["plot", "front", s(&out)], &["front.svg", "not written by rooflinebench"]);
    assert_eq!(std::fs::read_to_string(out.join("front.svg")).unwrap(), "mine");
    // A user's file of a shard's name.
    let sh = dir.path().join("sh");
    let mine = write_at(&sh.join("shard-0-of-2.json"), "mine");
    let space = write_at(&dir.path().join("tiny.toml"), SPACE);
    refused(&["search", s(&space), "--device", "rpi5", "--shard", "0/2", "--out", s(&sh)], &["not a shard file"]);
    assert_eq!(std::fs::read_to_string(&mine).unwrap(), "mine");
    // Its own shard file is replaced on a rerun.
    let sh2 = dir.path().join("sh2");
    for _ in 0..2 {
        bin().args(["search", s(&space), "--device", "rpi5", "--shard", "0/2", "--out", s(&sh2)]).assert().success();
    }
    // export --out FOLDER: a config.json nobody named is not replaced.
    let e = dir.path().join("e");
    let config = write_at(&e.join("config.json"), "mine");
    refused(&["export", s(&out), "#1", "--out", s(&e)], &["config.json", "exists"]);
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "mine");
}

#[test]
fn export_by_index_and_the_top_list_are_checked_against_the_searched_space() {
    let dir = tempfile::tempdir().unwrap();
    // A space of the same size with other models, its hash forged: #0 would be another model.
    let out = searched(dir.path());
    forge(&out, "space.toml", &SPACE.replace("[4, 8]", "[5, 9]"));
    refused(&["export", s(&out), "#0", "--out", s(&dir.path().join("c.json"))], &["changed after the search"]);
    // The top list reversed (each row true): refused by its order.
    let out = searched(&dir.path().join("b"));
    let mut o: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("outcome.json")).unwrap()).unwrap();
    o["top"].as_array_mut().unwrap().reverse();
    forge(&out, "outcome.json", &serde_json::to_string_pretty(&o).unwrap());
    refused(&["export", s(&out), "recommended", "--out", s(&dir.path().join("c.json"))], &["outcome.top"]);
    // The top's best member dropped: refused by its length (all four are feasible).
    o["top"].as_array_mut().unwrap().reverse();
    o["top"].as_array_mut().unwrap().remove(0);
    forge(&out, "outcome.json", &serde_json::to_string_pretty(&o).unwrap());
    refused(&["export", s(&out), "recommended", "--out", s(&dir.path().join("c.json"))], &["outcome.top"]);
}
