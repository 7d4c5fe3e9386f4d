//! What a repository's own test commands say: `tox.ini`, `noxfile.py` and its CI files
//! (`.github/workflows/*.yml`, `.gitlab-ci.yml`) name the requirement files installed before
//! pytest, the markers (`-m`) and the paths pytest is given. `init` reads them as evidence
//! for its guesses (which requirement file to install, which markers, which paths) and
//! says which file each decision came from.
//!
//! The files are read line by line, not run or fully parsed: a command is recognised by its
//! words (`pip install -r FILE`, `uv pip install --requirement FILE`, `pytest`, `python -m
//! pytest`, tox's `deps = -r FILE` and `commands`, nox's `session.install(...)` and
//! `session.run(...)`), and a requirement file or path counts only when it exists.

use std::path::Path;

/// One pytest command found in an evidence file, with the requirement files that file
/// installs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The file it is in, relative to the root (`tox.ini`, `.github/workflows/ci.yml`).
    pub source: String,
    /// The directory its relative paths are read from, relative to the root (`.` for CI
    /// files and a root `tox.ini`).
    pub dir: String,
    /// The requirement files the file installs (relative to the root, existing).
    pub requirement_files: Vec<String>,
    /// pytest's `-m` expression, when given.
    pub markers: Option<String>,
    /// The paths pytest is given (relative to the root, existing; `::test` ids cut).
    pub paths: Vec<String>,
}

impl Command {
    /// What it runs, for init's output: `services/feed/tox.ini runs pytest -m "not slow"
    /// services/feed/tests/unit, after installing services/feed/requirements-test.txt`.
    pub fn describe(&self) -> String {
        let mut text = format!("{} runs pytest", self.source);
        if let Some(markers) = &self.markers {
            let quoted = if markers.contains(' ') {
                format!("\"{markers}\"")
            } else {
                markers.clone()
            };
            text.push_str(&format!(" -m {quoted}"));
        }
        for path in &self.paths {
            text.push(' ');
            text.push_str(path);
        }
        if self.paths.is_empty() {
            text.push_str(&format!(
                " (no path: on every package at or below {})",
                self.dir
            ));
        }
        if !self.requirement_files.is_empty() {
            text.push_str(&format!(
                ", after installing {}",
                self.requirement_files.join(", ")
            ));
        }
        text
    }
}

/// Every pytest command in the repository's `tox.ini` and `noxfile.py` files (at the root
/// and in `package_dirs`) and its CI files.
pub fn gather(root: &Path, package_dirs: &[String]) -> Vec<Command> {
    let mut sources: Vec<(String, String)> = Vec::new();
    let mut dirs: Vec<&str> = vec!["."];
    dirs.extend(
        package_dirs
            .iter()
            .map(String::as_str)
            .filter(|d| *d != "."),
    );
    for dir in dirs {
        for name in ["tox.ini", "noxfile.py"] {
            let file = super::join(dir, name);
            if root.join(&file).is_file() {
                sources.push((file, dir.to_string()));
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(root.join(".github/workflows")) {
        let mut files: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .filter(|n| n.ends_with(".yml") || n.ends_with(".yaml"))
            .map(|n| format!(".github/workflows/{n}"))
            .collect();
        files.sort();
        sources.extend(files.into_iter().map(|f| (f, ".".to_string())));
    }
    if root.join(".gitlab-ci.yml").is_file() {
        sources.push((".gitlab-ci.yml".into(), ".".into()));
    }
    let mut commands = Vec::new();
    for (source, dir) in sources {
        let Ok(text) = std::fs::read_to_string(root.join(&source)) else {
            continue;
        };
        let lines = if source.ends_with("tox.ini") {
            tox_commands(&text)
        } else if source.ends_with("noxfile.py") {
            nox_commands(&text)
        } else {
            ci_commands(&text)
        };
        commands.extend(read_commands(root, &source, &dir, &lines));
    }
    commands
}

/// The commands of one file, as words: its requirement files and its pytest commands.
fn read_commands(root: &Path, source: &str, dir: &str, lines: &[Vec<String>]) -> Vec<Command> {
    let existing = |dir: &str, path: &str| -> Option<String> {
        let path = path
            .trim_start_matches("{toxinidir}/")
            .trim_start_matches("./");
        if path.is_empty() || path.contains(['$', '{', '}', '*']) {
            return None;
        }
        let normal = normalize(&super::join(dir, path))?;
        root.join(&normal).exists().then_some(normal)
    };
    let mut files: Vec<String> = Vec::new();
    let mut found: Vec<(String, Option<String>, Vec<String>)> = Vec::new();
    for words in lines {
        // `cd DIR && ...` (or `;`): the rest of the line runs there.
        let (here, words) = match words.as_slice() {
            [cd, to, op, rest @ ..] if cd == "cd" && (op == "&&" || op == ";") => {
                match existing(dir, to).filter(|d| root.join(d).is_dir()) {
                    Some(to) => (to, rest),
                    None => continue,
                }
            }
            _ => (dir.to_string(), words.as_slice()),
        };
        for file in installed_files(words) {
            if let Some(file) = existing(&here, &file).filter(|f| root.join(f).is_file()) {
                if !files.contains(&file) {
                    files.push(file);
                }
            }
        }
        if let Some((markers, paths)) = pytest_arguments(words) {
            let paths = paths.iter().filter_map(|p| existing(&here, p)).collect();
            found.push((here, markers, paths));
        }
    }
    found
        .into_iter()
        .map(|(dir, markers, paths)| Command {
            source: source.to_string(),
            dir,
            requirement_files: files.clone(),
            markers,
            paths,
        })
        .collect()
}

/// `a/./b/../c` as `a/c`; `None` when it leaves the root.
fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    })
}

