//! The harness the integration tests share: fixture repositories copied into
//! CARGO_TARGET_TMPDIR, the real xtask binary run on them, and readers for what it wrote.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use quick_junit::{Report, TestSuite};

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
        fixture.edit("Cargo.toml", r#"members = ["xtask"]"#, "members = []");
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
            .env("CARGO", env!("CARGO"));
        command
    }

    pub fn run(&self, args: &[&str]) -> Run {
        run(self.command(args))
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
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > RUN_DEADLINE {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            panic!(
                "the xtask ran longer than {RUN_DEADLINE:?} and was killed\n--- stdout ---\n{}\n--- stderr ---\n{}",
                stdout.join().unwrap(),
                stderr.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
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
