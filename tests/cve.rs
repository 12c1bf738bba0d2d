//! One test per container escape that hit runc, each named after its CVE: the attack is tried
//! for real against cofferdam and must fail.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// CVE-2019-5736: until it execs, a process that the runtime forks into the container is the
/// runtime's binary. A container process that opens its /proc/PID/exe keeps a handle on the
/// host's binary (and rewrites it once the runtime is gone). Here an exec is held just before
/// its execve (a seccomp notify agent sits on execve for 1.5 s) while the container's init
/// tries to open /proc/N/exe of every other process, with shell builtins only.
#[test]
fn cve_2019_5736_the_runtime_binary_cannot_be_opened_from_the_container() {
    let env = Env::new("cve5736");
    let sock = env.dir.join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    // Builtins only (no fork, no execve): `{ ...; } 3< FILE` opens FILE, and `-ef` on the
    // opened fd tells the busybox the container runs from anything else (the runtime's binary).
    let watcher = ": > /dev/shm/hits; : > /dev/shm/ready; \
        while :; do for p in /proc/[0-9]*; do \
          [ \"$p\" = /proc/1 ] && continue; \
          { [ /proc/self/fd/3 -ef /bin/busybox ] || echo \"$p\" >> /dev/shm/hits; } 3< \"$p/exe\"; \
        done; done 2>/dev/null";
    let mut b = env.bundle("b", &["sh", "-c", watcher]);
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "syscalls": [{"names": ["execve"], "action": "SCMP_ACT_NOTIFY"}]
    });
    b.save();
    let id = env.id("c");
    // The agent: every execve goes on at once, except the exec's first, held 1.5 s.
    let agent = std::thread::spawn(move || {
        let mut handlers = Vec::new();
        for (i, conn) in listener.incoming().take(2).enumerate() {
            let (_, fd) = receive_listener(&conn.unwrap());
            handlers.push(std::thread::spawn(move || {
                let mut first = true;
                while let Some(req) = notif_recv(&fd) {
                    if i == 1 && first {
                        std::thread::sleep(Duration::from_millis(1500));
                        first = false;
                    }
                    notif_send(&fd, req.id, 0, true);
                }
            }));
        }
        handlers
    });
    let init = env.run_detached(&b, &id);
    let shm = format!("/proc/{init}/root/dev/shm");
    let deadline = Instant::now() + patience(Duration::from_secs(10));
    while !std::path::Path::new(&format!("{shm}/ready")).exists() {
        assert!(Instant::now() < deadline, "the watcher did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = env.cmd(&["exec", &id, "true"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hits = std::fs::read_to_string(format!("{shm}/hits")).unwrap();
    assert!(
        hits.is_empty(),
        "the container opened the runtime's binary: {hits}"
    );
    assert!(env.cmd(&["delete", "--force", &id]).status.success());
    for h in agent.join().unwrap() {
        h.join().unwrap();
    }
    env.assert_nothing_left(&id);
}

/// Copy into `rootfs`, at their own paths, the loader and libraries `bin` needs (those `ldd`
/// names; none for the static release build). The kernel runs the runtime's binary inside the
/// container in the attack below, and a dynamic build (`cargo build`'s) finds no loader in a
/// busybox rootfs: its execve would fail before the binary runs. Images with glibc have one,
/// so the attack is made there as it would be against them.
fn give_the_runtime_its_libraries(rootfs: &std::path::Path, bin: &std::path::Path) {
    let out = std::process::Command::new("ldd").arg(bin).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for lib in text.split_whitespace().filter(|w| w.starts_with('/')) {
        let dest = rootfs.join(lib.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(lib, &dest).unwrap_or_else(|e| panic!("copy {lib}: {e}"));
    }
}

/// CVE-2019-5736, the way it was exploited: the program the runtime execs is a script whose
/// interpreter is `/proc/self/exe`, so the kernel runs the runtime's own binary again inside the
/// container, as a dumpable process. A process of the container holds its /proc/N/exe and
/// reopens it for writing, while it runs and after it has exited. Here it is done through
/// `exec` (the program named to exec is the script) and through `run` (the script is the
/// entrypoint of a container sharing the watcher's pid namespace), against a copy of the
/// binary: every writable open must fail, and the copy must be unchanged.
#[test]
fn cve_2019_5736_a_script_run_by_the_runtime_binary_cannot_rewrite_it() {
    let env = Env::new("cve5736b");
    // A copy of the runtime in a directory of its own: if the defence fails, the build's own
    // binary is not the one overwritten.
    let bin_dir = env.dir.join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let bin = bin_dir.join("cofferdam");
    std::fs::copy(BIN, &bin).unwrap();
    let original = std::fs::read(&bin).unwrap();
    let runtime = |args: &[&str]| {
        let mut c = std::process::Command::new(&bin);
        c.arg("--root").arg(&env.root).args(args);
        env.output(c)
    };
    // Every exit_group in the containers is held by the agent for a while, so the runtime
    // binary started by the script lives long enough to be caught (deterministically).
    let sock = env.dir.join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let seccomp = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "syscalls": [{"names": ["exit_group"], "action": "SCMP_ACT_NOTIFY"}]
    });
    let hold = patience(Duration::from_millis(1500));
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let (_, fd) = receive_listener(&conn.unwrap());
            std::thread::spawn(move || {
                while let Some(req) = notif_recv(&fd) {
                    std::thread::sleep(hold);
                    notif_send(&fd, req.id, 0, true);
                }
            });
        }
    });
    // The watcher (pid 1, builtins only, so that it never forks or exits): for each process
    // that is not running busybox, keep its exe open as fd 5, try to open that for writing
    // while the process lives, and again and again until the runtime that started it has
    // exited too (the test says so with /dev/shm/gone), and write if an open succeeds.
    let watcher = "L=/dev/shm/log; : > $L; : > /dev/shm/ready; \
        while :; do for p in /proc/[0-9]*; do \
          [ \"$p\" = /proc/1 ] && continue; \
          { [ /proc/self/fd/3 -ef /bin/busybox ]; } 3< \"$p/exe\" 2>/dev/null && continue; \
          { echo caught >> $L; \
            { echo PWNED >&6 && echo wrote-live >> $L; echo open-live >> $L; } 6<> /proc/self/fd/5; \
            until [ -e /dev/shm/gone ]; do \
              { echo PWNED >&6 && echo wrote-after >> $L; echo open-after >> $L; } 6<> /proc/self/fd/5; \
            done; rm -f /dev/shm/gone; \
            { echo PWNED >&6 && echo wrote-after >> $L; echo open-after >> $L; } 6<> /proc/self/fd/5; \
            echo done >> $L; } 5< \"$p/exe\" 2>/dev/null; \
        done; done";
    let mut w = env.bundle("w", &["sh", "-c", watcher]);
    w.config["linux"]["seccomp"] = seccomp.clone();
    w.save();
    give_the_runtime_its_libraries(&w.rootfs(), &bin);
    let evil = w.rootfs().join("evil.sh");
    std::fs::write(&evil, "#!/proc/self/exe\n").unwrap();
    std::fs::set_permissions(&evil, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let wid = env.id("w");
    let out = runtime(&["run", "-d", "--bundle", w.path_str(), &wid]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let init = env.state(&wid)["pid"].as_i64().unwrap();
    let log = format!("/proc/{init}/root/dev/shm/log");
    wait_until("the watcher to start", Duration::from_secs(10), || {
        std::path::Path::new(&format!("/proc/{init}/root/dev/shm/ready")).exists()
    });
    let rounds = |n: usize| {
        std::fs::write(format!("/proc/{init}/root/dev/shm/gone"), "").unwrap();
        wait_until(
            "the watcher to catch the runtime",
            Duration::from_secs(10),
            || {
                std::fs::read_to_string(&log)
                    .unwrap()
                    .matches("done")
                    .count()
                    >= n
            },
        );
        std::fs::read_to_string(&log).unwrap()
    };

    // 1. exec: the program named to exec is the script.
    let out = runtime(&["exec", &wid, "/evil.sh"]);
    assert_ne!(
        out.status.code(),
        Some(0),
        "the runtime ran as the script's interpreter"
    );
    let after_exec = rounds(1);

    // 2. run: the script is the entrypoint of a second container in the watcher's pid
    // namespace (as in a pod), so the watcher sees the runtime binary the init became.
    let mut e = env.bundle("e", &["/evil.sh"]);
    std::fs::copy(&evil, e.rootfs().join("evil.sh")).unwrap();
    give_the_runtime_its_libraries(&e.rootfs(), &bin);
    e.config["linux"]["seccomp"] = seccomp;
    for ns in e.config["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "pid" {
            ns["path"] = json!(format!("/proc/{init}/ns/pid"));
        }
    }
    e.save();
    let eid = env.id("e");
    let out = runtime(&["run", "--bundle", e.path_str(), &eid]);
    assert_ne!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after_run = rounds(2);

    assert!(runtime(&["delete", "--force", &wid]).status.success());
    let _ = runtime(&["delete", "--force", &eid]);
    for text in [&after_exec, &after_run] {
        assert!(text.contains("caught"), "{text}");
        assert!(
            !text.contains("open-") && !text.contains("wrote-"),
            "the container opened the runtime binary for writing: {text}"
        );
    }
    assert!(
        std::fs::read(&bin).unwrap() == original,
        "the runtime binary was modified"
    );
    env.assert_nothing_left(&wid);
    env.assert_nothing_left(&eid);
}

