//! The container's init: one fork of the calling process, no re-exec. This file holds the whole
//! path from `create` to `execve`, in the order it runs:
//!
//! ```text
//!  create (parent)                          init (child, pid 1 of the new pid namespace)
//!  ─────────────────                        ─────────────────────────────────────────────
//!  socketpair, mkfifo exec.fifo
//!  enter pid ns for children, clone3
//!  into the cgroup2 dir (else fork) ──────► reset signals, open exec.fifo, umask 0
//!  make the v1 cgroup dirs, meanwhile:      join / unshare namespaces (not cgroup),
//!  write oom_score_adj                      keyring, hostname, domainname, mounts...
//!  send 'G' ──────────────────────────────► (awaited at the first cgroup mount, or
//!                                           after the mounts) join the v1 cgroup dirs,
//!                                           unshare cgroupns
//!                                           ...the rest of the mounts, /dev
//!  (only with prestart, createRuntime or createContainer hooks:)
//!  run prestart, createRuntime ◄─────────── 'H'
//!  send 'h' + state ───────────────────────► run createContainer hooks
//!                                           pivot_root, sysctl,
//!                                           masked/readonly paths, readonly root
//!                                           pty to --console-socket (terminal),
//!                                           rlimits, groups/gid/uid, capabilities,
//!                                           no_new_privs, umask, cwd, find executable,
//!                                           fds close-on-exec, seccomp
//!  wait ◄─────────────────── 'R' or 'E'+error
//!  state.json: committed; --pid-file
//!  send 'C' + state ──────────────────────► (EOF instead: create died, exit)
//!  exit; init is reparented                 block reading exec.fifo
//!  start: write one byte to exec.fifo ────► startContainer hooks, execve
//!  wait until no reader of exec.fifo is left
//!  (the execve closed it), poststart hooks
//! ```
//!
//! If `create` dies before 'C', the init sees EOF on the socket and exits, so no init is ever
//! left without a state file that names it.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType};
use nix::unistd::{ForkResult, Pid};
use oci_spec::runtime::{LinuxCapabilities, LinuxSeccomp, PosixRlimitType, Process, Spec};

use crate::cgroups::{Cgroup, Phase};
use crate::error::{Error, InitError, Result};
use crate::mount::{self, FsContext, Step, fail};
use crate::namespaces::NamespacePlan;
use crate::state::{Persisted, Status};

mod stdio;
pub use stdio::StdioFds;

pub(crate) mod attrs;

/// Everything the init needs, prepared by `create` before the fork.
pub struct InitConfig<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub cgroup: &'a Cgroup,
    pub namespaces: &'a NamespacePlan,
    /// exec.fifo, which the init opens (see `init_steps`).
    pub exec_fifo: &'a Path,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// The caller's fds that the container process gets (see `container::preserved_fds`).
    pub preserve_fds: Vec<i32>,
    /// Connected `--console-socket`, when `process.terminal` is set.
    pub console: Option<OwnedFd>,
    /// The container process's stdio, instead of ours.
    pub stdio: Option<StdioFds>,
}

/// Messages bigger than this (a state JSON with huge annotations) are refused, not cut.
const MAX_MSG: usize = 1 << 20;

/// A child forked by `create` (the init) or `exec`, until `create` commits it
/// ([`Pending::commit`]) or it execs. Dropping it before that kills and reaps it.
pub struct Pending {
    pub pid: Pid,
    sock: Option<OwnedFd>,
    /// Cloned straight into the cgroup2 directory (`CLONE_INTO_CGROUP`).
    born_in_v2: bool,
}

impl Pending {
    /// Tell the init that its state is recorded; from now on it outlives `create`. The state
    /// JSON goes with it, for the startContainer hooks.
    pub fn commit(mut self, state_json: &[u8]) -> Result<()> {
        let sock = self.sock.take().expect("commit once");
        send(&sock, &[b"C", state_json].concat())
            .map_err(crate::error::sys_err("send commit to init"))
    }
}

impl Pending {
    /// The child is on its own now (it exec'd): dropping no longer kills it.
    fn release(mut self) {
        self.sock = None;
    }
}

/// A child's 'E' message: the error it sent, or why it could not be read.
fn decode_error(payload: &[u8]) -> InitError {
    serde_json::from_slice(payload).unwrap_or_else(|e| InitError {
        step: "decode the error of a child".into(),
        path: String::new(),
        errno: 0,
        detail: e.to_string(),
    })
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.sock.is_some() {
            let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(self.pid, None);
        }
    }
}

/// Fork the init. It waits for [`Pending::setup`]; `create` records its pid in between, so a
/// `delete --force` after a crash finds it.
pub fn fork_init(cfg: &InitConfig) -> Result<Pending> {
    let (parent_sock, child_sock) = sync_pair()?;
    // Everything the child will execve with is built here, so an invalid string fails in
    // `create` rather than in the child.
    let mut exec = ExecPlan::new(
        cfg.spec.process().as_ref().expect("validated by create"),
        cfg.spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()),
    )?;
    exec.rlimits_late = !cfg.namespaces.new_user;
    exec.attrs = attrs::Attrs::for_init(
        cfg.spec.process().as_ref().expect("validated by create"),
        cfg.spec.linux().as_ref(),
    )?;

    let mut born_in_v2 = false;
    let pid = if cfg.namespaces.new_user {
        // A clone that makes the user namespace (and the pid one, owned by it) with the
        // child, as fork would otherwise: a pid namespace made before would belong to the
        // host's user namespace, and the init could not mount its /proc.
        // SAFETY: the child only runs `init`, which never returns.
        match unsafe { crate::namespaces::fork_into(cfg.namespaces.clone_flags()) }
            .map_err(crate::error::sys_err("clone into a new user namespace"))?
        {
            0 => {
                drop(parent_sock);
                init(cfg, &exec, child_sock)
            }
            child => Pid::from_raw(child),
        }
    } else {
        let _pidns = cfg.namespaces.enter_pid_for_children()?;
        // Born in its cgroup2 directory, the init needs no migration there (see
        // `Cgroup::join_v1_self` for what a migration costs); the parent moves it when the
        // kernel cannot (older than 5.7) or when the clone is refused, and then reports why.
        // A raw clone runs no atfork handlers, so only a single-threaded caller (the CLI)
        // takes this way; an embedding program with threads gets glibc's fork.
        let v2 = cfg
            .cgroup
            .v2_dir()
            .filter(|_| single_threaded())
            .and_then(|d| {
                let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
                crate::container::open_fd(&d.path, flags).ok()
            });
        // SAFETY: the child only runs `init`, which never returns (it execs or _exits).
        match v2.as_ref().map(|fd| unsafe { clone_into_cgroup(fd) }) {
            Some(Ok(0)) => {
                drop(parent_sock);
                init(cfg, &exec, child_sock)
            }
            Some(Ok(child)) => {
                born_in_v2 = true;
                Pid::from_raw(child)
            }
            // SAFETY: as above. If the embedding program has threads, glibc's fork leaves
            // malloc usable in the child, and init takes no other lock they may hold.
            None | Some(Err(_)) => {
                match unsafe { nix::unistd::fork() }.map_err(crate::error::sys_err("fork"))? {
                    ForkResult::Child => {
                        drop(parent_sock);
                        init(cfg, &exec, child_sock)
                    }
                    ForkResult::Parent { child } => child,
                }
            }
        }
    };
    drop(child_sock);
    Ok(Pending {
        pid,
        sock: Some(parent_sock),
        born_in_v2,
    })
}

