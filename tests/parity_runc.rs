//! Parity with runc: the same bundles run under runc and under cofferdam, and what the
//! container saw is compared. runc is installed by scripts/test.sh; without it this test says
//! so and checks nothing.

mod common;

use std::process::Command;

use common::*;
use serde_json::json;

const PROBE: &str = "echo uid=$(id -u) gid=$(id -g) groups=$(id -G); echo host=$(hostname); echo pid=$$; \
    echo cwd=$(pwd); echo umask=$(umask); ulimit -n; ulimit -Hn; \
    grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status; \
    ls -l /dev | awk '{print $1, $NF}' | sort; \
    awk '{print $2, $3}' /proc/mounts | sort; \
    env | grep -v -e '^PWD=' -e '^SHLVL=' | sort; \
    cat /proc/self/oom_score_adj; touch /probe 2>/dev/null && echo root-rw || echo root-ro";

fn runc() -> Option<&'static str> {
    Command::new("runc")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| "runc")
}

/// Run `b` under runc with its own state root and cgroup, returning stdout.
fn run_runc(env: &Env, b: &mut Bundle, id: &str) -> String {
    b.config["linux"]["cgroupsPath"] = json!(format!("{}/runc-{id}", env.cgroup_prefix));
    b.save();
    let out = Command::new("runc")
        .args([
            "--root",
            env.dir.join("runc-state").to_str().unwrap(),
            "run",
            "--bundle",
            b.path_str(),
            id,
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "runc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    b.config["linux"]["cgroupsPath"] = json!(format!("{}/cd-{id}", env.cgroup_prefix));
    b.save();
    String::from_utf8(out.stdout).unwrap()
}

fn compare(name: &str, tweak: impl Fn(&mut serde_json::Value)) {
    if runc().is_none() {
        eprintln!("runc is not installed: parity not checked (scripts/test.sh installs it)");
        return;
    }
    let env = Env::new(name);
    let mut b = env.bundle("b", &["sh", "-c", PROBE]);
    tweak(&mut b.config);
    b.save();
    let id = env.id("c");
    let theirs = run_runc(&env, &mut b, &format!("{id}-runc"));
    env.sweep_cgroups();
    let ours = env.run_ok(&b, &id);
    let (t, o): (Vec<&str>, Vec<&str>) = (theirs.lines().collect(), ours.lines().collect());
    let only_runc: Vec<_> = t.iter().filter(|l| !o.contains(l)).collect();
    let only_ours: Vec<_> = o.iter().filter(|l| !t.contains(l)).collect();
    assert!(
        only_runc.is_empty() && only_ours.is_empty(),
        "{name}: the container saw different things.\nonly under runc: {only_runc:#?}\nonly under cofferdam: {only_ours:#?}"
    );
    env.assert_nothing_left(&id);
}

#[test]
fn default_spec_matches_runc() {
    compare("parity-default", |_| {});
}

#[test]
fn user_rlimits_and_mounts_match_runc() {
    compare("parity-user", |c| {
        c["process"]["user"] =
            json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 20], "umask": 18});
        c["process"]["cwd"] = json!("/tmp");
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}]);
        c["process"]["oomScoreAdj"] = json!(100);
        c["process"]["noNewPrivileges"] = json!(false);
        c["process"]["env"] = json!(["PATH=/bin", "A=1", "B=two words"]);
        c["root"]["readonly"] = json!(false);
        c["hostname"] = json!("parity");
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
        c["linux"]["devices"] =
            json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438}]);
    });
}
