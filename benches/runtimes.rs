//! cofferdam against crun and runc, side by side, on one busybox bundle (run as root:
//! `cargo bench`). Every runtime found on PATH is measured in the same rounds, interleaved, so
//! that machine noise hits all alike:
//!
//! 1. lifecycle: `create` + `start` + wait for exit + `delete` of a container running /bin/true
//! 2. run: `run` of the same container in one command
//! 3. exec: `exec ID /bin/true` into a running container
//! 4. fan-out: 50 containers created, started and deleted two at a time
//! 5. peak RSS of the `create` process, and the size of the binary
//!
//! and `floor` (../shared/tools/floor.c: the kernel's share of one container, in one process),
//! which each runtime's lifecycle is compared with.
//!
//! crun refuses hosts whose cgroup2 mount holds controllers while v1 is in use (this CI host
//! puts hugetlb there), so the bench runs in a private mount namespace in which an empty child
//! cgroup is bind-mounted over /sys/fs/cgroup/unified, for every runtime alike. It is also a
//! child subreaper, as an engine's shim is, so it waits for the containers' inits itself.
//!
//! cofferdam is measured as it ships: the static binary `scripts/build-static.sh` makes (the
//! bench runs it first; it is quick when nothing changed), not the dynamic one `cargo bench`
//! builds. `COFFERDAM_BENCH_BIN=PATH` measures another build instead (the dynamic
//! `target/release/cofferdam`, to see what the static link saves).
//!
//! BENCH_ROUNDS (default 20) sets the number of rounds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Runtime {
    name: &'static str,
    bin: PathBuf,
    root: PathBuf,
    /// Bundles: two /bin/true slots (fan-out runs two at a time) and a long-running one.
    bundles: [PathBuf; 3],
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this binary without it,
    // and a test run must not spend minutes measuring.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("runtimes bench: run it with `cargo bench` (as root)");
        return;
    }
    assert!(
        nix::unistd::geteuid().is_root(),
        "the bench runs containers and needs root"
    );
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(20);
    let work = std::env::temp_dir().join(format!("cofferdam-bench-{}", std::process::id()));
    let cg_prefix = format!("cofferdam-bench-{}", std::process::id());
    std::fs::create_dir_all(&work).unwrap();

    private_mounts(&cg_prefix);
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };

    let ours = ours();
    eprintln!("cofferdam: {}", ours.display());
    // Whatever happens below, remove what the bench made.
    let _cleanup = Cleanup {
        work: work.clone(),
        cg_prefix: cg_prefix.clone(),
    };
    let rootfs = work.join("rootfs");
    make_rootfs(&rootfs);
    let mut runtimes = Vec::new();
    for (name, bin) in [
        ("cofferdam", Some(ours.clone())),
        ("crun", which("crun")),
        ("runc", which("runc")),
    ] {
        let Some(bin) = bin else {
            eprintln!("{name} is not installed: not measured");
            continue;
        };
        let dir = work.join(name);
        let bundles = [0, 1, 2].map(|slot| {
            let args: &[&str] = if slot == 2 {
                &["sleep", "100000"]
            } else {
                &["/bin/true"]
            };
            bundle(
                &ours,
                &dir.join(format!("b{slot}")),
                &rootfs,
                args,
                &format!("/{cg_prefix}/{name}-{slot}"),
            )
        });
        runtimes.push(Runtime {
            name,
            bin,
            root: dir.join("state"),
            bundles,
        });
    }
    let floor = build_floor(&work);

    let mut times: BTreeMap<(&str, &str), Vec<f64>> = BTreeMap::new();
    let mut record = |bench: &'static str, rt: &'static str, d: Duration| {
        times
            .entry((bench, rt))
            .or_default()
            .push(d.as_secs_f64() * 1000.0);
    };
    eprintln!("{rounds} rounds...");
    for round in 0..rounds {
        // Rotate who goes first, so that no runtime always follows the same one.
        for k in 0..runtimes.len() {
            let rt = &runtimes[(round + k) % runtimes.len()];
            let steps = lifecycle(rt, 0, &format!("l{round}"));
            record("lifecycle", rt.name, steps.iter().sum());
            for (step, d) in STEPS.into_iter().zip(steps) {
                record(step, rt.name, d);
            }
            record("run", rt.name, run(rt, &format!("r{round}")));
        }
        if let Some(f) = &floor {
            record(
                "lifecycle",
                "floor",
                run_floor(f, &rootfs, &cg_prefix, round),
            );
        }
        reap_orphans();
    }
    for rt in &runtimes {
        let id = "exec-target";
        cli(
            rt,
            &["run", "-d", "--bundle", rt.bundles[2].to_str().unwrap(), id],
        );
    }
    for round in 0..rounds {
        for k in 0..runtimes.len() {
            let rt = &runtimes[(round + k) % runtimes.len()];
            let t = Instant::now();
            cli(rt, &["exec", "exec-target", "/bin/true"]);
            record("exec", rt.name, t.elapsed());
        }
    }
    for rt in &runtimes {
        cli(rt, &["delete", "--force", "exec-target"]);
    }
    // What the CVE-2019-5736 defence costs a call: `exec` first re-executes itself from a
    // read-only view of the binary (see src/exe_seal.rs), then finds no such container; `state`
    // finds none without sealing. The difference between the two rows is the seal.
    let ours_rt = &runtimes[0];
    for _ in 0..rounds {
        for (bench, args) in [
            (SEAL_ROWS[0], &["state", "no-such-container"][..]),
            (
                SEAL_ROWS[1],
                &["exec", "no-such-container", "/bin/true"][..],
            ),
        ] {
            let t = Instant::now();
            let status = Command::new(&ours_rt.bin)
                .arg("--root")
                .arg(&ours_rt.root)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            record(bench, ours_rt.name, t.elapsed());
            assert!(!status.success(), "{args:?} found a container");
        }
    }
    for round in 0..(rounds / 4).max(2) {
        for k in 0..runtimes.len() {
            let rt = &runtimes[(round + k) % runtimes.len()];
            let t = Instant::now();
            for pair in 0..25 {
                std::thread::scope(|s| {
                    for slot in 0..2 {
                        s.spawn(move || lifecycle(rt, slot, &format!("f{round}-{pair}-{slot}")));
                    }
                });
            }
            record("fan-out (50)", rt.name, t.elapsed());
        }
        reap_orphans();
    }
    let mut rss = BTreeMap::new();
    for rt in &runtimes {
        let peak = (0..5)
            .map(|i| create_rss(rt, &format!("rss{i}")))
            .max()
            .unwrap_or(0);
        rss.insert(rt.name, peak);
    }

    report(&times, &rss, &runtimes, &ours);
}

