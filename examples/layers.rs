//! Images are stacks of read-only layers; each container adds a writable layer on top
//! (copy-on-write). The kernel's overlayfs does the stacking: `lowerdir=app:apt:base` shows the
//! three layers as one tree (the upper ones win), and every change goes to `upperdir`. A file
//! changed in the container is first copied up; a file deleted leaves a *whiteout* in the upper
//! dir (a character device 0:0) that hides the layers' copy. Layers are changesets too: the
//! "app" layer here deletes a file of the "apt" layer with a whiteout of its own.
//!
//! ```sh
//! cargo run --example layers      # as root
//! ```
//!
//! What to look at: the first container writes, deletes and modifies files; its upper dir then
//! holds exactly those changes (the deleted file as a whiteout) and the layers are untouched. A
//! second container on the same layers, with its own upper dir, sees none of the first one's
//! changes.

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag, makedev, mknod};

/// Write `text` at `layer/path`, making the directories.
fn put(layer: &Path, path: &str, text: &str) -> std::io::Result<()> {
    let p = layer.join(path);
    std::fs::create_dir_all(p.parent().expect("a parent"))?;
    std::fs::write(p, text)
}

/// An overlayfs whiteout at `layer/path`: a character device 0:0.
fn whiteout(layer: &Path, path: &str) -> common::Result<()> {
    let p = layer.join(path);
    std::fs::create_dir_all(p.parent().expect("a parent"))?;
    Ok(mknod(
        &p,
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o644),
        makedev(0, 0),
    )?)
}

/// Every entry under `dir`, with its kind and content: (relative path, description).
fn tree(dir: &Path) -> std::io::Result<Vec<(String, String)>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) -> std::io::Result<()> {
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let path = e.path();
            let rel = path
                .strip_prefix(root)
                .expect("below root")
                .display()
                .to_string();
            let meta = std::fs::symlink_metadata(&path)?;
            let kind = meta.file_type();
            let what = if kind.is_dir() {
                walk(root, &path, out)?;
                "dir".to_string()
            } else if kind.is_char_device() && meta.rdev() == 0 {
                "whiteout (char 0:0)".to_string()
            } else if kind.is_symlink() {
                format!("link to {}", std::fs::read_link(&path)?.display())
            } else {
                format!(
                    "file {:?}",
                    std::fs::read_to_string(&path).unwrap_or_default()
                )
            };
            out.push((rel, what));
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

/// Mount the layers (top first) with a fresh upper and work dir under `dir`; the merged tree.
fn overlay(scratch: &common::Scratch, layers: &[&Path], dir: &Path) -> common::Result<PathBuf> {
    let (upper, work, merged) = (dir.join("upper"), dir.join("work"), dir.join("merged"));
    for d in [&upper, &work, &merged] {
        std::fs::create_dir_all(d)?;
    }
    let lower: Vec<String> = layers.iter().map(|l| l.display().to_string()).collect();
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    );
    mount(
        Some("overlay"),
        &merged,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )?;
    scratch.unmount_later(&merged);
    Ok(merged)
}

fn main() -> common::Result<()> {
    let scratch = common::Scratch::new("layers")?;
    // Three layers, as an image would ship them: a base system, a package, an application.
    let base = scratch.rootfs("layers/base")?;
    put(&base, "etc/motd", "welcome to base\n")?;
    let apt = scratch.dir.join("layers/apt");
    put(&apt, "etc/tool.conf", "verbose=no\n")?;
    put(&apt, "usr/share/tool/README", "tool 1.0\n")?;
    let app = scratch.dir.join("layers/app");
    put(&app, "app/run.sh", "echo running\n")?;
    put(&app, "etc/motd", "welcome to the app\n")?; // replaces base's
    whiteout(&app, "usr/share/tool/README")?; // deletes apt's
    let layers: [&Path; 3] = [&app, &apt, &base];
    let before: Vec<_> = layers.iter().map(|l| tree(l)).collect::<Result<_, _>>()?;
    for (name, l) in ["app", "apt"].iter().zip([&app, &apt]) {
        for (path, what) in tree(l)? {
            println!("layer {name}: {path}: {what}");
        }
    }

    // The first container writes, deletes and modifies.
    let c1 = scratch.dir.join("c1");
    let merged = overlay(&scratch, &layers, &c1)?;
    let script = "echo hello > /app/new.txt; rm /etc/tool.conf; echo edited >> /etc/motd; \
                  echo \"c1 sees: motd $(cat /etc/motd | tr '\\n' ' '), /usr/share/tool: \
                  [$(ls /usr/share/tool)]\"";
    let mut spec = scratch.spec("c1", &["sh", "-c", script]);
    spec.root_mut()
        .as_mut()
        .expect("a root")
        .set_readonly(Some(false));
    let code = scratch.run("c1", spec, &merged)?;
    println!("c1 exited {code}");
    umount2(&merged, MntFlags::MNT_DETACH)?;
    for (path, what) in tree(&c1.join("upper"))? {
        let in_layers = layers
            .iter()
            .any(|l| l.join(&path).symlink_metadata().is_ok());
        let origin = match (what.as_str(), in_layers) {
            ("dir", _) => "",
            (w, true) if w.starts_with("whiteout") => ", hides the layers' copy",
            (_, true) => ", copied up from a layer and changed",
            (_, false) => ", new",
        };
        println!("c1 upper: {path}: {what}{origin}");
    }
    let after: Vec<_> = layers.iter().map(|l| tree(l)).collect::<Result<_, _>>()?;
    println!("layers unchanged: {}", before == after);

    // A second container on the same layers, with an upper dir of its own.
    let c2 = scratch.dir.join("c2");
    let merged = overlay(&scratch, &layers, &c2)?;
    let script = "echo \"c2 sees: motd $(cat /etc/motd), tool.conf $(cat /etc/tool.conf), \
                  /app: [$(ls /app | tr '\\n' ' ')]\"";
    let mut spec = scratch.spec("c2", &["sh", "-c", script]);
    spec.root_mut()
        .as_mut()
        .expect("a root")
        .set_readonly(Some(false));
    let code = scratch.run("c2", spec, &merged)?;
    println!(
        "c2 exited {code}; its upper dir holds {} entries",
        tree(&c2.join("upper"))?.len()
    );
    Ok(())
}
