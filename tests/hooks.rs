//! Hooks at every lifecycle point: order, the state on stdin (with `creating` seen live during
//! create), the environment of startContainer hooks, and what a failure does: it fails the
//! operation, and after the process runs as runc has it (poststart stops the container,
//! poststop fails `delete` once all is gone).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// A hook running the host's /bin/sh with `script`; `$0` is the hook's name.
fn sh_hook(name: &str, script: &str) -> Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", script, name], "env": ["PATH=/usr/bin:/bin"]})
}

#[test]
fn every_hook_point_in_order_with_state_on_stdin() {
    let env = Env::new("hookorder");
    let log = env.dir.join("log");
    std::fs::create_dir_all(&log).unwrap();
    let l = log.to_str().unwrap();
    let append = |point: &str| {
        sh_hook(
            point,
            &format!("cat > {l}/{point}.json; echo {point} >> {l}/order"),
        )
    };
    let mut b = env.bundle("b", &["sh", "-c", "echo process >> /hooklog/order"]);
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/hooklog", "type": "bind", "source": log, "options": ["rbind"]
    }));
    b.config["hooks"] = json!({
        "prestart": [append("prestart")],
        "createRuntime": [append("createRuntime")],
        "createContainer": [append("createContainer")],
        // After pivot_root: the path is the container's /bin/sh, the log its bind mount.
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /hooklog/startContainer.json; echo startContainer >> /hooklog/order"]}],
        "poststart": [append("poststart")],
        "poststop": [append("poststop")]
    });
    b.save();
    let id = env.id("c");
    env.run_ok(&b, &id);
    let order = std::fs::read_to_string(log.join("order")).unwrap();
    let order: Vec<&str> = order.lines().collect();
    // The process and poststart race (start runs poststart once the process is released).
    let (mut before, mut after) = (order.clone(), vec![]);
    before.retain(|p| !matches!(*p, "process" | "poststart" | "poststop"));
    after.extend(
        order
            .iter()
            .filter(|p| matches!(**p, "process" | "poststart" | "poststop")),
    );
    assert_eq!(
        before,
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer"
        ],
        "{order:?}"
    );
    assert_eq!(after.last(), Some(&"poststop"), "{order:?}");
    assert_eq!(after.len(), 3, "{order:?}");

    let state = |p: &str| -> Value {
        serde_json::from_slice(&std::fs::read(log.join(format!("{p}.json"))).unwrap()).unwrap()
    };
    for (point, status) in [
        ("prestart", "creating"),
        ("createRuntime", "creating"),
        ("createContainer", "creating"),
        ("poststart", "running"),
        ("poststop", "stopped"),
    ] {
        let s = state(point);
        assert_eq!(s["id"], json!(id), "{point}");
        assert_eq!(s["status"], status, "{point}: {s}");
        assert_eq!(s["bundle"], json!(b.path_str()), "{point}");
    }
    assert!(state("createRuntime")["pid"].as_i64().unwrap() > 0);
    assert_eq!(state("startContainer")["id"], json!(id));
    env.assert_nothing_left(&id);
}

#[test]
fn state_is_creating_while_create_runs() {
    let env = Env::new("hookcreating");
    let out = env.dir.join("seen.json");
    let script = format!(
        "{BIN} --root {} state \"$(sed 's/.*\"id\":\"\\([^\"]*\\)\".*/\\1/')\" > {}",
        env.root.display(),
        out.display()
    );
    let mut b = env.bundle("b", &["true"]);
    b.config["hooks"] = json!({"createRuntime": [sh_hook("seer", &script)]});
    b.save();
    let id = env.id("c");
    env.run_ok(&b, &id);
    let seen: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(seen["status"], "creating", "{seen}");
    assert_eq!(seen["id"], json!(id));
    env.assert_nothing_left(&id);
}

#[test]
fn failing_create_hooks_fail_create_and_clean_up() {
    let env = Env::new("hookfail");
    for point in ["prestart", "createRuntime", "createContainer"] {
        let mut b = env.bundle(point, &["true"]);
        b.config["hooks"] = json!({point: [sh_hook(point, "echo nope >&2; exit 3")]});
        b.save();
        let id = env.id(point);
        let out = env.cmd(&["create", "--bundle", b.path_str(), &id]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{point}: {err}");
        assert!(
            err.contains(&format!("{point} hook #0")) && err.contains("nope"),
            "{point}: {err}"
        );
        env.assert_nothing_left(&id);
    }
}

#[test]
fn hook_timeout_is_enforced() {
    let env = Env::new("hooktimeout");
    let mut b = env.bundle("b", &["true"]);
    let mut hook = sh_hook("slow", "sleep 30");
    hook["timeout"] = json!(1);
    b.config["hooks"] = json!({"createRuntime": [hook]});
    b.save();
    let id = env.id("c");
    let t = Instant::now();
    let out = env.cmd(&["create", "--bundle", b.path_str(), &id]);
    assert!(t.elapsed() < patience(Duration::from_secs(10)));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("timed out after 1s"));
    env.assert_nothing_left(&id);
}

