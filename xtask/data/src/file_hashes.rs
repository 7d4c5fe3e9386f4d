//! Content hashes of files (SHA-256), with a stat cache: a file whose size, mtime, ctime,
//! inode and device are what they were when it was last hashed is not read again. What
//! the result cache hashes a suite's inputs with (`xtask::cache`); here, in the optimised
//! crate, because a suite can have tens of thousands of input files.
//!
//! The stat cache is a text file, one line per file sorted by path (`path`, then `hash size
//! mtime ctime inode device`, tab-separated), read and written whole by the caller. A line
//! that cannot be read (or is out of order) is ignored, so a damaged file costs only
//! re-reading files, never a wrong hash. Like git's index, a
//! file changed within [`RACY`] of being hashed is not trusted to its stat: a write in the
//! same clock tick as the hash would leave the stat unchanged; it is hashed again next time.

use std::collections::HashMap;
use std::fmt::Write;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

/// The first line of the stat cache file: its format.
const HEADER: &str = "xtask-file-hashes 2";
/// A file modified this recently when it was hashed is hashed again next time.
pub const RACY: Duration = Duration::from_secs(2);
/// The most entries the stat cache keeps: beyond, only those used by this invocation.
const MAX_ENTRIES: usize = 500_000;

/// What a file's stat says, all of which must hold for its hash to be reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stat {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
    dev: u64,
}

impl Stat {
    fn of(meta: &std::fs::Metadata) -> Stat {
        let ns = |secs: i64, nsec: i64| i128::from(secs) * 1_000_000_000 + i128::from(nsec);
        Stat {
            size: meta.size(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
            ino: meta.ino(),
            dev: meta.dev(),
        }
    }

    /// Whether the file was written so shortly before `now` that a later write in the same
    /// clock tick could leave this stat as it is (every write sets the mtime; the ctime
    /// moves on a mere `touch -d` too, which would make every aged file racy).
    fn racy(&self, now: SystemTime) -> bool {
        let now = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        now - self.mtime_ns < RACY.as_nanos() as i128
    }
}

/// A file's identity as an input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileHash {
    /// The SHA-256 of its content, lowercase hex.
    Content(String),
    /// It does not exist (or is a dangling link).
    Missing,
    /// It is not a regular file (a directory, a socket): its kind, not its content.
    NotAFile,
    /// It could not be read (permissions): the error, which is an input too, so that the
    /// result of a run that could not read it is never taken for one that could.
    Unreadable(String),
}

impl FileHash {
    /// How it is written into a key: the hash, or what stands in for one.
    pub fn as_str(&self) -> &str {
        match self {
            FileHash::Content(hash) => hash,
            FileHash::Missing => "missing",
            FileHash::NotAFile => "not-a-file",
            FileHash::Unreadable(_) => "unreadable",
        }
    }
}

/// Hashes files, reusing the hashes of files whose stat has not changed.
///
/// The stat cache file is read as it is: its lines (sorted by path) are indexed, and a
/// line is parsed only when its file is looked up, so that loading it costs one pass over
/// its bytes whatever its size.
#[derive(Default)]
pub struct FileHashes {
    /// The stat cache file's text.
    text: String,
    /// Its lines, sorted by path: where each starts, where its path ends (at the tab that
    /// follows it), where it ends.
    lines: Vec<(usize, usize, usize)>,
    /// Per line, whether this invocation used it.
    used: Vec<bool>,
    /// Per line, once [`FileHashes::prestat`] ran: whether its file's stat still matched
    /// then (its hash holds without another stat).
    valid: Vec<bool>,
    /// Files hashed by this invocation (not served by a line), by path; `None`: hashed,
    /// but not to be trusted by its stat next time (racy, or changed while read).
    fresh: HashMap<String, Option<(Stat, String)>>,
    /// How many files were read (not served from the stat cache): for the tests and the
    /// benchmark.
    pub read: usize,
}

/// What a look-up found for a file, before any file is read.
enum Found {
    /// Its hash, from line `usize` (or `None`: from this invocation's own hashes).
    Known(String, Option<usize>),
    /// Not a regular file, or missing, or unreadable.
    Done(FileHash),
    /// It must be read; its stat.
    Read(Stat),
}

