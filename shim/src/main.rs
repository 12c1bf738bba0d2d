//! `containerd-shim-cofferdam-v2`: containerd's shim v2 task API served by the cofferdam
//! library, one process per pod (or per task outside Kubernetes).
//!
//! containerd runs this binary three ways (the shim protocol): `start` (spawn the daemon, or
//! find the pod's running one, and print its socket address), `delete` (clean up after a
//! daemon that is gone), and with no action, as the daemon that serves the task API over
//! ttrpc. The protocol's plumbing (flags, socket, ttrpc server, event publisher) is the
//! `containerd-shim` crate's; every container operation is a call into `cofferdam`, with no
//! runtime binary executed. See ARCHITECTURE.md, "The containerd shim".

mod events;
mod io;
mod metrics;
mod oom;
mod reaper;
mod rootfs;
mod service;
mod tasks;

use containerd_shim as shim;

/// containerd's name of the runtime: `runtime_type` in its config, `--runtime` of `ctr run`.
const RUNTIME_ID: &str = "io.containerd.cofferdam.v2";

fn main() {
    let args: Vec<_> = std::env::args_os().collect();
    let serve = shim::parse(&args[1..]).is_ok_and(|f| f.action.is_empty() && !f.socket.is_empty());
    if serve {
        // The daemon forks container inits and exec'd processes, which run this binary until
        // their execve: it must run from a read-only view of itself first (CVE-2019-5736),
        // which re-executes it, while it still has one thread.
        if let Err(e) = cofferdam::exe_seal::reexec_sealed() {
            eprintln!("{RUNTIME_ID}: {e}");
            std::process::exit(1);
        }
        // One malloc arena for every thread: the shim's threads mostly wait, and an arena
        // each (glibc's default) costs resident pages per thread for nothing.
        // SAFETY: mallopt only sets an allocator parameter, before any other thread exists.
        #[cfg(target_env = "gnu")]
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1)
        };
        // A session of its own: signals to containerd's process group (a Ctrl-C, a stop of
        // its unit) do not reach the shim, whose tasks outlive containerd.
        let _ = nix::unistd::setsid();
    }
    shim::run::<service::Service>(
        RUNTIME_ID,
        Some(shim::Config {
            // The shim reaps its children itself (reaper.rs): the crate's reaper would take
            // the exit status of every child, including those the library waits for.
            no_reaper: true,
            ..Default::default()
        }),
    );
}