/// The files a `pip install` (or `uv pip install`, tox's `deps`) line installs with `-r`.
fn installed_files(words: &[String]) -> Vec<String> {
    let Some(install) = words.iter().position(|w| w == "install" || w == "deps") else {
        return Vec::new();
    };
    let installer = words[install] == "deps"
        || words[..install]
            .iter()
            .any(|w| w == "pip" || w.ends_with("/pip") || w == "pip3");
    if !installer {
        return Vec::new();
    }
    let mut files = Vec::new();
    let mut rest = words[install + 1..].iter();
    while let Some(word) = rest.next() {
        let word = word.as_str();
        if word == "-r" || word == "--requirement" || word == "--requirements" {
            if let Some(file) = rest.next() {
                files.push(file.clone());
            }
        } else if let Some(file) = word
            .strip_prefix("--requirement=")
            .or_else(|| word.strip_prefix("--requirements="))
            .or_else(|| word.strip_prefix("-r").filter(|f| !f.is_empty()))
        {
            files.push(file.to_string());
        }
    }
    files
}

/// pytest options that take the next word as their value.
const VALUED: &[&str] = &[
    "-k",
    "-c",
    "-p",
    "-o",
    "-n",
    "-W",
    "--rootdir",
    "--ignore",
    "--ignore-glob",
    "--deselect",
    "--maxfail",
    "--tb",
    "--durations",
    "--log-level",
    "--basetemp",
    "--confcutdir",
    "--junitxml",
    "--junit-xml",
    "--cov-report",
    "--timeout",
    "--dist",
    "--numprocesses",
    "--import-mode",
    "--color",
    "-r",
];

/// When `words` run pytest (`pytest`, `py.test`, `python -m pytest`, `uv run pytest`): its
/// `-m` expression and its positional arguments.
fn pytest_arguments(words: &[String]) -> Option<(Option<String>, Vec<String>)> {
    let at = words.iter().position(|w| {
        let base = w.rsplit('/').next().unwrap_or(w);
        base == "pytest" || base == "py.test"
    })?;
    // `pip install pytest` installs it; it does not run it.
    if words[..at]
        .iter()
        .any(|w| w == "install" || w == "add" || w == "deps")
    {
        return None;
    }
    let mut markers = None;
    let mut paths = Vec::new();
    let mut rest = words[at + 1..].iter();
    while let Some(word) = rest.next() {
        let word = word.as_str();
        if word == "-m" {
            markers = rest.next().cloned();
        } else if let Some(expression) = word.strip_prefix("-m").filter(|e| !e.is_empty()) {
            markers = Some(expression.to_string());
        } else if VALUED.contains(&word) {
            rest.next();
        } else if matches!(word, "&&" | "||" | ";" | "|" | ">" | "2>&1") {
            break;
        } else if !word.starts_with('-') && !word.contains('=') {
            paths.push(word.split("::").next().unwrap_or(word).to_string());
        }
    }
    Some((markers, paths))
}

