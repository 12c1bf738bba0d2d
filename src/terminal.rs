//! `process.terminal`: a pseudo-terminal opened inside the container's devpts, its master sent to
//! the caller over `--console-socket` as runc does (SCM_RIGHTS, with the pty's name as the
//! message), its peer made the container process's controlling terminal and stdio.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
use oci_spec::runtime::Box as ConsoleSize;

use crate::error::{Error, Result};
use crate::mount::{Step, fail};

/// In `create`: connect to the console socket while its path is still reachable (the init
/// will have pivoted away from it by the time it has a pty to send).
pub fn connect(path: &Path) -> Result<OwnedFd> {
    let s = UnixStream::connect(path).map_err(|source| Error::Io {
        op: "connect to console socket",
        path: path.to_path_buf(),
        source,
    })?;
    Ok(s.into())
}

/// In the init, after pivot_root: open a pty in the container's devpts, send the master, and
/// make the peer our controlling terminal and fds 0, 1 and 2.
pub fn setup(console: &OwnedFd, size: Option<ConsoleSize>) -> Step {
    // SAFETY: open with a constant path; the fd returned is ours.
    let master = Errno::result(unsafe {
        libc::open(
            c"/dev/ptmx".as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    })
    .map_err(|e| fail("open", "/dev/ptmx", e))?;
    // SAFETY: the kernel just gave us this fd.
    let master = unsafe { OwnedFd::from_raw_fd(master) };
    let m = master.as_raw_fd();
    let mut n: libc::c_uint = 0;
    let unlock: libc::c_int = 0;
    // SAFETY: ioctls on our pty master with pointers to values we own.
    unsafe {
        Errno::result(libc::ioctl(m, libc::TIOCSPTLCK, &unlock))
            .map_err(|e| fail("unlock pty", "/dev/ptmx", e))?;
        Errno::result(libc::ioctl(m, libc::TIOCGPTN, &mut n))
            .map_err(|e| fail("get pty number", "/dev/ptmx", e))?;
    }
    // TIOCGPTPEER opens the peer through the master itself: no path lookup that a container
    // could redirect to another file.
    // SAFETY: as above; the returned fd is new and ours.
    let peer = Errno::result(unsafe {
        libc::ioctl(
            m,
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    })
    .map_err(|e| fail("open pty peer", format!("/dev/pts/{n}"), e))?;
    // SAFETY: the kernel just gave us this fd.
    let peer = unsafe { OwnedFd::from_raw_fd(peer) };
    if let Some(sz) = size {
        let ws = libc::winsize {
            ws_row: sz.height() as u16,
            ws_col: sz.width() as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads the winsize we own.
        Errno::result(unsafe { libc::ioctl(m, libc::TIOCSWINSZ, &ws) })
            .map_err(|e| fail("set console size", "", e))?;
    }
    let name = format!("/dev/pts/{n}");
    let fds = [m];
    sendmsg::<()>(
        console.as_raw_fd(),
        &[IoSlice::new(name.as_bytes())],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| fail("send pty master to console socket", &name, e))?;
    drop(master);
    // SAFETY: setsid, ioctl and dup2 on fds we own; they touch no memory of ours.
    unsafe {
        Errno::result(libc::setsid()).map_err(|e| fail("setsid", "", e))?;
        Errno::result(libc::ioctl(peer.as_raw_fd(), libc::TIOCSCTTY, 0))
            .map_err(|e| fail("set controlling terminal", &name, e))?;
        for fd in 0..3 {
            Errno::result(libc::dup2(peer.as_raw_fd(), fd))
                .map_err(|e| fail("dup2 pty", &name, e))?;
        }
    }
    Ok(())
}
