//! OOM kills, watched without polling: each task's cgroup gives an fd that becomes readable
//! when the OOM killer may have struck (`Container::oom_notifier`: an eventfd on cgroup v1, an
//! inotify watch of `memory.events` on v2), and one thread sleeps in `epoll_wait` on all of
//! them. (Polling every task's count every 100 ms cost an idle shim 10 wakeups and 2.7 ms of
//! CPU a second: 24% of a core for 200 shims.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cofferdam::OomNotifier;
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

/// A task's registration: its key in the epoll set, and the notifier, whose drop (closing its
/// fd) takes it out of the set.
pub type Watched = (u64, OomNotifier);

/// How long a wake-up is followed by checks of the count.
const SETTLE: Duration = Duration::from_secs(1);

/// How often a pending key is checked again.
const RECHECK: Duration = Duration::from_millis(20);

pub struct OomWatch {
    epoll: Epoll,
    next: AtomicU64,
}

impl OomWatch {
    pub fn new() -> nix::Result<OomWatch> {
        Ok(OomWatch {
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
            next: AtomicU64::new(1),
        })
    }

    /// Add a notifier to the set; None (and no OOM events for that task) if epoll refuses it.
    pub fn add(&self, n: OomNotifier) -> Option<Watched> {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        match self
            .epoll
            .add(&n, EpollEvent::new(EpollFlags::EPOLLIN, key))
        {
            Ok(()) => Some((key, n)),
            Err(e) => {
                log::warn!("watch for OOM kills: {e}");
                None
            }
        }
    }

    /// Wait for notifiers to become readable and give each one's key to `check`, which clears
    /// it and says whether that settled it: the OOM count grew, or the task is gone. On cgroup
    /// v1 the kernel signals as the cgroup goes under OOM, before the kill is counted, so a
    /// key not settled at once is checked again every 20 ms for a second. While keys are
    /// pending, the loop sleeps 20 ms between rounds, so that a cgroup whose events never stop
    /// (v2's `memory.events` also counts every time usage hits `memory.max`) costs at most 50
    /// checks a second. Forever.
    pub fn run(&self, mut check: impl FnMut(u64) -> bool) {
        let mut events = [EpollEvent::empty(); 16];
        let mut pending: Vec<(u64, Instant)> = Vec::new();
        loop {
            let timeout = if pending.is_empty() {
                EpollTimeout::NONE
            } else {
                EpollTimeout::ZERO
            };
            match self.epoll.wait(&mut events, timeout) {
                Ok(n) => {
                    for e in &events[..n] {
                        if !pending.iter().any(|(k, _)| *k == e.data()) {
                            pending.push((e.data(), Instant::now() + SETTLE));
                        }
                    }
                }
                Err(Errno::EINTR) => {}
                Err(e) => {
                    log::error!("OOM watch: epoll_wait: {e}");
                    return;
                }
            }
            let now = Instant::now();
            pending.retain(|(key, until)| !check(*key) && now < *until);
            if !pending.is_empty() {
                std::thread::sleep(RECHECK);
            }
        }
    }
}
