//! A real engine drives cofferdam unchanged: podman (with conmon) runs, execs, pauses, limits,
//! logs, stops and removes containers through it, with a private storage root, run root and
//! cgroup parent, on a busybox image built locally (no registry is reachable).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

/// A tarball of a busybox rootfs, for an engine to import as an image (no registry here).
fn busybox_tarball(env: &Env) -> std::path::PathBuf {
    let rootfs = env.dir.join("image");
    make_busybox_rootfs(&rootfs);
    let tar = env.dir.join("bb.tar");
    assert!(
        Command::new("tar")
            .args([
                "-C",
                rootfs.to_str().unwrap(),
                "-cf",
                tar.to_str().unwrap(),
                "."
            ])
            .status()
            .unwrap()
            .success()
    );
    tar
}

struct Podman<'a> {
    env: &'a Env,
    base: Vec<String>,
}

impl Podman<'_> {
    /// podman with the arguments; (exit code, stdout, stderr), through files as `Env::cmd`.
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let mut c = Command::new("podman");
        c.args(&self.base).args(args);
        code_out_err(&self.env.output(c))
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(code, 0, "podman {args:?}: {out}{err}");
        out
    }
}

#[test]
fn podman_runs_containers_through_cofferdam() {
    let env = Env::new("podman");
    if Command::new("podman").arg("--version").output().is_err() {
        panic!("podman is installed by scripts/deps.sh");
    }
    // A busybox image, imported from a rootfs tarball.
    let tar = busybox_tarball(&env);
    let d = |n: &str| env.dir.join(n).to_string_lossy().into_owned();
    let base: Vec<String> = [
        "--root",
        &d("storage"),
        "--runroot",
        &d("run"),
        "--storage-driver",
        "vfs",
        "--cgroup-manager",
        "cgroupfs",
        "--events-backend",
        "file",
        "--runtime",
        BIN,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let pm = Podman { env: &env, base };
    let image = "localhost/cofferdam-test-busybox:latest";
    pm.ok(&["import", tar.to_str().unwrap(), image]);
    // This machine's root lacks CAP_SYS_RESOURCE: podman's default rlimits (above our hard
    // limits) cannot be set by any runtime here, so the tests ask for ours.
    let nofile = format!(
        "nofile={0}:{0}",
        hard_limit(libc::RLIMIT_NOFILE).min(1 << 20)
    );
    let nproc = format!("nproc={0}:{0}", hard_limit(libc::RLIMIT_NPROC).min(32768));
    let parent = format!("{}_podman", env.cgroup_prefix);
    let common: Vec<&str> = vec![
        "--ulimit",
        &nofile,
        "--ulimit",
        &nproc,
        "--network",
        "none",
        "--cgroup-parent",
        &parent,
    ];
    let with = |args: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = args[..1].iter().map(|s| s.to_string()).collect();
        v.extend(common.iter().map(|s| s.to_string()));
        v.extend(args[1..].iter().map(|s| s.to_string()));
        v
    };
    let run = |args: &[&str]| {
        let v = with(args);
        let r: Vec<&str> = v.iter().map(String::as_str).collect();
        pm.run(&r)
    };

    // Output and exit code of a foreground run.
    let (code, out, err) = run(&[
        "run",
        "--rm",
        image,
        "sh",
        "-c",
        "echo hello from $(hostname); exit 3",
    ]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.starts_with("hello from "), "{out}{err}");

    // Detached, with limits, then exec, pause/unpause, logs, kill, rm.
    let (code, _, err) = run(&[
        "run",
        "-d",
        "--name",
        "web",
        "--memory",
        "64m",
        "--pids-limit",
        "50",
        image,
        "sh",
        "-c",
        "echo started; exec sleep 1000",
    ]);
    assert_eq!(code, 0, "{err}");
    let cg = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max"
    } else {
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max"
    };
    let out = pm.ok(&["exec", "web", "sh", "-c", cg]);
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["67108864", "50"],
        "{out}"
    );
    pm.ok(&["pause", "web"]);
    let out = pm.ok(&["inspect", "--format", "{{.State.Status}}", "web"]);
    assert_eq!(out.trim(), "paused");
    pm.ok(&["unpause", "web"]);
    let out = pm.ok(&["inspect", "--format", "{{.State.Status}}", "web"]);
    assert_eq!(out.trim(), "running");
    assert_eq!(pm.ok(&["logs", "web"]).trim(), "started");
    pm.ok(&["kill", "web"]);
    pm.ok(&["rm", "-f", "web"]);

    // stop (SIGTERM, then SIGKILL when ignored) and rm.
    let (code, _, err) = run(&["run", "-d", "--name", "stopme", image, "sleep", "1000"]);
    assert_eq!(code, 0, "{err}");
    pm.ok(&["stop", "-t", "1", "stopme"]);
    pm.ok(&["rm", "stopme"]);

    // A terminal (conmon takes the pty master over --console-socket).
    let (code, out, err) = run(&["run", "--rm", "-t", image, "sh", "-c", "tty"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.trim().starts_with("/dev/pts/"), "{out}");

    // 20 in a row.
    for i in 0..20 {
        let (code, out, err) = run(&["run", "--rm", image, "echo", &i.to_string()]);
        assert_eq!((code, out.trim()), (0, i.to_string().as_str()), "{err}");
    }

    // Nothing of theirs left: no container, no container cgroup below podman's parent, no
    // process.
    assert_eq!(pm.ok(&["ps", "-a", "-q"]).trim(), "");
    for dir in env.cgroup_dirs() {
        let subdirs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir())
            // podman's own cgroup for conmon stays, as it does with runc; the sweep takes it.
            .filter(|e| e.file_name() != "conmon")
            .collect();
        assert!(
            subdirs.is_empty(),
            "left below {}: {subdirs:?}",
            dir.display()
        );
    }
    assert!(processes_in_cgroup(&env.cgroup_prefix).is_empty());
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains(env.dir.to_str().unwrap()),
        "a mount is left"
    );
    // podman keeps its cgroup parent; the Env sweeps it (it is under the test's prefix).
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