fn single_threaded() -> bool {
    std::fs::File::open("/proc/self/stat")
        .ok()
        .and_then(|f| <procfs::process::Stat as procfs::FromRead>::from_read(f).ok())
        .is_some_and(|s| s.num_threads == 1)
}

/// fork, with the child born in the cgroup2 directory `dir`: clone3 with `CLONE_INTO_CGROUP`
/// (Linux 5.7), no new stack and no `CLONE_VM`, so it returns twice as fork does.
///
/// # Safety
/// As for fork: the child must only run code that never returns (it execs or `_exit`s). Like
/// `namespaces::fork_into`, it runs no atfork handlers: call it from a single-threaded
/// process, or from a thread whose siblings hold no lock the child takes (malloc's).
unsafe fn clone_into_cgroup(dir: &OwnedFd) -> std::result::Result<i32, Errno> {
    // struct clone_args, up to `cgroup` (CLONE_ARGS_SIZE_VER2).
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: dir.as_raw_fd() as u64,
        ..Default::default()
    };
    // SAFETY: clone3 reads `args`, which we own and whose size we pass; the caller upholds
    // fork's contract for the child.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    Errno::result(r).map(|pid| pid as i32)
}

impl Pending {
    /// Drive the init through its setup (running the create-time hooks with `state` when it
    /// asks). Returns once the init is ready and waits for the commit, or with the init's own
    /// error (step, path, errno).
    pub fn setup(&self, cfg: &InitConfig, state: &Persisted) -> Result<()> {
        let pid = self.pid;
        let sock = self.sock.as_ref().expect("not committed yet");
        if cfg.namespaces.new_user {
            let ns = cfg.namespaces;
            crate::namespaces::write_id_maps(pid.as_raw(), &ns.uid_map, &ns.gid_map)?;
            if let Some(p) = cfg.spec.process() {
                set_rlimits_of(pid.as_raw(), p)?;
            }
            // Inside its user namespace, the init could not write the host's cgroup files.
            cfg.cgroup.add(pid.as_raw())?;
        } else if !self.born_in_v2 {
            // The init joins its v1 directories itself, after 'G'.
            cfg.cgroup.add_v2(pid.as_raw())?;
        }
        log::debug!("init {pid}: what create places of it is placed");
        if let Some(adj) = cfg.spec.process().as_ref().and_then(Process::oom_score_adj) {
            let path = format!("/proc/{pid}/oom_score_adj");
            std::fs::write(&path, adj.to_string()).map_err(crate::error::io_err("write", &path))?;
        }
        // The init says when its network namespace is made: before it waits for 'G', or in a
        // new user namespace, after ('G' lets it enter its namespaces).
        let net_devices = crate::netdev::wanted(cfg.spec);
        if net_devices && !cfg.namespaces.new_user {
            self.move_net_devices(cfg)?;
        }
        // An init that failed early has exited with its error queued on the socket: read it
        // below rather than report the failed send.
        let _ = send(sock, b"G");
        if net_devices && cfg.namespaces.new_user {
            self.move_net_devices(cfg)?;
        }
        // Limits go on while the init sets up; device rules once it has made its /dev, so
        // that its mknods are not refused (runc also applies them after the rootfs is ready).
        let resources = cfg
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().as_ref());
        if let Some(r) = resources {
            cfg.cgroup.apply(r, Phase::Limits)?;
        }

        let seccomp = cfg.spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
        let mut buf = vec![0u8; MAX_MSG];
        let recv_any = |buf: &mut [u8]| {
            match crate::terminal::recv_fd(sock.as_raw_fd(), buf) {
                // An init that failed before reading 'G' exits with it unread, and the kernel
                // then reports ECONNRESET once, ahead of the error the init queued: read that.
                Err(Errno::ECONNRESET) => crate::terminal::recv_fd(sock.as_raw_fd(), buf),
                r => r,
            }
            .map_err(crate::error::sys_err("receive from init"))
        };
        let (mut n, mut fd) = recv_any(&mut buf)?;
        if n == 1 && buf[0] == b'H' {
            let json = state.hook_json(Status::Creating);
            let hooks = cfg
                .spec
                .hooks()
                .as_ref()
                .expect("the init asks only when there are hooks");
            #[allow(deprecated)]
            let prestart = hooks.prestart().as_deref().unwrap_or_default();
            crate::hooks::run("prestart", prestart, &json)?;
            crate::hooks::run(
                "createRuntime",
                hooks.create_runtime().as_deref().unwrap_or_default(),
                &json,
            )?;
            send(sock, &[b"h", json.as_slice()].concat())
                .map_err(crate::error::sys_err("send hooks done to init"))?;
            (n, fd) = recv_any(&mut buf)?;
        }
        if n == 1 && buf[0] == b'S' {
            forward_listener(seccomp, fd, pid.as_raw(), state.to_oci(Status::Creating))?;
            (n, _) = recv_any(&mut buf)?;
        }
        match buf.first().filter(|_| n > 0) {
            Some(b'R') if n == 1 => match resources {
                Some(r) => cfg.cgroup.apply(r, Phase::Devices),
                None => Ok(()),
            },
            Some(b'E') if n > 1 => Err(Error::Init(decode_error(&buf[1..n]))),
            _ => Err(Error::Init(InitError {
                step: "init exited during setup".into(),
                path: String::new(),
                errno: 0,
                detail: String::new(),
            })),
        }
    }
}

