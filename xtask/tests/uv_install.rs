//! Installing the pinned uv when none is found, through the real binary: with a Python that
//! has no pip (`python3 -m venv --without-pip`) first on PATH, from the real index and from
//! indexes served here on 127.0.0.1 (a tampered wheel, one that never answers, one that
//! records where pip's and uv's settings sent it).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use xtask::exit_codes;
use xtask::toolchain::{UV_ENV, UV_VERSION, UV_WHEELS};

/// Every variable that chooses the index or its timeout, so the host's own cannot leak in.
const INDEX_SETTINGS: &[&str] = &[
    "PIP_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "UV_INDEX_URL",
    "PIP_CONFIG_FILE",
    "UV_HTTP_TIMEOUT",
    "PIP_DEFAULT_TIMEOUT",
    "PIP_TIMEOUT",
];

/// A virtual environment made with `--without-pip` in the fixture: its `bin`.
fn python_without_pip(fixture: &Fixture) -> PathBuf {
    let venv = fixture.path("nopip-venv");
    let status = Command::new("python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .status()
        .expect("running python3 -m venv");
    assert!(status.success());
    let bin = venv.join("bin");
    let pip = Command::new(bin.join("python3"))
        .args(["-m", "pip", "--version"])
        .output()
        .unwrap();
    assert!(!pip.status.success(), "the venv has pip after all");
    bin
}

/// The xtask in `fixture` with `bin` first on PATH, no uv on PATH, no XTASK_UV, and none of
/// the host's index settings.
fn without_uv(fixture: &Fixture, bin: &Path, args: &[&str]) -> Command {
    let mut command = fixture.command(args);
    command
        .env_remove(UV_ENV)
        .env("PATH", format!("{}:{}", bin.display(), path_without_uv()))
        // The indexes served here are reached directly, whatever proxy the host sets.
        .env("no_proxy", "127.0.0.1")
        .env("NO_PROXY", "127.0.0.1");
    for name in INDEX_SETTINGS {
        command.env_remove(name);
    }
    command
}

fn installed(fixture: &Fixture) -> PathBuf {
    fixture.path(&format!("target/xtask/tools/uv-{UV_VERSION}"))
}

/// What is left in the tools directory besides the installer's own files: never a
/// half-made install.
fn leftovers(fixture: &Fixture) -> Vec<String> {
    let tools = fixture.path("target/xtask/tools");
    let mut names: Vec<String> = std::fs::read_dir(&tools)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "install_uv.py" && !n.ends_with(".requirements.txt"))
        .collect();
    names.sort();
    names
}

/// A one-request-per-connection HTTP server on 127.0.0.1 that records every request's
/// head and answers with `answer(path)`: `Some((status, content type, body))`, or `None`
/// to hold the connection open without a word.
struct Server {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

type Answer = Option<(u16, &'static str, Vec<u8>)>;

impl Server {
    fn start(answer: impl Fn(&str) -> Answer + Send + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                seen.lock().unwrap().push(head);
                let Some((status, kind, body)) = answer(&path) else {
                    held.push(stream);
                    continue;
                };
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(&body);
            }
        });
        Server { port, requests }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    fn paths(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|r| r.split_whitespace().nth(1).unwrap_or("").to_string())
            .collect()
    }
}

/// A PEP 691 page for uv that lists every pinned wheel's file name at `/files/<name>`.
fn uv_page() -> Vec<u8> {
    let files: Vec<_> = UV_WHEELS
        .iter()
        .map(|w| serde_json::json!({ "filename": w.file(), "url": format!("/files/{}", w.file()), "hashes": {} }))
        .collect();
    serde_json::json!({ "meta": { "api-version": "1.1" }, "name": "uv", "files": files })
        .to_string()
        .into_bytes()
}

