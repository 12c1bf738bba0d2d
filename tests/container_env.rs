//! What a process inside the container sees: pid 1, hostname, mounts, /dev, masked and
//! read-only paths, a read-only root, its user, env, cwd, rlimits, capabilities, no_new_privs,
//! sysctls, namespaces (new and joined), and that a symlink in the image cannot lead a mount
//! out of the rootfs.

mod common;

use common::*;
use serde_json::json;

fn status_field(out: &str, key: &str) -> String {
    out.lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("{key} not in {out}"))
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

#[test]
fn pid1_hostname_and_default_mounts() {
    let env = Env::new("basics");
    let mut b = env.bundle(
        "b",
        &[
            "sh",
            "-c",
            "echo pid=$$; hostname; cat /proc/mounts; ls /dev",
        ],
    );
    b.config["hostname"] = json!("dam");
    b.config["domainname"] = json!("river.example");
    b.save();
    let id = env.id("c");
    let out = env.run_ok(&b, &id);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("pid=1"));
    assert_eq!(lines.next(), Some("dam"));
    let mounts = parse_mounts(&out);
    let find = |mp: &str| {
        mounts
            .iter()
            .find(|m| m.0 == mp)
            .unwrap_or_else(|| panic!("{mp} not mounted: {out}"))
    };
    assert_eq!(find("/proc").1, "proc");
    assert_eq!(find("/dev").1, "tmpfs");
    assert!(find("/dev").2.contains("nosuid"));
    assert_eq!(find("/dev/pts").1, "devpts");
    assert_eq!(find("/dev/shm").1, "tmpfs");
    assert!(find("/dev/shm").2.contains("noexec"));
    assert_eq!(find("/dev/mqueue").1, "mqueue");
    assert_eq!(find("/sys").1, "sysfs");
    assert!(find("/sys").2.starts_with("ro"));
    // A pure cgroup2 host gets one cgroup2 mount; v1 and hybrid hosts a tmpfs of hierarchies.
    let host_v2 = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| {
            l.split_whitespace().nth(4) == Some("/sys/fs/cgroup") && l.contains(" - cgroup2 ")
        });
    assert_eq!(
        find("/sys/fs/cgroup").1,
        if host_v2 { "cgroup2" } else { "tmpfs" }
    );
    assert!(find("/sys/fs/cgroup").2.starts_with("ro"));
    // The rootfs is / and is read-only (root.readonly in the default spec).
    assert!(find("/").2.starts_with("ro"), "{out}");
    // Nothing of the host: no mount of the host's own paths shows up.
    assert!(
        !mounts
            .iter()
            .any(|m| m.0.starts_with("/work") || m.0.starts_with("/tmp/")),
        "{out}"
    );
    for dev in [
        "null", "zero", "full", "random", "urandom", "tty", "ptmx", "fd", "stdin", "stdout",
        "stderr", "pts", "shm",
    ] {
        assert!(out.lines().any(|l| l == dev), "/dev/{dev} missing: {out}");
    }
    env.assert_nothing_left(&id);
}

#[test]
fn domainname_is_set() {
    let env = Env::new("domain");
    let mut b = env.bundle("b", &["cat", "/proc/sys/kernel/domainname"]);
    b.config["domainname"] = json!("river.example");
    b.save();
    let id = env.id("c");
    assert_eq!(env.run_ok(&b, &id), "river.example\n");
    env.assert_nothing_left(&id);
}

#[test]
fn masked_and_readonly_paths() {
    let env = Env::new("masked");
    let mut b = env.bundle(
        "b",
        &[
            "sh",
            "-c",
            "cat /proc/keys | wc -c; ls /proc/acpi 2>/dev/null | wc -l; \
             echo 1 > /proc/sys/kernel/domainname && echo sys-writable || echo sys-readonly; \
             touch /etc/x && echo root-writable || echo root-readonly; \
             ls /sys/firmware | wc -l",
        ],
    );
    b.config["linux"]["maskedPaths"] = json!([
        "/proc/keys",
        "/proc/acpi",
        "/sys/firmware",
        "/does/not/exist"
    ]);
    b.save();
    let id = env.id("c");
    let out = env.run_ok(&b, &id);
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "0", "/proc/keys is not masked: {out}");
    assert_eq!(l[1], "0", "/proc/acpi is not masked: {out}");
    assert_eq!(l[2], "sys-readonly");
    assert_eq!(l[3], "root-readonly");
    assert_eq!(l[4], "0", "/sys/firmware is not masked");
    env.assert_nothing_left(&id);
}

