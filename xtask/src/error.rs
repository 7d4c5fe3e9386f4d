//! Every way an invocation fails other than by what it ran (a suite's outcome, a doctor
//! check, a benchmark target): one type, and the one exhaustive match that gives each its
//! exit code. Anything that is not an [`Error`] is the xtask's own failure.

use crate::exit_codes;
use crate::manifest::ManifestError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line asked for something that does not exist or cannot be: an unknown
    /// suite or group, a bad flag value, pytest arguments that take its report away, a git
    /// ref git does not know, reports that cannot be merged.
    #[error("{0}")]
    Usage(String),
    /// The suite manifest in the root `Cargo.toml` is invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The repository's own configuration, other than the manifest, cannot be used (`init`:
    /// no package's `pyproject.toml` could be read, or the guessed manifest would not load).
    #[error("{0}")]
    Configuration(String),
    /// uv, or a Python to install it with, is missing or unusable.
    #[error("{0}")]
    Toolchain(String),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => exit_codes::USAGE_ERROR,
            Error::Manifest(_) | Error::Configuration(_) => exit_codes::MANIFEST_ERROR,
            Error::Toolchain(_) => exit_codes::TOOLCHAIN_ERROR,
        }
    }
}

/// The exit code of a failed invocation: its [`Error`]'s, or `INTERNAL_ERROR` for anything
/// else (an I/O error writing a report, a bug).
pub fn exit_code(err: &anyhow::Error) -> u8 {
    err.downcast_ref::<Error>()
        .map_or(exit_codes::INTERNAL_ERROR, Error::exit_code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_its_code_and_anything_else_is_internal() {
        let code = |err: Error| exit_code(&anyhow::Error::from(err).context("while doing x"));
        assert_eq!(code(Error::Usage("u".into())), exit_codes::USAGE_ERROR);
        assert_eq!(
            code(Error::Configuration("c".into())),
            exit_codes::MANIFEST_ERROR
        );
        assert_eq!(
            code(Error::Toolchain("t".into())),
            exit_codes::TOOLCHAIN_ERROR
        );
        let io = std::io::Error::other("disk full");
        assert_eq!(exit_code(&io.into()), exit_codes::INTERNAL_ERROR);
    }
}
