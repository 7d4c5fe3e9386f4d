//! `cargo xtask init [--print] [--force]`: guesses a starter suite manifest from the
//! repository's Python packages and appends it to the root `Cargo.toml`.
//!
//! It runs before any manifest exists, so it never uses the loaded one. It looks below the
//! root (skipping `target`, `.git`, `.venv`, `node_modules`, hidden directories and the
//! `xtask` crate) for packages: directories with a `pyproject.toml`, or with a
//! `requirements*.txt` that lists pytest. Per package it decides the environment (the
//! project's extra or dependency group that holds pytest when there is a `uv.lock`, its own
//! or its uv workspace root's; else a requirements file the repository's test commands
//! install, or its own that lists pytest, with what an unlocked `pyproject.toml` declares
//! (`declared.rs`); else only pytest), the test paths, the PYTHONPATH (from what the code
//! imports) and the markers to deselect, taking the markers, paths and requirement files
//! from the repository's `tox.ini`, `noxfile.py` and CI files when they name them
//! (`evidence.rs`), and prints one line per decision, naming the file it came from. What
//! it cannot read (an invalid `pyproject.toml`, a directory name that is not UTF-8) is
//! skipped with a warning, and every name it writes is one the manifest accepts. Each guess is written through the manifest's own serde type (`RawSuite`), into
//! the user's file edited as a `toml_edit` document, so every other table and comment stays
//! as it was. The result is loaded through `Manifest::from_toml`, as a run would read it,
//! before anything is written.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::error::Error;
use crate::flags::InitArgs;
use toml_edit::{value, Array, ArrayOfTables, DocumentMut, Item, Table};

use crate::invocation::Invocation;
use crate::manifest::raw::{unplaced, RawSuite};
use crate::manifest::{Manifest, TABLE};
use crate::paths::Layout;
use crate::uv_workspace::ProjectLock;

mod declared;
mod evidence;
mod pipelines;
mod verify;

/// Directory names never looked into.
const SKIPPED_DIRS: &[&str] = &[
    "target",
    "node_modules",
    "__pycache__",
    "venv",
    "build",
    "dist",
];
/// Registered markers whose tests need the world outside (services, keys, the network):
/// deselected, as the suites of a CI job should be hermetic.
const DESELECTED_MARKERS: &[&str] = &[
    "integration",
    "e2e",
    "end_to_end",
    "live",
    "network",
    "external",
    "smoke",
];
/// The first line of the comment `init` writes above the manifest; `--force` removes the
/// block it starts along with the tables.
const MARKER: &str = "# The suite manifest, guessed by `cargo xtask init`.";

pub fn run(layout: &Layout, args: &InitArgs) -> anyhow::Result<()> {
    let root = &layout.root;
    let cargo_toml = layout.manifest();
    let existing = match std::fs::read_to_string(&cargo_toml) {
        Ok(text) => Some(text),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => return Err(err).with_context(|| format!("reading {}", cargo_toml.display())),
    };
    let mut document = match &existing {
        Some(text) => text.parse::<DocumentMut>().map_err(|err| {
            Error::Usage(format!(
                "{} is not valid TOML, so init cannot add to it:\n{err}",
                cargo_toml.display()
            ))
        })?,
        None => DocumentMut::new(),
    };
    let has_manifest = document
        .get("workspace")
        .and_then(|w| w.get("metadata"))
        .and_then(|m| m.get("xtask"))
        .is_some();
    if let (Some(system), true) = (args.ci, has_manifest) {
        // The manifest is there: only the pipelines are written, from it.
        let text = existing.as_deref().unwrap_or_default();
        let manifest = Manifest::from_toml(text, &cargo_toml, root).map_err(Error::Manifest)?;
        return write_pipelines(layout, system, &manifest, args.force);
    }
    if has_manifest && !args.force && !args.print {
        return Err(Error::Usage(format!(
            "{} already has a suite manifest {TABLE}; init writes nothing. Edit it by hand \
             (docs/manifest.md, \"Adding a suite\"), see a fresh guess with `cargo xtask init --print`, \
             or replace it with `cargo xtask init --force`",
            cargo_toml.display()
        ))
        .into());
    }

    let mut out = Decisions::new(args.print);
    let (guesses, invalid) = guess(root, &mut out)?;
    if guesses.is_empty() && !invalid.is_empty() {
        // The packages are there, but what they say could not be read: the repository's
        // configuration is at fault, as with a manifest that would not load.
        out.flush();
        return Err(Error::Configuration(format!(
            "no suite could be guessed: {} could not be read (see the warnings \
             above) and no other package has tests; fix {}, then run `cargo xtask init` \
             again; nothing written",
            plural(invalid.len(), "pyproject.toml"),
            invalid.join(", ")
        ))
        .into());
    }
    if guesses.is_empty() {
        out.flush();
        return Err(Error::Usage(format!(
            "found no Python package with tests below {} (a directory with a pyproject.toml \
             or a requirements*.txt listing pytest, and tests/, test/ or test_*.py); nothing written",
            root.display()
        ))
        .into());
    }

    // The file is edited as a document: every other table, comment and blank line stays as
    // it was, and the manifest is added after all of it.
    let mut place = Place::End;
    if has_manifest {
        out.line(format!(
            "Cargo.toml: --force: replacing its {TABLE} table and suites"
        ));
        place = remove_manifest(&mut document);
    }
    let new_workspace = match document.get("workspace") {
        Some(_) => None,
        None => {
            let mut workspace = Table::new();
            if root.join("xtask/Cargo.toml").is_file() {
                workspace.insert("members", value(Array::from_iter(["xtask"])));
            }
            if existing.is_none() {
                workspace.insert("resolver", value("2"));
            }
            out.line(match &existing {
                None => "Cargo.toml: none: creating it, with a [workspace] for the manifest".into(),
                Some(_) => {
                    "Cargo.toml: no [workspace]: adding one with the xtask crate as a member, \
                            because the manifest lives in [workspace.metadata]"
                        .to_string()
                }
            });
            Some(workspace)
        }
    };
    let pristine = document.clone();
    let render = |guesses: &[Guess]| -> anyhow::Result<(String, DocumentMut, Manifest)> {
        let mut document = pristine.clone();
        // What --print shows: the tables init adds, on their own.
        let mut appended = DocumentMut::new();
        let added = add_manifest(&mut document, guesses, new_workspace.clone(), place.clone())
            .and_then(|()| add_manifest(&mut appended, guesses, new_workspace.clone(), Place::End));
        if let Err(why) = added {
            return Err(Error::Configuration(format!(
                "{}: {why}; nothing was written",
                cargo_toml.display()
            ))
            .into());
        }
        let text = document.to_string();
        match validate(&text, &cargo_toml, root) {
            Ok(manifest) => Ok((text, appended, manifest)),
            Err(problems) => {
                let listed: Vec<String> = problems.iter().map(|p| format!("  - {p}")).collect();
                Err(Error::Configuration(format!(
                    "the guessed manifest would not load, so nothing was written to {}:\n{}",
                    cargo_toml.display(),
                    listed.join("\n")
                ))
                .into())
            }
        }
    };
    let mut guesses = guesses;
    let (mut text, mut appended, mut manifest) = render(&guesses).inspect_err(|_| out.flush())?;
    let mut unverified = 0;
    if !args.no_verify {
        let checked = check_guesses(layout, &manifest, &mut guesses, &mut out)?;
        unverified = checked.unverified;
        if checked.changed {
            (text, appended, manifest) = render(&guesses).inspect_err(|_| out.flush())?;
        }
    }
    let unverified = match unverified {
        0 => String::new(),
        n => format!(" ({n} not verified: see above)"),
    };

    if args.print {
        out.flush();
        if has_manifest && !args.force {
            eprintln!(
                "note: {} already has {TABLE}; writing this would need --force",
                cargo_toml.display()
            );
        }
        print!("{appended}");
        return Ok(());
    }
    // Whole or not at all: a second init, or an editor, never reads half a file. Through a
    // symlink to the file it leads to, as a plain write would.
    let target = std::fs::canonicalize(&cargo_toml).unwrap_or_else(|_| cargo_toml.clone());
    crate::paths::write_atomically(&target, text.as_bytes())?;
    out.flush();
    println!(
        "wrote {} suites to {}{unverified}; check them, then run `cargo xtask ci`",
        guesses.len(),
        cargo_toml.display()
    );
    match args.ci {
        Some(system) => write_pipelines(layout, system, &manifest, args.force),
        None => Ok(()),
    }
}

