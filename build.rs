//! With the `torch` feature: put libtorch's folder on the binaries' run-time search path
//! (torch-sys does not, and without it every test and the CLI exit 127 at start), and record
//! the libtorch version for calibrated profiles.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
    let version = std::env::var("LIBTORCH")
        .ok()
        .and_then(|dir| std::fs::read_to_string(std::path::Path::new(&dir).join("version.py")).ok())
        .and_then(|text| {
            text.lines().find(|l| l.starts_with("__version__")).and_then(|l| l.split('\'').nth(1)).map(String::from)
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=ROOFLINEBENCH_LIBTORCH_VERSION={version}");
}
