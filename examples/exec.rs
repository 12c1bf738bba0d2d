//! `docker exec`: a second process enters a running container. It joins the namespaces of the
//! container's init (`setns(2)` on the init's `/proc/PID/ns/*` files) and its cgroup, then
//! becomes the container's process (user, capabilities, cwd, env) and execs. The init keeps
//! running; the container now has two processes.
//!
//! ```sh
//! cargo run --example exec      # as root
//! ```
//!
//! What to look at: the host compares the namespace links and the cgroup of the init and of the
//! exec'd process (all the same); `ps` inside the container shows both, the init as pid 1.

mod common;

use cofferdam::{ExecOptions, Signal};

/// The namespace inode (`mnt:[4026532...]`) of a process, read from the host.
fn ns(pid: i32, kind: &str) -> std::io::Result<String> {
    Ok(std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))?
        .to_string_lossy()
        .into_owned())
}

fn main() -> common::Result<()> {
    let scratch = common::Scratch::new("exec")?;
    let rootfs = scratch.rootfs("rootfs")?;

    let c = scratch.create("box", scratch.spec("box", &["sleep", "1000"]), &rootfs)?;
    c.start()?;
    println!("init: host pid {} runs `sleep 1000`", c.pid());

    // The exec'd process is based on the container's own process (user, env, cwd...).
    let mut p = c.process().cloned().expect("recorded at create");
    p.set_args(Some(vec!["sleep".into(), "500".into()]));
    let second = c.exec(&p, &ExecOptions::default())?;
    println!("exec: host pid {} runs `sleep 500`", second.pid);

    for kind in ["mnt", "pid", "net", "uts", "ipc", "cgroup"] {
        let (a, b) = (ns(c.pid(), kind)?, ns(second.pid, kind)?);
        let host = ns(std::process::id() as i32, kind)?;
        println!(
            "{kind:>6}: init {a}, exec {b}: {}, {}",
            if a == b { "same" } else { "DIFFERENT" },
            if a == host {
                "the host's"
            } else {
                "not the host's"
            }
        );
    }
    let cgroup = |pid: i32| std::fs::read_to_string(format!("/proc/{pid}/cgroup"));
    let same = cgroup(c.pid())? == cgroup(second.pid)?;
    println!("cgroup: same for init and exec: {same}");

    // A third process, `ps`, sees the container's processes only.
    p.set_args(Some(vec!["ps".into(), "-o".into(), "pid,args".into()]));
    println!("ps inside the container:");
    let code = c.exec(&p, &ExecOptions::default())?.wait()?;
    println!("ps exited {code}");

    // Killing the init kills every process of its pid namespace, the exec'd sleep too. Reap
    // that one first: it is our child, and a dying init waits until every process of its
    // namespace has been reaped, so waiting for the init first would wait forever.
    c.kill(Signal::SIGKILL, false)?;
    println!(
        "after the init is killed, the exec'd sleep exited {}",
        second.wait()?
    );
    println!("the init exited {}", c.wait()?);
    c.delete(false)?;
    Ok(())
}
