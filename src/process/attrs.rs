//! What the kernel keeps of a process across execve and hands to its children, besides its
//! user and capabilities: the scheduler (`process.scheduler`), the I/O priority
//! (`process.ioPriority`), the execution domain (`linux.personality`), the NUMA memory policy
//! (`linux.memoryPolicy`), and the CPUs an `exec`'d process runs on
//! (`process.execCPUAffinity`).
//!
//! Everything is checked before anything is made ([`validate`] from `spec::validate`, and
//! [`Attrs::for_exec`] before an exec's fork), each error naming its field. The init and an
//! exec'd process apply the first four to themselves, as runc does, in runc's order, while
//! they may still (CAP_SYS_NICE for a realtime policy or a negative nice) and before the
//! seccomp filter, which may not allow the calls: [`Attrs::apply`]. The affinity is runc's:
//! `initial` is the CPUs of the thread that forks an exec'd process, which it is born with;
//! `final` is set on it by its parent right after it joins the container's cgroup. With
//! neither (and for the init, which the field does not apply to), the affinity is reset to
//! every CPU once the process is in its cgroup, so that it gets its cpuset's CPUs rather than
//! a restricted mask of whoever ran the runtime (Linux 6.2 stopped resetting it on a cpuset
//! move).

use nix::errno::Errno;
use oci_spec::runtime::{
    ExecCPUAffinity, IOPriorityClass, Linux, LinuxMemoryPolicy, LinuxPersonality,
    LinuxPersonalityDomain, LinuxSchedulerFlag, LinuxSchedulerPolicy, MemoryPolicyFlagType,
    MemoryPolicyModeType, Process, Scheduler,
};
use serde_json::Value;

use crate::error::{Error, InitError, Result};
use crate::mount::Step;

/// The largest CPU or node number a list may name, as runc: a bound for the mask we allocate.
const MAX_ID: u32 = 65535;

/// The attributes one process gets, converted and checked before the fork.
#[derive(Clone, Debug, Default)]
pub(crate) struct Attrs {
    sched: Option<SchedAttr>,
    /// `ioprio_set` value: class << 13 | level.
    ioprio: Option<(i32, &'static str)>,
    personality: Option<libc::c_ulong>,
    mempolicy: Option<MemPolicy>,
    /// `exec` only: the init does not take `execCPUAffinity` (the spec says so).
    affinity: Option<Affinity>,
}

/// `struct sched_attr` as the kernel first defined it (SCHED_ATTR_SIZE_VER0): the fields the
/// spec has. The utilization clamps of later versions have no field in the spec.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

#[derive(Clone, Debug)]
struct MemPolicy {
    /// The mode with its flags, as set_mempolicy takes it.
    mode: libc::c_int,
    nodes: Vec<libc::c_ulong>,
    /// The config's words, for messages.
    what: String,
}

#[derive(Clone, Debug, Default)]
struct Affinity {
    initial: Option<Vec<libc::c_ulong>>,
    final_: Option<Vec<libc::c_ulong>>,
}

fn invalid(msg: String) -> Error {
    Error::InvalidConfig(msg)
}

/// Check the fields of the config that this module applies. `spec::validate` calls it, so a
/// bad value fails `create` with nothing made.
pub(crate) fn validate(process: &Process, linux: Option<&Linux>) -> Result<()> {
    Attrs::for_init(process, linux)?;
    // Not applied to the init, but the container's exec'd processes take it: a bad list is
    // refused now, as runc does, rather than at each exec.
    if let Some(a) = process.exec_cpu_affinity() {
        affinity("process.execCPUAffinity", a)?;
    }
    if let Some(p) = linux.and_then(|l| l.personality().as_ref()) {
        for f in p.flags().iter().flatten() {
            log::warn!("linux.personality.flags {f:?} ignored: the spec defines no flag yet");
        }
    }
    Ok(())
}

impl Attrs {
    /// What the container's init applies to itself.
    pub(crate) fn for_init(process: &Process, linux: Option<&Linux>) -> Result<Attrs> {
        Ok(Attrs {
            sched: process.scheduler().as_ref().map(scheduler).transpose()?,
            ioprio: process.io_priority().as_ref().map(ioprio).transpose()?,
            personality: linux
                .and_then(|l| l.personality().as_ref())
                .map(personality),
            mempolicy: linux
                .and_then(|l| l.memory_policy().as_ref())
                .map(mempolicy)
                .transpose()?,
            affinity: None,
        })
    }

