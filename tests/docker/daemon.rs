//! The private dockerd of the Docker tests: its namespaces, its start, the client with
//! deadlines, and the cleanup that nothing escapes (see [`Daemon`]'s `Drop`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;

/// docker.io's client, which matches its daemon (another client may be first on PATH).
pub const DOCKER: &str = "/usr/bin/docker";
pub const IMAGE: &str = "cofferdam-bb:latest";
/// The swarm's address: on `lo` of the test's network namespace.
pub const SWARM_ADDR: &str = "10.213.0.1";

/// A private dockerd and the namespaces it lives in.
pub struct Daemon {
    pub env: Env,
    sock: String,
    pub data: PathBuf,
    pub exec: PathBuf,
    /// `unshare` and its only child, the pid namespace's init (docker-init, which runs
    /// dockerd); taken by `drop`.
    ns: Option<Namespaced>,
    seq: AtomicUsize,
}

impl Daemon {
    pub fn start() -> Daemon {
        let env = Env::new("docker");
        for bin in [DOCKER, "/usr/sbin/dockerd", "/usr/bin/docker-init"] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: scripts/deps.sh installs docker.io"
            );
        }
        let d = env.dir.clone();
        let (data, exec) = (d.join("data"), d.join("exec"));
        std::fs::create_dir_all(d.join("client")).unwrap();
        std::fs::write(
            d.join("daemon.json"),
            json!({ "deprecated-key-path": d.join("key.json") }).to_string(),
        )
        .unwrap();
        let log = std::fs::File::create(d.join("dockerd.log")).unwrap();
        // The namespaces' insides, then the daemon: `lo` up with the swarm's address, a private
        // `/run`.
        let setup = format!(
            "mount -t tmpfs -o mode=755 tmpfs /run && ip link set lo up && \
             ip addr add {SWARM_ADDR}/32 dev lo && exec \"$@\""
        );
        let mut c = Command::new("unshare");
        c.args(w("--net --mount --pid --fork --kill-child --mount-proc"))
            .args(["--propagation", "private", "sh", "-c", &setup, "sh"])
            .args(["/usr/bin/docker-init", "-g", "--", "/usr/sbin/dockerd"])
            .arg("--data-root")
            .arg(&data)
            .arg("--exec-root")
            .arg(&exec)
            .arg("--pidfile")
            .arg(d.join("docker.pid"))
            .arg("--config-file")
            .arg(d.join("daemon.json"))
            .arg("-H")
            .arg(format!("unix://{}", d.join("docker.sock").display()))
            .args(["--storage-driver", "overlay2"])
            .args(["--exec-opt", "native.cgroupdriver=cgroupfs"])
            .args(["--cgroup-parent", &env.cgroup_prefix])
            .arg(format!("--add-runtime=cofferdam={BIN}"))
            .args(["--default-runtime", "cofferdam"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let ns = Namespaced::spawn(c, || read_log(&d));
        let (ns_pid, init) = (ns.unshare.id() as i32, ns.init);
        let daemon = Daemon {
            sock: format!("unix://{}", d.join("docker.sock").display()),
            data,
            exec,
            ns: Some(ns),
            seq: AtomicUsize::new(0),
            env,
        };
        let deadline = Instant::now() + patience(Duration::from_secs(60));
        while daemon.try_docker(&["version"]).map(|o| o.status.success()) != Some(true) {
            assert!(
                Instant::now() < deadline && children_of(ns_pid).contains(&init),
                "dockerd did not come up:\n{}",
                read_log(&d)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let tar = engines::busybox_tarball(&daemon.env);
        daemon.ok(&["import", tar.to_str().unwrap(), IMAGE]);
        daemon
    }

    /// The docker client on our daemon, with a deadline: None when it did not finish in time
    /// (then killed) or could not start.
    pub fn try_docker_in(
        &self,
        args: &[&str],
        stdin: Option<&Path>,
        base: Duration,
    ) -> Option<Output> {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let (o, e) = (
            self.env.dir.join(format!(".out-{n}")),
            self.env.dir.join(format!(".err-{n}")),
        );
        let mut c = Command::new(DOCKER);
        c.env("DOCKER_CONFIG", self.env.dir.join("client"))
            .args(["-H", &self.sock])
            .args(args)
            .stdout(std::fs::File::create(&o).unwrap())
            .stderr(std::fs::File::create(&e).unwrap());
        match stdin {
            Some(p) => c.stdin(std::fs::File::open(p).unwrap()),
            None => c.stdin(Stdio::null()),
        };
        let mut child = c.spawn().ok()?;
        let deadline = Instant::now() + patience(base);
        let status = loop {
            if let Some(st) = child.try_wait().ok()? {
                break Some(st);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let out = status.map(|status| Output {
            status,
            stdout: std::fs::read(&o).unwrap_or_default(),
            stderr: std::fs::read(&e).unwrap_or_default(),
        });
        let _ = std::fs::remove_file(o);
        let _ = std::fs::remove_file(e);
        out
    }

    fn try_docker(&self, args: &[&str]) -> Option<Output> {
        self.try_docker_in(args, None, Duration::from_secs(120))
    }

    /// docker ARGS: (exit code, stdout, stderr); fails the scenario if it hangs.
    pub fn docker(&self, args: &[&str]) -> (i32, String, String) {
        self.docker_in(args, None)
    }

    pub fn docker_in(&self, args: &[&str], stdin: Option<&Path>) -> (i32, String, String) {
        let out = self
            .try_docker_in(args, stdin, Duration::from_secs(120))
            .unwrap_or_else(|| panic!("docker {args:?} did not finish"));
        code_out_err(&out)
    }

    /// docker ARGS, insisting on success; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.docker(args);
        assert_eq!(code, 0, "docker {args:?} failed: {out}{err}");
        out
    }

    pub fn inspect(&self, what: &str, format: &str) -> String {
        self.ok(&["inspect", "-f", format, what]).trim().to_string()
    }

    pub fn id(&self, name: &str) -> String {
        self.inspect(name, "{{.Id}}")
    }

    /// The host directory of container `id`'s cgroup for `ctrl` (cgroupfs driver, our parent).
    pub fn cg(&self, ctrl: &str, id: &str) -> PathBuf {
        let rel = format!("{}/{id}", self.env.cgroup_prefix.trim_start_matches('/'));
        if unified() {
            Path::new("/sys/fs/cgroup").join(rel)
        } else {
            Path::new("/sys/fs/cgroup").join(ctrl).join(rel)
        }
    }

    /// A command in the test's network namespace (the daemon's).
    pub fn in_netns(&self, args: &[&str]) -> Output {
        let mut c = Command::new("nsenter");
        c.arg("-t")
            .arg(self.ns_pid().to_string())
            .args(["-n", "--"]);
        c.args(args);
        self.env.output(c)
    }

    /// cofferdam in the daemon's mount and pid namespace (where the pids of its state are),
    /// on the state root the shim gave it (`<exec-root>/runtime-<name>/moby`).
    pub fn cofferdam_state(&self, id: &str) -> Value {
        let root = std::fs::read_dir(&self.exec)
            .unwrap()
            .flatten()
            .map(|e| e.path().join("moby"))
            .find(|p| p.join(id).exists())
            .unwrap_or_else(|| panic!("no runtime state dir of {id} in {}", self.exec.display()));
        let mut c = Command::new("nsenter");
        c.arg("-t")
            .arg(self.init().to_string())
            .args(["-m", "-p", "--"]);
        c.arg(BIN).arg("--root").arg(root).args(["state", id]);
        serde_json::from_str(&ok(&self.env.output(c), "cofferdam state")).unwrap()
    }

    /// Wait until `f` holds of `docker inspect -f FORMAT what`.
    pub fn wait_inspect(&self, what: &str, format: &str, f: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        let msg = format!("{what}: {format}");
        wait_until(&msg, Duration::from_secs(30), || {
            last = self.inspect(what, format);
            f(&last)
        });
        last
    }

    pub fn wait_logs(&self, name: &str, text: &str) {
        wait_until(
            &format!("{text:?} in the logs of {name}"),
            Duration::from_secs(30),
            || self.docker(&["logs", name]).1.contains(text),
        );
    }

    /// The pid namespace's init (host pid).
    pub fn init(&self) -> i32 {
        self.ns.as_ref().expect("running").init
    }

    pub fn ns_pid(&self) -> i32 {
        self.ns.as_ref().unwrap().unshare.id() as i32
    }

    /// A host directory for a scenario's files (bind mounts, cp).
    pub fn host_dir(&self, name: &str) -> PathBuf {
        let p = self.env.dir.join("host").join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    }
}

impl Drop for Daemon {
    /// Cleanup, certain whatever happened:
    /// 1. while the daemon answers: `swarm leave --force` and `rm -f` of every container (each
    ///    call with a deadline);
    /// 2. SIGTERM to the pid namespace's init (docker-init passes it to dockerd, which stops its
    ///    containerd), and SIGKILL if it is not gone in 30 s: when that init ends the kernel
    ///    kills every process of the namespace (containerd, shims, containers, which are in
    ///    namespaces nested in it), and unshare exits only after;
    /// 3. then the mount namespace (with every mount dockerd, containerd and cofferdam made:
    ///    overlays, shm, netns binds) and the network namespace (bridges, veths, iptables) have
    ///    no process left and go away;
    /// 4. the Env then removes the cgroup directories under the test's prefix, in every
    ///    hierarchy, and the directory.
    ///
    /// If the test process is killed instead, steps 2-3 still happen (unshare's parent-death
    /// signal); only the cgroup directories and the directory stay.
    fn drop(&mut self) {
        let Some(mut ns) = self.ns.take() else { return };
        if ns.running() {
            let quick = Duration::from_secs(60);
            let _ = self.try_docker_in(&["swarm", "leave", "--force"], None, quick);
            if let Some(o) = self.try_docker_in(&["ps", "-aq"], None, quick) {
                let ids = String::from_utf8_lossy(&o.stdout).into_owned();
                let mut args = vec!["rm", "-f"];
                args.extend(ids.split_whitespace());
                if args.len() > 2 {
                    let _ = self.try_docker_in(&args, None, quick);
                }
            }
        }
        ns.stop(&self.env.cgroup_prefix);
    }
}

pub fn read_log(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

pub fn lines(s: &str) -> Vec<&str> {
    s.lines().map(|l| l.trim_end_matches('\r')).collect()
}

/// Arguments split at whitespace, `IMG` standing for the image.
pub fn w(cmd: &str) -> Vec<&str> {
    cmd.split_whitespace()
        .map(|a| if a == "IMG" { IMAGE } else { a })
        .collect()
}

impl Daemon {
    /// `docker OPTS IMAGE sh -c SCRIPT`.
    pub fn sh(&self, opts: &str, script: &str) -> (i32, String, String) {
        let mut a = w(opts);
        a.extend([IMAGE, "sh", "-c", script]);
        self.docker(&a)
    }

    pub fn sh_ok(&self, opts: &str, script: &str) -> String {
        let (code, out, err) = self.sh(opts, script);
        assert_eq!(
            code, 0,
            "docker {opts} IMG sh -c {script:?} failed: {out}{err}"
        );
        out
    }

    /// [`Daemon::ok`] with whitespace-separated arguments.
    pub fn okw(&self, cmd: &str) -> String {
        self.ok(&w(cmd))
    }
}
