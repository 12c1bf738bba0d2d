//! The container's filesystem: the rootfs bind, `mounts`, `/dev`, pivot_root (or MS_MOVE +
//! chroot), and what is done after it: sysctls, masked and read-only paths, a read-only root.
//!
//! Everything here runs in the init, in the container's mount namespace (or the runtime's, for
//! a container without one: see `host_rootfs`), and reports failures as [`InitError`]s naming
//! the step and the path.
//!
//! Mount destinations are resolved with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`
//! against an fd of the rootfs, and mounted through `/proc/self/fd/N` of the opened target: a
//! symlink in the image that points outside the rootfs (`/etc -> /host/etc`, `../../..`) is
//! resolved as if the rootfs were `/`, so a mount can never land on the host.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use oci_spec::runtime::{LinuxDeviceType, Mount, Spec};

use crate::cgroups::Cgroup;
use crate::error::InitError;

pub type Step<T = ()> = std::result::Result<T, InitError>;

pub(crate) fn fail(step: &str, path: impl AsRef<Path>, errno: Errno) -> InitError {
    InitError {
        step: step.to_string(),
        path: path.as_ref().display().to_string(),
        errno: errno as i32,
        detail: String::new(),
    }
}

/// What the init needs to lay out the filesystem.
pub struct FsContext<'a> {
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub cgroup: &'a Cgroup,
    pub cgroupns: bool,
    /// In a new user namespace: no mknod (device nodes are bound from the host's), and v1
    /// cgroup hierarchies are bound rather than mounted.
    pub userns: bool,
    /// The container has a mount namespace of its own (else it shares the runtime's, and
    /// `create` has bound the rootfs onto itself there: see `host_rootfs`).
    pub own_mount_ns: bool,
    /// For each mount with `uidMappings`/`gidMappings` (by index): a user namespace with those
    /// maps, made by `create`, whose ids the idmapped bind shows.
    pub idmaps: &'a [(usize, OwnedFd)],
    pub no_pivot: bool,
    /// Waits until `create` has put the init in its cgroup and enters the cgroup namespace
    /// (once; later calls return at once). Called before the first `cgroup` mount.
    pub in_cgroup: &'a dyn Fn() -> Step,
}

/// `linux.rootfsPropagation` as mount flags (None: not set).
fn root_propagation(spec: &Spec) -> Step<Option<u64>> {
    match spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
    {
        None | Some("") => Ok(None),
        Some(p) => propagation_flag(p).map(Some).ok_or_else(|| InitError {
            step: "parse rootfsPropagation".into(),
            path: p.into(),
            errno: libc::EINVAL,
            detail: String::new(),
        }),
    }
}

/// The container's mounts and /dev, laid out under the rootfs (still seen from the host's
/// root): everything before [`switch_root`].
pub fn setup_rootfs(ctx: &FsContext) -> Step {
    // Without a mount namespace of our own, the host's propagation is left alone: `create`
    // has made the rootfs a private bind already.
    if ctx.own_mount_ns {
        // Nothing we mount may propagate back to the host. An unbindable root is made so only
        // at the end (`finalize_rootfs`): the rootfs cannot be bound onto itself out of an
        // unbindable mount, nor the masked and read-only paths onto themselves.
        let propagation = root_propagation(ctx.spec)?.filter(|p| p & libc::MS_UNBINDABLE == 0);
        sys_mount(
            None,
            c"/",
            None,
            libc::MS_REC | propagation.unwrap_or(libc::MS_SLAVE),
            None,
        )
        .map_err(|e| fail("make / a slave mount", "/", e))?;
        make_parent_mount_private(ctx.rootfs)?;
        let rootfs_c = cpath(ctx.rootfs);
        sys_mount(
            Some(&rootfs_c),
            &rootfs_c,
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        )
        .map_err(|e| fail("bind the rootfs onto itself", ctx.rootfs, e))?;
    }
    let root = open_dir(ctx.rootfs).map_err(|e| fail("open rootfs", ctx.rootfs, e))?;

    for (i, m) in ctx.spec.mounts().iter().flatten().enumerate() {
        let idmap = ctx.idmaps.iter().find(|(n, _)| *n == i).map(|(_, fd)| fd);
        mount_entry(&root, m, idmap, ctx)?;
    }
    setup_dev(&root, ctx)?;
    // The cwd must exist in the container; create it as root, before the user switch.
    if let Some(p) = ctx.spec.process() {
        resolve(&root, p.cwd(), Create::Dir).map_err(|e| fail("create cwd", p.cwd(), e))?;
    }
    Ok(())
}

/// Make the rootfs `/`: pivot_root, or MS_MOVE + chroot with `--no-pivot`, or (without a
/// mount namespace, as runc does) chroot: pivot_root would move the host's root.
pub fn switch_root(ctx: &FsContext) -> Step {
    if !ctx.own_mount_ns {
        chroot_into(ctx.rootfs, false)?;
    } else if ctx.no_pivot {
        chroot_into(ctx.rootfs, true)?;
    } else {
        pivot_root(ctx.rootfs)?;
    }
    if let Some(flag) = root_propagation(ctx.spec)?.filter(|p| p & libc::MS_UNBINDABLE == 0) {
        sys_mount(None, c"/", None, libc::MS_REC | flag, None)
            .map_err(|e| fail("apply rootfsPropagation", "/", e))?;
    }
    Ok(())
}

/// After pivot_root: sysctls, read-only and masked paths, an unbindable root, and finally a
/// read-only root.
pub fn finalize_rootfs(spec: &Spec) -> Step {
    let Some(linux) = spec.linux() else {
        return readonly_root(spec);
    };
    let unbindable = root_propagation(spec)?.filter(|p| p & libc::MS_UNBINDABLE != 0);
    if let Some(sysctl) = linux.sysctl() {
        for (key, value) in sysctl {
            write_sysctl(key, value)?;
        }
    }
    for p in linux.readonly_paths().iter().flatten() {
        readonly_path(p)?;
    }
    let masked = linux.masked_paths().as_deref().unwrap_or_default();
    if !masked.is_empty() {
        let null = real_dev_null()?;
        for p in masked {
            mask_path(p, &null)?;
        }
    }
    // As given: `unbindable` is the root alone, as with runc; `runbindable` every mount.
    if let Some(flag) = unbindable {
        sys_mount(None, c"/", None, flag, None)
            .map_err(|e| fail("apply rootfsPropagation", "/", e))?;
    }
    readonly_root(spec)
}

fn readonly_root(spec: &Spec) -> Step {
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | locked_flags(c"/");
        sys_mount(None, c"/", None, flags, None)
            .map_err(|e| fail("remount / read-only", "/", e))?;
    }
    Ok(())
}

