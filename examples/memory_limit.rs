//! A memory limit, enforced by the kernel: a container limited to 32 MiB (and no swap) tries
//! to build a 32 MiB string (about 80 MiB with awk's copies) and is OOM-killed; its stats show
//! the limit and the peak. Then the limit is raised on the live container with `update`, and
//! the same work succeeds.
//!
//! ```sh
//! apt-get install -y busybox-static
//! cargo run --example memory_limit      # as root
//! ```

mod common;

use cofferdam::oci_spec::runtime::{LinuxMemory, LinuxResources};
use cofferdam::{Container, ContainerBuilder, default_spec};

const MIB: i64 = 1 << 20;

fn memory(limit: i64) -> LinuxMemory {
    let mut m = LinuxMemory::default();
    m.set_limit(Some(limit));
    // memory.swap counts memory + swap: equal to the limit means no swap.
    m.set_swap(Some(limit));
    m
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (dir, rootfs) = common::busybox_rootfs("memory")?;
    let state = dir.join("state");
    let mut spec = default_spec();
    let process = spec.process_mut().as_mut().expect("a process");
    process.set_terminal(Some(false));
    // The init waits; the work is done by `exec`, so we can change the limit in between.
    process.set_args(Some(vec!["sleep".into(), "1000".into()]));
    let linux = spec.linux_mut().as_mut().expect("a linux section");
    let mut resources = LinuxResources::default();
    resources.set_memory(Some(memory(32 * MIB)));
    linux.set_resources(Some(resources));
    // A cgroup of its own, removed by delete.
    let id = format!("memory-example-{}", std::process::id());
    linux.set_cgroups_path(Some(format!("/cofferdam-example/{id}").into()));

    let c = ContainerBuilder::new(&id)
        .state_root(&state)
        .spec(spec)
        .rootfs(&rootfs)
        .create()?;
    c.start()?;

    let fill = |c: &Container| -> Result<i32, cofferdam::Error> {
        let mut p = c.process().cloned().expect("recorded at create");
        p.set_args(Some(vec![
            "sh".into(),
            "-c".into(),
            // Doubled 25 times: 32 MiB, about 80 with the copies awk makes, all written from
            // user space, where the kernel OOM-kills at the limit (`dd if=/dev/zero` would fill
            // its buffer in a read(2), where a charge past the limit may just fail the read).
            "awk 'BEGIN { s = \"x\"; for (i = 0; i < 25; i++) s = s s }'".into(),
        ]));
        c.exec(&p, &Default::default())?.wait()
    };

    let code = fill(&c)?;
    let stats = c.stats()?;
    println!(
        "with 32 MiB: awk exited {code} ({}); limit {} MiB, peak use {} MiB",
        if code == 137 {
            "SIGKILL: the OOM killer"
        } else {
            "not killed?"
        },
        stats.memory.usage.limit >> 20,
        stats.memory.usage.max >> 20,
    );

    let mut more = LinuxResources::default();
    more.set_memory(Some(memory(128 * MIB)));
    c.update(&more)?;
    let code = fill(&c)?;
    println!("after update to 128 MiB: awk exited {code}");

    c.delete(true)?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