/// CVE-2024-21626: an fd of the runtime's that leads to a host directory, named as the cwd
/// (`/proc/self/fd/N`), put the container process outside its root. Here fd 3, passed with
/// --preserve-fds, is a host directory: the cwd check refuses it.
#[test]
fn cve_2024_21626_a_cwd_outside_the_root_is_refused() {
    let env = Env::new("cve21626");
    let mut b = env.bundle("b", &["sh", "-c", "pwd; ls"]);
    b.config["process"]["cwd"] = json!("/proc/self/fd/3");
    b.save();
    let id = env.id("c");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "exec 3</ && exec {BIN} --root {} run --preserve-fds 1 --bundle {} {id} </dev/null >{}/out 2>{}/err",
            env.root.display(),
            b.path_str(),
            env.dir.display(),
            env.dir.display()
        ))
        .status()
        .unwrap();
    let stdout = std::fs::read_to_string(env.dir.join("out")).unwrap();
    let stderr = std::fs::read_to_string(env.dir.join("err")).unwrap();
    assert!(
        !out.success(),
        "the container ran in the host's /: {stdout}"
    );
    // Refused where the cwd is made in the rootfs: a magic link is not followed there.
    assert!(stderr.contains("cwd /proc/self/fd/3"), "{stderr}");
    env.assert_nothing_left(&id);

    // exec makes no cwd: it is the check after chdir that finds it outside the root.
    let b = env.bundle("b2", &["sleep", "1000"]);
    let id = env.id("c2");
    env.run_detached(&b, &id);
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "exec 3</ && exec {BIN} --root {} exec --preserve-fds 1 --cwd /proc/self/fd/3 {id} ls </dev/null >{}/out 2>{}/err",
            env.root.display(),
            env.dir.display(),
            env.dir.display()
        ))
        .status()
        .unwrap();
    let stdout = std::fs::read_to_string(env.dir.join("out")).unwrap();
    let stderr = std::fs::read_to_string(env.dir.join("err")).unwrap();
    assert!(!out.success(), "the exec ran in the host's /: {stdout}");
    assert!(
        stderr.contains("check cwd") && stderr.contains("outside"),
        "{stderr}"
    );
    assert!(env.cmd(&["delete", "--force", &id]).status.success());
    env.assert_nothing_left(&id);
}

