//! The systemd cgroup driver (`--systemd-cgroup`), as runc's: where systemd owns the cgroup
//! tree, the container's cgroup is a transient scope unit that systemd makes, with the init in
//! it, and removes.
//!
//! - `linux.cgroupsPath` is `slice:prefix:name`, the scope `<prefix>-<name>.scope` in `slice`
//!   (empty: `system.slice`), whose directory is the slice's path as systemd expands dashes
//!   (`a-b.slice` is `a.slice/a-b.slice`) and the scope's name. No cgroupsPath is
//!   `system.slice:cofferdam:<id>`.
//! - `create` checks that systemd runs and connects to it before anything is made; after the
//!   fork, `StartTransientUnit` with the init's pid, `Delegate=yes`, and the resources systemd
//!   has properties for; then waits for the job (`JobRemoved`). Every limit is also written to
//!   the scope's files, as runc does, so a config means the same under both drivers, and
//!   `unified` (which systemd does not know) is written as given. Device rules go to
//!   `DevicePolicy`/`DeviceAllow` with the BPF program, once the init has made its /dev.
//! - `org.systemd.property.<Name>` annotations are extra properties of the scope, as runc
//!   takes them (`unit_props.rs`).
//! - `update` sets the properties and writes the files; `delete` stops the unit and resets it
//!   if it failed. Pause, kill, stats and `exec` go through the scope's directory as with
//!   cgroupfs.
//!
//! The properties are what systemd writes back whenever it re-applies a unit's settings (a
//! `daemon-reload`, another unit starting in the slice): a limit set only in a file would be
//! reset then. The slices are left as runc leaves them: they may hold other units.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use super::dbus::{Connection, DbusError, Value, prop};
use super::devices::Rule;
use super::{Cgroup, CgroupDir, Kind, Layout, Phase, unit_props, v2};
use crate::error::{Error, Result};

/// The scope unit that holds a container's cgroup, recorded in the state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    /// `<prefix>-<name>.scope`.
    pub name: String,
    /// The slice it is in, as systemd names it (`kubepods-besteffort-pod1.slice`).
    pub slice: String,
}

/// The prefix of the scope when the config has no cgroupsPath (runc's is `runc`).
pub const DEFAULT_PREFIX: &str = "cofferdam";

/// Where systemd is waited for: runc's 30 s for a job.
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

const SYSTEMD: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";

/// Whether systemd is this host's init, as `sd_booted(3)` tells.
pub fn running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// A unit name's characters, as systemd allows them (`:` separates the fields here).
fn valid_unit_chars(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.\\".contains(&b))
}

/// `linux.cgroupsPath` in systemd's form, `slice:prefix:name`; None is runc's default shape,
/// `system.slice:cofferdam:<id>`.
pub fn parse_path(path: Option<&str>, id: &str) -> Result<Unit> {
    let bad = |why: &str| {
        Error::InvalidConfig(format!(
            "cgroupsPath {:?}: {why} (with --systemd-cgroup it is \"slice:prefix:name\", e.g. \"system.slice:docker:abc\")",
            path.unwrap_or_default()
        ))
    };
    let (slice, prefix, name) = match path {
        None | Some("") => ("", DEFAULT_PREFIX, id),
        Some(p) => match p.split(':').collect::<Vec<_>>()[..] {
            [s, p, n] => (s, p, n),
            _ => return Err(bad("not three fields separated by ':'")),
        },
    };
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    expand_slice(slice).map_err(|why| bad(&why))?;
    if name.is_empty() {
        return Err(bad("the name is empty"));
    }
    if name.ends_with(".slice") {
        return Err(bad("a container's unit is a scope, not a slice"));
    }
    let unit = format!("{prefix}-{name}.scope");
    if !valid_unit_chars(prefix) || !valid_unit_chars(name) || unit.len() > 255 {
        return Err(bad(&format!(
            "{unit:?} is not a valid systemd unit name (letters, digits, '-', '_', '.', '\\', at most 255)"
        )));
    }
    Ok(Unit {
        name: unit,
        slice: slice.to_string(),
    })
}

