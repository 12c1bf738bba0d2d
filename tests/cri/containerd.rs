//! The private containerd of the CRI test: its namespaces, config (the CRI plugin, the
//! runtime handlers, the CNI network), the image, the CRI client, and the cleanup that nothing
//! escapes (see [`Containerd`]'s `Drop`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::Channel;

use crate::common::*;
use crate::{HANDLERS, IMAGE, SUBNET, cgroup_pids};

/// The private containerd, its namespaces, and a CRI client on its socket.
pub struct Containerd {
    pub env: Env,
    sock: PathBuf,
    /// `unshare` and its only child, the pid namespace's init (docker-init, which runs
    /// containerd); taken by `drop`.
    ns: Option<Namespaced>,
    rt: tokio::runtime::Runtime,
    client: RuntimeServiceClient<Channel>,
}

impl Containerd {
    pub fn start() -> Containerd {
        let env = Env::new("cri");
        for bin in [
            "containerd",
            "ctr",
            "/usr/bin/docker-init",
            "/usr/lib/cni/bridge",
        ] {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {bin}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                found,
                "{bin} is missing: scripts/deps.sh installs containerd, docker.io (docker-init) \
                 and containernetworking-plugins"
            );
        }
        let d = env.dir.clone();
        let sock = d.join("containerd.sock");
        let image = make_image(&env);
        write_cni_config(&d);
        std::fs::write(d.join("config.toml"), containerd_config(&d, &sock)).unwrap();
        let log = std::fs::File::create(d.join("containerd.log")).unwrap();
        // Inside the namespaces: private /run (shim sockets) and /var/lib (the CNI plugins'
        // cache, /var/lib/cni), `lo` up (the pods' host network, the streaming server).
        let setup = "mount -t tmpfs -o mode=755 tmpfs /run && \
             mount -t tmpfs -o mode=755 tmpfs /var/lib && ip link set lo up && exec \"$@\"";
        let bin_dir = Path::new(BIN).parent().unwrap();
        let path = format!(
            "{}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into())
        );
        let mut c = Command::new("unshare");
        c.args([
            "--net",
            "--mount",
            "--pid",
            "--fork",
            "--kill-child",
            "--mount-proc",
        ])
        .args(["--propagation", "private", "sh", "-c", setup, "sh"])
        .args(["/usr/bin/docker-init", "-g", "--", "containerd", "--config"])
        .arg(d.join("config.toml"))
        .env("PATH", path)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
        let ns = Namespaced::spawn(c, || read_log(&d));
        let (ns_pid, init) = (ns.unshare.id() as i32, ns.init);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let deadline = Instant::now() + patience(Duration::from_secs(60));
        let channel = loop {
            if let Ok(ch) = rt.block_on(connect(&sock)) {
                let mut c = RuntimeServiceClient::new(ch.clone());
                let v = rt.block_on(c.version(cri::VersionRequest::default()));
                if v.is_ok() {
                    break ch;
                }
            }
            assert!(
                Instant::now() < deadline && children_of(ns_pid).contains(&init),
                "containerd's CRI did not come up:\n{}",
                read_log(&d)
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let daemon = Containerd {
            client: RuntimeServiceClient::new(channel),
            rt,
            env,
            sock,
            ns: Some(ns),
        };
        let (code, _, err) = daemon.ctr(&["-n", "k8s.io", "images", "import"], &image);
        assert_eq!(code, 0, "ctr images import: {err}");
        daemon
    }

    /// A client for one call (a clone shares the connection).
    fn init(&self) -> i32 {
        self.ns.as_ref().expect("running").init
    }

    pub fn rs(&self) -> RuntimeServiceClient<Channel> {
        self.client.clone()
    }

    /// Run a CRI call to its answer, failing the test on an error or after 2 minutes.
    pub fn call<T>(
        &self,
        what: &str,
        f: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> T {
        match self.try_call(f) {
            Some(Ok(r)) => r,
            Some(Err(s)) => panic!(
                "{what}: {} {}\n{}",
                s.code(),
                s.message(),
                read_log(&self.env.dir)
            ),
            None => panic!("{what} did not answer"),
        }
    }

    pub fn try_call<T>(
        &self,
        f: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Option<Result<T, tonic::Status>> {
        let base = Duration::from_secs(120);
        // The timer is made inside the runtime (a timeout made outside it has no clock).
        let r = self
            .rt
            .block_on(async { tokio::time::timeout(patience(base), f).await });
        r.ok().map(|r| r.map(tonic::Response::into_inner))
    }

    pub fn container_status(&self, id: &str) -> cri::ContainerStatusResponse {
        self.call(
            &format!("ContainerStatus {id}"),
            self.rs().container_status(cri::ContainerStatusRequest {
                container_id: id.into(),
                verbose: true,
            }),
        )
    }

    /// ExecSync: (exit code, stdout, stderr).
    pub fn exec_sync(&self, id: &str, cmd: &[&str]) -> (i32, String, String) {
        let r = self.call(
            &format!("ExecSync {cmd:?}"),
            self.rs().exec_sync(cri::ExecSyncRequest {
                container_id: id.into(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                timeout: patience(Duration::from_secs(60)).as_secs() as i64,
            }),
        );
        (
            r.exit_code,
            String::from_utf8_lossy(&r.stdout).into_owned(),
            String::from_utf8_lossy(&r.stderr).into_owned(),
        )
    }

    /// The host pid of a container's process (the only one in its cgroup but for execs).
    pub fn container_pid(&self, parent: &str, id: &str) -> i32 {
        let pids = cgroup_pids(parent, id);
        *pids
            .first()
            .unwrap_or_else(|| panic!("no process in {id}'s cgroup"))
    }

    /// containerd's host pid: the namespace's init's child.
    pub fn containerd_pid(&self) -> i32 {
        *children_of(self.init()).first().expect("containerd runs")
    }

    fn ctr(&self, args: &[&str], file: &Path) -> (i32, String, String) {
        let mut c = Command::new("ctr");
        c.arg("--address").arg(&self.sock).args(args).arg(file);
        code_out_err(&self.env.output(c))
    }

    /// Nothing of a removed pod is left: no sandbox or container in the CRI's lists, no
    /// process in its cgroups and no cgroup directory below its parent, no mount of
    /// containerd's (rootfs, shm, the pod's network namespace) naming it, no shim or runtime
    /// state, no veth in the test's network namespace.
    pub fn assert_nothing_left(&self, pod: &str, ids: &[&str]) {
        let pods = self.call(
            "ListPodSandbox",
            self.rs()
                .list_pod_sandbox(cri::ListPodSandboxRequest::default()),
        );
        assert!(
            pods.items.is_empty(),
            "{pod}: sandboxes left: {:?}",
            pods.items
        );
        let ctrs = self.call(
            "ListContainers",
            self.rs()
                .list_containers(cri::ListContainersRequest::default()),
        );
        assert!(
            ctrs.containers.is_empty(),
            "{pod}: containers left: {:?}",
            ctrs.containers
        );
        wait_until(
            &format!("{pod}: the processes in the test's cgroups to end"),
            Duration::from_secs(10),
            || processes_in_cgroup(&self.env.cgroup_prefix).is_empty(),
        );
        for dir in self.env.cgroup_dirs() {
            let left: Vec<_> = std::fs::read_dir(&dir)
                .unwrap()
                .flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.path())
                .collect();
            assert!(
                left.is_empty(),
                "{pod}: cgroups left below {}: {left:?}",
                dir.display()
            );
        }
        let left = self.pod_mounts(ids);
        assert!(
            left.is_empty(),
            "{pod}: mounts left in containerd's namespace: {left:?}"
        );
        let dirs = [
            self.env.dir.join("runtime-root/k8s.io"),
            self.env
                .dir
                .join("state/io.containerd.runtime.v2.task/k8s.io"),
        ];
        for dir in dirs {
            let left: Vec<_> = std::fs::read_dir(&dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name())
                .collect();
            assert!(
                left.is_empty(),
                "{pod}: state left in {}: {left:?}",
                dir.display()
            );
        }
        let links = self.in_netns(&["ip", "-o", "link", "show", "type", "veth"]);
        assert_eq!(links.trim(), "", "{pod}: veths left");
    }

    /// The mount points in containerd's mount namespace that belong to a pod whose sandbox
    /// and container ids are `ids`: its rootfs overlays, the sandbox's shm, the network
    /// namespace's bind mount (all under the test's directory; the namespace also holds copies
    /// of the host's mounts, other users' /run/netns/* among them).
    pub fn pod_mounts(&self, ids: &[&str]) -> Vec<String> {
        let mounts =
            std::fs::read_to_string(format!("/proc/{}/mountinfo", self.containerd_pid())).unwrap();
        let ours = format!("{}/", self.env.dir.display());
        mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4))
            .filter(|mp| mp.starts_with(&ours))
            .filter(|mp| ids.iter().any(|id| mp.contains(id)) || mp.contains("/netns/"))
            .map(str::to_string)
            .collect()
    }

    /// A command in the test's network namespace (containerd's); its stdout.
    fn in_netns(&self, args: &[&str]) -> String {
        let mut c = Command::new("nsenter");
        c.arg("-t")
            .arg(self.init().to_string())
            .args(["-n", "--"])
            .args(args);
        ok(
            &self.env.output(c),
            &format!("{args:?} in the test's netns"),
        )
    }
}

impl Drop for Containerd {
    /// Cleanup, certain whatever happened:
    /// 1. while the CRI answers: every sandbox stopped and removed (with its containers);
    /// 2. SIGTERM to the pid namespace's init (docker-init passes it to containerd), SIGKILL
    ///    if it is not gone in 30 s: when that init ends the kernel kills every process of the
    ///    namespace (containerd, shims, containers), and unshare exits only after;
    /// 3. then the mount namespace (overlays, shm, netns binds) and the network namespace
    ///    (bridge, veths) have no process left and go away;
    /// 4. the Env then removes the cgroup directories under the test's prefix and the
    ///    directory.
    fn drop(&mut self) {
        let Some(mut ns) = self.ns.take() else { return };
        if ns.running()
            && let Some(Ok(pods)) = self.try_call(
                self.rs()
                    .list_pod_sandbox(cri::ListPodSandboxRequest::default()),
            )
        {
            for p in pods.items {
                let id = p.id;
                let _ = self.try_call(self.rs().stop_pod_sandbox(cri::StopPodSandboxRequest {
                    pod_sandbox_id: id.clone(),
                }));
                let _ = self.try_call(
                    self.rs()
                        .remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: id }),
                );
            }
        }
        ns.stop(&self.env.cgroup_prefix);
    }
}