#[test]
fn writable_rootfs_when_not_readonly() {
    let env = Env::new("rwroot");
    let mut b = env.bundle(
        "b",
        &[
            "sh",
            "-c",
            "echo hi > /tmp/f && cat /tmp/f && grep ' / ' /proc/mounts",
        ],
    );
    b.config["root"]["readonly"] = json!(false);
    b.save();
    let id = env.id("c");
    let out = env.run_ok(&b, &id);
    assert!(out.starts_with("hi\n"));
    assert!(
        out.lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .nth(3)
            .unwrap()
            .starts_with("rw"),
        "{out}"
    );
    env.assert_nothing_left(&id);
}

#[test]
fn user_groups_env_cwd_umask() {
    let env = Env::new("user");
    let mut b = env.bundle("b", &["sh", "-c", "id -u; id -g; id -G; pwd; echo $FOO; echo $HOME; umask; touch /tmp/w 2>&1 || echo cannot-write"]);
    b.config["process"]["user"] =
        json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 27], "umask": 63});
    b.config["process"]["env"] = json!(["PATH=/bin", "FOO=bar baz"]);
    b.config["process"]["cwd"] = json!("/home/user/work");
    b.config["root"]["readonly"] = json!(false);
    b.save();
    let id = env.id("c");
    let out = env.run_ok(&b, &id);
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "1000");
    assert_eq!(l[1], "1000");
    let groups: Vec<&str> = l[2].split_whitespace().collect();
    assert_eq!(groups, ["1000", "5", "27"]);
    assert_eq!(l[3], "/home/user/work", "cwd is created and entered");
    assert_eq!(l[4], "bar baz");
    assert_eq!(
        l[5], "/home/user",
        "HOME comes from the container's /etc/passwd"
    );
    assert_eq!(l[6], "0077");
    // /tmp in the image belongs to root with mode 755: uid 1000 may not write there.
    assert!(l[7..].iter().any(|x| x.contains("cannot-write")), "{out}");
    env.assert_nothing_left(&id);
}

#[test]
fn rlimits_capabilities_and_no_new_privs() {
    let env = Env::new("caps");
    let mut b = env.bundle(
        "b",
        &[
            "sh",
            "-c",
            "ulimit -n; ulimit -Hn; ulimit -s; cat /proc/self/status",
        ],
    );
    b.config["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 768},
        {"type": "RLIMIT_STACK", "soft": 4194304, "hard": 4194304}
    ]);
    b.config["process"]["capabilities"] = json!({
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
        "effective": ["CAP_CHOWN", "CAP_KILL"],
        "permitted": ["CAP_CHOWN", "CAP_KILL"],
        "inheritable": []
    });
    b.config["process"]["noNewPrivileges"] = json!(true);
    b.save();
    let id = env.id("c");
    let out = env.run_ok(&b, &id);
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(&l[..3], ["512", "768", "4096"]);
    // CAP_CHOWN = 0, CAP_KILL = 5, CAP_NET_RAW = 13.
    assert_eq!(
        status_field(&out, "CapEff:"),
        format!("{:016x}", (1u64 << 0) | (1 << 5))
    );
    assert_eq!(
        status_field(&out, "CapPrm:"),
        format!("{:016x}", (1u64 << 0) | (1 << 5))
    );
    assert_eq!(
        status_field(&out, "CapBnd:"),
        format!("{:016x}", (1u64 << 0) | (1 << 5) | (1 << 13))
    );
    assert_eq!(status_field(&out, "CapInh:"), "0000000000000000");
    assert_eq!(status_field(&out, "CapAmb:"), "0000000000000000");
    assert_eq!(status_field(&out, "NoNewPrivs:"), "1");
    env.assert_nothing_left(&id);

    // Without noNewPrivileges the bit stays clear.
    b.config["process"]["noNewPrivileges"] = json!(false);
    b.save();
    let id = env.id("c2");
    let out = env.run_ok(&b, &id);
    assert_eq!(status_field(&out, "NoNewPrivs:"), "0");
    env.assert_nothing_left(&id);
}

