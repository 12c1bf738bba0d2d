//! seccomp with real profiles and the real kernel: errnos, argument conditions, podman's
//! default profile, a notify agent that answers a syscall for the container, and profiles
//! older or newer than the kernel.

mod common;

use std::os::unix::net::UnixListener;

use common::*;
use serde_json::{Value, json};

fn with_profile(env: &Env, name: &str, script: &str, profile: Value, nnp: bool) -> Bundle {
    let mut b = env.bundle(name, &["sh", "-c", script]);
    b.config["linux"]["seccomp"] = profile;
    b.config["process"]["noNewPrivileges"] = json!(nnp);
    b.save();
    b
}

#[test]
fn blocked_calls_fail_with_their_errno_and_argument_conditions_hold() {
    let env = Env::new("seccompbasic");
    // mkdir gets EXDEV; chmod/fchmodat only when the mode is world-writable (MASKED_EQ) or
    // exactly 0700 (EQ on another rule).
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18},
            {"names": ["chmod"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 1, "value": 2, "valueTwo": 2, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 2, "value": 2, "valueTwo": 2, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [{"index": 1, "value": 448, "op": "SCMP_CMP_EQ"}]},
            {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [{"index": 2, "value": 448, "op": "SCMP_CMP_EQ"}]},
            {"names": ["socketcall", "arm_fadvise64_64"], "action": "SCMP_ACT_ERRNO"}
        ]
    });
    let script = "cd /dev/shm; mkdir d; touch f; chmod 755 f && echo 755-ok; chmod 757 f; \
                  chmod 700 f; stat -c %a f";
    for nnp in [true, false] {
        let b = with_profile(
            &env,
            if nnp { "nnp" } else { "caps" },
            script,
            profile.clone(),
            nnp,
        );
        let id = env.id(if nnp { "nnp" } else { "caps" });
        let (code, out, err) = env.run(&b, &id);
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            err.contains("Invalid cross-device link"),
            "mkdir: EXDEV: {err}"
        );
        assert!(out.contains("755-ok"), "{out}{err}");
        assert!(
            err.contains("Operation not permitted"),
            "757 is o+w: EPERM: {err}"
        );
        assert!(err.contains("Permission denied"), "700: EACCES: {err}");
        assert_eq!(out.lines().last(), Some("755"), "{out}");
        env.assert_nothing_left(&id);
    }
}

