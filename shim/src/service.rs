//! The shim's side of the protocol (`start`, `delete`, the daemon) and the task service:
//! each request becomes calls into the cofferdam library.

use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::SystemTime;

use cofferdam::{Container, ContainerBuilder, CreateOptions, ExecOptions, Signal};
use containerd_shim::api;
use containerd_shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO, TaskOOM, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim::protos::protobuf::{Message, MessageField};
use containerd_shim::protos::topics;
use containerd_shim::protos::ttrpc::{self, Code};
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::{
    DeleteResponse, ExitSignal, Flags, StartOpts, TtrpcContext, TtrpcResult, api::Empty,
};

use crate::events::{self, Event};
use crate::io::{Paths, Pending};
use crate::oom::OomWatch;
use crate::reaper::{self, InFlight};
use crate::tasks::{Exec, Phase, Proc, Task, Tasks, state_root, timestamp};

/// The annotation by which containerd's CRI names a container's pod: one shim per value.
const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";

/// The shim: shared by the ttrpc server's threads, the reaper and the OOM watcher.
#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

struct Inner {
    namespace: String,
    /// This shim's socket (`unix:///run/containerd/s/<hash>`), removed when it exits.
    socket: String,
    exit: ExitSignal,
    tasks: Mutex<Tasks>,
    /// Notified on every exit, for `wait`.
    exited: Condvar,
    events: Mutex<Option<Sender<Event>>>,
    oom: OomWatch,
}

fn status(code: Code, msg: impl std::fmt::Display) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, msg.to_string()))
}

/// A library error as containerd's error codes (it maps them back to its errdefs).
fn lib_err(e: cofferdam::Error) -> ttrpc::Error {
    let code = match &e {
        cofferdam::Error::NotFound(_) => Code::NOT_FOUND,
        cofferdam::Error::BadStatus { .. } => Code::FAILED_PRECONDITION,
        cofferdam::Error::InvalidConfig(_) => Code::INVALID_ARGUMENT,
        _ => Code::UNKNOWN,
    };
    status(code, e)
}

fn not_found(what: &str, id: &str) -> ttrpc::Error {
    status(Code::NOT_FOUND, format!("{what} {id} not found"))
}

impl Tasks {
    /// The task named `id`, or containerd's NOT_FOUND.
    fn task(&self, id: &str) -> TtrpcResult<&Task> {
        self.by_id.get(id).ok_or_else(|| not_found("task", id))
    }

    /// As [`Tasks::task`], to change it.
    fn task_mut(&mut self, id: &str) -> TtrpcResult<&mut Task> {
        self.by_id.get_mut(id).ok_or_else(|| not_found("task", id))
    }
}

fn io_err(what: &str) -> impl Fn(std::io::Error) -> ttrpc::Error + '_ {
    move |e| status(Code::UNKNOWN, format!("{what}: {e}"))
}

/// The socket of the daemon that served the task in `bundle` (its `address` file, written by
/// `start`), removed if no daemon answers on it any more: a daemon that was killed cannot
/// remove it itself. A pod's daemon that still serves other tasks keeps it.
fn remove_dead_socket(bundle: &std::path::Path) {
    let Ok(address) = std::fs::read_to_string(bundle.join("address")) else {
        return;
    };
    let Some(path) = address.trim().strip_prefix("unix://") else {
        return;
    };
    // (An abstract socket, `unix://@...`, has no file to leave behind.)
    if path.starts_with('@') {
        return;
    }
    // connect(2) refuses any file that is not a listening socket, so the file's type is
    // checked as well: only a socket is ever removed.
    let is_socket = std::fs::symlink_metadata(path)
        .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()));
    if is_socket
        && let Err(e) = std::os::unix::net::UnixStream::connect(path)
        && e.kind() == std::io::ErrorKind::ConnectionRefused
    {
        let _ = std::fs::remove_file(path);
    }
}