/// A private mount namespace, and in it a cgroup2 mount with no controllers (see above).
fn private_mounts(cg_prefix: &str) {
    // SAFETY: unshare and mount with constant arguments; no memory of ours is touched.
    unsafe {
        assert_eq!(
            libc::unshare(libc::CLONE_NEWNS),
            0,
            "unshare mount namespace"
        );
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_SLAVE,
            std::ptr::null(),
        );
    }
    let unified = Path::new("/sys/fs/cgroup/unified");
    let controllers =
        std::fs::read_to_string(unified.join("cgroup.controllers")).unwrap_or_default();
    if controllers.trim().is_empty() {
        return;
    }
    let empty = unified.join(format!("{cg_prefix}-empty"));
    std::fs::create_dir_all(&empty).unwrap();
    let status = Command::new("mount")
        .arg("--bind")
        .arg(&empty)
        .arg(unified)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "bind an empty cgroup over {}",
        unified.display()
    );
}

/// As a subreaper we inherit the runtimes' orphans (their helpers, finished inits); collect
/// them between phases, when no thread waits for a particular one.
fn reap_orphans() {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    while let Ok(s) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if s == WaitStatus::StillAlive {
            break;
        }
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var("PATH")
        .ok()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

fn make_rootfs(rootfs: &Path) {
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    for d in ["proc", "sys", "dev", "etc", "tmp"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
        .expect("/bin/busybox: apt-get install busybox-static");
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for a in String::from_utf8_lossy(&list.stdout).lines() {
        let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a));
    }
}

