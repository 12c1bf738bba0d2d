//! `hooks`: programs run at the lifecycle points the spec names, with the container's state
//! JSON on stdin, the hook's own `args` (`args[0]` is `argv[0]`) and `env` (nothing inherited),
//! and an optional `timeout` in seconds.
//!
//! | hook            | run by                  | when                                     |
//! |-----------------|-------------------------|------------------------------------------|
//! | prestart        | `create`                | after the mounts, before pivot_root      |
//! | createRuntime   | `create`                | right after prestart                     |
//! | createContainer | the init                | same moment, in the container namespaces |
//! | startContainer  | the init                | after `start`, before execve             |
//! | poststart       | `start`                 | once the process is released             |
//! | poststop        | `delete`                | after the container is gone              |
//!
//! A failing hook before the container process runs fails the operation. After it, as runc
//! does: a failing poststart hook fails `start`, which stops the container; a failing poststop
//! hook fails `delete` once the container is gone and the other poststop hooks have run (the
//! spec wants those to go on as if it had succeeded). startContainer hooks without an `env`
//! get the container process's environment, as runc gives them.

use std::ffi::CString;
use std::io::{Read, Seek, Write};
use std::os::fd::FromRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

use crate::error::{Error, Result};

/// Run `hooks` in order, stopping at the first failure. `point` names them in errors.
pub fn run(point: &'static str, hooks: &[Hook], state_json: &[u8]) -> Result<()> {
    run_with_env(point, hooks, state_json, &[])
}

/// As [`run`], with the environment a hook without its own `env` gets.
pub fn run_with_env(
    point: &'static str,
    hooks: &[Hook],
    state_json: &[u8],
    default_env: &[CString],
) -> Result<()> {
    for (i, h) in hooks.iter().enumerate() {
        run_one(h, state_json, default_env).map_err(|why| hook_error(point, i, h, why))?;
    }
    Ok(())
}

/// Run every hook even when one fails (poststop): each failure is logged, and the first one
/// is returned.
pub fn run_all(point: &'static str, hooks: &[Hook], state_json: &[u8]) -> Result<()> {
    let mut first = None;
    for (i, h) in hooks.iter().enumerate() {
        if let Err(why) = run_one(h, state_json, &[]) {
            let e = hook_error(point, i, h, why);
            log::warn!("{e}");
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

fn hook_error(point: &'static str, index: usize, h: &Hook, why: String) -> Error {
    Error::Hook {
        point,
        index,
        path: h.path().clone(),
        why,
    }
}

fn run_one(
    h: &Hook,
    state_json: &[u8],
    default_env: &[CString],
) -> std::result::Result<(), String> {
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(h.path());
    if let Some(argv0) = args.first() {
        cmd.arg0(argv0);
    }
    cmd.args(args.iter().skip(1)).env_clear();
    let own: Vec<&[u8]> = h.env().iter().flatten().map(|e| e.as_bytes()).collect();
    let env = if own.is_empty() {
        default_env.iter().map(|e| e.as_bytes()).collect()
    } else {
        own
    };
    for kv in env {
        if let Some(eq) = kv.iter().position(|&b| b == b'=') {
            cmd.env(
                std::ffi::OsStr::from_bytes(&kv[..eq]),
                std::ffi::OsStr::from_bytes(&kv[eq + 1..]),
            );
        }
    }
    // Output goes to one anonymous file: no pipe to drain while we wait, and it is quoted in
    // the error when the hook fails.
    let out = output_file().map_err(|e| format!("cannot make an output file: {e}"))?;
    cmd.stdin(Stdio::piped())
        .stdout(out.try_clone().map_err(|e| e.to_string())?)
        .stderr(out.try_clone().map_err(|e| e.to_string())?);
    let mut child = cmd.spawn().map_err(|e| format!("cannot run: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine: ignore EPIPE.
        let _ = stdin.write_all(state_json);
    }
    let deadline = h
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    let mut pause = Duration::from_micros(200);
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break s;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out after {}s", h.timeout().unwrap_or(0)));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    };
    if status.success() {
        return Ok(());
    }
    let mut text = String::new();
    let mut out = out;
    let _ = out.rewind();
    let _ = out.take(4096).read_to_string(&mut text);
    Err(format!(
        "{status}{}{}",
        if text.is_empty() { "" } else { ": " },
        text.trim_end()
    ))
}

fn output_file() -> std::io::Result<std::fs::File> {
    // SAFETY: memfd_create reads the NUL-terminated name; the fd returned is new and ours.
    let fd = unsafe { libc::memfd_create(c"cofferdam-hook".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this fd.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}
