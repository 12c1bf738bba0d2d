//! Which values of `linux.resources` are set. Engines send zero values that mean "not set":
//! Docker fills every create with `blockIO.weight: 0`, `cpu.shares: 0` and
//! `memory.disableOOMKiller: false`, and `docker update` sends `cpu.quota: 0`, `cpu.period: 0`,
//! `memory.reservation: 0`, `memory.kernel: 0` beside the one value it changes. Written as they
//! are, those zeros are refused by the kernel (`blkio.bfq.weight` takes 1..1000) or clamped
//! (`cpu.shares` 0 becomes 2, the minimum) or do harm (a soft limit of 0). runc skips them,
//! field by field, on v1 and v2 alike; so do we, in this one place: [`strip_unset`] removes
//! every such value before the v1 and v2 writers see the resources and before `update` merges
//! them with the recorded ones, so a zero never replaces a value that was set.
//!
//! | field | not set when | v1 / v2 when set | runc |
//! |---|---|---|---|
//! | `memory.limit`, `reservation`, `swap` | 0 | -1 is unlimited (`max` on v2) | fs/memory.go, fs2/memory.go |
//! | `memory.swap` not set, `limit` -1 | | unlimited too (v1: where memsw is accounted) | fs/memory.go, utils.go |
//! | `memory.swap` -1 or = `limit`, no swap accounting | | v2: not written (no `memory.swap.max`) | fs2/memory.go |
//! | `memory.kernel`, `kernelTCP` | 0 | ignored with a warning (the kernel dropped them) | specconv |
//! | `memory.swappiness` | -1 (`u64::MAX`, Go's `uint64(-1)`) | v1: 0..=100; v2: ignored | fs/memory.go |
//! | `memory.disableOOMKiller` | false | v1: `memory.oom_control` 1; v2: ignored | fs/memory.go |
//! | `memory.checkBeforeUpdate` | false | ignored | specconv |
//! | `memory.useHierarchy` | always (runc ignores it) | | specconv |
//! | `cpu.shares` | 0 | v2: converted to `cpu.weight` | fs/cpu.go, fs2/cpu.go, utils.go |
//! | `cpu.quota`, `cpu.period` | 0 | v2: `cpu.max`, a negative quota is `max` | fs/cpu.go, fs2/cpu.go |
//! | `cpu.realtimeRuntime`, `realtimePeriod` | 0 | v2: refused (no rt controller) | fs/cpu.go |
//! | `cpu.burst`, `cpu.idle` | absent (0 is a value) | | fs/cpu.go, fs2/cpu.go |
//! | `cpu.cpus`, `cpu.mems` | "" | | fs/cpuset.go, fs2/cpuset.go |
//! | `pids.limit` | 0 | a negative limit is `max` | fs/pids.go, fs2/pids.go (runc < 1.4) |
//! | `blockIO.weight`, `leafWeight` | 0 | v2: `io.bfq.weight`, else converted to `io.weight`; leaf ignored | fs/blkio.go, fs2/io.go |
//! | `blockIO.weightDevice[].weight`, `leafWeight` | 0 (each; an entry with neither is dropped) | | fs/blkio.go |
//! | `blockIO.throttle*Device[].rate` | never (0 lifts the limit) | | fs/blkio.go, fs2/io.go |
//! | `hugepageLimits[].limit` | never (0 is a limit) | | fs/hugetlb.go, fs2/hugetlb.go |
//! | `network.classID` | 0 | v2: ignored | fs/net_cls.go |
//!
//! `pids.limit`: runc 1.4 reads an explicit 0 as a limit of 1, since runtime-spec 1.3 made the
//! field optional; oci-spec 0.9 still has it as a plain number with 0 for "absent", so a 0
//! here is what runc before 1.4 (and Docker 20.10's runc) made of it: not set.
//!
//! An object left with nothing set is dropped, so that a controller the host lacks is only
//! asked for when a value needs it.

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxNetwork, LinuxResources, LinuxThrottleDevice,
    LinuxWeightDevice, LinuxWeightDeviceBuilder,
};