#[test]
fn ambient_capabilities_for_a_non_root_user() {
    let env = Env::new("ambient");
    let mut b = env.bundle("b", &["cat", "/proc/self/status"]);
    let set = json!(["CAP_NET_BIND_SERVICE"]);
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.config["process"]["capabilities"] = json!({
        "bounding": set, "effective": set, "permitted": set, "inheritable": set, "ambient": set
    });
    b.save();
    let id = env.id("c");
    let out = env.run_ok(&b, &id);
    let bit = format!("{:016x}", 1u64 << 10);
    assert_eq!(status_field(&out, "CapAmb:"), bit);
    assert_eq!(
        status_field(&out, "CapEff:"),
        bit,
        "ambient caps survive exec as uid 1000"
    );
    env.assert_nothing_left(&id);
}

#[test]
fn bind_mounts_with_options_and_tmpfs() {
    let env = Env::new("binds");
    let shared = env.dir.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("hello"), "from host\n").unwrap();
    let file = env.dir.join("single");
    std::fs::write(&file, "one file\n").unwrap();
    let mut b = env.bundle(
        "b",
        &[
            "sh",
            "-c",
            "cat /data/hello; cat /etc/single; echo x > /data/new 2>/dev/null && echo data-rw || echo data-ro; \
             echo y > /rw/new && echo rw-ok; grep -E ' /(data|rw|scratch) ' /proc/mounts",
        ],
    );
    let rw = env.dir.join("rw");
    std::fs::create_dir_all(&rw).unwrap();
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.push(json!({"destination": "/data", "type": "bind", "source": shared, "options": ["rbind", "ro", "nosuid", "nodev"]}));
    mounts.push(json!({"destination": "/etc/single", "type": "bind", "source": file, "options": ["bind", "ro"]}));
    mounts.push(json!({"destination": "/rw", "source": rw, "options": ["bind", "rprivate"]}));
    mounts.push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "noexec", "mode=700"]}));
    b.save();
    let id = env.id("c");
    let out = env.run_ok(&b, &id);
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "from host");
    assert_eq!(l[1], "one file");
    assert_eq!(l[2], "data-ro");
    assert_eq!(l[3], "rw-ok");
    let m = parse_mounts(&out);
    let data = m.iter().find(|x| x.0 == "/data").unwrap();
    assert!(
        data.2.starts_with("ro") && data.2.contains("nosuid") && data.2.contains("nodev"),
        "{data:?}"
    );
    let scratch = m.iter().find(|x| x.0 == "/scratch").unwrap();
    assert_eq!(scratch.1, "tmpfs");
    assert!(
        scratch.2.contains("noexec") && scratch.2.contains("mode=700"),
        "{scratch:?}"
    );
    assert_eq!(
        std::fs::read_to_string(rw.join("new")).unwrap(),
        "y\n",
        "rw bind writes reach the host"
    );
    assert!(!shared.join("new").exists());
    env.assert_nothing_left(&id);
}