    /// What a process exec'd into the container gets: its own scheduler, I/O priority and
    /// affinity, or else the container's (runc's rule), and the container's personality and
    /// memory policy.
    pub(crate) fn for_exec(
        process: &Process,
        container: Option<&Process>,
        personality_cfg: Option<&LinuxPersonality>,
        mempolicy_cfg: Option<&LinuxMemoryPolicy>,
    ) -> Result<Attrs> {
        let pick = |f: fn(&Process) -> bool| {
            if f(process) {
                Some(process)
            } else {
                container.filter(|c| f(c))
            }
        };
        let sched = pick(|p| p.scheduler().is_some())
            .and_then(|p| p.scheduler().as_ref())
            .map(scheduler)
            .transpose()?;
        let io = pick(|p| p.io_priority().is_some())
            .and_then(|p| p.io_priority().as_ref())
            .map(ioprio)
            .transpose()?;
        let aff = pick(|p| p.exec_cpu_affinity().is_some())
            .and_then(|p| p.exec_cpu_affinity().as_ref())
            .map(|a| affinity("process.execCPUAffinity", a))
            .transpose()?;
        Ok(Attrs {
            sched,
            ioprio: io,
            personality: personality_cfg.map(personality),
            mempolicy: mempolicy_cfg.map(mempolicy).transpose()?,
            affinity: Some(aff.unwrap_or_default()),
        })
    }

    /// In the process itself, before the capabilities go and before the seccomp filter:
    /// scheduler, I/O priority, personality, memory policy (runc's order).
    pub(crate) fn apply(&self) -> Step {
        if let Some(a) = &self.sched {
            // SAFETY: sched_setattr reads `a.size` bytes of the struct we own.
            let r =
                unsafe { libc::syscall(libc::SYS_sched_setattr, 0, a as *const SchedAttr, 0u32) };
            Errno::result(r).map_err(|e| sched_error(a, e))?;
        }
        if let Some((value, class)) = self.ioprio {
            const IOPRIO_WHO_PROCESS: libc::c_int = 1;
            // The process, not its process group as runc does: runc's init makes a session
            // of its own, ours keeps the caller's group unless it has a terminal, and the
            // group would reach the caller. Children inherit it: the container's process tree
            // gets it all the same.
            // SAFETY: ioprio_set takes integers only.
            let r = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) };
            Errno::result(r).map_err(|e| {
                let mut err = crate::mount::fail("set the I/O priority", class, e);
                err.detail = "(process.ioPriority)".into();
                err
            })?;
        }
        if let Some(p) = self.personality {
            // SAFETY: personality takes an integer.
            let r = unsafe { libc::personality(p) };
            Errno::result(r)
                .map_err(|e| crate::mount::fail("set the personality", format!("{p:#x}"), e))?;
        }
        if let Some(m) = &self.mempolicy {
            let (ptr, maxnode) = if m.nodes.is_empty() {
                (std::ptr::null(), 0)
            } else {
                // The kernel reads maxnode - 1 bits.
                (
                    m.nodes.as_ptr(),
                    m.nodes.len() * libc::c_ulong::BITS as usize + 1,
                )
            };
            // SAFETY: set_mempolicy reads maxnode - 1 bits of the mask we own.
            let r = unsafe { libc::syscall(libc::SYS_set_mempolicy, m.mode, ptr, maxnode) };
            Errno::result(r).map_err(|e| mempolicy_error(m, e))?;
        }
        Ok(())
    }

    /// `exec`, before its fork: the calling thread takes the `initial` CPUs, so that the
    /// child is born on them; the guard gives the thread its own back.
    pub(crate) fn initial_affinity(&self) -> Result<Option<AffinityGuard>> {
        let Some(initial) = self.affinity.as_ref().and_then(|a| a.initial.as_ref()) else {
            return Ok(None);
        };
        let mut old = vec![0 as libc::c_ulong; all_cpus().len()];
        // SAFETY: sched_getaffinity fills the buffer we own, of the size we pass.
        Errno::result(unsafe {
            libc::syscall(
                libc::SYS_sched_getaffinity,
                0,
                std::mem::size_of_val(old.as_slice()),
                old.as_mut_ptr(),
            )
        })
        .map_err(crate::error::sys_err("read our CPU affinity"))?;
        set_affinity(0, initial).map_err(|e| {
            invalid(format!(
                "process.execCPUAffinity.initial: none of its CPUs is one this process may run on ({e})"
            ))
        })?;
        Ok(Some(AffinityGuard(old)))
    }

    /// `exec`, once the child is in the container's cgroup: `final`, or with no affinity in
    /// the config at all, every CPU (so, its cpuset's); with only `initial`, it keeps that.
    pub(crate) fn final_affinity(&self, pid: i32) -> Result<()> {
        match &self.affinity {
            Some(Affinity {
                final_: Some(f), ..
            }) => set_affinity(pid, f).map_err(|e| {
                invalid(format!(
                    "process.execCPUAffinity.final: none of its CPUs is one the container may run on ({e})"
                ))
            }),
            Some(Affinity {
                initial: Some(_), ..
            }) => Ok(()),
            _ => {
                reset_affinity(pid);
                Ok(())
            }
        }
    }
}

