//! Build script: generates the C header from `src/ffi.rs` with cbindgen into
//! `$OUT_DIR/procreg.h`. The committed copy, `include/procreg.h`, is compared
//! with it by `tests/c_abi.rs`; `PROCREG_BLESS_HEADER=1 cargo build` refreshes it.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=src/ffi.rs");
    println!("cargo:rerun-if-env-changed=PROCREG_BLESS_HEADER");
    println!("cargo:rustc-check-cfg=cfg(procreg_loom)");

    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("procreg.h");
    let mut config = cbindgen::Config::from_file(dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is readable and valid");
    let v = |k: &str| std::env::var(k).expect("set by cargo");
    config.after_includes = Some(format!(
        "\n/* Version of the library this header was generated from. */\n\
         #define PROCREG_VERSION_MAJOR {}\n#define PROCREG_VERSION_MINOR {}\n#define PROCREG_VERSION_PATCH {}\n",
        v("CARGO_PKG_VERSION_MAJOR"),
        v("CARGO_PKG_VERSION_MINOR"),
        v("CARGO_PKG_VERSION_PATCH"),
    ));
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/ffi.rs"))
        .generate()
        .expect("cbindgen can read src/ffi.rs");
    bindings.write_to_file(&out);
    if std::env::var_os("PROCREG_BLESS_HEADER").is_some_and(|v| v == "1") {
        bindings.write_to_file(dir.join("include/procreg.h"));
    }
}
