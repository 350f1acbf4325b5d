//! The libtorch side: calibration and validation on this machine's CPU, CUDA GPU or Apple GPU.

mod calibrate;
mod kernels;
mod target;
mod timing;
mod validate;

pub use calibrate::calibrate;
pub use validate::validate;

use crate::device::Host;

pub(crate) use crate::measure::progress;

/// The libtorch element type of a compute format calibration and validation run in.
fn kind_of(dtype: crate::dtype::DType) -> tch::Kind {
    use crate::dtype::DType;
    match dtype {
        DType::Bf16 => tch::Kind::BFloat16,
        DType::F16 => tch::Kind::Half,
        _ => tch::Kind::Float,
    }
}

/// libtorch is compiled in: nothing to refuse.
pub fn require(_command: &'static str) -> crate::error::Result<()> {
    Ok(())
}

/// Sets libtorch's intra-op threads (default: all cores); returns the count in force.
fn set_threads(threads: Option<usize>) -> u32 {
    let n = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    tch::set_num_threads(n as i32);
    tch::get_num_threads() as u32
}

fn host(threads: u32, t: &target::Target) -> Host {
    let mut h = crate::measure::host(threads, env!("ROOFLINEBENCH_LIBTORCH_VERSION"));
    h.device = t.label.clone();
    h.cuda_device = t.gpu_name.clone();
    h
}

fn total_memory_bytes() -> f64 {
    crate::measure::total_memory_bytes()
}

fn today() -> String {
    crate::measure::today()
}