/// A slice's cgroup path: systemd nests `a-b-c.slice` in `a-b.slice` in `a.slice`, so that
/// one is `/a.slice/a-b.slice/a-b-c.slice`; `-.slice` is the root.
pub fn expand_slice(slice: &str) -> std::result::Result<String, String> {
    let base = slice
        .strip_suffix(".slice")
        .filter(|b| !b.is_empty() && !slice.contains('/') && valid_unit_chars(slice))
        .ok_or_else(|| format!("{slice:?} is not a slice name (NAME.slice)"))?;
    if base == "-" {
        return Ok("/".into());
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in base.split('-') {
        if part.is_empty() {
            return Err(format!(
                "{slice:?}: a slice name has no empty part between dashes"
            ));
        }
        path += &format!("/{prefix}{part}.slice");
        prefix += &format!("{part}-");
    }
    Ok(path)
}

impl Cgroup {
    /// The plan for a container under the systemd driver: its scope, and the scope's directory
    /// (which systemd makes). Fails, with nothing made, where systemd does not run or cannot
    /// be reached.
    /// `annotations` are the config's: their `org.systemd.property.*` ones are checked here.
    pub fn plan_systemd(
        layout: &Layout,
        cgroups_path: Option<&str>,
        id: &str,
        annotations: Option<&HashMap<String, String>>,
    ) -> Result<Cgroup> {
        let unit = parse_path(cgroups_path, id)?;
        unit_props::from_annotations(annotations)?;
        if !running() {
            return Err(Error::Unsupported(
                "--systemd-cgroup: systemd is not running on this host (no /run/systemd/system); \
                 use the cgroupfs driver (without --systemd-cgroup)"
                    .into(),
            ));
        }
        if layout.kind() != Kind::Unified {
            return Err(Error::Unsupported(
                "--systemd-cgroup: the systemd driver needs a pure cgroup v2 host \
                 (systemd.unified_cgroup_hierarchy=1); this one mounts cgroup v1 hierarchies"
                    .into(),
            ));
        }
        let h = layout
            .hierarchies
            .iter()
            .find(|h| h.v2)
            .expect("a unified layout has its cgroup2 hierarchy");
        let slice_path = expand_slice(&unit.slice).map_err(Error::InvalidConfig)?;
        let abs = PathBuf::from(slice_path).join(&unit.name);
        let dir = Layout::dir_of(h, &abs)?;
        // Connect now, so that an unreachable systemd fails the create before anything is made.
        with_bus(|_| Ok(())).map_err(|e| systemd_err("connect to", "the system bus", e))?;
        Ok(Cgroup {
            dirs: vec![CgroupDir {
                path: dir,
                // systemd makes and removes it.
                created_from: None,
                v2: true,
                mount_name: h
                    .mount
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                controllers: String::new(),
            }],
            systemd: Some(unit),
        })
    }

    /// Put the forked init in its cgroup where `create` cannot do it itself: with the systemd
    /// driver, start the scope with the init in it and the resources systemd has properties
    /// for, then the properties the config's `org.systemd.property.*` annotations name (which
    /// may override them, as with runc), and wait until systemd has done it. Nothing to do
    /// with cgroupfs.
    pub fn start_unit(
        &self,
        id: &str,
        pid: i32,
        res: Option<&LinuxResources>,
        annotations: Option<&HashMap<String, String>>,
    ) -> Result<()> {
        let Some(unit) = &self.systemd else {
            return Ok(());
        };
        let extra = unit_props::from_annotations(annotations)?;
        let start = || -> std::result::Result<(), DbusError> {
            with_bus(|bus| {
                let mut props = vec![
                    prop(
                        "Description",
                        Value::Str(format!("cofferdam container {id}")),
                    ),
                    prop("Slice", Value::Str(unit.slice.clone())),
                    prop("Delegate", Value::Bool(true)),
                    prop(
                        "PIDs",
                        Value::Array("u".into(), vec![Value::U32(pid as u32)]),
                    ),
                    // The accounting runc turns on, so that systemd enables the controllers.
                    prop("MemoryAccounting", Value::Bool(true)),
                    prop("CPUAccounting", Value::Bool(true)),
                    prop("IOAccounting", Value::Bool(true)),
                    prop("TasksAccounting", Value::Bool(true)),
                    prop("DefaultDependencies", Value::Bool(false)),
                ];
                if let Some(r) = res {
                    props.extend(resource_props(bus, r, "")?);
                    // OOMPolicy can only be given when the unit starts (systemd 253).
                    let group = r
                        .unified()
                        .as_ref()
                        .and_then(|u| u.get("memory.oom.group"))
                        .map(|v| v.trim().to_string());
                    if let Some(g) = group.filter(|_| bus.version() >= 253) {
                        let policy = if g == "1" { "kill" } else { "continue" };
                        props.push(prop("OOMPolicy", Value::Str(policy.into())));
                    }
                }
                props.extend(extra.iter().cloned());
                bus.start_unit(&unit.name, props)
            })
        };
        start().map_err(|e| systemd_err("start unit", &unit.name, e))?;
        if let Some(d) = self.v2_dir() {
            enable_all_controllers(&d.path);
        }
        log::debug!("systemd unit {} started with pid {pid}", unit.name);
        Ok(())
    }
}

/// The properties and resources for `Cgroup::apply` under the systemd driver: sets the unit's
/// properties for this phase (they went with the unit at create, the devices once the init has
/// made its /dev, all of them on update) and returns the resources to write to the files, with
/// the cpu quota rounded as systemd rounds it, so that files and properties agree.
pub(super) fn apply(
    unit: &Unit,
    dir: &Path,
    res: &LinuxResources,
    phase: Phase,
) -> Result<LinuxResources> {
    let current = super::read_file(dir, "cpu.max").unwrap_or_default();
    let set = |bus: &mut Bus| -> std::result::Result<(), DbusError> {
        let mut props = Vec::new();
        if phase == Phase::All {
            props.extend(resource_props(bus, res, &current)?);
        }
        if phase != Phase::Limits
            && let Some(rules) = super::devices::rules(res.devices().as_ref())
                .map_err(|e| DbusError::Invalid(e.to_string()))?
        {
            props.extend(device_props(&rules, bus.version()));
        }
        if props.is_empty() {
            return Ok(());
        }
        bus.call(
            "SetUnitProperties",
            &[
                Value::Str(unit.name.clone()),
                Value::Bool(true),
                Value::Array("(sv)".into(), props),
            ],
        )
        .map(drop)
    };
    if phase != Phase::Limits {
        with_bus(set).map_err(|e| systemd_err("set properties of", &unit.name, e))?;
    }
    let mut out = res.clone();
    if let Some(c) = res.cpu()
        && let Some((_, period, Some(q))) = cpu_quota(c.quota(), c.period(), &current)
    {
        let mut c = c.clone();
        c.set_quota(Some(q));
        c.set_period(Some(period));
        out.set_cpu(Some(c));
    }
    Ok(out)
}

/// Stop the unit (killing what is left in it) and reset it if it failed, so that nothing of
/// it stays in `systemctl list-units`; then remove what systemd left of its directory.
pub(super) fn remove(unit: &Unit, dirs: &[CgroupDir]) -> Result<()> {
    with_bus(|bus| bus.stop_unit(&unit.name))
        .map_err(|e| systemd_err("stop unit", &unit.name, e))?;
    for d in dirs {
        // systemd removes a scope's whole tree; older ones (239) left delegated subtrees.
        remove_tree(&d.path)?;
    }
    Ok(())
}

/// rmdir `dir` and every cgroup below it, deepest first.
fn remove_tree(dir: &Path) -> Result<()> {
    let subdirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    for s in subdirs {
        remove_tree(&s)?;
    }
    super::rmdir_retry(dir)
}

/// cgroup2 hands a controller down only where each parent enables it: systemd enables those it
/// manages (cpu, cpuset, io, memory, pids) on the way to a delegated scope, and, as runc does,
/// we enable the rest (hugetlb, rdma, misc) from the root down. Best effort: a resource whose
/// controller is still missing is reported when it is written.
fn enable_all_controllers(scope: &Path) {
    let Some(parent) = scope.parent() else { return };
    let mut levels: Vec<&Path> = parent.ancestors().collect();
    levels.reverse();
    for dir in levels {
        let (Ok(avail), Ok(on)) = (
            super::read_file(dir, "cgroup.controllers"),
            super::read_file(dir, "cgroup.subtree_control"),
        ) else {
            continue;
        };
        let on: Vec<&str> = on.split_whitespace().collect();
        for c in avail.split_whitespace().filter(|c| !on.contains(c)) {
            let _ = super::write_file(dir, "cgroup.subtree_control", &format!("+{c}"));
        }
    }
}

fn systemd_err(op: &'static str, what: &str, e: DbusError) -> Error {
    if let DbusError::Invalid(m) = e {
        return Error::InvalidConfig(m);
    }
    Error::Systemd {
        op,
        unit: what.to_string(),
        why: e.to_string(),
    }
}

// ---- the properties -------------------------------------------------------------------------

/// `cpu.quota` and `cpu.period` as systemd takes them: (CPUQuotaPerSecUSec, the period, the
/// quota rounded as systemd rounds it when it changed). systemd keeps a quota as a whole
/// percentage of a CPU, so runc rounds the time per second up to 10 ms and writes the quota
/// that comes out of it to the files too. A value not given keeps its current one (`current`
/// is `cpu.max`). None when neither is given.
fn cpu_quota(
    quota: Option<i64>,
    period: Option<u64>,
    current: &str,
) -> Option<(u64, u64, Option<i64>)> {
    let line = v2::cpu_max(quota, period, current)?;
    let mut f = line.split_whitespace();
    let q = f.next().unwrap_or("max");
    let p: u64 = f
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(100_000)
        .max(1);
    let Ok(q) = q.parse::<u64>() else {
        return Some((u64::MAX, p, None));
    };
    let per_sec = (u128::from(q) * 1_000_000 / u128::from(p)) as u64;
    if per_sec.is_multiple_of(10_000) {
        return Some((per_sec, p, None));
    }
    let per_sec = (per_sec / 10_000 + 1) * 10_000;
    let rounded = (u128::from(per_sec) * u128::from(p) / 1_000_000) as i64;
    Some((per_sec, p, Some(rounded)))
}

/// `AllowedCPUs`/`AllowedMemoryNodes`: a cpuset list ("0-3,5") as a bit mask, byte 0 holding
/// CPUs 0-7.
fn cpuset_bits(list: &str, what: &str) -> std::result::Result<Vec<u8>, DbusError> {
    let bad = || {
        DbusError::Invalid(format!(
            "linux.resources.cpu.{what} {list:?} is not a list like 0-3,5"
        ))
    };
    let mut bits: Vec<u8> = Vec::new();
    for r in list.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        let (a, b) = r.split_once('-').unwrap_or((r, r));
        let (a, b): (usize, usize) = (
            a.trim().parse().map_err(|_| bad())?,
            b.trim().parse().map_err(|_| bad())?,
        );
        // 64k CPUs is past any kernel's NR_CPUS.
        if a > b || b >= 65_536 {
            return Err(bad());
        }
        for i in a..=b {
            if bits.len() <= i / 8 {
                bits.resize(i / 8 + 1, 0);
            }
            bits[i / 8] |= 1 << (i % 8);
        }
    }
    if bits.is_empty() {
        return Err(bad());
    }
    Ok(bits)
}