/// Restores the calling thread's CPUs when dropped (see [`Attrs::initial_affinity`]).
pub(crate) struct AffinityGuard(Vec<libc::c_ulong>);

impl Drop for AffinityGuard {
    fn drop(&mut self) {
        if let Err(e) = set_affinity(0, &self.0) {
            log::warn!("restore our CPU affinity after an exec's fork: {e}");
        }
    }
}

/// Every CPU a mask may name (runc's bound): the kernel keeps of it the CPUs of the task's
/// cpuset.
fn all_cpus() -> Vec<libc::c_ulong> {
    vec![libc::c_ulong::MAX; (MAX_ID as usize + 1) / libc::c_ulong::BITS as usize]
}

/// Let a process (0: the calling thread) run on every CPU of its cpuset. Best effort, as
/// runc's: a failure leaves the inherited mask and says so.
pub(crate) fn reset_affinity(pid: i32) {
    if let Err(e) = set_affinity(pid, &all_cpus()) {
        log::warn!("reset the CPU affinity of {pid}: {e}");
    }
}

fn set_affinity(pid: i32, mask: &[libc::c_ulong]) -> std::result::Result<(), Errno> {
    // SAFETY: sched_setaffinity reads the mask we own, of the size we pass.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_sched_setaffinity,
            pid,
            std::mem::size_of_val(mask),
            mask.as_ptr(),
        )
    })
    .map(drop)
}