impl FileHashes {
    /// The hashes in a stat cache file's text (none when it is of another format). Lines
    /// out of order, or damaged, are left out.
    pub fn parse(text: &str) -> FileHashes {
        let Some(body) = text.strip_prefix(HEADER).and_then(|t| t.strip_prefix('\n')) else {
            return FileHashes::default();
        };
        let offset = text.len() - body.len();
        let mut lines = Vec::with_capacity(body.len() / 100);
        let mut start = offset;
        let mut previous: &str = "";
        for line in body.split('\n') {
            let end = start + line.len();
            if let Some(tab) = line.find('\t') {
                let path = &line[..tab];
                // Sorted, each path once: what `to_text` writes; anything else is damage.
                if !path.is_empty() && (lines.is_empty() || path > previous) {
                    lines.push((start, start + tab, end));
                    previous = path;
                }
            }
            start = end + 1;
        }
        let used = vec![false; lines.len()];
        FileHashes {
            text: text.to_string(),
            lines,
            used,
            ..FileHashes::default()
        }
    }

    /// The index of the line of `rel`, if any.
    fn index_of(&self, rel: &str) -> Option<usize> {
        self.lines
            .binary_search_by(|&(start, path_end, _)| self.text[start..path_end].cmp(rel))
            .ok()
    }

    /// The line of `rel`, parsed, when there is one and it can be read.
    fn line(&self, rel: &str) -> Option<(usize, Stat, &str)> {
        let index = self.index_of(rel)?;
        let (_, path_end, end) = self.lines[index];
        let (stat, hash) = parse_fields(&self.text[path_end + 1..end])?;
        Some((index, stat, hash))
    }

