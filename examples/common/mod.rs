//! What the examples share: a throw-away rootfs made of a static busybox.

use std::path::{Path, PathBuf};

/// `<tmp>/cofferdam-example-<name>-<pid>/rootfs` with busybox and a link per applet. Returns
/// the directory (remove it when done) and the rootfs.
pub fn busybox_rootfs(name: &str) -> Result<(PathBuf, PathBuf), Box<dyn std::error::Error>> {
    let busybox = Path::new("/bin/busybox");
    if !busybox.exists() {
        return Err(
            "needs a static busybox at /bin/busybox: apt-get install -y busybox-static".into(),
        );
    }
    let dir = std::env::temp_dir().join(format!("cofferdam-example-{name}-{}", std::process::id()));
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin"))?;
    for d in ["proc", "sys", "dev", "etc", "tmp"] {
        std::fs::create_dir_all(rootfs.join(d))?;
    }
    std::fs::copy(busybox, rootfs.join("bin/busybox"))?;
    let applets = std::process::Command::new(busybox)
        .arg("--list")
        .output()?
        .stdout;
    for applet in String::from_utf8_lossy(&applets).lines() {
        let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet));
    }
    Ok((dir, rootfs))
}
