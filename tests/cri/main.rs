//! Kubernetes' path (#12): the kubelet's calls, made by a real CRI client (k8s-cri's
//! generated v1 client over tonic), to containerd's CRI plugin, whose runtime handler runs
//! cofferdam. Each pod is checked through the CRI's answers, the containers themselves and the
//! kernel's files read from the host (cgroups, `/proc`).
//!
//! The containerd is private, and nothing of it can reach or outlive the test:
//! - it runs in a network, mount and pid namespace of the test's own (`unshare`), as the
//!   Docker tests' dockerd does: the CNI bridge, veths, pod addresses and the streaming
//!   server exist only in that network namespace, which has no route out. In its mount
//!   namespace `/run` and `/var/lib` are tmpfs (shim sockets, the CNI plugins' cache), so
//!   nothing of it lands on the host's.
//! - its own root, state, socket, config (containerd.rs), CNI config and
//!   IPAM directory, cofferdam's state root, pod logs, in the test's directory; the cgroupfs
//!   driver with every pod's cgroup parent under the test's cgroup prefix.
//! - the image (sandbox and containers) is a busybox rootfs made here, imported as a Docker
//!   archive with `ctr -n k8s.io images import`: no registry is reachable.
//! - cleanup: `Drop` of [`Containerd`], however the test ends, and the kernel when the test
//!   process is killed (unshare's parent-death signal).
//!
//! The pods run on every handler of [`HANDLERS`] (a RuntimeClass's `handler`), one with the
//! host's network (the test's namespace) and one on the CNI bridge.

#[path = "../common/mod.rs"]
mod common;
mod containerd;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use containerd::Containerd;
use k8s_cri::v1 as cri;
use serde_json::Value;

/// A runtime handler of the CRI plugin: one `[...containerd.runtimes.NAME]` entry of its
/// config, which a pod picks by name (`runtime_handler`, a RuntimeClass's `handler`).
struct Handler {
    name: &'static str,
    /// The shim containerd starts: `io.containerd.X.vN` is `containerd-shim-X-vN` on PATH
    /// (containerd's PATH starts with the directory of the binaries cargo built).
    runtime_type: &'static str,
    /// The entry's `options` table (TOML lines), given the test's directory.
    options: fn(&Path) -> String,
    /// The shim's binary, as containerd starts it.
    shim: &'static str,
}

/// The handlers every pod of the test runs on.
const HANDLERS: &[Handler] = &[
    Handler {
        name: "cofferdam",
        // containerd's runc v2 shim, with cofferdam as its runc binary; its state root in the
        // test's directory.
        runtime_type: "io.containerd.runc.v2",
        shim: "containerd-shim-runc-v2",
        options: |dir| {
            format!(
                "BinaryName = {BIN:?}\nRoot = {:?}\nSystemdCgroup = false\n",
                dir.join("runtime-root")
            )
        },
    },
    Handler {
        name: "cofferdam-native",
        // containerd-shim-cofferdam-v2 (shim/), which calls the library itself and keeps each
        // task's state in its bundle; it takes no options. Built by `cargo build --workspace` or
        // `cargo test -p containerd-shim-cofferdam --no-run` (scripts/test.sh does).
        runtime_type: "io.containerd.cofferdam.v2",
        shim: "containerd-shim-cofferdam-v2",
        options: |_| String::new(),
    },
];

const IMAGE: &str = "localhost/cofferdam-cri-busybox:1";
/// The CNI network's subnet, inside the test's network namespace only.
const SUBNET: &str = "10.214.0.0/24";
const MIB: i64 = 1024 * 1024;

#[test]
fn cri_pods_run_on_cofferdam() {
    let shim = Path::new(BIN)
        .parent()
        .unwrap()
        .join("containerd-shim-cofferdam-v2");
    assert!(
        shim.exists(),
        "{} is not built: run `cargo build --workspace` first",
        shim.display()
    );
    let d = Containerd::start();
    let version = d.call("Version", d.rs().version(cri::VersionRequest::default()));
    assert_eq!(
        (
            version.runtime_name.as_str(),
            version.runtime_api_version.as_str()
        ),
        ("containerd", "v1"),
        "{version:?}"
    );
    for h in HANDLERS {
        pod(&d, h, "host");
        pod(&d, h, "cni");
    }
}

