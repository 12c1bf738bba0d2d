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
