//! Engines that drive cofferdam in the tests: podman (with conmon) and a private containerd
//! whose runc v2 shim runs cofferdam, each with storage, state and sockets under the test's
//! dir, on a busybox image made locally (no registry is reachable).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::{BIN, Env, code_out_err, make_busybox_rootfs, patience};

/// A tarball of a busybox rootfs, for an engine to import as an image.
pub fn busybox_tarball(env: &Env) -> PathBuf {
    let rootfs = env.dir.join("image");
    make_busybox_rootfs(&rootfs);
    let tar = env.dir.join("bb.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success(), "tar of the busybox rootfs failed");
    tar
}

/// A busybox image named `image` as an OCI archive (`oci.tar` in the test's dir), for
/// containerd to import: the rootfs imported by podman (vfs, a private root) and saved.
pub fn busybox_oci_archive(env: &Env, image: &str) -> PathBuf {
    let d = |n: &str| env.dir.join(n).to_string_lossy().into_owned();
    let tar = busybox_tarball(env);
    let podman = |args: &[&str]| {
        let st = Command::new("podman")
            .args([
                "--root",
                &d("pstorage"),
                "--runroot",
                &d("prun"),
                "--storage-driver",
                "vfs",
            ])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "podman {args:?}");
    };
    podman(&["import", tar.to_str().unwrap(), image]);
    let archive = env.dir.join("oci.tar");
    podman(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        archive.to_str().unwrap(),
        image,
    ]);
    archive
}

/// A private containerd's config (`config.toml` in the test's dir): root, state and sockets
/// there too. Returns the address of its socket.
pub fn write_containerd_config(env: &Env) -> String {
    let d = |n: &str| env.dir.join(n).to_string_lossy().into_owned();
    let sock = d("containerd.sock");
    std::fs::write(
        env.dir.join("config.toml"),
        format!(
            "version = 2\nroot = \"{}\"\nstate = \"{}\"\n[grpc]\n  address = \"{sock}\"\n[ttrpc]\n  address = \"{sock}.ttrpc\"\n",
            d("root"),
            d("state")
        ),
    )
    .unwrap();
    sock
}

/// podman with a private storage root and run root (under the test's dir), the given cgroup
/// manager, and cofferdam as its runtime.
pub struct Podman<'a> {
    env: &'a Env,
    base: Vec<String>,
    /// Run podman in this network namespace (`nsenter --net=`), so that what its networks make
    /// (bridges, veths, firewall rules) stays out of the machine's.
    netns: Option<PathBuf>,
}

impl Podman<'_> {
    /// podman with the cgroupfs manager (its containers under `--cgroup-parent`).
    pub fn new(env: &Env, netns: Option<PathBuf>) -> Podman<'_> {
        Podman::with_manager(env, netns, "cgroupfs")
    }

    /// podman with `--cgroup-manager` `manager`: `systemd` makes podman pass cofferdam
    /// `--systemd-cgroup` and a `slice:prefix:name` cgroupsPath.
    pub fn with_manager<'a>(env: &'a Env, netns: Option<PathBuf>, manager: &str) -> Podman<'a> {
        if Command::new("podman").arg("--version").output().is_err() {
            panic!("podman is installed by scripts/deps.sh");
        }
        let d = |n: &str| env.dir.join(n).to_string_lossy().into_owned();
        let base: Vec<String> = [
            "--root",
            &d("storage"),
            "--runroot",
            &d("run"),
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            manager,
            "--events-backend",
            "file",
            "--runtime",
            BIN,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        Podman { env, base, netns }
    }

    /// podman with the arguments; (exit code, stdout, stderr), through files as `Env::cmd`.
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let mut c = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={}", ns.display())).arg("podman");
                c
            }
            None => Command::new("podman"),
        };
        c.args(&self.base).args(args);
        code_out_err(&self.env.output(c))
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(code, 0, "podman {args:?}: {out}{err}");
        out
    }
}

/// Whatever a failed test left running goes with it (its storage is under the test's dir).
impl Drop for Podman<'_> {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "--all", "--force", "--time", "0"]);
    }
}

/// podman's `--ulimit` options for nofile and nproc at this machine's hard limits: where root
/// lacks CAP_SYS_RESOURCE, podman's default rlimits (above them) cannot be set by any runtime.
pub fn ulimits() -> (String, String) {
    (
        format!(
            "nofile={0}:{0}",
            hard_limit(libc::RLIMIT_NOFILE).min(1 << 20)
        ),
        format!("nproc={0}:{0}", hard_limit(libc::RLIMIT_NPROC).min(32768)),
    )
}

fn hard_limit(r: libc::__rlimit_resource_t) -> u64 {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct we own.
    unsafe { libc::getrlimit(r, &mut l) };
    l.rlim_max
}

/// A private containerd (its own root, state, socket and config under the test's dir),
/// started by `start` and stopped, by its pid, when dropped.
pub struct Containerd<'a> {
    env: &'a Env,
    sock: String,
    daemon: std::process::Child,
}

impl Containerd<'_> {
    /// Starts the daemon and waits until it answers.
    pub fn start(env: &Env) -> Containerd<'_> {
        let d = |n: &str| env.dir.join(n).to_string_lossy().into_owned();
        let sock = write_containerd_config(env);
        let daemon = Command::new("containerd")
            .args(["--config", &d("config.toml")])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(env.dir.join("containerd.log")).unwrap())
            .stderr(std::fs::File::create(env.dir.join("containerd.err")).unwrap())
            .spawn()
            .expect("containerd is installed by scripts/deps.sh");
        let c = Containerd { env, sock, daemon };
        let deadline = std::time::Instant::now() + patience(std::time::Duration::from_secs(20));
        while c.ctr(&["version"]).0 != 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "containerd did not come up"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        c
    }

    /// `ctr` against this daemon: (exit code, stdout, stderr).
    pub fn ctr(&self, args: &[&str]) -> (i32, String, String) {
        let mut c = Command::new("ctr");
        c.args(["--address", &self.sock]).args(args);
        code_out_err(&self.env.output(c))
    }

    /// Imports a busybox image named `<base>:latest` ([`busybox_oci_archive`]).
    pub fn import_busybox(&self, base: &str) -> String {
        let image = format!("{base}:latest");
        let archive = busybox_oci_archive(self.env, &image);
        let (code, _, err) = self.ctr(&[
            "images",
            "import",
            "--base-name",
            base,
            &archive.to_string_lossy(),
        ]);
        assert_eq!(code, 0, "{err}");
        image
    }

    /// The status column of `ctr task ls` for a task ("" when it has none).
    pub fn task_status(&self, id: &str) -> String {
        let (_, out, _) = self.ctr(&["task", "ls"]);
        let line = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .unwrap_or_default();
        line.split_whitespace()
            .last()
            .unwrap_or_default()
            .to_string()
    }
}

/// Stops the daemon we started (by its pid) however the test ends.
impl Drop for Containerd<'_> {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}
