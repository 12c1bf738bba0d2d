//! The newer fields of the runtime spec (1.2, 1.3), each proved on a real container, mostly
//! from the host: `process.scheduler` and `process.ioPriority` (chrt, ionice, /proc/PID/stat),
//! `process.execCPUAffinity` (Cpus_allowed_list of exec'd processes), `linux.personality`
//! (`uname -m`), `linux.memoryPolicy` (numa_maps), `linux.netDevices` (a dummy device moved in
//! and renamed), the `rnorelatime` mount option; and bad values refused with their field named
//! and nothing left.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;
use serde_json::{Value, json};

/// `exec -d` in container `id` with `extra` options before the id (and `cmd` after it);
/// returns the exec'd process's pid.
fn exec_detached(env: &Env, id: &str, extra: &[&str], cmd: &[&str]) -> i32 {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let pidfile = env.dir.join(format!("exec-{n}.pid"));
    let mut args = vec!["exec", "-d", "--pid-file", pidfile.to_str().unwrap()];
    args.extend(extra);
    args.push(id);
    args.extend(cmd);
    let out = env.cmd(&args);
    assert!(out.status.success(), "exec {args:?}: {}", stderr_text(&out));
    std::fs::read_to_string(&pidfile).unwrap().parse().unwrap()
}

