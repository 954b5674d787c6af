//! The C ABI from C: the committed header is fresh and matches Cargo.toml, and
//! the C programs under `examples/c/` and `tests/c/` compile with strict flags
//! against it (shared and static library), run, and say what they should —
//! also under valgrind, and the header compiles as C++.
mod common;

use common::SegGuard;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// Rust's staticlib needs these system libraries (`--print native-static-libs`).
const STATIC_LIBS: &[&str] = &[
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
];
const C_FLAGS: &[&str] = &["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Link {
    Shared,
    Static,
}

/// The directory holding `libprocreg.so` and `libprocreg.a` of this build:
/// `deps/` (which `cargo test` rebuilds) unless the profile directory holds a
/// newer pair (a `cargo build` after it). Preferring the profile directory
/// blindly linked a stale library left by an earlier `cargo build`.
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let age = |dir: &Path| -> Option<std::time::SystemTime> {
        let so = std::fs::metadata(dir.join("libprocreg.so"))
            .ok()?
            .modified()
            .ok()?;
        let a = std::fs::metadata(dir.join("libprocreg.a"))
            .ok()?
            .modified()
            .ok()?;
        Some(so.min(a))
    };
    [deps, deps.parent().unwrap()]
        .into_iter()
        .filter_map(|d| Some((age(d)?, d)))
        .max_by_key(|(t, _)| *t)
        .map(|(_, d)| d.to_path_buf())
        .unwrap_or_else(|| panic!("libprocreg.so/.a not found next to {}", exe.display()))
}

/// The SONAME build.rs gives the shared library (`libprocreg.so.0.<minor>`
/// while the major version is 0).
fn soname() -> String {
    match env!("CARGO_PKG_VERSION_MAJOR") {
        "0" => format!("libprocreg.so.0.{}", env!("CARGO_PKG_VERSION_MINOR")),
        major => format!("libprocreg.so.{major}"),
    }
}

/// A directory where this build's `libprocreg.so` is also found under its
/// SONAME, the name a program linked with it asks the loader for (the links
/// an install makes; cargo leaves only `libprocreg.so`).
fn shared_lib_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = out_dir().join("lib");
        std::fs::create_dir_all(&dir).unwrap();
        let so = lib_dir().join("libprocreg.so");
        for name in ["libprocreg.so".to_owned(), soname()] {
            let link = dir.join(name);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&so, &link).unwrap();
        }
        dir
    })
    .clone()
}

