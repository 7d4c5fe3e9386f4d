//! Every way an invocation ends other than well, for every subcommand: one type, and the
//! one exhaustive match ([`Error::exit_code`], with [`outcome_code`] for what ran) that
//! gives each its exit code. Commands return `anyhow::Result<()>`; anything that is not an
//! [`Error`] is the xtask's own failure (`INTERNAL_ERROR`).

use crate::exit_codes;
use crate::manifest::ManifestError;
use crate::outcome::Outcome;

/// A run record that cannot be read is named by the command line (`--rerun`, `replay`,
/// `trace`): a usage error.
impl From<xtask_data::run_record::LoadError> for Error {
    fn from(err: xtask_data::run_record::LoadError) -> Error {
        Error::Usage(err.0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line asked for something that does not exist or cannot be: an unknown
    /// suite or group, a bad flag value, pytest arguments that take its report away, a git
    /// ref git does not know, reports that cannot be merged.
    #[error("{0}")]
    Usage(String),
    /// A run archive (`--rerun FILE`, `replay FILE`, `trace FILE`) cannot be used: damaged,
    /// cut short, changed since it was exported, or holding a member that would land
    /// outside its directory. The message names the file and the member at fault.
    #[error("{0}")]
    Archive(String),
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
    /// What ran did not pass: the suites' deciding outcome (`test`, `test-<group>`, `smoke`,
    /// `ci`), or the class of doctor's most serious failed check. Already reported by the
    /// command (its terminal output and records).
    #[error("the run's outcome is {}", .0.name())]
    Outcome(Outcome),
    /// `bench`: a target was missed (unless `--no-targets`) or a benchmarked command failed.
    /// Already reported in its table and results.json.
    #[error("a benchmark target was missed or a benchmarked command failed")]
    BenchFailed,
    /// The suites ran but a report could not be written, or a sink failed: the xtask's own
    /// failure, already printed and kept in run.json's `error`.
    #[error("{}", .0.join("; "))]
    Reports(Vec<String>),
    /// `replay`: the replayed run's own exit code (not `OK`), its output already printed.
    #[error("the replayed run exited with {0}")]
    Replayed(u8),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::Archive(_) => exit_codes::USAGE_ERROR,
            Error::Manifest(_) | Error::Configuration(_) => exit_codes::MANIFEST_ERROR,
            Error::Toolchain(_) => exit_codes::TOOLCHAIN_ERROR,
            Error::Outcome(outcome) => outcome_code(*outcome),
            Error::BenchFailed => exit_codes::BENCH_FAILED,
            Error::Reports(_) => exit_codes::INTERNAL_ERROR,
            Error::Replayed(code) => *code,
        }
    }

    /// Whether the command has already shown and recorded this ending itself, so that
    /// nothing more is printed or written for it.
    pub fn reported(&self) -> bool {
        match self {
            Error::Outcome(_) | Error::BenchFailed | Error::Reports(_) | Error::Replayed(_) => true,
            Error::Usage(_)
            | Error::Archive(_)
            | Error::Manifest(_)
            | Error::Configuration(_)
            | Error::Toolchain(_) => false,
        }
    }
}

/// The exit code of an outcome: `OK` for a pass, else its class's code.
pub fn outcome_code(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Passed => exit_codes::OK,
        Outcome::Failed => exit_codes::TESTS_FAILED,
        Outcome::CollectionError => exit_codes::COLLECTION_ERROR,
        Outcome::NoTests => exit_codes::NO_TESTS_COLLECTED,
        Outcome::EnvironmentError => exit_codes::ENVIRONMENT_ERROR,
        Outcome::ToolchainError => exit_codes::TOOLCHAIN_ERROR,
        Outcome::UsageError => exit_codes::USAGE_ERROR,
        Outcome::Interrupted => exit_codes::INTERRUPTED,
        Outcome::Crashed => exit_codes::CRASHED,
        Outcome::Timeout => exit_codes::TIMED_OUT,
        Outcome::PrerequisiteUnavailable => exit_codes::PREREQUISITE_UNAVAILABLE,
        Outcome::ServiceError => exit_codes::SERVICE_ERROR,
    }
}

/// `Ok` for a pass, else the outcome as an [`Error`].
pub fn from_outcome(outcome: Outcome) -> Result<(), Error> {
    match outcome {
        Outcome::Passed => Ok(()),
        other => Err(Error::Outcome(other)),
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
    fn every_outcome_has_a_precedence_and_a_distinct_code() {
        let mut codes: Vec<u8> = Outcome::PRECEDENCE
            .iter()
            .map(|o| outcome_code(*o))
            .collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), Outcome::PRECEDENCE.len());
    }

    #[test]
    fn each_error_has_its_code_and_anything_else_is_internal() {
        let code = |err: Error| exit_code(&anyhow::Error::from(err).context("while doing x"));
        assert_eq!(code(Error::Usage("u".into())), exit_codes::USAGE_ERROR);
        assert_eq!(code(Error::Archive("a".into())), exit_codes::USAGE_ERROR);
        assert_eq!(
            code(Error::Configuration("c".into())),
            exit_codes::MANIFEST_ERROR
        );
        assert_eq!(
            code(Error::Toolchain("t".into())),
            exit_codes::TOOLCHAIN_ERROR
        );
        assert_eq!(
            code(Error::Outcome(Outcome::Failed)),
            exit_codes::TESTS_FAILED
        );
        assert_eq!(code(Error::BenchFailed), exit_codes::BENCH_FAILED);
        assert_eq!(
            code(Error::Reports(vec!["x".into()])),
            exit_codes::INTERNAL_ERROR
        );
        assert_eq!(
            code(Error::Replayed(exit_codes::TESTS_FAILED)),
            exit_codes::TESTS_FAILED
        );
        assert_eq!(from_outcome(Outcome::Passed).ok(), Some(()));
        let io = std::io::Error::other("disk full");
        assert_eq!(exit_code(&io.into()), exit_codes::INTERNAL_ERROR);
    }
}
