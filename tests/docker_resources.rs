//! Docker's own `linux.resources`, exactly as it arrives (captured from Docker 20.10 by
//! scripts/capture-docker-resources.sh into tests/fixtures/). Docker fills it with zeros that
//! mean "not set" (`blockIO.weight: 0`, `cpu.shares: 0`, `memory.disableOOMKiller: false`), and
//! `docker update` sends the whole object with zeros beside the one value it changes. The
//! kernel must show its defaults where Docker sent a zero, and Docker's values where it set
//! them: a default is read from a fresh cgroup made next to the container's, so that the test
//! holds whatever the kernel's defaults are (blkio's weight differs between CFQ and BFQ), on
//! this hybrid host and on pure cgroup v2.

mod common;

use std::path::{Path, PathBuf};

use common::*;

const CREATE: &str = include_str!("fixtures/docker-create.json");
const LIMITS: &str = include_str!("fixtures/docker-limits.json");
const UPDATE: &str = include_str!("fixtures/docker-update.json");

const MIB: u64 = 1 << 20;

/// A `sleep` container whose `linux.resources` is exactly `resources`; returns its pid.
fn start_with(env: &Env, name: &str, resources: &str) -> (String, i32) {
    let mut b = env.bundle(name, &["sleep", "1000"]);
    b.config["linux"]["resources"] = serde_json::from_str(resources).unwrap();
    b.save();
    let id = env.id(name);
    let pid = start(env, &b, &id);
    (id, pid)
}

/// A cgroup made beside `dir` for as long as it lives: what the kernel gives a new cgroup
/// there. Its parent is the bundle's own (under the test's prefix, swept by the Env).
struct Fresh(PathBuf);

impl Fresh {
    fn beside(dir: &Path) -> Fresh {
        let d = dir.parent().unwrap().join("fresh");
        std::fs::create_dir(&d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
        Fresh(d)
    }

    /// The container's `file` holds the kernel's default: the fresh cgroup's value.
    fn assert_default(&self, dir: &Path, file: &str) {
        assert_eq!(
            read(dir, file),
            read(&self.0, file),
            "{} is not the kernel's default",
            dir.join(file).display()
        );
    }
}

impl Drop for Fresh {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// The weight file of the block io controller, if the kernel has one here (BFQ's, else
/// CFQ's or cgroup v2's io.weight).
fn io_weight_file(dir: &Path) -> Option<&'static str> {
    let names: &[&str] = if unified() {
        &["io.bfq.weight", "io.weight"]
    } else {
        &["blkio.bfq.weight", "blkio.weight"]
    };
    names.iter().copied().find(|f| dir.join(f).exists())
}

/// Memory + swap as the kernel shows it: v1's memsw limit, or v2's swap.max (swap alone);
/// None without swap accounting.
fn swap_file() -> &'static str {
    if unified() {
        "memory.swap.max"
    } else {
        "memory.memsw.limit_in_bytes"
    }
}

fn memory_files() -> (&'static str, &'static str) {
    if unified() {
        ("memory.max", "memory.low")
    } else {
        ("memory.limit_in_bytes", "memory.soft_limit_in_bytes")
    }
}

/// The cpu weight as the kernel shows it: v1 cpu.shares, or v2 cpu.weight.
fn cpu_weight(dir: &Path) -> String {
    read(
        dir,
        if unified() {
            "cpu.weight"
        } else {
            "cpu.shares"
        },
    )
}

