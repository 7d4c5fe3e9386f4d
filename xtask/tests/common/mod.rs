//! The harness the integration tests share: fixture repositories copied into
//! CARGO_TARGET_TMPDIR, the real xtask binary run on them, and readers for what it wrote.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use quick_junit::{Report, TestSuite};
use serde_json::Value;

/// One uv for every test: from PATH, or installed once into this repository's target.
pub fn uv() -> &'static Path {
    static UV: OnceLock<PathBuf> = OnceLock::new();
    UV.get_or_init(|| {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        xtask::toolchain::find_or_install_uv(&xtask::paths::Layout::new(repo))
            .expect("uv for the tests")
    })
}

/// A private copy of `tests/fixtures/<name>`, so each test may edit it and run in it.
pub struct Fixture {
    pub root: PathBuf,
}

pub struct Run {
    pub code: u8,
    pub stdout: String,
    pub stderr: String,
}

impl Fixture {
    pub fn new(name: &str, test: &str) -> Fixture {
        let fixture = Fixture::empty(test);
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(name),
            &fixture.root,
        );
        fixture
    }

    /// A copy of this repository's own Python packages and manifest, so the real suites
    /// run without touching the repository's reports.
    pub fn this_repository(test: &str) -> Fixture {
        let fixture = Fixture::empty(test);
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        for dir in ["shared", "version-a", "version-b"] {
            copy_dir(&repo.join(dir), &fixture.path(dir));
        }
        std::fs::copy(repo.join("Cargo.toml"), fixture.path("Cargo.toml")).unwrap();
        // The copy has no xtask crate; the manifest table itself is kept verbatim.
        fixture.edit(
            "Cargo.toml",
            r#"members = ["xtask", "xtask/data"]"#,
            "members = []",
        );
        fixture
    }

    pub fn empty(test: &str) -> Fixture {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("fixtures")
            .join(test);
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        Fixture { root }
    }

    /// The xtask with this fixture as its repository and the shared uv.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
        command
            .args(args)
            .current_dir(&self.root)
            .env(xtask::paths::ROOT_ENV, &self.root)
            .env(xtask::toolchain::UV_ENV, uv())
            .env("CARGO", env!("CARGO"))
            // A fixture without a .git of its own is not this repository: git must not walk
            // up into it (its status, its index lock).
            .env("GIT_CEILING_DIRECTORIES", self.root.parent().unwrap())
            // The tests' own CI must not turn GitHub's reports on in every run they make.
            .env_remove(xtask::report::github::ACTIONS_ENV)
            .env_remove(xtask::report::github::SUMMARY_ENV);
        default_signals(&mut command);
        command
    }

    pub fn run(&self, args: &[&str]) -> Run {
        run(self.command(args))
    }

    /// Builds the environment of the suite that `args` (`["test", "hang"]`, `["smoke",
    /// "hangs"]`) runs, with a long timeout and every test deselected, so that a short
    /// timeout in the run that follows times pytest, never an environment build on a busy
    /// machine (a suite's timeout covers its environment's build too).
    pub fn warm(&self, args: &[&str]) {
        let mut warm = args.to_vec();
        warm.extend([
            "--timeout",
            "10m",
            "--",
            "-k",
            "xtask_warm_no_test_has_this_name",
        ]);
        let run = self.run(&warm);
        assert_code(&run, xtask::exit_codes::NO_TESTS_COLLECTED);
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
    }

    pub fn write(&self, rel: &str, contents: &str) {
        std::fs::write(self.path(rel), contents).unwrap();
    }

    pub fn edit(&self, rel: &str, from: &str, to: &str) {
        let text = self.read(rel);
        assert!(text.contains(from), "{rel} does not contain {from:?}");
        self.write(rel, &text.replacen(from, to, 1));
    }

    /// The merged report, read back with quick-junit.
    pub fn report(&self) -> Report {
        read_report(&self.path("target/xtask/junit.xml"))
    }
}

/// How long any one xtask invocation of the tests may take before the harness ends it.
pub const RUN_DEADLINE: Duration = Duration::from_secs(300);

