//! `config.json`: loading with precise errors, the checks the runtime does before touching the
//! system, and the default spec printed by `cofferdam spec`.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::error::{Error, Result};

/// The runtime-spec version this runtime implements and writes into new configs.
pub const OCI_VERSION: &str = "1.2.0";

/// Read and parse `<bundle>/config.json`. A syntax or type error names the line and column.
pub fn load(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let data = std::fs::read(&path).map_err(|source| Error::ReadConfig {
        path: path.clone(),
        source,
    })?;
    parse(&data, &path)
}

/// Parse config bytes; `path` only names the file in errors.
pub fn parse(data: &[u8], path: &Path) -> Result<Spec> {
    parse_as(data, path, |v| v.get_mut("process"))
}

/// Parse a `process.json` (`exec -p`), as [`parse`] parses a config.
pub fn parse_process(data: &[u8], path: &Path) -> Result<oci_spec::runtime::Process> {
    parse_as(data, path, |v| Some(v))
}

/// Parse, with the position of an error. What oci-spec reads otherwise than the spec writes
/// it (see `respell_process`) is rewritten only when a first parse fails.
fn parse_as<T: serde::de::DeserializeOwned>(
    data: &[u8],
    path: &Path,
    process: impl FnOnce(&mut serde_json::Value) -> Option<&mut serde_json::Value>,
) -> Result<T> {
    let malformed = |e: serde_json::Error| Error::MalformedConfig {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        msg: strip_position(&e.to_string()),
    };
    let first = match serde_json::from_slice(data) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return Err(malformed(first));
    };
    if !process(&mut value).is_some_and(crate::process::attrs::respell_process) {
        return Err(malformed(first));
    }
    serde_json::from_value(value).map_err(malformed)
}

// serde_json appends " at line L column C" to its messages; we print those separately.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Check what must hold before anything is created: the version, the process, the rootfs.
/// Returns the absolute rootfs path.
pub fn validate(spec: &Spec, bundle: &Path) -> Result<PathBuf> {
    check_version(spec.version())?;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::InvalidConfig("process is missing".into()))?;
    check_args(process)?;
    crate::process::attrs::validate(process, spec.linux().as_ref())?;
    crate::netdev::validate(spec)?;
    if !process.cwd().is_absolute() {
        return Err(Error::InvalidConfig(format!(
            "process.cwd {:?} must be an absolute path",
            process.cwd()
        )));
    }
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::InvalidConfig("root is missing".into()))?;
    let rootfs = bundle.join(root.path());
    let meta = std::fs::metadata(&rootfs).map_err(|_| Error::Rootfs {
        path: rootfs.clone(),
        why: "does not exist",
    })?;
    if !meta.is_dir() {
        return Err(Error::Rootfs {
            path: rootfs,
            why: "is not a directory",
        });
    }
    let rootfs =
        std::fs::canonicalize(&rootfs).map_err(crate::error::io_err("resolve", &rootfs))?;
    if rootfs == Path::new("/") {
        return Err(Error::Rootfs {
            path: rootfs,
            why: "is the host's root directory",
        });
    }
    if spec.hostname().is_some()
        && !crate::namespaces::wants_new(spec, oci_spec::runtime::LinuxNamespaceType::Uts)
    {
        return Err(Error::InvalidConfig(
            "hostname requires a new uts namespace".into(),
        ));
    }
    if let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) {
        for key in sysctl.keys() {
            if key.is_empty()
                || key.contains('/')
                || key.split('.').any(|p| p.is_empty() || p == "..")
            {
                return Err(Error::InvalidConfig(format!("invalid sysctl key {key:?}")));
            }
        }
    }
    Ok(rootfs)
}

/// A process must name a program: `args` with a non-empty first entry.
pub fn check_args(process: &oci_spec::runtime::Process) -> Result<()> {
    match process.args() {
        Some(args) if !args.is_empty() && !args[0].is_empty() => Ok(()),
        _ => Err(Error::InvalidConfig(
            "process.args must not be empty".into(),
        )),
    }
}

/// Accepts any 1.x.y (with an optional pre-release suffix): within a major version the spec
/// stays compatible, and unknown fields are ignored as it requires.
pub fn check_version(v: &str) -> Result<()> {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    let numeric = parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if numeric && parts[0] == "1" {
        Ok(())
    } else {
        Err(Error::UnsupportedVersion(v.to_string()))
    }
}

/// The config `cofferdam spec` writes: runc's default, with a cgroup namespace, as JSON text
/// indented with tabs the way runc prints it.
pub fn default_spec_json() -> String {
    to_json_text(&default_spec_value())
}

/// `spec --rootless`: the default made runnable by an unprivileged user `uid`:`gid`, as runc's
/// is: a user namespace mapping them to root, no cgroup resources (none are delegated), and
/// devpts without `gid=5` (no such group in a one-id namespace).
pub fn rootless_spec_json(uid: u32, gid: u32) -> String {
    let mut v = default_spec_value();
    v["linux"]["namespaces"]
        .as_array_mut()
        .expect("namespaces")
        .push(serde_json::json!({"type": "user"}));
    v["linux"]["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": uid, "size": 1}]);
    v["linux"]["gidMappings"] = serde_json::json!([{"containerID": 0, "hostID": gid, "size": 1}]);
    if let Some(l) = v["linux"].as_object_mut() {
        l.remove("resources");
    }
    for m in v["mounts"].as_array_mut().expect("mounts") {
        if m["type"] == "devpts"
            && let Some(o) = m["options"].as_array_mut()
        {
            o.retain(|o| o != "gid=5");
        }
    }
    to_json_text(&v)
}

fn to_json_text(spec: &serde_json::Value) -> String {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    serde::Serialize::serialize(&spec, &mut ser).expect("serializing a JSON value cannot fail");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// The default config as a typed [`Spec`], a starting point for embedding.
pub fn default_spec() -> Spec {
    serde_json::from_value(default_spec_value()).expect("the default spec is valid")
}

fn default_spec_value() -> serde_json::Value {
    let caps = serde_json::json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    serde_json::json!({
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "cofferdam",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        for ok in ["1.0.0", "1.0.2-dev", "1.2.0", "1.1.0-rc.1"] {
            assert!(check_version(ok).is_ok(), "{ok}");
        }
        for bad in ["", "2.0.0", "0.5.0", "1.0", "banana", "1.x.0"] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn malformed_config_names_line_and_column() {
        let err = parse(
            b"{\n  \"ociVersion\": \"1.0.0\",\n  \"process\": {\"args\": [\"true\",]}\n}\n",
            Path::new("c.json"),
        )
        .unwrap_err();
        match err {
            Error::MalformedConfig { line, column, .. } => {
                assert_eq!(line, 3);
                assert!(column > 0);
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn default_spec_parses_and_round_trips() {
        let spec = default_spec();
        assert_eq!(spec.version(), OCI_VERSION);
        let text = default_spec_json();
        assert!(text.starts_with("{\n\t\"ociVersion\""));
        parse(text.as_bytes(), Path::new("x")).unwrap();
    }
}