/// The spec's scheduler, checked as runc's validator does and for what the kernel would
/// refuse with a bare EINVAL (sched_setattr(2)).
fn scheduler(s: &Scheduler) -> Result<SchedAttr> {
    use LinuxSchedulerPolicy::*;
    let policy = *s.policy();
    let name = policy_name(policy);
    let (nice, priority) = (s.nice().unwrap_or(0), s.priority().unwrap_or(0));
    let (runtime, deadline, period) = (
        s.runtime().unwrap_or(0),
        s.deadline().unwrap_or(0),
        s.period().unwrap_or(0),
    );
    if policy == SchedIso {
        return Err(invalid(
            "process.scheduler.policy SCHED_ISO is reserved: Linux does not implement it".into(),
        ));
    }
    if matches!(policy, SchedOther | SchedBatch) && !(-20..=19).contains(&nice) {
        return Err(invalid(format!(
            "process.scheduler.nice {nice} is out of range (-20 to 19) for {name}"
        )));
    }
    if matches!(policy, SchedFifo | SchedRr) {
        if !(1..=99).contains(&priority) {
            return Err(invalid(format!(
                "process.scheduler.priority {priority} is out of range (1 to 99) for {name}"
            )));
        }
    } else if priority != 0 {
        return Err(invalid(format!(
            "process.scheduler.priority can only be set with SCHED_FIFO or SCHED_RR, not {name}"
        )));
    }
    if policy == SchedDeadline {
        // __checkparam_dl: runtime at least 1024 ns, runtime <= deadline <= period (or the
        // deadline as the period when none is given).
        if deadline == 0 {
            return Err(invalid(
                "process.scheduler.deadline is required with SCHED_DEADLINE".into(),
            ));
        }
        if runtime < 1024 || runtime > deadline || (period != 0 && deadline > period) {
            return Err(invalid(format!(
                "process.scheduler with SCHED_DEADLINE needs 1024 <= runtime <= deadline <= period \
                 (ns), not runtime {runtime}, deadline {deadline}, period {period}"
            )));
        }
        if (deadline | period) & (1 << 63) != 0 {
            return Err(invalid(
                "process.scheduler.deadline and period must be below 2^63 ns".into(),
            ));
        }
    } else if runtime != 0 || deadline != 0 || period != 0 {
        return Err(invalid(format!(
            "process.scheduler.runtime, deadline and period can only be set with SCHED_DEADLINE, not {name}"
        )));
    }
    let mut flags = 0u64;
    for f in s.flags().iter().flatten() {
        use LinuxSchedulerFlag::*;
        flags |= match f {
            SchedResetOnFork => 0x01,
            SchedFlagReclaim => 0x02,
            SchedFlagDLOverrun => 0x04,
            SchedFlagKeepPolicy => 0x08,
            SchedFlagKeepParams => 0x10,
            // They take sched_util_min/max, which the spec has no field for: the kernel
            // would refuse them with EINVAL.
            SchedFlagUtilClampMin | SchedFlagUtilClampMax => {
                return Err(invalid(format!(
                    "process.scheduler.flags {}: the spec has no utilization value to clamp to",
                    spec_flag_name(*f)
                )));
            }
        };
    }
    Ok(SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: match policy {
            SchedOther => 0,
            SchedFifo => 1,
            SchedRr => 2,
            SchedBatch => 3,
            SchedIso => 4,
            SchedIdle => 5,
            SchedDeadline => 6,
        },
        flags,
        nice,
        priority: priority as u32,
        runtime,
        deadline,
        period,
    })
}

fn policy_name(p: LinuxSchedulerPolicy) -> &'static str {
    use LinuxSchedulerPolicy::*;
    match p {
        SchedOther => "SCHED_OTHER",
        SchedFifo => "SCHED_FIFO",
        SchedRr => "SCHED_RR",
        SchedBatch => "SCHED_BATCH",
        SchedIso => "SCHED_ISO",
        SchedIdle => "SCHED_IDLE",
        SchedDeadline => "SCHED_DEADLINE",
    }
}

