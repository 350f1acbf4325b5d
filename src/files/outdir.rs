//! Output folders written as a whole, and never over a folder the tool did not write.
//!
//! A run fills a temporary beside its folder and renames it into place under an exclusive lock,
//! so a reader (or a second run) never sees files of two runs side by side or half a run. Each
//! finished folder holds a marker, `.rooflinebench.json`, listing the files the tool wrote there
//! and their SHA-256: a later run replaces a folder only when it is empty or everything in it is
//! listed there, and readers of a search folder (`verify`, `export`, `plot front`) refuse a file
//! that was changed by hand.

use super::interrupt::in_progress;
use super::read::{read_bytes, read_text, MAX_JSON_BYTES};
use super::temp::{parent_and_name, TempDir};
use crate::error::{Error, Result};
use fs4::fs_std::FileExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// The marker's file name.
pub const MARKER: &str = ".rooflinebench.json";

/// What the marker says.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Marker {
    /// Always "rooflinebench".
    pub written_by: String,
    pub version: String,
    /// What wrote the folder: `search` (also for `batch` and `merge`, whose folders are the
    /// same bytes) or `reproduce`.
    pub command: String,
    /// Each file written, and the SHA-256 of its bytes (hex).
    pub files: BTreeMap<String, String>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The folder's marker, if it has a valid one (a regular file, not a link, that parses).
pub fn marker_of(dir: &Path) -> Option<Marker> {
    let path = dir.join(MARKER);
    if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
        return None;
    }
    let text = read_text(&path, MAX_JSON_BYTES).ok()?;
    serde_json::from_str::<Marker>(&text).ok().filter(|m| m.written_by == "rooflinebench")
}

fn write_marker(dir: &Path, marker: &Marker) -> Result<()> {
    super::write::write_atomic(&dir.join(MARKER), &super::write::json_bytes(marker))
}

/// Whether `dir/name` is a regular file `marker` lists, holding what it held when listed.
fn written_unchanged(dir: &Path, name: &str, marker: Option<&Marker>) -> bool {
    let path = dir.join(name);
    let Some(want) = marker.and_then(|m| m.files.get(name)) else { return false };
    std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) && file_sha256_hex(&path).is_some_and(|h| &h == want)
}

