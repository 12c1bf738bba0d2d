//! Attacks from a config, an image or a local user that would reach the host (issue #10): each
//! test tries the attack against the real binary and checks from the host that it failed.
//! Sysctls that are not the container's own, ids that the kernel reads as -1 ("leave
//! unchanged": the process stays root), and input files that never end.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use cofferdam::spec::MAX_INPUT_BYTES;
use common::*;
use serde_json::json;

// ---- helpers ---------------------------------------------------------------------------------

/// The value of a sysctl as the host has it (the test runs in the host's namespaces).
fn host_sysctl(key: &str) -> String {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {path}: {e}"))
        .trim()
        .to_string()
}

/// A host sysctl an attack aims at: its value before, checked unchanged by [`Self::assert_same`],
/// and put back when dropped if a broken runtime changed it, so that a failing test does not
/// leave the machine (shared with other tests) altered.
struct HostSysctl {
    key: &'static str,
    before: String,
}

impl HostSysctl {
    fn new(key: &'static str) -> HostSysctl {
        HostSysctl {
            key,
            before: host_sysctl(key),
        }
    }

    /// A value for the attack that differs from the host's: a write would show.
    fn other(&self, a: &str, b: &str) -> String {
        if self.before == a { b } else { a }.to_string()
    }

    fn assert_same(&self, case: &str) {
        assert_eq!(
            host_sysctl(self.key),
            self.before,
            "{case}: the host's {} changed",
            self.key
        );
    }
}

impl Drop for HostSysctl {
    fn drop(&mut self) {
        if host_sysctl(self.key) != self.before {
            let path = format!("/proc/sys/{}", self.key.replace('.', "/"));
            let _ = std::fs::write(path, &self.before);
        }
    }
}

/// Run the binary as [`Env::cmd`] does, with two guards that only a regression meets: a 1 GiB
/// address space (an input read whole fails there at once instead of exhausting the machine,
/// and the error is not ours), and a 60 s watchdog (an open that blocks forever fails the test
/// instead of hanging the suite; the container it leaves is removed with the `Env`).
fn cmd_bounded(env: &Env, args: &[&str], stdin: Option<std::fs::File>) -> Output {
    static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (out_path, err_path) = (
        env.dir.join(format!(".bout-{n}")),
        env.dir.join(format!(".berr-{n}")),
    );
    let mut c = Command::new(BIN);
    c.arg("--root").arg(&env.root).args(args);
    c.stdin(stdin.map_or_else(Stdio::null, Stdio::from));
    // Files, not pipes: `create` hands its stdio to the container.
    c.stdout(std::fs::File::create(&out_path).unwrap());
    c.stderr(std::fs::File::create(&err_path).unwrap());
    // SAFETY: the closure runs between fork and exec and only calls setrlimit, which is
    // async-signal-safe.
    unsafe {
        c.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 1 << 30,
                rlim_max: 1 << 30,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = c.spawn().unwrap();
    let watchdog = Instant::now() + patience(Duration::from_secs(60));
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > watchdog {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?} still runs after 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = Output {
        status,
        stdout: std::fs::read(&out_path).unwrap_or_default(),
        stderr: std::fs::read(&err_path).unwrap_or_default(),
    };
    let _ = std::fs::remove_file(out_path);
    let _ = std::fs::remove_file(err_path);
    out
}

/// `create` of `b` must fail before anything is made: status 1, every one of `needles` in the
/// error, no state root even (it is made after the checks), no cgroup, nothing of `id` left.
fn expect_refused(env: &Env, b: &Bundle, id: &str, needles: &[&str]) -> String {
    let out = cmd_bounded(env, &["create", "--bundle", b.path_str(), id], None);
    let err = stderr_text(&out);
    assert_eq!(out.status.code(), Some(1), "create {id} must fail: {err}");
    for n in needles {
        assert!(err.contains(n), "the error should say {n:?}: {err}");
    }
    assert!(
        !env.root.exists(),
        "refused after the state root was made: {err}"
    );
    env.assert_nothing_left(id);
    err
}

/// The container's namespace list without `typ`, or with `typ` joined at `path`.
fn namespaces_with(b: &mut Bundle, typ: &str, path: Option<&str>) {
    let mut list: Vec<serde_json::Value> = b.config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] != typ)
        .cloned()
        .collect();
    if let Some(p) = path {
        list.push(json!({"type": typ, "path": p}));
    }
    b.config["linux"]["namespaces"] = json!(list);
}

