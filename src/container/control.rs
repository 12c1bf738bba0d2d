//! Operations on a live container through its cgroup: `pause`, `resume`, `update`, `ps`,
//! `events`. The cgroup work itself is in `cgroups/`; this is the lifecycle side (status
//! checks, the lock, the recorded resources).

use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;
use serde::Serialize;

use super::Container;
use crate::cgroups::{Phase, Stats};
use crate::error::{Error, Result};
use crate::state::{self, Status};

/// One line of `events`, in runc's shape: `{"type":"stats","id":...,"data":{...}}` or
/// `{"type":"oom","id":...}`.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// `stats` or `oom`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The container's id.
    pub id: String,
    /// The statistics of a `stats` event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Stats>,
}

impl Container {
    /// Freeze every process of the container (`paused` from then on).
    pub fn pause(&self) -> Result<()> {
        let (_lock, st) = self.locked()?;
        let status = st.status(&self.dir);
        if !matches!(status, Status::Created | Status::Running) {
            return Err(self.bad_status("pause", status));
        }
        st.cgroup.freeze(true)?;
        log::debug!("paused {}", self.id);
        Ok(())
    }

    /// Thaw a paused container.
    pub fn resume(&self) -> Result<()> {
        let (_lock, st) = self.locked()?;
        let status = st.status(&self.dir);
        if status != Status::Paused {
            return Err(self.bad_status("resume", status));
        }
        st.cgroup.freeze(false)?;
        log::debug!("resumed {}", self.id);
        Ok(())
    }

    /// Change the resource limits of a live container. Fields not given keep their value
    /// (as with `runc update`), and so do fields given as a value that means "not set": the
    /// whole resources object `docker update` sends, zeros and all, changes only what it sets.
    /// The result is recorded for later updates.
    pub fn update(&self, resources: &LinuxResources) -> Result<()> {
        let (_lock, mut st) = self.locked()?;
        let status = st.status(&self.dir);
        if !matches!(status, Status::Created | Status::Running | Status::Paused) {
            return Err(self.bad_status("update", status));
        }
        let (merged, apply) = plan_update(st.resources.as_ref(), resources)?;
        st.cgroup.apply(&apply, Phase::All)?;
        st.resources = Some(merged);
        state::write(&self.dir, &st)?;
        log::debug!("updated {}", self.id);
        Ok(())
    }

    /// The pids of every process in the container (in its cgroup and those below).
    pub fn processes(&self) -> Result<Vec<i32>> {
        let status = self.status();
        if status == Status::Stopped {
            return Err(self.bad_status("list the processes of", status));
        }
        self.state.cgroup.all_procs()
    }

    /// What the container's cgroup measures now (cpu, memory, pids, blkio, hugetlb).
    pub fn stats(&self) -> Result<Stats> {
        let status = self.status();
        if status == Status::Stopped {
            return Err(self.bad_status("read the stats of", status));
        }
        Ok(self.state.cgroup.stats())
    }

    /// How many times the OOM killer has killed a process of the container's cgroup (v1
    /// `memory.oom_control`, v2 `memory.events`; 0 without a memory controller). It keeps
    /// counting once the container has stopped, until `delete`: a watcher that sees the init
    /// exit can still tell whether the OOM killer took it.
    pub fn oom_kills(&self) -> u64 {
        self.state.cgroup.oom_kills()
    }

    /// An fd that becomes readable when the OOM killer may have struck in the container's
    /// cgroup, so that a watcher can sleep in `poll` until then instead of reading
    /// [`Container::oom_kills`] on a timer (None without a memory controller). Once woken:
    /// [`OomNotifier::clear`](crate::OomNotifier::clear), then `oom_kills` says whether the
    /// count grew.
    pub fn oom_notifier(&self) -> Result<Option<crate::OomNotifier>> {
        self.state.cgroup.oom_notifier()
    }

    /// Watch the container until it stops: `emit` gets a stats event every `interval`, and an
    /// `oom` event each time the OOM killer strikes in the container (checked at least every
    /// 100 ms). Stops early when `emit` fails (its reader went away).
    pub fn events(
        &self,
        interval: Duration,
        mut emit: impl FnMut(&Event) -> std::io::Result<()>,
    ) -> Result<()> {
        let tick = interval.min(Duration::from_millis(100));
        let mut ooms = self.state.cgroup.oom_kills();
        let mut next_stats = Instant::now();
        let io = |e: std::io::Error| Error::Io {
            op: "write event",
            path: "stdout".into(),
            source: e,
        };
        loop {
            if self.status() == Status::Stopped {
                return Ok(());
            }
            let now_ooms = self.state.cgroup.oom_kills();
            if now_ooms > ooms {
                ooms = now_ooms;
                emit(&self.event("oom", None)).map_err(io)?;
            }
            if Instant::now() >= next_stats {
                let stats = self.state.cgroup.stats();
                emit(&self.event("stats", Some(stats))).map_err(io)?;
                next_stats += interval;
            }
            std::thread::sleep(tick);
        }
    }

    fn event(&self, kind: &'static str, data: Option<Stats>) -> Event {
        Event {
            kind,
            id: self.id.clone(),
            data,
        }
    }
}

