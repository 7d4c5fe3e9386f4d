//! `cargo xtask bench`: the xtask against the commands a person would type by hand, side by
//! side in one run on this repository, plus two generated repositories (20,000 tests, and a
//! test printing 500 MB). Prints medians, ratios and the targets; writes
//! `target/xtask/bench/results.json`. A benchmark anyone can rerun, not a timed test.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};

use crate::flags::BenchArgs;
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
    fn of(status: ExitStatus, command: String, log: &Path) -> Option<Failure> {
        use std::os::unix::process::ExitStatusExt;
        if status.success() {
            return None;
        }
        let ended = match (status.code(), status.signal()) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(signal)) => format!("signal {signal}"),
            (None, None) => "an unknown status".into(),
        };
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
    let mut command = command_of(invocation);
    log_to(&mut command, log)?;
    let status = command
        .status()
        .with_context(|| format!("starting `{}`", shell_line(invocation)))?;
    Ok(Failure::of(status, shell_line(invocation), log))
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
    Ok((Failure::of(status, shell_line(invocation), log), peak))
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
    fn xtask(&self, root: &Path, args: &[&str]) -> Invocation {
        let mut argv = vec![self.exe.to_string_lossy().into_owned()];
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
        let mut failures: Vec<Failure> = Failure::of(output.status, command, &log)
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

fn fmt_secs(value: Option<f64>) -> String {
    value.map_or("-".into(), |v| format!("{v:.2} s"))
}

/// A generated repository: a root `Cargo.toml` with an empty `[workspace]` and a manifest
/// of one no-project suite, and test files.
fn generate_repo(root: &Path, suite: &str, files: &[(String, String)]) -> anyhow::Result<()> {
    let tests = root.join("tests");
    if tests.exists() {
        std::fs::remove_dir_all(&tests)?;
    }
    std::fs::create_dir_all(&tests)?;
    let manifest = format!(
        "# Written by `cargo xtask bench`.\n[workspace]\nmembers = []\n\n\
         [workspace.metadata.xtask]\n\n\
         [[workspace.metadata.xtask.suites]]\nname = \"{suite}\"\ngroup = \"bench\"\ndir = \".\"\n\
         requirements = [\"{PYTEST}\"]\npaths = [\"tests\"]\n"
    );
    std::fs::write(root.join("Cargo.toml"), manifest)?;
    for (name, text) in files {
        std::fs::write(tests.join(name), text)?;
    }
    Ok(())
}

fn many_files() -> Vec<(String, String)> {
    let per_file = MANY_TESTS / MANY_FILES;
    (0..MANY_FILES)
        .map(|f| {
            let mut text = String::from("# Written by `cargo xtask bench`: trivial tests.\n");
            for t in 0..per_file {
                text.push_str(&format!("\n\ndef test_{f}_{t:05}():\n    pass\n"));
            }
            (format!("test_many_{f}.py"), text)
        })
        .collect()
}

fn loud_files() -> Vec<(String, String)> {
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
         \x20   path = os.path.join(os.path.dirname(__file__), os.pardir, {PYTEST_PEAK_FILE:?})\n\
         \x20   with open(path, \"w\") as f:\n\
         \x20       f.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024))\n"
    );
    vec![
        ("test_loud.py".into(), text),
        ("conftest.py".into(), conftest),
    ]
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
    name: &'static str,
    value: Option<f64>,
    limit: f64,
    unit: &'static str,
    strict: bool,
    failed_runs: bool,
}

impl Target {
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

    fn shown(&self, value: f64) -> String {
        match self.unit {
            "MB" => format!("{:.1} MB", value / 1e6),
            "s" => format!("{value:.3} s"),
            _ => format!("{value:.2}x"),
        }
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

pub fn run(layout: &Layout, manifest: &Manifest, args: &BenchArgs) -> anyhow::Result<()> {
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
    std::fs::write(&bench.background_script, bench.background_script())?;

    let mut notes = vec![
        format!("xtask runs are the binary itself ({}), so cargo's own start-up is not counted", exe.display()),
        "CPU is user+sys of all waited-for descendants (getrusage RUSAGE_CHILDREN deltas)".to_string(),
        "cold: before each run the environments are deleted (hand: each project suite's <dir>/.venv; xtask: target/xtask/envs, where it keeps its own); the uv cache stays warm".to_string(),
        format!("warm runs follow one untimed warm-up run of each scenario; runs are interleaved round-robin; {runs} timed run(s) each"),
    ];
    println!(
        "xtask bench: {runs} run(s) per scenario; logs in {}",
        layout.display(&bench.logs)
    );
    for note in &notes {
        println!("  note: {note}");
    }
    println!("  hand commands (from the manifest):");
    for invocation in &bench.hand {
        println!("    {}", shell_line(invocation));
    }

    // 1-4 on this repository: warm, then cold.
    let mut warm: Vec<Series> = SCENARIOS
        .iter()
        .map(|s| {
            Series::new(
                &format!("{}-warm", s.key()),
                &format!("{} (warm)", s.label()),
            )
        })
        .collect();
    let mut cold: Vec<Series> = SCENARIOS
        .iter()
        .map(|s| {
            Series::new(
                &format!("{}-cold", s.key()),
                &format!("{} (cold)", s.label()),
            )
        })
        .collect();
    for (scenario, series) in SCENARIOS.iter().zip(&mut warm) {
        println!("  warm-up: {}", scenario.label());
        let failures = bench.run(*scenario)?;
        report_failures("warm-up", &failures);
        series.failures.extend(failures);
    }
    for (temperature, all) in [("warm", &mut warm), ("cold", &mut cold)] {
        for i in 0..runs {
            for (scenario, series) in SCENARIOS.iter().zip(all.iter_mut()) {
                if temperature == "cold" {
                    bench.make_cold(*scenario)?;
                }
                let (failures, wall, cpu) = timed(|| bench.run(*scenario))?;
                println!(
                    "  {temperature} {}/{runs} {}: {wall:.2} s wall, {cpu:.2} s CPU",
                    i + 1,
                    scenario.label()
                );
                report_failures(temperature, &failures);
                series.walls.push(wall);
                series.cpus.push(cpu);
                series.failures.extend(failures);
            }
        }
    }

    // 5: 20,000 tests.
    let many_root = bench.dir.join("many");
    generate_repo(&many_root, "many", &many_files())?;
    let venv = bench.dir.join("pytest-venv");
    let python = venv.join("bin").join("python");
    let mut setup_failures = Vec::new();
    if !python.is_file() {
        let venv_text = venv.to_string_lossy().into_owned();
        let create = plain(&uv, &["venv", "--quiet", &venv_text], &bench.dir);
        setup_failures.extend(run_logged(&create, &bench.log("pytest-venv"))?);
    }
    let python_text = python.to_string_lossy().into_owned();
    let install = plain(
        &uv,
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
            "tests",
        ],
        &many_root,
    );
    let many_xtask = bench.xtask(&many_root, &["test"]);
    notes.push(format!(
        "20,000 tests: `xtask test` against plain pytest in one venv made with `uv venv` + `uv pip install {PYTEST}` (`python -m pytest --junitxml=... tests`), isolating pytest's own cost"
    ));
    println!("  20,000 tests in {}:", layout.display(&many_root));
    println!("    plain: {}", shell_line(&many_pytest));
    println!("    xtask: {}", shell_line(&many_xtask));
    let many_cases = [
        (many_xtask, "many-xtask", "xtask test, 20,000 tests"),
        (many_pytest, "many-pytest", "plain pytest, 20,000 tests"),
    ];
    let mut many: Vec<Series> = many_cases
        .iter()
        .map(|(_, key, label)| Series::new(key, label))
        .collect();
    many[1].failures.extend(setup_failures);
    for ((invocation, key, _), series) in many_cases.iter().zip(&mut many) {
        println!("  warm-up: {key}");
        let failures: Vec<Failure> = run_logged(invocation, &bench.log(key))?
            .into_iter()
            .collect();
        report_failures("warm-up", &failures);
        series.failures.extend(failures);
    }
    for i in 0..runs {
        for ((invocation, key, label), series) in many_cases.iter().zip(&mut many) {
            let (failures, wall, cpu) = timed(|| run_logged(invocation, &bench.log(key)))?;
            println!(
                "  warm {}/{runs} {label}: {wall:.2} s wall, {cpu:.2} s CPU",
                i + 1
            );
            let failures: Vec<Failure> = failures.into_iter().collect();
            report_failures("20,000 tests", &failures);
            series.walls.push(wall);
            series.cpus.push(cpu);
            series.failures.extend(failures);
        }
    }

    // 5b: report.html of the 20,000-test run, as written and rendered again from its record.
    let page = page_figures(&many_root, &bench.tmp);
    match &page {
        Ok(page) => println!(
            "  report.html, {} tests: {} bytes as written; rendered and written again in {:.3} s; \
             every test failing: {} bytes in {:.3} s",
            page.tests, page.written_bytes, page.secs, page.worst_bytes, page.worst_secs
        ),
        Err(err) => println!("  report.html of the 20,000-test run: {err:#}"),
    }
    let page = page.ok();
    notes.push("report.html: the size of the page the 20,000-test run wrote; the time is the median of 5 renders of its run.json plus the atomic write (report::html::render, paths::write_atomically), in this process; `all failing` is the same record with every test failed, an 8 KB traceback and a 1 KB message each".to_string());

    // 6: 500 MB of output, once: the peak is what matters, not a median.
    let loud_root = bench.dir.join("loud");
    generate_repo(&loud_root, "loud", &loud_files())?;
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
    loud_series.walls.push(wall);
    loud_series.cpus.push(cpu);
    loud_series.failures.extend(failures);
    let recorded = std::fs::read_to_string(&record)
        .ok()
        .and_then(|text| serde_json::from_str::<crate::report::run_record::RunRecord>(&text).ok())
        .and_then(|record| record.peak_rss_bytes);
    let (peak, peak_source) = match (recorded, polled) {
        (Some(bytes), _) => (Some(bytes), "run.json peak_rss_bytes (VmHWM of the xtask's own image, /proc/self/status)"),
        (None, Some(bytes)) => (Some(bytes), "polled /proc/<pid>/status VmHWM of the xtask every 20 ms (run.json has no peak_rss_bytes)"),
        (None, None) => (None, "unknown: run.json has no peak_rss_bytes and /proc could not be read"),
    };
    notes.push(format!("peak memory: {peak_source}"));

    // 7: the same loud passing test, the xtask against its hand command, side by side:
    // pytest's own peak (its conftest reads getrusage after the JUnit file is written) and
    // the wall time of each whole command.
    let loud_manifest = Manifest::load(&Layout::new(loud_root.clone()))
        .context("loading the generated loud repository's manifest")?;
    let loud_hand = hand_command(
        &loud_manifest.suites[0],
        &loud_root,
        &uv,
        &bench.tmp.join("loud-hand"),
    );
    println!("  a loud passing test, hand: {}", shell_line(&loud_hand));
    let loud_cases = [
        (
            &loud,
            "loud-side-xtask",
            "xtask test, a passing test printing 500 MB",
        ),
        (
            &loud_hand,
            "loud-side-hand",
            "hand command, a passing test printing 500 MB",
        ),
    ];
    let mut loud_side: Vec<Series> = loud_cases
        .iter()
        .map(|(_, key, label)| Series::new(key, label))
        .collect();
    let mut pytest_peaks: Vec<Vec<f64>> = vec![Vec::new(), Vec::new()];
    for i in 0..runs {
        for (((invocation, key, label), series), peaks) in
            loud_cases.iter().zip(&mut loud_side).zip(&mut pytest_peaks)
        {
            let ((failure, peak), wall, cpu) =
                timed(|| run_reading_pytest_peak(invocation, &loud_root, &bench.log(key)))?;
            println!(
                "  {}/{runs} {label}: {wall:.2} s wall, pytest peak {}",
                i + 1,
                peak.map_or("unknown".into(), |b| format!("{:.0} MB", b as f64 / 1e6))
            );
            let failures: Vec<Failure> = failure.into_iter().collect();
            report_failures("a loud passing test", &failures);
            series.walls.push(wall);
            series.cpus.push(cpu);
            series.failures.extend(failures);
            peaks.extend(peak.map(|b| b as f64));
        }
    }
    let pytest_peak = |i: usize| median(&pytest_peaks[i]);
    notes.push(
        "a loud passing test: pytest's peak is what its conftest reads from getrusage(RUSAGE_SELF) at pytest_unconfigure, after the JUnit file is written".to_string(),
    );

    // The table and the targets.
    let find = |all: &[Series], key: &str| -> usize {
        all.iter()
            .position(|s| s.key.starts_with(key))
            .expect("every scenario has a series")
    };
    let (seq, bg, ci, ci1) = (
        find(&warm, "hand-sequential"),
        find(&warm, "hand-background"),
        find(&warm, "xtask-ci-warm"),
        find(&warm, "xtask-ci-j1"),
    );
    let failed = |list: &[&Series]| list.iter().any(|s| !s.failures.is_empty());
    let targets = [
        Target {
            name: "warm `xtask ci` wall / backgrounded script wall",
            value: ratio(warm[ci].wall(), warm[bg].wall()),
            limit: 0.85,
            unit: "x",
            strict: false,
            failed_runs: failed(&[&warm[ci], &warm[bg]]),
        },
        Target {
            name: "warm `xtask ci` CPU / hand one after another CPU",
            value: ratio(warm[ci].cpu(), warm[seq].cpu()),
            limit: 1.0,
            unit: "x",
            strict: false,
            failed_runs: failed(&[&warm[ci], &warm[seq]]),
        },
        Target {
            name: "warm `xtask ci -j 1` wall / hand one after another wall",
            value: ratio(warm[ci1].wall(), warm[seq].wall()),
            limit: 1.0,
            unit: "x",
            strict: false,
            failed_runs: failed(&[&warm[ci1], &warm[seq]]),
        },
        Target {
            name: "20,000 tests: `xtask test` wall / plain pytest wall",
            value: ratio(many[0].wall(), many[1].wall()),
            limit: 1.1,
            unit: "x",
            strict: false,
            failed_runs: failed(&[&many[0], &many[1]]),
        },
        Target {
            name: "loud passing test: pytest peak, xtask / hand",
            value: ratio(pytest_peak(0), pytest_peak(1)),
            limit: 1.1,
            unit: "x",
            strict: false,
            failed_runs: failed(&[&loud_side[0], &loud_side[1]]),
        },
        Target {
            name: "loud passing test: `xtask test` wall / hand wall",
            value: ratio(loud_side[0].wall(), loud_side[1].wall()),
            limit: 1.1,
            unit: "x",
            strict: false,
            failed_runs: failed(&[&loud_side[0], &loud_side[1]]),
        },
        Target {
            name: "report.html, 20,000 tests: size",
            value: page.as_ref().map(|p| p.written_bytes as f64),
            limit: PAGE_LIMIT_BYTES as f64,
            unit: "MB",
            strict: false,
            failed_runs: failed(&[&many[0]]),
        },
        Target {
            name: "report.html, 20,000 tests: render + write",
            value: page.as_ref().map(|p| p.secs),
            limit: PAGE_LIMIT_SECS,
            unit: "s",
            strict: false,
            failed_runs: failed(&[&many[0]]),
        },
        Target {
            name: "report.html, 20,000 tests all failing: size",
            value: page.as_ref().map(|p| p.worst_bytes as f64),
            limit: PAGE_LIMIT_BYTES as f64,
            unit: "MB",
            strict: false,
            failed_runs: failed(&[&many[0]]),
        },
        Target {
            name: "report.html, 20,000 tests all failing: render + write",
            value: page.as_ref().map(|p| p.worst_secs),
            limit: PAGE_LIMIT_SECS,
            unit: "s",
            strict: false,
            failed_runs: failed(&[&many[0]]),
        },
        Target {
            name: "peak memory of the xtask, a test printing 500 MB",
            value: peak.map(|b| b as f64),
            limit: MEMORY_LIMIT_BYTES as f64,
            unit: "MB",
            strict: true,
            failed_runs: failed(&[&loud_series]),
        },
    ];
    let informative = [
        (
            "cold `xtask ci` wall / backgrounded script wall",
            ratio(cold[ci].wall(), cold[bg].wall()),
        ),
        (
            "cold `xtask ci` CPU / hand one after another CPU",
            ratio(cold[ci].cpu(), cold[seq].cpu()),
        ),
        (
            "cold `xtask ci -j 1` wall / hand one after another wall",
            ratio(cold[ci1].wall(), cold[seq].wall()),
        ),
    ];

    let all_series: Vec<&Series> = warm
        .iter()
        .zip(&cold)
        .flat_map(|(w, c)| [w, c])
        .chain(&many)
        .chain([&loud_series])
        .chain(&loud_side)
        .collect();
    println!();
    println!(
        "{:<48} {:>5} {:>12} {:>12}  failed",
        "scenario", "runs", "median wall", "median CPU"
    );
    for series in &all_series {
        println!(
            "{:<48} {:>5} {:>12} {:>12}  {}",
            series.label,
            series.walls.len(),
            fmt_secs(series.wall()),
            fmt_secs(series.cpu()),
            series.failures.len()
        );
    }
    println!();
    println!("{:<58} {:>9} {:>9}  result", "target", "measured", "limit");
    for target in &targets {
        let op = if target.strict { "<" } else { "<=" };
        let result = match (target.met(), target.failed_runs) {
            (true, _) => "met",
            (false, true) => "not met (a run failed)",
            (false, false) => "not met",
        };
        println!(
            "{:<58} {:>9} {:>9}  {result}",
            target.name,
            target.value.map_or("-".into(), |v| target.shown(v)),
            format!("{op} {}", target.shown(target.limit)),
        );
    }
    for (name, value) in &informative {
        println!(
            "{name:<58} {:>9}  (not a target)",
            value.map_or("-".into(), |v| format!("{v:.2}x"))
        );
    }
    println!("peak memory source: {peak_source}");

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
    let all_met = targets.iter().all(Target::met);
    let results = json!({
        "runs": runs,
        "uv": uv,
        "xtask": exe,
        "notes": notes,
        "hand_commands": bench.hand.iter().map(shell_line).collect::<Vec<_>>(),
        "scenarios": all_series.iter().map(|s| s.json()).collect::<Vec<_>>(),
        "peak_rss_bytes": peak,
        "peak_rss_source": peak_source,
        "pytest_peak_bytes": { "xtask": pytest_peak(0), "hand": pytest_peak(1) },
        "targets": targets.iter().map(|t| json!({
            "name": t.name, "value": t.value, "limit": t.limit, "unit": t.unit,
            "met": t.met(), "failed_runs": t.failed_runs,
        })).collect::<Vec<_>>(),
        "informative": informative.iter().map(|(name, value)| json!({ "name": name, "value": value })).collect::<Vec<_>>(),
        "all_targets_met": all_met,
        "failed_commands": failures.len(),
    });
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
}
