//! The runc-compatible command line: parses arguments, calls the library, prints what runc
//! prints, and exits as runc exits. No container logic lives here.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use cofferdam::{Container, ContainerBuilder, CreateOptions, Error, Signal};

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

/// One option: its spellings and whether it takes a value.
struct Opt {
    names: &'static [&'static str],
    value: bool,
}

const fn flag(names: &'static [&'static str]) -> Opt {
    Opt {
        names,
        value: false,
    }
}
const fn val(names: &'static [&'static str]) -> Opt {
    Opt { names, value: true }
}

const GLOBAL: &[Opt] = &[
    val(&["root"]),
    val(&["log"]),
    val(&["log-format"]),
    flag(&["debug"]),
    flag(&["systemd-cgroup"]),
    val(&["rootless"]),
    val(&["criu"]),
    flag(&["version", "v"]),
    flag(&["help", "h"]),
];
const CREATE: &[Opt] = &[
    val(&["bundle", "b"]),
    val(&["pid-file"]),
    val(&["console-socket"]),
    flag(&["no-pivot"]),
    flag(&["no-new-keyring"]),
    val(&["preserve-fds"]),
];
const RUN: &[Opt] = &[
    val(&["bundle", "b"]),
    val(&["pid-file"]),
    val(&["console-socket"]),
    flag(&["no-pivot"]),
    flag(&["no-new-keyring"]),
    val(&["preserve-fds"]),
    flag(&["detach", "d"]),
    flag(&["keep"]),
    flag(&["no-subreaper"]),
];
const KILL: &[Opt] = &[flag(&["all", "a"])];
const EXEC: &[Opt] = &[
    val(&["console-socket"]),
    val(&["cwd"]),
    val(&["env", "e"]),
    flag(&["tty", "t"]),
    val(&["user", "u"]),
    val(&["additional-gids", "g"]),
    val(&["process", "p"]),
    flag(&["detach", "d"]),
    val(&["pid-file"]),
    val(&["process-label"]),
    val(&["apparmor"]),
    flag(&["no-new-privs"]),
    val(&["cap", "c"]),
    val(&["preserve-fds"]),
    flag(&["ignore-paused"]),
    val(&["cgroup"]),
];
const DELETE: &[Opt] = &[flag(&["force", "f"])];
const LIST: &[Opt] = &[val(&["format", "f"]), flag(&["quiet", "q"])];
const SPEC: &[Opt] = &[val(&["bundle", "b"]), flag(&["rootless"])];
const UPDATE: &[Opt] = &[
    val(&["resources", "r"]),
    val(&["memory"]),
    val(&["memory-swap"]),
    val(&["memory-reservation"]),
    val(&["kernel-memory"]),
    val(&["kernel-memory-tcp"]),
    val(&["cpu-share"]),
    val(&["cpu-quota"]),
    val(&["cpu-period"]),
    val(&["cpu-burst"]),
    val(&["cpu-rt-period"]),
    val(&["cpu-rt-runtime"]),
    val(&["cpu-idle"]),
    val(&["cpuset-cpus"]),
    val(&["cpuset-mems"]),
    val(&["blkio-weight"]),
    val(&["pids-limit"]),
    val(&["l3-cache-schema"]),
    val(&["mem-bw-schema"]),
];
const EVENTS: &[Opt] = &[flag(&["stats"]), val(&["interval"])];
const PS: &[Opt] = &[val(&["format", "f"])];
const NONE: &[Opt] = &[];

