//! Transferred profiles: an engine profile of one device carried to a sibling that has no public
//! runs of its own. The sibling's fitted efficiencies are fractions of its ceilings and its fixed
//! costs belong to the engine and backend, so both carry over onto the target's own datasheet
//! ceilings (bandwidth, peaks, memory). A fit replaces the peaks with the fastest rate it found,
//! so the peaks carry over as that rate times the ratio of the two datasheets' peaks; the few
//! rates a profile keeps in absolute seconds are rescaled by the ceiling they depend on.

use super::{DeviceProfile, Origin};
use crate::dtype::DType;
use crate::error::{Error, Result};

/// The engine a sibling lends, or why it has none to lend.
pub fn engine_of(sibling: &DeviceProfile) -> Result<&super::Engine> {
    sibling.engine.as_ref().ok_or_else(|| {
        Error::Usage(format!(
            "--from {}: expected a profile of an engine (expected or calibrated llama.cpp), got {}",
            sibling.name,
            sibling.provenance.origin.label()
        ))
    })
}

/// `sibling`'s engine, efficiencies and fixed costs on `base`'s ceilings, named `name`;
/// `sibling_datasheet` holds the sibling's own datasheet ceilings.
pub fn transfer(
    sibling: &DeviceProfile,
    sibling_datasheet: &DeviceProfile,
    base: &DeviceProfile,
    name: String,
) -> Result<DeviceProfile> {
    let engine = engine_of(sibling)?.clone();
    if !sibling_datasheet.is_upper_bound() {
        return Err(Error::Usage(format!(
            "--from-datasheet {}: expected the sibling's datasheet profile, got {}",
            sibling_datasheet.name,
            sibling_datasheet.kind_label()
        )));
    }
    if !base.is_upper_bound() {
        return Err(Error::Usage(format!(
            "--base {}: expected a datasheet profile (its ceilings are what the transfer keeps), got {}",
            base.name,
            base.kind_label()
        )));
    }
    let mut p = base.clone();
    p.name = name;
    let plain = base.description.trim_end_matches(", datasheet").trim_end_matches(" (datasheet)");
    p.description = format!("{plain} running {} ({}), transferred from {}", engine.name, engine.backend, sibling.name);
    p.kernel_overhead_s = sibling.kernel_overhead_s;
    p.expert_overhead_s = sibling.expert_overhead_s;
    p.pass_overhead_s = sibling.pass_overhead_s;
    // Each format's fitted peak moves with the datasheets' ratio for that format.
    p.peak_flops = sibling
        .peak_flops
        .iter()
        .map(|(d, v)| (*d, v * base.peak_flops(*d) / sibling_datasheet.peak_flops(*d)))
        .collect();
    // Seconds per attention score are work on the compute units; seconds per byte a score
    // reads are memory time: each scales with its own datasheet ceiling.
    let compute = sibling_datasheet.peak_flops(DType::F32) / base.peak_flops(DType::F32);
    let memory = sibling.bandwidth_bytes_per_s / base.bandwidth_bytes_per_s;
    let rescale = |t: &super::EfficiencyTable| {
        let mut t = t.clone();
        t.scale_score_work_s(compute);
        t.score_kv_byte_s *= memory;
        t.past_cache_byte_s *= memory;
        t
    };
    p.efficiency = sibling.efficiency.iter().map(|(c, t)| (*c, rescale(t))).collect();
    p.efficiency_by_format = sibling
        .efficiency_by_format
        .iter()
        .map(|(d, tables)| (*d, tables.iter().map(|(c, t)| (*c, rescale(t))).collect()))
        .collect();
    p.product_efficiency = sibling.product_efficiency.iter().map(|(ty, t)| (*ty, rescale(t))).collect();
    p.engine = Some(engine);
    p.error_bands = None;
    // Thread factors are the sibling's cores', not the target's.
    p.thread_scaling = Vec::new();
    p.provenance.origin = Origin::Expected;
    p.provenance.source = format!(
        "rooflinebench devices transfer: {}'s fitted efficiencies and fixed costs ({}) on the {} profile's ceilings",
        sibling.name, sibling.provenance.source, base.name
    );
    p.provenance.date = sibling.provenance.date.clone();
    p.notes.clear();
    p.notes.insert("transferred_from".into(), serde_json::Value::from(sibling.name.clone()));
    p.notes.insert(
        "transfer_rule".into(),
        serde_json::Value::from(format!(
            "efficiencies (fractions of the ceilings) and costs per kernel and pass as {} fitted them; \
             fitted peaks times the datasheet peaks' ratio ({} over {}); seconds per attention score \
             scaled by the datasheet f32 peaks ({compute:.3}x), seconds per KV byte by the bandwidths \
             ({memory:.3}x)",
            sibling.name, base.name, sibling_datasheet.name
        )),
    );
    Ok(p)
}