#[test]
fn devices_and_sysctl() {
    let env = Env::new("devices");
    let mut b = env.bundle("b", &["sh", "-c", "ls -ln /dev/mynull /dev/sub/fuse; echo hi 2>/dev/null > /dev/mynull && echo written || echo denied; cat /proc/sys/net/ipv4/ip_forward; cat /proc/sys/kernel/msgmax"]);
    b.config["linux"]["devices"] = json!([
        {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 432, "uid": 1000, "gid": 5},
        {"path": "/dev/sub/fuse", "type": "c", "major": 10, "minor": 229}
    ]);
    b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.msgmax": "12345"});
    b.save();
    let id = env.id("c");
    let out = env.run_ok(&b, &id);
    let l: Vec<&str> = out.lines().collect();
    assert!(
        l[0].starts_with("crw-rw----")
            && l[0].contains(" 1000 ")
            && l[0].contains(" 5 ")
            && l[0].contains("1,"),
        "{out}"
    );
    assert!(
        l[1].starts_with("crw-rw-rw-") && l[1].contains("10,"),
        "{out}"
    );
    // Mode 0660 owned by 1000:5, and root in the container has no CAP_DAC_OVERRIDE.
    assert_eq!(l[2], "denied");
    assert_eq!(l[3], "1", "net sysctl in the container's netns");
    assert_eq!(l[4], "12345", "ipc sysctl in the container's ipc ns");
    // The host's values are untouched.
    assert_ne!(
        std::fs::read_to_string("/proc/sys/kernel/msgmax")
            .unwrap()
            .trim(),
        "12345"
    );
    env.assert_nothing_left(&id);
}