/// The spec's name of a scheduler flag (oci-spec 0.9 spells two of them otherwise in JSON).
fn spec_flag_name(f: LinuxSchedulerFlag) -> &'static str {
    use LinuxSchedulerFlag::*;
    match f {
        SchedResetOnFork => "SCHED_FLAG_RESET_ON_FORK",
        SchedFlagReclaim => "SCHED_FLAG_RECLAIM",
        SchedFlagDLOverrun => "SCHED_FLAG_DL_OVERRUN",
        SchedFlagKeepPolicy => "SCHED_FLAG_KEEP_POLICY",
        SchedFlagKeepParams => "SCHED_FLAG_KEEP_PARAMS",
        SchedFlagUtilClampMin => "SCHED_FLAG_UTIL_CLAMP_MIN",
        SchedFlagUtilClampMax => "SCHED_FLAG_UTIL_CLAMP_MAX",
    }
}

const SCHED_FLAGS: [LinuxSchedulerFlag; 7] = [
    LinuxSchedulerFlag::SchedResetOnFork,
    LinuxSchedulerFlag::SchedFlagReclaim,
    LinuxSchedulerFlag::SchedFlagDLOverrun,
    LinuxSchedulerFlag::SchedFlagKeepPolicy,
    LinuxSchedulerFlag::SchedFlagKeepParams,
    LinuxSchedulerFlag::SchedFlagUtilClampMin,
    LinuxSchedulerFlag::SchedFlagUtilClampMax,
];

fn sched_error(a: &SchedAttr, e: Errno) -> InitError {
    let name = [
        "SCHED_OTHER",
        "SCHED_FIFO",
        "SCHED_RR",
        "SCHED_BATCH",
        "SCHED_ISO",
        "SCHED_IDLE",
        "SCHED_DEADLINE",
    ]
    .get(a.policy as usize)
    .copied()
    .unwrap_or("?");
    let mut err = crate::mount::fail("set the scheduler (process.scheduler)", name, e);
    if e == Errno::EPERM && matches!(a.policy, 1 | 2) {
        // With CONFIG_RT_GROUP_SCHED, a cpu cgroup gets no realtime time unless given some.
        err.detail = "a realtime policy needs realtime time in the container's cpu cgroup \
                      (linux.resources.cpu.realtimeRuntime) where the kernel groups it"
            .into();
    } else if matches!(e, Errno::EPERM | Errno::EBUSY) && a.policy == 6 {
        err.detail = "SCHED_DEADLINE needs every CPU of the root domain in the process's \
                      cpuset, and the bandwidth to admit it"
            .into();
    }
    err
}

/// `IOPRIO_PRIO_VALUE(class, level)` of the spec's ioPriority, checked as runc does.
fn ioprio(p: &oci_spec::runtime::LinuxIOPriority) -> Result<(i32, &'static str)> {
    let level = p.priority();
    if !(0..=7).contains(&level) {
        return Err(invalid(format!(
            "process.ioPriority.priority {level} is out of range (0 to 7)"
        )));
    }
    let (class, name) = match p.class() {
        IOPriorityClass::IoprioClassRt => (1, "IOPRIO_CLASS_RT"),
        IOPriorityClass::IoprioClassBe => (2, "IOPRIO_CLASS_BE"),
        IOPriorityClass::IoprioClassIdle => (3, "IOPRIO_CLASS_IDLE"),
    };
    Ok(((class << 13) | level as i32, name))
}

fn personality(p: &LinuxPersonality) -> libc::c_ulong {
    match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        // PER_LINUX32: uname(2) reports a 32-bit machine (i686 on x86_64).
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    }
}