/// A command line as words, with shell quoting removed (`'a b'`, `"a b"`, `\ `); `&&`,
/// `;` and `|` are words of their own.
pub fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    let push = |word: &mut String, quoted: &mut bool, words: &mut Vec<String>| {
        if !word.is_empty() || *quoted {
            words.push(std::mem::take(word));
        }
        *quoted = false;
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                quoted = true;
                for inner in chars.by_ref() {
                    if inner == c {
                        break;
                    }
                    word.push(inner);
                }
            }
            '\\' => {
                if let Some(next) = chars.next() {
                    word.push(next);
                }
            }
            ' ' | '\t' => push(&mut word, &mut quoted, &mut words),
            ';' | '|' | '&' => {
                push(&mut word, &mut quoted, &mut words);
                let mut op = c.to_string();
                while chars.peek() == Some(&c) {
                    op.push(c);
                    chars.next();
                }
                words.push(op);
            }
            '#' if word.is_empty() && !quoted => break,
            c => word.push(c),
        }
    }
    push(&mut word, &mut quoted, &mut words);
    words
}

/// A CI file's lines as commands: a YAML list item (`- pytest`) or key (`run: pytest`,
/// `script: pytest`) loses its prefix; every line of a block (`run: |`) is a command.
fn ci_commands(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|line| {
            let mut line = line.trim();
            if let Some(rest) = line.strip_prefix("- ") {
                line = rest.trim();
            }
            for key in ["run:", "script:", "command:"] {
                if let Some(rest) = line.strip_prefix(key) {
                    line = rest.trim();
                }
            }
            words(line)
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// A `tox.ini`'s `deps` (as `deps -r FILE` words) and `commands` lines, in its `[testenv]`
/// sections.
fn tox_commands(text: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let mut in_testenv = false;
    let mut key: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            in_testenv = trimmed.starts_with("[testenv");
            key = None;
            continue;
        }
        if !in_testenv || trimmed.is_empty() || trimmed.starts_with(['#', ';']) {
            continue;
        }
        let value = if line.starts_with([' ', '\t']) && key.is_some() {
            trimmed.to_string()
        } else if let Some((name, value)) = trimmed.split_once('=') {
            key = Some(name.trim().to_string());
            value.trim().to_string()
        } else {
            continue;
        };
        // A factor condition (`py311: pytest`) or `- ` (ignore the exit status) in front.
        let value = value
            .split_once(": ")
            .filter(|(factor, _)| !factor.contains(' '))
            .map_or(value.as_str(), |(_, v)| v);
        let value = value.strip_prefix("- ").unwrap_or(value).trim();
        match key.as_deref() {
            Some("deps") if !value.is_empty() => {
                let mut words = vec!["deps".to_string()];
                words.extend(self::words(value));
                commands.push(words);
            }
            Some("commands") if !value.is_empty() => commands.push(self::words(value)),
            _ => {}
        }
    }
    commands
}

/// A `noxfile.py`'s `session.install(...)` and `session.run(...)` calls as words: their
/// string arguments, after `pip install` or nothing.
fn nox_commands(text: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    for (call, prefix) in [
        ("session.install(", &["pip", "install"][..]),
        ("session.run(", &[][..]),
    ] {
        let mut rest = text;
        while let Some(at) = rest.find(call) {
            rest = &rest[at + call.len()..];
            let end = closing(rest).unwrap_or(rest.len());
            let mut words: Vec<String> = prefix.iter().map(|w| w.to_string()).collect();
            words.extend(string_literals(&rest[..end]));
            commands.push(words);
        }
    }
    commands
}

/// Where the call's argument list ends: the `)` that closes it, outside strings.
fn closing(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '(' | '[') => depth += 1,
            (None, ')' | ']') if depth == 0 => return Some(i),
            (None, ')' | ']') => depth -= 1,
            _ => {}
        }
    }
    None
}

