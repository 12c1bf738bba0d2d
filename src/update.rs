//! The resources of an update as runc's `update` command takes them: a JSON
//! [`LinuxResources`] object ([`parse_resources`], `update -r FILE`), or one flag per field
//! ([`resources_from_flags`], `update --memory 64m --cpu-quota 50000`). Either result goes to
//! [`Container::update`](crate::Container::update), which merges it into the resources in
//! force.

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

use crate::error::{Error, Result};
use crate::units::parse_size;

/// The per-field flags of runc's `update`, by long name (without `--`). Each takes a value.
/// `l3-cache-schema` and `mem-bw-schema` (Intel RDT) are accepted by name and refused by
/// [`resources_from_flags`] as unsupported.
pub const FLAGS: &[&str] = &[
    "memory",
    "memory-swap",
    "memory-reservation",
    "kernel-memory",
    "kernel-memory-tcp",
    "cpu-share",
    "cpu-quota",
    "cpu-period",
    "cpu-burst",
    "cpu-rt-period",
    "cpu-rt-runtime",
    "cpu-idle",
    "cpuset-cpus",
    "cpuset-mems",
    "blkio-weight",
    "pids-limit",
    "l3-cache-schema",
    "mem-bw-schema",
];

/// A [`LinuxResources`] object in JSON (`update -r FILE`); `path` only names the input in
/// errors, which give the line and column of a syntax or type error.
pub fn parse_resources(data: &[u8], path: &Path) -> Result<LinuxResources> {
    serde_json::from_slice(data).map_err(|e| Error::MalformedConfig {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        msg: e.to_string(),
    })
}

/// The resources runc's `update` flags set: `(name, value)` pairs, names as in [`FLAGS`]
/// (when a flag is given twice, the last value counts). Sizes (`memory*`, `kernel-memory*`)
/// are read by [`parse_size`] (`64m`, `1g`, `-1`), the rest as integers, `cpuset-*` as
/// lists. Only the fields given are set, so [`Container::update`](crate::Container::update)
/// leaves the others as they are.
///
/// A value that does not parse is [`Error::InvalidValue`]; an unknown name, or Intel RDT's
/// flags, is [`Error::Unsupported`].
///
/// ```
/// let r = cofferdam::update::resources_from_flags([("memory", "64m"), ("pids-limit", "100")])?;
/// assert_eq!(r.memory().as_ref().unwrap().limit(), Some(64 << 20));
/// assert_eq!(r.pids().as_ref().unwrap().limit(), 100);
/// # Ok::<(), cofferdam::Error>(())
/// ```
pub fn resources_from_flags<'a>(
    flags: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<LinuxResources> {
    let mut given: Vec<(&str, &str)> = Vec::new();
    for (name, value) in flags {
        if !FLAGS.contains(&name) {
            return Err(Error::Unsupported(format!("update: unknown flag --{name}")));
        }
        if matches!(name, "l3-cache-schema" | "mem-bw-schema") {
            return Err(Error::Unsupported(format!(
                "update --{name}: Intel RDT is not supported"
            )));
        }
        given.retain(|(n, _)| *n != name);
        given.push((name, value));
    }
    let get = |name: &str| given.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    let bad = |name: &str, v: &str| Error::InvalidValue {
        name: format!("--{name}"),
        value: v.to_string(),
    };
    let num = |name: &str| -> Result<Option<i64>> {
        get(name)
            .map(|v| v.parse::<i64>().map_err(|_| bad(name, v)))
            .transpose()
    };
    let unum = |name: &str| -> Result<Option<u64>> {
        get(name)
            .map(|v| v.parse::<u64>().map_err(|_| bad(name, v)))
            .transpose()
    };
    let bytes = |name: &str| -> Result<Option<i64>> {
        get(name)
            .map(|v| parse_size(v).ok_or_else(|| bad(name, v)))
            .transpose()
    };

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
    for (name, set) in [
        (
            "cpu-share",
            LinuxCpu::set_shares as fn(&mut LinuxCpu, Option<u64>) -> &mut LinuxCpu,
        ),
        ("cpu-period", LinuxCpu::set_period),
        ("cpu-burst", LinuxCpu::set_burst),
        ("cpu-rt-period", LinuxCpu::set_realtime_period),
    ] {
        if let Some(v) = unum(name)? {
            set(&mut cpu, Some(v));
            any_cpu = true;
        }
    }
    for (name, set) in [
        (
            "cpu-quota",
            LinuxCpu::set_quota as fn(&mut LinuxCpu, Option<i64>) -> &mut LinuxCpu,
        ),
        ("cpu-rt-runtime", LinuxCpu::set_realtime_runtime),
        ("cpu-idle", LinuxCpu::set_idle),
    ] {
        if let Some(v) = num(name)? {
            set(&mut cpu, Some(v));
            any_cpu = true;
        }
    }
    for (name, set) in [
        (
            "cpuset-cpus",
            LinuxCpu::set_cpus as fn(&mut LinuxCpu, Option<String>) -> &mut LinuxCpu,
        ),
        ("cpuset-mems", LinuxCpu::set_mems),
    ] {
        if let Some(v) = get(name) {
            set(&mut cpu, Some(v.into()));
            any_cpu = true;
        }
    }
    if any_cpu {
        r.set_cpu(Some(cpu));
    }

    if let Some(v) = get("blkio-weight") {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_set_only_their_fields() {
        let r = resources_from_flags([
            ("memory", "1g"),
            ("memory", "64m"),
            ("cpu-quota", "-1"),
            ("cpuset-cpus", "0-1"),
            ("blkio-weight", "500"),
        ])
        .unwrap();
        let m = r.memory().as_ref().unwrap();
        assert_eq!(m.limit(), Some(64 << 20));
        assert_eq!(m.swap(), None);
        let c = r.cpu().as_ref().unwrap();
        assert_eq!(c.quota(), Some(-1));
        assert_eq!(c.shares(), None);
        assert_eq!(c.cpus().as_deref(), Some("0-1"));
        assert_eq!(r.block_io().as_ref().unwrap().weight(), Some(500));
        assert!(r.pids().is_none());
        assert!(resources_from_flags([]).unwrap().memory().is_none());
    }

    #[test]
    fn bad_values_and_names_are_refused_by_name() {
        let e = resources_from_flags([("cpu-share", "-5")]).unwrap_err();
        assert_eq!(e.to_string(), "--cpu-share \"-5\" is not valid");
        let e = resources_from_flags([("blkio-weight", "70000")]).unwrap_err();
        assert!(matches!(e, Error::InvalidValue { .. }), "{e}");
        let e = resources_from_flags([("mem-bw-schema", "x")]).unwrap_err();
        assert!(e.to_string().contains("Intel RDT"), "{e}");
        assert!(resources_from_flags([("memroy", "1")]).is_err());
    }
}
