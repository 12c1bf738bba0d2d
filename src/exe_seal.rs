//! The defence against CVE-2019-5736: no container process can get a writable handle on the
//! runtime's binary.
//!
//! cofferdam forks the container's init (and an `exec`'s child) without re-executing, so until
//! their `execve` those processes run the binary the caller started. Making them non-dumpable
//! (process.rs) closes their `/proc/PID/exe` to the container, but not the binary itself: an
//! image whose entrypoint (or the program given to `exec`) is a script starting
//! `#!/proc/self/exe` makes the kernel execute *our* executable again, inside the container, as
//! an ordinary dumpable process. A process of the container then opens its `/proc/N/exe`, and
//! once that process has exited reopens the handle for writing through `/proc/self/fd/M`: the
//! host's runtime binary is the container's to rewrite.
//!
//! So `create`, `run` and `exec` first re-execute themselves from a copy the kernel will not
//! let anyone write, and only then fork. Whatever a container later reaches through
//! `/proc/*/exe` is that copy:
//!
//! - **a read-only overlayfs** (preferred: no copy), made with `fsopen` and never attached
//!   anywhere. Its lower layers are the binary's directory and `/dev`; it
//!   has no upper layer, so nothing can make it writable, not even a `remount` by a holder of
//!   `CAP_SYS_ADMIN` (a read-only bind mount could be flipped back). A writable open fails
//!   with `EROFS`. This is the design runc 1.2 chose.
//! - **a read-only bind mount** of the binary alone, also detached, where overlayfs refuses
//!   the binary's filesystem: a writable open fails with `EROFS` just the same (only a holder
//!   of `CAP_SYS_ADMIN` over the host could flip it back, and that one owns the host anyway).
//! - **a sealed memfd**, where neither can be had (an unprivileged caller, an old kernel): a copy of the binary with
//!   `F_SEAL_WRITE`, `F_SEAL_GROW` and `F_SEAL_SHRINK`, so no write or truncation of it can
//!   succeed. It costs a copy of the binary (2 MB) per call.
//!
//! A binary already on a read-only mount, or already a sealed memfd, is used as it is.

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use nix::errno::Errno;

use crate::error::{Error, Result};

/// Set in the environment of the re-executed process, so that a seal that did not take (which
/// would otherwise re-execute forever) is an error instead. Removed before anything else runs.
const MARK: &str = "_COFFERDAM_EXE_SEALED";

const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const MOUNT_ATTR_RDONLY: libc::c_uint = 0x1;
const MOUNT_ATTR_NOSUID: libc::c_uint = 0x2;
const MOUNT_ATTR_NODEV: libc::c_uint = 0x4;
const SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// How the running binary is protected from being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealed {
    /// It is on a read-only mount (the runtime's overlayfs, or a read-only filesystem).
    ReadOnlyMount,
    /// It is a memfd sealed against writes.
    Memfd,
}

/// How the running binary is protected, if it is.
pub fn current() -> Result<Option<Sealed>> {
    let exe = open("/proc/self/exe", libc::O_RDONLY | libc::O_CLOEXEC)?;
    // SAFETY: fstatvfs fills the struct we own; all-zero is a valid starting value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: fstatvfs on our fd, writing only into `st`.
    Errno::result(unsafe { libc::fstatvfs(exe.as_raw_fd(), &mut st) })
        .map_err(|e| sys("statvfs /proc/self/exe", e))?;
    // It reports the mount's flags too: ST_RDONLY for a read-only mount of a writable fs.
    if st.f_flag & libc::ST_RDONLY != 0 {
        return Ok(Some(Sealed::ReadOnlyMount));
    }
    // SAFETY: F_GET_SEALS takes no argument; EINVAL for anything but a memfd.
    let seals = unsafe { libc::fcntl(exe.as_raw_fd(), libc::F_GET_SEALS) };
    Ok((seals >= 0 && seals & SEALS == SEALS).then_some(Sealed::Memfd))
}

