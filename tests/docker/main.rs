//! Docker drives cofferdam unchanged (#12): a private `dockerd` (Debian's docker.io) with the
//! binary cargo built as its default runtime runs what a Docker user does, each scenario
//! asserting its outcome through the daemon, the kernel's cgroup files or the container.
//!
//! The daemon is private, and nothing of it can reach or outlive the test:
//! - it runs in a network, mount and pid namespace of the test's own (`unshare`). Its bridges,
//!   veths, iptables rules, container addresses, published ports and the swarm's address exist
//!   only in that network namespace, which has no route out; the test reaches them from inside
//!   it (`nsenter --net`). `/run` there is a tmpfs, so that dockerd starts a containerd of its
//!   own (a system one's socket would be under /run/containerd) and its plugins, shim sockets
//!   and the iptables lock are its own.
//! - its own `--data-root`, `--exec-root`, socket, pidfile, daemon.json and key file, in the
//!   test's directory; the cgroupfs driver under the test's cgroup prefix.
//! - the image is `docker import` of a busybox rootfs: no registry is reachable.
//! - cleanup: `Drop` of [`Daemon`] (daemon.rs), which runs however the test ends, and the
//!   kernel when the test process is killed.
//!
//! One daemon serves every scenario of a run of this file: the swarm first, by itself, then
//! the others three at a time, each failure reported by scenario, and a last check that nothing
//! of any is left; the test fails if anything did. `DOCKER_SCENARIOS=a,b` runs only the named
//! ones (to work on one). This file holds the scenarios, daemon.rs the daemon.

#[path = "../common/mod.rs"]
mod common;
mod daemon;

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use daemon::*;
use serde_json::{Value, json};

type Scenario = (&'static str, fn(&Daemon));

/// Run one after the other before the rest: joining and leaving a swarm remakes dockerd's
/// network agent, and a container name looked up on a bridge network meanwhile is not found
/// (its embedded DNS forwards the query out).
const ALONE: &[Scenario] = &[("swarm", swarm)];

/// Three at a time, longest first.
const SCENARIOS: &[Scenario] = &[
    ("run-rm-30", run_rm_30),
    ("stop", stop),
    ("restart", restart),
    ("healthcheck", healthcheck),
    ("bridge", bridge),
    ("publish", publish),
    ("run", run),
    ("detached-exec", detached_exec),
    ("tty-stdin", tty_stdin),
    ("kill-wait", kill_wait),
    ("pause", pause),
    ("oom", oom),
    ("pids", pids),
    ("cpus", cpus),
    ("update", update),
    ("stats", stats),
    ("volume", volume),
    ("binds", binds),
    ("read-only", read_only),
    ("user-caps", user_caps),
    ("seccomp", seccomp),
    ("layers", layers),
    ("cp", cp),
    ("init", init),
    ("ipc-pid", ipc_pid),
    ("network-none-host", network_none_host),
];

#[test]
fn docker_drives_cofferdam() {
    let only: Option<Vec<String>> = std::env::var("DOCKER_SCENARIOS")
        .ok()
        .map(|s| s.split(',').map(str::to_string).collect());
    let pick = |list: &'static [Scenario]| {
        list.iter()
            .filter(|(n, _)| only.as_ref().is_none_or(|o| o.iter().any(|x| x == n)))
            .collect::<Vec<_>>()
    };
    if let Some(o) = &only {
        let all: Vec<&str> = ALONE.iter().chain(SCENARIOS).map(|s| s.0).collect();
        let unknown: Vec<_> = o.iter().filter(|n| !all.contains(&n.as_str())).collect();
        assert!(
            unknown.is_empty(),
            "DOCKER_SCENARIOS: no scenario {unknown:?} in {all:?}"
        );
    }
    let alone = pick(ALONE).len();
    let chosen = [pick(ALONE), pick(SCENARIOS)].concat();
    let started = Instant::now();
    let d = Daemon::start();
    let info = d.okw("info -f {{.DefaultRuntime}}/{{.CgroupDriver}}");
    assert_eq!(info.trim(), "cofferdam/cgroupfs", "the daemon's settings");
    let setup = started.elapsed();

    let results = Mutex::new(Vec::<(usize, Duration, Result<(), String>)>::new());
    let run_one = |i: usize| {
        let t = Instant::now();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (chosen[i].1)(&d)));
        let r = r.map_err(|p| {
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        });
        results.lock().unwrap().push((i, t.elapsed(), r));
    };
    (0..alone).for_each(run_one);
    let next = AtomicUsize::new(alone);
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= chosen.len() {
                        break;
                    }
                    run_one(i);
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|r| r.0);
    // Only now, with every scenario done, is the daemon quiet enough for a global check.
    let t = Instant::now();
    let left = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| nothing_left(&d)));
    let mut report = format!("docker scenarios (setup {:.1} s):\n", setup.as_secs_f64());
    let mut failed = Vec::new();
    let mut line = |name: &str, took: Duration, r: Result<(), &str>| {
        let took = took.as_secs_f64();
        match r {
            Ok(()) => report += &format!("  ok     {name} ({took:.1} s)\n"),
            Err(m) => {
                report += &format!("  FAILED {name} ({took:.1} s): {m}\n");
                failed.push(name.to_string());
            }
        }
    };
    for (i, took, r) in &results {
        line(
            chosen[*i].0,
            *took,
            r.as_ref().map(|_| ()).map_err(|m| m.as_str()),
        );
    }
    line(
        "nothing-left",
        t.elapsed(),
        left.map_err(|_| "see its panic above"),
    );
    report += &format!("total {:.1} s\n", started.elapsed().as_secs_f64());
    eprintln!("{report}");
    if !failed.is_empty() {
        eprintln!("dockerd's log, last lines:\n{}", read_log(&d.env.dir));
    }
    assert!(failed.is_empty(), "failed scenarios: {failed:?}\n{report}");
}