fn bytes(v: Vec<u8>) -> Value {
    Value::Array("y".into(), v.into_iter().map(Value::Byte).collect())
}

/// A byte count or `-1` (unlimited) as systemd's `uint64`, where infinity is `u64::MAX`.
fn limit(v: i64) -> Value {
    Value::U64(if v < 0 { u64::MAX } else { v as u64 })
}

/// The unit properties of `res`, the devices apart, converted as runc converts them for
/// cgroup v2; a property systemd is too old for is left to the files. `current` is the
/// scope's `cpu.max` (for an update that gives only the quota or the period).
fn resource_props(
    bus: &mut Bus,
    res: &LinuxResources,
    current: &str,
) -> std::result::Result<Vec<Value>, DbusError> {
    let mut props = Vec::new();
    if let Some(m) = res.memory() {
        if let Some(l) = m.limit().filter(|l| *l != 0) {
            props.push(prop("MemoryMax", limit(l)));
        }
        if let Some(r) = m.reservation().filter(|r| *r != 0) {
            props.push(prop("MemoryLow", limit(r)));
        }
        if let Ok(Some(s)) = v2::swap_max(m.swap(), m.limit()) {
            props.push(prop("MemorySwapMax", limit(s)));
        }
    }
    if let Some(c) = res.cpu() {
        let idle = c.idle() == Some(1) && bus.version() >= 252;
        if idle {
            // systemd sets cpu.idle to 1 for a CPUWeight of 0.
            props.push(prop("CPUWeight", Value::U64(0)));
        }
        if let Some(s) = c.shares().filter(|s| *s != 0) {
            if idle {
                log::warn!(
                    "systemd: cpu.idle and cpu.shares cannot both be properties: CPUWeight is 0 (idle)"
                );
            } else {
                props.push(prop("CPUWeight", Value::U64(v2::cpu_weight(s))));
            }
        }
        if let Some((per_sec, period, _)) = cpu_quota(c.quota(), c.period(), current) {
            if c.period().is_some() && bus.version() >= 242 {
                props.push(prop("CPUQuotaPeriodUSec", Value::U64(period)));
            }
            props.push(prop("CPUQuotaPerSecUSec", Value::U64(per_sec)));
        }
        for (list, name, what) in [
            (c.cpus(), "AllowedCPUs", "cpus"),
            (c.mems(), "AllowedMemoryNodes", "mems"),
        ] {
            if let Some(l) = list.as_deref().filter(|l| !l.trim().is_empty())
                && bus.version() >= 244
            {
                props.push(prop(name, bytes(cpuset_bits(l, what)?)));
            }
        }
    }
    if let Some(p) = res.pids() {
        // As the files have it: 0 or less is no limit.
        let max = if p.limit() > 0 { p.limit() } else { -1 };
        props.push(prop("TasksMax", limit(max)));
    }
    if let Some(w) = res
        .block_io()
        .as_ref()
        .and_then(|b| b.weight())
        .filter(|w| *w != 0)
    {
        props.push(prop("IOWeight", Value::U64(v2::io_weight(w))));
    }
    if let Some(u) = res.unified() {
        props.extend(unified_props(bus, u)?);
    }
    Ok(props)
}

