//! The suite manifest: `[workspace.metadata.xtask]` in the root `Cargo.toml`, read through
//! `cargo metadata` so that editing it needs no rebuild and no TOML parser of our own.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde_json::{Map, Value};
use xshell::{cmd, Shell};

use crate::paths::Layout;

pub const TABLE: &str = "[workspace.metadata.xtask]";
pub const TOP_KEYS: &[&str] = &[
    "suites",
    "timeout",
    "secrets",
    "ci-groups",
    "services",
    "prerequisites",
];
/// The group of the smoke suites: left out of `test` unless named, run by `smoke`.
pub const SMOKE_GROUP: &str = "smoke";
pub const SERVICE_KEYS: &[&str] = &[
    "command",
    "dir",
    "environment",
    "env",
    "ready",
    "deadline",
    "export",
    "port",
];
pub const PREREQUISITE_KEYS: &[&str] = &["env", "tcp", "http", "command", "timeout"];
/// How long a service gets to become ready when it sets no `deadline`.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);
/// How long a prerequisite check may take when it sets no `timeout`.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// Replaced by the service's port in its `command`, `env`, `ready` and `export`.
pub const PORT_PLACEHOLDER: &str = "{port}";
/// The most retries a suite may ask for: a test that fails more often is not flaky.
pub const MAX_RETRIES: u32 = 10;
/// How long a suite may run when neither the manifest nor `--timeout` says.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
pub const SUITE_KEYS: &[&str] = &[
    "name",
    "group",
    "dir",
    "extras",
    "requirements",
    "requirements-file",
    "pythonpath",
    "markers",
    "paths",
    "env",
    "timeout",
    "retries",
    "requires-env",
    "services",
    "prerequisites",
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub suites: Vec<Suite>,
    /// Names of environment variables whose values are masked everywhere, on top of the
    /// names that look secret (see `redact`).
    pub secrets: Vec<String>,
    /// The groups `cargo xtask ci` runs (`ci-groups`); every group when absent.
    pub ci_groups: Option<Vec<String>>,
    /// Long-running programs suites need (`[workspace.metadata.xtask.services.NAME]`).
    pub services: Vec<Service>,
    /// What must already be available for a suite to run (`...prerequisites.NAME`).
    pub prerequisites: Vec<Prerequisite>,
}

/// A program the xtask starts for the suites that name it, and stops after them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    /// argv; `{port}` is replaced by the service's port.
    pub command: Vec<String>,
    /// Where it runs, relative to the repository root.
    pub dir: String,
    /// The suite whose environment it runs in (its `bin` first on PATH, `VIRTUAL_ENV` set).
    pub environment: Option<String>,
    pub env: BTreeMap<String, String>,
    pub ready: Ready,
    /// How long it gets to become ready.
    pub deadline: Duration,
    /// Variables given to the suites that need it (`BACKEND_URL = "http://127.0.0.1:{port}"`).
    pub export: BTreeMap<String, String>,
    /// A fixed port instead of a free one chosen by the xtask.
    pub port: Option<u16>,
}

/// When a service is ready.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ready {
    /// This URL answers with a 2xx status.
    Http(String),
    /// Its port accepts a TCP connection.
    Tcp,
}

/// Something a suite needs that the xtask checks but does not start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prerequisite {
    pub name: String,
    pub check: Check,
    pub timeout: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// The variable is set and not empty (its value is never shown).
    Env(String),
    /// `host:port` accepts a TCP connection.
    Tcp(String),
    /// The URL answers with a 2xx status.
    Http(String),
    /// The command exits 0.
    Command(Vec<String>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suite {
    pub name: String,
    pub group: String,
    /// Relative to the repository root.
    pub dir: String,
    pub environment: Environment,
    /// Relative to the repository root.
    pub pythonpath: Vec<String>,
    /// pytest's `-m` expression; `None` selects every test.
    pub markers: Option<String>,
    /// Relative to `dir`; empty means pytest's own discovery.
    pub paths: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// The suite's own `timeout`, else the manifest's, else `DEFAULT_TIMEOUT`.
    pub timeout: Duration,
    /// Environment variables the suite needs (API keys of a smoke test); when one is unset
    /// or empty the suite is not run and ends `prerequisite-unavailable`.
    pub requires_env: Vec<String>,
    /// The services it needs started (names of `services`).
    pub services: Vec<String>,
    /// The prerequisites it needs available (names of `prerequisites`).
    pub prerequisites: Vec<String>,
    /// How many times a failed test is run again (`retries`; `--retries` overrides).
    pub retries: u32,
}

/// How a suite's Python environment is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Environment {
    /// The project itself, from its `uv.lock`, with these optional extras.
    Project { extras: Vec<String> },
    /// No project install: only these requirements, and those of a requirements file
    /// (relative to the repository root, installed as `uv pip install -r FILE` run there).
    Requirements {
        requirements: Vec<String>,
        file: Option<String>,
    },
}

/// Everything wrong with a manifest, so that one edit can fix it all.
#[derive(Debug)]
pub struct ManifestError {
    pub file: PathBuf,
    pub problems: Vec<String>,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "invalid suite manifest {TABLE} in {}:",
            self.file.display()
        )?;
        for problem in &self.problems {
            writeln!(f, "  - {problem}")?;
        }
        write!(f, "Fix the entries above (docs/manifest.md, \"Adding a suite\", describes every key); nothing was run.")
    }
}

impl std::error::Error for ManifestError {}

