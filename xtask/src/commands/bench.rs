//! `cargo xtask bench`: the xtask against the commands a person would type by hand, side by
//! side in one run on this repository, plus generated repositories (20,000 tests, a test
//! printing 500 MB, eight suites for `--rerun`), and the xtask against itself built from
//! issue 16's base. Prints medians, ratios and the targets; writes
//! `target/xtask/bench/results.json`. A benchmark anyone can rerun, not a timed test.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};

use crate::flags::{BenchArgs, BenchScenario};
use crate::invocation::{shell_line, shell_quote as quote, Invocation, REMOVED_ENV};
use crate::manifest::{Environment, Manifest, Suite};
use crate::paths::{self, Layout};
use crate::toolchain;

/// The pytest of the generated repositories.
const PYTEST: &str = "pytest==9.2.0";
const MANY_TESTS: usize = 20_000;
const MANY_FILES: usize = 4;
/// Lines of 1,000 bytes the loud test prints: 500 MB.
const LOUD_LINES: usize = 500_000;
/// The peak memory target: 200 MB (decimal megabytes).
const MEMORY_LIMIT_BYTES: u64 = 200_000_000;
const POLL: Duration = Duration::from_millis(20);
/// `report.html` of 20,000 tests: at most 5 MB (decimal), rendered and written in 0.5 s.
const PAGE_LIMIT_BYTES: u64 = 5_000_000;
const PAGE_LIMIT_SECS: f64 = 0.5;
/// Issue 16's base: the commit before its first per-test recording commit (d2f034b). The
/// `recording` scenario times this xtask against the one built from it.
const BASE_COMMIT: &str = "d572aef";
/// Recording every test costs at most 3% on 20,000 tests, against the base.
const RECORDING_LIMIT: f64 = 1.03;
/// The rerun repository: eight suites of three files of 100 tests, each test a little work,
/// so that a full `ci` takes seconds.
const RERUN_SUITES: usize = 8;
const RERUN_FILES: usize = 3;
const RERUN_TESTS_PER_FILE: usize = 100;
/// The tests the rerun repository's full `ci` fails, as (suite, file, test): three tests in
/// two suites.
const RERUN_FAILING: [(usize, usize, usize); 3] = [(2, 0, 17), (2, 2, 64), (5, 1, 99)];
/// At the rerun repository's root: the keys of the tests that fail, one a line, read by
/// every test module when pytest imports it.
const FAILING_FILE: &str = "failing.txt";
/// `ci --rerun latest` takes at most 0.3x the wall time of the full `ci` it follows.
const RERUN_LIMIT: f64 = 0.3;
/// The skewed suite of the `slices` scenario: 2,000 tests in 20 files of 100; the first
/// file's first tests sleep (`SLICES_LONG`: (count, seconds)), every other test passes at
/// once. About 4.2 s of sleeps and under a second of the rest.
const SLICES_TESTS: usize = 2_000;
const SLICES_FILES: usize = 20;
const SLICES_LONG: [(usize, f64); 3] = [(4, 0.5), (8, 0.2), (12, 0.05)];
/// How many slices the suite is cut into, and the most the slowest may take against the
/// ideal (total / slices).
const SLICES: u32 = 4;
const SLICES_LIMIT: f64 = 1.1;
/// 20,000 tests split in two on two cores: at most 0.6x the wall of the same unsplit.
const SPLIT_LIMIT: f64 = 0.6;
/// A no-change `ci` (every suite replayed from the result cache) against a warm `--no-cache` one.
const CACHE_LIMIT: f64 = 0.1;
/// Hashing the inputs of a tree of `HASH_FILES` files, warm, in seconds.
const HASH_LIMIT_SECS: f64 = 0.05;
const HASH_FILES: usize = 10_000;
const SPLIT_SLICES: &str = "2";

/// The command a person would write by hand for `suite`, as README.md documents it: run
/// from the repository root `root`, pytest's JUnit report at `<junit_dir>/<suite>.xml`.
/// `env` holds PYTHONPATH (the manifest's entries below `root`) and the suite's `env`.
pub fn hand_command(suite: &Suite, root: &Path, uv: &str, junit_dir: &Path) -> Invocation {
    let mut argv: Vec<String> = vec![
        uv.into(),
        "run".into(),
        "--directory".into(),
        suite.dir.clone(),
    ];
    match &suite.environment {
        Environment::Project { .. } => argv.extend(suite.environment.uv_selection()),
        Environment::Requirements { requirements, file } => {
            argv.extend(["--isolated".into(), "--no-project".into()]);
            for requirement in requirements {
                argv.extend(["--with".into(), requirement.clone()]);
            }
            if let Some(file) = file {
                // Relative to the root, where the manifest says it is, whatever `--directory`.
                argv.extend([
                    "--with-requirements".into(),
                    root.join(file).to_string_lossy().into_owned(),
                ]);
            }
        }
    }
    argv.extend(["--".into(), "pytest".into()]);
    if let Some(markers) = &suite.markers {
        argv.extend(["-m".into(), markers.clone()]);
    }
    argv.extend(suite.paths.iter().cloned());
    argv.push(format!(
        "--junitxml={}",
        junit_dir.join(format!("{}.xml", suite.name)).display()
    ));

    let mut env = Vec::new();
    if !suite.pythonpath.is_empty() {
        let entries: Vec<String> = suite
            .pythonpath
            .iter()
            .map(|entry| root.join(entry).to_string_lossy().into_owned())
            .collect();
        env.push(("PYTHONPATH".to_string(), entries.join(":")));
    }
    env.extend(suite.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    Invocation {
        argv,
        cwd: root.to_path_buf(),
        env,
        // Not what a person types, but the same for every scenario: an activated venv in
        // the caller's shell must not point uv elsewhere.
        env_remove: REMOVED_ENV.iter().map(|v| v.to_string()).collect(),
        path_prepend: None,
    }
}

/// A command that did not succeed: reported with its command line, never silently timed.
#[derive(Clone, Debug)]
struct Failure {
    command: String,
    /// `exit code N` or `signal N`.
    ended: String,
    exit_code: Option<i32>,
    log: PathBuf,
}

impl Failure {
    /// `None` when the command exited with `expected`.
    fn of(status: ExitStatus, expected: i32, command: String, log: &Path) -> Option<Failure> {
        use std::os::unix::process::ExitStatusExt;
        if status.code() == Some(expected) {
            return None;
        }
        let mut ended = match (status.code(), status.signal()) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(signal)) => format!("signal {signal}"),
            (None, None) => "an unknown status".into(),
        };
        if expected != 0 {
            ended.push_str(&format!(" (expected {expected})"));
        }
        Some(Failure {
            command,
            ended,
            exit_code: status.code(),
            log: log.to_path_buf(),
        })
    }

    fn json(&self) -> Value {
        json!({ "command": self.command, "ended": self.ended, "exit_code": self.exit_code, "log": self.log })
    }
}

fn command_of(invocation: &Invocation) -> Command {
    let mut command = Command::new(&invocation.argv[0]);
    command
        .args(&invocation.argv[1..])
        .current_dir(&invocation.cwd)
        .envs(invocation.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null());
    for name in &invocation.env_remove {
        command.env_remove(name);
    }
    command
}

fn log_to(command: &mut Command, log: &Path) -> anyhow::Result<()> {
    let file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    command.stdout(file.try_clone()?).stderr(file);
    Ok(())
}

/// Runs `invocation` to its end with its output in `log`.
fn run_logged(invocation: &Invocation, log: &Path) -> anyhow::Result<Option<Failure>> {
    run_expecting(invocation, 0, log)
}

/// Like `run_logged`, for a command meant to exit with `expected` (a `ci` whose tests fail).
fn run_expecting(
    invocation: &Invocation,
    expected: i32,
    log: &Path,
) -> anyhow::Result<Option<Failure>> {
    let mut command = command_of(invocation);
    log_to(&mut command, log)?;
    let status = command
        .status()
        .with_context(|| format!("starting `{}`", shell_line(invocation)))?;
    Ok(Failure::of(status, expected, shell_line(invocation), log))
}

/// Like `run_logged`, also polling the process's `VmHWM` (its peak resident memory).
fn run_polling_peak(
    invocation: &Invocation,
    log: &Path,
) -> anyhow::Result<(Option<Failure>, Option<u64>)> {
    let mut command = command_of(invocation);
    log_to(&mut command, log)?;
    let mut child = command
        .spawn()
        .with_context(|| format!("starting `{}`", shell_line(invocation)))?;
    let status_file = PathBuf::from(format!("/proc/{}/status", child.id()));
    let mut peak = None;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        // The high-water mark only grows; a zombie has none, so keep the last one read.
        if let Some(hwm) = std::fs::read_to_string(&status_file)
            .ok()
            .and_then(|s| crate::report::record::vm_hwm_bytes(&s))
        {
            peak = Some(peak.map_or(hwm, |p: u64| p.max(hwm)));
        }
        std::thread::sleep(POLL);
    };
    Ok((Failure::of(status, 0, shell_line(invocation), log), peak))
}

/// User plus system time of every child waited for so far (and of their waited-for
/// descendants), in seconds.
fn children_cpu_secs() -> f64 {
    // SAFETY: getrusage only writes the struct it is given, which is plain data.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// Wall and CPU seconds of `f`, which must wait for every process it starts.
fn timed<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<(T, f64, f64)> {
    let cpu = children_cpu_secs();
    let start = Instant::now();
    let value = f()?;
    let wall = start.elapsed().as_secs_f64();
    Ok((value, wall, children_cpu_secs() - cpu))
}

fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    })
}

/// The timed runs of one scenario.
#[derive(Debug)]
struct Series {
    key: String,
    label: String,
    walls: Vec<f64>,
    cpus: Vec<f64>,
    failures: Vec<Failure>,
}

impl Series {
    fn new(key: &str, label: &str) -> Series {
        Series {
            key: key.into(),
            label: label.into(),
            walls: vec![],
            cpus: vec![],
            failures: vec![],
        }
    }

    fn push(&mut self, wall: f64, cpu: f64, failures: Vec<Failure>) {
        self.walls.push(wall);
        self.cpus.push(cpu);
        self.failures.extend(failures);
    }

    fn wall(&self) -> Option<f64> {
        median(&self.walls)
    }

    fn cpu(&self) -> Option<f64> {
        median(&self.cpus)
    }

    fn json(&self) -> Value {
        json!({
            "key": self.key,
            "label": self.label,
            "runs": self.walls.len(),
            "median_wall_secs": self.wall(),
            "median_cpu_secs": self.cpu(),
            "wall_secs": self.walls,
            "cpu_secs": self.cpus,
            "failures": self.failures.iter().map(Failure::json).collect::<Vec<_>>(),
        })
    }
}

/// The four scenarios run on this repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    HandSequential,
    HandBackground,
    XtaskCi,
    XtaskCiJ1,
}

const SCENARIOS: [Scenario; 4] = [
    Scenario::HandSequential,
    Scenario::HandBackground,
    Scenario::XtaskCi,
    Scenario::XtaskCiJ1,
];

