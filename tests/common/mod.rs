//! Test fixtures: a busybox-static bundle per test, a private state root, a private cgroup
//! prefix, and cleanup that runs even when the test fails. Tests need root and a static
//! busybox at /bin/busybox (`scripts/test.sh` installs `busybox-static`).
#![allow(dead_code)]

pub mod engines;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

/// The cofferdam binary. The shim's tests (another package of the workspace) include this
/// module by path; cargo names only a package's own binaries to its tests, and they do not
/// call this one.
pub const BIN: &str = match option_env!("CARGO_BIN_EXE_cofferdam") {
    Some(bin) => bin,
    None => "/nonexistent/cofferdam (not built for this package's tests)",
};

/// One test's world: a directory with bundles and a state root, and a cgroup prefix
/// `/cofferdam-test-<pid>-<name>` that only this test uses.
pub struct Env {
    pub name: String,
    pub dir: PathBuf,
    pub root: PathBuf,
    pub cgroup_prefix: String,
    ids: std::sync::Mutex<Vec<String>>,
}

impl Env {
    pub fn new(name: &str) -> Env {
        assert!(
            nix::unistd::geteuid().is_root(),
            "these tests run containers and need root"
        );
        let dir =
            std::env::temp_dir().join(format!("cofferdam-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Env {
            name: name.to_string(),
            root: dir.join("state"),
            cgroup_prefix: format!("/cofferdam-test-{}-{name}", std::process::id()),
            dir,
            ids: Default::default(),
        }
    }

    /// A container id unique to this test run.
    pub fn id(&self, suffix: &str) -> String {
        let id = format!("{}-{}-{suffix}", self.name, std::process::id());
        self.ids.lock().unwrap().push(id.clone());
        id
    }

    /// A bundle with a busybox rootfs and a config for `args`, based on `cofferdam spec`.
    pub fn bundle(&self, name: &str, args: &[&str]) -> Bundle {
        let path = self.dir.join(name);
        let rootfs = path.join("rootfs");
        make_busybox_rootfs(&rootfs);
        let out = Command::new(BIN)
            .args(["spec", "--bundle"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "spec failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(path.join("config.json")).unwrap()).unwrap();
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(args);
        // Each bundle has a parent cgroup of its own, so that containers of one test do not
        // share one (a parent is removed by the delete of the container that made it).
        config["linux"]["cgroupsPath"] = json!(format!("{}_{name}/ctr", self.cgroup_prefix));
        let b = Bundle { path, config };
        b.save();
        b
    }

    /// Run the binary with this test's state root.
    pub fn cmd(&self, args: &[&str]) -> Output {
        self.cmd_in(args, None)
    }

    /// Output goes through files, not pipes: `create` hands its stdio to the container, so a
    /// pipe would stay open until the container exits.
    pub fn cmd_in(&self, args: &[&str], cwd: Option<&Path>) -> Output {
        let mut c = Command::new(BIN);
        c.arg("--root").arg(&self.root).args(args);
        if let Some(d) = cwd {
            c.current_dir(d);
        }
        self.output(c)
    }

    /// Run any command to completion with stdin from /dev/null and its output through
    /// files (see [`Env::cmd_in`]).
    pub fn output(&self, mut c: Command) -> Output {
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let out_path = self.dir.join(format!(".out-{n}"));
        let err_path = self.dir.join(format!(".err-{n}"));
        c.stdin(Stdio::null());
        c.stdout(std::fs::File::create(&out_path).unwrap());
        c.stderr(std::fs::File::create(&err_path).unwrap());
        let status = c.status().unwrap();
        let out = Output {
            status,
            stdout: std::fs::read(&out_path).unwrap_or_default(),
            stderr: std::fs::read(&err_path).unwrap_or_default(),
        };
        let _ = std::fs::remove_file(out_path);
        let _ = std::fs::remove_file(err_path);
        out
    }

    /// `run` a bundle in the foreground and return (exit code, stdout, stderr).
    pub fn run(&self, b: &Bundle, id: &str) -> (i32, String, String) {
        code_out_err(&self.cmd(&["run", "--bundle", b.path.to_str().unwrap(), id]))
    }

    /// `run` in the foreground as a child of the test, with stdout piped, for tests that act on
    /// the container while it runs.
    pub fn spawn_run(&self, b: &Bundle, id: &str) -> std::process::Child {
        Command::new(BIN)
            .arg("--root")
            .arg(&self.root)
            .args(["run", "--bundle", b.path_str(), id])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// `run -d` (detached), insisting on success; returns the init's pid.
    pub fn run_detached(&self, b: &Bundle, id: &str) -> i32 {
        let out = self.cmd(&["run", "-d", "--bundle", b.path_str(), id]);
        assert!(
            out.status.success(),
            "run -d {id} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.state(id)["pid"].as_i64().unwrap() as i32
    }

    /// Run and insist on success; returns stdout.
    pub fn run_ok(&self, b: &Bundle, id: &str) -> String {
        let (code, out, err) = self.run(b, id);
        assert_eq!(code, 0, "run {id} failed: stdout={out} stderr={err}");
        out
    }

    pub fn state(&self, id: &str) -> Value {
        let out = self.cmd(&["state", id]);
        assert!(
            out.status.success(),
            "state {id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Rewrite container `id`'s state file, to stand for what a crash or a reused pid leaves.
    pub fn edit_state(&self, id: &str, f: impl FnOnce(&mut Value)) {
        let path = self.root.join(id).join("state.json");
        let mut st: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        f(&mut st);
        std::fs::write(&path, serde_json::to_vec(&st).unwrap()).unwrap();
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap().to_string()
    }

    /// Assert that nothing of container `id` is left: no state dir, no cgroup directory under
    /// this test's prefix in any hierarchy, no process in such a cgroup, no mount of this
    /// test's directory.
    pub fn assert_nothing_left(&self, id: &str) {
        assert!(!self.root.join(id).exists(), "state dir of {id} is left");
        let cgs = self.cgroup_dirs();
        assert!(cgs.is_empty(), "cgroup dirs are left: {cgs:?}");
        let procs = processes_in_cgroup(&self.cgroup_prefix);
        assert!(
            procs.is_empty(),
            "processes are left in {}: {procs:?}",
            self.cgroup_prefix
        );
        // Mounts in a rootfs would have leaked from a container; the test's own host mounts
        // (outside any rootfs) are not the runtime's.
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        // This test's directory and below only: another test's name may start with this one's
        // (`nomntns` and `nomntnsmp`), and its mounts are its own.
        let d = format!("{}/", self.dir.to_string_lossy());
        let leaked: Vec<&str> = mountinfo
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4))
            .filter(|mp| mp.starts_with(&d) && mp.contains("/rootfs"))
            .collect();
        assert!(leaked.is_empty(), "mounts are left in rootfs: {leaked:?}");
    }

    /// This test's cgroup directories (every top-level one whose name starts with the test's
    /// prefix), in every hierarchy.
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let name = self.cgroup_prefix.trim_start_matches('/');
        let top = Path::new("/sys/fs/cgroup");
        // v1 and hybrid hosts: one mount per hierarchy below /sys/fs/cgroup; pure cgroup2
        // hosts: /sys/fs/cgroup itself.
        let mut hierarchies = vec![top.to_path_buf()];
        hierarchies.extend(
            std::fs::read_dir(top)
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir()),
        );
        let mut found = Vec::new();
        for h in hierarchies {
            for e in std::fs::read_dir(&h).into_iter().flatten().flatten() {
                if owned_by(&e.file_name().to_string_lossy(), name) && e.path().is_dir() {
                    found.push(e.path());
                }
            }
        }
        found
    }
}

impl Env {
    /// Remove this test's cgroup directories (only our own prefix), deepest first: for a test
    /// that failed half-way, or for what another runtime leaves (runc keeps parent cgroups).
    pub fn sweep_cgroups(&self) {
        for dir in self.cgroup_dirs() {
            let out = Command::new("find")
                .arg(&dir)
                .args(["-depth", "-type", "d"])
                .output()
                .unwrap();
            for d in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = std::fs::remove_dir(d);
            }
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for id in self.ids.lock().unwrap().iter() {
            let _ = self.cmd(&["delete", "--force", id]);
        }
        self.sweep_cgroups();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// (exit code, stdout, stderr) of a finished command.
/// How many times longer than on an idle machine a test waits for the kernel:
/// `TEST_TIME_FACTOR` (default 1). The VM pass (software emulated) sets it, and so can a run on
/// a busy machine. Every deadline in the tests comes from here.
pub fn time_factor() -> f64 {
    std::env::var("TEST_TIME_FACTOR")
        .ok()
        .and_then(|f| f.parse::<f64>().ok())
        .filter(|f| *f >= 1.0)
        .unwrap_or(1.0)
}

/// `base` (what an idle machine needs, with room) scaled by [`time_factor`].
pub fn patience(base: std::time::Duration) -> std::time::Duration {
    base.mul_f64(time_factor())
}

/// Poll `f` until it holds, failing the test with `what` after `base` × [`time_factor`].
pub fn wait_until(what: &str, base: std::time::Duration, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + patience(base);
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {:?} waiting for {what}",
            patience(base)
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// What the runtime said on stderr, with the quoting of its `level=error msg="..."` record
/// undone, so that tests can look for messages that hold quotes.
pub fn stderr_text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr)
        .replace("\\\"", "\"")
        .replace("\\\\", "\\")
}

pub fn code_out_err(out: &Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Whether a top-level cgroup name belongs to the test whose prefix (without `/`) is `prefix`:
/// the prefix itself, or `<prefix>_<bundle>`. Test names have no `_`, so `race` never claims
/// `racedel`'s cgroups.
fn owned_by(name: &str, prefix: &str) -> bool {
    name == prefix
        || name
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('_'))
}

/// Live pids whose cgroup (in any hierarchy) lies under `prefix`. Zombies are left out: they
/// hold nothing but their pid, and the init's parent (the subreaper) reaps them when it may.
pub fn processes_in_cgroup(prefix: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        if stat
            .rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with('Z'))
        {
            continue;
        }
        let cg = std::fs::read_to_string(e.path().join("cgroup")).unwrap_or_default();
        if cg.lines().any(|l| {
            l.split(':')
                .nth(2)
                .and_then(|p| p.trim_start_matches('/').split('/').next())
                .is_some_and(|top| owned_by(top, prefix.trim_start_matches('/')))
        }) {
            pids.push(pid);
        }
    }
    pids
}

pub struct Bundle {
    pub path: PathBuf,
    pub config: Value,
}

impl Bundle {
    pub fn save(&self) {
        std::fs::write(
            self.path.join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    pub fn rootfs(&self) -> PathBuf {
        self.path.join("rootfs")
    }

    pub fn path_str(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

/// The busybox binary the tests put in every rootfs. It must be static: the rootfs has no libc.
pub fn busybox() -> PathBuf {
    let p = PathBuf::from("/bin/busybox");
    assert!(
        p.exists(),
        "/bin/busybox is missing: apt-get install busybox-static (scripts/test.sh does)"
    );
    p
}

pub fn make_busybox_rootfs(rootfs: &Path) {
    let bin = rootfs.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(busybox(), bin.join("busybox")).unwrap();
    let list = Command::new(busybox()).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let _ = std::os::unix::fs::symlink("busybox", bin.join(applet));
    }
    for d in ["proc", "sys", "dev", "etc", "tmp", "root", "home/user"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nuser:x:1000:\n").unwrap();
}

/// Lines of `/proc/mounts` inside a container: (mount point, fs type, options).
pub fn parse_mounts(text: &str) -> Vec<(String, String, String)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4).then(|| (f[1].to_string(), f[2].to_string(), f[3].to_string()))
        })
        .collect()
}

/// A daemon's private namespaces, as `unshare ... --fork --kill-child --pid` makes them: the
/// `unshare` process and its child, the namespace's init, with a pidfd for it so that no signal
/// can reach a reused pid. Spawned so that `unshare` dies with the test (even by SIGKILL): its
/// `--kill-child` then takes the init with it, and the kernel every process of the namespace.
pub struct Namespaced {
    pub unshare: std::process::Child,
    pub init: i32,
    pub init_fd: std::os::fd::OwnedFd,
}

impl Namespaced {
    /// Spawn `c` (the `unshare` command line) and wait for its init; `log` says why it failed.
    pub fn spawn(mut c: Command, log: impl Fn() -> String) -> Namespaced {
        use std::os::fd::FromRawFd;
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches no memory of ours.
        unsafe {
            c.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut unshare = c.spawn().expect("unshare (util-linux)");
        let ns_pid = unshare.id() as i32;
        let mut init = 0;
        wait_until(
            "the namespace's init",
            std::time::Duration::from_secs(10),
            || {
                init = children_of(ns_pid).first().copied().unwrap_or(0);
                init != 0 || unshare.try_wait().unwrap().is_some()
            },
        );
        assert!(init != 0, "unshare failed: {}", log());
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, init, 0) };
        assert!(fd >= 0, "pidfd_open: {}", std::io::Error::last_os_error());
        // SAFETY: the fd was just opened and is ours alone.
        let init_fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) };
        // Still unshare's child (which has not reaped it): the pidfd is that process's.
        assert!(
            children_of(ns_pid).contains(&init),
            "the namespace's init died"
        );
        Namespaced {
            unshare,
            init,
            init_fd,
        }
    }

    /// Whether `unshare`, and so the namespace's init, still runs.
    pub fn running(&mut self) -> bool {
        self.unshare.try_wait().ok().flatten().is_none()
    }

    /// A signal to the namespace's init, through its pidfd.
    pub fn signal_init(&self, sig: i32) {
        use std::os::fd::AsRawFd;
        // SAFETY: pidfd_send_signal on our own pidfd, with no siginfo.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.init_fd.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
    }

    /// End it all: SIGTERM to the init (docker-init passes it on to the daemon), SIGKILL if
    /// it is not gone in 30 s. When that init ends, the kernel kills every process of the pid
    /// namespace, and `unshare` exits only after; its mount and network namespaces then have
    /// no process left and go away. Last, a process of the test's cgroups (`cgroup_prefix`)
    /// that is still there would be one in exit: waited for.
    pub fn stop(mut self, cgroup_prefix: &str) {
        use std::time::{Duration, Instant};
        if self.running() {
            self.signal_init(libc::SIGTERM);
            let deadline = Instant::now() + patience(Duration::from_secs(30));
            while self.running() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            self.signal_init(libc::SIGKILL);
        }
        let _ = self.unshare.wait();
        let deadline = Instant::now() + patience(Duration::from_secs(30));
        while !processes_in_cgroup(cgroup_prefix).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The parent of `pid` (field 4 of /proc/PID/stat, after the command in parentheses).
pub fn ppid(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    stat.rsplit(')')
        .next()
        .and_then(|s| s.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no parent in /proc/{pid}/stat: {stat}"))
}

/// The pids whose parent is `pid`.
pub fn children_of(pid: i32) -> Vec<i32> {
    let mut kids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        // pid (comm) state ppid ...
        let ppid = stat
            .rsplit(')')
            .next()
            .and_then(|s| s.split_whitespace().nth(1))
            .and_then(|s| s.parse::<i32>().ok());
        if ppid == Some(pid) {
            kids.push(p);
        }
    }
    kids
}

// ---- cgroups, as the kernel shows them --------------------------------------------------------

/// Pure cgroup v2 host?
pub fn unified() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The host directory of `pid`'s cgroup for controller `ctrl`, from the kernel's own
/// `/proc/PID/cgroup` (so the test does not trust the runtime to say where it put it).
pub fn cgroup_dir(pid: i32, ctrl: &str) -> PathBuf {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for l in text.lines() {
        let mut f = l.splitn(3, ':');
        let (_, ctrls, path) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        let path = path.trim_start_matches('/');
        if unified() && ctrls.is_empty() {
            return PathBuf::from("/sys/fs/cgroup").join(path);
        }
        if ctrls.split(',').any(|c| c == ctrl) {
            return PathBuf::from("/sys/fs/cgroup").join(ctrl).join(path);
        }
    }
    panic!("pid {pid} has no {ctrl} cgroup: {text}");
}

/// A cgroup file's value, trimmed.
pub fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
        .trim()
        .to_string()
}

