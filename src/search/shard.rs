//! Shard files of `--shard K/N`: a slice's outcome and a fingerprint of everything it depends
//! on, so that `merge` refuses shards of another space, profile, version or options by name
//! instead of combining them into wrong results (or indices the space no longer has).

use super::{shard_range, Outcome, SearchOptions, SearchSpace, TOP_N};
use crate::device::DeviceProfile;
use crate::error::{Error, Result};
use crate::roofline::PlanChoice;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

/// What a shard's outcome depends on, each part hashed (SHA-256, hex) so a mismatch is named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fingerprint {
    /// The space as parsed (resolved dimensions, blocks, workload, constraints, objective):
    /// comments and layout of its file do not count, any value that changes a candidate does.
    pub space: String,
    /// The device profile as parsed.
    pub device: String,
    /// rooflinebench's version.
    pub version: String,
    /// The options that change scores (the plan choice).
    pub options: String,
}

impl Fingerprint {
    pub fn of(space: &SearchSpace, device: &DeviceProfile, plans: PlanChoice) -> Fingerprint {
        // Debug of the resolved structures is exact (floats print round-trip) and stable for one
        // version, which the fingerprint also holds.
        let canonical = format!(
            "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
            space.name,
            space.dims,
            space.blocks,
            space.workload,
            space.constraints,
            space.objective,
            space.rip_margin,
            space.quality_tpot_margin,
            space.tokens
        );
        Fingerprint {
            space: hex(&canonical),
            device: hex(&device.to_json()),
            version: env!("CARGO_PKG_VERSION").to_string(),
            // Shards are slices of the search order, which once was the index order.
            options: format!("plans={plans:?}, order=depth-fastest"),
        }
    }
}

fn hex(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShardFile {
    /// K and N of `--shard K/N`.
    shard: (u64, u64),
    fingerprint: Fingerprint,
    outcome: Outcome,
}

/// The JSON of shard `shard` of a run.
pub fn to_json(
    space: &SearchSpace,
    device: &DeviceProfile,
    opts: &SearchOptions,
    shard: (u64, u64),
    outcome: &Outcome,
) -> Vec<u8> {
    let file = ShardFile { shard, fingerprint: Fingerprint::of(space, device, opts.plans), outcome: outcome.clone() };
    crate::files::json_bytes(&file)
}

/// Refuses to replace `path` unless it is missing or a shard file this tool wrote (it parses as
/// one): a user's file of a shard's name is never replaced.
pub fn check_replaceable(path: &Path) -> Result<()> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    let ours = std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file())
        && crate::files::read_text(path, crate::files::read::MAX_SEARCH_FILE_BYTES)
            .is_ok_and(|t| serde_json::from_str::<ShardFile>(&t).is_ok());
    if ours {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "{}: not a shard file rooflinebench wrote, so it is not replaced; move it away or name another --out",
            crate::error::clip(&path.display().to_string())
        )))
    }
}

/// Reads shard `shard` (from its file name) for merging into a run of `space` on `device` with
/// `plans`; checks the fingerprint and that every count and index fits the slice.
pub fn read(
    path: &Path,
    shard: (u64, u64),
    space: &SearchSpace,
    device: &DeviceProfile,
    plans: PlanChoice,
) -> Result<Outcome> {
    let src = path.display().to_string();
    let text = crate::files::read_text(path, crate::files::read::MAX_SEARCH_FILE_BYTES)?;
    let file: ShardFile = serde_json::from_str(&text).map_err(|e| Error::json(path, &e))?;
    if file.shard != shard {
        let (k, n) = file.shard;
        return Err(Error::field(
            &src,
            "shard",
            format!("{}/{} as its file name says", shard.0, shard.1),
            format!("{k}/{n}"),
        ));
    }
    let want = Fingerprint::of(space, device, plans);
    let got = &file.fingerprint;
    let short = |s: &str| crate::error::clip(&s.chars().take(12).collect::<String>());
    let mismatch = |what: &str, of: String, got: &str, want: &str| {
        Err(Error::field(
            &src,
            format!("fingerprint.{what}"),
            format!("{} ({of}); rerun the shards", short(want)),
            format!("{} (a shard of another {what})", short(got)),
        ))
    };
    if got.space != want.space {
        return mismatch("space", format!("{} as it is now", space.source_name), &got.space, &want.space);
    }
    if got.device != want.device {
        return mismatch("device", format!("profile '{}' as it is now", device.name), &got.device, &want.device);
    }
    if got.version != want.version {
        return mismatch("version", "this rooflinebench".into(), &got.version, &want.version);
    }
    if got.options != want.options {
        return mismatch("options", "what merge runs".into(), &got.options, &want.options);
    }
    check_outcome(&file.outcome, &src, shard, space, device)?;
    check_scores(&file.outcome, &src, space, device, &[plans])?;
    Ok(file.outcome)
}

