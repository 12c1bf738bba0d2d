//! `cofferdam features`: the OCI features document (features.md), saying what this runtime
//! really does. Engines (containerd) read it to decide what they may ask for.

use serde_json::{Value, json};

/// Every mount option `mount::parse_options` understands by name (the rest is filesystem
/// data passed to mount(2)). A unit test holds the two together.
pub(crate) const MOUNT_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "idmap",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "ridmap",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "tmpcopyup",
    "unbindable",
];

/// The OCI features document (the runtime spec's features.md) as JSON: the ociVersion range,
/// hooks, mount options, namespaces, capabilities, cgroup, seccomp, AppArmor and SELinux
/// support of this build on this host.
pub fn features() -> Value {
    let mut caps: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    caps.sort();
    let native = if cfg!(target_arch = "x86_64") {
        "SCMP_ARCH_X86_64"
    } else {
        "SCMP_ARCH_AARCH64"
    };
    let flags = [
        "SECCOMP_FILTER_FLAG_TSYNC",
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
    ];
    let (memory_policy, field_annotations) = crate::process::attrs::features();
    let mut doc = json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::spec::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": MOUNT_OPTIONS,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": true, "systemdUser": false, "rdma": true},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                              "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": [native],
                "knownFlags": flags,
                "supportedFlags": flags
            },
            "apparmor": {"enabled": true},
            "selinux": {"enabled": true},
            "intelRdt": {"enabled": false},
            "memoryPolicy": memory_policy,
            "mountExtensions": {"idmap": {"enabled": true}},
            "netDevices": {"enabled": true}
        },
        "annotations": {
            "io.github.cofferdam.version": env!("CARGO_PKG_VERSION"),
            "io.github.cofferdam.commit": option_env!("COFFERDAM_COMMIT").unwrap_or("unknown")
        }
    });
    // The spec's features document has no place for these fields: what they take is listed
    // in annotations, one per field.
    for (field, values) in field_annotations {
        doc["annotations"][format!("io.github.cofferdam.{field}")] = json!(values);
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_mount_option_is_understood_and_the_document_parses() {
        for o in MOUNT_OPTIONS {
            let parsed = crate::mount::parse_options(&[o.to_string()]);
            assert!(parsed.data.is_empty(), "{o} would go to mount(2) as data");
        }
        let f: oci_spec::runtime::Features = serde_json::from_value(features()).unwrap();
        assert_eq!(f.oci_version_max(), crate::spec::OCI_VERSION);
        // Every memory policy mode and flag listed is one a config may name.
        let linux = f.linux().as_ref().unwrap();
        let mp = linux.memory_policy().as_ref().unwrap();
        for mode in mp.modes().iter().flatten() {
            let v = json!({"mode": mode, "nodes": "0"});
            serde_json::from_value::<oci_spec::runtime::LinuxMemoryPolicy>(v).unwrap();
        }
        for flag in mp.flags().iter().flatten() {
            serde_json::from_value::<oci_spec::runtime::MemoryPolicyFlagType>(json!(flag)).unwrap();
        }
        assert_eq!(linux.net_devices().as_ref().unwrap().enabled(), &Some(true));
        // So is every scheduler policy and flag, I/O priority class and personality domain
        // listed in the annotations (the flags as the spec spells them).
        let ann = f.annotations().as_ref().unwrap();
        let list = |k: &str| {
            ann[&format!("io.github.cofferdam.{k}")]
                .split(',')
                .map(String::from)
                .collect::<Vec<_>>()
        };
        let process = json!({
            "cwd": "/", "user": {"uid": 0, "gid": 0},
            "scheduler": {"policy": "SCHED_OTHER", "flags": list("process.scheduler.flags")},
        });
        crate::spec::parse_process(process.to_string().as_bytes(), "p".as_ref()).unwrap();
        for p in list("process.scheduler.policy") {
            serde_json::from_value::<oci_spec::runtime::LinuxSchedulerPolicy>(json!(p)).unwrap();
        }
        for c in list("process.ioPriority.class") {
            serde_json::from_value::<oci_spec::runtime::IOPriorityClass>(json!(c)).unwrap();
        }
        for d in list("linux.personality.domain") {
            serde_json::from_value::<oci_spec::runtime::LinuxPersonalityDomain>(json!(d)).unwrap();
        }
    }
}
