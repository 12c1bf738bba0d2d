//! Namespaces joined by path the way engines pass them: a bind mount of a namespace file
//! (`ip netns add` makes `/run/netns/NAME`; podman, CNI and Kubernetes make their own), for
//! every type; the proof is the namespace's inode, seen from inside the container and from the
//! host through the bind mount. A path that is no namespace, or one of another type, is a
//! clear error that leaves nothing behind.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// Replace the config's entry for namespace `typ` (or add one): joined at `path`, or new.
fn set_ns(config: &mut Value, typ: &str, path: Option<&Path>) {
    let list = config["linux"]["namespaces"].as_array_mut().unwrap();
    list.retain(|n| n["type"] != typ);
    list.push(match path {
        Some(p) => json!({"type": typ, "path": p}),
        None => json!({"type": typ}),
    });
}

/// How the host names the namespace a bind mount holds: `type:[inode]`, as the container's
/// `readlink /proc/self/ns/TYPE` prints it.
fn host_view(kind: &str, bind: &Path) -> String {
    format!("{kind}:[{}]", std::fs::metadata(bind).unwrap().ino())
}

#[test]
fn joins_a_network_namespace_made_by_ip_netns() {
    let env = Env::new("ipnetns");
    let netns = IpNetns::add(&format!("cofferdam-test-{}", std::process::id()));
    // Something only that namespace has: its loopback is up (a new one's is down).
    let up = Command::new("ip")
        .args(["-n", &netns.0, "link", "set", "lo", "up"])
        .status()
        .unwrap();
    assert!(up.success());
    let mut b = env.bundle(
        "b",
        &[
            "sh",
            "-c",
            "readlink /proc/self/ns/net; cat /sys/class/net/lo/operstate",
        ],
    );
    set_ns(&mut b.config, "network", Some(&netns.path()));
    b.save();
    let id = env.id("c");
    let out = env.run_ok(&b, &id);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], host_view("net", &netns.path()), "{out}");
    assert_ne!(
        lines[0],
        std::fs::read_link("/proc/self/ns/net")
            .unwrap()
            .to_string_lossy()
    );
    assert_eq!(
        lines[1], "unknown",
        "lo is up in the joined namespace: {out}"
    );
    env.assert_nothing_left(&id);
    drop(netns);
    assert!(!Path::new(&format!("/run/netns/cofferdam-test-{}", std::process::id())).exists());
}

/// A process in new ipc, uts, mount, cgroup, pid and time namespaces (`unshare --fork`): the
/// namespaces to bind and join. Killed (with its forked child) when dropped.
struct Holder {
    unshare: std::process::Child,
    /// The forked child, which is in all of the new namespaces (pid and time included).
    child: i32,
}

impl Holder {
    fn start() -> Holder {
        let unshare = Command::new("unshare")
            .args([
                "--ipc",
                "--uts",
                "--mount",
                "--propagation",
                "private",
                "--cgroup",
                "--pid",
                "--time",
                "--kill-child",
                "sleep",
                "1000",
            ])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let pid = unshare.id();
        let children = format!("/proc/{pid}/task/{pid}/children");
        let deadline = Instant::now() + patience(Duration::from_secs(10));
        let child = loop {
            let text = std::fs::read_to_string(&children).unwrap_or_default();
            if let Some(c) = text.split_whitespace().next() {
                // The child is forked before it execs sleep; its namespaces are set by then.
                break c.parse().unwrap();
            }
            assert!(Instant::now() < deadline, "unshare did not fork");
            std::thread::sleep(Duration::from_millis(10));
        };
        Holder { unshare, child }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        // --kill-child: its child dies with it.
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
    }
}

#[test]
fn joins_bind_mounted_namespaces_of_every_type() {
    let env = Env::new("bindns");
    let holder = Holder::start();
    let dir = env.dir.join("ns");
    std::fs::create_dir_all(&dir).unwrap();
    let _private = HostMount::private(&dir);
    let kinds = [
        ("ipc", "ipc"),
        ("uts", "uts"),
        ("mount", "mnt"),
        ("cgroup", "cgroup"),
        ("pid", "pid"),
        ("time", "time"),
    ];
    let mut binds = Vec::new();
    let mut b = env.bundle(
        "b",
        &[
            "sh",
            "-c",
            "for n in ipc uts mnt cgroup pid time; do readlink /proc/self/ns/$n; done; echo pid=$$",
        ],
    );
    b.config.as_object_mut().unwrap().remove("hostname");
    for (typ, kind) in kinds {
        let target = dir.join(kind);
        let source = PathBuf::from(format!("/proc/{}/ns/{kind}", holder.child));
        binds.push(HostMount::bind_file(&source, &target));
        set_ns(&mut b.config, typ, Some(&target));
    }
    b.save();
    let id = env.id("c");
    let out = env.run_ok(&b, &id);
    let lines: Vec<&str> = out.lines().collect();
    for (line, (_, kind)) in lines.iter().zip(kinds) {
        let bind = dir.join(kind);
        assert_eq!(*line, host_view(kind, &bind), "{kind}: {out}");
        // And it is the holder's, not the host's.
        let host = std::fs::read_link(format!("/proc/self/ns/{kind}")).unwrap();
        assert_ne!(*line, host.to_string_lossy(), "{kind} is the host's");
    }
    // The holder is pid 1 of the joined pid namespace.
    assert_ne!(lines[6], "pid=1", "{out}");
    env.assert_nothing_left(&id);
    drop(binds);
}

