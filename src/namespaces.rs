//! `linux.namespaces`: which namespaces the container gets new, which it joins by path, and the
//! syscalls that do it.
//!
//! The pid namespace is special: `unshare`/`setns` only change the namespace of the *next*
//! child, so `create` enters it just around the fork of the init ([`PidNsGuard`]); every other
//! namespace is entered by the init itself ([`NamespacePlan::enter`]).

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, Result};

/// The clone flag of a namespace type (the spec enum's discriminants are the kernel's flags).
pub fn flag(typ: LinuxNamespaceType) -> libc::c_int {
    match typ {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Time => libc::CLONE_NEWTIME,
    }
}

/// True when the config asks for a *new* namespace of this type (listed, without a path).
pub fn wants_new(spec: &Spec, typ: LinuxNamespaceType) -> bool {
    namespaces(spec).any(|ns| ns.typ() == typ && ns.path().is_none())
}

/// True when the container has its own namespace of this type, new or joined.
pub fn is_private(spec: &Spec, typ: LinuxNamespaceType) -> bool {
    namespaces(spec).any(|ns| ns.typ() == typ)
}

fn namespaces(spec: &Spec) -> impl Iterator<Item = &oci_spec::runtime::LinuxNamespace> {
    spec.linux()
        .iter()
        .flat_map(|l| l.namespaces().iter().flatten())
}

/// What the init must do about namespaces, prepared by `create` before the fork so that a bad
/// namespace path fails early with its name.
pub struct NamespacePlan {
    /// Namespaces to join, opened in the runtime's mount namespace, in config order.
    join: Vec<(LinuxNamespaceType, OwnedFd)>,
    /// Flags for `unshare` (without pid, cgroup and time, which have their own moments).
    unshare: libc::c_int,
    pub new_pid: bool,
    join_pid: Option<OwnedFd>,
    pub new_cgroup: bool,
    pub new_time: bool,
    time_offsets: String,
    /// A new user namespace: made by the fork itself (clone with CLONE_NEWUSER), so that the
    /// namespaces made after it, the pid one included, belong to it. Its maps, in
    /// `/proc/PID/uid_map` form, are written by `create`.
    pub new_user: bool,
    pub uid_map: String,
    pub gid_map: String,
    /// Idmapped mounts: (index in `mounts`, a user namespace with that mount's maps).
    pub idmaps: Vec<(usize, OwnedFd)>,
}

impl NamespacePlan {
    pub fn new(spec: &Spec) -> Result<Self> {
        let mut plan = NamespacePlan {
            join: Vec::new(),
            unshare: 0,
            new_pid: false,
            join_pid: None,
            new_cgroup: false,
            new_time: false,
            time_offsets: String::new(),
            new_user: false,
            uid_map: String::new(),
            gid_map: String::new(),
            idmaps: Vec::new(),
        };
        let mut seen = 0;
        for ns in namespaces(spec) {
            let typ = ns.typ();
            if seen & flag(typ) != 0 {
                return Err(Error::InvalidConfig(format!(
                    "namespace {typ} is listed twice"
                )));
            }
            seen |= flag(typ);
            if typ == LinuxNamespaceType::User {
                if ns.path().is_some() {
                    return Err(Error::Unsupported(
                        "joining a user namespace by path is not supported yet".into(),
                    ));
                }
                plan.new_user = true;
                continue;
            }
            match ns.path() {
                Some(path) => {
                    let fd = open_ns(path, typ)?;
                    if typ == LinuxNamespaceType::Pid {
                        plan.join_pid = Some(fd);
                    } else {
                        plan.join.push((typ, fd));
                    }
                }
                None => match typ {
                    LinuxNamespaceType::Pid => plan.new_pid = true,
                    LinuxNamespaceType::Cgroup => plan.new_cgroup = true,
                    LinuxNamespaceType::Time => plan.new_time = true,
                    _ => plan.unshare |= flag(typ),
                },
            }
        }
        let linux = spec.linux().as_ref();
        let map = |m: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| {
            m.into_iter()
                .flatten()
                .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
                .collect::<String>()
        };
        plan.uid_map = map(linux.and_then(|l| l.uid_mappings().as_ref()));
        plan.gid_map = map(linux.and_then(|l| l.gid_mappings().as_ref()));
        if plan.new_user && (plan.uid_map.is_empty() || plan.gid_map.is_empty()) {
            return Err(Error::InvalidConfig(
                "a new user namespace needs linux.uidMappings and linux.gidMappings".into(),
            ));
        }
        let has_maps = !plan.uid_map.is_empty() || !plan.gid_map.is_empty();
        if !plan.new_user && has_maps {
            return Err(Error::InvalidConfig(
                "linux.uidMappings/gidMappings need a new user namespace".into(),
            ));
        }
        if plan.new_user && plan.join_pid.is_some() {
            return Err(Error::Unsupported(
                "a new user namespace with a joined pid namespace is not supported yet".into(),
            ));
        }
        for (i, m) in spec.mounts().iter().flatten().enumerate() {
            let (u, g) = (
                map(m.uid_mappings().as_ref()),
                map(m.gid_mappings().as_ref()),
            );
            if u.is_empty() && g.is_empty() {
                continue;
            }
            let dest = m.destination().display();
            if u.is_empty() || g.is_empty() {
                return Err(Error::InvalidConfig(format!(
                    "mount {dest}: uidMappings and gidMappings go together"
                )));
            }
            if !crate::mount::is_bind(m) {
                return Err(Error::InvalidConfig(format!(
                    "mount {dest}: only bind mounts can be idmapped"
                )));
            }
            plan.idmaps.push((i, userns_with_maps(&u, &g)?));
        }
        if let Some(offsets) = spec
            .linux()
            .as_ref()
            .and_then(|l| l.time_offsets().as_ref())
        {
            if !plan.new_time && !offsets.is_empty() {
                return Err(Error::InvalidConfig(
                    "timeOffsets require a new time namespace".into(),
                ));
            }
            for (clock, off) in offsets {
                if clock != "monotonic" && clock != "boottime" {
                    return Err(Error::InvalidConfig(format!(
                        "unknown clock {clock:?} in timeOffsets"
                    )));
                }
                plan.time_offsets.push_str(&format!(
                    "{clock} {} {}\n",
                    off.secs().unwrap_or(0),
                    off.nanosecs().unwrap_or(0)
                ));
            }
        }
        Ok(plan)
    }