/// `state` of `id` until it is `want` (or a deadline).
fn wait_status(env: &Env, id: &str, want: &str) {
    let deadline = Instant::now() + patience(Duration::from_secs(10));
    while env.status(id) != want {
        assert!(Instant::now() < deadline, "{id} did not become {want}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn failing_poststart_hook_fails_start_and_stops_the_container() {
    let env = Env::new("hookpoststart");
    let second = env.dir.join("second");
    let mut b = env.bundle("b", &["sleep", "1000"]);
    b.config["hooks"] = json!({"poststart": [
        sh_hook("bad", "echo nope >&2; exit 1"),
        sh_hook("second", &format!("touch {}", second.display()))
    ]});
    b.save();
    let id = env.id("c");
    let out = env.cmd(&["create", "--bundle", b.path_str(), &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    let (code, _, err) = code_out_err(&env.cmd(&["start", &id]));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("poststart hook #0") && err.contains("nope"),
        "{err}"
    );
    // As runc: the container is stopped (its process killed), the hooks after the failing one
    // do not run, and `delete` removes it.
    assert_eq!(env.status(&id), "stopped");
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists() || {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            stat.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        }
    );
    assert!(!second.exists());
    assert!(env.cmd(&["delete", &id]).status.success());
    env.assert_nothing_left(&id);

    // A foreground run fails the same way, and leaves nothing.
    let id = env.id("run");
    let (code, _, err) = env.run(&b, &id);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("poststart hook #0"), "{err}");
    env.assert_nothing_left(&id);
}

#[test]
fn failing_poststop_hook_fails_delete_once_all_is_gone_and_the_others_ran() {
    let env = Env::new("hookpoststop");
    let after = env.dir.join("after");
    let mut b = env.bundle("b", &["true"]);
    b.config["hooks"] = json!({"poststop": [
        sh_hook("bad", "echo nope >&2; exit 1"),
        sh_hook("after", &format!("touch {}", after.display()))
    ]});
    b.save();
    let id = env.id("c");
    assert!(
        env.cmd(&["create", "--bundle", b.path_str(), &id])
            .status
            .success()
    );
    assert!(env.cmd(&["start", &id]).status.success());
    wait_status(&env, &id, "stopped");
    let (code, _, err) = code_out_err(&env.cmd(&["delete", &id]));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("poststop hook #0") && err.contains("nope"),
        "{err}"
    );
    assert!(after.exists(), "the next poststop hook ran");
    env.assert_nothing_left(&id);

    // A foreground run, which deletes, logs it and exits with the container's status (runc).
    let _ = std::fs::remove_file(&after);
    b.config["process"]["args"] = json!(["sh", "-c", "exit 5"]);
    b.save();
    let id = env.id("run");
    let log = env.dir.join("log.json");
    let out = env.cmd(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "run",
        "--bundle",
        b.path_str(),
        &id,
    ]);
    assert_eq!(out.status.code(), Some(5));
    assert!(after.exists());
    let records: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        records.iter().any(|r| r["level"] == "warning"
            && r["msg"].as_str().unwrap().starts_with("poststop hook #0")),
        "no poststop warning in {records:?}"
    );
    env.assert_nothing_left(&id);
}

#[test]
fn start_container_hooks_get_the_process_environment_unless_they_have_their_own() {
    let env = Env::new("hookenv");
    let log = env.dir.join("log");
    std::fs::create_dir_all(&log).unwrap();
    let mut b = env.bundle("b", &["true"]);
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/hooklog", "type": "bind", "source": log, "options": ["rbind"]
    }));
    b.config["process"]["env"] = json!(["PATH=/bin", "FOO=from-process"]);
    b.config["hooks"] = json!({"startContainer": [
        {"path": "/bin/sh", "args": ["sh", "-c", "env > /hooklog/inherited"]},
        {"path": "/bin/sh", "args": ["sh", "-c", "env > /hooklog/own"], "env": ["MINE=1"]}
    ]});
    b.save();
    let id = env.id("c");
    env.run_ok(&b, &id);
    let read = |n: &str| std::fs::read_to_string(log.join(n)).unwrap();
    let inherited = read("inherited");
    let inherited: Vec<&str> = inherited.lines().collect();
    // The process's environment, HOME (from the image's /etc/passwd) included.
    for want in ["PATH=/bin", "FOO=from-process", "HOME=/root"] {
        assert!(inherited.contains(&want), "{want}: {inherited:?}");
    }
    let own = read("own");
    assert!(own.lines().any(|l| l == "MINE=1"), "{own}");
    assert!(!own.contains("FOO="), "{own}");
    env.assert_nothing_left(&id);
}