impl Manifest {
    /// Reads the manifest of the repository at `layout.root`.
    pub fn load(layout: &Layout) -> Result<Manifest, ManifestError> {
        let file = layout.manifest();
        let fail = |problem: String| ManifestError {
            file: file.clone(),
            problems: vec![problem],
        };
        let metadata = cargo_metadata(&file).map_err(|err| fail(format!("{err:#}")))?;
        let value: Value = serde_json::from_str(&metadata).map_err(|err| {
            fail(format!(
                "`cargo metadata` printed something that is not JSON: {err}"
            ))
        })?;
        let table = value.get("metadata").and_then(|m| m.get("xtask")).ok_or_else(|| {
            fail(format!("there is no {TABLE} table; add one with a [[workspace.metadata.xtask.suites]] entry per suite"))
        })?;
        Manifest::from_json(table, &layout.root)
            .map_err(|problems| ManifestError { file, problems })
    }

    /// Validates the `[workspace.metadata.xtask]` table; directories are checked below `root`.
    pub fn from_json(table: &Value, root: &Path) -> Result<Manifest, Vec<String>> {
        let mut problems = Vec::new();
        let Some(table) = table.as_object() else {
            return Err(vec![format!("{TABLE} must be a table")]);
        };
        for key in table.keys().filter(|k| !TOP_KEYS.contains(&k.as_str())) {
            problems.push(format!(
                "unknown key `{key}` in {TABLE}; the known keys are: {}",
                TOP_KEYS.join(", ")
            ));
        }
        let entries = match table.get("suites") {
            Some(Value::Array(entries)) if !entries.is_empty() => entries.as_slice(),
            Some(Value::Array(_)) | None => {
                problems.push(
                    "no suites: add a [[workspace.metadata.xtask.suites]] entry per suite".into(),
                );
                &[]
            }
            Some(_) => {
                problems.push(
                    "`suites` must be an array of tables ([[workspace.metadata.xtask.suites]])"
                        .into(),
                );
                &[]
            }
        };

        let default_timeout = match table.get("timeout") {
            None => DEFAULT_TIMEOUT,
            Some(value) => timeout(value).unwrap_or_else(|why| {
                problems.push(format!("key `timeout` in {TABLE}: {why}"));
                DEFAULT_TIMEOUT
            }),
        };
        let secrets = match table.get("secrets") {
            None => Vec::new(),
            Some(value) => env_names(value).unwrap_or_else(|why| {
                problems.push(format!("key `secrets` in {TABLE}: {why}"));
                Vec::new()
            }),
        };

        let ci_groups = match table.get("ci-groups") {
            None => None,
            Some(value) => match value.as_array().and_then(|items| {
                items
                    .iter()
                    .map(|i| i.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
            }) {
                Some(groups) => Some(groups),
                None => {
                    problems.push(format!(
                        "key `ci-groups` in {TABLE}: must be an array of group names, found {}",
                        kind(value)
                    ));
                    None
                }
            },
        };

        let mut suites = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            let mut entry = SuiteEntry::new(index, entry, root, default_timeout, &mut problems);
            if let Some(suite) = entry.parse() {
                suites.push(suite);
            }
        }

        let services = named_tables(table, "services", &mut problems)
            .into_iter()
            .filter_map(|(name, value)| {
                let mut entry = SuiteEntry::labelled(
                    format!("service `{name}`"),
                    value,
                    root,
                    DEFAULT_DEADLINE,
                    &mut problems,
                );
                entry.service(name)
            })
            .collect::<Vec<_>>();
        let prerequisites = named_tables(table, "prerequisites", &mut problems)
            .into_iter()
            .filter_map(|(name, value)| {
                let mut entry = SuiteEntry::labelled(
                    format!("prerequisite `{name}`"),
                    value,
                    root,
                    DEFAULT_CHECK_TIMEOUT,
                    &mut problems,
                );
                entry.prerequisite(name)
            })
            .collect::<Vec<_>>();
        for suite in &suites {
            for name in &suite.services {
                if !services.iter().any(|s| &s.name == name) {
                    problems.push(format!("suite `{}`: key `services`: there is no service `{name}`; declare it as [workspace.metadata.xtask.services.{name}]", suite.name));
                }
            }
            for name in &suite.prerequisites {
                if !prerequisites.iter().any(|p| &p.name == name) {
                    problems.push(format!("suite `{}`: key `prerequisites`: there is no prerequisite `{name}`; declare it as [workspace.metadata.xtask.prerequisites.{name}]", suite.name));
                }
            }
        }
        for service in &services {
            if let Some(env) = &service.environment {
                if !suites.iter().any(|s| &s.name == env) {
                    problems.push(format!("service `{}`: key `environment`: there is no suite `{env}` whose environment it could run in", service.name));
                }
            }
        }

        let mut names = BTreeSet::new();
        for suite in &suites {
            if !names.insert(suite.name.as_str()) {
                problems.push(format!("suite `{}`: key `name`: the name is used by more than one suite; names must be unique", suite.name));
            }
        }
        let groups: BTreeSet<&str> = suites.iter().map(|s| s.group.as_str()).collect();
        for suite in suites.iter().filter(|s| groups.contains(s.name.as_str())) {
            problems.push(format!(
                "suite `{}`: key `name`: `{}` is also a group name, so `cargo xtask test {}` would be ambiguous; rename the suite or the group",
                suite.name, suite.name, suite.name
            ));
        }

        for group in ci_groups.iter().flatten() {
            if !groups.contains(group.as_str()) {
                problems.push(format!(
                    "key `ci-groups` in {TABLE}: there is no group `{group}`; the groups are {}",
                    groups.iter().copied().collect::<Vec<_>>().join(", ")
                ));
            }
        }

        if problems.is_empty() {
            Ok(Manifest {
                suites,
                secrets,
                ci_groups,
                services,
                prerequisites,
            })
        } else {
            Err(problems)
        }
    }

    /// The groups, in the order they first appear.
    pub fn groups(&self) -> Vec<&str> {
        let mut groups: Vec<&str> = Vec::new();
        for suite in &self.suites {
            if !groups.contains(&suite.group.as_str()) {
                groups.push(&suite.group);
            }
        }
        groups
    }