/// Insist that a command succeeded; returns its stdout.
pub fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// create + start in the background; returns the init's pid.
pub fn start(env: &Env, b: &Bundle, id: &str) -> i32 {
    ok(
        &env.cmd(&["create", "--bundle", b.path_str(), id]),
        "create",
    );
    ok(&env.cmd(&["start", id]), "start");
    env.state(id)["pid"].as_i64().unwrap() as i32
}

// ---- seccomp notify, as an agent sees it ----------------------------------------------------

#[repr(C)]
#[derive(Default)]
pub struct SeccompData {
    pub nr: i32,
    pub arch: u32,
    pub ip: u64,
    pub args: [u64; 6],
}

#[repr(C)]
#[derive(Default)]
pub struct Notif {
    pub id: u64,
    pub pid: u32,
    pub flags: u32,
    pub data: SeccompData,
}

#[repr(C)]
#[derive(Default)]
pub struct NotifResp {
    pub id: u64,
    pub val: i64,
    pub error: i32,
    pub flags: u32,
}

// _IOWR('!', 0, struct seccomp_notif) and _IOWR('!', 1, struct seccomp_notif_resp)
const NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const NOTIF_SEND: libc::c_ulong = 0xc018_2101;

/// An agent's side of the seccomp notify protocol: the container process state and the
/// listener fd, in one message on a connection to listenerPath.
pub fn receive_listener(conn: &std::os::unix::net::UnixStream) -> (Value, std::os::fd::OwnedFd) {
    use std::os::fd::{AsRawFd, FromRawFd};
    let mut buf = vec![0u8; 65536];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = nix::sys::socket::recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        nix::sys::socket::MsgFlags::empty(),
    )
    .unwrap();
    let fd = msg
        .cmsgs()
        .unwrap()
        .find_map(|c| match c {
            nix::sys::socket::ControlMessageOwned::ScmRights(f) => f.first().copied(),
            _ => None,
        })
        .expect("the listener fd");
    let n = msg.bytes;
    // SAFETY: the fd just arrived with SCM_RIGHTS.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    (serde_json::from_slice(&buf[..n]).unwrap(), fd)
}

