//! `create` and `run`: runc's options as [`CreateOptions`]; a foreground `run` waits for the
//! container, forwarding signals (and its terminal), then deletes it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cofferdam::{ContainerBuilder, CreateOptions, Error};

use crate::args::Args;
use crate::{CliError, exit_status};

/// `own_terminal`: only a foreground `run` can hold the container's terminal itself.
fn builder(
    a: &Args,
    id: &str,
    root: &Path,
    own_terminal: bool,
    systemd_cgroup: bool,
) -> Result<ContainerBuilder, CliError> {
    let preserve_fds = a.preserve_fds()?;
    Ok(ContainerBuilder::new(id)
        .state_root(root)
        .bundle(a.get("bundle").unwrap_or("."))
        .options(CreateOptions {
            no_pivot: a.has("no-pivot"),
            no_new_keyring: a.has("no-new-keyring"),
            preserve_fds,
            pid_file: a.get("pid-file").map(PathBuf::from),
            console_socket: a.get("console-socket").map(PathBuf::from),
            own_terminal,
            listen_fds: listen_fds(),
            systemd_cgroup,
            stdio: None,
        }))
}

/// `create`: the container is set up and waits for `start`.
pub fn create(a: &Args, root: &Path, systemd_cgroup: bool) -> Result<(), CliError> {
    let id = a.one_id("create")?;
    builder(a, &id, root, false, systemd_cgroup)?.create()?;
    Ok(())
}

/// `run`: create and start; in the foreground also wait, forwarding signals, then delete
/// (unless `--keep`) and exit with the container's status.
pub fn run(a: &Args, root: &Path, systemd_cgroup: bool) -> Result<ExitCode, CliError> {
    let id = a.one_id("run")?;
    let detach = a.has("detach");
    if !detach {
        cofferdam::block_forwarded_signals()?;
    }
    let mut c = builder(a, &id, root, !detach, systemd_cgroup)?.create()?;
    if let Err(e) = c.start() {
        let _ = c.delete(true);
        return Err(e.into());
    }
    if detach {
        return Ok(ExitCode::SUCCESS);
    }
    let status = cofferdam::forward_until_exit(c.pid(), c.take_terminal())?;
    if !a.has("keep") {
        match c.delete(true) {
            // As with runc's run: a failing poststop hook (logged by delete) does not hide the
            // container's status.
            Ok(()) | Err(Error::Hook { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(exit_status(status))
}

/// systemd socket activation (sd_listen_fds): LISTEN_FDS fds from 3 on, if LISTEN_PID is us.
fn listen_fds() -> u32 {
    let ours = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    match std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        Some(n) if ours => n,
        _ => 0,
    }
}