    pub fn suites_in_group<'a>(&'a self, group: &'a str) -> impl Iterator<Item = &'a Suite> + 'a {
        self.suites.iter().filter(move |s| s.group == group)
    }
}

#[cfg(test)]
impl Manifest {
    /// Suites named `(name, group)`, each a locked project in `.`, for unit tests.
    pub fn for_tests(suites: &[(&str, &str)]) -> Manifest {
        let suite = |(name, group): &(&str, &str)| Suite {
            name: name.to_string(),
            group: group.to_string(),
            dir: ".".into(),
            environment: Environment::Project { extras: vec![] },
            pythonpath: vec![],
            markers: None,
            paths: vec![],
            env: BTreeMap::new(),
            timeout: DEFAULT_TIMEOUT,
            requires_env: vec![],
            services: vec![],
            prerequisites: vec![],
            retries: 0,
        };
        Manifest {
            suites: suites.iter().map(suite).collect(),
            secrets: vec![],
            ci_groups: None,
            services: vec![],
            prerequisites: vec![],
        }
    }
}

fn cargo_metadata(manifest: &Path) -> anyhow::Result<String> {
    let sh = Shell::new()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = cmd!(
        sh,
        "{cargo} metadata --format-version 1 --no-deps --offline --manifest-path {manifest}"
    )
    .quiet()
    .ignore_status()
    .output()
    .context("running `cargo metadata` to read the suite manifest")?;
    if !output.status.success() {
        anyhow::bail!(
            "`cargo metadata` could not read it:\n{}",
            String::from_utf8_lossy(&output.stderr).trim_end()
        );
    }
    String::from_utf8(output.stdout).context("`cargo metadata` printed invalid UTF-8")
}

/// One `[[workspace.metadata.xtask.suites]]` entry being validated.
struct SuiteEntry<'a> {
    label: String,
    table: Option<&'a Map<String, Value>>,
    root: &'a Path,
    default_timeout: Duration,
    problems: &'a mut Vec<String>,
}

impl<'a> SuiteEntry<'a> {
    fn new(
        index: usize,
        value: &'a Value,
        root: &'a Path,
        default_timeout: Duration,
        problems: &'a mut Vec<String>,
    ) -> Self {
        let table = value.as_object();
        let label = match table.and_then(|t| t.get("name")).and_then(Value::as_str) {
            Some(name) => format!("suite `{name}`"),
            None => format!("suite #{} (no name)", index + 1),
        };
        SuiteEntry {
            label,
            table,
            root,
            default_timeout,
            problems,
        }
    }

    fn problem(&mut self, key: &str, what: impl fmt::Display) {
        self.problems
            .push(format!("{}: key `{key}`: {what}", self.label));
    }