impl Inner {
    fn tasks(&self) -> MutexGuard<'_, Tasks> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish<M: Message>(&self, topic: &'static str, event: M) {
        if let Some(tx) = &*self.events.lock().unwrap_or_else(|e| e.into_inner())
            && let Some(e) = Event::new(topic, &event)
        {
            let _ = tx.send(e);
        }
    }

    /// The reaper found `pid` exited: record it, send the OOM event the cgroup shows (before
    /// the exit, as CRI wants to see it), the exit, and wake the waiters.
    fn exited(&self, pid: i32, code: i32, at: SystemTime) {
        log::debug!("pid {pid} exited: {code}");
        let mut tasks = self.tasks();
        let Some((id, exec_id)) = tasks.pids.get(&pid).cloned() else {
            return;
        };
        let Some(task) = tasks.by_id.get_mut(&id) else {
            return;
        };
        if exec_id.is_empty() {
            let _ = self.check_oom(&id, task);
            // Its cgroup's notifier leaves the watch (the fd's close takes it out).
            task.oom = None;
        }
        let Some(p) = task.proc_mut(&exec_id) else {
            return;
        };
        p.phase = Phase::Stopped;
        p.exit = Some((code, at));
        let mut live = std::mem::take(&mut p.live);
        let master = live.master.take();
        drop(tasks);
        // The terminal's last output goes out before the exit event.
        live.wait_drained();
        let mut tasks = self.tasks();
        if let Some(p) = tasks.by_id.get_mut(&id).and_then(|t| t.proc_mut(&exec_id)) {
            p.live.master = master;
        }
        self.publish(
            topics::TASK_EXIT_EVENT_TOPIC,
            TaskExit {
                container_id: id.clone(),
                id: if exec_id.is_empty() { id } else { exec_id },
                pid: pid as u32,
                exit_status: code as u32,
                exited_at: MessageField::some(timestamp(at)),
                ..Default::default()
            },
        );
        drop(tasks);
        self.exited.notify_all();
    }

    /// Send an OOM event if the container's OOM kill count grew; whether it did.
    fn check_oom(&self, id: &str, task: &mut Task) -> bool {
        let Ok(c) = task.container(id) else {
            return false;
        };
        let n = c.oom_kills();
        let grew = n > task.ooms;
        if grew {
            task.ooms = n;
            self.publish(
                topics::TASK_OOM_EVENT_TOPIC,
                TaskOOM {
                    container_id: id.to_string(),
                    ..Default::default()
                },
            );
        }
        grew
    }

    /// Watch every task's cgroup for OOM kills (one thread for the shim, however many tasks
    /// it has, asleep until a cgroup's notifier wakes it).
    fn watch_oom(self: Arc<Self>) {
        self.oom.run(|key| {
            let mut tasks = self.tasks();
            let Some((id, task)) = tasks
                .by_id
                .iter_mut()
                .find(|(_, t)| t.oom.as_ref().is_some_and(|(k, _)| *k == key))
            else {
                return true;
            };
            if let Some((_, n)) = &task.oom {
                n.clear();
            }
            self.check_oom(id, task)
        });
    }
}

impl containerd_shim::Shim for Service {
    type T = Service;

    fn new(_runtime_id: &str, args: &Flags, _config: &mut containerd_shim::Config) -> Self {
        Service {
            inner: Arc::new(Inner {
                namespace: args.namespace.clone(),
                socket: args.socket.clone(),
                exit: ExitSignal::default(),
                tasks: Mutex::new(Tasks::default()),
                exited: Condvar::new(),
                events: Mutex::new(None),
                oom: OomWatch::new().expect("an epoll instance for the OOM watch"),
            }),
        }
    }