/// The same as a PEP 503 HTML page, its links relative and with a hash fragment.
fn uv_html_page() -> Vec<u8> {
    let links: String = UV_WHEELS
        .iter()
        .map(|w| {
            format!(
                "<a href=\"../../files/{0}#sha256={1}\">{0}</a><br/>\n",
                w.file(),
                w.sha256
            )
        })
        .collect();
    format!("<!DOCTYPE html><html><body>\n{links}</body></html>").into_bytes()
}

#[test]
fn a_python_without_pip_installs_the_pinned_uv_from_the_index() {
    let fixture = Fixture::new("basic", "uv_without_pip");
    let bin = python_without_pip(&fixture);
    // What an install killed midway left (its process is gone: a pid past the kernel's
    // maximum) is swept.
    let stale = fixture.path(&format!("target/xtask/tools/.uv-{UV_VERSION}.4194305.0"));
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("uv.whl.part"), "half a wheel").unwrap();
    // Two invocations at once (two suites, two environments, one tools directory): each
    // installs or finds a whole uv, and one install is left.
    let (run, other) = std::thread::scope(|scope| {
        let other = scope.spawn(|| common::run(without_uv(&fixture, &bin, &["test", "alpha"])));
        let run = common::run(without_uv(&fixture, &bin, &["test", "beta"]));
        (run, other.join().unwrap())
    });
    assert_code(&other, exit_codes::OK);
    assert_code(&run, exit_codes::OK);
    assert!(
        run.stderr.contains(&format!("installing uv {UV_VERSION}")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("sha256 verified"), "{}", run.stderr);
    assert!(!run.stderr.contains("trying pip"), "{}", run.stderr);
    let uv = installed(&fixture).join("bin/uv");
    let version = Command::new(&uv).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).contains(UV_VERSION));
    assert_eq!(
        leftovers(&fixture),
        [format!("uv-{UV_VERSION}"), "uv-version.json".into()]
    );

    // Installed once: the next run uses it.
    let again = common::run(without_uv(&fixture, &bin, &["test", "beta"]));
    assert_code(&again, exit_codes::OK);
    assert!(!again.stderr.contains("installing uv"), "{}", again.stderr);
    // The first run built beta's environment with it (a warm run starts no uv).
    let built_with_it = std::fs::read_dir(fixture.path("target/xtask/runs"))
        .unwrap()
        .flatten()
        .filter_map(|run| std::fs::read_to_string(run.path().join("logs/beta.log")).ok())
        .any(|log| log.contains(uv.to_str().unwrap()));
    assert!(built_with_it);
}