impl Scenario {
    fn key(self) -> &'static str {
        match self {
            Scenario::HandSequential => "hand-sequential",
            Scenario::HandBackground => "hand-background",
            Scenario::XtaskCi => "xtask-ci",
            Scenario::XtaskCiJ1 => "xtask-ci-j1",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Scenario::HandSequential => "hand, one after another",
            Scenario::HandBackground => "hand, backgrounded (one bash)",
            Scenario::XtaskCi => "xtask ci",
            Scenario::XtaskCiJ1 => "xtask ci -j 1",
        }
    }
}

struct Bench<'a> {
    layout: &'a Layout,
    manifest: &'a Manifest,
    uv: String,
    exe: PathBuf,
    dir: PathBuf,
    logs: PathBuf,
    tmp: PathBuf,
    /// One per suite, in manifest order.
    hand: Vec<Invocation>,
    background_script: PathBuf,
}

impl Bench<'_> {
    /// This xtask on the repository at `root`; a run (`test`, `ci`) with `--no-cache`: the
    /// scenarios time running suites, as the hand commands do, never replaying them.
    fn xtask(&self, root: &Path, args: &[&str]) -> Invocation {
        let mut args = args.to_vec();
        if matches!(args.first(), Some(&"test") | Some(&"ci")) {
            args.insert(1, "--no-cache");
        }
        self.xtask_of(&self.exe, root, &args)
    }

    /// This xtask as a person runs it, the result cache on.
    fn xtask_cached(&self, root: &Path, args: &[&str]) -> Invocation {
        self.xtask_of(&self.exe, root, args)
    }

    /// The xtask binary `exe` (this one, or the base's) on the repository at `root`.
    fn xtask_of(&self, exe: &Path, root: &Path, args: &[&str]) -> Invocation {
        let mut argv = vec![exe.to_string_lossy().into_owned()];
        argv.extend(args.iter().map(|a| a.to_string()));
        Invocation {
            argv,
            cwd: root.to_path_buf(),
            env: vec![
                (paths::ROOT_ENV.into(), root.to_string_lossy().into_owned()),
                (toolchain::UV_ENV.into(), self.uv.clone()),
            ],
            env_remove: REMOVED_ENV.iter().map(|v| v.to_string()).collect(),
            path_prepend: None,
        }
    }

    fn log(&self, name: &str) -> PathBuf {
        self.logs.join(format!("{name}.log"))
    }

    fn run(&self, scenario: Scenario) -> anyhow::Result<Vec<Failure>> {
        let root = &self.layout.root;
        Ok(match scenario {
            Scenario::HandSequential => {
                let mut failures = Vec::new();
                for (suite, invocation) in self.manifest.suites.iter().zip(&self.hand) {
                    let log = self.log(&format!("hand-{}", suite.name));
                    failures.extend(run_logged(invocation, &log)?);
                }
                failures
            }
            Scenario::HandBackground => self.run_background()?,
            Scenario::XtaskCi => run_logged(
                &self.xtask(root, &["ci", "--exclude", crate::manifest::SMOKE_GROUP]),
                &self.log("xtask-ci"),
            )?
            .into_iter()
            .collect(),
            Scenario::XtaskCiJ1 => run_logged(
                &self.xtask(
                    root,
                    &["ci", "-j", "1", "--exclude", crate::manifest::SMOKE_GROUP],
                ),
                &self.log("xtask-ci-j1"),
            )?
            .into_iter()
            .collect(),
        })
    }

    /// `cmd1 & cmd2 & ... wait`, one wait per command so that each exit code is known.
    fn background_script(&self) -> String {
        let mut script = String::from(
            "# Written by `cargo xtask bench`: every suite's hand command, started at once.\n",
        );
        script.push_str(&format!(
            "cd {} || exit 1\n",
            quote(&self.layout.root.to_string_lossy())
        ));
        for (i, (suite, invocation)) in self.manifest.suites.iter().zip(&self.hand).enumerate() {
            let log = self.log(&format!("background-{}", suite.name));
            script.push_str(&format!(
                "{} >{} 2>&1 </dev/null &\npid{i}=$!\n",
                shell_line(invocation),
                quote(&log.to_string_lossy())
            ));
        }
        for i in 0..self.hand.len() {
            script.push_str(&format!("wait $pid{i}; echo \"status {i} $?\"\n"));
        }
        script
    }

    fn run_background(&self) -> anyhow::Result<Vec<Failure>> {
        let log = self.log("background-script");
        let output = Command::new("bash")
            .arg(&self.background_script)
            .env_remove("VIRTUAL_ENV")
            .stdin(Stdio::null())
            .stderr(File::create(&log)?)
            .output()
            .context("running bash")?;
        let command = format!("bash {}", self.background_script.display());
        let mut failures: Vec<Failure> = Failure::of(output.status, 0, command, &log)
            .into_iter()
            .collect();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let mut seen = 0;
        for line in stdout.lines() {
            let mut words = line.split_whitespace();
            let (Some("status"), Some(i), Some(code)) = (words.next(), words.next(), words.next())
            else {
                continue;
            };
            let (Ok(i), Ok(code)) = (i.parse::<usize>(), code.parse::<i32>()) else {
                continue;
            };
            seen += 1;
            if code != 0 && i < self.hand.len() {
                let suite = &self.manifest.suites[i].name;
                failures.push(Failure {
                    command: shell_line(&self.hand[i]),
                    ended: format!("exit code {code}"),
                    exit_code: Some(code),
                    log: self.log(&format!("background-{suite}")),
                });
            }
        }
        if seen != self.hand.len() {
            failures.push(Failure {
                command: format!("bash {}", self.background_script.display()),
                ended: format!("reported {seen} of {} exit codes", self.hand.len()),
                exit_code: output.status.code(),
                log,
            });
        }
        Ok(failures)
    }

    /// Deletes the environments the scenario would reuse; uv's cache stays warm.
    fn make_cold(&self, scenario: Scenario) -> anyhow::Result<()> {
        let dirs: Vec<PathBuf> = if matches!(scenario, Scenario::XtaskCi | Scenario::XtaskCiJ1) {
            // Where the xtask keeps its own environments.
            vec![self.layout.envs_dir()]
        } else {
            self.manifest
                .suites
                .iter()
                .filter(|s| matches!(s.environment, Environment::Project { .. }))
                .map(|s| self.layout.root.join(&s.dir).join(".venv"))
                .collect()
        };
        for dir in dirs {
            if dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("deleting {}", dir.display()))?;
            }
        }
        Ok(())
    }
}

fn report_failures(what: &str, failures: &[Failure]) {
    for failure in failures {
        println!(
            "    FAILED ({what}): `{}` ended with {} (log: {})",
            failure.command,
            failure.ended,
            failure.log.display()
        );
    }
}

/// Runs every case of `series` once, untimed, so that the timed runs find it warm.
fn warm_up(
    series: &mut [Series],
    mut run: impl FnMut(usize) -> anyhow::Result<Vec<Failure>>,
) -> anyhow::Result<()> {
    for (case, s) in series.iter_mut().enumerate() {
        println!("  warm-up: {}", s.label);
        let failures = run(case)?;
        report_failures("warm-up", &failures);
        s.failures.extend(failures);
    }
    Ok(())
}

/// How every scenario is measured: `runs` rounds, each running every case of `series` once
/// in turn, so that a busy machine slows every case alike and their medians compare:
/// `prepare(case)` untimed, `run(case)` timed (wall and CPU), then `check(case)` untimed,
/// which names what the run did wrong beyond its exit code.
fn side_by_side(
    what: &str,
    runs: usize,
    series: &mut [Series],
    mut prepare: impl FnMut(usize) -> anyhow::Result<()>,
    mut run: impl FnMut(usize) -> anyhow::Result<Vec<Failure>>,
    mut check: impl FnMut(usize) -> Vec<Failure>,
) -> anyhow::Result<()> {
    for i in 0..runs {
        for (case, s) in series.iter_mut().enumerate() {
            prepare(case)?;
            let (mut failures, wall, cpu) = timed(|| run(case))?;
            failures.extend(check(case));
            println!(
                "  {what} {}/{runs} {}: {wall:.2} s wall, {cpu:.2} s CPU",
                i + 1,
                s.label
            );
            report_failures(what, &failures);
            s.push(wall, cpu, failures);
        }
    }
    Ok(())
}

fn fmt_secs(value: Option<f64>) -> String {
    value.map_or("-".into(), |v| format!("{v:.2} s"))
}

/// A suite of a generated repository: its name and its test files (name, text).
type GeneratedSuite = (String, Vec<(String, String)>);

