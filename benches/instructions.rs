//! Instructions per lookup (callgrind): procreg's readers and the peers over
//! the same keys in the same order. Run `scripts/instructions`; the body and
//! its description are in `benches/common/instructions.rs`.
#![allow(missing_docs)]

/// Every procreg reader is called from one site only in this binary.
const SECOND_SITE: bool = false;

mod common;

include!("common/instructions.rs");
