//! Build script. The C ABI work will generate `include/procreg.h` with cbindgen
//! here (into OUT_DIR, compared with the committed copy by a test); until then
//! it only records what should trigger a rebuild.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-check-cfg=cfg(loom)");
}