impl Pending {
    /// `linux.netDevices`: once the init says 'N' (its network namespace is made), move the
    /// devices there, and let it go on.
    fn move_net_devices(&self, cfg: &InitConfig) -> Result<()> {
        let sock = self.sock.as_ref().expect("not committed yet");
        let mut buf = vec![0u8; MAX_MSG];
        let n = recv(sock, &mut buf).map_err(crate::error::sys_err("receive from init"))?;
        match buf.first().filter(|_| n > 0) {
            Some(b'N') if n == 1 => {}
            Some(b'E') if n > 1 => return Err(Error::Init(decode_error(&buf[1..n]))),
            _ => {
                return Err(Error::Init(InitError {
                    step: "init exited during setup".into(),
                    path: String::new(),
                    errno: 0,
                    detail: String::new(),
                }));
            }
        }
        crate::netdev::move_into(cfg.spec, self.pid.as_raw())?;
        send(sock, b"n").map_err(crate::error::sys_err("send network devices moved to init"))
    }
}

/// The init. Never returns: it execs the container process or exits.
fn init(cfg: &InitConfig, exec: &ExecPlan, sock: OwnedFd) -> ! {
    child_main(&sock, || init_steps(cfg, exec, &sock))
}

/// Run a forked child's steps; they end in execve. A failure goes to the parent over `sock`
/// (or, once nobody listens there, to stderr) and the child exits 127.
fn child_main(sock: &OwnedFd, steps: impl FnOnce() -> Step<Infallible>) -> ! {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(steps));
    let err = match result {
        Ok(Err(e)) => e,
        Ok(Ok(never)) => match never {},
        Err(_) => InitError {
            step: "panicked".into(),
            path: String::new(),
            errno: 0,
            detail: String::new(),
        },
    };
    let mut msg = b"E".to_vec();
    msg.extend(serde_json::to_vec(&err).unwrap_or_default());
    if send(sock, &msg).is_err() {
        // Past the handshake the only one listening is the container's stderr. A raw write:
        // std's stderr lock may have been held by another thread of the parent at fork time.
        let line = format!("cofferdam: {}\n", Error::Init(err));
        let _ = nix::unistd::write(std::io::stderr(), line.as_bytes());
    }
    // SAFETY: _exit ends the process without running the caller's atexit handlers or
    // destructors, which belong to the parent's copy of the program.
    unsafe { libc::_exit(127) }
}

/// A process to start inside a running container (`exec`), prepared before the fork.
pub struct ExecConfig<'a> {
    pub process: &'a Process,
    /// A pidfd of the container's init: its namespaces are the ones joined.
    pub init: &'a OwnedFd,
    /// The init's namespaces that differ from ours (CLONE_NEW* flags, pid apart).
    pub namespaces: libc::c_int,
    /// Whether the init's pid namespace differs from ours.
    pub pid_namespace: bool,
    /// The init's root, for a container without a mount namespace of its own (whose root is
    /// a chroot, which joining namespaces does not give).
    pub root: Option<OwnedFd>,
    pub cgroup: &'a Cgroup,
    pub console: Option<OwnedFd>,
    pub preserve_fds: Vec<i32>,
    /// The process's stdio, instead of ours.
    pub stdio: Option<StdioFds>,
    /// The container's seccomp profile, put on the process too.
    pub seccomp: Option<&'a LinuxSeccomp>,
    /// The container's state, for a seccomp agent.
    pub state: crate::state::ContainerState,
    /// The container is paused (`--ignore-paused`): join its cgroup only just before execve.
    pub join_cgroup_last: bool,
    /// Scheduler, I/O priority, personality, memory policy and CPU affinity of the process.
    pub attrs: attrs::Attrs,
}

/// Fork a process into the container: it joins the init's namespaces (through the pidfd, so a
/// reused pid cannot redirect it) and its cgroup, becomes the process, and execs. Returns its
/// pid once execve succeeded (the sync socket closes on exec), or its error.
pub fn spawn_exec(cfg: &ExecConfig) -> Result<Pid> {
    let (parent_sock, child_sock) = sync_pair()?;
    let mut exec = ExecPlan::new(cfg.process, cfg.seccomp)?;
    exec.rlimits_late = false;
    exec.attrs = cfg.attrs.clone();
    let pid = {
        // The child is born on execCPUAffinity.initial (our thread's until the fork).
        let _cpus = cfg.attrs.initial_affinity()?;
        let _pidns = if cfg.pid_namespace {
            Some(crate::namespaces::PidNsGuard::enter(cfg.init)?)
        } else {
            None
        };
        // SAFETY: as in `fork_init`: the child only runs `exec_steps`, which never returns.
        match unsafe { nix::unistd::fork() }.map_err(crate::error::sys_err("fork"))? {
            ForkResult::Child => {
                drop(parent_sock);
                child_main(&child_sock, || exec_steps(cfg, &exec, &child_sock))
            }
            ForkResult::Parent { child } => child,
        }
    };
    drop(child_sock);
    // Until the child has exec'd, dropping this kills and reaps it.
    let child = Pending {
        pid,
        sock: Some(parent_sock),
        born_in_v2: false,
    };
    let sock = child.sock.as_ref().expect("set above");
    if !cfg.join_cgroup_last {
        cfg.cgroup.add(pid.as_raw())?;
        cfg.attrs.final_affinity(pid.as_raw())?;
    }
    send(sock, b"G").map_err(crate::error::sys_err("send go to exec"))?;
    let mut buf = vec![0u8; 8192];
    loop {
        let (n, fd) = crate::terminal::recv_fd(sock.as_raw_fd(), &mut buf)
            .map_err(crate::error::sys_err("receive from exec"))?;
        match (n, buf[0]) {
            // EOF: the socket was closed by execve.
            (0, _) => {
                child.release();
                return Ok(pid);
            }
            (1, b'S') => forward_listener(cfg.seccomp, fd, pid.as_raw(), cfg.state.clone())?,
            // Ready to exec in a paused container: into its (frozen) cgroup now; the process
            // runs on when the container is resumed.
            (1, b'X') if cfg.join_cgroup_last => {
                cfg.cgroup.add(pid.as_raw())?;
                cfg.attrs.final_affinity(pid.as_raw())?;
                send(sock, b"g").map_err(crate::error::sys_err("send go to exec"))?;
                child.release();
                return Ok(pid);
            }
            (n, b'E') if n > 1 => return Err(Error::Exec(decode_error(&buf[1..n]))),
            _ => {
                return Err(crate::error::sys_err("unexpected message from exec")(
                    Errno::EPROTO,
                ));
            }
        }
    }
}

