//! procreg: a process registry for OS processes.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod error;
#[cfg(not(loom))]
mod liveness;
mod sync;
pub(crate) mod table;

pub use error::{Error, Liveness, Result};
