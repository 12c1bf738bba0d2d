//! runc's options: the table of each command, and a parser (lexopt) that takes them in every
//! form runc (Go's flag package) does: `--name value`, `--name=value`, `-n value` and the
//! single-dash `-name`, anywhere among the arguments (`create ID --bundle DIR`).

use crate::CliError;

/// One option: its spellings (the first is its name in [`Args`]) and whether it takes a value.
pub struct Opt {
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

pub const GLOBAL: &[Opt] = &[
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
pub const CREATE: &[Opt] = &[
    val(&["bundle", "b"]),
    val(&["pid-file"]),
    val(&["console-socket"]),
    flag(&["no-pivot"]),
    flag(&["no-new-keyring"]),
    val(&["preserve-fds"]),
];
pub const RUN: &[Opt] = &[
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
pub const KILL: &[Opt] = &[flag(&["all", "a"])];
pub const EXEC: &[Opt] = &[
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
pub const DELETE: &[Opt] = &[flag(&["force", "f"])];
pub const LIST: &[Opt] = &[val(&["format", "f"]), flag(&["quiet", "q"])];
pub const SPEC: &[Opt] = &[val(&["bundle", "b"]), flag(&["rootless"])];
/// `-r FILE`, and the per-field flags: the library's own list ([`cofferdam::update::FLAGS`]),
/// which also parses them, so that the two cannot drift apart.
pub fn update() -> Vec<Opt> {
    std::iter::once(val(&["resources", "r"]))
        .chain(
            cofferdam::update::FLAGS
                .iter()
                .map(|f| val(std::slice::from_ref(f))),
        )
        .collect()
}
pub const EVENTS: &[Opt] = &[flag(&["stats"]), val(&["interval"])];
pub const PS: &[Opt] = &[val(&["format", "f"])];
pub const NONE: &[Opt] = &[];

/// Parsed options (by first spelling, in order) and positional arguments.
#[derive(Default)]
pub struct Args {
    pub opts: Vec<(&'static str, String)>,
    pub pos: Vec<String>,
}

impl Args {
    /// The option's last value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.opts
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.opts.iter().any(|(n, _)| *n == name)
    }

    /// Every value of a repeatable option (`exec -e`, `--cap`, `--cgroup`).
    pub fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.opts
            .iter()
            .filter(move |(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The one container id of a command.
    pub fn one_id(&self, cmd: &str) -> Result<String, CliError> {
        match self.pos.as_slice() {
            [id] => Ok(id.clone()),
            [] => Err(CliError::Usage(format!(
                "{cmd}: a container id is required"
            ))),
            _ => Err(CliError::Usage(format!(
                "{cmd}: expected one container id, got {:?}",
                self.pos
            ))),
        }
    }

    /// `--preserve-fds N` (create, run, exec), 0 when absent.
    pub fn preserve_fds(&self) -> Result<u32, CliError> {
        match self.get("preserve-fds") {
            Some(n) => n
                .parse()
                .map_err(|_| CliError::Usage(format!("--preserve-fds: {n:?} is not a number"))),
            None => Ok(0),
        }
    }
}

/// Parse `table`'s options anywhere among `args`. With `stop_at_command`, parsing ends at the
/// first positional (the command, or exec's id and command, ps's id and ps(1)'s options): it
/// and everything after it are returned as they are. A `--` ends the options.
pub fn parse(
    args: &[String],
    table: &[Opt],
    stop_at_command: bool,
) -> Result<(Args, Vec<String>), String> {
    use lexopt::Arg;
    let text = |v: std::ffi::OsString| {
        v.into_string()
            .map_err(|v| format!("{v:?} is not valid UTF-8"))
    };
    let mut out = Args::default();
    let mut p = lexopt::Parser::from_args(args);
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        // (as typed, for errors; the name; a value attached with '=')
        let (spelled, name, inline) = match arg {
            Arg::Value(v) => {
                let v = text(v)?;
                if stop_at_command {
                    let mut rest = vec![v];
                    for a in p.raw_args().map_err(|e| e.to_string())? {
                        rest.push(text(a)?);
                    }
                    return Ok((out, rest));
                }
                out.pos.push(v);
                continue;
            }
            Arg::Long(name) => {
                let name = name.to_string();
                let inline = p.optional_value().map(text).transpose()?;
                (format!("--{name}"), name, inline)
            }
            Arg::Short(c) => {
                // Go's single-dash long form (`-bundle DIR`, `-debug=false`) comes as a short
                // option with the rest of the word attached; a short one may have `=value`.
                let attached = p.optional_value().map(text).transpose()?;
                let word = format!("{c}{}", attached.as_deref().unwrap_or(""));
                match word
                    .split_once('=')
                    .map_or((word.as_str(), None), |(n, v)| (n, Some(v)))
                {
                    (n, v) if n.len() > 1 && table.iter().any(|o| o.names.contains(&n)) => {
                        (format!("-{word}"), n.to_string(), v.map(String::from))
                    }
                    _ => (format!("-{word}"), c.to_string(), attached),
                }
            }
        };
        let opt = table
            .iter()
            .find(|o| o.names.contains(&name.as_str()))
            .ok_or_else(|| format!("unknown option {spelled}"))?;
        let value = if opt.value {
            match inline {
                Some(v) => v,
                None => p
                    .value()
                    .map_err(|_| format!("option {spelled} needs a value"))
                    .and_then(text)?,
            }
        } else {
            match inline.as_deref() {
                None | Some("true") => "true".into(),
                Some("false") => continue,
                Some(v) => return Err(format!("option {spelled} takes no value, got {v:?}")),
            }
        };
        out.opts.push((opt.names[0], value));
    }
    Ok((out, Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_spelling_runc_takes() {
        let (a, rest) = parse(
            &strings(&[
                "ID",
                "--bundle",
                "/b",
                "--pid-file=/p",
                "-no-pivot",
                "-preserve-fds=2",
                "--no-new-keyring=false",
            ]),
            CREATE,
            false,
        )
        .unwrap();
        assert!(rest.is_empty());
        assert_eq!(a.pos, ["ID"]);
        assert_eq!(a.get("bundle"), Some("/b"));
        assert_eq!(a.get("pid-file"), Some("/p"));
        assert!(a.has("no-pivot"));
        assert_eq!(a.get("preserve-fds"), Some("2"));
        assert!(!a.has("no-new-keyring"));
        let (a, _) = parse(
            &strings(&["-b", "/x", "-bundle", "/y", "ID"]),
            CREATE,
            false,
        )
        .unwrap();
        assert_eq!(a.all("bundle").collect::<Vec<_>>(), ["/x", "/y"]);
        let (a, _) = parse(&strings(&["--cpu-quota", "-1", "ID"]), &update(), false).unwrap();
        assert_eq!(a.get("cpu-quota"), Some("-1"));
    }

    #[test]
    fn the_command_and_what_follows_it_are_left_alone() {
        let (g, rest) = parse(
            &strings(&[
                "--root", "/r", "-debug", "exec", "-t", "ID", "sh", "-c", "x",
            ]),
            GLOBAL,
            true,
        )
        .unwrap();
        assert_eq!(g.get("root"), Some("/r"));
        assert!(g.has("debug"));
        assert_eq!(rest, ["exec", "-t", "ID", "sh", "-c", "x"]);
        let (e, rest) = parse(&rest[1..], EXEC, true).unwrap();
        assert!(e.has("tty"));
        assert_eq!(rest, ["ID", "sh", "-c", "x"]);
        let (e, rest) = parse(&strings(&["-e", "A=B", "--", "-x"]), EXEC, true).unwrap();
        assert_eq!(e.get("env"), Some("A=B"));
        assert_eq!(rest, ["-x"]);
    }

    #[test]
    fn mistakes_are_named() {
        let err = |a: &[&str], t| parse(&strings(a), t, false).err().unwrap();
        assert_eq!(err(&["--bogus"], CREATE), "unknown option --bogus");
        assert_eq!(err(&["-dt"], RUN), "option -dt takes no value, got \"t\"");
        assert_eq!(err(&["--bundle"], CREATE), "option --bundle needs a value");
        assert_eq!(
            err(&["--detach=maybe"], RUN),
            "option --detach takes no value, got \"maybe\""
        );
    }
}