/// `res` without the values that mean "not set" (see the module's table).
pub fn strip_unset(res: &LinuxResources) -> LinuxResources {
    let mut r = res.clone();
    let memory = r
        .memory()
        .map(memory)
        .filter(|m| *m != LinuxMemory::default());
    r.set_memory(memory);
    let cpu = r
        .cpu()
        .clone()
        .map(cpu)
        .filter(|c| *c != LinuxCpu::default());
    r.set_cpu(cpu);
    let pids = r.pids().filter(|p| p.limit() != 0);
    r.set_pids(pids);
    let block_io = r
        .block_io()
        .clone()
        .map(block_io)
        .filter(|b| *b != LinuxBlockIo::default());
    r.set_block_io(block_io);
    let network = r
        .network()
        .clone()
        .map(network)
        .filter(|n| *n != LinuxNetwork::default());
    r.set_network(network);
    let hugepages = r.hugepage_limits().clone().filter(|h| !h.is_empty());
    r.set_hugepage_limits(hugepages);
    let rdma = r.rdma().clone().filter(|m| !m.is_empty());
    r.set_rdma(rdma);
    let unified = r.unified().clone().filter(|m| !m.is_empty());
    r.set_unified(unified);
    r
}

/// Whether `res` sets nothing at all (`{}`, or an engine's object of zeros).
pub fn sets_nothing(res: &LinuxResources) -> bool {
    strip_unset(res) == LinuxResources::default()
}

fn nonzero<T: Default + PartialEq>(v: Option<T>) -> Option<T> {
    v.filter(|v| *v != T::default())
}

fn memory(o: LinuxMemory) -> LinuxMemory {
    let mut m = o;
    m.set_limit(nonzero(o.limit()))
        .set_reservation(nonzero(o.reservation()))
        .set_swap(nonzero(o.swap()))
        .set_kernel(nonzero(o.kernel()))
        .set_kernel_tcp(nonzero(o.kernel_tcp()))
        // -1 reaches a uint64 field as its two's complement.
        .set_swappiness(o.swappiness().filter(|s| *s != u64::MAX))
        .set_disable_oom_killer(nonzero(o.disable_oom_killer()))
        .set_check_before_update(nonzero(o.check_before_update()))
        .set_use_hierarchy(None);
    m
}

fn cpu(o: LinuxCpu) -> LinuxCpu {
    let mut c = o.clone();
    c.set_shares(nonzero(o.shares()))
        .set_quota(nonzero(o.quota()))
        .set_period(nonzero(o.period()))
        .set_realtime_runtime(nonzero(o.realtime_runtime()))
        .set_realtime_period(nonzero(o.realtime_period()))
        .set_cpus(nonzero(o.cpus().clone()))
        .set_mems(nonzero(o.mems().clone()));
    c
}

/// A per-device weight with its zero weights taken out; None when none is left.
fn weight_device(wd: &LinuxWeightDevice) -> Option<LinuxWeightDevice> {
    let (weight, leaf) = (nonzero(wd.weight()), nonzero(wd.leaf_weight()));
    if weight.is_none() && leaf.is_none() {
        return None;
    }
    let mut b = LinuxWeightDeviceBuilder::default()
        .major(wd.major())
        .minor(wd.minor());
    if let Some(w) = weight {
        b = b.weight(w);
    }
    if let Some(w) = leaf {
        b = b.leaf_weight(w);
    }
    // Every field of the builder has a default: it cannot fail.
    b.build().ok()
}

fn block_io(o: LinuxBlockIo) -> LinuxBlockIo {
    let devices: Vec<_> = o
        .weight_device()
        .iter()
        .flatten()
        .filter_map(weight_device)
        .collect();
    let listed = |l: &Option<Vec<LinuxThrottleDevice>>| l.clone().filter(|l| !l.is_empty());
    let mut b = o.clone();
    b.set_weight(nonzero(o.weight()))
        .set_leaf_weight(nonzero(o.leaf_weight()))
        .set_weight_device(Some(devices).filter(|d| !d.is_empty()))
        .set_throttle_read_bps_device(listed(o.throttle_read_bps_device()))
        .set_throttle_write_bps_device(listed(o.throttle_write_bps_device()))
        .set_throttle_read_iops_device(listed(o.throttle_read_iops_device()))
        .set_throttle_write_iops_device(listed(o.throttle_write_iops_device()));
    b
}