/// A bundle from `cofferdam spec` (runc's default, plus a cgroup namespace) for `args`.
fn bundle(ours: &Path, dir: &Path, rootfs: &Path, args: &[&str], cgroup: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let _ = std::fs::remove_file(dir.join("config.json"));
    assert!(
        Command::new(ours)
            .args(["spec", "--bundle"])
            .arg(dir)
            .status()
            .unwrap()
            .success()
    );
    let mut c: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    // crun 1.8 knows spec versions up to 1.0.x; every runtime gets the same config.
    c["ociVersion"] = "1.0.2-dev".into();
    c["process"]["terminal"] = false.into();
    c["process"]["args"] = serde_json::json!(args);
    c["root"]["path"] = rootfs.to_str().unwrap().into();
    c["linux"]["cgroupsPath"] = cgroup.into();
    std::fs::write(dir.join("config.json"), serde_json::to_vec(&c).unwrap()).unwrap();
    dir.to_path_buf()
}

/// Run a runtime's CLI and insist on success. Its stderr goes through a file, not a pipe:
/// `create` hands its stdio to the container, which would hold a pipe open until it exits.
fn cli(rt: &Runtime, args: &[&str]) {
    static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let err_path = rt.root.with_file_name(format!("stderr-{n}"));
    let status = Command::new(&rt.bin)
        .arg("--root")
        .arg(&rt.root)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .status()
        .unwrap();
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    let _ = std::fs::remove_file(&err_path);
    assert!(status.success(), "{} {args:?}: {err}", rt.name);
}

/// A failing CLI call without and with the binary's seal (cofferdam only).
const SEAL_ROWS: [&str; 2] = ["call, no seal", "call + seal"];

/// The steps of one lifecycle, in the order `lifecycle` takes them (the report's rows).
const STEPS: [&str; 4] = ["  create", "  start", "  wait", "  delete"];

/// create + start + wait for the init (reparented to us) + delete: each step's time.
fn lifecycle(rt: &Runtime, slot: usize, id: &str) -> [Duration; 4] {
    let pidfile = rt.root.with_file_name(format!("{id}.pid"));
    let mut marks = [Instant::now(); 5];
    cli(
        rt,
        &[
            "create",
            "--bundle",
            rt.bundles[slot].to_str().unwrap(),
            "--pid-file",
            pidfile.to_str().unwrap(),
            id,
        ],
    );
    marks[1] = Instant::now();
    cli(rt, &["start", id]);
    marks[2] = Instant::now();
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    marks[3] = Instant::now();
    cli(rt, &["delete", id]);
    marks[4] = Instant::now();
    let _ = std::fs::remove_file(pidfile);
    [0, 1, 2, 3].map(|i| marks[i + 1] - marks[i])
}

fn run(rt: &Runtime, id: &str) -> Duration {
    let t = Instant::now();
    cli(
        rt,
        &["run", "--bundle", rt.bundles[0].to_str().unwrap(), id],
    );
    t.elapsed()
}

/// Peak RSS (KiB) of one `create`, from wait4's rusage.
// The child is reaped by wait4 (std's wait would not return its rusage).
#[allow(clippy::zombie_processes)]
fn create_rss(rt: &Runtime, id: &str) -> i64 {
    let child = Command::new(&rt.bin)
        .arg("--root")
        .arg(&rt.root)
        .args(["create", "--bundle", rt.bundles[2].to_str().unwrap(), id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: wait4 fills the status and rusage we own, for our own child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut ru) };
    cli(rt, &["delete", "--force", id]);
    ru.ru_maxrss
}

fn build_floor(work: &Path) -> Option<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/floor.c");
    let bin = work.join("floor");
    let ok = src.exists()
        && Command::new("cc")
            .args(["-O2", "-o"])
            .arg(&bin)
            .arg(&src)
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        eprintln!(
            "floor: {} not found or not built: not measured",
            src.display()
        );
    }
    ok.then_some(bin)
}

fn run_floor(floor: &Path, rootfs: &Path, cg_prefix: &str, round: usize) -> Duration {
    let cg = format!("/sys/fs/cgroup/pids/{cg_prefix}-floor-{round}");
    let t = Instant::now();
    let st = Command::new(floor)
        .arg(rootfs)
        .arg(&cg)
        .arg("/bin/true")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let d = t.elapsed();
    assert!(st.success(), "floor failed");
    let _ = std::fs::remove_dir(&cg);
    d
}

fn stats(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    (s[s.len() / 2], s[0], s[s.len() - 1])
}