/// The memory policy, with runc's checks on the node count of each mode and the kernel's on
/// flags (set_mempolicy(2)).
fn mempolicy(m: &LinuxMemoryPolicy) -> Result<MemPolicy> {
    use MemoryPolicyModeType::*;
    let mode_name = m.mode().to_string();
    let nodes = match m.nodes().as_deref() {
        Some(s) => {
            parse_list(s).map_err(|e| invalid(format!("linux.memoryPolicy.nodes {s:?}: {e}")))?
        }
        None => None,
    };
    let count: u32 = nodes.iter().flatten().map(|w| w.count_ones()).sum();
    let mode = match m.mode() {
        MpolDefault => 0,
        MpolPreferred => 1,
        MpolBind => 2,
        MpolInterleave => 3,
        MpolLocal => 4,
        MpolPreferredMany => 5,
        MpolWeightedInterleave => 6,
    };
    match m.mode() {
        MpolDefault | MpolLocal if count != 0 => {
            return Err(invalid(format!(
                "linux.memoryPolicy.nodes must be empty with {mode_name}"
            )));
        }
        MpolBind | MpolInterleave | MpolPreferredMany | MpolWeightedInterleave if count == 0 => {
            return Err(invalid(format!(
                "linux.memoryPolicy.nodes must name at least one node with {mode_name}"
            )));
        }
        _ => {}
    }
    let mut flags = 0;
    let mut names = Vec::new();
    for f in m.flags().iter().flatten() {
        names.push(f.to_string());
        flags |= match f {
            MemoryPolicyFlagType::MpolFNumaBalancing => {
                if !matches!(m.mode(), MpolBind | MpolPreferredMany) {
                    return Err(invalid(format!(
                        "linux.memoryPolicy.flags MPOL_F_NUMA_BALANCING needs MPOL_BIND or \
                         MPOL_PREFERRED_MANY, not {mode_name}"
                    )));
                }
                1 << 13
            }
            MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
            MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
        };
    }
    let node_flags = (1 << 14) | (1 << 15);
    if flags & node_flags == node_flags {
        return Err(invalid(
            "linux.memoryPolicy.flags MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other"
                .into(),
        ));
    }
    if flags & node_flags != 0 && matches!(m.mode(), MpolDefault | MpolLocal) {
        return Err(invalid(format!(
            "linux.memoryPolicy.flags {} mean nothing with {mode_name}, which takes no nodes",
            names.join(",")
        )));
    }
    let mut what = mode_name;
    if let Some(n) = m.nodes().as_deref().filter(|_| count > 0) {
        what = format!("{what} nodes {n}");
    }
    Ok(MemPolicy {
        mode: mode | flags,
        nodes: nodes.unwrap_or_default(),
        what,
    })
}

fn mempolicy_error(m: &MemPolicy, e: Errno) -> InitError {
    let mut err = crate::mount::fail("set the memory policy (linux.memoryPolicy)", &m.what, e);
    if e == Errno::EINVAL {
        let allowed = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Mems_allowed_list:"))
                    .map(|v| v.trim().to_string())
            })
            .unwrap_or_default();
        err.detail = format!(
            "no node of it is a memory node the container may use (Mems_allowed_list: {allowed})"
        );
    }
    err
}

fn affinity(field: &str, a: &ExecCPUAffinity) -> Result<Affinity> {
    let list = |which: &str, s: &Option<String>| match s.as_deref() {
        Some(s) => parse_list(s).map_err(|e| invalid(format!("{field}.{which} {s:?}: {e}"))),
        None => Ok(None),
    };
    Ok(Affinity {
        initial: list("initial", a.initial())?,
        final_: list("final", a.cpu_affinity_final())?,
    })
}

/// A list of CPU or node numbers as the spec writes them ("0-3,7") into a mask, with runc's
/// rules: spaces around an element and empty elements are allowed, a range goes upwards, and
/// a list with no member is an error. An empty string is no list (None).
fn parse_list(s: &str) -> std::result::Result<Option<Vec<libc::c_ulong>>, String> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    let num = |v: &str| -> std::result::Result<u32, String> {
        let n: u32 = v.parse().map_err(|_| format!("{v:?} is not a number"))?;
        if n > MAX_ID {
            return Err(format!("{n} is above {MAX_ID}"));
        }
        Ok(n)
    };
    let mut ranges = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(part)?, num(part)?),
        };
        if a > b {
            return Err(format!("range {part} goes downwards"));
        }
        ranges.push((a, b));
    }
    let Some(max) = ranges.iter().map(|r| r.1).max() else {
        return Err("it names no member".into());
    };
    let bits = libc::c_ulong::BITS;
    let mut mask = vec![0 as libc::c_ulong; (max / bits + 1) as usize];
    for (a, b) in ranges {
        for i in a..=b {
            mask[(i / bits) as usize] |= 1 << (i % bits);
        }
    }
    Ok(Some(mask))
}

