//! The `graft` binary.

fn main() -> std::process::ExitCode {
    graft::cli::main()
}
