//! The pieces of the `procreg` command. This is part of the binary only (not of
//! the library): `src/main.rs` parses arguments and dispatches here.

pub mod commands;
pub mod demo;
pub mod error;
pub mod fmt;
pub mod groups;
pub mod layout;
pub mod put;
pub mod registries;
pub mod report;
