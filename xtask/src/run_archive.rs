//! Portable run archives: `cargo xtask export` packs one run's directory into one file, and
//! `--rerun FILE`, `replay FILE` and `trace FILE` read one back, on any checkout.
//!
//! An archive is a tar (gzipped unless its name ends in `.tar`) whose members all lie below
//! one directory named after the run, `<run id>/`. Its first member,
//! `<run id>/xtask-archive.json`, is the manifest: the run, the commit and checkout it came
//! from, and every other member with its size and SHA-256. Reading one checks, member by
//! member as it streams past, that the path is a plain relative path below that directory
//! (no absolute path, no `..`, no link, no device), that the manifest lists it, and that its
//! size and digest are the listed ones; then that nothing listed is missing. Only then is
//! the run used, from a fresh directory `target/xtask/imports/<run id>-<digest>/` into
//! which nothing but plain files and directories was written. The digests catch a damaged,
//! cut or edited archive; they do not say who made it (anyone can write a consistent one),
//! and nothing in an archive is executed: it is read as a record, reports and logs.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::paths::Layout;
use crate::report::run_record::RunRecord;

/// What the manifest's `format` says.
const FORMAT: &str = "xtask-run-archive";
/// The manifest's layout; a reader refuses any other.
const VERSION: u32 = 1;
/// The manifest's name below the archive's directory.
pub const MANIFEST: &str = "xtask-archive.json";

/// Bounds an archive must keep, written and read alike: what a run directory can hold
/// (logs of tests that print hundreds of megabytes), not what a forged header claims.
pub const MAX_TOTAL_BYTES: u64 = 8 << 30;
pub const MAX_MEMBERS: usize = 100_000;
const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// Imports kept under `target/xtask/imports/` (besides the one just made).
const KEEP_IMPORTS: usize = 10;

/// The first member of every archive.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub run_id: String,
    /// The xtask that exported it.
    pub xtask_version: String,
    pub exported_at: String,
    /// The checkout the run was made in, and its commit (from run.json).
    pub root: PathBuf,
    pub commit: Option<String>,
    pub dirty: Option<bool>,
    /// The suites the run ran, in its order.
    pub suites: Vec<String>,
    /// Every other member, relative to the archive's directory, in the archive's order.
    pub members: Vec<Member>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub path: String,
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
}