/// `--ci`: writes the pipeline files for `manifest`, none of them when one exists already
/// (unless `force`).
fn write_pipelines(
    layout: &Layout,
    system: crate::flags::CiSystem,
    manifest: &Manifest,
    force: bool,
) -> anyhow::Result<()> {
    let branch = pipelines::default_branch(&layout.root);
    // GitLab's matrix is written here: a suite recorded as long is written as its slices.
    let durations = crate::durations::load(layout, None)?.map(|loaded| loaded.durations);
    let files = pipelines::render(system, manifest, &branch, durations.as_ref());
    if !force {
        if let Some((path, _)) = files.iter().find(|(p, _)| layout.root.join(p).exists()) {
            return Err(Error::Usage(format!(
                "{} exists; init --ci writes none of its files over one: compare it with \
                 `cargo xtask init --ci` in a scratch copy, or replace them with --force",
                layout.root.join(path).display()
            ))
            .into());
        }
    }
    for (path, text) in files {
        let path = layout.root.join(path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let target = std::fs::canonicalize(&path).unwrap_or(path.clone());
        crate::paths::write_atomically(&target, text.as_bytes())?;
        println!("wrote {}", path.display());
    }
    if system == crate::flags::CiSystem::Github {
        println!("pushes to `{branch}` and pull requests run the suites; publish.yml publishes their report");
    }
    Ok(())
}

/// Checks each guess as a run would use it ([`verify`]): one line per suite, what was
/// verified or why not. A guess that collects only with another environment is changed to
/// it.
fn check_guesses(
    layout: &Layout,
    manifest: &Manifest,
    guesses: &mut [Guess],
    out: &mut Decisions,
) -> anyhow::Result<Checked> {
    let uv = match crate::toolchain::find_or_install_uv(layout) {
        Ok(uv) => uv,
        Err(err) => {
            let first = err.to_string();
            out.line(format!(
                "not verified: no uv to build the environments with ({}); written as guessed",
                first.lines().next().unwrap_or_default()
            ));
            return Ok(Checked {
                changed: false,
                unverified: guesses.len(),
            });
        }
    };
    let version = || {
        let query = Invocation::new(
            vec![uv.to_string_lossy().into_owned(), "--version".into()],
            &layout.root,
            vec![],
        );
        let deadline = crate::process::deadline_after(
            std::time::Instant::now(),
            std::time::Duration::from_secs(30),
        );
        crate::step::capture(
            &query,
            deadline,
            &crate::redact::Redactor::new([("", "")], &[]),
        )
        .ok()
        .filter(crate::step::Captured::success)
        .map(|ran| ran.stdout.trim().to_string())
    };
    let uv_version = crate::toolchain::uv_version(layout, &uv, version).unwrap_or_default();
    // Ctrl-C stops the builds and collections (each in a process group of its own, which a
    // terminal's SIGINT does not reach) in order, and init writes nothing.
    crate::process::init(
        &layout.run_id,
        std::env::temp_dir().join(format!("xtask-init-{}", layout.run_id)),
    )
    .map_err(|err| anyhow::anyhow!("setting up signal handling: {err}"))?;
    let files = verify::requirement_files(&layout.root);
    let suites: Vec<&crate::manifest::Suite> = manifest.suites.iter().collect();
    let redactor = crate::session::redactor(manifest, &suites);
    let pin = pytest_requirement(guesses);
    let mut checked = Checked::default();
    for (suite, guess) in manifest.suites.iter().zip(guesses.iter_mut()) {
        // The files the repository's own commands install for it first.
        let mut ordered = guess.evidence_files.clone();
        let rest: Vec<String> = files
            .iter()
            .filter(|f| !guess.evidence_files.contains(f))
            .cloned()
            .collect();
        ordered.extend(rest);
        let fallback = guess.fallback.as_ref().map(environment);
        let verdict = verify::verify(
            layout,
            (&uv, &uv_version),
            suite,
            fallback.as_ref(),
            &ordered,
            &pin,
            &redactor,
        )?;
        if crate::process::interrupted() {
            out.flush();
            eprintln!("xtask: init: interrupted while checking the guesses; nothing written");
            return Err(Error::Outcome(crate::outcome::Outcome::Interrupted).into());
        }
        let tests = |n: usize| format!("{n} test{}", if n == 1 { "" } else { "s" });
        let line = match verdict {
            verify::Verdict::Collected(n) => format!("verified: collected {}", tests(n)),
            verify::Verdict::Replaced(replaced, n, because) => {
                let crate::manifest::Environment::Requirements { requirements, file } = replaced
                else {
                    unreachable!("verify replaces with a no-project environment")
                };
                let mut written = Vec::new();
                if let Some(file) = &file {
                    written.push(format!("requirements-file = {}", string(file)));
                }
                if file.is_none() || requirements.iter().any(|r| !is_pytest(r)) {
                    written.push(format!("requirements = {}", listed(&requirements)));
                }
                let why = format!("{}: {because} (collected {})", written.join(", "), tests(n));
                guess.why.push(why.clone());
                guess.environment = match file {
                    Some(file) if requirements.is_empty() => Env::RequirementsFile(file),
                    Some(file) => Env::RequirementsAndFile(requirements, file),
                    None => Env::Requirements(requirements),
                };
                checked.changed = true;
                format!("verified after a change: {why}")
            }
            verify::Verdict::Unverified(why) => {
                checked.unverified += 1;
                format!(
                    "not verified: {why}; written as guessed, fix it in Cargo.toml (`cargo xtask doctor` checks it)"
                )
            }
        };
        out.line(format!("{}: {}", guess.name, shown(&redactor.text(&line))));
    }
    Ok(checked)
}

/// A guess's environment as the manifest holds it.
fn environment(env: &Env) -> crate::manifest::Environment {
    use crate::manifest::Environment;
    match env.clone() {
        Env::Extras(extras) => Environment::Project {
            extras,
            groups: vec![],
            default_groups: true,
        },
        Env::Groups(groups) => Environment::Project {
            extras: vec![],
            groups,
            default_groups: true,
        },
        Env::Requirements(requirements) => Environment::Requirements {
            requirements,
            file: None,
        },
        Env::RequirementsFile(file) => Environment::Requirements {
            requirements: vec![],
            file: Some(file),
        },
        Env::RequirementsAndFile(requirements, file) => Environment::Requirements {
            requirements,
            file: Some(file),
        },
    }
}

/// What [`check_guesses`] did: whether it changed a guess, and how many it could not verify.
#[derive(Default)]
struct Checked {
    changed: bool,
    unverified: usize,
}

/// The pytest requirement the guesses use (the most common), for a file without one.
fn pytest_requirement(guesses: &[Guess]) -> String {
    guesses
        .iter()
        .find_map(|g| match &g.environment {
            Env::Requirements(r) | Env::RequirementsAndFile(r, _) => {
                r.iter().find(|r| is_pytest(r)).cloned()
            }
            _ => None,
        })
        .unwrap_or_else(|| "pytest".to_string())
}

/// One line per decision: on stdout, or on stderr with `--print` (stdout is the manifest).
/// Warnings (what was skipped because it could not be read) always go to stderr, first.
struct Decisions {
    lines: Vec<String>,
    warnings: Vec<String>,
    to_stderr: bool,
}

impl Decisions {
    fn new(to_stderr: bool) -> Self {
        Decisions {
            lines: Vec::new(),
            warnings: Vec::new(),
            to_stderr,
        }
    }

    fn line(&mut self, line: String) {
        self.lines.push(line);
    }

    fn warn(&mut self, warning: String) {
        self.warnings.push(warning);
    }

    fn flush(&mut self) {
        for warning in self.warnings.drain(..) {
            eprintln!("warning: {warning}");
        }
        for line in self.lines.drain(..) {
            if self.to_stderr {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
        }
    }
}

/// How a guessed suite's environment is made.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Env {
    Extras(Vec<String>),
    /// A dependency group that is not a default one (`groups = [..]`).
    Groups(Vec<String>),
    Requirements(Vec<String>),
    RequirementsFile(String),
    /// Both: a requirements file (that may not name pytest) and these requirements.
    RequirementsAndFile(Vec<String>, String),
}

#[derive(Debug, Clone)]
struct Guess {
    name: String,
    group: String,
    dir: String,
    environment: Env,
    pythonpath: Vec<String>,
    markers: Option<String>,
    paths: Vec<String>,
    env: BTreeMap<String, String>,
    /// The decisions, also written as comments above the suite.
    why: Vec<String>,
    /// The environment to try when this one cannot be built (the guess without the
    /// project's declared dependencies).
    fallback: Option<Env>,
    /// Requirement files the repository's own test commands install for it: tried first
    /// when a module is missing.
    evidence_files: Vec<String>,
}

/// What was found in one package directory.
#[derive(Debug, Default)]
struct Package {
    /// Relative to the root, `/`-separated; `.` for the root itself.
    dir: String,
    pyproject: Option<toml::Table>,
    /// Its own `uv.lock`, or its uv workspace root's when it is a member.
    lock: Option<ProjectLock>,
    /// `requirements*.txt` files that list pytest, with that requirement.
    requirement_files: Vec<(String, String)>,
    test_dirs: Vec<String>,
    test_files: bool,
    markers: Vec<(String, String)>,
    /// Top-level modules the package's Python files import.
    imports: BTreeSet<String>,
    /// Variables its code requires to hold a value (`os.environ["X"] == "v"`), and the file.
    required_env: BTreeMap<String, (String, String)>,
}

/// An importable top-level name and the directory that must be on PYTHONPATH for it.
#[derive(Debug, Clone)]
struct Provider {
    package: String,
    path: String,
    /// The package directory itself is the import package (flat layout): an installed
    /// project does not make it importable by its name.
    flat: bool,
}

/// The guessed suites, and the `pyproject.toml` files skipped because they could not be
/// read.
fn guess(root: &Path, out: &mut Decisions) -> anyhow::Result<(Vec<Guess>, Vec<String>)> {
    let mut dirs = Vec::new();
    find_packages(root, root, &mut dirs, out);
    let mut packages = Vec::new();
    let mut invalid = Vec::new();
    for dir in dirs {
        match inspect(root, &dir)? {
            Ok(package) => packages.push(package),
            Err(unreadable) => {
                out.warn(format!(
                    "skipped {}: {}",
                    shown(&relative(root, &dir)),
                    unreadable.why
                ));
                invalid.push(unreadable.file);
            }
        }
    }
    let providers = providers(root, &packages);
    let pytest_pin = pytest_pin(&packages);
    let dirs: Vec<String> = packages.iter().map(|p| p.dir.clone()).collect();
    let commands = evidence::gather(root, &dirs);
    for command in &commands {
        out.line(shown(&format!("evidence: {}", command.describe())));
    }
    let locals: BTreeMap<String, &Package> = packages
        .iter()
        .filter_map(|p| Some((declared::project_name(p)?, p)))
        .collect();

    let mut guesses: Vec<Guess> = Vec::new();
    for package in &packages {
        if package.test_dirs.is_empty() && !package.test_files {
            out.line(format!(
                "skipped {}: no tests/ or test/ directory and no test_*.py in it",
                shown(&package.dir)
            ));
            continue;
        }
        let evidence = evidence_for(&package.dir, &dirs, &commands);
        let known = Known {
            providers: &providers,
            pytest_pin: &pytest_pin,
            locals: &locals,
            evidence: &evidence,
        };
        guesses.push(guess_suite(package, &known, root));
    }
    name_suites(&mut guesses);
    for guess in &guesses {
        for why in &guess.why {
            out.line(format!("{}: {}", guess.name, shown(why)));
        }
    }
    Ok((guesses, invalid))
}

/// A package whose `pyproject.toml` could not be read: which file, and what is wrong.
struct Unreadable {
    file: String,
    why: String,
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what} files")
    }
}