/// Output and exit code of a foreground run; the exit codes Docker derives from the runtime's
/// words (#12 item 2); the container runs on cofferdam.
fn run(d: &Daemon) {
    let (code, out, err) = d.sh(
        "run --rm",
        "echo hello from $(hostname); echo oops >&2; exit 3",
    );
    assert_eq!(code, 3, "exit code: {out}{err}");
    assert!(out.starts_with("hello from "), "stdout: {out}");
    assert!(err.contains("oops"), "stderr: {err}");
    let (code, _, err) = d.docker(&w("run --rm IMG /etc/passwd"));
    assert_eq!(code, 126, "a file that is not executable: {err}");
    let (code, _, err) = d.docker(&w("run --rm IMG /no/such"));
    assert_eq!(code, 127, "a missing file: {err}");
    d.okw("run -d --name run-d IMG sleep 1000");
    assert_eq!(d.inspect("run-d", "{{.HostConfig.Runtime}}"), "cofferdam");
    let st = d.cofferdam_state(&d.id("run-d"));
    assert_eq!(st["status"], "running", "cofferdam's state: {st}");
    d.okw("rm -f run-d");
}

/// `-d`, then `exec` (output, exit code, the container's pid namespace, user, cwd, env) and
/// `exec -t`.
fn detached_exec(d: &Daemon) {
    d.okw("run -d --name dx IMG sleep 1000");
    let out = d.ok(&[
        "exec",
        "dx",
        "sh",
        "-c",
        "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$",
    ]);
    let l = lines(&out);
    assert_eq!(l[0], "sleep 1000 ", "pid 1 seen by exec: {out}");
    assert_ne!(l[1], "1", "exec's own pid: {out}");
    let (code, _, err) = d.docker(&["exec", "dx", "sh", "-c", "exit 6"]);
    assert_eq!(code, 6, "exec's exit code: {err}");
    let out = d.ok(&["exec", "-t", "dx", "sh", "-c", "tty; [ -t 0 ] && echo term"]);
    assert!(lines(&out)[0].starts_with("/dev/pts/"), "exec -t: {out}");
    assert_eq!(lines(&out)[1], "term", "exec -t: {out}");
    let script = "id -u; pwd; echo $GREETING";
    let out = d.ok(&[
        "exec",
        "-u",
        "1000",
        "-w",
        "/tmp",
        "-e",
        "GREETING=hi",
        "dx",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(lines(&out), ["1000", "/tmp", "hi"], "exec -u -w -e");
    d.okw("rm -f dx");
}

/// `run -t` gets a terminal, `run -i` the client's stdin.
fn tty_stdin(d: &Daemon) {
    let out = d.sh_ok("run --rm -t", "tty; [ -t 0 ] && echo term");
    assert!(lines(&out)[0].starts_with("/dev/pts/"), "run -t: {out}");
    assert_eq!(lines(&out)[1], "term", "stdin is the terminal: {out}");
    let input = d.host_dir("stdin").join("in");
    std::fs::write(&input, "line one\nline two\n").unwrap();
    let args = w("run --rm -i IMG tr a-z A-Z");
    let (code, out, err) = d.docker_in(&args, Some(&input));
    assert_eq!(
        (code, out.as_str()),
        (0, "LINE ONE\nLINE TWO\n"),
        "run -i: {err}"
    );
}

/// `stop` sends SIGTERM; a container that ignores it is killed after the timeout.
fn stop(d: &Daemon) {
    let busy = "echo ready; while :; do sleep 0.1; done";
    d.sh_ok(
        "run -d --name st-term",
        &format!("trap 'echo got TERM; exit 7' TERM; {busy}"),
    );
    d.sh_ok("run -d --name st-kill", &format!("trap '' TERM; {busy}"));
    d.wait_logs("st-term", "ready");
    d.wait_logs("st-kill", "ready");
    d.okw("stop -t 60 st-term");
    assert_eq!(
        d.inspect("st-term", "{{.State.ExitCode}}"),
        "7",
        "TERM not handled"
    );
    assert!(d.okw("logs st-term").contains("got TERM"));
    let t = Instant::now();
    d.okw("stop -t 1 st-kill");
    assert!(
        t.elapsed() >= Duration::from_secs(1),
        "killed before the timeout"
    );
    let st = d.inspect("st-kill", "{{.State.Status}} {{.State.ExitCode}}");
    assert_eq!(st, "exited 137", "not KILLed after the timeout");
    d.okw("rm st-term st-kill");
}

/// `kill -s` delivers the signal; `wait` gives the exit code.
fn kill_wait(d: &Daemon) {
    d.sh_ok(
        "run -d --name kw-usr1",
        "trap 'exit 9' USR1; echo ready; while :; do sleep 0.1; done",
    );
    d.okw("run -d --name kw-kill IMG sleep 1000");
    d.sh_ok("run -d --name kw-exit", "sleep 0.3; exit 5");
    d.wait_logs("kw-usr1", "ready");
    d.okw("kill -s USR1 kw-usr1");
    assert_eq!(d.okw("wait kw-usr1").trim(), "9", "USR1 not delivered");
    d.okw("kill kw-kill");
    assert_eq!(d.okw("wait kw-kill").trim(), "137", "KILL by default");
    assert_eq!(d.okw("wait kw-exit").trim(), "5", "wait for an exit");
    d.okw("rm kw-usr1 kw-kill kw-exit");
}

/// pause freezes the container (a counter it writes to a bind mount stops), unpause thaws it.
fn pause(d: &Daemon) {
    let dir = d.host_dir("pause");
    let opts = format!("run -d --name pz -v {}:/out", dir.display());
    d.sh_ok(
        &opts,
        "i=0; while :; do i=$((i+1)); echo $i > /out/n; sleep 0.02; done",
    );
    let n = || std::fs::read_to_string(dir.join("n")).unwrap_or_default();
    wait_until("the counter", Duration::from_secs(30), || !n().is_empty());
    d.okw("pause pz");
    assert_eq!(d.inspect("pz", "{{.State.Status}}"), "paused");
    let id = d.id("pz");
    if unified() {
        assert_eq!(read(&d.cg("", &id), "cgroup.freeze"), "1");
    } else {
        assert_eq!(read(&d.cg("freezer", &id), "freezer.state"), "FROZEN");
    }
    let before = n();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(n(), before, "the counter moved while paused");
    d.okw("unpause pz");
    assert_eq!(d.inspect("pz", "{{.State.Status}}"), "running");
    wait_until("the counter after unpause", Duration::from_secs(30), || {
        n() != before
    });
    d.okw("rm -f pz");
}

/// A container over its `--memory` is OOM-killed: exit 137 and OOMKilled.
fn oom(d: &Daemon) {
    // Docker 20.10 sets OOMKilled from the shim's exit event only if the shim's OOM event came
    // first, and the shim sends them from two goroutines (containerd#8893): on a busy machine
    // the exit event wins now and then, with any runtime. The OOM event itself always comes
    // (the shim watches the memory cgroup the runtime made), so each attempt must show it;
    // OOMKilled must show in one of three.
    let dir = d.host_dir("oom");
    let mut last = String::new();
    for attempt in 0..3 {
        let name = format!("oom{attempt}");
        let go = dir.join(&name);
        std::fs::create_dir_all(&go).unwrap();
        let since = unix_now();
        // The shim watches the cgroup only once `start` has returned: the container waits for
        // the test's go (after `run -d`, which returns after that) before it eats its memory.
        let opts = format!(
            "run -d --name {name} -m 16m --memory-swap 16m -v {}:/go",
            go.display()
        );
        d.sh_ok(
            &opts,
            "until [ -e /go/go ]; do sleep 0.02; done; x=a; while :; do x=$x$x; done",
        );
        std::fs::write(go.join("go"), "").unwrap();
        assert_eq!(
            d.okw(&format!("wait {name}")).trim(),
            "137",
            "{name}'s exit code"
        );
        let events =
            format!("events --filter container={name} --filter event=oom --since {since:.3}");
        wait_until(
            &format!("an oom event of {name}"),
            Duration::from_secs(30),
            || {
                d.okw(&format!("{events} --until {:.3}", unix_now()))
                    .contains(" oom ")
            },
        );
        last = d.inspect(&name, "{{.State.OOMKilled}} {{.State.ExitCode}}");
        d.okw(&format!("rm {name}"));
        if last == "true 137" {
            return;
        }
    }
    panic!("OOMKilled was never set (last: {last})");
}

/// Seconds since the epoch, as `docker events --since/--until` takes them.
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// `--pids-limit` is the cgroup's pids.max, and the kernel refuses the fork past it.
fn pids(d: &Daemon) {
    d.okw("run -d --name pl --pids-limit 10 IMG sleep 1000");
    assert_eq!(read(&d.cg("pids", &d.id("pl")), "pids.max"), "10");
    let script = "for i in $(seq 20); do sleep 100 & done; echo spawned";
    let (code, out, err) = d.docker(&["exec", "pl", "sh", "-c", script]);
    assert!(
        code != 0 && err.contains("can't fork"),
        "20 forks under a limit of 10: {code} {out}{err}"
    );
    d.okw("rm -f pl");
}

/// `--cpus` and `--cpuset-cpus` are in the cgroup (and the kernel's affinity); cpu.shares is
/// the kernel's default (Docker's 0 means unset).
fn cpus(d: &Daemon) {
    d.okw("run -d --name cpu --cpus 0.5 --cpuset-cpus 0 IMG sleep 1000");
    let id = d.id("cpu");
    let cpu = d.cg("cpu", &id);
    if unified() {
        assert_eq!(read(&cpu, "cpu.max"), "50000 100000");
        assert_eq!(read(&cpu, "cpu.weight"), "100");
    } else {
        assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "50000");
        assert_eq!(read(&cpu, "cpu.cfs_period_us"), "100000");
        assert_eq!(read(&cpu, "cpu.shares"), "1024");
    }
    assert_eq!(read(&d.cg("cpuset", &id), "cpuset.cpus"), "0");
    assert_eq!(
        d.okw("exec cpu nproc").trim(),
        "1",
        "the cpus it may run on"
    );
    d.okw("rm -f cpu");
}

/// `docker update` changes the limits in force, and an update of one limit (Docker sends the
/// whole object, zeros included) keeps the others.
fn update(d: &Daemon) {
    d.okw("run -d --name up -m 32m IMG sleep 1000");
    d.okw("update --memory 64m --memory-swap 128m --cpus 1.5 --cpu-shares 512 --pids-limit 77 up");
    let id = d.id("up");
    let check = |mem: &str| {
        if unified() {
            let cg = d.cg("", &id);
            assert_eq!(read(&cg, "memory.max"), mem);
            assert_eq!(read(&cg, "cpu.max"), "150000 100000");
            assert_eq!(read(&cg, "cpu.weight"), "20");
        } else {
            let (mem_cg, cpu) = (d.cg("memory", &id), d.cg("cpu", &id));
            assert_eq!(read(&mem_cg, "memory.limit_in_bytes"), mem);
            assert_eq!(read(&mem_cg, "memory.memsw.limit_in_bytes"), "134217728");
            assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "150000");
            assert_eq!(read(&cpu, "cpu.shares"), "512");
        }
        assert_eq!(read(&d.cg("pids", &id), "pids.max"), "77");
    };
    check("67108864");
    d.okw("update --memory 48m up");
    check("50331648");
    d.okw("rm -f up");
}

