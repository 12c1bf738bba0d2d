//! The native shim under a real containerd (private root, state, socket and namespace, started
//! and stopped by the test, with the shim's directory on its PATH), driven by `ctr run
//! --runtime io.containerd.cofferdam.v2`: output and exit codes, a detached task with exec,
//! a terminal and its size (ResizePty), pause and resume, metrics, kill, an OOM event, one shim
//! per pod, a containerd restart under a running task, a shim killed under its task (the
//! `delete` action), and 20 runs after which nothing is left.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

/// The shim under test: cargo's build of it, or `COFFERDAM_SHIM_BIN`, the one a user installs
/// (scripts/build-shim.sh: static, musl), which scripts/test.sh also runs this test against.
fn shim() -> PathBuf {
    let bin = std::env::var_os("COFFERDAM_SHIM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_containerd-shim-cofferdam-v2").into());
    // containerd finds it on its PATH by this name.
    assert!(
        bin.ends_with("containerd-shim-cofferdam-v2") && bin.is_file(),
        "no shim binary at {}",
        bin.display()
    );
    bin
}
const RUNTIME: &str = "io.containerd.cofferdam.v2";
const IMAGE: &str = "localhost/cofferdam-shim-busybox:latest";

/// A private containerd: its root, state and sockets under the test's directory, the shim's
/// directory first on its PATH. Dropping it stops it and whatever of ours it left (shims,
/// container processes, mounts, shim sockets), by pid and path.
struct Containerd<'a> {
    env: &'a Env,
    sock: String,
    namespace: String,
    daemon: Option<Child>,
}

impl<'a> Containerd<'a> {
    fn start(env: &'a Env) -> Containerd<'a> {
        let sock = engines::write_containerd_config(env);
        let mut c = Containerd {
            env,
            sock,
            namespace: format!("cofferdam-test-{}", std::process::id()),
            daemon: None,
        };
        c.up();
        c
    }

    /// Start the daemon and wait until it answers.
    fn up(&mut self) {
        let shim = shim();
        let shim_dir = shim.parent().unwrap();
        let path = format!(
            "{}:{}",
            shim_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let log = |n: &str| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.env.dir.join(n))
                .unwrap()
        };
        let daemon = Command::new("containerd")
            .args([
                "--config",
                &self.env.dir.join("config.toml").to_string_lossy(),
            ])
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(log("containerd.log"))
            .stderr(log("containerd.err"))
            .spawn()
            .expect("containerd is installed by scripts/deps.sh");
        self.daemon = Some(daemon);
        wait_until("containerd to answer", Duration::from_secs(20), || {
            self.ctr(&["version"]).0 == 0
        });
    }

    /// Stop the daemon (SIGTERM, as a service manager does) and wait for it.
    fn down(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(d.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = d.wait();
        }
    }

    fn ctr(&self, args: &[&str]) -> (i32, String, String) {
        let mut c = Command::new("ctr");
        c.args(["--address", &self.sock, "--namespace", &self.namespace])
            .args(args);
        code_out_err(&self.env.output(c))
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.ctr(args);
        assert_eq!(code, 0, "ctr {args:?}: {err}");
        out
    }

    /// `ctr run` on our runtime and image: `opts` before the image, `cmd` after the id.
    fn run(&self, opts: &[&str], id: &str, cmd: &[&str]) -> (i32, String, String) {
        let cg = self.cgroup(id);
        let mut args = vec!["run", "--runtime", RUNTIME, "--cgroup", &cg];
        args.extend(opts);
        args.extend([IMAGE, id]);
        args.extend(cmd);
        self.ctr(&args)
    }

    fn cgroup(&self, id: &str) -> String {
        format!("{}_ctr/{id}", self.env.cgroup_prefix)
    }

    /// (pid, status) of a task, from `ctr task ls`.
    fn task(&self, id: &str) -> Option<(i32, String)> {
        let out = self.ctr(&["task", "ls"]).1;
        out.lines().find_map(|l| {
            let f: Vec<_> = l.split_whitespace().collect();
            (f.len() == 3 && f[0] == id).then(|| (f[1].parse().unwrap_or(0), f[2].to_string()))
        })
    }

    fn wait_status(&self, id: &str, want: &str) {
        wait_until(
            &format!("{id} to be {want}"),
            Duration::from_secs(10),
            || self.task(id).is_some_and(|(_, s)| s == want),
        );
    }

    /// Kill a task, wait for it to stop, delete it and its container.
    fn remove(&self, id: &str) {
        self.ok(&["task", "kill", "-s", "SIGKILL", id]);
        self.wait_status(id, "STOPPED");
        self.ok(&["task", "delete", id]);
        self.ok(&["container", "delete", id]);
    }