/// The `unified` keys systemd has properties for, as runc converts them (all of `unified` is
/// written to the files as well).
fn unified_props(
    bus: &mut Bus,
    u: &std::collections::HashMap<String, String>,
) -> std::result::Result<Vec<Value>, DbusError> {
    let bad = |k: &str, v: &str| {
        DbusError::Invalid(format!(
            "linux.resources.unified {k:?}: {v:?} is not a valid value"
        ))
    };
    let num = |k: &str, v: &str| -> std::result::Result<u64, DbusError> {
        if v == "max" {
            Ok(u64::MAX)
        } else {
            v.parse().map_err(|_| bad(k, v))
        }
    };
    let idle = u.get("cpu.idle").is_some_and(|v| v.trim() == "1") && bus.version() >= 252;
    let mut props = Vec::new();
    let mut keys: Vec<&String> = u.keys().collect();
    keys.sort();
    for k in keys {
        let v = u[k].trim();
        match k.as_str() {
            "cpu.idle" if idle => props.push(prop("CPUWeight", Value::U64(0))),
            "cpu.weight" if !idle => props.push(prop("CPUWeight", Value::U64(num(k, v)?))),
            "cpu.max" => {
                let mut f = v.split_whitespace();
                let q = match f.next() {
                    Some("max") => None,
                    Some(q) => Some(q.parse::<i64>().map_err(|_| bad(k, v))?),
                    None => return Err(bad(k, v)),
                };
                let p = f
                    .next()
                    .map(|p| p.parse::<u64>().map_err(|_| bad(k, v)))
                    .transpose()?;
                let (per_sec, period, _) =
                    cpu_quota(Some(q.unwrap_or(-1)), p, "").expect("a quota is given");
                if bus.version() >= 242 {
                    props.push(prop("CPUQuotaPeriodUSec", Value::U64(period)));
                }
                props.push(prop("CPUQuotaPerSecUSec", Value::U64(per_sec)));
            }
            "cpuset.cpus" | "cpuset.mems" if bus.version() >= 244 => {
                let name = if k == "cpuset.cpus" {
                    "AllowedCPUs"
                } else {
                    "AllowedMemoryNodes"
                };
                props.push(prop(name, bytes(cpuset_bits(v, k)?)));
            }
            "memory.high" | "memory.low" | "memory.min" | "memory.max" | "memory.swap.max" => {
                let name = match k.as_str() {
                    "memory.high" => "MemoryHigh",
                    "memory.low" => "MemoryLow",
                    "memory.min" => "MemoryMin",
                    "memory.max" => "MemoryMax",
                    _ => "MemorySwapMax",
                };
                props.push(prop(name, Value::U64(num(k, v)?)));
            }
            // systemd takes no TasksMax of 0.
            "pids.max" => props.push(prop("TasksMax", Value::U64(num(k, v)?.max(1)))),
            _ => {}
        }
    }
    Ok(props)
}