/// Whether `path` is an archive rather than a run.json: by its first bytes (gzip's magic,
/// or tar's `ustar` at offset 257), never by its name.
pub fn is_archive(path: &Path) -> bool {
    let Ok(mut file) = File::open(path) else {
        return false;
    };
    let mut head = [0u8; 262];
    let mut read = 0;
    while read < head.len() {
        match file.read(&mut head[read..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    head[..read].starts_with(&[0x1f, 0x8b]) || (read >= 262 && &head[257..262] == b"ustar")
}

/// The run.json that `spec` names, as `runs::find_record` finds it; when that is an
/// archive, it is checked and unpacked first, and how it differs from this checkout is
/// said on stderr. Used by `--rerun`, `replay` and `trace`.
pub fn find_record(layout: &Layout, spec: &str) -> Result<PathBuf, Error> {
    let named = Path::new(spec);
    let archive_name = [".tar.gz", ".tgz", ".tar"]
        .iter()
        .any(|ext| spec.ends_with(ext));
    if archive_name && !named.exists() {
        return Err(Error::Usage(format!(
            "no archive `{spec}`: there is no such file (`cargo xtask export RUN -o FILE` \
             writes one)"
        )));
    }
    let path = crate::runs::find_record(layout, spec)?;
    if !path.is_file() || !is_archive(&path) {
        return Ok(path);
    }
    let (dir, manifest) = import(layout, &path)?;
    eprintln!(
        "xtask: archive {}: run {}, unpacked into {}",
        path.display(),
        manifest.run_id,
        layout.display(&dir)
    );
    if let Some(differences) = differences(layout, &manifest) {
        eprintln!("xtask: archive from {differences}");
    }
    Ok(dir.join("run.json"))
}

/// How the archive's source differs from this checkout ("commit abc (this checkout: def);
/// checkout /ci/x (this one: /home/y); suites not in this manifest: z"), `None` when it
/// does not.
fn differences(layout: &Layout, manifest: &Manifest) -> Option<String> {
    let short = |c: &str| c.chars().take(12).collect::<String>();
    let mut parts = Vec::new();
    let here = crate::report::record::RunInfo::gather(layout, None, crate::model::now()).git;
    match (&manifest.commit, &here) {
        (Some(theirs), Some(ours)) if *theirs != ours.commit => parts.push(format!(
            "commit {} (this checkout: {})",
            short(theirs),
            short(&ours.commit)
        )),
        (Some(theirs), None) => parts.push(format!(
            "commit {} (this checkout is not a git work tree)",
            short(theirs)
        )),
        (None, Some(ours)) => parts.push(format!(
            "an unrecorded commit (this checkout: {})",
            short(&ours.commit)
        )),
        _ => {}
    }
    if manifest.dirty == Some(true) {
        parts.push("a checkout with uncommitted changes".to_string());
    }
    let ours = std::fs::canonicalize(&layout.root).unwrap_or_else(|_| layout.root.clone());
    if manifest.root != ours && manifest.root != layout.root {
        parts.push(format!(
            "checkout {} (this one: {})",
            manifest.root.display(),
            ours.display()
        ));
    }
    if let Ok(this) = crate::manifest::Manifest::load(layout) {
        let missing: Vec<&str> = manifest
            .suites
            .iter()
            .filter(|s| !this.suites.iter().any(|t| t.name == **s))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            parts.push(format!(
                "suites not in this manifest: {}",
                missing.join(", ")
            ));
        }
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// The files of a run directory an archive carries: every regular file at its top and in
/// its `junit/` and `logs/`, but the invocation's lock, its process list and hidden
/// temporary files, as (path relative to `dir` with `/`, path); its working files, other
/// directories (a `run.json` named outside `target/xtask/runs/` may lie anywhere),
/// symlinks and anything else are left out.
pub fn members_of(dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut found = Vec::new();
    let mut todo = vec![(String::new(), dir.to_path_buf())];
    while let Some((prefix, at)) = todo.pop() {
        let entries =
            std::fs::read_dir(&at).with_context(|| format!("reading {}", at.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("reading {}", at.display()))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                continue;
            };
            if name.starts_with('.') || (prefix.is_empty() && name == "processes") {
                continue;
            }
            let rel = format!("{prefix}{name}");
            let kind = entry
                .file_type()
                .with_context(|| format!("inspecting {}", entry.path().display()))?;
            if kind.is_dir() && (!prefix.is_empty() || !matches!(name, "junit" | "logs")) {
                continue;
            }
            if kind.is_dir() {
                todo.push((format!("{rel}/"), entry.path()));
            } else if kind.is_file() {
                found.push((rel, entry.path()));
            }
        }
    }
    // run.json first, then the rest by name: an archive lists the same way every time.
    found.sort_by(|a, b| (a.0 != "run.json", &a.0).cmp(&(b.0 != "run.json", &b.0)));
    Ok(found)
}

/// Writes the run `record` (its directory `dir`) to `out` as an archive, through a
/// temporary file beside it; gzipped unless `out` ends in `.tar`. Returns its manifest.
pub fn export(record: &RunRecord, dir: &Path, out: &Path) -> anyhow::Result<Manifest> {
    let files = members_of(dir)?;
    if !files.iter().any(|(rel, _)| rel == "run.json") {
        return Err(Error::Usage(format!(
            "{} holds no run.json: export a run directory (`cargo xtask runs` lists them)",
            dir.display()
        ))
        .into());
    }
    // First the digests (the manifest leads the archive), then the files again, checked
    // against them as they are written: a file that changed in between is an error.
    let mut members = Vec::with_capacity(files.len());
    let mut total = 0u64;
    for (rel, path) in &files {
        let file = File::open(path).with_context(|| format!("reading {}", path.display()))?;
        let (size, sha256) = digest(file, &mut std::io::sink())
            .with_context(|| format!("reading {}", path.display()))?;
        total += size;
        members.push(Member {
            path: rel.clone(),
            size,
            sha256,
        });
    }
    if total > MAX_TOTAL_BYTES || members.len() > MAX_MEMBERS {
        return Err(Error::Usage(format!(
            "{} holds {} files, {total} bytes: more than an archive may ({MAX_MEMBERS} files, \
             {MAX_TOTAL_BYTES} bytes)",
            dir.display(),
            members.len()
        ))
        .into());
    }
    let manifest = Manifest {
        format: FORMAT.to_string(),
        version: VERSION,
        run_id: record.run_id.clone(),
        xtask_version: env!("CARGO_PKG_VERSION").to_string(),
        exported_at: crate::model::now().to_rfc3339(),
        root: record.root.clone(),
        commit: record.git.as_ref().map(|g| g.commit.clone()),
        dirty: record.git.as_ref().map(|g| g.dirty),
        suites: record.suites.iter().map(|s| s.name.clone()).collect(),
        members,
    };
    if !plain_name(&manifest.run_id) {
        anyhow::bail!(
            "the run id `{}` of {} cannot name a directory",
            manifest.run_id,
            dir.display()
        );
    }
    let text = serde_json::to_vec_pretty(&manifest).context("serializing the manifest")?;

    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let name = out
        .file_name()
        .with_context(|| format!("{} names no file", out.display()))?;
    let tmp = parent.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = (|| -> anyhow::Result<()> {
        let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let file = BufWriter::new(file);
        let sink = if name.to_string_lossy().ends_with(".tar") {
            Sink::Plain(file)
        } else {
            Sink::Gzip(flate2::write::GzEncoder::new(
                file,
                flate2::Compression::default(),
            ))
        };
        let mut tar = tar::Builder::new(sink);
        let mtime = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let header = |size: u64| {
            let mut header = tar::Header::new_gnu();
            header.set_size(size);
            header.set_mode(0o644);
            header.set_mtime(mtime);
            header.set_entry_type(tar::EntryType::Regular);
            header
        };
        let top = &manifest.run_id;
        tar.append_data(
            &mut header(text.len() as u64),
            format!("{top}/{MANIFEST}"),
            &text[..],
        )
        .with_context(|| format!("writing {}", tmp.display()))?;
        for ((rel, path), member) in files.iter().zip(&manifest.members) {
            let file = File::open(path).with_context(|| format!("reading {}", path.display()))?;
            // Exactly the digested bytes: a file that grew is cut there and found changed.
            let mut checked = Checked::new(file.take(member.size));
            tar.append_data(
                &mut header(member.size),
                format!("{top}/{rel}"),
                &mut checked,
            )
            .with_context(|| format!("writing {} into {}", path.display(), tmp.display()))?;
            if checked.hex() != member.sha256 || checked.len != member.size {
                anyhow::bail!(
                    "{} changed while it was exported; export again once the run has ended",
                    path.display()
                );
            }
        }
        tar.into_inner()
            .and_then(Sink::finish)
            .with_context(|| format!("writing {}", tmp.display()))
    })();
    let renamed = written.and_then(|()| {
        std::fs::rename(&tmp, out).with_context(|| format!("writing {}", out.display()))
    });
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    renamed.map(|()| manifest)
}

/// Where the tar goes: the file itself, or gzip in front of it.
enum Sink {
    Plain(BufWriter<File>),
    Gzip(flate2::write::GzEncoder<BufWriter<File>>),
}

impl Sink {
    /// Writes what is left (the gzip trailer) and flushes, reporting what a drop would
    /// swallow: an archive cut by a full disk is an error, never renamed into place.
    fn finish(self) -> std::io::Result<()> {
        let file = match self {
            Sink::Plain(file) => file,
            Sink::Gzip(gzip) => gzip.finish()?,
        };
        file.into_inner().map_err(|e| e.into_error())?.sync_all()
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Gzip(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Gzip(w) => w.flush(),
        }
    }
}

/// The size and SHA-256 of everything `from` reads, copied to `to`.
fn digest(from: impl Read, to: &mut impl Write) -> std::io::Result<(u64, String)> {
    let mut checked = Checked::new(from);
    std::io::copy(&mut checked, to)?;
    Ok((checked.len, checked.hex()))
}

/// A reader that hashes and counts what passes through it.
struct Checked<R> {
    inner: R,
    hasher: Sha256,
    len: u64,
}

impl<R> Checked<R> {
    fn new(inner: R) -> Self {
        Checked {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    fn hex(&self) -> String {
        hex(&self.hasher.clone().finalize())
    }
}

impl<R: Read> Read for Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A directory or file name that stays where it is put: not empty, not `.` or `..`, no
/// `/`, no NUL.
fn plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

/// A member's path split into its names, when it is a plain relative path (each name
/// plain; a directory's trailing `/` allowed); `None` for an absolute path, `..`, `.`, an
/// empty name.
fn plain_relative(path: &str) -> Option<Vec<&str>> {
    let path = path.strip_suffix('/').unwrap_or(path);
    if path.is_empty() || path.starts_with('/') {
        return None;
    }
    let names: Vec<&str> = path.split('/').collect();
    names.iter().all(|n| plain_name(n)).then_some(names)
}

/// The archive at `file` read as it streams: bounded in total, so that no header
/// (a GNU long name, a pax extension) can make it read without end.
struct Bounded<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::other(format!(
                "it unpacks to more than {} bytes",
                MAX_TOTAL_BYTES + MAX_MANIFEST_BYTES
            )));
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Checks and unpacks the archive `file` into a fresh directory under
/// `target/xtask/imports/`; returns that directory and the archive's manifest.
pub fn import(layout: &Layout, file: &Path) -> Result<(PathBuf, Manifest), Error> {
    let imports = layout.out_dir().join("imports");
    let internal = |what: String, err: std::io::Error| {
        Error::Archive(format!(
            "{what}: {err} (while unpacking {})",
            file.display()
        ))
    };
    std::fs::create_dir_all(&imports)
        .map_err(|e| internal(format!("creating {}", imports.display()), e))?;
    let tmp = imports.join(format!(".unpacking-{}", layout.run_id));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp).map_err(|e| internal(format!("creating {}", tmp.display()), e))?;
    let unpacked = unpack(file, &tmp);
    let manifest = match unpacked {
        Ok(manifest) => manifest,
        Err(problem) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(Error::Archive(format!(
                "{} cannot be used as a run archive: {problem}. Export the run again \
                 (`cargo xtask export RUN -o FILE`), or download it again if it was copied",
                file.display()
            )));
        }
    };
    // The same archive unpacks to the same directory: a rerun chain that started from it
    // finds it again.
    let key = {
        let mut hasher = Sha256::new();
        for m in &manifest.members {
            hasher.update(m.path.as_bytes());
            hasher.update([0]);
            hasher.update(m.sha256.as_bytes());
        }
        format!("{}-{}", manifest.run_id, &hex(&hasher.finalize())[..12])
    };
    let dir = imports.join(&key);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir).map_err(|e| {
        let _ = std::fs::remove_dir_all(&tmp);
        internal(format!("moving {} to {}", tmp.display(), dir.display()), e)
    })?;
    prune_imports(&imports, &dir);
    Ok((dir, manifest))
}

/// Removes the oldest imports beyond [`KEEP_IMPORTS`], never `keep`.
fn prune_imports(imports: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(imports) else {
        return;
    };
    let mut dirs: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .filter(|(_, p)| p != keep)
        .collect();
    dirs.sort();
    let excess = dirs.len().saturating_sub(KEEP_IMPORTS);
    for (_, path) in dirs.into_iter().take(excess) {
        let _ = std::fs::remove_dir_all(path);
    }
}

/// Reads the archive `file` into the empty directory `into`, checking every member as
/// it streams past; the problem, naming the member at fault, when it cannot be used.
fn unpack(file: &Path, into: &Path) -> Result<Manifest, String> {
    let opened = File::open(file).map_err(|e| format!("it cannot be read ({e})"))?;
    let gzip = {
        let mut magic = [0u8; 2];
        let mut f = &opened;
        f.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b]
    };
    let opened = File::open(file).map_err(|e| format!("it cannot be read ({e})"))?;
    let reader: Box<dyn Read> = if gzip {
        Box::new(flate2::read::GzDecoder::new(BufReader::new(opened)))
    } else {
        Box::new(BufReader::new(opened))
    };
    let mut archive = tar::Archive::new(Bounded {
        inner: reader,
        left: MAX_TOTAL_BYTES + MAX_MANIFEST_BYTES,
    });
    let mut entries = archive
        .entries()
        .map_err(|e| format!("it is not a tar archive ({e})"))?;
    let damaged =
        |after: &str, e: std::io::Error| format!("it is damaged or cut short after {after} ({e})");

    // The manifest, first.
    let mut first = match entries.next() {
        None => return Err("it is empty: it has no manifest".to_string()),
        Some(entry) => entry.map_err(|e| format!("it is not a tar archive ({e})"))?,
    };
    let first_path = String::from_utf8_lossy(&first.path_bytes()).into_owned();
    let top = match plain_relative(&first_path).as_deref() {
        Some([top, name]) if *name == MANIFEST => top.to_string(),
        _ => {
            return Err(format!(
                "its first member is `{first_path}`, not `<run id>/{MANIFEST}`: it was not \
                 made by `cargo xtask export`"
            ))
        }
    };
    if first.size() > MAX_MANIFEST_BYTES {
        return Err(format!("its manifest {first_path} is too large"));
    }
    let mut text = Vec::new();
    (&mut first)
        .take(MAX_MANIFEST_BYTES)
        .read_to_end(&mut text)
        .map_err(|e| damaged(&first_path, e))?;
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|e| format!("its manifest {first_path} cannot be read ({e})"))?;
    if manifest.format != FORMAT || manifest.version != VERSION {
        return Err(format!(
            "its manifest {first_path} is format `{}` version {}; this xtask reads `{FORMAT}` \
             version {VERSION} (read it with the xtask that wrote it: {})",
            manifest.format, manifest.version, manifest.xtask_version
        ));
    }
    if manifest.run_id != top {
        return Err(format!(
            "its manifest is for run {} but lies in {top}/",
            manifest.run_id
        ));
    }
    let mut listed: HashMap<&str, &Member> = HashMap::new();
    let mut total = 0u64;
    for member in &manifest.members {
        if plain_relative(&member.path).is_none() || member.path == MANIFEST {
            return Err(format!(
                "its manifest lists `{}`, which is not a plain relative path",
                member.path
            ));
        }
        if listed.insert(&member.path, member).is_some() {
            return Err(format!("its manifest lists `{}` twice", member.path));
        }
        total = total.saturating_add(member.size);
    }
    if total > MAX_TOTAL_BYTES || manifest.members.len() > MAX_MEMBERS {
        return Err(format!(
            "its manifest lists {} members, {total} bytes: more than an archive may hold \
             ({MAX_MEMBERS}, {MAX_TOTAL_BYTES} bytes)",
            manifest.members.len()
        ));
    }
    if !listed.contains_key("run.json") {
        return Err("its manifest lists no run.json".to_string());
    }

    // Every other member, against the manifest.
    let mut seen: HashSet<String> = HashSet::new();
    let mut last = first_path;
    for entry in entries {
        let mut entry = entry.map_err(|e| damaged(&last, e))?;
        let raw = entry.path_bytes().into_owned();
        let path = String::from_utf8_lossy(&raw).into_owned();
        let names = plain_relative(&path).ok_or_else(|| {
            format!("member `{path}` would be written outside its directory: refused")
        })?;
        let kind = entry.header().entry_type();
        if names == [top.as_str()] && kind.is_dir() {
            continue;
        }
        if names[0] != top || names.len() < 2 {
            return Err(format!("member `{path}` is not below {top}/: refused"));
        }
        let rel = names[1..].join("/");
        if kind.is_dir() {
            let dir = into.join(&rel);
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("member `{path}` cannot be written ({e})"))?;
            last = path;
            continue;
        }
        if !kind.is_file() {
            return Err(format!(
                "member `{path}` is a {}, not a plain file: refused",
                match kind {
                    tar::EntryType::Symlink => "symbolic link",
                    tar::EntryType::Link => "hard link",
                    tar::EntryType::Char | tar::EntryType::Block => "device",
                    tar::EntryType::Fifo => "named pipe",
                    _ => "special entry",
                }
            ));
        }
        let Some(member) = listed.get(rel.as_str()) else {
            return Err(format!(
                "member `{rel}` is not in its manifest (added after it was exported?)"
            ));
        };
        if !seen.insert(rel.clone()) {
            return Err(format!("member `{rel}` is in it twice"));
        }
        if entry.size() != member.size {
            return Err(format!(
                "`{rel}` holds {} bytes; its manifest says {}: the archive was changed or damaged",
                entry.size(),
                member.size
            ));
        }
        let dest = into.join(&rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("member `{rel}` cannot be written ({e})"))?;
        }
        let out = File::options()
            .write(true)
            .create_new(true)
            .open(&dest)
            .map_err(|e| format!("member `{rel}` cannot be written ({e})"))?;
        let mut out = BufWriter::new(out);
        let (size, sha256) = digest((&mut entry).take(member.size), &mut out)
            .and_then(|d| out.flush().map(|()| d))
            .map_err(|e| damaged(&format!("part of `{rel}`"), e))?;
        if size != member.size {
            return Err(format!(
                "`{rel}` ends after {size} of its {} bytes: the archive was cut short",
                member.size
            ));
        }
        if sha256 != member.sha256 {
            return Err(format!(
                "`{rel}` does not match its SHA-256 in the manifest: the archive was changed \
                 or damaged since it was exported"
            ));
        }
        last = rel;
    }
    let missing: Vec<&str> = manifest
        .members
        .iter()
        .map(|m| m.path.as_str())
        .filter(|p| !seen.contains(*p))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "it ends before `{}`{}: it was cut short",
            missing[0],
            match missing.len() {
                1 => String::new(),
                n => format!(" and {} more of the members its manifest lists", n - 1),
            }
        ));
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_pass() {
        assert_eq!(
            plain_relative("run/logs/a.log"),
            Some(vec!["run", "logs", "a.log"])
        );
        assert_eq!(plain_relative("run/junit/"), Some(vec!["run", "junit"]));
        for bad in [
            "",
            "/",
            "/etc/passwd",
            "../evil",
            "run/../../evil",
            "run/./x",
            "run//x",
            "..",
            ".",
            "run/\0x",
        ] {
            assert_eq!(plain_relative(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn an_archive_carries_the_reports_of_a_run_directory_and_nothing_else() {
        let dir = std::env::temp_dir().join(format!("xtask-archive-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for file in [
            "run.json",
            "report.html",
            "junit.xml",
            "junit/a.xml",
            "logs/a.log",
            ".lock",
            "processes",
            ".run.json.1.tmp",
            "work/a.pytest.xml",
            "other/x",
            "logs/deep/y",
        ] {
            let path = dir.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, file).unwrap();
        }
        std::os::unix::fs::symlink("/etc/passwd", dir.join("logs/link.log")).unwrap();
        let found: Vec<String> = members_of(&dir).unwrap().into_iter().map(|m| m.0).collect();
        assert_eq!(
            found,
            [
                "run.json",
                "junit.xml",
                "junit/a.xml",
                "logs/a.log",
                "report.html"
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_digest_is_sha256() {
        let (size, sha) = digest(&b"abc"[..], &mut std::io::sink()).unwrap();
        assert_eq!(size, 3);
        assert_eq!(
            sha,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