/// A gRPC channel on containerd's unix socket (the URI is a placeholder tonic needs).
async fn connect(sock: &Path) -> Result<Channel, tonic::transport::Error> {
    let sock = sock.to_path_buf();
    tonic::transport::Endpoint::from_static("http://[::]:50051")
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let sock = sock.clone();
            async move {
                let s = tokio::net::UnixStream::connect(sock).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
            }
        }))
        .await
}

/// containerd's config: private root, state, sockets and plugin dirs; the CRI plugin with
/// our image as the sandbox image, the handlers of [`HANDLERS`], cgroupfs, and the CNI
/// config of [`write_cni_config`].
fn containerd_config(d: &Path, sock: &Path) -> String {
    let cri = "plugins.\"io.containerd.grpc.v1.cri\"";
    let mut runtimes = String::new();
    for h in HANDLERS {
        runtimes += &format!(
            "[{cri}.containerd.runtimes.{name}]\n  runtime_type = {rt:?}\n\
             [{cri}.containerd.runtimes.{name}.options]\n{opts}\n",
            name = h.name,
            rt = h.runtime_type,
            opts = (h.options)(d),
        );
    }
    format!(
        "version = 2
root = {root:?}
state = {state:?}
[grpc]
  address = {sock:?}
[ttrpc]
  address = \"{sock}.ttrpc\"
[plugins.\"io.containerd.internal.v1.opt\"]
  path = {opt:?}
[{cri}]
  sandbox_image = {IMAGE:?}
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  restrict_oom_score_adj = {restrict_oom}
  stream_server_address = \"127.0.0.1\"
  stream_server_port = \"0\"
[{cri}.cni]
  bin_dir = \"/usr/lib/cni\"
  conf_dir = {cni:?}
[{cri}.containerd]
  snapshotter = \"overlayfs\"
  default_runtime_name = {default:?}
{runtimes}",
        root = d.join("root"),
        state = d.join("state"),
        sock = sock.display(),
        opt = d.join("opt"),
        cni = d.join("cni"),
        default = HANDLERS[0].name,
        restrict_oom = !has_cap_sys_resource(),
    )
}

/// Whether the test may lower an oom_score_adj (CAP_SYS_RESOURCE). The CRI plugin gives every
/// sandbox -998; without the capability (this project's machines run in a container that
/// lacks it) no runtime can set that (runc fails as cofferdam does), and containerd's
/// `restrict_oom_score_adj` keeps each value at or above containerd's own.
fn has_cap_sys_resource() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    // CAP_SYS_RESOURCE is capability 24.
    eff & (1 << 24) != 0
}