/// Paths that name the runtime's own namespace of `kind` (net, ipc, uts): `/proc/self/...` as
/// the runtime reads it, the test's own (the same namespace under another pid, so only the
/// inode tells), and pid 1's where it is readable and the same as ours.
fn host_ns_paths(kind: &str) -> Vec<String> {
    let ours = std::fs::read_link(format!("/proc/self/ns/{kind}")).unwrap();
    let mut paths = vec![
        format!("/proc/self/ns/{kind}"),
        format!("/proc/{}/ns/{kind}", std::process::id()),
    ];
    let init = format!("/proc/1/ns/{kind}");
    if std::fs::read_link(&init).ok() == Some(ours) {
        paths.push(init);
    }
    paths
}

// ---- 1. sysctls that are not the container's own ----------------------------------------------

/// `kernel.core_pattern` = `|/tmp/x` would make the host's kernel run /tmp/x as root on its
/// next crash; `vm.overcommit_memory` is the host's too: no namespace holds them, so they are
/// refused whatever the container's namespaces.
#[test]
fn sysctls_of_no_namespace_are_refused() {
    let env = Env::new("sysctlhost");
    let core = HostSysctl::new("kernel.core_pattern");
    let vm = HostSysctl::new("vm.overcommit_memory");
    let mut b = env.bundle("b", &["true"]);
    let id = env.id("c");
    for (sysctl, value) in [(&core, "|/tmp/x".to_string()), (&vm, vm.other("1", "0"))] {
        b.config["linux"]["sysctl"] = json!({ sysctl.key: value });
        b.save();
        expect_refused(
            &env,
            &b,
            &id,
            &[&format!("sysctl {:?}", sysctl.key), "not namespaced"],
        );
        sysctl.assert_same(sysctl.key);
    }
}

/// `net.*` written with no network namespace, or with the runtime's own joined by path, would
/// be the host's.
#[test]
fn net_sysctls_need_a_network_namespace_of_the_container() {
    let env = Env::new("sysctlnet");
    let host = HostSysctl::new("net.ipv4.tcp_keepalive_time");
    let mut b = env.bundle("b", &["true"]);
    b.config["linux"]["sysctl"] = json!({ host.key: host.other("1234", "4321") });
    let id = env.id("c");
    let mut cases = vec![None];
    cases.extend(host_ns_paths("net").into_iter().map(Some));
    for path in cases {
        namespaces_with(&mut b, "network", path.as_deref());
        b.save();
        expect_refused(
            &env,
            &b,
            &id,
            &["sysctl \"net.ipv4.tcp_keepalive_time\"", "net namespace"],
        );
        host.assert_same(&format!("network namespace {path:?}"));
    }
}

/// The System V IPC and mqueue sysctls with no ipc namespace, or the runtime's own joined by
/// path, would be the host's.
#[test]
fn ipc_sysctls_need_an_ipc_namespace_of_the_container() {
    let env = Env::new("sysctlipc");
    let host = HostSysctl::new("kernel.msgmax");
    let mut b = env.bundle("b", &["true"]);
    b.config["linux"]["sysctl"] = json!({ host.key: host.other("12345", "54321") });
    let id = env.id("c");
    let mut cases = vec![None];
    cases.extend(host_ns_paths("ipc").into_iter().map(Some));
    for path in cases {
        namespaces_with(&mut b, "ipc", path.as_deref());
        b.save();
        expect_refused(
            &env,
            &b,
            &id,
            &["sysctl \"kernel.msgmax\"", "ipc namespace"],
        );
        host.assert_same(&format!("ipc namespace {path:?}"));
    }
}