/// The SHA-256 of a file's bytes, read in blocks: the tool may have written a file larger than
/// any reader's cap, and it is still the tool's.
fn file_sha256_hex(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut f = File::open(path).ok()?;
    let (mut hasher, mut block) = (Sha256::new(), vec![0u8; 1 << 16]);
    loop {
        match f.read(&mut block) {
            Ok(0) => break,
            Ok(n) => hasher.update(&block[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Refuses `dir` unless it is missing, empty, or holds only what `command` wrote there: a
/// valid marker of that command, and every other entry a regular file it lists with the hash
/// it recorded. A link, a file, a folder of someone else's files, a file edited since, or
/// another command's output is never replaced.
pub fn check_replaceable(dir: &Path, flag: &str, command: &str) -> Result<()> {
    let meta = match std::fs::symlink_metadata(dir) {
        Err(_) => return Ok(()),
        Ok(m) => m,
    };
    let shown = crate::error::clip(&dir.display().to_string());
    if meta.file_type().is_symlink() {
        return Err(Error::Usage(format!("{flag} {shown}: is a link; name the folder itself (or a new one)")));
    }
    if !meta.is_dir() {
        return Err(Error::Usage(format!("{flag} {shown}: exists and is not a folder")));
    }
    let mut entries: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    entries.sort();
    if entries.is_empty() {
        return Ok(());
    }
    let marker = marker_of(dir);
    if let Some(m) = marker.as_ref().filter(|m| m.command != command) {
        return Err(Error::Usage(format!(
            "{flag} {shown}: holds the output of `rooflinebench {}`, not of `{command}`; name another folder",
            crate::error::clip(&m.command)
        )));
    }
    // An entry is the tool's when it is a regular file listed with the hash of what it holds;
    // the marker itself, when it is a valid one.
    let theirs = |name: &String| {
        if name == MARKER {
            return marker.is_none();
        }
        !written_unchanged(dir, name, marker.as_ref())
    };
    let foreign: Vec<&String> = entries.iter().filter(|n| theirs(n)).collect();
    if foreign.is_empty() {
        return Ok(());
    }
    let names = foreign.iter().take(3).map(|n| crate::error::clip(n)).collect::<Vec<_>>().join(", ");
    let more = if foreign.len() > 3 { format!(" and {} more", foreign.len() - 3) } else { String::new() };
    Err(Error::Usage(format!(
        "{flag} {shown}: holds files rooflinebench did not write or that were changed since ({names}{more}), and a \
         run replaces its whole output folder; name a new or empty folder, or move those files away first"
    )))
}

/// An exclusive lock on an output (a file or folder that may not exist yet): `.NAME.lock`
/// beside it, since the output itself is replaced by each run. Released when dropped (the file
/// is removed then, so nothing is left beside the output) or when the process ends.
#[derive(Debug)]
pub struct Lock {
    _file: File,
    path: PathBuf,
    /// Whether the lock file is the tool's (it made it, or it says so): only then is it
    /// removed. A user's file of that name is locked but never removed.
    ours: bool,
}

/// What a lock file the tool makes holds.
const LOCK_TEXT: &str = "rooflinebench lock\n";

impl Drop for Lock {
    fn drop(&mut self) {
        if self.ours {
            // Removed while still held: a run that opened it meanwhile finds, once it holds the
            // lock, that the path no longer names its file, and is refused (see `same_file`).
            let _ = std::fs::remove_file(&self.path);
            super::interrupt::done(&self.path);
        }
    }
}

/// Whether `path` still names the open `file` (a lock file removed and made anew by another
/// run names another file).
#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &File, path: &Path) -> bool {
    path.exists()
}

impl Lock {
    /// Takes the lock on `path`, or says which run holds it.
    pub fn take(path: &Path) -> Result<Lock> {
        // `--out .` names the folder by its real path.
        let real = match path.file_name() {
            None if path.is_dir() => std::fs::canonicalize(path).map_err(|e| Error::io(path, e))?,
            _ => path.to_path_buf(),
        };
        let (parent, name) = parent_and_name(&real)?;
        let lock = parent.join(format!(".{name}.lock"));
        if std::fs::symlink_metadata(&lock).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(Error::Usage(format!(
                "{}: is a link where rooflinebench keeps the lock of {}; remove it",
                lock.display(),
                path.display()
            )));
        }
        super::write::refuse_special(&lock)?;
        let cannot = |e: std::io::Error| {
            Error::Usage(format!("{}: cannot be written ({}: {e})", path.display(), lock.display()))
        };
        let (file, ours) = match std::fs::OpenOptions::new().write(true).create_new(true).open(&lock) {
            Ok(mut f) => {
                use std::io::Write;
                f.write_all(LOCK_TEXT.as_bytes()).map_err(cannot)?;
                (f, true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let f = std::fs::OpenOptions::new().write(true).open(&lock).map_err(cannot)?;
                // A killed run's lock is the tool's; anything else there is the user's.
                (f, read_text(&lock, 64).is_ok_and(|t| t == LOCK_TEXT))
            }
            Err(e) => return Err(cannot(e)),
        };
        match FileExt::try_lock_exclusive(&file) {
            Ok(true) if same_file(&file, &lock) => {
                if ours {
                    // An interrupt removes it too.
                    super::interrupt::register(&lock);
                }
                Ok(Lock { _file: file, path: lock, ours })
            }
            Ok(_) => Err(Error::Usage(format!(
                "{}: another rooflinebench run is writing this output (it holds {}); wait for it or choose another path",
                path.display(),
                lock.display()
            ))),
            Err(e) => Err(Error::io(&lock, e)),
        }
    }
}

/// A run's output folder being written: files go into [`Staged::path`], and [`Staged::commit`]
/// puts them in place of `dir` at once, with the marker.
#[derive(Debug)]
pub struct Staged {
    dir: PathBuf,
    command: String,
    tmp: TempDir,
    _lock: Lock,
}

impl Staged {
    /// Locks `dir`, checks that it may be replaced, and makes the temporary folder. Fails now,
    /// before any long work, if the folder cannot or must not be written.
    pub fn begin(dir: &Path, command: &str) -> Result<Staged> {
        check_replaceable(dir, "--out", command)?;
        let lock = Lock::take(dir)?;
        // Checked again under the lock: another run may have written it meanwhile.
        check_replaceable(dir, "--out", command)?;
        let tmp = TempDir::beside(dir)?;
        let new = tmp.path().join("new");
        std::fs::create_dir(&new).map_err(|e| {
            Error::Usage(format!("--out {}: cannot be written ({}: {e})", dir.display(), new.display()))
        })?;
        Ok(Staged { dir: dir.to_path_buf(), command: command.to_string(), tmp, _lock: lock })
    }

    /// Where this run writes its files.
    pub fn path(&self) -> PathBuf {
        self.tmp.path().join("new")
    }

    /// Replaces `dir` with the finished folder, marked as the tool's.
    pub fn commit(self) -> Result<()> {
        let new = self.path();
        let mut files = BTreeMap::new();
        for e in std::fs::read_dir(&new).map_err(|e| Error::io(&new, e))?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().is_ok_and(|t| t.is_file()) {
                files.insert(name, sha256_hex(&std::fs::read(e.path()).map_err(|x| Error::io(e.path(), x))?));
            }
        }
        let marker = Marker {
            written_by: "rooflinebench".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            command: self.command.clone(),
            files,
        };
        write_marker(&new, &marker)?;
        let old = self.tmp.path().join("old");
        // Checked again just before the rename: files a user put there during the run stay.
        check_replaceable(&self.dir, "--out", &self.command)?;
        // Held so an interrupt either removes the temporary or waits for both renames.
        let guard = in_progress();
        let result = (|| {
            File::open(&new).and_then(|d| d.sync_all())?;
            if std::fs::symlink_metadata(&self.dir).is_ok() {
                std::fs::rename(&self.dir, &old)?;
            }
            std::fs::rename(&new, &self.dir)
        })();
        if result.is_err() && old.exists() && !self.dir.exists() {
            // Put the earlier run back.
            let _ = std::fs::rename(&old, &self.dir);
        }
        drop(guard);
        result.map_err(|e| Error::io(&self.dir, e))
        // The temporary (with the earlier run in it) goes when `self` drops.
    }
}

/// Writes files into a folder the tool wrote (`verify`'s tables, `--per-layer`'s stack) and
/// lists them in its marker, so the folder stays one a later run may replace.
pub fn add_files(dir: &Path, files: &[(&str, &[u8])]) -> Result<()> {
    let marker = marker_of(dir).ok_or_else(|| not_written(dir))?;
    write_files_recorded(dir, &marker.command, files)
}

/// Writes files into `dir` and lists them in its marker (made if missing, for `command`); each
/// file it replaces must be one the tool wrote there, unchanged since (see
/// [`check_file_replaceable`]): a file a user edited or put there is refused, not replaced.
pub fn write_files_recorded(dir: &Path, command: &str, files: &[(&str, &[u8])]) -> Result<()> {
    for (name, _) in files {
        check_file_replaceable(dir, name, command)?;
    }
    super::write::write_files(dir, files)?;
    let mut marker = marker_of(dir).unwrap_or_else(|| Marker {
        written_by: "rooflinebench".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        command: command.into(),
        files: BTreeMap::new(),
    });
    for (name, bytes) in files {
        marker.files.insert(name.to_string(), sha256_hex(bytes));
    }
    write_marker(dir, &marker)
}

/// Refuses to replace `dir/name` unless it is missing or `command` wrote it there (listed in
/// the folder's marker, unchanged since); a marker that is not the tool's, or another
/// command's, is refused too, since writing would replace it.
pub fn check_file_replaceable(dir: &Path, name: &str, command: &str) -> Result<()> {
    let shown = |p: &Path| crate::error::clip(&p.display().to_string());
    let marker_path = dir.join(MARKER);
    let marker = marker_of(dir);
    if std::fs::symlink_metadata(&marker_path).is_ok() && marker.is_none() {
        return Err(Error::Usage(format!(
            "{}: not a marker rooflinebench wrote; name another --out, or move it away",
            shown(&marker_path)
        )));
    }
    if let Some(m) = marker.as_ref().filter(|m| m.command != command) {
        return Err(Error::Usage(format!(
            "--out {}: holds the output of `rooflinebench {}`, not of `{command}`; name another folder",
            shown(dir),
            crate::error::clip(&m.command)
        )));
    }
    let path = dir.join(name);
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(());
    }
    if written_unchanged(dir, name, marker.as_ref()) {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "{}: not written by rooflinebench (or changed since), so it is not replaced; move it away or name another --out",
            shown(&path)
        )))
    }
}