#[test]
fn a_path_that_is_no_namespace_or_of_another_type_is_refused() {
    let env = Env::new("wrongns");
    let dir = env.dir.join("ns");
    std::fs::create_dir_all(&dir).unwrap();
    let _private = HostMount::private(&dir);
    // A bind-mounted ipc and user namespace (the runtime's own), and a regular file.
    let ipc = HostMount::bind_file(Path::new("/proc/self/ns/ipc"), &dir.join("ipc"));
    let user = HostMount::bind_file(Path::new("/proc/self/ns/user"), &dir.join("user"));
    let plain = dir.join("plain");
    std::fs::write(&plain, "not a namespace").unwrap();
    let mut b = env.bundle("b", &["true"]);
    b.config.as_object_mut().unwrap().remove("hostname");
    let id = env.id("c");
    let cases = [
        (
            "network",
            &ipc.0,
            format!(
                "namespace path {} is a namespace of type ipc, not net",
                ipc.0.display()
            ),
        ),
        (
            "uts",
            &user.0,
            format!(
                "namespace path {} is a namespace of type user, not uts",
                user.0.display()
            ),
        ),
        (
            "network",
            &plain,
            format!("namespace path {} is not a namespace", plain.display()),
        ),
    ];
    for (typ, path, want) in cases {
        set_ns(&mut b.config, typ, Some(path));
        b.save();
        let (code, out, err) = env.run(&b, &id);
        assert_eq!(code, 1, "{typ} at {}: {out}{err}", path.display());
        assert!(err.contains(&want), "want {want:?} in: {err}");
        env.assert_nothing_left(&id);
        set_ns(&mut b.config, typ, None);
    }
}

#[test]
fn hostname_and_domainname_are_set_in_a_joined_uts_namespace() {
    let env = Env::new("utsjoin");
    let holder = Holder::start();
    let uts = PathBuf::from(format!("/proc/{}/ns/uts", holder.child));
    let mut b = env.bundle("b", &["sh", "-c", "hostname; readlink /proc/self/ns/uts"]);
    b.config["hostname"] = json!("joined-host");
    b.config["domainname"] = json!("joined-domain");
    set_ns(&mut b.config, "uts", Some(&uts));
    b.save();
    let id = env.id("c");
    let out = env.run_ok(&b, &id);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "joined-host",
            std::fs::read_link(&uts).unwrap().to_str().unwrap()
        ]
    );
    // The holder, which never ran in the container, sees both in its namespace.
    for (file, want) in [("hostname", "joined-host"), ("domainname", "joined-domain")] {
        let out = Command::new("nsenter")
            .args(["-t", &holder.child.to_string(), "-u", "cat"])
            .arg(format!("/proc/sys/kernel/{file}"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), want, "{file}");
    }
    env.assert_nothing_left(&id);

    // Without a uts namespace they would be the host's: refused, as runc does.
    for field in ["hostname", "domainname"] {
        let mut b = env.bundle(field, &["true"]);
        b.config.as_object_mut().unwrap().remove("hostname");
        b.config[field] = json!("not-the-host");
        b.config["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "uts");
        b.save();
        let id = env.id(field);
        let (code, _, err) = env.run(&b, &id);
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains(&format!("{field} requires a uts namespace")),
            "{err}"
        );
        env.assert_nothing_left(&id);
    }
}

/// The optional fields (propagation) of the host's `/` in our mountinfo.
fn root_propagation() -> String {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = info
        .lines()
        .find(|l| l.split_whitespace().nth(4) == Some("/"))
        .unwrap();
    let f: Vec<&str> = line.split_whitespace().collect();
    let sep = f.iter().position(|x| *x == "-").unwrap();
    f[6..sep].join(" ")
}

/// Mount points at or below `dir` in our mount namespace.
fn mounts_under(dir: &Path) -> Vec<String> {
    let d = dir.to_str().unwrap();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4).map(str::to_string))
        .filter(|mp| mp == d || mp.starts_with(&format!("{d}/")))
        .collect()
}