/// One pod on handler `h`, with the test's network (`host`) or on the CNI bridge (`cni`): two
/// containers through every call of their life, each step checked.
fn pod(d: &Containerd, h: &Handler, net: &str) {
    let pod_name = format!("{}-{net}", h.name);
    let what = |s: &str| format!("{pod_name}: {s}");
    let cgroup_parent = format!("{}_{}", d.env.cgroup_prefix, pod_name.replace('-', ""));
    let logs = d.env.dir.join("logs").join(&pod_name);
    std::fs::create_dir_all(&logs).unwrap();
    let mode = |m: cri::NamespaceMode| m as i32;
    let network = if net == "host" {
        cri::NamespaceMode::Node
    } else {
        cri::NamespaceMode::Pod
    };
    let pod_config = cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: pod_name.clone(),
            uid: format!("uid-{pod_name}-{}", std::process::id()),
            namespace: "default".into(),
            attempt: 0,
        }),
        // The kubelet names only pods of their own network (and UTS) namespace: a pod on the
        // host's network has the host's name.
        hostname: if net == "host" {
            String::new()
        } else {
            pod_name.clone()
        },
        log_directory: logs.to_string_lossy().into_owned(),
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: cgroup_parent.clone(),
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(cri::NamespaceOption {
                    network: mode(network),
                    pid: mode(cri::NamespaceMode::Container),
                    ipc: mode(cri::NamespaceMode::Pod),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let sandbox = d
        .call(
            &what("RunPodSandbox"),
            d.rs().run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(pod_config.clone()),
                runtime_handler: h.name.into(),
            }),
        )
        .pod_sandbox_id;
    let status = d.call(
        &what("PodSandboxStatus"),
        d.rs().pod_sandbox_status(cri::PodSandboxStatusRequest {
            pod_sandbox_id: sandbox.clone(),
            verbose: true,
        }),
    );
    let st = status.status.as_ref().unwrap();
    assert_eq!(
        st.state,
        cri::PodSandboxState::SandboxReady as i32,
        "{st:?}"
    );
    let info: Value = serde_json::from_str(&status.info["info"]).unwrap();
    assert_eq!(info["runtimeHandler"], h.name, "{info}");
    // The sandbox's own network namespace: none for the host's network; for the pod's, the
    // bind mount the CRI plugin made (under its state dir), which cofferdam joins by path.
    let sandbox_net = ns_path(&info["runtimeSpec"], "network");
    match net {
        "host" => assert_eq!(sandbox_net, None, "{}", what("the sandbox's network")),
        _ => assert!(
            sandbox_net.as_ref().is_some_and(|p| p
                .starts_with(&d.env.dir.join("state").to_string_lossy().into_owned())
                && p.contains("/netns/")),
            "{}: {sandbox_net:?}",
            what("the sandbox's network namespace path")
        ),
    }
    let sandbox_pid = info["pid"].as_i64().unwrap();
    let pod_ip = st
        .network
        .as_ref()
        .map(|n| n.ip.clone())
        .unwrap_or_default();
    if net == "cni" {
        assert!(
            pod_ip.starts_with(SUBNET.trim_end_matches("0/24")),
            "{}",
            what(&format!(
                "the pod's address {pod_ip:?} is not on the CNI bridge"
            ))
        );
    }
    let pause = cgroup_pids(&cgroup_parent, &sandbox);
    assert_eq!(pause.len(), 1, "{}", what("the sandbox's process"));

    // Two containers: `a` listens on localhost and prints what it gets, `b` stops on TERM.
    let limits = cri::LinuxContainerResources {
        cpu_period: 100_000,
        cpu_quota: 50_000,
        cpu_shares: 512,
        memory_limit_in_bytes: 64 * MIB,
        ..Default::default()
    };
    let container = |name: &str, script: &str| cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(cri::ImageSpec {
            image: IMAGE.into(),
            ..Default::default()
        }),
        command: vec!["sh".into(), "-c".into(), script.into()],
        log_path: format!("{name}.log"),
        linux: Some(cri::LinuxContainerConfig {
            resources: Some(limits.clone()),
            security_context: Some(cri::LinuxContainerSecurityContext {
                run_as_user: Some(cri::Int64Value { value: 1000 }),
                seccomp: Some(cri::SecurityProfile {
                    profile_type: cri::security_profile::ProfileType::RuntimeDefault as i32,
                    ..Default::default()
                }),
                namespace_options: Some(cri::NamespaceOption {
                    network: mode(network),
                    pid: mode(cri::NamespaceMode::Container),
                    ipc: mode(cri::NamespaceMode::Pod),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }),
        ..Default::default()
    };
    let mut ids = Vec::new();
    for (name, script) in [
        (
            "a",
            // nc's stdin must not end: at its end busybox nc shuts its side of the
            // connection, and a client that sees that before it has read its own stdin
            // leaves without sending (the test then waited for text that never came).
            "sleep 1000000000 | { nc -l -p 8080; echo listener-done; exec sleep 1000000000; }",
        ),
        ("b", "trap 'exit 3' TERM; while :; do sleep 1; done"),
    ] {
        let id = d
            .call(
                &what(&format!("CreateContainer {name}")),
                d.rs().create_container(cri::CreateContainerRequest {
                    pod_sandbox_id: sandbox.clone(),
                    config: Some(container(name, script)),
                    sandbox_config: Some(pod_config.clone()),
                }),
            )
            .container_id;
        d.call(
            &what(&format!("StartContainer {name}")),
            d.rs().start_container(cri::StartContainerRequest {
                container_id: id.clone(),
            }),
        );
        ids.push(id);
    }
    let (a, b) = (ids[0].clone(), ids[1].clone());

    // ContainerStatus: running, and the namespaces of the pod joined by path.
    for id in [&a, &b] {
        let s = d.container_status(id);
        let cs = s.status.as_ref().unwrap();
        assert_eq!(
            cs.state,
            cri::ContainerState::ContainerRunning as i32,
            "{cs:?}"
        );
        // The pod's namespaces, joined by the sandbox's process (its pid in containerd's
        // pid namespace).
        let info: Value = serde_json::from_str(&s.info["info"]).unwrap();
        for t in ["network", "ipc"] {
            let nst = if t == "network" { "net" } else { t };
            assert_eq!(
                ns_path(&info["runtimeSpec"], t),
                Some(format!("/proc/{sandbox_pid}/ns/{nst}")),
                "{}",
                what(&format!("the container's {t} namespace"))
            );
        }
    }

    // From the host: the pod's containers share the sandbox's net and ipc namespaces; the
    // network is the test's own namespace (containerd's) or another one; each container
    // runs as uid 1000 under the RuntimeDefault seccomp filter.
    let ns = |pid: i32, t: &str| {
        std::fs::read_link(format!("/proc/{pid}/ns/{t}"))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    let (pa, pb) = (
        d.container_pid(&cgroup_parent, &a),
        d.container_pid(&cgroup_parent, &b),
    );
    for t in ["net", "ipc"] {
        assert_eq!(ns(pa, t), ns(pause[0], t), "{}", what(&format!("a's {t}")));
        assert_eq!(ns(pb, t), ns(pause[0], t), "{}", what(&format!("b's {t}")));
    }
    assert_ne!(ns(pa, "pid"), ns(pb, "pid"), "{}", what("pid namespaces"));
    assert_eq!(
        ns(pa, "net") == ns(d.containerd_pid(), "net"),
        net == "host",
        "{}",
        what("the pod's network namespace")
    );
    // The handler's own shim holds the containers (their parent: the runc v2 shim is their
    // subreaper, ours forked them), one shim for the whole pod, as containerd groups them.
    let shim_of = |pid: i32| {
        let ppid = ppid(pid);
        let argv = std::fs::read(format!("/proc/{ppid}/cmdline")).unwrap();
        let argv0 = String::from_utf8_lossy(argv.split(|&b| b == 0).next().unwrap()).into_owned();
        (ppid, argv0)
    };
    let (shim_a, argv0) = shim_of(pa);
    assert!(
        argv0.ends_with(h.shim),
        "{}: {argv0}",
        what("the containers' shim")
    );
    assert_eq!(shim_of(pb).0, shim_a, "{}", what("one shim for the pod"));
    for pid in [pa, pb] {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let field = |f: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(f))
                .unwrap_or_default()
                .split_whitespace()
                .collect::<Vec<_>>()
        };
        assert_eq!(field("Seccomp:"), ["2"], "{}", what("seccomp filter mode"));
        assert_eq!(field("Uid:"), ["1000"; 4], "{}", what("runAsUser"));
    }

    // ExecSync: an exec'd process is the container's too.
    let (code, out, err) = d.exec_sync(&a, &["sh", "-c", "id -u; grep Seccomp: /proc/self/status"]);
    assert_eq!(code, 0, "{}: {err}", what("ExecSync"));
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        words,
        ["1000", "Seccomp:", "2"],
        "{}",
        what("ExecSync's output")
    );
    // The pod's name in its own UTS namespace; the host's on the host's network.
    let (_, out, _) = d.exec_sync(&a, &["hostname"]);
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    let want = if net == "host" { &host } else { &pod_name };
    assert_eq!(out.trim(), want, "{}", what("hostname"));
    let (code, _, _) = d.exec_sync(&a, &["sh", "-c", "exit 7"]);
    assert_eq!(code, 7, "{}", what("ExecSync's exit code"));

    // Two containers of one pod see each other on localhost: b connects to a's listener.
    wait_until(
        &what("b reaching a on localhost"),
        Duration::from_secs(30),
        || {
            let (code, _, _) = d.exec_sync(
                &b,
                &["sh", "-c", "echo hello-over-localhost | nc 127.0.0.1 8080"],
            );
            code == 0
        },
    );
    let log = logs.join("a.log");
    let deadline = std::time::Instant::now() + patience(Duration::from_secs(30));
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("hello-over-localhost") && text.contains("listener-done") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}: {text:?}",
            what("a's log, with what b sent")
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // What the removal must take away (see the end): each container's rootfs, the sandbox's
    // shm, and the bridge pod's network namespace.
    let mounts = d.pod_mounts(&[&sandbox, &a, &b]);
    let has = |part: &str| mounts.iter().any(|m| m.contains(part));
    assert!(
        has(&format!("{a}/rootfs"))
            && has(&format!("{b}/rootfs"))
            && has(&format!("{sandbox}/shm")),
        "{}: {mounts:?}",
        what("the pod's mounts")
    );
    assert_eq!(
        has("/netns/"),
        net == "cni",
        "{}: {mounts:?}",
        what("the netns mount")
    );

    // The limits, as the kernel has them.
    let cg = |id: &str| CgroupFiles::new(&cgroup_parent, id);
    for id in [&a, &b] {
        assert_eq!(cg(id).memory_limit(), 64 * MIB, "{}", what("memory limit"));
        assert_eq!(cg(id).cpu_max(), (50_000, 100_000), "{}", what("cpu quota"));
        assert_eq!(
            cg(id).cpu_shares(),
            in_kernel(512),
            "{}",
            what("cpu shares")
        );
    }

    // ContainerStats: the container's cgroup, as the shim reads it.
    let stats = d
        .call(
            &what("ContainerStats"),
            d.rs().container_stats(cri::ContainerStatsRequest {
                container_id: a.clone(),
            }),
        )
        .stats
        .unwrap();
    assert_eq!(stats.attributes.as_ref().unwrap().id, a);
    let cpu = stats
        .cpu
        .as_ref()
        .and_then(|c| c.usage_core_nano_seconds.as_ref());
    assert!(
        cpu.is_some_and(|c| c.value > 0),
        "{}: {stats:?}",
        what("cpu usage")
    );
    let mem = stats
        .memory
        .as_ref()
        .and_then(|m| m.working_set_bytes.as_ref());
    assert!(
        mem.is_some_and(|m| m.value > 0),
        "{}: {stats:?}",
        what("memory usage")
    );

    // UpdateContainerResources: the new limits reach the cgroup (`cofferdam update`).
    d.call(
        &what("UpdateContainerResources"),
        d.rs()
            .update_container_resources(cri::UpdateContainerResourcesRequest {
                container_id: b.clone(),
                linux: Some(cri::LinuxContainerResources {
                    cpu_quota: 25_000,
                    cpu_shares: 256,
                    memory_limit_in_bytes: 96 * MIB,
                    ..limits.clone()
                }),
                ..Default::default()
            }),
    );
    assert_eq!(
        cg(&b).memory_limit(),
        96 * MIB,
        "{}",
        what("updated memory")
    );
    assert_eq!(
        cg(&b).cpu_max(),
        (25_000, 100_000),
        "{}",
        what("updated quota")
    );
    assert_eq!(
        cg(&b).cpu_shares(),
        in_kernel(256),
        "{}",
        what("updated shares")
    );
    assert_eq!(
        cg(&a).memory_limit(),
        64 * MIB,
        "{}",
        what("a's memory, untouched")
    );

    // StopContainer: TERM, which b's shell traps (exit 3); a's sleep, the pid 1 of its pid
    // namespace, ignores TERM and is killed after the timeout (137).
    for (id, timeout, code) in [(&b, 30, 3), (&a, 1, 137)] {
        d.call(
            &what("StopContainer"),
            d.rs().stop_container(cri::StopContainerRequest {
                container_id: id.clone(),
                timeout,
            }),
        );
        let s = d.container_status(id);
        let cs = s.status.as_ref().unwrap();
        assert_eq!(
            (cs.state, cs.exit_code),
            (cri::ContainerState::ContainerExited as i32, code),
            "{}: {cs:?}",
            what("stopped container")
        );
        d.call(
            &what("RemoveContainer"),
            d.rs().remove_container(cri::RemoveContainerRequest {
                container_id: id.clone(),
            }),
        );
    }
    d.call(
        &what("StopPodSandbox"),
        d.rs().stop_pod_sandbox(cri::StopPodSandboxRequest {
            pod_sandbox_id: sandbox.clone(),
        }),
    );
    d.call(
        &what("RemovePodSandbox"),
        d.rs().remove_pod_sandbox(cri::RemovePodSandboxRequest {
            pod_sandbox_id: sandbox.clone(),
        }),
    );
    d.assert_nothing_left(&pod_name, &[&sandbox, &a, &b]);
}