/// `DevicePolicy`/`DeviceAllow` for the rules (the last matching rule wins). systemd keeps only
/// an allow-list, so the rules after the last one that covers every device are folded into
/// one; where a rule cannot be said exactly (a deny inside a wildcard allow, a `*:N` rule),
/// systemd's list is left wider than the rules, never narrower: the BPF program we attach
/// next to systemd's enforces the rules exactly, and a device must pass both. Rules that start
/// from "allow everything" and then deny cannot be an allow-list at all: systemd is then not
/// given any (runc gives it a deny-all, which also denies what the rules allow).
fn device_props(rules: &[Rule], version: u32) -> Vec<Value> {
    let start = rules.iter().rposition(Rule::is_wildcard);
    let allow_all = start.is_none_or(|i| rules[i].allow);
    let live = &rules[start.map_or(0, |i| i + 1)..];
    let clear = prop("DeviceAllow", Value::Array("(ss)".into(), vec![]));
    if allow_all {
        if live.iter().all(|r| r.allow) {
            return vec![clear, prop("DevicePolicy", Value::Str("auto".into()))];
        }
        log::warn!(
            "systemd: device rules that deny within \"allow all\" have no DeviceAllow form: \
             they are enforced by the BPF program alone"
        );
        return Vec::new();
    }
    // (type, major, minor, access), in the order first allowed.
    let mut list: Vec<(char, Option<i64>, Option<i64>, String)> = Vec::new();
    for r in live {
        let kinds: &[char] = if r.kind == 'a' {
            &['c', 'b']
        } else {
            &[r.kind]
        };
        for &k in kinds {
            if r.allow {
                match list
                    .iter_mut()
                    .find(|e| (e.0, e.1, e.2) == (k, r.major, r.minor))
                {
                    Some(e) => {
                        for c in r.access.chars() {
                            if !e.3.contains(c) {
                                e.3.push(c);
                            }
                        }
                    }
                    None => list.push((k, r.major, r.minor, r.access.clone())),
                }
            } else {
                // A deny takes access away from the entries it covers whole.
                for e in list.iter_mut().filter(|e| {
                    e.0 == k
                        && (r.major.is_none() || (e.1.is_some() && r.major == e.1))
                        && (r.minor.is_none() || (e.2.is_some() && r.minor == e.2))
                }) {
                    e.3.retain(|c| !r.access.contains(c));
                }
                list.retain(|e| !e.3.is_empty());
            }
        }
    }
    let entries = list
        .into_iter()
        .map(|(k, major, minor, access)| {
            let (dir, group) = if k == 'b' {
                ("block", "block-")
            } else {
                ("char", "char-")
            };
            let path = match (major, minor) {
                (Some(ma), Some(mi)) => format!("/dev/{dir}/{ma}:{mi}"),
                // `char-MAJOR` from systemd 240; before, a wider glob.
                (Some(ma), None) if version >= 240 => format!("{group}{ma}"),
                _ => format!("{group}*"),
            };
            Value::Struct(vec![Value::Str(path), Value::Str(access)])
        })
        .collect();
    vec![
        clear,
        prop("DevicePolicy", Value::Str("strict".into())),
        prop("DeviceAllow", Value::Array("(ss)".into(), entries)),
    ]
}