/// `text` on one line: control characters (a newline in a directory name) escaped.
fn shown(text: &str) -> String {
    crate::changes::shown(text)
}

fn skipped(name: &str, at_root: bool) -> bool {
    name.starts_with('.') || SKIPPED_DIRS.contains(&name) || (at_root && name == "xtask")
}

/// Every directory below `dir` (and `dir` itself) that holds a package, sorted. A directory
/// that cannot be read, or whose name is not UTF-8 (the manifest's `dir` is a TOML string,
/// which cannot hold it), is skipped with a warning.
fn find_packages(root: &Path, dir: &Path, found: &mut Vec<PathBuf>, out: &mut Decisions) {
    let mut entries: Vec<_> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(Result::ok).collect(),
        Err(err) => {
            out.warn(format!(
                "skipped {}: it cannot be read ({err})",
                shown(&relative(root, dir))
            ));
            return;
        }
    };
    entries.sort_by_key(|e| e.file_name());
    let is_package = dir.join("pyproject.toml").is_file() || !requirement_files(dir).is_empty();
    if is_package {
        found.push(dir.to_path_buf());
    }
    for entry in entries {
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if !is_dir {
            continue;
        }
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            out.warn(format!(
                "skipped {}: its name is not UTF-8, which the manifest (TOML) cannot hold; rename it to include it",
                shown(&relative(root, &entry.path()))
            ));
            continue;
        };
        if !skipped(&name, dir == root) && !is_venv(&entry.path()) {
            find_packages(root, &entry.path(), found, out);
        }
    }
}

fn is_venv(dir: &Path) -> bool {
    dir.join("pyvenv.cfg").is_file()
}

/// `requirements*.txt` in `dir` that list pytest: (file name, the pytest requirement).
fn requirement_files(dir: &Path) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(String, String)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_owned();
            if !(name.starts_with("requirements") && name.ends_with(".txt")) {
                return None;
            }
            let text = std::fs::read_to_string(e.path()).ok()?;
            let pytest = text
                .lines()
                .map(|l| l.split('#').next().unwrap_or("").trim())
                .find(|l| is_pytest(l))?;
            Some((name, pytest.to_string()))
        })
        .collect();
    files.sort();
    files
}

/// Whether a PEP 508 requirement is pytest itself (not `pytest-cov`).
fn is_pytest(requirement: &str) -> bool {
    let name: String = requirement
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    name.eq_ignore_ascii_case("pytest")
}

fn relative(root: &Path, dir: &Path) -> String {
    let rel = dir.strip_prefix(root).unwrap_or(dir);
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

/// What one package directory holds, or why its `pyproject.toml` cannot be read.
fn inspect(root: &Path, dir: &Path) -> anyhow::Result<Result<Package, Unreadable>> {
    let rel = relative(root, dir);
    let file = join(&rel, "pyproject.toml");
    let unreadable = |why: String| Unreadable {
        why: format!("{} {why}", shown(&file)),
        file: shown(&file),
    };
    let pyproject = match std::fs::read_to_string(dir.join("pyproject.toml")) {
        Ok(text) => match text.parse::<toml::Table>() {
            Ok(table) => Some(table),
            Err(err) => {
                let why = err.to_string().trim_end().replace('\n', "\n    ");
                return Ok(Err(unreadable(format!("is not valid TOML: {why}"))));
            }
        },
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => return Ok(Err(unreadable(format!("cannot be read: {err}")))),
    };
    let mut package = Package {
        lock: crate::uv_workspace::lock_of(root, &rel),
        dir: rel,
        requirement_files: requirement_files(dir),
        ..Package::default()
    };
    for test_dir in ["tests", "test"] {
        if dir.join(test_dir).is_dir() {
            package.test_dirs.push(test_dir.into());
        }
    }
    package.test_files = std::fs::read_dir(dir)?.filter_map(Result::ok).any(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        name.ends_with(".py") && (name.starts_with("test_") || name.ends_with("_test.py"))
    });
    if let Some(pyproject) = &pyproject {
        let pytest = pyproject.get("tool").and_then(|t| t.get("pytest"));
        // pytest 9's native table, and the ini-style table.
        for table in [pytest, pytest.and_then(|p| p.get("ini_options"))]
            .into_iter()
            .flatten()
        {
            match table.get("markers") {
                Some(toml::Value::Array(items)) => {
                    for item in items.iter().filter_map(toml::Value::as_str) {
                        push_marker(&mut package.markers, item, "pyproject.toml");
                    }
                }
                Some(toml::Value::String(text)) => {
                    for item in text.lines() {
                        push_marker(&mut package.markers, item, "pyproject.toml");
                    }
                }
                _ => {}
            }
        }
    }
    for (file, section) in [
        ("pytest.ini", "pytest"),
        ("tox.ini", "pytest"),
        ("setup.cfg", "tool:pytest"),
    ] {
        if let Ok(text) = std::fs::read_to_string(dir.join(file)) {
            for item in ini_markers(&text, section) {
                push_marker(&mut package.markers, &item, file);
            }
        }
    }
    package.pyproject = pyproject;
    collect_imports(dir, dir, &mut package, 0);
    Ok(Ok(package))
}

fn push_marker(markers: &mut Vec<(String, String)>, line: &str, file: &str) {
    let name: String = line
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if !name.is_empty() && !markers.iter().any(|(n, _)| *n == name) {
        markers.push((name, file.into()));
    }
}

/// The `markers` of an ini file's `[section]`: the value's first line and its indented
/// continuation lines.
fn ini_markers(text: &str, section: &str) -> Vec<String> {
    let mut in_section = false;
    let mut in_markers = false;
    let mut markers = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            in_section = trimmed == format!("[{section}]");
            in_markers = false;
            continue;
        }
        if !in_section || trimmed.starts_with(['#', ';']) {
            continue;
        }
        let continuation = line.starts_with([' ', '\t']);
        if in_markers && continuation {
            if !trimmed.is_empty() {
                markers.push(trimmed.to_string());
            }
            continue;
        }
        in_markers = false;
        if let Some((key, value)) = trimmed.split_once(['=', ':']) {
            if key.trim() == "markers" {
                in_markers = true;
                if !value.trim().is_empty() {
                    markers.push(value.trim().to_string());
                }
            }
        }
    }
    markers
}

