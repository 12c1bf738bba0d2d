//! cgroup v1: one file per knob, in the hierarchy of the controller that owns it. The caller
//! ([`super::Cgroup::apply`]) has already found the directory serving each controller.

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxNetwork};

use super::stats::{self, Stats};
use super::{read_file, write_file};
use crate::error::{Error, Result};

pub(super) fn memory(dir: &Path, m: &LinuxMemory) -> Result<()> {
    // memory.memsw.limit_in_bytes (memory + swap) may never be below memory.limit_in_bytes, so
    // the order of the two writes depends on whether the limit grows or shrinks.
    let limit = m.limit();
    // Unlimited memory with no word on swap is unlimited swap too: else raising the limit to
    // -1 would be refused while an old memory + swap limit stays below it (runc, where swap is
    // accounted at all).
    let swap = match (limit, m.swap()) {
        (Some(-1), None) if dir.join("memory.memsw.limit_in_bytes").exists() => Some(-1),
        (_, swap) => swap,
    };
    let grows = match limit {
        Some(-1) => true,
        Some(new) => {
            let cur = read_file(dir, "memory.limit_in_bytes")?;
            cur.trim().parse::<i64>().map_or(true, |cur| new > cur)
        }
        None => true,
    };
    let write_limit = || match limit {
        Some(l) => write_file(dir, "memory.limit_in_bytes", &l.to_string()),
        None => Ok(()),
    };
    let write_swap = || match swap {
        Some(s) => write_file(dir, "memory.memsw.limit_in_bytes", &s.to_string()),
        None => Ok(()),
    };
    if grows {
        write_swap()?;
        write_limit()?;
    } else {
        write_limit()?;
        write_swap()?;
    }
    if let Some(r) = m.reservation() {
        write_file(dir, "memory.soft_limit_in_bytes", &r.to_string())?;
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return Err(Error::InvalidConfig(format!(
                "linux.resources.memory.swappiness {s} is not in 0..=100"
            )));
        }
        write_file(dir, "memory.swappiness", &s.to_string())?;
    }
    // Only `true` is set (false is the default, and runc never writes it).
    if m.disable_oom_killer() == Some(true) {
        write_file(dir, "memory.oom_control", "1")?;
    }
    if m.kernel().is_some() {
        // Deprecated in 5.4, refused since 5.16, then ignored or gone: as runc, ignore it.
        log::warn!("memory.kernel is no longer honoured by the kernel: ignored");
    }
    if let Some(t) = m.kernel_tcp() {
        // Still enforced on v1 (Linux 6.12 only warns that it is deprecated); a kernel that
        // has dropped the file gets it ignored, as v2 (which never had one) does.
        if dir.join("memory.kmem.tcp.limit_in_bytes").exists() {
            write_file(dir, "memory.kmem.tcp.limit_in_bytes", &t.to_string())?;
        } else {
            log::warn!(
                "memory.kernelTCP: this kernel has no memory.kmem.tcp.limit_in_bytes: ignored"
            );
        }
    }
    Ok(())
}

pub(super) fn cpu(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if let Some(s) = c.shares() {
        write_file(dir, "cpu.shares", &s.to_string())?;
    }
    // A new period with the old quota (or the reverse) can exceed the parent's share for a
    // moment and be refused: then write them the other way round.
    let period = c.period().map(|p| ("cpu.cfs_period_us", p.to_string()));
    let quota = c.quota().map(|q| ("cpu.cfs_quota_us", q.to_string()));
    let pair: Vec<_> = [period, quota].into_iter().flatten().collect();
    if pair
        .iter()
        .try_for_each(|(f, v)| write_file(dir, f, v))
        .is_err()
    {
        pair.iter()
            .rev()
            .try_for_each(|(f, v)| write_file(dir, f, v))?;
    }
    if let Some(b) = c.burst() {
        write_file(dir, "cpu.cfs_burst_us", &b.to_string())?;
    }
    if let Some(p) = c.realtime_period() {
        write_file(dir, "cpu.rt_period_us", &p.to_string())?;
    }
    if let Some(r) = c.realtime_runtime() {
        write_file(dir, "cpu.rt_runtime_us", &r.to_string())?;
    }
    if let Some(i) = c.idle() {
        write_file(dir, "cpu.idle", &i.to_string())?;
    }
    Ok(())
}