// ---- mounts -------------------------------------------------------------------------------

/// A mount's options split the way mount(2) wants them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MountOptions {
    pub flags: u64,
    pub propagation: Vec<u64>,
    pub data: Vec<String>,
    /// runc's recursive attributes (`rro`, `rnosuid`, ...): mount_setattr(AT_RECURSIVE) bits
    /// to set and to clear on the mount and every mount below it.
    pub rec_set: u64,
    pub rec_clr: u64,
    /// tmpfs only: copy what the image has at the destination into the new tmpfs.
    pub tmpcopyup: bool,
}

/// statvfs's relatime flag (Linux's `ST_RELATIME`), which musl's libc does not name.
const ST_RELATIME: libc::c_ulong = 0x1000;

const ATTR_RDONLY: u64 = 0x1;
const ATTR_NOSUID: u64 = 0x2;
const ATTR_NODEV: u64 = 0x4;
const ATTR_NOEXEC: u64 = 0x8;
const ATTR_ATIME_MASK: u64 = 0x70;
/// The atime mode is a field of the mask, and relatime is its zero.
const ATTR_RELATIME: u64 = 0x0;
const ATTR_NOATIME: u64 = 0x10;
const ATTR_STRICTATIME: u64 = 0x20;
const ATTR_NODIRATIME: u64 = 0x80;
const ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

/// A recursive attribute option: (its attribute, whether the option clears it), as in runc's
/// table. The atime ones set or clear a value of the atime field, whose zero is relatime: so
/// `rnorelatime` (clear relatime) and `rrelatime` change no bit, and alone leave the field
/// relatime; `ratime` and `rnostrictatime` undo an earlier `rnoatime` or `rstrictatime`.
fn recursive_attr(o: &str) -> Option<(u64, bool)> {
    Some(match o {
        "rro" => (ATTR_RDONLY, false),
        "rrw" => (ATTR_RDONLY, true),
        "rnosuid" => (ATTR_NOSUID, false),
        "rsuid" => (ATTR_NOSUID, true),
        "rnodev" => (ATTR_NODEV, false),
        "rdev" => (ATTR_NODEV, true),
        "rnoexec" => (ATTR_NOEXEC, false),
        "rexec" => (ATTR_NOEXEC, true),
        "rnodiratime" => (ATTR_NODIRATIME, false),
        "rdiratime" => (ATTR_NODIRATIME, true),
        "rnosymfollow" => (ATTR_NOSYMFOLLOW, false),
        "rsymfollow" => (ATTR_NOSYMFOLLOW, true),
        "rrelatime" => (ATTR_RELATIME, false),
        "rnorelatime" => (ATTR_RELATIME, true),
        "rnoatime" => (ATTR_NOATIME, false),
        "ratime" => (ATTR_NOATIME, true),
        "rstrictatime" => (ATTR_STRICTATIME, false),
        "rnostrictatime" => (ATTR_STRICTATIME, true),
        _ => return None,
    })
}

/// Parse fstab-style options (`ro`, `nosuid`, `rbind`, `rslave`, `mode=755`...): flags set or
/// cleared in order, propagation separately, the rest is filesystem data.
pub fn parse_options(opts: &[String]) -> MountOptions {
    let mut out = MountOptions::default();
    for o in opts {
        if let Some(p) = propagation_flag(o) {
            out.propagation.push(p);
            continue;
        }
        if let Some((attr, clear)) = recursive_attr(o) {
            if clear {
                out.rec_set &= !attr;
                out.rec_clr |= attr;
            } else {
                if attr & ATTR_ATIME_MASK != 0 {
                    // One atime mode: a later one replaces an earlier one (runc would pass
                    // both, which mount_setattr refuses).
                    out.rec_set &= !ATTR_ATIME_MASK;
                }
                out.rec_set |= attr;
                out.rec_clr &= !attr;
            }
            if attr & !ATTR_ATIME_MASK == 0 {
                // Changing the atime field takes the whole field in attr_clr.
                out.rec_clr |= ATTR_ATIME_MASK;
            }
            continue;
        }
        if o == "tmpcopyup" {
            out.tmpcopyup = true;
            continue;
        }
        let (set, flag) = match o.as_str() {
            "defaults" => (true, 0),
            "ro" => (true, libc::MS_RDONLY),
            "rw" => (false, libc::MS_RDONLY),
            "nosuid" => (true, libc::MS_NOSUID),
            "suid" => (false, libc::MS_NOSUID),
            "nodev" => (true, libc::MS_NODEV),
            "dev" => (false, libc::MS_NODEV),
            "noexec" => (true, libc::MS_NOEXEC),
            "exec" => (false, libc::MS_NOEXEC),
            "sync" => (true, libc::MS_SYNCHRONOUS),
            "async" => (false, libc::MS_SYNCHRONOUS),
            "dirsync" => (true, libc::MS_DIRSYNC),
            "remount" => (true, libc::MS_REMOUNT),
            "mand" => (true, libc::MS_MANDLOCK),
            "nomand" => (false, libc::MS_MANDLOCK),
            "atime" => (false, libc::MS_NOATIME),
            "noatime" => (true, libc::MS_NOATIME),
            "diratime" => (false, libc::MS_NODIRATIME),
            "nodiratime" => (true, libc::MS_NODIRATIME),
            "relatime" => (true, libc::MS_RELATIME),
            "norelatime" => (false, libc::MS_RELATIME),
            "strictatime" => (true, libc::MS_STRICTATIME),
            "nostrictatime" => (false, libc::MS_STRICTATIME),
            "lazytime" => (true, libc::MS_LAZYTIME),
            "nolazytime" => (false, libc::MS_LAZYTIME),
            "iversion" => (true, libc::MS_I_VERSION),
            "noiversion" => (false, libc::MS_I_VERSION),
            "silent" => (true, libc::MS_SILENT),
            "nosymfollow" => (true, libc::MS_NOSYMFOLLOW),
            "symfollow" => (false, libc::MS_NOSYMFOLLOW),
            "loud" => (false, libc::MS_SILENT),
            "bind" => (true, libc::MS_BIND),
            "rbind" => (true, libc::MS_BIND | libc::MS_REC),
            // The mount's uidMappings/gidMappings make it idmapped; the options only say so
            // (and ridmap: on every mount below it too, which an rbind gives).
            "idmap" => (true, 0),
            "ridmap" => (true, libc::MS_REC),
            _ => {
                out.data.push(o.clone());
                continue;
            }
        };
        if set {
            out.flags |= flag;
        } else {
            out.flags &= !flag;
        }
    }
    out
}