/// `docker stats` reads the container's usage and limit.
fn stats(d: &Daemon) {
    d.okw("run -d --name sts -m 64m IMG sleep 1000");
    let out = d.ok(&["stats", "--no-stream", "--format", "{{json .}}", "sts"]);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (&v["Name"], &v["PIDs"]),
        (&json!("sts"), &json!("1")),
        "{v}"
    );
    let mem = v["MemUsage"].as_str().unwrap();
    assert!(
        mem.ends_with("/ 64MiB") && !mem.starts_with("0B"),
        "MemUsage {mem}"
    );
    d.okw("rm -f sts");
}

/// A named volume outlives the container that wrote it.
fn volume(d: &Daemon) {
    d.okw("volume create vol1");
    d.sh_ok("run --rm -v vol1:/data", "echo kept > /data/f");
    assert_eq!(d.okw("run --rm -v vol1:/data IMG cat /data/f"), "kept\n");
    let mp = d.okw("volume inspect -f {{.Mountpoint}} vol1");
    let f = Path::new(mp.trim()).join("f");
    assert_eq!(std::fs::read_to_string(f).unwrap(), "kept\n");
    d.okw("volume rm vol1");
}

/// A read-only bind refuses writes, a read-write one shows them on the host.
fn binds(d: &Daemon) {
    let dir = d.host_dir("binds");
    std::fs::write(dir.join("h"), "from the host\n").unwrap();
    let ro = format!("run --rm -v {}:/b:ro", dir.display());
    let (code, out, err) = d.sh(&ro, "cat /b/h; echo x > /b/n");
    assert_eq!(out, "from the host\n");
    assert!(code != 0 && err.contains("Read-only file system"), "{err}");
    assert!(!dir.join("n").exists(), "written through a ro bind");
    d.sh_ok(
        &format!("run --rm -v {}:/b", dir.display()),
        "echo from the container > /b/n",
    );
    let n = std::fs::read_to_string(dir.join("n")).unwrap();
    assert_eq!(n, "from the container\n");
}

