//! Opens a segment made of arbitrary bytes and runs every read operation on it.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| procreg_fuzz::segment_bytes(data));