// ---- the connection to systemd ----------------------------------------------------------------

/// The connection, made once per process and kept, as runc keeps its own.
static BUS: Mutex<Option<Bus>> = Mutex::new(None);

struct Bus {
    conn: Connection,
    /// Straight to systemd (its private socket), not through the bus: no match rules, and
    /// systemd sends its signals unasked.
    direct: bool,
    subscribed: bool,
    version: Option<u32>,
}

/// Run `f` on the connection, making it first if needed. A connection that failed is dropped,
/// so that the next call makes a new one.
fn with_bus<T>(
    f: impl FnOnce(&mut Bus) -> std::result::Result<T, DbusError>,
) -> std::result::Result<T, DbusError> {
    let mut guard = BUS.lock().unwrap_or_else(|p| p.into_inner());
    if guard.is_none() {
        *guard = Some(Bus::connect()?);
    }
    let r = f(guard.as_mut().expect("just made"));
    if matches!(r, Err(DbusError::Io(_) | DbusError::Protocol(_))) {
        *guard = None;
    }
    r
}

impl Bus {
    /// The system bus (`DBUS_SYSTEM_BUS_ADDRESS`, else its standard socket), as go-systemd
    /// connects for runc; where there is none and we are root, systemd's private socket.
    fn connect() -> std::result::Result<Bus, DbusError> {
        let bus_path = std::env::var("DBUS_SYSTEM_BUS_ADDRESS")
            .ok()
            .and_then(|a| {
                a.split(';').find_map(|a| {
                    a.strip_prefix("unix:path=")
                        .map(|p| p.split(',').next().unwrap_or(p).to_string())
                })
            })
            .unwrap_or_else(|| "/run/dbus/system_bus_socket".into());
        match Connection::open(Path::new(&bus_path), true) {
            Ok(conn) => Ok(Bus {
                conn,
                direct: false,
                subscribed: false,
                version: None,
            }),
            Err(e) if nix::unistd::geteuid().is_root() => {
                let private = Path::new("/run/systemd/private");
                log::debug!("system bus {bus_path}: {e}; trying {}", private.display());
                Connection::open(private, false)
                    .map(|conn| Bus {
                        conn,
                        direct: true,
                        subscribed: true,
                        version: None,
                    })
                    .map_err(|e2| {
                        DbusError::Protocol(format!(
                            "neither the system bus ({bus_path}: {e}) nor systemd ({}: {e2}) answers",
                            private.display()
                        ))
                    })
            }
            Err(e) => Err(e),
        }
    }

    fn call(&mut self, member: &str, args: &[Value]) -> std::result::Result<Vec<Value>, DbusError> {
        let dest = (!self.direct).then_some(SYSTEMD);
        self.conn.call(dest, MANAGER_PATH, MANAGER, member, args)
    }