/// The config's rlimits on another process (the init, in a user namespace that could not
/// raise a hard limit itself).
fn set_rlimits_of(pid: i32, process: &Process) -> Result<()> {
    for r in process.rlimits().iter().flatten() {
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: prlimit reads the rlimit we own and writes nothing (old is null).
        Errno::result(unsafe {
            libc::prlimit(pid, rlimit_resource(r.typ()), &lim, std::ptr::null_mut())
        })
        .map_err(crate::error::sys_err("prlimit on the init"))?;
    }
    Ok(())
}

/// A child sent its seccomp listener ('S'): pass it on to the agent at listenerPath.
fn forward_listener(
    seccomp: Option<&LinuxSeccomp>,
    fd: Option<OwnedFd>,
    pid: i32,
    state: crate::state::ContainerState,
) -> Result<()> {
    let (Some(s), Some(fd)) = (seccomp, fd) else {
        return Err(crate::error::sys_err(
            "seccomp listener message without a listener",
        )(Errno::EPROTO));
    };
    crate::seccomp::send_to_agent(s, &fd, pid, state)
}

fn exec_steps(cfg: &ExecConfig, exec: &ExecPlan, sock: &OwnedFd) -> Step<Infallible> {
    reset_signals();
    if let Some(stdio) = &cfg.stdio {
        stdio.install()?;
    }
    undumpable()?;
    wait_for(sock, b'G')?;
    // Still in the host's user namespace, where a hard limit can be raised.
    set_rlimits(cfg.process)?;
    if cfg.namespaces != 0 {
        // One setns for all of them, through the pidfd (Linux 5.8+). Joining the mount
        // namespace also moves our root and cwd to the container's root.
        // SAFETY: setns with our pidfd and flags; it touches no memory of ours.
        Errno::result(unsafe { libc::setns(cfg.init.as_raw_fd(), cfg.namespaces) })
            .map_err(|e| fail("join the container's namespaces", "", e))?;
    }
    if let Some(root) = &cfg.root {
        // SAFETY: fchdir to our fd, then chroot to the cwd; no memory of ours is touched.
        unsafe {
            Errno::result(libc::fchdir(root.as_raw_fd()))
                .map_err(|e| fail("chdir to the container's root", "", e))?;
            Errno::result(libc::chroot(c".".as_ptr()))
                .map_err(|e| fail("chroot to the container's root", "", e))?;
        }
    }
    let b = become_process(cfg.process, cfg.console.as_ref(), exec, &cfg.preserve_fds)?;
    send_listener(sock, b.seccomp_listener)?;
    if cfg.join_cgroup_last {
        // Paused container: `create` puts us in its frozen cgroup only now, so that we freeze
        // here, ready, and exec when it is resumed.
        send(sock, b"X").map_err(|e| fail("send ready to exec", "", e))?;
        wait_for(sock, b'g')?;
    }
    exec_program(exec, &b.program, &b.env)
}

