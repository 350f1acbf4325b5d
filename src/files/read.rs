//! One bounded reader for every input: a regular file of at most a stated size, read whole, or a
//! one-line error naming the file and the limit. A device, a pipe or a folder is refused before
//! it is opened (opening a pipe would wait for a writer; `/dev/zero` never ends).

use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;

/// Search spaces, TOML in general: a few KB in practice, and TOML parsing holds tens of bytes
/// per byte of input (a 6 MB list of numbers took 400 MB).
pub const MAX_TOML_BYTES: u64 = 1 << 20;
/// config.json files and device profiles (the largest shipped profile is about 200 KB).
pub const MAX_JSON_BYTES: u64 = 16 << 20;
/// What a search folder holds (outcome.json, pareto.csv) and merge's shards: the ten-million
/// space's outcome is about 1 MB, so this leaves two orders of magnitude.
pub const MAX_SEARCH_FILE_BYTES: u64 = 128 << 20;

/// `path` if it is a regular file (links followed) of at most `max` bytes.
fn open(path: &Path, max: u64) -> Result<std::fs::File> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        let what = if meta.is_dir() { "a folder" } else { "a device, pipe or socket" };
        return Err(Error::field(path.display().to_string(), "(file)", "a regular file", what));
    }
    if meta.len() > max {
        return Err(too_large(path, max));
    }
    std::fs::File::open(path).map_err(|e| Error::io(path, e))
}

fn too_large(path: &Path, max: u64) -> Error {
    Error::field(path.display().to_string(), "(file)", format!("at most {max} bytes"), "a larger file")
}

/// The bytes of a regular file of at most `max` bytes (checked as it is read too: a file that
/// grows while read is cut at the limit and refused).
pub fn read_bytes(path: &Path, max: u64) -> Result<Vec<u8>> {
    let f = open(path, max)?;
    let mut bytes = Vec::new();
    f.take(max + 1).read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > max {
        return Err(too_large(path, max));
    }
    Ok(bytes)
}

/// A UTF-8 text file of at most `max` bytes.
pub fn read_text(path: &Path, max: u64) -> Result<String> {
    let bytes = read_bytes(path, max)?;
    String::from_utf8(bytes).map_err(|e| {
        Error::field(
            path.display().to_string(),
            "(file)",
            "UTF-8 text",
            format!("a byte that is not UTF-8 at offset {}", e.utf8_error().valid_up_to()),
        )
    })
}

/// Whether `path` is a regular file that starts as GGUF files do (magic `GGUF`), read without
/// following it anywhere else or printing any of it.
pub fn is_gguf(path: &Path) -> bool {
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let mut magic = [0u8; 4];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && &magic == b"GGUF"
}

/// `name` if it is a plain file name (output files and folders are named after it), else an
/// error: no path separators, no leading dot, nothing a shell or file system treats specially.
pub fn plain_name(name: &str, src: &str, field: &str) -> Result<String> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_alphanumeric() || "-_.+@".contains(c));
    if ok {
        Ok(name.to_string())
    } else {
        Err(Error::field(
            src,
            field,
            "a plain file name (letters, digits, - _ . + @; not starting with '.'; at most 100 bytes)",
            format!("'{}'", crate::error::clip(name)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_special_files_and_large_ones_naming_the_limit() {
        let e = read_text(Path::new("/dev/zero"), 10).unwrap_err().to_string();
        assert!(e.contains("/dev/zero") && e.contains("a regular file"), "{e}");
        let d = tempfile::tempdir().unwrap();
        assert!(read_text(d.path(), 10).unwrap_err().to_string().contains("a folder"));
        let f = d.path().join("f.txt");
        std::fs::write(&f, "0123456789A").unwrap();
        let e = read_text(&f, 10).unwrap_err().to_string();
        assert!(e.contains("at most 10 bytes"), "{e}");
        assert_eq!(read_text(&f, 11).unwrap(), "0123456789A");
    }

    #[test]
    fn names_are_names_not_paths() {
        for bad in ["../../evil", "a/b", ".hidden", "", "x\u{1b}[2J"] {
            assert!(plain_name(bad, "f", "name").is_err(), "{bad:?}");
        }
        assert_eq!(plain_name("rpi5-llamacpp", "f", "name").unwrap(), "rpi5-llamacpp");
    }
}
