//! Cgroups: finding the host's layout (legacy v1, hybrid, or unified v2), placing the container
//! in its cgroup in every hierarchy, and removing exactly the directories we made.
//!
//! A host can mix versions: this project's CI host has v1 controllers under
//! `/sys/fs/cgroup/<ctrl>` *and* a cgroup2 mount at `/sys/fs/cgroup/unified` holding `hugetlb`.
//! We treat each mounted hierarchy on its own, so such hybrids work (crun refuses them).

use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use oci_spec::runtime::{LinuxRdma, LinuxResources};
use procfs::FromRead;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub use oom::OomNotifier;

mod dbus;
pub mod devices;
mod oom;
pub mod stats;
pub mod systemd;
mod unit_props;
mod unset;
mod v1;
pub mod v2;

pub use stats::Stats;
pub use unset::{sets_nothing, strip_unset};

/// One mounted cgroup hierarchy of the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Where it is mounted, e.g. `/sys/fs/cgroup/memory`.
    pub mount: PathBuf,
    /// The cgroup shown at the mount point (`/` unless the runtime itself sits in a cgroupns).
    pub root: String,
    /// v1: the controller list as in `/proc/self/cgroup` (`cpu,cpuacct`, `name=systemd`);
    /// v2: empty.
    pub controllers: String,
    pub v2: bool,
    /// The runtime's own cgroup in this hierarchy, from `/proc/self/cgroup`.
    pub own: String,
}

/// The host's cgroup hierarchies, v1 ones first and the cgroup2 one (if mounted) last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub hierarchies: Vec<Hierarchy>,
}

/// How the host arranges its cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only v1 hierarchies.
    Legacy,
    /// v1 controllers plus a cgroup2 mount.
    Hybrid,
    /// Only cgroup2.
    Unified,
}

const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

impl Layout {
    /// Read the layout of the calling process from `/proc/self/mountinfo` and `/proc/self/cgroup`.
    pub fn detect() -> Result<Layout> {
        let mountinfo = std::fs::read("/proc/self/mountinfo")
            .map_err(crate::error::io_err("read", "/proc/self/mountinfo"))?;
        let cgroup = std::fs::read("/proc/self/cgroup")
            .map_err(crate::error::io_err("read", "/proc/self/cgroup"))?;
        Layout::parse(&mountinfo, &cgroup)
    }

    /// Build the layout from the text of a mountinfo and a `/proc/PID/cgroup` file.
    pub fn parse(mountinfo: &[u8], proc_cgroup: &[u8]) -> Result<Layout> {
        let bad = |what: &str, e: procfs::ProcError| {
            Error::Unsupported(format!("cannot parse {what}: {e}"))
        };
        let mounts =
            procfs::process::MountInfos::from_read(mountinfo).map_err(|e| bad("mountinfo", e))?;
        let own = procfs::ProcessCGroups::from_read(proc_cgroup)
            .map_err(|e| bad("/proc/self/cgroup", e))?;
        let mut hierarchies: Vec<Hierarchy> = Vec::new();
        for m in mounts.0 {
            let (v2, controllers) = match m.fs_type.as_str() {
                "cgroup2" => (true, String::new()),
                "cgroup" => {
                    let mut names: Vec<&str> = m
                        .super_options
                        .iter()
                        .filter_map(|(k, v)| match (k.as_str(), v) {
                            ("name", Some(_)) => Some(k.as_str()),
                            (k, None) if V1_CONTROLLERS.contains(&k) => Some(k),
                            _ => None,
                        })
                        .collect();
                    names.sort();
                    let list: Vec<String> = names
                        .iter()
                        .map(|n| match (*n, m.super_options.get("name")) {
                            ("name", Some(Some(v))) => format!("name={v}"),
                            (n, _) => n.to_string(),
                        })
                        .collect();
                    (false, list.join(","))
                }
                _ => continue,
            };
            // The same hierarchy may be mounted twice; the first mount serves.
            if hierarchies
                .iter()
                .any(|h| h.v2 == v2 && h.controllers == controllers)
            {
                continue;
            }
            let own_path = own
                .0
                .iter()
                .find(|c| {
                    if v2 {
                        c.hierarchy == 0
                    } else {
                        let mut cs: Vec<&str> = c.controllers.iter().map(String::as_str).collect();
                        cs.sort();
                        cs.join(",") == controllers
                    }
                })
                .map(|c| c.pathname.clone());
            let Some(own_path) = own_path else { continue };
            hierarchies.push(Hierarchy {
                mount: m.mount_point,
                root: m.root,
                controllers,
                v2,
                own: own_path,
            });
        }
        hierarchies.sort_by_key(|h| h.v2);
        if hierarchies.is_empty() {
            return Err(Error::Unsupported("no cgroup hierarchy is mounted".into()));
        }
        Ok(Layout { hierarchies })
    }