/// Make sure the running binary cannot be written through any handle a container can obtain:
/// if it is not protected already, re-execute the process (same arguments, same environment)
/// from a read-only overlayfs view of the binary or, failing that, a sealed memfd copy. Returns
/// only once the running binary is protected, or with the error that prevents it.
///
/// Call it first thing in `main`, while the process has one thread, before it forks anything
/// into a container. The CLI does for `create`, `run` and `exec`; an embedding program that
/// makes containers should too (see examples/busybox.rs).
pub fn reexec_sealed() -> Result<()> {
    let marked = std::env::var_os(MARK).is_some();
    if marked {
        // SAFETY: the process is single-threaded here (the contract above), so nothing reads
        // the environment concurrently.
        unsafe { std::env::remove_var(MARK) };
    }
    if let Some(how) = current()? {
        log::debug!("the running binary is protected: {how:?}");
        return Ok(());
    }
    if marked {
        return Err(Error::Unsupported(
            "re-executed from a sealed copy of the runtime binary, yet /proc/self/exe is writable"
                .into(),
        ));
    }
    let exe = overlay_view()
        .or_else(|e| {
            log::debug!("no overlayfs view of the binary ({e}); trying a read-only bind mount");
            readonly_bind()
        })
        .or_else(|e| {
            log::debug!("no read-only bind of the binary ({e}); copying it to a sealed memfd");
            memfd_copy()
        })?;
    let args: Vec<CString> = std::env::args_os().map(cstring).collect();
    let mut env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            cstring(kv)
        })
        .collect();
    env.push(CString::new(format!("{MARK}=1")).expect("no NUL"));
    let argv: Vec<*mut libc::c_char> = args
        .iter()
        .map(|a| a.as_ptr().cast_mut())
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect();
    let envp: Vec<*mut libc::c_char> = env
        .iter()
        .map(|a| a.as_ptr().cast_mut())
        .chain(std::iter::once(std::ptr::null_mut()))
        .collect();
    // SAFETY: execveat with an fd we own, an empty path with AT_EMPTY_PATH, and NULL-terminated
    // arrays of pointers into CStrings that outlive the call. It returns only on failure. The
    // raw syscall, since musl's libc has no wrapper for it.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            exe.as_raw_fd(),
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Err(sys("re-execute the sealed runtime binary", Errno::last()))
}

/// An `O_PATH` fd of the running binary as seen through a detached, read-only overlayfs whose
/// top layer is the binary's directory.
fn overlay_view() -> Result<OwnedFd> {
    let target = std::fs::read_link("/proc/self/exe")
        .map_err(crate::error::io_err("readlink", "/proc/self/exe"))?;
    let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
        return Err(Error::Unsupported(format!(
            "{}: no directory to view",
            target.display()
        )));
    };
    // SAFETY: fsopen with a NUL-terminated name; the fd returned is ours.
    let ctx = fd(unsafe { libc::syscall(libc::SYS_fsopen, c"overlay".as_ptr(), FSOPEN_CLOEXEC) })
        .map_err(|e| sys("fsopen overlay", e))?;
    // Overlayfs needs two lower layers to mount without an upper one, and they may not
    // overlap. The second is /dev, which every host has: its entries never show, since the
    // binary's name is found in the top layer, and the overlay's root is never reachable (it is
    // not attached anywhere, and only the fd of the file is kept). Nothing is made on disk.
    let other = Path::new("/dev");
    if dir.starts_with(other) {
        return Err(Error::Unsupported(format!(
            "{}: under /dev, overlayfs' second layer",
            target.display()
        )));
    }
    let lower = [
        escape(dir.as_os_str().as_bytes()),
        b":".to_vec(),
        escape(other.as_os_str().as_bytes()),
    ]
    .concat();
    set_string(&ctx, c"lowerdir", &lower)?;
    // xino is of no use here and would only log when the layers are on two filesystems.
    let _ = set_string(&ctx, c"xino", b"off");
    // SAFETY: fsconfig on our context fd with no key or value.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            ctx.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    })
    .map_err(|e| sys("create the overlayfs view of the binary", e))?;
    // SAFETY: fsmount on our context fd; the mount fd returned is ours.
    let mnt = fd(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            ctx.as_raw_fd(),
            FSMOUNT_CLOEXEC,
            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID,
        )
    })
    .map_err(|e| sys("fsmount overlayfs", e))?;
    let name = cstring(name.to_os_string());
    // SAFETY: openat relative to our mount fd with a NUL-terminated name.
    fd(unsafe {
        libc::openat(
            mnt.as_raw_fd(),
            name.as_ptr(),
            libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        ) as libc::c_long
    })
    .map_err(|e| sys("open the binary in its overlayfs view", e))
    .and_then(|f| {
        // It must be the binary of the top layer, not something of the second one (as it would
        // be if the binary were removed meanwhile).
        let meta = std::fs::metadata(format!("/proc/self/fd/{}", f.as_raw_fd()))
            .map_err(crate::error::io_err("stat", &target))?;
        if meta.is_file() {
            Ok(f)
        } else {
            Err(Error::Unsupported(format!(
                "{}: not a file",
                target.display()
            )))
        }
    })
}

