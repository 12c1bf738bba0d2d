// Records the git commit for `cofferdam --version`, when built from a git checkout.
fn main() {
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs");
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output();
    if let Some(out) = out.ok().filter(|o| o.status.success()) {
        let commit = String::from_utf8_lossy(&out.stdout).trim().to_string();
        println!("cargo:rustc-env=COFFERDAM_COMMIT={commit}");
    }
}