fn propagation_flag(o: &str) -> Option<u64> {
    Some(match o {
        "private" => libc::MS_PRIVATE,
        "rprivate" => libc::MS_PRIVATE | libc::MS_REC,
        "shared" => libc::MS_SHARED,
        "rshared" => libc::MS_SHARED | libc::MS_REC,
        "slave" => libc::MS_SLAVE,
        "rslave" => libc::MS_SLAVE | libc::MS_REC,
        "unbindable" => libc::MS_UNBINDABLE,
        "runbindable" => libc::MS_UNBINDABLE | libc::MS_REC,
        _ => return None,
    })
}

/// Whether a mount entry is a bind mount (by type or by option).
pub fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

/// The host path a bind mount's `source` names: absolute, or relative to the bundle.
pub fn bind_source(m: &Mount, bundle: &Path) -> PathBuf {
    let src = m.source().clone().unwrap_or_default();
    if src.is_absolute() {
        src
    } else {
        bundle.join(src)
    }
}

fn mount_entry(root: &OwnedFd, m: &Mount, idmap: Option<&OwnedFd>, ctx: &FsContext) -> Step {
    let dest = m.destination();
    let opts = parse_options(m.options().as_deref().unwrap_or_default());
    let typ = m.typ().as_deref().unwrap_or("");
    if typ == "cgroup" {
        return mount_cgroup(root, dest, &opts, ctx);
    }
    let target = if is_bind(m) {
        let src = bind_source(m, ctx.bundle);
        let meta =
            std::fs::metadata(&src).map_err(|e| fail("stat bind source", &src, io_errno(&e)))?;
        let kind = if meta.is_dir() {
            Create::Dir
        } else {
            Create::File
        };
        let target =
            resolve(root, dest, kind).map_err(|e| fail("resolve mount destination", dest, e))?;
        match idmap {
            Some(userns) => idmapped_bind(&src, &target, userns, opts.flags & libc::MS_REC != 0)
                .map_err(|e| {
                    let what = format!("{} on {}", src.display(), dest.display());
                    fail(
                        "idmapped bind mount (does the filesystem support it?)",
                        what,
                        e,
                    )
                })?,
            None => sys_mount(
                Some(&cpath(&src)),
                &fd_path(&target),
                None,
                libc::MS_BIND | (opts.flags & libc::MS_REC),
                None,
            )
            .map_err(|e| {
                fail(
                    "bind mount",
                    format!("{} on {}", src.display(), dest.display()),
                    e,
                )
            })?,
        }
        // The fd still names the directory under the new mount; look the path up again.
        let target = resolve(root, dest, Create::None)
            .map_err(|e| fail("resolve mount destination", dest, e))?;
        let extra = opts.flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT);
        if extra != 0 {
            let flags = libc::MS_BIND | libc::MS_REMOUNT | extra | locked_flags(&fd_path(&target));
            sys_mount(None, &fd_path(&target), None, flags, None)
                .map_err(|e| fail("remount bind mount", dest, e))?;
        }
        target
    } else {
        let kernel_fs = typ == "proc" || typ == "sysfs";
        let target = if kernel_fs {
            ordinary_dir(root, dest, typ)?
        } else {
            resolve(root, dest, Create::Dir)
                .map_err(|e| fail("resolve mount destination", dest, e))?
        };
        // What the image has there, read once the tmpfs hides it (an fd keeps it reachable).
        let copy_from = if opts.tmpcopyup && typ == "tmpfs" {
            Some(reopen_dir(&target).map_err(|e| fail("open for tmpcopyup", dest, e))?)
        } else {
            None
        };
        let src = CString::new(
            m.source()
                .as_ref()
                .map_or(typ.as_bytes(), |s| s.as_os_str().as_bytes()),
        )
        .unwrap_or_default();
        let fstype = CString::new(typ).unwrap_or_default();
        let data = CString::new(opts.data.join(",")).unwrap_or_default();
        sys_mount(
            Some(&src),
            &fd_path(&target),
            Some(&fstype),
            opts.flags,
            (!opts.data.is_empty()).then_some(data.as_c_str()),
        )
        .map_err(|e| fail(&format!("mount {typ}"), dest, e))?;
        let mounted = if kernel_fs {
            ordinary_dir(root, dest, typ)?
        } else {
            resolve(root, dest, Create::None)
                .map_err(|e| fail("resolve mount destination", dest, e))?
        };
        if let Some(from) = copy_from {
            let to = reopen_dir(&mounted).map_err(|e| fail("open for tmpcopyup", dest, e))?;
            copy_tree(&from, &to, dest)?;
        }
        mounted
    };
    if opts.rec_set != 0 || opts.rec_clr != 0 {
        set_recursive_attrs(&target, opts.rec_set, opts.rec_clr)
            .map_err(|e| fail("set recursive mount attributes", dest, e))?;
    }
    for p in &opts.propagation {
        sys_mount(None, &fd_path(&target), None, *p, None)
            .map_err(|e| fail("set mount propagation", dest, e))?;
    }
    Ok(())
}

/// The directory a `proc` or `sysfs` mount goes on. Its parent is resolved in the root as for
/// any mount, but the last component is opened without following a symlink, and must be a
/// directory (made if missing). An image whose `/proc` or `/sys` is a link (to another
/// directory, to itself, through a chain) would otherwise choose where procfs lands, out from
/// under the LSM rules that name `/proc/...` paths (CVE-2019-16884); runc refuses it in these
/// words, which callers match. The fd checked is the one mounted on: nothing can be swapped in
/// between. The destination is cleaned as text first (`/a/../proc` is `/proc`), as runc does.
fn ordinary_dir(root: &OwnedFd, dest: &Path, typ: &str) -> Step<OwnedFd> {
    let resolve_err = |e| fail("resolve mount destination", dest, e);
    let mut rel = PathBuf::new();
    for c in dest.components() {
        match c {
            Component::Normal(n) => rel.push(n),
            Component::ParentDir => {
                rel.pop();
            }
            _ => {}
        }
    }
    let Some(name) = rel.file_name() else {
        // The rootfs itself, which we opened as a directory.
        return resolve(root, Path::new("."), Create::None).map_err(resolve_err);
    };
    let name = CString::new(name.as_bytes()).map_err(|_| resolve_err(Errno::EINVAL))?;
    let parent =
        resolve(root, rel.parent().unwrap_or(Path::new("")), Create::Dir).map_err(resolve_err)?;
    let open = || openat_path(&parent, &name, libc::O_DIRECTORY);
    let opened = match open() {
        // Missing: made as a directory, as for any mount. Whatever is there once the mkdir
        // returns (ours, or a link raced in), the open judges.
        Err(Errno::ENOENT) => {
            // SAFETY: mkdirat with a valid dirfd and a NUL-terminated name.
            match Errno::result(unsafe { libc::mkdirat(parent.as_raw_fd(), name.as_ptr(), 0o755) })
            {
                Ok(_) | Err(Errno::EEXIST) => open(),
                Err(e) => Err(e),
            }
        }
        r => r,
    };
    match opened {
        Ok(fd) => Ok(fd),
        // O_NOFOLLOW | O_DIRECTORY: a symlink, or anything else that is not a directory.
        Err(Errno::ENOTDIR) => {
            let what = match nix::sys::stat::fstatat(
                &parent,
                name.as_c_str(),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            ) {
                Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFLNK => "a symlink",
                _ => "not a directory",
            };
            Err(InitError {
                step: format!("mount {typ}"),
                path: dest.display().to_string(),
                errno: 0,
                detail: format!(
                    "filesystem {typ:?} must be mounted on ordinary directory (it is {what})"
                ),
            })
        }
        Err(e) => Err(resolve_err(e)),
    }
}

