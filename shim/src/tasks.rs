//! What the shim knows of its tasks: each container's init and exec'd processes, their state
//! and exit, and the pids the reaper reports.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::SystemTime;

use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;

use crate::io::{Live, Paths};

/// Where a process is in its life, as containerd's task API sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Created,
    Running,
    Stopped,
}

/// An init or an exec'd process.
pub struct Proc {
    pub pid: i32,
    pub phase: Phase,
    pub io: Paths,
    pub live: Live,
    /// Exit status (128 + signal when killed) and when it was reaped.
    pub exit: Option<(i32, SystemTime)>,
}

impl Proc {
    pub fn new(io: Paths) -> Proc {
        Proc {
            pid: 0,
            phase: Phase::Created,
            io,
            live: Live::default(),
            exit: None,
        }
    }

    pub fn exit_status(&self) -> u32 {
        self.exit.map_or(0, |(s, _)| s as u32)
    }

    pub fn exited_at(&self) -> Option<Timestamp> {
        self.exit.map(|(_, t)| timestamp(t))
    }
}

/// An exec'd process: its spec until it is started.
pub struct Exec {
    pub process: cofferdam::oci_spec::runtime::Process,
    pub proc: Proc,
}

/// A container: its init, its execs, where its state and rootfs are.
pub struct Task {
    pub bundle: PathBuf,
    /// The cofferdam state root of this task (`<bundle>/cofferdam`).
    pub root: PathBuf,
    /// The rootfs mounts containerd passed were mounted on `<bundle>/rootfs`.
    pub rootfs_mounted: bool,
    pub paused: bool,
    pub init: Proc,
    pub execs: HashMap<String, Exec>,
    /// The OOM kills counted so far (an OOM event is sent when it grows).
    pub ooms: u64,
    /// The cgroup's OOM notifier in the shim's watch, until the init exits.
    pub oom: Option<crate::oom::Watched>,
}

impl Task {
    /// The process `exec_id` names: the init for "".
    pub fn proc(&self, exec_id: &str) -> Option<&Proc> {
        if exec_id.is_empty() {
            Some(&self.init)
        } else {
            self.execs.get(exec_id).map(|e| &e.proc)
        }
    }

    pub fn proc_mut(&mut self, exec_id: &str) -> Option<&mut Proc> {
        if exec_id.is_empty() {
            Some(&mut self.init)
        } else {
            self.execs.get_mut(exec_id).map(|e| &mut e.proc)
        }
    }

    pub fn container(&self, id: &str) -> cofferdam::Result<cofferdam::Container> {
        cofferdam::Container::load(&self.root, id)
    }
}

/// Every task of the shim, and the pids of their processes.
#[derive(Default)]
pub struct Tasks {
    pub by_id: HashMap<String, Task>,
    /// pid → (container id, exec id; "" for the init).
    pub pids: HashMap<i32, (String, String)>,
}

pub fn timestamp(t: SystemTime) -> Timestamp {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
        ..Default::default()
    }
}

/// The cofferdam state root of a task whose bundle is `bundle`: inside it, so that it is
/// private to the task, found again by the `delete` action (which runs in the bundle), and
/// gone with the bundle.
pub fn state_root(bundle: &std::path::Path) -> PathBuf {
    bundle.join("cofferdam")
}
