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
//! mounts, the user and capabilities, then blocks until `start`. The repository's
//! ARCHITECTURE.md tells how.
//!
//! ## What it needs
//!
//! Run as root, containers may have new user namespaces (`linux.uidMappings`, idmapped
//! mounts) as well as every other namespace; joining a user namespace by path is not
//! supported yet. Run by an unprivileged user, a container needs a user namespace that maps
//! that user (as [`spec::rootless_spec_json`] writes) and gets no cgroup, so
//! `linux.resources` is refused, and `exec` into its own pid namespace is not done yet.
//! `create` forks the calling process: call it from a thread that may fork (any thread, with
//! glibc).
//!
//! Until their `execve`, the processes `create` and `exec` fork into a container run the
//! calling program's binary. A program that makes containers should first call
//! [`exe_seal::reexec_sealed`], as the `cofferdam` binary does, so that no container can get a
//! writable handle on that binary (CVE-2019-5736).
//!
//! ## The API
//!
//! - The lifecycle: [`ContainerBuilder`] (with [`CreateOptions`]) makes a [`Container`];
//!   [`Container::load`] and [`Container::list`] find the ones a state root holds. A container
//!   is started, signalled ([`Signal`], [`parse_signal`]), paused, resumed, updated
//!   ([`update`] reads runc's flags and JSON), asked for its [`ContainerState`] and
//!   [`Status`], its [`Stats`] and [`Event`]s, entered with [`Container::exec`]
//!   ([`ExecOptions`], [`ExecProcess`]), waited for and deleted.
//! - Configs: [`default_spec`] and the [`spec`] module (load, parse and check a
//!   `config.json` or a `process.json` as `create` does, with line and column on errors);
//!   [`oci_spec`] is re-exported, so its types are the ones the API takes.
//! - Terminals and foreground processes: [`receive_console_master`] (the console-socket end
//!   of a container's pty), [`block_forwarded_signals`] and [`forward_until_exit`] (what a
//!   foreground `run` or `exec` does).
//! - Around the runtime: [`exe_seal`], [`features`] (the OCI features document), [`units`]
//!   (runc's sizes and durations), [`runc_log`] (runc's log format for the `log` records).
//! - Errors: every call returns [`Result`]; [`Error`] says what failed on which path.
//!
//! Namespaces, mounts, cgroups, seccomp, hooks and the state directory's layout are not
//! public: they are driven by the spec, and stay free to change.
//!
//! ## Examples
//!
//! The crate's `examples/` directory (in the repository and in the published crate) has one
//! program per idea of how containers work, each short enough to read in one sitting and
//! opening with what to look at in its output. Each runs as root with
//! `cargo run --example <name>`:
//!
//! | example | the idea |
//! |---|---|
//! | `examples/busybox.rs` | the smallest embedding: a busybox rootfs built on the fly, one command run |
//! | `examples/isolation.rs` | the same command on the host and in a container, one namespace added at a time: pid 1, hostname, interfaces, mounts |
//! | `examples/limits.rs` | cgroup limits: memory (an OOM kill), CPUs, a CPU quota measured, a pids limit stopping a fork bomb |
//! | `examples/rootfs.rs` | chroot against pivot_root, and why chroot alone can be escaped |
//! | `examples/layers.rs` | image layers stacked with overlayfs: copy-on-write, whiteouts, layers shared by two containers |
//! | `examples/volume.rs` | a bind-mounted volume that outlives its container; a read-only one |
//! | `examples/exec.rs` | a second process joining a running container's namespaces and cgroup |
//! | `examples/lifecycle.rs` | create, start, pause, resume, kill, delete, with the OCI state at each step |
//! | `examples/run_image.rs` | an OCI image layout (a directory or `.tar`) unpacked and run from its config |
#![warn(missing_docs)]

mod cgroups;
mod container;
mod error;
pub mod exe_seal;
pub mod features;
mod hooks;
mod host_rootfs;
#[cfg(feature = "internals")]
pub mod internals;
mod mount;
mod namespaces;
mod netdev;
mod process;
pub mod runc_log;
mod seccomp;
mod signal;
pub mod spec;
mod state;
pub mod stats;
mod terminal;
pub mod units;
pub mod update;

pub use cgroups::OomNotifier;
pub use container::{
    Container, ContainerBuilder, CreateOptions, DEFAULT_ROOT, Event, ExecOptions, ExecProcess,
    default_root, exit_code, validate_id,
};
pub use error::{Error, InitError, Result};
pub use nix::sys::signal::Signal;
pub use oci_spec;
pub use process::StdioFds;
pub use signal::parse as parse_signal;
pub use signal::{block_forwarded as block_forwarded_signals, forward_until_exit};
pub use spec::{default_spec, default_spec_json};
pub use state::{ContainerState, Status};
pub use stats::Stats;
pub use terminal::receive_master as receive_console_master;