    /// What is known of `rel` without reading it: a stat and a look-up.
    fn look(&self, root: &Path, rel: &str) -> Found {
        // Checked by `prestat` already: no second stat.
        if !self.valid.is_empty() && !self.fresh.contains_key(rel) {
            if let Some(index) = self.index_of(rel).filter(|i| self.valid[*i]) {
                // A valid line was parsed by `prestat`: its hash is its first field.
                let (_, path_end, _) = self.lines[index];
                let hash = &self.text[path_end + 1..path_end + 65];
                return Found::Known(hash.to_string(), Some(index));
            }
        }
        let path = root.join(rel);
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Found::Done(FileHash::Missing)
            }
            Err(err) => return Found::Done(FileHash::Unreadable(err.to_string())),
        };
        if !meta.is_file() {
            return Found::Done(FileHash::NotAFile);
        }
        let stat = Stat::of(&meta);
        match self.fresh.get(rel) {
            Some(Some((known, hash))) if *known == stat => return Found::Known(hash.clone(), None),
            Some(_) => return Found::Read(stat),
            None => {}
        }
        match self.line(rel) {
            Some((index, known, hash)) if known == stat => {
                Found::Known(hash.to_string(), Some(index))
            }
            _ => Found::Read(stat),
        }
    }

    /// Takes the stat of every file the stat cache knows, on two threads, and notes which
    /// still match: what a caller does while it lists the tree (a warm tree's files are
    /// the stat cache's), so that the two overlap. A file whose stat no longer matches is
    /// taken again when it is looked up.
    pub fn prestat(&mut self, root: &Path) {
        let check = |lines: &[(usize, usize, usize)]| -> Vec<bool> {
            lines
                .iter()
                .map(|&(start, path_end, end)| {
                    let Some((stat, _)) = parse_fields(&self.text[path_end + 1..end]) else {
                        return false;
                    };
                    std::fs::metadata(root.join(&self.text[start..path_end]))
                        .is_ok_and(|m| m.is_file() && Stat::of(&m) == stat)
                })
                .collect()
        };
        let (first, second) = self.lines.split_at(self.lines.len().div_ceil(2));
        let valid = std::thread::scope(|scope| {
            let other = scope.spawn(|| check(second));
            let mut valid = check(first);
            valid.extend(other.join().unwrap_or_else(|_| vec![false; second.len()]));
            valid
        });
        self.valid = valid;
    }

    /// Drops what [`FileHashes::prestat`] found: a later look-up (after the suites ran)
    /// takes every stat again.
    pub fn forget_prestat(&mut self) {
        self.valid.clear();
    }

    /// Reads and hashes `rel`, whose stat was `stat`, and remembers it.
    fn read(&mut self, root: &Path, rel: &str, stat: Stat) -> FileHash {
        let path = root.join(rel);
        self.read += 1;
        let hash = match content_hash(&path) {
            Ok(hash) => hash,
            Err(err) => return FileHash::Unreadable(err.to_string()),
        };
        // Its stat again: a file that changed while it was read is not remembered, nor one
        // written too recently to trust its stat.
        let after = std::fs::metadata(&path).map(|m| Stat::of(&m)).ok();
        let trusted = after == Some(stat) && !stat.racy(SystemTime::now());
        self.fresh
            .insert(rel.to_string(), trusted.then(|| (stat, hash.clone())));
        FileHash::Content(hash)
    }

    /// The hash of `root/rel` (`rel` with `/`), from the stat cache when its stat holds.
    pub fn hash(&mut self, root: &Path, rel: &str) -> FileHash {
        match self.look(root, rel) {
            Found::Known(hash, index) => {
                if let Some(index) = index {
                    self.used[index] = true;
                }
                FileHash::Content(hash)
            }
            Found::Done(hash) => hash,
            Found::Read(stat) => self.read(root, rel, stat),
        }
    }

    /// The stat cache file's text, sorted by path: every hash used by this invocation, and
    /// those known before that it did not use (other suites' files) while there are not
    /// too many.
    pub fn to_text(&self) -> String {
        let all = self.lines.len() + self.fresh.len() <= MAX_ENTRIES;
        let mut entries: Vec<(&str, String)> =
            Vec::with_capacity(self.lines.len() + self.fresh.len());
        for (index, &(start, path_end, end)) in self.lines.iter().enumerate() {
            let path = &self.text[start..path_end];
            if (all || self.used[index]) && !self.fresh.contains_key(path) {
                entries.push((path, self.text[path_end + 1..end].to_string()));
            }
        }
        for (path, known) in &self.fresh {
            // A name with a newline or a tab cannot be a line: it is hashed every time.
            let Some((stat, hash)) = known else { continue };
            if path.contains(['\n', '\t']) {
                continue;
            }
            let Stat {
                size,
                mtime_ns,
                ctime_ns,
                ino,
                dev,
            } = stat;
            entries.push((
                path,
                format!("{hash}\t{size}\t{mtime_ns}\t{ctime_ns}\t{ino}\t{dev}"),
            ));
        }
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut out = String::with_capacity(120 * (entries.len() + 1));
        out.push_str(HEADER);
        out.push('\n');
        for (path, fields) in entries {
            let _ = writeln!(out, "{path}\t{fields}");
        }
        out
    }

    /// `file:PATH` and its digest for each of `files` (paths relative to `root`, any order,
    /// repeats allowed), sorted; or why they cannot be known: a name that is not UTF-8
    /// (listed with [`NOT_UTF8`] after it: it cannot be told apart from another such name),
    /// or `stop()` said to stop (an interrupt), which is asked every few hundred files.
    /// The stats are taken on two threads: for a warm tree they are all the work.
    pub fn file_inputs(
        &mut self,
        root: &Path,
        mut files: Vec<String>,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<Vec<(String, String)>, String> {
        files.sort_unstable();
        files.dedup();
        if let Some(odd) = files.iter().find(|f| f.contains(NOT_UTF8)) {
            // Shown on one line, whatever it holds (a newline and a CI workflow command).
            let shown = crate::text::one_line(&odd.replace(NOT_UTF8, ""));
            return Err(format!("the name of {shown} is not UTF-8"));
        }
        let interrupted =
            || Err("the run was interrupted while its inputs were hashed".to_string());
        let look = |chunk: &[String]| -> Option<Vec<Found>> {
            let mut found = Vec::with_capacity(chunk.len());
            for (i, file) in chunk.iter().enumerate() {
                if i % 256 == 0 && stop() {
                    return None;
                }
                found.push(self.look(root, file));
            }
            Some(found)
        };
        let half = files.len().div_ceil(2);
        let (first, second) = files.split_at(half);
        let (a, b) = std::thread::scope(|scope| {
            let other = scope.spawn(|| look(second));
            let mine = look(first);
            (mine, other.join().unwrap_or(None))
        });
        let (Some(mut found), Some(b)) = (a, b) else {
            return interrupted();
        };
        found.extend(b);
        let mut out = Vec::with_capacity(files.len());
        for (i, (file, found)) in files.into_iter().zip(found).enumerate() {
            if i % 256 == 0 && stop() {
                return interrupted();
            }
            let hash = match found {
                Found::Known(hash, index) => {
                    if let Some(index) = index {
                        self.used[index] = true;
                    }
                    FileHash::Content(hash)
                }
                Found::Done(hash) => hash,
                Found::Read(stat) => self.read(root, &file, stat),
            };
            out.push((format!("file:{file}"), hash.as_str().to_string()));
        }
        Ok(out)
    }
}

