//! Files in and out, below every stage (any stage may use it; it uses none of them).
//!
//! - [`read`]: every input is read through one bounded reader that refuses what is not a
//!   regular file and names its limit; names that become file names are checked as names.
//! - [`write`]: outputs are written whole (a temporary and a rename) and never over a device
//!   node or other special file.
//! - [`outdir`]: output folders are written whole under a lock, carry a marker saying the tool
//!   wrote them (and what each file's hash was), and a folder without that marker is never
//!   emptied or replaced.
//! - [`temp`]: temporaries carry a marker naming their owner process; only those whose owner is
//!   gone are removed, never a file that merely has a similar name.
//! - [`interrupt`]: SIGINT, SIGTERM and SIGHUP remove the temporaries in progress and exit 130,
//!   whatever the command.

pub mod interrupt;
pub mod outdir;
pub mod read;
pub mod temp;
pub mod write;

pub use outdir::{Lock, Staged};
pub use read::{plain_name, read_bytes, read_text};
pub use write::{check_writable, csv_bytes, json_bytes, write_atomic, write_atomic_with};
