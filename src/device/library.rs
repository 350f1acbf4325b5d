//! The built-in device library: the profiles under `devices/`, compiled into the binary.

use super::DeviceProfile;

/// (name, JSON) of every built-in profile, in the order `devices` lists them.
const LIBRARY: &[(&str, &str)] = &[
    ("rtx3090", include_str!("../../devices/rtx3090.json")),
    ("rtx3090-datasheet", include_str!("../../devices/rtx3090-datasheet.json")),
    ("rtx3090-paper", include_str!("../../devices/rtx3090-paper.json")),
    ("rtx3070ti-laptop", include_str!("../../devices/rtx3070ti-laptop.json")),
    ("rtx3070ti-laptop-datasheet", include_str!("../../devices/rtx3070ti-laptop-datasheet.json")),
    ("rtx3070ti-laptop-paper", include_str!("../../devices/rtx3070ti-laptop-paper.json")),
    ("m1-pro", include_str!("../../devices/m1-pro.json")),
    ("m1-pro-datasheet", include_str!("../../devices/m1-pro-datasheet.json")),
    ("m1-pro-paper", include_str!("../../devices/m1-pro-paper.json")),
    ("jetson-orin-nano-super", include_str!("../../devices/jetson-orin-nano-super.json")),
    ("jetson-orin-nano-super-datasheet", include_str!("../../devices/jetson-orin-nano-super-datasheet.json")),
    ("jetson-orin-nano-super-paper", include_str!("../../devices/jetson-orin-nano-super-paper.json")),
    ("rpi5", include_str!("../../devices/rpi5.json")),
    ("rpi5-datasheet", include_str!("../../devices/rpi5-datasheet.json")),
    ("rpi5-paper", include_str!("../../devices/rpi5-paper.json")),
    ("a100-40gb", include_str!("../../devices/a100-40gb.json")),
    ("a100-80gb", include_str!("../../devices/a100-80gb.json")),
    ("a100-80gb-datasheet", include_str!("../../devices/a100-80gb-datasheet.json")),
    ("h100-sxm", include_str!("../../devices/h100-sxm.json")),
    ("rtx4090", include_str!("../../devices/rtx4090.json")),
    ("rtx4090-datasheet", include_str!("../../devices/rtx4090-datasheet.json")),
    ("jetson-orin-nano", include_str!("../../devices/jetson-orin-nano.json")),
    ("jetson-agx-orin-64gb", include_str!("../../devices/jetson-agx-orin-64gb.json")),
    ("jetson-agx-orin-64gb-datasheet", include_str!("../../devices/jetson-agx-orin-64gb-datasheet.json")),
    ("snapdragon-8-gen3", include_str!("../../devices/snapdragon-8-gen3.json")),
    ("m1", include_str!("../../devices/m1.json")),
    ("m1-datasheet", include_str!("../../devices/m1-datasheet.json")),
    ("m1-max", include_str!("../../devices/m1-max.json")),
    ("m1-max-datasheet", include_str!("../../devices/m1-max-datasheet.json")),
    ("m2", include_str!("../../devices/m2.json")),
    ("m2-pro", include_str!("../../devices/m2-pro.json")),
    ("m2-max", include_str!("../../devices/m2-max.json")),
    ("m3", include_str!("../../devices/m3.json")),
    ("m3-datasheet", include_str!("../../devices/m3-datasheet.json")),
    ("m3-pro", include_str!("../../devices/m3-pro.json")),
    ("m3-max", include_str!("../../devices/m3-max.json")),
    ("m3-max-datasheet", include_str!("../../devices/m3-max-datasheet.json")),
    ("m4", include_str!("../../devices/m4.json")),
    ("m4-pro", include_str!("../../devices/m4-pro.json")),
    ("m4-max", include_str!("../../devices/m4-max.json")),
];

/// A built-in profile by name (case-insensitive).
pub fn builtin(name: &str) -> Option<DeviceProfile> {
    LIBRARY.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(n, json)| {
        DeviceProfile::from_json(json, &format!("built-in device {n}")).expect("built-in profiles are valid (tested)")
    })
}

pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    LIBRARY.iter().map(|(n, _)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_profile_loads_and_is_named_after_its_file() {
        for (name, json) in LIBRARY {
            let p = DeviceProfile::from_json(json, name).unwrap();
            assert_eq!(&p.name, name);
        }
        assert!(LIBRARY.len() >= 28);
    }
}
