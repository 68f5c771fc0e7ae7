//! What every example's `main` does around its own `run`: usage for
//! `-h`/`--help`, and errors printed as messages (not `Debug`) with the
//! example's name and a failing exit status.

use std::process::ExitCode;

/// The result of an example's `run`.
pub type Outcome = Result<(), Box<dyn std::error::Error>>;

/// Runs `run` on the command-line arguments (after the program name), or
/// prints `usage` if one of them is `-h` or `--help`.
pub fn main(name: &str, usage: &str, run: fn(&[String]) -> Outcome) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{usage}");
        return ExitCode::SUCCESS;
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{name}: {error}");
            ExitCode::FAILURE
        }
    }
}
