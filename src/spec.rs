//! `config.json`: loading with precise errors, the checks the runtime does before touching the
//! system, and the default spec printed by `cofferdam spec`.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, Result};

/// The runtime-spec version this runtime implements and writes into new configs.
pub const OCI_VERSION: &str = "1.2.0";

/// The largest input file the runtime reads: `config.json`, `exec -p process.json`,
/// `update -r resources.json`. Real configs are well under 1 MiB (runc's default is 3 KiB,
/// podman's with its seccomp profile about 40 KiB; Kubernetes caps a whole object at 1.5 MiB),
/// so 16 MiB refuses none. Parsed, a config takes many times its size: a 16 MiB one made of
/// 4 million empty `process.args` took 394 MiB at peak in `create` (each is a String, then a
/// copy in the state, then a C string), one of 880,000 empty mounts 146 MiB. A bound of
/// gigabytes would still let one file exhaust the machine; this one keeps the worst case to a
/// few hundred MiB.
pub const MAX_INPUT_BYTES: u64 = 16 << 20;

/// Read and parse `<bundle>/config.json`. A syntax or type error names the line and column.
pub fn load(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let data = read_input(&path)?;
    parse(&data, &path)
}

/// Read a whole input file, refusing one larger than [`MAX_INPUT_BYTES`]: a regular file by its
/// size, before reading any of it; anything else (`/dev/zero`, a pipe) by reading one byte
/// more than the limit at most.
pub fn read_input(path: &Path) -> Result<Vec<u8>> {
    let read_err = |source| Error::ReadConfig {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    if meta.is_file() && meta.len() > MAX_INPUT_BYTES {
        return Err(Error::InputTooLarge {
            path: path.to_path_buf(),
            limit: MAX_INPUT_BYTES,
        });
    }
    read_bounded(file, path)
}

/// Read at most [`MAX_INPUT_BYTES`] from `r` (a file, stdin); more is an error naming `path`.
pub fn read_bounded(r: impl std::io::Read, path: &Path) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    std::io::Read::read_to_end(&mut r.take(MAX_INPUT_BYTES + 1), &mut data).map_err(|source| {
        Error::ReadConfig {
            path: path.to_path_buf(),
            source,
        }
    })?;
    if data.len() as u64 > MAX_INPUT_BYTES {
        return Err(Error::InputTooLarge {
            path: path.to_path_buf(),
            limit: MAX_INPUT_BYTES,
        });
    }
    Ok(data)
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
    check_user(process)?;
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
    // Set in the container's uts namespace, new or joined (as runc does); without one they
    // would be the host's.
    let uts = crate::namespaces::is_private(spec, oci_spec::runtime::LinuxNamespaceType::Uts);
    for (field, set) in [
        ("hostname", spec.hostname().is_some()),
        ("domainname", spec.domainname().is_some()),
    ] {
        if set && !uts {
            return Err(Error::InvalidConfig(format!(
                "{field} requires a uts namespace"
            )));
        }
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

/// The namespace a sysctl belongs to, as runc's validator sorts them: the System V IPC and
/// POSIX message queue ones to ipc, `net.*` to network, `kernel.hostname` and
/// `kernel.domainname` to uts. None for every other key: those are not namespaced
/// (`kernel.core_pattern`, `vm.*`...), so whatever namespaces the container has, a write
/// would change the host's kernel.
pub(crate) fn sysctl_namespace(key: &str) -> Option<LinuxNamespaceType> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        Some(LinuxNamespaceType::Ipc)
    } else if key.starts_with("net.") {
        Some(LinuxNamespaceType::Network)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some(LinuxNamespaceType::Uts)
    } else {
        None
    }
}