/// A bundle running `true` whose /dev is a host directory (a shared /dev, as an attacker in a
/// second container would have), and a createContainer hook that, once /dev is made, runs the
/// shell command `swap` builds from that directory's path.
fn bundle_with_swapped_dev(env: &Env, swap: impl Fn(&str) -> String) -> Bundle {
    let dev = env.dir.join("shared-dev");
    std::fs::create_dir_all(&dev).unwrap();
    let mut b = env.bundle("b", &["true"]);
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/dev", "type": "bind", "source": dev, "options": ["rbind"]}));
    b.config["hooks"] = json!({"createContainer": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", swap(&dev.display().to_string())]
    }]});
    b.save();
    b
}

/// CVE-2025-31133: the /dev/null bound over masked paths was a path a container could swap
/// for a symlink to a host file (core_pattern), which masking then made writable. Here /dev is
/// a host directory and a createContainer hook swaps /dev/null for such a link after /dev is
/// made: create refuses it.
#[test]
fn cve_2025_31133_masking_uses_only_the_real_dev_null() {
    let env = Env::new("cve31133");
    let b = bundle_with_swapped_dev(&env, |dev| {
        format!("rm -f {dev}/null && ln -s /proc/sys/kernel/core_pattern {dev}/null")
    });
    let id = env.id("c");
    let out = env.cmd(&["create", "--bundle", b.path_str(), &id]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/dev/null") && err.contains("not the null device"),
        "{err}"
    );
    env.assert_nothing_left(&id);
}

