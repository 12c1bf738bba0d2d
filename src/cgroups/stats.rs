//! The statistics `events` prints, in runc's JSON shape (`types.Stats` of runc's `events`), which
//! containerd's shim and other tools parse; and small readers of cgroup files.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

fn zero(v: &u64) -> bool {
    *v == 0
}

/// A container's resource usage, as runc's `events --stats` reports it. Numbers the host's
/// cgroups do not provide are 0 (and left out of the JSON where runc leaves them out).
#[derive(Debug, Default, Clone, Serialize)]
pub struct Stats {
    /// CPU time used and throttling.
    pub cpu: Cpu,
    /// The CPUs and memory nodes the container may use.
    pub cpuset: CpuSet,
    /// Memory, swap and kernel memory.
    pub memory: Memory,
    /// The number of tasks.
    pub pids: Pids,
    /// Block I/O, in bytes and operations.
    pub blkio: Blkio,
    /// Huge pages, by page size (`2MB`, `1GB`).
    pub hugetlb: BTreeMap<String, Hugetlb>,
    /// Intel RDT: always empty (not supported), present for runc's shape.
    pub intel_rdt: serde_json::Map<String, serde_json::Value>,
    /// Network interfaces: always `null` here, as runc reports them.
    pub network_interfaces: Option<Vec<serde_json::Value>>,
}

/// CPU usage.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Cpu {
    /// Time used.
    pub usage: CpuUsage,
    /// CFS throttling.
    pub throttling: Throttling,
}

/// CPU time used, in nanoseconds.
#[derive(Debug, Default, Clone, Serialize)]
pub struct CpuUsage {
    /// In total.
    #[serde(skip_serializing_if = "zero")]
    pub total: u64,
    /// Per CPU (cgroup v1's cpuacct only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    /// In kernel mode, per CPU (cgroup v1's cpuacct only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    /// In user mode, per CPU (cgroup v1's cpuacct only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    /// In kernel mode.
    pub kernel: u64,
    /// In user mode.
    pub user: u64,
}

/// CFS bandwidth throttling (a CPU quota at work).
#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    /// Periods elapsed with the quota in force.
    #[serde(skip_serializing_if = "zero")]
    pub periods: u64,
    /// Periods in which the container was throttled.
    #[serde(skip_serializing_if = "zero")]
    pub throttled_periods: u64,
    /// Time throttled, in nanoseconds.
    #[serde(skip_serializing_if = "zero")]
    pub throttled_time: u64,
}

/// The cpuset in force.
#[derive(Debug, Default, Clone, Serialize)]
pub struct CpuSet {
    /// The CPUs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    /// The memory nodes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
}

/// One kind of memory: limit and use, in bytes.
#[derive(Debug, Default, Clone, Serialize)]
pub struct MemoryEntry {
    /// The limit (u64::MAX for none).
    pub limit: u64,
    /// In use now.
    #[serde(skip_serializing_if = "zero")]
    pub usage: u64,
    /// The most ever in use (where the kernel records it).
    #[serde(skip_serializing_if = "zero")]
    pub max: u64,
    /// How many times the limit was hit.
    pub failcnt: u64,
}

/// Memory use.
#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    /// Page cache, in bytes.
    #[serde(skip_serializing_if = "zero")]
    pub cache: u64,
    /// Memory.
    pub usage: MemoryEntry,
    /// Memory + swap (v1), or swap (v2).
    pub swap: MemoryEntry,
    /// Kernel memory (v1).
    pub kernel: MemoryEntry,
    /// Kernel TCP buffers (v1).
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// The cgroup's `memory.stat`, key by key.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

/// Tasks.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Pids {
    /// Tasks now.
    #[serde(skip_serializing_if = "zero")]
    pub current: u64,
    /// The limit (0 for none).
    #[serde(skip_serializing_if = "zero")]
    pub limit: u64,
}

/// One counter of one block device.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct BlkioEntry {
    /// The device's major number.
    #[serde(skip_serializing_if = "zero")]
    pub major: u64,
    /// The device's minor number.
    #[serde(skip_serializing_if = "zero")]
    pub minor: u64,
    /// `Read`, `Write`, `Sync`, `Async`, `Discard` or `Total`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    /// The count.
    #[serde(skip_serializing_if = "zero")]
    pub value: u64,
}

/// Block I/O.
#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blkio {
    /// Bytes, per device and operation.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    /// Operations, per device and operation.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

/// One huge page size.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Hugetlb {
    /// In use now, in bytes.
    #[serde(skip_serializing_if = "zero")]
    pub usage: u64,
    /// The most ever in use (v1).
    #[serde(skip_serializing_if = "zero")]
    pub max: u64,
    /// How many times the limit was hit.
    pub failcnt: u64,
}

/// A number from a one-value file; `max` (no limit) reads as u64::MAX, as in runc; a missing
/// or unreadable file as 0.
pub fn read_u64(dir: &Path, file: &str) -> u64 {
    let s = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
    match s.trim() {
        "max" => u64::MAX,
        // v1 writes "unlimited" as a huge page-rounded number, and -1 in some files.
        t => t.parse::<u64>().unwrap_or(0),
    }
}