#[repr(C)]
pub(crate) struct MountAttr {
    pub(crate) attr_set: u64,
    pub(crate) attr_clr: u64,
    pub(crate) propagation: u64,
    pub(crate) userns_fd: u64,
}

const AT_RECURSIVE: libc::c_uint = 0x8000;

pub(crate) fn mount_setattr(
    fd: &OwnedFd,
    flags: libc::c_uint,
    attr: &MountAttr,
) -> Result<(), Errno> {
    // SAFETY: mount_setattr reads the mount_attr we own, of the size we pass; "" with
    // AT_EMPTY_PATH acts on the mount the fd is on.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint | flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
    .map(drop)
}

/// runc's `rro`, `rnosuid`...: the attributes on the mount and every mount below it (Linux
/// 5.12+), which a remount cannot do.
fn set_recursive_attrs(target: &OwnedFd, set: u64, clr: u64) -> Result<(), Errno> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clr,
        propagation: 0,
        userns_fd: 0,
    };
    mount_setattr(target, AT_RECURSIVE, &attr)
}

/// An O_PATH directory fd reopened for reading its entries.
fn reopen_dir(fd: &OwnedFd) -> Result<OwnedFd, Errno> {
    // SAFETY: openat "." of a directory fd we own; the returned fd is new and ours.
    let r = Errno::result(unsafe {
        libc::openat(
            fd.as_raw_fd(),
            c".".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: the kernel just gave us this fd.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

/// `tmpcopyup`: copy the directory `from` (the image's, hidden by the new tmpfs) into `to`,
/// keeping modes, owners, links and device nodes, never following a link. The tmpfs root
/// takes the directory's mode and owner.
fn copy_tree(from: &OwnedFd, to: &OwnedFd, dest: &Path) -> Step {
    let err = |what: &str, name: &std::ffi::OsStr, e: Errno| {
        fail(&format!("tmpcopyup: {what}"), dest.join(name), e)
    };
    let st = nix::sys::stat::fstat(from).map_err(|e| fail("tmpcopyup: stat", dest, e))?;
    let _ = nix::sys::stat::fchmod(to, nix::sys::stat::Mode::from_bits_truncate(st.st_mode));
    let _ = nix::unistd::fchown(
        to,
        Some(nix::unistd::Uid::from_raw(st.st_uid)),
        Some(nix::unistd::Gid::from_raw(st.st_gid)),
    );
    let dup = nix::unistd::dup(from).map_err(|e| fail("tmpcopyup: dup", dest, e))?;
    let mut dir = nix::dir::Dir::from_fd(dup).map_err(|e| fail("tmpcopyup: read dir", dest, e))?;
    for entry in dir.iter() {
        let entry = entry.map_err(|e| fail("tmpcopyup: read dir", dest, e))?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let os = std::ffi::OsStr::from_bytes(name.to_bytes());
        let st = nix::sys::stat::fstatat(from, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| err("stat", os, e))?;
        let mode = st.st_mode & 0o7777;
        let kind = st.st_mode & libc::S_IFMT;
        // SAFETY: *at calls with dirfds we own and a NUL-terminated single-component name.
        unsafe {
            match kind {
                libc::S_IFDIR => {
                    Errno::result(libc::mkdirat(to.as_raw_fd(), name.as_ptr(), mode))
                        .map_err(|e| err("mkdir", os, e))?;
                    let open = |d: &OwnedFd| -> Result<OwnedFd, Errno> {
                        let r = Errno::result(libc::openat(
                            d.as_raw_fd(),
                            name.as_ptr(),
                            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                        ))?;
                        Ok(OwnedFd::from_raw_fd(r))
                    };
                    let (f, t) = (
                        open(from).map_err(|e| err("open", os, e))?,
                        open(to).map_err(|e| err("open", os, e))?,
                    );
                    copy_tree(&f, &t, &dest.join(os))?;
                    continue;
                }
                libc::S_IFREG => {
                    let src = Errno::result(libc::openat(
                        from.as_raw_fd(),
                        name.as_ptr(),
                        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                    ))
                    .map_err(|e| err("open", os, e))?;
                    let dst = Errno::result(libc::openat(
                        to.as_raw_fd(),
                        name.as_ptr(),
                        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
                        mode,
                    ))
                    .map_err(|e| err("create", os, e))?;
                    let mut src = std::fs::File::from_raw_fd(src);
                    let mut dst = std::fs::File::from_raw_fd(dst);
                    std::io::copy(&mut src, &mut dst).map_err(|e| err("copy", os, io_errno(&e)))?;
                }
                libc::S_IFLNK => {
                    let target =
                        nix::fcntl::readlinkat(from, name).map_err(|e| err("readlink", os, e))?;
                    let t = CString::new(target.as_bytes()).unwrap_or_default();
                    Errno::result(libc::symlinkat(t.as_ptr(), to.as_raw_fd(), name.as_ptr()))
                        .map_err(|e| err("symlink", os, e))?;
                }
                _ => {
                    Errno::result(libc::mknodat(
                        to.as_raw_fd(),
                        name.as_ptr(),
                        st.st_mode,
                        st.st_rdev,
                    ))
                    .map_err(|e| err("mknod", os, e))?;
                }
            }
            Errno::result(libc::fchownat(
                to.as_raw_fd(),
                name.as_ptr(),
                st.st_uid,
                st.st_gid,
                libc::AT_SYMLINK_NOFOLLOW,
            ))
            .map_err(|e| err("chown", os, e))?;
        }
    }
    Ok(())
}

/// A bind mount whose ids are seen through `userns`'s maps (mount `uidMappings`/`gidMappings`,
/// Linux 5.12+): a detached copy of the source tree, marked idmapped, moved onto the target.
fn idmapped_bind(
    src: &Path,
    target: &OwnedFd,
    userns: &OwnedFd,
    recursive: bool,
) -> Result<(), Errno> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
    let rec = if recursive { AT_RECURSIVE } else { 0 };
    let c = cpath(src);
    // SAFETY: open_tree reads the NUL-terminated path; the returned fd is new and ours.
    let tree = Errno::result(unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | rec,
        )
    })?;
    // SAFETY: the kernel just gave us this fd.
    let tree = unsafe { OwnedFd::from_raw_fd(tree as RawFd) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    mount_setattr(&tree, rec, &attr)?;
    // SAFETY: move_mount between two fds we own, with empty paths.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    })?;
    Ok(())
}

/// `type: cgroup`: on a v2 host one cgroup2 mount; on v1 and hybrid hosts a tmpfs holding one
/// mount per hierarchy, as runc lays it out. With a cgroup namespace each shows the container's
/// cgroup as its root; without one, the container's cgroup directories are bind-mounted.
fn mount_cgroup(root: &OwnedFd, dest: &Path, opts: &MountOptions, ctx: &FsContext) -> Step {
    (ctx.in_cgroup)()?;
    let target =
        resolve(root, dest, Create::Dir).map_err(|e| fail("resolve mount destination", dest, e))?;
    let flags = opts.flags & !(libc::MS_BIND | libc::MS_REC);
    let dirs = &ctx.cgroup.dirs;
    if dirs.len() == 1 && dirs[0].v2 {
        let reopen = || resolve(root, dest, Create::None);
        return mount_one_cgroup(&target, &reopen, &dirs[0], flags, ctx.cgroupns, dest);
    }
    let tmpfs_flags = flags & !libc::MS_RDONLY;
    sys_mount(
        Some(c"tmpfs"),
        &fd_path(&target),
        Some(c"tmpfs"),
        tmpfs_flags,
        Some(c"mode=755"),
    )
    .map_err(|e| fail("mount tmpfs for cgroups", dest, e))?;
    let top = resolve(root, dest, Create::None)
        .map_err(|e| fail("resolve mount destination", dest, e))?;
    // On a hybrid host the cgroup2 mount (holding only what v1 lacks) is not shown inside the
    // container, as with runc: containers and their tools expect the v1 layout there.
    for d in dirs.iter().filter(|d| !d.v2) {
        let name = CString::new(d.mount_name.as_str()).unwrap_or_default();
        // SAFETY: mkdirat with a valid dirfd and a NUL-terminated name.
        Errno::result(unsafe { libc::mkdirat(top.as_raw_fd(), name.as_ptr(), 0o755) })
            .map_err(|e| fail("create cgroup mount point", dest.join(&d.mount_name), e))?;
        let reopen = || openat_path(&top, &name, 0);
        let sub =
            reopen().map_err(|e| fail("open cgroup mount point", dest.join(&d.mount_name), e))?;
        // A user namespace may mount cgroup2 but not a v1 hierarchy: bind those.
        mount_one_cgroup(
            &sub,
            &reopen,
            d,
            flags,
            ctx.cgroupns && !ctx.userns,
            &dest.join(&d.mount_name),
        )?;
        // Co-mounted controllers (`cpu,cpuacct`) also get a link per controller, as on hosts.
        let ctrls: Vec<&str> = d
            .controllers
            .split(',')
            .filter(|c| !c.starts_with("name="))
            .collect();
        if ctrls.len() > 1 {
            for c in ctrls {
                let link = CString::new(c).unwrap_or_default();
                // SAFETY: symlinkat with valid NUL-terminated strings and a valid dirfd.
                unsafe { libc::symlinkat(name.as_ptr(), top.as_raw_fd(), link.as_ptr()) };
            }
        }
    }
    if flags & libc::MS_RDONLY != 0 {
        sys_mount(
            None,
            &fd_path(&top),
            None,
            libc::MS_REMOUNT | flags,
            Some(c"mode=755"),
        )
        .map_err(|e| fail("remount cgroup tmpfs read-only", dest, e))?;
    }
    Ok(())
}

fn mount_one_cgroup(
    target: &OwnedFd,
    reopen: &dyn Fn() -> Result<OwnedFd, Errno>,
    d: &crate::cgroups::CgroupDir,
    flags: u64,
    cgroupns: bool,
    dest: &Path,
) -> Step {
    let target = &fd_path(target);
    if cgroupns {
        let (fstype, data) = if d.v2 {
            (c"cgroup2", None)
        } else if d.controllers.starts_with("name=") {
            (
                c"cgroup",
                Some(CString::new(format!("none,{}", d.controllers)).unwrap_or_default()),
            )
        } else {
            (
                c"cgroup",
                Some(CString::new(d.controllers.as_str()).unwrap_or_default()),
            )
        };
        sys_mount(Some(fstype), target, Some(fstype), flags, data.as_deref())
            .map_err(|e| fail("mount cgroup", dest, e))
    } else {
        sys_mount(
            Some(&cpath(&d.path)),
            target,
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        )
        .map_err(|e| fail("bind cgroup", dest, e))?;
        // The fd names the directory under the new mount; the remount needs the mount itself.
        let mounted = reopen().map_err(|e| fail("open cgroup mount", dest, e))?;
        sys_mount(
            None,
            &fd_path(&mounted),
            None,
            libc::MS_BIND | libc::MS_REMOUNT | flags,
            None,
        )
        .map_err(|e| fail("remount cgroup", dest, e))
    }
}

// ---- /dev ---------------------------------------------------------------------------------

const DEFAULT_DEVICES: &[(&str, u64, u64)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// When `/dev` is a fresh filesystem (not a bind of the host's), fill it like runc does: the
/// default devices, the std* and fd links, ptmx pointing into the devpts instance. Devices from
/// `linux.devices` are made in any case.
fn setup_dev(root: &OwnedFd, ctx: &FsContext) -> Step {
    let fresh_dev = ctx
        .spec
        .mounts()
        .iter()
        .flatten()
        .any(|m| m.destination() == Path::new("/dev") && !is_bind(m));
    if fresh_dev {
        let dev =
            resolve(root, Path::new("/dev"), Create::Dir).map_err(|e| fail("open", "/dev", e))?;
        for (name, major, minor) in DEFAULT_DEVICES {
            if ctx.userns {
                bind_host_device(&dev, name, &Path::new("/dev").join(name))?;
            } else {
                mknod_at(&dev, name, libc::S_IFCHR | 0o666, *major, *minor, 0, 0)?;
            }
        }
        let mut links = vec![
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
            ("ptmx", "pts/ptmx"),
        ];
        if Path::new("/proc/kcore").exists() {
            links.push(("core", "/proc/kcore"));
        }
        for (name, to) in links {
            let n = CString::new(name).unwrap_or_default();
            let t = CString::new(to).unwrap_or_default();
            // SAFETY: *at calls with a valid dirfd and NUL-terminated strings.
            unsafe { libc::unlinkat(dev.as_raw_fd(), n.as_ptr(), 0) };
            Errno::result(unsafe { libc::symlinkat(t.as_ptr(), dev.as_raw_fd(), n.as_ptr()) })
                .map_err(|e| fail("create symlink", format!("/dev/{name}"), e))?;
        }
    }
    for d in ctx
        .spec
        .linux()
        .iter()
        .flat_map(|l| l.devices().iter().flatten())
    {
        let path = d.path();
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(fail("create device", path, Errno::EINVAL));
        };
        let dir = resolve(root, parent, Create::Dir)
            .map_err(|e| fail("create device directory", parent, e))?;
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
            LinuxDeviceType::B => libc::S_IFBLK,
            LinuxDeviceType::P => libc::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(fail("create device of type 'a'", path, Errno::EINVAL));
            }
        };
        if ctx.userns {
            bind_host_device(&dir, &name.to_string_lossy(), path)?;
            continue;
        }
        let mode = kind | (d.file_mode().unwrap_or(0o666) & 0o7777);
        mknod_at(
            &dir,
            &name.to_string_lossy(),
            mode,
            d.major() as u64,
            d.minor() as u64,
            d.uid().unwrap_or(0),
            d.gid().unwrap_or(0),
        )?;
    }
    Ok(())
}