/// A line's fields after its path: its stat and hash.
fn parse_fields(fields: &str) -> Option<(Stat, &str)> {
    let mut fields = fields.split('\t');
    let hash = fields.next()?;
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let stat = Stat {
        size: fields.next()?.parse().ok()?,
        mtime_ns: fields.next()?.parse().ok()?,
        ctime_ns: fields.next()?.parse().ok()?,
        ino: fields.next()?.parse().ok()?,
        dev: fields.next()?.parse().ok()?,
    };
    fields.next().is_none().then_some((stat, hash))
}

/// Ends a listed file whose name is not UTF-8 (after its lossy form, so that it sorts
/// under its directory): a suite that has one is never cached.
pub const NOT_UTF8: &str = "\0not-utf-8\0";

/// The files of a tree, relative to its root with `/`, sorted: what git lists, or every
/// file but those in hidden directories; never what runs write ([`written_by_runs`]).
pub struct Listing {
    pub files: Vec<String>,
    /// The xtask's output directory (`target/xtask/`), relative to the root.
    pub excluded: String,
    /// Whether git listed them (else the tree was walked).
    pub from_git: bool,
}

impl Listing {
    /// The paths of `git ls-files -z` output.
    pub fn from_git(stdout: &[u8], excluded: String) -> Listing {
        let files = stdout
            .split(|&b| b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| match std::str::from_utf8(p) {
                Ok(name) => name.to_string(),
                Err(_) => format!("{}{NOT_UTF8}", String::from_utf8_lossy(p)),
            })
            .collect();
        Listing::of(files, excluded, true)
    }

    /// Every file under `root` but those in hidden directories.
    pub fn walked(root: &Path, excluded: String) -> Listing {
        Listing::of(walk(root), excluded, false)
    }

    fn of(mut files: Vec<String>, excluded: String, from_git: bool) -> Listing {
        files.retain(|f| !written_by_runs(f, &excluded));
        files.sort_unstable();
        // A path listed twice (a conflict's stages).
        files.dedup();
        Listing {
            files,
            excluded,
            from_git,
        }
    }

    /// The files under `dir` (relative to the root; `.` is all of them).
    pub fn under<'a>(&'a self, dir: &str) -> impl Iterator<Item = &'a str> + 'a {
        let prefix = prefix_of(dir);
        let start = self.files.partition_point(|f| f.as_str() < prefix.as_str());
        self.files[start..]
            .iter()
            .take_while(move |f| f.starts_with(&prefix))
            .map(String::as_str)
    }

    /// The files under `dir`; walked when git lists none there (a directory git ignores,
    /// or a root inside a larger work tree that ignores it): a suite's files are never
    /// missed for being ignored by the repository around them.
    pub fn files_of(&self, root: &Path, dir: &str) -> Vec<String> {
        let listed: Vec<String> = self.under(dir).map(str::to_string).collect();
        if !listed.is_empty() || !self.from_git {
            return listed;
        }
        let prefix = prefix_of(dir);
        walk(&root.join(dir))
            .into_iter()
            .map(|f| format!("{prefix}{f}"))
            .filter(|f| !written_by_runs(f, &self.excluded))
            .collect()
    }
}

/// `dir/` (empty for the root).
fn prefix_of(dir: &str) -> String {
    let dir = dir.trim_end_matches('/');
    if dir.is_empty() || dir == "." {
        String::new()
    } else {
        format!("{dir}/")
    }
}

/// Whether a path is something runs write, never an input: the xtask's output (`out_dir`,
/// with its `/`), Python's byte code, pytest's cache.
pub fn written_by_runs(path: &str, out_dir: &str) -> bool {
    (!out_dir.is_empty() && path.starts_with(out_dir))
        || path.ends_with(".pyc")
        || path.contains("__pycache__/")
        || path.contains(".pytest_cache/")
}

/// Every file under `root` but those in hidden directories, relative to it.
pub fn walk(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = format!("{rel}{name}");
            if entry.file_name().to_str().is_none() {
                files.push(format!("{path}{NOT_UTF8}"));
                continue;
            }
            match entry.file_type() {
                Ok(t) if t.is_dir() => {
                    if !name.starts_with('.') {
                        stack.push((entry.path(), format!("{path}/")));
                    }
                }
                Ok(_) => files.push(path),
                Err(_) => {}
            }
        }
    }
    files
}

