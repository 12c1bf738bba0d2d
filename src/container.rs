//! The [`Container`] type: the lifecycle operations of the OCI runtime spec against a state root.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::signal::Signal;
use oci_spec::runtime::{Hook, Hooks, Spec};

use crate::cgroups::{Cgroup, Layout};
use crate::error::{Error, Result, io_err, sys_err};
use crate::namespaces::NamespacePlan;
use crate::process::{self, InitConfig, StdioFds};
use crate::state::{self, ContainerState, EXEC_FIFO, Persisted, Proc, Status};

mod control;
pub use control::Event;

/// The state root runc-compatible tools expect for cofferdam.
pub const DEFAULT_ROOT: &str = "/run/cofferdam";

/// The state root when none is given: [`DEFAULT_ROOT`] for root; for another user (rootless)
/// `$XDG_RUNTIME_DIR/cofferdam`, or `/tmp/cofferdam-<uid>` without it.
pub fn default_root() -> PathBuf {
    let uid = nix::unistd::geteuid();
    if uid.is_root() {
        return PathBuf::from(DEFAULT_ROOT);
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d).join("cofferdam"),
        None => PathBuf::from(format!("/tmp/cofferdam-{uid}")),
    }
}

/// Options of `create` beyond the bundle. All default to runc's defaults.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Use MS_MOVE + chroot instead of pivot_root (for a rootfs on ramfs).
    pub no_pivot: bool,
    /// Keep the caller's session keyring instead of a new one named after the container.
    pub no_new_keyring: bool,
    /// Pass fds 3 .. 3+N of the calling process on to the container process: those that are
    /// open and not close-on-exec (inherited ones; the runtime's own never are).
    pub preserve_fds: u32,
    /// Write the init's pid here once the container is created.
    pub pid_file: Option<PathBuf>,
    /// A unix socket to receive the terminal's master fd (only with `process.terminal`).
    pub console_socket: Option<PathBuf>,
    /// With `process.terminal` and no `console_socket`: keep the terminal's master in this
    /// process ([`Container::take_terminal`]), as `run` in the foreground does to proxy it.
    pub own_terminal: bool,
    /// systemd socket activation: the N fds after the preserved ones are passed on too, and
    /// the process gets `LISTEN_FDS=N` and `LISTEN_PID=1`.
    pub listen_fds: u32,
    /// The systemd cgroup driver (runc's `--systemd-cgroup`): the cgroup is a transient scope
    /// unit that systemd makes, and `linux.cgroupsPath` is `slice:prefix:name`. Fails where
    /// systemd does not run.
    pub systemd_cgroup: bool,
    /// The container process's stdin, stdout and stderr, instead of the caller's own (which
    /// it inherits when this is `None`, as with runc).
    pub stdio: Option<StdioFds>,
}

/// Options of `exec` beyond the process.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// A unix socket to receive the terminal's master fd (with `process.terminal`).
    pub console_socket: Option<PathBuf>,
    /// With `process.terminal` and no `console_socket`: keep the master in this process
    /// ([`ExecProcess::take_terminal`]).
    pub own_terminal: bool,
    /// Write the process's pid here once it runs.
    pub pid_file: Option<PathBuf>,
    /// Pass fds 3 .. 3+N of the calling process on to the process (as for create).
    pub preserve_fds: u32,
    /// runc's `--ignore-paused`: exec into a paused container too; the process is set up
    /// and waits, frozen, at its execve until the container is resumed.
    pub ignore_paused: bool,
    /// runc's `--cgroup [<controller>:]<path>`: an existing sub-cgroup of the container's,
    /// in every hierarchy or only that controller's.
    pub sub_cgroups: Vec<String>,
    /// The process's stdin, stdout and stderr, instead of the caller's own.
    pub stdio: Option<StdioFds>,
}

/// A process started in a container by [`Container::exec`]: a child of the caller.
///
/// Reap it ([`ExecProcess::wait`]) once it has exited. In a container with its own pid
/// namespace the kernel does not finish the death of the namespace's init until every process
/// in that namespace has been reaped, so an exec'd process left unreaped by its parent (the
/// caller) keeps [`Container::wait`] waiting and makes [`Container::delete`] give up.
#[derive(Debug)]
pub struct ExecProcess {
    /// The process's pid in the runtime's pid namespace.
    pub pid: i32,
    terminal: Option<OwnedFd>,
}

impl ExecProcess {
    /// The master of the process's terminal, with [`ExecOptions::own_terminal`].
    pub fn take_terminal(&mut self) -> Option<OwnedFd> {
        self.terminal.take()
    }

    /// Wait for the process; its exit status (128 + signal when killed).
    pub fn wait(&self) -> Result<i32> {
        nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.pid), None)
            .map(exit_code)
            .map_err(sys_err("waitpid"))
    }
}