/// `kernel.domainname` (and the `domainname` field) without a uts namespace of the container's
/// would rename the host; `kernel.hostname` beside the `hostname` field is a conflict.
#[test]
fn uts_sysctls_and_domainname_need_a_uts_namespace() {
    let env = Env::new("sysctluts");
    let host = HostSysctl::new("kernel.domainname");
    let id = env.id("c");
    let mut b = env.bundle("b", &["true"]);
    b.config.as_object_mut().unwrap().remove("hostname");
    b.config["linux"]["sysctl"] = json!({ host.key: "attacker.example" });
    let mut cases = vec![None];
    cases.extend(host_ns_paths("uts").into_iter().map(Some));
    for path in cases {
        namespaces_with(&mut b, "uts", path.as_deref());
        b.save();
        expect_refused(
            &env,
            &b,
            &id,
            &["sysctl \"kernel.domainname\"", "uts namespace"],
        );
        host.assert_same(&format!("uts namespace {path:?}"));
    }
    // The field, with no uts namespace: setdomainname would rename the host.
    b.config["linux"].as_object_mut().unwrap().remove("sysctl");
    b.config["domainname"] = json!("attacker.example");
    namespaces_with(&mut b, "uts", None);
    b.save();
    expect_refused(&env, &b, &id, &["domainname requires a uts namespace"]);
    host.assert_same("domainname field");
    // kernel.hostname beside `hostname`: which one wins would depend on the order of writes.
    let mut b = env.bundle("b2", &["true"]);
    b.config["linux"]["sysctl"] = json!({"kernel.hostname": "other"});
    b.save();
    expect_refused(
        &env,
        &b,
        &id,
        &["sysctl \"kernel.hostname\"", "hostname field"],
    );
}