/// Run `cmd` in container `id` (`exec`, foreground) and return its stdout.
fn exec_out(env: &Env, id: &str, extra: &[&str], cmd: &[&str]) -> String {
    let mut args = vec!["exec"];
    args.extend(extra);
    args.push(id);
    args.extend(cmd);
    let out = env.cmd(&args);
    assert!(out.status.success(), "exec {args:?}: {}", stderr_text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A process.json for `exec -p`.
fn process_file(env: &Env, name: &str, extra: Value) -> PathBuf {
    let mut p = json!({
        "args": ["sleep", "1000"],
        "env": ["PATH=/bin"],
        "cwd": "/",
        "user": {"uid": 0, "gid": 0}
    });
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    let path = env.dir.join(name);
    std::fs::write(&path, serde_json::to_vec(&p).unwrap()).unwrap();
    path
}

/// What the host's `chrt -p` (util-linux) says of a process.
fn chrt(pid: i32) -> String {
    let out = Command::new("chrt")
        .args(["-p", &pid.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "chrt -p {pid}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The nice value of a process (field 19 of /proc/PID/stat).
fn nice(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    // Fields after the command start at 3 (state).
    fields[19 - 3].parse().unwrap()
}

/// The one line of /proc/PID/status that starts with `key`.
fn status_line(pid: i32, key: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn scheduler_reaches_the_process_and_exec_takes_its_own() {
    let env = Env::new("sched");
    let mut b = env.bundle("b", &["sleep", "1000"]);
    // The flag is spelled as the spec spells it (oci-spec 0.9 reads it otherwise).
    b.config["process"]["scheduler"] = json!({
        "policy": "SCHED_BATCH", "nice": 7, "flags": ["SCHED_FLAG_RESET_ON_FORK"]
    });
    b.save();
    let id = env.id("c");
    let init = env.run_detached(&b, &id);
    let c = chrt(init);
    assert!(c.contains("SCHED_BATCH|SCHED_RESET_ON_FORK"), "{c}");
    assert_eq!(nice(init), 7);

    // An exec takes the container's scheduler (runc's rule)...
    let same = exec_detached(&env, &id, &[], &["sleep", "1000"]);
    assert!(chrt(same).contains("SCHED_BATCH"), "{}", chrt(same));
    assert_eq!(nice(same), 7);
    // ...unless its process.json has one.
    let p = process_file(
        &env,
        "idle.json",
        json!({"scheduler": {"policy": "SCHED_IDLE"}}),
    );
    let own = exec_detached(&env, &id, &["-p", p.to_str().unwrap()], &[]);
    let c = chrt(own);
    assert!(
        c.contains("SCHED_IDLE") && !c.contains("RESET_ON_FORK"),
        "{c}"
    );
    assert!(env.cmd(&["delete", "--force", &id]).status.success());
    env.assert_nothing_left(&id);

    // SCHED_DEADLINE with its three times (ns), as chrt reads them back.
    let mut b = env.bundle("dl", &["sleep", "1000"]);
    b.config["process"]["scheduler"] = json!({
        "policy": "SCHED_DEADLINE", "runtime": 10_000_000, "deadline": 50_000_000,
        "period": 100_000_000
    });
    b.save();
    let id = env.id("dl");
    let init = env.run_detached(&b, &id);
    let c = chrt(init);
    assert!(c.contains("SCHED_DEADLINE"), "{c}");
    assert!(c.contains("10000000/50000000/100000000"), "{c}");
    assert!(env.cmd(&["delete", "--force", &id]).status.success());
    env.assert_nothing_left(&id);
}

#[test]
fn io_priority_reaches_the_process_tree() {
    let env = Env::new("ioprio");
    let ionice = |pid: i32| {
        let out = Command::new("ionice")
            .args(["-p", &pid.to_string()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let ours = ionice(std::process::id() as i32);
    // Inside: the init (pid 1) and a child it forked (busybox `ionice -p 0` asks for itself).
    let mut b = env.bundle("f", &["sh", "-c", "ionice -p 1; ionice -p 0"]);
    b.config["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6});
    b.save();
    let id = env.id("f");
    let out = env.run_ok(&b, &id);
    assert_eq!(out, "best-effort: prio 6\nbest-effort: prio 6\n");
    env.assert_nothing_left(&id);

    // From the host, on a running container and on processes exec'd into it.
    let mut b = env.bundle("b", &["sleep", "1000"]);
    b.config["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6});
    b.save();
    let id = env.id("c");
    let init = env.run_detached(&b, &id);
    assert_eq!(ionice(init), "best-effort: prio 6");
    // The runtime's caller is untouched (it shares our process group).
    assert_eq!(ionice(std::process::id() as i32), ours);
    // An exec gets it too; a process.json of its own wins.
    let same = exec_detached(&env, &id, &[], &["sleep", "1000"]);
    assert_eq!(ionice(same), "best-effort: prio 6");
    let p = process_file(
        &env,
        "idle.json",
        json!({"ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 0}}),
    );
    let own = exec_detached(&env, &id, &["-p", p.to_str().unwrap()], &[]);
    assert_eq!(ionice(own), "idle");
    assert!(env.cmd(&["delete", "--force", &id]).status.success());
    env.assert_nothing_left(&id);
}

#[test]
fn personality_linux32_makes_uname_say_i686() {
    let env = Env::new("persona");
    let mut b = env.bundle("b", &["sleep", "1000"]);
    b.config["linux"]["personality"] = json!({"domain": "LINUX32"});
    b.save();
    let id = env.id("c");
    let init = env.run_detached(&b, &id);
    let persona = std::fs::read_to_string(format!("/proc/{init}/personality")).unwrap();
    assert_eq!(persona.trim(), "00000008");
    // exec'd processes get it too, as with runc.
    assert_eq!(exec_out(&env, &id, &[], &["uname", "-m"]).trim(), "i686");
    assert!(env.cmd(&["delete", "--force", &id]).status.success());

    let mut b = env.bundle("l", &["uname", "-m"]);
    b.config["linux"]["personality"] = json!({"domain": "LINUX32"});
    b.save();
    let id = env.id("l");
    assert_eq!(env.run_ok(&b, &id).trim(), "i686");
    b.config["linux"]["personality"] = json!({"domain": "LINUX"});
    b.save();
    let id2 = env.id("l2");
    assert_eq!(env.run_ok(&b, &id2).trim(), std::env::consts::ARCH);
    env.assert_nothing_left(&id);
    env.assert_nothing_left(&id2);
}

#[test]
fn memory_policy_binds_and_interleaves() {
    let env = Env::new("mempol");
    let online = std::fs::read_to_string("/sys/devices/system/node/online").unwrap();
    let node = online.trim().split([',', '-']).next().unwrap().to_string();
    let mut b = env.bundle("b", &["sleep", "1000"]);
    b.config["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": node});
    b.save();
    let id = env.id("c");
    let init = env.run_detached(&b, &id);
    // numa_maps shows the task's policy for every mapping that has none of its own.
    let maps = std::fs::read_to_string(format!("/proc/{init}/numa_maps")).unwrap();
    let first = maps.lines().next().unwrap();
    assert!(first.contains(&format!(" bind:{node} ")), "{first}");
    // An exec'd process is bound too (it reads its own numa_maps).
    let out = exec_out(&env, &id, &[], &["head", "-n1", "/proc/self/numa_maps"]);
    assert!(out.contains(&format!(" bind:{node} ")), "{out}");
    assert!(env.cmd(&["delete", "--force", &id]).status.success());

    let mut b = env.bundle("i", &["head", "-n1", "/proc/self/numa_maps"]);
    b.config["linux"]["memoryPolicy"] =
        json!({"mode": "MPOL_INTERLEAVE", "nodes": node, "flags": ["MPOL_F_STATIC_NODES"]});
    b.save();
    let id2 = env.id("i");
    let out = env.run_ok(&b, &id2);
    assert!(
        out.contains(&format!(" interleave=static:{node} ")),
        "{out}"
    );
    env.assert_nothing_left(&id);
    env.assert_nothing_left(&id2);
}

#[test]
fn exec_cpu_affinity_initial_and_final() {
    let env = Env::new("affinity");
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    if !online.trim().contains(['-', ',']) {
        eprintln!("skipped: one CPU online ({online})");
        return;
    }
    let cpus = |pid: i32| status_line(pid, "Cpus_allowed_list:");
    let all = format!("Cpus_allowed_list:\t{}", online.trim());
    let mut b = env.bundle("b", &["sleep", "1000"]);
    b.config["process"]["execCPUAffinity"] = json!({"initial": "0", "final": "1"});
    b.save();
    let id = env.id("c");
    let init = env.run_detached(&b, &id);
    // Not the init's (the spec says so).
    assert_eq!(cpus(init), all);
    let grep = ["grep", "Cpus_allowed_list", "/proc/self/status"];
    // An exec: born on 0, moved to 1 once in the container's cgroup.
    assert_eq!(
        exec_out(&env, &id, &[], &grep).trim(),
        "Cpus_allowed_list:\t1"
    );
    // A process.json's own: with only `initial`, the process keeps it.
    let p = process_file(
        &env,
        "i.json",
        json!({"execCPUAffinity": {"initial": "1"}, "args": grep}),
    );
    let out = exec_out(&env, &id, &["-p", p.to_str().unwrap()], &[]);
    // Before Linux 6.2, joining a cpuset cgroup resets a task's affinity to the cpuset's, so
    // `initial` alone cannot outlive the move there (runc's own test leaves this case out).
    if kernel_at_least(6, 2) {
        assert_eq!(out.trim(), "Cpus_allowed_list:\t1");
    } else {
        assert!(
            out.trim() == "Cpus_allowed_list:\t1" || out.trim() == all,
            "{out}"
        );
    }
    // The spec's spelling with spaces and an empty `final` ("not set").
    let p = process_file(
        &env,
        "s.json",
        json!({"execCPUAffinity": {"initial": " 0 , 1 ", "final": ""}, "args": grep}),
    );
    let out = exec_out(&env, &id, &["-p", p.to_str().unwrap()], &[]);
    assert_eq!(out.trim(), all);
    assert!(env.cmd(&["delete", "--force", &id]).status.success());
    env.assert_nothing_left(&id);

    // With no execCPUAffinity, an exec'd process (and the init) get every CPU of the
    // container, whatever CPUs the runtime itself was run on (runc's reset).
    let b = env.bundle("r", &["sleep", "1000"]);
    let id = env.id("r");
    let mut c = Command::new("taskset");
    c.args(["-c", "0", common::BIN, "--root", env.root.to_str().unwrap()]);
    c.args(["run", "-d", "--bundle", b.path_str(), &id]);
    let out = env.output(c);
    assert!(out.status.success(), "{}", stderr_text(&out));
    let init = env.state(&id)["pid"].as_i64().unwrap() as i32;
    assert_eq!(cpus(init), all);
    let mut c = Command::new("taskset");
    c.args([
        "-c",
        "0",
        common::BIN,
        "--root",
        env.root.to_str().unwrap(),
        "exec",
        &id,
    ]);
    c.args(grep);
    let out = env.output(c);
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), all);
    assert!(env.cmd(&["delete", "--force", &id]).status.success());
    env.assert_nothing_left(&id);
}

/// A virtual network device on the host that nothing uses, removed when dropped if it is
/// still there: a dummy, or where the kernel has no dummy driver (this project's VM), an ifb.
struct Dummy(String);

impl Dummy {
    fn new(name: String) -> Dummy {
        let d = Dummy(name);
        let made = Command::new("ip")
            .args(["link", "add", &d.0, "type", "dummy"])
            .output()
            .unwrap();
        if !made.status.success() {
            ip(&["link", "add", &d.0, "type", "ifb"]);
        }
        d
    }

    fn on_host(&self) -> bool {
        Command::new("ip")
            .args(["link", "show", &self.0])
            .output()
            .unwrap()
            .status
            .success()
    }
}

impl Drop for Dummy {
    fn drop(&mut self) {
        if self.on_host() {
            let _ = Command::new("ip").args(["link", "del", &self.0]).output();
        }
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn net_devices_move_in_renamed_and_go_with_the_namespace() {
    let env = Env::new("netdev");
    let pid = std::process::id() % 100_000;
    let a = Dummy::new(format!("cfda{pid}"));
    let t = Dummy::new(format!("cfdt{pid}"));
    // A permanent global address moves with the device; a link-local one does not.
    ip(&["addr", "add", "10.199.77.5/24", "dev", &a.0]);
    ip(&[
        "addr",
        "add",
        "169.254.77.5/16",
        "scope",
        "link",
        "dev",
        &a.0,
    ]);
    let mut b = env.bundle("b", &["sleep", "1000"]);
    b.config["linux"]["netDevices"] = json!({
        a.0.clone(): {"name": "eth7"},
        t.0.clone(): {"name": "ctr%d"}
    });
    b.save();
    let id = env.id("c");
    env.run_detached(&b, &id);
    assert!(
        !a.on_host() && !t.on_host(),
        "the devices are still on the host"
    );
    let link = exec_out(&env, &id, &[], &["ip", "addr", "show", "eth7"]);
    assert!(link.contains("eth7:") && link.contains(",UP"), "{link}");
    assert!(link.contains("inet 10.199.77.5/24"), "{link}");
    assert!(!link.contains("169.254.77.5"), "{link}");
    // The template is completed by the kernel: the first free number.
    let links = exec_out(&env, &id, &[], &["ip", "link"]);
    assert!(links.contains(": ctr0:"), "{links}");
    // delete moves nothing back (the spec forbids it): a virtual device goes with the
    // namespace, a physical one would be returned by the kernel.
    assert!(env.cmd(&["delete", "--force", &id]).status.success());
    env.assert_nothing_left(&id);
    assert!(!a.on_host() && !t.on_host());

    // In a new user namespace the init makes its network namespace only after create has
    // written its maps ('G'): the move comes after that.
    let u = Dummy::new(format!("cfdu{pid}"));
    ip(&["addr", "add", "10.199.78.5/24", "dev", &u.0]);
    let mut b = env.bundle("u", &["ip", "addr", "show", "eth8"]);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
    b.config["linux"]["netDevices"] = json!({u.0.clone(): {"name": "eth8"}});
    b.save();
    let id = env.id("u");
    let out = env.run_ok(&b, &id);
    assert!(
        out.contains("eth8:") && out.contains("inet 10.199.78.5/24"),
        "{out}"
    );
    env.assert_nothing_left(&id);
    assert!(!u.on_host());
}

#[test]
fn rnorelatime_clears_relatime_recursively() {
    let env = Env::new("rnorelat");
    let mut b = env.bundle("b", &["cat", "/proc/mounts"]);
    // /top and /top/inner are strictatime; /view binds both with rnorelatime, which clears
    // relatime (the atime field's zero) as runc does: they are relatime there, where
    // strictatime was taken before; after rnoatime, it leaves noatime.
    let top = b.rootfs().join("top");
    std::fs::create_dir_all(top.join("inner")).unwrap();
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    for d in ["/top", "/top/inner"] {
        mounts.push(json!({"destination": d, "type": "tmpfs", "source": "tmpfs",
                           "options": ["strictatime"]}));
    }
    mounts.push(
        json!({"destination": "/view", "type": "bind", "source": top,
                       "options": ["rbind", "rnorelatime"]}),
    );
    mounts.push(
        json!({"destination": "/noat", "type": "bind", "source": top,
                       "options": ["rbind", "rnoatime", "rnorelatime"]}),
    );
    b.save();
    let id = env.id("c");
    let out = env.run_ok(&b, &id);
    let mounts = parse_mounts(&out);
    let opts = |mp: &str| {
        mounts
            .iter()
            .rev()
            .find(|m| m.0 == mp)
            .unwrap_or_else(|| panic!("{mp} not mounted: {out}"))
            .2
            .split(',')
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let atime = |mp: &str| {
        let o = opts(mp);
        ["relatime", "noatime"]
            .into_iter()
            .find(|a| o.iter().any(|x| x == a))
            .unwrap_or("strictatime")
    };
    assert_eq!(atime("/top"), "strictatime");
    assert_eq!(atime("/top/inner"), "strictatime");
    assert_eq!(atime("/view"), "relatime");
    assert_eq!(atime("/view/inner"), "relatime");
    assert_eq!(atime("/noat"), "noatime");
    assert_eq!(atime("/noat/inner"), "noatime");
    env.assert_nothing_left(&id);
}

#[test]
fn bad_values_name_their_field_and_leave_nothing() {
    let env = Env::new("fieldbad");
    let pid = std::process::id() % 100_000;
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        (
            "process",
            "scheduler",
            json!({"policy": "SCHED_OTHER", "priority": 5}),
            "process.scheduler.priority",
        ),
        (
            "process",
            "scheduler",
            json!({"policy": "SCHED_BATCH", "nice": 40}),
            "process.scheduler.nice",
        ),
        (
            "process",
            "scheduler",
            json!({"policy": "SCHED_OTHER", "runtime": 1000}),
            "process.scheduler.runtime",
        ),
        (
            "process",
            "scheduler",
            json!({"policy": "SCHED_DEADLINE", "runtime": 5000, "deadline": 1000}),
            "SCHED_DEADLINE",
        ),
        (
            "process",
            "scheduler",
            json!({"policy": "SCHED_FIFO", "priority": 0}),
            "process.scheduler.priority",
        ),
        (
            "process",
            "ioPriority",
            json!({"class": "IOPRIO_CLASS_BE", "priority": 9}),
            "process.ioPriority.priority",
        ),
        (
            "process",
            "execCPUAffinity",
            json!({"initial": "3-1"}),
            "process.execCPUAffinity.initial",
        ),
        (
            "linux",
            "memoryPolicy",
            json!({"mode": "MPOL_BIND"}),
            "linux.memoryPolicy.nodes",
        ),
        (
            "linux",
            "memoryPolicy",
            json!({"mode": "MPOL_LOCAL", "nodes": "0"}),
            "linux.memoryPolicy.nodes",
        ),
        (
            "linux",
            "memoryPolicy",
            json!({"mode": "MPOL_INTERLEAVE", "nodes": "0",
            "flags": ["MPOL_F_NUMA_BALANCING"]}),
            "linux.memoryPolicy.flags",
        ),
        // Well formed, but no such node: refused by the kernel in the init, said clearly.
        (
            "linux",
            "memoryPolicy",
            json!({"mode": "MPOL_BIND", "nodes": "63"}),
            "linux.memoryPolicy",
        ),
        (
            "linux",
            "netDevices",
            json!({format!("cfdx{pid}"): {"name": "eth7"}}),
            "no network device",
        ),
        (
            "linux",
            "netDevices",
            json!({"lo": {"name": "a/b"}}),
            "invalid device name",
        ),
        (
            "linux",
            "netDevices",
            json!({"lo": {}}),
            "already in the container's network namespace",
        ),
    ];
    for (i, (section, field, value, needle)) in cases.into_iter().enumerate() {
        let mut b = env.bundle(&format!("b{i}"), &["true"]);
        b.config[section][field] = value;
        b.save();
        let id = env.id(&format!("c{i}"));
        let (code, out, err) = env.run(&b, &id);
        assert_eq!(code, 1, "{field} case {i}: {out}{err}");
        assert!(err.contains(needle), "{field} case {i}: {err}");
        env.assert_nothing_left(&id);
    }
    // netDevices without a network namespace of the container's own.
    let mut b = env.bundle("n", &["true"]);
    b.config["linux"]["netDevices"] = json!({"lo": {"name": "x0"}});
    let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "network");
    b.save();
    let id = env.id("n");
    let (code, _, err) = env.run(&b, &id);
    assert_eq!(code, 1);
    assert!(
        err.contains("linux.netDevices needs a network namespace"),
        "{err}"
    );
    env.assert_nothing_left(&id);
    // A bad process.json of exec: refused before its fork, the container untouched.
    let b = env.bundle("e", &["sleep", "1000"]);
    let id = env.id("e");
    env.run_detached(&b, &id);
    let p = process_file(
        &env,
        "bad.json",
        json!({"scheduler": {"policy": "SCHED_IDLE", "nice": 3, "priority": 1}}),
    );
    let out = env.cmd(&["exec", "-p", p.to_str().unwrap(), &id]);
    assert!(!out.status.success());
    assert!(
        stderr_text(&out).contains("process.scheduler.priority"),
        "{}",
        stderr_text(&out)
    );
    assert_eq!(env.status(&id), "running");
    assert!(env.cmd(&["delete", "--force", &id]).status.success());
    env.assert_nothing_left(&id);
}

#[test]
fn features_list_the_fields() {
    let env = Env::new("featfield");
    let out = env.cmd(&["features"]);
    assert!(out.status.success());
    let f: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(f["linux"]["netDevices"]["enabled"], true);
    let modes = f["linux"]["memoryPolicy"]["modes"].as_array().unwrap();
    assert!(modes.iter().any(|m| m == "MPOL_BIND"));
    let ann = &f["annotations"];
    for k in [
        "process.scheduler.policy",
        "process.scheduler.flags",
        "process.ioPriority.class",
        "process.execCPUAffinity",
        "linux.personality.domain",
    ] {
        assert!(ann[format!("io.github.cofferdam.{k}")].is_string(), "{k}");
    }
    assert!(
        f["mountOptions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "rnorelatime")
    );
}

/// Whether the running kernel is at least `major`.`minor`.
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = nix::sys::utsname::uname().unwrap();
    let r = release.release().to_string_lossy().into_owned();
    let mut it = r.split(['.', '-']).map(|p| p.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0)) >= (major, minor)
}