#[test]
fn bad_profiles_are_refused_before_anything_is_made() {
    let env = Env::new("seccompbad");
    for (i, (profile, want)) in [
        (json!({"defaultAction": "SCMP_ACT_MAYBE"}), "SCMP_ACT_MAYBE"),
        (json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ALLOW", "errnoRet": 5}]}), "errnoRet"),
        (json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_NOTIFY"}]}), "listenerPath"),
    ]
    .into_iter()
    .enumerate()
    {
        let b = with_profile(&env, &format!("b{i}"), "true", profile, true);
        let id = env.id(&format!("c{i}"));
        let out = env.cmd(&["create", "--bundle", b.path_str(), &id]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{err}");
        env.assert_nothing_left(&id);
    }
}

/// podman's default profile (Debian's golang-github-containers-common) as podman would hand
/// it to a runtime on x86_64 with the default capabilities: the rules for other architectures
/// and for capabilities the container lacks are left out.
fn podman_profile() -> Option<Value> {
    let text = std::fs::read_to_string("/usr/share/containers/seccomp.json").ok()?;
    let t: Value = serde_json::from_str(&text).unwrap();
    let arch = if cfg!(target_arch = "x86_64") {
        "amd64"
    } else {
        "arm64"
    };
    let mut rules = Vec::new();
    for r in t["syscalls"].as_array().unwrap() {
        let inc = &r["includes"];
        let empty = |v: &Value| v.as_object().is_none_or(|o| o.is_empty());
        let arch_ok = inc["arches"]
            .as_array()
            .is_none_or(|a| a.iter().any(|x| x == arch));
        let only_arches = inc
            .as_object()
            .is_none_or(|o| o.keys().all(|k| k == "arches"));
        if !(empty(inc) || (only_arches && arch_ok)) {
            continue;
        }
        let mut rule = json!({"names": r["names"], "action": r["action"]});
        if let Some(e) = r.get("errnoRet").filter(|e| !e.is_null()) {
            rule["errnoRet"] = e.clone();
        }
        if let Some(a) = r
            .get("args")
            .filter(|a| a.as_array().is_some_and(|a| !a.is_empty()))
        {
            rule["args"] = a.clone();
        }
        rules.push(rule);
    }
    Some(json!({
        "defaultAction": t["defaultAction"],
        "defaultErrnoRet": t["defaultErrnoRet"],
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": rules
    }))
}

#[test]
fn podmans_default_profile() {
    let profile = podman_profile().expect(
        "/usr/share/containers/seccomp.json (golang-github-containers-common) is installed by scripts/deps.sh",
    );
    let env = Env::new("seccomppodman");
    // Ordinary work runs. The profile was made for the default capabilities, but the
    // container also gets CAP_SYS_ADMIN: mount (in the profile) works, sethostname (denied by
    // the profile with EPERM without that capability) stays denied: the filter, not the
    // capability, refuses it.
    let script = "ls / >/dev/null && echo ls-ok; sleep 0 & wait && echo fork-ok; \
                  mount -t tmpfs none /dev/shm && echo mount-ok; hostname other; hostname";
    for nnp in [true, false] {
        let mut b = with_profile(
            &env,
            if nnp { "nnp" } else { "caps" },
            script,
            profile.clone(),
            nnp,
        );
        for set in ["bounding", "effective", "permitted"] {
            b.config["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_SYS_ADMIN"));
        }
        b.save();
        let id = env.id(if nnp { "nnp" } else { "caps" });
        let (code, out, err) = env.run(&b, &id);
        assert_eq!(code, 0, "{out}{err}");
        for want in ["ls-ok", "fork-ok", "mount-ok"] {
            assert!(out.contains(want), "{want}: {out}{err}");
        }
        assert!(
            err.contains("sethostname: Operation not permitted"),
            "{err}"
        );
        assert!(!out.contains("other"), "{out}");
        env.assert_nothing_left(&id);
    }

    // Its allow list with mkdir taken out: mkdir now gets the default action, ENOSYS.
    let mut profile = profile;
    for r in profile["syscalls"].as_array_mut().unwrap() {
        if r["action"] == "SCMP_ACT_ALLOW" {
            r["names"]
                .as_array_mut()
                .unwrap()
                .retain(|n| n != "mkdir" && n != "mkdirat");
        }
    }
    let b = with_profile(
        &env,
        "nomkdir",
        "mkdir /dev/shm/d; echo done",
        profile,
        true,
    );
    let id = env.id("nomkdir");
    let (code, out, err) = env.run(&b, &id);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("Function not implemented"), "{err}");
    env.assert_nothing_left(&id);
}

#[test]
fn a_notify_agent_gets_the_listener_and_answers_for_the_container() {
    let env = Env::new("seccompnotify");
    let sock_path = env.dir.join("agent.sock");
    let listener = UnixListener::bind(&sock_path).unwrap();
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock_path,
        "listenerMetadata": "cofferdam-test",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    let mut b = with_profile(&env, "b", "mkdir /dev/shm/x 2>/result", profile, true);
    b.config["root"]["readonly"] = json!(false);
    b.save();
    let id = env.id("c");
    let out = env.cmd(&["create", "--bundle", b.path_str(), &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let init_pid = env.state(&id)["pid"].as_i64().unwrap();

    // The container process state and the listener, in one message.
    let (conn, _) = listener.accept().unwrap();
    let (st, notify) = receive_listener(&conn);
    assert_eq!(st["fds"], json!(["seccompFd"]));
    assert_eq!(st["metadata"], "cofferdam-test");
    assert_eq!(st["pid"], init_pid);
    assert_eq!(st["state"]["id"], id.as_str());

    // Start the container; its mkdir waits for us. Answer ENOTBLK without doing it.
    let mut run = std::process::Command::new(BIN)
        .args(["--root", env.root.to_str().unwrap(), "start", &id])
        .spawn()
        .unwrap();
    assert!(run.wait().unwrap().success());
    let req = notif_recv(&notify).expect("a notification");
    // aarch64 has only mkdirat.
    #[cfg(target_arch = "x86_64")]
    let mkdirs = [libc::SYS_mkdir as i32, libc::SYS_mkdirat as i32];
    #[cfg(not(target_arch = "x86_64"))]
    let mkdirs = [libc::SYS_mkdirat as i32];
    assert!(mkdirs.contains(&req.data.nr), "nr {}", req.data.nr);
    notif_send(&notify, req.id, -libc::ENOTBLK, false);

    // The answer is what the container saw.
    let pid = init_pid as i32;
    let deadline = std::time::Instant::now() + patience(std::time::Duration::from_secs(10));
    while env.status(&id) != "stopped" {
        assert!(
            std::time::Instant::now() < deadline,
            "the container did not finish"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = pid;
    let seen = std::fs::read_to_string(b.rootfs().join("result")).unwrap();
    assert!(seen.contains("Block device required"), "{seen}");
    let out = env.cmd(&["delete", &id]);
    assert!(out.status.success());
    env.assert_nothing_left(&id);
}

#[test]
fn exec_gets_the_containers_profile_too() {
    let env = Env::new("seccompexec");
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18}]
    });
    let b = with_profile(&env, "b", "sleep 1000", profile, true);
    let id = env.id("c");
    env.run_detached(&b, &id);
    let out = env.cmd(&["exec", &id, "mkdir", "/dev/shm/d"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Invalid cross-device link"), "{err}");
    assert!(env.cmd(&["delete", "--force", &id]).status.success());
    env.assert_nothing_left(&id);
}

/// An old allow-list profile, in the style of Docker's first default one: the default is EPERM,
/// and nothing in it is newer than `prlimit64` (Linux 2.6.36), so faccessat2, clone3, statx,
/// close_range, setns... are not named at all. It has what busybox and the runtime's last
/// steps need. Names of other architectures' syscalls in it (`open`, `stat`... on aarch64)
/// are skipped.
const OLD_ALLOW: &[&str] = &[
    "access",
    "arch_prctl",
    "brk",
    "capget",
    "capset",
    "chdir",
    "clock_nanosleep",
    "clone",
    "close",
    "dup",
    "dup2",
    "dup3",
    "execve",
    "exit",
    "exit_group",
    "faccessat",
    "fchdir",
    "fcntl",
    "fstat",
    "fstatfs",
    "futex",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "geteuid",
    "getgid",
    "getgroups",
    "getpgrp",
    "getpid",
    "getppid",
    "getrlimit",
    "getuid",
    "ioctl",
    "kill",
    "lseek",
    "lstat",
    "madvise",
    "mmap",
    "mprotect",
    "munmap",
    "nanosleep",
    "newfstatat",
    "open",
    "openat",
    "pipe",
    "pipe2",
    "poll",
    "prctl",
    "pread64",
    "prlimit64",
    "read",
    "readlink",
    "readlinkat",
    "recvfrom",
    "recvmsg",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "rt_sigsuspend",
    "sendfile",
    "sendmsg",
    "sendto",
    "set_robust_list",
    "set_tid_address",
    "setpgid",
    "sigaltstack",
    "stat",
    "statfs",
    "sync",
    "umask",
    "uname",
    "vfork",
    "wait4",
    "write",
    "writev",
];

fn old_profile(extra: &[Value]) -> Value {
    let mut rules = vec![json!({"names": OLD_ALLOW, "action": "SCMP_ACT_ALLOW"})];
    rules.extend_from_slice(extra);
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"],
        "syscalls": rules
    })
}

/// The syscall tables the seccomp compiler is built with (generated from the kernel headers).
#[allow(dead_code)]
mod syscalls {
    include!("../src/seccomp/syscalls.rs");
}

/// The number of a syscall of this architecture, as the compiler knows it.
fn native_nr(name: &str) -> Option<i64> {
    #[cfg(target_arch = "x86_64")]
    let table = syscalls::X86_64;
    #[cfg(target_arch = "aarch64")]
    let table = syscalls::AARCH64;
    table.iter().find(|(n, _)| *n == name).map(|(_, nr)| *nr)
}

fn native(name: &str) -> i64 {
    native_nr(name).unwrap_or_else(|| panic!("{name}: not a syscall of this architecture"))
}

/// busybox `nsenter` is setns(2), newer than every syscall of the old profile: it gets
/// ENOSYS, as libc's fallbacks expect, not the profile's EPERM, which an unnamed older syscall
/// (mkdir) still gets. Once the profile names setns, whatever its rule says holds. The
/// container has CAP_SYS_ADMIN (but in "caps"), so that the kernel itself would let it join
/// its own uts namespace: each answer other than that is the filter's.
#[test]
fn a_profile_older_than_a_syscall_gives_it_enosys_and_its_own_rules_still_hold() {
    let newest = OLD_ALLOW.iter().filter_map(|n| native_nr(n)).max().unwrap();
    assert!(
        newest < native("setns"),
        "the profile must not name anything as new"
    );
    assert!(
        native("mkdirat") < newest,
        "mkdir(at) must be older than the profile"
    );
    let env = Env::new("seccompold");
    let script = "test -x /bin/sh && echo ok; nsenter -t 1 -u -- true && echo entered; \
                  mkdir /dev/shm/d && echo made; true";
    let setns = |rule: Value| {
        let mut r = rule;
        r["names"] = json!(["setns"]);
        vec![r]
    };
    let refused = |why: &str| format!("can't reassociate to namespace 'uts': {why}");
    let cases = [
        (
            "nnp",
            vec![],
            true,
            Some(refused("Function not implemented")),
        ),
        (
            "caps",
            vec![],
            false,
            Some(refused("Function not implemented")),
        ),
        (
            "named",
            setns(json!({"action": "SCMP_ACT_ERRNO"})),
            true,
            Some(refused("Operation not permitted")),
        ),
        (
            "errnoret",
            setns(json!({"action": "SCMP_ACT_ERRNO", "errnoRet": 18})),
            false,
            Some(refused("Invalid cross-device link")),
        ),
        (
            "allowed",
            setns(json!({"action": "SCMP_ACT_ALLOW"})),
            true,
            None,
        ),
    ];
    for (name, extra, nnp, refusal) in cases {
        let mut b = with_profile(&env, name, script, old_profile(&extra), nnp);
        if name != "caps" {
            for set in ["bounding", "effective", "permitted"] {
                b.config["process"]["capabilities"][set]
                    .as_array_mut()
                    .unwrap()
                    .push(json!("CAP_SYS_ADMIN"));
            }
            b.save();
        }
        let id = env.id(name);
        let (code, out, err) = env.run(&b, &id);
        assert_eq!(code, 0, "{name}: {out}{err}");
        assert!(out.starts_with("ok\n"), "{name}: test -x works: {out}{err}");
        match refusal {
            Some(want) => assert!(
                !out.contains("entered") && err.contains(&want),
                "{name}: {want}: {out}{err}"
            ),
            None => assert!(out.contains("entered"), "{name}: {out}{err}"),
        }
        assert!(
            !out.contains("made")
                && err.contains("can't create directory '/dev/shm/d': Operation not permitted"),
            "{name}: an older unnamed syscall gets the default action: {out}{err}"
        );
        env.assert_nothing_left(&id);
    }
}

/// A profile written for a newer kernel names syscalls this build does not know: they are
/// skipped with a warning (on stderr, or in `--log`), the rest of their rule holds.
#[test]
fn unknown_syscall_names_are_skipped_with_a_warning() {
    let env = Env::new("seccompunknown");
    let profile = old_profile(&[
        json!({"names": ["mkdir", "mkdirat", "frobnicate_from_2099"], "action": "SCMP_ACT_ALLOW"}),
        json!({"names": ["socketcall", "frobnicate_from_2099"], "action": "SCMP_ACT_ERRNO"}),
    ]);
    let b = with_profile(&env, "b", "mkdir /dev/shm/d && echo made", profile, true);
    let id = env.id("stderr");
    let (code, out, err) = env.run(&b, &id);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out, "made\n", "{err}");
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("level=warning"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning per unknown name: {err}");
    assert!(warnings[0].contains("frobnicate_from_2099"), "{err}");
    assert!(
        !err.contains("socketcall"),
        "another architecture's: silent: {err}"
    );
    env.assert_nothing_left(&id);

    let log = env.dir.join("log.json");
    let id = env.id("log");
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
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let rec: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(rec["level"], "warning", "{text}");
    assert!(
        rec["msg"]
            .as_str()
            .unwrap()
            .contains("frobnicate_from_2099"),
        "{text}"
    );
    env.assert_nothing_left(&id);
}

/// The executable is looked up before the filter goes on: a profile that refuses every way to
/// check a file (stat, access and kin, with ENOENT even) does not make `sh` "not found", for
/// the init with or without no_new_privs, nor for `exec`.
#[test]
fn the_program_is_found_even_where_the_profile_refuses_the_lookup() {
    let env = Env::new("seccomplookup");
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{
            "names": ["access", "faccessat", "faccessat2", "stat", "lstat", "newfstatat",
                      "statx", "fstatat64", "stat64", "lstat64"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": 2
        }]
    });
    for nnp in [true, false] {
        let name = if nnp { "nnp" } else { "caps" };
        let b = with_profile(
            &env,
            name,
            "test -e /bin/sh || echo denied; echo found; exec sleep 1000",
            profile.clone(),
            nnp,
        );
        let id = env.id(name);
        let mut run = env.spawn_run(&b, &id);
        let mut lines =
            std::io::BufRead::lines(std::io::BufReader::new(run.stdout.take().unwrap()));
        for want in ["denied", "found"] {
            let got = lines.next().map(|l| l.unwrap());
            assert_eq!(
                got.as_deref(),
                Some(want),
                "{name}: the filter is on, sh ran"
            );
        }
        for args in [
            &["sh", "-c", "echo exec-found"][..],
            &["/bin/sh", "-c", "echo exec-found"],
        ] {
            let out = env.cmd(&[&["exec", id.as_str()][..], args].concat());
            let (code, o, e) = code_out_err(&out);
            assert_eq!(
                (code, o.as_str()),
                (0, "exec-found\n"),
                "{name} {args:?}: {e}"
            );
        }
        assert!(env.cmd(&["kill", &id, "KILL"]).status.success());
        run.wait().unwrap();
        assert!(env.cmd(&["delete", "--force", &id]).status.success());
        env.assert_nothing_left(&id);
    }
}

