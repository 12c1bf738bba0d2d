//! `exec`: the process is `-p process.json`, or the container's own process with the command
//! and runc's overrides applied (`-e`, `-u`, `-g`, `--cwd`, `--cap`, `-t`...), as runc builds
//! it; in the foreground the command waits for it and exits with its status.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cofferdam::oci_spec::runtime::{Capabilities, Capability, Process};
use cofferdam::{Container, ExecOptions};

use crate::args::{EXEC, parse};
use crate::{CliError, exit_status};

/// What `exec -u`/`-g` say of an id above [`cofferdam::spec::MAX_ID`].
fn id_range() -> String {
    format!("uids and gids must be in 0-{}", cofferdam::spec::MAX_ID)
}

/// `exec`: options, the id, more options, then the command (after `--` or the first word that
/// is not an option). The process is `-p FILE`, or the container's own process with the
/// command and the options applied, as runc builds it.
pub fn exec(rest: &[String], root: &Path) -> Result<ExitCode, CliError> {
    let usage = |e: String| CliError::Usage(format!("exec: {e}"));
    let (mut a, rest) = parse(rest, EXEC, true).map_err(usage)?;
    let (id, rest) = rest
        .split_first()
        .ok_or_else(|| usage("a container id is required".into()))?;
    // Options may follow the id too; the command starts at the first word that is not one
    // (or after `--`).
    let (more, command) = parse(rest, EXEC, true).map_err(usage)?;
    a.opts.extend(more.opts);
    let c = Container::load(root, id)?;

    let process: Process = match a.get("process") {
        Some(path) => {
            let data = cofferdam::spec::read_input(path.as_ref())?;
            cofferdam::spec::parse_process(&data, Path::new(path))?
        }
        None => {
            let mut p = c.process().cloned().unwrap_or_default();
            if command.is_empty() {
                return Err(usage("a command is required".into()));
            }
            p.set_args(Some(command));
            p.set_terminal(Some(a.has("tty")));
            p.set_console_size(None);
            let mut env = p.env().clone().unwrap_or_default();
            for kv in a.all("env") {
                let key = kv.split('=').next().unwrap_or(kv);
                env.retain(|e| e.split('=').next() != Some(key));
                env.push(kv.to_string());
            }
            p.set_env(Some(env));
            if let Some(cwd) = a.get("cwd") {
                p.set_cwd(cwd.into());
            }
            if let Some(u) = a.get("user") {
                let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
                // 4294967295 is -1 to setresuid, "leave unchanged": the process would stay
                // root. The library refuses it too; here the message names the flag.
                let num = |s: &str| match s.parse::<u32>() {
                    Ok(n) if n <= cofferdam::spec::MAX_ID => Ok(n),
                    Ok(_) => Err(usage(format!("--user {u:?}: {}", id_range()))),
                    Err(_) => Err(usage(format!("--user {u:?}: uid[:gid] must be numbers"))),
                };
                p.user_mut().set_uid(num(uid)?);
                p.user_mut().set_gid(num(gid)?);
            }
            let gids = a
                .all("additional-gids")
                .map(|g| match g.parse::<u32>() {
                    Ok(n) if n <= cofferdam::spec::MAX_ID => Ok(n),
                    Ok(_) => Err(usage(format!("--additional-gids {g:?}: {}", id_range()))),
                    Err(_) => Err(usage(format!("--additional-gids {g:?} is not a number"))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            if !gids.is_empty() {
                p.user_mut().set_additional_gids(Some(gids));
            }
            if a.has("no-new-privs") {
                p.set_no_new_privileges(Some(true));
            }
            if let Some(profile) = a.get("apparmor") {
                p.set_apparmor_profile(Some(profile.into()));
            }
            if let Some(label) = a.get("process-label") {
                p.set_selinux_label(Some(label.into()));
            }
            let added = a
                .all("cap")
                .map(|name| {
                    serde_json::from_value::<Capability>(serde_json::Value::String(name.into()))
                        .map_err(|_| usage(format!("--cap {name:?} is not a capability")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if !added.is_empty() {
                // As runc: added to the bounding, effective and permitted sets only.
                let mut caps = p.capabilities().clone().unwrap_or_default();
                let add = |set: &Option<Capabilities>| {
                    let mut s = set.clone().unwrap_or_default();
                    s.extend(added.iter().copied());
                    Some(s)
                };
                caps.set_bounding(add(caps.bounding()));
                caps.set_effective(add(caps.effective()));
                caps.set_permitted(add(caps.permitted()));
                p.set_capabilities(Some(caps));
            }
            p
        }
    };
    let detach = a.has("detach");
    if process.terminal() == Some(true) && detach && a.get("console-socket").is_none() {
        return Err(usage("--tty with --detach needs --console-socket".into()));
    }
    if !detach {
        cofferdam::block_forwarded_signals()?;
    }
    let preserve_fds = a.preserve_fds()?;
    let opts = ExecOptions {
        console_socket: a.get("console-socket").map(PathBuf::from),
        own_terminal: !detach,
        pid_file: a.get("pid-file").map(PathBuf::from),
        preserve_fds,
        ignore_paused: a.has("ignore-paused"),
        sub_cgroups: a.all("cgroup").map(String::from).collect(),
        stdio: None,
    };
    let mut p = c.exec(&process, &opts)?;
    if detach {
        return Ok(ExitCode::SUCCESS);
    }
    let status = cofferdam::forward_until_exit(p.pid, p.take_terminal())?;
    Ok(exit_status(status))
}
