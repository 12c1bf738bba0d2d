//! The lifecycle of the OCI runtime spec: create, start, pause, resume, kill, delete, with the
//! container's OCI state printed at each step. A container lives as long as its init: the init
//! is pid 1 of the container's pid namespace, and when it dies the kernel kills every other
//! process in that namespace. Pause and resume are the cgroup freezer.
//!
//! ```sh
//! cargo run --example lifecycle      # as root
//! ```
//!
//! What to look at: `status` goes created → running → paused → running → stopped; the frozen
//! processes' state on the host; after the init alone is killed, its two children are gone too.

mod common;

use cofferdam::{Container, Signal};

fn print_state(step: &str, c: &Container) {
    let json = serde_json::to_string(&c.state()).expect("the state serializes");
    println!("{step:>8}: {json}");
}

/// The process's state letter on the host (`S` sleeping, `D` as frozen on cgroup v1...), or
/// `gone` once the kernel has reaped it.
fn proc_state(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()?
                .split_whitespace()
                .next()
                .map(String::from)
        })
        .filter(|s| s != "Z") // a zombie is dead: it waits only for its parent to reap it
        .unwrap_or_else(|| "gone".into())
}

fn main() -> common::Result<()> {
    let scratch = common::Scratch::new("lifecycle")?;
    let rootfs = scratch.rootfs("rootfs")?;
    // The init, a shell, starts two children and waits for them.
    let script = "sleep 1000 & sleep 1000 & wait";
    let c = scratch.create("box", scratch.spec("box", &["sh", "-c", script]), &rootfs)?;
    print_state("create", &c);
    c.start()?;
    print_state("start", &c);

    // The children show up in the container's cgroup once the shell has forked them.
    let mut pids = Vec::new();
    common::poll_until(30, || {
        pids = c.processes().unwrap_or_default();
        pids.len() == 3
    });
    let children: Vec<i32> = pids.into_iter().filter(|p| *p != c.pid()).collect();
    println!("processes: init {} and children {children:?}", c.pid());

    c.pause()?;
    print_state("pause", &c);
    let states: Vec<String> = children.iter().map(|p| proc_state(*p)).collect();
    println!("children while paused: {states:?}");
    c.resume()?;
    print_state("resume", &c);

    // Only the init is signalled; the kernel takes the rest of its pid namespace down with it.
    c.kill(Signal::SIGKILL, false)?;
    let code = c.wait()?;
    println!("init exited {code}");
    print_state("kill", &c);
    let mut left = Vec::new();
    common::poll_until(30, || {
        left = children.iter().map(|p| proc_state(*p)).collect();
        left.iter().all(|s| s == "gone")
    });
    println!("children after the init died: {left:?}");

    let id = c.id().to_string();
    c.delete(false)?;
    match Container::load(&scratch.state, &id) {
        Err(e) => println!("  delete: {e}"),
        Ok(_) => println!("  delete: still there?"),
    }
    Ok(())
}
