//! `rooflinebench` linked with libtorch: `make build` builds the main binary without it and this
//! one beside it, which the main binary runs for `calibrate` and `validate` on libtorch.

fn main() {
    rooflinebench::cli::entry::main()
}