/// A config without a mount namespace, as runc runs it: in the runtime's mount namespace,
/// chrooted into the rootfs, with the config's mounts (the default ones: proc, /dev, sysfs,
/// cgroup...) made there. Unlike runc, the host's `/` keeps its propagation, and nothing stays
/// mounted once the container is deleted.
#[test]
fn runs_without_a_mount_namespace_and_leaves_nothing_mounted() {
    let env = Env::new("nomntns");
    let script = "readlink /proc/self/ns/mnt; ls /; touch /x 2>/dev/null || echo read-only; \
                  ls /dev/null /sys/fs/cgroup >/dev/null && echo mounts-ok; exec sleep 1000";
    let mut b = env.bundle("b", &["sh", "-c", script]);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "mount");
    // runc refuses these without a mount namespace (they would be the host's paths).
    b.config["linux"]["maskedPaths"] = json!([]);
    b.config["linux"]["readonlyPaths"] = json!([]);
    assert_eq!(b.config["root"]["readonly"], json!(true));
    b.save();
    let propagation = root_propagation();
    let id = env.id("c");
    let out_path = env.dir.join("out");
    let status = Command::new(BIN)
        .arg("--root")
        .arg(&env.root)
        .args(["run", "-d", "--bundle", b.path_str(), &id])
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(env.dir.join("err")).unwrap())
        .status()
        .unwrap();
    let err = std::fs::read_to_string(env.dir.join("err")).unwrap();
    assert!(status.success(), "{err}");
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    let deadline = Instant::now() + patience(Duration::from_secs(10));
    while std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default() != "sleep\n" {
        assert!(
            Instant::now() < deadline,
            "the container did not get to sleep"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = std::fs::read_to_string(&out_path).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    // The host's mount namespace, the rootfs as root (read-only), the mounts made.
    let host_mnt = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    assert_eq!(lines[0], host_mnt.to_str().unwrap(), "{out}");
    assert!(lines.contains(&"bin") && !lines.contains(&"usr"), "{out}");
    assert!(
        lines.contains(&"read-only") && lines.contains(&"mounts-ok"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/root")).unwrap(),
        b.rootfs()
    );
    // The host sees them, as with runc; its / keeps its propagation.
    let under = mounts_under(&b.rootfs());
    for m in ["", "/proc", "/dev", "/sys"] {
        let want = format!("{}{m}", b.rootfs().display());
        assert!(under.contains(&want), "{want} not in {under:?}");
    }
    assert_eq!(root_propagation(), propagation);
    // exec lands in the container's root too.
    let out = env.cmd(&["exec", &id, "ls", "/"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.lines().any(|l| l == "bin") && !text.contains("usr"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(env.cmd(&["delete", "--force", &id]).status.success());
    assert_eq!(mounts_under(&b.rootfs()), Vec::<String>::new());
    env.assert_nothing_left(&id);

    // maskedPaths or readonlyPaths: refused (as runc), nothing made.
    b.config["linux"]["maskedPaths"] = json!(["/proc/kcore"]);
    b.save();
    let (code, _, err) = env.run(&b, &id);
    assert_eq!(code, 1);
    assert!(
        err.contains("maskedPaths and readonlyPaths need a mount namespace"),
        "{err}"
    );
    env.assert_nothing_left(&id);

    // A failure in the init (a mount the kernel refuses) leaves no mount either.
    b.config["linux"]["maskedPaths"] = json!([]);
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/bad", "type": "no-such-fs", "source": "none"}));
    b.save();
    let (code, _, err) = env.run(&b, &id);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("/bad"), "{err}");
    assert_eq!(mounts_under(&b.rootfs()), Vec::<String>::new());
    env.assert_nothing_left(&id);
}

/// When the rootfs is a mount point already (an engine's overlay), delete detaches what the
/// container stacked on it, and not that mount.
#[test]
fn without_a_mount_namespace_a_rootfs_mount_point_is_kept() {
    let env = Env::new("nomntnsmp");
    let mut b = env.bundle("b", &["sh", "-c", "cat /proc/self/cgroup >/dev/null"]);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "mount");
    b.config["linux"]["maskedPaths"] = json!([]);
    b.config["linux"]["readonlyPaths"] = json!([]);
    b.save();
    let engine = HostMount::private(&b.rootfs());
    let before = mounts_under(&b.rootfs());
    assert_eq!(before.len(), 1);
    let id = env.id("c");
    env.run_ok(&b, &id);
    assert_eq!(mounts_under(&b.rootfs()), before);
    assert!(!env.root.join(&id).exists());
    drop(engine);
    env.assert_nothing_left(&id);
}