/// Without no_new_privs the filter goes on with CAP_SYS_ADMIN (raised for it where the
/// process's own effective set lacks it) before the permitted set is dropped: the process
/// still ends with exactly its configured capabilities, as root and as another user, under
/// a filter or none.
#[test]
fn without_nnp_the_process_ends_with_exactly_its_capabilities() {
    let env = Env::new("seccompcaps");
    let names = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let want = format!("{:016x}", (1u64 << 29) | (1 << 5) | (1 << 10));
    for uid in [0, 1000] {
        for filtered in [true, false] {
            let name = format!("u{uid}{}", if filtered { "-filter" } else { "" });
            let args = [
                "grep",
                "-E",
                "^(Cap|Seccomp:|NoNewPrivs)",
                "/proc/self/status",
            ];
            let mut b = env.bundle(&name, &args);
            if filtered {
                b.config["linux"]["seccomp"] = old_profile(&[]);
            }
            b.config["process"]["noNewPrivileges"] = json!(false);
            b.config["process"]["user"] = json!({"uid": uid, "gid": uid});
            b.config["process"]["capabilities"] = json!({
                "bounding": names, "effective": names, "permitted": names,
                "inheritable": names, "ambient": names
            });
            b.save();
            let id = env.id(&name);
            let out = env.run_ok(&b, &id);
            let field = |k: &str| {
                out.lines()
                    .find_map(|l| l.strip_prefix(k))
                    .map(|v| v.trim().to_string())
                    .unwrap_or_else(|| panic!("{name}: no {k} in {out}"))
            };
            for k in ["CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"] {
                assert_eq!(field(k), want, "{name}: {k}\n{out}");
            }
            assert_eq!(
                field("Seccomp:"),
                if filtered { "2" } else { "0" },
                "{name}"
            );
            assert_eq!(field("NoNewPrivs:"), "0", "{name}");
            env.assert_nothing_left(&id);
        }
    }
}