fn init_steps(cfg: &InitConfig, exec: &ExecPlan, sock: &OwnedFd) -> Step<Infallible> {
    reset_signals();
    // exec.fifo, read-write so that our read blocks until `start` writes. Opened here, by us
    // alone, and not in `create`: an fd of it in the caller would be inherited by whatever
    // init or exec another thread of the caller (a shim) forks meanwhile, and `start` waits
    // until no reader is left (`wait_for_execve`). Open before 'R', so before `start` can run.
    let exec_fifo = nix::fcntl::open(
        cfg.exec_fifo,
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| fail("open", cfg.exec_fifo, e))?;
    if let Some(stdio) = &cfg.stdio {
        stdio.install()?;
    }
    // In a new user namespace, only once `create` has written our maps: an unprivileged
    // creator cannot write them to a process that is not dumpable. Nothing else is in our
    // namespaces before then.
    if !cfg.namespaces.new_user {
        undumpable()?;
    }
    // SAFETY: umask only sets a process attribute. Devices and dirs get exactly their modes.
    unsafe { libc::umask(0) };

    // `create` makes our v1 cgroup directories meanwhile (we were cloned into the cgroup2
    // one), so the setup that does not depend on the cgroup goes on in parallel, and we wait
    // for 'G' only where it matters: before the cgroup namespace (rooted at our cgroup) and
    // the cgroup mounts, and before pivot_root at the latest. Then we join the v1 directories
    // ourselves, which is cheaper than being moved (`Cgroup::join_v1_self`), from here where
    // the host's cgroup mounts are still in view. (Kernel objects made before that, such as
    // the namespaces, are charged to the caller's v1 cgroups, as they are with crun, whose
    // clone makes them before placement.) In a new user namespace, `create` moves us.
    let placed = std::cell::Cell::new(false);
    let in_cgroup = || -> Step {
        if !placed.get() {
            wait_for(sock, b'G')?;
            if !cfg.namespaces.new_user {
                cfg.cgroup
                    .join_v1_self()
                    .map_err(|(path, e)| fail("join cgroup", &path, e))?;
            }
            cfg.namespaces
                .enter_cgroup()
                .map_err(|(op, e)| fail(op, "", e))?;
            // In our cpuset now: its CPUs, not the mask of whoever ran create (runc does so).
            attrs::reset_affinity(0);
            placed.set(true);
        }
        Ok(())
    };
    if cfg.namespaces.new_user {
        // Our user namespace has no maps until `create` writes them (before 'G'): only then
        // can we become its root, which the rest of the setup is done as.
        in_cgroup()?;
        // While still dumpable, our /proc files are our own: the time offsets can be written.
        cfg.namespaces
            .make_time()
            .map_err(|(op, e)| fail(op, "", e))?;
        undumpable()?;
        become_userns_root()?;
    }
    cfg.namespaces.enter().map_err(|(op, e)| fail(op, "", e))?;
    if crate::netdev::wanted(cfg.spec) {
        // `create` moves the host's devices into our network namespace, now that it is ours.
        send(sock, b"N").map_err(|e| fail("send network namespace ready", "", e))?;
        wait_for(sock, b'n')?;
    }
    if !cfg.no_new_keyring {
        join_session_keyring(cfg.id)?;
    }
    if let Some(h) = cfg.spec.hostname() {
        nix::unistd::sethostname(h).map_err(|e| fail("sethostname", h, e))?;
    }
    if let Some(d) = cfg.spec.domainname() {
        // SAFETY: setdomainname reads `len` bytes of the string we own.
        Errno::result(unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) })
            .map_err(|e| fail("setdomainname", d, e))?;
    }

    let fs = FsContext {
        spec: cfg.spec,
        bundle: cfg.bundle,
        rootfs: cfg.rootfs,
        cgroup: cfg.cgroup,
        cgroupns: cfg.namespaces.new_cgroup,
        userns: cfg.namespaces.new_user,
        own_mount_ns: crate::namespaces::is_private(
            cfg.spec,
            oci_spec::runtime::LinuxNamespaceType::Mount,
        ),
        idmaps: &cfg.namespaces.idmaps,
        no_pivot: cfg.no_pivot,
        in_cgroup: &in_cgroup,
    };
    mount::setup_rootfs(&fs)?;
    in_cgroup()?;
    let hooks = cfg.spec.hooks().clone().unwrap_or_default();
    #[allow(deprecated)]
    let create_hooks = hooks.prestart().is_some()
        || hooks.create_runtime().is_some()
        || hooks.create_container().is_some();
    if create_hooks {
        send(sock, b"H").map_err(|e| fail("send hooks point", "", e))?;
        let state = recv_payload(sock, b'h')?;
        if let Some(h) = hooks.create_container() {
            crate::hooks::run("createContainer", h, &state).map_err(hook_fail)?;
        }
    }
    mount::switch_root(&fs)?;
    mount::finalize_rootfs(cfg.spec)?;

    let process = cfg.spec.process().as_ref().expect("validated by create");
    let b = become_process(process, cfg.console.as_ref(), exec, &cfg.preserve_fds)?;
    send_listener(sock, b.seccomp_listener)?;

    send(sock, b"R").map_err(|e| fail("send ready", "", e))?;
    let Ok(running_state) = recv_payload(sock, b'C') else {
        // `create` died before recording us: leave nothing behind.
        // SAFETY: see `init`.
        unsafe { libc::_exit(1) }
    };

    // Block until `start` writes to exec.fifo.
    let mut byte = [0u8; 1];
    loop {
        match nix::unistd::read(&exec_fifo, &mut byte) {
            Ok(1) => break,
            Err(Errno::EINTR) => continue,
            Ok(_) => return Err(fail("read exec fifo", "exec.fifo", Errno::EPIPE)),
            Err(e) => return Err(fail("read exec fifo", "exec.fifo", e)),
        }
    }
    if let Some(h) = hooks.start_container() {
        // A hook without an `env` of its own gets the process's, as runc gives it.
        crate::hooks::run_with_env("startContainer", h, &running_state, &b.env)
            .map_err(hook_fail)?;
    }
    exec_program(exec, &b.program, &b.env)
}

/// What the init and an exec'd process do alike once they are inside the container: the
/// terminal, rlimits, groups/gid/uid, capabilities, no_new_privs, umask, cwd, finding the
/// program, the fds it must not get, and the seccomp filter. Returns the program's path and
/// the environment for execve.
///
/// The program is looked up as the process will run it (its uid, gids and effective
/// capabilities, in its cwd) and before the filter goes on: a profile cannot turn a present
/// program into "not found". Without no_new_privs, installing the filter takes CAP_SYS_ADMIN,
/// so it goes on before the permitted set is dropped (CAP_SYS_ADMIN raised into the effective
/// set for it, if the process's own lacks it), and the profile must allow what follows (the
/// capset, as with runc); with it, as late as we can, so that the profile sees almost
/// nothing of ours.
fn become_process(
    process: &Process,
    console: Option<&OwnedFd>,
    exec: &ExecPlan,
    preserve_fds: &[i32],
) -> Step<Became> {
    if let Some(console) = console {
        crate::terminal::setup(console, process.console_size())?;
    }
    if exec.rlimits_late {
        set_rlimits(process)?;
    }
    // While we may (CAP_SYS_NICE for a realtime policy or a negative nice), and before the
    // seccomp filter, which may not allow these calls.
    exec.attrs.apply()?;
    // The LSM label takes effect at execve; written while /proc is still ours to check.
    apply_lsm_label(process)?;
    let caps = process
        .capabilities()
        .as_ref()
        .map(CapSets::from_spec)
        .transpose()?;
    set_user(process, caps.as_ref())?;
    let nnp = process.no_new_privileges() == Some(true);
    if nnp {
        set_permitted_and_ambient(caps.as_ref())?;
        // SAFETY: prctl with integer arguments only.
        Errno::result(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })
            .map_err(|e| fail("set no_new_privs", "", e))?;
    }
    // SAFETY: umask only sets a process attribute.
    unsafe { libc::umask(process.user().umask().unwrap_or(0o022) as libc::mode_t) };
    nix::unistd::chdir(process.cwd()).map_err(|e| fail("chdir to cwd", process.cwd(), e))?;
    // A cwd that leads out of the container (a leaked fd as /proc/self/fd/N, CVE-2024-21626)
    // is one getcwd cannot name from our root.
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() => {}
        _ => {
            return Err(InitError {
                step: "check cwd".into(),
                path: process.cwd().display().to_string(),
                errno: 0,
                detail: "is outside the container's root".into(),
            });
        }
    }
    let program = exec.find_program()?;
    let env = exec.env_with_home(process.user().uid());
    // Before the filter too, which may not allow close_range (a profile older than it).
    // Every fd we open from here on is close-on-exec.
    close_extra_fds(preserve_fds)?;
    let seccomp_listener = match &exec.seccomp {
        None => None,
        Some(p) if nnp => install_seccomp(p)?,
        Some(p) => {
            let raised = raise_sys_admin()?;
            let listener = install_seccomp(p)?;
            if raised {
                caps::drop(
                    None,
                    caps::CapSet::Effective,
                    caps::Capability::CAP_SYS_ADMIN,
                )
                .map_err(|e| caps_fail("drop CAP_SYS_ADMIN after the seccomp filter", e))?;
            }
            listener
        }
    };
    if !nnp {
        set_permitted_and_ambient(caps.as_ref())?;
    }
    Ok(Became {
        program,
        env,
        seccomp_listener,
    })
}