/// Wait until the init has left the runtime's code: it holds exec.fifo open (close-on-exec)
/// until its `execve` succeeds or it dies, and a FIFO's writer sees POLLERR once no reader is
/// left. So `start` returns with the container's process running its own program, and the
/// poststart hooks run after it, as the spec orders (runc's `start` returns once the init has
/// taken the byte, a little earlier).
fn wait_for_execve(fifo: &OwnedFd) -> Result<()> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    loop {
        // No events asked: POLLERR and POLLHUP are always reported, and only they end this.
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::empty())];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) if fds[0].revents().is_some_and(|r| !r.is_empty()) => return Ok(()),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(sys_err("poll exec.fifo")(e)),
        }
    }
}

/// Builds and creates a container, from a bundle directory or from an in-memory [`Spec`].
///
/// ```no_run
/// use cofferdam::{ContainerBuilder, default_spec};
///
/// // From a bundle on disk (config.json + rootfs), as `cofferdam create` does:
/// let c = ContainerBuilder::new("web1").bundle("/srv/bundles/web").create()?;
/// c.start()?;
///
/// // From a spec built in code, with the rootfs given directly:
/// let mut spec = default_spec();
/// spec.process_mut().as_mut().unwrap().set_terminal(Some(false));
/// let c = ContainerBuilder::new("job7")
///     .state_root("/run/my-engine")
///     .spec(spec)
///     .rootfs("/srv/images/busybox")
///     .create()?;
/// # Ok::<(), cofferdam::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ContainerBuilder {
    id: String,
    root: PathBuf,
    bundle: Option<PathBuf>,
    spec: Option<Spec>,
    rootfs: Option<PathBuf>,
    opts: CreateOptions,
}

impl ContainerBuilder {
    /// A container of this id (checked by [`validate_id`] at `create`), with the default state
    /// root ([`default_root`]), `config.json` from the current directory, default options.
    pub fn new(id: impl Into<String>) -> Self {
        ContainerBuilder {
            id: id.into(),
            root: default_root(),
            bundle: None,
            spec: None,
            rootfs: None,
            opts: CreateOptions::default(),
        }
    }

    /// Where container state lives (default `/run/cofferdam`).
    pub fn state_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = root.into();
        self
    }

    /// The bundle: `config.json` is read from it (unless a spec is given) and a relative
    /// `root.path` is resolved against it.
    pub fn bundle(mut self, bundle: impl Into<PathBuf>) -> Self {
        self.bundle = Some(bundle.into());
        self
    }

    /// Use this config instead of reading `config.json`.
    pub fn spec(mut self, spec: Spec) -> Self {
        self.spec = Some(spec);
        self
    }

    /// Use this directory as the rootfs, whatever `root.path` says.
    pub fn rootfs(mut self, rootfs: impl Into<PathBuf>) -> Self {
        self.rootfs = Some(rootfs.into());
        self
    }

    /// The options of `create` beyond the bundle (runc's flags).
    pub fn options(mut self, opts: CreateOptions) -> Self {
        self.opts = opts;
        self
    }

    /// Create the container: its init is set up and waits for [`Container::start`]. On error
    /// nothing is left behind: no state dir, cgroup, mount or process.
    pub fn create(self) -> Result<Container> {
        validate_id(&self.id)?;
        let bundle = match &self.bundle {
            Some(b) => std::fs::canonicalize(b).map_err(io_err("open bundle", b))?,
            None if self.spec.is_some() => {
                std::env::current_dir().map_err(io_err("getcwd", "."))?
            }
            None => std::env::current_dir().map_err(io_err("getcwd", "."))?,
        };
        let mut spec = match self.spec {
            Some(s) => s,
            None => crate::spec::load(&bundle)?,
        };
        if let Some(r) = &self.rootfs {
            let mut root = spec.root().clone().unwrap_or_default();
            root.set_path(std::fs::canonicalize(r).map_err(|_| Error::Rootfs {
                path: r.clone(),
                why: "does not exist",
            })?);
            spec.set_root(Some(root));
        }
        create(&self.root, &self.id, spec, &bundle, &self.opts)
    }
}

/// A container known to the state root.
#[derive(Debug)]
pub struct Container {
    id: String,
    dir: PathBuf,
    state: Persisted,
    terminal: Option<OwnedFd>,
}

/// An id must name one directory under the state root and nothing else.
pub fn validate_id(id: &str) -> Result<()> {
    let why = if id.is_empty() {
        "it is empty"
    } else if id == "." || id == ".." || id.contains("..") {
        "it contains '..'"
    } else if id.starts_with('.') {
        "it starts with '.'"
    } else if id.contains('/') {
        "it contains '/'"
    } else if id.len() > 1024 {
        "it is longer than 1024 bytes"
    } else if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b))
    {
        "only letters, digits and _ + - . are allowed"
    } else {
        return Ok(());
    };
    Err(Error::InvalidId {
        id: id.to_string(),
        why,
    })
}

