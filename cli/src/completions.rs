//! `shmsg completions SHELL`: a completion script for bash, zsh, fish,
//! elvish or PowerShell, written by `clap_complete` from the command-line
//! definition itself, so that it always offers the commands and flags this
//! build has.

use clap::Command;
pub use clap_complete::Shell;

/// Writes the completion script for `shell` to stdout.
pub fn print(mut cli: Command, shell: Shell) {
    clap_complete::generate(shell, &mut cli, "shmsg", &mut std::io::stdout());
}