/// CVE-2025-52565: the console's pty was found by path, which a container could redirect.
/// cofferdam opens the peer through the master (TIOCGPTPEER) and checks the master is of a
/// devpts. Here a hook replaces /dev/ptmx with a plain file: create refuses it.
#[test]
fn cve_2025_52565_the_console_is_a_real_pty() {
    let env = Env::new("cve52565");
    std::fs::write(env.dir.join("fake-ptmx"), "").unwrap();
    let fake = env.dir.join("fake-ptmx");
    let mut b = bundle_with_swapped_dev(&env, |dev| {
        format!("rm -f {dev}/ptmx && cp {} {dev}/ptmx", fake.display())
    });
    b.config["process"]["terminal"] = json!(true);
    b.save();
    let id = env.id("c");
    // A console socket that accepts whatever comes.
    let sock = env.dir.join("console.sock");
    let l = UnixListener::bind(&sock).unwrap();
    let t = std::thread::spawn(move || {
        let _ = l.accept();
    });
    let out = env.cmd(&[
        "create",
        "--console-socket",
        sock.to_str().unwrap(),
        "--bundle",
        b.path_str(),
        &id,
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("devpts"), "{err}");
    let _ = t.join();
    env.assert_nothing_left(&id);
}

/// CVE-2025-52881 (and CVE-2019-19921 before it): runtime writes to procfs went through
/// paths a container mount could redirect to another file. Here the config mounts a host
/// directory over /proc/sys/kernel: the sysctl write refuses to cross it, and the host file
/// that looks like the sysctl is untouched.
#[test]
fn cve_2025_52881_procfs_writes_cannot_be_redirected() {
    let env = Env::new("cve52881");
    let fake = env.dir.join("fake-sys-kernel");
    std::fs::create_dir_all(&fake).unwrap();
    std::fs::write(fake.join("shm_rmid_forced"), "0\n").unwrap();
    let mut b = env.bundle("b", &["true"]);
    b.config["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/proc/sys/kernel", "type": "bind", "source": fake, "options": ["rbind"]}),
    );
    b.config["linux"]["sysctl"] = json!({"kernel.shm_rmid_forced": "1"});
    b.save();
    let id = env.id("c");
    let out = env.cmd(&["create", "--bundle", b.path_str(), &id]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sysctl"), "{err}");
    assert_eq!(
        std::fs::read_to_string(fake.join("shm_rmid_forced")).unwrap(),
        "0\n"
    );
    env.assert_nothing_left(&id);
}