/// Waits for `child` (the leader of its own process group) to end, or kills the group at
/// `RUN_DEADLINE` and returns `None`.
pub fn wait_with_deadline(child: &mut std::process::Child) -> Option<std::process::ExitStatus> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if started.elapsed() > RUN_DEADLINE {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs the xtask to its end, or kills its whole process group at `RUN_DEADLINE` and fails
/// the test: a hang shows as a failure that says so, never as a CI run that never ends.
pub fn run(mut command: Command) -> Run {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    command
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("running the xtask binary");
    let drain = |mut stream: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stream.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let Some(status) = wait_with_deadline(&mut child) else {
        panic!(
            "the xtask ran longer than {RUN_DEADLINE:?} and was killed\n--- stdout ---\n{}\n--- stderr ---\n{}",
            stdout.join().unwrap(),
            stderr.join().unwrap()
        );
    };
    let run = Run {
        code: status.code().expect("exited normally") as u8,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    };
    eprintln!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        run.stdout, run.stderr
    );
    run
}

/// The exit code, by its constant's name (`TESTS_FAILED`, not `100`).
pub fn assert_code(run: &Run, code: u8) {
    assert_eq!(
        xtask::exit_codes::name(run.code),
        xtask::exit_codes::name(code),
        "exit code {}",
        run.code
    );
}

/// The run directories under `target/xtask/runs/`, oldest first (their ids sort by start).
pub fn run_ids(fixture: &Fixture) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(fixture.path("target/xtask/runs"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    ids
}

/// The invocation's run.json (through `target/xtask/run.json`).
pub fn record(fixture: &Fixture) -> serde_json::Value {
    serde_json::from_str(&fixture.read("target/xtask/run.json")).expect("run.json is JSON")
}

/// Suite `name` of a run.json.
pub fn suite_record<'a>(record: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    record["suites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("run.json has no suite {name}: {record:#}"))
}

pub fn read_report(path: &Path) -> Report {
    let xml =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    Report::deserialize_from_str(&xml)
        .unwrap_or_else(|e| panic!("quick-junit cannot read {}: {e}", path.display()))
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if [".venv", "target", "__pycache__", ".pytest_cache"]
            .iter()
            .any(|skip| name == *skip)
        {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

pub fn suite<'a>(report: &'a Report, name: &str) -> &'a TestSuite {
    report
        .test_suites
        .iter()
        .find(|s| s.name.as_str() == name)
        .unwrap_or_else(|| panic!("no testsuite {name}"))
}

/// The suite's `skipped` attribute (the xtask writes no `disabled`, so quick-junit's own
/// count of it reads 0).
pub fn skipped(suite: &TestSuite) -> usize {
    suite
        .extra
        .get("skipped")
        .unwrap_or_else(|| panic!("{} has no skipped attribute", suite.name.as_str()))
        .as_str()
        .parse()
        .unwrap()
}

pub fn case<'a>(suite: &'a TestSuite, name: &str) -> &'a quick_junit::TestCase {
    suite
        .test_cases
        .iter()
        .find(|c| c.name.as_str() == name)
        .unwrap_or_else(|| panic!("no testcase {name}"))
}

pub fn attr<'a>(case: &'a quick_junit::TestCase, key: &str) -> &'a str {
    case.extra
        .get(key)
        .map(|v| v.as_str())
        .unwrap_or_else(|| panic!("no {key} on {}", case.name.as_str()))
}

/// The counts in pytest's own closing line, e.g. "3 passed, 1 deselected in 0.02s".
pub fn pytest_summary(log: &str) -> Vec<(String, usize)> {
    let line = log
        .lines()
        .rev()
        .find(|l| l.starts_with('=') && l.contains(" in ") && l.trim_end().ends_with('='))
        .expect("pytest's summary line in the log");
    let inner = line.trim_matches(|c| c == '=' || c == ' ');
    let counts = inner.rsplit_once(" in ").unwrap().0;
    counts
        .split(", ")
        .filter_map(|part| {
            let (n, what) = part.split_once(' ')?;
            Some((what.to_string(), n.parse().ok()?))
        })
        .collect()
}

pub fn count(summary: &[(String, usize)], what: &str) -> usize {
    summary
        .iter()
        .find(|(w, _)| w == what || w.trim_end_matches('s') == what)
        .map_or(0, |(_, n)| *n)
}

