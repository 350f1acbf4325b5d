fn main() {
    rooflinebench::cli::entry::main()
}
