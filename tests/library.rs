//! The library as an embedder uses it: a spec built in code, a rootfs given directly, and the
//! lifecycle driven through `Container` without the CLI.

mod common;

use cofferdam::{Container, ContainerBuilder, Signal, Status, default_spec};
use common::*;

#[test]
fn embed_with_an_in_memory_spec() {
    let env = Env::new("embed");
    let rootfs = env.dir.join("rootfs");
    make_busybox_rootfs(&rootfs);
    let mut spec = default_spec();
    let p = spec.process_mut().as_mut().unwrap();
    p.set_terminal(Some(false));
    p.set_args(Some(vec!["sh".into(), "-c".into(), "exit 3".into()]));
    let mut linux = spec.linux().clone().unwrap();
    linux.set_cgroups_path(Some(format!("{}/c", env.cgroup_prefix).into()));
    spec.set_linux(Some(linux));

    let id = env.id("c");
    let c = ContainerBuilder::new(&id)
        .state_root(&env.root)
        .spec(spec)
        .rootfs(&rootfs)
        .create()
        .unwrap();
    assert_eq!(c.status(), Status::Created);
    assert_eq!(c.state().rootfs, rootfs);
    // The same container, loaded by id as another process would.
    let again = Container::load(&env.root, &id).unwrap();
    assert_eq!(again.pid(), c.pid());
    c.start().unwrap();
    assert_eq!(
        c.wait().unwrap(),
        3,
        "wait returns the exit status of our child"
    );
    assert_eq!(c.status(), Status::Stopped);
    c.delete(false).unwrap();
    env.assert_nothing_left(&id);
}

#[test]
fn kill_through_the_library() {
    let env = Env::new("libkill");
    let b = env.bundle("b", &["sleep", "1000"]);
    let id = env.id("c");
    let c = ContainerBuilder::new(&id)
        .state_root(&env.root)
        .bundle(&b.path)
        .create()
        .unwrap();
    c.start().unwrap();
    assert_eq!(c.status(), Status::Running);
    c.kill(Signal::SIGKILL, true).unwrap();
    assert_eq!(c.wait().unwrap(), 128 + 9);
    let err = c.kill(Signal::SIGKILL, false).unwrap_err();
    assert!(err.to_string().contains("not running"), "{err}");
    c.delete(false).unwrap();
    env.assert_nothing_left(&id);
}

/// stdio given as fds (`CreateOptions::stdio`, `ExecOptions::stdio`), as a shim that runs many
/// containers passes each its own pipes: the container's output arrives on them and not on the
/// caller's stdout, its stdin is read from the pipe given, and a closed fd is refused.
#[test]
fn stdio_given_as_fds() {
    use cofferdam::{CreateOptions, ExecOptions, StdioFds};
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;

    let env = Env::new("libstdio");
    let b = env.bundle(
        "b",
        &["sh", "-c", "read l; echo out:$l; echo err >&2; exit 5"],
    );
    let id = env.id("c");
    let (in_r, in_w) = nix::unistd::pipe().unwrap();
    let (out_r, out_w) = nix::unistd::pipe().unwrap();
    let (err_r, err_w) = nix::unistd::pipe().unwrap();
    let stdio = StdioFds {
        stdin: in_r.as_raw_fd(),
        stdout: out_w.as_raw_fd(),
        stderr: err_w.as_raw_fd(),
    };
    let c = ContainerBuilder::new(&id)
        .state_root(&env.root)
        .bundle(&b.path)
        .options(CreateOptions {
            stdio: Some(stdio),
            ..Default::default()
        })
        .create()
        .unwrap();
    // The container has its own copies: ours go, so that EOF comes when it exits.
    drop((in_r, out_w, err_w));
    c.start().unwrap();

    // exec with its own stdio, while the init waits for its line.
    let (x_r, x_w) = nix::unistd::pipe().unwrap();
    let null = std::fs::File::open("/dev/null").unwrap();
    let mut process = c.process().unwrap().clone();
    process.set_args(Some(vec!["echo".into(), "from exec".into()]));
    let p = c
        .exec(
            &process,
            &ExecOptions {
                stdio: Some(StdioFds {
                    stdin: null.as_raw_fd(),
                    stdout: x_w.as_raw_fd(),
                    stderr: x_w.as_raw_fd(),
                }),
                ..Default::default()
            },
        )
        .unwrap();
    drop(x_w);
    assert_eq!(p.wait().unwrap(), 0);
    let mut s = String::new();
    std::fs::File::from(x_r).read_to_string(&mut s).unwrap();
    assert_eq!(s, "from exec\n");

    std::fs::File::from(in_w).write_all(b"hi\n").unwrap();
    assert_eq!(c.wait().unwrap(), 5);
    let (mut out, mut err) = (String::new(), String::new());
    std::fs::File::from(out_r).read_to_string(&mut out).unwrap();
    std::fs::File::from(err_r).read_to_string(&mut err).unwrap();
    assert_eq!((out.as_str(), err.as_str()), ("out:hi\n", "err\n"));
    c.delete(false).unwrap();
    env.assert_nothing_left(&id);

    // A closed fd is named, and nothing is made.
    let bad = ContainerBuilder::new(&id)
        .state_root(&env.root)
        .bundle(&b.path)
        .options(CreateOptions {
            stdio: Some(StdioFds {
                stdin: 1000,
                stdout: 1,
                stderr: 2,
            }),
            ..Default::default()
        })
        .create()
        .unwrap_err();
    assert!(bad.to_string().contains("stdio fd 1000"), "{bad}");
    env.assert_nothing_left(&id);
}

/// `Container::oom_notifier`: the fd a watcher sleeps on becomes readable when the OOM killer
/// strikes in the container's cgroup (here a child of the init, so the container runs on),
/// and the kill is then counted by `oom_kills`. cgroup v1 here; v2 in the VM pass.
#[test]
fn oom_notifier_wakes_a_watcher() {
    use std::os::fd::AsFd;

    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

    let env = Env::new("liboom");
    let mut b = env.bundle(
        "b",
        &[
            "sh",
            "-c",
            "awk 'BEGIN { s = \"x\"; while (1) s = s s }'; sleep 1000",
        ],
    );
    b.config["linux"]["resources"] = serde_json::json!({ "memory": { "limit": 33554432 } });
    b.save();
    let id = env.id("c");
    let c = ContainerBuilder::new(&id)
        .state_root(&env.root)
        .bundle(&b.path)
        .create()
        .unwrap();
    let notifier = c.oom_notifier().unwrap().expect("a memory controller here");
    assert_eq!(c.oom_kills(), 0);
    c.start().unwrap();
    let deadline = std::time::Instant::now() + patience(std::time::Duration::from_secs(10));
    let mut woken = 0;
    while c.oom_kills() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no OOM kill counted (woken {woken} times)"
        );
        let mut fds = [PollFd::new(notifier.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::from(100u16)).unwrap() > 0 {
            woken += 1;
            notifier.clear();
        }
    }
    assert!(
        woken > 0,
        "the OOM kill was counted but the notifier never woke"
    );
    // Cleared, it waits again (a level-triggered watcher does not spin on it).
    notifier.clear();
    let mut fds = [PollFd::new(notifier.as_fd(), PollFlags::POLLIN)];
    assert_eq!(poll(&mut fds, PollTimeout::ZERO).unwrap(), 0);
    assert_eq!(c.status(), Status::Running);
    drop(notifier);
    c.kill(Signal::SIGKILL, true).unwrap();
    c.wait().unwrap();
    c.delete(false).unwrap();
    env.assert_nothing_left(&id);
}
