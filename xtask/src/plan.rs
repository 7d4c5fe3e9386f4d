//! Turning a suite into the exact commands that run it: a pure function of the suite, the
//! layout and the [`Facts`] gathered before, so the plan can be tested (and shown) without
//! running anything or reading any file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::environment::{plan_env, EnvPlan};
use crate::facts::Facts;
use crate::invocation::Invocation;
use crate::manifest::{Split, Suite};
use crate::outcome::Outcome;
use crate::paths::Layout;

/// Everything needed to run one suite.
#[derive(Clone, Debug)]
pub struct SuitePlan {
    pub suite: Suite,
    /// The environment it runs in, built (when its inputs changed) as its own step before
    /// pytest, so a broken environment is never mistaken for a failing test.
    pub env: EnvPlan,
    /// pytest, run from the environment directly (no second `uv run`).
    pub test: Invocation,
    /// The arguments given after `--`, also part of `test`: the classifier blames them
    /// (and not the manifest) for what pytest rejects in them.
    pub pytest_args: Vec<String>,
    /// Where pytest writes its own JUnit XML.
    pub raw_junit: PathBuf,
    /// Where the progress plugin records the test that is running (see
    /// [`crate::progress`]).
    pub progress: PathBuf,
    /// Where the xtask writes the progress plugin, on the pytest step's PYTHONPATH.
    pub progress_plugin: PathBuf,
    pub junit: PathBuf,
    /// The suite's log, written as it runs.
    pub log: PathBuf,
    /// The whole suite (environment and pytest) is stopped after this long.
    pub timeout: Duration,
    /// Why the suite cannot run at all; it then ends with this outcome without a step.
    pub blocked: Option<Blocked>,
    /// The slice of the suite's tests this run runs (`--partition`).
    pub partition: Option<Partition>,
    /// How many times failed tests are run again, and whether a flaky test fails the suite.
    pub retries: u32,
    pub flaky_fails: bool,
    /// Where the plugin notes which tests failed and which ran.
    pub results: PathBuf,
    /// Where the plugin notes the tests pytest was to run.
    pub collected: PathBuf,
    /// Where the plugin writes pytest's rootdir and deselected count.
    pub session: PathBuf,
    /// What the manifest or `--split` asks: into how many slices its tests are cut, run
    /// at once in its one environment.
    pub split: Split,
    /// How many slices it runs as, decided before the run ([`decide_splits`]): 1 is not
    /// split.
    pub slices: u32,
}

impl SuitePlan {
    /// The plan of slice `index` (1-based) of `count` of this suite: the same command in
    /// the same environment, keeping only its share of the test files (the plugin's
    /// `_file_slots`, by the recorded durations `durations::prepare_splits` gave the plan,
    /// else by size; tests outside them by the hash partition), with files of its own
    /// (pytest's report, the plugin's notes, the log) beside the suite's.
    pub fn slice(&self, index: u32, count: u32) -> SuitePlan {
        let mut slice = self.clone();
        let own = |path: &Path| {
            let mut name = path.as_os_str().to_owned();
            name.push(format!(".slice{index}"));
            PathBuf::from(name)
        };
        slice.raw_junit = own(&self.raw_junit);
        slice.progress = own(&self.progress);
        slice.results = own(&self.results);
        slice.collected = own(&self.collected);
        slice.session = own(&self.session);
        slice.log = own(&self.log);
        for arg in &mut slice.test.argv {
            if arg.starts_with("--junitxml=") {
                *arg = format!("--junitxml={}", slice.raw_junit.display());
            }
        }
        for (key, value) in &mut slice.test.env {
            let file = match key.as_str() {
                crate::progress::FILE_ENV => &slice.progress,
                crate::progress::RESULTS_ENV => &slice.results,
                crate::progress::COLLECTED_ENV => &slice.collected,
                crate::progress::SESSION_ENV => &slice.session,
                _ => continue,
            };
            *value = file.to_string_lossy().into_owned();
        }
        slice.set_partition(Partition {
            mode: PartitionMode::Hash,
            index,
            count,
        });
        slice.test.env.push((SPLIT_FILES_ENV.into(), "1".into()));
        slice.slices = 1;
        slice
    }

    /// Runs only the slice `partition` of the suite's tests (the plugin deselects the rest,
    /// at collection). A `durations:K/N` slice also needs the suite's durations where the
    /// plugin reads them (`durations::prepare`); the plugin refuses to run without.
    pub fn set_partition(&mut self, partition: Partition) {
        self.partition = Some(partition);
        self.test
            .env
            .push((PARTITION_ENV.into(), partition.plugin_value()));
    }
}

