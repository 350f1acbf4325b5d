//! What an interrupted run removes: every temporary registered while it is being written. The
//! handler is installed once, at the start of every command, so SIGINT, SIGTERM and SIGHUP exit
//! 130 whatever the command was doing.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, Once};

/// Paths being written now: removed if the process is interrupted.
static IN_PROGRESS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Child processes running for this one (llama.cpp's worker): stopped on an interrupt, so none
/// outlives the run.
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static HANDLER: Once = Once::new();

/// The exit code of an interrupted run (128 + SIGINT, as shells report Ctrl-C), for SIGTERM and
/// SIGHUP too, so scripts see one code for "interrupted".
pub const EXIT_INTERRUPTED: i32 = 130;

/// Installs the handler (idempotent). A second handler (a library user's) wins; we then only
/// lose the cleanup.
pub fn install() {
    HANDLER.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            let children = CHILDREN.lock().unwrap_or_else(|e| e.into_inner());
            for &pid in children.iter() {
                stop(pid);
            }
            // Held until exit: a commit cannot rename half-removed files into place.
            let guard = in_progress();
            for p in guard.iter() {
                remove(p);
            }
            if guard.is_empty() {
                eprintln!("interrupted");
            } else {
                eprintln!("interrupted: removed the unfinished output");
            }
            std::process::exit(EXIT_INTERRUPTED);
        });
    });
}

/// The list of paths in progress, locked. Holding it keeps the handler from running its
/// removals, so a rename into place is never half done when the process exits.
pub(crate) fn in_progress() -> MutexGuard<'static, Vec<PathBuf>> {
    IN_PROGRESS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes a file or a whole folder (not what a link points to); errors are ignored.
pub(crate) fn remove(p: &Path) {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => {
            let _ = std::fs::remove_dir_all(p);
        }
        Ok(_) => {
            let _ = std::fs::remove_file(p);
        }
        Err(_) => {}
    }
}

/// Marks `p` as in progress until [`done`] (or the process ends).
pub fn register(p: &Path) {
    install();
    in_progress().push(p.to_path_buf());
}

/// `p` is finished (renamed into place, or removed).
pub fn done(p: &Path) {
    in_progress().retain(|q| q != p);
}

/// Marks `pid` as a child to stop if this process is interrupted, until [`forget_child`].
pub fn register_child(pid: u32) {
    install();
    CHILDREN.lock().unwrap_or_else(|e| e.into_inner()).push(pid);
}

/// The child `pid` has ended (or been waited for).
pub fn forget_child(pid: u32) {
    CHILDREN.lock().unwrap_or_else(|e| e.into_inner()).retain(|&p| p != pid);
}

/// Sends SIGTERM to `pid` (Unix; elsewhere the child ends with its console).
fn stop(pid: u32) {
    #[cfg(unix)]
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) with a pid this process spawned and has not yet waited for.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    #[cfg(not(unix))]
    let _ = pid;
}