/// The next notification, or None when the filter's processes are all gone (or after 30 s
/// without one). The wait is a poll: a blocked NOTIF_RECV is not woken when the last process
/// of the filter dies on older kernels (6.1), a poll sees POLLHUP.
pub fn notif_recv(listener: &std::os::fd::OwnedFd) -> Option<Notif> {
    use std::os::fd::AsRawFd;
    let mut pfd = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let wait_ms = patience(std::time::Duration::from_secs(30)).as_millis() as i32;
    // SAFETY: poll on one pollfd we own.
    let n = unsafe { libc::poll(&mut pfd, 1, wait_ms) };
    if n <= 0 || pfd.revents & libc::POLLIN == 0 {
        return None;
    }
    let mut req = Notif::default();
    // SAFETY: the ioctl fills the struct we own, of the size its number encodes.
    let r = unsafe { libc::ioctl(listener.as_raw_fd(), NOTIF_RECV, &mut req) };
    (r == 0).then_some(req)
}

/// Answer a notification: `error` (a negative errno), or let the syscall run (`cont`).
pub fn notif_send(listener: &std::os::fd::OwnedFd, id: u64, error: i32, cont: bool) {
    use std::os::fd::AsRawFd;
    let resp = NotifResp {
        id,
        val: 0,
        error: if cont { 0 } else { error },
        // SECCOMP_USER_NOTIF_FLAG_CONTINUE
        flags: u32::from(cont),
    };
    // SAFETY: the ioctl reads the struct we own.
    let r = unsafe { libc::ioctl(listener.as_raw_fd(), NOTIF_SEND, &resp) };
    assert!(
        r == 0 || cont,
        "NOTIF_SEND: {}",
        std::io::Error::last_os_error()
    );
}

