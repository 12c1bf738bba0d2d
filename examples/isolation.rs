//! Isolation, one namespace at a time. A container is a group of processes with its own view of
//! the machine; each part of that view is a kernel *namespace*. This example runs the same
//! probe (its pid, the hostname, the network interfaces, its mount namespace, how many mounts
//! and processes it sees) on the host, then in containers that add one namespace per step: none
//! (a chroot only), then mount, pid, uts and network.
//!
//! ```sh
//! cargo run --example isolation      # as root
//! ```
//!
//! What to look at: each step's `changed:` line. With a mount namespace the mount table is the
//! container's own; with a pid namespace the probe is pid 1 and sees only its own processes;
//! with a uts namespace it has its own hostname; with a network namespace its only interface
//! is `lo`. The default spec also gives a container ipc and cgroup namespaces.

mod common;

use cofferdam::oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

/// Prints what the process sees, one `key=value` a line. It writes to a file in the rootfs:
/// the host reads it back, whatever namespaces the container had.
const PROBE: &str = r#"{
    echo "pid=$$"
    echo "hostname=$(hostname)"
    echo "interfaces=$(awk -F: 'NR > 2 { gsub(/ /, "", $1); printf "%s ", $1 }' /proc/net/dev)"
    echo "mount_ns=$(readlink /proc/self/ns/mnt)"
    echo "mounts=$(wc -l < /proc/mounts)"
    echo "processes=$(ls -d /proc/[0-9]* | wc -l)"
} > "$OUT""#;

type View = Vec<(String, String)>;

fn parse(text: &str) -> View {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn show(step: &str, view: &View, before: Option<&View>) {
    let line: Vec<String> = view.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("{step}: {}", line.join(" "));
    if let Some(before) = before {
        let changed: Vec<String> = view
            .iter()
            .zip(before)
            .filter(|((_, now), (_, was))| now != was)
            .map(|((k, now), (_, was))| format!("{k} {was} -> {now}"))
            .collect();
        println!(
            "  changed: {}",
            if changed.is_empty() {
                "nothing".to_string()
            } else {
                changed.join(", ")
            }
        );
    }
}

fn main() -> common::Result<()> {
    let scratch = common::Scratch::new("isolation")?;
    let rootfs = scratch.rootfs("rootfs")?;

    // The host: busybox's sh running the probe right here.
    let out = scratch.dir.join("host.out");
    let status = std::process::Command::new("/bin/busybox")
        .args(["sh", "-c", PROBE])
        .env("OUT", &out)
        .status()?;
    if !status.success() {
        return Err(format!("the probe failed on the host: {status}").into());
    }
    let mut before = parse(&std::fs::read_to_string(&out)?);
    show("host", &before, None);

    use LinuxNamespaceType::*;
    let steps: [(&str, &[LinuxNamespaceType]); 5] = [
        ("no namespace (a chroot)", &[]),
        ("+ mount", &[Mount]),
        ("+ pid", &[Mount, Pid]),
        ("+ uts", &[Mount, Pid, Uts]),
        ("+ network", &[Mount, Pid, Uts, Network]),
    ];
    for (n, (what, kinds)) in steps.iter().enumerate() {
        let mut spec = scratch.spec(&format!("step{n}"), &["sh", "-c", PROBE]);
        // The probe writes its answer into the rootfs.
        spec.root_mut()
            .as_mut()
            .expect("a root")
            .set_readonly(Some(false));
        let p = spec.process_mut().as_mut().expect("a process");
        let mut env = p.env().clone().unwrap_or_default();
        env.push("OUT=/probe.out".into());
        p.set_env(Some(env));
        let namespaces = kinds
            .iter()
            .map(|k| {
                let mut ns = LinuxNamespace::default();
                ns.set_typ(*k);
                ns
            })
            .collect();
        let linux = spec.linux_mut().as_mut().expect("a linux section");
        linux.set_namespaces(Some(namespaces));
        if !kinds.contains(&Mount) {
            // Masking /proc/kcore and friends takes mounts of the container's own.
            linux.set_masked_paths(None);
            linux.set_readonly_paths(None);
        }
        // A hostname needs a uts namespace of the container's own (else it would rename the host).
        let hostname = kinds.contains(&Uts).then(|| "box".to_string());
        spec.set_hostname(hostname);
        let code = scratch.run(&format!("step{n}"), spec, &rootfs)?;
        if code != 0 {
            return Err(format!("step {what}: the probe exited {code}").into());
        }
        let view = parse(&std::fs::read_to_string(rootfs.join("probe.out"))?);
        show(&format!("step {} {what}", n + 1), &view, Some(&before));
        before = view;
    }
    Ok(())
}