/// A "key value" per line file (cpu.stat, memory.stat, memory.events...).
pub fn parse_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = it.next()?.parse().ok()?;
            Some((k.to_string(), v))
        })
        .collect()
}

pub fn read_keyed(dir: &Path, file: &str) -> BTreeMap<String, u64> {
    parse_keyed(&std::fs::read_to_string(dir.join(file)).unwrap_or_default())
}

/// Space-separated numbers (cpuacct.usage_percpu).
pub fn read_list(dir: &Path, file: &str) -> Vec<u64> {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// A cpu or node list such as `0-3,7`.
pub fn parse_range_list(s: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<u16>()),
        }
    }
    out
}

pub fn read_range_list(dir: &Path, file: &str) -> Vec<u16> {
    parse_range_list(&std::fs::read_to_string(dir.join(file)).unwrap_or_default())
}

/// v1 blkio files: `8:0 Read 4096` lines, plus a `Total` line that runc drops.
pub fn parse_blkio(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (maj, min) = it.next()?.split_once(':')?;
            let op = it.next()?.to_string();
            let value = it.next()?.parse().ok()?;
            Some(BlkioEntry {
                major: maj.parse().ok()?,
                minor: min.parse().ok()?,
                op,
                value,
            })
        })
        .collect()
}

pub fn read_blkio(dir: &Path, file: &str) -> Vec<BlkioEntry> {
    parse_blkio(&std::fs::read_to_string(dir.join(file)).unwrap_or_default())
}

/// v2 `io.stat` (`8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...`) as runc reports it: bytes and
/// operations, each as Read and Write entries.
pub fn parse_io_stat(text: &str) -> (Vec<BlkioEntry>, Vec<BlkioEntry>) {
    let (mut bytes, mut ios) = (Vec::new(), Vec::new());
    for l in text.lines() {
        let mut it = l.split_whitespace();
        let Some((maj, min)) = it.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (maj.parse(), min.parse()) else {
            continue;
        };
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut bytes, "Read"),
                "wbytes" => (&mut bytes, "Write"),
                "rios" => (&mut ios, "Read"),
                "wios" => (&mut ios, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.into(),
                value,
            });
        }
    }
    (bytes, ios)
}

pub fn read_io_stat(dir: &Path) -> (Vec<BlkioEntry>, Vec<BlkioEntry>) {
    parse_io_stat(&std::fs::read_to_string(dir.join("io.stat")).unwrap_or_default())
}

/// The host's huge page sizes in the kernel's cgroup spelling (`2MB`, `1GB`).
pub fn hugepage_sizes() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir("/sys/kernel/mm/hugepages")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let kb: u64 = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some(kb_to_cgroup_size(kb))
        })
        .collect();
    out.sort();
    out
}

/// 2048 → `2MB`, 1048576 → `1GB`, 64 → `64KB`.
pub fn kb_to_cgroup_size(kb: u64) -> String {
    if kb >= 1 << 20 && kb.is_multiple_of(1 << 20) {
        format!("{}GB", kb >> 20)
    } else if kb >= 1 << 10 && kb.is_multiple_of(1 << 10) {
        format!("{}MB", kb >> 10)
    } else {
        format!("{kb}KB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        assert_eq!(parse_range_list("0-2,5\n"), vec![0, 1, 2, 5]);
        assert_eq!(parse_range_list(""), Vec::<u16>::new());
        let kv = parse_keyed("usage_usec 12\nnr_throttled 3\n");
        assert_eq!(kv["usage_usec"], 12);
        assert_eq!(kv["nr_throttled"], 3);
        let b = parse_blkio("8:0 Read 4096\n8:0 Write 0\nTotal 4096\n");
        assert_eq!(b.len(), 2);
        assert_eq!(
            (b[0].major, b[0].op.as_str(), b[0].value),
            (8, "Read", 4096)
        );
        let (bytes, ios) =
            parse_io_stat("8:16 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n");
        assert_eq!(bytes.len(), 2);
        assert_eq!(ios[1].value, 2);
        assert_eq!(kb_to_cgroup_size(2048), "2MB");
        assert_eq!(kb_to_cgroup_size(1_048_576), "1GB");
        assert_eq!(kb_to_cgroup_size(64), "64KB");
    }

    #[test]
    fn json_has_runc_field_names() {
        let mut s = Stats::default();
        s.memory.usage.usage = 5;
        s.cpu.throttling.throttled_periods = 2;
        s.memory.kernel_tcp.limit = 1;
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["memory"]["usage"]["usage"], 5);
        assert_eq!(v["cpu"]["throttling"]["throttledPeriods"], 2);
        assert_eq!(v["memory"]["kernelTCP"]["limit"], 1);
        assert!(
            v["cpu"]["usage"].get("total").is_none(),
            "zero is omitted as in Go"
        );
    }
}