    /// systemd's version (252 of "252.36-1~deb12u1"), asked once; 0 if it cannot be read, so
    /// that no property newer than the oldest systemd is used.
    fn version(&mut self) -> u32 {
        if let Some(v) = self.version {
            return v;
        }
        let dest = (!self.direct).then_some(SYSTEMD);
        let v = self
            .conn
            .call(
                dest,
                MANAGER_PATH,
                "org.freedesktop.DBus.Properties",
                "Get",
                &[Value::Str(MANAGER.into()), Value::Str("Version".into())],
            )
            .ok()
            .and_then(|b| match b.into_iter().next() {
                Some(Value::Variant(v)) => v.as_str().map(version_number),
                _ => None,
            })
            .unwrap_or(0);
        self.version = Some(v);
        v
    }

    /// Have systemd send us `JobRemoved`: through the bus, a match rule and `Subscribe`.
    fn subscribe(&mut self) -> std::result::Result<(), DbusError> {
        if self.subscribed {
            return Ok(());
        }
        self.conn.call(
            Some("org.freedesktop.DBus"),
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "AddMatch",
            &[Value::Str(format!(
                "type='signal',sender='{SYSTEMD}',path='{MANAGER_PATH}',interface='{MANAGER}',member='JobRemoved'"
            ))],
        )?;
        self.call("Subscribe", &[])?;
        self.subscribed = true;
        Ok(())
    }

    /// Wait for the job's `JobRemoved` and return its result (`done`, `failed`, ...).
    fn wait_job(&mut self, job: &str) -> std::result::Result<String, DbusError> {
        let deadline = Instant::now() + JOB_TIMEOUT;
        loop {
            let m = self.conn.next_signal(deadline)?;
            if !m.is_signal(MANAGER, "JobRemoved") {
                continue;
            }
            // JobRemoved(u id, o job, s unit, s result)
            if m.body.get(1).and_then(Value::as_str) == Some(job) {
                let result = m.body.get(3).and_then(Value::as_str).unwrap_or_default();
                return Ok(result.to_string());
            }
        }
    }

    /// `StartTransientUnit` and the wait for its job. A unit of that name that exists already
    /// may be a failed one left over: reset it and try once more, as runc does.
    fn start_unit(&mut self, name: &str, props: Vec<Value>) -> std::result::Result<(), DbusError> {
        self.subscribe()?;
        let args = [
            Value::Str(name.into()),
            Value::Str("replace".into()),
            Value::Array("(sv)".into(), props),
            Value::Array("(sa(sv))".into(), vec![]),
        ];
        let job = match self.call("StartTransientUnit", &args) {
            Err(e) if e.is("org.freedesktop.systemd1.UnitExists") => {
                let _ = self.call("ResetFailedUnit", &[Value::Str(name.into())]);
                self.call("StartTransientUnit", &args)?
            }
            r => r?,
        };
        let job = job
            .first()
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let result = self.wait_job(&job)?;
        if result != "done" {
            let _ = self.call("ResetFailedUnit", &[Value::Str(name.into())]);
            return Err(DbusError::Protocol(format!(
                "the start job ended {result:?}"
            )));
        }
        Ok(())
    }

    /// `StopUnit`, its job, and `ResetFailedUnit`. A unit that is already gone is fine: a
    /// scope ends by itself when its last process does.
    fn stop_unit(&mut self, name: &str) -> std::result::Result<(), DbusError> {
        self.subscribe()?;
        match self.call(
            "StopUnit",
            &[Value::Str(name.into()), Value::Str("replace".into())],
        ) {
            Ok(job) => {
                let job = job
                    .first()
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let result = self.wait_job(&job)?;
                if result != "done" {
                    log::warn!("systemd: stopping {name} ended {result:?}");
                }
            }
            Err(e) if e.is("org.freedesktop.systemd1.NoSuchUnit") => {}
            Err(e) => return Err(e),
        }
        match self.call("ResetFailedUnit", &[Value::Str(name.into())]) {
            Err(e) if !matches!(e, DbusError::Remote { .. }) => Err(e),
            // Not loaded or not failed: nothing to reset.
            _ => Ok(()),
        }
    }
}