// ---- mounts the tests make on the host ------------------------------------------------------

/// A mount a test made on the host, unmounted (lazily) when dropped.
pub struct HostMount(pub PathBuf);

impl HostMount {
    fn run(args: &[&str]) {
        let out = Command::new("mount").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "mount {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Bind `dir` onto itself and make it shared, so mounts under it propagate to its copies.
    pub fn shared(dir: &Path) -> HostMount {
        let d = dir.to_str().unwrap();
        Self::run(&["--bind", d, d]);
        let m = HostMount(dir.to_path_buf());
        Self::run(&["--make-rshared", d]);
        m
    }

    /// Bind `dir` onto itself and make it private: what is mounted below it propagates nowhere
    /// (the kernel lets a mount namespace's file be bound only where it cannot propagate into
    /// that namespace).
    pub fn private(dir: &Path) -> HostMount {
        let d = dir.to_str().unwrap();
        Self::run(&["--bind", d, d]);
        let m = HostMount(dir.to_path_buf());
        Self::run(&["--make-private", d]);
        m
    }

    /// Bind `source` (a file) on `target`, which is created empty.
    pub fn bind_file(source: &Path, target: &Path) -> HostMount {
        std::fs::write(target, "").unwrap();
        Self::run(&["--bind", source.to_str().unwrap(), target.to_str().unwrap()]);
        HostMount(target.to_path_buf())
    }

    pub fn tmpfs(dir: &Path) -> HostMount {
        Self::run(&["-t", "tmpfs", "tmpfs", dir.to_str().unwrap()]);
        HostMount(dir.to_path_buf())
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A network namespace made by `ip netns add` (a bind mount at `/run/netns/NAME`), deleted
/// when dropped, with whatever was made in it (bridges, veths, firewall rules).
pub struct IpNetns(pub String, bool);

/// Whether /run/netns is a mount point: the first `ip netns add` on a machine binds the
/// directory onto itself (shared) and leaves that mount behind after the last delete.
fn run_netns_mounted() -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split_whitespace().nth(4) == Some("/run/netns"))
}

impl IpNetns {
    pub fn add(name: &str) -> IpNetns {
        let had_mount = run_netns_mounted();
        let out = Command::new("ip").args(["netns", "add", name]).output();
        let out = out.expect("ip (iproute2) is installed by scripts/deps.sh");
        assert!(
            out.status.success(),
            "ip netns add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        IpNetns(name.to_string(), !had_mount)
    }

    pub fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.0)
    }
}

impl Drop for IpNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
        // The /run/netns mount, if this add made it and no namespace is left in it (a plain
        // umount: it fails, harmlessly, while another test's namespace is bound there).
        let empty = std::fs::read_dir("/run/netns").is_ok_and(|mut d| d.next().is_none());
        if self.1 && empty {
            let _ = Command::new("umount").arg("/run/netns").status();
        }
    }
}
