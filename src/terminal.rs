//! `process.terminal`: a pseudo-terminal opened inside the container's devpts, its master sent to
//! the caller over `--console-socket` as runc does (SCM_RIGHTS, with the pty's name as the
//! message), its peer made the container process's controlling terminal and stdio.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
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
    // The master must be of the container's devpts, not a file a mount put at /dev/ptmx: its
    // peer becomes the process's stdio (CVE-2025-52565 is runc's version of this).
    const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;
    crate::mount::check_fs(&master, DEVPTS_SUPER_MAGIC, "devpts", "/dev/ptmx")?;
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
    send_fd(console.as_raw_fd(), name.as_bytes(), m)
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

/// Receive the master fd (and the pty's name) that the init sends over a console socket.
pub fn receive_master(sock: &impl std::os::fd::AsRawFd) -> Result<(String, OwnedFd)> {
    let mut buf = [0u8; 256];
    let (n, fd) = recv_fd(sock.as_raw_fd(), &mut buf)
        .map_err(crate::error::sys_err("receive the terminal from the init"))?;
    let fd = fd.ok_or_else(|| Error::Unsupported("the init sent no terminal".into()))?;
    Ok((String::from_utf8_lossy(&buf[..n]).into_owned(), fd))
}

/// Send `payload` with one fd attached (SCM_RIGHTS), in one message.
pub(crate) fn send_fd(sock: RawFd, payload: &[u8], fd: RawFd) -> nix::Result<()> {
    let fds = [fd];
    sendmsg::<()>(
        sock,
        &[IoSlice::new(payload)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map(drop)
}

/// Receive one message into `buf`, with the fd attached to it if there is one (made
/// close-on-exec). Retries on EINTR. Returns the payload length (0 at EOF).
pub(crate) fn recv_fd(sock: RawFd, buf: &mut [u8]) -> nix::Result<(usize, Option<OwnedFd>)> {
    use nix::sys::socket::{ControlMessageOwned, recvmsg};
    loop {
        let mut iov = [std::io::IoSliceMut::new(buf)];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let msg = match recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
        {
            Err(Errno::EINTR) => continue,
            r => r?,
        };
        let fd = msg.cmsgs()?.find_map(|c| match c {
            ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        });
        // SAFETY: the fd just arrived with SCM_RIGHTS and nothing else owns it.
        return Ok((msg.bytes, fd.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })));
    }
}

/// The caller's side of a container terminal in the foreground (`run` without a console
/// socket): copies stdin to the pty and the pty to stdout. When stdin is a terminal it is put
/// in raw mode (restored on drop) and its size follows into the pty.
pub struct Proxy {
    master: OwnedFd,
    master_open: bool,
    stdin_open: bool,
    saved: Option<nix::sys::termios::Termios>,
}

impl Proxy {
    pub fn new(master: OwnedFd) -> Result<Proxy> {
        use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
        nix::fcntl::fcntl(
            &master,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .map_err(crate::error::sys_err("make the pty master non-blocking"))?;
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            cfmakeraw(&mut raw);
            tcsetattr(&stdin, SetArg::TCSANOW, &raw)
                .map_err(crate::error::sys_err("set the terminal raw"))?;
        }
        let p = Proxy {
            master,
            master_open: true,
            stdin_open: true,
            saved,
        };
        p.resize();
        Ok(p)
    }

    pub fn master(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.master)
    }

    /// False once the container side hung up (no process holds the pty any more).
    pub fn master_open(&self) -> bool {
        self.master_open
    }

    pub fn stdin_open(&self) -> bool {
        self.stdin_open
    }

    /// Give the pty our terminal's size (on start and on SIGWINCH).
    pub fn resize(&self) {
        if self.saved.is_none() {
            return;
        }
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: TIOCGWINSZ fills, and TIOCSWINSZ reads, the winsize we own.
        unsafe {
            if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 {
                libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
            }
        }
    }

    /// Move what stdin has to the pty. At end of input, send the pty's end-of-file (^D) so a
    /// shell reading it ends too.
    pub fn pump_stdin(&mut self) {
        let mut buf = [0u8; 4096];
        match nix::unistd::read(std::io::stdin(), &mut buf) {
            Ok(0) | Err(_) => {
                self.stdin_open = false;
                let _ = nix::unistd::write(&self.master, b"\x04");
            }
            Ok(n) => write_all(&self.master, &buf[..n]),
        }
    }

    /// Move what the pty has to stdout, until it has no more for now.
    pub fn pump_master(&mut self) {
        let mut buf = [0u8; 8192];
        loop {
            match nix::unistd::read(&self.master, &mut buf) {
                Ok(0) | Err(Errno::EIO) => {
                    self.master_open = false;
                    return;
                }
                Ok(n) => write_all(std::io::stdout(), &buf[..n]),
                Err(_) => return,
            }
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                t,
            );
        }
    }
}

fn write_all(fd: impl std::os::fd::AsFd, mut data: &[u8]) {
    while !data.is_empty() {
        match nix::unistd::write(&fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) | Err(Errno::EAGAIN) => std::thread::yield_now(),
            Err(_) => return,
        }
    }
}
