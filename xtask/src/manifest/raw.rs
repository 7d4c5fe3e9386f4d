//! The manifest's schema as serde types: what TOML may say, key by key. Unknown keys are
//! refused by serde (`deny_unknown_fields`), which names the keys that are allowed; every
//! value keeps its place in the file (`Spanned`) so that the checks in `super` can point at
//! it. The key lists the docs are checked against are read from these types, so each key is
//! written once.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, IgnoredAny, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use toml::Spanned;

/// An environment table (`env`, `export`): names and values, each where it was written.
pub type EnvTable = Spanned<BTreeMap<Spanned<String>, Spanned<String>>>;
/// A list of strings, each where it was written.
pub type Strings = Vec<Spanned<String>>;

/// `[workspace.metadata.xtask]` itself. Its entries (`suites`, `services`, `prerequisites`)
/// are read one by one (see `super`), so that each entry's mistake is reported on its own.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "the table [workspace.metadata.xtask]")]
pub struct RawTop {
    #[allow(dead_code, reason = "read entry by entry as RawSuite")]
    pub suites: Option<IgnoredAny>,
    pub timeout: Option<Spanned<RawDuration>>,
    pub secrets: Option<Strings>,
    pub ci_groups: Option<Strings>,
    #[allow(dead_code, reason = "read entry by entry as RawService")]
    pub services: Option<IgnoredAny>,
    #[allow(dead_code, reason = "read entry by entry as RawPrerequisite")]
    pub prerequisites: Option<IgnoredAny>,
    pub runs: Option<RawRuns>,
}

/// `[workspace.metadata.xtask.runs]`: how many finished runs `target/xtask/runs/` keeps.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "the table [workspace.metadata.xtask.runs]")]
pub struct RawRuns {
    pub keep: Option<Spanned<i64>>,
    pub max_age: Option<Spanned<RawDuration>>,
    pub max_size: Option<Spanned<RawSize>>,
}

/// One `[[workspace.metadata.xtask.suites]]` entry. `name`, `group` and `dir` are required,
/// but optional here so that a missing one is reported with what every suite needs. `init`
/// writes its guesses as these too (`to_table`), so what it writes is what is read.
#[derive(Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "a suite table ([[workspace.metadata.xtask.suites]])")]
pub struct RawSuite {
    pub name: Option<Spanned<String>>,
    pub group: Option<Spanned<String>>,
    pub dir: Option<Spanned<String>>,
    pub extras: Option<Spanned<Vec<String>>>,
    pub groups: Option<Spanned<Vec<String>>>,
    pub default_groups: Option<Spanned<bool>>,
    pub requirements: Option<Spanned<Strings>>,
    pub requirements_file: Option<Spanned<String>>,
    pub pythonpath: Option<Strings>,
    pub markers: Option<String>,
    pub paths: Option<Strings>,
    pub env: Option<EnvTable>,
    pub timeout: Option<Spanned<RawDuration>>,
    pub retries: Option<Spanned<i64>>,
    pub split: Option<Spanned<RawSplit>>,
    pub cache: Option<Spanned<bool>>,
    pub inputs: Option<Strings>,
    pub inputs_env: Option<Strings>,
    pub requires_env: Option<Strings>,
    pub services: Option<Strings>,
    pub prerequisites: Option<Strings>,
}

/// One `[workspace.metadata.xtask.services.NAME]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[serde(expecting = "a service table ([workspace.metadata.xtask.services.NAME])")]
pub struct RawService {
    pub command: Option<Spanned<Vec<String>>>,
    pub dir: Option<Spanned<String>>,
    pub environment: Option<Spanned<String>>,
    pub env: Option<EnvTable>,
    pub ready: Option<Spanned<RawReady>>,
    pub deadline: Option<Spanned<RawDuration>>,
    pub export: Option<EnvTable>,
    pub port: Option<Spanned<i64>>,
}

/// A service's `ready = { http = "..." }` or `ready = { tcp = true }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "{ http = \"URL\" } or { tcp = true }")]
pub struct RawReady {
    pub http: Option<String>,
    pub tcp: Option<bool>,
}

