//! Reliability suite, part 4: the two fuzz targets of `fuzz/` (cargo-fuzz),
//! driven here by proptest on the stable toolchain for a time budget, so CI
//! runs them without cargo-fuzz. The target code is the same file.
//!
//! ```text
//! cargo test --release --test reliability_fuzz -- --nocapture
//! PROCREG_SOAK=1 cargo test --release --test reliability_fuzz -- --nocapture   # 10 min each
//! ```

#[path = "../fuzz/src/lib.rs"]
mod fuzz_targets;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::time::{Duration, Instant};

/// Runs `target` on random byte strings for the budget; a failure is shrunk
/// by proptest and reported with its minimal input.
fn drive(name: &str, max_len: usize, target: fn(&[u8])) {
    let secs = std::env::var("PROCREG_SOAK_FUZZ_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if std::env::var("PROCREG_SOAK").is_ok_and(|v| v == "1") {
            600
        } else {
            15
        });
    let budget = Duration::from_secs(secs);
    let started = Instant::now();
    let mut execs = 0u64;
    // Cases per batch (small under Miri: PROCREG_SOAK_FUZZ_CASES=4).
    let cases: u32 = std::env::var("PROCREG_SOAK_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let strategy = proptest::collection::vec(any::<u8>(), 0..max_len);
    let execs_cell = std::cell::Cell::new(0u64);
    let mut round = 0u64;
    while round == 0 || started.elapsed() < budget {
        // A fresh runner (new random seed) per batch of cases; at least one batch.
        round += 1;
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            rng_seed: proptest::test_runner::RngSeed::Fixed(
                round ^ (started.elapsed().as_nanos() as u64) << 16,
            ),
            ..Config::default()
        });
        let r = runner.run(&strategy, |data| {
            execs_cell.set(execs_cell.get() + 1);
            target(&data);
            Ok(())
        });
        if let Err(e) = r {
            panic!("{name}: {e}");
        }
    }
    execs += execs_cell.get();
    let s = started.elapsed().as_secs_f64();
    println!(
        "fuzz (proptest driver) {name}: {execs} execs in {s:.1} s ({:.0}/s), 0 failures",
        execs as f64 / s
    );
}

#[test]
fn fuzz_segment_bytes_with_proptest() {
    drive("segment_bytes", 1024, fuzz_targets::segment_bytes);
}

#[test]
fn fuzz_api_model_with_proptest() {
    drive("api_model", 2048, fuzz_targets::api_model);
}