#[derive(Clone, Debug)]
pub struct Blocked {
    pub outcome: Outcome,
    pub detail: String,
    /// Its JUnit case is `skipped` rather than an error: a prerequisite that is unavailable
    /// without `--require-all`.
    pub skipped: bool,
}

/// `--partition hash:K/N` or `durations:K/N`: the K-th (1-based) of N deterministic slices
/// of each suite's tests; the N slices together hold every test once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    pub mode: PartitionMode,
    pub index: u32,
    pub count: u32,
}

/// How tests are dealt to slices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionMode {
    /// By a hash (crc32) of each test's node id: no input but the node id, so each test's
    /// slice never depends on the others; slices are even in count, not in time.
    Hash,
    /// By recorded durations, longest first onto the least-loaded slice (LPT), over the
    /// tests pytest collected; ties broken by node id (see the `durations` module).
    Durations,
}

/// The most slices a suite may be cut into (`--partition hash:K/N`, `list --partitions N`):
/// far more than any CI fleet runs at once, and small enough that a matrix of every suite
/// times every slice stays a few hundred kilobytes instead of exhausting memory.
pub const MAX_PARTITIONS: u32 = 256;

/// Set in the slices of a split suite: the plugin assigns whole test files to the slices
/// (balanced by size), so that each slice collects only its own files, and only tests
/// outside them by the hash of their node id.
pub const SPLIT_FILES_ENV: &str = "XTASK_SPLIT_FILES";

/// The variable through which the plugin learns the partition: `K/N` (hash) or
/// `durations:K/N`.
pub const PARTITION_ENV: &str = "XTASK_PARTITION";

impl Partition {
    pub fn parse(text: &str) -> Result<Partition, String> {
        let bad = || {
            format!(
                "`{text}` is not a partition: use `hash:K/N` or `durations:K/N` with 1 <= K <= N, \
                 e.g. `hash:2/4`"
            )
        };
        let (mode, spec) = if let Some(spec) = text.strip_prefix("hash:") {
            (PartitionMode::Hash, spec)
        } else if let Some(spec) = text.strip_prefix("durations:") {
            (PartitionMode::Durations, spec)
        } else {
            return Err(bad());
        };
        let (k, n) = spec.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            k.parse::<u32>().map_err(|_| bad())?,
            n.parse::<u32>().map_err(|_| bad())?,
        );
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        if count > MAX_PARTITIONS {
            return Err(format!(
                "`{text}` has {count} partitions; at most {MAX_PARTITIONS} are allowed"
            ));
        }
        Ok(Partition { mode, index, count })
    }

    /// What `$XTASK_PARTITION` holds for the plugin.
    pub fn plugin_value(&self) -> String {
        match self.mode {
            PartitionMode::Hash => format!("{}/{}", self.index, self.count),
            PartitionMode::Durations => format!("durations:{}/{}", self.index, self.count),
        }
    }
}

impl std::fmt::Display for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.mode {
            PartitionMode::Hash => "hash",
            PartitionMode::Durations => "durations",
        };
        write!(f, "{mode}:{}/{}", self.index, self.count)
    }
}

/// What a run's command line changes in each of its plans, and what blocks every suite.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// The arguments after `--`.
    pub pytest_args: Vec<String>,
    /// `--no-capture`: pytest leaves the tests' output alone (`-s`) and Python writes it at
    /// once (`PYTHONUNBUFFERED`), so it can stream to the terminal.
    pub no_capture: bool,
    pub timeout: Option<Duration>,
    pub partition: Option<Partition>,
    pub retries: Option<u32>,
    pub flaky_fails: bool,
    /// `--split`: overrides every suite's `split`.
    pub split: Option<Split>,
    /// Why no suite can run (uv is missing), unless a suite's own reason says more.
    pub blocked: Option<Blocked>,
}

/// The plan of `suite` in a run with `options`: the manifest's plan, then the command line.
pub fn plan_run(
    suite: &Suite,
    layout: &Layout,
    uv: &Path,
    facts: &Facts,
    options: &RunOptions,
) -> SuitePlan {
    let pytest_args: Vec<String> = options
        .no_capture
        .then(|| "-s".to_string())
        .into_iter()
        .chain(options.pytest_args.iter().cloned())
        .collect();
    let mut plan = plan_suite(suite, layout, uv, &pytest_args, facts);
    if options.no_capture {
        plan.test
            .env
            .push(("PYTHONUNBUFFERED".to_string(), "1".to_string()));
    }
    if let Some(timeout) = options.timeout {
        plan.timeout = timeout;
    }
    if let Some(partition) = options.partition {
        plan.set_partition(partition);
    }
    if let Some(retries) = options.retries {
        plan.retries = retries;
    }
    plan.flaky_fails = options.flaky_fails;
    if let Some(split) = options.split {
        plan.split = split;
    }
    plan.slices = match plan.split {
        Split::Count(n) => n,
        Split::Auto => 1,
    };
    // A missing prerequisite says more than a missing uv: the suite could not run anyway.
    if plan.blocked.is_none() {
        plan.blocked = options.blocked.clone();
    }
    plan
}

