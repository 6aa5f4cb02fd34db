//! One file per command: an `Args` struct (its doc comment is the help) and
//! a `run`.

pub mod daemon;
pub mod images;
pub mod import;
pub mod info;
pub mod inspect;
pub mod rmi;
pub mod system;
pub mod tag;
pub mod version;