    /// `start`: the pod's shim if one runs (its socket is named after the sandbox id), else a
    /// new daemon; print its address. Runs in the task's bundle.
    fn start_shim(&mut self, opts: StartOpts) -> Result<String, containerd_shim::Error> {
        let grouping = std::fs::read("config.json")
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["annotations"][SANDBOX_ID].as_str().map(String::from))
            .unwrap_or_else(|| opts.id.clone());
        let (_pid, address) = containerd_shim::spawn(opts, &grouping, Vec::new())?;
        containerd_shim::util::write_address(&address)?;
        Ok(address)
    }

    /// `delete`: the daemon is gone (or never served this task); remove what is left of the
    /// task in its bundle (the cwd): its container, forced, the rootfs mount, and the dead
    /// daemon's socket.
    fn delete_shim(&mut self) -> Result<DeleteResponse, containerd_shim::Error> {
        let bundle = std::env::current_dir().unwrap_or_default();
        let args: Vec<_> = std::env::args_os().collect();
        let id = containerd_shim::parse(&args[1..])?.id;
        let root = state_root(&bundle);
        if let Err(e) = Container::delete_id(&root, &id, true) {
            log::warn!("delete {id}: {e}");
        }
        let _ = std::fs::remove_dir(&root);
        crate::rootfs::unmount_all(&bundle);
        remove_dead_socket(&bundle);
        Ok(DeleteResponse {
            exit_status: 128 + Signal::SIGKILL as u32,
            exited_at: MessageField::some(timestamp(SystemTime::now())),
            ..Default::default()
        })
    }

    fn wait(&mut self) {
        self.inner.exit.wait();
    }

    fn create_task_service(&self, publisher: RemotePublisher) -> Self::T {
        // events.rs sends them over a connection of its own (see why there).
        drop(publisher);
        let address = std::env::var("TTRPC_ADDRESS").unwrap_or_default();
        *self.inner.events.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(events::start(address, self.inner.namespace.clone()));
        let (known, exited) = (self.inner.clone(), self.inner.clone());
        reaper::start(
            move |pid| known.tasks().pids.contains_key(&pid),
            move |pid, code, at| exited.exited(pid, code, at),
        );
        let watcher = self.inner.clone();
        std::thread::Builder::new()
            .name("oom".into())
            .stack_size(256 << 10)
            .spawn(move || watcher.watch_oom())
            .expect("spawn the OOM watcher");
        self.clone()
    }
}

fn paths(stdin: &str, stdout: &str, stderr: &str, terminal: bool) -> Paths {
    Paths {
        stdin: stdin.into(),
        stdout: stdout.into(),
        stderr: stderr.into(),
        terminal,
    }
}

fn proto_status(phase: Phase, paused: bool) -> api::Status {
    match phase {
        Phase::Created => api::Status::CREATED,
        Phase::Running if paused => api::Status::PAUSED,
        Phase::Running => api::Status::RUNNING,
        Phase::Stopped => api::Status::STOPPED,
    }
}

impl Service {
    fn inner(&self) -> &Inner {
        &self.inner
    }

    fn create_task(&self, req: &api::CreateTaskRequest) -> TtrpcResult<u32> {
        if !req.checkpoint.is_empty() {
            return Err(status(
                Code::UNIMPLEMENTED,
                "checkpoint/restore is not supported",
            ));
        }
        let bundle = PathBuf::from(&req.bundle);
        let root = state_root(&bundle);
        let io = paths(&req.stdin, &req.stdout, &req.stderr, req.terminal);
        let mounted =
            crate::rootfs::mount_all(&bundle, &req.rootfs).map_err(|e| status(Code::UNKNOWN, e))?;
        let undo = |e| {
            if mounted {
                crate::rootfs::unmount_all(&bundle);
            }
            e
        };
        let pending = Pending::open(&io)
            .map_err(io_err("open the task's stdio"))
            .map_err(undo)?;
        let guard = InFlight::enter();
        let mut c = ContainerBuilder::new(&req.id)
            .state_root(&root)
            .bundle(&bundle)
            .options(CreateOptions {
                own_terminal: req.terminal,
                stdio: Some(pending.fds()),
                ..Default::default()
            })
            .create()
            .map_err(lib_err)
            .map_err(undo)?;
        let pid = c.pid();
        let live = pending
            .running(&io, c.take_terminal())
            .map_err(io_err("copy the task's terminal"))?;
        let mut init = Proc::new(io.clone());
        init.pid = pid;
        init.live = live;
        let mut tasks = self.inner().tasks();
        tasks.pids.insert(pid, (req.id.clone(), String::new()));
        tasks.by_id.insert(
            req.id.clone(),
            Task {
                bundle: bundle.clone(),
                root,
                rootfs_mounted: mounted,
                paused: false,
                init,
                execs: Default::default(),
                ooms: c.oom_kills(),
                oom: c
                    .oom_notifier()
                    .map_err(|e| log::warn!("OOM notifier of {}: {e}", req.id))
                    .ok()
                    .flatten()
                    .and_then(|n| self.inner().oom.add(n)),
            },
        );
        self.inner().publish(
            topics::TASK_CREATE_EVENT_TOPIC,
            TaskCreate {
                container_id: req.id.clone(),
                bundle: req.bundle.clone(),
                rootfs: req.rootfs.clone(),
                io: MessageField::some(TaskIO {
                    stdin: io.stdin,
                    stdout: io.stdout,
                    stderr: io.stderr,
                    terminal: io.terminal,
                    ..Default::default()
                }),
                pid: pid as u32,
                ..Default::default()
            },
        );
        drop(tasks);
        drop(guard);
        Ok(pid as u32)
    }

