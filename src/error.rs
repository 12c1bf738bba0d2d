//! Typed errors. Every variant says what failed and on which path or id, so that the message a
//! user reads (through the CLI, or `Display` when embedding) is enough to find the problem.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Everything the library can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid container id {id:?}: {why}")]
    InvalidId { id: String, why: &'static str },

    #[error("container {0:?} already exists")]
    AlreadyExists(String),

    #[error("container {0:?} does not exist")]
    NotFound(String),

    #[error("cannot {op} container {id:?}: it is {status}")]
    BadStatus {
        op: &'static str,
        id: String,
        status: String,
    },

    /// runc's words ("container not running"): engines look for them in the runtime's error
    /// (containerd's shim takes a `kill` that fails with them for a process already gone).
    #[error("cannot {op} container {id:?}: container not running")]
    NotRunning { op: &'static str, id: String },

    #[error("cannot read {path}: {source}")]
    ReadConfig {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error(
        "cannot read {path}: it is larger than {mib} MiB, the limit for an input file",
        mib = .limit >> 20
    )]
    InputTooLarge { path: PathBuf, limit: u64 },

    #[error("malformed {path} at line {line}, column {column}: {msg}")]
    MalformedConfig {
        path: PathBuf,
        line: usize,
        column: usize,
        msg: String,
    },

    #[error("invalid config: {0}")]
    InvalidConfig(String),

    #[error("unsupported ociVersion {0:?}: cofferdam supports 1.x")]
    UnsupportedVersion(String),

    #[error("rootfs {path} {why}")]
    Rootfs { path: PathBuf, why: &'static str },

    #[error("mount source {source_path} for {destination} does not exist")]
    MountSourceMissing {
        source_path: PathBuf,
        destination: PathBuf,
    },

    #[error("state root {path} {why}")]
    StateRoot { path: PathBuf, why: String },

    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{op}: {errno}")]
    Sys {
        op: &'static str,
        errno: nix::errno::Errno,
    },

    #[error("cgroup {path}: {op}: {source}")]
    Cgroup {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("cgroup {path}: cannot write {value:?}: {source}")]
    CgroupWrite {
        path: PathBuf,
        value: String,
        source: std::io::Error,
    },

    #[error("systemd: cannot {op} {unit}: {why}")]
    Systemd {
        op: &'static str,
        unit: String,
        why: String,
    },

    #[error("container init failed: {0}")]
    Init(InitError),

    #[error("exec in the container failed: {0}")]
    Exec(InitError),

    #[error("{point} hook #{index} ({path}) failed: {why}")]
    Hook {
        point: &'static str,
        index: usize,
        path: PathBuf,
        why: String,
    },

    #[error("invalid signal {0:?}")]
    InvalidSignal(String),

    #[error("{0}")]
    Unsupported(String),
}

/// A failure inside the container's init process, sent to `create` over the sync socket.
/// It names the step, the path it was working on (if any) and the errno.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InitError {
    pub step: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub errno: i32,
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
