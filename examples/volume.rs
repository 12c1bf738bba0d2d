//! Volumes: data that outlives the container. A volume is a host directory bind-mounted into
//! the container (the kernel's bind mount: the same directory seen at a second place). A first
//! container writes into it and is deleted; a second container, with a fresh rootfs, reads the
//! data back. A third gets the volume read-only and cannot write.
//!
//! ```sh
//! cargo run --example volume      # as root
//! ```
//!
//! What to look at: the second container prints the note the first one wrote; the read-only
//! write fails with "Read-only file system" and nothing appears on the host.

mod common;

use cofferdam::oci_spec::runtime::{Mount, Spec};

/// `spec` with the host directory `volume` mounted at `/data`, read-only if asked.
fn with_volume(mut spec: Spec, volume: &std::path::Path, read_only: bool) -> Spec {
    let mut m = Mount::default();
    m.set_destination("/data".into());
    m.set_typ(Some("bind".into()));
    m.set_source(Some(volume.to_path_buf()));
    let mut options = vec!["rbind".to_string()];
    if read_only {
        options.push("ro".into());
    }
    m.set_options(Some(options));
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.push(m);
    spec.set_mounts(Some(mounts));
    spec
}

fn main() -> common::Result<()> {
    let scratch = common::Scratch::new("volume")?;
    let volume = scratch.dir.join("volume");
    std::fs::create_dir(&volume)?;

    // The first container writes a note and is deleted, rootfs and all.
    let rootfs = scratch.rootfs("rootfs1")?;
    let write = "echo \"written by $(hostname) at $(date +%T)\" > /data/note.txt";
    let spec = scratch.spec("writer", &["sh", "-c", write]);
    let mut spec = with_volume(spec, &volume, false);
    spec.set_hostname(Some("writer".into()));
    let code = scratch.run("writer", spec, &rootfs)?;
    std::fs::remove_dir_all(&rootfs)?;
    println!("writer: exited {code}; its container and rootfs are deleted");
    println!(
        "host: the volume holds note.txt: {:?}",
        std::fs::read_to_string(volume.join("note.txt"))?.trim()
    );

    // A second container, a new rootfs, the same volume.
    let rootfs = scratch.rootfs("rootfs2")?;
    let read = "echo \"reader reads: $(cat /data/note.txt)\"";
    let spec = with_volume(scratch.spec("reader", &["sh", "-c", read]), &volume, false);
    let code = scratch.run("reader", spec, &rootfs)?;
    println!("reader: exited {code}");

    // Read-only: the write is refused by the kernel.
    let try_write = "echo x > /data/intruder.txt && echo 'ro: write succeeded' \
                     || echo 'ro: write refused'";
    let spec = with_volume(scratch.spec("ro", &["sh", "-c", try_write]), &volume, true);
    let code = scratch.run("ro", spec, &rootfs)?;
    println!(
        "ro: exited {code}; on the host, intruder.txt exists: {}",
        volume.join("intruder.txt").exists()
    );
    Ok(())
}