fn out_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("c-abi-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run_checked(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Compiles `source` (relative to the repo) into an executable, once per link kind.
fn build(source: &str, link: Link) -> PathBuf {
    static LOCK: OnceLock<std::sync::Mutex<()>> = OnceLock::new();
    let _g = LOCK.get_or_init(Default::default).lock().unwrap();
    let stem = Path::new(source).file_stem().unwrap().to_str().unwrap();
    let exe = out_dir().join(format!("{stem}-{link:?}"));
    if exe.exists() {
        return exe;
    }
    let mut cmd = Command::new("cc");
    cmd.args(C_FLAGS)
        .arg(format!("-I{ROOT}/include"))
        .arg(Path::new(ROOT).join(source))
        .arg("-o")
        .arg(&exe);
    match link {
        Link::Shared => {
            let lib = shared_lib_dir();
            cmd.arg(format!("-L{}", lib.display()))
                .arg("-lprocreg")
                .arg(format!("-Wl,-rpath,{}", lib.display()))
                // DT_RPATH, searched before LD_LIBRARY_PATH (which cargo sets
                // to directories that may hold an older libprocreg.so).
                .arg("-Wl,--disable-new-dtags")
                .arg("-lpthread");
        }
        Link::Static => {
            cmd.arg(lib_dir().join("libprocreg.a")).args(STATIC_LIBS);
        }
    }
    run_checked(&mut cmd, &format!("cc {source} ({link:?})"));
    exe
}

/// The program run on `url` removed its registry: nothing is left in
/// /dev/shm (or wherever the url points).
fn assert_removed(url: &str) {
    match procreg::Registry::builder().open(url) {
        Err(procreg::Error::NoSuchRegistry(_)) => {}
        other => panic!("the program left its registry {url} behind: {other:?}"),
    }
}

fn stdout_of(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

// ---- the header ---------------------------------------------------------------

fn committed_header() -> String {
    std::fs::read_to_string(Path::new(ROOT).join("include/procreg.h")).unwrap()
}

/// Without the `c-header` feature build.rs generates no header (and does not
/// compile cbindgen): nothing to compare.
#[cfg(feature = "c-header")]
#[test]
fn committed_header_is_what_build_rs_generates() {
    let fresh = std::fs::read_to_string(concat!(env!("OUT_DIR"), "/procreg.h")).unwrap();
    assert!(
        committed_header() == fresh,
        "include/procreg.h is stale (src/ffi/ or cbindgen.toml changed). Refresh it with:\n\n    \
         PROCREG_BLESS_HEADER=1 cargo build\n"
    );
}

#[test]
fn header_versions_match_cargo_toml_and_every_function_is_documented() {
    let h = committed_header();
    for (part, v) in [
        ("MAJOR", env!("CARGO_PKG_VERSION_MAJOR")),
        ("MINOR", env!("CARGO_PKG_VERSION_MINOR")),
        ("PATCH", env!("CARGO_PKG_VERSION_PATCH")),
    ] {
        let line = format!("#define PROCREG_VERSION_{part} {v}\n");
        assert!(h.contains(&line), "header lacks {line:?}");
    }
    assert!(h.contains("Generated by cbindgen"), "says it is generated");
    assert!(
        h.starts_with("#ifndef PROCREG_H\n#define PROCREG_H\n"),
        "include guard"
    );
    assert!(h.contains("extern \"C\" {"), "C++ guards");
    // Every exported function is declared, preceded by a C comment.
    let exported: Vec<String> = exported_functions().into_iter().map(|(f, _)| f).collect();
    assert!(exported.len() >= 30, "{exported:?}");
    let lines: Vec<&str> = h.lines().collect();
    for f in exported {
        let at = lines
            .iter()
            .position(|l| !l.starts_with(' ') && l.contains(&format!("{f}(")))
            .unwrap_or_else(|| panic!("{f} is not declared in the header"));
        assert_eq!(lines[at - 1].trim(), "*/", "{f} is not documented");
    }
}

/// `(name, body)` of every `#[unsafe(no_mangle)]` function under `src/ffi/`.
fn exported_functions() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let dir = Path::new(ROOT).join("src/ffi");
    for f in std::fs::read_dir(&dir).unwrap() {
        let src = std::fs::read_to_string(f.unwrap().path()).unwrap();
        for item in src.split("#[unsafe(no_mangle)]").skip(1) {
            let sig = &item[item.find("fn ").unwrap() + 3..];
            let name = sig[..sig.find('(').unwrap()].to_string();
            let body = &sig[sig.find('{').unwrap() + 1..];
            out.push((name, body.trim_start().to_string()));
        }
    }
    out
}

/// The C ABI is a client of the public Rust API: no path into the crate's
/// private modules (backend, table, segment, the facade's own module...).
#[test]
fn ffi_uses_only_the_public_rust_api() {
    let private = [
        "backend",
        "table",
        "segment",
        "registry",
        "types",
        "watch",
        "host",
        "liveness",
        "telemetry",
        "sync",
        "error",
    ];
    for f in std::fs::read_dir(Path::new(ROOT).join("src/ffi")).unwrap() {
        let path = f.unwrap().path();
        let src = std::fs::read_to_string(&path).unwrap();
        for m in private {
            for pat in [format!("crate::{m}::"), format!("crate::{m};")] {
                assert!(
                    !src.contains(&pat),
                    "{} reaches below the facade: {pat}",
                    path.display()
                );
            }
        }
    }
}

/// Every exported body is one `ffi!` (the panic boundary of src/ffi/panic.rs):
/// the signature stays outside it because cbindgen does not expand macros.
#[test]
fn every_exported_function_body_is_the_panic_boundary() {
    let fns = exported_functions();
    assert!(fns.len() >= 30);
    for (name, body) in fns {
        assert!(
            body.starts_with("ffi!("),
            "{name}'s body does not start with ffi!( (src/ffi/panic.rs): {}",
            &body[..body.len().min(80)]
        );
    }
}

#[test]
fn header_compiles_and_links_as_cpp17() {
    let dir = out_dir();
    let src = dir.join("check.cpp");
    std::fs::write(
        &src,
        "#include \"procreg.h\"\n#include <cstdio>\nint main() {\n  procreg_options o;\n  o.struct_size = sizeof o;\n  \
         if (procreg_options_default(&o) != PROCREG_OK) return 1;\n  procreg *r = nullptr;\n  \
         if (procreg_open(\"mem:\", &o, &r) != PROCREG_OK) return 2;\n  \
         if (procreg_register_self(r, \"cpp\", \"x\", nullptr, 0) != PROCREG_OK) return 3;\n  \
         uint32_t pid = 0;\n  procreg_status st = procreg_lookup_pid(r, \"cpp\", \"x\", &pid);\n  \
         procreg_close(r);\n  std::printf(\"%s\\n\", procreg_strerror(st));\n  return st == PROCREG_OK ? 0 : 4;\n}\n",
    )
    .unwrap();
    let exe = dir.join("check-cpp");
    let lib = shared_lib_dir();
    run_checked(
        Command::new("c++")
            .args(["-std=c++17", "-Wall", "-Wextra", "-Werror"])
            .arg(format!("-I{ROOT}/include"))
            .arg(&src)
            .arg("-o")
            .arg(&exe)
            .arg(format!("-L{}", lib.display()))
            .arg("-lprocreg")
            .arg(format!("-Wl,-rpath,{}", lib.display()))
            .arg("-Wl,--disable-new-dtags"),
        "c++ -std=c++17",
    );
    let out = run_checked(&mut Command::new(&exe), "the C++ program");
    assert_eq!(stdout_of(&out), "success\n");
}

// ---- C programs -------------------------------------------------------------------

fn abi_checks(link: Link) {
    let g = SegGuard::new(&common::shm_url(&format!("c-abi-{link:?}"))).destroyed_by_test();
    let out = run_checked(
        Command::new(build("tests/c/abi_checks.c", link)).arg(&g.url),
        "abi_checks",
    );
    let s = stdout_of(&out);
    let n: usize = s
        .trim()
        .strip_prefix("abi checks passed: ")
        .unwrap_or_else(|| panic!("unexpected output {s:?}"))
        .parse()
        .unwrap();
    assert!(n >= 180, "only {n} checks ran");
    assert_removed(&g.url);
}

#[test]
fn abi_checks_pass_with_the_shared_library() {
    abi_checks(Link::Shared);
}

#[test]
fn abi_checks_pass_with_the_static_library() {
    abi_checks(Link::Static);
}

/// `tests/c/groups.c`: the group calls and `procreg_select` from C (a round
/// trip, a forked member waking the parent's `procreg_wait_for_members`,
/// every bad input's status and message, version-1 callers of
/// `procreg_entry_view` and `procreg_event`, the member flag of list views
/// and watch events). Returns its stdout.
fn groups(link: Link, under: &[&str]) -> String {
    let g = SegGuard::new(&common::shm_url(&format!(
        "c-groups-{link:?}-{}",
        under.len()
    )))
    .destroyed_by_test();
    let exe = build("tests/c/groups.c", link);
    let mut cmd = match under.split_first() {
        Some((tool, args)) => {
            let mut c = Command::new(tool);
            c.args(args).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    let out = run_checked(cmd.arg(&g.url), "groups");
    let s = stdout_of(&out);
    let n: usize = s
        .trim()
        .strip_prefix("group checks passed: ")
        .unwrap_or_else(|| panic!("unexpected output {s:?}"))
        .parse()
        .unwrap();
    assert!(n >= 170, "only {n} checks ran");
    assert_removed(&g.url);
    s
}

#[test]
fn group_calls_work_from_c_with_the_shared_library() {
    groups(Link::Shared, &[]);
}

#[test]
fn group_calls_work_from_c_with_the_static_library() {
    groups(Link::Static, &[]);
}

fn multiprocess(link: Link) {
    let g = SegGuard::new(&common::shm_url(&format!("c-mp-{link:?}"))).destroyed_by_test();
    let out = run_checked(
        Command::new(build("examples/c/multiprocess.c", link)).arg(&g.url),
        "multiprocess",
    );
    let s = stdout_of(&out);
    for i in 0..4 {
        assert!(
            s.contains(&format!("found worker-{i} pid="))
                && s.contains(&format!("metadata=index={i} host=")),
            "{s}"
        );
    }
    for line in [
        "listed 4 workers",
        "killed worker-0 with SIGKILL",
        "sweep reclaimed 1",
        "worker-0 after sweep: key not registered",
        "after stopping the rest: sweep reclaimed 3, 0 left",
        "removed the registry",
    ] {
        assert!(s.contains(line), "missing {line:?} in:\n{s}");
    }
    assert_removed(&g.url);
}

/// An example that finds its registry already there joins it and leaves it
/// to its creator.
#[test]
fn c_multiprocess_example_leaves_a_registry_it_did_not_create() {
    let g = SegGuard::new(&common::shm_url("c-mp-joined"));
    let reg = procreg::Registry::builder().create(&g.url).unwrap();
    reg.register_self("mine", "keep", b"").unwrap();
    let out = run_checked(
        Command::new(build("examples/c/multiprocess.c", Link::Shared)).arg(&g.url),
        "multiprocess",
    );
    assert!(!stdout_of(&out).contains("removed the registry"));
    let again = procreg::Registry::builder().open(&g.url).unwrap();
    assert_eq!(
        again.lookup_pid("mine", "keep").unwrap(),
        Some(std::process::id())
    );
}

#[test]
fn c_multiprocess_example_with_the_shared_library() {
    multiprocess(Link::Shared);
}

#[test]
fn c_multiprocess_example_with_the_static_library() {
    multiprocess(Link::Static);
}

#[test]
fn c_hello_registers_waits_for_ctrl_c_unregisters_and_removes_its_registry() {
    let g = SegGuard::new(&common::shm_url("c-hello")).destroyed_by_test();
    let mut child = Command::new(build("examples/c/hello.c", Link::Shared))
        .arg(&g.url)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // If an assertion below fails, do not leave the program waiting for a
    // Ctrl-C that never comes.
    struct KillOnPanic(u32);
    impl Drop for KillOnPanic {
        fn drop(&mut self) {
            if std::thread::panicking() {
                let _ = Command::new("kill").arg(self.0.to_string()).status();
            }
        }
    }
    let _guard = KillOnPanic(child.id());
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Some(Ok(l)) = lines.next() {
        let done = l == "waiting for Ctrl-C";
        seen.push(l);
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "no prompt: {seen:?}");
    }
    let text = seen.join("\n");
    let pid = child.id();
    assert!(
        text.contains(&format!("registered examples/hello-c as pid {pid}")),
        "{text}"
    );
    assert!(text.contains(&format!("lookup_pid: {pid}")), "{text}");
    assert!(text.contains("metadata=port=8080"), "{text}");
    assert!(text.contains("lookup: pid="), "{text}");
    assert!(!text.contains("host= "), "every host is named: {text}");
    assert!(text.contains("listed 1 entries"), "{text}");
    // While it waits, the entry is visible from Rust.
    let reg = procreg::Registry::builder().open(&g.url).unwrap();
    assert_eq!(reg.lookup_pid("examples", "hello-c").unwrap(), Some(pid));
    run_checked(
        Command::new("kill").args(["-INT", &pid.to_string()]),
        "kill -INT",
    );
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}: {rest:?}");
    assert_eq!(
        rest,
        [
            "unregistered; lookup now says: key not registered",
            "removed the registry"
        ]
    );
    assert_eq!(reg.lookup_pid("examples", "hello-c").unwrap(), None);
    assert_removed(&g.url);
}

/// valgrind finds no invalid access and no leak in the C programs. It must be
/// installed where `PROCREG_REQUIRE_VALGRIND=1` (CI); elsewhere it is skipped
/// with a message when absent.
#[test]
fn c_programs_are_clean_under_valgrind() {
    if !have_valgrind() {
        return;
    }
    let vg = [
        "-q",
        "--error-exitcode=97",
        "--leak-check=full",
        "--errors-for-leak-kinds=definite,indirect",
    ];
    let g = SegGuard::new(&common::shm_url("c-vg-abi")).destroyed_by_test();
    let out = run_checked(
        Command::new("valgrind")
            .args(vg)
            .arg(build("tests/c/abi_checks.c", Link::Shared))
            .arg(&g.url),
        "valgrind abi_checks",
    );
    assert!(stdout_of(&out).starts_with("abi checks passed: "));
    let g = SegGuard::new(&common::shm_url("c-vg-mp")).destroyed_by_test();
    let out = run_checked(
        Command::new("valgrind")
            .args(vg)
            .arg(build("examples/c/multiprocess.c", Link::Shared))
            .arg(&g.url),
        "valgrind multiprocess",
    );
    assert!(stdout_of(&out).contains("sweep reclaimed 1"));
    assert_removed(&g.url);
    let mut vg_args = vec!["valgrind"];
    vg_args.extend(vg);
    groups(Link::Shared, &vg_args);
}

/// Whether valgrind can run here; panics where it is required
/// (`PROCREG_REQUIRE_VALGRIND=1`, CI) but absent.
fn have_valgrind() -> bool {
    if Command::new("valgrind").arg("--version").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var_os("PROCREG_REQUIRE_VALGRIND").is_none(),
        "valgrind is required (PROCREG_REQUIRE_VALGRIND) but not installed"
    );
    eprintln!("valgrind not installed: skipping (install it to run this test)");
    false
}