fn create(
    root: &Path,
    id: &str,
    spec: Spec,
    bundle: &Path,
    opts: &CreateOptions,
) -> Result<Container> {
    // Everything that can be checked without touching the system is checked first, so that bad
    // input leaves nothing behind.
    let rootfs = crate::spec::validate(&spec, bundle)?;
    let own_mount_ns =
        crate::namespaces::is_private(&spec, oci_spec::runtime::LinuxNamespaceType::Mount);
    if !own_mount_ns
        && spec.linux().as_ref().is_some_and(|l| {
            l.masked_paths().as_ref().is_some_and(|p| !p.is_empty())
                || l.readonly_paths().as_ref().is_some_and(|p| !p.is_empty())
        })
    {
        // As runc: they would be the host's paths.
        return Err(Error::InvalidConfig(
            "maskedPaths and readonlyPaths need a mount namespace".into(),
        ));
    }
    for m in spec.mounts().iter().flatten() {
        if crate::mount::is_bind(m) {
            let src = crate::mount::bind_source(m, bundle);
            if !src.exists() {
                return Err(Error::MountSourceMissing {
                    source_path: src,
                    destination: m.destination().clone(),
                });
            }
        }
    }
    if let Some(p) = spec.process() {
        process::check_lsm(p)?;
    }
    let terminal = spec.process().as_ref().and_then(|p| p.terminal()) == Some(true);
    check_console(terminal, opts.console_socket.as_deref(), opts.own_terminal)?;
    opts.stdio.as_ref().map(StdioFds::check).transpose()?;
    let preserved = preserved_fds(opts.preserve_fds + opts.listen_fds);
    let mut spec = spec;
    if opts.listen_fds > 0
        && let Some(p) = spec.process_mut()
    {
        // systemd socket activation, passed on as runc does: the fds follow the preserved
        // ones, and the container process is told it is their listener.
        let mut env = p.env().clone().unwrap_or_default();
        env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
        env.push(format!("LISTEN_FDS={}", opts.listen_fds));
        env.push("LISTEN_PID=1".into());
        p.set_env(Some(env));
    }
    let namespaces = NamespacePlan::new(&spec)?;
    crate::spec::check_sysctls(&spec, |typ| namespaces.separate(typ))?;
    let explicit_cgroup = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone());
    log::debug!("create {id}: config checked");
    // Rootless: no cgroup is ours to make (none is delegated), so there is none, and a
    // resource that needs one is refused rather than silently not enforced.
    let rootless = !nix::unistd::geteuid().is_root();
    let resources = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
    let cgroup = if rootless {
        if opts.systemd_cgroup {
            return Err(Error::Unsupported(
                "--systemd-cgroup: a rootless container has no cgroup (systemd's user instance is not supported)".into(),
            ));
        }
        if resources.is_some_and(|r| !crate::cgroups::sets_nothing(r)) {
            return Err(Error::Unsupported(
                "linux.resources: a rootless container has no cgroup (none is delegated to this user)".into(),
            ));
        }
        if !namespaces.new_user {
            return Err(Error::Unsupported(
                "a rootless container needs a user namespace (see `cofferdam spec --rootless`)"
                    .into(),
            ));
        }
        Cgroup::default()
    } else {
        let layout = Layout::detect()?;
        match &explicit_cgroup {
            _ if opts.systemd_cgroup => {
                let path = explicit_cgroup.as_deref().map(|p| {
                    p.to_str()
                        .ok_or_else(|| Error::InvalidConfig("cgroupsPath is not UTF-8".into()))
                });
                Cgroup::plan_systemd(&layout, path.transpose()?, id, spec.annotations().as_ref())?
            }
            Some(path) => Cgroup::plan(&layout, path)?,
            None => Cgroup::plan_default(&layout, id)?,
        }
    };
    let me = Proc::of(std::process::id() as i32).ok_or(Error::Sys {
        op: "read own /proc/self/stat",
        errno: Errno::EIO,
    })?;
    let mut persisted = Persisted {
        id: id.to_string(),
        bundle: bundle.to_path_buf(),
        rootfs: rootfs.clone(),
        pid: 0,
        pid_start: 0,
        creator_pid: me.pid,
        creator_start: me.start,
        committed: false,
        created: state::now_rfc3339(),
        owner: state::owner_name(nix::unistd::geteuid().as_raw()),
        annotations: spec.annotations().clone().unwrap_or_default(),
        cgroup: cgroup.clone(),
        hooks: spec.hooks().clone(),
        process: spec.process().clone(),
        resources: spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().as_ref())
            .map(crate::cgroups::strip_unset),
        seccomp: spec.linux().as_ref().and_then(|l| l.seccomp().clone()),
        rootfs_mount_below: None,
        personality: spec.linux().as_ref().and_then(|l| l.personality().clone()),
        memory_policy: spec
            .linux()
            .as_ref()
            .and_then(|l| l.memory_policy().clone()),
    };
    if !own_mount_ns {
        // Recorded before the bind is made, so that a delete after a crash finds it.
        persisted.rootfs_mount_below = Some(crate::host_rootfs::mount_id(&rootfs)?);
    }

    // The state dir is prepared under a private name and renamed into place: the rename is the
    // atomic claim on the id (exactly one of concurrent creates wins), and a state dir never
    // exists without its state file, the cgroup plan and the lock.
    // Every part of it is the owner's alone (0700 dirs, 0600 files): it holds the process's
    // env. `start`, `state` and the rest run as the same user (or root), and the init opens
    // the fifo before it leaves the host's view, so no one else ever needs to look in.
    state::prepare_root(root)?;
    let dir = state::state_dir(root, id);
    let tmp = state::tmp_dir(root, id, me.pid);
    let _ = std::fs::remove_dir_all(&tmp);
    state::make_dir(&tmp)?;
    let prepared = (|| {
        state::write(&tmp, &persisted)?;
        state::create_file(&tmp.join(state::LOCK_FILE))?;
        let lock = state::lock(&tmp, id)?;
        let fifo_path = tmp.join(EXEC_FIFO);
        nix::unistd::mkfifo(
            &fifo_path,
            nix::sys::stat::Mode::from_bits_truncate(state::FILE_MODE),
        )
        .map_err(sys_err("mkfifo exec.fifo"))?;
        Ok(lock)
    })();
    let _lock = match prepared {
        Ok(x) => x,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    if let Err(e) = std::fs::rename(&tmp, &dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(match e.raw_os_error() {
            Some(libc::EEXIST) | Some(libc::ENOTEMPTY) => Error::AlreadyExists(id.to_string()),
            _ => io_err("rename state dir", &dir)(e),
        });
    }
    // From here on, a failure undoes what was made.
    let mut undo = Undo {
        dir: Some(dir.clone()),
        cgroup: Some(cgroup.clone()),
        rootfs_bind: persisted.rootfs_mount_below.map(|b| (rootfs.clone(), b)),
    };
    log::debug!("create {id}: state dir claimed");
    if persisted.rootfs_mount_below.is_some() {
        // No mount namespace: the init mounts under this bind, in ours.
        crate::host_rootfs::bind(&rootfs)?;
    }
    // The cgroup2 directory now, since the init is cloned into it; the v1 ones while it sets up.
    cgroup.make(true)?;

    let (console, own_end) =
        console_for(terminal, opts.console_socket.as_deref(), opts.own_terminal)?;
    let cfg = InitConfig {
        id,
        spec: &spec,
        bundle,
        rootfs: &rootfs,
        cgroup: &cgroup,
        namespaces: &namespaces,
        exec_fifo: &dir.join(EXEC_FIFO),
        no_pivot: opts.no_pivot,
        no_new_keyring: opts.no_new_keyring,
        preserve_fds: preserved,
        console,
        stdio: opts.stdio,
    };
    let pending = process::fork_init(&cfg)?;
    let init = Proc::of(pending.pid.as_raw()).ok_or(Error::Sys {
        op: "read the init's /proc/PID/stat",
        errno: Errno::ESRCH,
    })?;
    persisted.pid = init.pid;
    persisted.pid_start = init.start;
    state::write(&dir, &persisted)?;
    log::debug!("create {id}: init forked");
    cgroup.make(false)?;
    // With systemd, the cgroup is a unit made with the init in it, now that there is an init.
    cgroup.start_unit(id, init.pid, resources, spec.annotations().as_ref())?;
    log::debug!("create {id}: cgroup directories made");
    pending.setup(&cfg, &persisted)?;
    log::debug!("create {id}: init ready");
    drop(cfg);
    // The init sent the master before it reported ready, so this does not block.
    let terminal = own_end
        .map(|s| crate::terminal::receive_master(&s).map(|(_, fd)| fd))
        .transpose()?;
    persisted.committed = true;
    state::write(&dir, &persisted)?;
    if let Some(pf) = &opts.pid_file {
        write_pid_file(pf, init.pid)?;
    }
    pending.commit(&persisted.hook_json(Status::Running))?;
    log::debug!("created {id}: init {} in {}", init.pid, dir.display());
    undo.disarm();
    Ok(Container {
        id: id.to_string(),
        dir,
        state: persisted,
        terminal,
    })
}