    fn start_exec(&self, id: &str, exec_id: &str) -> TtrpcResult<u32> {
        let (process, io, container) = {
            let tasks = self.inner().tasks();
            let task = tasks.task(id)?;
            let e = task
                .execs
                .get(exec_id)
                .ok_or_else(|| not_found("exec", exec_id))?;
            if e.proc.phase != Phase::Created {
                return Err(status(
                    Code::FAILED_PRECONDITION,
                    format!("exec {exec_id} was started already"),
                ));
            }
            (
                e.process.clone(),
                e.proc.io.clone(),
                task.container(id).map_err(lib_err)?,
            )
        };
        let pending = Pending::open(&io).map_err(io_err("open the exec's stdio"))?;
        let guard = InFlight::enter();
        let mut p = container
            .exec(
                &process,
                &ExecOptions {
                    own_terminal: io.terminal,
                    stdio: Some(pending.fds()),
                    ..Default::default()
                },
            )
            .map_err(lib_err)?;
        let live = pending
            .running(&io, p.take_terminal())
            .map_err(io_err("copy the exec's terminal"))?;
        let mut tasks = self.inner().tasks();
        tasks.pids.insert(p.pid, (id.into(), exec_id.into()));
        if let Some(e) = tasks
            .by_id
            .get_mut(id)
            .and_then(|t| t.execs.get_mut(exec_id))
        {
            e.proc.pid = p.pid;
            e.proc.phase = Phase::Running;
            e.proc.live = live;
        }
        self.inner().publish(
            topics::TASK_EXEC_STARTED_EVENT_TOPIC,
            TaskExecStarted {
                container_id: id.into(),
                exec_id: exec_id.into(),
                pid: p.pid as u32,
                ..Default::default()
            },
        );
        drop(tasks);
        drop(guard);
        Ok(p.pid as u32)
    }

    /// Remove the task: its container (forced: a created one is killed, as runc does), the
    /// rootfs mount, the state root.
    /// Freeze or thaw a task's container, and tell containerd (TaskPaused or TaskResumed).
    fn set_paused(&self, id: String, paused: bool) -> TtrpcResult<Empty> {
        let mut tasks = self.inner().tasks();
        let task = tasks.task_mut(&id)?;
        let c = task.container(&id).map_err(lib_err)?;
        if paused { c.pause() } else { c.resume() }.map_err(lib_err)?;
        task.paused = paused;
        if paused {
            let event = TaskPaused {
                container_id: id,
                ..Default::default()
            };
            self.inner().publish(topics::TASK_PAUSED_EVENT_TOPIC, event);
        } else {
            let event = TaskResumed {
                container_id: id,
                ..Default::default()
            };
            self.inner()
                .publish(topics::TASK_RESUMED_EVENT_TOPIC, event);
        }
        Ok(Empty::new())
    }

