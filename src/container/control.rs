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
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: String,
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
    /// (as with `runc update`); the result is recorded for later updates.
    pub fn update(&self, resources: &LinuxResources) -> Result<()> {
        let (_lock, mut st) = self.locked()?;
        let status = st.status(&self.dir);
        if !matches!(status, Status::Created | Status::Running | Status::Paused) {
            return Err(self.bad_status("update", status));
        }
        let mut merged = merge(st.resources.as_ref(), resources)?;
        // A container that had no swap (memory + swap == memory) keeps having none when only
        // its memory limit changes, rather than being refused a limit above the old swap.
        if let (Some(new), Some(old)) = (
            resources.memory(),
            st.resources.as_ref().and_then(|r| *r.memory()),
        ) && new.limit().is_some()
            && new.swap().is_none()
            && old.swap().is_some()
            && old.swap() == old.limit()
            && let Some(m) = merged.memory_mut()
        {
            m.set_swap(new.limit());
        }
        // memory.limit and memory.swap are written together (their order and the v2 swap
        // value depend on both), so a change to either takes the other as recorded.
        let mut apply = resources.clone();
        if apply.memory().is_some() {
            apply.set_memory(*merged.memory());
        }
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
}