/// oci-spec 0.9 reads a few of the spec's spellings otherwise: two scheduler flags
/// (`SCHED_FLAG_RESET_ON_FORK`, `SCHED_FLAG_DL_OVERRUN`), and an `execCPUAffinity` list only
/// without spaces and never empty (the spec: "if omitted or empty", the same). Rewrite a
/// process object (`config.json`'s or a `process.json`) into what it reads, meaning the same.
/// Returns whether anything changed.
pub(crate) fn respell_process(p: &mut Value) -> bool {
    let mut changed = false;
    if let Some(flags) = p
        .pointer_mut("/scheduler/flags")
        .and_then(Value::as_array_mut)
    {
        for f in flags.iter_mut() {
            let Some(name) = f.as_str() else { continue };
            if let Some(ours) = SCHED_FLAGS
                .iter()
                .find(|k| spec_flag_name(**k) == name)
                .and_then(|k| serde_json::to_value(k).ok())
                .filter(|v| v.as_str() != Some(name))
            {
                *f = ours;
                changed = true;
            }
        }
    }
    if let Some(aff) = p.get_mut("execCPUAffinity").and_then(Value::as_object_mut) {
        for key in ["initial", "final"] {
            let Some(s) = aff.get(key).and_then(Value::as_str) else {
                continue;
            };
            let canon: Vec<&str> = s
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .collect();
            if canon.is_empty() {
                aff.remove(key);
                changed = true;
            } else if canon.join(",") != s {
                aff.insert(key.into(), Value::String(canon.join(",")));
                changed = true;
            }
        }
    }
    changed
}

