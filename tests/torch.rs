//! Calibration and validation through libtorch (built with `--features torch`), the device
//! they run on (`--on`), and the clear error a build without libtorch or without the device gives.

use crate::common::*;

/// Runs `exe`, a copy of this crate's binary written by the test. A child that another test
/// thread forks while the copy is being written holds it open for writing until that child
/// execs, and running the copy meanwhile fails with "Text file busy": it is tried again.
#[cfg(not(feature = "torch"))]
fn run_copy(exe: &std::path::Path, args: &[&str]) -> std::process::Output {
    for _ in 0..200 {
        match std::process::Command::new(exe).args(args).output() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            out => return out.unwrap(),
        }
    }
    panic!("{}: still busy after two seconds", exe.display());
}

#[cfg(not(feature = "torch"))]
#[test]
fn without_torch_calibrate_and_validate_exit_2_saying_how_to_build() {
    // A copy alone in a folder: no rooflinebench-torch beside it to hand the command to.
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("rooflinebench");
    std::fs::copy(env!("CARGO_BIN_EXE_rooflinebench"), &exe).unwrap();
    for cmd in ["calibrate", "validate"] {
        for on in ["cpu", "cuda", "mps", "auto"] {
            let out = run_copy(&exe, &[cmd, "--quick", "--on", on]);
            assert_eq!(out.status.code(), Some(2), "{out:?}");
            let err = String::from_utf8(out.stderr).unwrap();
            assert!(err.contains("make build") && err.contains(cmd) && err.lines().count() == 1, "{err}");
        }
    }
}

/// A build without libtorch hands `calibrate` and `validate` (and nothing else) to the
/// `rooflinebench-torch` beside it, with the same arguments, and exits with its code. A script
/// stands in for that binary here: it says what it was given and exits 7.
#[cfg(all(not(feature = "torch"), unix))]
#[test]
fn without_torch_libtorch_commands_run_the_torch_binary_beside_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("rooflinebench");
    std::fs::copy(env!("CARGO_BIN_EXE_rooflinebench"), &exe).unwrap();
    let torch = dir.path().join("rooflinebench-torch");
    std::fs::write(&torch, "#!/bin/sh\necho \"torch binary: $*\"\nexit 7\n").unwrap();
    std::fs::set_permissions(&torch, std::fs::Permissions::from_mode(0o755)).unwrap();
    for cmd in ["calibrate", "validate"] {
        let out = run_copy(&exe, &[cmd, "--quick"]);
        assert_eq!(out.status.code(), Some(7), "{out:?}");
        assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("torch binary: {cmd} --quick\n"));
    }
    // The llama.cpp engine's commands and everything else stay in this binary.
    let out = run_copy(&exe, &["calibrate", "--engine", "llama.cpp"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!String::from_utf8(out.stdout).unwrap().contains("torch binary"));
    let out = run_copy(&exe, &["devices"]);
    assert!(out.status.success() && !String::from_utf8(out.stdout).unwrap().contains("torch binary"));
}

/// No GPU here and no libtorch CUDA libraries (the set-up installs the CPU set): asking for
/// one is a one-line error naming the device, exit 2, and no profile or table is written.
#[cfg(feature = "torch")]
#[test]
fn calibrate_and_validate_on_an_absent_device_exit_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("p.json");
    for (cmd, on, names) in [
        ("calibrate", "cuda", "--on cuda: no CUDA device"),
        ("calibrate", "mps", "--on mps: no MPS device"),
        ("validate", "cuda", "--on cuda: no CUDA device"),
        ("validate", "mps", "--on mps: no MPS device"),
    ] {
        let mut c = bin();
        c.args([cmd, "--quick", "--on", on, "--out", out_path.to_str().unwrap()]);
        if cmd == "validate" {
            c.args(["--device", "rpi5"]);
        }
        let out = c.assert().code(2).get_output().clone();
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(cmd) && err.contains(names) && err.lines().count() == 1, "{cmd} --on {on}: {err}");
        assert!(!out_path.exists(), "{cmd} --on {on} wrote {}", out_path.display());
    }
}

/// `--on` chooses libtorch's device; llama.cpp's is fixed when it is built.
#[test]
fn on_with_the_llama_cpp_engine_exits_2_pointing_at_the_build_features() {
    for cmd in ["calibrate", "validate"] {
        let out = bin().args([cmd, "--engine", "llama.cpp", "--on", "cuda"]).assert().code(2).get_output().clone();
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains("--on cuda") && err.contains("llamacpp-cuda") && err.lines().count() == 1, "{err}");
    }
}

/// Profiles calibrated before `host.device` existed were CPU runs, and read as such.
#[test]
fn a_profile_calibrated_before_the_device_was_recorded_reads_as_cpu() {
    use rooflinebench::device::DeviceProfile;
    let path = repo().join("results/2026-12-01-epyc-avx2-2core/this-machine.json");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("\"device\""), "the fixture predates the field");
    let p = DeviceProfile::from_json(&text, "old").unwrap();
    assert_eq!(p.host.unwrap().device, "cpu");
}

