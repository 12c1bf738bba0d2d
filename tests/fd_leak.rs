//! A long-lived embedding process keeps no fd per container: many lifecycles through the
//! library, and its fd table is as it was. (A test binary of its own, so that no other test
//! opens files meanwhile.)

mod common;

use cofferdam::ContainerBuilder;
use common::*;

fn open_fds() -> Vec<String> {
    let mut fds: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .map(|e| {
            let target = std::fs::read_link(e.path()).unwrap_or_default();
            format!(
                "{} -> {}",
                e.file_name().to_string_lossy(),
                target.display()
            )
        })
        .collect();
    fds.sort();
    fds
}

#[test]
fn library_lifecycles_leak_no_fds() {
    let env = Env::new("fdleak");
    let b = env.bundle("b", &["true"]);
    let cycle = |n: usize| {
        let id = env.id(&format!("c{n}"));
        let c = ContainerBuilder::new(&id)
            .state_root(&env.root)
            .bundle(&b.path)
            .create()
            .unwrap();
        c.start().unwrap();
        assert_eq!(c.wait().unwrap(), 0);
        c.delete(false).unwrap();
        env.assert_nothing_left(&id);
    };
    cycle(0); // first use may open what stays open (e.g. the log's or std's own)
    let before = open_fds();
    for n in 1..=20 {
        cycle(n);
    }
    // read_dir's own fd shows up in both lists alike.
    assert_eq!(open_fds(), before);
}