/// A generated repository: a root `Cargo.toml` with an empty `[workspace]` and a manifest of
/// one no-project suite per entry of `suites`, each with its test files in `tests/<suite>/`.
fn generate_repo(root: &Path, suites: &[GeneratedSuite]) -> anyhow::Result<()> {
    let tests = root.join("tests");
    if tests.exists() {
        std::fs::remove_dir_all(&tests).with_context(|| format!("deleting {}", tests.display()))?;
    }
    let mut manifest = String::from(
        "# Written by `cargo xtask bench`.\n[workspace]\nmembers = []\n\n[workspace.metadata.xtask]\n",
    );
    for (suite, files) in suites {
        manifest.push_str(&format!(
            "\n[[workspace.metadata.xtask.suites]]\nname = \"{suite}\"\ngroup = \"bench\"\n\
             dir = \".\"\nrequirements = [\"{PYTEST}\"]\npaths = [\"tests/{suite}\"]\n"
        ));
        let dir = tests.join(suite);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    let path = root.join("Cargo.toml");
    std::fs::write(&path, manifest).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn many_suite() -> Vec<GeneratedSuite> {
    let per_file = MANY_TESTS / MANY_FILES;
    let files = (0..MANY_FILES)
        .map(|f| {
            let mut text = String::from("# Written by `cargo xtask bench`: trivial tests.\n");
            for t in 0..per_file {
                text.push_str(&format!("\n\ndef test_{f}_{t:05}():\n    pass\n"));
            }
            (format!("test_many_{f}.py"), text)
        })
        .collect();
    vec![("many".into(), files)]
}

fn loud_suite() -> Vec<GeneratedSuite> {
    let text = format!(
        "# Written by `cargo xtask bench`: one passing test that prints 500 MB.\n\
         import sys\n\n\ndef test_prints_500_mb():\n    line = \"x\" * 999 + \"\\n\"\n\
         \x20   for _ in range({LOUD_LINES}):\n        sys.stdout.write(line)\n"
    );
    // pytest's own peak, from inside it, after its JUnit file is written (sessionfinish):
    // the same for the hand command and the xtask, whatever process tree runs pytest.
    let conftest = format!(
        "# Written by `cargo xtask bench`: records pytest's peak resident memory.\n\
         import os\nimport resource\n\n\ndef pytest_unconfigure(config):\n\
         \x20   path = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, {PYTEST_PEAK_FILE:?})\n\
         \x20   with open(path, \"w\") as f:\n\
         \x20       f.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024))\n"
    );
    vec![(
        "loud".into(),
        vec![
            ("test_loud.py".into(), text),
            ("conftest.py".into(), conftest),
        ],
    )]
}

/// The key of a test of the rerun repository, as `FAILING_FILE` lists it.
fn rerun_key(suite: usize, file: usize, test: usize) -> String {
    format!("s{suite}-f{file}-t{test:03}")
}

/// The rerun repository's suites: `RERUN_SUITES` suites of `RERUN_FILES` files of
/// `RERUN_TESTS_PER_FILE` tests, each test about a millisecond of work; a test whose key
/// `FAILING_FILE` lists fails.
fn rerun_suites() -> Vec<GeneratedSuite> {
    (0..RERUN_SUITES)
        .map(|s| {
            let files = (0..RERUN_FILES)
                .map(|f| {
                    let mut text = format!(
                        "# Written by `cargo xtask bench`: tests that each do a little work; \
                         those listed in {FAILING_FILE} fail.\nimport pathlib\n\n\
                         _LIST = pathlib.Path(__file__).parents[2] / {FAILING_FILE:?}\n\
                         _FAILING = set(_LIST.read_text().split()) if _LIST.exists() else set()\n\n\n\
                         def _work(key):\n    total = sum(i * i for i in range(20_000))\n\
                         \x20   assert total > 0\n\
                         \x20   assert key not in _FAILING, f\"{{key}} is listed in {FAILING_FILE}\"\n"
                    );
                    for t in 0..RERUN_TESTS_PER_FILE {
                        text.push_str(&format!(
                            "\n\ndef test_{t:03}():\n    _work({:?})\n",
                            rerun_key(s, f, t)
                        ));
                    }
                    (format!("test_s{s}_{f}.py"), text)
                })
                .collect();
            (format!("suite-{s}"), files)
        })
        .collect()
}

/// What the rerun repository's latest run recorded, against what it should have: the full
/// `ci` failed exactly the `RERUN_FAILING` tests, in their two suites; the rerun ran those
/// three again (the list emptied: they pass now) and nothing else. `None` when it did.
fn rerun_mismatch(root: &Path, rerun: bool) -> Option<String> {
    let path = root.join("target").join("xtask").join("run.json");
    let record = match crate::report::run_record::load(&path) {
        Ok(record) => record,
        Err(err) => return Some(format!("its record could not be read: {err}")),
    };
    let sum = |count: fn(&crate::model::Counts) -> usize| -> usize {
        record.suites.iter().map(|s| count(&s.counts)).sum()
    };
    let failing_suites = record.suites.iter().filter(|s| s.counts.failed > 0).count();
    let (passed, failed) = (sum(|c| c.passed), sum(|c| c.failed));
    let expected_suites: std::collections::BTreeSet<usize> =
        RERUN_FAILING.iter().map(|(s, _, _)| *s).collect();
    let n = RERUN_FAILING.len();
    let all = RERUN_SUITES * RERUN_FILES * RERUN_TESTS_PER_FILE;
    if !rerun {
        return (failed != n || failing_suites != expected_suites.len() || passed + failed != all)
            .then(|| {
                format!(
                    "recorded {failed} failed tests in {failing_suites} suites and {passed} passed; \
                     expected {n} in {} and {}",
                    expected_suites.len(),
                    all - n
                )
            });
    }
    match &record.rerun_of {
        None => Some("its record names no source run (rerun_of)".into()),
        Some(of) => (of.failing != n
            || of.now_pass != n
            || of.new_tests != 0
            || of.whole_suites != 0
            || passed != n
            || failed != 0)
            .then(|| {
                format!(
                    "ran {passed} passing and {failed} failing tests, {} of {} failing now \
                     passing, {} new, {} whole suites; expected {n} of {n} and nothing else",
                    of.now_pass, of.failing, of.new_tests, of.whole_suites
                )
            }),
    }
}

/// Whether the JUnit report at `path` holds `tests` test cases, read through the one JUnit
/// reader (the cases counted, not a `tests` attribute that a cut-short file could still
/// carry); `None` when it does.
fn junit_mismatch(path: &Path, tests: usize) -> Option<String> {
    match crate::junit_xml::read::report_file(path) {
        Err(err) => Some(format!(
            "its JUnit report {} could not be read: {err:#}",
            path.display()
        )),
        Ok(report) => {
            let counted: usize = report.test_suites.iter().map(|s| s.test_cases.len()).sum();
            (counted != tests).then(|| {
                format!(
                    "its JUnit report {} holds {counted} tests, not {tests}",
                    path.display()
                )
            })
        }
    }
}

/// The merged JUnit report of the newest xtask run in the repository at `root`.
fn xtask_junit(root: &Path) -> PathBuf {
    Layout::new(root).out_dir().join("junit.xml")
}

/// Each case's run (`cases[i]` logged to `logs[i]`), and the check after it that its JUnit
/// report (`junit(i)`) holds every one of `tests`: a case that ran fewer is a failure.
fn counted_runs<'a>(
    cases: &'a [Invocation],
    logs: &'a [PathBuf],
    junit: impl Fn(usize) -> PathBuf + 'a,
    tests: usize,
) -> (
    impl Fn(usize) -> anyhow::Result<Vec<Failure>> + Copy + 'a,
    impl Fn(usize) -> Vec<Failure> + 'a,
) {
    let run = move |case: usize| -> anyhow::Result<Vec<Failure>> {
        Ok(run_logged(&cases[case], &logs[case])?.into_iter().collect())
    };
    let check = move |case: usize| -> Vec<Failure> {
        junit_mismatch(&junit(case), tests)
            .map(|mismatch| Failure {
                command: shell_line(&cases[case]),
                ended: mismatch,
                exit_code: None,
                log: logs[case].clone(),
            })
            .into_iter()
            .collect()
    };
    (run, check)
}

/// The xtask of issue 16's base, built once in a git worktree of `BASE_COMMIT` with its own
/// target directory (`<bench>/base-<commit>/tree` and `/target`), reused after. The profile
/// is `cargo xtask`'s (dev), as the worktree's own Cargo.toml sets it. `None` when there is
/// none (the failures say why: no such commit, a build that failed).
fn base_xtask(bench: &Bench) -> anyhow::Result<(Option<PathBuf>, Vec<Failure>)> {
    let base = bench.dir.join(format!("base-{BASE_COMMIT}"));
    let tree = base.join("tree");
    let target = base.join("target");
    let exe = target.join("debug").join("xtask");
    if exe.is_file() {
        println!(
            "  issue 16's base ({BASE_COMMIT}): {} (built before)",
            bench.layout.display(&exe)
        );
        return Ok((Some(exe), vec![]));
    }
    println!(
        "  building the xtask of issue 16's base ({BASE_COMMIT}) once, in {}: a cold build takes about a minute",
        bench.layout.display(&base)
    );
    let mut failures = Vec::new();
    if !tree.join("Cargo.toml").is_file() {
        // --force: the worktree may be registered still after target/ was deleted.
        let add = plain(
            "git",
            &[
                "worktree",
                "add",
                "--force",
                "--detach",
                &tree.to_string_lossy(),
                BASE_COMMIT,
            ],
            &bench.layout.root,
        );
        failures.extend(run_logged(&add, &bench.log("base-worktree"))?);
    }
    if failures.is_empty() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let build = plain(
            &cargo,
            &[
                "build",
                "-p",
                "xtask",
                "--target-dir",
                &target.to_string_lossy(),
            ],
            &tree,
        );
        failures.extend(run_logged(&build, &bench.log("base-build"))?);
    }
    report_failures("building issue 16's base", &failures);
    Ok((
        (failures.is_empty() && exe.is_file()).then_some(exe),
        failures,
    ))
}

/// Where the loud repository's conftest writes pytest's peak, in bytes.
const PYTEST_PEAK_FILE: &str = "pytest-peak-bytes.txt";

/// Runs `invocation` in `root` once and reads the peak pytest recorded there.
fn run_reading_pytest_peak(
    invocation: &Invocation,
    root: &Path,
    log: &Path,
) -> anyhow::Result<(Option<Failure>, Option<u64>)> {
    let file = root.join(PYTEST_PEAK_FILE);
    let _ = std::fs::remove_file(&file);
    let failure = run_logged(invocation, log)?;
    let peak = std::fs::read_to_string(&file)
        .ok()
        .and_then(|text| text.trim().parse().ok());
    Ok((failure, peak))
}

/// One target: `value <= limit` (or `<` for memory), false when a run it depends on failed.
struct Target {
    name: String,
    value: Option<f64>,
    limit: f64,
    unit: &'static str,
    strict: bool,
    failed_runs: bool,
}

impl Target {
    /// A ratio of at most `limit`.
    fn at_most(
        name: impl Into<String>,
        value: Option<f64>,
        limit: f64,
        failed_runs: bool,
    ) -> Target {
        Target::of_unit(name, value, limit, "x", failed_runs)
    }

    /// A figure in `unit` (`x`, `MB` or `s`) of at most `limit`.
    fn of_unit(
        name: impl Into<String>,
        value: Option<f64>,
        limit: f64,
        unit: &'static str,
        failed_runs: bool,
    ) -> Target {
        Target {
            name: name.into(),
            value,
            limit,
            unit,
            strict: false,
            failed_runs,
        }
    }

    fn met(&self) -> bool {
        !self.failed_runs
            && self.value.is_some_and(|v| {
                if self.strict {
                    v < self.limit
                } else {
                    v <= self.limit
                }
            })
    }

    fn result(&self) -> &'static str {
        match (self.met(), self.failed_runs) {
            (true, _) => "met",
            (false, true) => "not met (a run failed)",
            (false, false) => "not met",
        }
    }

    fn shown(&self, value: f64) -> String {
        match self.unit {
            "MB" => format!("{:.1} MB", value / 1e6),
            "suites" => format!("{value:.0}"),
            "s" => format!("{value:.3} s"),
            _ => format!("{value:.2}x"),
        }
    }

    fn shown_limit(&self) -> String {
        let op = if self.strict { "<" } else { "<=" };
        format!("{op} {}", self.shown(self.limit))
    }
}

/// `report.html` of a run with many tests: its size as written, and how long it takes to
/// render from the run's record and write (median of 5), as recorded and with every test
/// failing with a long traceback (the most a page has to show).
struct PageFigures {
    tests: usize,
    written_bytes: u64,
    secs: f64,
    worst_bytes: u64,
    worst_secs: f64,
}

