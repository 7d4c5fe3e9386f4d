//! One external command as data (argv, directory, variables), and that command as a line a
//! person can paste into a shell. Every layer that plans or runs commands shares it: the
//! plan, the environments, the step and process layers, the services, the benchmark.

use std::path::{Path, PathBuf};

/// One external command, as data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// The full argv; `argv[0]` is the program.
    pub argv: Vec<String>,
    /// Where it starts (the repository root: paths in `argv` are relative to it).
    pub cwd: PathBuf,
    /// Variables the xtask sets, on top of the inherited environment.
    pub env: Vec<(String, String)>,
    /// Variables the xtask removes from the inherited environment.
    pub env_remove: Vec<String>,
    /// A directory put first on the inherited PATH (an environment's `bin`).
    pub path_prepend: Option<PathBuf>,
}

impl Invocation {
    /// `argv` run at `cwd` with `env` on top of the inherited environment.
    pub fn new(argv: Vec<String>, cwd: &Path, env: Vec<(String, String)>) -> Invocation {
        Invocation {
            argv,
            cwd: cwd.to_path_buf(),
            env,
            env_remove: REMOVED_ENV.iter().map(|v| v.to_string()).collect(),
            path_prepend: None,
        }
    }

    /// The command to spawn, with its environment and directory; output is the caller's.
    pub fn command(&self) -> std::process::Command {
        let mut command = std::process::Command::new(&self.argv[0]);
        command
            .args(&self.argv[1..])
            .current_dir(&self.cwd)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        for name in &self.env_remove {
            command.env_remove(name);
        }
        if let Some(dir) = &self.path_prepend {
            let path = std::env::var_os("PATH").unwrap_or_default();
            let joined = std::env::join_paths(
                std::iter::once(dir.clone()).chain(std::env::split_paths(&path)),
            );
            if let Ok(joined) = joined {
                command.env("PATH", joined);
            }
        }
        command
    }
}

/// Variables that would point uv or Python at somebody else's environment.
pub const REMOVED_ENV: &[&str] = &["VIRTUAL_ENV"];

/// The invocation as one line a person can paste into a shell at `cwd`.
pub fn shell_line(invocation: &Invocation) -> String {
    let mut words = vec![
        "cd".to_string(),
        shell_quote(&invocation.cwd.to_string_lossy()),
        "&&".into(),
    ];
    words.extend(invocation.env_remove.iter().map(|k| format!("-u {k}")));
    if !invocation.env_remove.is_empty() {
        words.insert(3, "env".into());
    }
    words.extend(
        invocation
            .env
            .iter()
            .map(|(k, v)| format!("{k}={}", shell_quote(v))),
    );
    if let Some(dir) = &invocation.path_prepend {
        words.push(format!(
            "PATH={}:\"$PATH\"",
            shell_quote(&dir.to_string_lossy())
        ));
    }
    words.extend(invocation.argv.iter().map(|a| shell_quote(a)));
    words.join(" ")
}

/// `word` as one word for a POSIX shell: as it is when that is safe, else single-quoted.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}