/// Heap allocations of one run of `tests/c/no_alloc.c` doing `rounds` rounds
/// of misses and hits, as valgrind's summary counts them.
fn allocations_of_no_alloc_rounds(rounds: u32) -> u64 {
    let g = SegGuard::new(&common::shm_url(&format!("c-noalloc-{rounds}"))).destroyed_by_test();
    let out = run_checked(
        Command::new("valgrind")
            .args(["--error-exitcode=97"])
            .arg(build("tests/c/no_alloc.c", Link::Shared))
            .arg(&g.url)
            .arg(rounds.to_string()),
        "valgrind no_alloc",
    );
    assert_eq!(stdout_of(&out), format!("{rounds} rounds\n"));
    assert_removed(&g.url);
    let err = String::from_utf8_lossy(&out.stderr);
    let n = err
        .split("total heap usage: ")
        .nth(1)
        .and_then(|r| r.split(" allocs").next())
        .unwrap_or_else(|| panic!("no heap summary from valgrind:\n{err}"));
    n.replace(',', "").parse().unwrap()
}

/// A miss (procreg_lookup_pid, procreg_lookup, procreg_lookup_metadata,
/// procreg_unregister) and a hit (the three lookups) on `shm:` allocate
/// nothing: 1000 rounds make as many heap allocations as 10. (A miss used to
/// build and format a library error: seven allocations each.)
#[test]
fn c_misses_and_hits_allocate_nothing() {
    if !have_valgrind() {
        return;
    }
    let few = allocations_of_no_alloc_rounds(10);
    let many = allocations_of_no_alloc_rounds(1000);
    assert_eq!(
        many,
        few,
        "990 more rounds made {} more heap allocations ({:.2} per round of 5 misses and 3 hits)",
        many as i64 - few as i64,
        (many as f64 - few as f64) / 990.0
    );
}