fn install_seccomp(p: &crate::seccomp::Program) -> Step<Option<OwnedFd>> {
    p.install()
        .map_err(|e| fail("install the seccomp filter", "", e))
}

/// Put CAP_SYS_ADMIN in the effective set if it is not there but permitted. Returns whether
/// it did. Where it is not permitted either, the install that follows says so.
fn raise_sys_admin() -> Step<bool> {
    use caps::{CapSet, Capability};
    let has = |set| caps::has_cap(None, set, Capability::CAP_SYS_ADMIN).unwrap_or(false);
    if has(CapSet::Effective) || !has(CapSet::Permitted) {
        return Ok(false);
    }
    caps::raise(None, CapSet::Effective, Capability::CAP_SYS_ADMIN)
        .map_err(|e| caps_fail("raise CAP_SYS_ADMIN for the seccomp filter", e))?;
    Ok(true)
}

/// What `become_process` leaves for the execve: the program, its environment, and the
/// seccomp notify listener for `create` to pass to the agent.
struct Became {
    program: CString,
    env: Vec<CString>,
    seccomp_listener: Option<OwnedFd>,
}

/// Hand the seccomp listener to the parent, which forwards it to the agent at listenerPath
/// (a path the container cannot see).
fn send_listener(sock: &OwnedFd, listener: Option<OwnedFd>) -> Step {
    if let Some(fd) = listener {
        crate::terminal::send_fd(sock.as_raw_fd(), b"S", fd.as_raw_fd())
            .map_err(|e| fail("send the seccomp listener to create", "", e))?;
    }
    Ok(())
}

/// execve. Returns only on failure.
fn exec_program(exec: &ExecPlan, program: &CString, env: &[CString]) -> Step<Infallible> {
    let argv: Vec<&std::ffi::CStr> = exec.args.iter().map(CString::as_c_str).collect();
    let envp: Vec<&std::ffi::CStr> = env.iter().map(CString::as_c_str).collect();
    let e = nix::unistd::execve(program, &argv, &envp).unwrap_err();
    Err(fail("execve", program.to_string_lossy().as_ref(), e))
}

/// Strings for execve, built before the fork.
struct ExecPlan {
    args: Vec<CString>,
    env: Vec<CString>,
    path_var: String,
    has_home: bool,
    /// The seccomp profile, compiled before the fork.
    seccomp: Option<crate::seccomp::Program>,
    /// Whether `become_process` sets the rlimits. Not where the process is already in a user
    /// namespace, which cannot raise a hard limit: `create` sets them on the init from the
    /// host (prlimit), and an exec'd process sets them before it joins.
    rlimits_late: bool,
    /// Scheduler, I/O priority, personality, memory policy, CPU affinity.
    attrs: attrs::Attrs,
}

impl ExecPlan {
    fn new(process: &Process, seccomp: Option<&LinuxSeccomp>) -> Result<ExecPlan> {
        let cstr = |s: &str, what: &str| {
            CString::new(s)
                .map_err(|_| Error::InvalidConfig(format!("{what} {s:?} contains a NUL byte")))
        };
        let args = process
            .args()
            .iter()
            .flatten()
            .map(|a| cstr(a, "process.args entry"))
            .collect::<Result<Vec<_>>>()?;
        let env_list = process.env().clone().unwrap_or_default();
        let env = env_list
            .iter()
            .map(|e| cstr(e, "process.env entry"))
            .collect::<Result<Vec<_>>>()?;
        let path_var = env_list
            .iter()
            .rev()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .to_string();
        let has_home = env_list.iter().any(|e| e.starts_with("HOME="));
        Ok(ExecPlan {
            args,
            env,
            path_var,
            has_home,
            seccomp: seccomp.map(crate::seccomp::compile).transpose()?,
            rlimits_late: true,
            attrs: attrs::Attrs::default(),
        })
    }

    /// `args[0]` as execve will run it: a path, or looked up in the container's PATH.
    fn find_program(&self) -> Step<CString> {
        let arg0 = self.args[0].to_string_lossy().into_owned();
        let candidates: Vec<PathBuf> = if arg0.contains('/') {
            vec![PathBuf::from(&arg0)]
        } else {
            self.path_var
                .split(':')
                .map(|d| Path::new(if d.is_empty() { "." } else { d }).join(&arg0))
                .collect()
        };
        // Go's exec.LookPath, as runc reports it: engines derive the exit status from these
        // words (Docker: 127 for "not found" / "no such file or directory", 126 for
        // "permission denied").
        let mut denied = false;
        for c in candidates {
            let cs = CString::new(c.as_os_str().as_bytes()).unwrap_or_default();
            // SAFETY: stat reads a NUL-terminated path and fills a struct we own.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            // SAFETY: as above.
            if unsafe { libc::stat(cs.as_ptr(), &mut st) } != 0 {
                continue;
            }
            // SAFETY: faccessat reads a NUL-terminated path.
            let exec_ok = st.st_mode & libc::S_IFMT == libc::S_IFREG
                && unsafe {
                    libc::faccessat(libc::AT_FDCWD, cs.as_ptr(), libc::X_OK, libc::AT_EACCESS)
                } == 0;
            if exec_ok {
                return Ok(cs);
            }
            denied = true;
        }
        let detail = if !arg0.contains('/') {
            "executable file not found in $PATH"
        } else if denied {
            "permission denied"
        } else {
            "no such file or directory"
        };
        Err(InitError {
            step: "exec".into(),
            path: arg0.clone(),
            errno: 0,
            detail: detail.into(),
        })
    }