    /// Whether the container gets a namespace of this type other than the runtime's own: a new
    /// one, or one joined by path that is not the one this process is in. A config naming
    /// `/proc/1/ns/net` or `/proc/self/ns/net` joins the host's, which separates nothing; the
    /// inode of the very fd the init will join is compared with ours, as runc compares the
    /// path's for the network namespace.
    pub fn separate(&self, typ: LinuxNamespaceType) -> Result<bool> {
        let new = match typ {
            LinuxNamespaceType::Pid => self.new_pid,
            LinuxNamespaceType::Cgroup => self.new_cgroup,
            LinuxNamespaceType::Time => self.new_time,
            LinuxNamespaceType::User => self.new_user,
            t => self.unshare & flag(t) != 0,
        };
        let joined = match typ {
            LinuxNamespaceType::Pid => self.join_pid.as_ref(),
            t => self.join.iter().find(|(j, _)| *j == t).map(|(_, fd)| fd),
        };
        let Some(fd) = joined else {
            return Ok(new);
        };
        let own = format!("/proc/self/ns/{typ}");
        let ours = nix::sys::stat::stat(own.as_str()).map_err(|errno| Error::Io {
            op: "stat",
            path: own.into(),
            source: errno.into(),
        })?;
        let theirs = nix::sys::stat::fstat(fd)
            .map_err(crate::error::sys_err("fstat a namespace joined by path"))?;
        Ok((ours.st_dev, ours.st_ino) != (theirs.st_dev, theirs.st_ino))
    }

    /// With a new user namespace: the namespaces besides it that the clone making the init
    /// ([`fork_into`]) makes too: a new pid namespace, so that the user namespace owns it.
    pub fn clone_flags(&self) -> libc::c_int {
        if self.new_pid { libc::CLONE_NEWPID } else { 0 }
    }

    /// In `create`, around the fork: make the next child land in the container's pid namespace.
    pub fn enter_pid_for_children(&self) -> Result<PidNsGuard> {
        if self.new_user || (!self.new_pid && self.join_pid.is_none()) {
            return Ok(PidNsGuard(None));
        }
        let own = File::open("/proc/thread-self/ns/pid")
            .map_err(crate::error::io_err("open", "/proc/thread-self/ns/pid"))?;
        match &self.join_pid {
            Some(fd) => setns(fd.as_raw_fd(), libc::CLONE_NEWPID, "setns pid")?,
            None => unshare(libc::CLONE_NEWPID, "unshare pid")?,
        }
        Ok(PidNsGuard(Some(own.into())))
    }

    /// In the init: join the namespaces named by path, then unshare the new ones (but cgroup,
    /// which waits until the init sits in its cgroup: see [`Self::enter_cgroup`]).
    pub fn enter(&self) -> std::result::Result<(), (&'static str, Errno)> {
        for (typ, fd) in &self.join {
            setns(fd.as_raw_fd(), flag(*typ), "setns").map_err(|_| ("setns", Errno::last()))?;
        }
        if self.unshare != 0 {
            unshare(self.unshare, "unshare").map_err(|_| ("unshare namespaces", Errno::last()))?;
        }
        if self.new_time {
            if !self.new_user {
                self.make_time()?;
            }
            // unshare(CLONE_NEWTIME) only affects children; the init itself enters it here.
            let fd = File::open("/proc/self/ns/time_for_children")
                .map_err(|e| ("open /proc/self/ns/time_for_children", errno_of(&e)))?;
            setns(fd.as_raw_fd(), libc::CLONE_NEWTIME, "setns time")
                .map_err(|_| ("setns time namespace", Errno::last()))?;
        }
        Ok(())
    }