    pub fn kind(&self) -> Kind {
        let v1 = self.hierarchies.iter().any(|h| !h.v2);
        let v2 = self.hierarchies.iter().any(|h| h.v2);
        match (v1, v2) {
            (true, true) => Kind::Hybrid,
            (true, false) => Kind::Legacy,
            _ => Kind::Unified,
        }
    }

    /// The host directory of cgroup `path` in hierarchy `h`. A relative path is relative to the
    /// runtime's own cgroup there, as with runc.
    fn dir_of(h: &Hierarchy, path: &Path) -> Result<PathBuf> {
        let full = if path.is_absolute() {
            path.to_path_buf()
        } else {
            Path::new(&h.own).join(path)
        };
        let mut rel = PathBuf::new();
        for c in full.components() {
            match c {
                Component::RootDir | Component::CurDir => {}
                Component::Normal(n) => rel.push(n),
                _ => {
                    return Err(Error::InvalidConfig(format!(
                        "cgroupsPath {} must not contain '..'",
                        path.display()
                    )));
                }
            }
        }
        // Inside a cgroup namespace the mount shows `root` at its top.
        let root = Path::new(&h.root)
            .strip_prefix("/")
            .unwrap_or(Path::new(""));
        let rel = rel.strip_prefix(root).unwrap_or(&rel).to_path_buf();
        Ok(h.mount.join(rel))
    }
}

/// The parent of the default cgroups, `/cofferdam/<id>`, used when a config has no
/// `cgroupsPath`. It belongs to the runtime: the delete of the last container under it
/// removes it, whichever container made it.
pub const DEFAULT_PARENT: &str = "/cofferdam";

/// One directory of the container's cgroup, in one hierarchy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CgroupDir {
    pub path: PathBuf,
    /// The topmost directory `create` made for it (the leaf or an ancestor); `delete` removes
    /// from the leaf up to here. None when the directory already existed.
    pub created_from: Option<PathBuf>,
    pub v2: bool,
    /// Name of the hierarchy's mount point (`memory`, `unified`), used inside the container.
    pub mount_name: String,
    /// v1 controller list (the `-o` data of a cgroup mount).
    pub controllers: String,
}

/// The container's cgroup across all hierarchies. Serialized into the state file so that
/// `delete` removes exactly what `create` made.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Cgroup {
    pub dirs: Vec<CgroupDir>,
    /// With the systemd driver: the scope unit that owns the cgroup. systemd makes and
    /// removes its directory (see `systemd.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd: Option<systemd::Unit>,
}

impl Cgroup {
    /// Work out the container's directory in every hierarchy and the first of its ancestors
    /// that is missing (what [`Cgroup::make`] will create and `delete` will remove), without
    /// touching anything. `create` records this plan in the state before making the
    /// directories, so that a create killed half-way can still be cleaned up.
    pub fn plan(layout: &Layout, path: &Path) -> Result<Cgroup> {
        let mut cg = Cgroup::default();
        for h in &layout.hierarchies {
            let dir = Layout::dir_of(h, path)?;
            let rel = dir.strip_prefix(&h.mount).unwrap_or(&dir);
            let mut cur = h.mount.clone();
            let mut created_from = None;
            for c in rel.components() {
                cur.push(c);
                if !cur.exists() {
                    created_from = Some(cur.clone());
                    break;
                }
            }
            cg.dirs.push(CgroupDir {
                path: dir,
                created_from,
                v2: h.v2,
                mount_name: h
                    .mount
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                controllers: h.controllers.clone(),
            });
        }
        Ok(cg)
    }

    /// The plan for `/cofferdam/<id>`: `delete` also removes `/cofferdam` when it is left
    /// empty, since that parent belongs to the runtime.
    pub fn plan_default(layout: &Layout, id: &str) -> Result<Cgroup> {
        let mut cg = Cgroup::plan(layout, &Path::new(DEFAULT_PARENT).join(id))?;
        for d in &mut cg.dirs {
            if d.created_from.is_some() {
                d.created_from = d.path.parent().map(Path::to_path_buf);
            }
        }
        Ok(cg)
    }

