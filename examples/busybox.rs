//! Run a busybox container through the library: build a rootfs from a static busybox, take the
//! default spec, change what we need in code, then create, start, wait and delete.
//!
//! ```sh
//! apt-get install -y busybox-static
//! cargo run --example busybox            # as root
//! cargo run --example busybox -- cat /etc/hostname
//! ```

mod common;

use cofferdam::{ContainerBuilder, default_spec};

fn main() -> common::Result<()> {
    // First, while this program has one thread: run from a read-only view of our own binary,
    // so that no container can rewrite it (CVE-2019-5736; this may re-execute the program).
    cofferdam::exe_seal::reexec_sealed()?;
    let (dir, rootfs) = common::busybox_rootfs("busybox")?;

    // The default spec is runc's, with new pid, mount, network, ipc, uts and cgroup namespaces.
    let mut spec = default_spec();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = if args.is_empty() {
        vec![
            "sh".into(),
            "-c".into(),
            "echo \"hostname: $(hostname)\"; echo \"my pid: $$\"; echo mounts:; cat /proc/mounts"
                .into(),
        ]
    } else {
        args
    };
    let process = spec
        .process_mut()
        .as_mut()
        .expect("the default spec has a process");
    process.set_terminal(Some(false));
    process.set_args(Some(args));
    spec.set_hostname(Some("cofferdam-example".into()));

    let id = format!("example-{}", std::process::id());
    let container = ContainerBuilder::new(&id)
        .state_root(dir.join("state"))
        .spec(spec)
        .rootfs(&rootfs)
        .create()?;
    println!(
        "created {id}: init pid {} ({})",
        container.pid(),
        container.status()
    );
    container.start()?;
    // The container's init is our child: wait() reaps it and returns its exit status.
    let code = container.wait()?;
    println!("container exited with {code}");
    container.delete(false)?;
    std::fs::remove_dir_all(&dir)?;
    std::process::exit(code);
}