    /// In the init: a new time namespace for its children, with the config's offsets. Only a
    /// process that may write `/proc/self/timens_offsets` can set them: the file is the
    /// process's own only while it is dumpable (else it is the host root's). So in a new user
    /// namespace the init calls this before it makes itself not dumpable, and [`Self::enter`]
    /// does it otherwise.
    pub fn make_time(&self) -> std::result::Result<(), (&'static str, Errno)> {
        if !self.new_time {
            return Ok(());
        }
        unshare(libc::CLONE_NEWTIME, "unshare time")
            .map_err(|_| ("unshare time namespace", Errno::last()))?;
        if !self.time_offsets.is_empty() {
            std::fs::write("/proc/self/timens_offsets", &self.time_offsets)
                .map_err(|e| ("write /proc/self/timens_offsets", errno_of(&e)))?;
        }
        Ok(())
    }

    /// In the init, once `create` has put it in its cgroup: the new cgroup namespace is rooted
    /// at the container's own cgroup.
    pub fn enter_cgroup(&self) -> std::result::Result<(), (&'static str, Errno)> {
        if self.new_cgroup {
            unshare(libc::CLONE_NEWCGROUP, "unshare cgroup")
                .map_err(|_| ("unshare cgroup namespace", Errno::last()))?;
        }
        Ok(())
    }
}

/// Restores `create`'s own pid namespace for its future children when dropped.
pub struct PidNsGuard(Option<OwnedFd>);

impl PidNsGuard {
    /// Make our next child land in the pid namespace of `target` (a pidfd or a namespace fd).
    pub fn enter(target: &OwnedFd) -> Result<PidNsGuard> {
        let own = File::open("/proc/thread-self/ns/pid")
            .map_err(crate::error::io_err("open", "/proc/thread-self/ns/pid"))?;
        setns(target.as_raw_fd(), libc::CLONE_NEWPID, "setns pid")?;
        Ok(PidNsGuard(Some(own.into())))
    }
}

impl Drop for PidNsGuard {
    fn drop(&mut self) {
        if let Some(fd) = self.0.take() {
            // Going back to our own active namespace is always allowed.
            let _ = setns(fd.as_raw_fd(), libc::CLONE_NEWPID, "setns pid");
        }
    }
}

/// The kernel's name of a namespace type (as in `/proc/PID/ns/`), from its clone flag.
fn kind_name(flag: libc::c_int) -> &'static str {
    match flag {
        libc::CLONE_NEWNS => "mnt",
        libc::CLONE_NEWCGROUP => "cgroup",
        libc::CLONE_NEWUTS => "uts",
        libc::CLONE_NEWIPC => "ipc",
        libc::CLONE_NEWUSER => "user",
        libc::CLONE_NEWPID => "pid",
        libc::CLONE_NEWNET => "net",
        libc::CLONE_NEWTIME => "time",
        _ => "unknown",
    }
}

/// Open a namespace named by path and check its type. The path may be `/proc/PID/ns/<type>`
/// or a bind mount of one (`ip netns add` makes `/run/netns/NAME`, CNI and podman make their
/// own): the type is asked of the file itself (`NS_GET_NSTYPE`), not read from its name.
fn open_ns(path: &Path, typ: LinuxNamespaceType) -> Result<OwnedFd> {
    // Non-blocking: a FIFO given by mistake must fail the check, not hang the open.
    let fd = crate::container::open_fd(
        path,
        libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC,
    )
    .map_err(|e| match e {
        Error::Io { source, .. } => Error::Io {
            op: "open namespace",
            path: path.to_path_buf(),
            source,
        },
        e => e,
    })?;
    // _IO(0xb7, 0x3): the CLONE_NEW* flag of the namespace an nsfs file refers to (Linux 4.11).
    // (The request's type is the libc's: an unsigned long in glibc, an int in musl.)
    const NS_GET_NSTYPE: u32 = 0xb703;
    // SAFETY: an ioctl without an argument on an fd we own.
    let kind = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE as _) };
    let want = typ.to_string();
    if kind < 0 {
        // ENOTTY (or EINVAL): the file is not a namespace at all.
        return Err(Error::InvalidConfig(format!(
            "namespace path {} is not a namespace (want a {want} namespace: \
             /proc/PID/ns/{want} or a bind mount of it)",
            path.display()
        )));
    }
    if kind != flag(typ) {
        return Err(Error::InvalidConfig(format!(
            "namespace path {} is a namespace of type {}, not {want}",
            path.display(),
            kind_name(kind)
        )));
    }
    Ok(fd)
}

