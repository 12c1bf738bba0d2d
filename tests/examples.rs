//! Every example runs here, as a learner would run it, and its key output is checked: an
//! example that prints the wrong thing (or only prints) fails the suite. Measured values (the
//! cpu quota's throughput) are checked with tolerant bounds. After each run nothing of it may
//! be left: its scratch directory, cgroups and mounts.
//!
//! The examples are the plain binaries `cargo build --examples` makes (`cargo test` with no
//! target flags builds them too; `--all-targets` builds only their test harnesses), found
//! beside the `cofferdam` binary. A missing or stale one fails with the command to build it.
//! The examples run one at a time: the cpu measurement wants the machine to itself.
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::SystemTime;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

struct Run {
    code: i32,
    out: String,
    err: String,
}

impl Run {
    /// The first output line that starts with `prefix`.
    fn line(&self, prefix: &str) -> &str {
        self.out
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{}", self.out))
    }

    /// The number that follows `prefix` in the output.
    fn number_after<T: std::str::FromStr>(&self, prefix: &str) -> T {
        let at = self
            .out
            .find(prefix)
            .unwrap_or_else(|| panic!("no {prefix:?}:\n{}", self.out));
        let word = self.out[at + prefix.len()..]
            .split([' ', ','])
            .next()
            .unwrap();
        word.parse()
            .unwrap_or_else(|_| panic!("not a number after {prefix:?}: {word:?}"))
    }

    fn has(&self, text: &str) {
        assert!(
            self.out.contains(text),
            "{text:?} is not in the output:\n{}\nstderr:\n{}",
            self.out,
            self.err
        );
    }
}

/// Newest modification time of the files under `dir`, `src/bin` left out (the CLI is not in
/// the examples).
fn newest(dir: &Path, newest_so_far: &mut SystemTime) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            if !p.ends_with("src/bin") {
                newest(&p, newest_so_far);
            }
        } else if let Ok(t) = e.metadata().and_then(|m| m.modified()) {
            *newest_so_far = (*newest_so_far).max(t);
        }
    }
}

/// The example's binary, insisting that it is newer than its sources and the library's.
fn example_bin(name: &str) -> PathBuf {
    let dir = Path::new(common::BIN).parent().unwrap().join("examples");
    let bin = dir.join(name);
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sources = SystemTime::UNIX_EPOCH;
    newest(&manifest.join("src"), &mut sources);
    newest(&manifest.join("examples/common"), &mut sources);
    // Only files cargo compiles into the example: cargo rebuilds it when one of them is newer
    // (not for an edit of Cargo.toml that changes nothing it builds).
    let own = manifest.join(format!("examples/{name}.rs"));
    sources = sources.max(own.metadata().unwrap().modified().unwrap());
    let built = bin.metadata().and_then(|m| m.modified());
    assert!(
        built.as_ref().is_ok_and(|t| *t >= sources),
        "{} is {}: build the examples first (cargo build --examples)",
        bin.display(),
        if built.is_ok() {
            "older than its sources"
        } else {
            "missing"
        }
    );
    bin
}