/// Removes a half-made container when `create` fails.
struct Undo {
    dir: Option<PathBuf>,
    cgroup: Option<Cgroup>,
    /// Without a mount namespace: the rootfs and the mount id below its bind.
    rootfs_bind: Option<(PathBuf, u64)>,
}

impl Undo {
    fn disarm(&mut self) {
        self.dir = None;
        self.cgroup = None;
        self.rootfs_bind = None;
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        if let Some(Err(e)) = self
            .rootfs_bind
            .take()
            .map(|(rootfs, below)| crate::host_rootfs::unbind(&rootfs, below))
        {
            log::warn!("cleanup after failed create: {e}");
        }
        if let Some(Err(e)) = self.cgroup.take().map(|cg| cg.remove()) {
            log::warn!("cleanup after failed create: {e}");
        }
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

pub(crate) fn open_fd(path: &Path, flags: libc::c_int) -> Result<OwnedFd> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::InvalidConfig("path contains NUL".into()))?;
    // SAFETY: open with a NUL-terminated path; the returned fd is ours.
    let fd =
        Errno::result(unsafe { libc::open(c.as_ptr(), flags) }).map_err(|errno| Error::Io {
            op: "open",
            path: path.to_path_buf(),
            source: std::io::Error::from_raw_os_error(errno as i32),
        })?;
    // SAFETY: the kernel just gave us this fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    std::fs::write(&tmp, pid.to_string()).map_err(io_err("write pid file", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err("write pid file", path))
}

