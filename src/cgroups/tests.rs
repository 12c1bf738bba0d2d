use super::*;

// Real samples: this project's CI host (hybrid), a Debian 10 host (legacy, co-mounted
// cpu,cpuacct) and a pure cgroup2 host with the runtime in a systemd slice.
const HYBRID_MOUNTINFO: &str = "\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
const HYBRID_CGROUP: &str = "\
9:name=systemd:/
4:memory:/process_api/50b4
3:cpuset:/
1:cpu:/
0::/
";

const LEGACY_MOUNTINFO: &str = "\
25 0 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
28 22 0:24 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:4 - tmpfs tmpfs ro,mode=755
30 28 0:26 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:6 - cgroup cgroup rw,xattr,name=systemd
33 28 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
36 28 0:32 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,pids
";
const LEGACY_CGROUP: &str = "\
12:pids:/user.slice/user-1000.slice/session-2.scope
4:cpu,cpuacct:/user.slice
1:name=systemd:/user.slice/user-1000.slice/session-2.scope
";

const UNIFIED_MOUNTINFO: &str = "\
26 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw
35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
const UNIFIED_CGROUP: &str = "0::/system.slice/containerd.service\n";

fn layout(m: &str, c: &str) -> Layout {
    Layout::parse(m.as_bytes(), c.as_bytes()).unwrap()
}

#[test]
fn hybrid_host_keeps_v1_controllers_and_the_cgroup2_mount() {
    let l = layout(HYBRID_MOUNTINFO, HYBRID_CGROUP);
    assert_eq!(l.kind(), Kind::Hybrid);
    let names: Vec<_> = l
        .hierarchies
        .iter()
        .map(|h| h.controllers.as_str())
        .collect();
    assert_eq!(names, ["cpu", "memory", "cpuset", "name=systemd", ""]);
    assert!(l.hierarchies.last().unwrap().v2);
    let mem = &l.hierarchies[1];
    assert_eq!(mem.own, "/process_api/50b4");
    assert_eq!(
        Layout::dir_of(mem, Path::new("/t/c1")).unwrap(),
        Path::new("/sys/fs/cgroup/memory/t/c1")
    );
    // Relative paths are relative to the runtime's own cgroup.
    assert_eq!(
        Layout::dir_of(mem, Path::new("c1")).unwrap(),
        Path::new("/sys/fs/cgroup/memory/process_api/50b4/c1")
    );
}

#[test]
fn legacy_host_with_comounted_controllers() {
    let l = layout(LEGACY_MOUNTINFO, LEGACY_CGROUP);
    assert_eq!(l.kind(), Kind::Legacy);
    let cpu = l
        .hierarchies
        .iter()
        .find(|h| h.controllers == "cpu,cpuacct")
        .unwrap();
    assert_eq!(cpu.mount, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
    assert_eq!(cpu.own, "/user.slice");
    let sd = l
        .hierarchies
        .iter()
        .find(|h| h.controllers == "name=systemd")
        .unwrap();
    assert_eq!(sd.own, "/user.slice/user-1000.slice/session-2.scope");
}

#[test]
fn unified_host() {
    let l = layout(UNIFIED_MOUNTINFO, UNIFIED_CGROUP);
    assert_eq!(l.kind(), Kind::Unified);
    assert_eq!(l.hierarchies.len(), 1);
    let h = &l.hierarchies[0];
    assert_eq!(
        Layout::dir_of(h, Path::new("pod/c")).unwrap(),
        Path::new("/sys/fs/cgroup/system.slice/containerd.service/pod/c")
    );
}

#[test]
fn dotdot_in_cgroups_path_is_rejected() {
    let l = layout(UNIFIED_MOUNTINFO, UNIFIED_CGROUP);
    assert!(Layout::dir_of(&l.hierarchies[0], Path::new("/a/../../etc")).is_err());
}

#[test]
fn this_host_parses() {
    let l = Layout::detect().unwrap();
    assert!(!l.hierarchies.is_empty());
}
