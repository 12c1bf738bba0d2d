//! The commands that only read: `state`, `list`, `ps`, `events`, `features`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use cofferdam::{Container, Error, Event};

use crate::CliError;
use crate::args::{Args, PS, parse};

/// `state`: the OCI state JSON, indented as runc prints it.
pub fn state(c: &Container) {
    println!(
        "{}",
        serde_json::to_string_pretty(&c.state()).expect("state serializes")
    );
}

/// `features`: the OCI features document.
pub fn features() {
    println!(
        "{}",
        serde_json::to_string_pretty(&cofferdam::features::features()).expect("features serialize")
    );
}

/// `events`: one stats event with `--stats`, else a stream (stats every `--interval`, default
/// 5s, and OOM events) until the container stops. One JSON object a line, runc's shape.
pub fn events(a: &Args, c: &Container) -> Result<(), CliError> {
    let print = |e: &Event| {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, e)?;
        out.write_all(b"\n")?;
        out.flush()
    };
    if a.has("stats") {
        let e = Event {
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
        Some(d) => cofferdam::units::parse_duration(d).ok_or_else(|| {
            CliError::Usage(format!(
                "events: --interval {d:?} is not a duration like 5s or 500ms"
            ))
        })?,
        None => Duration::from_secs(5),
    };
    c.events(interval, print)?;
    Ok(())
}

/// `list`: runc's table (or `-f json`, or `-q` for the ids).
pub fn list(a: &Args, root: &Path) -> Result<(), CliError> {
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

/// `ps`: with `-f json` the container's pids as a JSON array; else the host's `ps` (with the
/// given options, `-ef` by default) filtered to the container's processes, as runc does.
pub fn ps(rest: &[String], root: &Path) -> Result<ExitCode, CliError> {
    let usage = |e: String| CliError::Usage(format!("ps: {e}"));
    let (a, rest) = parse(rest, PS, true).map_err(usage)?;
    let (id, rest) = rest
        .split_first()
        .ok_or_else(|| usage("a container id is required".into()))?;
    // Everything after the id belongs to ps(1).
    let mut ps_args: Vec<String> = rest.to_vec();
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