#[test]
fn a_wheel_whose_sha256_is_not_the_pinned_one_is_refused_and_nothing_is_installed() {
    let fixture = Fixture::new("basic", "uv_tampered_wheel");
    let bin = python_without_pip(&fixture);
    // A real wheel in shape, holding a `uv` that would pass for one: only its hash is wrong.
    let wheel = fixture.path("tampered.whl");
    let made = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sys, zipfile\n\
             with zipfile.ZipFile(sys.argv[1], 'w') as z:\n    \
             z.writestr('uv-{UV_VERSION}.data/scripts/uv', '#!/bin/sh\\necho uv {UV_VERSION}\\n')"
        ))
        .arg(&wheel)
        .status()
        .unwrap();
    assert!(made.success());
    let tampered = std::fs::read(&wheel).unwrap();
    let server = Server::start(move |path| match path {
        "/simple/uv/" => Some((200, "application/vnd.pypi.simple.v1+json", uv_page())),
        "/html/uv/" => Some((200, "text/html", uv_html_page())),
        p if p.starts_with("/files/") => Some((200, "application/octet-stream", tampered.clone())),
        _ => Some((404, "text/plain", b"no".to_vec())),
    });
    let mut command = without_uv(&fixture, &bin, &["test", "beta"]);
    command.env("PIP_INDEX_URL", server.url("/simple"));
    let run = run(command);
    assert_code(&run, exit_codes::TOOLCHAIN_ERROR);
    assert!(run.stderr.contains("refused"), "{}", run.stderr);
    assert!(run.stderr.contains("not the pinned"), "{}", run.stderr);
    assert!(run.stderr.contains("from PIP_INDEX_URL"), "{}", run.stderr);
    // pip was tried and is missing; what to do says how to get it, or uv itself.
    assert!(run.stderr.contains("No module named pip"), "{}", run.stderr);
    assert!(run.stderr.contains("ensurepip"), "{}", run.stderr);
    assert!(run.stderr.contains("install.sh"), "{}", run.stderr);
    assert!(
        run.stderr.contains("https://files.pythonhosted.org/"),
        "the wheel to fetch by hand: {}",
        run.stderr
    );
    let paths = server.paths();
    assert_eq!(paths[0], "/simple/uv/", "{paths:?}");
    assert!(paths[1].starts_with("/files/uv-"), "{paths:?}");
    assert!(!installed(&fixture).exists());
    assert_eq!(leftovers(&fixture), Vec::<String>::new());

    // The same from an index that speaks only HTML (PEP 503), with links relative to the page.
    let mut command = without_uv(&fixture, &bin, &["test", "beta"]);
    command.env("PIP_INDEX_URL", server.url("/html"));
    let run = common::run(command);
    assert_code(&run, exit_codes::TOOLCHAIN_ERROR);
    assert!(run.stderr.contains("not the pinned"), "{}", run.stderr);
    let paths = server.paths();
    assert_eq!(paths[2], "/html/uv/", "{paths:?}");
    assert!(paths[3].starts_with("/files/uv-"), "{paths:?}");
    assert!(!installed(&fixture).exists());
    assert_eq!(leftovers(&fixture), Vec::<String>::new());
}

#[test]
fn an_index_that_never_answers_fails_within_its_timeout() {
    let fixture = Fixture::new("basic", "uv_stalled_index");
    let bin = python_without_pip(&fixture);
    let server = Server::start(|_| None);
    let mut command = without_uv(&fixture, &bin, &["test", "beta"]);
    command
        .env("UV_DEFAULT_INDEX", server.url("/simple"))
        .env("UV_HTTP_TIMEOUT", "2");
    let started = Instant::now();
    let run = run(command);
    let took = started.elapsed();
    assert_code(&run, exit_codes::TOOLCHAIN_ERROR);
    assert!(run.stderr.contains("timed out"), "{}", run.stderr);
    assert!(
        run.stderr.contains("2 s per read, from UV_HTTP_TIMEOUT"),
        "{}",
        run.stderr
    );
    assert_eq!(server.paths(), ["/simple/uv/"]);
    // Well short of the 30 s it waits when nothing is set.
    assert!(took < Duration::from_secs(25), "{took:?}");
    assert!(!installed(&fixture).exists());
}