    fn delete_task(&self, id: &str) -> TtrpcResult<api::DeleteResponse> {
        let _guard = InFlight::enter();
        let mut tasks = self.inner().tasks();
        let task = tasks.task(id)?;
        if task.init.phase == Phase::Running {
            return Err(status(
                Code::FAILED_PRECONDITION,
                format!("task {id} is running: kill it first"),
            ));
        }
        Container::delete_id(&task.root, id, true).map_err(lib_err)?;
        let task = tasks.by_id.remove(id).expect("found above");
        tasks.pids.retain(|_, (c, _)| c != id);
        drop(tasks);
        let _ = std::fs::remove_dir(&task.root);
        if task.rootfs_mounted {
            crate::rootfs::unmount_all(&task.bundle);
        }
        let (pid, exit_status) = (task.init.pid as u32, task.init.exit_status());
        let exited_at = task.init.exited_at();
        self.inner().publish(
            topics::TASK_DELETE_EVENT_TOPIC,
            TaskDelete {
                container_id: id.into(),
                id: id.into(),
                pid,
                exit_status,
                exited_at: exited_at.clone().into(),
                ..Default::default()
            },
        );
        Ok(api::DeleteResponse {
            pid,
            exit_status,
            exited_at: exited_at.into(),
            ..Default::default()
        })
    }
}

impl containerd_shim::Task for Service {
    fn create(
        &self,
        _ctx: &TtrpcContext,
        req: api::CreateTaskRequest,
    ) -> TtrpcResult<api::CreateTaskResponse> {
        log::debug!("create {:?}", req);
        let pid = self.create_task(&req)?;
        Ok(api::CreateTaskResponse {
            pid,
            ..Default::default()
        })
    }

    fn start(
        &self,
        _ctx: &TtrpcContext,
        req: api::StartRequest,
    ) -> TtrpcResult<api::StartResponse> {
        log::debug!("start {:?}", req);
        if !req.exec_id.is_empty() {
            let pid = self.start_exec(&req.id, &req.exec_id)?;
            return Ok(api::StartResponse {
                pid,
                ..Default::default()
            });
        }
        // Under the lock: the reaper cannot report the exit of a fast process before its
        // start is recorded and its TaskStart queued.
        let _guard = InFlight::enter();
        let mut tasks = self.inner().tasks();
        let task = tasks.task_mut(&req.id)?;
        task.container(&req.id)
            .and_then(|c| c.start())
            .map_err(lib_err)?;
        task.init.phase = Phase::Running;
        let pid = task.init.pid as u32;
        self.inner().publish(
            topics::TASK_START_EVENT_TOPIC,
            TaskStart {
                container_id: req.id.clone(),
                pid,
                ..Default::default()
            },
        );
        Ok(api::StartResponse {
            pid,
            ..Default::default()
        })
    }

    fn state(
        &self,
        _ctx: &TtrpcContext,
        req: api::StateRequest,
    ) -> TtrpcResult<api::StateResponse> {
        log::debug!("state {:?}", req);
        let tasks = self.inner().tasks();
        let task = tasks.task(&req.id)?;
        let p = task
            .proc(&req.exec_id)
            .ok_or_else(|| not_found("exec", &req.exec_id))?;
        Ok(api::StateResponse {
            id: if req.exec_id.is_empty() {
                req.id.clone()
            } else {
                req.exec_id.clone()
            },
            bundle: task.bundle.to_string_lossy().into_owned(),
            pid: p.pid as u32,
            status: proto_status(p.phase, task.paused).into(),
            stdin: p.io.stdin.clone(),
            stdout: p.io.stdout.clone(),
            stderr: p.io.stderr.clone(),
            terminal: p.io.terminal,
            exit_status: p.exit_status(),
            exited_at: p.exited_at().into(),
            exec_id: req.exec_id,
            ..Default::default()
        })
    }

    fn pids(&self, _ctx: &TtrpcContext, req: api::PidsRequest) -> TtrpcResult<api::PidsResponse> {
        log::debug!("pids {:?}", req);
        let c = {
            let tasks = self.inner().tasks();
            let task = tasks.task(&req.id)?;
            task.container(&req.id).map_err(lib_err)?
        };
        let processes = c
            .processes()
            .map_err(lib_err)?
            .into_iter()
            .map(|pid| containerd_shim::protos::api::ProcessInfo {
                pid: pid as u32,
                ..Default::default()
            })
            .collect();
        Ok(api::PidsResponse {
            processes,
            ..Default::default()
        })
    }