/// Run example `name` with `args` to its end, its output through files (a container keeps
/// the stdio it inherits open), and check that it left nothing behind.
fn run(name: &str, args: &[&str]) -> Run {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let bin = example_bin(name);
    let dir = std::env::temp_dir().join(format!("cofferdam-test-{}-ex-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (out_path, err_path) = (dir.join("out"), dir.join("err"));
    let mut child = Command::new(&bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id();
    let status = child.wait().unwrap();
    let run = Run {
        code: status.code().unwrap_or(-1),
        out: std::fs::read_to_string(&out_path).unwrap(),
        err: std::fs::read_to_string(&err_path).unwrap(),
    };
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "--- example {name} {args:?}: exit {}\n{}{}",
        run.code, run.out, run.err
    );

    // Nothing left: its scratch dir (`cofferdam-example-<scratch>-<pid>`), a cgroup or a mount
    // of that name. The scratch names differ from the example names in one case.
    let scratch = format!(
        "cofferdam-example-{}-{pid}",
        name.replace("run_image", "image")
    );
    assert!(
        !std::env::temp_dir().join(&scratch).exists(),
        "{scratch} is left in {}",
        std::env::temp_dir().display()
    );
    let mut hierarchies = vec![PathBuf::from("/sys/fs/cgroup")];
    hierarchies.extend(
        std::fs::read_dir("/sys/fs/cgroup")
            .unwrap()
            .flatten()
            .map(|e| e.path()),
    );
    for h in hierarchies {
        assert!(
            !h.join(&scratch).exists(),
            "cgroup {} is left",
            h.join(&scratch).display()
        );
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains(&scratch),
        "a mount of {scratch} is left"
    );
    run
}

fn ok(name: &str, args: &[&str]) -> Run {
    let r = run(name, args);
    assert_eq!(r.code, 0, "{name} failed:\n{}\nstderr:\n{}", r.out, r.err);
    r
}

/// `key=value` pairs of an isolation line.
fn fields(line: &str) -> std::collections::HashMap<&str, &str> {
    let mut m = std::collections::HashMap::new();
    let mut rest = line.split_once(": ").unwrap().1;
    // Values may hold spaces (the interfaces): a key starts where the next ` word=` does.
    while let Some((key, after)) = rest.split_once('=') {
        let end = after
            .match_indices(' ')
            .map(|(i, _)| i)
            .find(|&i| {
                after[i + 1..]
                    .split(' ')
                    .next()
                    .is_some_and(|w| w.contains('='))
            })
            .unwrap_or(after.len());
        m.insert(key, after[..end].trim());
        rest = after[end..].trim_start();
    }
    m
}

#[test]
fn busybox() {
    let r = ok("busybox", &[]);
    r.has("hostname: cofferdam-example");
    r.has("my pid: 1\n");
    r.has("container exited with 0");
}

#[test]
fn isolation() {
    let r = ok("isolation", &[]);
    let host = fields(r.line("host: "));
    let chroot = fields(r.line("step 1 no namespace"));
    let mount = fields(r.line("step 2 + mount"));
    let pid = fields(r.line("step 3 + pid"));
    let uts = fields(r.line("step 4 + uts"));
    let net = fields(r.line("step 5 + network"));
    assert_ne!(host["pid"], "1");
    // A chroot alone: the host's pids, hostname, network and mount namespace.
    assert_ne!(chroot["pid"], "1");
    assert_eq!(chroot["hostname"], host["hostname"]);
    assert_eq!(chroot["interfaces"], host["interfaces"]);
    assert_eq!(chroot["mount_ns"], host["mount_ns"]);
    assert_ne!(mount["mount_ns"], host["mount_ns"]);
    assert_ne!(mount["pid"], "1");
    assert_eq!(pid["pid"], "1");
    let seen: usize = pid["processes"].parse().unwrap();
    assert!(
        seen < 10,
        "a new pid namespace shows only the probe's processes: {seen}"
    );
    assert!(host["processes"].parse::<usize>().unwrap() > seen);
    assert_eq!(pid["hostname"], host["hostname"]);
    assert_eq!(uts["hostname"], "box");
    assert_eq!(uts["interfaces"], host["interfaces"]);
    assert_eq!(net["interfaces"], "lo");
    assert_eq!(net["hostname"], "box");
}

#[test]
fn limits() {
    let r = ok("limits", &[]);
    r.has("cpus: inside, nproc 1, Cpus_allowed_list:\t0\n");
    // The quota holds on any machine: no more than half a CPU (and a little for the first
    // burst) however long the work ran.
    let share = r.line("cpu share: ");
    let full: f64 = r.number_after("cpu share: ");
    let limited: f64 = r.number_after(&share[..share.find(", ").unwrap() + 2]);
    assert!(
        (0.1..0.65).contains(&limited),
        "cpu share under the quota: {share}"
    );
    // The throughput ratio is 0.5 where the run without the quota had a whole CPU; where the
    // machine was busy (it got less), the quota takes less away and the ratio is nearer 1.
    let ratio: f64 = r.number_after("cpu quota 50ms/100ms: throughput ratio ");
    if full >= 0.8 {
        assert!(
            (0.3..0.75).contains(&ratio),
            "throughput ratio {ratio}, {share}"
        );
    } else {
        eprintln!("limits: the ratio ({ratio}) is not checked: the machine was busy ({share})");
    }
    r.has("memory 32 MiB: awk exited 137 (SIGKILL: the OOM killer); limit 32 MiB");
    r.has("memory after update to 128 MiB: awk exited 0");
    let pids = r.line("pids limit 16: fork bomb held at ");
    let held: u32 = r.number_after("pids limit 16: fork bomb held at ");
    assert!(
        held <= 16 && pids.ends_with("reached the limit: true)"),
        "{pids}"
    );
}

#[test]
fn rootfs() {
    let r = ok("rootfs", &[]);
    assert!(r.line("chroot: inside, / holds: ").contains("bin dev etc"));
    assert!(
        r.line("chroot: ESCAPED: ")
            .contains("(\"the host's secret\")")
    );
    assert!(
        r.line("pivot_root: contained: ")
            .contains("holds: bin deeper dev etc")
    );
    r.has("summary: chroot escaped, pivot_root held");
}

#[test]
fn layers() {
    let r = ok("layers", &[]);
    r.has("layer app: usr/share/tool/README: whiteout (char 0:0)");
    r.has("c1 sees: motd welcome to the app edited , /usr/share/tool: []");
    let upper: Vec<&str> = r
        .out
        .lines()
        .filter(|l| l.starts_with("c1 upper: "))
        .collect();
    assert_eq!(
        upper,
        [
            "c1 upper: app: dir",
            "c1 upper: app/new.txt: file \"hello\\n\", new",
            "c1 upper: etc: dir",
            "c1 upper: etc/motd: file \"welcome to the app\\nedited\\n\", copied up from a layer and changed",
            "c1 upper: etc/tool.conf: whiteout (char 0:0), hides the layers' copy",
        ]
    );
    r.has("layers unchanged: true");
    r.has("c2 sees: motd welcome to the app, tool.conf verbose=no, /app: [run.sh ]");
    r.has("c2 exited 0; its upper dir holds 0 entries");
}

#[test]
fn volume() {
    let r = ok("volume", &[]);
    let note = r.line("host: the volume holds note.txt: ");
    assert!(note.contains("written by writer at "), "{note}");
    let written = note.split_once("note.txt: ").unwrap().1.trim_matches('"');
    r.has(&format!("reader reads: {written}\n"));
    r.has("ro: write refused\n");
    r.has("on the host, intruder.txt exists: false");
    assert!(r.err.contains("Read-only file system"), "{}", r.err);
}

#[test]
fn exec() {
    let r = ok("exec", &[]);
    for ns in ["mnt", "pid", "net", "uts", "ipc", "cgroup"] {
        assert!(
            r.out
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{ns}: init"))
                    && l.ends_with(": same, not the host's")),
            "namespace {ns}:\n{}",
            r.out
        );
    }
    r.has("cgroup: same for init and exec: true");
    let ps: Vec<&str> = r.out.lines().map(str::trim).collect();
    assert!(ps.contains(&"1 sleep 1000"), "ps shows the init as pid 1");
    assert!(
        ps.iter().any(|l| l.ends_with(" sleep 500")),
        "ps shows the exec'd sleep"
    );
    r.has("after the init is killed, the exec'd sleep exited 137");
    r.has("the init exited 137");
}

#[test]
fn lifecycle() {
    let r = ok("lifecycle", &[]);
    let state = |step: &str| -> serde_json::Value {
        let l = r.line(&format!("{step:>8}: "));
        serde_json::from_str(l.split_once(": ").unwrap().1).unwrap()
    };
    let steps = ["create", "start", "pause", "resume", "kill"];
    let statuses: Vec<_> = steps.iter().map(|s| state(s)["status"].clone()).collect();
    assert_eq!(
        statuses,
        ["created", "running", "paused", "running", "stopped"]
    );
    let pid = state("create")["pid"].as_i64().unwrap();
    assert!(pid > 0 && state("resume")["pid"] == pid);
    // The init's children, checked from here too: gone.
    let line = r.line("processes: init ");
    let children: Vec<i32> = line[line.find('[').unwrap() + 1..line.len() - 1]
        .split(", ")
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(children.len(), 2, "{line}");
    r.has("init exited 137");
    r.has("children after the init died: [\"gone\", \"gone\"]");
    for c in children {
        let stat = std::fs::read_to_string(format!("/proc/{c}/stat")).unwrap_or_default();
        assert!(
            stat.is_empty() || stat.contains(") Z"),
            "child {c} lives: {stat}"
        );
    }
    r.has("  delete: container \"lifecycle-");
    r.has("\" does not exist");
}

/// An OCI image that podman builds from a local busybox rootfs (no registry): a first layer
/// with a file, a second that deletes it (a whiteout) and adds another, and a config with each
/// field the example maps. podman runs with a private store, removed afterwards.
#[test]
fn run_image() {
    if Command::new("podman").arg("--version").output().is_err() {
        eprintln!("run_image: SKIPPED, podman is not installed (scripts/deps.sh installs it)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("cofferdam-test-{}-image", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _cleanup = RemoveOnDrop(dir.clone());
    let ctx = dir.join("ctx");
    common::make_busybox_rootfs(&ctx.join("rootfs"));
    std::fs::write(
        ctx.join("rootfs/etc/doomed"),
        "deleted by the second layer\n",
    )
    .unwrap();
    std::fs::write(
        ctx.join("Containerfile"),
        r#"FROM scratch
COPY rootfs/ /
RUN rm /etc/doomed && mkdir -p /srv/app && echo built > /srv/app/built.txt
ENV GREETING=hello
WORKDIR /srv/app
USER user
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo \"$GREETING from $(pwd) as $(id -u):$(id -g)\""]
"#,
    )
    .unwrap();
    let podman = |args: &[&str]| {
        let out = Command::new("podman")
            .arg("--root")
            .arg(dir.join("store"))
            .arg("--runroot")
            .arg(dir.join("run"))
            .args(["--storage-driver", "vfs"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // chroot isolation: the RUN step needs no runtime and no network of its own.
    let tag = format!("localhost/cofferdam-test-{}", std::process::id());
    podman(&[
        "build",
        "--isolation",
        "chroot",
        "-t",
        &tag,
        ctx.to_str().unwrap(),
    ]);
    let tar = dir.join("image.tar");
    let layout = dir.join("layout");
    podman(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        tar.to_str().unwrap(),
        &tag,
    ]);
    podman(&[
        "save",
        "--format",
        "oci-dir",
        "-o",
        layout.to_str().unwrap(),
        &tag,
    ]);
    podman(&["rmi", "-a", "-f"]);

    let r = ok("run_image", &[tar.to_str().unwrap()]);
    r.has("image: 2 layers, config sha256:");
    assert!(r.line("layer 1: sha256:").ends_with(", 0 whiteouts"));
    assert!(r.line("layer 2: sha256:").ends_with(", 1 whiteouts"));
    assert!(
        r.line("config: ")
            .contains("WorkingDir Some(\"/srv/app\") User Some(\"user\")")
    );
    let spec = r.line("spec: ");
    assert!(spec.contains("\"GREETING=hello\""), "{spec}");
    assert!(spec.ends_with("cwd \"/srv/app\" user 1000:1000"), "{spec}");
    // The container's own output: Entrypoint + Cmd, Env, WorkingDir and User applied.
    r.has("\nhello from /srv/app as 1000:1000\n");
    r.has("container exited 0");

    // The directory layout, with a command in place of the Cmd: the whiteout deleted the
    // first layer's file; the exit status comes through.
    let r = run(
        "run_image",
        &[layout.to_str().unwrap(), "ls /etc; cat built.txt; exit 7"],
    );
    assert_eq!(r.code, 7, "{}\n{}", r.out, r.err);
    let files: Vec<&str> = r.out.lines().collect();
    assert!(
        files.contains(&"passwd") && files.contains(&"built"),
        "{}",
        r.out
    );
    assert!(
        !files.contains(&"doomed"),
        "the whiteout was not applied:\n{}",
        r.out
    );
}

/// A directory removed even when the test fails.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An OCI layout in `dir` made of these uncompressed layers, with a config that runs `true`.
fn write_layout(dir: &Path, layers: &[Vec<u8>]) {
    use sha2::{Digest, Sha256};
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8], media: &str| -> serde_json::Value {
        let sum = format!("{:x}", Sha256::digest(data));
        std::fs::write(blobs.join(&sum), data).unwrap();
        serde_json::json!({"mediaType": media, "digest": format!("sha256:{sum}"), "size": data.len()})
    };
    let layer_type = "application/vnd.oci.image.layer.v1.tar";
    let layers: Vec<_> = layers.iter().map(|l| put(l, layer_type)).collect();
    let diff_ids: Vec<_> = layers.iter().map(|d| d["digest"].clone()).collect();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {"Cmd": ["true"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = put(
        config.to_string().as_bytes(),
        "application/vnd.oci.image.config.v1+json",
    );
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config, "layers": layers,
    });
    let manifest = put(
        manifest.to_string().as_bytes(),
        "application/vnd.oci.image.manifest.v1+json",
    );
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [manifest]});
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
}

/// A tar of `etc`, a symlink to `target`.
fn symlink_layer(target: &Path) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    b.append_link(&mut h, "etc", target).unwrap();
    b.into_inner().unwrap()
}