    /// The pids of the shims serving this containerd, and their socket paths.
    fn shims(&self) -> Vec<(i32, Option<PathBuf>)> {
        let mut found = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
                continue;
            };
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let ours = args
                .first()
                .is_some_and(|a| a.ends_with("containerd-shim-cofferdam-v2"))
                && args
                    .windows(2)
                    .any(|w| w[0] == "-address" && w[1] == self.sock);
            if ours {
                let socket = args
                    .windows(2)
                    .find(|w| w[0] == "-socket")
                    .and_then(|w| w[1].strip_prefix("unix://").map(PathBuf::from));
                found.push((pid, socket));
            }
        }
        found
    }
}

impl Drop for Containerd<'_> {
    fn drop(&mut self) {
        self.down();
        for (pid, socket) in self.shims() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            if let Some(s) = socket {
                let _ = std::fs::remove_file(s);
            }
        }
        for pid in processes_in_cgroup(&self.env.cgroup_prefix) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        // ctr's stdio FIFOs of our tasks (named `<id>-std*`, every id ending in our pid),
        // which ctr leaves when a failed test never deletes the task, and their directories.
        let ours = format!("-{}-std", std::process::id());
        for dir in std::fs::read_dir("/run/containerd/fifo")
            .into_iter()
            .flatten()
            .flatten()
        {
            let fifos: Vec<_> = std::fs::read_dir(dir.path())
                .into_iter()
                .flatten()
                .flatten()
                .filter(|f| f.file_name().to_string_lossy().contains(&ours))
                .collect();
            for f in &fifos {
                let _ = std::fs::remove_file(f.path());
            }
            if !fifos.is_empty() {
                let _ = std::fs::remove_dir(dir.path());
            }
        }
        // Rootfs mounts of tasks whose shim was killed.
        let d = format!("{}/", self.env.dir.display());
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut ours: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4))
            .filter(|m| m.starts_with(&d))
            .collect();
        ours.reverse();
        for m in ours {
            let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
        }
        std::thread::sleep(Duration::from_millis(100));
        self.env.sweep_cgroups();
    }
}

/// Import a busybox image into the private containerd.
fn import_image(env: &Env, ctrd: &Containerd) {
    let archive = engines::busybox_oci_archive(env, IMAGE);
    ctrd.ok(&[
        "images",
        "import",
        "--base-name",
        "localhost/cofferdam-shim-busybox",
        &archive.to_string_lossy(),
    ]);
}

/// A process's view of its terminal for `sh -c`: the tty, then its size once ctr's resize
/// has arrived (`size=ROWS COLS`), waiting for it up to the tests' scaled deadline.
fn tty_check() -> String {
    let tenths = patience(Duration::from_secs(10)).as_millis() / 100;
    format!(
        "tty; i=0; while [ \"$(stty size)\" != '33 101' ] && [ $i -lt {tenths} ]; do sleep 0.1; i=$((i+1)); done; echo size=$(stty size)"
    )
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z")
}

