//! cgroup v2: the unified hierarchy's files, and the conversions from the OCI spec's v1-shaped
//! values, done as runc does them so that a config means the same under either runtime:
//!
//! | OCI (v1 terms) | v2 file | conversion |
//! |---|---|---|
//! | `memory.limit` | `memory.max` | -1 → `max` |
//! | `memory.swap` (memory + swap) | `memory.swap.max` | swap − limit ([`swap_max`]) |
//! | `memory.reservation` | `memory.low` | |
//! | `cpu.shares` (2..262144) | `cpu.weight` (1..10000) | [`cpu_weight`] |
//! | `cpu.quota`, `cpu.period` | `cpu.max` | `"$quota $period"`, quota -1 → `max` |
//! | `cpu.burst`, `cpu.idle` | `cpu.max.burst`, `cpu.idle` | |
//! | `blockIO.weight` (10..1000) | `io.bfq.weight` as is, else `io.weight` | [`io_weight`] |
//! | `blockIO.throttle*` | `io.max` | `"maj:min rbps=N"` ... |
//! | `hugepageLimits` | `hugetlb.<size>.max` | |
//! | `devices` | a `BPF_PROG_TYPE_CGROUP_DEVICE` program | see `devices.rs` |
//!
//! `memory.swappiness`, `memory.disableOOMKiller`, `network` and realtime cpu have no v2
//! equivalent: runc ignores the first three, and so do we, with a warning; realtime is refused.
//! Values that mean "not set" (zeros, see `unset.rs`) have been removed before these run.

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory};

use super::stats::{self, Stats};
use super::{read_file, write_file};
use crate::error::{Error, Result};

/// `cpu.shares` to `cpu.weight`: the v1 range 2..262144 mapped linearly onto 1..10000
/// (runc's formula; 0 means unset).
pub fn cpu_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

/// `blkio.weight` to `io.weight`: 10..1000 mapped linearly onto 1..10000 (runc's formula).
pub fn io_weight(blkio: u16) -> u64 {
    if blkio == 0 {
        return 0;
    }
    1 + (u64::from(blkio.clamp(10, 1000)) - 10) * 9999 / 990
}

/// v1's `memory.swap` is memory + swap; v2's `memory.swap.max` is swap alone. Returns None
/// for "leave it", Some(-1) for `max`.
pub fn swap_max(swap: Option<i64>, limit: Option<i64>) -> Result<Option<i64>> {
    let swap = swap.unwrap_or(0);
    let limit = limit.unwrap_or(0);
    // An unlimited memory with no word on swap means unlimited swap too, as on v1.
    if limit == -1 && swap == 0 {
        return Ok(Some(-1));
    }
    match swap {
        0 => return Ok(None),
        -1 => return Ok(Some(-1)),
        _ => {}
    }
    if limit <= 0 {
        return Err(Error::InvalidConfig(
            "linux.resources.memory.swap needs memory.limit on cgroup v2".into(),
        ));
    }
    if swap < limit {
        return Err(Error::InvalidConfig(format!(
            "linux.resources.memory.swap {swap} is below memory.limit {limit} (swap counts memory + swap)"
        )));
    }
    Ok(Some(swap - limit))
}

fn max_or(v: i64) -> String {
    if v < 0 { "max".into() } else { v.to_string() }
}

pub(super) fn memory(dir: &Path, m: &LinuxMemory) -> Result<()> {
    let swap = swap_max(m.swap(), m.limit())?;
    // memory.swap.max is independent of memory.max on v2, so the order does not matter.
    if let Some(l) = m.limit() {
        write_file(dir, "memory.max", &max_or(l))?;
    }
    // Without swap accounting there is no memory.swap.max: no swap, or unlimited swap, is
    // then what the container has anyway (runc skips those two values there too).
    let no_swap_file = || !dir.join("memory.swap.max").exists();
    if let Some(s) = swap.filter(|s| !((*s == -1 || *s == 0) && no_swap_file())) {
        write_file(dir, "memory.swap.max", &max_or(s))?;
    }
    if let Some(r) = m.reservation() {
        write_file(dir, "memory.low", &max_or(r))?;
    }
    if m.swappiness().is_some() {
        log::warn!("memory.swappiness has no cgroup v2 equivalent: ignored");
    }
    if m.disable_oom_killer() == Some(true) {
        log::warn!("memory.disableOOMKiller has no cgroup v2 equivalent: ignored");
    }
    Ok(())
}

