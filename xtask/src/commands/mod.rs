//! One module per subcommand.

pub mod bench;
pub mod cache;
pub mod ci;
pub mod doctor;
pub mod durations;
pub mod export;
pub mod init;
pub mod junit;
pub mod list;
pub mod replay;
pub mod runs;
pub mod smoke;
pub mod test;
pub mod trace;
