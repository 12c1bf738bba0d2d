//! A [`log`] backend that writes runc's log records (logrus's text or JSON shape), which
//! containerd, conmon and the OCI validation suite read back for a runtime's last error. The
//! library reports warnings and progress through the `log` crate; a program that stands in
//! for runc installs this, as the `cofferdam` binary does for `--log` and `--log-format`.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

/// The shape of each record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// `time="…" level=error msg="…"`, logrus's text format (runc's default).
    #[default]
    Text,
    /// `{"level":"error","msg":"…","time":"…"}`, one object a line (`--log-format json`).
    Json,
}

/// The installed logger: to a file (appended to), or to stderr. Warnings and errors are
/// always written, debug records only when asked for.
#[derive(Debug)]
pub struct RuncLog {
    file: Option<Mutex<std::fs::File>>,
    format: Format,
    level: log::LevelFilter,
}

impl RuncLog {
    /// Install the logger for the `log` records of this process (the library's among them) and
    /// return it, for the program's own final error. `path`: the log file (appended to;
    /// stderr when `None`, or when it cannot be opened). `debug`: debug records too. If
    /// another logger is installed already, that one keeps the records.
    pub fn install(path: Option<&Path>, format: Format, debug: bool) -> &'static RuncLog {
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
        let me: &'static RuncLog = Box::leak(Box::new(RuncLog {
            file: file.map(Mutex::new),
            format,
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
        let time = crate::state::now_rfc3339();
        let line = match self.format {
            Format::Json => {
                serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
            }
            Format::Text => format!("time=\"{time}\" level={level} msg={msg:?}"),
        };
        match &self.file {
            Some(f) => {
                let _ = writeln!(f.lock().unwrap_or_else(|e| e.into_inner()), "{line}");
            }
            None => eprintln!("{line}"),
        }
    }

    /// A command's error, as runc reports it: an `error` record in the log; when the log is a
    /// file, the plain message on stderr too (`cofferdam: error: …`). Without a file the
    /// record goes to stderr, so what callers read there says `level=error` (engines and
    /// suites look for the word).
    pub fn error(&self, msg: &str) {
        self.write(log::Level::Error, msg);
        if self.file.is_some() {
            eprintln!("cofferdam: error: {msg}");
        }
    }
}

impl log::Log for RuncLog {
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