fn unshare(flags: libc::c_int, op: &'static str) -> Result<()> {
    // SAFETY: unshare takes only flags and touches no memory of ours.
    Errno::result(unsafe { libc::unshare(flags) })
        .map(drop)
        .map_err(crate::error::sys_err(op))
}

fn setns(fd: libc::c_int, nstype: libc::c_int, op: &'static str) -> Result<()> {
    // SAFETY: setns takes an fd we own and flags; it touches no memory of ours.
    Errno::result(unsafe { libc::setns(fd, nstype) })
        .map(drop)
        .map_err(crate::error::sys_err(op))
}

pub(crate) fn errno_of(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// A user namespace with the given maps, for an idmapped mount: a child cloned into a new
/// user namespace only lives until its maps are written and the namespace is opened.
pub fn userns_with_maps(uid_map: &str, gid_map: &str) -> Result<OwnedFd> {
    let (r, w) = nix::unistd::pipe().map_err(crate::error::sys_err("pipe"))?;
    // SAFETY: the child only blocks on a read and _exits (both async-signal-safe).
    let pid = unsafe { fork_into(0) }.map_err(crate::error::sys_err(
        "clone a user namespace for an idmapped mount",
    ))?;
    if pid == 0 {
        drop(w);
        let mut b = [0u8; 1];
        // SAFETY: read into our buffer, then _exit without running any destructor.
        unsafe {
            libc::read(r.as_raw_fd(), b.as_mut_ptr().cast(), 1);
            libc::_exit(0);
        }
    }
    drop(r);
    let result = (|| {
        write_id_maps(pid, uid_map, gid_map)?;
        let path = format!("/proc/{pid}/ns/user");
        File::open(&path)
            .map(OwnedFd::from)
            .map_err(crate::error::io_err("open", &path))
    })();
    drop(w);
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    result
}

/// Fork into a new user namespace (and the namespaces of `flags`, made after it and owned by
/// it): a raw clone without CLONE_VM and with no new stack returns twice like fork, 0 in the
/// child, which has a copy of our memory.
///
/// # Safety
/// As for fork: the child must only run code that never returns (it execs or `_exit`s).
/// Unlike glibc's fork this runs no atfork handlers: an embedding program with threads holding
/// malloc's lock would deadlock the child, so call it only from a thread that may (the CLI is
/// single-threaded).
pub unsafe fn fork_into(flags: libc::c_int) -> std::result::Result<i32, Errno> {
    // SAFETY: the caller upholds fork's contract; clone touches no memory of ours here.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (libc::CLONE_NEWUSER | flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    Errno::result(r).map(|pid| pid as i32)
}

/// The maps of the init's new user namespace, written from outside it. Root may map any ids.
/// An unprivileged caller may write only its own uid and gid (after denying setgroups); other
/// maps go through the setuid helpers newuidmap/newgidmap, which check /etc/subuid and
/// /etc/subgid, as with runc and podman.
pub fn write_id_maps(pid: i32, uid_map: &str, gid_map: &str) -> Result<()> {
    let root = nix::unistd::geteuid().is_root();
    // One line mapping exactly one id, the caller's own.
    let own = |map: &str, id: u32| {
        let f: Vec<&str> = map.split_whitespace().collect();
        f.len() == 3 && f[1] == id.to_string() && f[2] == "1"
    };
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    for (file, map, helper, mine) in [
        ("uid_map", uid_map, "newuidmap", own(uid_map, uid)),
        ("gid_map", gid_map, "newgidmap", own(gid_map, gid)),
    ] {
        let path = format!("/proc/{pid}/{file}");
        if root || mine {
            if !root && file == "gid_map" {
                let sg = format!("/proc/{pid}/setgroups");
                std::fs::write(&sg, "deny").map_err(crate::error::io_err("write", &sg))?;
            }
            // One write: the kernel takes a map only whole, and only once.
            std::fs::write(&path, map.as_bytes()).map_err(crate::error::io_err("write", &path))?;
            continue;
        }
        let out = std::process::Command::new(helper)
            .arg(pid.to_string())
            .args(map.split_whitespace())
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|source| Error::Io {
                op: "run (needed to map ids other than the caller's own; package uidmap)",
                path: helper.into(),
                source,
            })?;
        if !out.status.success() {
            return Err(Error::Unsupported(format!(
                "{helper} {pid} {}: {}",
                map.split_whitespace().collect::<Vec<_>>().join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
    }
    Ok(())
}