/// What merging relies on: the slice's counts add up and every index is a valid candidate of
/// the slice, each once.
pub(crate) fn check_outcome(
    o: &Outcome,
    src: &str,
    shard: (u64, u64),
    space: &SearchSpace,
    device: &DeviceProfile,
) -> Result<()> {
    let bad = |field: &str, expected: String, got: &dyn std::fmt::Display| Err(Error::field(src, field, expected, got));
    if o.space != space.name {
        return bad("outcome.space", format!("'{}'", space.name), &o.space);
    }
    if o.device != device.name {
        return bad("outcome.device", format!("'{}'", device.name), &o.device);
    }
    let (lo, hi) = shard_range(space.count(), Some(shard));
    let resolution = super::front_resolution(space.count());
    if o.front_resolution != resolution {
        let want = resolution.map_or("absent (an exact front)".to_string(), |r| format!("{r}"));
        return bad("outcome.front_resolution", want, &format!("{:?}", o.front_resolution));
    }
    if o.candidates != hi - lo {
        return bad("outcome.candidates", format!("{} (slice {lo}..{hi})", hi - lo), &o.candidates);
    }
    let tally = o.invalid.values().chain(o.rejected.values()).try_fold(o.feasible, |a, &b| a.checked_add(b));
    if tally != Some(o.candidates) {
        return bad(
            "outcome.feasible",
            "feasible + invalid + rejected = candidates".into(),
            &"counts that do not add up",
        );
    }
    if o.front.len() as u64 > o.feasible {
        return bad("outcome.front", format!("at most feasible ({}) members", o.feasible), &o.front.len());
    }
    if o.top.len() as u64 > o.feasible.min(TOP_N as u64) {
        return bad("outcome.top", format!("at most {} members", o.feasible.min(TOP_N as u64)), &o.top.len());
    }
    for (field, empty) in [("outcome.front", o.front.is_empty()), ("outcome.top", o.top.is_empty())] {
        if o.feasible > 0 && empty {
            return bad(field, "members when some candidate is feasible".into(), &"none");
        }
    }
    for (field, list, sorted) in [("outcome.front", &o.front, true), ("outcome.top", &o.top, false)] {
        let mut seen = std::collections::BTreeSet::new();
        for (i, s) in list.iter().enumerate() {
            let here = format!("{field}[{i}]");
            if !(lo..hi).contains(&space.position_of(s.index)) || space.candidate(s.index).is_err() {
                return bad(&format!("{here}.index"), format!("a valid candidate of slice {lo}..{hi}"), &s.index);
            }
            if !seen.insert(s.index) || (sorted && i > 0 && list[i - 1].index >= s.index) {
                return bad(&format!("{here}.index"), "each candidate once, in index order".into(), &s.index);
            }
            let figures = [s.rip, s.parameters, s.decode_tokens_per_s, s.memory_bytes, s.objective, s.predicted_loss];
            if figures.iter().any(|v| v.is_nan()) {
                return bad(&here, "numbers".into(), &"NaN");
            }
        }
    }
    // The top is the best TOP_N of the feasible candidates, best first: sorted, as long as it
    // can be, and holding every front member that ranks above its last.
    if o.top.len() as u64 != o.feasible.min(TOP_N as u64) {
        return bad("outcome.top", format!("{} members", o.feasible.min(TOP_N as u64)), &o.top.len());
    }
    if let Some(i) = (1..o.top.len()).find(|&i| super::better(&o.top[i - 1], &o.top[i]).is_ge()) {
        return bad(&format!("outcome.top[{i}]"), "members best first by the objective".into(), &o.top[i].index);
    }
    if let Some(last) = o.top.last() {
        let full = o.top.len() == TOP_N;
        let missing = o
            .front
            .iter()
            .find(|f| (!full || super::better(f, last).is_lt()) && !o.top.iter().any(|t| t.index == f.index));
        if let Some(f) = missing {
            return bad(
                "outcome.top",
                format!("front member #{} (it ranks among the best)", f.index),
                &"a top without it",
            );
        }
    }
    Ok(())
}

/// What only a real search gives: every member of the front and the top re-scored on `space`
/// and `device` (under one of `plans`) has exactly the figures recorded, and no member of the
/// front dominates another. A forged outcome (invented scores, a candidate slipped in) is
/// refused by name, even when its file's hash was forged too.
pub(crate) fn check_scores(
    o: &Outcome,
    src: &str,
    space: &SearchSpace,
    device: &DeviceProfile,
    plans: &[PlanChoice],
) -> Result<()> {
    let members: Vec<(&str, usize, &super::Scored)> = [("outcome.front", &o.front), ("outcome.top", &o.top)]
        .into_iter()
        .flat_map(|(field, list)| list.iter().enumerate().map(move |(i, s)| (field, i, s)))
        .collect();
    let mut first_wrong = None;
    for &plan in plans {
        let mut scorer = super::Scorer::new(space, device, plan);
        let wrong = members
            .iter()
            .find(|(_, _, s)| space.candidate(s.index).ok().and_then(|c| scorer.score(&c).ok()).as_ref() != Some(*s));
        match wrong {
            None => {
                first_wrong = None;
                break;
            }
            Some(w) => first_wrong = first_wrong.or(Some(*w)),
        }
    }
    if let Some((field, i, s)) = first_wrong {
        return Err(Error::field(
            src,
            format!("{field}[{i}]"),
            format!("the figures a search of {} on {} computes for candidate #{}", space.name, device.name, s.index),
            "other figures (the outcome was changed after the search)",
        ));
    }
    for (i, a) in o.front.iter().enumerate() {
        if let Some(b) = o.front.iter().find(|b| super::dominates(*b, a)) {
            return Err(Error::field(
                src,
                format!("outcome.front[{i}]"),
                "members no other member dominates",
                format!("#{} (dominated by #{})", a.index, b.index),
            ));
        }
    }
    Ok(())
}
