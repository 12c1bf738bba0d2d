//! `exec`: a second process in a running container joins every namespace of its init and its
//! cgroup, takes the container's process settings with runc's overrides, and returns its
//! status.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::*;
use serde_json::json;

/// A running container (`sleep`) for exec tests.
fn running(env: &Env) -> (String, i32) {
    let mut b = env.bundle("b", &["sleep", "1000"]);
    b.config["hostname"] = json!("exechost");
    b.config["process"]["env"] = json!(["PATH=/bin", "FROM_CONFIG=1"]);
    b.save();
    let id = env.id("c");
    let pid = env.run_detached(&b, &id);
    (id, pid)
}

fn ns(pid: impl std::fmt::Display, name: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{name}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn exec_joins_every_namespace_and_the_cgroup() {
    let env = Env::new("execns");
    let (id, init) = running(&env);
    let pidfile = env.dir.join("exec.pid");
    let out = env.cmd(&[
        "exec",
        "-d",
        "--pid-file",
        pidfile.to_str().unwrap(),
        &id,
        "sleep",
        "1000",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().parse().unwrap();
    for name in ["mnt", "uts", "ipc", "net", "pid_for_children", "cgroup"] {
        assert_eq!(ns(pid, name), ns(init, name), "{name} namespace");
    }
    let pidns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/pid")).unwrap();
    assert_eq!(
        pidns(&pid.to_string()),
        pidns(&init.to_string()),
        "pid namespace"
    );
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let init_cg = std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap();
    assert_eq!(cg, init_cg, "cgroups");
    assert!(cg.contains(&env.cgroup_prefix));
    // Its root is the container's: it sees the container's files.
    let root = std::fs::read_link(format!("/proc/{pid}/root")).unwrap();
    assert_eq!(
        root,
        std::fs::read_link(format!("/proc/{init}/root")).unwrap()
    );
    assert!(env.cmd(&["delete", "--force", &id]).status.success());
    env.assert_nothing_left(&id);
}

#[test]
fn exec_output_status_and_runc_overrides() {
    let env = Env::new("execrun");
    let (id, _) = running(&env);
    let out = env.cmd(&[
        "exec",
        &id,
        "sh",
        "-c",
        "echo pid=$$ $(hostname) $FROM_CONFIG; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "pid=2 exechost 1\n");

    // Options after the id, and `--` before the command.
    let out = env.cmd(&[
        "exec",
        &id,
        "-e",
        "FOO=bar",
        "--user",
        "1000:1000",
        "-g",
        "5",
        "--cwd",
        "/tmp",
        "--",
        "sh",
        "-c",
        "echo $FOO; id -u; id -G; pwd",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "bar\n1000\n1000 5\n/tmp\n"
    );

    // Capabilities come from the config; --cap adds one (CAP_SYS_ADMIN = 21).
    let out = env.cmd(&[
        "exec",
        "--cap",
        "CAP_SYS_ADMIN",
        &id,
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    let eff = u64::from_str_radix(
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)
            .unwrap(),
        16,
    )
    .unwrap();
    assert_eq!(
        eff,
        (1 << 5) | (1 << 10) | (1 << 21) | (1 << 29),
        "kill, net_bind_service, sys_admin, audit_write"
    );
    assert!(env.cmd(&["delete", "--force", &id]).status.success());
    env.assert_nothing_left(&id);
}

#[test]
fn exec_with_a_process_file() {
    let env = Env::new("execproc");
    let (id, _) = running(&env);
    let p = env.dir.join("process.json");
    std::fs::write(
        &p,
        serde_json::to_vec(&json!({
            "args": ["sh", "-c", "echo $X; id -u; ulimit -n; grep NoNewPrivs /proc/self/status"],
            "env": ["PATH=/bin", "X=from-file"],
            "cwd": "/",
            "user": {"uid": 1000, "gid": 1000},
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 77, "hard": 77}],
            "noNewPrivileges": true
        }))
        .unwrap(),
    )
    .unwrap();
    let out = env.cmd(&["exec", "--process", p.to_str().unwrap(), &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(&lines[..3], ["from-file", "1000", "77"]);
    assert!(lines[3].ends_with("1"), "{text}");
    assert!(env.cmd(&["delete", "--force", &id]).status.success());
    env.assert_nothing_left(&id);
}

#[test]
fn exec_errors_exit_255_with_a_clear_message() {
    let env = Env::new("execerr");
    let (id, _) = running(&env);
    let out = env.cmd(&["exec", &id, "no-such-command"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&out.stderr).contains("executable file not found"));
    let out = env.cmd(&["exec", "ghost", "true"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    assert!(env.cmd(&["kill", &id, "KILL"]).status.success());
    std::thread::sleep(std::time::Duration::from_millis(200));
    let out = env.cmd(&["exec", &id, "true"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stopped"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(env.cmd(&["delete", &id]).status.success());
    env.assert_nothing_left(&id);
}

#[test]
fn exec_tty_in_the_foreground() {
    let env = Env::new("exectty");
    let (id, _) = running(&env);
    let mut child = std::process::Command::new(BIN)
        .arg("--root")
        .arg(&env.root)
        .args(["exec", "-t", &id, "sh"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"tty; exit 4\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stdout).contains("/dev/pts/0"));
    assert!(env.cmd(&["delete", "--force", &id]).status.success());
    env.assert_nothing_left(&id);
}

#[test]
fn exec_into_a_sub_cgroup_and_listen_fds_reach_the_container() {
    let env = Env::new("execsub");
    let b = env.bundle("b", &["sleep", "1000"]);
    let id = env.id("c");
    let pid = env.run_detached(&b, &id);
    // A sub-cgroup made inside the container's, in every hierarchy.
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let mut made = Vec::new();
    for l in text.lines() {
        let mut f = l.splitn(3, ':');
        let (_, ctrls, path) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        let mount = if ctrls.is_empty() {
            if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
                "/sys/fs/cgroup".to_string()
            } else {
                "/sys/fs/cgroup/unified".to_string()
            }
        } else {
            format!("/sys/fs/cgroup/{}", ctrls.trim_start_matches("name="))
        };
        let dir = std::path::Path::new(&mount)
            .join(path.trim_start_matches('/'))
            .join("sub");
        if std::fs::create_dir(&dir).is_ok() {
            // A new v1 cpuset cgroup takes no task until it has cpus and mems.
            for f in ["cpuset.cpus", "cpuset.mems"] {
                if let Ok(v) = std::fs::read_to_string(dir.parent().unwrap().join(f))
                    && dir.join(f).exists()
                {
                    std::fs::write(dir.join(f), v.trim()).unwrap();
                }
            }
            made.push(dir);
        }
    }
    let out = env.cmd(&["exec", "--cgroup", "sub", &id, "cat", "/proc/self/cgroup"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().all(|l| l.ends_with("/sub")), "{text}");
    let out = env.cmd(&["exec", "--cgroup", "nosuch", &id, "true"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    for d in &made {
        let _ = std::fs::remove_dir(d);
    }
    assert!(env.cmd(&["delete", "--force", &id]).status.success());

    // systemd socket activation: LISTEN_FDS=1 with LISTEN_PID of the runtime passes fd 3.
    let b = env.bundle(
        "b2",
        &[
            "sh",
            "-c",
            "echo $LISTEN_FDS $LISTEN_PID; readlink /proc/self/fd/3",
        ],
    );
    let id2 = env.id("c2");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "exec 3</dev/null; export LISTEN_FDS=1; exec sh -c 'LISTEN_PID=$$ exec {BIN} --root {} run --bundle {} {id2}'",
            env.root.display(),
            b.path_str()
        ))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        ["1 1", "/dev/null"],
        "{text}"
    );
    env.assert_nothing_left(&id2);
}