/// `--read-only` with a `--tmpfs`: the root refuses writes, the tmpfs takes them.
fn read_only(d: &Daemon) {
    let script =
        "echo y > /scratch/y && cat /scratch/y && grep ' /scratch ' /proc/mounts; echo x > /x";
    let (code, out, err) = d.sh("run --rm --read-only --tmpfs /scratch", script);
    assert!(
        code != 0 && err.contains("Read-only file system"),
        "{out}{err}"
    );
    let l = lines(&out);
    assert_eq!(l[0], "y", "{out}");
    assert!(l[1].starts_with("tmpfs /scratch tmpfs rw"), "{out}");
}

/// `--user`, `--cap-drop ALL`, `--cap-add`, no-new-privileges, as the kernel reports and
/// enforces them.
fn user_caps(d: &Daemon) {
    let out = d.sh_ok(
        "run --rm --user 1000:1000",
        "id -u; id -g; grep CapEff /proc/self/status",
    );
    assert_eq!(lines(&out), ["1000", "1000", "CapEff:\t0000000000000000"]);
    let chown = "grep CapEff /proc/self/status; chown 1000 /tmp && echo chowned";
    let (_, out, err) = d.sh("run --rm --cap-drop ALL", chown);
    assert_eq!(lines(&out), ["CapEff:\t0000000000000000"], "{err}");
    assert!(err.contains("Operation not permitted"), "{err}");
    let out = d.sh_ok("run --rm --cap-drop ALL --cap-add CHOWN", chown);
    assert_eq!(lines(&out), ["CapEff:\t0000000000000001", "chowned"]);
    let nnp = "grep NoNewPrivs /proc/self/status";
    let out = d.sh_ok("run --rm --security-opt no-new-privileges", nnp);
    assert_eq!(out, "NoNewPrivs:\t1\n");
    assert_eq!(d.sh_ok("run --rm", nnp), "NoNewPrivs:\t0\n");
}

