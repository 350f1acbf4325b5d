//! The device calibration and validation run on (`--on`): opening it, naming it for the
//! profile, and timing on it. CUDA and MPS calls return before their kernels have run, so a
//! timed call ends with a wait for the device, whose own cost is measured once and taken off.

use super::timing::{self, Timing};
use crate::device::DeviceKind;
use crate::error::{Error, Result};
use crate::measure::On;
use std::time::Duration;
use tch::{Device, Kind, Tensor};

pub struct Target {
    pub device: Device,
    /// `cpu`, `cuda:0 (NVIDIA GeForce RTX 3090)`, `mps (Apple M1 Pro)`.
    pub label: String,
    /// The GPU's name (CUDA).
    pub gpu_name: Option<String>,
    /// Memory the device computes from, when it is not the host's (a discrete GPU's), bytes.
    pub memory_bytes: Option<f64>,
    /// A one-element tensor on the device: copying it back waits for MPS's queue.
    marker: Option<Tensor>,
    /// Median cost of one wait on an idle device, seconds (0 on the CPU).
    sync_s: f64,
}

impl Target {
    /// Opens the device `on` names; a one-line error naming it when it is absent. Must run
    /// before any other libtorch call: libtorch decides once whether CUDA is there.
    pub fn open(on: On, command: &str) -> Result<Target> {
        let device = match on {
            On::Cpu => Device::Cpu,
            On::Cuda => cuda(command)?,
            On::Mps => mps(command)?,
            On::Auto => cuda(command).or_else(|_| mps(command)).unwrap_or(Device::Cpu),
        };
        let (gpu_name, memory_bytes) = if device.is_cuda() { nvidia_smi() } else { (None, None) };
        let label = match device {
            Device::Cuda(i) => format!("cuda:{i} ({})", gpu_name.as_deref().unwrap_or("CUDA device")),
            Device::Mps => format!("mps ({})", crate::measure::host(1, "").cpu_model),
            _ => "cpu".into(),
        };
        let marker = (device == Device::Mps).then(|| Tensor::zeros([1], (Kind::Float, device)));
        let mut t = Target { device, label, gpu_name, memory_bytes, marker, sync_s: 0.0 };
        if device != Device::Cpu {
            let wait = timing::time(|| t.sync(), 5, 200, Duration::from_millis(20)).median_s;
            t.sync_s = wait;
        }
        Ok(t)
    }

    /// Waits until every kernel queued on the device has run (nothing to wait for on the CPU).
    pub fn sync(&self) {
        match self.device {
            Device::Cuda(i) => tch::Cuda::synchronize(i as i64),
            Device::Mps => {
                if let Some(m) = &self.marker {
                    drop(m.to_device(Device::Cpu));
                }
            }
            _ => {}
        }
    }

    /// `timing::time` of `f` and the wait for its kernels, less the cost of the wait itself
    /// (never below half the whole).
    pub fn time(&self, mut f: impl FnMut(), warmup: usize, max_repeats: usize, budget: Duration) -> Timing {
        let t = timing::time(
            || {
                f();
                self.sync();
            },
            warmup,
            max_repeats,
            budget,
        );
        Timing { median_s: (t.median_s - self.sync_s).max(0.5 * t.median_s), cv: t.cv }
    }

    /// The profile's kind: a CPU, a discrete GPU, or Apple's unified-memory system on chip.
    pub fn kind(&self) -> DeviceKind {
        match self.device {
            Device::Cuda(_) => DeviceKind::Gpu,
            Device::Mps => DeviceKind::Soc,
            _ => DeviceKind::Cpu,
        }
    }

    pub fn is_cpu(&self) -> bool {
        self.device == Device::Cpu
    }

    /// The `--on` value that opens this device.
    pub fn on_name(&self) -> &'static str {
        match self.device {
            Device::Cuda(_) => "cuda",
            Device::Mps => "mps",
            _ => "cpu",
        }
    }

    pub fn randn(&self, shape: &[i64], kind: Kind) -> Tensor {
        Tensor::randn(shape, (kind, self.device))
    }

    /// A constant-filled tensor: values do not change kernel timings, and filling hundreds of
    /// megabytes of cold copies with random numbers would take most of a quick calibration.
    pub fn filled(&self, shape: &[i64], kind: Kind) -> Tensor {
        Tensor::full(shape, 0.5, (kind, self.device))
    }
}

/// CUDA device 0. The binary does not link libtorch's CUDA library (the linker drops it: no
/// symbol of it is called), so it is loaded here, before libtorch first asks for CUDA; loading
/// it registers its CUDA hooks, as in pytorch/pytorch#31611 and tch-rs#980.
fn cuda(command: &str) -> Result<Device> {
    let absent = |why: String| Error::Usage(format!("{command} --on cuda: no CUDA device here ({why})"));
    load_torch_cuda().map_err(absent)?;
    if tch::Cuda::is_available() {
        Ok(Device::Cuda(0))
    } else {
        Err(absent("libtorch's CUDA library loaded but sees no GPU".into()))
    }
}

fn mps(command: &str) -> Result<Device> {
    if tch::utils::has_mps() {
        Ok(Device::Mps)
    } else {
        Err(Error::Usage(format!(
            "{command} --on mps: no MPS device here (Apple silicon with macOS 14 or later and the macOS libtorch)"
        )))
    }
}

#[cfg(target_os = "linux")]
fn load_torch_cuda() -> std::result::Result<(), String> {
    use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};
    // SAFETY: libtorch_cuda's initialisers only register CUDA kernels and hooks with the
    // libtorch already loaded; the library stays loaded for the life of the process.
    match unsafe { Library::open(Some("libtorch_cuda.so"), RTLD_NOW | RTLD_GLOBAL) } {
        Ok(lib) => {
            std::mem::forget(lib);
            Ok(())
        }
        Err(e) => {
            let e = e.to_string();
            let reason = e.rsplit(": ").next().unwrap_or(&e).to_string();
            let missing = e.split(": ").find(|p| p.ends_with(".so") || p.contains(".so.")).map(str::trim);
            Err(match missing {
                Some(lib) if lib != "libtorch_cuda.so" => format!(
                    "libtorch's CUDA library needs {lib}: {reason}; scripts/setup-libtorch.sh --cuda installs it"
                ),
                _ => format!("libtorch_cuda.so did not load: {reason}"),
            })
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn load_torch_cuda() -> std::result::Result<(), String> {
    Err("libtorch has CUDA on Linux only".into())
}

/// The name and memory of GPU 0 from `nvidia-smi`, when it is installed.
fn nvidia_smi() -> (Option<String>, Option<f64>) {
    let out = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=name,memory.total", "--format=csv,noheader,nounits", "-i", "0"])
        .output();
    let Ok(out) = out else { return (None, None) };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = text.lines().next().unwrap_or_default().split(',').map(str::trim);
    let name = fields.next().filter(|n| !n.is_empty()).map(String::from);
    let mib = fields.next().and_then(|m| m.parse::<f64>().ok());
    (name, mib.map(|m| m * 1024.0 * 1024.0))
}
