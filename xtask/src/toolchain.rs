//! Finding uv, or installing the pinned one when there is none: its wheel fetched from the
//! package index with the host Python's standard library and checked against a pinned
//! sha256 (`install_uv.py`), else with the host Python's pip, held to the same hashes.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::error::Error;
use crate::paths::Layout;

/// The uv installed when none is found. Bump it here only, with [`UV_WHEELS`].
pub const UV_VERSION: &str = "0.13.8";
/// How long installing uv (either way) may take in all; a stalled read fails sooner (the
/// index's timeout: `UV_HTTP_TIMEOUT`, pip's, else 30 s).
const INSTALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10 * 60);
/// Points at a uv binary to use instead of looking on PATH.
pub const UV_ENV: &str = "XTASK_UV";

/// One of uv's wheels on PyPI: its address there and its sha256, as PyPI lists them.
pub struct Wheel {
    pub sha256: &'static str,
    pub url: &'static str,
}

impl Wheel {
    /// The wheel's file name, which the index lists it by.
    pub fn file(&self) -> &'static str {
        self.url
            .rsplit('/')
            .next()
            .expect("a URL has a last segment")
    }
}

/// uv [`UV_VERSION`]'s wheels for the hosts the xtask runs on (every one but Windows'), as
/// PyPI's simple index lists them, in the order they are preferred where several fit. Only
/// a file with one of these hashes is ever installed, wherever it came from.
pub const UV_WHEELS: &[Wheel] = &[
    Wheel {
        sha256: "0ec33661a14e38dea8dfb18167d2a4a5c7fe3d476c62dd8eb6acf5f378727201",
        url: "https://files.pythonhosted.org/packages/74/80/cf6656f96f6ee9c26227e8aa8a81997b9e8a040d4ab9763657dac6dd5442/uv-0.13.8-py3-none-linux_armv6l.whl",
    },
    Wheel {
        sha256: "b7124ca1956ec2e476a1003ea5715a15f0266afaec37f4dc9c6972ba8183e6d1",
        url: "https://files.pythonhosted.org/packages/be/7a/fd8a719c0198f8f8341847fc33b377f25ac79f7c4a56dbce5ceb086f239c/uv-0.13.8-py3-none-macosx_10_12_x86_64.whl",
    },
    Wheel {
        sha256: "62b6943c7fd64fac6854f780bea6e0359e5a5bc3241f83ee357bb38276afac49",
        url: "https://files.pythonhosted.org/packages/84/46/deb3a1eb3020575e41d1f9840c07185761d8d4c25cd6f58e813afb017476/uv-0.13.8-py3-none-macosx_11_0_arm64.whl",
    },
    Wheel {
        sha256: "0b3e8b1a4f5e405e31e2ff33de8af4744831e9f7338539671efbd8c3c94e791d",
        url: "https://files.pythonhosted.org/packages/9e/f0/d989ac5fcebf83f1c8c5d78974f27788e8364945969eb646f5d0db35d924/uv-0.13.8-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.musllinux_1_1_aarch64.whl",
    },
    Wheel {
        sha256: "9cf0b7b12f13da6ab1c85694ab618d97a2bbd0c904cdea7f0172fb1dd768b9d5",
        url: "https://files.pythonhosted.org/packages/88/14/da38bda443e911f1dddfc04588fae72b9790f9b3583a16e8b94c149dc806/uv-0.13.8-py3-none-manylinux_2_17_armv7l.manylinux2014_armv7l.musllinux_1_1_armv7l.whl",
    },
    Wheel {
        sha256: "86f1319f851e645bc295bb921e6be19beae7e69216c75ae809010ca7817393aa",
        url: "https://files.pythonhosted.org/packages/ae/d6/2e3a344ead9c5a52f60a0605a3e0a6688f962d51b42e5062638785932a38/uv-0.13.8-py3-none-manylinux_2_17_armv7l.manylinux2014_armv7l.whl",
    },
    Wheel {
        sha256: "5ace7ec339798aca31be51a75fa7c1544fe84e02fadd17a9fa3324813bbaf237",
        url: "https://files.pythonhosted.org/packages/e6/3c/12db1b688f523893130d825c0de3986b1db302b6ef1aa61fd41c21aeaf84/uv-0.13.8-py3-none-manylinux_2_17_i686.manylinux2014_i686.whl",
    },
    Wheel {
        sha256: "6999618363d03a0a085a9491db319e00b461dbda205db06ef1fd55dfcbf6472b",
        url: "https://files.pythonhosted.org/packages/bd/1d/c03fbe2a700484e369556b1a198745f92f44734a47279f3fbce95fbdbbaa/uv-0.13.8-py3-none-manylinux_2_17_ppc64le.manylinux2014_ppc64le.whl",
    },
    Wheel {
        sha256: "13050c64530a1ccfc223af0306a8152d41c0d36ea63bc19161221ca65dfe480a",
        url: "https://files.pythonhosted.org/packages/73/09/52cdbdc3100cb67a6aa7e0c6b2b1a6a5834b1ac06de684944a9a0f408528/uv-0.13.8-py3-none-manylinux_2_17_s390x.manylinux2014_s390x.whl",
    },
    Wheel {
        sha256: "e18a57b8b352eb7c8feb317b9f6f533c8f0ad9673fd6cf34bbe3cf1a9f6a8984",
        url: "https://files.pythonhosted.org/packages/c5/32/52ee34636aea1ab3f8baeeae1c3599461b8cddfb379862cc72ac61b8d91c/uv-0.13.8-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    },
    Wheel {
        sha256: "5337c30bb893b4f9ce0ceb921ba2da0d13f649da644f40ad3bef84083bef0203",
        url: "https://files.pythonhosted.org/packages/80/ce/f5eba24d8ec7fa566f9d50d1a69dbf9510137c30366b9f16dbeaf9b9dae4/uv-0.13.8-py3-none-manylinux_2_28_aarch64.whl",
    },
    Wheel {
        sha256: "bfcaada3989c7716ad4b58673cd1413fad4fdc6b2e446f9553db0ef18da20850",
        url: "https://files.pythonhosted.org/packages/37/c6/0bfa359aec27c45dbb8b99eb2e83aa954f919b1f83bb85fc21892dc317b9/uv-0.13.8-py3-none-manylinux_2_31_riscv64.musllinux_1_1_riscv64.whl",
    },
    Wheel {
        sha256: "b26fe533dc6153787e40443b7d9428ed41349127bff36a954ec82c48be01ded9",
        url: "https://files.pythonhosted.org/packages/ab/02/caccaed9a86060eea158f2a16101258e122473c5cb8c4bd9b22b009493c3/uv-0.13.8-py3-none-manylinux_2_31_riscv64.whl",
    },
    Wheel {
        sha256: "63d807451e63c8d21b1b33c945af16438ac9d8ffddc59b31ce69c692135891f5",
        url: "https://files.pythonhosted.org/packages/78/cb/42aa2094f03371df6a0585bbd1b6c9c1d10861d71099d75142603d0d37e8/uv-0.13.8-py3-none-musllinux_1_1_i686.whl",
    },
    Wheel {
        sha256: "29451c60f5e8b07403e0a175d5229efc36b0289b34143ff4aaa499a5dd52553a",
        url: "https://files.pythonhosted.org/packages/4d/a3/1ac9cd75985371da0d29c9c12132e6d5b5627b9d0de87c5ad97ab9ad69b0/uv-0.13.8-py3-none-musllinux_1_1_x86_64.whl",
    },
];

/// The Python program that installs uv without pip (see its docstring).
pub const INSTALLER_SOURCE: &str = include_str!("install_uv.py");

/// `$XTASK_UV`, else `uv` on PATH, else the pinned uv under `target/xtask/tools`,
/// installing it there first if needed.
pub fn find_or_install_uv(layout: &Layout) -> Result<PathBuf, Error> {
    if let Some(uv) = std::env::var_os(UV_ENV).filter(|v| !v.is_empty()) {
        let uv = PathBuf::from(uv);
        return if uv.is_file() {
            Ok(uv)
        } else {
            Err(Error::Toolchain(format!(
                "{UV_ENV} is set to `{}`, which is not a file; point it at a uv binary or unset it",
                uv.display()
            )))
        };
    }
    if let Some(uv) = find_on_path("uv") {
        return Ok(uv);
    }
    let install_dir = layout.tools_dir().join(format!("uv-{UV_VERSION}"));
    let uv = install_dir.join("bin").join("uv");
    if uv.is_file() {
        return Ok(uv);
    }
    install_uv(&install_dir).map_err(|failure| {
        Error::Toolchain(format!(
            "uv is required but is not on PATH, and installing uv {UV_VERSION} failed: {}\n{}",
            failure.summary,
            failure.what_to_do()
        ))
    })?;
    Ok(uv)
}

/// How to install uv by hand, as a sentence that starts with "install uv".
pub fn install_by_hand() -> String {
    format!(
        "install uv (`curl -LsSf https://astral.sh/uv/{UV_VERSION}/install.sh | sh`, or see \
         https://docs.astral.sh/uv/getting-started/installation/) and put it on PATH, or set \
         {UV_ENV} to its path"
    )
}

/// Why uv could not be installed, and what the host lacked.
struct InstallFailure {
    summary: String,
    /// The Python there was, and whether it lacked pip.
    python: Option<PathBuf>,
    no_pip: bool,
    /// Which wheel to download by hand, as `install_uv.py` chose it.
    wheel_by_hand: Option<String>,
}

impl InstallFailure {
    /// The ways to install uv by hand on this host, one sentence each.
    fn what_to_do(&self) -> String {
        let mut ways = vec![install_by_hand()];
        if let Some(python) = self.python.as_ref().filter(|_| self.no_pip) {
            ways.push(format!(
                "or give this Python pip (`{} -m ensurepip`; on Debian, `apt install python3-pip`) \
                 and run again",
                python.display()
            ));
        }
        if let Some(wheel) = &self.wheel_by_hand {
            ways.push(format!("or by hand: {wheel}, and set {UV_ENV} to it"));
        }
        format!("To fix: {}.", ways.join("; "))
    }
}

fn install_uv(install_dir: &Path) -> Result<(), InstallFailure> {
    let Some(python) = ["python3", "python"].into_iter().find_map(find_on_path) else {
        return Err(InstallFailure {
            summary: format!(
                "no `python3` or `python` on PATH to fetch it with; the wheel for this host is listed at \
                 https://pypi.org/project/uv/{UV_VERSION}/#files"
            ),
            python: None,
            no_pip: false,
            wheel_by_hand: None,
        });
    };
    let failure = |summary: String, no_pip: bool, wheel_by_hand: Option<String>| InstallFailure {
        summary,
        python: Some(python.clone()),
        no_pip,
        wheel_by_hand,
    };
    let parent = install_dir.parent().expect("the install dir has a parent");
    std::fs::create_dir_all(parent)
        .with_context(|| format!("creating {}", parent.display()))
        .map_err(|err| failure(format!("{err:#}"), false, None))?;
    eprintln!(
        "xtask: uv is not on PATH; installing uv {UV_VERSION} into {} with `{}` (once)",
        install_dir.display(),
        python.display()
    );
    // The standard library first: it needs no pip, and it reads only the pinned wheel, so
    // it is also the quicker of the two. pip is for what it cannot do (an index that needs
    // pip's keyring, find-links, a proxy set only in pip.conf), held to the same hashes.
    let by_stdlib = match install_into(parent, install_dir, |staging| {
        stdlib_install(&python, parent, staging)
    }) {
        Ok(()) => return Ok(()),
        Err(err) => format!("{err:#}"),
    };
    // install_uv.py's last line, when it got as far as choosing a wheel, says which.
    let (by_stdlib, wheel_by_hand) = match by_stdlib.split_once("\nBy hand: ") {
        Some((why, wheel)) => (why.to_string(), Some(wheel.trim().to_string())),
        None => (by_stdlib, None),
    };
    eprintln!(
        "xtask: fetching uv's wheel with Python's standard library failed ({}); trying pip",
        first_line(&by_stdlib)
    );
    let by_pip = match install_into(parent, install_dir, |staging| {
        pip_install(&python, parent, staging)
    }) {
        Ok(()) => return Ok(()),
        Err(err) => format!("{err:#}"),
    };
    let no_pip = by_pip.contains("No module named pip");
    Err(failure(
        format!(
            "neither from the package index with Python's standard library nor with pip.\n\
             - From the package index, with Python's standard library: {by_stdlib}\n\
             - With `{} -m pip`: {by_pip}",
            python.display()
        ),
        no_pip,
        wheel_by_hand,
    ))
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// Runs `install` into a fresh directory beside `install_dir` and renames it into place, so
/// that two invocations installing at once cannot leave half an install behind, and a
/// failed one leaves nothing.
fn install_into(
    parent: &Path,
    install_dir: &Path,
    install: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let prefix = format!(".uv-{UV_VERSION}.");
    sweep_dead_stagings(parent, &prefix);
    let staging = parent.join(format!("{prefix}{}.{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let installed = install(&staging).and_then(|()| {
        anyhow::ensure!(
            staging.join("bin").join("uv").is_file(),
            "it finished but left no bin/uv in {}",
            staging.display()
        );
        Ok(())
    });
    if let Err(err) = installed {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(err);
    }
    if std::fs::rename(&staging, install_dir).is_err() {
        // Another invocation finished first; keep its install.
        let _ = std::fs::remove_dir_all(&staging);
    }
    anyhow::ensure!(
        install_dir.join("bin").join("uv").is_file(),
        "{} holds no bin/uv",
        install_dir.display()
    );
    Ok(())
}

/// Removes what installs killed before they could clean up left (`<prefix><pid>.<n>`, a
/// part-downloaded wheel among it), leaving those of live processes alone.
fn sweep_dead_stagings(parent: &Path, prefix: &str) {
    for entry in std::fs::read_dir(parent).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|rest| rest.split('.').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        if pid.is_some_and(|pid| !crate::process::alive(pid)) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// `install_uv.py`: the pinned wheel from the index, by the standard library.
fn stdlib_install(python: &Path, tools: &Path, staging: &Path) -> anyhow::Result<()> {
    let script = tools.join("install_uv.py");
    if std::fs::read(&script).map_or(true, |old| old != INSTALLER_SOURCE.as_bytes()) {
        crate::paths::write_atomically(&script, INSTALLER_SOURCE.as_bytes())?;
    }
    let pins = serde_json::json!({
        "version": UV_VERSION,
        "wheels": UV_WHEELS
            .iter()
            .map(|w| serde_json::json!({ "file": w.file(), "sha256": w.sha256, "url": w.url }))
            .collect::<Vec<_>>(),
    });
    let argv = vec![
        python.to_string_lossy().into_owned(),
        // Isolated: no PYTHON* variables, no user site, no current directory on sys.path.
        "-I".into(),
        script.to_string_lossy().into_owned(),
        staging.to_string_lossy().into_owned(),
        pins.to_string(),
    ];
    let output = run_installer(argv, tools, true)?;
    let said = first_line(output.stdout.trim());
    if !said.is_empty() {
        eprintln!("xtask: {said}");
    }
    Ok(())
}

/// `python -m pip install --target`, with every pinned hash required.
fn pip_install(python: &Path, tools: &Path, staging: &Path) -> anyhow::Result<()> {
    let requirements = tools.join(format!("uv-{UV_VERSION}.requirements.txt"));
    let hashes: String = UV_WHEELS
        .iter()
        .map(|w| format!(" --hash=sha256:{}", w.sha256))
        .collect();
    crate::paths::write_atomically(
        &requirements,
        format!("uv=={UV_VERSION}{hashes}\n").as_bytes(),
    )?;
    let argv = vec![
        python.to_string_lossy().into_owned(),
        "-m".into(),
        "pip".into(),
        "install".into(),
        "--disable-pip-version-check".into(),
        "--no-input".into(),
        "--quiet".into(),
        "--require-hashes".into(),
        "--only-binary=:all:".into(),
        "--target".into(),
        staging.to_string_lossy().into_owned(),
        "-r".into(),
        requirements.to_string_lossy().into_owned(),
    ];
    run_installer(argv, tools, false).map(|_| ())
}

/// Runs an installer under [`INSTALL_TIMEOUT`]. One that `explains_itself` exits 1 with
/// its whole explanation on stderr, which is then the error as it stands.
fn run_installer(
    argv: Vec<String>,
    cwd: &Path,
    explains_itself: bool,
) -> anyhow::Result<crate::step::Captured> {
    let install = crate::invocation::Invocation::new(argv, cwd, vec![]);
    let deadline = crate::process::deadline_after(std::time::Instant::now(), INSTALL_TIMEOUT);
    let output = crate::step::capture(
        &install,
        deadline,
        &crate::redact::Redactor::from_env(&[], &[]),
    )
    .with_context(|| format!("running `{}`", install.argv[..2].join(" ")))?;
    let stderr = output.stderr.trim_end();
    if explains_itself && output.code == Some(1) && output.stop.is_none() && !stderr.is_empty() {
        anyhow::bail!("{stderr}");
    }
    anyhow::ensure!(output.success(), "{}: {stderr}", output.describe());
    Ok(output)
}

/// The first executable file called `name` in PATH.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// `uv --version` as `query` answers it, remembered under `target/xtask/tools` and keyed by
/// the binary itself (its resolved path, size and modification time), so that a warm run
/// starts no uv process at all. A cache that cannot be read or written is asked again.
pub fn uv_version(
    layout: &Layout,
    uv: &Path,
    query: impl FnOnce() -> Option<String>,
) -> Option<String> {
    let key = uv_key(uv);
    let cache = layout.tools_dir().join("uv-version.json");
    if let Some(key) = &key {
        let cached = std::fs::read(&cache)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok());
        if let Some(cached) = cached.filter(|c| c["key"] == *key) {
            if let Some(version) = cached["version"].as_str() {
                return Some(version.to_string());
            }
        }
    }
    let version = query()?;
    if let Some(key) = key {
        let record = serde_json::json!({ "key": key, "version": version });
        // Best effort: a cache that is not written is only asked again next time.
        let _ = crate::paths::write_atomically(&cache, record.to_string().as_bytes());
    }
    Some(version)
}

/// What identifies a uv binary: where its symlinks lead, its size and its mtime.
fn uv_key(uv: &Path) -> Option<serde_json::Value> {
    let resolved = std::fs::canonicalize(uv).ok()?;
    let meta = std::fs::metadata(&resolved).ok()?;
    let modified = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some(serde_json::json!([
        resolved.to_string_lossy(),
        meta.len(),
        modified.as_secs(),
        modified.subsec_nanos()
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pinned_wheel_is_of_the_pinned_version_with_a_sha256() {
        let mut files = std::collections::HashSet::new();
        for wheel in UV_WHEELS {
            let file = wheel.file();
            assert!(
                file.starts_with(&format!("uv-{UV_VERSION}-py3-none-")) && file.ends_with(".whl"),
                "{file}"
            );
            assert!(
                wheel
                    .url
                    .starts_with("https://files.pythonhosted.org/packages/"),
                "{}",
                wheel.url
            );
            assert_eq!(wheel.sha256.len(), 64, "{file}");
            assert!(
                wheel
                    .sha256
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{file}"
            );
            assert!(files.insert(file), "{file} twice");
        }
    }
}