fn page_figures(repo: &Path, tmp: &Path) -> anyhow::Result<PageFigures> {
    use crate::report::run_record::{RunRecord, TestOutcome};
    let out = repo.join("target").join("xtask");
    let written = out.join("report.html");
    let written_bytes = std::fs::metadata(&written)
        .with_context(|| format!("reading {}", written.display()))?
        .len();
    let record_path = out.join("run.json");
    let text = std::fs::read_to_string(&record_path)
        .with_context(|| format!("reading {}", record_path.display()))?;
    let record: RunRecord = serde_json::from_str(&text)
        .with_context(|| format!("reading {}", record_path.display()))?;
    let timed = |record: &RunRecord, name: &str| -> anyhow::Result<(u64, f64)> {
        let path = tmp.join(name);
        let mut walls = Vec::new();
        let mut bytes = 0;
        for _ in 0..5 {
            let start = Instant::now();
            let page = crate::report::html::render(record);
            paths::write_atomically(&path, page.as_bytes())?;
            walls.push(start.elapsed().as_secs_f64());
            bytes = page.len() as u64;
        }
        Ok((bytes, median(&walls).unwrap_or_default()))
    };
    let (_, secs) = timed(&record, "report.html")?;
    let mut worst = record.clone();
    let traceback = "    assert value == expected\nE   AssertionError: not equal\n".repeat(160);
    for suite in &mut worst.suites {
        suite.counts.failed += suite.counts.passed;
        suite.counts.passed = 0;
        for test in &mut suite.tests {
            test.outcome = TestOutcome::Failed;
            for attempt in &mut test.attempts {
                attempt.outcome = TestOutcome::Failed;
                attempt.message = Some("assert 1 == 2 ".repeat(70));
                attempt.kind = Some("AssertionError".into());
                attempt.details = Some(traceback.clone());
            }
        }
    }
    let (worst_bytes, worst_secs) = timed(&worst, "report-all-failing.html")?;
    Ok(PageFigures {
        tests: record.suites.iter().map(|s| s.tests.len()).sum(),
        written_bytes,
        secs,
        worst_bytes,
        worst_secs,
    })
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// Whether any of `series` had a command fail: the targets on them are then not met.
fn any_failed(series: &[&Series]) -> bool {
    series.iter().any(|s| !s.failures.is_empty())
}

/// What one scenario measured: its series, its targets, ratios shown for information, notes
/// for results.json, lines printed after the table, and its own keys of results.json.
#[derive(Default)]
struct Measured {
    series: Vec<Series>,
    targets: Vec<Target>,
    informative: Vec<(String, Option<f64>)>,
    notes: Vec<String>,
    lines: Vec<String>,
    results: serde_json::Map<String, Value>,
}

pub fn run(layout: &Layout, manifest: &Manifest, args: &BenchArgs) -> anyhow::Result<()> {
    let wants =
        |scenario: BenchScenario| args.scenario.is_empty() || args.scenario.contains(&scenario);
    // The unit suites: the smoke group needs running services no hand-written command
    // starts, so it is left out of both sides (`ci --exclude smoke`).
    let unit = Manifest {
        suites: manifest
            .suites
            .iter()
            .filter(|s| s.group != crate::manifest::SMOKE_GROUP)
            .cloned()
            .collect(),
        ..manifest.clone()
    };
    let manifest = &unit;
    let runs = args.runs.get();
    let uv = toolchain::find_or_install_uv(layout)?
        .to_string_lossy()
        .into_owned();
    let exe = std::env::current_exe().context("finding the xtask binary")?;
    let dir = layout.out_dir().join("bench");
    let logs = dir.join("logs");
    let tmp = dir.join("tmp");
    for d in [&logs, &tmp] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let hand: Vec<Invocation> = manifest
        .suites
        .iter()
        .map(|s| hand_command(s, &layout.root, &uv, &tmp.join("hand")))
        .collect();
    let bench = Bench {
        layout,
        manifest,
        uv: uv.clone(),
        exe: exe.clone(),
        background_script: dir.join("hand-background.sh"),
        dir,
        logs,
        tmp,
        hand,
    };

    let mut notes = vec![
        format!("xtask runs are the binary itself ({}), so cargo's own start-up is not counted", exe.display()),
        "CPU is user+sys of all waited-for descendants (getrusage RUSAGE_CHILDREN deltas)".to_string(),
        format!("the cases of a scenario follow one untimed warm-up run of each and are interleaved round-robin; {runs} timed run(s) each"),
    ];
    println!(
        "xtask bench: {runs} run(s) per scenario; logs in {}",
        layout.display(&bench.logs)
    );
    for note in &notes {
        println!("  note: {note}");
    }

    let mut measured = Vec::new();
    if wants(BenchScenario::Repo) {
        measured.push(repo(&bench, runs)?);
    }
    if wants(BenchScenario::Many) || wants(BenchScenario::Recording) {
        measured.push(many_tests(
            &bench,
            runs,
            wants(BenchScenario::Many),
            wants(BenchScenario::Recording),
        )?);
    }
    if wants(BenchScenario::Loud) {
        measured.push(loud(&bench, runs)?);
    }
    if wants(BenchScenario::Rerun) {
        measured.push(rerun(&bench, runs)?);
    }
    if wants(BenchScenario::Slices) {
        measured.push(slices(&bench, runs)?);
    }
    if wants(BenchScenario::Split) {
        measured.push(split(&bench, runs)?);
    }
    if wants(BenchScenario::Cache) {
        measured.push(cache(&bench, runs)?);
    }

    let all_series: Vec<&Series> = measured.iter().flat_map(|m| &m.series).collect();
    let targets: Vec<&Target> = measured.iter().flat_map(|m| &m.targets).collect();
    let informative: Vec<&(String, Option<f64>)> =
        measured.iter().flat_map(|m| &m.informative).collect();
    println!();
    println!(
        "{:<58} {:>5} {:>12} {:>12}  failed",
        "scenario", "runs", "median wall", "median CPU"
    );
    for series in &all_series {
        println!(
            "{:<58} {:>5} {:>12} {:>12}  {}",
            series.label,
            series.walls.len(),
            fmt_secs(series.wall()),
            fmt_secs(series.cpu()),
            series.failures.len()
        );
    }
    println!();
    println!("{:<62} {:>9} {:>9}  result", "target", "measured", "limit");
    for target in &targets {
        println!(
            "{:<62} {:>9} {:>9}  {}",
            target.name,
            target.value.map_or("-".into(), |v| target.shown(v)),
            target.shown_limit(),
            target.result(),
        );
    }
    for (name, value) in &informative {
        println!(
            "{name:<62} {:>9}  (not a target)",
            value.map_or("-".into(), |v| format!("{v:.2}x"))
        );
    }
    for line in measured.iter().flat_map(|m| &m.lines) {
        println!("{line}");
    }

    let failures: Vec<&Failure> = all_series.iter().flat_map(|s| &s.failures).collect();
    if !failures.is_empty() {
        println!(
            "\n{} command(s) failed; their timings are not to be trusted:",
            failures.len()
        );
        for f in &failures {
            println!(
                "  `{}` ended with {} (log: {})",
                f.command,
                f.ended,
                f.log.display()
            );
        }
    }
    let all_met = targets.iter().all(|t| t.met());
    notes.extend(measured.iter().flat_map(|m| m.notes.iter().cloned()));
    let mut results = json!({
        "runs": runs,
        "uv": uv,
        "xtask": exe,
        "notes": notes,
        "hand_commands": bench.hand.iter().map(shell_line).collect::<Vec<_>>(),
        "scenarios": all_series.iter().map(|s| s.json()).collect::<Vec<_>>(),
        "targets": targets.iter().map(|t| json!({
            "name": t.name, "value": t.value, "limit": t.limit, "unit": t.unit,
            "met": t.met(), "failed_runs": t.failed_runs,
        })).collect::<Vec<_>>(),
        "informative": informative.iter().map(|(name, value)| json!({ "name": name, "value": value })).collect::<Vec<_>>(),
        "all_targets_met": all_met,
        "failed_commands": failures.len(),
    });
    if let Value::Object(results) = &mut results {
        for m in &measured {
            results.extend(m.results.clone());
        }
    }
    let results_path = bench.dir.join("results.json");
    paths::write_atomically(
        &results_path,
        serde_json::to_string_pretty(&results)?.as_bytes(),
    )?;
    println!("results: {}", layout.display(&results_path));

    if !failures.is_empty() || (!all_met && !args.no_targets) {
        return Err(crate::error::Error::BenchFailed.into());
    }
    Ok(())
}

/// This repository: the hand commands against `xtask ci`, warm and cold.
fn repo(bench: &Bench, runs: usize) -> anyhow::Result<Measured> {
    std::fs::write(&bench.background_script, bench.background_script())
        .with_context(|| format!("writing {}", bench.background_script.display()))?;
    println!("  hand commands (from the manifest):");
    for invocation in &bench.hand {
        println!("    {}", shell_line(invocation));
    }
    let series_of = |temperature: &str| -> Vec<Series> {
        SCENARIOS
            .iter()
            .map(|s| {
                Series::new(
                    &format!("{}-{temperature}", s.key()),
                    &format!("{} ({temperature})", s.label()),
                )
            })
            .collect()
    };
    let (mut warm, mut cold) = (series_of("warm"), series_of("cold"));
    let run = |case: usize| bench.run(SCENARIOS[case]);
    warm_up(&mut warm, run)?;
    side_by_side("warm", runs, &mut warm, |_| Ok(()), run, |_| vec![])?;
    side_by_side(
        "cold",
        runs,
        &mut cold,
        |case| bench.make_cold(SCENARIOS[case]),
        run,
        |_| vec![],
    )?;

    let at = |scenario: Scenario| {
        SCENARIOS
            .iter()
            .position(|s| *s == scenario)
            .expect("every scenario has a series")
    };
    let (seq, bg, ci, ci1) = (
        at(Scenario::HandSequential),
        at(Scenario::HandBackground),
        at(Scenario::XtaskCi),
        at(Scenario::XtaskCiJ1),
    );
    let targets = vec![
        Target::at_most(
            "warm `xtask ci` wall / backgrounded script wall",
            ratio(warm[ci].wall(), warm[bg].wall()),
            0.85,
            any_failed(&[&warm[ci], &warm[bg]]),
        ),
        Target::at_most(
            "warm `xtask ci` CPU / hand one after another CPU",
            ratio(warm[ci].cpu(), warm[seq].cpu()),
            1.0,
            any_failed(&[&warm[ci], &warm[seq]]),
        ),
        Target::at_most(
            "warm `xtask ci -j 1` wall / hand one after another wall",
            ratio(warm[ci1].wall(), warm[seq].wall()),
            1.0,
            any_failed(&[&warm[ci1], &warm[seq]]),
        ),
    ];
    let informative = vec![
        (
            "cold `xtask ci` wall / backgrounded script wall".to_string(),
            ratio(cold[ci].wall(), cold[bg].wall()),
        ),
        (
            "cold `xtask ci` CPU / hand one after another CPU".to_string(),
            ratio(cold[ci].cpu(), cold[seq].cpu()),
        ),
        (
            "cold `xtask ci -j 1` wall / hand one after another wall".to_string(),
            ratio(cold[ci1].wall(), cold[seq].wall()),
        ),
    ];
    Ok(Measured {
        // Each scenario warm, then cold.
        series: warm.into_iter().zip(cold).flat_map(|(w, c)| [w, c]).collect(),
        targets,
        informative,
        notes: vec!["cold: before each run the environments are deleted (hand: each project suite's <dir>/.venv; xtask: target/xtask/envs, where it keeps its own); the uv cache stays warm".to_string()],
        ..Measured::default()
    })
}

/// 20,000 tests: `xtask test` against plain pytest and report.html's figures (`plain`), and
/// against the xtask of issue 16's base (`base`), side by side.
fn many_tests(
    bench: &Bench,
    runs: usize,
    plain_too: bool,
    base_too: bool,
) -> anyhow::Result<Measured> {
    let mut measured = Measured::default();
    let many_root = bench.dir.join("many");
    generate_repo(&many_root, &many_suite())?;
    println!("  20,000 tests in {}:", bench.layout.display(&many_root));
    let mut cases = vec![bench.xtask(&many_root, &["test"])];
    let mut junits = vec![xtask_junit(&many_root)];
    let mut series = vec![Series::new("many-xtask", "xtask test, 20,000 tests")];
    println!("    xtask: {}", shell_line(&cases[0]));
    if plain_too {
        let venv = bench.dir.join("pytest-venv");
        let python = venv.join("bin").join("python");
        let mut setup_failures = Vec::new();
        if !python.is_file() {
            let venv_text = venv.to_string_lossy().into_owned();
            let create = plain(&bench.uv, &["venv", "--quiet", &venv_text], &bench.dir);
            setup_failures.extend(run_logged(&create, &bench.log("pytest-venv"))?);
        }
        let python_text = python.to_string_lossy().into_owned();
        let install = plain(
            &bench.uv,
            &[
                "pip",
                "install",
                "--quiet",
                "--python",
                &python_text,
                PYTEST,
            ],
            &bench.dir,
        );
        setup_failures.extend(run_logged(&install, &bench.log("pytest-venv-install"))?);
        report_failures("setting up the plain pytest venv", &setup_failures);
        let many_junit = bench.tmp.join("many-pytest.xml");
        let many_pytest = plain(
            &python_text,
            &[
                "-m",
                "pytest",
                &format!("--junitxml={}", many_junit.display()),
                "tests/many",
            ],
            &many_root,
        );
        println!("    plain: {}", shell_line(&many_pytest));
        let mut pytest_series = Series::new("many-pytest", "plain pytest, 20,000 tests");
        pytest_series.failures.extend(setup_failures);
        cases.push(many_pytest);
        junits.push(many_junit);
        series.push(pytest_series);
        measured.notes.push(format!(
            "20,000 tests: `xtask test` against plain pytest in one venv made with `uv venv` + `uv pip install {PYTEST}` (`python -m pytest --junitxml=... tests/many`), isolating pytest's own cost"
        ));
    }
    let base_label = format!("xtask test at issue 16's base ({BASE_COMMIT}), 20,000 tests");
    let base_at = if base_too {
        let (exe, failures) = base_xtask(bench)?;
        let mut base_series = Series::new("many-base", &base_label);
        base_series.failures.extend(failures);
        match exe {
            Some(exe) => {
                // A copy of its own: the two binaries' environments and runs never meet.
                let base_root = bench.dir.join("many-base");
                generate_repo(&base_root, &many_suite())?;
                let base = bench.xtask_of(&exe, &base_root, &["test"]);
                println!("    base:  {}", shell_line(&base));
                cases.push(base);
                junits.push(xtask_junit(&base_root));
                series.push(base_series);
                measured.notes.push(format!(
                    "recording: the same 20,000 tests (their own copy, target/xtask/bench/many-base/) under the xtask built from issue 16's base {BASE_COMMIT} (dev profile, as `cargo xtask` builds), interleaved with this xtask"
                ));
                Some(series.len() - 1)
            }
            None => {
                measured.series.push(base_series);
                None
            }
        }
    } else {
        None
    };

    let logs: Vec<PathBuf> = series.iter().map(|s| bench.log(&s.key)).collect();
    // Every case's JUnit report must hold every test: the base read the manifest as this
    // xtask does, and no case ran fewer.
    let (run, check) = counted_runs(&cases, &logs, |case| junits[case].clone(), MANY_TESTS);
    warm_up(&mut series, run)?;
    side_by_side("20,000 tests", runs, &mut series, |_| Ok(()), run, check)?;

    if plain_too {
        measured.targets.push(Target::at_most(
            "20,000 tests: `xtask test` wall / plain pytest wall",
            ratio(series[0].wall(), series[1].wall()),
            1.1,
            any_failed(&[&series[0], &series[1]]),
        ));
        measured
            .targets
            .extend(page_targets(&many_root, bench, &series[0])?);
        measured.notes.push("report.html: the size of the page the 20,000-test run wrote; the time is the median of 5 renders of its run.json plus the atomic write (report::html::render, paths::write_atomically), in this process; `all failing` is the same record with every test failed, an 8 KB traceback and a 1 KB message each".to_string());
    }
    if base_too {
        let base = base_at.map(|b| &series[b]);
        let failed = base.is_none_or(|b| any_failed(&[&series[0], b]))
            || measured.series.iter().any(|s| !s.failures.is_empty());
        measured.targets.push(Target::at_most(
            format!("20,000 tests: `xtask test` wall / issue 16's base ({BASE_COMMIT})"),
            ratio(series[0].wall(), base.and_then(Series::wall)),
            RECORDING_LIMIT,
            failed,
        ));
        measured.informative.push((
            format!("20,000 tests: `xtask test` CPU / issue 16's base ({BASE_COMMIT})"),
            ratio(series[0].cpu(), base.and_then(Series::cpu)),
        ));
    }
    measured.series.splice(0..0, series);
    Ok(measured)
}

/// The report.html targets, from the 20,000-test run `xtask` just made.
fn page_targets(many_root: &Path, bench: &Bench, xtask: &Series) -> anyhow::Result<Vec<Target>> {
    let page = page_figures(many_root, &bench.tmp);
    match &page {
        Ok(page) => println!(
            "  report.html, {} tests: {} bytes as written; rendered and written again in {:.3} s; \
             every test failing: {} bytes in {:.3} s",
            page.tests, page.written_bytes, page.secs, page.worst_bytes, page.worst_secs
        ),
        Err(err) => println!("  report.html of the 20,000-test run: {err:#}"),
    }
    let page = page.ok();
    let failed = any_failed(&[xtask]);
    let bytes = PAGE_LIMIT_BYTES as f64;
    Ok(vec![
        Target::of_unit(
            "report.html, 20,000 tests: size",
            page.as_ref().map(|p| p.written_bytes as f64),
            bytes,
            "MB",
            failed,
        ),
        Target::of_unit(
            "report.html, 20,000 tests: render + write",
            page.as_ref().map(|p| p.secs),
            PAGE_LIMIT_SECS,
            "s",
            failed,
        ),
        Target::of_unit(
            "report.html, 20,000 tests all failing: size",
            page.as_ref().map(|p| p.worst_bytes as f64),
            bytes,
            "MB",
            failed,
        ),
        Target::of_unit(
            "report.html, 20,000 tests all failing: render + write",
            page.as_ref().map(|p| p.worst_secs),
            PAGE_LIMIT_SECS,
            "s",
            failed,
        ),
    ])
}

/// A test printing 500 MB: the xtask's peak memory, once (the peak is what matters, not a
/// median); then that passing test under the xtask and under its hand command, side by side:
/// pytest's own peak (its conftest reads getrusage after the JUnit file is written) and the
/// wall time of each whole command.
fn loud(bench: &Bench, runs: usize) -> anyhow::Result<Measured> {
    let loud_root = bench.dir.join("loud");
    generate_repo(&loud_root, &loud_suite())?;
    let loud = bench.xtask(&loud_root, &["test"]);
    println!("  500 MB of output: {}", shell_line(&loud));
    let mut loud_series = Series::new("loud-xtask", "xtask test, a test printing 500 MB");
    let record = loud_root.join("target").join("xtask").join("run.json");
    let _ = std::fs::remove_file(&record);
    let ((failure, polled), wall, cpu) =
        timed(|| run_polling_peak(&loud, &bench.log("loud-xtask")))?;
    println!("  500 MB of output: {wall:.2} s wall, {cpu:.2} s CPU");
    let failures: Vec<Failure> = failure.into_iter().collect();
    report_failures("500 MB of output", &failures);
    loud_series.push(wall, cpu, failures);
    let recorded = std::fs::read_to_string(&record)
        .ok()
        .and_then(|text| serde_json::from_str::<crate::report::run_record::RunRecord>(&text).ok())
        .and_then(|record| record.peak_rss_bytes);
    let (peak, peak_source) = match (recorded, polled) {
        (Some(bytes), _) => (Some(bytes), "run.json peak_rss_bytes (VmHWM of the xtask's own image, /proc/self/status)"),
        (None, Some(bytes)) => (Some(bytes), "polled /proc/<pid>/status VmHWM of the xtask every 20 ms (run.json has no peak_rss_bytes)"),
        (None, None) => (None, "unknown: run.json has no peak_rss_bytes and /proc could not be read"),
    };

    let loud_manifest = Manifest::load(&Layout::new(loud_root.clone()))
        .context("loading the generated loud repository's manifest")?;
    let loud_hand = hand_command(
        &loud_manifest.suites[0],
        &loud_root,
        &bench.uv,
        &bench.tmp.join("loud-hand"),
    );
    println!("  a loud passing test, hand: {}", shell_line(&loud_hand));
    let cases = [&loud, &loud_hand];
    let mut side = vec![
        Series::new(
            "loud-side-xtask",
            "xtask test, a passing test printing 500 MB",
        ),
        Series::new(
            "loud-side-hand",
            "hand command, a passing test printing 500 MB",
        ),
    ];
    let logs: Vec<PathBuf> = side.iter().map(|s| bench.log(&s.key)).collect();
    let mut pytest_peaks: Vec<Vec<f64>> = vec![Vec::new(), Vec::new()];
    side_by_side(
        "a loud passing test",
        runs,
        &mut side,
        |_| Ok(()),
        |case| {
            let (failure, peak) = run_reading_pytest_peak(cases[case], &loud_root, &logs[case])?;
            println!(
                "    pytest peak {}",
                peak.map_or("unknown".into(), |b| format!("{:.0} MB", b as f64 / 1e6))
            );
            pytest_peaks[case].extend(peak.map(|b| b as f64));
            Ok(failure.into_iter().collect())
        },
        |_| vec![],
    )?;
    let pytest_peak = |case: usize| median(&pytest_peaks[case]);
    let targets = vec![
        Target::at_most(
            "loud passing test: pytest peak, xtask / hand",
            ratio(pytest_peak(0), pytest_peak(1)),
            1.1,
            any_failed(&[&side[0], &side[1]]),
        ),
        Target::at_most(
            "loud passing test: `xtask test` wall / hand wall",
            ratio(side[0].wall(), side[1].wall()),
            1.1,
            any_failed(&[&side[0], &side[1]]),
        ),
        Target {
            strict: true,
            ..Target::of_unit(
                "peak memory of the xtask, a test printing 500 MB",
                peak.map(|b| b as f64),
                MEMORY_LIMIT_BYTES as f64,
                "MB",
                any_failed(&[&loud_series]),
            )
        },
    ];
    let mut results = serde_json::Map::new();
    results.insert("peak_rss_bytes".into(), json!(peak));
    results.insert("peak_rss_source".into(), json!(peak_source));
    results.insert(
        "pytest_peak_bytes".into(),
        json!({ "xtask": pytest_peak(0), "hand": pytest_peak(1) }),
    );
    let mut series = vec![loud_series];
    series.extend(side);
    Ok(Measured {
        series,
        targets,
        notes: vec![
            format!("peak memory: {peak_source}"),
            "a loud passing test: pytest's peak is what its conftest reads from getrusage(RUSAGE_SELF) at pytest_unconfigure, after the JUnit file is written".to_string(),
        ],
        lines: vec![format!("peak memory source: {peak_source}")],
        results,
        ..Measured::default()
    })
}

/// `ci --rerun latest` against the full `ci` it follows, on a generated repository of eight
/// suites: each round, the full `ci` with three tests of two suites failing (`FAILING_FILE`
/// lists them), then, the list emptied (the fix), the rerun. Each run's record is checked
/// (untimed): a `ci` that did not fail exactly those, or a rerun that ran anything else, is
/// a failed command.
fn rerun(bench: &Bench, runs: usize) -> anyhow::Result<Measured> {
    let root = bench.dir.join("rerun");
    generate_repo(&root, &rerun_suites())?;
    let failing_file = root.join(FAILING_FILE);
    let failing: String = RERUN_FAILING
        .iter()
        .map(|&(s, f, t)| rerun_key(s, f, t) + "\n")
        .collect();
    let full = bench.xtask(&root, &["ci"]);
    let again = bench.xtask(&root, &["ci", "--rerun", "latest"]);
    println!("  a rerun, in {}:", bench.layout.display(&root));
    println!("    full:  {}", shell_line(&full));
    println!("    rerun: {}", shell_line(&again));
    let cases = [&full, &again];
    let mut series = vec![
        Series::new(
            "rerun-full-ci",
            &format!(
                "xtask ci, {RERUN_SUITES} suites, {} tests failing",
                RERUN_FAILING.len()
            ),
        ),
        Series::new("rerun-latest", "xtask ci --rerun latest, after it"),
    ];
    let logs: Vec<PathBuf> = series.iter().map(|s| bench.log(&s.key)).collect();
    let write_failing = |text: &str| {
        std::fs::write(&failing_file, text)
            .with_context(|| format!("writing {}", failing_file.display()))
    };
    // The warm-up: a full `ci` that passes builds the environments.
    write_failing("")?;
    warm_up(&mut series[..1], |_| {
        Ok(run_logged(&full, &logs[0])?.into_iter().collect())
    })?;
    side_by_side(
        "rerun",
        runs,
        &mut series,
        |case| write_failing(if case == 0 { &failing } else { "" }),
        |case| {
            let expected = if case == 0 {
                i32::from(crate::exit_codes::TESTS_FAILED)
            } else {
                0
            };
            Ok(run_expecting(cases[case], expected, &logs[case])?
                .into_iter()
                .collect())
        },
        |case| {
            rerun_mismatch(&root, case == 1)
                .map(|mismatch| Failure {
                    command: shell_line(cases[case]),
                    ended: mismatch,
                    exit_code: None,
                    log: logs[case].clone(),
                })
                .into_iter()
                .collect()
        },
    )?;
    Ok(Measured {
        targets: vec![Target::at_most(
            "rerun of 3 failing tests in 2 of 8 suites: wall / full `ci`",
            ratio(series[1].wall(), series[0].wall()),
            RERUN_LIMIT,
            any_failed(&[&series[0], &series[1]]),
        )],
        informative: vec![(
            "rerun of 3 failing tests in 2 of 8 suites: CPU / full `ci`".to_string(),
            ratio(series[1].cpu(), series[0].cpu()),
        )],
        notes: vec![format!(
            "rerun: {RERUN_SUITES} generated suites of {} tests (target/xtask/bench/rerun/); each round a full `ci` with {} tests of 2 suites failing, then `ci --rerun latest` once they pass; both records checked",
            RERUN_FILES * RERUN_TESTS_PER_FILE,
            RERUN_FAILING.len()
        )],
        series,
        ..Measured::default()
    })
}

fn slices_suite() -> Vec<GeneratedSuite> {
    let per_file = SLICES_TESTS / SLICES_FILES;
    let mut long = SLICES_LONG
        .iter()
        .flat_map(|&(count, secs)| std::iter::repeat_n(secs, count));
    let files = (0..SLICES_FILES)
        .map(|f| {
            let mut text = String::from(
                "# Written by `cargo xtask bench`: a few long tests, many short ones.\nimport time\n",
            );
            for t in 0..per_file {
                let body = match if f == 0 { long.next() } else { None } {
                    Some(secs) => format!("time.sleep({secs})"),
                    None => "pass".to_string(),
                };
                text.push_str(&format!("\n\ndef test_{f:02}_{t:03}():\n    {body}\n"));
            }
            (format!("test_skewed_{f:02}.py"), text)
        })
        .collect();
    vec![("skewed".into(), files)]
}

/// The sum of the recorded durations of suite `skewed`'s tests in the run.json at `root`
/// (its latest run), and how many tests it ran.
fn slice_figure(root: &Path) -> anyhow::Result<(f64, usize)> {
    let path = root.join("target").join("xtask").join("run.json");
    let record = crate::report::run_record::load(&path).map_err(|err| anyhow::anyhow!("{err}"))?;
    let tests: Vec<f64> = record
        .suites
        .iter()
        .filter(|s| s.name == "skewed")
        .flat_map(|s| &s.tests)
        .filter(|t| !t.synthetic)
        .map(|t| t.duration_secs.unwrap_or(0.0))
        .collect();
    Ok((tests.iter().sum(), tests.len()))
}

/// 2,000 tests of skewed durations: one whole run records the durations and `cargo xtask
/// durations` writes them to the repository's `.xtask/durations.json`; then, each round, the
/// 4 `durations:K/4` slices and the 4 `hash:K/4` slices run one after another. Each split's
/// figure is its slowest slice against the ideal (the 4 slices' total / 4), both from the
/// slices' own recorded test durations; the slices must together run all 2,000 tests.
fn slices(bench: &Bench, runs: usize) -> anyhow::Result<Measured> {
    let root = bench.dir.join("slices");
    generate_repo(&root, &slices_suite())?;
    let durations_file = root.join(crate::durations::DEFAULT_FILE);
    let _ = std::fs::remove_file(&durations_file);
    let whole = bench.xtask(&root, &["test", "skewed"]);
    let write = bench.xtask(&root, &["durations"]);
    println!("  slices, in {}:", bench.layout.display(&root));
    println!("    record: {}", shell_line(&whole));
    println!("    write:  {}", shell_line(&write));
    let modes = ["durations", "hash"];
    let slice_runs: Vec<Vec<Invocation>> = modes
        .iter()
        .map(|mode| {
            (1..=SLICES)
                .map(|k| {
                    let partition = format!("{mode}:{k}/{SLICES}");
                    bench.xtask(&root, &["test", "skewed", "--partition", &partition])
                })
                .collect()
        })
        .collect();
    let mut series: Vec<Series> = modes
        .iter()
        .map(|mode| {
            Series::new(
                &format!("slices-{mode}"),
                &format!("xtask test --partition {mode}:K/{SLICES}, the {SLICES} slices"),
            )
        })
        .collect();
    let logs: Vec<PathBuf> = series.iter().map(|s| bench.log(&s.key)).collect();
    // Once, untimed by the rounds: the whole suite (it builds the environment too), then
    // its durations written where every slice run reads them.
    let mut whole_series = [Series::new(
        "slices-whole",
        "xtask test, 2,000 skewed tests (once: records durations)",
    )];
    let whole_log = bench.log("slices-whole");
    let (failures, wall, cpu) = timed(|| {
        let mut failures: Vec<Failure> = run_logged(&whole, &whole_log)?.into_iter().collect();
        failures.extend(run_logged(
            &write,
            &whole_log.with_extension("durations.log"),
        )?);
        Ok(failures)
    })?;
    report_failures("recording durations", &failures);
    whole_series[0].push(wall, cpu, failures);
    // Per mode, per round: the slowest slice / (total / SLICES).
    let mut figures: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    let mut slice_secs: Vec<Vec<Vec<f64>>> = vec![Vec::new(); modes.len()];
    // This round's slices: each one's recorded test seconds, and how many tests they ran.
    let this_round = std::cell::RefCell::new((Vec::<f64>::new(), 0usize));
    side_by_side(
        "slices",
        runs,
        &mut series,
        |_| {
            *this_round.borrow_mut() = (Vec::new(), 0);
            Ok(())
        },
        |case| {
            let mut failures = Vec::new();
            for invocation in &slice_runs[case] {
                failures.extend(run_logged(invocation, &logs[case])?);
                let (secs, tests) = slice_figure(&root)?;
                let mut round = this_round.borrow_mut();
                round.0.push(secs);
                round.1 += tests;
            }
            Ok(failures)
        },
        |case| {
            let (round, ran) = &*this_round.borrow();
            let ran = *ran;
            let total: f64 = round.iter().sum();
            let slowest = round.iter().copied().fold(0.0, f64::max);
            if total > 0.0 {
                figures[case].push(slowest / (total / f64::from(SLICES)));
            }
            slice_secs[case].push(round.to_vec());
            (ran != SLICES_TESTS)
                .then(|| Failure {
                    command: format!("the {} slices", modes[case]),
                    ended: format!("ran {ran} tests together, not {SLICES_TESTS}"),
                    exit_code: None,
                    log: logs[case].clone(),
                })
                .into_iter()
                .collect()
        },
    )?;
    let failed = any_failed(&[&whole_series[0], &series[0], &series[1]]);
    let lines = modes
        .iter()
        .zip(&slice_secs)
        .map(|(mode, rounds)| {
            let shown: Vec<String> = rounds
                .iter()
                .map(|r| {
                    let secs: Vec<String> = r.iter().map(|s| format!("{s:.2}")).collect();
                    format!("[{}]", secs.join(", "))
                })
                .collect();
            format!(
                "slices: {mode}:K/{SLICES}, each slice's recorded test seconds per round: {}",
                shown.join(" ")
            )
        })
        .collect();
    let mut results = serde_json::Map::new();
    results.insert(
        "slices".into(),
        json!({
            "tests": SLICES_TESTS,
            "slices": SLICES,
            "durations_slowest_vs_ideal": figures[0],
            "hash_slowest_vs_ideal": figures[1],
            "durations_slice_secs": slice_secs[0],
            "hash_slice_secs": slice_secs[1],
        }),
    );
    let mut all_series = whole_series.into_iter().collect::<Vec<_>>();
    all_series.extend(series);
    Ok(Measured {
        targets: vec![Target::at_most(
            format!("{SLICES_TESTS} skewed tests: slowest of {SLICES} durations slices / ideal"),
            median(&figures[0]),
            SLICES_LIMIT,
            failed,
        )],
        informative: vec![(
            format!("{SLICES_TESTS} skewed tests: slowest of {SLICES} hash slices / ideal"),
            median(&figures[1]),
        )],
        notes: vec![format!(
            "slices: {SLICES_TESTS} generated tests in {SLICES_FILES} files (target/xtask/bench/slices/), {} sleeping (0.05 to 0.5 s, all in the first file) and the rest passing at once; one whole run records durations, `cargo xtask durations` writes .xtask/durations.json; each round runs the {SLICES} durations slices, then the {SLICES} hash slices, one after another; a split's figure is its slowest slice's recorded test seconds over the {SLICES} slices' total / {SLICES} (median over rounds)",
            SLICES_LONG.iter().map(|(n, _)| n).sum::<usize>()
        )],
        lines,
        results,
        series: all_series,
    })
}

/// The 20,000 tests of `many`, in a copy of their own (target/xtask/bench/split/), as one
/// suite run whole and as `--split 2`, side by side; each run's JUnit must count every test.
fn split(bench: &Bench, runs: usize) -> anyhow::Result<Measured> {
    let root = bench.dir.join("split");
    generate_repo(&root, &many_suite())?;
    let cases = [
        bench.xtask(&root, &["test", "--split", "1"]),
        bench.xtask(&root, &["test", "--split", SPLIT_SLICES]),
    ];
    println!("  one suite split, in {}:", bench.layout.display(&root));
    println!("    whole: {}", shell_line(&cases[0]));
    println!("    split: {}", shell_line(&cases[1]));
    let mut series = vec![
        Series::new("split-1", "xtask test, 20,000 tests in one suite, unsplit"),
        Series::new(
            "split-2",
            &format!("xtask test --split {SPLIT_SLICES}, the same 20,000 tests"),
        ),
    ];
    let logs: Vec<PathBuf> = series.iter().map(|s| bench.log(&s.key)).collect();
    let junit = xtask_junit(&root);
    let (run, check) = counted_runs(&cases, &logs, |_| junit.clone(), MANY_TESTS);
    warm_up(&mut series, run)?;
    side_by_side("split", runs, &mut series, |_| Ok(()), run, check)?;
    Ok(Measured {
        targets: vec![Target::at_most(
            format!("20,000 tests: `--split {SPLIT_SLICES}` wall / unsplit"),
            ratio(series[1].wall(), series[0].wall()),
            SPLIT_LIMIT,
            any_failed(&[&series[0], &series[1]]),
        )],
        informative: vec![(
            format!("20,000 tests: `--split {SPLIT_SLICES}` CPU / unsplit"),
            ratio(series[1].cpu(), series[0].cpu()),
        )],
        notes: vec![format!(
            "split: the 20,000 generated tests of `many` in one suite (their own copy, target/xtask/bench/split/), `xtask test --split 1` and `--split {SPLIT_SLICES}` (with -j the cores: {} here) interleaved; each run's junit.xml must count every test once",
            std::thread::available_parallelism().map_or(1, usize::from)
        )],
        series,
        ..Measured::default()
    })
}

/// The suites of the latest run at `root`: those that ran, and how many were replayed.
fn ran_and_cached(root: &Path) -> anyhow::Result<(Vec<String>, usize)> {
    let path = root.join("target/xtask/run.json");
    let record = crate::report::run_record::load(&path).map_err(crate::error::Error::from)?;
    let ran = record
        .suites
        .iter()
        .filter(|s| s.cached.is_none())
        .map(|s| s.name.clone())
        .collect();
    let cached = record.suites.iter().filter(|s| s.cached.is_some()).count();
    Ok((ran, cached))
}

/// The result cache, on a copy of this repository's suites (every file that is an input
/// of one, and the manifest): a no-change `ci --exclude smoke` against a warm `--no-cache`
/// one; then which suites run after one file of the first suite's directory changes;
/// then hashing the inputs of a generated tree of `HASH_FILES` files, warm.
fn cache(bench: &Bench, runs: usize) -> anyhow::Result<Measured> {
    let root = bench.dir.join("cache-repo");
    let layout = bench.layout;
    let uv = PathBuf::from(&bench.uv);
    let suites: Vec<&Suite> = bench.manifest.suites.iter().collect();
    let facts = crate::facts::Facts::gather(&layout.root, &suites, &[]);
    let plans: Vec<_> = suites
        .iter()
        .map(|s| crate::plan::plan_run(s, layout, &uv, &facts, &Default::default()))
        .collect();
    let inputs = crate::cache::Cache::open(layout, &plans);
    let files = inputs.input_files();
    for file in files.iter().chain([&"Cargo.toml".to_string()]) {
        let from = layout.root.join(file);
        if !from.is_file() {
            continue;
        }
        let to = root.join(file);
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::copy(&from, &to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    }
    let args = ["ci", "--exclude", crate::manifest::SMOKE_GROUP];
    let cases = [
        bench.xtask(&root, &args),
        bench.xtask_cached(&root, &args),
        bench.xtask_cached(&root, &args),
    ];
    println!(
        "  the result cache, on a copy of the suites' inputs in {}:",
        layout.display(&root)
    );
    println!("    every suite run: {}", shell_line(&cases[0]));
    println!("    nothing changed: {}", shell_line(&cases[1]));
    println!("    the cache emptied first: {}", shell_line(&cases[2]));
    let mut series = vec![
        Series::new("cache-no-cache", "xtask ci --no-cache, warm"),
        Series::new("cache-unchanged", "xtask ci, nothing changed (all cached)"),
        Series::new(
            "cache-missed",
            "xtask ci, the cache emptied (all run, stored)",
        ),
    ];
    let cache_dir = crate::cache::Cache::dir(&Layout::new(&root));
    let logs: Vec<PathBuf> = series.iter().map(|s| bench.log(&s.key)).collect();
    let count = suites.len();
    let run = |case: usize| -> anyhow::Result<Vec<Failure>> {
        Ok(run_logged(&cases[case], &logs[case])?.into_iter().collect())
    };
    let check = |case: usize| -> Vec<Failure> {
        let wrong = match ran_and_cached(&root) {
            Ok((ran, cached)) if case != 1 && ran.len() == count && cached == 0 => None,
            Ok((ran, cached)) if case == 1 && ran.is_empty() && cached == count => None,
            Ok((ran, cached)) => Some(format!(
                "{} suites ran and {cached} were replayed ({})",
                ran.len(),
                ran.join(", ")
            )),
            Err(err) => Some(format!("its run.json could not be read: {err:#}")),
        };
        wrong
            .map(|ended| Failure {
                command: shell_line(&cases[case]),
                ended,
                exit_code: None,
                log: logs[case].clone(),
            })
            .into_iter()
            .collect()
    };
    // Untimed: the third case starts from an empty cache, and stores every suite again.
    let prepare = |case: usize| -> anyhow::Result<()> {
        if case == 2 && cache_dir.exists() {
            std::fs::remove_dir_all(&cache_dir)
                .with_context(|| format!("emptying {}", cache_dir.display()))?;
        }
        Ok(())
    };
    // The warm-ups build the environments and fill the cache.
    warm_up(&mut series, |case| {
        prepare(case)?;
        run(case)
    })?;
    side_by_side("cache", runs, &mut series, prepare, run, check)?;

    // One file of the first suite's directory changed: only the suites whose directory
    // or pythonpath holds it may run.
    let mut lines = Vec::new();
    let first = &suites[0];
    let prefix = format!("{}/", first.dir.trim_end_matches('/'));
    let edited = files
        .iter()
        .find(|f| f.starts_with(&prefix) && f.ends_with(".py"))
        .cloned();
    let mut wrong = None;
    let mut edit_failed = Vec::new();
    if let Some(edited) = &edited {
        let path = root.join(edited);
        let mut text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        text.push_str("\n# edited by `cargo xtask bench`\n");
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        let log = bench.log("cache-edited");
        edit_failed.extend(run_logged(&cases[1], &log)?);
        let holds = |dir: &str| {
            let dir = dir.trim_end_matches('/');
            dir.is_empty() || dir == "." || edited.starts_with(&format!("{dir}/"))
        };
        let expected: Vec<String> = suites
            .iter()
            .filter(|s| holds(&s.dir) || s.pythonpath.iter().any(|p| holds(p)))
            .map(|s| s.name.clone())
            .collect();
        let (ran, _) = ran_and_cached(&root)?;
        let extra: Vec<&String> = ran.iter().filter(|s| !expected.contains(s)).collect();
        let missing: Vec<&String> = expected.iter().filter(|s| !ran.contains(s)).collect();
        lines.push(format!(
            "after editing {edited}: ran {} (expected {}); {} ran that need not, {} needed to and did not",
            ran.join(", "),
            expected.join(", "),
            extra.len(),
            missing.len()
        ));
        wrong = Some((extra.len() + missing.len()) as f64);
    }

    // Hashing a tree of HASH_FILES files, warm.
    let (hash_secs, hashed) = hash_figure(&bench.dir.join("hash-tree"), &uv, runs.max(5))?;
    lines.push(format!(
        "hashing the inputs of a {hashed}-file tree, warm (git ls-files, a stat of each, the stat cache): median {:.1} ms",
        hash_secs * 1e3
    ));
    let failed = any_failed(&[&series[0], &series[1], &series[2]]);
    Ok(Measured {
        targets: vec![
            Target::at_most(
                "no-change `ci --exclude smoke`: wall / warm `--no-cache`",
                ratio(series[1].wall(), series[0].wall()),
                CACHE_LIMIT,
                failed,
            ),
            Target::of_unit(
                format!(
                    "suites run wrongly after editing {}",
                    edited.as_deref().unwrap_or("a file of the first suite")
                ),
                wrong,
                0.0,
                "suites",
                failed || !edit_failed.is_empty(),
            ),
            Target::of_unit(
                format!("hashing the inputs of {HASH_FILES} files, warm"),
                Some(hash_secs),
                HASH_LIMIT_SECS,
                "s",
                false,
            ),
        ],
        informative: vec![
            (
                "no-change `ci --exclude smoke`: CPU / warm `--no-cache`".to_string(),
                ratio(series[1].cpu(), series[0].cpu()),
            ),
            (
                "`ci --exclude smoke`, the cache emptied (hashed, run, stored) / `--no-cache`"
                    .to_string(),
                ratio(series[2].wall(), series[0].wall()),
            ),
        ],
        notes: vec![format!(
            "cache: a copy of every input file of the unit suites and the manifest (target/xtask/bench/cache-repo/); `ci --exclude smoke --no-cache`, `ci --exclude smoke` with nothing changed, and `ci --exclude smoke` after the cache is emptied (untimed), interleaved (each run's record checked: every suite ran, or every suite was replayed); then one .py file of the first suite's directory edited and `ci` run once; hashing: a generated git repository of {HASH_FILES} files in one suite's directory (target/xtask/bench/hash-tree/), the inputs hashed once, then timed (median of {}) as a run hashes them",
            runs.max(5)
        )],
        lines,
        series,
        ..Measured::default()
    })
}

/// The median time to hash the inputs of a suite whose directory holds `HASH_FILES` files
/// (a git repository generated at `root`), the stat cache warm; and how many files that is.
fn hash_figure(root: &Path, uv: &Path, times: usize) -> anyhow::Result<(f64, usize)> {
    let tree = root.join("tree");
    if !root.join(".git").is_dir() {
        if root.exists() {
            std::fs::remove_dir_all(root)
                .with_context(|| format!("deleting {}", root.display()))?;
        }
        for i in 0..HASH_FILES {
            let dir = tree.join(format!("pkg{:03}", i / 100));
            if i % 100 == 0 {
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            let path = dir.join(format!("module_{i:05}.py"));
            std::fs::write(
                &path,
                format!(
                    "# Written by `cargo xtask bench`.\nVALUE = {i}\n\n\ndef value():\n    return VALUE\n"
                ),
            )
            .with_context(|| format!("writing {}", path.display()))?;
        }
        std::fs::write(
            root.join("Cargo.toml"),
            format!(
                r#"# Written by `cargo xtask bench`.
[workspace]
members = []

[workspace.metadata.xtask]

[[workspace.metadata.xtask.suites]]
name = "tree"
group = "bench"
dir = "tree"
requirements = ["{PYTEST}"]
"#
            ),
        )
        .context("writing the hash tree's Cargo.toml")?;
        for args in [&["init", "-q"][..], &["add", "-A"][..]] {
            let status = Command::new("git")
                .args(args)
                .current_dir(root)
                .stdout(Stdio::null())
                .status()
                .context("running git")?;
            anyhow::ensure!(
                status.success(),
                "git {} failed in {}",
                args.join(" "),
                root.display()
            );
        }
    }
    let layout = Layout::new(root);
    let manifest = Manifest::load(&layout).map_err(|err| anyhow::anyhow!("{err}"))?;
    let suites: Vec<&Suite> = manifest.suites.iter().collect();
    let facts = crate::facts::Facts::gather(root, &suites, &[]);
    let plans: Vec<_> = suites
        .iter()
        .map(|s| crate::plan::plan_run(s, &layout, uv, &facts, &Default::default()))
        .collect();
    // Once cold (every file read), its stat cache saved: what a run leaves.
    let cold = crate::cache::Cache::open(&layout, &plans);
    let hashed = cold.input_files().len();
    cold.save_hashes()?;
    let mut secs = Vec::new();
    for _ in 0..times {
        let started = std::time::Instant::now();
        let warm = crate::cache::Cache::open(&layout, &plans);
        secs.push(started.elapsed().as_secs_f64());
        anyhow::ensure!(
            warm.files_read() == 0,
            "a warm hash read {} files again",
            warm.files_read()
        );
    }
    Ok((median(&secs).unwrap_or(f64::NAN), hashed))
}

/// A plain command (no PYTHONPATH), run from `cwd`.
fn plain(program: &str, args: &[&str], cwd: &Path) -> Invocation {
    let mut argv = vec![program.to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    Invocation {
        argv,
        cwd: cwd.to_path_buf(),
        env: vec![],
        env_remove: REMOVED_ENV.iter().map(|v| v.to_string()).collect(),
        path_prepend: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn suite(environment: Environment) -> Suite {
        Suite {
            name: "backend".into(),
            group: "version-b".into(),
            dir: "version-b/backend".into(),
            environment,
            pythonpath: vec!["shared".into(), "version-a".into()],
            markers: Some("not integration".into()),
            paths: vec!["tests".into()],
            env: BTreeMap::from([("BACKEND_ENV".to_string(), "test".to_string())]),
            timeout: crate::manifest::DEFAULT_TIMEOUT,
            requires_env: vec![],
            services: vec![],
            prerequisites: vec![],
            retries: 0,
            split: Default::default(),
            cache: Default::default(),
        }
    }

    #[test]
    fn a_project_suite_is_run_with_its_extras() {
        let hand = hand_command(
            &suite(Environment::project(&["dev", "test"])),
            Path::new("/repo"),
            "uv",
            Path::new("/tmp/j"),
        );
        assert_eq!(
            hand.argv,
            [
                "uv",
                "run",
                "--directory",
                "version-b/backend",
                "--extra",
                "dev",
                "--extra",
                "test",
                "--",
                "pytest",
                "-m",
                "not integration",
                "tests",
                "--junitxml=/tmp/j/backend.xml",
            ]
        );
        assert_eq!(
            hand.env,
            [
                (
                    "PYTHONPATH".to_string(),
                    "/repo/shared:/repo/version-a".to_string()
                ),
                ("BACKEND_ENV".to_string(), "test".to_string()),
            ]
        );
        assert_eq!(hand.cwd, Path::new("/repo"));
    }

    #[test]
    fn a_no_project_suite_is_run_isolated_with_its_requirements() {
        let mut no_project = suite(Environment::Requirements {
            requirements: vec!["pytest==9.2.0".into(), "pydantic==2.14.3".into()],
            file: None,
        });
        no_project.markers = None;
        no_project.env.clear();
        let hand = hand_command(
            &no_project,
            Path::new("/repo"),
            "/bin/uv",
            Path::new("/tmp/j"),
        );
        assert_eq!(
            hand.argv,
            [
                "/bin/uv",
                "run",
                "--directory",
                "version-b/backend",
                "--isolated",
                "--no-project",
                "--with",
                "pytest==9.2.0",
                "--with",
                "pydantic==2.14.3",
                "--",
                "pytest",
                "tests",
                "--junitxml=/tmp/j/backend.xml",
            ]
        );
        assert_eq!(
            hand.env,
            [(
                "PYTHONPATH".to_string(),
                "/repo/shared:/repo/version-a".to_string()
            )]
        );

        let file = suite(Environment::Requirements {
            requirements: vec![],
            file: Some("requirements.txt".into()),
        });
        let hand = hand_command(&file, Path::new("/repo"), "uv", Path::new("/tmp/j"));
        assert_eq!(
            hand.argv[4..9],
            [
                "--isolated",
                "--no-project",
                "--with-requirements",
                "/repo/requirements.txt",
                "--"
            ]
        );
    }

    #[test]
    fn a_failing_command_is_reported_with_its_command_line_and_exit_code() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("fails.log");
        let fails = plain("sh", &["-c", "echo out; exit 3"], &dir);
        let failure = run_logged(&fails, &log).unwrap().expect("a failure");
        assert_eq!(
            failure.command,
            format!(
                "cd {} && env -u VIRTUAL_ENV sh -c 'echo out; exit 3'",
                dir.display()
            )
        );
        assert_eq!(
            (failure.exit_code, failure.ended.as_str()),
            (Some(3), "exit code 3")
        );
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "out\n");
        let passes = plain("true", &[], &dir);
        assert!(run_logged(&passes, &log).unwrap().is_none());
        // A `ci` meant to fail its tests fails the bench when it passes.
        assert!(run_expecting(&fails, 3, &log).unwrap().is_none());
        let passed = run_expecting(&passes, 100, &log)
            .unwrap()
            .expect("a failure");
        assert_eq!(passed.ended, "exit code 0 (expected 100)");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn medians_and_the_peak_memory_line() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(
            crate::report::record::vm_hwm_bytes("Name:\tx\nVmHWM:\t    2048 kB\n"),
            Some(2048 * 1024)
        );
        assert_eq!(crate::report::record::vm_hwm_bytes("Name:\tx\n"), None);
    }

    #[test]
    fn a_target_is_met_within_its_limit_and_never_after_a_failed_run() {
        let at_most = |value, failed| Target::at_most("a ratio", value, 0.3, failed);
        assert!(at_most(Some(0.3), false).met());
        assert_eq!(at_most(Some(0.31), false).result(), "not met");
        assert_eq!(at_most(Some(0.1), true).result(), "not met (a run failed)");
        assert!(!at_most(None, false).met());
        assert_eq!(at_most(Some(0.1), false).shown_limit(), "<= 0.30x");
        let memory = Target {
            strict: true,
            ..Target::of_unit("memory", Some(200e6), 200e6, "MB", false)
        };
        assert!(!memory.met());
        assert_eq!(memory.shown_limit(), "< 200.0 MB");
        assert_eq!(
            Target::at_most(
                "recording",
                ratio(Some(10.3), Some(10.0)),
                RECORDING_LIMIT,
                false
            )
            .result(),
            "met"
        );
        assert_eq!(ratio(Some(1.0), Some(0.0)), None);
        assert_eq!(ratio(None, Some(2.0)), None);
    }

    #[test]
    fn the_rerun_repository_has_eight_suites_and_fails_the_listed_tests_in_two() {
        let root = std::env::temp_dir().join(format!("xtask-bench-rerun-{}", std::process::id()));
        generate_repo(&root, &rerun_suites()).unwrap();
        let manifest = Manifest::load(&Layout::new(root.clone())).unwrap();
        assert_eq!(manifest.suites.len(), RERUN_SUITES);
        assert_eq!(manifest.suites[2].name, "suite-2");
        assert_eq!(manifest.suites[2].paths, ["tests/suite-2"]);
        let suites: std::collections::BTreeSet<usize> =
            RERUN_FAILING.iter().map(|(s, _, _)| *s).collect();
        assert_eq!(suites.len(), 2);
        for &(s, f, t) in &RERUN_FAILING {
            let file = root.join(format!("tests/suite-{s}/test_s{s}_{f}.py"));
            let text = std::fs::read_to_string(&file).unwrap();
            let call = format!(
                "def test_{t:03}():\n    _work(\"{}\")\n",
                rerun_key(s, f, t)
            );
            assert_eq!(
                text.matches(&call).count(),
                1,
                "{call} in {}",
                file.display()
            );
            assert!(text.contains("parents[2] / \"failing.txt\""));
        }
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_junit_report_that_counts_other_tests_is_named() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-junit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("junit.xml");
        let cases: String = (0..3)
            .map(|i| format!("<testcase classname=\"t\" name=\"test_{i}\" time=\"0\"/>"))
            .collect();
        std::fs::write(
            &path,
            format!("<testsuites name=\"pytest tests\"><testsuite name=\"many\" tests=\"20000\">{cases}</testsuite></testsuites>"),
        )
        .unwrap();
        assert_eq!(
            junit_mismatch(&path, 3),
            None,
            "the cases count, not the attribute"
        );
        let mismatch = junit_mismatch(&path, 20_000).unwrap();
        assert!(mismatch.ends_with("holds 3 tests, not 20000"), "{mismatch}");
        // Cut short: refused, whatever its head claims.
        std::fs::write(
            &path,
            "<testsuites name=\"pytest tests\"><testsuite name=\"many\" tests=\"20000\"><testcase",
        )
        .unwrap();
        assert!(junit_mismatch(&path, 20_000)
            .unwrap()
            .contains("could not be read"));
        assert!(junit_mismatch(&dir.join("none.xml"), 3)
            .unwrap()
            .contains("could not be read"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
