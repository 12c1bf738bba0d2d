//! Where a container's state lives between CLI calls: `<root>/<id>/state.json` (written
//! atomically), `<root>/<id>/exec.fifo` (present from create until start) and
//! `<root>/<id>/lock` (the per-container lock). The status is never stored: it is derived from
//! the init process and the fifo each time it is asked for.
//!
//! The state holds the config's process (its `env`: passwords, tokens), so all of it is the
//! owner's alone: the root and every state dir are 0700, every file in them 0600.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cgroups::Cgroup;
use crate::error::{Error, Result, io_err};

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";
pub const LOCK_FILE: &str = "lock";

/// The mode of the state root and of every state dir: the owner's alone.
pub const DIR_MODE: u32 = 0o700;
/// The mode of every file in a state dir (state.json and its temp file, lock, exec.fifo).
pub const FILE_MODE: u32 = 0o600;

/// A container's status, as the OCI spec names them (plus `paused` from runc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// `create` is under way (or its creator died before committing: then `stopped`).
    Creating,
    /// Created, waiting for `start`.
    Created,
    /// The container process runs.
    Running,
    /// Frozen by `pause`.
    Paused,
    /// The init is gone.
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What `create` records for the later calls.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Persisted {
    pub id: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// The init's pid in the runtime's pid namespace; 0 until `create` has forked it.
    pub pid: i32,
    /// The init's start time (field 22 of `/proc/PID/stat`): a pid that was reused by another
    /// process has another start time, so we never mistake it for our init.
    pub pid_start: u64,
    /// `create`'s own pid and start time: a `creating` container whose creator died is stopped.
    pub creator_pid: i32,
    pub creator_start: u64,
    /// Set once the init finished its setup and `create` succeeded. Until then the container
    /// is `creating` (or `stopped`, if its creator died).
    #[serde(default)]
    pub committed: bool,
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    #[serde(default)]
    pub cgroup: Cgroup,
    /// The config's hooks: `start` runs poststart, `delete` runs poststop.
    #[serde(default)]
    pub hooks: Option<oci_spec::runtime::Hooks>,
    /// The config's process: what `exec` starts from (user, env, cwd, capabilities...).
    #[serde(default)]
    pub process: Option<oci_spec::runtime::Process>,
    /// The resources in force: the config's, with what `update` changed since.
    #[serde(default)]
    pub resources: Option<oci_spec::runtime::LinuxResources>,
    /// The config's seccomp profile: `exec` puts it on the new process too.
    #[serde(default)]
    pub seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
    /// Without a mount namespace of its own: the id of the mount that was at the rootfs path
    /// before `create` bound the rootfs onto itself in the runtime's mount namespace. `delete`
    /// detaches what is stacked above it (see `host_rootfs`); `exec` chroots into the rootfs.
    #[serde(default)]
    pub rootfs_mount_below: Option<u64>,
    /// The config's personality and memory policy: `exec`'d processes take them too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personality: Option<oci_spec::runtime::LinuxPersonality>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_policy: Option<oci_spec::runtime::LinuxMemoryPolicy>,
}

/// The state JSON printed by `state`, field for field what runc prints.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ContainerState {
    /// The runtime-spec version of this state.
    pub oci_version: String,
    /// The container's id.
    pub id: String,
    /// The init's pid in the runtime's pid namespace (0 once stopped).
    pub pid: i32,
    /// The status.
    pub status: Status,
    /// The bundle directory (absolute).
    pub bundle: PathBuf,
    /// The root filesystem (absolute).
    pub rootfs: PathBuf,
    /// When it was created, RFC 3339 in UTC with nanoseconds.
    pub created: String,
    /// The name of the user who created it (runc's `owner`).
    pub owner: String,
    /// The config's annotations.
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
}