/// Every `linux.sysctl` key must land in a namespace of the container's own, else its value
/// is written to the host's kernel (`kernel.core_pattern` = `|/tmp/x` runs a program as root
/// on the host's next crash). `separate(typ)` says whether the container has a namespace of
/// that type other than the runtime's own: a new one, or one joined by path that is not ours.
pub(crate) fn check_sysctls(
    spec: &Spec,
    separate: impl Fn(LinuxNamespaceType) -> Result<bool>,
) -> Result<()> {
    let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    // In order: of several bad keys, the same one is named each time.
    let mut keys: Vec<&String> = sysctl.keys().collect();
    keys.sort();
    for key in keys {
        let Some(typ) = sysctl_namespace(key) else {
            return Err(Error::InvalidConfig(format!(
                "sysctl {key:?} is not allowed: it is not namespaced, so it would be written to the host's kernel"
            )));
        };
        if !separate(typ)? {
            return Err(Error::InvalidConfig(format!(
                "sysctl {key:?} is not allowed: it needs a {typ} namespace of the container's own \
                 (a new one, or one joined by path that is not the runtime's), else it is the host's"
            )));
        }
        if key == "kernel.hostname" && spec.hostname().is_some() {
            return Err(Error::InvalidConfig(format!(
                "sysctl {key:?} conflicts with the config's hostname field"
            )));
        }
    }
    Ok(())
}

/// The largest uid or gid a process may get, as runc's: 2^31 - 1. Above it, 4294967295 is -1
/// to setresuid/setresgid, "leave unchanged", and the process would stay root.
pub const MAX_ID: u32 = i32::MAX as u32;

/// `process.user`: uid, gid and additional gids within 0..=[`MAX_ID`].
pub(crate) fn check_user(process: &oci_spec::runtime::Process) -> Result<()> {
    let user = process.user();
    let ids = [("uid", user.uid()), ("gid", user.gid())]
        .into_iter()
        .chain(
            user.additional_gids()
                .iter()
                .flatten()
                .map(|g| ("additionalGids", *g)),
        );
    for (field, id) in ids {
        if id > MAX_ID {
            return Err(Error::InvalidConfig(format!(
                "process.user.{field} {id} is out of range: uids and gids must be in 0-{MAX_ID}"
            )));
        }
    }
    Ok(())
}

/// A process must name a program: `args` with a non-empty first entry.
pub(crate) fn check_args(process: &oci_spec::runtime::Process) -> Result<()> {
    match process.args() {
        Some(args) if !args.is_empty() && !args[0].is_empty() => Ok(()),
        _ => Err(Error::InvalidConfig(
            "process.args must not be empty".into(),
        )),
    }
}

/// Accepts any 1.x.y (with an optional pre-release suffix): within a major version the spec
/// stays compatible, and unknown fields are ignored as it requires.
pub(crate) fn check_version(v: &str) -> Result<()> {
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
    fn sysctls_by_namespace() {
        use LinuxNamespaceType::*;
        for (key, ns) in [
            ("kernel.msgmax", Some(Ipc)),
            ("kernel.shm_rmid_forced", Some(Ipc)),
            ("fs.mqueue.msg_max", Some(Ipc)),
            ("net.ipv4.ip_forward", Some(Network)),
            ("kernel.hostname", Some(Uts)),
            ("kernel.domainname", Some(Uts)),
            ("kernel.core_pattern", None),
            ("vm.overcommit_memory", None),
            ("fs.mqueue", None),
            ("network.x", None),
            ("kernel.msgmax2", None),
            ("user.max_user_namespaces", None),
        ] {
            assert_eq!(sysctl_namespace(key), ns, "{key}");
        }
    }

    #[test]
    fn ids_above_2147483647_are_refused() {
        let mut p = oci_spec::runtime::Process::default();
        p.user_mut().set_uid(MAX_ID);
        p.user_mut().set_gid(MAX_ID);
        check_user(&p).unwrap();
        for (uid, gid, extra) in [(u32::MAX, 0, 0), (0, u32::MAX, 0), (0, 0, MAX_ID + 1)] {
            p.user_mut().set_uid(uid);
            p.user_mut().set_gid(gid);
            p.user_mut().set_additional_gids(Some(vec![extra]));
            let err = check_user(&p).unwrap_err().to_string();
            assert!(err.contains("0-2147483647"), "{err}");
        }
    }

    #[test]
    fn input_is_read_up_to_the_limit_only() {
        let zero = std::fs::File::open("/dev/zero").unwrap();
        let err = read_bounded(zero, Path::new("/dev/zero")).unwrap_err();
        assert!(matches!(err, Error::InputTooLarge { .. }), "{err}");
        assert!(err.to_string().contains("/dev/zero"), "{err}");
        let exact = std::io::Read::take(std::io::repeat(b' '), MAX_INPUT_BYTES);
        assert_eq!(
            read_bounded(exact, Path::new("x")).unwrap().len() as u64,
            MAX_INPUT_BYTES
        );
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
