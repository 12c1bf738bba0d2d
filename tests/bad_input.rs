//! Bad input: each case gets a clear error that names the problem, exit status 1, and leaves
//! no state dir, cgroup, mount or process behind.

mod common;

use common::*;
use serde_json::json;

/// Create `b` as `id`, expect failure with `needle` in the message, and nothing left.
fn expect_failure(env: &Env, b: &Bundle, id: &str, needle: &str) {
    let out = env.cmd(&["create", "--bundle", b.path_str(), id]);
    let err = stderr_text(&out);
    assert_eq!(out.status.code(), Some(1), "create {id} should fail: {err}");
    assert!(
        err.contains(needle),
        "error for {id} should mention {needle:?}: {err}"
    );
    env.assert_nothing_left(id);
}

#[test]
fn malformed_config_names_line_and_column() {
    let env = Env::new("badjson");
    let b = env.bundle("b", &["true"]);
    std::fs::write(
        b.path.join("config.json"),
        "{\n  \"ociVersion\": \"1.0.0\",\n  \"process\": {\"args\": [\"true\",]}\n}\n",
    )
    .unwrap();
    let id = env.id("c");
    expect_failure(&env, &b, &id, "line 3, column");
    let err = String::from_utf8_lossy(&env.cmd(&["create", "--bundle", b.path_str(), &id]).stderr)
        .into_owned();
    assert!(err.contains("config.json"), "{err}");
}

#[test]
fn wrong_types_are_malformed_too() {
    let env = Env::new("badtype");
    let mut b = env.bundle("b", &["true"]);
    b.config["process"]["user"]["uid"] = json!("root");
    b.save();
    let id = env.id("c");
    expect_failure(&env, &b, &id, "malformed");
}

#[test]
fn missing_config() {
    let env = Env::new("noconfig");
    let b = env.bundle("b", &["true"]);
    std::fs::remove_file(b.path.join("config.json")).unwrap();
    let id = env.id("c");
    expect_failure(&env, &b, &id, "config.json");
}

#[test]
fn unsupported_oci_version() {
    let env = Env::new("version");
    let mut b = env.bundle("b", &["true"]);
    b.config["ociVersion"] = json!("2.0.0");
    b.save();
    let id = env.id("c");
    expect_failure(&env, &b, &id, "unsupported ociVersion \"2.0.0\"");
}

#[test]
fn missing_rootfs() {
    let env = Env::new("norootfs");
    let mut b = env.bundle("b", &["true"]);
    b.config["root"]["path"] = json!("nowhere");
    b.save();
    let id = env.id("c");
    expect_failure(&env, &b, &id, "nowhere does not exist");
}

#[test]
fn missing_or_empty_args() {
    let env = Env::new("noargs");
    let mut b = env.bundle("b", &["true"]);
    b.config["process"].as_object_mut().unwrap().remove("args");
    b.save();
    let id = env.id("c");
    expect_failure(&env, &b, &id, "process.args");
    b.config["process"]["args"] = json!([]);
    b.save();
    expect_failure(&env, &b, &id, "process.args");
}

#[test]
fn executable_not_found_fails_at_create() {
    let env = Env::new("noexe");
    let b = env.bundle("b", &["no-such-program"]);
    let id = env.id("c");
    expect_failure(&env, &b, &id, "executable file not found in $PATH");
}

/// runc's words for a program that cannot be run, from which engines derive the exit status
/// (Docker: 127 for "no such file or directory" or "not found", 126 for "permission denied"):
/// a file that is there but not executable, or a directory, must not read as missing.
#[test]
fn a_program_that_cannot_run_is_named_in_runcs_words() {
    let env = Env::new("noexe2");
    for (name, arg0, want, not) in [
        (
            "missing",
            "/no/such",
            "exec /no/such: no such file or directory",
            "denied",
        ),
        (
            "notexec",
            "/etc/passwd",
            "exec /etc/passwd: permission denied",
            "no such",
        ),
        ("dir", "/etc", "exec /etc: permission denied", "no such"),
    ] {
        let b = env.bundle(name, &[arg0]);
        let id = env.id(name);
        let out = env.cmd(&["create", "--bundle", b.path_str(), &id]);
        assert_eq!(out.status.code(), Some(1));
        let err = stderr_text(&out);
        assert!(err.contains(want) && !err.contains(not), "{name}: {err}");
        env.assert_nothing_left(&id);
        // exec says the same of the same program.
        let run = env.bundle(&format!("{name}-r"), &["sleep", "100"]);
        let rid = env.id(&format!("{name}-r"));
        env.run_detached(&run, &rid);
        let out = env.cmd(&["exec", &rid, arg0]);
        assert_eq!(out.status.code(), Some(255));
        let err = stderr_text(&out);
        assert!(
            err.contains(want) && !err.contains(not),
            "exec {name}: {err}"
        );
        assert!(env.cmd(&["delete", "--force", &rid]).status.success());
        env.assert_nothing_left(&rid);
    }
}