#[test]
fn new_namespaces_differ_from_the_host_and_joined_ones_match() {
    let env = Env::new("ns");
    // A long-running container whose network and uts namespaces a second one joins.
    let mut first = env.bundle("first", &["sleep", "1000"]);
    first.config["hostname"] = json!("first");
    first.save();
    let a = env.id("a");
    let pid = env.run_detached(&first, &a);

    let mut second = env.bundle(
        "second",
        &[
            "sh",
            "-c",
            "hostname; for n in net uts ipc mnt pid cgroup; do readlink /proc/self/ns/$n; done",
        ],
    );
    second.config.as_object_mut().unwrap().remove("hostname");
    second.config["linux"]["namespaces"] = json!([
        {"type": "pid"}, {"type": "ipc"}, {"type": "mount"}, {"type": "cgroup"},
        {"type": "network", "path": format!("/proc/{pid}/ns/net")},
        {"type": "uts", "path": format!("/proc/{pid}/ns/uts")}
    ]);
    second.save();
    let c = env.id("c");
    let out = env.run_ok(&second, &c);
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(
        l[0], "first",
        "joined uts namespace shows the first container's hostname"
    );
    let ns = |n: &str, p: &str| {
        std::fs::read_link(format!("/proc/{p}/ns/{n}"))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    assert_eq!(l[1], ns("net", &pid.to_string()));
    assert_eq!(l[2], ns("uts", &pid.to_string()));
    for (line, n) in l[3..].iter().zip(["ipc", "mnt", "pid", "cgroup"]) {
        assert_ne!(*line, ns(n, "self"), "{n} must be new");
        assert_ne!(*line, ns(n, &pid.to_string()), "{n} must be new");
    }
    assert!(env.cmd(&["delete", "-f", &a]).status.success());
    env.assert_nothing_left(&a);
    env.assert_nothing_left(&c);
}

#[test]
fn time_namespace_offsets() {
    let env = Env::new("timens");
    let mut b = env.bundle("b", &["cat", "/proc/uptime"]);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    b.config["linux"]["timeOffsets"] = json!({"boottime": {"secs": 86400000, "nanosecs": 0}});
    b.save();
    let id = env.id("c");
    let out = env.run_ok(&b, &id);
    let up: f64 = out.split_whitespace().next().unwrap().parse().unwrap();
    assert!(up > 86_400_000.0, "boottime offset not applied: {out}");
    env.assert_nothing_left(&id);
}

#[test]
fn cgroup_namespace_shows_the_container_cgroup_as_root() {
    let env = Env::new("cgns");
    let b = env.bundle(
        "b",
        &["sh", "-c", "cat /proc/self/cgroup; ls /sys/fs/cgroup"],
    );
    let id = env.id("c");
    let out = env.run_ok(&b, &id);
    for l in out.lines().filter(|l| l.contains(':')) {
        assert!(
            l.ends_with(":/"),
            "cgroup namespace root is not the container's cgroup: {l}"
        );
    }
    assert!(
        out.lines().any(|l| l == "memory" || l == "cgroup.procs"),
        "{out}"
    );

    // Without a cgroup namespace the container sees its full cgroup path.
    let mut b = env.bundle("b2", &["cat", "/proc/self/cgroup"]);
    b.config["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}]);
    b.save();
    let id = env.id("c2");
    let out = env.run_ok(&b, &id);
    assert!(
        out.contains(&format!("{}_b2/ctr", env.cgroup_prefix)),
        "{out}"
    );
    env.assert_nothing_left(&id);
}

#[test]
fn no_pivot_uses_chroot() {
    let env = Env::new("nopivot");
    let b = env.bundle("b", &["sh", "-c", "echo pid=$$; ls /"]);
    let id = env.id("c");
    let out = env.cmd(&["run", "--no-pivot", "--bundle", b.path_str(), &id]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("pid=1\n"));
    assert!(stdout.lines().any(|l| l == "bin"));
    env.assert_nothing_left(&id);
}

#[test]
fn oom_score_adj_is_applied() {
    let env = Env::new("oomadj");
    let mut b = env.bundle("b", &["cat", "/proc/self/oom_score_adj"]);
    b.config["process"]["oomScoreAdj"] = json!(345);
    b.save();
    let id = env.id("c");
    assert_eq!(env.run_ok(&b, &id), "345\n");
    env.assert_nothing_left(&id);
}

#[test]
fn preserved_fds_reach_the_container_and_others_do_not() {
    use std::os::fd::AsRawFd;
    let env = Env::new("fds");
    let b = env.bundle(
        "b",
        &[
            "sh",
            "-c",
            "ls /proc/self/fd | sort -n | tr '\\n' ' '; echo; cat <&3",
        ],
    );
    let id = env.id("c");
    let (r, w) = nix::unistd::pipe().unwrap();
    nix::unistd::write(&w, b"through fd 3\n").unwrap();
    drop(w);
    // Put the read end at fd 3 in the child, and leave an extra fd (4+) open in the runtime.
    let extra = std::fs::File::open("/proc/self/status").unwrap();
    let r_fd = r.as_raw_fd();
    let mut cmd = std::process::Command::new(BIN);
    cmd.arg("--root").arg(&env.root).args([
        "run",
        "--preserve-fds",
        "1",
        "--bundle",
        b.path_str(),
        &id,
    ]);
    let extra_fd = extra.as_raw_fd();
    // SAFETY (test): dup2 and fcntl in the child between fork and exec are async-signal-safe.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            libc::dup2(r_fd, 3);
            libc::dup2(extra_fd, 9);
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fds: Vec<&str> = stdout.lines().next().unwrap().split_whitespace().collect();
    // 0-2, the preserved 3, and the one `ls` opens for /proc/self/fd.
    assert_eq!(&fds[..4], ["0", "1", "2", "3"], "{stdout}");
    assert!(
        fds.len() <= 5,
        "extra fds leaked into the container: {fds:?}"
    );
    assert!(stdout.contains("through fd 3"));
    env.assert_nothing_left(&id);
}

#[test]
fn preserve_fds_passes_on_the_open_ones_and_never_the_runtimes_own() {
    use std::os::fd::AsRawFd;
    let env = Env::new("fdgap");
    let b = env.bundle(
        "b",
        &[
            "sh",
            "-c",
            "for f in 3 4 5; do readlink /proc/self/fd/$f || echo none; done",
        ],
    );
    let file = env.dir.join("five");
    std::fs::write(&file, "").unwrap();
    let five = std::fs::File::open(&file).unwrap();
    let (r, _w) = nix::unistd::pipe().unwrap();
    // Sources above the numbers they are put at, so that no dup2 overwrites the other's.
    let high = |fd: i32| {
        use std::os::fd::FromRawFd;
        // SAFETY (test): F_DUPFD_CLOEXEC makes a new fd, owned here.
        unsafe { std::os::fd::OwnedFd::from_raw_fd(libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 50)) }
    };
    let (r_hi, five_hi) = (high(r.as_raw_fd()), high(five.as_raw_fd()));
    let (r_fd, five_fd) = (r_hi.as_raw_fd(), five_hi.as_raw_fd());
    // fd 4 is a gap in the caller. With --log, the runtime's own log file takes it.
    for log in [false, true] {
        let id = env.id(if log { "log" } else { "nolog" });
        let log_path = env.dir.join("log");
        let mut cmd = std::process::Command::new(BIN);
        if log {
            cmd.arg("--log").arg(&log_path);
        }
        cmd.arg("--root").arg(&env.root).args([
            "run",
            "--preserve-fds",
            "3",
            "--bundle",
            b.path_str(),
            &id,
        ]);
        // SAFETY (test): dup2 and close in the child between fork and exec are
        // async-signal-safe.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(move || {
                libc::dup2(r_fd, 3);
                libc::dup2(five_fd, 5);
                libc::close(4);
                Ok(())
            });
        }
        let out = cmd.output().unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "{stderr}");
        let lines: Vec<&str> = stdout.lines().collect();
        assert!(lines[0].starts_with("pipe:["), "{stdout}");
        assert_eq!(
            lines[1], "none",
            "log={log}: fd 4 reached the container: {stdout}"
        );
        assert_eq!(lines[2], file.to_str().unwrap(), "{stdout}");
        if log {
            let text = std::fs::read_to_string(&log_path).unwrap();
            assert!(text.contains("passing on fds [3, 5] only"), "{text}");
        } else {
            assert!(stderr.contains("passing on fds [3, 5] only"), "{stderr}");
        }
        env.assert_nothing_left(&id);
    }
}