#[test]
fn containerd_runs_tasks_through_the_native_shim() {
    let env = Env::new("shim");
    let mut ctrd = Containerd::start(&env);
    import_image(&env, &ctrd);
    let id = |n: &str| format!("{n}-{}", std::process::id());

    // Output (stdout and stderr) and the exit code.
    let (code, out, err) = ctrd.run(
        &["--rm"],
        &id("out"),
        &["sh", "-c", "echo hello; echo oops >&2; exit 4"],
    );
    assert_eq!((code, out.trim()), (4, "hello"), "{err}");
    assert!(err.contains("oops"), "stderr: {err}");

    // stdin reaches the process, and its end is the process's end of file.
    let cg = ctrd.cgroup(&id("in"));
    let line = format!(
        "printf 'hi\\n' | ctr --address {} --namespace {} run --rm --runtime {RUNTIME} --cgroup {cg} {IMAGE} {} sh -c 'cat; echo done'",
        ctrd.sock,
        ctrd.namespace,
        id("in")
    );
    let mut c = Command::new("sh");
    c.args(["-c", &line]);
    let (code, out, err) = code_out_err(&env.output(c));
    assert_eq!((code, out.as_str()), (0, "hi\ndone\n"), "{err}");

    // A terminal: ctr given one of its own (script's, 33 rows by 101 columns), the process
    // sees a tty of that size, which ctr sends through the shim's ResizePty once the task has
    // started (so the process waits for it).
    let cg = ctrd.cgroup(&id("tty"));
    let ctr_line = format!(
        "stty rows 33 cols 101; ctr --address {} --namespace {} run --rm -t --runtime {RUNTIME} --cgroup {cg} {IMAGE} {} sh -c \"$TTY_CHECK; exit 3\"",
        ctrd.sock,
        ctrd.namespace,
        id("tty")
    );
    let mut c = Command::new("script");
    c.args(["-qec", &ctr_line, "/dev/null"])
        .env("TTY_CHECK", tty_check());
    let (code, out, err) = code_out_err(&env.output(c));
    assert_eq!(code, 3, "tty task: {out} {err}");
    assert!(out.contains("/dev/pts/"), "no terminal: {out}");
    assert!(out.contains("size=33 101"), "the terminal's size: {out}");

    // A detached task: exec (output, exit code, a terminal of its own), metrics, pause and
    // resume, kill, delete.
    let t = id("detached");
    let (code, _, err) = ctrd.run(&["-d"], &t, &["sleep", "1000"]);
    assert_eq!(code, 0, "{err}");
    ctrd.wait_status(&t, "RUNNING");
    let out = ctrd.ok(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        &t,
        "cat",
        "/proc/1/cmdline",
    ]);
    assert!(out.starts_with("sleep"), "{out}");
    let (code, _, _) = ctrd.ctr(&["task", "exec", "--exec-id", "e2", &t, "sh", "-c", "exit 7"]);
    assert_eq!(code, 7, "the exec's exit status");
    let exec_tty = format!(
        "stty rows 33 cols 101; ctr --address {} --namespace {} task exec -t --exec-id e3 {t} sh -c \"$TTY_CHECK; exit 5\"",
        ctrd.sock, ctrd.namespace
    );
    let mut c = Command::new("script");
    c.args(["-qec", &exec_tty, "/dev/null"])
        .env("TTY_CHECK", tty_check());
    let (code, out, err) = code_out_err(&env.output(c));
    assert_eq!(code, 5, "exec with a terminal: {out} {err}");
    assert!(out.contains("/dev/pts/"), "no terminal in the exec: {out}");
    assert!(
        out.contains("size=33 101"),
        "the exec's terminal size: {out}"
    );
    let metrics = ctrd.ok(&["task", "metrics", &t]);
    assert!(metrics.contains(&t), "{metrics}");
    ctrd.ok(&["task", "pause", &t]);
    assert_eq!(ctrd.task(&t).unwrap().1, "PAUSED");
    ctrd.ok(&["task", "resume", &t]);
    assert_eq!(ctrd.task(&t).unwrap().1, "RUNNING");
    let (pid, _) = ctrd.task(&t).unwrap();
    let shim = ppid(pid);
    ctrd.remove(&t);
    wait_until("the task's shim to exit", Duration::from_secs(10), || {
        !alive(shim)
    });

    // An OOM kill is published (TaskOOM), seen by `ctr events`.
    let events_out = env.dir.join("events.txt");
    let events = Command::new("ctr")
        .args(["--address", &ctrd.sock, "events"])
        .stdout(std::fs::File::create(&events_out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Stop(Child);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let events_guard = Stop(events);
    let oom = id("oom");
    let fill = "awk 'BEGIN { s = \"x\"; while (1) s = s s }'; echo status=$?";
    let (code, out, err) = ctrd.run(
        &["--rm", "--memory-limit", "33554432"],
        &oom,
        &["sh", "-c", fill],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("status=137"), "not OOM-killed: {out}");
    wait_until("the OOM event", Duration::from_secs(10), || {
        std::fs::read_to_string(&events_out)
            .unwrap_or_default()
            .lines()
            .any(|l| l.contains("/tasks/oom") && l.contains(&oom))
    });
    let seen = std::fs::read_to_string(&events_out).unwrap();
    for topic in [
        "/tasks/create",
        "/tasks/start",
        "/tasks/exit",
        "/tasks/delete",
    ] {
        assert!(
            seen.lines().any(|l| l.contains(topic) && l.contains(&oom)),
            "no {topic} event: {seen}"
        );
    }
    // An OOM kill in a task that goes on running (a child of its init): the event comes from
    // the cgroup's notifier, not from the check at the init's exit.
    let oom_live = id("oomlive");
    let (code, _, err) = ctrd.run(
        &["-d", "--memory-limit", "33554432"],
        &oom_live,
        &["sh", "-c", &format!("{fill}; sleep 1000")],
    );
    assert_eq!(code, 0, "{err}");
    let deadline = std::time::Instant::now() + patience(Duration::from_secs(10));
    loop {
        let seen = std::fs::read_to_string(&events_out).unwrap_or_default();
        if seen
            .lines()
            .any(|l| l.contains("/tasks/oom") && l.contains(&oom_live))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no OOM event of the running task {oom_live}: {seen}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(ctrd.task(&oom_live).unwrap().1, "RUNNING");
    ctrd.remove(&oom_live);
    drop(events_guard);

    // Two containers of one pod (sandbox id) share one shim process.
    let pod = format!("io.kubernetes.cri.sandbox-id={}", id("pod"));
    let (a, b) = (id("poda"), id("podb"));
    for c in [&a, &b] {
        let (code, _, err) = ctrd.run(&["-d", "--annotation", &pod], c, &["sleep", "1000"]);
        assert_eq!(code, 0, "{err}");
        ctrd.wait_status(c, "RUNNING");
    }
    let shim_a = ppid(ctrd.task(&a).unwrap().0);
    let shim_b = ppid(ctrd.task(&b).unwrap().0);
    assert_eq!(shim_a, shim_b, "one shim for the pod");
    assert_eq!(ctrd.shims().len(), 1, "{:?}", ctrd.shims());
    ctrd.remove(&a);
    assert!(alive(shim_a), "the pod's shim went with its first task");
    ctrd.remove(&b);
    wait_until("the pod's shim to exit", Duration::from_secs(10), || {
        !alive(shim_a)
    });

    // containerd restarted under a running task: the task runs on, containerd finds it
    // again, and it can still be killed and deleted.
    let r = id("restart");
    let (code, _, err) = ctrd.run(&["-d"], &r, &["sleep", "1000"]);
    assert_eq!(code, 0, "{err}");
    ctrd.wait_status(&r, "RUNNING");
    let (pid, _) = ctrd.task(&r).unwrap();
    ctrd.down();
    assert!(alive(pid), "the task died with containerd");
    ctrd.up();
    wait_until(
        "containerd to see the task again",
        Duration::from_secs(10),
        || ctrd.task(&r) == Some((pid, "RUNNING".into())),
    );
    ctrd.remove(&r);
    assert!(!alive(pid));

    // The shim killed under a running task: containerd runs the shim binary's `delete` action
    // in the task's bundle, which kills what the container still runs and removes its state
    // and rootfs mount (the checks at the end find no cgroup, mount or bundle left), then
    // reports the task gone.
    let dead = id("deadshim");
    let (code, _, err) = ctrd.run(&["-d"], &dead, &["sleep", "1000"]);
    assert_eq!(code, 0, "{err}");
    ctrd.wait_status(&dead, "RUNNING");
    let (pid, _) = ctrd.task(&dead).unwrap();
    let shim = ppid(pid);
    let socket = ctrd
        .shims()
        .into_iter()
        .find_map(|(p, s)| (p == shim).then_some(s))
        .flatten()
        .expect("the shim's socket");
    assert!(socket.exists());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shim),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_until(
        "the shim's delete to kill the task",
        Duration::from_secs(10),
        || !alive(pid),
    );
    wait_until(
        "containerd to drop the task",
        Duration::from_secs(10),
        || ctrd.task(&dead).is_none(),
    );
    ctrd.ok(&["container", "delete", &dead]);
    assert!(!socket.exists(), "the dead shim's socket is left");
    // Its stdio FIFOs are ctr's: it makes them in containerd's fifo directory and removes them
    // when it deletes the task, which a task whose shim died no longer has to delete.
    let fifos = Command::new("find")
        .args([
            "/run/containerd/fifo",
            "-name",
            &format!("{dead}-*"),
            "-delete",
        ])
        .status()
        .unwrap();
    assert!(fifos.success());

    // 20 in a row; 5 in the cgroup v2 VM (scripts/test-v2.sh), where each takes seconds under
    // emulation and the path is the same.
    let runs = if std::env::var_os("COFFERDAM_TEST_V2_VM").is_some() {
        5
    } else {
        20
    };
    for i in 0..runs {
        let (code, _, err) = ctrd.run(&["--rm"], &id(&format!("r{i}")), &["true"]);
        assert_eq!(code, 0, "run {i}: {err}");
    }

    // Nothing left: no task, container, shim, process, cgroup, mount, FIFO or state.
    assert_eq!(ctrd.ok(&["task", "ls", "-q"]).trim(), "");
    assert_eq!(ctrd.ok(&["container", "ls", "-q"]).trim(), "");
    wait_until("every shim to exit", Duration::from_secs(10), || {
        ctrd.shims().is_empty()
    });
    assert!(processes_in_cgroup(&env.cgroup_prefix).is_empty());
    for dir in env.cgroup_dirs() {
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir())
            .collect();
        assert!(left.is_empty(), "left below {}: {left:?}", dir.display());
    }
    let d = format!("{}/", env.dir.display());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let leaked: Vec<_> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter(|m| m.starts_with(&d))
        .collect();
    assert!(leaked.is_empty(), "mounts left: {leaked:?}");
    let tasks_dir = env
        .dir
        .join("state/io.containerd.runtime.v2.task")
        .join(&ctrd.namespace);
    let bundles: Vec<_> = std::fs::read_dir(&tasks_dir)
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(bundles.is_empty(), "bundles left: {bundles:?}");
    let fifos = Command::new("find")
        .args([
            "/run/containerd/fifo",
            "-name",
            &format!("*-{}*", std::process::id()),
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&fifos.stdout).trim(),
        "",
        "FIFOs left"
    );
}