/// Parsed options (by first spelling) and positional arguments.
#[derive(Default)]
struct Args {
    opts: Vec<(&'static str, String)>,
    pos: Vec<String>,
}

impl Args {
    fn get(&self, name: &str) -> Option<&str> {
        self.opts
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
    fn has(&self, name: &str) -> bool {
        self.opts.iter().any(|(n, _)| *n == name)
    }
}

/// Parse options anywhere among the arguments (runc accepts `create ID --bundle DIR`), in the
/// forms `--name value`, `--name=value`, `-n value` and Go's single-dash `-name`. With
/// `stop_at_command`, parsing ends at the first positional (the command).
fn parse(args: &[String], table: &[Opt], stop_at_command: bool) -> Result<(Args, usize), String> {
    let mut out = Args::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            out.pos.extend(args[i + 1..].iter().cloned());
            return Ok((out, args.len()));
        }
        if !a.starts_with('-') || a == "-" {
            if stop_at_command {
                return Ok((out, i));
            }
            out.pos.push(a.clone());
            i += 1;
            continue;
        }
        let body = a.trim_start_matches('-');
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let opt = table
            .iter()
            .find(|o| o.names.contains(&name))
            .ok_or_else(|| format!("unknown option {a}"))?;
        let value = if opt.value {
            match inline {
                Some(v) => v,
                None => {
                    i += 1;
                    args.get(i)
                        .cloned()
                        .ok_or_else(|| format!("option {a} needs a value"))?
                }
            }
        } else {
            match inline.as_deref() {
                None | Some("true") => "true".into(),
                Some("false") => {
                    i += 1;
                    continue;
                }
                Some(v) => return Err(format!("option {a} takes no value, got {v:?}")),
            }
        };
        out.opts.push((opt.names[0], value));
        i += 1;
    }
    Ok((out, i))
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let (global, cmd_at) = match parse(&argv, GLOBAL, true) {
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
    if global.has("help") || cmd_at >= argv.len() {
        print!("{USAGE}");
        return if global.has("help") {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let log = Log::install(
        global.get("log"),
        global.get("log-format") == Some("json"),
        global.has("debug"),
    );
    let root = global
        .get("root")
        .map(PathBuf::from)
        .unwrap_or_else(cofferdam::default_root);
    let cmd = argv[cmd_at].as_str();
    let rest = &argv[cmd_at + 1..];
    // Before anything forks into a container: the binary a container could reach must not be
    // writable (CVE-2019-5736). This may re-execute the process from a sealed view of itself.
    if matches!(cmd, "create" | "run" | "exec")
        && let Err(e) = cofferdam::exe_seal::reexec_sealed()
    {
        log.error(&e.to_string());
        return ExitCode::FAILURE;
    }
    // The driver is chosen at create and recorded: the later commands follow the state.
    let result = dispatch(cmd, rest, &root, global.has("systemd-cgroup"));
    match result {
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

enum CliError {
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

fn one_id(a: &Args, cmd: &str) -> Result<String, CliError> {
    match a.pos.as_slice() {
        [id] => Ok(id.clone()),
        [] => Err(CliError::Usage(format!(
            "{cmd}: a container id is required"
        ))),
        _ => Err(CliError::Usage(format!(
            "{cmd}: expected one container id, got {:?}",
            a.pos
        ))),
    }
}

fn table_for(cmd: &str) -> Option<&'static [Opt]> {
    Some(match cmd {
        "create" => CREATE,
        "run" => RUN,
        "kill" => KILL,
        "delete" => DELETE,
        "list" => LIST,
        "spec" => SPEC,
        "start" | "state" | "pause" | "resume" | "features" => NONE,
        "update" => UPDATE,
        "events" => EVENTS,
        _ => return None,
    })
}

fn dispatch(
    cmd: &str,
    rest: &[String],
    root: &std::path::Path,
    systemd_cgroup: bool,
) -> Result<ExitCode, CliError> {
    if cmd == "exec" {
        return exec(rest, root);
    }
    if cmd == "ps" {
        return ps(rest, root);
    }
    let table =
        table_for(cmd).ok_or_else(|| CliError::Usage(format!("unknown command {cmd:?}")))?;
    let (a, _) = parse(rest, table, false).map_err(|e| CliError::Usage(format!("{cmd}: {e}")))?;
    match cmd {
        "create" => {
            let id = one_id(&a, cmd)?;
            builder(&a, &id, root, false, systemd_cgroup)?.create()?;
        }
        "run" => return run(&a, root, systemd_cgroup),
        "start" => Container::load(root, &one_id(&a, cmd)?)?.start()?,
        "state" => {
            let c = Container::load(root, &one_id(&a, cmd)?)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&c.state()).expect("state serializes")
            );
        }
        "kill" => {
            let (id, sig) = match a.pos.as_slice() {
                [id] => (id, Signal::SIGTERM),
                [id, s] => (id, cofferdam::signal::parse(s)?),
                _ => return Err(CliError::Usage("kill: usage: kill [-a] ID [SIGNAL]".into())),
            };
            Container::load(root, id)?.kill(sig, a.has("all"))?;
        }
        "delete" => {
            Container::delete_id(root, &one_id(&a, cmd)?, a.has("force"))?;
        }
        "list" => list(&a, root)?,
        "pause" => Container::load(root, &one_id(&a, cmd)?)?.pause()?,
        "resume" => Container::load(root, &one_id(&a, cmd)?)?.resume()?,
        "update" => {
            let c = Container::load(root, &one_id(&a, cmd)?)?;
            c.update(&update_resources(&a)?)?;
        }
        "events" => events(&a, root)?,
        "features" => println!(
            "{}",
            serde_json::to_string_pretty(&cofferdam::features::features())
                .expect("features serialize")
        ),
        "spec" => {
            let dir = PathBuf::from(a.get("bundle").unwrap_or("."));
            let path = dir.join("config.json");
            if path.exists() {
                return Err(Error::Unsupported(format!(
                    "{}: file exists, remove it first",
                    path.display()
                ))
                .into());
            }
            let text = if a.has("rootless") {
                let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
                cofferdam::spec::rootless_spec_json(uid.as_raw(), gid.as_raw())
            } else {
                cofferdam::default_spec_json()
            };
            std::fs::write(&path, text + "\n").map_err(|source| Error::Io {
                op: "write",
                path,
                source,
            })?;
        }
        _ => unreachable!("table_for knows the commands"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `own_terminal`: only a foreground `run` can hold the container's terminal itself.
fn builder(
    a: &Args,
    id: &str,
    root: &std::path::Path,
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

/// `run`: create and start; in the foreground also wait, forwarding signals, then delete
/// (unless `--keep`) and exit with the container's status.
fn run(a: &Args, root: &std::path::Path, systemd_cgroup: bool) -> Result<ExitCode, CliError> {
    let id = one_id(a, "run")?;
    let detach = a.has("detach");
    if !detach {
        cofferdam::signal::block_forwarded()?;
    }
    let mut c = builder(a, &id, root, !detach, systemd_cgroup)?.create()?;
    if let Err(e) = c.start() {
        let _ = c.delete(true);
        return Err(e.into());
    }
    if detach {
        return Ok(ExitCode::SUCCESS);
    }
    let status = cofferdam::signal::forward_until_exit(c.pid(), c.take_terminal())?;
    if !a.has("keep") {
        match c.delete(true) {
            // As with runc's run: a failing poststop hook (logged by delete) does not hide the
            // container's status.
            Ok(()) | Err(Error::Hook { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(ExitCode::from(status.clamp(0, 255) as u8))
}

impl Args {
    /// `--preserve-fds N` (create, run, exec), 0 when absent.
    fn preserve_fds(&self) -> Result<u32, CliError> {
        match self.get("preserve-fds") {
            Some(n) => n
                .parse()
                .map_err(|_| CliError::Usage(format!("--preserve-fds: {n:?} is not a number"))),
            None => Ok(0),
        }
    }

    fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.opts
            .iter()
            .filter(move |(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What `exec -u`/`-g` say of an id above [`cofferdam::spec::MAX_ID`].
fn id_range() -> String {
    format!("uids and gids must be in 0-{}", cofferdam::spec::MAX_ID)
}

/// `exec`: options, the id, more options, then the command (after `--` or the first word that
/// is not an option). The process is `-p FILE`, or the container's own process with the
/// command and the options applied, as runc builds it.
fn exec(rest: &[String], root: &std::path::Path) -> Result<ExitCode, CliError> {
    use cofferdam::oci_spec::runtime::{Capability, Process};
    let usage = |e: String| CliError::Usage(format!("exec: {e}"));
    let (mut a, i) = parse(rest, EXEC, true).map_err(usage)?;
    let id = rest
        .get(i)
        .ok_or_else(|| usage("a container id is required".into()))?;
    let (more, j) = parse(&rest[i + 1..], EXEC, true).map_err(usage)?;
    a.opts.extend(more.opts);
    let mut command = more.pos;
    command.extend(rest[i + 1 + j..].iter().cloned());
    let c = Container::load(root, id)?;

    let process: Process = match a.get("process") {
        Some(path) => {
            let data = cofferdam::spec::read_input(path.as_ref())?;
            cofferdam::spec::parse_process(&data, std::path::Path::new(path))?
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
                let add = |set: &Option<cofferdam::oci_spec::runtime::Capabilities>| {
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
        cofferdam::signal::block_forwarded()?;
    }
    let preserve_fds = a.preserve_fds()?;
    let opts = cofferdam::ExecOptions {
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
    let status = cofferdam::signal::forward_until_exit(p.pid, p.take_terminal())?;
    Ok(ExitCode::from(status.clamp(0, 255) as u8))
}

fn list(a: &Args, root: &std::path::Path) -> Result<(), CliError> {
    let containers = Container::list(root)?;
    let mut out = std::io::stdout().lock();
    if a.has("quiet") {
        for c in &containers {
            let _ = writeln!(out, "{}", c.id());
        }
        return Ok(());
    }
    match a.get("format").unwrap_or("table") {
        "json" => {
            let states: Vec<_> = containers.iter().map(Container::state).collect();
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string(&states).expect("state serializes")
            );
        }
        "table" => {
            let mut rows =
                vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
            for c in &containers {
                let s = c.state();
                rows.push([
                    s.id,
                    s.pid.to_string(),
                    s.status.to_string(),
                    s.bundle.display().to_string(),
                    s.created,
                    s.owner,
                ]);
            }
            // runc's tabwriter: columns at least 12 wide, 3 spaces of padding.
            let widths: Vec<usize> = (0..6)
                .map(|i| {
                    rows.iter()
                        .map(|r| r[i].len() + 3)
                        .max()
                        .unwrap_or(0)
                        .max(12)
                })
                .collect();
            for r in rows {
                let mut line = String::new();
                for (i, cell) in r.iter().enumerate() {
                    if i == 5 {
                        line.push_str(cell);
                    } else {
                        line.push_str(&format!("{cell:<w$}", w = widths[i]));
                    }
                }
                let _ = writeln!(out, "{}", line.trim_end());
            }
        }
        f => return Err(CliError::Usage(format!("list: invalid format {f:?}"))),
    }
    Ok(())
}

/// `--log FILE` / `--log-format text|json`: records in runc's (logrus's) shape, which
/// containerd and conmon read back for the last error. Without `--log` they go to stderr.
/// Warnings and errors always; debug records with `--debug`.
struct Log {
    file: Option<std::sync::Mutex<std::fs::File>>,
    json: bool,
    level: log::LevelFilter,
}

impl Log {
    /// Install the logger for the library's `log` records and return a handle for the CLI's
    /// own final error.
    fn install(path: Option<&str>, json: bool, debug: bool) -> &'static Log {
        let file = path.and_then(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .ok()
        });
        let level = if debug {
            log::LevelFilter::Debug
        } else {
            log::LevelFilter::Warn
        };
        let me: &'static Log = Box::leak(Box::new(Log {
            file: file.map(std::sync::Mutex::new),
            json,
            level,
        }));
        if log::set_logger(me).is_ok() {
            log::set_max_level(level);
        }
        me
    }

    fn write(&self, level: log::Level, msg: &str) {
        let level = match level {
            log::Level::Error => "error",
            log::Level::Warn => "warning",
            log::Level::Info => "info",
            _ => "debug",
        };
        let time = cofferdam::state::now_rfc3339();
        let line = if self.json {
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
        } else {
            format!("time=\"{time}\" level={level} msg={msg:?}")
        };
        match &self.file {
            Some(f) => {
                let _ = writeln!(f.lock().unwrap_or_else(|e| e.into_inner()), "{line}");
            }
            None => eprintln!("{line}"),
        }
    }

    /// The command's error, as runc reports it: an `error` record in the log; when the log is
    /// a file, the plain message on stderr too. Without `--log` the record goes to stderr, so
    /// what callers read there says `level=error` (engines and suites look for the word).
    fn error(&self, msg: &str) {
        self.write(log::Level::Error, msg);
        if self.file.is_some() {
            eprintln!("cofferdam: error: {msg}");
        }
    }
}

impl log::Log for Log {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= self.level
    }

    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            self.write(r.level(), &r.args().to_string());
        }
    }

    fn flush(&self) {}
}

/// `update`'s resources: the JSON of `-r FILE` (or stdin with `-`), else runc's per-field flags.
fn update_resources(a: &Args) -> Result<cofferdam::oci_spec::runtime::LinuxResources, CliError> {
    use cofferdam::oci_spec::runtime::{
        LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources,
    };
    if let Some(file) = a.get("resources") {
        let data = if file == "-" {
            cofferdam::spec::read_bounded(std::io::stdin(), "stdin".as_ref())?
        } else {
            cofferdam::spec::read_input(file.as_ref())?
        };
        return serde_json::from_slice(&data).map_err(|e| {
            Error::MalformedConfig {
                path: file.into(),
                line: e.line(),
                column: e.column(),
                msg: e.to_string(),
            }
            .into()
        });
    }
    let bad = |name: &str, v: &str| CliError::Usage(format!("update: --{name} {v:?} is not valid"));
    let num = |name: &str| -> Result<Option<i64>, CliError> {
        a.get(name)
            .map(|v| v.parse::<i64>().map_err(|_| bad(name, v)))
            .transpose()
    };
    let unum = |name: &str| -> Result<Option<u64>, CliError> {
        a.get(name)
            .map(|v| v.parse::<u64>().map_err(|_| bad(name, v)))
            .transpose()
    };
    let bytes = |name: &str| -> Result<Option<i64>, CliError> {
        a.get(name)
            .map(|v| ram_in_bytes(v).ok_or_else(|| bad(name, v)))
            .transpose()
    };
    for unsupported in ["l3-cache-schema", "mem-bw-schema"] {
        if a.has(unsupported) {
            return Err(Error::Unsupported(format!(
                "update --{unsupported}: Intel RDT is not supported"
            ))
            .into());
        }
    }
    let mut r = LinuxResources::default();
    let mut mem = LinuxMemory::default();
    let mut any_mem = false;
    for (name, set) in [
        (
            "memory",
            LinuxMemory::set_limit as fn(&mut LinuxMemory, Option<i64>) -> &mut LinuxMemory,
        ),
        ("memory-swap", LinuxMemory::set_swap),
        ("memory-reservation", LinuxMemory::set_reservation),
        ("kernel-memory", LinuxMemory::set_kernel),
        ("kernel-memory-tcp", LinuxMemory::set_kernel_tcp),
    ] {
        if let Some(v) = bytes(name)? {
            set(&mut mem, Some(v));
            any_mem = true;
        }
    }
    if any_mem {
        r.set_memory(Some(mem));
    }
    let mut cpu = LinuxCpu::default();
    let mut any_cpu = false;
    if let Some(v) = unum("cpu-share")? {
        cpu.set_shares(Some(v));
        any_cpu = true;
    }
    if let Some(v) = num("cpu-quota")? {
        cpu.set_quota(Some(v));
        any_cpu = true;
    }
    if let Some(v) = unum("cpu-period")? {
        cpu.set_period(Some(v));
        any_cpu = true;
    }
    if let Some(v) = unum("cpu-burst")? {
        cpu.set_burst(Some(v));
        any_cpu = true;
    }
    if let Some(v) = unum("cpu-rt-period")? {
        cpu.set_realtime_period(Some(v));
        any_cpu = true;
    }
    if let Some(v) = num("cpu-rt-runtime")? {
        cpu.set_realtime_runtime(Some(v));
        any_cpu = true;
    }
    if let Some(v) = num("cpu-idle")? {
        cpu.set_idle(Some(v));
        any_cpu = true;
    }
    if let Some(v) = a.get("cpuset-cpus") {
        cpu.set_cpus(Some(v.into()));
        any_cpu = true;
    }
    if let Some(v) = a.get("cpuset-mems") {
        cpu.set_mems(Some(v.into()));
        any_cpu = true;
    }
    if any_cpu {
        r.set_cpu(Some(cpu));
    }
    if let Some(v) = a.get("blkio-weight") {
        let w = v.parse::<u16>().map_err(|_| bad("blkio-weight", v))?;
        let mut b = LinuxBlockIo::default();
        b.set_weight(Some(w));
        r.set_block_io(Some(b));
    }
    if let Some(v) = num("pids-limit")? {
        let mut p = LinuxPids::default();
        p.set_limit(v);
        r.set_pids(Some(p));
    }
    Ok(r)
}

/// A size as runc's flags take it: bytes, or a number with k, m, g, t or p (powers of 1024,
/// with or without a trailing b, any case); -1 for unlimited.
fn ram_in_bytes(s: &str) -> Option<i64> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Some(-1);
    }
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, shift) = match t.chars().last()? {
        'k' => (&t[..t.len() - 1], 10),
        'm' => (&t[..t.len() - 1], 20),
        'g' => (&t[..t.len() - 1], 30),
        't' => (&t[..t.len() - 1], 40),
        'p' => (&t[..t.len() - 1], 50),
        _ => (t, 0),
    };
    let n: f64 = num.trim().parse().ok().filter(|n: &f64| *n >= 0.0)?;
    Some((n * (1u64 << shift) as f64) as i64)
}

/// `events`: one stats event with `--stats`, else a stream (stats every `--interval`, default
/// 5s, and OOM events) until the container stops.
fn events(a: &Args, root: &std::path::Path) -> Result<(), CliError> {
    let c = Container::load(root, &one_id(a, "events")?)?;
    let print = |e: &cofferdam::Event| {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, e)?;
        out.write_all(b"\n")?;
        out.flush()
    };
    if a.has("stats") {
        let e = cofferdam::Event {
            kind: "stats",
            id: c.id().to_string(),
            data: Some(c.stats()?),
        };
        print(&e).map_err(|source| Error::Io {
            op: "write",
            path: "stdout".into(),
            source,
        })?;
        return Ok(());
    }
    let interval = match a.get("interval") {
        Some(d) => parse_duration(d).ok_or_else(|| {
            CliError::Usage(format!(
                "events: --interval {d:?} is not a duration like 5s or 500ms"
            ))
        })?,
        None => std::time::Duration::from_secs(5),
    };
    c.events(interval, print)?;
    Ok(())
}

/// A Go-style duration: a number with ns, us, ms, s, m or h (`1m30s` included).
fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let value: f64 = rest[..n].parse().ok()?;
        let unit_len = rest[n..]
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len() - n);
        let scale = match &rest[n..n + unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[n + unit_len..];
    }
    (total > 0.0).then(|| std::time::Duration::from_secs_f64(total))
}

/// `ps`: with `-f json` the container's pids as a JSON array; else the host's `ps` (with the
/// given options, `-ef` by default) filtered to the container's processes, as runc does.
fn ps(rest: &[String], root: &std::path::Path) -> Result<ExitCode, CliError> {
    let usage = |e: String| CliError::Usage(format!("ps: {e}"));
    let (a, i) = parse(rest, PS, true).map_err(usage)?;
    let id = rest
        .get(i)
        .ok_or_else(|| usage("a container id is required".into()))?;
    // Everything after the id belongs to ps(1).
    let mut ps_args: Vec<String> = rest[i + 1..].to_vec();
    if ps_args.first().is_some_and(|a| a == "--") {
        ps_args.remove(0);
    }
    let format = a.get("format").unwrap_or("table").to_string();
    let pids = Container::load(root, id)?.processes()?;
    match format.as_str() {
        "json" => {
            println!("{}", serde_json::to_string(&pids).expect("pids serialize"));
            return Ok(ExitCode::SUCCESS);
        }
        "table" => {}
        f => return Err(usage(format!("unknown format {f:?} (table or json)"))),
    }
    if ps_args.is_empty() {
        ps_args.push("-ef".into());
    }
    let out = std::process::Command::new("ps")
        .args(&ps_args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|source| Error::Io {
            op: "run",
            path: "ps".into(),
            source,
        })?;
    if !out.status.success() {
        return Err(Error::Unsupported(format!(
            "ps {}: {}",
            ps_args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
        .into());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| {
            Error::Unsupported(format!(
                "ps {}: its output has no PID column",
                ps_args.join(" ")
            ))
        })?;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{header}");
    for l in lines {
        let pid = l
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            let _ = writeln!(stdout, "{l}");
        }
    }
    Ok(ExitCode::SUCCESS)
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
