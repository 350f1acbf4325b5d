//! `calibrate` and `validate`: measure this machine through libtorch.

use super::{emit, CalibrateArgs, ValidateArgs};
use crate::device::resolve;
use crate::error::{Error, Result};
use crate::measure::{accuracy, calibrate, require, validate, MeasureOptions};
use crate::report::{csv_bytes, table::si, write_atomic};
use std::fmt::Write as _;

pub fn run_calibrate(args: CalibrateArgs, out: &mut dyn std::io::Write) -> Result<()> {
    require("calibrate")?;
    if args.threads == Some(0) {
        return Err(Error::Usage("--threads: expected at least 1".into()));
    }
    let opts = MeasureOptions { quick: args.quick, threads: args.threads, progress: true };
    let start = std::time::Instant::now();
    let p = calibrate(&opts)?;
    write_atomic(&args.out, p.to_json().as_bytes())?;
    let mut s = String::new();
    let _ =
        writeln!(s, "calibrated {} in {:.1} s -> {}", p.description, start.elapsed().as_secs_f64(), args.out.display());
    let _ = writeln!(
        s,
        "  main-memory bandwidth {}, f32 peak {}, bf16 peak {}, fixed cost per kernel {}",
        si(p.bandwidth_bytes_per_s, "B/s"),
        si(p.peak_flops(crate::dtype::DType::F32), "FLOP/s"),
        si(p.peak_flops(crate::dtype::DType::Bf16), "FLOP/s"),
        si(p.kernel_overhead_s, "s")
    );
    if let Some(w) = p.notes.get("warnings").and_then(|w| w.as_array()) {
        for w in w {
            let _ = writeln!(s, "  warning: {}", w.as_str().unwrap_or_default());
        }
    }
    emit(s.as_bytes(), None, out)
}

pub fn run_validate(args: ValidateArgs, out: &mut dyn std::io::Write) -> Result<()> {
    require("validate")?;
    let profile = resolve(&args.device)?;
    let opts = MeasureOptions { quick: args.quick, threads: args.threads, progress: true };
    let (rows, notes) = validate(&profile, &opts)?;
    write_atomic(&args.out, &csv_bytes(&rows))?;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<44} {:<8} {:>6} {:>10} {:>10} {:>8}",
        "workload", "phase", "tokens", "measured", "predicted", "error"
    );
    for r in &rows {
        let _ = writeln!(
            s,
            "{:<44} {:<8} {:>6} {:>10} {:>10} {:>+7.1}%",
            r.workload,
            r.phase,
            r.tokens,
            si(r.measured_s, "s"),
            si(r.predicted_s, "s"),
            100.0 * r.error
        );
    }
    for phase in ["prefill", "decode"] {
        let a = accuracy(&rows, phase);
        let _ = writeln!(
            s,
            "{phase}: {} workloads, median |error| {:.1}%, 90th percentile {:.1}%, {:.0}% within 10%, {:.0}% within 15%",
            a.workloads,
            100.0 * a.median_abs_error,
            100.0 * a.p90_abs_error,
            100.0 * a.within_10pct,
            100.0 * a.within_15pct
        );
    }
    for n in notes {
        let _ = writeln!(s, "{n}");
    }
    let _ = writeln!(s, "wrote {}", args.out.display());
    emit(s.as_bytes(), None, out)
}