pub fn plan_suite(
    suite: &Suite,
    layout: &Layout,
    uv: &Path,
    pytest_args: &[String],
    facts: &Facts,
) -> SuitePlan {
    let raw_junit = layout.raw_junit(&suite.name);
    let env = plan_env(suite, layout, uv, facts);

    // The environment's own `pytest` script, as `uv run ... -- pytest` runs it: unlike
    // `python -m pytest` it does not put the suite's directory first on `sys.path`.
    // No `--rootdir`: pytest finds it as it does for the hand-written command, so test ids
    // are the repository's own.
    let mut test = vec![
        env.bin().join("pytest").to_string_lossy().into_owned(),
        // xunit1 is the only family in which pytest writes `file` and `line`.
        "-o".into(),
        "junit_family=xunit1".into(),
        "-o".into(),
        "junit_logging=all".into(),
        // A passing test's output stays in the log only: kept for the XML, pytest would
        // hold all of it in memory until the session ends (twice the hand command's peak
        // for a test that prints a lot).
        "-o".into(),
        "junit_log_passing_tests=false".into(),
        format!("--junitxml={}", raw_junit.display()),
        // Records the running test, so a timeout can name it (crate::progress).
        "-p".into(),
        crate::progress::PLUGIN_MODULE.into(),
    ];
    if let Some(markers) = &suite.markers {
        test.extend(["-m".into(), markers.clone()]);
    }
    let narrowed = narrow(suite, facts, pytest_args);
    if !narrowed.targeted {
        test.extend(suite.paths.iter().cloned());
    }
    test.extend(narrowed.args);

    let progress = layout.progress_file(&suite.name);
    let mut vars = suite_env(suite, layout);
    // The plugin's directory comes last: it must not shadow any module of the suite.
    let pythonpath = &mut vars[0].1;
    if !pythonpath.is_empty() {
        pythonpath.push(':');
    }
    pythonpath.push_str(&layout.progress_plugin_dir().to_string_lossy());
    vars.push((
        crate::progress::FILE_ENV.into(),
        progress.to_string_lossy().into_owned(),
    ));
    let results = layout.work_dir().join(format!("{}.results", suite.name));
    vars.push((
        crate::progress::RESULTS_ENV.into(),
        results.to_string_lossy().into_owned(),
    ));
    let collected = layout.work_dir().join(format!("{}.collected", suite.name));
    vars.push((
        crate::progress::COLLECTED_ENV.into(),
        collected.to_string_lossy().into_owned(),
    ));
    let session = layout.work_dir().join(format!("{}.session", suite.name));
    vars.push((
        crate::progress::SESSION_ENV.into(),
        session.to_string_lossy().into_owned(),
    ));
    // What `uv run` sets: the environment is active for anything the tests start.
    vars.push((
        "VIRTUAL_ENV".into(),
        env.path.to_string_lossy().into_owned(),
    ));
    SuitePlan {
        suite: suite.clone(),
        test: Invocation {
            argv: test,
            // pytest's paths are relative to the suite's directory.
            cwd: layout.root.join(&suite.dir),
            env: vars,
            env_remove: vec![],
            path_prepend: Some(env.bin()),
        },
        env,
        pytest_args: pytest_args.to_vec(),
        raw_junit,
        progress,
        progress_plugin: layout.progress_plugin_dir(),
        junit: layout.suite_junit(&suite.name),
        log: layout.suite_log(&suite.name),
        timeout: suite.timeout,
        blocked: missing_prerequisite(suite, facts),
        partition: None,
        retries: suite.retries,
        flaky_fails: false,
        results,
        collected,
        session,
        split: suite.split,
        slices: match suite.split {
            Split::Count(n) => n,
            Split::Auto => 1,
        },
    }
}