/// One `[workspace.metadata.xtask.prerequisites.NAME]` table: exactly one check.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "a prerequisite table ([workspace.metadata.xtask.prerequisites.NAME])")]
pub struct RawPrerequisite {
    pub env: Option<Spanned<String>>,
    pub tcp: Option<Spanned<String>>,
    pub http: Option<Spanned<String>>,
    pub command: Option<Spanned<Vec<String>>>,
    pub timeout: Option<Spanned<RawDuration>>,
}

/// A timeout as written: `"10m"`, or a whole number of seconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawDuration {
    Text(String),
    Seconds(i64),
}

impl<'de> Deserialize<'de> for RawDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Expect;
        impl Visitor<'_> for Expect {
            type Value = RawDuration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as \"10m\" or a number of seconds")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<RawDuration, E> {
                Ok(RawDuration::Text(text.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<RawDuration, E> {
                Ok(RawDuration::Seconds(n))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<RawDuration, E> {
                Ok(RawDuration::Seconds(i64::try_from(n).unwrap_or(i64::MAX)))
            }
        }
        deserializer.deserialize_any(Expect)
    }
}

/// A size as written: `"500MB"`, or a whole number of bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawSize {
    Text(String),
    Bytes(i64),
}

impl<'de> Deserialize<'de> for RawSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Expect;
        impl Visitor<'_> for Expect {
            type Value = RawSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size such as \"500MB\" or a number of bytes")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<RawSize, E> {
                Ok(RawSize::Text(text.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<RawSize, E> {
                Ok(RawSize::Bytes(n))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<RawSize, E> {
                Ok(RawSize::Bytes(i64::try_from(n).unwrap_or(i64::MAX)))
            }
        }
        deserializer.deserialize_any(Expect)
    }
}

/// `split` as written: a number of slices, or `"auto"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawSplit {
    Text(String),
    Count(i64),
}

impl<'de> Deserialize<'de> for RawSplit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Expect;
        impl Visitor<'_> for Expect {
            type Value = RawSplit;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number of slices or \"auto\"")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<RawSplit, E> {
                Ok(RawSplit::Text(text.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<RawSplit, E> {
                Ok(RawSplit::Count(n))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<RawSplit, E> {
                Ok(RawSplit::Count(i64::try_from(n).unwrap_or(i64::MAX)))
            }
        }
        deserializer.deserialize_any(Expect)
    }
}

impl Serialize for RawSplit {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            RawSplit::Text(text) => serializer.serialize_str(text),
            RawSplit::Count(n) => serializer.serialize_i64(*n),
        }
    }
}

impl Serialize for RawDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            RawDuration::Text(text) => serializer.serialize_str(text),
            RawDuration::Seconds(secs) => serializer.serialize_i64(*secs),
        }
    }
}

/// A value written by the xtask itself: it has no place in a file.
pub fn unplaced<T>(value: T) -> Spanned<T> {
    Spanned::new(0..0, value)
}

impl RawSuite {
    /// The entry as a `[[workspace.metadata.xtask.suites]]` table, keys in the schema's order,
    /// `env` inline.
    pub fn to_table(&self) -> Result<toml_edit::Table, toml_edit::ser::Error> {
        match self.serialize(toml_edit::ser::ValueSerializer::new())? {
            toml_edit::Value::InlineTable(table) => Ok(table.into_table()),
            other => Err(serde::ser::Error::custom(format!(
                "a suite serialized as {}, not a table",
                other.type_name()
            ))),
        }
    }
}

/// The keys of `[workspace.metadata.xtask]`.
pub fn top_keys() -> &'static [&'static str] {
    keys_of::<RawTop>()
}

/// The keys of `[workspace.metadata.xtask.runs]`.
pub fn runs_keys() -> &'static [&'static str] {
    keys_of::<RawRuns>()
}

/// The keys of a suite.
pub fn suite_keys() -> &'static [&'static str] {
    keys_of::<RawSuite>()
}

/// The keys of a service.
pub fn service_keys() -> &'static [&'static str] {
    keys_of::<RawService>()
}

