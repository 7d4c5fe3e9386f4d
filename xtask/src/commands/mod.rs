//! One module per subcommand.

pub mod ci;
pub mod list;
pub mod test;