/// Docker's default seccomp profile is on (mode 2) and refuses what it blocks: a user
/// namespace, which the same container may make without the profile.
fn seccomp(d: &Daemon) {
    let script = "grep '^Seccomp:' /proc/self/status; unshare -U true && echo made";
    let (_, out, err) = d.sh("run --rm", script);
    assert_eq!(lines(&out), ["Seccomp:\t2"], "{err}");
    assert!(err.contains("Operation not permitted"), "{err}");
    let out = d.sh_ok("run --rm --security-opt seccomp=unconfined", script);
    assert_eq!(lines(&out), ["Seccomp:\t0", "made"]);
}

/// The container's writes go to its own layer: `diff` lists them, the image and a new
/// container do not see them, `commit` makes an image that does.
fn layers(d: &Daemon) {
    d.sh_ok(
        "run --name wr",
        "echo new > /etc/newfile; rm /bin/vi; echo changed >> /etc/passwd",
    );
    let diff = d.okw("diff wr");
    for l in ["A /etc/newfile", "D /bin/vi", "C /etc/passwd"] {
        assert!(lines(&diff).contains(&l), "{l:?} not in diff: {diff}");
    }
    let layer = d.okw("image inspect -f {{.GraphDriver.Data.UpperDir}} IMG");
    let layer = Path::new(layer.trim());
    assert!(
        layer.join("bin/vi").exists(),
        "the image's layer lost /bin/vi"
    );
    assert!(
        !layer.join("etc/newfile").exists(),
        "the image's layer was written"
    );
    let fresh = "ls /etc/newfile; ls /bin/vi; tail -n 1 /etc/passwd";
    let (_, out, _) = d.sh("run --rm", fresh);
    assert_eq!(
        lines(&out),
        ["/bin/vi", "user:x:1000:1000:user:/home/user:/bin/sh"]
    );
    d.okw("commit wr cofferdam-committed");
    let (_, out, _) = d.docker(&["run", "--rm", "cofferdam-committed", "sh", "-c", fresh]);
    assert_eq!(lines(&out), ["/etc/newfile", "changed"]);
    d.okw("rm wr");
    d.okw("rmi cofferdam-committed");
}

