//! Output folders written as a whole: a run fills a temporary sibling folder and renames it
//! into place, under an exclusive lock, so a reader (or a second run) never sees files of two
//! runs side by side or half a run. SIGINT/SIGTERM remove what was in progress; temporaries a
//! killed run left are removed by the next run that takes the lock.

use crate::error::{Error, Result};
use fs4::fs_std::FileExt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};

/// Paths being written now: removed if the process is interrupted.
static IN_PROGRESS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static HANDLER: Once = Once::new();

/// Removes everything in progress and exits, on SIGINT, SIGTERM or SIGHUP.
fn install_handler() {
    HANDLER.call_once(|| {
        // A second handler (a library user's) wins; we then only lose the cleanup.
        let _ = ctrlc::set_handler(|| {
            // Held until exit: a commit cannot rename half-removed files into place.
            let guard = IN_PROGRESS.lock().unwrap_or_else(|e| e.into_inner());
            for p in guard.iter() {
                remove(p);
            }
            eprintln!("interrupted: removed the unfinished output");
            std::process::exit(130);
        });
    });
}

fn remove(p: &Path) {
    if p.is_dir() {
        let _ = std::fs::remove_dir_all(p);
    } else {
        let _ = std::fs::remove_file(p);
    }
}

/// Marks `p` as in progress until [`done`] (or the process ends).
pub fn register(p: &Path) {
    install_handler();
    IN_PROGRESS.lock().unwrap_or_else(|e| e.into_inner()).push(p.to_path_buf());
}

/// `p` is finished (renamed into place, or removed).
pub fn done(p: &Path) {
    IN_PROGRESS.lock().unwrap_or_else(|e| e.into_inner()).retain(|q| q != p);
}

/// `dir`'s parent (created) and file name; `dir` must name a folder below a parent.
fn split(dir: &Path) -> Result<(PathBuf, String)> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Error::Usage(format!("--out {}: expected a folder path ending in a name", dir.display())))?;
    let parent = dir.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
    Ok((parent, name.to_string()))
}

/// An exclusive lock on a folder that may not exist yet: `.NAME.lock` beside it (the folder
/// itself is replaced by each run). Released when dropped or when the process ends.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

impl Lock {
    /// Takes the lock on `dir`, or says which run holds it.
    pub fn take(dir: &Path) -> Result<Lock> {
        if dir.exists() && !dir.is_dir() {
            return Err(Error::Usage(format!("--out {}: exists and is not a folder", dir.display())));
        }
        // `--out .` names the folder by its real path.
        let real = match dir.file_name() {
            None if dir.is_dir() => std::fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?,
            _ => dir.to_path_buf(),
        };
        let (parent, name) = split(&real)?;
        let path = parent.join(format!(".{name}.lock"));
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(|e| {
            Error::Usage(format!("--out {}: cannot be written ({}: {e})", dir.display(), path.display()))
        })?;
        match FileExt::try_lock_exclusive(&file) {
            Ok(true) => Ok(Lock { _file: file }),
            Ok(false) => Err(Error::Usage(format!(
                "--out {}: another rooflinebench run is writing this folder (it holds {}); wait for it or choose another folder",
                dir.display(),
                path.display()
            ))),
            Err(e) => Err(Error::io(&path, e)),
        }
    }
}

/// A run's output folder being written: files go into [`Staged::path`], and [`Staged::commit`]
/// puts them in place of `dir` at once.
#[derive(Debug)]
pub struct Staged {
    dir: PathBuf,
    tmp: PathBuf,
    parent: PathBuf,
    name: String,
    _lock: Lock,
}

impl Staged {
    /// Locks `dir`, removes what killed runs left beside it and makes the temporary folder.
    /// Fails now, before any long work, if the folder cannot be written.
    pub fn begin(dir: &Path) -> Result<Staged> {
        let lock = Lock::take(dir)?;
        let (parent, name) = split(dir)?;
        // Holding the lock, every temporary of this folder is a dead run's.
        let prefixes = [format!(".{name}.staging."), format!(".{name}.old.")];
        if let Ok(entries) = std::fs::read_dir(&parent) {
            for e in entries.flatten() {
                let n = e.file_name();
                let n = n.to_string_lossy();
                if prefixes.iter().any(|p| n.starts_with(p.as_str())) {
                    remove(&e.path());
                }
            }
        }
        let tmp = parent.join(format!(".{name}.staging.{}", std::process::id()));
        register(&tmp);
        if let Err(e) = std::fs::create_dir(&tmp) {
            done(&tmp);
            return Err(Error::Usage(format!("--out {}: cannot be written ({}: {e})", dir.display(), tmp.display())));
        }
        Ok(Staged { dir: dir.to_path_buf(), tmp, parent, name, _lock: lock })
    }

    /// Where this run writes its files.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Replaces `dir` with the finished folder.
    pub fn commit(self) -> Result<()> {
        // Held so an interrupt either removes the staging folder or waits for the rename.
        let mut guard = IN_PROGRESS.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.parent.join(format!(".{}.old.{}", self.name, std::process::id()));
        let result = (|| {
            File::open(&self.tmp).and_then(|d| d.sync_all())?;
            if self.dir.exists() {
                std::fs::rename(&self.dir, &old)?;
            }
            std::fs::rename(&self.tmp, &self.dir)
        })();
        guard.retain(|q| q != &self.tmp);
        drop(guard);
        match result {
            Ok(()) => {
                remove(&old);
                Ok(())
            }
            Err(e) => {
                // Put the earlier run back if it was moved aside.
                if old.exists() && !self.dir.exists() {
                    let _ = std::fs::rename(&old, &self.dir);
                }
                remove(&self.tmp);
                Err(Error::io(&self.dir, e))
            }
        }
    }
}

impl Drop for Staged {
    /// An abandoned run (an error before commit) leaves nothing behind.
    fn drop(&mut self) {
        if self.tmp.exists() {
            remove(&self.tmp);
        }
        done(&self.tmp);
    }
}

/// Removes `.FILE.PID.tmp` files that a killed writer of `path` left (their process is gone).
pub fn clean_stale_files(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else { return };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let prefix = format!(".{name}.");
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let n = e.file_name();
        let n = n.to_string_lossy();
        let Some(pid) = n.strip_prefix(prefix.as_str()).and_then(|r| r.strip_suffix(".tmp")) else { continue };
        let Ok(pid) = pid.parse::<u32>() else { continue };
        if pid != std::process::id() && !alive(pid) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Whether a process runs (Linux: /proc; elsewhere assumed, so nothing live is removed).
fn alive(pid: u32) -> bool {
    if Path::new("/proc/self").exists() {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}
