//! The libtorch side: calibration and validation on this machine's CPU.

mod calibrate;
mod kernels;
mod timing;
mod validate;

pub use calibrate::calibrate;
pub use validate::validate;

use crate::device::Host;

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

fn host(threads: u32) -> Host {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    Host {
        cpu_model,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        threads,
        libtorch_version: env!("ROOFLINEBENCH_LIBTORCH_VERSION").to_string(),
        cuda_device: None,
    }
}

fn total_memory_bytes() -> f64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().find(|l| l.starts_with("MemTotal")).map(String::from))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map_or(8e9, |kb| kb * 1024.0)
}

/// Today's date (UTC), ISO 8601, from the system clock.
fn today() -> String {
    let days =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn progress(len: u64, show: bool) -> indicatif::ProgressBar {
    if show && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let bar = indicatif::ProgressBar::new(len);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg:30} [{bar:30}] {pos}/{len} {elapsed}")
                .expect("valid template"),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    }
}