    fn kill(&self, _ctx: &TtrpcContext, req: api::KillRequest) -> TtrpcResult<Empty> {
        log::debug!("kill {:?}", req);
        let signal = Signal::try_from(req.signal as i32)
            .map_err(|_| status(Code::INVALID_ARGUMENT, format!("bad signal {}", req.signal)))?;
        let tasks = self.inner().tasks();
        let task = tasks.task(&req.id)?;
        if req.exec_id.is_empty() {
            if task.init.phase == Phase::Stopped {
                return Err(not_found("process of task", &req.id));
            }
            let c = task.container(&req.id).map_err(lib_err)?;
            drop(tasks);
            return c
                .kill(signal, req.all)
                .map(|()| Empty::new())
                .map_err(lib_err);
        }
        let p = task
            .proc(&req.exec_id)
            .ok_or_else(|| not_found("exec", &req.exec_id))?;
        if p.phase != Phase::Running {
            return Err(not_found("process of exec", &req.exec_id));
        }
        // The pid is still ours to signal: it is reaped (and so can be reused) only by the
        // reaper, under this lock.
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(p.pid), signal)
            .map_err(|e| status(Code::UNKNOWN, format!("kill exec {}: {e}", req.exec_id)))?;
        Ok(Empty::new())
    }

    fn delete(
        &self,
        _ctx: &TtrpcContext,
        req: api::DeleteRequest,
    ) -> TtrpcResult<api::DeleteResponse> {
        log::debug!("delete {:?}", req);
        if req.exec_id.is_empty() {
            return self.delete_task(&req.id);
        }
        let mut tasks = self.inner().tasks();
        let task = tasks.task_mut(&req.id)?;
        let e = task
            .execs
            .get(&req.exec_id)
            .ok_or_else(|| not_found("exec", &req.exec_id))?;
        if e.proc.phase == Phase::Running {
            return Err(status(
                Code::FAILED_PRECONDITION,
                format!("exec {} is running", req.exec_id),
            ));
        }
        let e = task.execs.remove(&req.exec_id).expect("found above");
        tasks.pids.remove(&e.proc.pid);
        Ok(api::DeleteResponse {
            pid: e.proc.pid as u32,
            exit_status: e.proc.exit_status(),
            exited_at: e.proc.exited_at().into(),
            ..Default::default()
        })
    }

    fn exec(&self, _ctx: &TtrpcContext, req: api::ExecProcessRequest) -> TtrpcResult<Empty> {
        log::debug!("exec {:?}", req);
        let process: cofferdam::oci_spec::runtime::Process =
            serde_json::from_slice(&req.spec.value).map_err(|e| {
                status(
                    Code::INVALID_ARGUMENT,
                    format!("the exec's process spec: {e}"),
                )
            })?;
        let mut tasks = self.inner().tasks();
        let task = tasks.task_mut(&req.id)?;
        if task.execs.contains_key(&req.exec_id) {
            return Err(status(
                Code::ALREADY_EXISTS,
                format!("exec {} exists", req.exec_id),
            ));
        }
        let io = paths(&req.stdin, &req.stdout, &req.stderr, req.terminal);
        task.execs.insert(
            req.exec_id.clone(),
            Exec {
                process,
                proc: Proc::new(io),
            },
        );
        self.inner().publish(
            topics::TASK_EXEC_ADDED_EVENT_TOPIC,
            TaskExecAdded {
                container_id: req.id,
                exec_id: req.exec_id,
                ..Default::default()
            },
        );
        Ok(Empty::new())
    }

    fn resize_pty(&self, _ctx: &TtrpcContext, req: api::ResizePtyRequest) -> TtrpcResult<Empty> {
        log::debug!("resize_pty {:?}", req);
        let tasks = self.inner().tasks();
        let p = tasks
            .by_id
            .get(&req.id)
            .and_then(|t| t.proc(&req.exec_id))
            .ok_or_else(|| not_found("process", &req.id))?;
        if let Some(m) = &p.live.master {
            crate::io::resize(m, req.width, req.height).map_err(io_err("resize the terminal"))?;
        }
        Ok(Empty::new())
    }

    fn close_io(&self, _ctx: &TtrpcContext, req: api::CloseIORequest) -> TtrpcResult<Empty> {
        log::debug!("close_io {:?}", req);
        let mut tasks = self.inner().tasks();
        let p = tasks
            .by_id
            .get_mut(&req.id)
            .and_then(|t| t.proc_mut(&req.exec_id))
            .ok_or_else(|| not_found("process", &req.id))?;
        if req.stdin {
            p.live.close_stdin();
        }
        Ok(Empty::new())
    }

    fn pause(&self, _ctx: &TtrpcContext, req: api::PauseRequest) -> TtrpcResult<Empty> {
        log::debug!("pause {:?}", req);
        self.set_paused(req.id, true)
    }

    fn resume(&self, _ctx: &TtrpcContext, req: api::ResumeRequest) -> TtrpcResult<Empty> {
        log::debug!("resume {:?}", req);
        self.set_paused(req.id, false)
    }

    fn update(&self, _ctx: &TtrpcContext, req: api::UpdateTaskRequest) -> TtrpcResult<Empty> {
        log::debug!("update {:?}", req);
        let resources: cofferdam::oci_spec::runtime::LinuxResources =
            serde_json::from_slice(&req.resources.value).map_err(|e| {
                status(
                    Code::INVALID_ARGUMENT,
                    format!("the update's resources: {e}"),
                )
            })?;
        let c = {
            let tasks = self.inner().tasks();
            let task = tasks.task(&req.id)?;
            task.container(&req.id).map_err(lib_err)?
        };
        c.update(&resources).map_err(lib_err)?;
        Ok(Empty::new())
    }

    fn wait(&self, _ctx: &TtrpcContext, req: api::WaitRequest) -> TtrpcResult<api::WaitResponse> {
        log::debug!("wait {:?}", req);
        let mut tasks = self.inner().tasks();
        loop {
            let p = tasks
                .by_id
                .get(&req.id)
                .and_then(|t| t.proc(&req.exec_id))
                .ok_or_else(|| not_found("process", &req.id))?;
            if p.phase == Phase::Stopped {
                return Ok(api::WaitResponse {
                    exit_status: p.exit_status(),
                    exited_at: p.exited_at().into(),
                    ..Default::default()
                });
            }
            tasks = self
                .inner
                .exited
                .wait(tasks)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    fn stats(
        &self,
        _ctx: &TtrpcContext,
        req: api::StatsRequest,
    ) -> TtrpcResult<api::StatsResponse> {
        log::debug!("stats {:?}", req);
        let c = {
            let tasks = self.inner().tasks();
            let task = tasks.task(&req.id)?;
            task.container(&req.id).map_err(lib_err)?
        };
        let stats = c.stats().map_err(lib_err)?;
        Ok(api::StatsResponse {
            stats: MessageField::some(crate::metrics::to_any(&stats)),
            ..Default::default()
        })
    }

    fn connect(
        &self,
        _ctx: &TtrpcContext,
        req: api::ConnectRequest,
    ) -> TtrpcResult<api::ConnectResponse> {
        log::debug!("connect {:?}", req);
        let tasks = self.inner().tasks();
        let task_pid = tasks.by_id.get(&req.id).map_or(0, |t| t.init.pid as u32);
        Ok(api::ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        })
    }

    /// containerd asks after each task's delete; the shim goes once it has no task left.
    fn shutdown(&self, _ctx: &TtrpcContext, _req: api::ShutdownRequest) -> TtrpcResult<Empty> {
        log::debug!("shutdown {:?}", _req);
        if !self.inner().tasks().by_id.is_empty() {
            return Ok(Empty::new());
        }
        if let Some(path) = self.inner.socket.strip_prefix("unix://") {
            let _ = std::fs::remove_file(path);
        }
        self.inner.exit.signal();
        Ok(Empty::new())
    }
}
