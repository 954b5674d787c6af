//! Arbitrary API call sequences on a `mem:` registry, checked against a HashMap model.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| procreg_fuzz::api_model(data));
