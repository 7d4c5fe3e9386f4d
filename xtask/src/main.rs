//! `cargo xtask`: see `xtask::main` and README.md.

fn main() -> std::process::ExitCode {
    xtask::main()
}
