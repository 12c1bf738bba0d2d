//! A container without a mount namespace of its own (the spec allows leaving it out of
//! `linux.namespaces`): it shares the runtime's, as with runc, and its rootfs is a chroot.
//!
//! runc then makes the container's mounts in the host's mount namespace and leaves them there
//! (and first turns the host's `/` into a slave). Here the host's propagation is not touched
//! and nothing outlives the container: `create` binds the rootfs onto itself, private, before
//! the init is forked; every mount the init makes lands under that bind; and `delete` (or a
//! failed `create`) detaches it, with all of them. What marks the bind is the mount that was
//! at the rootfs path before it, recorded before the bind is made: whatever is stacked above
//! that one was made for the container.

use std::ffi::CString;
use std::path::Path;

use nix::errno::Errno;

use crate::error::{Error, Result};

/// The id of the mount `path` is on (the topmost one, if it is a mount point).
pub fn mount_id(path: &Path) -> Result<u64> {
    let c = cstring(path)?;
    // SAFETY: all-zero is a valid statx; the call fills it from a NUL-terminated path.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: statx reads the path and writes only into `st`.
    Errno::result(unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::AT_NO_AUTOMOUNT,
            libc::STATX_MNT_ID,
            &mut st,
        )
    })
    .map_err(|e| io(e, "statx", path))?;
    if st.stx_mask & libc::STATX_MNT_ID == 0 {
        return Err(Error::Unsupported(
            "a container without a mount namespace needs Linux 5.8 (statx's mount id)".into(),
        ));
    }
    Ok(st.stx_mnt_id)
}

/// Bind the rootfs onto itself, recursively, and make that bind private: nothing mounted under
/// it propagates anywhere, and detaching it takes everything below.
pub fn bind(rootfs: &Path) -> Result<()> {
    let c = cstring(rootfs)?;
    mount(Some(&c), &c, libc::MS_BIND | libc::MS_REC)
        .map_err(|e| io(e, "bind the rootfs onto itself", rootfs))?;
    mount(None, &c, libc::MS_PRIVATE | libc::MS_REC)
        .map_err(|e| io(e, "make the rootfs bind private", rootfs))
}

/// Detach every mount stacked at the rootfs path above the one that was there before
/// (`below`): the bind and, with it, everything the container mounted.
pub fn unbind(rootfs: &Path, below: u64) -> Result<()> {
    let c = cstring(rootfs)?;
    // Each round detaches one layer; the container could stack a few more on its own root.
    for _ in 0..64 {
        match mount_id(rootfs) {
            Ok(id) if id == below => return Ok(()),
            Ok(_) => {}
            // The rootfs itself is gone: so is anything that was mounted on it.
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        // SAFETY: umount2 reads the NUL-terminated path.
        match Errno::result(unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) }) {
            Ok(_) => {}
            // Nothing is mounted at the path any more (what was below is gone too).
            Err(Errno::EINVAL) => return Ok(()),
            Err(e) => return Err(io(e, "detach the rootfs bind", rootfs)),
        }
    }
    Err(io(
        Errno::EBUSY,
        "detach the rootfs bind (64 layers)",
        rootfs,
    ))
}

fn mount(source: Option<&CString>, target: &CString, flags: u64) -> std::result::Result<(), Errno> {
    let src = source.map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: mount reads NUL-terminated strings (or null) and passes no data.
    Errno::result(unsafe {
        libc::mount(
            src,
            target.as_ptr(),
            std::ptr::null(),
            flags,
            std::ptr::null(),
        )
    })
    .map(drop)
}

fn cstring(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::InvalidConfig(format!("path {} contains NUL", path.display())))
}

fn io(errno: Errno, op: &'static str, path: &Path) -> Error {
    Error::Io {
        op,
        path: path.to_path_buf(),
        source: std::io::Error::from_raw_os_error(errno as i32),
    }
}