/// The path of the namespace of type `t` in an OCI spec, if it has that namespace.
fn ns_path(spec: &Value, t: &str) -> Option<String> {
    spec["linux"]["namespaces"]
        .as_array()?
        .iter()
        .find(|n| n["type"] == t)
        .map(|n| n["path"].as_str().unwrap_or_default().to_string())
}

/// The host directories of a container's cgroup (cgroupfs: `<parent>/<id>`), read as the
/// kernel has them, v1 or v2.
struct CgroupFiles(String);

impl CgroupFiles {
    fn new(parent: &str, id: &str) -> CgroupFiles {
        CgroupFiles(format!("{}/{id}", parent.trim_start_matches('/')))
    }

    fn dir(&self, ctrl: &str) -> PathBuf {
        if unified() {
            Path::new("/sys/fs/cgroup").join(&self.0)
        } else {
            Path::new("/sys/fs/cgroup").join(ctrl).join(&self.0)
        }
    }

    fn memory_limit(&self) -> i64 {
        let file = if unified() {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        };
        read(&self.dir("memory"), file).parse().unwrap()
    }

    /// (quota, period) in µs.
    fn cpu_max(&self) -> (i64, i64) {
        let d = self.dir("cpu");
        if unified() {
            let v = read(&d, "cpu.max");
            let (q, p) = v.split_once(' ').unwrap();
            (q.parse().unwrap(), p.parse().unwrap())
        } else {
            let q = read(&d, "cpu.cfs_quota_us").parse().unwrap();
            (q, read(&d, "cpu.cfs_period_us").parse().unwrap())
        }
    }

    /// cpu.shares, or on v2 cpu.weight.
    fn cpu_shares(&self) -> i64 {
        let file = if unified() {
            "cpu.weight"
        } else {
            "cpu.shares"
        };
        read(&self.dir("cpu"), file).parse().unwrap()
    }
}

/// What [`CgroupFiles::cpu_shares`] reads for `shares`: itself, or on v2 the weight runc's
/// conversion gives.
fn in_kernel(shares: i64) -> i64 {
    if unified() {
        1 + (shares - 2) * 9999 / 262_142
    } else {
        shares
    }
}

/// Host pids of the processes in `<parent>/<id>` (its memory cgroup on v1).
fn cgroup_pids(parent: &str, id: &str) -> Vec<i32> {
    let dir = CgroupFiles::new(parent, id).dir("memory");
    read(&dir, "cgroup.procs")
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}