/// The pod network: Debian's CNI bridge plugin with host-local addresses kept in the test's
/// directory (the loopback plugin the CRI plugin adds itself).
fn write_cni_config(d: &Path) {
    let conf = serde_json::json!({
        "cniVersion": "0.4.0",
        "name": "cofferdam-cri",
        "plugins": [{
            "type": "bridge",
            "bridge": "cni-cofferdam",
            "isGateway": true,
            "ipMasq": false,
            "ipam": {
                "type": "host-local",
                "ranges": [[{ "subnet": SUBNET }]],
                "dataDir": d.join("cni-ipam"),
            },
        }],
    });
    std::fs::create_dir_all(d.join("cni")).unwrap();
    std::fs::write(d.join("cni/10-cofferdam.conflist"), conf.to_string()).unwrap();
}

/// A busybox image as a Docker archive (`manifest.json`, the config, one layer), which
/// `ctr images import` takes. It serves as the sandbox (pause) image too: its command,
/// `sleep`, is what the pod's sandbox container runs.
fn make_image(env: &Env) -> PathBuf {
    let dir = env.dir.join("image");
    let rootfs = dir.join("rootfs");
    make_busybox_rootfs(&rootfs);
    let sh = |script: &str| {
        let out = Command::new("sh")
            .args(["-c", script])
            .current_dir(&dir)
            .output()
            .unwrap();
        ok(&out, script)
    };
    sh("tar -C rootfs -cf layer.tar .");
    let digest = sh("sha256sum layer.tar");
    let digest = digest.split_whitespace().next().unwrap();
    let config = serde_json::json!({
        "architecture": match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            a => a,
        },
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sleep", "1000000000"],
            "WorkingDir": "/",
        },
        "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{digest}")] },
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let manifest = serde_json::json!([{
        "Config": "config.json",
        "RepoTags": [IMAGE],
        "Layers": ["layer.tar"],
    }]);
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
    sh("tar -cf image.tar manifest.json config.json layer.tar");
    dir.join("image.tar")
}

fn read_log(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("containerd.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