/// Upper bounds from the CPU itself: cores x FMA lanes x 2 FMA pipes x 2 FLOPs x clock, and
/// for bandwidth cores x 3 cache lines of 64 B per cycle x clock (an L1 ceiling; main memory
/// is far below it).
#[cfg(feature = "torch")]
fn cpu_ceilings() -> (f64, f64) {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap();
    let mhz = info
        .lines()
        .filter(|l| l.starts_with("cpu MHz"))
        .filter_map(|l| l.split(':').nth(1)?.trim().parse::<f64>().ok())
        .fold(0.0, f64::max)
        .max(5000.0); // turbo clocks above the reported one: bound generously at 5 GHz
    let lanes = if info.contains(" avx512f") {
        16.0
    } else if info.contains(" avx2") {
        8.0
    } else {
        4.0
    };
    let cores = std::thread::available_parallelism().unwrap().get() as f64;
    let hz = mhz * 1e6;
    (cores * lanes * 2.0 * 2.0 * hz, cores * 3.0 * 64.0 * hz)
}

#[cfg(feature = "torch")]
#[test]
fn calibrate_quick_writes_a_profile_within_the_cpu_ceilings_and_validate_quick_compares_layers() {
    use rooflinebench::device::DeviceProfile;
    use rooflinebench::dtype::DType;
    let dir = tempfile::tempdir().unwrap();
    let profile_path = dir.path().join("this-machine.json");
    // auto: no CUDA or MPS here, so the CPU, recorded as such.
    bin().args(["calibrate", "--quick", "--on", "auto", "--out", profile_path.to_str().unwrap()]).assert().success();
    let text = std::fs::read_to_string(&profile_path).unwrap();
    let p = DeviceProfile::from_json(&text, "calibrated").unwrap();
    assert_eq!(p.host.as_ref().unwrap().device, "cpu");
    assert_eq!(p.kind, rooflinebench::device::DeviceKind::Cpu);
    let (flops_ceiling, bytes_ceiling) = cpu_ceilings();
    let peak = p.peak_flops(DType::F32);
    assert!(peak.is_finite() && peak > 1e9 && peak < flops_ceiling, "f32 peak {peak} vs {flops_ceiling}");
    let bw = p.bandwidth_bytes_per_s;
    assert!(bw.is_finite() && bw > 1e9 && bw < bytes_ceiling, "bandwidth {bw} vs {bytes_ceiling}");
    assert!(p.kernel_overhead_s > 0.0 && p.kernel_overhead_s < 1e-3);
    assert!(p.efficiency.len() >= 6, "tables for most operator classes: {:?}", p.efficiency.keys());
    let host = p.host.as_ref().unwrap();
    assert!(host.libtorch_version.starts_with("2.13"), "{}", host.libtorch_version);

    // The profile drives analysis like any other.
    bin()
        .args([
            "analyze",
            "--model",
            model_path("SmolLM2-135M").to_str().unwrap(),
            "--device",
            profile_path.to_str().unwrap(),
        ])
        .assert()
        .success();

    // Validation runs real layers and writes its table.
    let csv_path = dir.path().join("validation.csv");
    let out = bin()
        .args([
            "validate",
            "--quick",
            "--on",
            "cpu",
            "--device",
            profile_path.to_str().unwrap(),
            "--out",
            csv_path.to_str().unwrap(),
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let stdout = String::from_utf8(out).unwrap();
    assert!(stdout.contains("decode:") && stdout.contains("median |error|"), "{stdout}");
    assert!(!stdout.contains("warning: the layers ran on"), "same device as calibrated: {stdout}");
    let table = std::fs::read_to_string(&csv_path).unwrap();
    let mut r = csv::Reader::from_reader(table.as_bytes());
    let rows: Vec<csv::StringRecord> = r.records().map(|r| r.unwrap()).collect();
    assert!(rows.len() >= 3, "{table}");
    let headers = r.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    for row in &rows {
        let (m, p): (f64, f64) = (row[col("measured_s")].parse().unwrap(), row[col("predicted_s")].parse().unwrap());
        assert!(m > 0.0 && m.is_finite() && p > 0.0 && p.is_finite(), "{row:?}");
    }
}

#[cfg(feature = "torch")]
#[test]
fn a_truncated_calibrated_profile_names_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.json");
    std::fs::write(&path, "{\"name\": \"x\", \"kind\": \"cpu\", \"memory_bytes\": 1e9,").unwrap();
    let out =
        bin().args(["validate", "--quick", "--device", path.to_str().unwrap()]).assert().code(2).get_output().clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("p.json") && err.contains("line 1"), "{err}");
}
