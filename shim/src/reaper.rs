//! The shim is a subreaper: its container inits and exec'd processes are its children, and
//! the processes they leave behind are reparented to it. One thread reaps them all.
//!
//! A plain `waitpid(-1)` would also take the exit status of children the library forks and
//! waits for itself (hooks, an init that failed during `create`). So the thread first looks
//! at an exited child without reaping it (`WNOWAIT`): a process the shim knows (an init, an
//! exec) is reaped and reported; another is reaped only while no library call is in flight,
//! since it may be one such call's own child, which the call reaps.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, SystemTime};

/// Library calls in flight that may fork and wait for children of their own.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
/// Woken when a child is forked, for a reaper that found none.
static FORKED: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());

/// Held across a library call that forks (create, start, exec, delete), and across the
/// registration of the pid it returns, so that the reaper neither steals the call's own
/// children nor reaps the new process before the shim knows it.
pub struct InFlight(());

impl InFlight {
    pub fn enter() -> InFlight {
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        InFlight(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        FORKED.1.notify_all();
    }
}

/// Start the reaping thread. `is_known(pid)` says whether the pid is an init or exec of the
/// shim; `exited(pid, status, time)` is called for those, with a shell's exit status (128 +
/// signal).
pub fn start(
    is_known: impl Fn(i32) -> bool + Send + 'static,
    exited: impl Fn(i32, i32, SystemTime) + Send + 'static,
) {
    std::thread::Builder::new()
        .name("reaper".into())
        .spawn(move || reap(is_known, exited))
        .expect("spawn the reaper thread");
}

fn reap(is_known: impl Fn(i32) -> bool, exited: impl Fn(i32, i32, SystemTime)) {
    loop {
        // SAFETY: siginfo_t is plain data; all-zero is a valid value for waitid to fill.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid fills `info`, which we own; WNOWAIT leaves the child a zombie.
        let r = unsafe { libc::waitid(libc::P_ALL, 0, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if r < 0 {
            match nix::errno::Errno::last() {
                nix::errno::Errno::EINTR => {}
                // No child at all: wait until a call may have forked one.
                _ => {
                    let guard = FORKED.0.lock().unwrap_or_else(|e| e.into_inner());
                    let _ = FORKED.1.wait_timeout(guard, Duration::from_secs(1));
                }
            }
            continue;
        }
        // SAFETY: waitid returned a child, so the siginfo's pid field is set.
        let pid = unsafe { info.si_pid() };
        let known = is_known(pid);
        if !known && IN_FLIGHT.load(Ordering::SeqCst) > 0 {
            // Perhaps a library call's own child, which it reaps: look again shortly.
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        let at = SystemTime::now();
        let status = match nix::sys::wait::waitpid(
            nix::unistd::Pid::from_raw(pid),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        ) {
            Ok(s) => cofferdam::exit_code(s),
            // Reaped meanwhile by the call that forked it.
            Err(_) => continue,
        };
        if known {
            exited(pid, status, at);
        }
    }
}
