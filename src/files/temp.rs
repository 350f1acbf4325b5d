//! Temporaries that say whose they are. Each is a folder beside its output,
//! `.NAME.rooflinebench-PID.tmp/`, holding an `owner` file with the process's id and start
//! time. A later run removes a temporary only when that file is there and names a process that
//! is gone: a user's file of a similar name, or a live run's folder, is never touched.

use super::interrupt::{done, register, remove};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

const OWNER_FILE: &str = "owner";
const OWNER_HEADER: &str = "rooflinebench temporary";

/// This process as `pid start`: the start time tells a reused process id apart.
fn identity(pid: u32) -> Option<String> {
    Some(format!("{pid} {}", start_time(pid)?))
}

/// A process's start time in clock ticks since boot (field 22 of /proc/PID/stat); None where
/// /proc is missing or the process is gone.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the process an owner file names has ended. Where /proc is missing (not Linux) it
/// is taken to be alive: nothing is removed that might be live.
fn owner_gone(owner: &str) -> bool {
    if !Path::new("/proc/self/stat").exists() {
        return false;
    }
    let mut parts = owner.split_whitespace();
    let (Some(pid), Some(start)) = (parts.next(), parts.next()) else { return false };
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else { return false };
    start_time(pid) != Some(start)
}

/// A temporary folder beside `path` (which need not exist), removed when dropped or on an
/// interrupt.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Makes `.NAME.rooflinebench-PID.tmp/` beside `path`, with its owner file, after removing
    /// the temporaries of `path` that dead runs left.
    pub fn beside(path: &Path) -> Result<TempDir> {
        let (parent, name) = parent_and_name(path)?;
        sweep(&parent, &name);
        let me = identity(std::process::id()).unwrap_or_default();
        // The first free name of this process's: `-PID`, then `-PID-1`, ... A folder of that
        // name is reused only when its owner file names this very process.
        let mut tmp = PathBuf::new();
        for n in 0..1000 {
            let suffix = if n == 0 { String::new() } else { format!("-{n}") };
            tmp = parent.join(format!(".{name}.rooflinebench-{}{suffix}.tmp", std::process::id()));
            match std::fs::symlink_metadata(&tmp) {
                Err(_) => break,
                Ok(m) if m.is_dir() && owned_by(&tmp, &me) => {
                    remove(&tmp);
                    break;
                }
                Ok(_) => continue,
            }
        }
        register(&tmp);
        let made = (|| {
            std::fs::create_dir(&tmp)?;
            std::fs::write(tmp.join(OWNER_FILE), format!("{OWNER_HEADER}\n{me}\n"))
        })();
        if let Err(e) = made {
            done(&tmp);
            return Err(Error::io(&tmp, e));
        }
        Ok(TempDir { path: tmp })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        remove(&self.path);
        done(&self.path);
    }
}

/// Whether the owner file in `dir` names `identity` (this process).
fn owned_by(dir: &Path, identity: &str) -> bool {
    let Ok(owner) = super::read::read_text(&dir.join(OWNER_FILE), 256) else { return false };
    let mut lines = owner.lines();
    lines.next() == Some(OWNER_HEADER) && lines.next() == Some(identity) && !identity.is_empty()
}

/// `path`'s folder (created; `.` for a bare name) and its file name.
pub fn parent_and_name(path: &Path) -> Result<(PathBuf, String)> {
    let name =
        path.file_name().and_then(|n| n.to_str()).filter(|n| !n.is_empty()).ok_or_else(|| {
            Error::Usage(format!("{}: expected a path ending in a file or folder name", path.display()))
        })?;
    let parent = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
    Ok((parent, name.to_string()))
}

/// Removes the temporaries of output `name` in `parent` whose owner file names a dead process.
/// Anything else of a similar name (a user's file, a folder without the owner file, a live
/// run's folder) stays.
pub fn sweep(parent: &Path, name: &str) {
    let prefix = format!(".{name}.rooflinebench-");
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for e in entries.flatten() {
        let file_name = e.file_name();
        let n = file_name.to_string_lossy();
        if !(n.starts_with(prefix.as_str()) && n.ends_with(".tmp")) {
            continue;
        }
        let p = e.path();
        // A real folder (not a link to one) with an owner file this tool wrote.
        if !std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        let Ok(owner) = super::read::read_text(&p.join(OWNER_FILE), 256) else { continue };
        let mut lines = owner.lines();
        if lines.next() != Some(OWNER_HEADER) {
            continue;
        }
        if owner_gone(lines.next().unwrap_or("")) {
            remove(&p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_made_up_one_is_not() {
        if !Path::new("/proc/self/stat").exists() {
            return;
        }
        let me = identity(std::process::id()).unwrap();
        assert!(!owner_gone(&me));
        // Same pid, another start time: a reused id, so the owner is gone.
        let pid = std::process::id();
        assert!(owner_gone(&format!("{pid} 1")));
        assert!(!owner_gone("garbage"));
    }

    #[test]
    fn a_folder_of_this_processs_temporary_name_that_is_not_its_own_is_kept() {
        let d = tempfile::tempdir().unwrap();
        let users = d.path().join(format!(".out.rooflinebench-{}.tmp", std::process::id()));
        std::fs::create_dir(&users).unwrap();
        std::fs::write(users.join("keep.txt"), "mine").unwrap();
        let t = TempDir::beside(&d.path().join("out")).unwrap();
        assert_ne!(t.path(), users.as_path());
        drop(t);
        assert!(users.join("keep.txt").exists());
    }

    #[test]
    fn sweep_removes_only_marked_temporaries_of_dead_owners() {
        let d = tempfile::tempdir().unwrap();
        let dead = d.path().join(".out.rooflinebench-1.tmp");
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join(OWNER_FILE), format!("{OWNER_HEADER}\n1 1\n")).unwrap();
        // Same name, no owner file: a user's folder.
        let unmarked = d.path().join(".out.rooflinebench-2.tmp");
        std::fs::create_dir(&unmarked).unwrap();
        std::fs::write(unmarked.join("thesis.tex"), "x").unwrap();
        // A plain file of the pattern.
        let file = d.path().join(".out.rooflinebench-3.tmp");
        std::fs::write(&file, "x").unwrap();
        let live = TempDir::beside(&d.path().join("out")).unwrap();
        sweep(d.path(), "out");
        if Path::new("/proc/self/stat").exists() {
            assert!(!dead.exists());
        }
        assert!(unmarked.join("thesis.tex").exists());
        assert!(file.exists());
        assert!(live.path().exists());
        let p = live.path().to_path_buf();
        drop(live);
        assert!(!p.exists());
    }
}