/// Decides how many slices each suite split `auto` runs as, from `previous` (each suite's
/// duration in seconds in the latest run) and `jobs`. The rule: a suite whose recorded
/// duration `d` is longer than the run's share of one worker, `total / jobs` (`total` the
/// recorded durations of every suite of this run), would run on alone while other workers
/// sit idle at the end; it is cut into `ceil(d / (total / jobs))` slices, at most `jobs`.
/// No split without a duration for every suite of the run, with one job, or with a
/// `--partition` (a slice is not sliced again). A fixed `split = N` is kept as it is.
pub fn decide_splits(
    plans: &mut [SuitePlan],
    previous: &std::collections::HashMap<String, f64>,
    jobs: usize,
) {
    let recorded: Option<Vec<f64>> = plans
        .iter()
        .map(|p| previous.get(&p.suite.name).copied())
        .collect();
    let total: f64 = recorded.iter().flatten().sum();
    for (i, plan) in plans.iter_mut().enumerate() {
        if plan.partition.is_some() {
            plan.slices = 1;
            continue;
        }
        if plan.split != Split::Auto {
            continue;
        }
        plan.slices = match &recorded {
            Some(durations) if jobs > 1 && total > 0.0 => {
                let share = total / jobs as f64;
                let d = durations[i];
                if d > share {
                    ((d / share).ceil() as usize).min(jobs) as u32
                } else {
                    1
                }
            }
            _ => 1,
        };
    }
}

/// pytest options whose value is the next argument (so it is never taken for a path).
const VALUE_OPTIONS: &[&str] = &[
    "-k",
    "-m",
    "-p",
    "-o",
    "-c",
    "-W",
    "-r",
    "--rootdir",
    "--deselect",
    "--ignore",
    "--ignore-glob",
    "--basetemp",
    "--confcutdir",
    "--durations",
    "--maxfail",
    "--tb",
    "--capture",
    "--log-level",
    "--import-mode",
    "--override-ini",
    "--config-file",
    "--log-file",
    "--cov",
    "--timeout",
    "-n",
];

/// The arguments after `--` for one suite. An argument that names a path or node id
/// (`tests/test_x.py::test_y`) that exists (as `facts` found) in the suite's directory, or
/// below the root and inside the suite's directory (rewritten relative to it), narrows the
/// suite to it: the manifest's `paths` are then not passed. A path of another suite is not
/// passed.
pub struct Narrowed {
    pub args: Vec<String>,
    /// Some argument names tests of this suite.
    pub targeted: bool,
    /// Arguments name tests, and none of them this suite's.
    pub elsewhere: bool,
}

pub fn narrow(suite: &Suite, facts: &Facts, args: &[String]) -> Narrowed {
    let dir = Path::new(&suite.dir);
    let mut out = Vec::new();
    let (mut mine, mut theirs) = (0, 0);
    let mut value_next = false;
    for arg in args {
        if value_next || arg.starts_with('-') {
            value_next = !arg.contains('=') && VALUE_OPTIONS.contains(&arg.as_str());
            out.push(arg.clone());
            continue;
        }
        let (path, rest) = match arg.find("::") {
            Some(at) => arg.split_at(at),
            None => (arg.as_str(), ""),
        };
        if facts.exists(&dir.join(path)) {
            mine += 1;
            out.push(arg.clone());
        } else if facts.exists(Path::new(path)) {
            match Path::new(path).strip_prefix(dir) {
                Ok(inside) => {
                    mine += 1;
                    let inside = if inside.as_os_str().is_empty() {
                        Path::new(".")
                    } else {
                        inside
                    };
                    out.push(format!("{}{rest}", inside.display()));
                }
                // Another suite's test: not this suite's to run.
                Err(_) => theirs += 1,
            }
        } else {
            // Not a path anywhere: pytest says what it makes of it.
            out.push(arg.clone());
        }
    }
    Narrowed {
        args: out,
        targeted: mine > 0,
        elsewhere: mine == 0 && theirs > 0,
    }
}

/// Rejects arguments after `--` that would take pytest's JUnit report away from the xtask:
/// `--junitxml`/`--junit-xml` (pytest would write there, not where the xtask reads, and the
/// suite would end `crashed`), `-p no:junitxml` (no report at all), and `-o`/`--override-ini`
/// of `junit_family` (another family has no `file` and `line`) or `junit_logging` (the
/// report would lose the tests' output). Other `junit_*` options are harmless.
pub fn check_pytest_args(args: &[String], layout: &Layout) -> Result<(), crate::error::Error> {
    let Some(option) = report_option(args) else {
        return Ok(());
    };
    let out = layout.out_dir();
    Err(crate::error::Error::Usage(format!(
        "`{option}` after `--` is not allowed: the xtask owns pytest's JUnit report (`--junitxml`, `--junit-xml`, `-p no:junitxml`, `-o junit_family`, `-o junit_logging`) and reads it to classify each suite; the report is {} (every suite) and {}/<suite>.xml (one suite)",
        layout.display(&out.join("junit.xml")),
        layout.display(&out.join("junit")),
    )))
}

