//! The native shim beside containerd's runc v2 shim (Go) driving cofferdam and runc, under a
//! private containerd (as root). Both of ours are measured as they ship: the shim that
//! `scripts/build-shim.sh` makes (static, musl) and the CLI of `scripts/build-static.sh`
//! (`COFFERDAM_SHIM_BIN` and `COFFERDAM_BENCH_BIN` measure other builds):
//! - RSS per running task, the shim processes summed: `BENCH_TASKS` tasks (default 10) of one
//!   shim each, and pods of 3 (one `io.kubernetes.cri.sandbox-id`, one shim per pod);
//! - `ctr run -d` until the task runs, and `ctr task delete` of a stopped task (medians);
//! - density: `BENCH_DENSITY` running tasks (default 200), the machine's memory in use
//!   (MemTotal - MemAvailable) per task, for the native and the runc v2 shim, and the CPU the
//!   idle shims take over 10 s.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A binary as it ships: `var` if set, else what `script` (in scripts/) builds and prints.
fn shipped(var: &str, script: &str) -> PathBuf {
    if let Some(bin) = std::env::var_os(var) {
        return PathBuf::from(bin);
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("bash")
        .arg(repo.join("scripts").join(script))
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("bash scripts/{script}: {e}"));
    assert!(
        out.status.success(),
        "scripts/{script} failed; {var}=PATH measures another build"
    );
    repo.join(String::from_utf8_lossy(&out.stdout).trim())
}
const IMAGE: &str = "localhost/cofferdam-bench-busybox:latest";

struct Ctrd {
    dir: PathBuf,
    sock: String,
    daemon: std::process::Child,
}