#[test]
fn bind_propagation_options_decide_what_the_host_shows_the_container() {
    let env = Env::new("propagation");
    let shared = env.dir.join("shared");
    std::fs::create_dir_all(shared.join("sub")).unwrap();
    let _shared = HostMount::shared(&shared);
    let wait = "for i in $(seq 30); do [ -e /data/sub/x ] && { echo visible; exit 0; }; sleep 0.1; done; echo hidden";
    let mut children = Vec::new();
    for opt in ["rslave", "rprivate"] {
        let mut b = env.bundle(opt, &["sh", "-c", wait]);
        b.config["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/data", "type": "bind", "source": shared, "options": ["rbind", opt]
        }));
        b.save();
        let id = env.id(opt);
        children.push((opt, id.clone(), env.spawn_run(&b, &id)));
    }
    for (_, id, _) in &children {
        let deadline = std::time::Instant::now() + patience(std::time::Duration::from_secs(10));
        while !String::from_utf8_lossy(&env.cmd(&["state", id]).stdout).contains("\"running\"") {
            assert!(std::time::Instant::now() < deadline, "{id} did not start");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    // A mount made on the host after the containers started.
    let sub = HostMount::tmpfs(&shared.join("sub"));
    std::fs::write(shared.join("sub/x"), "x").unwrap();
    let mut ids = Vec::new();
    for (opt, id, child) in children {
        let out = child.wait_with_output().unwrap();
        let seen = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let want = if opt == "rslave" { "visible" } else { "hidden" };
        assert_eq!(seen, want, "{opt}");
        ids.push(id);
    }
    for id in ids {
        env.assert_nothing_left(&id);
    }
    drop(sub);
}

#[test]
fn rootfs_propagation_is_applied_to_the_root() {
    let env = Env::new("rootprop");
    let _shared = HostMount::shared(&env.dir);
    for (prop, tag) in [("rslave", Some("master:")), ("rprivate", None)] {
        let mut b = env.bundle(
            prop,
            &["sh", "-c", "awk '$5 == \"/\"' /proc/self/mountinfo"],
        );
        b.config["linux"]["rootfsPropagation"] = json!(prop);
        b.save();
        let id = env.id(prop);
        let line = env.run_ok(&b, &id);
        let fields: Vec<&str> = line.split_whitespace().collect();
        let sep = fields.iter().position(|f| *f == "-").unwrap();
        let optional = &fields[6..sep];
        match tag {
            Some(t) => assert!(optional.iter().any(|f| f.starts_with(t)), "{prop}: {line}"),
            None => assert!(optional.is_empty(), "{prop}: {line}"),
        }
        env.assert_nothing_left(&id);
    }
}

#[test]
fn unbindable_rootfs_propagation_with_masked_and_readonly_paths() {
    let env = Env::new("unbindable");
    // The default config masks and makes read-only paths (binds onto themselves), which an
    // unbindable mount could not be the source of.
    let script = "awk '$5 == \"/\" || $5 == \"/proc\" {print $5, $7}' /proc/self/mountinfo; \
                  mount --bind / /mnt 2>/dev/null && echo bound || echo refused";
    for (prop, proc_too) in [("unbindable", false), ("runbindable", true)] {
        let mut b = env.bundle(prop, &["sh", "-c", script]);
        b.config["linux"]["rootfsPropagation"] = json!(prop);
        for set in ["bounding", "effective", "permitted"] {
            b.config["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_SYS_ADMIN"));
        }
        std::fs::create_dir_all(b.rootfs().join("mnt")).unwrap();
        b.save();
        assert!(
            !b.config["linux"]["maskedPaths"]
                .as_array()
                .unwrap()
                .is_empty()
        );
        let id = env.id(prop);
        let out = env.run_ok(&b, &id);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{prop}: {out}");
        assert!(lines.contains(&"/ unbindable"), "{prop}: {out}");
        assert_eq!(
            lines.contains(&"/proc unbindable"),
            proc_too,
            "{prop}: {out}"
        );
        // The kernel refuses to bind the root anywhere.
        assert_eq!(lines[2], "refused", "{prop}: {out}");
        env.assert_nothing_left(&id);
    }
}