/// A tar of one empty regular file at `path`.
fn file_layer(path: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    b.append_data(&mut h, path, std::io::empty()).unwrap();
    b.into_inner().unwrap()
}

/// The attack an image can make on whoever unpacks it as root: a first layer makes `etc` a
/// symlink to a host directory, a second deletes a file through it with a whiteout, or writes
/// one. run_image refuses both, and the host's directory is untouched.
#[test]
fn run_image_does_not_follow_an_image_symlink_out_of_its_rootfs() {
    let dir = std::env::temp_dir().join(format!("cofferdam-test-{}-evil", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _cleanup = RemoveOnDrop(dir.clone());
    let host = dir.join("host-etc");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("victim"), "the host's file\n").unwrap();

    let whiteout = dir.join("whiteout");
    write_layout(
        &whiteout,
        &[symlink_layer(&host), file_layer("etc/.wh.victim")],
    );
    let r = run("run_image", &[whiteout.to_str().unwrap()]);
    assert_ne!(r.code, 0, "{}", r.out);
    assert!(
        r.err.contains("etc/victim goes through a symlink"),
        "{}",
        r.err
    );
    assert!(
        host.join("victim").exists(),
        "the whiteout deleted the host's file"
    );

    let write = dir.join("write");
    write_layout(&write, &[symlink_layer(&host), file_layer("etc/planted")]);
    let r = run("run_image", &[write.to_str().unwrap()]);
    assert_ne!(r.code, 0, "{}", r.out);
    assert!(
        !host.join("planted").exists(),
        "a layer wrote into the host's directory"
    );
    assert_eq!(
        std::fs::read_dir(&host).unwrap().count(),
        1,
        "the host's directory changed"
    );
}