/// The 1-based `line` of `file` in the report, read from the fixture.
pub fn line_at(fixture: &Fixture, case: &quick_junit::TestCase) -> String {
    let line: usize = attr(case, "line").parse().unwrap();
    fixture
        .read(attr(case, "file"))
        .lines()
        .nth(line - 1)
        .unwrap()
        .to_string()
}

/// PATH without any directory that holds a `uv`.
pub fn path_without_uv() -> String {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .filter(|d| !d.join("uv").exists())
        .collect();
    std::env::join_paths(dirs).unwrap().into_string().unwrap()
}

/// `uv run --isolated --no-project --with W...` outside any project and the caller's
/// virtualenv, for a Python tool from PyPI: add `--`, the program and its arguments.
pub fn uv_tool(with: &[&str]) -> Command {
    let mut command = Command::new(uv());
    command
        .args(["run", "--isolated", "--no-project"])
        .env_remove("VIRTUAL_ENV");
    for requirement in with {
        command.args(["--with", requirement]);
    }
    command
}

/// The consumers `tests/junit_consumers.py` runs, pinned.
pub const JUNITPARSER: &str = "junitparser==5.0.3";
pub const LXML: &str = "lxml==6.1.3";

/// junitparser on lxml reads `files` (tests/junit_consumers.py); a parse error fails.
pub fn junit_consumers(files: &[PathBuf]) -> Value {
    read_with_consumers(files)
        .unwrap_or_else(|stderr| panic!("junitparser/lxml cannot read the reports:\n{stderr}"))
}

/// What junitparser on lxml read, or what they said when they could not.
pub fn read_with_consumers(files: &[PathBuf]) -> Result<Value, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/junit_consumers.py");
    let output = uv_tool(&[JUNITPARSER, LXML])
        .args(["--", "python"])
        .arg(&script)
        .args(files)
        .output()
        .expect("running tests/junit_consumers.py");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        return Err(stderr);
    }
    Ok(
        serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("its JSON: {e}\n{stderr}")),
    )
}

/// A strict well-formedness check: UTF-8, one root, matching tags, known entities, no
/// character XML 1.0 forbids (raw or as a character reference), no DOCTYPE.
pub fn strict_xml(path: &Path) {
    use quick_xml::events::Event;

    let shown = path.display();
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {shown}: {e}"));
    let text = std::str::from_utf8(&bytes).unwrap_or_else(|e| panic!("{shown}: not UTF-8: {e}"));
    let mut reader = quick_xml::Reader::from_str(text);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.check_comments = true;
    config.allow_unmatched_ends = false;
    config.allow_dangling_amp = false;

    let legal = |what: &str, s: &str, at: u64| {
        if let Some(c) = s.chars().find(|&c| !xml_char(c)) {
            panic!("{shown}: {what} at byte {at} holds U+{:04X}", c as u32);
        }
    };
    let (mut depth, mut roots) = (0usize, 0usize);
    loop {
        let at = reader.buffer_position();
        let event = reader
            .read_event()
            .unwrap_or_else(|e| panic!("{shown}: not well-formed at byte {at}: {e}"));
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                if depth == 0 {
                    roots += 1;
                }
                for attr in e.attributes().with_checks(true) {
                    let attr = attr.unwrap_or_else(|e| panic!("{shown}: attribute at {at}: {e}"));
                    let value = attr
                        .unescape_value()
                        .unwrap_or_else(|e| panic!("{shown}: attribute at {at}: {e}"));
                    legal("an attribute", &value, at);
                }
                if matches!(event, Event::Start(_)) {
                    depth += 1;
                }
            }
            Event::End(_) => depth -= 1,
            Event::Text(t) => {
                let t = t.decode().unwrap();
                legal("text", &t, at);
                assert!(
                    depth > 0 || t.trim().is_empty(),
                    "{shown}: text outside the root"
                );
            }
            Event::CData(t) => legal("CDATA", &t.decode().unwrap(), at),
            Event::GeneralRef(r) => match r.resolve_char_ref() {
                Ok(Some(c)) => assert!(
                    xml_char(c),
                    "{shown}: a reference to U+{:04X} at {at}",
                    c as u32
                ),
                Ok(None) => {
                    let name = r.decode().unwrap();
                    assert!(
                        ["lt", "gt", "amp", "apos", "quot"].contains(&name.as_ref()),
                        "{shown}: unknown entity &{name}; at {at}"
                    );
                }
                Err(e) => panic!("{shown}: a bad reference at {at}: {e}"),
            },
            Event::DocType(_) => panic!("{shown}: a DOCTYPE"),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    assert_eq!(depth, 0, "{shown}: unclosed elements");
    assert_eq!(roots, 1, "{shown}: {roots} root elements");
}