/// The number a systemd version starts with: 252 of "252.36-1~deb12u1", 245 of "v245.4-1".
fn version_number(s: &str) -> u32 {
    let s = s.trim_start_matches(['"', 'v']);
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s[..end].parse().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_expand_as_systemd_nests_them() {
        assert_eq!(expand_slice("system.slice").unwrap(), "/system.slice");
        assert_eq!(
            expand_slice("kubepods-besteffort-pod123.slice").unwrap(),
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod123.slice"
        );
        assert_eq!(expand_slice("-.slice").unwrap(), "/");
        for bad in [
            "system",
            ".slice",
            "a--b.slice",
            "-a.slice",
            "a-.slice",
            "a/b.slice",
            "a b.slice",
        ] {
            assert!(expand_slice(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cgroups_path_in_systemd_form() {
        let u = parse_path(Some("system.slice:docker:abc"), "id").unwrap();
        assert_eq!(
            (u.slice.as_str(), u.name.as_str()),
            ("system.slice", "docker-abc.scope")
        );
        let u = parse_path(Some(":crio:x1"), "id").unwrap();
        assert_eq!(
            (u.slice.as_str(), u.name.as_str()),
            ("system.slice", "crio-x1.scope")
        );
        let u = parse_path(None, "web").unwrap();
        assert_eq!(u.name, "cofferdam-web.scope");
        assert_eq!(parse_path(Some(""), "web").unwrap(), u);
        for bad in [
            "/system.slice/x",
            "a:b",
            "a:b:c:d",
            "system.slice:p:",
            "nope:p:n",
            "system.slice:p:n.slice",
            "system.slice:p q:n",
            "system.slice:p:a/b",
        ] {
            let e = parse_path(Some(bad), "id").unwrap_err().to_string();
            assert!(e.contains("slice:prefix:name"), "{bad}: {e}");
        }
    }

    #[test]
    fn cpu_quota_rounds_as_runc() {
        // 50000/100000: half a CPU, 500 ms per second, exact.
        assert_eq!(
            cpu_quota(Some(50_000), Some(100_000), ""),
            Some((500_000, 100_000, None))
        );
        // 33333/100000 is 333.33 ms/s: up to 340 ms, so the files get 34000.
        assert_eq!(
            cpu_quota(Some(33_333), Some(100_000), ""),
            Some((340_000, 100_000, Some(34_000)))
        );
        assert_eq!(
            cpu_quota(Some(-1), None, ""),
            Some((u64::MAX, 100_000, None))
        );
        // Only the period: the current quota stays.
        assert_eq!(
            cpu_quota(None, Some(50_000), "20000 100000"),
            Some((400_000, 50_000, None))
        );
        assert_eq!(cpu_quota(None, None, "20000 100000"), None);
    }

    #[test]
    fn cpuset_lists_become_bit_masks() {
        assert_eq!(cpuset_bits("0", "cpus").unwrap(), [1]);
        assert_eq!(cpuset_bits("0-3,5", "cpus").unwrap(), [0b0010_1111]);
        assert_eq!(cpuset_bits("9", "cpus").unwrap(), [0, 2]);
        for bad in ["", "x", "3-1", "1-", "99999"] {
            assert!(cpuset_bits(bad, "cpus").is_err(), "{bad}");
        }
    }

    fn rule(allow: bool, kind: char, major: Option<i64>, minor: Option<i64>, access: &str) -> Rule {
        Rule {
            allow,
            kind,
            major,
            minor,
            access: access.into(),
        }
    }

    fn allow_list(props: &[Value]) -> Vec<(String, String)> {
        let Some(Value::Struct(p)) = props.last() else {
            return vec![];
        };
        let Value::Variant(v) = &p[1] else {
            unreachable!()
        };
        let Value::Array(_, items) = &**v else {
            unreachable!()
        };
        items
            .iter()
            .map(|i| match i {
                Value::Struct(f) => (
                    f[0].as_str().unwrap().to_string(),
                    f[1].as_str().unwrap().to_string(),
                ),
                _ => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn device_rules_become_an_allow_list() {
        let rules = vec![
            rule(false, 'a', None, None, "rwm"),
            rule(true, 'c', Some(10), Some(200), "rwm"),
            rule(true, 'c', None, None, "m"),
            rule(true, 'c', Some(136), None, "rwm"),
            rule(true, 'b', Some(8), Some(0), "rw"),
            rule(false, 'b', Some(8), Some(0), "w"),
            rule(false, 'c', Some(10), Some(200), "rwm"),
        ];
        let p = device_props(&rules, 252);
        assert_eq!(
            allow_list(&p),
            [
                ("char-*".into(), "m".into()),
                ("char-136".into(), "rwm".into()),
                ("/dev/block/8:0".into(), "r".into()),
            ]
        );
        // Before systemd 240 a major's group is not a glob it knows: wider, never narrower.
        assert_eq!(allow_list(&device_props(&rules, 239))[1].0, "char-*");
        // Allow everything: policy auto; deny within it: no properties at all.
        let all = [rule(true, 'a', None, None, "rwm")];
        assert_eq!(device_props(&all, 252).len(), 2);
        let deny_in_all = [
            rule(true, 'a', None, None, "rwm"),
            rule(false, 'c', Some(1), Some(3), "w"),
        ];
        assert!(device_props(&deny_in_all, 252).is_empty());
    }

    #[test]
    fn systemd_versions() {
        assert_eq!(version_number("252.36-1~deb12u1"), 252);
        assert_eq!(version_number("\"v245.4-1.fc32\""), 245);
        assert_eq!(version_number("garbage"), 0);
    }
}