    /// Make the planned directories of the cgroup2 hierarchy (`v2`) or of the v1 ones:
    /// `create` makes the first before the fork (the init is cloned into it) and the others
    /// while the init sets up. On failure, every planned directory is removed.
    pub fn make(&self, v2: bool) -> Result<()> {
        for d in self.dirs.iter().filter(|d| d.v2 == v2) {
            let Some(top) = &d.created_from else { continue };
            let cpuset = d.controllers.split(',').any(|c| c == "cpuset");
            let made = mkdir_chain(top, &d.path, cpuset).and_then(|()| {
                if d.v2 {
                    enable_controllers(top, &d.path)
                } else {
                    Ok(())
                }
            });
            if let Err(e) = made {
                let _ = self.remove();
                return Err(e);
            }
        }
        Ok(())
    }

    /// The directory that serves controller `ctrl` (named as on v1): the v1 hierarchy that
    /// has it, else the cgroup2 directory when the controller is enabled there. On a hybrid
    /// host this is how `hugetlb` is found on the cgroup2 mount while `memory` stays on v1.
    fn home(&self, ctrl: &str) -> Option<&CgroupDir> {
        if let Some(d) = self
            .dirs
            .iter()
            .find(|d| !d.v2 && d.controllers.split(',').any(|c| c == ctrl))
        {
            return Some(d);
        }
        let v2_name = if ctrl == "blkio" { "io" } else { ctrl };
        self.dirs.iter().find(|d| {
            d.v2 && read_file(&d.path, "cgroup.controllers")
                .is_ok_and(|s| s.split_whitespace().any(|c| c == v2_name))
        })
    }

    /// The cgroup2 directory of the plan, if any.
    pub fn v2_dir(&self) -> Option<&CgroupDir> {
        self.dirs.iter().find(|d| d.v2)
    }

    /// Like [`Cgroup::home`], but a missing controller is an error naming what needed it.
    fn need(&self, ctrl: &str, what: &str) -> Result<&CgroupDir> {
        self.home(ctrl).ok_or_else(|| {
            // On cgroup2, the first ancestor we did not make decides what reaches us.
            let hint = match self.v2_dir() {
                Some(d) => {
                    let top = d.created_from.as_deref().unwrap_or(&d.path);
                    format!(
                        "; on cgroup v2 it must be enabled in {}",
                        top.parent()
                            .unwrap_or(top)
                            .join("cgroup.subtree_control")
                            .display()
                    )
                }
                None => String::new(),
            };
            Error::Unsupported(format!(
                "linux.resources.{what} needs the {ctrl} cgroup controller, which this host does not provide{hint}"
            ))
        })
    }

    /// Apply resource limits: `Phase::Limits` while the init sets up (it is already in the
    /// cgroup), `Phase::Devices` once it has made its /dev (its mknods must not be refused),
    /// before the container's process runs. `update` uses `Phase::All`. Values that mean "not
    /// set" (Docker's zeros, see `unset.rs`) are not written.
    pub fn apply(&self, res: &LinuxResources, phase: Phase) -> Result<()> {
        // Under systemd, its properties first (the files alone would be reset by systemd),
        // then the same files as with cgroupfs.
        let adjusted;
        let res = match (&self.systemd, self.v2_dir()) {
            (Some(unit), Some(d)) => {
                adjusted = systemd::apply(unit, &d.path, res, phase)?;
                &adjusted
            }
            _ => res,
        };
        if phase != Phase::Devices {
            self.apply_limits(&strip_unset(res))?;
        }
        if phase != Phase::Limits
            && let Some(rules) = devices::rules(res.devices().as_ref())?
        {
            match self.home("devices") {
                Some(d) if !d.v2 => v1::devices(&d.path, &rules)?,
                // cgroup2 has no devices controller: a BPF program does its job.
                _ => match self.v2_dir() {
                    Some(d) => devices::apply_v2(&d.path, &rules)?,
                    None => {
                        self.need("devices", "devices")?;
                    }
                },
            }
        }
        Ok(())
    }