#[test]
fn dockers_default_resources_leave_the_kernel_defaults() {
    let env = Env::new("dockerdefault");
    // This create failed on every Docker run: blkio.bfq.weight refuses 0.
    let (id, pid) = start_with(&env, "b", CREATE);
    let cpu = cgroup_dir(pid, "cpu");
    let mem = cgroup_dir(pid, "memory");
    let io = cgroup_dir(pid, if unified() { "io" } else { "blkio" });
    let pids = cgroup_dir(pid, "pids");
    // cpu.shares 0 is "not set": 1024 (v1) / 100 (v2), not the kernel's minimum of 2 (or 1).
    assert_eq!(cpu_weight(&cpu), if unified() { "100" } else { "1024" });
    let (limit, soft) = memory_files();
    {
        let fresh = Fresh::beside(&mem);
        for f in [limit, soft] {
            fresh.assert_default(&mem, f);
        }
        if mem.join(swap_file()).exists() {
            fresh.assert_default(&mem, swap_file());
        }
        if !unified() {
            // disableOOMKiller false: the OOM killer is on, as in a new cgroup.
            fresh.assert_default(&mem, "memory.oom_control");
        }
    }
    if let Some(w) = io_weight_file(&io) {
        Fresh::beside(&io).assert_default(&io, w);
    }
    assert_eq!(read(&pids, "pids.max"), "max");

    // `docker update --memory 64m`, zeros and all: the limit changes, nothing else does.
    let upd = env.dir.join("update.json");
    std::fs::write(&upd, UPDATE).unwrap();
    ok(
        &env.cmd(&["update", "-r", upd.to_str().unwrap(), &id]),
        "update -r docker-update.json",
    );
    assert_eq!(read(&mem, limit), (64 * MIB).to_string());
    assert_eq!(cpu_weight(&cpu), if unified() { "100" } else { "1024" });
    {
        let fresh = Fresh::beside(&mem);
        fresh.assert_default(&mem, soft);
    }
    if let Some(w) = io_weight_file(&io) {
        Fresh::beside(&io).assert_default(&io, w);
    }
    ok(&env.cmd(&["delete", "--force", &id]), "delete");
    env.assert_nothing_left(&id);
}

#[test]
fn dockers_limits_are_set_and_its_update_keeps_them() {
    let env = Env::new("dockerlimits");
    // docker run --cpu-shares 512 -m 32m --memory-reservation 16m --pids-limit 100
    let (id, pid) = start_with(&env, "b", LIMITS);
    let cpu = cgroup_dir(pid, "cpu");
    let mem = cgroup_dir(pid, "memory");
    let io = cgroup_dir(pid, if unified() { "io" } else { "blkio" });
    let pids = cgroup_dir(pid, "pids");
    // shares 512 on v2: 1 + (512 - 2) * 9999 / 262142 = 20, runc's conversion.
    let shares = if unified() { "20" } else { "512" };
    let (limit, soft) = memory_files();
    let has_swap = mem.join(swap_file()).exists();
    // memory + swap 64m: v1 shows it as is, v2 the swap alone.
    let swap = |mem_limit: u64| {
        if unified() {
            (64 * MIB - mem_limit).to_string()
        } else {
            (64 * MIB).to_string()
        }
    };
    assert_eq!(cpu_weight(&cpu), shares);
    assert_eq!(read(&mem, limit), (32 * MIB).to_string());
    assert_eq!(read(&mem, soft), (16 * MIB).to_string());
    if has_swap {
        assert_eq!(read(&mem, swap_file()), swap(32 * MIB));
    }
    assert_eq!(read(&pids, "pids.max"), "100");
    // blockIO.weight 0 beside the values that are set: still not written.
    if let Some(w) = io_weight_file(&io) {
        Fresh::beside(&io).assert_default(&io, w);
    }

    // `docker update --memory 64m` sends cpu.shares 0 and memory.reservation 0: they must not
    // turn the shares into 2 and the soft limit into 0.
    let upd = env.dir.join("update.json");
    std::fs::write(&upd, UPDATE).unwrap();
    ok(
        &env.cmd(&["update", "-r", upd.to_str().unwrap(), &id]),
        "update -r docker-update.json",
    );
    assert_eq!(read(&mem, limit), (64 * MIB).to_string());
    assert_eq!(read(&mem, soft), (16 * MIB).to_string(), "soft limit kept");
    assert_eq!(cpu_weight(&cpu), shares, "cpu shares kept");
    assert_eq!(read(&pids, "pids.max"), "100", "pids limit kept");
    if has_swap {
        assert_eq!(
            read(&mem, swap_file()),
            swap(64 * MIB),
            "memory + swap kept"
        );
    }

    // runc's -1: unlimited memory with no word on swap lifts the swap limit too (else the
    // kernel would refuse a memory limit above memory + swap).
    ok(
        &env.cmd(&["update", "--memory", "-1", &id]),
        "update --memory -1",
    );
    {
        let fresh = Fresh::beside(&mem);
        fresh.assert_default(&mem, limit);
        if has_swap {
            fresh.assert_default(&mem, swap_file());
        }
    }
    assert_eq!(read(&mem, soft), (16 * MIB).to_string());
    ok(&env.cmd(&["delete", "--force", &id]), "delete");
    env.assert_nothing_left(&id);
}
