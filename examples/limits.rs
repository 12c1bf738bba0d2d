//! Limited resources: the kernel's cgroups, set from the spec's `linux.resources`. One container
//! (its init sleeps; the work runs through `exec`) goes through four limits:
//! - `cpu.cpus: "0"` (the cpuset controller): its processes may run on CPU 0 only;
//! - a CPU quota of 50 ms per 100 ms period (the cpu controller's bandwidth limit): the same
//!   work gets half the throughput, measured here;
//! - `memory.limit` 32 MiB without swap: a process that needs more is OOM-killed, and after
//!   `update` raises the limit on the live container, the same work succeeds;
//! - `pids.limit` 16: a fork bomb fills the container's 16 process slots and no more.
//!
//! ```sh
//! cargo run --example limits      # as root
//! ```
//!
//! What to look at: `nproc` 1 inside; the throughput ratio near 0.5 and the CPU share under the
//! quota at 0.5 (measured, so they vary; on a busy machine the run without the quota gets less
//! than a whole CPU, and the ratio is higher); the OOM kill's exit status 137 (128 + SIGKILL) and the peak use at the
//! limit; the fork bomb held at the pids limit.

mod common;

use std::time::{Duration, Instant};

use cofferdam::oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};
use cofferdam::{Container, ExecOptions};

const MIB: i64 = 1 << 20;

fn memory(limit: i64) -> LinuxMemory {
    let mut m = LinuxMemory::default();
    m.set_limit(Some(limit));
    // memory.swap counts memory + swap: equal to the limit means no swap.
    m.set_swap(Some(limit));
    m
}

/// Run `script` in the container with `sh -c`; its exit status. Its output is ours.
fn sh(c: &Container, script: &str) -> common::Result<i32> {
    let mut p = c.process().cloned().expect("recorded at create");
    p.set_args(Some(vec!["sh".into(), "-c".into(), script.into()]));
    Ok(c.exec(&p, &ExecOptions::default())?.wait()?)
}

/// CPU-bound work: `n` turns of an awk loop. How long it took (wall time, from the host), and
/// the share of a CPU it got in that time (the cgroup's CPU time over the wall time).
fn work(c: &Container, n: u64) -> common::Result<(Duration, f64)> {
    let (t, used) = (Instant::now(), c.stats()?.cpu.usage.total);
    let code = sh(
        c,
        &format!("awk 'BEGIN {{ for (i = 0; i < {n}; i++) s += i }}'"),
    )?;
    if code != 0 {
        return Err(format!("the cpu work exited {code}").into());
    }
    let (wall, used) = (t.elapsed(), c.stats()?.cpu.usage.total - used);
    Ok((wall, used as f64 / wall.as_nanos() as f64))
}

