// Build script:
// - records the git commit for `cofferdam --version`, when built from a git checkout;
// - in release builds, links GCC's unwinder statically, so that the binary needs nothing but
//   libc. Rust's std asks for `-lgcc_s` (even with panic = "abort"); a directory searched
//   first that holds `libgcc_s.a` (a copy of GCC's static `libgcc_eh.a`) makes the linker
//   resolve it statically.
fn main() {
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs");
    println!("cargo:rerun-if-changed=build.rs");
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output();
    if let Some(out) = out.ok().filter(|o| o.status.success()) {
        let commit = String::from_utf8_lossy(&out.stdout).trim().to_string();
        println!("cargo:rustc-env=COFFERDAM_COMMIT={commit}");
    }
    if std::env::var("PROFILE").as_deref() == Ok("release") {
        static_unwinder();
        // RELR: the relative relocations of a position-independent binary in a packed form
        // (glibc 2.36+, binutils 2.38+): a smaller binary that keeps its ASLR.
        if linker_knows("-Wl,-z,pack-relative-relocs") {
            println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
        }
    }
}

fn static_unwinder() {
    let Ok(out) = std::process::Command::new("cc")
        .arg("-print-file-name=libgcc_eh.a")
        .output()
    else {
        return;
    };
    let eh = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if !eh.is_absolute() || !eh.exists() {
        return; // not found: keep the dynamic libgcc_s
    }
    let dir = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    if std::fs::copy(&eh, dir.join("libgcc_s.a")).is_ok() {
        println!("cargo:rustc-link-search=native={}", dir.display());
    }
}

/// Whether `cc` links a trivial program with this flag (an older toolchain would fail the build).
fn linker_knows(flag: &str) -> bool {
    let dir = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let src = dir.join("probe.c");
    if std::fs::write(&src, "int main(void) { return 0; }\n").is_err() {
        return false;
    }
    std::process::Command::new("cc")
        .arg(&src)
        .arg(flag)
        .arg("-o")
        .arg(dir.join("probe"))
        .output()
        .is_ok_and(|o| o.status.success())
}