/// CVE-2022-29162: runc gave the container process inheritable capabilities it was not asked
/// for, which a file capability could turn into effective ones after an execve.
#[test]
fn cve_2022_29162_no_inheritable_capabilities_unless_asked() {
    let env = Env::new("cve29162");
    let b = env.bundle(
        "b",
        &["sh", "-c", "grep -E '^Cap(Inh|Amb)' /proc/self/status"],
    );
    let id = env.id("c");
    let out = env.run_ok(&b, &id);
    assert!(out.contains("CapInh:\t0000000000000000"), "{out}");
    assert!(out.contains("CapAmb:\t0000000000000000"), "{out}");
    // Asked for, they are there.
    let mut b = env.bundle("b2", &["sh", "-c", "grep -E '^CapInh' /proc/self/status"]);
    b.config["process"]["capabilities"]["inheritable"] = json!(["CAP_KILL"]);
    b.save();
    let id = env.id("c2");
    let out = env.run_ok(&b, &id);
    assert!(out.contains("CapInh:\t0000000000000020"), "{out}");
    env.assert_nothing_left(&id);
}

#[test]
fn cve_2021_30465_a_symlink_in_the_image_cannot_lead_a_mount_onto_the_host() {
    let env = Env::new("cve30465");
    let target = env.dir.join("host-target");
    std::fs::create_dir_all(&target).unwrap();
    let mut b = env.bundle(
        "b",
        &["sh", "-c", "ls /evil/ | wc -l; ls /escape-abs | wc -l"],
    );
    // Two traps in the image: a relative link climbing out, and an absolute link to a host dir.
    std::os::unix::fs::symlink("../../../../../../../..", b.rootfs().join("evil")).unwrap();
    std::os::unix::fs::symlink(&target, b.rootfs().join("escape-abs")).unwrap();
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.push(json!({"destination": "/evil/tmp-trap", "type": "tmpfs", "source": "tmpfs"}));
    mounts.push(json!({"destination": "/escape-abs", "type": "tmpfs", "source": "tmpfs"}));
    b.save();
    let id = env.id("c");
    let out = env.run(&b, &id);
    assert_eq!(out.0, 0, "{out:?}");
    // Resolved inside the rootfs: the mounts landed at rootfs/tmp-trap and rootfs/<target path>.
    assert!(
        b.rootfs().join("tmp-trap").is_dir(),
        "the relative link was not resolved in the rootfs"
    );
    assert!(
        !std::path::Path::new("/tmp-trap").exists(),
        "a directory was made on the host's /"
    );
    let inner = b.rootfs().join(target.strip_prefix("/").unwrap());
    assert!(
        inner.is_dir(),
        "the absolute link was not resolved in the rootfs"
    );
    // The host directory never got a mount, and nothing was written into it.
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(target.to_str().unwrap()));
    env.assert_nothing_left(&id);
}

/// AppArmor and SELinux labels: applied where the host enforces the LSM; asked for where it
/// does not, a clear error rather than a container that runs unconfined.
#[test]
fn lsm_labels_are_applied_or_refused() {
    let env = Env::new("lsm");
    let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y");
    let mut b = env.bundle("b", &["cat", "/proc/self/attr/current"]);
    b.config["process"]["apparmorProfile"] = json!("unconfined");
    b.save();
    let id = env.id("c");
    let (code, out, err) = env.run(&b, &id);
    if apparmor {
        // "unconfined" is the one profile every AppArmor host has.
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("unconfined"), "{out}");
    } else {
        assert_ne!(code, 0);
        assert!(err.contains("AppArmor is not enabled"), "{err}");
    }
    env.assert_nothing_left(&id);

    if !std::path::Path::new("/sys/fs/selinux/enforce").exists() {
        let mut b = env.bundle("b2", &["true"]);
        b.config["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0");
        b.save();
        let id = env.id("c2");
        let (code, _, err) = env.run(&b, &id);
        assert_ne!(code, 0);
        assert!(err.contains("SELinux is not enabled"), "{err}");
        env.assert_nothing_left(&id);
    }
}

