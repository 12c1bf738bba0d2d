//! Being told, instead of polling, when the OOM killer may have struck in a cgroup: the fd
//! becomes readable, and [`Cgroup::oom_kills`](super::Cgroup::oom_kills) then says whether
//! the count grew. A process that watches many containers (the containerd shim) waits on all
//! of them in one `poll`/`epoll`, and sleeps while nothing happens.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

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
            let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
                .map_err(sys_err("inotify_init1"))?;
            let path = dir.path.join("memory.events");
            inotify
                .add_watch(&path, AddWatchFlags::IN_MODIFY)
                .map_err(|e| io_err("watch", &path)(e.into()))?;
            return Ok(OomNotifier {
                fd: inotify.into(),
                _control: None,
            });
        }
        let fd: OwnedFd =
            EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
                .map_err(sys_err("eventfd"))?
                .into();
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
    /// non-blocking: nothing pending ends the reads).
    pub fn clear(&self) {
        let mut buf = [0u8; 4096];
        while nix::unistd::read(&self.fd, &mut buf).is_ok_and(|n| n > 0) {}
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