/// `--restart on-failure:3` restarts a failing container three times.
fn restart(d: &Daemon) {
    d.sh_ok(
        "run -d --name rs --restart on-failure:3",
        "echo run; exit 4",
    );
    d.wait_inspect("rs", "{{.RestartCount}} {{.State.Status}}", |s| {
        s == "3 exited"
    });
    assert_eq!(d.inspect("rs", "{{.State.ExitCode}}"), "4");
    assert_eq!(d.okw("logs rs"), "run\n".repeat(4), "four runs");
    d.okw("rm rs");
}

/// `docker cp` both ways.
fn cp(d: &Daemon) {
    let dir = d.host_dir("cp");
    std::fs::write(dir.join("in"), "to the container\n").unwrap();
    d.okw("run -d --name cpc IMG sleep 1000");
    d.ok(&["cp", dir.join("in").to_str().unwrap(), "cpc:/tmp/in"]);
    assert_eq!(d.okw("exec cpc cat /tmp/in"), "to the container\n");
    d.ok(&["exec", "cpc", "sh", "-c", "echo to the host > /tmp/out"]);
    d.ok(&["cp", "cpc:/tmp/out", dir.join("out").to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(dir.join("out")).unwrap(),
        "to the host\n"
    );
    d.okw("rm -f cpc");
}

/// A healthcheck (run by exec) finds the container unhealthy, then healthy.
fn healthcheck(d: &Daemon) {
    let mut args = w("run -d --name hc --health-interval 200ms --health-retries 1");
    args.extend(["--health-cmd", "test -e /tmp/ready", IMAGE, "sleep", "1000"]);
    d.ok(&args);
    d.wait_inspect("hc", "{{.State.Health.Status}}", |s| s == "unhealthy");
    d.okw("exec hc touch /tmp/ready");
    d.wait_inspect("hc", "{{.State.Health.Status}}", |s| s == "healthy");
    d.okw("rm -f hc");
}

/// `--init`: docker-init is pid 1, the command its child, the exit code passed on.
fn init(d: &Daemon) {
    let script = "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$; exit 3";
    let (code, out, err) = d.sh("run --rm --init", script);
    assert_eq!(code, 3, "{err}");
    let l = lines(&out);
    assert!(l[0].starts_with("/sbin/docker-init -- sh"), "{out}");
    assert_ne!(l[1], "1", "{out}");
}

/// `--ipc container:X` and `--pid container:X` join X's namespaces (passed as paths).
fn ipc_pid(d: &Daemon) {
    d.sh_ok(
        "run -d --name ipx --ipc shareable",
        "echo shared > /dev/shm/marker; exec sleep 1000",
    );
    let ns = |kind: &str| d.okw(&format!("exec ipx readlink /proc/self/ns/{kind}"));
    let (ipc, pid) = (ns("ipc"), ns("pid"));
    let out = d.sh_ok(
        "run --rm --ipc container:ipx",
        "readlink /proc/self/ns/ipc; cat /dev/shm/marker",
    );
    assert_eq!(lines(&out), [ipc.trim(), "shared"]);
    let script = "readlink /proc/self/ns/pid; cat /proc/1/cmdline | tr '\\0' ' '";
    let out = d.sh_ok("run --rm --pid container:ipx", script);
    assert_eq!(lines(&out), [pid.trim(), "sleep 1000 "]);
    d.okw("rm -f ipx");
}

/// `--network none` has only lo; `--network host` is the daemon's namespace (a bind-mounted
/// path, #12 item 3).
fn network_none_host(d: &Daemon) {
    assert_eq!(
        d.okw("run --rm --network none IMG ls /sys/class/net"),
        "lo\n"
    );
    let ours = std::fs::read_link(format!("/proc/{}/ns/net", d.ns_pid())).unwrap();
    let out = d.sh_ok(
        "run --rm --network host",
        "readlink /proc/self/ns/net; ls /sys/class/net",
    );
    let l = lines(&out);
    assert_eq!(Path::new(l[0]), ours, "host network: {out}");
    assert!(l.contains(&"docker0"), "host network: {out}");
}

/// Two containers on a user-defined bridge reach each other by name and by address.
fn bridge(d: &Daemon) {
    let www =
        "mkdir /www && echo from $(hostname) > /www/index.html && exec httpd -f -p 80 -h /www";
    d.okw("network create cofferdam-net");
    d.sh_ok("run -d --name srv --network cofferdam-net", www);
    d.okw("run -d --name cli --network cofferdam-net IMG sleep 1000");
    let ip = d.inspect(
        "srv",
        "{{(index .NetworkSettings.Networks \"cofferdam-net\").IPAddress}}",
    );
    let (code, out, err) = d.docker(&w("exec cli ping -c 1 -W 5 srv"));
    assert_eq!(code, 0, "ping srv: {out}{err}");
    assert!(out.contains(&format!("({ip})")), "srv is not {ip}: {out}");
    let srv = d.inspect("srv", "{{.Config.Hostname}}");
    for url in ["http://srv/".to_string(), format!("http://{ip}/")] {
        let mut got = String::new();
        wait_until(&format!("{url} from cli"), Duration::from_secs(30), || {
            // (busybox 1.35's wget -T crashes: the deadline is timeout's)
            let (code, out, err) =
                d.docker(&["exec", "cli", "timeout", "5", "wget", "-q", "-O", "-", &url]);
            got = format!("{out}{err}");
            code == 0
        });
        assert_eq!(got, format!("from {srv}\n"), "{url}");
    }
    d.okw("rm -f srv cli");
    d.okw("network rm cofferdam-net");
}

/// `-p` publishes a port of the default bridge, fetched over loopback in the test's network
/// namespace.
fn publish(d: &Daemon) {
    let www = "mkdir /www && echo published > /www/index.html && exec httpd -f -p 80 -h /www";
    d.sh_ok("run -d --name pub -p 127.0.0.1::80", www);
    let port = d.okw("port pub 80/tcp");
    let addr = lines(&port)[0].to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{port}");
    let url = format!("http://{addr}/");
    let mut got = String::new();
    wait_until("the published port", Duration::from_secs(30), || {
        let o = d.in_netns(&[
            "timeout",
            "5",
            "/bin/busybox",
            "wget",
            "-q",
            "-O",
            "-",
            &url,
        ]);
        got = String::from_utf8_lossy(&o.stdout).into_owned();
        o.status.success()
    });
    assert_eq!(got, "published\n");
    d.okw("rm -f pub");
}

/// Swarm: a service of 3 replicas on cofferdam, scaled to 5, removed.
fn swarm(d: &Daemon) {
    d.okw(&format!(
        "swarm init --advertise-addr {SWARM_ADDR} --listen-addr {SWARM_ADDR}:2377"
    ));
    d.okw("service create --detach --name svc --replicas 3 IMG sleep 1000");
    let tasks = |all: &str| {
        let ps = format!("ps -q --no-trunc {all} --filter label=com.docker.swarm.service.name=svc");
        d.okw(&ps)
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let running = |n: usize| {
        wait_until(
            &format!("{n} tasks running"),
            Duration::from_secs(60),
            || tasks("").len() == n,
        );
        for id in tasks("") {
            let st = d.cofferdam_state(&id);
            assert_eq!(st["status"], "running", "task {id} in cofferdam: {st}");
        }
    };
    running(3);
    d.okw("service scale --detach svc=5");
    running(5);
    d.okw("service rm svc");
    wait_until("the tasks removed", Duration::from_secs(60), || {
        tasks("-a").is_empty()
    });
    d.okw("swarm leave --force");
}

/// 30 `run --rm` in a row, and nothing of them left: no container, cgroup, runtime state,
/// containerd bundle, container directory or mount.
fn run_rm_30(d: &Daemon) {
    let dir = d.host_dir("cids");
    let mut ids = Vec::new();
    for i in 0..30 {
        let cid = dir.join(i.to_string());
        let out = d.okw(&format!(
            "run --rm --cidfile {} IMG echo {i}",
            cid.display()
        ));
        assert_eq!(out, format!("{i}\n"));
        ids.push(std::fs::read_to_string(cid).unwrap());
    }
    let all = d.okw("ps -aq --no-trunc");
    let mountinfo = std::fs::read_to_string(format!("/proc/{}/mountinfo", d.init())).unwrap();
    let bundles = d
        .exec
        .join("containerd/daemon/io.containerd.runtime.v2.task/moby");
    for id in &ids {
        assert!(!all.contains(id.as_str()), "{id} is still a container");
        for ctrl in ["memory", "pids", "cpu", "freezer"] {
            assert!(!d.cg(ctrl, id).exists(), "{id}'s {ctrl} cgroup is left");
        }
        for e in std::fs::read_dir(&d.exec).unwrap().flatten() {
            assert!(
                !e.path().join("moby").join(id).exists(),
                "{id}'s runtime state is left"
            );
        }
        assert!(!bundles.join(id).exists(), "{id}'s bundle is left");
        assert!(
            !d.data.join("containers").join(id).exists(),
            "{id}'s directory is left"
        );
        assert!(!mountinfo.contains(id.as_str()), "a mount of {id} is left");
    }
}

/// With everything removed: no process, container cgroup, runtime state or container mount
/// is left of all the scenarios.
fn nothing_left(d: &Daemon) {
    let left = d.okw("ps -aq");
    if !left.trim().is_empty() {
        d.okw(&format!("rm -f {left}"));
    }
    assert_eq!(
        left.trim(),
        "",
        "containers left by failed scenarios (now removed)"
    );
    assert!(
        processes_in_cgroup(&d.env.cgroup_prefix).is_empty(),
        "processes left"
    );
    for dir in d.env.cgroup_dirs() {
        let subdirs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.path())
            .collect();
        assert!(subdirs.is_empty(), "cgroups left: {subdirs:?}");
    }
    for e in std::fs::read_dir(&d.exec).unwrap().flatten() {
        if let Ok(states) = std::fs::read_dir(e.path().join("moby")) {
            let states: Vec<_> = states.flatten().map(|e| e.path()).collect();
            assert!(states.is_empty(), "runtime state left: {states:?}");
        }
    }
    let mountinfo = std::fs::read_to_string(format!("/proc/{}/mountinfo", d.init())).unwrap();
    // dockerd makes its data root a mount of its own (for its propagation); below it there
    // are the containers' (overlays, shm).
    let data = format!("{}/", d.data.display());
    let mounts: Vec<&str> = mountinfo
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter(|m| m.starts_with(&data))
        .collect();
    assert!(mounts.is_empty(), "mounts left: {mounts:?}");
}
