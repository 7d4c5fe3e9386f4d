//! The sinks that turn the runner's events into what people and CI read.

pub mod actions_guard;
pub mod github;
pub mod html;
pub mod junit;
pub mod record;
pub mod run_record;
pub mod terminal;
pub mod trace;