impl Container {
    /// Load a container from the state root by id.
    pub fn load(root: impl AsRef<Path>, id: &str) -> Result<Container> {
        validate_id(id)?;
        let dir = state::state_dir(root.as_ref(), id);
        let state = state::read(&dir, id)?;
        Ok(Container {
            id: id.to_string(),
            dir,
            state,
            terminal: None,
        })
    }

    /// All containers under a state root, sorted by id.
    pub fn list(root: impl AsRef<Path>) -> Result<Vec<Container>> {
        let root = root.as_ref();
        let entries = match std::fs::read_dir(root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("read state root", root)(e)),
        };
        let mut out = Vec::new();
        for e in entries.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if let Ok(c) = Container::load(root, &id) {
                out.push(c);
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// The master of the container's terminal, when it was created with
    /// [`CreateOptions::own_terminal`] and `process.terminal`.
    pub fn take_terminal(&mut self) -> Option<OwnedFd> {
        self.terminal.take()
    }

    /// The container's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The init's pid in the runtime's pid namespace (0 while creating).
    pub fn pid(&self) -> i32 {
        self.state.pid
    }

    /// The bundle directory it was created from (absolute).
    pub fn bundle(&self) -> &Path {
        &self.state.bundle
    }

    /// Its status now (derived each time from the init, the cgroup and the fifo).
    pub fn status(&self) -> Status {
        self.state.status(&self.dir)
    }

    /// The state JSON `cofferdam state` prints.
    pub fn state(&self) -> ContainerState {
        self.state.to_oci(self.status())
    }

    /// Take the container's lock and read its state afresh: another process may have changed
    /// it since this `Container` was loaded.
    fn locked(&self) -> Result<(state::Lock, Persisted)> {
        let lock = state::lock(&self.dir, &self.id)?;
        let st = state::read(&self.dir, &self.id)?;
        Ok((lock, st))
    }

    /// Let the created container run its process.
    pub fn start(&self) -> Result<()> {
        let (_lock, st) = self.locked()?;
        let status = st.status(&self.dir);
        if status != Status::Created {
            return Err(self.bad_status("start", status));
        }
        let fifo = self.dir.join(EXEC_FIFO);
        // Non-blocking: with no init holding the fifo open, this fails instead of hanging.
        let fd = open_fd(&fifo, libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC).map_err(
            |e| match e {
                Error::Io { ref source, .. } if source.raw_os_error() == Some(libc::ENXIO) => {
                    Error::BadStatus {
                        op: "start",
                        id: self.id.clone(),
                        status: "stopped (its init is gone)".into(),
                    }
                }
                e => e,
            },
        )?;
        nix::unistd::write(&fd, b"0").map_err(sys_err("write exec.fifo"))?;
        std::fs::remove_file(&fifo).map_err(io_err("remove", &fifo))?;
        wait_for_execve(&fd)?;
        drop(fd);
        log::debug!("started {}", self.id);
        // runc stops at the first failing poststart hook: the container is stopped anyway.
        let hooks = crate::hooks::run;
        if let Err(e) = self.run_late_hooks("poststart", Hooks::poststart, Status::Running, hooks) {
            // As runc: the container is stopped and `start` fails; `delete` removes it. Every
            // process, since without a pid namespace of its own some can outlive the init.
            signal_cgroup(&st.cgroup, Signal::SIGKILL)?;
            kill_and_wait(st.init())?;
            return Err(e);
        }
        Ok(())
    }

    /// Send a signal to the init, or with `all` to every process in the container's cgroup.
    ///
    /// A container whose init is gone is not running: a signal to its init is refused
    /// (runc's "container not running"), while `all` still signals whatever is left in its
    /// cgroup and succeeds, as with runc. containerd's shim sends `kill --all` with SIGKILL
    /// after every exit it handles, so an error there would fail each stop.
    pub fn kill(&self, signal: Signal, all: bool) -> Result<()> {
        let (_lock, st) = self.locked()?;
        let status = st.status(&self.dir);
        if !matches!(status, Status::Created | Status::Running | Status::Paused) {
            if all {
                return signal_cgroup(&st.cgroup, signal);
            }
            return Err(Error::NotRunning {
                op: "kill",
                id: self.id.clone(),
            });
        }
        if all {
            signal_cgroup(&st.cgroup, signal)?;
        }
        signal_proc(st.init(), signal)
    }

    /// Remove the container. A created container is killed first (as runc does); a running
    /// one only with `force`. Whatever is left of it goes: its init (if still alive, e.g. from
    /// a create that was killed), any process still in its cgroup, the cgroup directories
    /// `create` made, the state dir. A cgroup that stays busy is reported, and the state is
    /// kept so that the delete can be retried.
    pub fn delete(self, force: bool) -> Result<()> {
        let (lock, st) = self.locked()?;
        let status = st.status(&self.dir);
        match status {
            Status::Stopped | Status::Created => {}
            Status::Running | Status::Paused | Status::Creating if force => {}
            s => return Err(self.bad_status("delete", s)),
        }
        if status == Status::Paused {
            // Frozen v1 tasks cannot die until thawed: kill everything, then thaw.
            signal_cgroup(&st.cgroup, Signal::SIGKILL)?;
            st.cgroup.freeze(false)?;
        }
        kill_and_wait(st.init())?;
        // Without a pid namespace of its own, processes can outlive the init.
        signal_cgroup(&st.cgroup, Signal::SIGKILL)?;
        log::debug!("delete {}: processes gone", self.id);
        if let Some(below) = st.rootfs_mount_below {
            crate::host_rootfs::unbind(&st.rootfs, below)?;
            log::debug!("delete {}: rootfs bind detached", self.id);
        }
        st.cgroup.remove()?;
        log::debug!("delete {}: cgroup directories removed", self.id);
        std::fs::remove_dir_all(&self.dir).map_err(io_err("remove state dir", &self.dir))?;
        drop(lock);
        log::debug!("deleted {} ({status})", self.id);
        let hooks = crate::hooks::run_all;
        self.run_late_hooks("poststop", Hooks::poststop, Status::Stopped, hooks)
    }

    /// The process of the container's config, as recorded at create: the base of an `exec`
    /// process (runc's `exec` takes user, env, cwd, capabilities... from it).
    pub fn process(&self) -> Option<&oci_spec::runtime::Process> {
        self.state.process.as_ref()
    }

    /// Start another process in the container: it joins every namespace of the container's
    /// init that differs from the caller's, and its cgroup, then becomes `process` (user,
    /// capabilities, rlimits, no_new_privs, cwd, env, terminal) and execs. Returns once it
    /// runs, or with its error (step, path, errno). The container must be created or running.
    pub fn exec(
        &self,
        process: &oci_spec::runtime::Process,
        opts: &ExecOptions,
    ) -> Result<ExecProcess> {
        process::check_lsm(process)?;
        opts.stdio.as_ref().map(StdioFds::check).transpose()?;
        let st = state::read(&self.dir, &self.id)?;
        let status = st.status(&self.dir);
        let paused = status == Status::Paused && opts.ignore_paused;
        if !matches!(status, Status::Created | Status::Running) && !paused {
            return Err(self.bad_status("exec in", status));
        }
        crate::spec::check_args(process)?;
        crate::spec::check_user(process)?;
        let preserved = preserved_fds(opts.preserve_fds);
        let attrs = process::attrs::Attrs::for_exec(
            process,
            st.process.as_ref(),
            st.personality.as_ref(),
            st.memory_policy.as_ref(),
        )?;
        let init =
            pidfd_of(st.init())?.ok_or_else(|| self.bad_status("exec in", Status::Stopped))?;
        let (namespaces, pid_namespace) = namespaces_to_join(st.pid)?;
        if pid_namespace && !nix::unistd::geteuid().is_root() {
            // Entering a pid namespace takes CAP_SYS_ADMIN where the caller is, too.
            return Err(Error::Unsupported(
                "exec into a rootless container with its own pid namespace is not supported yet"
                    .into(),
            ));
        }
        let terminal = process.terminal() == Some(true);
        let (console, own_end) =
            console_for(terminal, opts.console_socket.as_deref(), opts.own_terminal)?;
        let cgroup = st.cgroup.sub(&opts.sub_cgroups)?;
        // Without a mount namespace, the container's root is the init's chroot: its root,
        // opened while the pidfd shows it is still our init.
        let root = match st.rootfs_mount_below {
            Some(_) => {
                let path = PathBuf::from(format!("/proc/{}/root", st.pid));
                let fd = open_fd(&path, libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)?;
                if poll_fd(&init, 0)? {
                    return Err(self.bad_status("exec in", Status::Stopped));
                }
                Some(fd)
            }
            None => None,
        };
        let pid = process::spawn_exec(&process::ExecConfig {
            process,
            init: &init,
            namespaces,
            pid_namespace,
            root,
            cgroup: &cgroup,
            console,
            preserve_fds: preserved,
            stdio: opts.stdio,
            seccomp: st.seccomp.as_ref(),
            state: st.to_oci(status),
            join_cgroup_last: paused,
            attrs,
        })?;
        let terminal = own_end
            .map(|s| crate::terminal::receive_master(&s).map(|(_, fd)| fd))
            .transpose()?;
        if let Some(pf) = &opts.pid_file {
            write_pid_file(pf, pid.as_raw())?;
        }
        log::debug!("exec in {}: pid {pid}", self.id);
        Ok(ExecProcess {
            pid: pid.as_raw(),
            terminal,
        })
    }

    /// `delete` by id, as the CLI does. With `force`, a container that does not exist is not an
    /// error (as with runc), and what creates of this id killed before they claimed it left
    /// in the state root is removed too.
    pub fn delete_id(root: impl AsRef<Path>, id: &str, force: bool) -> Result<()> {
        let root = root.as_ref();
        // A concurrent delete may remove it before or after we load it.
        let result = match Container::load(root, id).and_then(|c| c.delete(force)) {
            Err(Error::NotFound(_)) if force => Ok(()),
            r => r,
        };
        // A failing poststop hook is reported once the container is gone.
        if force && matches!(result, Ok(()) | Err(Error::Hook { .. })) {
            state::remove_debris(root, id);
        }
        result
    }

    /// Wait for the init to exit. Returns its exit status when it is our child (as with
    /// `run`), else 0 once it is gone. With a pid namespace, the init's death completes only
    /// once the caller has reaped the processes it exec'd there (see [`ExecProcess`]).
    pub fn wait(&self) -> Result<i32> {
        let pid = nix::unistd::Pid::from_raw(self.state.pid);
        match nix::sys::wait::waitpid(pid, None) {
            Ok(s) => Ok(exit_code(s)),
            Err(Errno::ECHILD) => {
                wait_gone(self.state.init())?;
                Ok(0)
            }
            Err(e) => Err(sys_err("waitpid")(e)),
        }
    }

    /// poststart and poststop, the hooks that run once the container process has: their
    /// failure is returned (for `start` to stop the container, for `delete` to report once it
    /// is gone), by `run` ([`crate::hooks::run`] or [`crate::hooks::run_all`]).
    fn run_late_hooks(
        &self,
        point: &'static str,
        pick: fn(&Hooks) -> &Option<Vec<Hook>>,
        status: Status,
        run: fn(&'static str, &[Hook], &[u8]) -> Result<()>,
    ) -> Result<()> {
        match self.state.hooks.as_ref().and_then(|h| pick(h).as_ref()) {
            Some(hooks) => run(point, hooks, &self.state.hook_json(status)),
            None => Ok(()),
        }
    }

    fn bad_status(&self, op: &'static str, status: Status) -> Error {
        Error::BadStatus {
            op,
            id: self.id.clone(),
            status: status.to_string(),
        }
    }

    /// Annotations from the config, as recorded at create.
    pub fn annotations(&self) -> &HashMap<String, String> {
        &self.state.annotations
    }
}

/// The exit status a shell would report: the code, or 128 + the signal.
pub fn exit_code(s: nix::sys::wait::WaitStatus) -> i32 {
    use nix::sys::wait::WaitStatus::*;
    match s {
        Exited(_, c) => c,
        Signaled(_, sig, _) => 128 + sig as i32,
        _ => 0,
    }
}

/// The namespaces of `pid` that differ from ours, as CLONE_NEW* flags (pid apart), and whether
/// its pid namespace differs.
fn namespaces_to_join(pid: i32) -> Result<(libc::c_int, bool)> {
    let differs = |name: &str| -> Result<bool> {
        let theirs = format!("/proc/{pid}/ns/{name}");
        let t = std::fs::read_link(&theirs).map_err(io_err("read", &theirs))?;
        Ok(std::fs::read_link(format!("/proc/self/ns/{name}")).ok() != Some(t))
    };
    let mut flags = 0;
    for (name, flag) in [
        // setns joins a user namespace first, whatever the order of the flags.
        ("user", libc::CLONE_NEWUSER),
        ("mnt", libc::CLONE_NEWNS),
        ("uts", libc::CLONE_NEWUTS),
        ("ipc", libc::CLONE_NEWIPC),
        ("net", libc::CLONE_NEWNET),
        ("cgroup", libc::CLONE_NEWCGROUP),
        ("time", libc::CLONE_NEWTIME),
    ] {
        if differs(name)? {
            flags |= flag;
        }
    }
    Ok((flags, differs("pid")?))
}

/// The fd the init or an exec'd process sends its terminal's master over: the caller's
/// console socket, or one end of a socketpair whose other end (returned second) stays here.
fn console_for(
    terminal: bool,
    socket: Option<&Path>,
    own: bool,
) -> Result<(Option<OwnedFd>, Option<OwnedFd>)> {
    match (terminal, socket) {
        (false, _) => Ok((None, None)),
        (true, Some(path)) => Ok((Some(crate::terminal::connect(path)?), None)),
        (true, None) if own => {
            let (a, b) = nix::sys::socket::socketpair(
                nix::sys::socket::AddressFamily::Unix,
                nix::sys::socket::SockType::Stream,
                None,
                nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            )
            .map_err(sys_err("socketpair for the terminal"))?;
            Ok((Some(b), Some(a)))
        }
        (true, None) => check_console(terminal, socket, own).map(|()| (None, None)),
    }
}

/// A terminal must go somewhere: to the caller's console socket, or to this process.
fn check_console(terminal: bool, socket: Option<&Path>, own: bool) -> Result<()> {
    if terminal && socket.is_none() && !own {
        return Err(Error::InvalidConfig(
            "process.terminal is set: a --console-socket is needed to receive the terminal".into(),
        ));
    }
    Ok(())
}

/// The fds among 3 .. 3+N to pass on: those the caller left open for the container, i.e. open
/// and not close-on-exec. One that is not open is skipped (runc passes whatever it finds); one
/// that is close-on-exec is the runtime's own (the `--log` file, say, where the caller had a
/// gap), which must never reach the container.
fn preserved_fds(n: u32) -> Vec<i32> {
    if n == 0 {
        return Vec::new();
    }
    let end = 3 + i64::from(n);
    let mut fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&fd| fd >= 3 && i64::from(fd) < end)
        // SAFETY: F_GETFD only queries an fd number (the directory's own fd is close-on-exec).
        .filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } == 0)
        .collect();
    fds.sort_unstable();
    if fds.len() < n as usize {
        log::warn!(
            "--preserve-fds {n}: passing on fds {fds:?} only; the others are not open, or are \
             the runtime's own"
        );
    }
    fds
}

