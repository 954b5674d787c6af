//! The Rust twin of `examples/c/bench_lookup.c`: `Registry::lookup_pid` in the
//! same loop over the same keys, so the two figures differ only by the C ABI
//! (argument checks, C strings, status codes). Run both with `scripts/bench-c`.
//!
//! Usage: `cargo run --release --example lookup_loop -- URL [NAMESPACE]`
//! (namespace `bench-ns` by default; a length that is not a multiple of 8
//! exercises the packing of key words that straddle namespace and name).
use procreg::Registry;
use std::hint::black_box;
use std::time::Instant;

const CAPACITY: usize = 4096;
const KEYS: usize = CAPACITY * 3 / 4;
const PASSES: usize = 100;
const BATCHES: usize = 21;

fn splitmix(s: &mut u64) -> u64 {
    *s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *s;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn main() -> Result<(), procreg::Error> {
    let url = std::env::args()
        .nth(1)
        .expect("usage: lookup_loop URL [NAMESPACE]");
    let ns = std::env::args()
        .nth(2)
        .unwrap_or_else(|| "bench-ns".to_owned());
    let ns = ns.as_str();
    let reg = Registry::builder().capacity(CAPACITY).create(&url)?;
    let names: Vec<String> = (0..KEYS).map(|i| format!("h{i:015}")).collect();
    for n in &names {
        reg.register_self(ns, n, b"port=5432")?;
    }
    let mut order: Vec<usize> = (0..KEYS).collect();
    let mut seed = 42;
    for i in (1..KEYS).rev() {
        let j = (splitmix(&mut seed) % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    // One contiguous buffer of probe names, as in the C program.
    let buf: String = order.iter().map(|&i| names[i].as_str()).collect();
    let probes: Vec<&str> = (0..KEYS).map(|i| &buf[i * 16..(i + 1) * 16]).collect();
    let mut per_op = Vec::with_capacity(BATCHES);
    let mut sink = 0u64;
    for _ in 0..BATCHES {
        let t0 = Instant::now();
        for _ in 0..PASSES {
            for p in &probes {
                let pid = black_box(&reg).lookup_pid(black_box(ns), black_box(p))?;
                sink += u64::from(pid.expect("registered"));
            }
        }
        per_op.push(t0.elapsed().as_nanos() as f64 / (PASSES * KEYS) as f64);
    }
    per_op.sort_by(f64::total_cmp);
    println!(
        "rust Registry::lookup_pid: median {:.1} ns/op, best {:.1} ns/op ({BATCHES} batches of {} lookups; sink {})",
        per_op[BATCHES / 2],
        per_op[0],
        PASSES * KEYS,
        sink & 1
    );
    drop(reg);
    Registry::destroy(&url)
}
