//! Being told, instead of polling, when the OOM killer may have struck in a cgroup: the fd
//! becomes readable, and [`Cgroup::oom_kills`](super::Cgroup::oom_kills) then says whether
//! the count grew. A process that watches many containers (the containerd shim) waits on all
//! of them in one `poll`/`epoll`, and sleeps while nothing happens.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;

use super::{CgroupDir, write_file};
use crate::error::{Result, io_err, sys_err};

/// A readable fd while an OOM event of the container's cgroup is pending; see
/// [`Container::oom_notifier`](crate::Container::oom_notifier).
#[derive(Debug)]
pub struct OomNotifier {
    fd: OwnedFd,
    /// v1: `memory.oom_control`, which the registration refers to, held for as long as it.
    _control: Option<OwnedFd>,
}

impl OomNotifier {
    /// v1: an eventfd that the kernel signals on each OOM in the cgroup, registered through
    /// `cgroup.event_control`. v2: an inotify watch on `memory.events`, which the kernel marks
    /// modified whenever one of its counts (`oom_kill` among them) changes.
    pub(super) fn new(dir: &CgroupDir) -> Result<OomNotifier> {
        if dir.v2 {
            // SAFETY: inotify_init1 takes flags only; the fd returned is ours.
            let fd = own(unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) })
                .map_err(sys_err("inotify_init1"))?;
            let path = dir.path.join("memory.events");
            let c = cpath(&path);
            // SAFETY: a NUL-terminated path and an inotify fd we own.
            let wd =
                unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), libc::IN_MODIFY) };
            if wd < 0 {
                return Err(io_err("watch", path)(std::io::Error::last_os_error()));
            }
            return Ok(OomNotifier { fd, _control: None });
        }
        // SAFETY: eventfd takes an initial value and flags; the fd returned is ours.
        let fd = own(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })
            .map_err(sys_err("eventfd"))?;
        let path = dir.path.join("memory.oom_control");
        let control: OwnedFd = std::fs::File::open(&path)
            .map_err(io_err("open", &path))?
            .into();
        write_file(
            &dir.path,
            "cgroup.event_control",
            &format!("{} {}", fd.as_raw_fd(), control.as_raw_fd()),
        )?;
        Ok(OomNotifier {
            fd,
            _control: Some(control),
        })
    }

    /// Consume what made the fd readable, so that it waits again (both kinds are
    /// non-blocking: nothing pending is not an error).
    pub fn clear(&self) {
        let mut buf = [0u8; 4096];
        // SAFETY: reads into a buffer we own, of its length, from an fd we own.
        while unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
    }
}

impl AsFd for OomNotifier {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for OomNotifier {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

fn own(fd: libc::c_int) -> std::result::Result<OwnedFd, Errno> {
    // SAFETY: a non-negative return of the calls above is a new fd that nothing else owns.
    Errno::result(fd).map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
}

fn cpath(p: &Path) -> std::ffi::CString {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}
