//! Why a command failed ([`Failure`]), shared by every command: `main`
//! prints it and exits with the code `EXIT_CODES` gives it.

use shmsg::Error;

/// Why a command failed; decides the message and the exit code.
pub enum Failure {
    /// An error from the library.
    Shmsg(Error),
    /// An error from the library, and what the user can do about it.
    Hint {
        /// The error.
        error: Error,
        /// What to do.
        hint: String,
    },
    /// A received message was not the one sent.
    Verify(String),
    /// The command line is wrong, and how.
    Usage(String),
    /// The input on stdin is malformed (a length-prefixed frame cut short),
    /// and how.
    Input(String),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure::Shmsg(error)
    }
}

/// The exit code of a library error, as `EXIT_CODES` (in `lib.rs`) lists
/// them.
pub fn exit_code(error: &Error) -> u8 {
    match error {
        Error::Disconnected => 3,
        Error::RoleTaken(_) => 4,
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::AddrInUse => 4,
        Error::LayoutMismatch { .. } | Error::NotInitialized => 5,
        Error::InvalidEndpoint { .. } | Error::InvalidName { .. } | Error::InvalidConfig(_) => 2,
        Error::Timeout => 7,
        _ => 1,
    }
}