fn main() -> common::Result<()> {
    let scratch = common::Scratch::new("limits")?;
    let rootfs = scratch.rootfs("rootfs")?;
    let mut spec = scratch.spec("box", &["sleep", "1000"]);
    let mut resources = LinuxResources::default();
    let mut cpu = LinuxCpu::default();
    cpu.set_cpus(Some("0".into()));
    resources.set_cpu(Some(cpu));
    resources.set_memory(Some(memory(32 * MIB)));
    let mut pids = LinuxPids::default();
    pids.set_limit(16);
    resources.set_pids(Some(pids));
    let linux = spec.linux_mut().as_mut().expect("a linux section");
    linux.set_resources(Some(resources));
    let c = scratch.create("box", spec, &rootfs)?;
    c.start()?;

    // 1. cpuset: one CPU.
    println!("host: {} CPUs", std::thread::available_parallelism()?);
    sh(
        &c,
        "echo \"cpus: inside, nproc $(nproc), $(grep Cpus_allowed_list /proc/self/status)\"",
    )?;

    // 2. cpu quota. The cpuset is widened to every CPU first: on a shared machine one CPU
    // may be busy with others' work, and the quota alone is to limit the container now. Find
    // work that takes a third of a second on a whole CPU (more periods than the first burst
    // the quota lets through), then time it with and without a quota of half a CPU, three
    // times in turn; the fastest of each (the least disturbed by the rest of the machine) make
    // the ratio.
    let mut all_cpus = LinuxCpu::default();
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online")?;
    all_cpus.set_cpus(Some(online.trim().to_string()));
    let mut r = LinuxResources::default();
    r.set_cpu(Some(all_cpus));
    c.update(&r)?;
    let quota = |q: i64| {
        let mut cpu = LinuxCpu::default();
        cpu.set_quota(Some(q)); // -1: no quota
        cpu.set_period(Some(100_000));
        let mut r = LinuxResources::default();
        r.set_cpu(Some(cpu));
        c.update(&r)
    };
    // What an exec of awk with no work costs (the fork, joining the container, awk's start),
    // taken off each time below.
    let mut overhead = Duration::MAX;
    for _ in 0..3 {
        overhead = overhead.min(work(&c, 0)?.0);
    }
    let enough = overhead + Duration::from_millis(300);
    let mut n = 100_000;
    let (full, limited) = loop {
        while work(&c, n)?.0 < enough {
            n *= 2;
        }
        let (mut full, mut limited) = ((Duration::MAX, 0.0), (Duration::MAX, 0.0));
        for _ in 0..3 {
            quota(-1)?;
            let w = work(&c, n)?;
            if w.0 < full.0 {
                full = w;
            }
            quota(50_000)?;
            let w = work(&c, n)?;
            if w.0 < limited.0 {
                limited = w;
            }
        }
        // Too little work after all (the machine was busy while it was sized): again, more.
        if full.0 >= enough {
            break (full, limited);
        }
        n *= 2;
    };
    let throttled = c.stats()?.cpu.throttling.throttled_periods;
    let (full_s, limited_s) = (
        (full.0 - overhead).as_secs_f64(),
        (limited.0.saturating_sub(overhead)).as_secs_f64(),
    );
    println!(
        "cpu quota 50ms/100ms: throughput ratio {:.2} ({n} turns in {full_s:.2} s without the \
         quota, {limited_s:.2} s with it, after {:.3} s of exec)",
        full_s / limited_s,
        overhead.as_secs_f64(),
    );
    println!(
        "cpu share: {:.2} of a CPU without the quota, {:.2} with it (throttled in {throttled} \
         periods)",
        full.1, limited.1
    );

    // 3. memory: build a 32 MiB string (doubled 25 times; about 80 MiB with the copies awk
    // makes), all written from user space, where the kernel OOM-kills at the limit.
    let fill = "awk 'BEGIN { s = \"x\"; for (i = 0; i < 25; i++) s = s s }'";
    let code = sh(&c, fill)?;
    let stats = c.stats()?;
    println!(
        "memory 32 MiB: awk exited {code} ({}); limit {} MiB, peak use {} MiB",
        if code == 137 {
            "SIGKILL: the OOM killer"
        } else {
            "not killed?"
        },
        stats.memory.usage.limit >> 20,
        stats.memory.usage.max >> 20,
    );
    let mut more = LinuxResources::default();
    more.set_memory(Some(memory(128 * MIB)));
    c.update(&more)?;
    println!(
        "memory after update to 128 MiB: awk exited {}",
        sh(&c, fill)?
    );

    // 4. pids: the classic fork bomb (each process forks two more, forever). The shell that
    // lights it returns at once; the bomb goes on in the container until it fills the limit.
    sh(&c, "exec 2>/dev/null; bomb() { bomb | bomb & }; bomb")?;
    let mut peak = 0;
    let full = common::poll_until(30, || {
        let current = c.stats().map(|s| s.pids.current).unwrap_or(0);
        peak = peak.max(current);
        current >= 16
    });
    // Watch it push against the limit a little longer.
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(500) {
        peak = peak.max(c.stats()?.pids.current);
    }
    let stats = c.stats()?;
    println!(
        "pids limit {}: fork bomb held at {} processes (peak {peak}, reached the limit: {full})",
        stats.pids.limit, stats.pids.current
    );

    // Deleting kills the init, and with it (pid 1 of the namespace) every bomb process.
    c.delete(true)?;
    Ok(())
}