/// In a user namespace, where mknod is refused: an empty file at `name` in `dir`, with the
/// host's device node at `host` bound over it (as runc does). Reached before pivot_root, when
/// the host's /dev is still visible.
fn bind_host_device(dir: &OwnedFd, name: &str, host: &Path) -> Step {
    let n = CString::new(name).unwrap_or_default();
    // SAFETY: *at calls with a valid dirfd and a NUL-terminated single-component name; the
    // returned fd is new and ours.
    let fd = unsafe {
        libc::unlinkat(dir.as_raw_fd(), n.as_ptr(), 0);
        Errno::result(libc::openat(
            dir.as_raw_fd(),
            n.as_ptr(),
            libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            0o644,
        ))
        .map_err(|e| fail("create device mount point", name, e))?
    };
    // SAFETY: the kernel just gave us this fd.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    sys_mount(Some(&cpath(host)), &fd_path(&fd), None, libc::MS_BIND, None).map_err(|e| {
        fail(
            "bind the host's device (no mknod in a user namespace)",
            host,
            e,
        )
    })
}

fn mknod_at(
    dir: &OwnedFd,
    name: &str,
    mode: u32,
    major: u64,
    minor: u64,
    uid: u32,
    gid: u32,
) -> Step {
    let n = CString::new(name).unwrap_or_default();
    // SAFETY: *at calls with a valid dirfd and a NUL-terminated single-component name; the name
    // is looked up in a directory already resolved inside the rootfs.
    unsafe {
        libc::unlinkat(dir.as_raw_fd(), n.as_ptr(), 0);
        Errno::result(libc::mknodat(
            dir.as_raw_fd(),
            n.as_ptr(),
            mode,
            libc::makedev(major as u32, minor as u32),
        ))
        .map_err(|e| fail("mknod", name, e))?;
        Errno::result(libc::fchownat(
            dir.as_raw_fd(),
            n.as_ptr(),
            uid,
            gid,
            libc::AT_SYMLINK_NOFOLLOW,
        ))
        .map_err(|e| fail("chown device", name, e))?;
    }
    Ok(())
}