pub(super) fn blkio(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    // Kernels without CFQ have only the BFQ file.
    let weight_file = if dir.join("blkio.weight").exists() {
        "blkio.weight"
    } else {
        "blkio.bfq.weight"
    };
    if let Some(w) = b.weight() {
        write_file(dir, weight_file, &w.to_string())?;
    }
    if let Some(w) = b.leaf_weight() {
        write_file(dir, "blkio.leaf_weight", &w.to_string())?;
    }
    for wd in b.weight_device().iter().flatten() {
        let dev = format!("{}:{}", wd.major(), wd.minor());
        if let Some(w) = wd.weight() {
            write_file(dir, &format!("{weight_file}_device"), &format!("{dev} {w}"))?;
        }
        if let Some(w) = wd.leaf_weight() {
            write_file(dir, "blkio.leaf_weight_device", &format!("{dev} {w}"))?;
        }
    }
    for (file, list) in [
        (
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ] {
        for t in list.iter().flatten() {
            write_file(
                dir,
                file,
                &format!("{}:{} {}", t.major(), t.minor(), t.rate()),
            )?;
        }
    }
    Ok(())
}

pub(super) fn hugetlb(dir: &Path, limits: &[LinuxHugepageLimit]) -> Result<()> {
    for l in limits {
        let size = super::page_size(l.page_size())?;
        write_file(
            dir,
            &format!("hugetlb.{size}.limit_in_bytes"),
            &l.limit().to_string(),
        )?;
    }
    Ok(())
}

pub(super) fn net_cls(dir: &Path, n: &LinuxNetwork) -> Result<()> {
    match n.class_id() {
        Some(id) => write_file(dir, "net_cls.classid", &id.to_string()),
        None => Ok(()),
    }
}

pub(super) fn net_prio(dir: &Path, n: &LinuxNetwork) -> Result<()> {
    for p in n.priorities().iter().flatten() {
        write_file(
            dir,
            "net_prio.ifpriomap",
            &format!("{} {}", p.name(), p.priority()),
        )?;
    }
    Ok(())
}

/// Write device rules in order to `devices.allow` / `devices.deny`. The kernel keeps a default
/// (allow or deny all) and a list of exceptions: a wildcard rule sets the default and clears
/// the exceptions, any other rule adds or removes an exception, so applying the rules in order
/// gives the last matching rule the final word, as the OCI spec wants.
pub(super) fn devices(dir: &Path, rules: &[super::devices::Rule]) -> Result<()> {
    for r in rules {
        let file = if r.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        write_file(dir, file, &r.to_v1())?;
    }
    Ok(())
}

pub(super) fn freeze(dir: &Path, frozen: bool) -> Result<()> {
    let (want, op) = if frozen {
        ("FROZEN", "freeze")
    } else {
        ("THAWED", "thaw")
    };
    write_file(dir, "freezer.state", want)?;
    // FREEZING means some task has not stopped yet; the kernel finishes it on its own.
    super::wait_for(op, &dir.join("freezer.state"), || {
        Ok(read_file(dir, "freezer.state")?.trim() == want)
    })
}

pub(super) fn frozen(dir: &Path) -> bool {
    read_file(dir, "freezer.state").is_ok_and(|s| s.trim() == "FROZEN")
}

/// Fill in what the controllers of this v1 directory measure.
pub(super) fn stats(dir: &Path, ctrl: &str, st: &mut Stats) {
    let num = |f: &str| stats::read_u64(dir, f);
    match ctrl {
        "cpuacct" => {
            let u = &mut st.cpu.usage;
            u.total = num("cpuacct.usage");
            u.percpu = stats::read_list(dir, "cpuacct.usage_percpu");
            u.percpu_user = stats::read_list(dir, "cpuacct.usage_percpu_user");
            u.percpu_kernel = stats::read_list(dir, "cpuacct.usage_percpu_sys");
            // cpuacct.stat counts clock ticks (USER_HZ, 100 on Linux); runc reports ns.
            let kv = stats::read_keyed(dir, "cpuacct.stat");
            u.user = kv.get("user").copied().unwrap_or(0) * 10_000_000;
            u.kernel = kv.get("system").copied().unwrap_or(0) * 10_000_000;
        }
        "cpu" => {
            let kv = stats::read_keyed(dir, "cpu.stat");
            let t = &mut st.cpu.throttling;
            t.periods = kv.get("nr_periods").copied().unwrap_or(0);
            t.throttled_periods = kv.get("nr_throttled").copied().unwrap_or(0);
            t.throttled_time = kv.get("throttled_time").copied().unwrap_or(0);
        }
        "cpuset" => {
            st.cpuset.cpus = stats::read_range_list(dir, "cpuset.cpus");
            st.cpuset.mems = stats::read_range_list(dir, "cpuset.mems");
        }
        "memory" => {
            let entry = |prefix: &str| stats::MemoryEntry {
                limit: num(&format!("{prefix}limit_in_bytes")),
                usage: num(&format!("{prefix}usage_in_bytes")),
                max: num(&format!("{prefix}max_usage_in_bytes")),
                failcnt: num(&format!("{prefix}failcnt")),
            };
            let m = &mut st.memory;
            m.usage = entry("memory.");
            m.swap = entry("memory.memsw.");
            m.kernel = entry("memory.kmem.");
            m.kernel_tcp = entry("memory.kmem.tcp.");
            m.raw = stats::read_keyed(dir, "memory.stat");
            m.cache = m.raw.get("cache").copied().unwrap_or(0);
        }
        "pids" => {
            st.pids.current = num("pids.current");
            st.pids.limit = num("pids.max");
        }
        "blkio" => {
            let b = &mut st.blkio;
            b.io_service_bytes_recursive =
                stats::read_blkio(dir, "blkio.throttle.io_service_bytes_recursive");
            b.io_serviced_recursive =
                stats::read_blkio(dir, "blkio.throttle.io_serviced_recursive");
        }
        "hugetlb" => {
            for size in stats::hugepage_sizes() {
                let p = format!("hugetlb.{size}.");
                st.hugetlb.insert(
                    size,
                    stats::Hugetlb {
                        usage: num(&format!("{p}usage_in_bytes")),
                        max: num(&format!("{p}max_usage_in_bytes")),
                        failcnt: num(&format!("{p}failcnt")),
                    },
                );
            }
        }
        _ => {}
    }
}

/// The number of OOM kills in the cgroup (`oom_kill` in memory.oom_control, Linux 4.13+).
pub(super) fn oom_kills(dir: &Path) -> u64 {
    stats::read_keyed(dir, "memory.oom_control")
        .get("oom_kill")
        .copied()
        .unwrap_or(0)
}