#[test]
fn tmpcopyup_recursive_attributes_and_nosymfollow() {
    let env = Env::new("mountext");
    let script = "cat /etc/copyme/a /etc/copyme/sub/b; readlink /etc/copyme/link; \
                  stat -c %a /etc/copyme/a; grep -c ' /etc/copyme tmpfs' /proc/mounts; \
                  touch /etc/copyme/new && echo tmpfs-writable; \
                  touch /view/x 2>/dev/null || echo view-ro; \
                  touch /view/inner/x 2>/dev/null || echo inner-ro; \
                  touch /top/inner/x && echo top-inner-rw; \
                  ln -s /etc /nf/l && ls /nf/l/ >/dev/null 2>&1 || echo nosymfollow";
    let mut b = env.bundle("b", &["sh", "-c", script]);
    let copy = b.rootfs().join("etc/copyme");
    std::fs::create_dir_all(copy.join("sub")).unwrap();
    std::fs::write(copy.join("a"), "A\n").unwrap();
    std::fs::write(copy.join("sub/b"), "B\n").unwrap();
    std::os::unix::fs::symlink("a", copy.join("link")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(copy.join("a"), std::fs::Permissions::from_mode(0o640)).unwrap();
    // /view binds the container's own /top (the rootfs path, seen from the init's mount
    // namespace, where the two tmpfs are mounted by then), with everything below it: rro
    // makes both read-only.
    let top = b.rootfs().join("top");
    std::fs::create_dir_all(top.join("inner")).unwrap();
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.push(json!({"destination": "/etc/copyme", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup"]}));
    mounts.push(json!({"destination": "/top", "type": "tmpfs", "source": "tmpfs"}));
    mounts.push(json!({"destination": "/top/inner", "type": "tmpfs", "source": "tmpfs"}));
    mounts.push(
        json!({"destination": "/view", "type": "bind", "source": top, "options": ["rbind", "rro"]}),
    );
    mounts.push(json!({"destination": "/nf", "type": "tmpfs", "source": "tmpfs", "options": ["nosymfollow"]}));
    b.save();
    let id = env.id("c");
    let (code, out, err) = env.run(&b, &id);
    assert_eq!(code, 0, "{out}{err}");
    let want = [
        "A",
        "B",
        "a",
        "640",
        "1",
        "tmpfs-writable",
        "view-ro",
        "inner-ro",
        "top-inner-rw",
        "nosymfollow",
    ];
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, want, "{err}");
    // The image itself is untouched.
    assert!(!copy.join("new").exists());
    env.assert_nothing_left(&id);
}
