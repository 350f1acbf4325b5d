//! `devices`: the built-in library.

use super::{emit, DevicesAction, DevicesArgs};
use crate::device::{builtin, builtin_names, resolve, DeviceProfile};
use crate::dtype::DType;
use crate::error::Result;
use crate::report::{csv_bytes, json_bytes, table::si, Format};
use serde::Serialize;
use std::fmt::Write;

#[derive(Serialize)]
struct Row {
    name: String,
    kind: String,
    origin: String,
    bandwidth_bytes_per_s: f64,
    f32_flop_per_s: f64,
    f16_flop_per_s: f64,
    ridge_f16_flop_per_byte: f64,
    memory_bytes: f64,
    usable_memory_bytes: f64,
    description: String,
}

fn row(p: &DeviceProfile) -> Row {
    let lower = |v: &dyn std::fmt::Debug| format!("{v:?}").to_lowercase();
    Row {
        name: p.name.clone(),
        kind: lower(&p.kind),
        origin: lower(&p.provenance.origin),
        bandwidth_bytes_per_s: p.bandwidth_bytes_per_s,
        f32_flop_per_s: p.peak_flops(DType::F32),
        f16_flop_per_s: p.peak_flops(DType::F16),
        ridge_f16_flop_per_byte: p.ridge_flop_per_byte(DType::F16),
        memory_bytes: p.memory_bytes,
        usable_memory_bytes: p.usable_memory_bytes,
        description: p.description.clone(),
    }
}

pub fn run(args: DevicesArgs, out: &mut dyn std::io::Write) -> Result<()> {
    if let Some(DevicesAction::Show { name }) = args.action {
        let p = resolve(&name)?;
        return emit(p.to_json().as_bytes(), None, out);
    }
    let rows: Vec<Row> = builtin_names().map(|n| row(&builtin(n).expect("listed names resolve"))).collect();
    let bytes = match args.format {
        Format::Csv => csv_bytes(&rows),
        Format::Json => json_bytes(&rows),
        Format::Table => {
            let mut s = String::new();
            let _ = writeln!(
                s,
                "{:<29} {:<4} {:<10} {:>10} {:>12} {:>12} {:>8} {:>9}",
                "name", "kind", "origin", "bandwidth", "f32 peak", "f16 peak", "ridge", "usable"
            );
            for r in &rows {
                let _ = writeln!(
                    s,
                    "{:<29} {:<4} {:<10} {:>10} {:>12} {:>12} {:>8.1} {:>9}",
                    r.name,
                    r.kind,
                    r.origin,
                    si(r.bandwidth_bytes_per_s, "B/s"),
                    si(r.f32_flop_per_s, "FLOP/s"),
                    si(r.f16_flop_per_s, "FLOP/s"),
                    r.ridge_f16_flop_per_byte,
                    si(r.usable_memory_bytes, "B")
                );
            }
            let _ =
                writeln!(s, "\nridge in FLOP/byte at f16; `rooflinebench devices show NAME` prints a whole profile.");
            s.into_bytes()
        }
    };
    emit(&bytes, None, out)
}