#[test]
fn bad_ids() {
    let env = Env::new("badid");
    let b = env.bundle("b", &["true"]);
    for (id, why) in [
        ("", "empty"),
        ("a/b", "'/'"),
        ("..", "'..'"),
        ("x..y", "'..'"),
        ("../etc", "'..'"),
    ] {
        let out = env.cmd(&["create", "--bundle", b.path_str(), id]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{id:?}: {err}");
        assert!(
            err.contains("invalid container id") && err.contains(why),
            "{id:?}: {err}"
        );
    }
    assert!(!env.root.exists() || std::fs::read_dir(&env.root).unwrap().count() == 0);
    assert!(env.cgroup_dirs().is_empty());
}

#[test]
fn duplicate_id_is_refused_and_the_first_survives() {
    let env = Env::new("dupid");
    let b = env.bundle("b", &["sleep", "100"]);
    let id = env.id("c");
    assert!(
        env.cmd(&["create", "--bundle", b.path_str(), &id])
            .status
            .success()
    );
    let pid = env.state(&id)["pid"].clone();
    let out = env.cmd(&["create", "--bundle", b.path_str(), &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    // The first container is untouched.
    assert_eq!(env.state(&id)["pid"], pid);
    assert_eq!(env.status(&id), "created");
    assert!(env.cmd(&["delete", &id]).status.success());
    env.assert_nothing_left(&id);
}

#[test]
fn missing_mount_source() {
    let env = Env::new("nosrc");
    let mut b = env.bundle("b", &["true"]);
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/data", "type": "bind", "source": "/no/such/dir", "options": ["rbind"]
    }));
    b.save();
    let id = env.id("c");
    expect_failure(
        &env,
        &b,
        &id,
        "mount source /no/such/dir for /data does not exist",
    );
}

#[test]
fn failure_inside_the_init_names_step_and_path_and_cleans_up() {
    let env = Env::new("initfail");
    let mut b = env.bundle("b", &["true"]);
    // An unknown filesystem type fails only in the init, after cgroups and state exist.
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/weird", "type": "nosuchfs", "source": "none"
    }));
    b.save();
    let id = env.id("c");
    expect_failure(&env, &b, &id, "mount nosuchfs /weird");
    let err = String::from_utf8_lossy(&env.cmd(&["create", "--bundle", b.path_str(), &id]).stderr)
        .into_owned();
    assert!(err.contains("No such device"), "errno is reported: {err}");
    env.assert_nothing_left(&id);
}

#[test]
fn bad_namespace_path() {
    let env = Env::new("badns");
    let mut b = env.bundle("b", &["true"]);
    b.config.as_object_mut().unwrap().remove("hostname");
    b.config["linux"]["namespaces"] = json!([
        {"type": "pid"}, {"type": "mount"}, {"type": "network", "path": "/proc/self/ns/uts"}
    ]);
    b.save();
    let id = env.id("c");
    expect_failure(&env, &b, &id, "is a namespace of type uts, not net");
    b.config["linux"]["namespaces"] =
        json!([{"type": "pid"}, {"type": "mount"}, {"type": "network", "path": "/nope"}]);
    b.save();
    expect_failure(&env, &b, &id, "/nope");
}

#[test]
fn commands_on_unknown_containers_fail_clearly() {
    let env = Env::new("unknown");
    for cmd in [
        &["start", "ghost"][..],
        &["state", "ghost"],
        &["kill", "ghost"],
        &["delete", "ghost"],
    ] {
        let out = env.cmd(cmd);
        assert_eq!(out.status.code(), Some(1), "{cmd:?}");
        // runc's form: a logrus record on stderr, with the level engines and suites look for.
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("time=\"")
                && err.contains(" level=error msg=")
                && err.contains("ghost")
                && err.contains("does not exist"),
            "{cmd:?}: {err}"
        );
        // With --log FILE the record goes there, and stderr has the plain message.
        let log = env.dir.join("ghost.log");
        let out = env.cmd(&[&["--log", log.to_str().unwrap()][..], cmd].concat());
        assert_eq!(out.status.code(), Some(1), "{cmd:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("error: container") && err.contains("does not exist"),
            "{err}"
        );
        let logged = std::fs::read_to_string(&log).unwrap();
        assert!(
            logged.contains("level=error") && logged.contains("ghost"),
            "{logged}"
        );
    }
    let out = env.cmd(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown command"));
    let out = env.cmd(&["kill", "ghost", "NOTASIGNAL"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid signal"));
}