/// Make the state root (and missing parents, as runc does) 0700, or check the one there: it must
/// be ours, and is tightened to 0700 if it is more open (as roots made before this rule were:
/// 0755). A root that another user owns is refused, whatever its mode: its owner can read
/// every container's state, and can rewrite it (the pids `kill` signals, the hooks `delete`
/// runs) for our next command to act on. The check is on an fd of the directory we then use.
pub fn prepare_root(root: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(root)
        .map_err(io_err("create state root", root))?;
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(root)
        .map_err(io_err("open state root", root))?;
    let meta = dir.metadata().map_err(io_err("stat state root", root))?;
    let me = nix::unistd::geteuid().as_raw();
    let owner = meta.uid();
    if owner != me {
        return Err(Error::StateRoot {
            path: root.to_path_buf(),
            why: format!(
                "is owned by uid {owner}, not by this user (uid {me}): its owner could read \
                 the containers' secrets and rewrite their state; use a root of your own (--root)"
            ),
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode != DIR_MODE {
        log::debug!(
            "state root {}: mode {mode:o} tightened to 700",
            root.display()
        );
        dir.set_permissions(std::fs::Permissions::from_mode(DIR_MODE))
            .map_err(io_err("chmod 700 state root", root))?;
    }
    Ok(())
}

/// Make a private state dir (0700; the umask can only narrow it).
pub fn make_dir(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .mode(DIR_MODE)
        .create(dir)
        .map_err(io_err("create state dir", dir))
}

/// Create (or truncate) a file of a state dir, 0600.
pub fn create_file(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(io_err("create", path))
}

pub fn state_dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

/// Where `create` (pid `creator`) prepares the state dir of `id` before renaming it into place.
/// Ids never start with a dot, so these names never collide with a container's.
pub fn tmp_dir(root: &Path, id: &str, creator: i32) -> PathBuf {
    root.join(format!(".{id}.creating.{creator}"))
}

/// Remove what creates of `id` that were killed before claiming the id left in `root`: their
/// private state dirs, when their creator is gone.
pub fn remove_debris(root: &Path, id: &str) {
    let prefix = format!(".{id}.creating.");
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(&prefix)
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if proc_stat(pid).is_none() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

pub fn read(dir: &Path, id: &str) -> Result<Persisted> {
    let path = dir.join(STATE_FILE);
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotFound(id.to_string()));
        }
        Err(e) => return Err(io_err("read", &path)(e)),
    };
    serde_json::from_slice(&data).map_err(|e| Error::MalformedConfig {
        path,
        line: e.line(),
        column: e.column(),
        msg: e.to_string(),
    })
}

/// Write the state file so that a reader sees the old or the new one, never half of one.
pub fn write(dir: &Path, state: &Persisted) -> Result<()> {
    let tmp = dir.join(".state.json.tmp");
    let path = dir.join(STATE_FILE);
    let data = serde_json::to_vec(state).expect("state serializes");
    let mut f = create_file(&tmp)?;
    f.write_all(&data).map_err(io_err("write", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(io_err("rename", &path))
}

/// The per-container lock, held while it lives. POSIX record locks belong to the process and
/// are not inherited by `fork`, so the init never holds its creator's lock. (They do not
/// exclude threads of one process from each other.) `state` takes no lock: the state file is
/// replaced atomically, and hooks run during `create` may read it.
pub struct Lock(#[allow(dead_code)] std::fs::File);

/// Wait for and take the lock of the container whose state dir is `dir` (`create` made the
/// lock file). A container deleted meanwhile is [`Error::NotFound`].
pub fn lock(dir: &Path, id: &str) -> Result<Lock> {
    let path = dir.join(LOCK_FILE);
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotFound(id.to_string()));
        }
        Err(e) => return Err(io_err("open", &path)(e)),
    };
    // SAFETY: a zeroed flock is valid; we fill in the fields F_SETLKW reads.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    loop {
        // SAFETY: fcntl reads the flock struct we own, on our own fd.
        let r = unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&f), libc::F_SETLKW, &fl) };
        match nix::errno::Errno::result(r) {
            Ok(_) => return Ok(Lock(f)),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(crate::error::sys_err("lock state dir")(e)),
        }
    }
}

/// A process we started, identified by pid *and* start time.
#[derive(Debug, Clone, Copy)]
pub struct Proc {
    pub pid: i32,
    pub start: u64,
}

impl Proc {
    /// Whether this very process is alive (not exited, not a zombie, pid not reused).
    pub fn alive(&self) -> bool {
        match proc_stat(self.pid) {
            Some((start, state)) => start == self.start && state != 'Z' && state != 'X',
            None => false,
        }
    }

    pub fn of(pid: i32) -> Option<Proc> {
        proc_stat(pid).map(|(start, _)| Proc { pid, start })
    }
}

/// (start time, state letter) of a pid, from `/proc/PID/stat`.
pub fn proc_stat(pid: i32) -> Option<(u64, char)> {
    if pid <= 0 {
        return None;
    }
    let f = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    let stat = <procfs::process::Stat as procfs::FromRead>::from_read(f).ok()?;
    Some((stat.starttime, stat.state))
}

impl Persisted {
    pub fn init(&self) -> Proc {
        Proc {
            pid: self.pid,
            start: self.pid_start,
        }
    }

    pub fn status(&self, dir: &Path) -> Status {
        if !self.committed {
            let creator = Proc {
                pid: self.creator_pid,
                start: self.creator_start,
            };
            return if creator.alive() {
                Status::Creating
            } else {
                Status::Stopped
            };
        }
        if !self.init().alive() {
            return Status::Stopped;
        }
        if self.cgroup.frozen() {
            Status::Paused
        } else if dir.join(EXEC_FIFO).exists() {
            Status::Created
        } else {
            Status::Running
        }
    }

    /// The state JSON handed to hooks on stdin.
    pub fn hook_json(&self, status: Status) -> Vec<u8> {
        serde_json::to_vec(&self.to_oci(status)).expect("state serializes")
    }

    pub fn to_oci(&self, status: Status) -> ContainerState {
        ContainerState {
            oci_version: crate::spec::OCI_VERSION.to_string(),
            id: self.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status,
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            owner: self.owner.clone(),
            annotations: self.annotations.clone(),
        }
    }
}

/// Now, as RFC 3339 with nanoseconds in UTC (what runc prints as `created`).
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The name of a uid as the host's `/etc/passwd` has it (runc's `owner`), else the number.
pub fn owner_name(uid: u32) -> String {
    if let Ok(text) = std::fs::read_to_string("/etc/passwd") {
        for line in text.lines() {
            let mut f = line.split(':');
            if let (Some(name), _, Some(u)) = (f.next(), f.next(), f.next())
                && u.parse() == Ok(uid)
            {
                return name.to_string();
            }
        }
    }
    uid.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(
            rfc3339(1_795_305_600 + 3661, 0),
            "2026-11-22T01:01:01.000000000Z"
        );
    }

    #[test]
    fn own_process_is_alive_and_a_wrong_start_time_is_not() {
        let me = Proc::of(std::process::id() as i32).unwrap();
        assert!(me.alive());
        assert!(
            !Proc {
                start: me.start + 1,
                ..me
            }
            .alive()
        );
        assert!(!Proc { pid: 0, start: 0 }.alive());
    }
}