/// The top-level names that the Python files below `dir` import (absolute imports only).
fn collect_imports(base: &Path, dir: &Path, package: &mut Package, depth: usize) {
    if depth > 8 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if !skipped(&name, false) && !is_venv(&path) {
                collect_imports(base, &path, package, depth + 1);
            }
        } else if name.ends_with(".py") {
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let file = relative(base, &path);
            for line in text.lines() {
                package.imports.extend(imported(line));
                if let Some((name, value)) = required_value(line) {
                    package
                        .required_env
                        .entry(name)
                        .or_insert((value, file.clone()));
                }
            }
        }
    }
}

/// `os.environ["NAME"] == "value"` (either quote): a variable the code needs set to a value.
fn required_value(line: &str) -> Option<(String, String)> {
    let quoted = |text: &str| -> Option<(String, usize)> {
        let quote = text.chars().next().filter(|c| matches!(c, '"' | '\''))?;
        let end = text[1..].find(quote)? + 1;
        Some((text[1..end].to_string(), end + 1))
    };
    let at = line.find("os.environ[")? + "os.environ[".len();
    let (name, used) = quoted(&line[at..])?;
    let rest = line[at + used..].strip_prefix(']')?.trim_start();
    let rest = rest.strip_prefix("==")?.trim_start();
    let (value, _) = quoted(rest)?;
    let valid = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name != "PYTHONPATH";
    valid.then_some((name, value))
}