/// Writes `dir/name` (checked with [`check_file_replaceable`]) and lists it in the folder's
/// marker, made if missing.
pub fn write_recorded(dir: &Path, command: &str, name: &str, bytes: &[u8]) -> Result<()> {
    write_files_recorded(dir, command, &[(name, bytes)])
}

/// Refuses a single-file output that would replace a file of a folder the tool wrote (a search
/// folder's space.toml, its marker): those are read back, and checked against the marker.
pub fn refuse_tool_file(out: &Path) -> Result<()> {
    let (Some(dir), Some(name)) = (out.parent(), out.file_name().and_then(|n| n.to_str())) else { return Ok(()) };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    match marker_of(dir) {
        Some(m) if name == MARKER || m.files.contains_key(name) => Err(Error::Usage(format!(
            "--out {}: a file rooflinebench {} wrote in {} and reads back; write elsewhere",
            crate::error::clip(&out.display().to_string()),
            crate::error::clip(&m.command),
            crate::error::clip(&dir.display().to_string())
        ))),
        _ => Ok(()),
    }
}

fn not_written(dir: &Path) -> Error {
    Error::Usage(format!(
        "{}: not a folder written by `rooflinebench search` (no valid {MARKER}); run the search again into it",
        dir.display()
    ))
}

/// The text of `name` in a search folder, checked against the folder's marker: written by this
/// version of the tool, and unchanged since (a hand-edited file is refused, not trusted).
pub fn read_written(dir: &Path, name: &str, max: u64) -> Result<String> {
    let marker = marker_of(dir).ok_or_else(|| not_written(dir))?;
    let path = dir.join(name);
    let version = env!("CARGO_PKG_VERSION");
    if marker.version != version {
        return Err(Error::field(
            dir.join(MARKER).display().to_string(),
            "version",
            format!("{version} (this rooflinebench); run the search again"),
            crate::error::clip(&marker.version),
        ));
    }
    let Some(want) = marker.files.get(name) else {
        return Err(Error::Usage(format!(
            "{}: missing from the files rooflinebench wrote in {}; run the search again",
            path.display(),
            dir.display()
        )));
    };
    let bytes = read_bytes(&path, max)?;
    if &sha256_hex(&bytes) != want {
        return Err(Error::Usage(format!(
            "{}: changed since rooflinebench wrote it (its SHA-256 is not the one in {MARKER}); run the search again",
            path.display()
        )));
    }
    String::from_utf8(bytes)
        .map_err(|_| Error::field(path.display().to_string(), "(file)", "UTF-8 text", "other bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_hashed_in_blocks_as_a_whole_read_hashes_them() {
        let d = tempfile::tempdir().unwrap();
        // Three and a half blocks of varied bytes.
        let bytes: Vec<u8> = (0..(7u32 << 15)).map(|i| (i * 31 % 251) as u8).collect();
        std::fs::write(d.path().join("f"), &bytes).unwrap();
        assert_eq!(file_sha256_hex(&d.path().join("f")), Some(sha256_hex(&bytes)));
        assert_eq!(file_sha256_hex(&d.path().join("missing")), None);
    }

    #[test]
    fn never_replaces_a_folder_of_someone_elses_files() {
        let d = tempfile::tempdir().unwrap();
        let home = d.path().join("home");
        std::fs::create_dir_all(home.join("docs")).unwrap();
        std::fs::write(home.join("docs/thesis.tex"), "x").unwrap();
        let e = Staged::begin(&home, "search").unwrap_err().to_string();
        assert!(e.contains("did not write or that were changed since (docs)"), "{e}");
        assert!(home.join("docs/thesis.tex").exists());
    }

    #[test]
    fn replaces_its_own_folder_and_checks_what_it_wrote() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        for round in ["one", "two"] {
            let s = Staged::begin(&out, "search").unwrap();
            std::fs::write(s.path().join("outcome.json"), round).unwrap();
            s.commit().unwrap();
        }
        assert_eq!(read_written(&out, "outcome.json", 100).unwrap(), "two");
        // Only the folder, nothing else beside it.
        let mut names: Vec<_> =
            std::fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names, ["out"]);
        add_files(&out, &[("verify.md", b"v")]).unwrap();
        assert!(check_replaceable(&out, "--out", "search").is_ok());
        std::fs::write(out.join("outcome.json"), "edited").unwrap();
        let e = read_written(&out, "outcome.json", 100).unwrap_err().to_string();
        assert!(e.contains("changed since rooflinebench wrote it"), "{e}");
        std::fs::write(out.join("notes.txt"), "mine").unwrap();
        assert!(check_replaceable(&out, "--out", "search").unwrap_err().to_string().contains("notes.txt"));
    }
}