fn network(o: LinuxNetwork) -> LinuxNetwork {
    let mut n = o.clone();
    n.set_class_id(nonzero(o.class_id()))
        .set_priorities(o.priorities().clone().filter(|p| !p.is_empty()));
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    fn stripped(json: &str) -> serde_json::Value {
        serde_json::to_value(strip_unset(&res(json))).unwrap()
    }

    // What Docker 20.10 sent, captured by scripts/capture-docker-resources.sh.
    const DOCKER_CREATE: &str = include_str!("../../tests/fixtures/docker-create.json");
    const DOCKER_LIMITS: &str = include_str!("../../tests/fixtures/docker-limits.json");
    const DOCKER_UPDATE: &str = include_str!("../../tests/fixtures/docker-update.json");

    #[test]
    fn dockers_default_create_sets_only_device_rules() {
        let r = strip_unset(&res(DOCKER_CREATE));
        assert!(r.memory().is_none(), "{r:?}");
        assert!(r.cpu().is_none(), "{r:?}");
        assert!(r.block_io().is_none(), "{r:?}");
        assert!(r.pids().is_none(), "{r:?}");
        assert_eq!(r.devices(), res(DOCKER_CREATE).devices());
        assert!(!r.devices().as_ref().unwrap().is_empty());
    }

    #[test]
    fn dockers_limits_keep_what_was_asked() {
        let v = stripped(DOCKER_LIMITS);
        assert_eq!(v["cpu"], serde_json::json!({"shares": 512}));
        assert_eq!(
            v["memory"],
            serde_json::json!({"limit": 32 << 20, "reservation": 16 << 20, "swap": 64 << 20})
        );
        assert_eq!(v["pids"], serde_json::json!({"limit": 100}));
        assert!(v.get("blockIO").is_none(), "{v}");
    }

    #[test]
    fn dockers_update_sets_the_memory_limit_only() {
        let v = stripped(DOCKER_UPDATE);
        assert_eq!(v, serde_json::json!({"memory": {"limit": 64 << 20}}));
        assert!(!sets_nothing(&res(DOCKER_UPDATE)));
    }

    #[test]
    fn memory_zeros_are_unset_and_minus_one_is_unlimited() {
        let v = stripped(
            r#"{"memory": {"limit": 0, "reservation": 0, "swap": 0, "kernel": 0, "kernelTCP": 0}}"#,
        );
        assert!(v.get("memory").is_none(), "{v}");
        let v = stripped(r#"{"memory": {"limit": -1, "reservation": -1, "swap": -1}}"#);
        assert_eq!(
            v["memory"],
            serde_json::json!({"limit": -1, "reservation": -1, "swap": -1})
        );
        let v = stripped(r#"{"memory": {"limit": 100, "swap": 0, "kernel": 5}}"#);
        assert_eq!(v["memory"], serde_json::json!({"limit": 100, "kernel": 5}));
    }

    #[test]
    fn swappiness_minus_one_is_unset_and_zero_is_a_value() {
        let v = stripped(r#"{"memory": {"swappiness": 18446744073709551615}}"#);
        assert!(v.get("memory").is_none(), "{v}");
        let v = stripped(r#"{"memory": {"swappiness": 0}}"#);
        assert_eq!(v["memory"], serde_json::json!({"swappiness": 0}));
        // Out of range is not "unset": the v1 writer refuses it.
        let v = stripped(r#"{"memory": {"swappiness": 101}}"#);
        assert_eq!(v["memory"], serde_json::json!({"swappiness": 101}));
    }

    #[test]
    fn oom_killer_false_and_check_before_update_false_are_unset() {
        let v = stripped(
            r#"{"memory": {"disableOOMKiller": false, "checkBeforeUpdate": false, "useHierarchy": true}}"#,
        );
        assert!(v.get("memory").is_none(), "{v}");
        let v = stripped(r#"{"memory": {"disableOOMKiller": true}}"#);
        assert_eq!(v["memory"], serde_json::json!({"disableOOMKiller": true}));
    }

    #[test]
    fn cpu_zeros_are_unset_but_burst_and_idle_zero_are_values() {
        let v = stripped(
            r#"{"cpu": {"shares": 0, "quota": 0, "period": 0, "realtimeRuntime": 0,
                        "realtimePeriod": 0, "cpus": "", "mems": ""}}"#,
        );
        assert!(v.get("cpu").is_none(), "{v}");
        let v = stripped(r#"{"cpu": {"burst": 0, "idle": 0, "shares": 0}}"#);
        assert_eq!(v["cpu"], serde_json::json!({"burst": 0, "idle": 0}));
        let v = stripped(r#"{"cpu": {"quota": -1, "period": 50000, "shares": 2, "cpus": "0"}}"#);
        assert_eq!(
            v["cpu"],
            serde_json::json!({"quota": -1, "period": 50000, "shares": 2, "cpus": "0"})
        );
        let v = stripped(r#"{"cpu": {"realtimeRuntime": 950000, "realtimePeriod": 0}}"#);
        assert_eq!(v["cpu"], serde_json::json!({"realtimeRuntime": 950000}));
    }

    #[test]
    fn pids_zero_is_unset_and_negative_is_a_value() {
        assert!(stripped(r#"{"pids": {"limit": 0}}"#).get("pids").is_none());
        assert!(stripped(r#"{"pids": {}}"#).get("pids").is_none());
        assert_eq!(
            stripped(r#"{"pids": {"limit": -1}}"#)["pids"],
            serde_json::json!({"limit": -1})
        );
        assert_eq!(
            stripped(r#"{"pids": {"limit": 7}}"#)["pids"],
            serde_json::json!({"limit": 7})
        );
    }

    #[test]
    fn blkio_zero_weights_are_unset_and_zero_rates_are_values() {
        let v = stripped(
            r#"{"blockIO": {"weight": 0, "leafWeight": 0,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 0, "leafWeight": 0},
                                 {"major": 8, "minor": 16, "weight": 0, "leafWeight": 50},
                                 {"major": 8, "minor": 32, "weight": 300}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 0}],
                "throttleWriteBpsDevice": []}}"#,
        );
        assert_eq!(
            v["blockIO"],
            serde_json::json!({
                "weightDevice": [{"major": 8, "minor": 16, "leafWeight": 50},
                                 {"major": 8, "minor": 32, "weight": 300}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 0}]
            })
        );
        let v = stripped(
            r#"{"blockIO": {"weight": 0, "weightDevice": [{"major": 8, "minor": 0, "weight": 0}]}}"#,
        );
        assert!(v.get("blockIO").is_none(), "{v}");
        let v = stripped(r#"{"blockIO": {"weight": 10, "leafWeight": 1000}}"#);
        assert_eq!(
            v["blockIO"],
            serde_json::json!({"weight": 10, "leafWeight": 1000})
        );
    }

    #[test]
    fn hugepage_limit_zero_is_a_limit() {
        let v = stripped(r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 0}]}"#);
        assert_eq!(
            v["hugepageLimits"],
            serde_json::json!([{"pageSize": "2MB", "limit": 0}])
        );
        assert!(
            stripped(r#"{"hugepageLimits": []}"#)
                .get("hugepageLimits")
                .is_none()
        );
    }

    #[test]
    fn net_cls_classid_zero_is_unset() {
        assert!(
            stripped(r#"{"network": {"classID": 0}}"#)
                .get("network")
                .is_none()
        );
        let v = stripped(
            r#"{"network": {"classID": 0, "priorities": [{"name": "lo", "priority": 0}]}}"#,
        );
        assert_eq!(
            v["network"],
            serde_json::json!({"priorities": [{"name": "lo", "priority": 0}]})
        );
        let v = stripped(r#"{"network": {"classID": 1048577}}"#);
        assert_eq!(v["network"], serde_json::json!({"classID": 1048577}));
    }

    #[test]
    fn an_object_of_zeros_sets_nothing() {
        assert!(sets_nothing(&res("{}")));
        assert!(sets_nothing(&res(
            r#"{"memory": {"limit": 0, "disableOOMKiller": false}, "cpu": {"shares": 0},
                "blockIO": {"weight": 0}, "pids": {"limit": 0}, "unified": {}, "rdma": {}}"#
        )));
        assert!(!sets_nothing(&res(DOCKER_CREATE)), "device rules are set");
        assert!(!sets_nothing(&res(r#"{"cpu": {"idle": 0}}"#)));
    }

    #[test]
    fn stripping_twice_changes_nothing() {
        for json in [DOCKER_CREATE, DOCKER_LIMITS, DOCKER_UPDATE] {
            let once = strip_unset(&res(json));
            assert_eq!(strip_unset(&once), once);
        }
    }
}