/// Run `args` as `uid`:`gid` with no supplementary groups (util-linux `setpriv`), the output
/// through files (see `Env::output`); (exit code, stdout, stderr).
fn as_user(env: &Env, uid: u32, gid: u32, args: &[&str], cwd: &Path) -> (i32, String, String) {
    let mut c = Command::new("setpriv");
    c.args([
        &format!("--reuid={uid}"),
        &format!("--regid={gid}"),
        "--clear-groups",
        "--",
    ])
    .args(args)
    .current_dir(cwd);
    code_out_err(&env.output(c))
}

/// Checks from the host that `root` and everything under it belong to `uid`, and that every
/// directory is 0700 and every other file 0600. Returns the paths it checked.
fn assert_private(root: &Path, uid: u32) -> Vec<PathBuf> {
    let mut seen = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        let want = if meta.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(
            meta.mode() & 0o7777,
            want,
            "{} is {:o}",
            p.display(),
            meta.mode() & 0o7777
        );
        assert_eq!(
            meta.uid(),
            uid,
            "{} belongs to uid {}",
            p.display(),
            meta.uid()
        );
        if meta.is_dir() {
            todo.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
        seen.push(p);
    }
    seen
}

/// The state holds the config's process, env included (passwords, tokens), so no other local
/// user may read any of it: the root and each state dir are 0700, every file in them 0600 (the
/// private `.<id>.creating.<pid>` dir and `.state.json.tmp` are checked as what they are renamed
/// to). A root left 0755 by an older version is tightened by the next `create`; one that
/// another user owns is refused. As uid 65534, with every path in hand, listing the root,
/// reading state.json, opening the lock and exec.fifo, and `list`/`state` are all refused, and
/// nothing shows the secret; root still lists, reads and starts the container. A rootless
/// user's own root gets the same modes, and another user cannot read it either.
#[test]
fn container_state_is_readable_by_its_owner_only() {
    let env = Env::new("secrets");
    let secret = format!("s3cret-{}", std::process::id());
    // Only the state's own modes may stand in the way: the test's dir is open to everyone.
    std::fs::set_permissions(&env.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir(&env.root).unwrap();
    std::fs::set_permissions(&env.root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut b = env.bundle("b", &["sleep", "1000"]);
    b.config["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!(format!("TOKEN={secret}")));
    b.save();
    let id = env.id("c");
    let out = env.cmd(&["create", "--bundle", b.path_str(), &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = env.root.join(&id);
    let seen = assert_private(&env.root, 0);
    for f in ["state.json", "lock", "exec.fifo"] {
        assert!(seen.contains(&dir.join(f)), "{f} was not checked: {seen:?}");
    }

    // Each way in, tried as root first (the path is right, the secret is there), then as
    // nobody. The fifo is only opened (a read would block, a write would start the container);
    // the lock is opened read-write, as `lock` does.
    let tries = [
        ("ls", env.root.clone()),
        ("ls", dir.clone()),
        ("cat", dir.join("state.json")),
        ("exec 3<>", dir.join("lock")),
        ("exec 3<", dir.join("exec.fifo")),
    ];
    for (how, p) in &tries {
        let open = format!("{how} '{}'", p.display());
        let mut c = Command::new("sh");
        c.args(["-c", &open]);
        let (code, out, err) = code_out_err(&env.output(c));
        assert_eq!(code, 0, "as root, {open}: {err}");
        if p.ends_with("state.json") {
            assert!(out.contains(&secret), "the secret is not in {out}");
        }
        let (code, out, err) = as_user(&env, 65534, 65534, &["sh", "-c", &open], &env.dir);
        assert_ne!(code, 0, "nobody opened {}: {out}", p.display());
        assert!(err.contains("Permission denied"), "{}: {err}", p.display());
        assert!(!out.contains(&secret), "nobody read the secret: {out}");
    }
    let root = env.root.to_str().unwrap();
    for args in [["list", ""], ["state", id.as_str()]] {
        let cmd: Vec<&str> = [BIN, "--root", root]
            .into_iter()
            .chain(args.into_iter().filter(|a| !a.is_empty()))
            .collect();
        let (code, out, err) = as_user(&env, 65534, 65534, &cmd, &env.dir);
        assert_ne!(code, 0, "nobody ran {args:?}: {out}");
        assert!(err.contains("Permission denied"), "{args:?}: {err}");
        assert!(!out.contains(&id) && !out.contains(&secret), "{out}");
        assert!(!err.contains(&secret), "{err}");
    }
    // The owner is not hindered: list, state, start (which opens the fifo), delete.
    let out = env.cmd(&["list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&id));
    assert_eq!(env.status(&id), "created");
    let out = env.cmd(&["start", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.status(&id), "running");
    assert!(env.cmd(&["delete", "--force", &id]).status.success());
    env.assert_nothing_left(&id);

    // A root of another user's is refused, nothing made in it.
    let theirs = env.dir.join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    let id2 = env.id("c2");
    let mut c = Command::new(BIN);
    c.args(["--root", theirs.to_str().unwrap()])
        .args(["create", "--bundle", b.path_str(), &id2]);
    let out = env.output(c);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(theirs.to_str().unwrap()) && err.contains("owned by uid 65534"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&theirs).unwrap().count(), 0);
    env.assert_nothing_left(&id2);

    // Rootless: nobody's own bundle and root (made 0755 here, tightened by its create).
    let mine = env.dir.join("nobody-bundle");
    let state = env.dir.join("nobody-state");
    for d in [&mine, &state] {
        std::fs::create_dir(d).unwrap();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::chown(d, Some(65534), Some(65534)).unwrap();
    }
    std::os::unix::fs::symlink(b.rootfs(), mine.join("rootfs")).unwrap();
    let nobody = |args: &[&str]| {
        let cmd: Vec<&str> = [BIN, "--root", state.to_str().unwrap()]
            .iter()
            .chain(args)
            .copied()
            .collect();
        as_user(&env, 65534, 65534, &cmd, &mine)
    };
    let (code, _, err) = nobody(&["spec", "--rootless"]);
    assert_eq!(code, 0, "{err}");
    let path = mine.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config["process"]["terminal"] = json!(false);
    config["process"]["args"] = json!(["true"]);
    config["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!(format!("TOKEN={secret}")));
    std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
    let rid = env.id("rootless");
    struct Delete<'a>(&'a Path, &'a str);
    impl Drop for Delete<'_> {
        fn drop(&mut self) {
            let _ = Command::new(BIN)
                .arg("--root")
                .arg(self.0)
                .args(["delete", "--force", self.1])
                .output();
        }
    }
    let _guard = Delete(&state, &rid);
    let (code, _, err) = nobody(&["create", &rid]);
    assert_eq!(code, 0, "{err}");
    let seen = assert_private(&state, 65534);
    assert!(
        seen.contains(&state.join(&rid).join("exec.fifo")),
        "{seen:?}"
    );
    for p in [state.clone(), state.join(&rid).join("state.json")] {
        let (code, out, err) = as_user(&env, 65533, 65533, &["cat", p.to_str().unwrap()], &env.dir);
        assert_ne!(code, 0, "another user read {}: {out}", p.display());
        assert!(err.contains("Permission denied"), "{err}");
    }
    let (code, out, err) = nobody(&["state", &rid]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"created\""), "{out}");
    // Root still sees it.
    let mut c = Command::new(BIN);
    c.args(["--root", state.to_str().unwrap(), "list"]);
    let (code, out, err) = code_out_err(&env.output(c));
    assert!(code == 0 && out.contains(&rid), "{out}{err}");
    let (code, _, err) = nobody(&["start", &rid]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = nobody(&["delete", "--force", &rid]);
    assert_eq!(code, 0, "{err}");
    assert!(!state.join(&rid).exists());
}

/// CVE-2019-16884: an image whose `/proc` is a symlink had procfs mounted wherever the link
/// led, out from under the LSM profiles that name `/proc/...` paths. A `proc` or `sysfs` mount
/// on anything but an ordinary directory is refused by `create`, in runc's words, with nothing
/// left behind, and from the host no procfs (or sysfs) is found where the link leads. A missing
/// destination is still made as a directory.
#[test]
fn cve_2019_16884_proc_and_sys_are_not_mounted_through_a_symlink() {
    let env = Env::new("cve16884");
    const PROC_SUPER_MAGIC: i64 = 0x9fa0;
    const SYSFS_MAGIC: i64 = 0x6265_6572;
    // What the image has in place of /proc or /sys (`point`): `links` in order, the first one
    // at `point` (none: a plain file there), leading to the directory `lands`, if any.
    struct Case {
        name: &'static str,
        point: &'static str,
        links: &'static [(&'static str, &'static str)],
        lands: Option<&'static str>,
    }
    let case = |name, point, links, lands| Case {
        name,
        point,
        links,
        lands,
    };
    let cases = [
        case(
            "to-dir",
            "proc",
            &[("proc", "/elsewhere")],
            Some("elsewhere"),
        ),
        case("loop", "proc", &[("proc", "proc")], None),
        case(
            "chain",
            "proc",
            &[("proc", "hop1"), ("hop1", "/hop2"), ("hop2", "elsewhere")],
            Some("elsewhere"),
        ),
        case("dangling", "proc", &[("proc", "/missing")], None),
        case(
            "sys",
            "sys",
            &[("sys", "../../elsewhere")],
            Some("elsewhere"),
        ),
        case("file", "proc", &[], None),
    ];
    for Case {
        name,
        point,
        links,
        lands,
    } in cases
    {
        let b = env.bundle(name, &["true"]);
        let rootfs = b.rootfs();
        std::fs::remove_dir(rootfs.join(point)).unwrap();
        if let Some(d) = lands {
            std::fs::create_dir(rootfs.join(d)).unwrap();
        }
        for (link, to) in links {
            std::os::unix::fs::symlink(to, rootfs.join(link)).unwrap();
        }
        if links.is_empty() {
            std::fs::write(rootfs.join(point), "").unwrap();
        }
        let id = env.id(name);
        let out = env.cmd(&["create", "--bundle", b.path_str(), &id]);
        let err = stderr_text(&out);
        assert!(
            !out.status.success(),
            "{name}: created, with these mounts: {}",
            String::from_utf8_lossy(
                &env.cmd(&["exec", &id, "grep", "-E", "proc|sysfs", "/proc/self/mounts"])
                    .stdout
            )
        );
        let fs = if point == "proc" { "proc" } else { "sysfs" };
        assert!(
            err.contains(&format!(
                "filesystem \"{fs}\" must be mounted on ordinary directory"
            )),
            "{name}: {err}"
        );
        env.assert_nothing_left(&id);
        // From the host: the image is as it was, and where the link leads is an empty
        // directory of the rootfs's own filesystem, or nothing was made there.
        for (link, to) in links {
            assert_eq!(
                std::fs::read_link(rootfs.join(link)).unwrap(),
                Path::new(to),
                "{name}"
            );
        }
        let rootfs_fs = nix::sys::statfs::statfs(&rootfs).unwrap().filesystem_type();
        match lands {
            Some(d) => {
                let dir = rootfs.join(d);
                assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "{name}");
                let t = nix::sys::statfs::statfs(&dir).unwrap().filesystem_type();
                assert_eq!(t, rootfs_fs, "{name}: a filesystem is mounted on {d}");
                assert!(t.0 as i64 != PROC_SUPER_MAGIC && t.0 as i64 != SYSFS_MAGIC);
            }
            None => assert!(!rootfs.join("missing").exists(), "{name}"),
        }
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mountinfo.contains(rootfs.to_str().unwrap()), "{name}");
    }

    // No /proc in the image: it is made, as a directory, and procfs mounted on it.
    let b = env.bundle(
        "none",
        &["sh", "-c", "test -r /proc/self/status && echo ok"],
    );
    std::fs::remove_dir(b.rootfs().join("proc")).unwrap();
    let id = env.id("none");
    assert_eq!(env.run_ok(&b, &id).trim(), "ok");
    assert!(
        std::fs::symlink_metadata(b.rootfs().join("proc"))
            .unwrap()
            .is_dir()
    );
    env.assert_nothing_left(&id);
}
