//! What a project that is not locked (no `uv.lock`) declares its tests need, read from its
//! `pyproject.toml`: `[project] dependencies`, the optional-dependency extra and the
//! dependency group (PEP 735, `include-group` followed) that hold pytest (else one named
//! like a test one), with a project's references to its own extras (`pkg[test]`) expanded.
//!
//! A dependency that is another package of the repository (by its normalized project
//! name, or a `[tool.uv.sources]` path or workspace entry) is not installed from the
//! index, where the name may be someone else's package: its own dependencies are added in
//! its place and its code comes in through PYTHONPATH. A `[tool.uv.sources]` git or url
//! entry becomes a direct reference (`name @ git+URL@REV`), as uv would install it.

use std::collections::{BTreeMap, BTreeSet};

use super::Package;

/// The requirements of an unlocked project's tests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Declared {
    /// In the order declared, each once; pytest among them when declared.
    pub requirements: Vec<String>,
    /// The pytest requirement among them, when one is declared.
    pub pytest: Option<String>,
    /// Where they come from, for the decision: "dependencies", "extra `test`",
    /// "dependency group `test`".
    pub from: Vec<String>,
    /// The repository's own packages it depends on (their directories).
    pub local: Vec<String>,
    /// Left out: dependencies of its own that name a local path `init` cannot place.
    pub dropped: Vec<String>,
}