/// The control: in the container's own namespaces, new or joined by path (another
/// container's), `net.*` and the ipc sysctls are written there, and the host's stay.
#[test]
fn namespaced_sysctls_are_written_in_the_container_only() {
    let env = Env::new("sysctlok");
    let net = HostSysctl::new("net.ipv4.tcp_keepalive_time");
    let ipc = HostSysctl::new("kernel.msgmax");
    let (net_value, ipc_value) = (net.other("1234", "4321"), ipc.other("12345", "54321"));
    let show = "cat /proc/sys/net/ipv4/tcp_keepalive_time /proc/sys/kernel/msgmax";
    let mut a = env.bundle("a", &["sleep", "1000"]);
    a.config["linux"]["sysctl"] = json!({ net.key: net_value, ipc.key: ipc_value });
    a.save();
    let a_id = env.id("a");
    let a_pid = env.run_detached(&a, &a_id);
    let in_a = || {
        let out = env.cmd(&["exec", &a_id, "sh", "-c", show]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(in_a(), format!("{net_value}\n{ipc_value}\n"));
    net.assert_same("new network namespace");
    ipc.assert_same("new ipc namespace");

    // A second container joins the first one's namespaces by path and sets them again.
    let mut b = env.bundle("b", &["sh", "-c", show]);
    namespaces_with(&mut b, "network", Some(&format!("/proc/{a_pid}/ns/net")));
    namespaces_with(&mut b, "ipc", Some(&format!("/proc/{a_pid}/ns/ipc")));
    let (net_b, ipc_b) = (net.other("2345", "5432"), ipc.other("23456", "65432"));
    b.config["linux"]["sysctl"] = json!({ net.key: net_b, ipc.key: ipc_b });
    b.save();
    let b_id = env.id("b");
    let out = env.run_ok(&b, &b_id);
    assert_eq!(out, format!("{net_b}\n{ipc_b}\n"));
    net.assert_same("joined network namespace");
    ipc.assert_same("joined ipc namespace");
    // The first container's were the ones written.
    assert_eq!(in_a(), format!("{net_b}\n{ipc_b}\n"));
    assert!(env.cmd(&["delete", "--force", &a_id]).status.success());
    env.assert_nothing_left(&a_id);
    env.assert_nothing_left(&b_id);
}

// ---- 3. ids the kernel reads as -1 ---------------------------------------------------------------

/// uid or gid 4294967295 is -1 to setresuid/setresgid, "leave unchanged": the process would run
/// as root. Refused in the config, before anything is made, as every id above 2147483647 is.
/// The process would have written its ids to a host directory; nothing is there.
#[test]
fn config_ids_above_2147483647_are_refused() {
    let env = Env::new("bigid");
    let out_dir = env.dir.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    // Writable by whichever id the process gets.
    std::fs::set_permissions(&out_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut b = env.bundle("b", &["sh", "-c", "echo $(id -u) $(id -G) > /out/ids"]);
    b.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/out", "type": "bind", "source": out_dir, "options": ["rbind"]}),
    );
    let id = env.id("c");
    for (user, field) in [
        (json!({"uid": 4294967295u32, "gid": 0}), "uid 4294967295"),
        (json!({"uid": 1000, "gid": 4294967295u32}), "gid 4294967295"),
        (
            json!({"uid": 1000, "gid": 1000, "additionalGids": [4294967295u32]}),
            "additionalGids 4294967295",
        ),
        (json!({"uid": 2147483648u32, "gid": 0}), "uid 2147483648"),
    ] {
        b.config["process"]["user"] = user;
        b.save();
        expect_refused(
            &env,
            &b,
            &id,
            &[&format!("process.user.{field}"), "0-2147483647"],
        );
        assert!(!out_dir.join("ids").exists(), "the process ran");
    }
    // The control: the largest id allowed, and an ordinary one, are what the process gets.
    for (uid, gid) in [(2147483647u32, 2147483647u32), (1000, 1000)] {
        b.config["process"]["user"] = json!({"uid": uid, "gid": gid, "additionalGids": [5]});
        b.save();
        env.run_ok(&b, &id);
        let ids = std::fs::read_to_string(out_dir.join("ids")).unwrap();
        assert_eq!(ids, format!("{uid} {gid} 5\n"));
        std::fs::remove_file(out_dir.join("ids")).unwrap();
        env.assert_nothing_left(&id);
    }
}

/// The same through `exec`: `-u`, `-u UID:GID`, `-g`, `-p process.json`, and the library's
/// `Container::exec`. None runs: the process would have written its ids into the rootfs.
#[test]
fn exec_ids_above_2147483647_are_refused() {
    let env = Env::new("bigidexec");
    let mut b = env.bundle("b", &["sleep", "1000"]);
    b.config["root"]["readonly"] = json!(false);
    b.save();
    // Writable by whichever id the process gets.
    std::fs::set_permissions(
        b.rootfs().join("tmp"),
        std::fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    let id = env.id("c");
    env.run_detached(&b, &id);
    let ids = b.rootfs().join("tmp/ids");
    let write_ids = ["sh", "-c", "echo $(id -u) $(id -G) > /tmp/ids"];
    for (flags, needle) in [
        (&["-u", "4294967295"][..], "--user \"4294967295\""),
        (&["-u", "0:4294967295"], "--user \"0:4294967295\""),
        (&["-u", "4294967295:0"], "--user \"4294967295:0\""),
        (&["--user", "2147483648"], "--user \"2147483648\""),
        (
            &["-u", "1000:1000", "-g", "4294967295"],
            "--additional-gids \"4294967295\"",
        ),
    ] {
        let args: Vec<&str> = ["exec"]
            .iter()
            .chain(flags)
            .chain([id.as_str()].iter())
            .chain(write_ids.iter())
            .copied()
            .collect();
        let out = env.cmd(&args);
        let err = stderr_text(&out);
        assert!(!out.status.success(), "{flags:?}: {err}");
        assert!(
            err.contains(needle) && err.contains("0-2147483647"),
            "{flags:?}: {err}"
        );
        assert!(!ids.exists(), "{flags:?}: the process ran");
    }
    // `--user :4294967295` names no uid: refused as not a number.
    let out = env.cmd(&[
        "exec",
        "-u",
        ":4294967295",
        &id,
        write_ids[0],
        write_ids[1],
        write_ids[2],
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("must be numbers"));
    assert!(!ids.exists(), "the process ran");

    let p = env.dir.join("process.json");
    for (user, field) in [
        (json!({"uid": 4294967295u32, "gid": 0}), "uid 4294967295"),
        (json!({"uid": 0, "gid": 4294967295u32}), "gid 4294967295"),
        (
            json!({"uid": 0, "gid": 0, "additionalGids": [4294967295u32]}),
            "additionalGids 4294967295",
        ),
    ] {
        let process = json!({"args": write_ids, "cwd": "/", "env": ["PATH=/bin"], "user": user});
        std::fs::write(&p, process.to_string()).unwrap();
        let out = env.cmd(&["exec", "-p", p.to_str().unwrap(), &id]);
        let err = stderr_text(&out);
        assert_eq!(out.status.code(), Some(255), "{err}");
        assert!(
            err.contains(&format!("process.user.{field}")) && err.contains("0-2147483647"),
            "{err}"
        );
        assert!(!ids.exists(), "-p {user}: the process ran");
    }

    // The library, as an embedder calls it.
    let c = cofferdam::Container::load(&env.root, &id).unwrap();
    let mut process = c.process().cloned().unwrap();
    process.set_args(Some(write_ids.iter().map(|s| s.to_string()).collect()));
    process.user_mut().set_uid(u32::MAX);
    let err = c
        .exec(&process, &cofferdam::ExecOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("process.user.uid 4294967295"), "{err}");
    assert!(!ids.exists(), "the library's exec ran the process");

    // The control: legitimate ids, the largest one included, are the process's.
    for (user, want) in [
        ("1000:1000", "1000 1000 5\n"),
        ("2147483647:2147483647", "2147483647 2147483647 5\n"),
    ] {
        let mut args = vec!["exec", "-u", user, "-g", "5", &id];
        args.extend(write_ids);
        let out = env.cmd(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(std::fs::read_to_string(&ids).unwrap(), want);
        std::fs::remove_file(&ids).unwrap();
    }
    assert!(env.cmd(&["delete", "--force", &id]).status.success());
    env.assert_nothing_left(&id);
}

// ---- 6. unbounded input ------------------------------------------------------------------

/// What every refusal of a too large input says: the path and the limit.
fn too_large(path: &Path) -> String {
    format!(
        "cannot read {}: it is larger than {} MiB",
        path.display(),
        MAX_INPUT_BYTES >> 20
    )
}

/// A sparse file of `len` bytes: no disk used, and read whole it would take `len` of memory.
fn sparse(path: &Path, len: u64) {
    let _ = std::fs::remove_file(path);
    std::fs::File::create(path).unwrap().set_len(len).unwrap();
}

/// `config.json` as a link to `/dev/zero` (it never ends) or a 10 GB sparse file would be read
/// whole into memory. Both are refused, at the limit, with the path and the limit named, and
/// under a 1 GiB address space (a read whole would fail otherwise). A valid config padded to
/// exactly the limit is still read.
#[test]
fn config_files_above_the_limit_are_refused() {
    let env = Env::new("bigconfig");
    let b = env.bundle("b", &["true"]);
    let config = b.path.join("config.json");
    let valid = std::fs::read(&config).unwrap();
    let id = env.id("c");

    std::fs::remove_file(&config).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &config).unwrap();
    let t = std::time::Instant::now();
    expect_refused(&env, &b, &id, &[&too_large(&config)]);
    eprintln!("config.json -> /dev/zero refused in {:?}", t.elapsed());

    std::fs::remove_file(&config).unwrap();
    sparse(&config, 10 << 30);
    let t = std::time::Instant::now();
    expect_refused(&env, &b, &id, &[&too_large(&config)]);
    eprintln!("a 10 GB config.json refused in {:?}", t.elapsed());
    sparse(&config, MAX_INPUT_BYTES + 1);
    expect_refused(&env, &b, &id, &[&too_large(&config)]);

    // At the limit exactly: the config, then spaces, which JSON allows.
    let mut padded = valid;
    padded.resize(MAX_INPUT_BYTES as usize, b' ');
    std::fs::write(&config, &padded).unwrap();
    let out = cmd_bounded(&env, &["run", "--bundle", b.path_str(), &id], None);
    assert!(
        out.status.success(),
        "a config of exactly the limit: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.assert_nothing_left(&id);
}

/// `exec -p` and `update -r` take files (and `update -r -` stdin) too: `/dev/zero` and a
/// sparse file above the limit are refused; the container is untouched and nothing runs.
#[test]
fn exec_and_update_files_above_the_limit_are_refused() {
    let env = Env::new("bigprocess");
    let mut b = env.bundle("b", &["sleep", "1000"]);
    b.config["linux"]["resources"]["pids"] = json!({"limit": 100});
    b.save();
    let id = env.id("c");
    let pid = env.run_detached(&b, &id);
    let zero = env.dir.join("zero.json");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let big = env.dir.join("big.json");
    sparse(&big, 10 << 30);
    for file in [&zero, &big] {
        let f = file.to_str().unwrap();
        let out = cmd_bounded(&env, &["exec", "-p", f, &id], None);
        let err = stderr_text(&out);
        assert_eq!(out.status.code(), Some(255), "exec -p {f}: {err}");
        assert!(err.contains(&too_large(file)), "exec -p {f}: {err}");
        let out = cmd_bounded(&env, &["update", "-r", f, &id], None);
        let err = stderr_text(&out);
        assert_eq!(out.status.code(), Some(1), "update -r {f}: {err}");
        assert!(err.contains(&too_large(file)), "update -r {f}: {err}");
    }
    let zero_in = std::fs::File::open("/dev/zero").unwrap();
    let out = cmd_bounded(&env, &["update", "-r", "-", &id], Some(zero_in));
    let err = stderr_text(&out);
    assert_eq!(out.status.code(), Some(1), "update -r - < /dev/zero: {err}");
    assert!(err.contains(&too_large(Path::new("stdin"))), "{err}");
    // The container is as it was: the same init, running, with no other process.
    assert_eq!(env.status(&id), "running");
    assert_eq!(env.state(&id)["pid"].as_i64(), Some(pid as i64));
    let out = env.cmd(&["ps", "-f", "json", &id]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("[{pid}]")
    );
    assert!(env.cmd(&["delete", "--force", &id]).status.success());
    env.assert_nothing_left(&id);
}

/// The most the container's cgroup ever used, from the host (`events --stats`: v1's
/// `memory.max_usage_in_bytes`, v2's `memory.peak`; 0 where the kernel keeps no peak).
fn peak_memory(env: &Env, id: &str) -> u64 {
    let out = env.cmd(&["events", "--stats", id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    ev["data"]["memory"]["usage"]["max"].as_u64().unwrap_or(0)
}

/// The image's `/etc/passwd` is read for `HOME` when the config sets none. A link to
/// `/dev/zero` never ends, a FIFO blocks its reader forever, a sparse file of 512 MiB would be
/// read whole. None of them is read past the input limit: the container's process and an exec
/// get HOME=/, at once, and the container's cgroup never held much more than the limit.
#[test]
fn an_image_passwd_that_never_ends_is_not_read() {
    let env = Env::new("passwdzero");
    let id = env.id("c");
    for kind in ["zero", "fifo", "sparse"] {
        let mut b = env.bundle(kind, &["sh", "-c", "echo $HOME"]);
        let passwd = b.rootfs().join("etc/passwd");
        std::fs::remove_file(&passwd).unwrap();
        match kind {
            "zero" => std::os::unix::fs::symlink("/dev/zero", &passwd).unwrap(),
            "fifo" => nix::unistd::mkfifo(&passwd, nix::sys::stat::Mode::from_bits_truncate(0o644))
                .unwrap(),
            _ => sparse(&passwd, 512 << 20),
        }
        let out = cmd_bounded(&env, &["run", "--bundle", b.path_str(), &id], None);
        let (code, stdout, stderr) = code_out_err(&out);
        assert_eq!((code, stdout.as_str()), (0, "/\n"), "{kind}: {stderr}");
        env.assert_nothing_left(&id);

        b.config["process"]["args"] = json!(["sleep", "1000"]);
        b.save();
        let out = cmd_bounded(&env, &["run", "-d", "--bundle", b.path_str(), &id], None);
        assert!(
            out.status.success(),
            "{kind}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = cmd_bounded(&env, &["exec", &id, "sh", "-c", "echo $HOME"], None);
        let (code, stdout, stderr) = code_out_err(&out);
        assert_eq!(
            (code, stdout.as_str()),
            (0, "/\n"),
            "exec, {kind}: {stderr}"
        );
        // The init's and the exec's reads were charged to the container's cgroup.
        let peak = peak_memory(&env, &id);
        eprintln!(
            "{kind}: the container's memory peaked at {} KiB",
            peak >> 10
        );
        assert!(
            peak < 4 * MAX_INPUT_BYTES,
            "{kind}: the container's memory peaked at {peak} bytes"
        );
        assert!(env.cmd(&["delete", "--force", &id]).status.success());
        env.assert_nothing_left(&id);
    }
}
