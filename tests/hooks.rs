//! Hooks at every lifecycle point: order, the state on stdin (with `creating` seen live during
//! create), and the spec's failure rules (fatal before the process runs, logged after).

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
    assert!(t.elapsed() < Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("timed out after 1s"));
    env.assert_nothing_left(&id);
}

#[test]
fn failing_poststart_and_poststop_hooks_are_only_logged() {
    let env = Env::new("hooklogged");
    let mut b = env.bundle("b", &["sh", "-c", "exit 5"]);
    b.config["hooks"] =
        json!({"poststart": [sh_hook("ps", "exit 1")], "poststop": [sh_hook("pst", "exit 1")]});
    b.save();
    let id = env.id("c");
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
    assert_eq!(
        out.status.code(),
        Some(5),
        "the container ran and its status came back"
    );
    env.assert_nothing_left(&id);
    let records: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for point in ["poststart", "poststop"] {
        assert!(
            records.iter().any(|r| r["level"] == "warning"
                && r["msg"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{point} hook #0"))),
            "no {point} warning in {records:?}"
        );
    }
    assert!(!Path::new(&env.root.join(&id)).exists());
}