/// The keys of a prerequisite.
pub fn prerequisite_keys() -> &'static [&'static str] {
    keys_of::<RawPrerequisite>()
}

/// The field names a derived `Deserialize` hands to `deserialize_struct`: the very list
/// `deny_unknown_fields` checks against, asked for with a deserializer that only listens.
fn keys_of<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut heard = None;
    let _ = T::deserialize(Listener(&mut heard));
    heard.expect("a struct with named fields")
}

struct Listener<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> Deserializer<'de> for Listener<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("only a struct's keys are listened for"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(fields);
        Err(de::Error::custom("only listening"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table with every listed key is read, and one more key is refused by name: the lists
    /// are the keys serde accepts, no more and no fewer.
    #[test]
    fn the_key_lists_are_the_keys_serde_accepts() {
        let suite = "name = 'a'\ngroup = 'g'\ndir = '.'\nextras = []\ngroups = []\ndefault-groups = true\nrequirements = []\nrequirements-file = 'r'\npythonpath = []\nmarkers = ''\npaths = []\nenv = {}\ntimeout = 1\nretries = 0\nsplit = 2\ncache = true\ninputs = []\ninputs-env = []\nrequires-env = []\nservices = []\nprerequisites = []\n";
        let service = "command = []\ndir = '.'\nenvironment = 'a'\nenv = {}\nready = { tcp = true }\ndeadline = '1s'\nexport = {}\nport = 1\n";
        let prerequisite = "env = 'A'\ntcp = 'h:1'\nhttp = 'http://h'\ncommand = []\ntimeout = 1\n";
        let top = "suites = []\ntimeout = 1\nsecrets = []\nci-groups = []\nservices = {}\nprerequisites = {}\nruns = {}\n";
        let runs = "keep = 1\nmax-age = '1d'\nmax-size = '1MB'\n";
        fn check<T: DeserializeOwned>(text: &str, keys: &[&str]) {
            let written: Vec<&str> = text
                .lines()
                .map(|l| l.split(" = ").next().unwrap())
                .collect();
            assert_eq!(written, keys);
            toml::from_str::<T>(text).unwrap_or_else(|e| panic!("{e}"));
            let err = toml::from_str::<T>(&format!("{text}surplus = 1\n"))
                .err()
                .unwrap();
            assert!(err.message().contains("unknown field `surplus`"), "{err}");
        }
        check::<RawSuite>(suite, suite_keys());
        check::<RawService>(service, service_keys());
        check::<RawPrerequisite>(prerequisite, prerequisite_keys());
        check::<RawTop>(top, top_keys());
        check::<RawRuns>(runs, runs_keys());
    }

    /// What `to_table` writes reads back as the same entry; absent keys stay absent.
    #[test]
    fn a_suite_written_as_a_table_reads_back_the_same() {
        let suite = RawSuite {
            name: Some(unplaced("a".into())),
            group: Some(unplaced("g".into())),
            dir: Some(unplaced("libs/a b".into())),
            requirements: Some(unplaced(vec![unplaced("pytest==9.2.0".into())])),
            markers: Some("not \"slow\"".into()),
            env: Some(unplaced(
                [(unplaced("MODE".into()), unplaced("x'y".into()))].into(),
            )),
            timeout: Some(unplaced(RawDuration::Text("10m".into()))),
            ..RawSuite::default()
        };
        let text = suite.to_table().unwrap().to_string();
        assert_eq!(
            text,
            "name = \"a\"\ngroup = \"g\"\ndir = \"libs/a b\"\nrequirements = [\"pytest==9.2.0\"]\nmarkers = 'not \"slow\"'\nenv = { MODE = \"x'y\" }\ntimeout = \"10m\"\n"
        );
        let back: RawSuite = toml::from_str(&text).unwrap();
        assert_eq!(back.markers, suite.markers);
        assert_eq!(
            back.env
                .unwrap()
                .get_ref()
                .values()
                .next()
                .unwrap()
                .get_ref(),
            "x'y"
        );
        assert!(back.extras.is_none() && back.retries.is_none());
    }
}