/// What an update of resources `old` by `update` records and what it writes. Values that
/// mean "not set" are taken out of the update first, so they keep the recorded ones.
fn plan_update(
    old: Option<&LinuxResources>,
    update: &LinuxResources,
) -> Result<(LinuxResources, LinuxResources)> {
    let update = crate::cgroups::strip_unset(update);
    let mut merged = merge(old, &update)?;
    if let Some(new) = update.memory()
        && new.swap().is_none()
        && let Some(m) = merged.memory_mut()
    {
        let old = old.and_then(|r| *r.memory()).unwrap_or_default();
        if new.limit() == Some(-1) {
            // Unlimited memory without a word on swap: the swap limit goes too (the writers
            // make it unlimited), as with runc.
            m.set_swap(None);
        } else if new.limit().is_some() && old.swap().is_some() && old.swap() == old.limit() {
            // A container that had no swap (memory + swap == memory) keeps having none when
            // only its memory limit changes, rather than being refused a limit above the old
            // swap.
            m.set_swap(new.limit());
        }
    }
    // memory.limit and memory.swap are written together (their order and the v2 swap value
    // depend on both), so a change to either takes the other as recorded.
    let mut apply = update;
    if apply.memory().is_some() {
        apply.set_memory(*merged.memory());
    }
    Ok((merged, apply))
}

/// `update` semantics: objects merge key by key, anything else (numbers, strings, lists such
/// as device rules) is replaced.
fn merge(old: Option<&LinuxResources>, new: &LinuxResources) -> Result<LinuxResources> {
    fn deep(a: &mut serde_json::Value, b: serde_json::Value) {
        match (a, b) {
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                for (k, v) in b {
                    deep(a.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
            (a, b) => *a = b,
        }
    }
    let to = |r: &LinuxResources| serde_json::to_value(r).expect("resources serialize");
    let mut v = old.map_or(serde_json::json!({}), to);
    deep(&mut v, to(new));
    serde_json::from_value(v)
        .map_err(|e| Error::InvalidConfig(format!("merged resources do not parse: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_merges_field_by_field() {
        let old: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":100,"swap":200},"pids":{"limit":5},"devices":[{"allow":false,"access":"rwm"}]}"#,
        )
        .unwrap();
        let new: LinuxResources =
            serde_json::from_str(r#"{"memory":{"limit":150},"cpu":{"quota":1000}}"#).unwrap();
        let m = merge(Some(&old), &new).unwrap();
        let mem = m.memory().as_ref().unwrap();
        assert_eq!((mem.limit(), mem.swap()), (Some(150), Some(200)));
        assert_eq!(m.pids().unwrap().limit(), 5);
        assert_eq!(m.cpu().as_ref().unwrap().quota(), Some(1000));
        assert_eq!(m.devices().as_ref().unwrap().len(), 1);
    }

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    /// Docker's `update --memory 64m` (captured, with its zeros) on a container that Docker
    /// created with `--cpu-shares 512 -m 32m --memory-reservation 16m --pids-limit 100`.
    #[test]
    fn dockers_update_changes_the_memory_limit_and_nothing_else() {
        let created = crate::cgroups::strip_unset(&res(include_str!(
            "../../tests/fixtures/docker-limits.json"
        )));
        let update = res(include_str!("../../tests/fixtures/docker-update.json"));
        let (merged, apply) = plan_update(Some(&created), &update).unwrap();
        let mem = merged.memory().unwrap();
        assert_eq!(mem.limit(), Some(64 << 20));
        assert_eq!(mem.reservation(), Some(16 << 20), "the soft limit is kept");
        assert_eq!(mem.swap(), Some(64 << 20), "memory + swap is kept");
        assert_eq!(merged.cpu().as_ref().unwrap().shares(), Some(512));
        assert_eq!(merged.pids().unwrap().limit(), 100);
        // Written: the memory values (together), nothing of cpu or blkio.
        assert_eq!(apply.memory(), merged.memory());
        assert!(apply.cpu().is_none() && apply.block_io().is_none() && apply.pids().is_none());
    }

    #[test]
    fn a_zero_in_an_update_keeps_the_recorded_value() {
        let old = res(
            r#"{"cpu": {"shares": 512, "quota": 20000, "period": 100000},
                          "blockIO": {"weight": 300}, "pids": {"limit": 5}}"#,
        );
        let update = res(r#"{"cpu": {"shares": 0, "quota": 0, "period": 0},
                             "blockIO": {"weight": 0}, "pids": {"limit": 0}}"#);
        let (merged, apply) = plan_update(Some(&old), &update).unwrap();
        assert_eq!(merged, old);
        assert_eq!(apply, LinuxResources::default());
    }

    #[test]
    fn unlimited_memory_without_swap_drops_the_old_swap_limit() {
        let old = res(r#"{"memory": {"limit": 100, "swap": 200}}"#);
        let (merged, apply) =
            plan_update(Some(&old), &res(r#"{"memory": {"limit": -1}}"#)).unwrap();
        let mem = merged.memory().unwrap();
        assert_eq!((mem.limit(), mem.swap()), (Some(-1), None));
        assert_eq!(apply.memory(), merged.memory());
    }

    #[test]
    fn no_swap_stays_no_swap_when_the_limit_changes() {
        let old = res(r#"{"memory": {"limit": 100, "swap": 100}}"#);
        let (merged, _) = plan_update(Some(&old), &res(r#"{"memory": {"limit": 300}}"#)).unwrap();
        let mem = merged.memory().unwrap();
        assert_eq!((mem.limit(), mem.swap()), (Some(300), Some(300)));
    }
}
