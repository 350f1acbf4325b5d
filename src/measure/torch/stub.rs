//! Stand-in for `measure/torch` in builds without the `torch` feature (it takes the module's
//! name): the same API, every call a one-line error saying how to build it.

use super::{MeasureOptions, ValidationRow};
use crate::device::DeviceProfile;
use crate::error::{Error, Result};

pub fn calibrate(_: &MeasureOptions) -> Result<DeviceProfile> {
    Err(Error::NotCompiledWithTorch { command: "calibrate" })
}

pub fn validate(_: &DeviceProfile, _: &MeasureOptions) -> Result<(Vec<ValidationRow>, Vec<String>)> {
    Err(Error::NotCompiledWithTorch { command: "validate" })
}

/// Fails at once when a command needs libtorch, before any other work or input checks.
pub fn require(command: &'static str) -> Result<()> {
    Err(Error::NotCompiledWithTorch { command })
}