    /// The environment, plus HOME from the container's /etc/passwd when the config has none.
    fn env_with_home(&self, uid: u32) -> Vec<CString> {
        let mut env = self.env.clone();
        if !self.has_home {
            let home = passwd_home(uid).unwrap_or_else(|| "/".into());
            env.push(CString::new(format!("HOME={home}")).unwrap_or_default());
        }
        env
    }
}

/// Whether the host enforces AppArmor / SELinux, which a config's labels need.
fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// Before anything is made: a label the host cannot apply is an error, not a container
/// that silently runs unconfined.
pub fn check_lsm(process: &Process) -> Result<()> {
    if let Some(p) = process
        .apparmor_profile()
        .as_deref()
        .filter(|p| !p.is_empty())
        && !apparmor_enabled()
    {
        return Err(Error::Unsupported(format!(
            "process.apparmorProfile {p:?}: AppArmor is not enabled on this host"
        )));
    }
    if let Some(l) = process.selinux_label().as_deref().filter(|l| !l.is_empty())
        && !selinux_enabled()
    {
        return Err(Error::Unsupported(format!(
            "process.selinuxLabel {l:?}: SELinux is not enabled on this host"
        )));
    }
    Ok(())
}

/// Ask the LSM to move the process into its profile or label at execve, through our own
/// procfs entry, checked (a mount over /proc could redirect a plain path: CVE-2019-19921).
fn apply_lsm_label(process: &Process) -> Step {
    let pid = std::process::id();
    if let Some(p) = process
        .apparmor_profile()
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        // Linux 5.8+ has a per-LSM directory; older kernels only the shared file.
        let file = if Path::new(&format!("/proc/{pid}/attr/apparmor")).exists() {
            format!("{pid}/attr/apparmor/exec")
        } else {
            format!("{pid}/attr/exec")
        };
        mount::write_proc("AppArmor profile", &file, &format!("exec {p}"))?;
    }
    if let Some(l) = process.selinux_label().as_deref().filter(|l| !l.is_empty()) {
        mount::write_proc("SELinux label", &format!("{pid}/attr/exec"), l)?;
    }
    Ok(())
}

fn setgroups_denied() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny")
}

/// The home directory of `uid` in the container's `/etc/passwd`. That file is the image's: it
/// is read only if it is a regular file (a FIFO would block the process forever, a link to
/// `/dev/zero` never ends), and no further than the runtime reads any input file.
fn passwd_home(uid: u32) -> Option<String> {
    use std::io::BufRead;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/etc/passwd")
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let limited = std::io::Read::take(file, crate::spec::MAX_INPUT_BYTES);
    std::io::BufReader::new(limited)
        .split(b'\n')
        .map_while(|l| l.ok())
        .find_map(|l| {
            let l = String::from_utf8_lossy(&l);
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 5 && f[2].parse() == Ok(uid)).then(|| f[5].to_string())
        })
}

/// In a new user namespace, once mapped: uid and gid 0 there (any capability it has already).
fn become_userns_root() -> Step {
    // SAFETY: setresgid/setresuid take integers only.
    unsafe {
        Errno::result(libc::setresgid(0, 0, 0))
            .map_err(|e| fail("become gid 0 in the user namespace (is it mapped?)", "", e))?;
        Errno::result(libc::setresuid(0, 0, 0))
            .map_err(|e| fail("become uid 0 in the user namespace (is it mapped?)", "", e))?;
    }
    Ok(())
}

/// Until execve, a child of ours is the cofferdam binary: a container process that could open
/// its /proc/PID/exe (or ptrace it) could keep a handle on the host's binary and overwrite it
/// once we are gone (CVE-2019-5736). Not dumpable, its /proc files are closed to anyone
/// without CAP_SYS_PTRACE over the host; execve makes the container process dumpable again.
fn undumpable() -> Step {
    // SAFETY: prctl with integer arguments only.
    Errno::result(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) })
        .map(drop)
        .map_err(|e| fail("make the process not dumpable", "", e))
}

fn reset_signals() {
    // The caller (e.g. `run`, or a Rust program that ignores SIGPIPE) may have blocked or
    // ignored signals; the container starts with none of that.
    // SAFETY: sigprocmask and signal with valid arguments; no handler of ours is installed.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        for sig in 1..libc::SIGRTMAX() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
    }
}

fn join_session_keyring(id: &str) -> Step {
    let name = CString::new(format!("_ses.{id}")).unwrap_or_default();
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: keyctl reads the NUL-terminated name.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    match Errno::result(r) {
        Ok(_) | Err(Errno::ENOSYS) => Ok(()),
        Err(e) => Err(fail("join session keyring", "", e)),
    }
}

fn set_rlimits(process: &Process) -> Step {
    for rl in process.rlimits().iter().flatten() {
        let res = rlimit_resource(rl.typ());
        let lim = libc::rlimit {
            rlim_cur: rl.soft(),
            rlim_max: rl.hard(),
        };
        // SAFETY: setrlimit reads the struct we own.
        Errno::result(unsafe { libc::setrlimit(res, &lim) })
            .map_err(|e| fail("setrlimit", rl.typ().to_string(), e))?;
    }
    Ok(())
}

// glibc types the resource as an unsigned enum, musl as a plain int.
#[cfg(target_env = "gnu")]
type RlimitResource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
type RlimitResource = libc::c_int;