    fn parse(&mut self) -> Option<Suite> {
        let Some(table) = self.table else {
            self.problems
                .push(format!("{}: must be a table", self.label));
            return None;
        };
        for key in table.keys().filter(|k| !SUITE_KEYS.contains(&k.as_str())) {
            self.problem(
                key,
                format_args!("unknown key; the known keys are: {}", SUITE_KEYS.join(", ")),
            );
        }
        let before = self.problems.len();
        let name = self.identifier("name");
        let group = self.identifier("group");
        let dir = self.required_string("dir");
        if let Some(dir) = &dir {
            self.existing_dir("dir", dir, &self.root.join(dir));
        }
        let environment = self.environment(dir.as_deref());
        let pythonpath = self.string_list("pythonpath");
        for entry in &pythonpath {
            self.existing_dir("pythonpath", entry, &self.root.join(entry));
        }
        let markers = self
            .optional_string("markers")
            .filter(|m| !m.trim().is_empty());
        let paths = self.string_list("paths");
        if let Some(dir) = dir.as_ref().filter(|d| self.root.join(d).is_dir()) {
            for path in &paths {
                if Path::new(path).is_absolute() {
                    self.problem(
                        "paths",
                        format_args!("`{path}` must be relative to the suite's `dir` ({dir})"),
                    );
                } else if !self.root.join(dir).join(path).exists() {
                    self.problem("paths", format_args!("`{path}` does not exist in `{dir}`; paths are relative to the suite's `dir`"));
                }
            }
        }
        let env = self.env();
        let timeout = match self.table.and_then(|t| t.get("timeout")) {
            None => self.default_timeout,
            Some(value) => timeout(value).unwrap_or_else(|why| {
                self.problem("timeout", why);
                self.default_timeout
            }),
        };
        let requires_env = match self.table.and_then(|t| t.get("requires-env")) {
            None => Vec::new(),
            Some(value) => env_names(value).unwrap_or_else(|why| {
                self.problem("requires-env", why);
                Vec::new()
            }),
        };
        let services = self.names_list("services");
        let prerequisites = self.names_list("prerequisites");
        let retries = match self.table.and_then(|t| t.get("retries")) {
            None => 0,
            Some(value) => match value.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(n) if n <= MAX_RETRIES => n,
                _ => {
                    self.problem(
                        "retries",
                        format_args!(
                            "must be a whole number from 0 to {MAX_RETRIES}, found {value}"
                        ),
                    );
                    0
                }
            },
        };
        if self.problems.len() > before {
            return None;
        }
        Some(Suite {
            name: name?,
            group: group?,
            dir: dir?,
            environment: environment?,
            pythonpath,
            markers,
            paths,
            env,
            timeout,
            requires_env,
            services,
            prerequisites,
            retries,
        })
    }

    fn labelled(
        label: String,
        value: &'a Value,
        root: &'a Path,
        default_timeout: Duration,
        problems: &'a mut Vec<String>,
    ) -> Self {
        SuiteEntry {
            label,
            table: value.as_object(),
            root,
            default_timeout,
            problems,
        }
    }

    fn table_or_problem(&mut self, known: &[&str]) -> Option<&'a Map<String, Value>> {
        let Some(table) = self.table else {
            self.problems
                .push(format!("{}: must be a table", self.label));
            return None;
        };
        for key in table.keys().filter(|k| !known.contains(&k.as_str())) {
            self.problem(
                key,
                format_args!("unknown key; the known keys are: {}", known.join(", ")),
            );
        }
        Some(table)
    }

    fn duration(&mut self, key: &str) -> Duration {
        match self.table.and_then(|t| t.get(key)) {
            None => self.default_timeout,
            Some(value) => timeout(value).unwrap_or_else(|why| {
                self.problem(key, why);
                self.default_timeout
            }),
        }
    }

    fn names_list(&mut self, key: &str) -> Vec<String> {
        self.string_list(key)
    }

    fn argv(&mut self, key: &str) -> Option<Vec<String>> {
        let argv = self.string_list(key);
        if argv.is_empty() || argv[0].is_empty() {
            self.problem(
                key,
                "must be a non-empty array: the program and its arguments",
            );
            return None;
        }
        Some(argv)
    }

    fn service(&mut self, name: &str) -> Option<Service> {
        let table = self.table_or_problem(SERVICE_KEYS)?;
        let before = self.problems.len();
        if !table.contains_key("command") {
            self.problem(
                "command",
                "missing; a service needs a `command` (argv, with `{port}` for its port)",
            );
        }
        let command = self.argv("command");
        let dir = self.optional_string("dir").unwrap_or_else(|| ".".into());
        self.existing_dir("dir", &dir, &self.root.join(&dir));
        let environment = self.optional_string("environment");
        let env = self.env();
        let export = self.env_table("export");
        let ready = match table.get("ready") {
            None => Some(Ready::Tcp),
            Some(Value::Object(ready)) => match (ready.get("http"), ready.get("tcp")) {
                (Some(Value::String(url)), None) if url.starts_with("http://") => {
                    Some(Ready::Http(url.clone()))
                }
                (None, Some(Value::Bool(true))) => Some(Ready::Tcp),
                _ => {
                    self.problem("ready", "must be { http = \"http://127.0.0.1:{port}/health\" } (a URL that answers 2xx) or { tcp = true } (its port accepts)");
                    None
                }
            },
            Some(other) => {
                self.problem(
                    "ready",
                    format_args!("must be a table, found {}", kind(other)),
                );
                None
            }
        };
        let deadline = self.duration("deadline");
        let port = match table.get("port") {
            None => None,
            Some(value) => match value.as_u64().and_then(|p| u16::try_from(p).ok()) {
                Some(port) if port > 0 => Some(port),
                _ => {
                    self.problem(
                        "port",
                        "must be a port number (1 to 65535); leave it out to get a free port",
                    );
                    None
                }
            },
        };
        if self.problems.len() > before {
            return None;
        }
        Some(Service {
            name: name.to_string(),
            command: command?,
            dir,
            environment,
            env,
            ready: ready?,
            deadline,
            export,
            port,
        })
    }

    fn prerequisite(&mut self, name: &str) -> Option<Prerequisite> {
        let table = self.table_or_problem(PREREQUISITE_KEYS)?;
        let before = self.problems.len();
        let kinds: Vec<&str> = ["env", "tcp", "http", "command"]
            .into_iter()
            .filter(|k| table.contains_key(*k))
            .collect();
        let check = match kinds.as_slice() {
            ["command"] => self.argv("command").map(Check::Command),
            [one] => match self.optional_string(one) {
                Some(value) if *one == "env" && !valid_env_name(&value) => {
                    self.problem(
                        "env",
                        format_args!("`{value}` is not a valid environment variable name"),
                    );
                    None
                }
                Some(value)
                    if *one == "tcp"
                        && !value
                            .rsplit_once(':')
                            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok()) =>
                {
                    self.problem("tcp", format_args!("`{value}` must be `host:port`"));
                    None
                }
                Some(value) if *one == "http" && !value.starts_with("http://") => {
                    self.problem("http", format_args!("`{value}` must be an http:// URL"));
                    None
                }
                Some(value) => Some(match *one {
                    "env" => Check::Env(value),
                    "tcp" => Check::Tcp(value),
                    _ => Check::Http(value),
                }),
                None => None,
            },
            _ => {
                self.problem(
                    "env",
                    format_args!(
                        "give exactly one of `env`, `tcp`, `http` or `command`; found {}",
                        if kinds.is_empty() {
                            "none".to_string()
                        } else {
                            kinds.join(", ")
                        }
                    ),
                );
                None
            }
        };
        let timeout = self.duration("timeout");
        if self.problems.len() > before {
            return None;
        }
        Some(Prerequisite {
            name: name.to_string(),
            check: check?,
            timeout,
        })
    }

    fn optional_string(&mut self, key: &str) -> Option<String> {
        match self.table?.get(key)? {
            Value::String(s) => Some(s.clone()),
            other => {
                self.problem(key, format_args!("must be a string, found {}", kind(other)));
                None
            }
        }
    }

    fn required_string(&mut self, key: &str) -> Option<String> {
        let present = self.table.is_some_and(|t| t.contains_key(key));
        let value = self.optional_string(key);
        if !present {
            self.problem(key, "missing; every suite needs `name`, `group` and `dir`");
        }
        value
    }

    /// Names end up in file names and subcommand names, so keep them plain.
    fn identifier(&mut self, key: &str) -> Option<String> {
        let value = self.required_string(key)?;
        let plain = !value.is_empty()
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            && !value.starts_with(['-', '.']);
        if !plain {
            self.problem(
                key,
                format_args!(
                    "`{value}` must be non-empty and use only letters, digits, `-`, `_` and `.`"
                ),
            );
            return None;
        }
        Some(value)
    }

    fn string_list(&mut self, key: &str) -> Vec<String> {
        let Some(value) = self.table.and_then(|t| t.get(key)) else {
            return Vec::new();
        };
        let items = value.as_array().and_then(|items| {
            items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
        });
        items.unwrap_or_else(|| {
            self.problem(
                key,
                format_args!("must be an array of strings, found {}", kind(value)),
            );
            Vec::new()
        })
    }

    fn existing_dir(&mut self, key: &str, shown: &str, path: &Path) {
        if !self.relative_inside(key, shown) {
            return;
        }
        if !path.is_dir() {
            self.problem(key, format_args!("directory `{shown}` does not exist (paths are relative to the repository root)"));
        }
    }

    fn environment(&mut self, dir: Option<&str>) -> Option<Environment> {
        let table = self.table?;
        let has = |key: &str| table.contains_key(key);
        let project = has("extras");
        let no_project = has("requirements") || has("requirements-file");
        if project == no_project {
            let found = if project {
                "`extras` together with `requirements`/`requirements-file`"
            } else {
                "none of them"
            };
            self.problem(
                "extras",
                format_args!("give either `extras` (install the project) or `requirements` and/or `requirements-file` (no project install); found {found}"),
            );
            return None;
        }
        if project {
            let extras = self.string_list("extras");
            return Some(Environment::Project { extras });
        }
        let requirements = self.string_list("requirements");
        for local in requirements.iter().filter(|r| is_local_path(r)) {
            if !self.root.join(local).exists() {
                let hint = dir
                    .map(|dir| Path::new(dir).join(local.trim().trim_start_matches("./")))
                    .filter(|in_dir| self.root.join(in_dir).exists())
                    .map(|in_dir| {
                        format!(
                            " (it is in the suite's `dir`: write `{}`)",
                            in_dir.display()
                        )
                    })
                    .unwrap_or_default();
                self.problem(
                    "requirements",
                    format_args!("`{local}` does not exist; a local path is relative to the repository root, as `uv pip install {local}` run there reads it{hint}"),
                );
            }
        }
        let file = self.optional_string("requirements-file");
        if let Some(file) = &file {
            if self.relative_inside("requirements-file", file) && !self.root.join(file).is_file() {
                self.problem(
                    "requirements-file",
                    format_args!("`{file}` does not exist; it is relative to the repository root, as `uv pip install -r {file}` run there reads it"),
                );
                return None;
            }
        }
        if requirements.is_empty() && file.is_none() {
            self.problem(
                "requirements",
                "must list at least one requirement (pytest, at least), or give a `requirements-file`",
            );
            return None;
        }
        Some(Environment::Requirements { requirements, file })
    }

    /// Whether `path` is relative and stays inside the repository; a problem otherwise.
    fn relative_inside(&mut self, key: &str, path: &str) -> bool {
        let parts = Path::new(path).components();
        let escapes = parts
            .clone()
            .any(|c| matches!(c, std::path::Component::ParentDir));
        if path.trim().is_empty() {
            self.problem(key, "must not be empty (use \".\" for the repository root)");
            false
        } else if Path::new(path).is_absolute() {
            self.problem(
                key,
                format_args!("`{path}` must be relative to the repository root"),
            );
            false
        } else if escapes {
            self.problem(
                key,
                format_args!("`{path}` leaves the repository (`..`); give a path inside it"),
            );
            false
        } else {
            true
        }
    }

    fn env(&mut self) -> BTreeMap<String, String> {
        self.env_table("env")
    }

    fn env_table(&mut self, key: &str) -> BTreeMap<String, String> {
        let Some(value) = self.table.and_then(|t| t.get(key)) else {
            return BTreeMap::new();
        };
        let Some(vars) = value.as_object() else {
            self.problem(
                key,
                format_args!(
                    "must be a table of strings (env = {{ NAME = \"value\" }}), found {}",
                    kind(value)
                ),
            );
            return BTreeMap::new();
        };
        let mut env = BTreeMap::new();
        for (name, value) in vars {
            let valid_name = valid_env_name(name);
            match value.as_str() {
                _ if !valid_name => self.problem(
                    key,
                    format_args!("`{name}` is not a valid environment variable name"),
                ),
                _ if name == "PYTHONPATH" => {
                    self.problem(key, "set PYTHONPATH with the `pythonpath` key, not `env`")
                }
                Some(value) => {
                    env.insert(name.clone(), value.to_owned());
                }
                None => self.problem(
                    key,
                    format_args!("`{name}` must be a string, found {}", kind(value)),
                ),
            }
        }
        env
    }
}

