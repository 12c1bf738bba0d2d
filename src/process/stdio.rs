//! The stdio of a container process given as fds ([`StdioFds`]), instead of the caller's own
//! 0, 1 and 2: a program that runs many containers (containerd's shim) hands each its own
//! pipes or FIFOs without touching its own stdio.

use std::os::fd::RawFd;

use nix::errno::Errno;

use crate::mount::{Step, fail};

/// The fds that become a container process's stdin, stdout and stderr (with
/// [`crate::CreateOptions::stdio`] or [`crate::ExecOptions::stdio`]). They are the caller's
/// open fds: the process gets copies at its fork, and the caller may close its own once
/// `create` or `exec` returns. With `process.terminal`, the terminal takes their place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StdioFds {
    /// Becomes the process's fd 0.
    pub stdin: RawFd,
    /// Becomes the process's fd 1.
    pub stdout: RawFd,
    /// Becomes the process's fd 2.
    pub stderr: RawFd,
}

impl StdioFds {
    /// Check in the caller that each fd is open, so that a bad one is an error of `create` or
    /// `exec` and not of the forked child.
    pub(crate) fn check(&self) -> crate::Result<()> {
        for fd in [self.stdin, self.stdout, self.stderr] {
            // SAFETY: F_GETFD only reads the flags of the fd number.
            if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
                return Err(crate::Error::InvalidConfig(format!(
                    "stdio fd {fd} is not open"
                )));
            }
        }
        Ok(())
    }

    /// In the forked child, first thing: make the fds our 0, 1 and 2. Each is copied above 2
    /// first, so that one given as another's target number (stdout given as fd 0) is not
    /// overwritten before it is used. The copies are close-on-exec; 0, 1 and 2 are not.
    pub(crate) fn install(&self) -> Step {
        let mut copies = [0; 3];
        for (copy, fd) in copies
            .iter_mut()
            .zip([self.stdin, self.stdout, self.stderr])
        {
            // SAFETY: fcntl duplicates an fd we hold; it touches no memory.
            *copy = Errno::result(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) })
                .map_err(|e| fail("copy a stdio fd", fd.to_string(), e))?;
        }
        for (target, copy) in copies.into_iter().enumerate() {
            // SAFETY: dup2 onto 0, 1 or 2, then close our copy: fd numbers we own.
            Errno::result(unsafe { libc::dup2(copy, target as RawFd) })
                .map_err(|e| fail("make a stdio fd", target.to_string(), e))?;
            // SAFETY: as above.
            unsafe { libc::close(copy) };
        }
        Ok(())
    }
}
