//! The rootfs mounts containerd passes with a create (a snapshot: an overlay of the image's
//! layers, or a bind of a directory), mounted on `<bundle>/rootfs` by the shim itself, in its
//! own thread: the crate's helper forks a child that only its own reaper would report.

use std::path::Path;

use nix::mount::{MntFlags, MsFlags, mount, umount2};

/// A mount option that is a flag, and whether it sets (true) or clears it.
fn flag(option: &str) -> Option<(MsFlags, bool)> {
    Some(match option {
        "ro" => (MsFlags::MS_RDONLY, true),
        "rw" => (MsFlags::MS_RDONLY, false),
        "bind" => (MsFlags::MS_BIND, true),
        "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, true),
        "nosuid" => (MsFlags::MS_NOSUID, true),
        "suid" => (MsFlags::MS_NOSUID, false),
        "nodev" => (MsFlags::MS_NODEV, true),
        "dev" => (MsFlags::MS_NODEV, false),
        "noexec" => (MsFlags::MS_NOEXEC, true),
        "exec" => (MsFlags::MS_NOEXEC, false),
        "noatime" => (MsFlags::MS_NOATIME, true),
        "relatime" => (MsFlags::MS_RELATIME, true),
        "sync" => (MsFlags::MS_SYNCHRONOUS, true),
        "async" => (MsFlags::MS_SYNCHRONOUS, false),
        "remount" => (MsFlags::MS_REMOUNT, true),
        "defaults" => (MsFlags::empty(), true),
        _ => return None,
    })
}

/// Mount one of containerd's mounts on `target`. A bind that asks for `ro` is made, then
/// remounted read-only (the kernel ignores `MS_RDONLY` on the bind itself).
pub fn mount_one(kind: &str, source: &str, options: &[String], target: &Path) -> nix::Result<()> {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for o in options {
        match flag(o) {
            Some((f, true)) => flags |= f,
            Some((f, false)) => flags &= !f,
            None => data.push(o.as_str()),
        }
    }
    let data = data.join(",");
    let kind = (!kind.is_empty() && kind != "bind").then_some(kind);
    mount(
        Some(source),
        target,
        kind,
        flags,
        (!data.is_empty()).then_some(data.as_str()),
    )?;
    if flags.contains(MsFlags::MS_BIND) && flags.contains(MsFlags::MS_RDONLY) {
        mount(
            None::<&str>,
            target,
            None::<&str>,
            flags | MsFlags::MS_REMOUNT,
            None::<&str>,
        )?;
    }
    Ok(())
}

/// Mount containerd's mounts on `<bundle>/rootfs`, in order; whether there were any. On
/// error, what was mounted is detached again.
pub fn mount_all(
    bundle: &Path,
    mounts: &[containerd_shim::protos::api::Mount],
) -> Result<bool, String> {
    let target = bundle.join("rootfs");
    for m in mounts {
        if let Err(e) = mount_one(&m.type_, &m.source, &m.options, &target) {
            unmount_all(bundle);
            return Err(format!(
                "mount {} ({}) on {}: {e}",
                m.source,
                m.type_,
                target.display()
            ));
        }
    }
    Ok(!mounts.is_empty())
}

/// Detach whatever is mounted on `<bundle>/rootfs` (every layer of it).
pub fn unmount_all(bundle: &Path) {
    let target = bundle.join("rootfs");
    while umount2(&target, MntFlags::MNT_DETACH).is_ok() {}
}