/// `cpu.max`: "$quota $period"; with only one of them given the other keeps its value.
pub fn cpu_max(quota: Option<i64>, period: Option<u64>, current: &str) -> Option<String> {
    if quota.is_none() && period.is_none() {
        return None;
    }
    let mut cur = current.split_whitespace();
    let cur_quota = cur.next().unwrap_or("max").to_string();
    let cur_period = cur.next().unwrap_or("100000").to_string();
    let q = quota.map_or(
        cur_quota,
        |q| if q <= 0 { "max".into() } else { q.to_string() },
    );
    let p = period.map_or(cur_period, |p| p.to_string());
    Some(format!("{q} {p}"))
}

pub(super) fn cpu(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if c.realtime_period().is_some() || c.realtime_runtime().is_some() {
        return Err(Error::Unsupported(
            "linux.resources.cpu.realtimeRuntime/realtimePeriod: cgroup v2 has no realtime cpu controller"
                .into(),
        ));
    }
    if let Some(s) = c.shares() {
        write_file(dir, "cpu.weight", &cpu_weight(s).to_string())?;
    }
    let current = if c.quota().is_some() != c.period().is_some() {
        read_file(dir, "cpu.max").unwrap_or_default()
    } else {
        String::new()
    };
    if let Some(v) = cpu_max(c.quota(), c.period(), &current) {
        write_file(dir, "cpu.max", &v)?;
    }
    if let Some(b) = c.burst() {
        write_file(dir, "cpu.max.burst", &b.to_string())?;
    }
    if let Some(i) = c.idle() {
        write_file(dir, "cpu.idle", &i.to_string())?;
    }
    Ok(())
}

pub(super) fn io(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    // With BFQ, its own weight file takes the v1 range unchanged.
    let bfq = dir.join("io.bfq.weight").exists();
    let weight = |w: u16| {
        if bfq { u64::from(w) } else { io_weight(w) }
    };
    let weight_file = if bfq { "io.bfq.weight" } else { "io.weight" };
    if let Some(w) = b.weight() {
        let v = weight(w);
        write_file(dir, weight_file, &format!("default {v}"))?;
    }
    if b.leaf_weight().is_some() {
        log::warn!("blockIO.leafWeight has no cgroup v2 equivalent: ignored");
    }
    for wd in b.weight_device().iter().flatten() {
        if let Some(w) = wd.weight() {
            let v = weight(w);
            write_file(
                dir,
                weight_file,
                &format!("{}:{} {v}", wd.major(), wd.minor()),
            )?;
        }
    }
    for (key, list) in [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ] {
        for t in list.iter().flatten() {
            // A rate of 0 lifts the limit, as writing 0 to the v1 file does.
            let rate = match t.rate() {
                0 => "max".to_string(),
                r => r.to_string(),
            };
            write_file(
                dir,
                "io.max",
                &format!("{}:{} {key}={rate}", t.major(), t.minor()),
            )?;
        }
    }
    Ok(())
}

pub(super) fn hugetlb(dir: &Path, limits: &[LinuxHugepageLimit]) -> Result<()> {
    for l in limits {
        let size = super::page_size(l.page_size())?;
        write_file(dir, &format!("hugetlb.{size}.max"), &max_or(l.limit()))?;
    }
    Ok(())
}

/// `unified`: key/value pairs written as they are, each key a file of the container's cgroup.
pub(super) fn unified(dir: &Path, kv: &std::collections::HashMap<String, String>) -> Result<()> {
    for (k, v) in kv {
        if k.is_empty() || k.contains('/') || k.starts_with('.') {
            return Err(Error::InvalidConfig(format!(
                "linux.resources.unified key {k:?} is not a cgroup file name"
            )));
        }
        if !dir.join(k).exists() {
            let ctrl = k.split('.').next().unwrap_or(k);
            return Err(Error::Unsupported(format!(
                "linux.resources.unified key {k:?}: no such file in {} (is the {ctrl} controller enabled there?)",
                dir.display()
            )));
        }
        write_file(dir, k, v)?;
    }
    Ok(())
}

pub(super) fn freeze(dir: &Path, frozen: bool) -> Result<()> {
    write_file(dir, "cgroup.freeze", if frozen { "1" } else { "0" })?;
    let op = if frozen { "freeze" } else { "thaw" };
    super::wait_for(op, &dir.join("cgroup.freeze"), || {
        Ok(is_frozen(dir) == frozen)
    })
}

/// Whether the cgroup has finished freezing (`frozen 1` in cgroup.events).
pub(super) fn is_frozen(dir: &Path) -> bool {
    stats::read_keyed(dir, "cgroup.events").get("frozen") == Some(&1)
}

pub(super) fn freeze_requested(dir: &Path) -> bool {
    read_file(dir, "cgroup.freeze").is_ok_and(|s| s.trim() == "1")
}