/// SIGKILL the init, if it is still alive, and wait until it is gone.
fn kill_and_wait(init: Proc) -> Result<()> {
    if let Some(fd) = pidfd_of(init)? {
        pidfd_signal(&fd, Signal::SIGKILL)?;
        // The pid namespace dies with its init; our child (if it is one) must be reaped. A
        // process can be kept from dying (frozen, stuck in the kernel): say so, do not hang.
        if !poll_fd(&fd, 10_000)? {
            return Err(Error::Sys {
                op: "wait for the init to die after SIGKILL (10 s)",
                errno: Errno::ETIMEDOUT,
            });
        }
        let _ = nix::sys::wait::waitpid(
            nix::unistd::Pid::from_raw(init.pid),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        );
    }
    Ok(())
}

/// Signal every process in the container's cgroup. They are ours: only the container's
/// processes are in its cgroup.
fn signal_cgroup(cg: &Cgroup, signal: Signal) -> Result<()> {
    // cgroup.kill leaves no window for a fork to escape; otherwise one pid at a time.
    if signal == Signal::SIGKILL && cg.kill_all() {
        return Ok(());
    }
    for pid in cg.all_procs()? {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
    }
    Ok(())
}

/// A pidfd for exactly this process: opened, then checked against the start time, so a reused
/// pid is never signalled. None when the process is gone.
fn pidfd_of(p: Proc) -> Result<Option<OwnedFd>> {
    if p.pid <= 0 {
        return Ok(None);
    }
    // SAFETY: pidfd_open takes a pid and flags; the returned fd is ours.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, p.pid, 0) };
    match Errno::result(r) {
        // SAFETY: the kernel just gave us this fd.
        Ok(fd) => {
            let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
            Ok(p.alive().then_some(fd))
        }
        Err(Errno::ESRCH) => Ok(None),
        Err(e) => Err(sys_err("pidfd_open")(e)),
    }
}

