//! `cargo xtask cache explain [SUITE...]`: whether each suite's next run replays a cached
//! result, and which inputs changed since its newest one; `cargo xtask cache clear`.

use crate::cache::{differences, never_cached, Cache};
use crate::error::Error;
use crate::facts::Facts;
use crate::flags::CacheExplainArgs;
use crate::manifest::Manifest;
use crate::paths::Layout;
use crate::plan::{plan_run, RunOptions};

/// The most changed inputs listed per suite; the rest are counted.
const MAX_LISTED: usize = 20;

pub fn explain(
    layout: &Layout,
    manifest: &Manifest,
    args: &CacheExplainArgs,
) -> anyhow::Result<()> {
    let suites = crate::session::select(manifest, &args.suites)?;
    let uv = crate::toolchain::find_or_install_uv(layout).map_err(anyhow::Error::from)?;
    let info = crate::report::record::RunInfo::gather(layout, Some(&uv), crate::model::now());
    let uv_version = info.uv.map(|t| t.version).unwrap_or_default();
    let facts = Facts::gather(&layout.root, &suites, &[]);
    let plans: Vec<_> = suites
        .iter()
        .map(|s| plan_run(s, layout, &uv, &facts, &RunOptions::default()))
        .collect();
    let cache = Cache::open(layout, &plans);
    for plan in &plans {
        let name = &plan.suite.name;
        if let Some(why) = never_cached(&plan.suite) {
            println!("{name}: never cached: {why}");
            continue;
        }
        if let Some(blocked) = &plan.blocked {
            println!("{name}: not cached now: {}", blocked.detail);
            continue;
        }
        if let Some(why) = cache.unhashable(name) {
            println!("{name}: runs, and is not stored: {why}");
            continue;
        }
        let Some(now) = cache.inputs(plan, &uv_version) else {
            continue;
        };
        let stale = !plan
            .env
            .is_current(&plan.env.inputs(&layout.root, &uv_version));
        if stale {
            println!(
                "{name}: its environment is out of date: the next run builds it again first, and its packages are compared below as they are now"
            );
        }
        let key = now.key();
        let Some(entry) = cache.entry(name, &key).or_else(|| cache.newest(name)) else {
            println!(
                "{name}: runs: no cached result (it has not passed with the cache on since `cargo xtask cache clear`, or its entries were removed)"
            );
            continue;
        };
        if entry.key == key {
            println!(
                "{name}: cached: the next run replays its result from run {} (passed in {:.1}s); --no-cache runs it",
                entry.run_id, entry.duration_secs
            );
            continue;
        }
        let changed = differences(&entry.inputs, &now);
        println!(
            "{name}: runs: {} input{} changed since run {}, its newest cached result:",
            changed.len(),
            if changed.len() == 1 { "" } else { "s" },
            entry.run_id
        );
        for difference in changed.iter().take(MAX_LISTED) {
            println!("  {}: {}", difference.subject, difference.how);
        }
        if changed.len() > MAX_LISTED {
            println!("  ... and {} more", changed.len() - MAX_LISTED);
        }
    }
    Ok(())
}

pub fn clear(layout: &Layout) -> anyhow::Result<()> {
    let dir = Cache::dir(layout);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => println!("xtask: removed the result cache, {}", layout.display(&dir)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            println!(
                "xtask: the result cache is empty ({} does not exist)",
                layout.display(&dir)
            )
        }
        Err(err) => {
            return Err(Error::Usage(format!(
                "removing {}: {err}; remove it by hand",
                dir.display()
            ))
            .into())
        }
    }
    Ok(())
}