/// Fill in what controller `ctrl` (v1 name) measures, from its v2 files.
pub(super) fn stats(dir: &Path, ctrl: &str, st: &mut Stats) {
    let num = |f: &str| stats::read_u64(dir, f);
    match ctrl {
        "cpu" => {
            // cpu.stat exists without the cpu controller; usage in µs, runc reports ns.
            let kv = stats::read_keyed(dir, "cpu.stat");
            let get = |k: &str| kv.get(k).copied().unwrap_or(0);
            st.cpu.usage.total = get("usage_usec") * 1000;
            st.cpu.usage.user = get("user_usec") * 1000;
            st.cpu.usage.kernel = get("system_usec") * 1000;
            st.cpu.throttling.periods = get("nr_periods");
            st.cpu.throttling.throttled_periods = get("nr_throttled");
            st.cpu.throttling.throttled_time = get("throttled_usec") * 1000;
        }
        "cpuset" => {
            st.cpuset.cpus = stats::read_range_list(dir, "cpuset.cpus.effective");
            st.cpuset.mems = stats::read_range_list(dir, "cpuset.mems.effective");
        }
        "memory" => {
            let m = &mut st.memory;
            let events = stats::read_keyed(dir, "memory.events");
            m.usage = stats::MemoryEntry {
                limit: num("memory.max"),
                usage: num("memory.current"),
                max: num("memory.peak"),
                failcnt: events.get("max").copied().unwrap_or(0),
            };
            // runc reports swap as memory + swap, the v1 meaning.
            m.swap = stats::MemoryEntry {
                limit: num("memory.swap.max"),
                usage: num("memory.swap.current") + m.usage.usage,
                max: 0,
                failcnt: 0,
            };
            m.raw = stats::read_keyed(dir, "memory.stat");
            m.cache = m.raw.get("file").copied().unwrap_or(0);
        }
        "pids" => {
            st.pids.current = num("pids.current");
            st.pids.limit = num("pids.max");
        }
        "io" | "blkio" => {
            let (bytes, ios) = stats::read_io_stat(dir);
            st.blkio.io_service_bytes_recursive = bytes;
            st.blkio.io_serviced_recursive = ios;
        }
        "hugetlb" => {
            for size in stats::hugepage_sizes() {
                let p = format!("hugetlb.{size}.");
                let events = stats::read_keyed(dir, &format!("{p}events"));
                st.hugetlb.insert(
                    size,
                    stats::Hugetlb {
                        usage: num(&format!("{p}current")),
                        max: num(&format!("{p}max")),
                        failcnt: events.get("max").copied().unwrap_or(0),
                    },
                );
            }
        }
        _ => {}
    }
}

pub(super) fn oom_kills(dir: &Path) -> u64 {
    stats::read_keyed(dir, "memory.events")
        .get("oom_kill")
        .copied()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_to_weight_as_runc() {
        assert_eq!(cpu_weight(0), 0);
        assert_eq!(cpu_weight(2), 1);
        assert_eq!(cpu_weight(1024), 39);
        assert_eq!(cpu_weight(262_144), 10_000);
        assert_eq!(cpu_weight(1), 1, "below the v1 range clamps");
    }

    #[test]
    fn blkio_weight_to_io_weight_as_runc() {
        assert_eq!(io_weight(0), 0);
        assert_eq!(io_weight(10), 1);
        assert_eq!(io_weight(500), 4950);
        assert_eq!(io_weight(1000), 10_000);
    }

    #[test]
    fn swap_is_memory_plus_swap_in_v1_terms() {
        assert_eq!(swap_max(None, None).unwrap(), None);
        assert_eq!(swap_max(None, Some(100)).unwrap(), None);
        assert_eq!(swap_max(Some(300), Some(100)).unwrap(), Some(200));
        assert_eq!(swap_max(Some(100), Some(100)).unwrap(), Some(0));
        assert_eq!(swap_max(Some(-1), Some(100)).unwrap(), Some(-1));
        assert_eq!(swap_max(None, Some(-1)).unwrap(), Some(-1));
        assert!(swap_max(Some(50), Some(100)).is_err());
        assert!(swap_max(Some(50), None).is_err());
    }

    #[test]
    fn cpu_max_keeps_what_is_not_given() {
        assert_eq!(cpu_max(None, None, "max 100000"), None);
        assert_eq!(cpu_max(Some(5000), Some(10000), "").unwrap(), "5000 10000");
        assert_eq!(cpu_max(Some(-1), None, "20000 50000").unwrap(), "max 50000");
        assert_eq!(
            cpu_max(None, Some(25000), "20000 50000").unwrap(),
            "20000 25000"
        );
        assert_eq!(cpu_max(Some(3000), None, "").unwrap(), "3000 100000");
    }
}
