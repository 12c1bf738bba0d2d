//! Typed errors. Every variant says what failed and on which path or id, so that the message a
//! user reads (through the CLI, or `Display` when embedding) is enough to find the problem.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Everything the library can fail with. New variants may come in minor versions: match with a
/// `_` arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A container id that cannot name a state directory (empty, `..`, a `/`...).
    #[error("invalid container id {id:?}: {why}")]
    InvalidId {
        /// The id given.
        id: String,
        /// What is wrong with it.
        why: &'static str,
    },

    /// `create` of an id the state root already holds.
    #[error("container {0:?} already exists")]
    AlreadyExists(String),

    /// No container of this id in the state root.
    #[error("container {0:?} does not exist")]
    NotFound(String),

    /// The operation is not allowed in the container's status (`start` of a running one...).
    #[error("cannot {op} container {id:?}: it is {status}")]
    BadStatus {
        /// The operation refused.
        op: &'static str,
        /// The container.
        id: String,
        /// Its status at the time.
        status: String,
    },

    /// runc's words ("container not running"): engines look for them in the runtime's error
    /// (containerd's shim takes a `kill` that fails with them for a process already gone).
    #[error("cannot {op} container {id:?}: container not running")]
    NotRunning {
        /// The operation refused.
        op: &'static str,
        /// The container.
        id: String,
    },

    /// An input file (`config.json`, a `process.json`, resources) could not be read.
    #[error("cannot read {path}: {source}")]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },

    /// An input file is larger than [`spec::MAX_INPUT_BYTES`](crate::spec::MAX_INPUT_BYTES).
    #[error(
        "cannot read {path}: it is larger than {mib} MiB, the limit for an input file",
        mib = .limit >> 20
    )]
    InputTooLarge {
        /// The file.
        path: PathBuf,
        /// The limit, in bytes.
        limit: u64,
    },

    /// JSON that does not parse as what it should be, with the position of the error.
    #[error("malformed {path} at line {line}, column {column}: {msg}")]
    MalformedConfig {
        /// The file (or `stdin`).
        path: PathBuf,
        /// The line of the error, from 1.
        line: usize,
        /// The column of the error, from 1.
        column: usize,
        /// What is wrong there.
        msg: String,
    },

    /// A config that parses but cannot be run as it is (the message says which field).
    #[error("invalid config: {0}")]
    InvalidConfig(String),

    /// An `ociVersion` other than 1.x.
    #[error("unsupported ociVersion {0:?}: cofferdam supports 1.x")]
    UnsupportedVersion(String),

    /// The root filesystem is missing or unusable.
    #[error("rootfs {path} {why}")]
    Rootfs {
        /// The rootfs path.
        path: PathBuf,
        /// What is wrong with it.
        why: &'static str,
    },

    /// A bind mount whose source does not exist.
    #[error("mount source {source_path} for {destination} does not exist")]
    MountSourceMissing {
        /// The mount's source on the host.
        source_path: PathBuf,
        /// Its destination in the container.
        destination: PathBuf,
    },

    /// The state root cannot be used (another user owns it, it is not a directory...).
    #[error("state root {path} {why}")]
    StateRoot {
        /// The state root.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },

    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },

    /// A system call failed.
    #[error("{op}: {errno}")]
    Sys {
        /// What was being done.
        op: &'static str,
        /// The errno.
        errno: nix::errno::Errno,
    },

    /// A cgroup operation failed.
    #[error("cgroup {path}: {op}: {source}")]
    Cgroup {
        /// What was being done.
        op: &'static str,
        /// The cgroup directory or file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },

    /// The kernel refused a value for a cgroup file (a limit out of range, a missing device).
    #[error("cgroup {path}: cannot write {value:?}: {source}")]
    CgroupWrite {
        /// The cgroup file.
        path: PathBuf,
        /// The value refused.
        value: String,
        /// The error.
        source: std::io::Error,
    },

    /// systemd (the systemd cgroup driver) refused or failed an operation on a unit.
    #[error("systemd: cannot {op} {unit}: {why}")]
    Systemd {
        /// The operation.
        op: &'static str,
        /// The unit.
        unit: String,
        /// systemd's answer, or what failed in talking to it.
        why: String,
    },

    /// The container's init failed while setting up, before the container process ran.
    #[error("container init failed: {0}")]
    Init(InitError),

    /// The process of an `exec` failed before it ran its program.
    #[error("exec in the container failed: {0}")]
    Exec(InitError),

    /// A hook failed (or timed out).
    #[error("{point} hook #{index} ({path}) failed: {why}")]
    Hook {
        /// The lifecycle point (`prestart`, `poststop`...).
        point: &'static str,
        /// Its index among that point's hooks, from 0.
        index: usize,
        /// The hook's program.
        path: PathBuf,
        /// How it failed.
        why: String,
    },

    /// A signal name or number that is no signal.
    #[error("invalid signal {0:?}")]
    InvalidSignal(String),

    /// A value of a named option that does not parse (an `update` flag, a size, a duration).
    #[error("{name} {value:?} is not valid")]
    InvalidValue {
        /// The option, as the user spelled it (`--memory`).
        name: String,
        /// The value given.
        value: String,
    },

    /// Something this runtime or this host does not do (the message says what).
    #[error("{0}")]
    Unsupported(String),
}

/// A failure inside the container's init process, sent to `create` over the sync socket.
/// It names the step, the path it was working on (if any) and the errno.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InitError {
    /// The step of the setup (`mount`, `pivot_root`, `exec`...).
    pub step: String,
    /// The path it was working on, or empty.
    #[serde(default)]
    pub path: String,
    /// The errno, or 0.
    #[serde(default)]
    pub errno: i32,
    /// More about the failure, or empty.
    #[serde(default)]
    pub detail: String,
}

impl std::fmt::Display for InitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.step)?;
        if !self.path.is_empty() {
            write!(f, " {}", self.path)?;
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        if self.errno != 0 {
            write!(f, ": {}", nix::errno::Errno::from_raw(self.errno).desc())?;
        }
        Ok(())
    }
}

/// The library's result: [`Error`] by default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shorthand for the common "operation on a path failed" error.
pub(crate) fn io_err(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { op, path, source }
}

pub(crate) fn sys_err(op: &'static str) -> impl FnOnce(nix::errno::Errno) -> Error {
    move |errno| Error::Sys { op, errno }
}