/// The first option in `args` that takes the JUnit report away, as it was written.
fn report_option(args: &[String]) -> Option<String> {
    const INI: [&str; 2] = ["junit_family=", "junit_logging="];
    let ini = |v: &str| INI.iter().any(|k| v.trim_start().starts_with(k));
    // pytest's own `--` ends its options: what follows are paths.
    let words: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .take_while(|a| *a != "--")
        .collect();
    for (i, word) in words.iter().enumerate() {
        let next = words.get(i + 1).copied().unwrap_or("");
        let (flag, inline) = match word.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value)),
            _ => (*word, None),
        };
        let taken = match flag {
            "--junitxml" | "--junit-xml" => true,
            "-o" | "--override-ini" => ini(inline.unwrap_or(next)),
            "-p" => next.trim() == "no:junitxml",
            _ if word.starts_with("-o") && !word.starts_with("--") => ini(&word[2..]),
            _ if word.starts_with("-p") && !word.starts_with("--") => {
                word[2..].trim() == "no:junitxml"
            }
            _ => false,
        };
        if taken {
            let joined = inline.is_none() && matches!(flag, "-o" | "--override-ini" | "-p");
            return Some(if joined {
                format!("{word} {next}")
            } else {
                word.to_string()
            });
        }
    }
    None
}

/// The first of the suite's `requires-env` variables that is unset or empty.
fn missing_prerequisite(suite: &Suite, facts: &Facts) -> Option<Blocked> {
    let missing = suite
        .requires_env
        .iter()
        .find(|name| facts.var(name).is_none_or(|v| v.is_empty()))?;
    Some(Blocked {
        outcome: Outcome::PrerequisiteUnavailable,
        skipped: false,
        detail: format!(
            "not run: suite `{}` needs the environment variable {missing} (its `requires-env` in Cargo.toml), which is not set; set it to run the suite",
            suite.name
        ),
    })
}

