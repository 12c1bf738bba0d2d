//! The runc-compatible command line: parses arguments, calls the library, prints what runc
//! prints, and exits as runc exits. No container logic lives here: one module per command that
//! needs more than a line (`create`/`run`, `exec`, the queries, `update`, `spec`), the option
//! tables and their parser in `args`.

mod args;
mod create;
mod exec;
mod query;
mod spec;
mod update;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cofferdam::runc_log::{Format, RuncLog};
use cofferdam::{Container, Error};

use args::{Args, parse};

const USAGE: &str = "\
usage: cofferdam [--root DIR] [--log FILE] [--log-format text|json] [--debug] [--systemd-cgroup] COMMAND [OPTIONS] ARGS

commands:
  create [-b DIR] [--pid-file F] [--console-socket S] [--no-pivot] [--no-new-keyring] [--preserve-fds N] ID
  start ID
  run [-b DIR] [-d] [--pid-file F] [--keep] [--no-pivot] [--no-new-keyring] [--preserve-fds N] ID
  state ID
  exec [-t] [-d] [-e K=V] [-u UID[:GID]] [-g GID] [--cwd DIR] [--cap CAP] [-p process.json] ID [--] COMMAND...
  kill [-a] ID [SIGNAL]
  delete [-f] ID
  pause ID | resume ID
  update [-r FILE|-] [--memory N] [--memory-swap N] [--memory-reservation N] [--cpu-share N]
         [--cpu-quota N] [--cpu-period N] [--cpu-burst N] [--cpu-rt-period N] [--cpu-rt-runtime N]
         [--cpuset-cpus L] [--cpuset-mems L] [--blkio-weight N] [--pids-limit N] ID
  events [--stats] [--interval D] ID
  ps [-f table|json] ID [PS-OPTIONS...]
  features
  list [-f table|json] [-q]
  spec [-b DIR]
";

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let (global, rest) = match parse(&argv, args::GLOBAL, true) {
        Ok(x) => x,
        Err(e) => return usage_error(&e),
    };
    if global.has("version") {
        println!(
            "cofferdam version {}\ncommit: {}\nspec: {}",
            env!("CARGO_PKG_VERSION"),
            option_env!("COFFERDAM_COMMIT").unwrap_or("unknown"),
            cofferdam::spec::OCI_VERSION
        );
        return ExitCode::SUCCESS;
    }
    let Some((cmd, rest)) = rest.split_first().filter(|_| !global.has("help")) else {
        print!("{USAGE}");
        return if global.has("help") {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    };
    let format = match global.get("log-format") {
        Some("json") => Format::Json,
        _ => Format::Text,
    };
    let log = RuncLog::install(
        global.get("log").map(Path::new),
        format,
        global.has("debug"),
    );
    let root = global
        .get("root")
        .map(PathBuf::from)
        .unwrap_or_else(cofferdam::default_root);
    // Before anything forks into a container: the binary a container could reach must not be
    // writable (CVE-2019-5736). This may re-execute the process from a sealed view of itself.
    if matches!(cmd.as_str(), "create" | "run" | "exec")
        && let Err(e) = cofferdam::exe_seal::reexec_sealed()
    {
        log.error(&e.to_string());
        return ExitCode::FAILURE;
    }
    // The driver is chosen at create and recorded: the later commands follow the state.
    match dispatch(cmd, rest, &root, global.has("systemd-cgroup")) {
        Ok(code) => code,
        Err(CliError::Usage(msg)) => usage_error(&msg),
        Err(CliError::Runtime(e)) => {
            log.error(&e.to_string());
            // runc's exec exits 255 on its own errors, keeping 1..=254 for the process's status.
            if cmd == "exec" {
                ExitCode::from(255)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// How a command fails: a usage error prints the usage (exit 1); a runtime error is logged as
/// runc logs it (`level=error msg=...`).
pub enum CliError {
    Usage(String),
    Runtime(Error),
}

impl From<Error> for CliError {
    fn from(e: Error) -> Self {
        CliError::Runtime(e)
    }
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("cofferdam: {msg}\n\n{USAGE}");
    ExitCode::FAILURE
}

/// A container's exit status as the command's (128 + signal when it was killed).
fn exit_status(status: i32) -> ExitCode {
    ExitCode::from(status.clamp(0, 255) as u8)
}

fn dispatch(
    cmd: &str,
    rest: &[String],
    root: &Path,
    systemd_cgroup: bool,
) -> Result<ExitCode, CliError> {
    // These two take everything after the id as it is (the command, ps's options).
    match cmd {
        "exec" => return exec::exec(rest, root),
        "ps" => return query::ps(rest, root),
        _ => {}
    }
    let update_table;
    let table = match cmd {
        "create" => args::CREATE,
        "run" => args::RUN,
        "kill" => args::KILL,
        "delete" => args::DELETE,
        "list" => args::LIST,
        "spec" => args::SPEC,
        "start" | "state" | "pause" | "resume" | "features" => args::NONE,
        "update" => {
            update_table = args::update();
            &update_table
        }
        "events" => args::EVENTS,
        _ => return Err(CliError::Usage(format!("unknown command {cmd:?}"))),
    };
    let (a, _) = parse(rest, table, false).map_err(|e| CliError::Usage(format!("{cmd}: {e}")))?;
    let load =
        |a: &Args| -> Result<Container, CliError> { Ok(Container::load(root, &a.one_id(cmd)?)?) };
    match cmd {
        "create" => create::create(&a, root, systemd_cgroup)?,
        "run" => return create::run(&a, root, systemd_cgroup),
        "start" => load(&a)?.start()?,
        "state" => query::state(&load(&a)?),
        "kill" => {
            let (id, sig) = match a.pos.as_slice() {
                [id] => (id, cofferdam::Signal::SIGTERM),
                [id, s] => (id, cofferdam::parse_signal(s)?),
                _ => return Err(CliError::Usage("kill: usage: kill [-a] ID [SIGNAL]".into())),
            };
            Container::load(root, id)?.kill(sig, a.has("all"))?;
        }
        "delete" => Container::delete_id(root, &a.one_id(cmd)?, a.has("force"))?,
        "list" => query::list(&a, root)?,
        "pause" => load(&a)?.pause()?,
        "resume" => load(&a)?.resume()?,
        "update" => update::update(&a, &load(&a)?)?,
        "events" => query::events(&a, &load(&a)?)?,
        "features" => query::features(),
        "spec" => spec::spec(&a)?,
        _ => unreachable!("every command of the table is handled"),
    }
    Ok(ExitCode::SUCCESS)
}