/// What `cofferdam features` lists of these fields. The features document has a place for
/// the memory policy only; the rest go in annotations.
pub(crate) fn features() -> (Value, Vec<(&'static str, String)>) {
    let modes = [
        "MPOL_BIND",
        "MPOL_DEFAULT",
        "MPOL_INTERLEAVE",
        "MPOL_LOCAL",
        "MPOL_PREFERRED",
        "MPOL_PREFERRED_MANY",
        "MPOL_WEIGHTED_INTERLEAVE",
    ];
    let flags = [
        "MPOL_F_NUMA_BALANCING",
        "MPOL_F_RELATIVE_NODES",
        "MPOL_F_STATIC_NODES",
    ];
    let policies = [
        "SCHED_OTHER",
        "SCHED_FIFO",
        "SCHED_RR",
        "SCHED_BATCH",
        "SCHED_IDLE",
        "SCHED_DEADLINE",
    ];
    let sched_flags: Vec<&str> = SCHED_FLAGS
        .iter()
        .map(|f| spec_flag_name(*f))
        .filter(|n| !n.contains("UTIL_CLAMP"))
        .collect();
    let annotations = vec![
        ("process.scheduler.policy", policies.join(",")),
        ("process.scheduler.flags", sched_flags.join(",")),
        (
            "process.ioPriority.class",
            "IOPRIO_CLASS_RT,IOPRIO_CLASS_BE,IOPRIO_CLASS_IDLE".into(),
        ),
        ("process.execCPUAffinity", "initial,final".into()),
        ("linux.personality.domain", "LINUX,LINUX32".into()),
    ];
    (
        serde_json::json!({"modes": modes, "flags": flags}),
        annotations,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(mask: &[libc::c_ulong]) -> Vec<u32> {
        (0..mask.len() as u32 * 64)
            .filter(|i| mask[(*i / 64) as usize] & (1 << (i % 64)) != 0)
            .collect()
    }

    #[test]
    fn lists_parse_as_runc_parses_them() {
        assert_eq!(
            bits(&parse_list("0-3,7").unwrap().unwrap()),
            [0, 1, 2, 3, 7]
        );
        assert_eq!(bits(&parse_list(" 1 ,, 65 ").unwrap().unwrap()), [1, 65]);
        assert_eq!(parse_list("").unwrap(), None);
        assert!(parse_list(",").is_err());
        assert!(parse_list("3-1").is_err());
        assert!(parse_list("x").is_err());
        assert!(parse_list("65536").is_err());
    }

    #[test]
    fn every_spec_scheduler_flag_is_read_after_respelling() {
        let names: Vec<&str> = SCHED_FLAGS.iter().map(|f| spec_flag_name(*f)).collect();
        let mut p = serde_json::json!({
            "cwd": "/", "user": {"uid": 0, "gid": 0},
            "scheduler": {"policy": "SCHED_BATCH", "flags": names},
            "execCPUAffinity": {"initial": " 0 , 1", "final": ""}
        });
        assert!(respell_process(&mut p));
        let parsed: Process = serde_json::from_value(p).unwrap();
        let got: Vec<&str> = parsed
            .scheduler()
            .as_ref()
            .unwrap()
            .flags()
            .iter()
            .flatten()
            .map(|f| spec_flag_name(*f))
            .collect();
        assert_eq!(got, names);
        let aff = parsed.exec_cpu_affinity().as_ref().unwrap();
        assert_eq!(aff.initial().as_deref(), Some("0,1"));
        assert_eq!(aff.cpu_affinity_final(), &None);
    }

    #[test]
    fn bad_scheduler_io_priority_and_memory_policy_name_their_field() {
        let sched = |v: Value| {
            let s: Scheduler = serde_json::from_value(v).unwrap();
            scheduler(&s).map(drop).unwrap_err().to_string()
        };
        let e = sched(serde_json::json!({"policy": "SCHED_OTHER", "priority": 5}));
        assert!(e.contains("process.scheduler.priority"), "{e}");
        let e = sched(serde_json::json!({"policy": "SCHED_BATCH", "nice": 20}));
        assert!(e.contains("process.scheduler.nice"), "{e}");
        let e = sched(serde_json::json!({"policy": "SCHED_IDLE", "runtime": 100}));
        assert!(e.contains("process.scheduler.runtime"), "{e}");
        let e = sched(
            serde_json::json!({"policy": "SCHED_DEADLINE", "runtime": 2000,
                                        "deadline": 1000}),
        );
        assert!(e.contains("SCHED_DEADLINE"), "{e}");
        let e = sched(serde_json::json!({"policy": "SCHED_FIFO"}));
        assert!(e.contains("1 to 99"), "{e}");
        let e = ioprio(
            &serde_json::from_value(serde_json::json!({"class": "IOPRIO_CLASS_BE", "priority": 8}))
                .unwrap(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("process.ioPriority.priority"), "{e}");
        let mp = |v: Value| {
            let m: LinuxMemoryPolicy = serde_json::from_value(v).unwrap();
            mempolicy(&m).map(drop).unwrap_err().to_string()
        };
        let e = mp(serde_json::json!({"mode": "MPOL_BIND"}));
        assert!(e.contains("linux.memoryPolicy.nodes"), "{e}");
        let e = mp(serde_json::json!({"mode": "MPOL_LOCAL", "nodes": "0"}));
        assert!(e.contains("linux.memoryPolicy.nodes"), "{e}");
        let e = mp(serde_json::json!({"mode": "MPOL_BIND", "nodes": "0-x"}));
        assert!(e.contains("linux.memoryPolicy.nodes"), "{e}");
        let e = mp(serde_json::json!({"mode": "MPOL_INTERLEAVE", "nodes": "0",
            "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]}));
        assert!(e.contains("linux.memoryPolicy.flags"), "{e}");
    }
}
