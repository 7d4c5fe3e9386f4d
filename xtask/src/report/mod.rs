//! The sinks that turn the runner's events into what people and CI read.

pub mod actions_guard;
pub mod github;
pub mod html;
pub mod junit;
pub mod record;
pub mod terminal;
pub mod trace;

/// run.json as types, in the optimised data crate (xtask/data/src/run_record.rs).
pub use xtask_data::run_record;
