//! Finding uv, or installing a pinned one with the host Python's pip when there is none.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::error::Error;
use crate::paths::Layout;

/// The uv installed when none is found. Bump it here only.
pub const UV_VERSION: &str = "0.13.8";
/// How long installing uv with pip may take.
const INSTALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10 * 60);
/// Points at a uv binary to use instead of looking on PATH.
pub const UV_ENV: &str = "XTASK_UV";

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
    install_uv(&install_dir).map_err(|err| {
        Error::Toolchain(format!(
            "uv is required but is not on PATH, and installing uv {UV_VERSION} with the host Python's pip failed: {err:#}\n\
             Install it yourself (`python3 -m pip install uv=={UV_VERSION}`, or see \
             https://docs.astral.sh/uv/getting-started/installation/), make sure `uv` is on PATH \
             (or set {UV_ENV} to its path), and run again."
        ))
    })?;
    Ok(uv)
}

fn install_uv(install_dir: &Path) -> anyhow::Result<()> {
    let python = ["python3", "python"]
        .into_iter()
        .find_map(find_on_path)
        .context("no `python3` or `python` on PATH to run pip with")?;
    let parent = install_dir.parent().expect("the install dir has a parent");
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    eprintln!(
        "xtask: uv is not on PATH; installing uv {UV_VERSION} into {} with `{} -m pip` (once)",
        install_dir.display(),
        python.display()
    );
    // Install beside the final place and rename, so that two invocations installing at
    // the same time cannot leave half an install behind.
    let staging = parent.join(format!(".uv-{UV_VERSION}.{}", std::process::id()));
    let install = crate::invocation::Invocation::new(
        vec![
            python.to_string_lossy().into_owned(),
            "-m".into(),
            "pip".into(),
            "install".into(),
            "--disable-pip-version-check".into(),
            "--no-input".into(),
            "--quiet".into(),
            "--target".into(),
            staging.to_string_lossy().into_owned(),
            format!("uv=={UV_VERSION}"),
        ],
        parent,
        vec![],
    );
    let deadline = crate::process::deadline_after(std::time::Instant::now(), INSTALL_TIMEOUT);
    let output = crate::step::capture(
        &install,
        deadline,
        &crate::redact::Redactor::from_env(&[], &[]),
    )
    .with_context(|| format!("running `{} -m pip`", python.display()))?;
    if !output.success() {
        let _ = std::fs::remove_dir_all(&staging);
        anyhow::bail!(
            "`{} -m pip install uv=={UV_VERSION}` failed:\n{}",
            python.display(),
            output.stderr.trim_end()
        );
    }
    if std::fs::rename(&staging, install_dir).is_err() {
        // Another invocation finished first; keep its install.
        let _ = std::fs::remove_dir_all(&staging);
    }
    anyhow::ensure!(
        install_dir.join("bin").join("uv").is_file(),
        "pip finished but {} holds no bin/uv",
        install_dir.display()
    );
    Ok(())
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
