fn main() {
    std::process::exit(wasmpod_shim::cli::main());
}
