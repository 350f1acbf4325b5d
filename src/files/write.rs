//! Outputs written whole: the bytes go to a temporary beside the output (see [`super::temp`])
//! and are renamed into place, so a reader never sees half a file and a full disk leaves the
//! previous file as it was. An output path that is a device, pipe, socket or folder is refused:
//! run as root, a rename would replace `/dev/null` itself.

use super::interrupt::in_progress;
use super::temp::TempDir;
use crate::error::{Error, Result};
use serde::Serialize;
use std::io::Write;
use std::path::Path;

/// Refuses `path` when something other than a regular file (or a link to one) is there, or
/// when it names a folder (`out/`, `out/.`).
pub fn refuse_special(path: &Path) -> Result<()> {
    let text = path.to_string_lossy();
    if text.ends_with('/') || text.ends_with("/.") || text.ends_with("/..") || text == "." || text == ".." {
        return Err(Error::Usage(format!(
            "{}: names a folder; give a file path for this output",
            crate::error::clip(&text)
        )));
    }
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => {
            let what = if m.is_dir() { "a folder" } else { "a device, pipe or socket" };
            Err(Error::Usage(format!(
                "{}: is {what}, not a regular file; name a file path for this output",
                path.display()
            )))
        }
        _ => Ok(()),
    }
}

/// Refuses an output path that is one of the command's inputs (the same file, by device and
/// inode, links followed): writing would destroy what it read.
pub fn refuse_input(out: &Path, inputs: &[&Path]) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let Ok(o) = std::fs::metadata(out) else { return Ok(()) };
        for i in inputs {
            if std::fs::metadata(i).is_ok_and(|m| m.dev() == o.dev() && m.ino() == o.ino()) {
                return Err(Error::Usage(format!(
                    "--out {}: is also an input ({}); write somewhere else",
                    crate::error::clip(&out.display().to_string()),
                    crate::error::clip(&i.display().to_string())
                )));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (out, inputs);
    Ok(())
}

/// Fails now, before long work, if `path` could not be written later (its folder cannot be
/// created or written, or a special file is there).
pub fn check_writable(path: &Path) -> Result<()> {
    refuse_special(path)?;
    TempDir::beside(path).map(drop)
}

/// Writes `bytes` to `path` whole: a temporary in the same folder, then a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Like [`write_atomic`], but `fill` streams the contents (large outputs never sit in memory).
pub fn write_atomic_with(path: &Path, fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    refuse_special(path)?;
    let tmp = TempDir::beside(path)?;
    let data = tmp.path().join("data");
    let written = (|| {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&data)?);
        fill(&mut w)?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()
    })();
    written.map_err(|e| Error::io(path, e))?;
    // Held so an interrupt waits for the rename rather than racing it.
    let _guard = in_progress();
    std::fs::rename(&data, path).map_err(|e| Error::io(path, e))
}

/// Writes several files into `dir` as one: all are written to a temporary first, then renamed
/// into place together (an interrupt waits for the renames), so a failure leaves none changed.
pub fn write_files(dir: &Path, files: &[(&str, &[u8])]) -> Result<()> {
    let paths: Vec<_> = files.iter().map(|(name, _)| dir.join(name)).collect();
    for p in &paths {
        refuse_special(p)?;
    }
    let tmp = TempDir::beside(&dir.join(files.first().map_or("files", |f| f.0)))?;
    for (name, bytes) in files {
        let p = tmp.path().join(name);
        (|| {
            let mut f = std::fs::File::create(&p)?;
            f.write_all(bytes)?;
            f.sync_all()
        })()
        .map_err(|e| Error::io(dir.join(name), e))?;
    }
    let _guard = in_progress();
    for ((name, _), dest) in files.iter().zip(&paths) {
        std::fs::rename(tmp.path().join(name), dest).map_err(|e| Error::io(dest, e))?;
    }
    Ok(())
}

/// CSV of flat rows; the header comes from the row struct's fields.
pub fn csv_bytes<T: Serialize>(rows: &[T]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r).expect("flat rows always serialise");
    }
    w.into_inner().expect("writing to memory cannot fail")
}

/// Pretty JSON with a final newline.
pub fn json_bytes<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(value).expect("reports always serialise");
    v.push(b'\n');
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_special_files_and_writes_whole() {
        let e = write_atomic(Path::new("/dev/null"), b"x").unwrap_err().to_string();
        assert!(e.contains("/dev/null") && e.contains("not a regular file"), "{e}");
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        // Nothing left beside it.
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        write_files(d.path(), &[("x.csv", b"1"), ("x.md", b"2")]).unwrap();
        assert_eq!(std::fs::read(d.path().join("x.md")).unwrap(), b"2");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 3);
    }
}
