//! # cofferdam
//!
//! An OCI container runtime as a library. A container is made from an OCI bundle (a
//! `config.json` plus a root filesystem) or from an [`oci_spec::runtime::Spec`] built in code,
//! and driven through the lifecycle of the runtime spec: [`ContainerBuilder::create`],
//! [`Container::start`], [`Container::state`], [`Container::kill`], [`Container::delete`].
//!
//! ```no_run
//! use cofferdam::{Container, ContainerBuilder, Signal};
//!
//! let c = ContainerBuilder::new("demo")
//!     .state_root("/run/cofferdam")
//!     .bundle("/path/to/bundle")
//!     .create()?;                 // the init is set up and waits
//! c.start()?;                     // the container process runs
//! println!("{}", serde_json::to_string(&c.state()).unwrap());
//! let c = Container::load("/run/cofferdam", "demo")?;
//! c.kill(Signal::SIGKILL, false)?;
//! c.wait()?;
//! c.delete(false)?;
//! # Ok::<(), cofferdam::Error>(())
//! ```
//!
//! There is no daemon and no re-exec: `create` forks the init, which sets up namespaces,
//! mounts, the user and capabilities, then blocks until `start`. See ARCHITECTURE.md.
//!
//! Creating a container needs root (user namespaces are not supported yet). `create` forks the
//! calling process; call it from a thread that may fork (any thread, with glibc).
//!
//! Until their `execve`, the processes `create` and `exec` fork into a container run the
//! calling program's binary. A program that makes containers should first call
//! [`exe_seal::reexec_sealed`], as the `cofferdam` binary does, so that no container can get a
//! writable handle on that binary (CVE-2019-5736).

pub mod cgroups;
mod container;
mod error;
pub mod exe_seal;
pub mod features;
pub mod hooks;
mod host_rootfs;
pub mod mount;
pub mod namespaces;
mod netdev;
mod process;
pub mod seccomp;
pub mod signal;
pub mod spec;
pub mod state;
pub mod terminal;

pub use cgroups::Stats;
pub use container::{
    Container, ContainerBuilder, CreateOptions, DEFAULT_ROOT, Event, ExecOptions, ExecProcess,
    default_root, exit_code, validate_id,
};
pub use error::{Error, InitError, Result};
pub use nix::sys::signal::Signal;
pub use oci_spec;
pub use process::StdioFds;
pub use spec::{default_spec, default_spec_json};
pub use state::{ContainerState, Status};