    /// `res` holds set values only ([`strip_unset`]).
    fn apply_limits(&self, res: &LinuxResources) -> Result<()> {
        if let Some(m) = res.memory() {
            let d = self.need("memory", "memory")?;
            if d.v2 {
                v2::memory(&d.path, m)?
            } else {
                v1::memory(&d.path, m)?
            }
        }
        if let Some(c) = res.cpu() {
            let cpu = c.shares().is_some()
                || c.quota().is_some()
                || c.period().is_some()
                || c.burst().is_some()
                || c.idle().is_some()
                || c.realtime_period().is_some()
                || c.realtime_runtime().is_some();
            if cpu {
                let d = self.need("cpu", "cpu")?;
                if d.v2 {
                    v2::cpu(&d.path, c)?
                } else {
                    v1::cpu(&d.path, c)?
                }
            }
            if c.cpus().is_some() || c.mems().is_some() {
                let d = self.need("cpuset", "cpu.cpus/mems")?;
                cpuset(&d.path, c)?;
            }
        }
        if let Some(p) = res.pids() {
            let d = self.need("pids", "pids")?;
            pids(&d.path, p.limit())?;
        }
        if let Some(b) = res.block_io() {
            let d = self.need("blkio", "blockIO")?;
            if d.v2 {
                v2::io(&d.path, b)?
            } else {
                v1::blkio(&d.path, b)?
            }
        }
        if let Some(h) = res.hugepage_limits().as_ref().filter(|h| !h.is_empty()) {
            for l in h {
                page_size(l.page_size())?;
            }
            let d = self.need("hugetlb", "hugepageLimits")?;
            if d.v2 {
                v2::hugetlb(&d.path, h)?
            } else {
                v1::hugetlb(&d.path, h)?
            }
        }
        if let Some(n) = res.network() {
            // v1 only: cgroup2 has neither controller (runc ignores them there too).
            if n.class_id().is_some() {
                match self.home("net_cls") {
                    Some(d) if !d.v2 => v1::net_cls(&d.path, n)?,
                    _ if self.v2_dir().is_some() => {
                        log::warn!("network.classID has no cgroup v2 equivalent: ignored")
                    }
                    _ => {
                        self.need("net_cls", "network.classID")?;
                    }
                }
            }
            if n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
                match self.home("net_prio") {
                    Some(d) if !d.v2 => v1::net_prio(&d.path, n)?,
                    _ if self.v2_dir().is_some() => {
                        log::warn!("network.priorities has no cgroup v2 equivalent: ignored")
                    }
                    _ => {
                        self.need("net_prio", "network.priorities")?;
                    }
                }
            }
        }
        if let Some(r) = res.rdma().as_ref().filter(|r| !r.is_empty()) {
            let d = self.need("rdma", "rdma")?;
            rdma(&d.path, r)?;
        }
        if let Some(u) = res.unified().as_ref().filter(|u| !u.is_empty()) {
            let Some(d) = self.v2_dir() else {
                return Err(Error::Unsupported(
                    "linux.resources.unified needs cgroup v2, which this host does not mount"
                        .into(),
                ));
            };
            v2::unified(&d.path, u)?;
        }
        Ok(())
    }

    /// The directory whose freezer pauses the container: the v1 freezer where there is one,
    /// else cgroup2's `cgroup.freeze` (a core feature, not a controller).
    fn freezer(&self) -> Option<&CgroupDir> {
        self.dirs
            .iter()
            .find(|d| !d.v2 && d.controllers.split(',').any(|c| c == "freezer"))
            .or_else(|| self.v2_dir())
    }

    /// Freeze (pause) or thaw (resume) every process of the container, and wait until the
    /// kernel has done it.
    pub fn freeze(&self, frozen: bool) -> Result<()> {
        match self.freezer() {
            Some(d) if d.v2 => v2::freeze(&d.path, frozen),
            Some(d) => v1::freeze(&d.path, frozen),
            None => Err(Error::Unsupported(
                "pause needs the freezer: no v1 freezer hierarchy and no cgroup2 is mounted".into(),
            )),
        }
    }

    /// Whether the container is paused (a freeze was asked for; a cgroup still freezing
    /// counts, since its processes are being stopped).
    pub fn frozen(&self) -> bool {
        match self.freezer() {
            Some(d) if d.v2 => v2::freeze_requested(&d.path),
            Some(d) => v1::frozen(&d.path),
            None => false,
        }
    }

    /// What the container's cgroup measures, in runc's `events --stats` shape.
    pub fn stats(&self) -> Stats {
        let mut st = Stats::default();
        for ctrl in [
            "cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "hugetlb",
        ] {
            match self.home(ctrl) {
                Some(d) if d.v2 => v2::stats(&d.path, ctrl, &mut st),
                Some(d) => v1::stats(&d.path, ctrl, &mut st),
                // cpu.stat is always there on cgroup2, with or without the cpu controller.
                None if ctrl == "cpu" && self.home("cpuacct").is_none() => {
                    if let Some(d) = self.v2_dir() {
                        v2::stats(&d.path, ctrl, &mut st)
                    }
                }
                None => {}
            }
        }
        st
    }

    /// How many processes of the container the OOM killer has killed so far.
    pub fn oom_kills(&self) -> u64 {
        match self.home("memory") {
            Some(d) if d.v2 => v2::oom_kills(&d.path),
            Some(d) => v1::oom_kills(&d.path),
            None => 0,
        }
    }

    /// An fd that becomes readable when the OOM killer may have struck (see [`OomNotifier`]);
    /// None without a memory controller.
    pub fn oom_notifier(&self) -> Result<Option<OomNotifier>> {
        self.home("memory").map(OomNotifier::new).transpose()
    }

    /// SIGKILL every process in the cgroup in one step where the kernel can (`cgroup.kill`,
    /// Linux 5.14+, v2): no process can fork away from it. Returns false when it could not.
    pub fn kill_all(&self) -> bool {
        self.v2_dir()
            .is_some_and(|d| write_file(&d.path, "cgroup.kill", "1").is_ok())
    }

    /// Every pid in the cgroup and the cgroups below it (which the container may make).
    pub fn all_procs(&self) -> Result<Vec<i32>> {
        let Some(d) = self.dirs.first() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut stack = vec![d.path.clone()];
        while let Some(dir) = stack.pop() {
            out.extend(read_procs(&dir)?);
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Move a process into the cgroup in every hierarchy.
    pub fn add(&self, pid: i32) -> Result<()> {
        self.add_where(pid, |_| true)
    }

    /// Move a process into the cgroup2 directory only: its v1 directories it joins itself
    /// ([`Cgroup::join_v1_self`]). This is the init's placement: with the systemd driver,
    /// systemd has put it there already ([`Cgroup::start_unit`]).
    pub fn add_v2(&self, pid: i32) -> Result<()> {
        if self.systemd.is_some() {
            return Ok(());
        }
        self.add_where(pid, |d| d.v2)
    }

    fn add_where(&self, pid: i32, pick: impl Fn(&CgroupDir) -> bool) -> Result<()> {
        let pid = pid.to_string();
        for d in self.dirs.iter().filter(|d| pick(d)) {
            let procs = d.path.join("cgroup.procs");
            std::fs::write(&procs, &pid).map_err(|source| Error::Cgroup {
                op: "add process",
                path: procs,
                source,
            })?;
        }
        Ok(())
    }

    /// Move the calling process, which must be single-threaded, into every v1 directory by
    /// writing "0" (its own thread) to each `tasks` file. Why not `cgroup.procs` from the
    /// parent: a migration of another task, or of a whole thread group, takes the kernel's
    /// global threadgroup lock for writing, and the first such write after a quiet moment
    /// waits for an RCU grace period (2-15 ms on this host, most of a `create`). A thread that
    /// moves itself is exempt (kernel/cgroup/cgroup.c, `cgroup_procs_write_start`): it can
    /// neither exit nor exec meanwhile. For a single-threaded process, its thread is all of it.
    /// Runs in the forked init: on failure, the path and the errno.
    pub fn join_v1_self(&self) -> std::result::Result<(), (PathBuf, Errno)> {
        for d in self.dirs.iter().filter(|d| !d.v2) {
            let tasks = d.path.join("tasks");
            std::fs::write(&tasks, "0").map_err(|e| {
                let errno = crate::namespaces::errno_of(&e);
                (tasks, errno)
            })?;
        }
        Ok(())
    }

    /// The container's cgroup with some directories moved to existing sub-cgroups (`exec
    /// --cgroup`): `path` for every hierarchy, or `controller:path` for the hierarchy of that
    /// controller (on cgroup2, any controller names the one directory).
    pub fn sub(&self, specs: &[String]) -> Result<Cgroup> {
        let mut out = self.clone();
        for spec in specs {
            let (ctrl, rel) = match spec.split_once(':') {
                Some((c, r)) => (Some(c), r),
                None => (None, spec.as_str()),
            };
            let rel = Path::new(rel.trim_start_matches('/'));
            if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
                return Err(Error::InvalidConfig(format!(
                    "--cgroup {spec}: the sub-cgroup must be a relative path without '..'"
                )));
            }
            let mut matched = false;
            for d in &mut out.dirs {
                let hit = match ctrl {
                    None => true,
                    Some(c) => d.v2 || d.controllers.split(',').any(|x| x == c),
                };
                if hit {
                    let p = d.path.join(rel);
                    if !p.is_dir() {
                        return Err(Error::InvalidConfig(format!(
                            "--cgroup {spec}: {} does not exist",
                            p.display()
                        )));
                    }
                    d.path = p;
                    matched = true;
                }
            }
            if !matched {
                return Err(Error::InvalidConfig(format!(
                    "--cgroup {spec}: no such controller in the container's cgroup"
                )));
            }
        }
        Ok(out)
    }

    /// Remove what `create` made, leaf first. A leaf still busy after a bounded wait is an
    /// error; a shared parent that is still in use by another container is left alone.
    pub fn remove(&self) -> Result<()> {
        if let Some(unit) = &self.systemd {
            return systemd::remove(unit, &self.dirs);
        }
        let mut first_err = None;
        for d in &self.dirs {
            let Some(top) = &d.created_from else { continue };
            if let Err(e) = rmdir_retry(&d.path) {
                first_err.get_or_insert(e);
                continue;
            }
            // Parents another container still uses are busy: they stay, and that is fine.
            if let Some(parent) = d.path.parent() {
                let _ = remove_up(parent, top);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// Which part of the resources [`Cgroup::apply`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Limits,
    Devices,
    All,
}

fn read_procs(dir: &Path) -> Result<Vec<i32>> {
    let procs = dir.join("cgroup.procs");
    match std::fs::read_to_string(&procs) {
        Ok(s) => Ok(s.lines().filter_map(|l| l.trim().parse().ok()).collect()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(Error::Cgroup {
            op: "read",
            path: procs,
            source,
        }),
    }
}

pub(crate) fn write_file(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    // Opened without O_CREAT: a knob this kernel does not have is then ENOENT ("No such file"),
    // where a create in cgroupfs would be refused with a misleading EACCES.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, value.as_bytes()))
        .map_err(|source| Error::CgroupWrite {
            path,
            value: value.to_string(),
            source,
        })
}

pub(crate) fn read_file(dir: &Path, file: &str) -> Result<String> {
    let path = dir.join(file);
    std::fs::read_to_string(&path).map_err(|source| Error::Cgroup {
        op: "read",
        path,
        source,
    })
}

/// Poll `done` for up to ~2 s (freezing waits for every task to stop); a timeout is an error
/// of `op` on `path`.
fn wait_for(op: &'static str, path: &Path, mut done: impl FnMut() -> Result<bool>) -> Result<()> {
    let mut delay = std::time::Duration::from_micros(100);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while !done()? {
        if std::time::Instant::now() > deadline {
            return Err(Error::Cgroup {
                op,
                path: path.to_path_buf(),
                source: std::io::Error::from_raw_os_error(libc::ETIMEDOUT),
            });
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(std::time::Duration::from_millis(20));
    }
    Ok(())
}

/// `pids.limit` as `pids.max` wants it (same file on v1 and v2): a positive limit as is, a
/// negative one is no limit (runc; 0, not set, never comes here).
fn pids(dir: &Path, limit: i64) -> Result<()> {
    let v = if limit > 0 {
        limit.to_string()
    } else {
        "max".into()
    };
    write_file(dir, "pids.max", &v)
}

/// `cpu.cpus` and `cpu.mems`: the same files on v1 and v2.
fn cpuset(dir: &Path, c: &oci_spec::runtime::LinuxCpu) -> Result<()> {
    if let Some(cpus) = c.cpus() {
        write_file(dir, "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = c.mems() {
        write_file(dir, "cpuset.mems", mems)?;
    }
    Ok(())
}

/// `rdma`: one `rdma.max` line per device, the same on v1 and v2.
fn rdma(dir: &Path, r: &std::collections::HashMap<String, LinuxRdma>) -> Result<()> {
    for (dev, l) in r {
        write_file(dir, "rdma.max", &rdma_line(dev, l))?;
    }
    Ok(())
}

/// A huge page size as the kernel names it in cgroup files (`2MB`, `1GB`, `64KB`).
fn page_size(s: &str) -> Result<&str> {
    let ok = s
        .strip_suffix("KB")
        .or_else(|| s.strip_suffix("MB"))
        .or_else(|| s.strip_suffix("GB"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(s)
    } else {
        Err(Error::InvalidConfig(format!(
            "linux.resources.hugepageLimits pageSize {s:?} is not like 2MB or 1GB"
        )))
    }
}

fn rdma_line(dev: &str, l: &LinuxRdma) -> String {
    let mut line = dev.to_string();
    if let Some(h) = l.hca_handles() {
        line += &format!(" hca_handle={h}");
    }
    if let Some(o) = l.hca_objects() {
        line += &format!(" hca_object={o}");
    }
    line
}

/// cgroup2 hands a controller to a child only when the parent lists it in
/// `cgroup.subtree_control`. Enable, in the directories we made above the leaf, every
/// controller they have, as runc does. Ancestors we did not make are not touched: what they
/// do not pass down is reported when a resource needs it.
fn enable_controllers(top: &Path, leaf: &Path) -> Result<()> {
    let mut dir = top.to_path_buf();
    let rel = leaf.strip_prefix(top).unwrap_or(Path::new(""));
    for c in rel.components() {
        let avail = read_file(&dir, "cgroup.controllers")?;
        let want: Vec<String> = avail.split_whitespace().map(|c| format!("+{c}")).collect();
        if !want.is_empty() {
            write_file(&dir, "cgroup.subtree_control", &want.join(" "))?;
        }
        dir.push(c);
    }
    Ok(())
}

/// Make `top` and every directory below it down to `leaf` (an existing one is fine).
fn mkdir_chain(top: &Path, leaf: &Path, cpuset: bool) -> Result<()> {
    let rel = leaf.strip_prefix(top).unwrap_or(Path::new(""));
    let mut cur = top.to_path_buf();
    let mut first = true;
    for c in std::iter::once(None).chain(rel.components().map(Some)) {
        if let Some(c) = c {
            cur.push(c);
        }
        match std::fs::create_dir(&cur) {
            Ok(()) => {
                if cpuset {
                    inherit_cpuset(&cur)?;
                }
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(source) => {
                if !first {
                    let _ = remove_up(cur.parent().unwrap_or(top), top);
                }
                return Err(Error::Cgroup {
                    op: "create",
                    path: cur,
                    source,
                });
            }
        }
        first = false;
    }
    Ok(())
}

/// rmdir `leaf` and its parents up to `top`, stopping at the first that cannot go.
fn remove_up(leaf: &Path, top: &Path) -> std::io::Result<()> {
    let mut p = Some(leaf);
    while let Some(dir) = p {
        if !dir.starts_with(top) {
            break;
        }
        match std::fs::remove_dir(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        p = dir.parent();
    }
    Ok(())
}

/// A new v1 cpuset cgroup starts with no cpus and no mems, and no task can join it until it
/// has some: copy the parent's.
fn inherit_cpuset(dir: &Path) -> Result<()> {
    let parent = dir.parent().unwrap_or(dir);
    for f in ["cpuset.cpus", "cpuset.mems"] {
        let mine = dir.join(f);
        let cur = std::fs::read_to_string(&mine).unwrap_or_default();
        if cur.trim().is_empty() {
            let from = parent.join(f);
            let val = std::fs::read_to_string(&from).map_err(|source| Error::Cgroup {
                op: "read",
                path: from,
                source,
            })?;
            std::fs::write(&mine, val.trim()).map_err(|source| Error::Cgroup {
                op: "write",
                path: mine,
                source,
            })?;
        }
    }
    Ok(())
}

/// rmdir a cgroup that may still hold exiting tasks for a moment; give up after ~2 s.
fn rmdir_retry(dir: &Path) -> Result<()> {
    let mut delay = std::time::Duration::from_millis(1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e)
                if e.raw_os_error() == Some(libc::EBUSY)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(delay);
                delay = (delay * 2).min(std::time::Duration::from_millis(100));
            }
            Err(source) => {
                return Err(Error::Cgroup {
                    op: "remove",
                    path: dir.to_path_buf(),
                    source,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests;