fn rlimit_resource(t: PosixRlimitType) -> RlimitResource {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

/// Bounding set first (needs CAP_SETPCAP, so while still root), then groups, gid and uid with
/// the permitted set kept across setuid, then the inheritable and effective sets. The
/// permitted set is still the runtime's: [`set_permitted_and_ambient`] finishes.
fn set_user(process: &Process, caps: Option<&CapSets>) -> Step {
    let user = process.user();
    if let Some(c) = caps {
        for cap in caps::runtime::thread_all_supported() {
            if !c.bounding.contains(&cap) {
                caps::drop(None, caps::CapSet::Bounding, cap)
                    .map_err(|e| caps_fail("drop bounding capability", e))?;
            }
        }
    }
    let groups: Vec<libc::gid_t> = user.additional_gids().clone().unwrap_or_default();
    // create and exec refuse these already (spec::check_user); kept here, at the syscalls,
    // because 4294967295 is -1 to them, "leave unchanged": the process would stay root.
    let max = crate::spec::MAX_ID;
    if user.uid() > max || user.gid() > max || groups.iter().any(|g| *g > max) {
        let ids = format!("{}:{} {groups:?}", user.uid(), user.gid());
        return Err(fail("set user (ids above 2147483647)", ids, Errno::EINVAL));
    }
    // SAFETY: setgroups reads `len` gids from the vector we own; the rest take integers.
    unsafe {
        match Errno::result(libc::setgroups(groups.len(), groups.as_ptr())) {
            Ok(_) => {}
            // A rootless user namespace denies setgroups: with none asked for, the caller's
            // supplementary groups stay (unmapped inside), as with runc.
            Err(Errno::EPERM) if groups.is_empty() && setgroups_denied() => {}
            Err(e) => return Err(fail("setgroups", format!("{groups:?}"), e)),
        }
        Errno::result(libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0))
            .map_err(|e| fail("set keepcaps", "", e))?;
        Errno::result(libc::setresgid(user.gid(), user.gid(), user.gid()))
            .map_err(|e| fail("setgid", user.gid().to_string(), e))?;
        Errno::result(libc::setresuid(user.uid(), user.uid(), user.uid()))
            .map_err(|e| fail("setuid", user.uid().to_string(), e))?;
        Errno::result(libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0))
            .map_err(|e| fail("clear keepcaps", "", e))?;
    }
    if let Some(c) = caps {
        // Inheritable while CAP_SETPCAP may still be effective; effective before permitted,
        // since the kernel wants effective within permitted after every call.
        caps::set(None, caps::CapSet::Inheritable, &c.inheritable)
            .map_err(|e| caps_fail("set inheritable capabilities", e))?;
        caps::set(None, caps::CapSet::Effective, &c.effective)
            .map_err(|e| caps_fail("set effective capabilities", e))?;
    }
    Ok(())
}

/// The permitted set, and the ambient capabilities that the kernel accepts (as runc: an
/// ambient capability that is not also inheritable is skipped, not an error).
fn set_permitted_and_ambient(caps: Option<&CapSets>) -> Step {
    if let Some(c) = caps {
        caps::set(None, caps::CapSet::Permitted, &c.permitted)
            .map_err(|e| caps_fail("set permitted capabilities", e))?;
        let _ = caps::clear(None, caps::CapSet::Ambient);
        for cap in &c.ambient {
            let _ = caps::raise(None, caps::CapSet::Ambient, *cap);
        }
    }
    Ok(())
}

struct CapSets {
    bounding: caps::CapsHashSet,
    effective: caps::CapsHashSet,
    permitted: caps::CapsHashSet,
    inheritable: caps::CapsHashSet,
    ambient: caps::CapsHashSet,
}

impl CapSets {
    fn from_spec(c: &LinuxCapabilities) -> Step<CapSets> {
        let conv = |set: &Option<oci_spec::runtime::Capabilities>| -> Step<caps::CapsHashSet> {
            set.iter()
                .flatten()
                .map(|cap| {
                    let name = format!("CAP_{cap}");
                    caps::Capability::from_str(&name).map_err(|_| InitError {
                        step: "unknown capability".into(),
                        path: name,
                        errno: libc::EINVAL,
                        detail: String::new(),
                    })
                })
                .collect()
        };
        Ok(CapSets {
            bounding: conv(c.bounding())?,
            effective: conv(c.effective())?,
            permitted: conv(c.permitted())?,
            inheritable: conv(c.inheritable())?,
            ambient: conv(c.ambient())?,
        })
    }
}

fn caps_fail(step: &str, e: caps::errors::CapsError) -> InitError {
    InitError {
        step: step.into(),
        path: String::new(),
        errno: Errno::last_raw(),
        detail: e.to_string(),
    }
}

/// Mark every fd from 3 up close-on-exec but the preserved ones, which lose it: nothing of the
/// runtime or of the host leaks into the container (CVE-2024-21626).
fn close_extra_fds(preserved: &[i32]) -> Step {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags on our own fds.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    Errno::result(r).map_err(|e| fail("close_range", "", e))?;
    for &fd in preserved {
        // SAFETY: fcntl on an fd number the caller passed us open.
        Errno::result(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) })
            .map_err(|e| fail("keep a preserved fd open", fd.to_string(), e))?;
    }
    Ok(())
}

/// The socketpair a parent and its forked child sync over: one message per send, and both ends
/// close-on-exec, so the child's closes when it execs.
fn sync_pair() -> Result<(OwnedFd, OwnedFd)> {
    socket::socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(crate::error::sys_err("socketpair"))
}

fn send(sock: &OwnedFd, msg: &[u8]) -> std::result::Result<(), Errno> {
    socket::send(sock.as_raw_fd(), msg, socket::MsgFlags::MSG_NOSIGNAL).map(drop)
}

fn recv(sock: &OwnedFd, buf: &mut [u8]) -> std::result::Result<usize, Errno> {
    loop {
        match socket::recv(sock.as_raw_fd(), buf, socket::MsgFlags::empty()) {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

/// Receive a message that starts with `tag`; returns what follows it.
fn recv_payload(sock: &OwnedFd, tag: u8) -> Step<Vec<u8>> {
    let mut buf = vec![0u8; MAX_MSG];
    match recv(sock, &mut buf) {
        Ok(n) if n >= 1 && buf[0] == tag => {
            buf.truncate(n);
            buf.remove(0);
            Ok(buf)
        }
        Ok(_) => Err(fail("sync with create", "", Errno::EPIPE)),
        Err(e) => Err(fail("sync with create", "", e)),
    }
}

fn hook_fail(e: Error) -> InitError {
    InitError {
        step: "hook".into(),
        path: String::new(),
        errno: 0,
        detail: e.to_string(),
    }
}

fn wait_for(sock: &OwnedFd, want: u8) -> Step {
    let mut b = [0u8; 1];
    match recv(sock, &mut b) {
        Ok(1) if b[0] == want => Ok(()),
        Ok(_) => Err(fail("sync with create", "", Errno::EPIPE)),
        Err(e) => Err(fail("sync with create", "", e)),
    }
}