/// XML 1.0's `Char` production.
pub fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Not yet reaped: running, or a zombie whose parent has not waited for it. A zombie
/// counts as alive, so a test sees an xtask that leaves its dead children unreaped (an
/// orphan's zombie is soon reaped by init, here too).
pub fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('X') | None)
}

/// Runs git in `dir` (a test repository: a fixed author, and no walking up out of it).
pub fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(["-c", "user.email=t@example.com", "-c", "user.name=t"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CEILING_DIRECTORIES", dir.parent().unwrap())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

/// Every pid is gone within a short grace; those left are killed (they are this test's)
/// and named.
pub fn assert_gone(pids: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|&p| alive(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left: Vec<String> = pids
        .iter()
        .filter(|&&p| alive(p))
        .map(|&p| {
            let cmdline = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            let shown = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            kill_pid(p);
            format!("{p} ({})", shown.trim())
        })
        .collect();
    assert!(
        left.is_empty(),
        "still running (or unreaped) after the xtask ended: {left:?}"
    );
}

pub fn kill_pid(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
}

/// Runs `command` in a process group of its own, sends the xtask SIGINT (Ctrl-C) once
/// `ready` holds, and returns its exit status and how long it took to end after the
/// signal. Fails the test if `ready` never holds within `RUN_DEADLINE`, if the xtask ends
/// before, or if it does not end within `RUN_DEADLINE` of the signal.
pub fn interrupt_when(
    mut command: Command,
    what: &str,
    ready: impl Fn() -> bool,
) -> (std::process::ExitStatus, Duration) {
    use std::os::unix::process::CommandExt;
    command
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = command.spawn().unwrap();
    let clock = Instant::now();
    while !ready() {
        if clock.elapsed() > RUN_DEADLINE {
            let _ = child.kill();
            panic!("{what} never happened");
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the xtask ended ({status}) before {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    kill_pid_with(child.id(), "-INT");
    let interrupted = Instant::now();
    match wait_with_deadline(&mut child) {
        Some(status) => (status, interrupted.elapsed()),
        None => panic!("the xtask did not stop within {RUN_DEADLINE:?} of Ctrl-C"),
    }
}

/// Sends `signal` (`-INT`, `-KILL`) to `pid`.
pub fn kill_pid_with(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

/// Every text of a suite's cases as a JUnit consumer reads it (entities decoded, nothing
/// escaped again): names, messages, types, descriptions, output, and the same of reruns.
pub fn decoded_texts(suite: &quick_junit::TestSuite) -> String {
    use quick_junit::{TestCaseStatus, TestRerun};
    let mut texts: Vec<&str> = Vec::new();
    fn push<'a>(texts: &mut Vec<&'a str>, text: &'a Option<quick_junit::XmlString>) {
        texts.extend(text.as_ref().map(|t| t.as_str()));
    }
    fn push_rerun<'a>(texts: &mut Vec<&'a str>, rerun: &'a TestRerun) {
        for text in [
            &rerun.message,
            &rerun.ty,
            &rerun.description,
            &rerun.stack_trace,
            &rerun.system_out,
            &rerun.system_err,
        ] {
            push(texts, text);
        }
    }
    for case in &suite.test_cases {
        texts.push(case.name.as_str());
        push(&mut texts, &case.classname);
        push(&mut texts, &case.system_out);
        push(&mut texts, &case.system_err);
        match &case.status {
            TestCaseStatus::Success { flaky_runs } => {
                flaky_runs.iter().for_each(|r| push_rerun(&mut texts, r))
            }
            TestCaseStatus::NonSuccess {
                message,
                ty,
                description,
                reruns,
                ..
            } => {
                for text in [message, ty, description] {
                    push(&mut texts, text);
                }
                reruns.iter().for_each(|r| push_rerun(&mut texts, r));
            }
            TestCaseStatus::Skipped {
                message,
                ty,
                description,
            } => {
                for text in [message, ty, description] {
                    push(&mut texts, text);
                }
            }
        }
    }
    texts.join("\n")
}

/// The JSON Schema validator that checks run.json against docs/run.schema.json, pinned.
pub const JSONSCHEMA: &str = "jsonschema==4.23.0";

/// `record` (a run.json) is valid against docs/run.schema.json, by a real validator
/// (python-jsonschema, draft 2020-12, formats checked).
pub fn assert_valid_run_record(record: &Path) {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/run.schema.json");
    let check = "import json, sys, jsonschema\n\
                 schema = json.load(open(sys.argv[1]))\n\
                 record = json.load(open(sys.argv[2]))\n\
                 jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(record)\n";
    let output = uv_tool(&[JSONSCHEMA, "rfc3339-validator==0.1.4"])
        .args(["--", "python", "-c", check])
        .arg(&schema)
        .arg(record)
        .output()
        .expect("running python-jsonschema");
    assert!(
        output.status.success(),
        "{} is not valid against docs/run.schema.json:\n{}",
        record.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    // And the record's own types read it back.
    let text = std::fs::read_to_string(record).unwrap();
    if let Err(err) = serde_json::from_str::<xtask::report::run_record::RunRecord>(&text) {
        panic!(
            "{}: the record's types cannot read it: {err}",
            record.display()
        );
    }
}

/// The xtask starts with SIGINT and SIGHUP at their defaults, as from a terminal, even when
/// the tests themselves were started with them ignored (`nohup`, a script's background
/// job): it keeps ignoring a signal that was ignored when it started.
pub fn default_signals(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: signal is async-signal-safe and allocates nothing.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGHUP, libc::SIG_DFL);
            Ok(())
        });
    }
}

/// Debian's Chromium, installed with apt-get (as root) when it is missing. A test that
/// needs a browser fails when there is none, it never skips.
pub fn chromium() -> &'static Path {
    static CHROMIUM: OnceLock<PathBuf> = OnceLock::new();
    CHROMIUM.get_or_init(|| {
        let found = || {
            ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
                .into_iter()
                .map(PathBuf::from)
                .find(|p| p.is_file())
        };
        if let Some(path) = found() {
            return path;
        }
        let apt = |args: &[&str]| {
            Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        };
        let installed =
            apt(&["update"]) && apt(&["install", "-y", "--no-install-recommends", "chromium"]);
        found().unwrap_or_else(|| {
            panic!(
                "the HTML report is tested in headless Chromium, and there is none: \
                 `apt-get install -y chromium` {} (run the tests as root on a Debian-like \
                 machine, or install Debian's `chromium` package first)",
                if installed {
                    "succeeded but installed no /usr/bin/chromium"
                } else {
                    "failed"
                }
            )
        })
    })
}

/// What headless Chromium made of an HTML page (tests/browser.py, over the DevTools
/// protocol): every request, console message and log entry, and what the DOM shows; a
/// full-page screenshot is written to `screenshot`.
pub fn open_in_browser(page: &Path, screenshot: &Path) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser.py");
    let output = uv_tool(&[])
        .args(["--", "python"])
        .arg(&script)
        .arg(chromium())
        .arg(page)
        .arg(screenshot)
        .output()
        .expect("running tests/browser.py");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "Chromium could not open {}:\n{stderr}",
        page.display()
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("its JSON: {e}\n{stderr}"))
}

/// Lines with the environment's time left out, for comparing a run's output with its
/// replay: the run measured the build from the suite's start, the replay reads it from
/// the record's step offsets, which can differ in the last digit.
pub fn without_env_times(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| match line.find("(environment built in ") {
            Some(at) => format!("{}(environment built in …)", &line[..at]),
            None => line.to_string(),
        })
        .collect()
}
