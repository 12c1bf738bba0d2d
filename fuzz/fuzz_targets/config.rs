//! Everything `create` does with a config.json before it touches the system: parse (with line
//! and column errors), validate, compile the seccomp profile, turn device rules into the cgroup
//! v2 program, split mount options. Any input must end in Ok or Err, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = cofferdam::spec::parse(data, Path::new("config.json")) else {
        return;
    };
    let _ = cofferdam::spec::validate(&spec, Path::new("/nonexistent-fuzz-bundle"));
    for m in spec.mounts().iter().flatten() {
        let _ = cofferdam::internals::parse_mount_options(m.options().as_deref().unwrap_or_default());
    }
    if let Some(linux) = spec.linux() {
        if let Some(s) = linux.seccomp() {
            let _ = cofferdam::internals::compile_seccomp(s);
        }
        if let Some(r) = linux.resources() {
            let _ = cofferdam::internals::device_program(r.devices().as_ref());
        }
    }
});