#[test]
fn the_index_is_the_one_pip_or_uv_would_use() {
    let fixture = Fixture::new("basic", "uv_index_settings");
    let bin = python_without_pip(&fixture);
    let server = Server::start(|_| Some((404, "text/plain", b"not here".to_vec())));
    let config = |name: &str, text: String| {
        let path = fixture.path(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    };
    let global = config(
        "global.conf",
        format!("[global]\nindex-url = {}\n", server.url("/pip-conf-global")),
    );
    let install = config(
        "install.conf",
        format!(
            "[global]\nindex-url = {}\n[install]\nindex-url = {}\n",
            server.url("/pip-conf-global"),
            server.url("/pip-conf-install")
        ),
    );
    let with_password = server
        .url("/private")
        .replace("127.0.0.1", "someone:hunter2-secret@127.0.0.1");
    // The variables set, the page the index was asked for, and how the error names it.
    type Case<'a> = (Vec<(&'a str, String)>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![("PIP_INDEX_URL", server.url("/pip-env"))],
            "/pip-env/uv/",
            "from PIP_INDEX_URL",
        ),
        (
            vec![("UV_DEFAULT_INDEX", server.url("/uv-default"))],
            "/uv-default/uv/",
            "from UV_DEFAULT_INDEX",
        ),
        (
            vec![("UV_INDEX_URL", server.url("/uv-index"))],
            "/uv-index/uv/",
            "from UV_INDEX_URL",
        ),
        (
            vec![("PIP_CONFIG_FILE", global)],
            "/pip-conf-global/uv/",
            "global.conf [global]",
        ),
        (
            vec![("PIP_CONFIG_FILE", install)],
            "/pip-conf-install/uv/",
            "install.conf [install]",
        ),
        // pip's variable over uv's: the fallback is pip, and pip reads only its own.
        (
            vec![
                ("PIP_INDEX_URL", server.url("/pip-first")),
                ("UV_DEFAULT_INDEX", server.url("/uv-second")),
            ],
            "/pip-first/uv/",
            "from PIP_INDEX_URL",
        ),
        (
            vec![("UV_DEFAULT_INDEX", with_password)],
            "/private/uv/",
            "from UV_DEFAULT_INDEX",
        ),
    ];
    for (env, path, origin) in cases {
        let before = server.requests().len();
        let mut command = without_uv(&fixture, &bin, &["test", "beta"]);
        command.envs(env.iter().map(|(k, v)| (k, v)));
        let run = run(command);
        assert_code(&run, exit_codes::TOOLCHAIN_ERROR);
        let output = format!("{}{}", run.stdout, run.stderr);
        let requests = server.requests();
        let head = requests
            .get(before)
            .unwrap_or_else(|| panic!("{env:?}: no request reached the index\n{}", run.stderr));
        assert_eq!(head.split_whitespace().nth(1), Some(path), "{env:?}");
        assert!(output.contains("HTTP 404"), "{env:?}: {output}");
        assert!(output.contains(origin), "{env:?}: {output}");
        if path == "/private/uv/" {
            // The credentials go to the index as HTTP basic auth, and nowhere in the output.
            assert!(
                head.contains("Authorization: Basic c29tZW9uZTpodW50ZXIyLXNlY3JldA=="),
                "{head}"
            );
            assert!(!output.contains("hunter2"), "{output}");
        }
    }
    assert!(!installed(&fixture).exists());
}

#[test]
fn pip_installs_uv_when_the_index_fetch_fails() {
    // The host's python3 has pip; uv's index setting points at a closed port, which pip
    // does not read, so pip installs the pinned uv (with the pinned hashes) from its own.
    let fixture = Fixture::new("basic", "uv_pip_fallback");
    // The suite's environment is built first, with the tests' uv: the run below then needs
    // uv's index no more, whose setting points nowhere.
    assert_code(&fixture.run(&["test", "beta"]), exit_codes::OK);
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let python = xtask::toolchain::find_on_path("python3").expect("python3 on PATH");
    let pip = Command::new(&python)
        .args(["-m", "pip", "--version"])
        .output()
        .unwrap();
    assert!(pip.status.success(), "the host's python3 has no pip");
    let host_bin = python.parent().unwrap().to_path_buf();
    let mut command = without_uv(&fixture, &host_bin, &["test", "beta"]);
    command.env(
        "UV_DEFAULT_INDEX",
        format!("http://127.0.0.1:{port}/simple"),
    );
    let run = run(command);
    assert_code(&run, exit_codes::OK);
    assert!(run.stderr.contains("trying pip"), "{}", run.stderr);
    assert!(
        run.stderr.contains("from UV_DEFAULT_INDEX"),
        "{}",
        run.stderr
    );
    let uv = installed(&fixture).join("bin/uv");
    let version = Command::new(&uv).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).contains(UV_VERSION));
    assert!(fixture
        .read(&format!(
            "target/xtask/tools/uv-{UV_VERSION}.requirements.txt"
        ))
        .contains("--hash=sha256:"));
}