/// The SHA-256 of a file's content, lowercase hex, read in blocks.
pub fn content_hash(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// The SHA-256 of `bytes`, lowercase hex.
pub fn bytes_hash(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("xtask-file-hashes-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Sets a file's mtime well in the past, so that its hash is not racy.
    fn age(path: &Path) {
        let old = SystemTime::now() - Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }

    #[test]
    fn an_unchanged_file_is_not_read_again_and_a_changed_one_is() {
        let root = scratch("reuse");
        std::fs::write(root.join("a.py"), "x = 1\n").unwrap();
        age(&root.join("a.py"));
        let mut hashes = FileHashes::default();
        let first = hashes.hash(&root, "a.py");
        assert_eq!(first, FileHash::Content(bytes_hash(b"x = 1\n")));
        let mut again = FileHashes::parse(&hashes.to_text());
        assert_eq!(again.hash(&root, "a.py"), first);
        assert_eq!(again.read, 0, "served from the stat cache");
        // Same size, new content: the mtime (and ctime) give it away.
        std::fs::write(root.join("a.py"), "x = 2\n").unwrap();
        let mut third = FileHashes::parse(&again.to_text());
        assert_eq!(
            third.hash(&root, "a.py"),
            FileHash::Content(bytes_hash(b"x = 2\n"))
        );
        assert_eq!(third.read, 1);
        assert_eq!(third.hash(&root, "gone.py"), FileHash::Missing);
        assert_eq!(third.hash(&root, "."), FileHash::NotAFile);
    }

    #[test]
    fn odd_names_are_kept_and_a_name_no_line_can_hold_is_hashed_every_time() {
        let root = scratch("odd");
        let names = ["dir with space/é.py", "tab\there.py", "new\nline.py"];
        for name in names {
            let path = root.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, name).unwrap();
            age(&path);
        }
        let mut hashes = FileHashes::default();
        for name in names {
            assert_eq!(
                hashes.hash(&root, name),
                FileHash::Content(bytes_hash(name.as_bytes()))
            );
        }
        let mut again = FileHashes::parse(&hashes.to_text());
        for name in names {
            assert_eq!(
                again.hash(&root, name),
                FileHash::Content(bytes_hash(name.as_bytes()))
            );
        }
        // Only the names a line can hold were served from the stat cache.
        assert_eq!(again.read, 2);
        // And on one line when shown, whatever they hold.
        assert_eq!(
            crate::text::one_line("new\nline::error::x"),
            "new\\nline::error::x"
        );
    }

    #[test]
    fn a_file_changed_just_now_is_hashed_again_next_time() {
        let root = scratch("racy");
        std::fs::write(root.join("a.py"), "x = 1\n").unwrap();
        let mut hashes = FileHashes::default();
        hashes.hash(&root, "a.py");
        let mut again = FileHashes::parse(&hashes.to_text());
        again.hash(&root, "a.py");
        assert_eq!(again.read, 1, "a racy stat is not trusted");
    }

    #[test]
    fn a_damaged_stat_cache_is_read_as_far_as_it_can_be() {
        let root = scratch("damaged");
        std::fs::write(root.join("a.py"), "x = 1\n").unwrap();
        age(&root.join("a.py"));
        let mut hashes = FileHashes::default();
        hashes.hash(&root, "a.py");
        let text = hashes.to_text();
        // Cut short, a forged hash, and a line of nonsense: nothing wrong is believed.
        let cut = &text[..text.len() - 3];
        let mut from_cut = FileHashes::parse(cut);
        assert_eq!(
            from_cut.hash(&root, "a.py"),
            FileHash::Content(bytes_hash(b"x = 1\n"))
        );
        let forged = text.replace(&bytes_hash(b"x = 1\n"), "zz");
        assert_eq!(
            FileHashes::parse(&forged).hash(&root, "a.py"),
            FileHash::Content(bytes_hash(b"x = 1\n"))
        );
        assert!(FileHashes::parse("garbage\n1 2 3").lines.is_empty());
    }

    #[test]
    fn a_listing_gives_the_files_under_a_directory_and_never_what_runs_write() {
        let listing = Listing::of(
            vec![
                "a/x.py".into(),
                "ab/y.py".into(),
                "a/b/z.py".into(),
                "b.py".into(),
                "a/__pycache__/x.cpython-311.pyc".into(),
                "target/xtask/runs/x".into(),
            ],
            "target/xtask/".into(),
            true,
        );
        assert_eq!(
            listing.under("a").collect::<Vec<_>>(),
            ["a/b/z.py", "a/x.py"]
        );
        assert_eq!(listing.under(".").count(), 4);
        assert!(written_by_runs("a/.pytest_cache/v/x", ""));
        assert!(!written_by_runs("a/x.py", "target/xtask/"));
    }
}