/// An `O_PATH` fd of the running binary on a detached, read-only bind mount of it alone.
fn readonly_bind() -> Result<OwnedFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    // SAFETY: open_tree with a NUL-terminated path; the fd returned is ours.
    let tree = fd(unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c"/proc/self/exe".as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    })
    .map_err(|e| sys("open_tree /proc/self/exe", e))?;
    let ro = crate::mount::MountAttr {
        attr_set: MOUNT_ATTR_RDONLY.into(),
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    crate::mount::mount_setattr(&tree, 0, &ro)
        .map_err(|e| sys("make the bind mount of the binary read-only", e))?;
    Ok(tree)
}

fn set_string(ctx: &OwnedFd, key: &std::ffi::CStr, value: &[u8]) -> Result<()> {
    let value = CString::new(value).map_err(|_| Error::Unsupported("path contains NUL".into()))?;
    // SAFETY: fsconfig on our context fd with NUL-terminated key and value.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            ctx.as_raw_fd(),
            FSCONFIG_SET_STRING,
            key.as_ptr(),
            value.as_ptr(),
            0,
        )
    })
    .map(drop)
    .map_err(|e| sys("fsconfig overlayfs lowerdir", e))
}

/// Overlayfs splits `lowerdir` at `:` and unescapes `\`.
fn escape(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    for &b in path {
        if b == b':' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

/// A memfd holding a copy of the running binary, sealed against any write, grow or shrink.
fn memfd_copy() -> Result<OwnedFd> {
    let src = open("/proc/self/exe", libc::O_RDONLY | libc::O_CLOEXEC)?;
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // MFD_EXEC (6.3) asks for an executable memfd where vm.memfd_noexec would deny it; older
    // kernels reject the unknown flag, and there every memfd is executable.
    // SAFETY: memfd_create with a NUL-terminated name; the fd returned is ours.
    let memfd = fd(
        unsafe { libc::memfd_create(c"cofferdam".as_ptr(), flags | libc::MFD_EXEC) }
            as libc::c_long,
    )
    .or_else(|_| {
        // SAFETY: as above.
        fd(unsafe { libc::memfd_create(c"cofferdam".as_ptr(), flags) } as libc::c_long)
    })
    .map_err(|e| sys("memfd_create", e))?;
    let mut src_file = std::fs::File::from(src);
    let mut dst_file = std::fs::File::from(memfd);
    std::io::copy(&mut src_file, &mut dst_file).map_err(crate::error::io_err(
        "copy the runtime binary to",
        "memfd:cofferdam",
    ))?;
    let memfd = OwnedFd::from(dst_file);
    // SAFETY: fchmod on our fd: read and execute only.
    let _ = unsafe { libc::fchmod(memfd.as_raw_fd(), 0o511) };
    // F_SEAL_EXEC (6.3) keeps the mode as it is; ignored where unknown.
    // SAFETY: fcntl F_ADD_SEALS on our memfd.
    let _ = unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, libc::F_SEAL_EXEC) };
    // SAFETY: as above.
    Errno::result(unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, SEALS) })
        .map_err(|e| sys("seal the memfd copy of the runtime binary", e))?;
    Ok(memfd)
}

fn open(path: &str, flags: libc::c_int) -> Result<OwnedFd> {
    crate::container::open_fd(Path::new(path), flags)
}

fn fd(ret: libc::c_long) -> std::result::Result<OwnedFd, Errno> {
    let raw = Errno::result(ret)?;
    // SAFETY: the kernel just returned this fd to us, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw as libc::c_int) })
}

fn cstring(s: OsString) -> CString {
    // Arguments and environment strings come from the kernel, NUL-terminated: none holds a NUL.
    CString::new(s.into_vec()).expect("argv and environ hold no NUL")
}

fn sys(op: &'static str, errno: Errno) -> Error {
    Error::Sys { op, errno }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lowerdir_escapes() {
        assert_eq!(super::escape(b"/a:b\\c"), b"/a\\:b\\\\c".to_vec());
    }
}
