//! `benches/instructions.rs` with every procreg reader also called from a
//! second function, so LLVM inlines as in a program with more than one
//! lookup site. Run `scripts/instructions`.
#![allow(missing_docs)]

/// Every procreg reader is also called from a second site.
const SECOND_SITE: bool = true;

mod common;

include!("common/instructions.rs");
