//! Cgroups: finding the host's layout (legacy v1, hybrid, or unified v2), placing the container
//! in its cgroup in every hierarchy, and removing exactly the directories we made.
//!
//! A host can mix versions: this project's CI host has v1 controllers under
//! `/sys/fs/cgroup/<ctrl>` *and* a cgroup2 mount at `/sys/fs/cgroup/unified` holding `hugetlb`.
//! We treat each mounted hierarchy on its own, so such hybrids work (crun refuses them).

use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

use procfs::FromRead;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

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

    /// Make the planned directories. On failure, what was made is removed.
    pub fn make(&self) -> Result<()> {
        for d in &self.dirs {
            let Some(top) = &d.created_from else { continue };
            let cpuset = d.controllers.split(',').any(|c| c == "cpuset");
            if let Err(e) = mkdir_chain(top, &d.path, cpuset) {
                let _ = self.remove();
                return Err(e);
            }
        }
        Ok(())
    }

    /// Move a process into the cgroup in every hierarchy.
    pub fn add(&self, pid: i32) -> Result<()> {
        let pid = pid.to_string();
        for d in &self.dirs {
            let procs = d.path.join("cgroup.procs");
            std::fs::write(&procs, &pid).map_err(|source| Error::Cgroup {
                op: "add process",
                path: procs,
                source,
            })?;
        }
        Ok(())
    }

    /// The pids in the cgroup (read from its first hierarchy).
    pub fn procs(&self) -> Result<Vec<i32>> {
        let Some(d) = self.dirs.first() else {
            return Ok(Vec::new());
        };
        let procs = d.path.join("cgroup.procs");
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

    /// Remove what `create` made, leaf first. A leaf still busy after a bounded wait is an
    /// error; a shared parent that is still in use by another container is left alone.
    pub fn remove(&self) -> Result<()> {
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