/// A project name as PEP 503 compares them: lower case, runs of `-`, `_`, `.` as one `-`.
pub fn normalized(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// A PEP 508 requirement's normalized name and extras (`a[b, c]>=1` → `a`, `[b, c]`).
fn name_and_extras(requirement: &str) -> (String, Vec<String>) {
    let text = requirement.trim();
    let name: String = text
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    let rest = text[name.len()..].trim_start();
    let extras = rest
        .strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .map(|(inside, _)| {
            inside
                .split(',')
                .map(normalized)
                .filter(|e| !e.is_empty())
                .collect()
        })
        .unwrap_or_default();
    (normalized(&name), extras)
}

fn project(package: &Package) -> Option<&toml::Table> {
    package.pyproject.as_ref()?.get("project")?.as_table()
}

/// The project's normalized name.
pub fn project_name(package: &Package) -> Option<String> {
    project(package)?
        .get("name")
        .and_then(toml::Value::as_str)
        .map(normalized)
}

/// Whether the project computes its dependencies when built (`dynamic`), which cannot be
/// read here.
pub fn is_dynamic(package: &Package) -> bool {
    project(package)
        .and_then(|p| p.get("dynamic"))
        .and_then(toml::Value::as_array)
        .is_some_and(|d| d.iter().any(|v| v.as_str() == Some("dependencies")))
}

fn strings(value: Option<&toml::Value>) -> Vec<String> {
    value
        .and_then(toml::Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(toml::Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn extra_requirements(package: &Package, extra: &str) -> Vec<String> {
    let extras = project(package)
        .and_then(|p| p.get("optional-dependencies"))
        .and_then(toml::Value::as_table);
    let Some(extras) = extras else {
        return Vec::new();
    };
    extras
        .iter()
        .find(|(name, _)| normalized(name) == normalized(extra))
        .map(|(_, value)| strings(Some(value)))
        .unwrap_or_default()
}

/// A dependency group's requirements, its `include-group`s followed (once each).
fn group_requirements(package: &Package, group: &str) -> Vec<String> {
    fn walk(groups: &toml::Table, group: &str, seen: &mut Vec<String>, out: &mut Vec<String>) {
        if seen.iter().any(|g| g == group) {
            return;
        }
        seen.push(group.to_string());
        let Some(items) = groups.get(group).and_then(toml::Value::as_array) else {
            return;
        };
        for item in items {
            match item {
                toml::Value::String(requirement) => out.push(requirement.clone()),
                toml::Value::Table(include) => {
                    if let Some(inner) = include.get("include-group").and_then(toml::Value::as_str)
                    {
                        walk(groups, inner, seen, out);
                    }
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    if let Some(groups) = package
        .pyproject
        .as_ref()
        .and_then(|p| p.get("dependency-groups"))
        .and_then(toml::Value::as_table)
    {
        walk(groups, group, &mut Vec::new(), &mut out);
    }
    out
}

/// The dependency groups uv installs by default (`[tool.uv] default-groups`, else `dev`)
/// that the project has.
fn default_groups(package: &Package) -> Vec<String> {
    let pyproject = package.pyproject.as_ref();
    let Some(groups) = pyproject
        .and_then(|p| p.get("dependency-groups"))
        .and_then(toml::Value::as_table)
    else {
        return Vec::new();
    };
    let named = pyproject
        .and_then(|p| p.get("tool"))
        .and_then(|t| t.get("uv"))
        .and_then(|u| u.get("default-groups"));
    match named {
        Some(toml::Value::String(all)) if all == "all" => groups.keys().cloned().collect(),
        Some(toml::Value::Array(_)) => strings(named)
            .into_iter()
            .filter(|g| groups.contains_key(g))
            .collect(),
        _ => groups.keys().filter(|g| *g == "dev").cloned().collect(),
    }
}

/// The first of the project's extras (or groups) named like a test one.
fn test_named(names: impl Iterator<Item = String>) -> Option<String> {
    let names: Vec<String> = names.collect();
    ["test", "tests", "testing", "dev"]
        .iter()
        .find_map(|t| names.iter().find(|n| normalized(n) == *t).cloned())
}

/// `[tool.uv.sources]` of the project: name → its table.
fn sources(package: &Package) -> BTreeMap<String, toml::Table> {
    package
        .pyproject
        .as_ref()
        .and_then(|p| p.get("tool"))
        .and_then(|t| t.get("uv"))
        .and_then(|u| u.get("sources"))
        .and_then(toml::Value::as_table)
        .map(|table| {
            table
                .iter()
                .filter_map(|(name, v)| Some((normalized(name), v.as_table()?.clone())))
                .collect()
        })
        .unwrap_or_default()
}

/// What `package` (not locked) declares its tests need; `None` when it has no `[project]`
/// table. `locals` are the repository's packages by normalized project name.
pub fn declared(package: &Package, locals: &BTreeMap<String, &Package>) -> Option<Declared> {
    project(package)?;
    let mut declared = Declared::default();
    let mut lists: Vec<Vec<String>> = Vec::new();
    let dependencies = strings(project(package).and_then(|p| p.get("dependencies")));
    if !dependencies.is_empty() {
        declared.from.push("dependencies".into());
        lists.push(dependencies);
    }
    let extra = super::pytest_extras(package)
        .first()
        .map(|(e, _)| e.clone())
        .or_else(|| {
            test_named(
                project(package)
                    .and_then(|p| p.get("optional-dependencies"))
                    .and_then(toml::Value::as_table)
                    .map(|t| t.keys().cloned().collect::<Vec<_>>())
                    .unwrap_or_default()
                    .into_iter(),
            )
        });
    if let Some(extra) = extra {
        declared.from.push(format!("extra `{extra}`"));
        lists.push(extra_requirements(package, &extra));
    }
    let group = super::pytest_groups(package)
        .first()
        .map(|(g, _)| g.clone())
        .or_else(|| {
            test_named(
                package
                    .pyproject
                    .as_ref()
                    .and_then(|p| p.get("dependency-groups"))
                    .and_then(toml::Value::as_table)
                    .map(|t| t.keys().cloned().collect::<Vec<_>>())
                    .unwrap_or_default()
                    .into_iter(),
            )
        });
    if let Some(group) = &group {
        declared.from.push(format!("dependency group `{group}`"));
        lists.push(group_requirements(package, group));
    }
    // As `uv run` and `uv sync` would, the default groups too.
    for default in default_groups(package) {
        if Some(&default) != group.as_ref() {
            declared.from.push(format!("default group `{default}`"));
            lists.push(group_requirements(package, &default));
        }
    }
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    seen.insert((package.dir.clone(), String::new()));
    for list in lists {
        add(package, &list, locals, &mut seen, &mut declared);
    }
    declared.pytest = declared
        .requirements
        .iter()
        .find(|r| super::is_pytest(r))
        .cloned();
    Some(declared)
}

/// Adds `requirements` of `package` to `declared`: its own extras and local packages
/// expanded (each (package, extra) once).
fn add(
    package: &Package,
    requirements: &[String],
    locals: &BTreeMap<String, &Package>,
    seen: &mut BTreeSet<(String, String)>,
    declared: &mut Declared,
) {
    let own = project_name(package);
    let sources = sources(package);
    for requirement in requirements {
        let (name, extras) = name_and_extras(requirement);
        if name.is_empty() {
            continue;
        }
        if Some(&name) == own.as_ref() {
            for extra in extras {
                if seen.insert((package.dir.clone(), extra.clone())) {
                    let inner = extra_requirements(package, &extra);
                    add(package, &inner, locals, seen, declared);
                }
            }
            continue;
        }
        let source = sources.get(&name);
        let is_local_source =
            source.is_some_and(|s| s.contains_key("path") || s.contains_key("workspace"));
        if let Some(local) = locals.get(&name) {
            if !declared.local.contains(&local.dir) {
                declared.local.push(local.dir.clone());
            }
            let mut wanted = vec![String::new()];
            wanted.extend(extras);
            for extra in wanted {
                if seen.insert((local.dir.clone(), extra.clone())) {
                    let inner = if extra.is_empty() {
                        strings(project(local).and_then(|p| p.get("dependencies")))
                    } else {
                        extra_requirements(local, &extra)
                    };
                    add(local, &inner, locals, seen, declared);
                }
            }
            continue;
        }
        if is_local_source {
            declared.dropped.push(requirement.clone());
            continue;
        }
        let direct = source.and_then(|s| {
            let extras = if extras.is_empty() {
                String::new()
            } else {
                format!("[{}]", extras.join(","))
            };
            if let Some(git) = s.get("git").and_then(toml::Value::as_str) {
                let at = ["rev", "tag", "branch"]
                    .iter()
                    .find_map(|k| s.get(*k).and_then(toml::Value::as_str))
                    .map(|r| format!("@{r}"))
                    .unwrap_or_default();
                Some(format!("{name}{extras} @ git+{git}{at}"))
            } else {
                s.get("url")
                    .and_then(toml::Value::as_str)
                    .map(|url| format!("{name}{extras} @ {url}"))
            }
        });
        let requirement = direct.unwrap_or_else(|| requirement.trim().to_string());
        if !declared.requirements.contains(&requirement) {
            declared.requirements.push(requirement);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(dir: &str, pyproject: &str) -> Package {
        Package {
            dir: dir.into(),
            pyproject: Some(pyproject.parse().unwrap()),
            ..Package::default()
        }
    }

    #[test]
    fn names_compare_as_pep_503_says() {
        assert_eq!(normalized("Shared_Lib.x"), "shared-lib-x");
        assert_eq!(
            name_and_extras("Foo_Bar[ A ,b]>=1; python_version>'3'"),
            ("foo-bar".into(), vec!["a".into(), "b".into()])
        );
    }

    /// Dependencies, the extra that holds pytest (with the project's own other extra it
    /// names), a local package replaced by its own dependencies, and uv's sources.
    #[test]
    fn an_unlocked_project_declares_what_its_tests_need() {
        let api = package(
            "services/api",
            r#"
[project]
name = "api"
dependencies = ["six==1.17.0", "Shared-Lib", "tool", "vendored"]
[project.optional-dependencies]
test = ["pytest>=8", "api[fast]"]
fast = ["orjson"]
[tool.uv.sources]
tool = { git = "https://example.com/tool", tag = "v1" }
vendored = { path = "../../vendor/vendored" }
"#,
        );
        let shared = package(
            "shared/lib",
            "[project]\nname = \"shared_lib\"\ndependencies = [\"attrs\", \"six==1.17.0\"]\n",
        );
        let locals = BTreeMap::from([("shared-lib".to_string(), &shared)]);
        let found = declared(&api, &locals).unwrap();
        assert_eq!(
            found.requirements,
            [
                "six==1.17.0",
                "attrs",
                "tool @ git+https://example.com/tool@v1",
                "pytest>=8",
                "orjson"
            ]
        );
        assert_eq!(found.pytest.as_deref(), Some("pytest>=8"));
        assert_eq!(found.from, ["dependencies", "extra `test`"]);
        assert_eq!(found.local, ["shared/lib"]);
        assert_eq!(found.dropped, ["vendored"]);
    }

    /// pytest in a group that is not a default one: that group, and the default groups
    /// (`[tool.uv] default-groups`), as `uv run --group test` installs them.
    #[test]
    fn the_default_groups_come_with_the_group_that_holds_pytest() {
        let lib = package(
            "lib",
            "[project]\nname = \"lib\"\ndependencies = [\"six\"]\n[dependency-groups]\ntest = [\"pytest\"]\nlint = [\"ruff\"]\nplugins = [\"pytest-timeout\"]\n[tool.uv]\ndefault-groups = [\"plugins\"]\n",
        );
        let found = declared(&lib, &BTreeMap::new()).unwrap();
        assert_eq!(found.requirements, ["six", "pytest", "pytest-timeout"]);
        assert_eq!(
            found.from,
            [
                "dependencies",
                "dependency group `test`",
                "default group `plugins`"
            ]
        );
    }

    #[test]
    fn a_dependency_group_is_read_through_its_includes() {
        let lib = package(
            "lib",
            "[project]\nname = \"lib\"\ndependencies = []\n[dependency-groups]\ntest = [\"pytest==9.2.0\", \"six\"]\ndev = [{include-group = \"test\"}, \"ruff\"]\n",
        );
        let found = declared(&lib, &BTreeMap::new()).unwrap();
        assert_eq!(found.requirements, ["pytest==9.2.0", "six", "ruff"]);
        assert_eq!(found.from, ["dependency group `dev`"]);
        assert!(found.pytest.is_some());
        // No [project] table: nothing declared.
        assert_eq!(declared(&Package::default(), &BTreeMap::new()), None);
    }
}
