//! Stand-in for `measure/llamacpp/worker` (and `ffi`) in builds without the `llamacpp` feature
//! (it takes the module's name): the same API, every call a one-line error saying how to build
//! it. Planning jobs, reading runs and verifying compile everywhere; only these call llama.cpp.

use crate::error::{Error, Result};

/// Fails at once when a command needs llama.cpp, before any other work or input checks.
pub fn require(command: &'static str) -> Result<()> {
    Err(Error::NotCompiledWithLlamaCpp { command })
}

/// The hidden `engine-worker` subcommand, which has no engine to run.
pub fn main() -> Result<i32> {
    require("engine-worker").map(|()| 0)
}