impl Ctrd {
    fn start(dir: &Path, shim: &Path) -> Ctrd {
        let d = |n: &str| dir.join(n).to_string_lossy().into_owned();
        let sock = d("containerd.sock");
        std::fs::write(
            dir.join("config.toml"),
            format!(
                "version = 2\nroot = \"{}\"\nstate = \"{}\"\n[grpc]\n  address = \"{sock}\"\n[ttrpc]\n  address = \"{sock}.ttrpc\"\n",
                d("root"),
                d("state")
            ),
        )
        .unwrap();
        let path = format!(
            "{}:{}",
            shim.parent().unwrap().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let daemon = Command::new("containerd")
            .args(["--config", &d("config.toml")])
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("containerd.err")).unwrap())
            .spawn()
            .expect("containerd");
        let c = Ctrd {
            dir: dir.to_path_buf(),
            sock,
            daemon,
        };
        while c.ctr(&["version"]).0 != 0 {
            std::thread::sleep(Duration::from_millis(100));
        }
        c
    }

    fn ctr(&self, args: &[&str]) -> (i32, String) {
        let out = Command::new("ctr")
            .args(["--address", &self.sock, "--namespace", "bench"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code().unwrap_or(-1), text)
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, out) = self.ctr(args);
        assert_eq!(code, 0, "ctr {args:?}: {out}");
        out
    }

    /// The pids of the shims serving this containerd.
    fn shims(&self) -> Vec<i32> {
        let mut found = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
                continue;
            };
            let args: Vec<String> = cmd
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            if args.first().is_some_and(|a| a.contains("containerd-shim"))
                && args
                    .windows(2)
                    .any(|w| w[0] == "-address" && w[1] == self.sock)
                && !args.iter().any(|a| a == "start" || a == "delete")
            {
                found.push(pid);
            }
        }
        found
    }

    fn shim_rss_kib(&self) -> u64 {
        self.shims()
            .iter()
            .map(|p| status_kib(*p, "status", "VmRSS:"))
            .sum()
    }

    /// The shims' CPU time (user and system) so far, in clock ticks.
    fn shim_cpu_ticks(&self) -> u64 {
        self.shims()
            .iter()
            .map(|p| {
                let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
                // The fields after the command's closing parenthesis: utime is the 12th.
                let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
                let f: Vec<u64> = rest
                    .split_whitespace()
                    .map(|x| x.parse().unwrap_or(0))
                    .collect();
                f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)
            })
            .sum()
    }

    /// Proportional set size: the shims' shared pages (their binary's) counted once.
    fn shim_pss_kib(&self) -> u64 {
        self.shims()
            .iter()
            .map(|p| status_kib(*p, "smaps_rollup", "Pss:"))
            .sum()
    }

    fn remove_all(&self) {
        let out = self.ok(&["task", "ls", "-q"]);
        for id in out.lines().filter(|l| !l.is_empty()) {
            let _ = self.ctr(&["task", "kill", "-s", "SIGKILL", id]);
        }
        for id in out.lines().filter(|l| !l.is_empty()) {
            while !self
                .ok(&["task", "ls"])
                .lines()
                .any(|l| l.starts_with(&format!("{id} ")) && l.ends_with("STOPPED"))
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.ctr(&["task", "delete", id]);
        }
        for id in self
            .ok(&["container", "ls", "-q"])
            .lines()
            .filter(|l| !l.is_empty())
        {
            let _ = self.ctr(&["container", "delete", id]);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.shims().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Ctrd {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        for p in self.shims() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = Command::new("sh")
            .args(["-c", &format!("grep ' {}/' /proc/self/mountinfo | awk '{{print $5}}' | sort -r | xargs -r -n1 umount -l", self.dir.display())])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn status_kib(pid: i32, file: &str, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf only reads a constant of the system.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as f64
}

fn mem_used_kib() -> u64 {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap();
    let get = |k: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    get("MemTotal:") - get("MemAvailable:")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn import_image(dir: &Path, c: &Ctrd) {
    let d = |n: &str| dir.join(n).to_string_lossy().into_owned();
    let rootfs = dir.join("image/bin");
    std::fs::create_dir_all(&rootfs).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("busybox")).unwrap();
    for a in ["sh", "sleep", "true"] {
        std::os::unix::fs::symlink("busybox", rootfs.join(a)).unwrap();
    }
    let sh = format!(
        "tar -C {img} -cf {tar} . && podman --root {st} --runroot {rr} --storage-driver vfs import {tar} {IMAGE} >/dev/null && \
         podman --root {st} --runroot {rr} --storage-driver vfs save --format oci-archive -o {oci} {IMAGE} >/dev/null 2>&1 && \
         podman --root {st} --runroot {rr} --storage-driver vfs rmi -a -f >/dev/null 2>&1",
        img = d("image"),
        tar = d("bb.tar"),
        st = d("pstorage"),
        rr = d("prun"),
        oci = d("oci.tar"),
    );
    assert!(
        Command::new("sh")
            .args(["-c", &sh])
            .status()
            .unwrap()
            .success()
    );
    c.ok(&[
        "images",
        "import",
        "--base-name",
        "localhost/cofferdam-bench-busybox",
        &d("oci.tar"),
    ]);
}

struct Runtime {
    name: &'static str,
    args: Vec<String>,
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("the shim bench runs containers: run it as root");
        return;
    }
    let n: usize = std::env::var("BENCH_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let density: usize = std::env::var("BENCH_DENSITY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = std::env::temp_dir().join(format!("cofferdam-bench-shim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Both as they ship: the static musl shim, the static CLI.
    let shim = shipped("COFFERDAM_SHIM_BIN", "build-shim.sh");
    let cofferdam = shipped("COFFERDAM_BENCH_BIN", "build-static.sh");
    eprintln!(
        "native shim: {}; cofferdam: {}",
        shim.display(),
        cofferdam.display()
    );
    let c = Ctrd::start(&dir, &shim);
    import_image(&dir, &c);
    let mut runtimes = vec![Runtime {
        name: "native shim (cofferdam-v2)",
        args: vec!["--runtime".into(), "io.containerd.cofferdam.v2".into()],
    }];
    runtimes.push(Runtime {
        name: "runc-v2 shim + cofferdam",
        args: vec!["--runc-binary".into(), cofferdam.display().to_string()],
    });
    runtimes.push(Runtime {
        name: "runc-v2 shim + runc",
        args: vec![],
    });
    let cg = format!("/cofferdam-bench-shim-{}", std::process::id());
    let run = |rt: &Runtime, id: &str, extra: &[&str]| {
        let path = format!("{cg}/{id}");
        let mut args: Vec<&str> = vec!["run", "-d", "--cgroup", &path];
        args.extend(rt.args.iter().map(String::as_str));
        args.extend(extra);
        args.extend([IMAGE, id, "sleep", "100000"]);
        c.ok(&args);
    };
    println!(
        "| runtime | shim RSS per task (KiB) | shim PSS per task (KiB) | RSS per task, pods of 3 (KiB) | `ctr run -d` (ms) | `task delete` (ms) |"
    );
    println!("|---|---|---|---|---|---|");
    for rt in &runtimes {
        let mut starts = Vec::new();
        for i in 0..n {
            let t = Instant::now();
            run(rt, &format!("t{i}"), &[]);
            starts.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        std::thread::sleep(Duration::from_millis(500));
        let single = c.shim_rss_kib() / n as u64;
        let pss = c.shim_pss_kib() / n as u64;
        let mut deletes = Vec::new();
        for i in 0..n {
            let id = format!("t{i}");
            c.ok(&["task", "kill", "-s", "SIGKILL", &id]);
            while !c
                .ok(&["task", "ls"])
                .lines()
                .any(|l| l.starts_with(&format!("{id} ")) && l.ends_with("STOPPED"))
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            let t = Instant::now();
            c.ok(&["task", "delete", &id]);
            deletes.push(t.elapsed().as_secs_f64() * 1000.0);
            c.ok(&["container", "delete", &id]);
        }
        c.remove_all();
        let pods = n.div_ceil(3).max(1);
        for p in 0..pods {
            let ann = format!("io.kubernetes.cri.sandbox-id=pod{p}");
            for k in 0..3 {
                run(rt, &format!("p{p}c{k}"), &["--annotation", &ann]);
            }
        }
        std::thread::sleep(Duration::from_millis(500));
        let pod = c.shim_rss_kib() / (3 * pods) as u64;
        c.remove_all();
        println!(
            "| {} | {single} | {pss} | {pod} | {:.1} | {:.1} |",
            rt.name,
            median(starts),
            median(deletes)
        );
    }
    // BENCH_DENSITY=0: the per-task figures only.
    let density_runs = runtimes
        .iter()
        .filter(|r| density > 0 && r.name != "runc-v2 shim + runc");
    println!();
    println!(
        "| runtime | {density} running tasks: machine memory in use per task (KiB) | shim RSS per task (KiB) | wall time of the {density} `ctr run -d` (s) | the idle shims' CPU (% of one core) |"
    );
    println!("|---|---|---|---|---|");
    for rt in density_runs {
        std::thread::sleep(Duration::from_secs(1));
        let before = mem_used_kib();
        let t = Instant::now();
        for i in 0..density {
            run(rt, &format!("d{i}"), &[]);
        }
        let wall = t.elapsed().as_secs_f64();
        std::thread::sleep(Duration::from_secs(1));
        let after = mem_used_kib();
        let shims = c.shim_rss_kib() / density as u64;
        // What the shims cost while nothing happens: their CPU time over 10 s.
        let t0 = c.shim_cpu_ticks();
        std::thread::sleep(Duration::from_secs(10));
        let idle = (c.shim_cpu_ticks() - t0) as f64 / ticks_per_sec() / 10.0 * 100.0;
        println!(
            "| {} | {} | {shims} | {wall:.1} | {idle:.1} |",
            rt.name,
            after.saturating_sub(before) / density as u64
        );
        c.remove_all();
    }
    let _ = Command::new("sh")
        .args(["-c", &format!("find /sys/fs/cgroup -maxdepth 2 -name '{}' -type d | while read d; do find $d -depth -type d -exec rmdir {{}} \\; ; done", cg.trim_start_matches('/'))])
        .stderr(Stdio::null())
        .status();
}