/// The Python string literals in `text`, in order (`"a"`, `'b'`).
fn string_literals(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '"' || c == '\'' {
            let literal: String = chars.by_ref().take_while(|inner| *inner != c).collect();
            found.push(literal);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(line: &str) -> Vec<String> {
        words(line)
    }

    #[test]
    fn shell_words_are_split_and_unquoted() {
        assert_eq!(
            w(r#"pytest -m "not slow and not e2e" tests && echo 'a b'"#),
            [
                "pytest",
                "-m",
                "not slow and not e2e",
                "tests",
                "&&",
                "echo",
                "a b"
            ]
        );
        assert_eq!(w("a;b # comment"), ["a", ";", "b"]);
    }

    #[test]
    fn install_lines_name_their_requirement_files() {
        assert_eq!(
            installed_files(&w("uv pip install -r tests/requirements.txt pytest")),
            ["tests/requirements.txt"]
        );
        assert_eq!(
            installed_files(&w(
                "python -m pip install --requirement=a.txt -rb.txt --requirement c.txt"
            )),
            ["a.txt", "b.txt", "c.txt"]
        );
        assert!(installed_files(&w("apt-get install -r x")).is_empty());
        assert!(installed_files(&w("pytest -r a")).is_empty());
    }

    #[test]
    fn pytest_commands_give_markers_and_paths() {
        assert_eq!(
            pytest_arguments(&w(
                "python -m pytest -q -m 'not slow' -k x --junitxml=r.xml tests/unit::test_a --cov=pkg"
            )),
            Some((Some("not slow".into()), vec!["tests/unit".into()]))
        );
        assert_eq!(
            pytest_arguments(&w("uv run pytest -mintegration")),
            Some((Some("integration".into()), vec![]))
        );
        assert_eq!(pytest_arguments(&w("pip install pytest")), None);
        assert_eq!(pytest_arguments(&w("deps pytest")), None);
        assert_eq!(pytest_arguments(&w("make test")), None);
    }

    #[test]
    fn tox_and_nox_files_are_read_as_commands() {
        let tox = "[tox]\nenvlist = py311\n\n[testenv]\ndeps =\n    -r{toxinidir}/requirements-test.txt\n    six\ncommands =\n    py311: pytest -m \"not slow\" tests\n\n[flake8]\ncommands = pytest nothing\n";
        assert_eq!(
            tox_commands(tox),
            [
                vec![
                    "deps".to_string(),
                    "-r{toxinidir}/requirements-test.txt".into()
                ],
                vec!["deps".into(), "six".into()],
                vec![
                    "pytest".into(),
                    "-m".into(),
                    "not slow".into(),
                    "tests".into()
                ],
            ]
        );
        let nox = "@nox.session\ndef tests(session):\n    session.install(\n        \"-r\", 'requirements/test.txt'\n    )\n    session.run(\"pytest\", \"-m\", \"not e2e\", *session.posargs)\n";
        assert_eq!(
            nox_commands(nox),
            [
                vec!["pip", "install", "-r", "requirements/test.txt"],
                vec!["pytest", "-m", "not e2e"],
            ]
        );
    }

    #[test]
    fn ci_lines_lose_their_yaml_prefixes() {
        let yaml = "jobs:\n  test:\n    steps:\n      - run: uv pip install -r tests/requirements.txt pytest\n      - run: |\n          pytest -m 'not live' services\n";
        let commands = ci_commands(yaml);
        assert!(commands.contains(&w("uv pip install -r tests/requirements.txt pytest")));
        assert!(commands.contains(&w("pytest -m 'not live' services")));
    }

    /// Files and paths count only when they exist, read from the file's directory, or
    /// from where `cd DIR &&` went.
    #[test]
    fn commands_name_existing_files_and_paths() {
        let root = std::env::temp_dir().join(format!("xtask-evidence-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("svc/api/tests")).unwrap();
        std::fs::write(root.join("svc/api/req.txt"), "six\n").unwrap();
        let lines = [
            w("cd svc/api && pip install -r req.txt -r missing.txt"),
            w("cd svc/api && pytest -m 'not e2e' tests gone"),
            w("pytest $DIR {posargs}"),
        ];
        let commands = read_commands(&root, "ci.yml", ".", &lines);
        let _ = std::fs::remove_dir_all(&root);
        assert_eq!(commands.len(), 2);
        assert_eq!(commands[0].dir, "svc/api");
        assert_eq!(commands[0].requirement_files, ["svc/api/req.txt"]);
        assert_eq!(commands[0].markers.as_deref(), Some("not e2e"));
        assert_eq!(commands[0].paths, ["svc/api/tests"]);
        assert_eq!(
            commands[0].describe(),
            "ci.yml runs pytest -m \"not e2e\" svc/api/tests, after installing svc/api/req.txt"
        );
        assert!(commands[1].paths.is_empty());
        assert_eq!(commands[1].dir, ".");
    }

    #[test]
    fn paths_are_normalized_inside_the_root() {
        assert_eq!(normalize("a/./b/../c"), Some("a/c".into()));
        assert_eq!(normalize("./"), Some(".".into()));
        assert_eq!(normalize("../x"), None);
    }
}