// ---- switching root -----------------------------------------------------------------------

/// pivot_root(".", ".") then detach the old root stacked on top: no directory for the old
/// root is needed in the image, and nothing of the host stays reachable.
fn pivot_root(rootfs: &Path) -> Step {
    let c = cpath(rootfs);
    // SAFETY: plain syscalls on NUL-terminated paths.
    unsafe {
        Errno::result(libc::chdir(c.as_ptr())).map_err(|e| fail("chdir", rootfs, e))?;
        Errno::result(libc::syscall(
            libc::SYS_pivot_root,
            c".".as_ptr(),
            c".".as_ptr(),
        ))
        .map_err(|e| fail("pivot_root", rootfs, e))?;
    }
    // The old root must not propagate its unmount to the host.
    sys_mount(None, c".", None, libc::MS_SLAVE | libc::MS_REC, None)
        .map_err(|e| fail("make old root a slave", rootfs, e))?;
    // SAFETY: as above.
    unsafe {
        Errno::result(libc::umount2(c".".as_ptr(), libc::MNT_DETACH))
            .map_err(|e| fail("unmount old root", rootfs, e))?;
        Errno::result(libc::chdir(c"/".as_ptr())).map_err(|e| fail("chdir", "/", e))?;
    }
    Ok(())
}

/// chroot into the rootfs. With `move_over_root` (`--no-pivot`, for ramfs roots, where
/// pivot_root is impossible) the rootfs mount is moved over `/` first.
fn chroot_into(rootfs: &Path, move_over_root: bool) -> Step {
    let c = cpath(rootfs);
    // SAFETY: plain syscalls on NUL-terminated paths.
    unsafe {
        Errno::result(libc::chdir(c.as_ptr())).map_err(|e| fail("chdir", rootfs, e))?;
    }
    if move_over_root {
        sys_mount(Some(&c), c"/", None, libc::MS_MOVE, None)
            .map_err(|e| fail("move rootfs to /", rootfs, e))?;
    }
    // SAFETY: as above.
    unsafe {
        Errno::result(libc::chroot(c".".as_ptr())).map_err(|e| fail("chroot", rootfs, e))?;
        Errno::result(libc::chdir(c"/".as_ptr())).map_err(|e| fail("chdir", "/", e))?;
    }
    Ok(())
}

/// pivot_root refuses a new root whose parent mount is shared; make that one mount private.
fn make_parent_mount_private(rootfs: &Path) -> Step {
    let Ok(f) = std::fs::File::open("/proc/self/mountinfo") else {
        return Ok(());
    };
    let Ok(infos) = <procfs::process::MountInfos as procfs::FromRead>::from_read(f) else {
        return Ok(());
    };
    let parent = rootfs.parent().unwrap_or(Path::new("/"));
    let best = infos
        .0
        .iter()
        .filter(|m| parent.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.as_os_str().len());
    if let Some(m) = best {
        let shared = m
            .opt_fields
            .iter()
            .any(|f| matches!(f, procfs::process::MountOptFields::Shared(_)));
        if shared {
            sys_mount(None, &cpath(&m.mount_point), None, libc::MS_PRIVATE, None)
                .map_err(|e| fail("make rootfs parent mount private", &m.mount_point, e))?;
        }
    }
    Ok(())
}

