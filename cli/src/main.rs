//! The `shmsg` command; the library `shmsg_cli` (`src/lib.rs`) is all of it.

fn main() -> std::process::ExitCode {
    shmsg_cli::main()
}