/// `pkg-config` of `args` for the prefix `p`.
fn pkg_config(p: &Path, args: &[&str]) -> Vec<String> {
    let out = run_checked(
        Command::new("pkg-config")
            .env("PKG_CONFIG_PATH", p.join("lib/pkgconfig"))
            .args(args)
            .arg("procreg"),
        "pkg-config (install it: apt-get install pkg-config)",
    );
    stdout_of(&out)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// `readelf -d` of `file`.
fn dynamic_section(file: &Path) -> String {
    stdout_of(&run_checked(
        Command::new("readelf").arg("-d").arg(file),
        "readelf -d (binutils)",
    ))
}

/// `scripts/install-c --prefix P` (given this build's libraries, so nothing
/// is compiled) installs the header, the shared library under its SONAME
/// with its links, the static library and `procreg.pc`; a C program then
/// builds with `pkg-config --cflags --libs procreg` alone (shared) or with
/// `--static` (static), and runs.
#[test]
fn installed_library_has_a_soname_and_programs_build_with_pkg_config() {
    let prefix = out_dir().join("prefix");
    let _ = std::fs::remove_dir_all(&prefix);
    let out = run_checked(
        Command::new("bash")
            .arg(Path::new(ROOT).join("scripts/install-c"))
            .arg("--prefix")
            .arg(&prefix)
            .arg("--from")
            .arg(lib_dir()),
        "scripts/install-c",
    );
    let version = env!("CARGO_PKG_VERSION");
    assert!(stdout_of(&out).contains(&format!("installed procreg {version} ({})", soname())));
    let lib = prefix.join("lib");
    let real = format!("libprocreg.so.{version}");
    assert_eq!(
        std::fs::read_to_string(prefix.join("include/procreg.h")).unwrap(),
        committed_header()
    );
    assert!(lib.join("libprocreg.a").is_file());
    assert_eq!(
        std::fs::read_link(lib.join(soname())).unwrap(),
        Path::new(&real)
    );
    assert_eq!(
        std::fs::read_link(lib.join("libprocreg.so")).unwrap(),
        Path::new(&soname())
    );
    let dynamic = dynamic_section(&lib.join(&real));
    assert!(
        dynamic.contains(&format!("Library soname: [{}]", soname())),
        "{dynamic}"
    );

    // Shared: the flags pkg-config gives, nothing else; the loader finds
    // the library by its SONAME through LD_LIBRARY_PATH (a system prefix
    // needs nothing: ldconfig).
    let flags = pkg_config(&prefix, &["--cflags", "--libs"]);
    assert!(flags.contains(&"-lprocreg".to_owned()), "{flags:?}");
    let inside = |f: &String| f.starts_with("-l") || Path::new(&f[2..]).starts_with(&prefix);
    assert!(
        flags.iter().all(inside),
        "paths outside the prefix: {flags:?}"
    );
    let exe = out_dir().join("no_alloc-installed");
    run_checked(
        Command::new("cc")
            .args(C_FLAGS)
            .arg(Path::new(ROOT).join("tests/c/no_alloc.c"))
            .args(&flags)
            .arg("-o")
            .arg(&exe),
        "cc with pkg-config flags",
    );
    let dynamic = dynamic_section(&exe);
    assert!(
        dynamic.contains(&format!("Shared library: [{}]", soname())),
        "{dynamic}"
    );
    assert!(
        !dynamic.contains("RPATH") && !dynamic.contains("RUNPATH"),
        "{dynamic}"
    );
    let g = SegGuard::new(&common::shm_url("c-installed")).destroyed_by_test();
    let out = run_checked(
        Command::new(&exe)
            .env("LD_LIBRARY_PATH", &lib)
            .args([&g.url, "3"]),
        "the program built against the installed library",
    );
    assert_eq!(stdout_of(&out), "3 rounds\n");
    assert_removed(&g.url);

    // Static: the archive, and the system libraries of `--static`.
    let cflags = pkg_config(&prefix, &["--cflags"]);
    let libs: Vec<String> = pkg_config(&prefix, &["--static", "--libs-only-l"])
        .into_iter()
        .filter(|l| l != "-lprocreg")
        .collect();
    assert!(libs.contains(&"-lpthread".to_owned()), "{libs:?}");
    let exe = out_dir().join("no_alloc-installed-static");
    run_checked(
        Command::new("cc")
            .args(C_FLAGS)
            .args(&cflags)
            .arg(Path::new(ROOT).join("tests/c/no_alloc.c"))
            .arg(lib.join("libprocreg.a"))
            .args(&libs)
            .arg("-o")
            .arg(&exe),
        "cc with the installed static library",
    );
    assert!(!dynamic_section(&exe).contains("libprocreg"));
    let out = run_checked(
        Command::new(&exe).args([&g.url, "3"]),
        "the program linked statically",
    );
    assert_eq!(stdout_of(&out), "3 rounds\n");
    assert_removed(&g.url);
}

/// The C benchmark of BENCHMARKS.md (run by `scripts/bench-c`) keeps compiling.
#[test]
fn c_benchmark_compiles_with_strict_flags() {
    assert!(build("examples/c/bench_lookup.c", Link::Static).exists());
}

/// A C program on `etcd://` (libprocreg built with `--features etcd`, the
/// cluster named by PROCREG_ETCD_ENDPOINTS): `procreg_open` connects,
/// registers, looks up (pid and metadata), lists, reads stats and health with
/// their etcd part and without a table part, unregisters; a dead endpoint
/// gives PROCREG_E_UNAVAILABLE within its
/// `timeout`, naming the endpoint.
#[cfg(feature = "etcd")]
#[test]
fn c_program_uses_an_etcd_registry_and_gets_unavailable_for_a_dead_endpoint() {
    let endpoints = std::env::var("PROCREG_ETCD_ENDPOINTS").expect(
        "the etcd feature runs the C ABI on etcd too: set PROCREG_ETCD_ENDPOINTS \
         (scripts/etcd-cluster start prints it)",
    );
    let members = endpoints.split(',').count();
    let url = format!(
        "etcd://{endpoints}/c-abi-{}?ttl=3s&timeout=5s",
        std::process::id()
    );
    procreg::Registry::destroy(&url).unwrap();
    let exe = build("tests/c/etcd.c", Link::Shared);
    let t = Instant::now();
    let out = Command::new(exe)
        .arg(&url)
        .arg("etcd://127.0.0.1:1/dead?timeout=1s")
        .output()
        .unwrap();
    let took = t.elapsed();
    let _ = procreg::Registry::destroy(&url);
    let s = stdout_of(&out);
    assert!(
        out.status.success(),
        "{}: {s}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = s
        .lines()
        .find_map(|l| l.strip_prefix("registered c-etcd/svc as pid "))
        .unwrap_or_else(|| panic!("{s}"))
        .to_owned();
    for line in [
        format!("second register: key already registered by a live process (pid {pid})"),
        format!("lookup_pid: {pid}"),
        format!("lookup: pid={pid} version=1 host="),
        "metadata=port=9090".to_owned(),
        "listed 1 entries".to_owned(),
        "stats: backend=etcd live=1 has_table=0".to_owned(),
        format!(
            "stats etcd part: has_etcd=1 lease_set=1 ttl_ms=3000 own_entries=1 endpoints={members}"
        ),
        format!(
            "health etcd part: has_etcd=1 has_table=0 session_lost=0 same_lease=1 left_ms_set=1 \
             endpoints_up={members}/{members}"
        ),
        "after unregister: key not registered".to_owned(),
        "dead endpoint: registry unavailable after".to_owned(),
        "127.0.0.1:1".to_owned(),
    ] {
        assert!(s.contains(&line), "missing {line:?} in:\n{s}");
    }
    assert!(took < Duration::from_secs(10), "the program took {took:?}");
    // The dead endpoint's `timeout=1s` bounds the failed open.
    let dead_ms: f64 = s
        .split("registry unavailable after ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{s}"));
    assert!(dead_ms < 2500.0, "the dead endpoint took {dead_ms} ms");
    eprintln!("{s}(whole program {took:?})");
}