/// A private containerd (its own root, state and socket, started and stopped by the test)
/// whose runc v2 shim runs cofferdam (`ctr run --runc-binary`), on an image that podman saves
/// as an OCI archive.
#[test]
fn containerd_runs_tasks_through_cofferdam() {
    let env = Env::new("containerd");
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
    let daemon = Command::new("containerd")
        .args(["--config", &d("config.toml")])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(env.dir.join("containerd.log")).unwrap())
        .stderr(std::fs::File::create(env.dir.join("containerd.err")).unwrap())
        .spawn()
        .expect("containerd is installed by scripts/deps.sh");
    // Stops the daemon we started (by its pid) however the test ends.
    struct Daemon(std::process::Child);
    impl Drop for Daemon {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _daemon = Daemon(daemon);
    let ctr = |args: &[&str]| -> (i32, String, String) {
        let mut c = Command::new("ctr");
        c.args(["--address", &sock]).args(args);
        code_out_err(&env.output(c))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while ctr(&["version"]).0 != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "containerd did not come up"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // The image: a busybox rootfs, imported by podman (vfs, private root), saved as OCI.
    let tar = busybox_tarball(&env);
    let image = "localhost/cofferdam-ctr-busybox:latest";
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
    podman(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        &d("oci.tar"),
        image,
    ]);
    let (code, _, err) = ctr(&[
        "images",
        "import",
        "--base-name",
        "localhost/cofferdam-ctr-busybox",
        &d("oci.tar"),
    ]);
    assert_eq!(code, 0, "{err}");

    let cg = |name: &str| format!("{}_ctr/{name}", env.cgroup_prefix);
    let run = ["run", "--runc-binary", BIN];

    // Output and exit code.
    let cg1 = cg("t1");
    let mut args = run.to_vec();
    args.extend([
        "--rm",
        "--cgroup",
        &cg1,
        image,
        "t1",
        "sh",
        "-c",
        "echo hello; exit 4",
    ]);
    let (code, out, err) = ctr(&args);
    assert_eq!((code, out.trim()), (4, "hello"), "{err}");

    // A detached task: exec, pause/resume, kill, delete.
    let cg2 = cg("t2");
    let mut args = run.to_vec();
    args.extend(["-d", "--cgroup", &cg2, image, "t2", "sleep", "1000"]);
    let (code, _, err) = ctr(&args);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "t2",
        "cat",
        "/proc/1/cmdline",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("sleep"), "{out}");
    let status = || {
        let (_, out, _) = ctr(&["task", "ls"]);
        let line = out
            .lines()
            .find(|l| l.starts_with("t2 "))
            .unwrap_or_default();
        line.split_whitespace()
            .last()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(ctr(&["task", "pause", "t2"]).0, 0);
    assert_eq!(status(), "PAUSED");
    assert_eq!(ctr(&["task", "resume", "t2"]).0, 0);
    assert_eq!(status(), "RUNNING");
    assert_eq!(ctr(&["task", "kill", "-s", "SIGKILL", "t2"]).0, 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while status() != "STOPPED" {
        assert!(std::time::Instant::now() < deadline, "t2 did not stop");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(ctr(&["task", "delete", "t2"]).0, 0);
    assert_eq!(ctr(&["container", "delete", "t2"]).0, 0);

    // 20 in a row.
    for i in 0..20 {
        let (id, path) = (format!("r{i}"), cg(&format!("r{i}")));
        let mut args = run.to_vec();
        args.extend(["--rm", "--cgroup", &path, image, &id, "true"]);
        let (code, _, err) = ctr(&args);
        assert_eq!(code, 0, "{err}");
    }

    // Nothing left: no task, no container, no cgroup, no process in one.
    assert_eq!(ctr(&["task", "ls", "-q"]).1.trim(), "");
    assert_eq!(ctr(&["container", "ls", "-q"]).1.trim(), "");
    assert!(processes_in_cgroup(&env.cgroup_prefix).is_empty());
    for dir in env.cgroup_dirs() {
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir())
            .collect();
        assert!(left.is_empty(), "left below {}: {left:?}", dir.display());
    }
}