fn report(
    times: &BTreeMap<(&str, &str), Vec<f64>>,
    rss: &BTreeMap<&str, i64>,
    runtimes: &[Runtime],
    ours: &Path,
) {
    let floor = times.get(&("lifecycle", "floor")).map(|v| stats(v).0);
    println!(
        "\n{:<14} {:<10} {:>9} {:>9} {:>9} {:>12} {:>9}",
        "bench", "runtime", "median ms", "min", "max", "/ cofferdam", "× floor"
    );
    let benches = ["lifecycle"]
        .into_iter()
        .chain(STEPS)
        .chain(["run", "exec", "fan-out (50)"])
        .chain(SEAL_ROWS);
    for bench in benches {
        let base = times.get(&(bench, "cofferdam")).map(|v| stats(v).0);
        let names: Vec<&str> = runtimes
            .iter()
            .map(|r| r.name)
            .chain((bench == "lifecycle").then_some("floor"))
            .collect();
        for name in names {
            let Some(v) = times.get(&(bench, name)) else {
                continue;
            };
            let (med, min, max) = stats(v);
            let ratio = base.map_or(String::new(), |b| format!("{:.2}", med / b));
            let fl = match (floor, bench) {
                (Some(f), "lifecycle" | "run") => format!("{:.1}", med / f),
                _ => String::new(),
            };
            println!("{bench:<14} {name:<10} {med:>9.2} {min:>9.2} {max:>9.2} {ratio:>12} {fl:>9}");
        }
    }
    println!("\npeak RSS of create (KiB):");
    for (name, kib) in rss {
        println!("  {name:<10} {kib}");
    }
    println!(
        "binary: {} bytes ({}), linked to: {}",
        std::fs::metadata(ours).map(|m| m.len()).unwrap_or(0),
        ours.display(),
        needed(ours)
    );
}

/// The shared libraries a binary needs (its ELF NEEDED entries).
fn needed(bin: &Path) -> String {
    let out = Command::new("readelf").arg("-d").arg(bin).output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let libs: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next())
        .collect();
    if libs.is_empty() {
        "nothing (static)".into()
    } else {
        libs.join(", ")
    }
}

/// The cofferdam binary to measure: `COFFERDAM_BENCH_BIN`, else the static release binary,
/// built by `scripts/build-static.sh` (which names the host's triple itself).
fn ours() -> PathBuf {
    if let Some(bin) = std::env::var_os("COFFERDAM_BENCH_BIN") {
        return PathBuf::from(bin);
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(repo.join("scripts/build-static.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("bash scripts/build-static.sh");
    assert!(
        out.status.success(),
        "scripts/build-static.sh failed; COFFERDAM_BENCH_BIN=PATH measures another build"
    );
    repo.join(String::from_utf8_lossy(&out.stdout).trim())
}

struct Cleanup {
    work: PathBuf,
    cg_prefix: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        cleanup(&self.work, &self.cg_prefix);
    }
}

fn cleanup(work: &Path, cg_prefix: &str) {
    // Containers still there (a failed round): every runtime's, by its state root.
    for (name, bin) in [
        (
            "cofferdam",
            Some(PathBuf::from(env!("CARGO_BIN_EXE_cofferdam"))),
        ),
        ("crun", which("crun")),
        ("runc", which("runc")),
    ] {
        let (Some(bin), root) = (bin, work.join(name).join("state")) else {
            continue;
        };
        let Ok(entries) = std::fs::read_dir(&root) else {
            continue;
        };
        for e in entries.flatten() {
            let id = e.file_name();
            let _ = Command::new(&bin)
                .arg("--root")
                .arg(&root)
                .args(["delete", "--force"])
                .arg(&id)
                .stderr(Stdio::null())
                .status();
        }
    }
    reap_orphans();
    // runc leaves parent cgroups behind; remove our prefix everywhere, deepest first.
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let d = h.path().join(cg_prefix);
        if d.exists() {
            let _ = Command::new("find")
                .arg(&d)
                .args(["-depth", "-type", "d", "-delete"])
                .status();
        }
    }
    let _ = std::fs::remove_dir_all(work);
    // Outside our namespace's bind mount, the empty cgroup made for crun.
    let _ = Command::new("umount")
        .arg("/sys/fs/cgroup/unified")
        .status();
    let _ = std::fs::remove_dir(format!("/sys/fs/cgroup/unified/{cg_prefix}-empty"));
}