fn pidfd_signal(fd: &OwnedFd, sig: Signal) -> Result<()> {
    // SAFETY: pidfd_send_signal with our fd, a signal number and no siginfo.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig as i32,
            0usize,
            0,
        )
    };
    match Errno::result(r) {
        Ok(_) | Err(Errno::ESRCH) => Ok(()),
        Err(e) => Err(sys_err("pidfd_send_signal")(e)),
    }
}

/// Wait until the pidfd is readable (the process exited); false on timeout (-1: none).
fn poll_fd(fd: &OwnedFd, timeout_ms: i32) -> Result<bool> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: poll on one pollfd we own.
        match Errno::result(unsafe { libc::poll(&mut pfd, 1, timeout_ms) }) {
            Ok(n) => return Ok(n > 0),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(sys_err("poll pidfd")(e)),
        }
    }
}

fn signal_proc(p: Proc, sig: Signal) -> Result<()> {
    match pidfd_of(p)? {
        Some(fd) => pidfd_signal(&fd, sig),
        None => Ok(()),
    }
}

fn wait_gone(p: Proc) -> Result<()> {
    match pidfd_of(p)? {
        Some(fd) => poll_fd(&fd, -1).map(drop),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["a", "web-1", "x_y.z+1", "0123456789abcdef"] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "../x",
            "a..b",
            "sp ace",
            "new\nline",
        ] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }
}
