//! Not part of the API: what the project's fuzz target reaches inside, behind the
//! `internals` feature, with no stability promise. Embedders should not enable it.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxSeccomp};

/// Split mount options as the init does (flags, propagation, filesystem data).
pub fn parse_mount_options(opts: &[String]) -> impl std::fmt::Debug {
    crate::mount::parse_options(opts)
}

/// Compile a seccomp profile as `create` does, before the fork.
pub fn compile_seccomp(s: &LinuxSeccomp) -> crate::Result<impl std::fmt::Debug> {
    crate::seccomp::compile(s)
}

/// The device rules of `linux.resources.devices` as the cgroup v2 BPF program (`None`: no
/// rules to apply), as `create` builds it.
pub fn device_program(
    devices: Option<&Vec<LinuxDeviceCgroup>>,
) -> crate::Result<Option<impl std::fmt::Debug>> {
    Ok(crate::cgroups::devices::rules(devices)?.map(|r| crate::cgroups::devices::program(&r)))
}