// ---- after pivot --------------------------------------------------------------------------

const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// Fail unless `fd` is on a filesystem of type `magic` (fstatfs).
pub(crate) fn check_fs(fd: &OwnedFd, magic: i64, what: &str, path: &str) -> Step {
    // SAFETY: fstatfs fills the struct we own; all-zero is a valid starting value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: fstatfs on our fd, writing only into `st`.
    Errno::result(unsafe { libc::fstatfs(fd.as_raw_fd(), &mut st) })
        .map_err(|e| fail("statfs", path, e))?;
    if st.f_type as i64 != magic {
        return Err(InitError {
            step: format!("check {what}"),
            path: path.into(),
            errno: 0,
            detail: format!("is not on {what} (filesystem type {:#x})", st.f_type),
        });
    }
    Ok(())
}

/// Write a sysctl through the container's own procfs, checked to be procfs, without crossing
/// a mount or following a symlink below it: a mount or link the config puts over /proc/sys
/// cannot redirect the write to another file (CVE-2025-52881, CVE-2019-19921).
fn write_sysctl(key: &str, value: &str) -> Step {
    write_proc("sysctl", &format!("sys/{}", key.replace('.', "/")), value)
}

/// Write `value` to `/proc/<rel>` through the container's procfs, checked to be procfs, with
/// no mount crossed and no link followed below it.
pub(crate) fn write_proc(what: &str, rel: &str, value: &str) -> Step {
    let path = format!("/proc/{rel}");
    let proc = open_path(
        c"/proc",
        libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
    )
    .map_err(|e| fail("open", "/proc", e))?;
    check_fs(&proc, PROC_SUPER_MAGIC, "procfs", "/proc")?;
    let fd = openat2(
        &proc,
        Path::new(rel),
        libc::O_WRONLY,
        libc::RESOLVE_BENEATH
            | libc::RESOLVE_NO_SYMLINKS
            | libc::RESOLVE_NO_MAGICLINKS
            | libc::RESOLVE_NO_XDEV,
    )
    .map_err(|e| {
        let step = format!("open {what} (on the container's procfs, no mount crossed)");
        fail(&step, &path, e)
    })?;
    check_fs(&fd, PROC_SUPER_MAGIC, "procfs", &path)?;
    nix::unistd::write(&fd, value.as_bytes())
        .map_err(|e| fail(&format!("write {what}"), &path, e))?;
    Ok(())
}

fn readonly_path(p: &str) -> Step {
    let c = CString::new(p).unwrap_or_default();
    match sys_mount(Some(&c), &c, None, libc::MS_BIND | libc::MS_REC, None) {
        Ok(()) => {}
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(fail("bind read-only path", p, e)),
    }
    let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | locked_flags(&c);
    sys_mount(None, &c, None, flags, None).map_err(|e| fail("remount read-only path", p, e))
}

/// The container's `/dev/null`, checked to be the real null device: a bind of anything else
/// over a masked path would unmask it (CVE-2025-31133).
fn real_dev_null() -> Step<OwnedFd> {
    let fd = open_path(c"/dev/null", libc::O_PATH | libc::O_NOFOLLOW)
        .map_err(|e| fail("open", "/dev/null", e))?;
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat fills the struct we own.
    Errno::result(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })
        .map_err(|e| fail("stat", "/dev/null", e))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != libc::makedev(1, 3) {
        return Err(InitError {
            step: "check /dev/null".into(),
            path: "/dev/null".into(),
            errno: 0,
            detail: "is not the null device".into(),
        });
    }
    Ok(fd)
}

fn mask_path(p: &str, null: &OwnedFd) -> Step {
    let c = CString::new(p).unwrap_or_default();
    let meta = match std::fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(_) => return Ok(()),
    };
    let r = if meta.is_dir() {
        sys_mount(Some(c"tmpfs"), &c, Some(c"tmpfs"), libc::MS_RDONLY, None)
    } else {
        sys_mount(Some(&fd_path(null)), &c, None, libc::MS_BIND, None)
    };
    match r {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(fail("mask path", p, e)),
    }
}

/// Flags a remount must keep: those the kernel locks (nosuid, nodev, noexec, atime) are
/// refused with EPERM if a remount drops them.
fn locked_flags(target: &CStr) -> u64 {
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: statvfs fills the struct we own from a NUL-terminated path.
    if unsafe { libc::statvfs(target.as_ptr(), &mut st) } != 0 {
        return 0;
    }
    let f = st.f_flag;
    let mut flags = 0;
    for (st_flag, ms_flag) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (ST_RELATIME, libc::MS_RELATIME),
    ] {
        if f & st_flag != 0 {
            flags |= ms_flag;
        }
    }
    flags
}

// ---- safe path resolution -----------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Create {
    None,
    Dir,
    File,
}

/// Open `path` (absolute or not, taken as inside the rootfs) as an O_PATH fd, resolving every
/// symlink and `..` as if `root` were `/`. Missing components are made as directories, and the
/// last one as `kind` says.
pub fn resolve(root: &OwnedFd, path: &Path, kind: Create) -> Result<OwnedFd, Errno> {
    resolve_depth(root, path, kind, 0)
}