/// The top-level modules one line imports: `import a.b as c, d` and `from a.b import x`.
fn imported(line: &str) -> Vec<String> {
    let line = line.trim();
    let top = |module: &str| {
        let name = module.trim().split(['.', ' ']).next().unwrap_or("").trim();
        (!name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_'))
            .then(|| name.to_string())
    };
    if let Some(rest) = line.strip_prefix("from ") {
        let module = rest.split_whitespace().next().unwrap_or("");
        if module.starts_with('.') {
            return Vec::new();
        }
        return top(module).into_iter().collect();
    }
    if let Some(rest) = line.strip_prefix("import ") {
        return rest
            .split(',')
            .filter_map(|part| top(part.split(" as ").next().unwrap_or("")))
            .collect();
    }
    Vec::new()
}

/// Who provides which top-level import name: a flat-layout package directory (its
/// parent goes on PYTHONPATH), a package below `src/`, or a package directly inside a
/// package directory.
fn providers(root: &Path, packages: &[Package]) -> BTreeMap<String, Vec<Provider>> {
    let mut providers: BTreeMap<String, Vec<Provider>> = BTreeMap::new();
    let is_package = |dir: &Path| dir.join("__init__.py").is_file();
    for package in packages {
        let dir = root.join(&package.dir);
        if package.dir != "." && is_package(&dir) {
            let (parent, name) = match package.dir.rsplit_once('/') {
                Some((parent, name)) => (parent.to_string(), name.to_string()),
                None => (".".to_string(), package.dir.clone()),
            };
            providers.entry(name).or_default().push(Provider {
                package: package.dir.clone(),
                path: parent,
                flat: true,
            });
        }
        for (base, path) in [
            (dir.join("src"), join(&package.dir, "src")),
            (dir.clone(), package.dir.clone()),
        ] {
            let Ok(entries) = std::fs::read_dir(&base) else {
                continue;
            };
            for entry in entries.filter_map(Result::ok) {
                let name = entry.file_name().to_string_lossy().into_owned();
                if ["tests", "test"].contains(&name.as_str()) || !is_package(&entry.path()) {
                    continue;
                }
                providers.entry(name).or_default().push(Provider {
                    package: package.dir.clone(),
                    path: path.clone(),
                    flat: false,
                });
            }
        }
    }
    providers
}

fn join(dir: &str, name: &str) -> String {
    if dir == "." {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// The pytest requirement most packages use, for packages that name none.
fn pytest_pin(packages: &[Package]) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for package in packages {
        for (_, requirement) in &package.requirement_files {
            *counts.entry(requirement.clone()).or_default() += 1;
        }
        for (_, requirement) in pytest_extras(package) {
            *counts.entry(requirement).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map_or_else(|| "pytest".to_string(), |(r, _)| r)
}

/// The project's optional-dependency extras that hold pytest: (extra, the requirement),
/// the usual test extras first.
fn pytest_extras(package: &Package) -> Vec<(String, String)> {
    let Some(extras) = package
        .pyproject
        .as_ref()
        .and_then(|p| p.get("project"))
        .and_then(|p| p.get("optional-dependencies"))
        .and_then(toml::Value::as_table)
    else {
        return Vec::new();
    };
    let mut found: Vec<(String, String)> = extras
        .iter()
        .filter_map(|(extra, requirements)| {
            let requirement = requirements
                .as_array()?
                .iter()
                .filter_map(toml::Value::as_str)
                .find(|r| is_pytest(r))?;
            Some((extra.clone(), requirement.to_string()))
        })
        .collect();
    let rank = |extra: &str| {
        ["test", "tests", "testing", "dev"]
            .iter()
            .position(|e| *e == extra)
            .unwrap_or(usize::MAX)
    };
    found.sort_by_key(|(extra, _)| (rank(extra), extra.clone()));
    found
}

/// The project's dependency groups (PEP 735) that hold pytest, following
/// `{include-group = ".."}`: (group, whether `uv sync` installs it by default), the default
/// groups first (`[tool.uv] default-groups`, else `dev`), then the usual test names.
fn pytest_groups(package: &Package) -> Vec<(String, bool)> {
    let pyproject = package.pyproject.as_ref();
    let Some(groups) = pyproject
        .and_then(|p| p.get("dependency-groups"))
        .and_then(toml::Value::as_table)
    else {
        return Vec::new();
    };
    let defaults: Vec<String> = match pyproject
        .and_then(|p| p.get("tool"))
        .and_then(|t| t.get("uv"))
        .and_then(|u| u.get("default-groups"))
    {
        Some(toml::Value::String(all)) if all == "all" => groups.keys().cloned().collect(),
        Some(toml::Value::Array(names)) => names
            .iter()
            .filter_map(toml::Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => vec!["dev".into()],
    };
    // Whether `group` holds pytest, through its includes (a cycle is uv's error: not here).
    fn holds_pytest(groups: &toml::Table, group: &str, seen: &mut Vec<String>) -> bool {
        if seen.iter().any(|g| g == group) {
            return false;
        }
        seen.push(group.to_string());
        let Some(items) = groups.get(group).and_then(toml::Value::as_array) else {
            return false;
        };
        items.iter().any(|item| match item {
            toml::Value::String(requirement) => is_pytest(requirement),
            toml::Value::Table(include) => include
                .get("include-group")
                .and_then(toml::Value::as_str)
                .is_some_and(|inner| holds_pytest(groups, inner, seen)),
            _ => false,
        })
    }
    let mut found: Vec<(String, bool)> = groups
        .keys()
        .filter(|group| holds_pytest(groups, group, &mut Vec::new()))
        .map(|group| (group.clone(), defaults.contains(group)))
        .collect();
    let rank = |group: &str| {
        ["test", "tests", "testing", "dev"]
            .iter()
            .position(|g| *g == group)
            .unwrap_or(usize::MAX)
    };
    found.sort_by_key(|(group, default)| (!default, rank(group), group.clone()));
    found
}

/// What the repository's own test commands (`tox.ini`, `noxfile.py`, CI files) say about
/// one package.
#[derive(Debug, Default)]
struct Evidence {
    /// Requirement files installed before pytest runs its tests: (file, the file that says
    /// so).
    requirement_files: Vec<(String, String)>,
    /// pytest's `-m` expression, and the file that gives it.
    markers: Option<(String, String)>,
    /// Paths inside the package pytest is given (relative to it), and the file.
    paths: Option<(Vec<String>, String)>,
}

/// The evidence about the package in `dir`: the commands that run its tests, its own
/// directory's first. A command with paths runs the packages those paths are in (the
/// deepest package of `dirs` that holds the path) or below; one without runs every package
/// at or below its directory.
fn evidence_for(dir: &str, dirs: &[String], commands: &[evidence::Command]) -> Evidence {
    let under = |path: &str, base: &str| {
        base == "." || path == base || path.starts_with(&format!("{base}/"))
    };
    let owner = |path: &str| {
        dirs.iter()
            .filter(|d| under(path, d))
            .max_by_key(|d| if *d == "." { 0 } else { d.len() + 1 })
    };
    let mut matched: Vec<(&evidence::Command, Vec<String>)> = commands
        .iter()
        .filter_map(|command| {
            if command.paths.is_empty() {
                return under(dir, &command.dir)
                    .then(Vec::new)
                    .map(|p| (command, p));
            }
            let mut inside = Vec::new();
            let mut targets = false;
            for path in &command.paths {
                if owner(path).is_some_and(|o| o == dir) {
                    targets = true;
                    if path != dir {
                        let rel = if dir == "." {
                            path.clone()
                        } else {
                            path[dir.len() + 1..].to_string()
                        };
                        inside.push(rel);
                    }
                } else if under(dir, path) {
                    targets = true;
                }
            }
            targets.then_some((command, inside))
        })
        .collect();
    // The package's own tox.ini or noxfile.py first.
    matched.sort_by_key(|(command, _)| std::cmp::Reverse(command.dir.len()));
    let mut evidence = Evidence::default();
    for (command, _) in &matched {
        for file in &command.requirement_files {
            if !evidence.requirement_files.iter().any(|(f, _)| f == file) {
                evidence
                    .requirement_files
                    .push((file.clone(), command.source.clone()));
            }
        }
    }
    // The command that runs the package's unit tests, not a job of the tests that need the
    // world outside (`-m integration`, `-m "e2e or slow"`): those are never taken.
    let outside = |markers: &str| {
        !markers.trim_start().starts_with("not ")
            && markers
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .any(|word| DESELECTED_MARKERS.contains(&word) || word == "slow")
    };
    let main = matched
        .iter()
        .find(|(c, _)| c.markers.as_deref().is_none_or(|m| !outside(m)));
    if let Some((command, inside)) = main {
        evidence.markers = command.markers.clone().map(|m| (m, command.source.clone()));
        if !inside.is_empty() {
            evidence.paths = Some((inside.clone(), command.source.clone()));
        }
    }
    evidence
}

/// What guessing one suite may look up beyond its package.
struct Known<'a> {
    providers: &'a BTreeMap<String, Vec<Provider>>,
    pytest_pin: &'a str,
    /// The repository's packages by normalized project name.
    locals: &'a BTreeMap<String, &'a Package>,
    evidence: &'a Evidence,
}

/// `["a", "b"]`, as the manifest would write it.
fn listed(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|i| string(i)).collect();
    format!("[{}]", items.join(", "))
}

/// Whether the requirements file at `file` (relative to `root`) names pytest.
fn file_lists_pytest(root: &Path, file: &str) -> bool {
    std::fs::read_to_string(root.join(file)).is_ok_and(|text| {
        text.lines()
            .map(|l| l.split('#').next().unwrap_or("").trim())
            .any(is_pytest)
    })
}

/// The environment of a package that is not installed (no lock, or no extra or group of
/// its lock that holds pytest): a requirements file the repository's test commands install
/// (evidence), else its own that lists pytest, with what it declares when it is not locked
/// (its `pyproject.toml`: see [`declared`]), else pytest alone. With the declared
/// dependencies, the same without them is the fallback.
fn unlocked_environment(
    package: &Package,
    known: &Known,
    root: &Path,
    why: &mut Vec<String>,
) -> (Env, Option<Env>) {
    let dir = &package.dir;
    let locked = package.lock.is_some();
    let found = if locked {
        None
    } else {
        declared::declared(package, known.locals)
    };
    let dynamic = !locked && declared::is_dynamic(package);
    // What it declares, and where from; empty when nothing is.
    let (declared, declared_pytest, said) = match &found {
        Some(found) if !found.requirements.is_empty() => {
            let mut said = format!(
                "what {dir}'s pyproject.toml declares ({}) is installed, and its code comes in through PYTHONPATH",
                found.from.join(", ")
            );
            if !found.local.is_empty() {
                let _ = write!(
                    said,
                    "; {} of this repository, whose own dependencies are installed in their place",
                    if found.local.len() == 1 {
                        format!("{} is a package", found.local[0])
                    } else {
                        format!("{} are packages", found.local.join(", "))
                    }
                );
            }
            if !found.dropped.is_empty() {
                let _ = write!(
                    said,
                    "; left out, a local path init cannot place: {}",
                    found.dropped.join(", ")
                );
            }
            (found.requirements.clone(), found.pytest.clone(), said)
        }
        _ => (Vec::new(), None, String::new()),
    };
    let pytest = declared_pytest.unwrap_or_else(|| known.pytest_pin.to_string());
    // pytest first, then the declared requirements.
    let with_pytest = |extra: &[String]| -> Vec<String> {
        let mut all = vec![pytest.clone()];
        all.extend(extra.iter().filter(|r| **r != pytest).cloned());
        all
    };
    let no_lock = if locked {
        "no extra or dependency group of its lock holds pytest, so the project is not installed"
            .to_string()
    } else {
        "it has no uv.lock, so the project is not installed".to_string()
    };
    let dynamic_note = if dynamic {
        "; its dependencies are `dynamic` (computed when it is built), which init cannot read"
    } else {
        ""
    };
    let file_env = |file: &str, source: String, why: &mut Vec<String>| -> (Env, Option<Env>) {
        let names_pytest = file_lists_pytest(root, file);
        let requirements = if names_pytest {
            declared.iter().filter(|r| !is_pytest(r)).cloned().collect()
        } else {
            with_pytest(&declared)
        };
        let plain = if names_pytest {
            Env::RequirementsFile(file.to_string())
        } else {
            Env::RequirementsAndFile(vec![pytest.clone()], file.to_string())
        };
        let env = if requirements.is_empty() {
            Env::RequirementsFile(file.to_string())
        } else {
            Env::RequirementsAndFile(requirements.clone(), file.to_string())
        };
        let mut line = format!("requirements-file = {}", string(file));
        if !requirements.is_empty() {
            let _ = write!(line, ", requirements = {}", listed(&requirements));
        }
        let _ = write!(line, ": {source}; {no_lock}");
        if !declared.is_empty() {
            let _ = write!(line, "; {said}");
        }
        if !names_pytest {
            let _ = write!(
                line,
                "; the file does not name pytest, so {pytest} is added"
            );
        }
        line.push_str(dynamic_note);
        why.push(line);
        let fallback = (env != plain).then_some(plain);
        (env, fallback)
    };
    let evidence_file = known
        .evidence
        .requirement_files
        .iter()
        .find(|(f, _)| file_lists_pytest(root, f))
        .or(known.evidence.requirement_files.first());
    if let Some((file, source)) = evidence_file {
        return file_env(
            file,
            format!("{source} installs it before running pytest on {dir}"),
            why,
        );
    }
    if let Some((file, requirement)) = package.requirement_files.first() {
        // The manifest reads `requirements-file` from the repository root.
        let path = join(dir, file);
        return file_env(
            &path,
            format!("{dir} has {file}, which lists pytest ({requirement})"),
            why,
        );
    }
    if !declared.is_empty() {
        let requirements = with_pytest(&declared);
        why.push(format!(
            "requirements = {}: {no_lock}; {said}{}",
            listed(&requirements),
            if !declared.contains(&pytest) {
                format!("; it declares no pytest, so {pytest} is added")
            } else {
                String::new()
            }
        ));
        return (
            Env::Requirements(requirements),
            Some(Env::Requirements(vec![pytest.clone()])),
        );
    }
    let extras = pytest_extras(package);
    let because = match (locked, extras.first()) {
        (false, Some((extra, _))) => format!(
            "its extra `{extra}` holds pytest but it has no uv.lock to install the project from"
        ),
        (false, None) => "it has no uv.lock and no requirements file that lists pytest".into(),
        (true, _) => "its uv.lock has no extra or dependency group that holds pytest".into(),
    };
    let requirement = extras.first().map_or(pytest, |(_, r)| r.clone());
    why.push(format!(
        "requirements = [\"{requirement}\"]: {because}; the project is not installed, add what its tests import{dynamic_note}"
    ));
    (Env::Requirements(vec![requirement]), None)
}

fn guess_suite(package: &Package, known: &Known, root: &Path) -> Guess {
    let providers = known.providers;
    let mut why = Vec::new();
    let dir = &package.dir;
    let extras = pytest_extras(package);
    let locked = package.lock.is_some();
    // "has a uv.lock", or the workspace's lock that covers a member.
    let has_lock = match &package.lock {
        Some(ProjectLock {
            lock,
            workspace_root: Some(_),
        }) => format!("is a member of a uv workspace locked by {lock}"),
        _ => "has a uv.lock".into(),
    };
    let mut fallback = None;
    let environment = if let (true, Some((extra, requirement))) = (locked, extras.first()) {
        why.push(format!(
            "extras = [\"{extra}\"]: {dir} {has_lock} and its extra `{extra}` holds pytest ({requirement}), so the project is installed from its lock"
        ));
        Env::Extras(vec![extra.clone()])
    } else if let (true, Some((group, default))) = (locked, pytest_groups(package).first()) {
        if *default {
            why.push(format!(
                "extras = []: {dir} {has_lock} and pytest is in its dependency group `{group}`, a default group, which uv sync installs"
            ));
            Env::Extras(Vec::new())
        } else {
            why.push(format!(
                "groups = [\"{group}\"]: {dir} {has_lock} and pytest is in its dependency group `{group}`, which uv sync installs with --group {group}"
            ));
            Env::Groups(vec![group.clone()])
        }
    } else {
        let (environment, alternative) = unlocked_environment(package, known, root, &mut why);
        fallback = alternative;
        environment
    };
    let installed = matches!(environment, Env::Extras(_) | Env::Groups(_));

    let mut pythonpath = BTreeSet::new();
    for name in &package.imports {
        let Some(candidates) = providers.get(name) else {
            continue;
        };
        let own: Vec<&Provider> = candidates.iter().filter(|p| p.package == *dir).collect();
        let chosen = if own.is_empty() {
            match candidates.as_slice() {
                [one] => Some(one),
                _ => {
                    why.push(format!(
                        "pythonpath: `{name}` is imported and provided by {} packages ({}); none chosen",
                        candidates.len(),
                        candidates.iter().map(|p| p.package.as_str()).collect::<Vec<_>>().join(", ")
                    ));
                    None
                }
            }
        } else {
            own.into_iter().find(|p| p.flat || !installed)
        };
        if let Some(provider) = chosen {
            if pythonpath.insert(provider.path.clone()) {
                let what = if provider.flat {
                    format!("a flat-layout package ({})", provider.package)
                } else {
                    format!("a package in {}", provider.path)
                };
                why.push(format!(
                    "pythonpath += \"{}\": its code imports `{name}`, {what}",
                    provider.path
                ));
            }
        }
    }

    let markers: Vec<&(String, String)> = package
        .markers
        .iter()
        .filter(|(name, _)| DESELECTED_MARKERS.contains(&name.as_str()))
        .collect();
    let markers = if let Some((expression, source)) = &known.evidence.markers {
        why.push(format!(
            "markers = {}: {source} runs pytest on it with `-m {}`",
            string(expression),
            shell_quoted(expression)
        ));
        Some(expression.clone())
    } else if markers.is_empty() {
        None
    } else {
        let expression = markers
            .iter()
            .map(|(name, _)| format!("not {name}"))
            .collect::<Vec<_>>()
            .join(" and ");
        let sources: Vec<String> = markers
            .iter()
            .map(|(name, file)| format!("`{name}` ({file})"))
            .collect();
        why.push(format!(
            "markers = \"{expression}\": registered marker {} deselected; run them with `-- -m {}`",
            sources.join(", "),
            markers[0].0
        ));
        Some(expression)
    };

    let mut env = BTreeMap::new();
    for (name, (value, file)) in &package.required_env {
        why.push(format!(
            "env {name} = {}: {file} requires it (`os.environ[\"{name}\"] == ...`)",
            string(value)
        ));
        env.insert(name.clone(), value.clone());
    }

    let mut paths = package.test_dirs.clone();
    if let Some((inside, source)) = &known.evidence.paths {
        paths = inside.clone();
        why.push(format!(
            "paths = {}: {source} runs pytest on {}",
            listed(&paths),
            inside
                .iter()
                .map(|p| join(dir, p))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    } else if paths.is_empty() {
        why.push("paths: none: test_*.py files in the package directory, found by pytest's own discovery".into());
    } else {
        why.push(format!(
            "paths = [{}]: the test directory",
            paths
                .iter()
                .map(|p| format!("\"{p}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Guess {
        name: String::new(),
        group: String::new(),
        dir: dir.clone(),
        environment,
        pythonpath: pythonpath.into_iter().collect(),
        markers,
        paths,
        env,
        why,
        fallback,
        evidence_files: known
            .evidence
            .requirement_files
            .iter()
            .map(|(f, _)| f.clone())
            .collect(),
    }
}

/// An expression as a shell word: quoted when it holds a space.
fn shell_quoted(text: &str) -> String {
    if text.contains([' ', '"', '\'', '(', ')']) {
        format!("\"{}\"", text.replace('"', "\\\""))
    } else {
        text.to_string()
    }
}

/// The longest name init gives: names become file names (`<suite>.pytest.xml`, logs), which
/// must stay well under the file system's 255 bytes.
const MAX_NAME: usize = 64;

/// Letters, digits, `-`, `_` and `.`, not starting with `-` or `.` (the manifest's rule):
/// every other character (a space, non-ASCII) becomes `-`, one per run, and a name with
/// nothing left is `fallback`.
fn identifier(text: &str, fallback: &str) -> String {
    let mut cleaned = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
            cleaned.push(c);
        } else if !cleaned.ends_with('-') {
            cleaned.push('-');
        }
    }
    let mut cleaned = cleaned.trim_start_matches(['-', '.']).to_string();
    cleaned.truncate(MAX_NAME);
    let cleaned = cleaned.trim_end_matches('-');
    if cleaned.is_empty() {
        fallback.to_string()
    } else {
        cleaned.to_string()
    }
}

/// Names from the directory (unique, and never a group's name), groups from the top-level
/// directory.
fn name_suites(guesses: &mut [Guess]) {
    for guess in guesses.iter_mut() {
        let parts: Vec<&str> = guess.dir.split('/').collect();
        guess.group = if guess.dir == "." || parts.len() == 1 {
            "main".into()
        } else {
            identifier(parts[0], "main")
        };
        guess.name = identifier(parts[parts.len() - 1], "suite");
        if guess.dir == "." {
            guess.name = "root".into();
        }
    }
    // A name used twice takes on its parent directories until it is unique.
    let mut depth = 1;
    loop {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for guess in guesses.iter() {
            *counts.entry(guess.name.as_str()).or_default() += 1;
        }
        let doubled: BTreeSet<String> = counts
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(name, _)| name.to_string())
            .collect();
        if doubled.is_empty() || depth > 16 {
            break;
        }
        depth += 1;
        for guess in guesses.iter_mut().filter(|g| doubled.contains(&g.name)) {
            let parts: Vec<&str> = guess.dir.split('/').collect();
            let from = parts.len().saturating_sub(depth);
            guess.name = identifier(&parts[from..].join("-"), "suite");
        }
    }
    // Names still shared (directories that differ only in characters a name cannot hold,
    // `café` and `cafè`) or equal to a group are numbered, so that every name is unique.
    let groups: BTreeSet<String> = guesses.iter().map(|g| g.group.clone()).collect();
    let mut taken: BTreeSet<String> = BTreeSet::new();
    for guess in guesses.iter_mut() {
        let mut note = String::new();
        let wanted = guess.name.clone();
        let free = |name: &str| !taken.contains(name) && !groups.contains(name);
        if !free(&wanted) {
            let base = if groups.contains(&wanted) {
                note = format!(" (`{wanted}` is also a group)");
                format!("{wanted}-tests")
            } else {
                note = format!(" (`{wanted}` is taken)");
                wanted.clone()
            };
            let mut renamed = base.clone();
            let mut n = 2;
            while !free(&renamed) {
                renamed = format!("{base}-{n}");
                n += 1;
            }
            guess.name = renamed;
        }
        taken.insert(guess.name.clone());
        let group_why = if guess.group == "main" {
            "group \"main\": the package is not below a top-level directory".to_string()
        } else {
            format!("group \"{}\": its top-level directory", guess.group)
        };
        guess.why.insert(
            0,
            format!(
                "suite for {}: name \"{}\" from its directory{note}; {group_why}",
                guess.dir, guess.name
            ),
        );
    }
}

/// A TOML basic string: `"` and `\` escaped, and every control character TOML forbids
/// in one (all but tab, DEL included).
fn string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push('\t'),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(quoted, "\\u{:04X}", c as u32);
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// A decision as a TOML comment line, which may hold no control character but tab.
fn comment(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                c.escape_default().collect()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A guess as the manifest's own entry type, so that `init` writes what a run reads.
fn entry(guess: &Guess) -> RawSuite {
    let strings = |items: &[String]| items.iter().cloned().map(unplaced).collect::<Vec<_>>();
    let nonempty = |items: &[String]| (!items.is_empty()).then(|| strings(items));
    let mut suite = RawSuite {
        name: Some(unplaced(guess.name.clone())),
        group: Some(unplaced(guess.group.clone())),
        dir: Some(unplaced(guess.dir.clone())),
        pythonpath: nonempty(&guess.pythonpath),
        markers: guess.markers.clone(),
        paths: nonempty(&guess.paths),
        env: (!guess.env.is_empty()).then(|| {
            unplaced(
                guess
                    .env
                    .iter()
                    .map(|(name, value)| (unplaced(name.clone()), unplaced(value.clone())))
                    .collect(),
            )
        }),
        ..RawSuite::default()
    };
    match &guess.environment {
        Env::Extras(extras) => suite.extras = Some(unplaced(extras.clone())),
        Env::Groups(groups) => suite.groups = Some(unplaced(groups.clone())),
        Env::Requirements(requirements) => {
            suite.requirements = Some(unplaced(strings(requirements)));
        }
        Env::RequirementsFile(file) => suite.requirements_file = Some(unplaced(file.clone())),
        Env::RequirementsAndFile(requirements, file) => {
            suite.requirements = Some(unplaced(strings(requirements)));
            suite.requirements_file = Some(unplaced(file.clone()));
        }
    }
    suite
}

/// The highest position of any table in the document: new tables go after it.
fn last_position(table: &Table) -> isize {
    let mut last = table.position().unwrap_or(0);
    for (_, item) in table.iter() {
        let nested: Vec<&Table> = match item {
            Item::Table(t) => vec![t],
            Item::ArrayOfTables(a) => a.iter().collect(),
            _ => vec![],
        };
        for t in nested {
            last = last.max(last_position(t));
        }
    }
    last
}

/// Where the manifest goes: after everything, or where the one it replaces was (its tables'
/// first position, and the comment a person wrote above it).
#[derive(Clone, Debug, PartialEq)]
enum Place {
    End,
    At { position: isize, comment: String },
}

/// The first position among `table` and the tables below it that are written as headers,
/// with that table's prefix (the comments above it).
fn first_table(table: &Table) -> Option<(isize, String)> {
    let own = table
        .position()
        .filter(|_| !table.is_implicit())
        .map(|position| {
            let prefix = table.decor().prefix().and_then(|p| p.as_str());
            (position, prefix.unwrap_or("").to_string())
        });
    let nested = table.iter().flat_map(|(_, item)| match item {
        Item::Table(t) => vec![t],
        Item::ArrayOfTables(a) => a.iter().collect(),
        _ => vec![],
    });
    own.into_iter()
        .chain(nested.filter_map(first_table))
        .min_by_key(|(position, _)| *position)
}

/// Removes `[workspace.metadata.xtask]`, its suites, services and prerequisites; returns
/// where it was, with the comment a person wrote above it (not the one init wrote).
fn remove_manifest(document: &mut DocumentMut) -> Place {
    let removed = document
        .get_mut("workspace")
        .and_then(|w| w.get_mut("metadata"))
        .and_then(Item::as_table_like_mut)
        .and_then(|metadata| metadata.remove("xtask"));
    let Some((position, prefix)) = removed
        .as_ref()
        .and_then(Item::as_table)
        .and_then(first_table)
    else {
        return Place::End;
    };
    // init's own comment runs from its first line to the table.
    let comment = match prefix.find(MARKER) {
        Some(at) => prefix[..at].to_string(),
        None => prefix,
    };
    Place::At { position, comment }
}

/// Adds the manifest to `document`: `[workspace.metadata.xtask]` under init's comment, then
/// one table per guess under its decisions, where the replaced manifest was or else after
/// everything (after a new `[workspace]`, when the file has none).
fn add_manifest(
    document: &mut DocumentMut,
    guesses: &[Guess],
    new_workspace: Option<Table>,
    place: Place,
) -> Result<(), String> {
    let (position, mut lead) = match place {
        Place::At { position, comment } => (position, comment),
        Place::End => {
            // What ends the file (comments after the last table) stays before the new tables.
            let mut lead = document.trailing().as_str().unwrap_or("").to_string();
            if !document.to_string().is_empty() {
                if !lead.is_empty() && !lead.ends_with('\n') {
                    lead.push('\n');
                }
                lead.push('\n');
            }
            document.set_trailing("");
            (last_position(document.as_table()) + 1, lead)
        }
    };
    // Tables of one position are written in the document's order: the workspace, the
    // manifest, its suites.
    if let Some(mut workspace) = new_workspace {
        workspace.set_position(Some(position));
        workspace.decor_mut().set_prefix(std::mem::take(&mut lead));
        document.insert("workspace", Item::Table(workspace));
        lead.push('\n');
    }
    let workspace = document.entry("workspace").or_insert_with(|| {
        let mut workspace = Table::new();
        workspace.set_implicit(true);
        Item::Table(workspace)
    });
    let Some(workspace) = workspace.as_table_mut() else {
        return Err("`workspace` is not a [workspace] table (an inline table, perhaps), so it cannot take a [workspace.metadata.xtask] table; write it as a [workspace] table, then run `cargo xtask init` again".into());
    };
    let metadata = workspace.entry("metadata").or_insert_with(|| {
        let mut metadata = Table::new();
        metadata.set_implicit(true);
        Item::Table(metadata)
    });
    let Some(metadata) = metadata.as_table_mut() else {
        return Err("`workspace.metadata` is not a [workspace.metadata] table, so it cannot take a [workspace.metadata.xtask] table; write it as one".into());
    };

    let mut xtask = Table::new();
    xtask.set_position(Some(position));
    xtask.decor_mut().set_prefix(format!(
        "{lead}{MARKER}\n\
         # Every decision is in a comment above its suite: check them, then run `cargo xtask ci`.\n\
         # The keys are described in docs/manifest.md, \"Adding a suite\"; editing needs no rebuild.\n"
    ));
    let mut suites = ArrayOfTables::new();
    for guess in guesses {
        let mut table = entry(guess)
            .to_table()
            .map_err(|err| format!("suite `{}` could not be written as TOML: {err}", guess.name))?;
        table.set_position(Some(position));
        let why: String = guess
            .why
            .iter()
            .map(|why| format!("# {}\n", comment(why)))
            .collect();
        table.decor_mut().set_prefix(format!("\n{why}"));
        suites.push(table);
    }
    xtask.insert("suites", Item::ArrayOfTables(suites));
    metadata.insert("xtask", Item::Table(xtask));
    Ok(())
}

/// Loads the manifest of the whole new `Cargo.toml` text as a run would read it.
fn validate(text: &str, file: &Path, root: &Path) -> Result<Manifest, Vec<String>> {
    Manifest::from_toml(text, file, root).map_err(|err| err.problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_name_their_top_level_module() {
        assert_eq!(imported("import a.b as c, d"), ["a", "d"]);
        assert_eq!(imported("from guardrail.stream import x"), ["guardrail"]);
        assert!(imported("from . import x").is_empty());
        assert!(imported("# import nothing").is_empty());
    }

    #[test]
    fn required_values_are_read_from_comparisons() {
        assert_eq!(
            required_value(r#"    assert os.environ["ALPHA_MODE"] == "checked""#),
            Some(("ALPHA_MODE".into(), "checked".into()))
        );
        assert_eq!(
            required_value("x = os.environ['A'] == 'b'"),
            Some(("A".into(), "b".into()))
        );
        assert_eq!(required_value(r#"os.environ.get("A", "b")"#), None);
        assert_eq!(required_value(r#"os.environ["A"]"#), None);
    }

    #[test]
    fn pytest_is_told_from_its_plugins() {
        assert!(is_pytest("pytest==9.2.0"));
        assert!(is_pytest("PyTest >= 8"));
        assert!(is_pytest("pytest[testing]"));
        assert!(!is_pytest("pytest-cov"));
        assert!(!is_pytest("pytest_asyncio"));
    }

    #[test]
    fn ini_markers_read_continuation_lines() {
        let text = "[pytest]\naddopts = -q\nmarkers =\n    integration: needs a service\n    slow\n[other]\nmarkers = x\n";
        assert_eq!(
            ini_markers(text, "pytest"),
            ["integration: needs a service", "slow"]
        );
        assert_eq!(
            ini_markers("[tool:pytest]\nmarkers = e2e\n", "tool:pytest"),
            ["e2e"]
        );
    }

    /// A requirements-only guess for `dir`, not named yet.
    fn guess(dir: &str) -> Guess {
        Guess {
            name: String::new(),
            group: String::new(),
            dir: dir.into(),
            environment: Env::Requirements(vec!["pytest".into()]),
            pythonpath: vec![],
            markers: None,
            paths: vec![],
            env: BTreeMap::new(),
            why: vec![],
            fallback: None,
            evidence_files: vec![],
        }
    }

    #[test]
    fn names_are_unique_valid_and_never_a_group() {
        let mut guesses = vec![
            guess("a/api"),
            guess("b/api"),
            guess("backend"),
            guess("backend/x y"),
        ];
        name_suites(&mut guesses);
        let names: Vec<(&str, &str)> = guesses
            .iter()
            .map(|g| (g.name.as_str(), g.group.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("a-api", "a"),
                ("b-api", "b"),
                ("backend-tests", "main"),
                ("x-y", "backend")
            ]
        );
    }

    #[test]
    fn odd_directory_names_give_distinct_names_the_manifest_accepts() {
        let dirs = [
            "pkgs/my pkg",
            "pkgs/my.pkg",
            "pkgs/café",
            "pkgs/cafè",
            "pkgs/日本",
            "pkgs/.hidden-ish",
            "pkgs/-dash",
            "pkgs/a\nb",
            "other/my pkg",
            "pkgs",
        ];
        let mut guesses: Vec<Guess> = dirs.iter().map(|d| guess(d)).collect();
        let long = "x".repeat(300);
        guesses.push(guess(&format!("pkgs/{long}")));
        name_suites(&mut guesses);
        let names: Vec<&str> = guesses.iter().map(|g| g.name.as_str()).collect();
        let unique: BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        // Written as init writes them, odd characters in the decisions' comments included.
        let written: Vec<Guess> = guesses
            .iter()
            .map(|g| Guess {
                dir: ".".into(),
                why: vec![format!("dir {:?}", g.dir)],
                ..g.clone()
            })
            .collect();
        let mut document = DocumentMut::new();
        add_manifest(&mut document, &written, Some(Table::new()), Place::End).unwrap();
        let text = document.to_string();
        let root = std::env::temp_dir();
        if let Err(err) = Manifest::from_toml(&text, Path::new("Cargo.toml"), &root) {
            panic!("{names:?}: {err}");
        }
        assert!(names.iter().all(|n| n.len() <= MAX_NAME), "{names:?}");
        assert_eq!(names[0], "pkgs-my-pkg", "made unique by its parent");
        assert_eq!(names[1], "my.pkg");
        assert_eq!(names[4], "suite", "nothing left of the name");
    }

    fn one_guess() -> Guess {
        Guess {
            name: "a".into(),
            group: "libs".into(),
            why: vec!["a decision".into()],
            ..guess("libs/a")
        }
    }

    const GUESSED: &str = "# The suite manifest, guessed by `cargo xtask init`.\n# Every decision is in a comment above its suite: check them, then run `cargo xtask ci`.\n# The keys are described in docs/manifest.md, \"Adding a suite\"; editing needs no rebuild.\n[workspace.metadata.xtask]\n\n# a decision\n[[workspace.metadata.xtask.suites]]\nname = \"a\"\ngroup = \"libs\"\ndir = \"libs/a\"\nrequirements = [\"pytest\"]\n";

    /// --force replaces the manifest where it was, under the comment a person wrote above
    /// it; the tables after it stay after it.
    #[test]
    fn force_replaces_only_the_manifest_where_it_was() {
        let text = "[workspace]\nmembers = []\n\n# The manifest.\n[workspace.metadata.xtask]\ntimeout = \"10m\"\n\n[[workspace.metadata.xtask.suites]]\nname = \"old\"\n\n[workspace.metadata.xtask.services.api]\ncommand = [\"x\"]\n\n# Profiles.\n[profile.dev]\nopt-level = 1\n";
        let mut document: DocumentMut = text.parse().unwrap();
        let place = remove_manifest(&mut document);
        assert!(
            matches!(&place, Place::At { comment, .. } if comment == "\n# The manifest.\n"),
            "{place:?}"
        );
        assert_eq!(
            document.to_string(),
            "[workspace]\nmembers = []\n\n# Profiles.\n[profile.dev]\nopt-level = 1\n"
        );
        add_manifest(&mut document, &[one_guess()], None, place).unwrap();
        let replaced = document.to_string();
        assert_eq!(
            replaced,
            format!("[workspace]\nmembers = []\n\n# The manifest.\n{GUESSED}\n# Profiles.\n[profile.dev]\nopt-level = 1\n")
        );
        // Replacing its own manifest gives the same file again: init's comment is not kept.
        let mut again: DocumentMut = replaced.parse().unwrap();
        let place = remove_manifest(&mut again);
        add_manifest(&mut again, &[one_guess()], None, place).unwrap();
        assert_eq!(again.to_string(), replaced);
    }

    /// A new manifest goes after everything the file had, the comments at its end included;
    /// the rest of the file is kept byte for byte.
    #[test]
    fn a_new_manifest_is_added_after_the_file_as_it_was() {
        let text = "[package]\nname = \"x\" # inline comment\n\n[workspace]\nmembers = [ \"xtask\" ]\n\n[profile.dev]\nopt-level = 1\n# the end";
        let mut document: DocumentMut = text.parse().unwrap();
        add_manifest(&mut document, &[one_guess()], None, Place::End).unwrap();
        assert_eq!(document.to_string(), format!("{text}\n\n{GUESSED}"));

        // Without a [workspace], one is added first; on its own, the manifest is what
        // --print shows.
        let mut document: DocumentMut = "# only a comment".parse().unwrap();
        let mut workspace = Table::new();
        workspace.insert("resolver", value("2"));
        add_manifest(&mut document, &[one_guess()], Some(workspace), Place::End).unwrap();
        assert_eq!(
            document.to_string(),
            format!("# only a comment\n\n[workspace]\nresolver = \"2\"\n\n{GUESSED}")
        );
        let mut alone = DocumentMut::new();
        add_manifest(&mut alone, &[one_guess()], None, Place::End).unwrap();
        assert_eq!(alone.to_string(), GUESSED);
    }

    /// An inline `workspace` cannot take the manifest's tables: said, nothing is added.
    #[test]
    fn an_inline_workspace_is_refused() {
        let mut document: DocumentMut = "workspace = { members = [] }\n".parse().unwrap();
        let err = add_manifest(&mut document, &[one_guess()], None, Place::End).unwrap_err();
        assert!(err.contains("inline table"), "{err}");
    }

    /// Which commands are evidence for which package: one with paths for the packages
    /// they are in, one without for every package below its directory (a package's own
    /// tox.ini first); a job of only the tests that need the world outside gives no markers.
    #[test]
    fn evidence_goes_to_the_packages_a_command_runs() {
        let command =
            |source: &str, dir: &str, files: &[&str], markers: Option<&str>, paths: &[&str]| {
                evidence::Command {
                    source: source.into(),
                    dir: dir.into(),
                    requirement_files: files.iter().map(|f| f.to_string()).collect(),
                    markers: markers.map(str::to_string),
                    paths: paths.iter().map(|p| p.to_string()).collect(),
                }
            };
        let commands = [
            command(
                "ci.yml",
                ".",
                &["tests/req.txt"],
                Some("not slow"),
                &["services/api/tests/unit"],
            ),
            command("ci.yml", ".", &["tests/req.txt"], Some("integration"), &[]),
            command(
                "services/web/tox.ini",
                "services/web",
                &["services/web/r.txt"],
                None,
                &[],
            ),
        ];
        let dirs: Vec<String> = [".", "services/api", "services/web", "libs/x"]
            .iter()
            .map(|d| d.to_string())
            .collect();
        let api = evidence_for("services/api", &dirs, &commands);
        assert_eq!(
            api.requirement_files,
            [("tests/req.txt".to_string(), "ci.yml".to_string())]
        );
        assert_eq!(api.markers, Some(("not slow".into(), "ci.yml".into())));
        assert_eq!(
            api.paths,
            Some((vec!["tests/unit".to_string()], "ci.yml".to_string()))
        );
        let web = evidence_for("services/web", &dirs, &commands);
        let files: Vec<&str> = web
            .requirement_files
            .iter()
            .map(|(f, _)| f.as_str())
            .collect();
        assert_eq!(files, ["services/web/r.txt", "tests/req.txt"]);
        assert_eq!(web.markers, None);
        assert_eq!(web.paths, None);
        let x = evidence_for("libs/x", &dirs, &commands);
        assert_eq!(x.markers, None, "`-m integration` is not the unit tests");
        assert_eq!(x.requirement_files.len(), 1);
    }

    #[test]
    fn strings_are_escaped_for_toml() {
        assert_eq!(string("a\"b\\c"), r#""a\"b\\c""#);
        let parsed: toml::Table = format!("x = {}", string("a\"b\\c\n")).parse().unwrap();
        assert_eq!(parsed["x"].as_str(), Some("a\"b\\c\n"));
        let odd = "tab\there\u{7f}del\u{1}bell\r\u{85}é 日本";
        let text = format!("# {}\nx = {}\n", comment(odd), string(odd));
        let parsed: toml::Table = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(parsed["x"].as_str(), Some(odd));
    }
}
