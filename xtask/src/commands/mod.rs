//! One module per subcommand.

pub mod bench;
pub mod ci;
pub mod doctor;
pub mod init;
pub mod list;
pub mod smoke;
pub mod test;
