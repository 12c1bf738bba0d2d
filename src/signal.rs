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

/// Wait for the child `pid` to exit while passing every forwarded signal on to it. Returns its
/// exit status (128 + signal when killed). Call [`block_forwarded`] first.
pub fn forward_until_exit(pid: i32) -> Result<i32> {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let mut set = forwarded();
    set.add(Signal::SIGCHLD);
    let child = Pid::from_raw(pid);
    loop {
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(s) => return Ok(crate::exit_code(s)),
            Err(e) => return Err(crate::error::sys_err("waitpid")(e)),
        }
        let sig = set.wait().map_err(crate::error::sys_err("sigwait"))?;
        if sig != Signal::SIGCHLD {
            let _ = nix::sys::signal::kill(child, sig);
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
