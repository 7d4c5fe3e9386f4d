//! Content hashes of files (SHA-256), with a stat cache: a file whose size, mtime, ctime,
//! inode and device are what they were when it was last hashed is not read again. What
//! the result cache hashes a suite's inputs with (`xtask::cache`); here, in the optimised
//! crate, because a suite can have tens of thousands of input files.
//!
//! The stat cache is a text file, one line per file (`hash size mtime ctime inode device
//! path`), read and written whole by the caller. A line that cannot be read is ignored, so
//! a damaged file costs only re-reading files, never a wrong hash. Like git's index, a
//! file changed within [`RACY`] of being hashed is not trusted to its stat: a write in the
//! same clock tick as the hash would leave the stat unchanged; it is hashed again next time.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

/// The first line of the stat cache file: its format.
const HEADER: &str = "xtask-file-hashes 1";
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
#[derive(Default)]
pub struct FileHashes {
    /// From the stat cache file, by path relative to the root.
    known: HashMap<String, (Stat, String)>,
    /// Hashed or confirmed by this invocation (not racy).
    used: HashMap<String, (Stat, String)>,
    /// How many files were read (not served from the stat cache): for the tests and the
    /// benchmark.
    pub read: usize,
}

impl FileHashes {
    /// The hashes in a stat cache file's text (empty when it is of another format).
    pub fn parse(text: &str) -> FileHashes {
        let mut lines = text.split('\n');
        if lines.next() != Some(HEADER) {
            return FileHashes::default();
        }
        let known = lines
            .filter_map(|line| {
                let mut fields = line.splitn(7, ' ');
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
                let path = fields.next().filter(|p| !p.is_empty())?;
                Some((path.to_string(), (stat, hash.to_string())))
            })
            .collect();
        FileHashes {
            known,
            ..FileHashes::default()
        }
    }

    /// The stat cache file's text: every hash used by this invocation, and those known
    /// before that it did not use (other suites' files) while there are not too many.
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(64 * (self.used.len() + 1));
        out.push_str(HEADER);
        out.push('\n');
        let others = (self.known.len() + self.used.len() <= MAX_ENTRIES)
            .then_some(
                self.known
                    .iter()
                    .filter(|(p, _)| !self.used.contains_key(*p)),
            )
            .into_iter()
            .flatten();
        for (path, (stat, hash)) in self.used.iter().chain(others) {
            // A name with a newline cannot be a line: it is hashed every time.
            if path.contains('\n') {
                continue;
            }
            let Stat {
                size,
                mtime_ns,
                ctime_ns,
                ino,
                dev,
            } = stat;
            out.push_str(&format!(
                "{hash} {size} {mtime_ns} {ctime_ns} {ino} {dev} {path}\n"
            ));
        }
        out
    }

    /// The hash of `root/rel` (`rel` with `/`), from the stat cache when its stat holds.
    pub fn hash(&mut self, root: &Path, rel: &str) -> FileHash {
        let path = root.join(rel);
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return FileHash::Missing,
            Err(err) => return FileHash::Unreadable(err.to_string()),
        };
        if !meta.is_file() {
            return FileHash::NotAFile;
        }
        let stat = Stat::of(&meta);
        if let Some((known, hash)) = self.used.get(rel).or_else(|| self.known.get(rel)) {
            if *known == stat {
                let hash = hash.clone();
                self.used.insert(rel.to_string(), (stat, hash.clone()));
                return FileHash::Content(hash);
            }
        }
        self.read += 1;
        let hash = match content_hash(&path) {
            Ok(hash) => hash,
            Err(err) => return FileHash::Unreadable(err.to_string()),
        };
        // Its stat again: a file that changed while it was read is not remembered.
        let after = std::fs::metadata(&path).map(|m| Stat::of(&m)).ok();
        if after == Some(stat) && !stat.racy(SystemTime::now()) {
            self.used.insert(rel.to_string(), (stat, hash.clone()));
        } else {
            self.used.remove(rel);
        }
        FileHash::Content(hash)
    }
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
    use std::fmt::Write;
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
        assert!(FileHashes::parse("garbage\n1 2 3").known.is_empty());
    }
}