/// PYTHONPATH replaces any inherited value, so a run does not depend on the caller's shell.
fn suite_env(suite: &Suite, layout: &Layout) -> Vec<(String, String)> {
    let pythonpath: Vec<String> = suite
        .pythonpath
        .iter()
        .map(|entry| layout.root.join(entry).to_string_lossy().into_owned())
        .collect();
    let mut env = vec![("PYTHONPATH".to_string(), pythonpath.join(":"))];
    env.extend(suite.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invocation::shell_line;
    use crate::manifest::Environment;
    use std::collections::BTreeMap;

    fn suite(environment: Environment) -> Suite {
        Suite {
            name: "guardrail".into(),
            group: "shared".into(),
            dir: "shared/guardrail".into(),
            environment,
            pythonpath: vec!["shared".into(), "version-a".into()],
            markers: Some("not integration".into()),
            paths: vec!["tests".into()],
            env: BTreeMap::from([("MODE".to_string(), "test".to_string())]),
            timeout: crate::manifest::DEFAULT_TIMEOUT,
            requires_env: vec![],
            services: vec![],
            prerequisites: vec![],
            retries: 0,
            split: Default::default(),
            cache: Default::default(),
        }
    }

    fn plan(environment: Environment, pytest_args: &[&str]) -> SuitePlan {
        let args: Vec<String> = pytest_args.iter().map(|a| a.to_string()).collect();
        plan_suite(
            &suite(environment),
            &Layout::new("/repo"),
            Path::new("/bin/uv"),
            &args,
            &Facts::default(),
        )
    }

    #[test]
    fn auto_splits_the_suite_that_would_run_on_alone_from_recorded_durations() {
        let named = |name: &str, split: Split| {
            let mut plan = plan(Environment::project(&["test"]), &[]);
            plan.suite.name = name.into();
            plan.split = split;
            plan.slices = 1;
            plan
        };
        let slices = |previous: &[(&str, f64)], jobs: usize| {
            let mut plans = vec![
                named("long", Split::Auto),
                named("a", Split::Auto),
                named("b", Split::Count(3)),
            ];
            plans[2].slices = 3;
            let previous = previous.iter().map(|(n, d)| (n.to_string(), *d)).collect();
            decide_splits(&mut plans, &previous, jobs);
            plans.iter().map(|p| p.slices).collect::<Vec<_>>()
        };
        // 60 of 80 seconds: longer than a fair share (80 / 2 = 40, 80 / 4 = 20), cut into
        // ceil(60 / share) slices, at most one per worker; a fixed split stays as it is.
        let history = [("long", 60.0), ("a", 10.0), ("b", 10.0)];
        assert_eq!(slices(&history, 2), [2, 1, 3]);
        assert_eq!(slices(&history, 4), [3, 1, 3]);
        assert_eq!(slices(&history, 8), [6, 1, 3]);
        // No idle core to fill, or no history for every suite: no split.
        assert_eq!(slices(&history, 1), [1, 1, 3]);
        assert_eq!(slices(&[("long", 60.0), ("a", 10.0)], 2), [1, 1, 3]);
        assert_eq!(slices(&[], 2), [1, 1, 3]);
        // Balanced suites: none is split.
        assert_eq!(
            slices(&[("long", 10.0), ("a", 10.0), ("b", 10.0)], 2),
            [1, 1, 3]
        );
    }

    #[test]
    fn a_split_may_have_as_many_slices_as_a_partition() {
        assert_eq!(crate::manifest::MAX_SPLIT, MAX_PARTITIONS);
    }

    #[test]
    fn a_slice_has_its_own_files_and_its_partition() {
        let whole = plan(Environment::project(&["test"]), &[]);
        let slice = whole.slice(2, 3);
        assert_eq!(
            slice.partition,
            Some(Partition {
                mode: PartitionMode::Hash,
                index: 2,
                count: 3
            })
        );
        assert_eq!(slice.slices, 1);
        for (a, b) in [
            (&whole.raw_junit, &slice.raw_junit),
            (&whole.progress, &slice.progress),
            (&whole.results, &slice.results),
            (&whole.collected, &slice.collected),
            (&whole.session, &slice.session),
            (&whole.log, &slice.log),
        ] {
            assert_ne!(a, b);
            assert!(slice
                .test
                .env
                .iter()
                .all(|(_, v)| v != &a.to_string_lossy()));
        }
        let junit = format!("--junitxml={}", slice.raw_junit.display());
        assert!(slice.test.argv.contains(&junit), "{:?}", slice.test.argv);
        assert!(slice
            .test
            .env
            .contains(&(PARTITION_ENV.to_string(), "2/3".to_string())));
    }

    #[test]
    fn the_command_line_overrides_the_manifest_in_every_plan_of_a_run() {
        let suite = suite(Environment::project(&["test"]));
        let layout = Layout::new("/repo");
        let uv = Path::new("/bin/uv");
        let none = plan_run(
            &suite,
            &layout,
            uv,
            &Facts::default(),
            &RunOptions::default(),
        );
        assert_eq!(none.timeout, crate::manifest::DEFAULT_TIMEOUT);
        assert_eq!(
            (none.retries, none.partition, none.blocked.is_none()),
            (0, None, true)
        );
        assert!(!none.test.argv.contains(&"-s".to_string()));

        let uv_missing = Blocked {
            outcome: Outcome::ToolchainError,
            detail: "uv is missing".into(),
            skipped: false,
        };
        let options = RunOptions {
            pytest_args: vec!["-k".into(), "fast".into()],
            no_capture: true,
            timeout: Some(Duration::from_secs(7)),
            partition: Some(Partition {
                mode: PartitionMode::Hash,
                index: 2,
                count: 3,
            }),
            retries: Some(4),
            split: None,
            flaky_fails: true,
            blocked: Some(uv_missing),
        };
        let plan = plan_run(&suite, &layout, uv, &Facts::default(), &options);
        assert_eq!(plan.timeout, Duration::from_secs(7));
        assert_eq!((plan.retries, plan.flaky_fails), (4, true));
        assert_eq!(
            plan.partition,
            Some(Partition {
                mode: PartitionMode::Hash,
                index: 2,
                count: 3
            })
        );
        let env = |name: &str| {
            plan.test
                .env
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(env(PARTITION_ENV), Some("2/3"));
        assert_eq!(env("PYTHONUNBUFFERED"), Some("1"));
        let argv = &plan.test.argv;
        let s = argv
            .iter()
            .position(|a| a == "-s")
            .expect("-s for --no-capture");
        let k = argv
            .iter()
            .position(|a| a == "-k")
            .expect("the arguments after --");
        assert!(s < k, "-s comes before the user's arguments: {argv:?}");
        assert_eq!(plan.blocked.unwrap().outcome, Outcome::ToolchainError);
    }

    #[test]
    fn pytest_runs_from_the_suites_environment_in_its_directory() {
        let layout = Layout::new("/repo");
        let args: Vec<String> = ["-k", "buffer", "-x"].map(String::from).to_vec();
        let plan = plan_suite(
            &suite(Environment::project(&["test"])),
            &layout,
            Path::new("/bin/uv"),
            &args,
            &Facts::default(),
        );
        let pytest = plan.env.bin().join("pytest");
        assert_eq!(
            plan.test.argv,
            [
                pytest.to_str().unwrap(),
                "-o",
                "junit_family=xunit1",
                "-o",
                "junit_logging=all",
                "-o",
                "junit_log_passing_tests=false",
                format!("--junitxml={}", plan.raw_junit.display()).as_str(),
                "-p",
                "_xtask_progress",
                "-m",
                "not integration",
                "tests",
                "-k",
                "buffer",
                "-x",
            ]
        );
        assert_eq!(plan.test.cwd, Path::new("/repo/shared/guardrail"));
        assert_eq!(
            plan.test.env,
            [
                (
                    "PYTHONPATH".to_string(),
                    format!(
                        "/repo/shared:/repo/version-a:{}",
                        layout.progress_plugin_dir().display()
                    )
                ),
                ("MODE".to_string(), "test".to_string()),
                (
                    "XTASK_PROGRESS_FILE".to_string(),
                    plan.progress.to_string_lossy().into_owned()
                ),
                (
                    "XTASK_RESULTS_FILE".to_string(),
                    plan.results.to_string_lossy().into_owned()
                ),
                (
                    "XTASK_COLLECTED_FILE".to_string(),
                    plan.collected.to_string_lossy().into_owned()
                ),
                (
                    "XTASK_SESSION_FILE".to_string(),
                    plan.session.to_string_lossy().into_owned()
                ),
                (
                    "VIRTUAL_ENV".to_string(),
                    plan.env.path.to_string_lossy().into_owned()
                ),
            ]
        );
        assert_eq!(
            plan.test.path_prepend.as_deref(),
            Some(plan.env.bin().as_path())
        );
        assert!(plan.env.path.starts_with("/repo/target/xtask/envs"));
        let run_dir = Path::new("/repo/target/xtask/runs").join(&Layout::new("/repo").run_id);
        assert!(plan.junit.starts_with("/repo/target/xtask/runs"));
        assert!(plan.junit.ends_with("junit/guardrail.xml"));
        assert!(plan.log.ends_with("logs/guardrail.log"));
        assert!(plan.raw_junit.ends_with("work/guardrail.pytest.xml"));
        assert!(plan.progress.ends_with("work/guardrail.progress"));
        assert_ne!(
            plan.log.parent().unwrap().parent().unwrap(),
            run_dir,
            "every Layout has its own run id"
        );
    }

    #[test]
    fn paths_and_node_ids_after_the_double_dash_narrow_the_suite() {
        // No file on disk: the paths that exist are facts.
        let facts = Facts::default()
            .with_path("libs/alpha/tests/test_alpha.py")
            .with_path("libs/beta/tests");
        let mut alpha = suite(Environment::project(&[]));
        alpha.dir = "libs/alpha".into();
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // Relative to the suite's directory, or to the root: the same test.
        for given in [
            "tests/test_alpha.py::test_x",
            "libs/alpha/tests/test_alpha.py::test_x",
        ] {
            let n = narrow(&alpha, &facts, &args(&["-k", "tests", given, "-x"]));
            assert_eq!(
                n.args,
                ["-k", "tests", "tests/test_alpha.py::test_x", "-x"],
                "{given}"
            );
            assert!(n.targeted && !n.elsewhere);
        }
        // Another suite's test: left out, and the suite has nothing to run.
        let n = narrow(&alpha, &facts, &args(&["libs/beta/tests", "-x"]));
        assert_eq!(n.args, ["-x"]);
        assert!(n.elsewhere && !n.targeted);
        // Options and their values are never taken for paths.
        let n = narrow(
            &alpha,
            &facts,
            &args(&["-m", "libs", "--tb=short", "nowhere"]),
        );
        assert_eq!(n.args, ["-m", "libs", "--tb=short", "nowhere"]);
        assert!(!n.targeted && !n.elsewhere);
        // Narrowed, the manifest's paths are not passed.
        alpha.paths = vec!["tests".into()];
        let layout = Layout::new("/repo");
        let plan = plan_suite(
            &alpha,
            &layout,
            Path::new("uv"),
            &args(&["tests/test_alpha.py::test_x"]),
            &facts,
        );
        assert_eq!(
            plan.test
                .argv
                .iter()
                .filter(|a| a.starts_with("tests"))
                .count(),
            1
        );
        assert_eq!(
            plan.test.argv.last().unwrap(),
            "tests/test_alpha.py::test_x"
        );
        // What exists nowhere (no facts) narrows nothing.
        let n = narrow(&alpha, &Facts::default(), &args(&["tests/test_alpha.py"]));
        assert!(!n.targeted && !n.elsewhere);
    }

    #[test]
    fn partitions_are_read_as_hash_k_of_n() {
        assert_eq!(
            Partition::parse("hash:2/4"),
            Ok(Partition {
                mode: PartitionMode::Hash,
                index: 2,
                count: 4
            })
        );
        assert_eq!(
            Partition::parse("durations:3/4").map(|p| (p.to_string(), p.plugin_value())),
            Ok(("durations:3/4".to_string(), "durations:3/4".to_string()))
        );
        for bad in [
            "2/4", "hash:0/4", "hash:5/4", "hash:1/0", "hash:a/b", "hash:1",
        ] {
            assert!(Partition::parse(bad).is_err(), "{bad}");
        }
        let most = format!("hash:{MAX_PARTITIONS}/{MAX_PARTITIONS}");
        assert!(Partition::parse(&most).is_ok());
        let too_many = Partition::parse("hash:1/4294967295").unwrap_err();
        assert!(too_many.contains("at most 256"), "{too_many}");
    }

    #[test]
    fn a_suite_missing_a_required_variable_is_blocked() {
        let mut smoke = suite(Environment::project(&[]));
        smoke.requires_env = vec!["A_TOKEN".into(), "B_TOKEN".into()];
        let set = Facts::default().with_var("A_TOKEN", "x");
        let blocked = missing_prerequisite(&smoke, &set).unwrap();
        assert_eq!(blocked.outcome, Outcome::PrerequisiteUnavailable);
        assert!(blocked.detail.contains("B_TOKEN"), "{}", blocked.detail);
        let all = set.clone().with_var("B_TOKEN", "y");
        assert!(missing_prerequisite(&smoke, &all).is_none());
        let plan = plan_suite(&smoke, &Layout::new("/repo"), Path::new("uv"), &[], &all);
        assert!(plan.blocked.is_none());
        let empty = set.with_var("B_TOKEN", "");
        assert!(missing_prerequisite(&smoke, &empty).is_some());
        let plan = plan_suite(&smoke, &Layout::new("/repo"), Path::new("uv"), &[], &empty);
        assert!(plan.blocked.unwrap().detail.contains("B_TOKEN"));
    }

    #[test]
    fn no_markers_and_no_paths_leave_selection_to_pytest() {
        let mut bare = suite(Environment::project(&[]));
        bare.markers = None;
        bare.paths.clear();
        bare.pythonpath.clear();
        let layout = Layout::new("/repo");
        let plan = plan_suite(&bare, &layout, Path::new("uv"), &[], &Facts::default());
        assert!(!plan.test.argv.contains(&"-m".to_string()));
        assert_eq!(plan.test.argv.last().unwrap(), "_xtask_progress");
        // PYTHONPATH with only the plugin still replaces whatever the caller's shell had.
        assert_eq!(
            plan.test.env[0],
            (
                "PYTHONPATH".to_string(),
                layout.progress_plugin_dir().to_string_lossy().into_owned()
            )
        );
    }

    #[test]
    fn options_that_take_the_junit_report_away_are_rejected() {
        let layout = Layout::new("/repo");
        let check = |args: &[&str]| {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            check_pytest_args(&args, &layout).map_err(|e| e.to_string())
        };
        for args in [
            &["--junitxml=x.xml"][..],
            &["-x", "--junitxml", "x.xml"],
            &["--junit-xml=x.xml"],
            &["-o", "junit_family=xunit2"],
            &["-ojunit_logging=no"],
            &["--override-ini=junit_family=legacy"],
            &["-p", "no:junitxml"],
        ] {
            let err = check(args).expect_err(&format!("{args:?}"));
            assert!(
                err.contains("the xtask owns pytest's JUnit report"),
                "{err}"
            );
            assert!(err.contains("target/xtask/junit.xml"), "{err}");
        }
        let err = check(&["-o", "junit_family=xunit2"]).unwrap_err();
        assert!(
            err.starts_with("`-o junit_family=xunit2` after `--`"),
            "{err}"
        );
        for fine in [
            &["-k", "junitxml"][..],
            &["-o", "junit_suite_name=x"],
            &["-p", "no:cacheprovider"],
            &["-m", "not slow"],
            &["--", "--junitxml=x"],
        ] {
            assert_eq!(check(fine), Ok(()), "{fine:?}");
        }
    }

    #[test]
    fn shell_line_can_be_pasted() {
        let plan = plan(Environment::project(&["test"]), &["-k", "it's"]);
        let line = shell_line(&plan.test);
        assert!(
            line.starts_with("cd /repo/shared/guardrail && PYTHONPATH=/repo/shared:/repo/version-a:/repo/target/xtask/runs/"),
            "{line}"
        );
        assert!(
            line.contains(
                "/work/xtask_progress MODE=test XTASK_PROGRESS_FILE=/repo/target/xtask/runs/"
            ),
            "{line}"
        );
        assert!(
            line.contains(".session VIRTUAL_ENV=/repo/target/xtask/envs/"),
            "{line}"
        );
        assert!(
            line.contains("/bin:\"$PATH\" /repo/target/xtask/envs/"),
            "{line}"
        );
        assert!(
            line.contains(" -m 'not integration' tests -k 'it'\\''s'"),
            "{line}"
        );
        let sync = shell_line(&plan.env.build[0]);
        assert!(
            sync.starts_with("cd /repo && env -u VIRTUAL_ENV UV_PROJECT_ENVIRONMENT="),
            "{sync}"
        );
    }
}
