//! Signal names as `kill` takes them (`TERM`, `SIGTERM`, `15`), and forwarding signals to a
//! foreground container.

use nix::sys::signal::{SigSet, Signal};
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// Parse `TERM`, `SIGTERM`, `term` or `15`.
pub fn parse(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| Error::InvalidSignal(s.to_string()));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>()
        .map_err(|_| Error::InvalidSignal(s.to_string()))
}

/// Signals a foreground `run` passes on to the container rather than acting on itself.
fn forwarded() -> SigSet {
    let mut set = SigSet::empty();
    for s in Signal::iterator() {
        if !matches!(
            s,
            Signal::SIGKILL
                | Signal::SIGSTOP
                | Signal::SIGCHLD
                | Signal::SIGSEGV
                | Signal::SIGBUS
                | Signal::SIGILL
                | Signal::SIGFPE
        ) {
            set.add(s);
        }
    }
    set
}

/// Block the signals `run` forwards, so none is lost between create and the wait loop.
/// The init unblocks everything before it execs.
pub fn block_forwarded() -> Result<()> {
    let mut set = forwarded();
    set.add(Signal::SIGCHLD);
    set.thread_block()
        .map_err(crate::error::sys_err("block signals"))
}

/// Wait for the child `pid` to exit while passing every forwarded signal on to it, and, with
/// the master of the container's terminal, proxying between it and our stdin/stdout (SIGWINCH
/// then resizes the pty instead of being forwarded). Returns the exit status (128 + signal
/// when killed). Call [`block_forwarded`] first, so no signal is lost before this loop.
pub fn forward_until_exit(pid: i32, terminal: Option<std::os::fd::OwnedFd>) -> Result<i32> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let mut set = forwarded();
    set.add(Signal::SIGCHLD);
    let sfd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(crate::error::sys_err("signalfd"))?;
    let mut proxy = terminal.map(crate::terminal::Proxy::new).transpose()?;
    let child = Pid::from_raw(pid);
    loop {
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(s) => {
                if let Some(p) = &mut proxy {
                    p.pump_master();
                }
                return Ok(crate::exit_code(s));
            }
            Err(e) => return Err(crate::error::sys_err("waitpid")(e)),
        }
        let stdin = std::io::stdin();
        let mut fds = vec![PollFd::new(
            std::os::fd::AsFd::as_fd(&sfd),
            PollFlags::POLLIN,
        )];
        // Slots: 0 signals, 1 the pty master, 2 stdin; a closed one waits on nothing.
        let none = PollFlags::empty();
        if let Some(p) = &proxy {
            fds.push(PollFd::new(
                p.master(),
                if p.master_open() {
                    PollFlags::POLLIN
                } else {
                    none
                },
            ));
            fds.push(PollFd::new(
                std::os::fd::AsFd::as_fd(&stdin),
                if p.stdin_open() {
                    PollFlags::POLLIN
                } else {
                    none
                },
            ));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(crate::error::sys_err("poll")(e)),
        }
        let ready = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (master_ready, stdin_ready) = (ready(1), ready(2));
        drop(fds);
        while let Ok(Some(info)) = sfd.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) => {}
                Ok(Signal::SIGWINCH) if proxy.is_some() => {
                    proxy.as_ref().expect("checked").resize()
                }
                Ok(sig) => {
                    let _ = nix::sys::signal::kill(child, sig);
                }
                Err(_) => {}
            }
        }
        if let Some(p) = &mut proxy {
            if master_ready {
                p.pump_master();
            }
            if stdin_ready {
                p.pump_stdin();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("TERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse("SIGKILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse("hup").unwrap(), Signal::SIGHUP);
        assert_eq!(parse("15").unwrap(), Signal::SIGTERM);
        assert!(parse("NOPE").is_err());
        assert!(parse("99").is_err());
    }
}
