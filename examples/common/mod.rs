//! What the examples share: a scratch directory per run, a throw-away rootfs made of a static
//! busybox, unique container ids and cgroups, and cleanup that runs even when an example fails
//! half-way (an error returned from `main`, or a panic).
#![allow(dead_code)] // each example uses only some of these

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use cofferdam::oci_spec::runtime::Spec;
use cofferdam::{Container, ContainerBuilder, Signal, Status, default_spec};

pub type Result<T> = std::result::Result<T, Failure>;

/// Any error, printed by its message when `main` returns it (`Error: <message>`), where a
/// `Box<dyn Error>` would print its `Debug` form.
pub struct Failure(Box<dyn std::error::Error>);

impl<E: Into<Box<dyn std::error::Error>>> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure(e.into())
    }
}

impl std::fmt::Debug for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

/// `<tmp>/cofferdam-example-<name>-<pid>/rootfs` with busybox and a link per applet. Returns
/// the directory (remove it when done) and the rootfs.
pub fn busybox_rootfs(name: &str) -> Result<(PathBuf, PathBuf)> {
    let dir = std::env::temp_dir().join(format!("cofferdam-example-{name}-{}", std::process::id()));
    let rootfs = dir.join("rootfs");
    make_busybox_rootfs(&rootfs)?;
    Ok((dir, rootfs))
}

/// A rootfs at `rootfs`: `/bin/busybox` and a link per applet, the usual empty directories,
/// and an `/etc/passwd` with `root` and `user` (1000).
pub fn make_busybox_rootfs(rootfs: &Path) -> Result<()> {
    let busybox = Path::new("/bin/busybox");
    if !busybox.exists() {
        return Err(
            "needs a static busybox at /bin/busybox: apt-get install -y busybox-static".into(),
        );
    }
    std::fs::create_dir_all(rootfs.join("bin"))?;
    for d in ["proc", "sys", "dev", "etc", "tmp", "root", "home/user"] {
        std::fs::create_dir_all(rootfs.join(d))?;
    }
    std::fs::copy(busybox, rootfs.join("bin/busybox"))?;
    let applets = std::process::Command::new(busybox)
        .arg("--list")
        .output()?
        .stdout;
    for applet in String::from_utf8_lossy(&applets).lines() {
        let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet));
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n",
    )?;
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nuser:x:1000:\n")?;
    Ok(())
}

/// One run of an example: `<tmp>/cofferdam-example-<name>-<pid>/` holds its rootfs, its state
/// root (`state/`) and whatever else it makes. Containers get ids `<name>-<pid>-<suffix>` and
/// cgroups under `/cofferdam-example-<name>-<pid>/`, so that two runs never meet. Dropping it
/// deletes (forcibly) every container it named, unmounts what it was told to, and removes the
/// directory.
pub struct Scratch {
    pub name: String,
    pub dir: PathBuf,
    pub state: PathBuf,
    ids: RefCell<Vec<String>>,
    mounts: RefCell<Vec<PathBuf>>,
}

impl Scratch {
    pub fn new(name: &str) -> Result<Scratch> {
        if !nix::unistd::geteuid().is_root() {
            return Err("this example makes containers: run it as root".into());
        }
        let dir =
            std::env::temp_dir().join(format!("cofferdam-example-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch {
            name: name.to_string(),
            state: dir.join("state"),
            dir,
            ids: Default::default(),
            mounts: Default::default(),
        })
    }

    /// A busybox rootfs at `<dir>/<sub>`.
    pub fn rootfs(&self, sub: &str) -> Result<PathBuf> {
        let rootfs = self.dir.join(sub);
        make_busybox_rootfs(&rootfs)?;
        Ok(rootfs)
    }

    /// A container id unique to this run, deleted when the scratch is dropped.
    pub fn id(&self, suffix: &str) -> String {
        let id = format!("{}-{}-{suffix}", self.name, std::process::id());
        self.ids.borrow_mut().push(id.clone());
        id
    }

    /// Unmount `path` (lazily) when the scratch is dropped, before its directory is removed.
    pub fn unmount_later(&self, path: &Path) {
        self.mounts.borrow_mut().push(path.to_path_buf());
    }

    /// runc's default spec running `args`, without a terminal, in a cgroup of this run's
    /// (`/cofferdam-example-<name>-<pid>/<suffix>`, removed by delete).
    pub fn spec(&self, suffix: &str, args: &[&str]) -> Spec {
        let mut spec = default_spec();
        let process = spec
            .process_mut()
            .as_mut()
            .expect("the default spec has one");
        process.set_terminal(Some(false));
        process.set_args(Some(args.iter().map(|a| a.to_string()).collect()));
        let linux = spec.linux_mut().as_mut().expect("the default spec has one");
        let cgroup = format!(
            "/cofferdam-example-{}-{}/{suffix}",
            self.name,
            std::process::id()
        );
        linux.set_cgroups_path(Some(cgroup.into()));
        spec
    }

    /// Create container `<name>-<pid>-<suffix>` from `spec` with `rootfs` as its root.
    pub fn create(&self, suffix: &str, spec: Spec, rootfs: &Path) -> Result<Container> {
        Ok(ContainerBuilder::new(self.id(suffix))
            .state_root(&self.state)
            .spec(spec)
            .rootfs(rootfs)
            .create()?)
    }

    /// Create, start, wait for and delete a container: its exit status. Its output goes to
    /// ours (the container's stdio is this process's).
    pub fn run(&self, suffix: &str, spec: Spec, rootfs: &Path) -> Result<i32> {
        let c = self.create(suffix, spec, rootfs)?;
        c.start()?;
        let code = c.wait()?;
        c.delete(false)?;
        Ok(code)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Kill every process of our containers first, and reap those that are our children
        // (the inits we created, the processes we exec'd): the init of a pid namespace does not
        // finish dying until every process of its namespace is reaped, so a delete that waits
        // for it would wait forever on an exec'd child of ours left unreaped by a failure.
        for id in self.ids.borrow().iter() {
            if let Ok(c) = Container::load(&self.state, id) {
                if c.status() == Status::Paused {
                    let _ = c.resume(); // frozen processes cannot die
                }
                let _ = c.kill(Signal::SIGKILL, true);
            }
        }
        poll_until(10, || {
            use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
            loop {
                match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::StillAlive) => return false,
                    Ok(_) => continue,
                    Err(_) => return true, // ECHILD: no child left
                }
            }
        });
        for id in self.ids.borrow().iter() {
            let _ = Container::delete_id(&self.state, id, true);
        }
        for m in self.mounts.borrow().iter().rev() {
            let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Poll `f` every 20 ms until it holds or `secs` seconds have passed; whether it held. The
/// kernel does some things asynchronously (a process is reaped, a fork is seen in a cgroup):
/// generous bounds cost nothing when it is quick, and keep slow machines (an emulated VM)
/// from failing.
pub fn poll_until(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if f() {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