/// A timeout: a duration string (`"10m"`) or a whole number of seconds.
/// `90`, `90s`, `10m` or `1h`: a positive whole number of seconds, minutes or hours.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let seconds_per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("`{text}` is not a duration: use a whole number with `s`, `m` or `h` (`90s`, `10m`, `1h`)")),
    };
    // A number too large for u64 seconds is longer than any run anyway: it saturates, and
    // the deadline it gives is "never" (see `process::deadline_after`).
    let number = if !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit())
        && number.parse::<u64>().is_err()
    {
        u64::MAX.to_string()
    } else {
        number.to_string()
    };
    match number.parse::<u64>() {
        Ok(n) if n > 0 => Ok(Duration::from_secs(n.saturating_mul(seconds_per))),
        _ => Err(format!("`{text}` is not a duration: use a positive whole number with `s`, `m` or `h` (`90s`, `10m`, `1h`)")),
    }
}

fn timeout(value: &Value) -> Result<Duration, String> {
    match value {
        Value::String(text) => parse_duration(text),
        Value::Number(n) => match n.as_u64() {
            Some(secs) if secs > 0 => Ok(Duration::from_secs(secs)),
            _ => Err(format!("`{n}` is not a positive whole number of seconds")),
        },
        other => Err(format!(
            "must be a duration such as \"10m\" or a number of seconds, found {}",
            kind(other)
        )),
    }
}

fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// An array of environment variable names.
fn env_names(value: &Value) -> Result<Vec<String>, String> {
    let Some(items) = value.as_array() else {
        return Err(format!(
            "must be an array of environment variable names, found {}",
            kind(value)
        ));
    };
    items
        .iter()
        .map(|item| match item.as_str() {
            Some(name) if valid_env_name(name) => Ok(name.to_string()),
            Some(name) => Err(format!("`{name}` is not a valid environment variable name")),
            None => Err(format!("must list names as strings, found {}", kind(item))),
        })
        .collect()
}

/// The entries of a `[workspace.metadata.xtask.KEY.NAME]` table, names checked.
fn named_tables<'a>(
    table: &'a Map<String, Value>,
    key: &str,
    problems: &mut Vec<String>,
) -> Vec<(&'a str, &'a Value)> {
    match table.get(key) {
        None => Vec::new(),
        Some(Value::Object(entries)) => entries
            .iter()
            .filter(|(name, _)| {
                let plain = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                if !plain {
                    problems.push(format!("key `{key}` in {TABLE}: `{name}` must use only letters, digits, `-` and `_`"));
                }
                plain
            })
            .map(|(name, value)| (name.as_str(), value))
            .collect(),
        Some(other) => {
            problems.push(format!(
                "key `{key}` in {TABLE}: must be a table of named tables ([workspace.metadata.xtask.{key}.NAME]), found {}",
                kind(other)
            ));
            Vec::new()
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a table",
    }
}

/// A requirement that names a local path (`./pkg`, `../lib`), not a package.
fn is_local_path(requirement: &str) -> bool {
    let requirement = requirement.trim();
    requirement.starts_with("./") || requirement.starts_with("../") || requirement == "."
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The xtask crate's own directory serves as the root: `tests/fixtures/basic/libs/...` exist.
    fn root() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    const ALPHA: &str = "tests/fixtures/basic/libs/alpha";

    fn suite(extra: Value) -> Value {
        let mut suite =
            json!({ "name": "alpha", "group": "first", "dir": ALPHA, "extras": ["test"] });
        suite
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        suite
    }

    fn problems(table: Value) -> Vec<String> {
        Manifest::from_json(&table, root()).expect_err("the manifest should be rejected")
    }

    #[test]
    fn timeouts_secrets_and_prerequisites_are_read_with_their_defaults() {
        let table = json!({ "timeout": "10m", "secrets": ["DB_URL"], "suites": [
            suite(json!({ "timeout": 90, "requires-env": ["OPENAI_API_KEY"] })),
            { "name": "beta", "group": "second", "dir": "tests/fixtures/basic/libs/beta",
              "requirements": ["pytest==9.2.0"] },
        ]});
        let manifest = Manifest::from_json(&table, root()).unwrap();
        assert_eq!(manifest.secrets, ["DB_URL"]);
        assert_eq!(manifest.suites[0].timeout, Duration::from_secs(90));
        assert_eq!(manifest.suites[0].requires_env, ["OPENAI_API_KEY"]);
        assert_eq!(manifest.suites[1].timeout, Duration::from_secs(600));
        assert!(manifest.suites[1].requires_env.is_empty());

        let table = json!({ "suites": [suite(json!({}))] });
        let manifest = Manifest::from_json(&table, root()).unwrap();
        assert_eq!(manifest.suites[0].timeout, DEFAULT_TIMEOUT);
        assert!(manifest.secrets.is_empty());
    }

    #[test]
    fn bad_timeouts_secrets_and_prerequisites_are_named() {
        let found = problems(json!({ "timeout": "soon", "secrets": "DB_URL", "suites": [
            suite(json!({ "timeout": 0, "requires-env": ["NOT VALID"] })),
        ]}));
        assert_eq!(
            found,
            [
                "key `timeout` in [workspace.metadata.xtask]: `soon` is not a duration: use a whole number with `s`, `m` or `h` (`90s`, `10m`, `1h`)",
                "key `secrets` in [workspace.metadata.xtask]: must be an array of environment variable names, found a string",
                "suite `alpha`: key `timeout`: `0` is not a positive whole number of seconds",
                "suite `alpha`: key `requires-env`: `NOT VALID` is not a valid environment variable name",
            ]
        );
    }

    #[test]
    fn a_valid_manifest_reads_every_key() {
        let table = json!({ "suites": [
            suite(json!({ "pythonpath": ["tests/fixtures/basic/libs"], "markers": "not integration",
                          "paths": ["tests"], "env": { "MODE": "x" } })),
            { "name": "beta", "group": "second", "dir": "tests/fixtures/basic/libs/beta",
              "requirements": ["pytest==9.2.0"] },
        ]});
        let manifest = Manifest::from_json(&table, root()).unwrap();
        assert_eq!(manifest.groups(), ["first", "second"]);
        let alpha = &manifest.suites[0];
        assert_eq!(
            alpha.environment,
            Environment::Project {
                extras: vec!["test".into()]
            }
        );
        assert_eq!(alpha.markers.as_deref(), Some("not integration"));
        assert_eq!(alpha.env.get("MODE").map(String::as_str), Some("x"));
        assert_eq!(
            manifest.suites[1].environment,
            Environment::Requirements {
                requirements: vec!["pytest==9.2.0".into()],
                file: None,
            }
        );
        assert_eq!(manifest.suites[1].markers, None);
    }

    #[test]
    fn unknown_keys_name_the_suite_and_the_key() {
        let problems =
            problems(json!({ "suites": [suite(json!({ "extra": ["test"] }))], "defaults": {} }));
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("unknown key `defaults` in [workspace.metadata.xtask]"));
        assert!(problems[1].starts_with(
            "suite `alpha`: key `extra`: unknown key; the known keys are: name, group"
        ));
    }

    #[test]
    fn missing_directories_are_named() {
        let problems = problems(
            json!({ "suites": [suite(json!({ "dir": "no/such/dir", "pythonpath": ["nowhere"] }))] }),
        );
        assert_eq!(
            problems,
            [
                "suite `alpha`: key `dir`: directory `no/such/dir` does not exist (paths are relative to the repository root)",
                "suite `alpha`: key `pythonpath`: directory `nowhere` does not exist (paths are relative to the repository root)",
            ]
        );
        let problems = problems_for_paths();
        assert_eq!(problems, [format!("suite `alpha`: key `paths`: `spec` does not exist in `{ALPHA}`; paths are relative to the suite's `dir`")]);
    }

    fn problems_for_paths() -> Vec<String> {
        problems(json!({ "suites": [suite(json!({ "paths": ["tests", "spec"] }))] }))
    }

    #[test]
    fn duplicate_names_and_names_shared_with_groups_are_errors() {
        let problems = problems(
            json!({ "suites": [suite(json!({})), suite(json!({})), suite(json!({ "name": "first" }))] }),
        );
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0]
            .contains("suite `alpha`: key `name`: the name is used by more than one suite"));
        assert!(problems[1].contains("suite `first`: key `name`: `first` is also a group name"));
    }

    #[test]
    fn exactly_one_way_to_make_the_environment() {
        let both = problems(json!({ "suites": [suite(json!({ "requirements": ["pytest"] }))] }));
        assert_eq!(both.len(), 1);
        assert!(both[0].contains("give either `extras`"), "{both:?}");
        assert!(
            both[0].ends_with("found `extras` together with `requirements`/`requirements-file`"),
            "{both:?}"
        );

        let none = problems(json!({ "suites": [{ "name": "a", "group": "g", "dir": ALPHA }] }));
        assert!(none[0].ends_with("found none of them"), "{none:?}");

        let empty = problems(
            json!({ "suites": [{ "name": "a", "group": "g", "dir": ALPHA, "requirements": [] }] }),
        );
        assert!(
            empty[0].contains("key `requirements`: must list at least one requirement"),
            "{empty:?}"
        );

        let file = problems(
            json!({ "suites": [{ "name": "a", "group": "g", "dir": ALPHA, "requirements-file": "req.txt" }] }),
        );
        assert!(
            file[0].contains("key `requirements-file`: `req.txt` does not exist; it is relative to the repository root"),
            "{file:?}"
        );

        // A local path in `requirements` is read from the root; one written from the
        // suite's directory is named, with the path that would work.
        let local = problems(
            json!({ "suites": [{ "name": "a", "group": "g", "dir": ALPHA, "requirements": ["pytest", "./pyproject.toml"] }] }),
        );
        assert_eq!(local.len(), 1, "{local:?}");
        assert!(
            local[0].contains("key `requirements`: `./pyproject.toml` does not exist; a local path is relative to the repository root")
                && local[0].contains(&format!("write `{ALPHA}/pyproject.toml`")),
            "{local:?}"
        );
        let from_root = format!("./{ALPHA}");
        let table = json!({ "suites": [{ "name": "a", "group": "g", "dir": ALPHA, "requirements": ["pytest", from_root] }] });
        assert!(Manifest::from_json(&table, root()).is_ok());
    }

    #[test]
    fn wrong_types_and_missing_keys_say_what_is_expected() {
        let problems = problems(json!({ "suites": [
            { "group": "g", "dir": ALPHA, "extras": "test", "markers": 3, "env": { "A": 1, "PYTHONPATH": "x" } },
            { "name": "bad name", "group": "g", "dir": "/abs", "extras": [] },
        ]}));
        let expected = [
            "suite #1 (no name): key `name`: missing; every suite needs `name`, `group` and `dir`",
            "suite #1 (no name): key `extras`: must be an array of strings, found a string",
            "suite #1 (no name): key `markers`: must be a string, found a number",
            "suite #1 (no name): key `env`: `A` must be a string, found a number",
            "suite #1 (no name): key `env`: set PYTHONPATH with the `pythonpath` key, not `env`",
            "suite `bad name`: key `name`: `bad name` must be non-empty and use only letters, digits, `-`, `_` and `.`",
            "suite `bad name`: key `dir`: `/abs` must be relative to the repository root",
        ];
        assert_eq!(problems, expected);
    }

    #[test]
    fn malformed_tables_and_env_entries_are_named() {
        assert_eq!(
            problems(json!([])),
            ["[workspace.metadata.xtask] must be a table"]
        );
        assert_eq!(
            problems(json!({ "suites": ["guardrail"] })),
            ["suite #1 (no name): must be a table"]
        );
        let env = problems(json!({ "suites": [suite(json!({ "env": ["A=1"] }))] }));
        assert_eq!(env, ["suite `alpha`: key `env`: must be a table of strings (env = { NAME = \"value\" }), found an array"]);
        let names =
            problems(json!({ "suites": [suite(json!({ "env": { "1A": "x", "A-B": "y" } }))] }));
        assert_eq!(
            names,
            [
                "suite `alpha`: key `env`: `1A` is not a valid environment variable name",
                "suite `alpha`: key `env`: `A-B` is not a valid environment variable name",
            ]
        );
    }

    #[test]
    fn a_requirements_file_is_relative_to_the_root_and_combines_with_requirements() {
        let file = format!("{ALPHA}/pyproject.toml");
        let table = json!({ "suites": [{ "name": "a", "group": "g", "dir": ALPHA, "requirements-file": file, "requirements": ["pytest==9.2.0"] }] });
        let manifest = Manifest::from_json(&table, root()).unwrap();
        assert_eq!(
            manifest.suites[0].environment,
            Environment::Requirements {
                requirements: vec!["pytest==9.2.0".into()],
                file: Some(file)
            }
        );
        // Relative to the suite's directory is not where it is looked for.
        let table = json!({ "suites": [{ "name": "a", "group": "g", "dir": ALPHA, "requirements-file": "pyproject.toml" }] });
        let problems = Manifest::from_json(&table, root()).unwrap_err();
        assert!(
            problems[0].contains("it is relative to the repository root"),
            "{problems:?}"
        );
    }

    #[test]
    fn paths_that_leave_the_repository_or_are_absolute_or_empty_are_rejected() {
        for (key, value, says) in [
            ("dir", json!(""), "must not be empty"),
            ("dir", json!("../elsewhere"), "leaves the repository"),
            (
                "dir",
                json!("/abs/dir"),
                "must be relative to the repository root",
            ),
            ("pythonpath", json!(["../up"]), "leaves the repository"),
            (
                "requirements-file",
                json!("/etc/requirements.txt"),
                "must be relative",
            ),
            (
                "paths",
                json!(["/abs/tests"]),
                "must be relative to the suite's `dir`",
            ),
        ] {
            let mut entry =
                json!({ "name": "a", "group": "g", "dir": ALPHA, "requirements": ["pytest"] });
            entry[key] = value;
            let problems = Manifest::from_json(&json!({ "suites": [entry] }), root()).unwrap_err();
            assert!(
                problems
                    .iter()
                    .any(|p| p.contains(&format!("key `{key}`")) && p.contains(says)),
                "{key}: {problems:?}"
            );
        }
    }

    #[test]
    fn services_and_prerequisites_are_read_and_checked() {
        let table = json!({
            "services": { "api": {
                "command": ["uvicorn", "app:app", "--port", "{port}"], "dir": ALPHA,
                "environment": "alpha", "ready": { "http": "http://127.0.0.1:{port}/health" },
                "deadline": "2m", "export": { "API_URL": "http://127.0.0.1:{port}" } } },
            "prerequisites": {
                "key": { "env": "OPENAI_API_KEY" },
                "broker": { "tcp": "127.0.0.1:9092", "timeout": 2 },
                "probe": { "command": ["true"] } },
            "suites": [suite(json!({ "group": "smoke", "services": ["api"], "prerequisites": ["key", "broker"] }))],
        });
        let manifest = Manifest::from_json(&table, root()).unwrap();
        let api = &manifest.services[0];
        assert_eq!(
            api.ready,
            Ready::Http("http://127.0.0.1:{port}/health".into())
        );
        assert_eq!(api.deadline, Duration::from_secs(120));
        assert_eq!(api.environment.as_deref(), Some("alpha"));
        assert_eq!(api.export["API_URL"], "http://127.0.0.1:{port}");
        assert_eq!(manifest.prerequisites.len(), 3);
        let broker = manifest
            .prerequisites
            .iter()
            .find(|p| p.name == "broker")
            .unwrap();
        assert_eq!(broker.check, Check::Tcp("127.0.0.1:9092".into()));
        assert_eq!(broker.timeout, Duration::from_secs(2));
        assert_eq!(manifest.suites[0].services, ["api"]);

        let found = problems(json!({
            "services": { "api": { "command": [], "ready": { "https": "x" }, "environment": "nope", "port": 70000 } },
            "prerequisites": { "both": { "env": "A", "tcp": "h:1" }, "badtcp": { "tcp": "nohost" } },
            "suites": [suite(json!({ "services": ["missing"], "prerequisites": ["gone"] }))],
        }));
        let text = found.join("\n");
        for says in [
            "service `api`: key `command`: must be a non-empty array",
            "service `api`: key `ready`: must be { http = ",
            "service `api`: key `port`: must be a port number",
            "prerequisite `both`: key `env`: give exactly one of `env`, `tcp`, `http` or `command`; found env, tcp",
            "prerequisite `badtcp`: key `tcp`: `nohost` must be `host:port`",
            "suite `alpha`: key `services`: there is no service `missing`",
            "suite `alpha`: key `prerequisites`: there is no prerequisite `gone`",
        ] {
            assert!(text.contains(says), "{says} not in:\n{text}");
        }
    }

    #[test]
    fn ci_groups_name_existing_groups() {
        let table = json!({ "ci-groups": ["g"], "suites": [{ "name": "a", "group": "g", "dir": ALPHA, "requirements": ["pytest"] }] });
        let manifest = Manifest::from_json(&table, root()).unwrap();
        assert_eq!(manifest.ci_groups, Some(vec!["g".to_string()]));
        let table = json!({ "ci-groups": ["nope"], "suites": [{ "name": "a", "group": "g", "dir": ALPHA, "requirements": ["pytest"] }] });
        let problems = Manifest::from_json(&table, root()).unwrap_err();
        assert!(
            problems[0].contains("key `ci-groups`") && problems[0].contains("no group `nope`"),
            "{problems:?}"
        );
    }

    #[test]
    fn an_empty_manifest_is_an_error() {
        assert_eq!(
            problems(json!({})),
            ["no suites: add a [[workspace.metadata.xtask.suites]] entry per suite"]
        );
        assert_eq!(
            problems(json!({ "suites": 1 })),
            ["`suites` must be an array of tables ([[workspace.metadata.xtask.suites]])"]
        );
    }

    #[test]
    fn the_error_names_the_file_and_how_to_fix_it() {
        let err = ManifestError {
            file: PathBuf::from("/repo/Cargo.toml"),
            problems: vec!["suite `a`: key `b`: bad".into()],
        };
        let text = err.to_string();
        assert!(text.starts_with("invalid suite manifest [workspace.metadata.xtask] in /repo/Cargo.toml:\n  - suite `a`: key `b`: bad\n"));
        assert!(text.ends_with("nothing was run."));
    }

    #[test]
    fn the_repositorys_own_manifest_is_valid() {
        let layout = Layout::new(root().parent().unwrap());
        let manifest = Manifest::load(&layout).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(
            manifest.groups(),
            ["shared", "version-a", "version-b", SMOKE_GROUP]
        );
        assert_eq!(manifest.suites.len(), 8);
        assert_eq!(manifest.services.len(), 1);
    }
}
