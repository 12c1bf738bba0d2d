//! The lifecycle through the CLI, as an engine drives it: create, state, start, kill, delete,
//! run, list, spec, and the runc spellings of their options.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

fn wait_status(env: &Env, id: &str, want: &str) {
    let deadline = Instant::now() + patience(Duration::from_secs(10));
    loop {
        // A container started in the background may not have its state yet.
        let out = env.cmd(&["state", id]);
        let s = match serde_json::from_slice::<serde_json::Value>(&out.stdout) {
            Ok(v) => v["status"].as_str().unwrap_or_default().to_string(),
            Err(_) => String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        if s == want {
            return;
        }
        assert!(Instant::now() < deadline, "{id} stayed {s}, wanted {want}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn create_start_state_kill_delete() {
    let env = Env::new("lifecycle");
    let b = env.bundle("b", &["sleep", "1000"]);
    let id = env.id("c");
    let pidfile = env.dir.join("pid");
    // Options after the id, as test suites call runc.
    let out = env.cmd(&[
        "create",
        &id,
        "--bundle",
        b.path_str(),
        "--pid-file",
        pidfile.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let st = env.state(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], json!(id));
    assert_eq!(st["bundle"], json!(b.path_str()));
    assert_eq!(st["rootfs"], json!(b.rootfs().to_str().unwrap()));
    assert!(st["ociVersion"].as_str().unwrap().starts_with("1."));
    assert!(st["created"].as_str().unwrap().ends_with('Z'));
    assert_eq!(st["owner"], "root");
    let pid = st["pid"].as_i64().unwrap();
    assert!(pid > 0);
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), pid.to_string());
    // The init waits in the container's cgroup and pid namespace, before exec.
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(cg.contains(&env.cgroup_prefix), "{cg}");
    let nspid = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let nspid = nspid
        .lines()
        .find(|l| l.starts_with("NSpid:"))
        .unwrap()
        .to_string();
    assert!(
        nspid.trim_end().ends_with("\t1"),
        "init is not pid 1 in its namespace: {nspid}"
    );
    // No cofferdam process stays behind after create: the init's parent is not cofferdam.
    let ppid = ppid(pid as i32);
    let parent_exe = std::fs::read_link(format!("/proc/{ppid}/exe")).unwrap_or_default();
    assert!(
        !parent_exe.ends_with("cofferdam"),
        "a cofferdam process ({ppid}) stayed behind"
    );

    let out = env.cmd(&["start", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.status(&id), "running");
    assert_eq!(env.state(&id)["pid"].as_i64().unwrap(), pid);
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(exe.ends_with("busybox"), "init did not exec: {exe:?}");

    // A second start is refused.
    assert!(!env.cmd(&["start", &id]).status.success());
    // A running container is not deleted without --force.
    let out = env.cmd(&["delete", &id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("running"));

    // pid 1 ignores TERM without a handler (as under runc); KILL, by name, stops it.
    let out = env.cmd(&["kill", &id, "KILL"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_status(&env, &id, "stopped");
    assert_eq!(env.state(&id)["pid"], 0);
    // Killing a stopped container is an error, as with runc.
    assert!(!env.cmd(&["kill", &id, "9"]).status.success());

    let out = env.cmd(&["delete", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.assert_nothing_left(&id);
    // Gone means gone.
    let out = env.cmd(&["state", &id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    assert!(env.cmd(&["delete", "--force", &id]).status.success());
}

#[test]
fn creating_then_stopped_when_the_creator_died() {
    // `state` derives `creating` from the state file (not yet committed by create) and from
    // whether the creating process is still alive. Here the state file is rewritten to stand
    // for a create in progress (creator alive) and for one that was killed. The live window is
    // seen by a createRuntime hook in tests/hooks.rs.
    let env = Env::new("creating");
    let b = env.bundle("b", &["true"]);
    let id = env.id("c");
    assert!(
        env.cmd(&["create", "--bundle", b.path_str(), &id])
            .status
            .success()
    );
    // Simulate a create killed before it committed: the creator has exited.
    env.edit_state(&id, |st| st["committed"] = json!(false));
    // The creator (the `cofferdam create` process) has exited, so this is stopped, not creating.
    assert_eq!(env.status(&id), "stopped");
    // Our own pid as creator: alive, so "creating".
    let me = std::fs::read_to_string("/proc/self/stat").unwrap();
    let start: u64 = me
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    env.edit_state(&id, |st| {
        st["creator_pid"] = json!(std::process::id());
        st["creator_start"] = json!(start);
    });
    assert_eq!(env.status(&id), "creating");
    env.edit_state(&id, |st| st["committed"] = json!(true));
    assert_eq!(env.status(&id), "created");
    assert!(env.cmd(&["delete", &id]).status.success());
    env.assert_nothing_left(&id);
}

#[test]
fn delete_of_a_created_container_kills_its_init() {
    let env = Env::new("delcreated");
    let b = env.bundle("b", &["sleep", "1000"]);
    let id = env.id("c");
    assert!(
        env.cmd(&["create", "-b", b.path_str(), &id])
            .status
            .success()
    );
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    let out = env.cmd(&["delete", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let gone =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z "));
    assert!(gone, "init {pid} survived delete");
    env.assert_nothing_left(&id);
}

/// A stopped container, as runc treats it: a signal to its init is refused with runc's words
/// ("container not running", which containerd's shim looks for in the error), while `kill
/// --all` signals what is left in its cgroup and succeeds. containerd's shim sends `kill --all
/// KILL` after every exit it handles, and the CRI's StopContainer failed on its error.
#[test]
fn start_returns_once_the_container_process_runs_its_program() {
    // The spec runs the poststart hooks "after the user-specified process is executed", and
    // engines read /proc of the pid `start` names as soon as it returns: by then the init
    // must have left the runtime's code. Before, `start` returned as soon as its byte was
    // in exec.fifo. A startContainer hook (run by the init between that byte and its execve)
    // that takes a while makes the difference certain; the runs without it check the race.
    let env = Env::new("startexec");
    let mut b = env.bundle("b", &["sleep", "1000"]);
    for i in 0..6 {
        if i == 3 {
            b.config["hooks"] = serde_json::json!({"startContainer": [
                {"path": "/bin/sleep", "args": ["sleep", "0.3"]}
            ]});
            b.save();
        }
        let id = env.id(&format!("c{i}"));
        let pid = start(&env, &b, &id);
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
        assert_eq!(
            comm.trim(),
            "sleep",
            "run {i}: `start` returned before the execve"
        );
        ok(&env.cmd(&["delete", "--force", &id]), "delete");
        env.assert_nothing_left(&id);
    }
}

#[test]
fn kill_of_a_stopped_container_as_runc() {
    let env = Env::new("killstopped");
    // No pid namespace of its own, so that the init's child outlives it in its cgroup.
    let mut b = env.bundle("b", &["sh", "-c", "sleep 1000 &"]);
    let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "pid");
    b.save();
    let id = env.id("c");
    env.run_detached(&b, &id);
    wait_status(&env, &id, "stopped");
    let left = processes_in_cgroup(&env.cgroup_prefix);
    assert_eq!(left.len(), 1, "the orphaned sleep: {left:?}");

    let out = env.cmd(&["kill", &id, "KILL"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_text(&out);
    assert!(err.contains("container not running"), "{err}");
    assert_eq!(processes_in_cgroup(&env.cgroup_prefix), left);

    ok(&env.cmd(&["kill", "--all", &id, "KILL"]), "kill --all");
    wait_until(
        "the orphan killed by kill --all",
        Duration::from_secs(10),
        || processes_in_cgroup(&env.cgroup_prefix).is_empty(),
    );
    // Nothing left to signal: still no error.
    ok(&env.cmd(&["kill", "-a", &id, "TERM"]), "kill -a");
    ok(&env.cmd(&["delete", &id]), "delete");
    env.assert_nothing_left(&id);
}

#[test]
fn delete_force_stops_a_running_container() {
    let env = Env::new("delforce");
    let b = env.bundle("b", &["sleep", "1000"]);
    let id = env.id("c");
    env.run_detached(&b, &id);
    assert_eq!(env.status(&id), "running");
    let out = env.cmd(&["delete", "-f", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.assert_nothing_left(&id);
}

#[test]
fn run_returns_the_exit_status() {
    let env = Env::new("exitcode");
    let b = env.bundle("b", &["sh", "-c", "echo out; echo err >&2; exit 42"]);
    let id = env.id("c");
    let (code, out, err) = env.run(&b, &id);
    assert_eq!(code, 42);
    assert_eq!(out, "out\n");
    assert!(err.contains("err"), "{err}");
    env.assert_nothing_left(&id);

    // Killed by a signal: 128 + signal, like a shell.
    let b = env.bundle("b2", &["sh", "-c", "kill -KILL $$"]);
    let id = env.id("c2");
    let (code, _, _) = env.run(&b, &id);
    // The shell is pid 1: only SIGKILL from outside would kill it, so it exits by itself with
    // the kill builtin failing or succeeding; either way run reports what the process did.
    assert!(code == 137 || code == 0 || code == 1, "unexpected {code}");
    env.assert_nothing_left(&id);

    let b = env.bundle("b3", &["sh", "-c", "sleep 1000 & exec sleep 1000"]);
    let id = env.id("c3");
    let child = env.spawn_run(&b, &id);
    wait_status(&env, &id, "running");
    let out = env.cmd(&["kill", &id, "SIGKILL"]);
    assert!(out.status.success());
    let status = child.wait_with_output().unwrap().status;
    assert_eq!(status.code(), Some(137));
    env.assert_nothing_left(&id);
}

#[test]
fn foreground_run_forwards_signals() {
    let env = Env::new("fwd");
    // A pid 1 with a TERM handler: it reports the signal and exits 7.
    let b = env.bundle(
        "b",
        &[
            "sh",
            "-c",
            "trap 'echo got-term; exit 7' TERM; echo ready; while true; do sleep 0.05; done",
        ],
    );
    let id = env.id("c");
    let child = env.spawn_run(&b, &id);
    wait_status(&env, &id, "running");
    std::thread::sleep(Duration::from_millis(200));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(7));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("got-term"), "{stdout}");
    env.assert_nothing_left(&id);
}

#[test]
fn run_keep_leaves_a_stopped_container() {
    let env = Env::new("keep");
    let b = env.bundle("b", &["true"]);
    let id = env.id("c");
    let out = env.cmd(&["run", "--keep", "--bundle", b.path_str(), &id]);
    assert!(out.status.success());
    assert_eq!(env.status(&id), "stopped");
    assert!(env.cmd(&["delete", &id]).status.success());
    env.assert_nothing_left(&id);
}

#[test]
fn list_shows_containers_in_table_and_json() {
    let env = Env::new("list");
    let b = env.bundle("b", &["sleep", "1000"]);
    let a = env.id("a");
    let c = env.id("c");
    assert!(
        env.cmd(&["create", "--bundle", b.path_str(), &a])
            .status
            .success()
    );
    let mut b2 = env.bundle("b2", &["sleep", "1000"]);
    // Shares the parent cgroup of the first bundle.
    b2.config["linux"]["cgroupsPath"] = json!(format!("{}_b/other", env.cgroup_prefix));
    b2.save();
    env.run_detached(&b2, &c);

    let out = String::from_utf8(env.cmd(&["list"]).stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("STATUS") && lines[0].ends_with("OWNER")
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&a) && l.contains("created")),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&c) && l.contains("running")),
        "{out}"
    );

    let q = String::from_utf8(env.cmd(&["list", "-q"]).stdout).unwrap();
    assert_eq!(q.lines().collect::<Vec<_>>(), vec![a.as_str(), c.as_str()]);

    let j: serde_json::Value =
        serde_json::from_slice(&env.cmd(&["list", "--format", "json"]).stdout).unwrap();
    let arr = j.as_array().unwrap();
    assert_eq!(arr.len(), 2);
    assert_eq!(arr[1]["status"], "running");
    assert!(arr[1]["pid"].as_i64().unwrap() > 0);

    // `a` made the shared parent cgroup, so it goes last: a parent that another container still
    // uses is left alone, and removed by the delete of the container that made it.
    for id in [&c, &a] {
        assert!(env.cmd(&["delete", "-f", id]).status.success());
    }
    env.assert_nothing_left(&a);
    env.assert_nothing_left(&c);
}

#[test]
fn spec_writes_a_default_config_and_refuses_to_overwrite() {
    let env = Env::new("spec");
    let out = env.cmd(&["spec", "--bundle", env.dir.to_str().unwrap()]);
    assert!(out.status.success());
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(v["root"]["path"], "rootfs");
    assert_eq!(v["process"]["args"], json!(["sh"]));
    let ns: Vec<&str> = v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    for want in ["pid", "network", "ipc", "uts", "mount", "cgroup"] {
        assert!(ns.contains(&want), "{want} missing from {ns:?}");
    }
    let again = env.cmd(&["spec", "--bundle", env.dir.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
}

#[test]
fn version_names_the_spec() {
    let out = std::process::Command::new(BIN)
        .arg("--version")
        .output()
        .unwrap();
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(s.starts_with("cofferdam version "), "{s}");
    assert!(s.contains("\nspec: 1."), "{s}");
    assert!(s.contains("\ncommit: "), "{s}");
}

#[test]
fn log_file_in_json_gets_the_error() {
    let env = Env::new("logjson");
    let log = env.dir.join("log.json");
    let out = std::process::Command::new(BIN)
        .args([
            "--root",
            env.root.to_str().unwrap(),
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
            "state",
            "nope",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = std::fs::read_to_string(&log).unwrap();
    let rec: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(rec["level"], "error");
    assert!(rec["msg"].as_str().unwrap().contains("does not exist"));
    assert!(rec["time"].as_str().is_some());
}

#[test]
fn debug_records_go_to_the_log() {
    let env = Env::new("debuglog");
    let b = env.bundle("b", &["true"]);
    let id = env.id("c");
    let log = env.dir.join("log.txt");
    let out = env.cmd(&[
        "--debug",
        "--log",
        log.to_str().unwrap(),
        "run",
        "--bundle",
        b.path_str(),
        &id,
    ]);
    assert!(out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("level=debug") && text.contains(&format!("created {id}")),
        "{text}"
    );
    assert!(text.lines().all(|l| l.starts_with("time=\"")), "{text}");
    env.assert_nothing_left(&id);
}

#[test]
fn features_describe_what_the_runtime_does() {
    let env = Env::new("features");
    let out = env.cmd(&["features"]);
    assert!(out.status.success());
    let f: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(f["ociVersionMax"], "1.2.0");
    let opts: Vec<&str> = f["mountOptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for o in [
        "tmpcopyup",
        "rro",
        "rnosuid",
        "idmap",
        "nosymfollow",
        "rbind",
    ] {
        assert!(opts.contains(&o), "{o}");
    }
    assert_eq!(f["linux"]["seccomp"]["enabled"], true);
    assert_eq!(f["linux"]["cgroup"]["systemd"], true);
    assert_eq!(f["linux"]["cgroup"]["systemdUser"], false);
    assert!(
        f["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "user")
    );
    assert!(
        f["linux"]["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "CAP_SYS_ADMIN")
    );
}