fn resolve_depth(root: &OwnedFd, path: &Path, kind: Create, depth: u32) -> Result<OwnedFd, Errno> {
    if depth > 40 {
        return Err(Errno::ELOOP);
    }
    let rel = relative(path);
    match openat2_in_root(root, &rel) {
        Err(Errno::ENOENT) if kind != Create::None => {}
        other => return other,
    }
    let comps: Vec<&std::ffi::OsStr> = rel.iter().collect();
    let mut prefix = PathBuf::new();
    let mut dir = openat2_in_root(root, Path::new("."))?;
    for (i, c) in comps.iter().enumerate() {
        prefix.push(c);
        match openat2_in_root(root, &prefix) {
            Ok(fd) => {
                dir = fd;
                continue;
            }
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        // `dir` was resolved inside the root, and `c` is a single name, so what we make here
        // is inside the root too.
        let name = CString::new(c.as_bytes()).map_err(|_| Errno::EINVAL)?;
        let last = i + 1 == comps.len();
        // SAFETY: *at calls with a valid dirfd and a NUL-terminated name.
        let r = unsafe {
            if last && kind == Create::File {
                let fd = libc::openat(
                    dir.as_raw_fd(),
                    name.as_ptr(),
                    libc::O_CREAT
                        | libc::O_EXCL
                        | libc::O_WRONLY
                        | libc::O_CLOEXEC
                        | libc::O_NOFOLLOW,
                    0o644,
                );
                if fd >= 0 {
                    libc::close(fd);
                }
                fd
            } else {
                libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o755)
            }
        };
        match Errno::result(r) {
            Ok(_) => {}
            Err(Errno::EEXIST) => {
                // A dangling symlink: make what it points to, still inside the root (as runc
                // does), by resolving its target joined with the rest of the path.
                let Ok(target) = nix::fcntl::readlinkat(&dir, name.as_c_str()) else {
                    return Err(Errno::EEXIST);
                };
                let base = if Path::new(&target).is_absolute() {
                    PathBuf::from(&target)
                } else {
                    prefix.parent().unwrap_or(Path::new("")).join(&target)
                };
                let rest: PathBuf = comps[i + 1..].iter().collect();
                return resolve_depth(root, &base.join(rest), kind, depth + 1);
            }
            Err(e) => return Err(e),
        }
        dir = openat2_in_root(root, &prefix)?;
    }
    Ok(dir)
}

fn relative(path: &Path) -> PathBuf {
    let mut rel = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => rel.push(n),
            Component::ParentDir => rel.push(".."),
            _ => {}
        }
    }
    if rel.as_os_str().is_empty() {
        rel.push(".");
    }
    rel
}

fn openat2_in_root(root: &OwnedFd, rel: &Path) -> Result<OwnedFd, Errno> {
    openat2(
        root,
        rel,
        libc::O_PATH,
        libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    )
}

fn openat2(dir: &OwnedFd, rel: &Path, flags: libc::c_int, resolve: u64) -> Result<OwnedFd, Errno> {
    let c = CString::new(rel.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: open_how is plain integers; all-zero is its valid empty value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = resolve;
    // With RESOLVE_IN_ROOT the kernel answers EAGAIN when a rename or a mount anywhere on the
    // machine raced the walk through ".." (it cannot then vouch for the result): walk again.
    // Each try is a full, checked resolution, so retrying gives nothing away.
    let mut tries = 0;
    let fd = loop {
        // SAFETY: openat2 reads the path and the open_how we own; the fd returned is new, ours.
        match Errno::result(unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                c.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        }) {
            Err(Errno::EAGAIN) if tries < 64 => tries += 1,
            r => break r?,
        }
    };
    // SAFETY: the kernel just gave us this fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// An O_PATH fd of `name` in `dir`, not following it if it is a symlink; `flags` adds to that
/// (O_DIRECTORY: fail with ENOTDIR unless it is a directory, a symlink included).
fn openat_path(dir: &OwnedFd, name: &CStr, flags: libc::c_int) -> Result<OwnedFd, Errno> {
    // SAFETY: openat with a valid dirfd and NUL-terminated name; the fd returned is ours.
    let fd = Errno::result(unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_PATH | libc::O_CLOEXEC | libc::O_NOFOLLOW | flags,
        )
    })?;
    // SAFETY: the kernel just gave us this fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn open_dir(path: &Path) -> Result<OwnedFd, Errno> {
    open_path(&cpath(path), libc::O_PATH | libc::O_DIRECTORY)
}

fn open_path(path: &CStr, flags: libc::c_int) -> Result<OwnedFd, Errno> {
    // SAFETY: open with a NUL-terminated path; the fd returned is ours.
    let fd = Errno::result(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) })?;
    // SAFETY: the kernel just gave us this fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `/proc/self/fd/N`: mount(2) on this path acts on exactly the file the fd holds.
fn fd_path(fd: &OwnedFd) -> CString {
    CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("no NUL in a number")
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

pub(crate) fn io_errno(e: &std::io::Error) -> Errno {
    crate::namespaces::errno_of(e)
}

fn sys_mount(
    src: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: u64,
    data: Option<&CStr>,
) -> Result<(), Errno> {
    let p = |s: Option<&CStr>| s.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: mount(2) reads the NUL-terminated strings we pass (or NULL); `data` is a string,
    // as every filesystem we mount takes text options.
    Errno::result(unsafe {
        libc::mount(
            p(src),
            target.as_ptr(),
            p(fstype),
            flags as libc::c_ulong,
            p(data).cast(),
        )
    })
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_split_into_flags_propagation_and_data() {
        let o = parse_options(&strs(&[
            "nosuid", "rbind", "ro", "rslave", "mode=755", "size=1k",
        ]));
        assert_eq!(
            o.flags,
            libc::MS_NOSUID | libc::MS_BIND | libc::MS_REC | libc::MS_RDONLY
        );
        assert_eq!(o.propagation, vec![libc::MS_SLAVE | libc::MS_REC]);
        assert_eq!(o.data, strs(&["mode=755", "size=1k"]));
        // Later options win.
        let o = parse_options(&strs(&["ro", "rw", "noexec", "exec"]));
        assert_eq!(o.flags, 0);
    }

    #[test]
    fn recursive_atime_options_are_runcs() {
        let atime = |opts: &[&str]| {
            let o = parse_options(&strs(opts));
            assert_eq!(o.rec_clr & ATTR_ATIME_MASK, ATTR_ATIME_MASK, "{opts:?}");
            o.rec_set & ATTR_ATIME_MASK
        };
        // Clearing relatime (the field's zero) leaves relatime, not strictatime.
        assert_eq!(atime(&["rnorelatime"]), ATTR_RELATIME);
        assert_eq!(atime(&["rrelatime"]), ATTR_RELATIME);
        assert_eq!(atime(&["rnoatime", "rnorelatime"]), ATTR_NOATIME);
        assert_eq!(atime(&["rnoatime", "ratime"]), ATTR_RELATIME);
        assert_eq!(atime(&["rstrictatime", "ratime"]), ATTR_STRICTATIME);
        assert_eq!(atime(&["rstrictatime", "rnostrictatime"]), ATTR_RELATIME);
        assert_eq!(atime(&["rnoatime", "rstrictatime"]), ATTR_STRICTATIME);
        let o = parse_options(&strs(&["rro", "rrw", "rnosuid"]));
        assert_eq!((o.rec_set, o.rec_clr), (ATTR_NOSUID, ATTR_RDONLY));
    }

    #[test]
    fn relative_paths() {
        assert_eq!(relative(Path::new("/a/b/../c")), Path::new("a/b/../c"));
        assert_eq!(relative(Path::new("/")), Path::new("."));
    }
}
