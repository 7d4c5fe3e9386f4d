//! How a suite ended, and which ending decides a run (its exit code is `error::outcome_code`).

/// The one outcome every suite ends with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// pytest ran and every selected test passed (or was skipped).
    Passed,
    /// pytest ran and some tests failed or errored.
    Failed,
    /// pytest could not import a test module.
    CollectionError,
    /// pytest collected no tests (its exit 5).
    NoTests,
    /// The environment could not be built, pytest is not importable in it, or a test
    /// module imports a third-party module the suite's requirements lack.
    EnvironmentError,
    /// uv, or a Python it can use, is missing or unusable.
    ToolchainError,
    /// pytest rejected its command line (its exit 4).
    UsageError,
    /// Ctrl-C or SIGTERM stopped the run (or pytest reported an interruption): the suite
    /// was stopped, or never started.
    Interrupted,
    /// pytest died by a signal or an internal error (its exit 3), or wrote no report.
    Crashed,
    /// The suite ran longer than its timeout and was stopped.
    Timeout,
    /// A prerequisite the suite declares (`requires-env`) is missing; it did not run.
    PrerequisiteUnavailable,
    /// A service the suite needs (`services` in Cargo.toml) exited at start, never became
    /// ready before its deadline, or found its port taken; the suite did not run.
    ServiceError,
}

impl Outcome {
    /// Every outcome, in precedence order: when suites end differently, the invocation
    /// exits with the code of the first outcome in this list that any suite had.
    /// "Could not run" outranks "ran and failed": a run that could not complete hides
    /// what it did not run, so the machine is fixed first.
    pub const PRECEDENCE: [Outcome; 12] = [
        Outcome::Interrupted,
        Outcome::ToolchainError,
        Outcome::ServiceError,
        Outcome::EnvironmentError,
        Outcome::Crashed,
        Outcome::Timeout,
        Outcome::UsageError,
        Outcome::CollectionError,
        Outcome::Failed,
        Outcome::NoTests,
        Outcome::PrerequisiteUnavailable,
        Outcome::Passed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::CollectionError => "collection-error",
            Outcome::NoTests => "no-tests",
            Outcome::EnvironmentError => "environment-error",
            Outcome::ToolchainError => "toolchain-error",
            Outcome::UsageError => "usage-error",
            Outcome::Interrupted => "interrupted",
            Outcome::Crashed => "crashed",
            Outcome::Timeout => "timeout",
            Outcome::PrerequisiteUnavailable => "prerequisite-unavailable",
            Outcome::ServiceError => "service-error",
        }
    }

    /// The outcome that decides the exit code: without `require_all` (`--require-all`), a
    /// suite whose prerequisite is unavailable is reported but does not fail the run.
    pub fn deciding(outcomes: impl IntoIterator<Item = Outcome>, require_all: bool) -> Outcome {
        Outcome::overall(
            outcomes
                .into_iter()
                .filter(|o| require_all || *o != Outcome::PrerequisiteUnavailable),
        )
    }

    /// The outcome that decides the exit code of a run that ended with `outcomes`.
    pub fn overall(outcomes: impl IntoIterator<Item = Outcome>) -> Outcome {
        let outcomes: Vec<Outcome> = outcomes.into_iter().collect();
        Outcome::PRECEDENCE
            .into_iter()
            .find(|o| outcomes.contains(o))
            .unwrap_or(Outcome::Passed)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unavailable_prerequisite_decides_only_when_all_are_required() {
        let outcomes = [Outcome::Passed, Outcome::PrerequisiteUnavailable];
        assert_eq!(Outcome::deciding(outcomes, false), Outcome::Passed);
        assert_eq!(
            Outcome::deciding(outcomes, true),
            Outcome::PrerequisiteUnavailable
        );
        assert_eq!(
            Outcome::deciding([Outcome::ServiceError, Outcome::Failed], false),
            Outcome::ServiceError
        );
    }

    #[test]
    fn could_not_run_outranks_failed() {
        let overall =
            Outcome::overall([Outcome::Failed, Outcome::EnvironmentError, Outcome::Passed]);
        assert_eq!(overall, Outcome::EnvironmentError);
        assert_eq!(
            Outcome::overall([Outcome::Passed, Outcome::Passed]),
            Outcome::Passed
        );
        assert_eq!(
            Outcome::overall([Outcome::NoTests, Outcome::Failed]),
            Outcome::Failed
        );
    }
}
