//! Nothing leaked, nothing lost: concurrent operations on one id, a create killed at any
//! moment, an init that died behind our back, a reused pid, a busy cgroup.

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::json;

#[test]
fn concurrent_creates_of_one_id_have_exactly_one_winner() {
    let env = Env::new("race");
    let b = env.bundle("b", &["sleep", "1000"]);
    let id = env.id("c");
    for round in 0..20 {
        let outs: Vec<_> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| s.spawn(|| env.cmd(&["create", "--bundle", b.path_str(), &id])))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let wins = outs.iter().filter(|o| o.status.success()).count();
        assert_eq!(wins, 1, "round {round}: {wins} creates won");
        for o in outs.iter().filter(|o| !o.status.success()) {
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(err.contains("already exists"), "round {round}: {err}");
        }
        assert_eq!(env.status(&id), "created");
        let out = env.cmd(&["delete", &id]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        env.assert_nothing_left(&id);
        let debris: Vec<_> = std::fs::read_dir(&env.root)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(
            debris.is_empty(),
            "round {round}: left in the state root: {debris:?}"
        );
    }
}

#[test]
fn concurrent_deletes_and_kills_of_one_container() {
    let env = Env::new("racedel");
    let b = env.bundle("b", &["sleep", "1000"]);
    let id = env.id("c");
    for _ in 0..5 {
        env.run_detached(&b, &id);
        let outs: Vec<_> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..6)
                .map(|i| {
                    let (env, id) = (&env, &id);
                    s.spawn(move || match i % 3 {
                        0 => env.cmd(&["delete", "--force", id]),
                        1 => env.cmd(&["kill", id, "KILL"]),
                        _ => env.cmd(&["state", id]),
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        // Forced deletes always succeed; kills and states either worked or say why.
        for (i, o) in outs.iter().enumerate() {
            let err = String::from_utf8_lossy(&o.stderr);
            if i % 3 == 0 {
                assert!(o.status.success(), "delete --force: {err}");
            } else if !o.status.success() {
                assert!(
                    err.contains("does not exist") || err.contains("not running"),
                    "{err}"
                );
            }
        }
        env.assert_nothing_left(&id);
    }
}

#[test]
fn create_killed_at_any_moment_is_cleaned_up_by_delete_force() {
    let env = Env::new("faults");
    let b = env.bundle("b", &["sleep", "1000"]);
    // Spread the kills over the time one create takes here (an emulated VM is far slower).
    let t = std::time::Instant::now();
    let probe = env.id("probe");
    assert!(
        env.cmd(&["create", "--bundle", b.path_str(), &probe])
            .status
            .success()
    );
    let create_time = t.elapsed();
    assert!(env.cmd(&["delete", &probe]).status.success());
    let step = create_time * 6 / 5 / 40;
    // Then, if a loaded machine made every create slower than the probe (all kills landed
    // early), later and later kills until a create gets further.
    let delays: Vec<std::time::Duration> = (0..40u32)
        .map(|i| step * i)
        .chain((1..=6).map(|k| create_time * (1 << k)))
        .collect();
    let mut seen = BTreeSet::new();
    for (i, delay) in delays.into_iter().enumerate() {
        if i >= 40 && seen.len() >= 2 {
            break;
        }
        let id = env.id(&format!("k{i}"));
        let log = std::fs::File::create(env.dir.join("create.log")).unwrap();
        let mut child = Command::new(BIN)
            .arg("--root")
            .arg(&env.root)
            .args(["create", "--bundle", b.path_str(), &id])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        // From before the state exists to after create returned.
        std::thread::sleep(delay);
        let _ = child.kill();
        let status = child.wait().unwrap();
        let state = env.cmd(&["state", &id]);
        let what = if status.success() {
            "completed".to_string()
        } else if state.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&state.stdout).unwrap();
            format!("killed, state {}", v["status"])
        } else {
            "killed, no state".to_string()
        };
        seen.insert(what);
        let out = env.cmd(&["delete", "--force", &id]);
        assert!(
            out.status.success(),
            "step {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        env.assert_nothing_left(&id);
        let debris: Vec<_> = std::fs::read_dir(&env.root)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(
            debris.is_empty(),
            "step {i}: left in the state root: {debris:?}"
        );
        // And the id is free again.
        let out = env.cmd(&["create", "--bundle", b.path_str(), &id]);
        assert!(
            out.status.success(),
            "step {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(env.cmd(&["delete", &id]).status.success());
        env.assert_nothing_left(&id);
    }
    eprintln!("moments seen: {seen:?}");
    assert!(
        seen.len() >= 2,
        "the kills all landed at the same moment: {seen:?}"
    );
}

#[test]
fn an_init_killed_behind_our_back_is_stopped() {
    let env = Env::new("behind");
    let b = env.bundle("b", &["sleep", "1000"]);
    let id = env.id("c");
    let pid = env.run_detached(&b, &id);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    let deadline = std::time::Instant::now() + patience(Duration::from_secs(5));
    while env.status(&id) != "stopped" {
        assert!(
            std::time::Instant::now() < deadline,
            "still {}",
            env.status(&id)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(env.state(&id)["pid"], 0);
    let out = env.cmd(&["kill", &id, "TERM"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not running"));
    assert!(env.cmd(&["delete", &id]).status.success());
    env.assert_nothing_left(&id);
}

#[test]
fn a_reused_pid_is_never_signalled() {
    let env = Env::new("reuse");
    let b = env.bundle("b", &["sleep", "1000"]);
    let id = env.id("c");
    assert!(
        env.cmd(&["create", "--bundle", b.path_str(), &id])
            .status
            .success()
    );
    // An unrelated process takes the place of the init in the state (as if the init died and
    // its pid was given to someone else): same pid field, different start time.
    // Start times count clock ticks (10 ms): a real reuse comes ticks later, after the pid
    // space wrapped; here the bystander must at least not start in the init's tick.
    std::thread::sleep(Duration::from_millis(50));
    let mut bystander = Command::new("sleep").arg("1000").spawn().unwrap();
    env.edit_state(&id, |st| st["pid"] = json!(bystander.id()));
    assert_eq!(
        env.status(&id),
        "stopped",
        "a pid with another start time is not our init"
    );
    assert!(!env.cmd(&["kill", &id, "KILL"]).status.success());
    assert!(env.cmd(&["delete", &id]).status.success());
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        bystander.try_wait().unwrap().is_none(),
        "the bystander was signalled"
    );
    bystander.kill().unwrap();
    bystander.wait().unwrap();
    // delete still removed everything of the container, its real init included.
    env.assert_nothing_left(&id);
}

#[test]
fn a_busy_cgroup_is_retried_then_reported_and_the_delete_can_be_repeated() {
    let env = Env::new("busy");
    let b = env.bundle("b", &["sleep", "1000"]);
    let id = env.id("c");
    env.run_detached(&b, &id);
    // A process of the test's own, put into the container's cgroup in one v1 hierarchy only
    // (the last the state lists): delete kills what is in the container's cgroup as its first
    // hierarchy shows it (and through cgroup2's cgroup.kill), so this one lingers and keeps
    // its directory busy.
    let st: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.root.join(&id).join("state.json")).unwrap())
            .unwrap();
    let v1: Vec<&str> = st["cgroup"]["dirs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["v2"] == false)
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    if v1.len() < 2 {
        eprintln!(
            "fewer than two v1 hierarchies: delete kills every process of the cgroup; nothing can linger"
        );
        assert!(env.cmd(&["delete", "--force", &id]).status.success());
        return;
    }
    let mut lingering = Command::new("sleep").arg("1000").spawn().unwrap();
    let target = std::path::Path::new(v1.last().unwrap());
    std::fs::write(target.join("cgroup.procs"), lingering.id().to_string()).unwrap();
    let t = std::time::Instant::now();
    let out = env.cmd(&["delete", "--force", &id]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("remove") && err.contains("busy"), "{err}");
    assert!(
        t.elapsed() >= Duration::from_secs(1),
        "retried for a while before giving up"
    );
    assert_eq!(
        env.status(&id),
        "stopped",
        "the state stays for another delete"
    );
    lingering.kill().unwrap();
    lingering.wait().unwrap();
    let out = env.cmd(&["delete", "--force", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.assert_nothing_left(&id);
}
