//! `linux.seccomp`: the profile compiled to classic BPF with `seccompiler`, before the fork (so a
//! bad profile fails `create` with nothing made), and installed by the init or an exec'd process
//! just before it execs.
//!
//! seccompiler builds a filter with one action on match and one on mismatch. An OCI profile has
//! an action per rule, so it becomes several filters, which the kernel runs all of, keeping the
//! result of highest precedence (KILL > TRAP > ERRNO > NOTIFY > TRACE > LOG > ALLOW):
//!
//! - one filter per action other than ALLOW and the default: "these rules → that action, else
//!   ALLOW";
//! - one "default" filter, when the default is not ALLOW: "any rule of any action → ALLOW, else
//!   the default action". A syscall no rule matches (arguments included) gets the default.
//!
//! Where seccompiler has no word for something, we work around it rather than drop it:
//! `SCMP_ACT_NOTIFY` is compiled as a TRACE with a marker and its return instructions are
//! rewritten to `SECCOMP_RET_USER_NOTIF`; x32 syscall numbers (same audit arch as x86_64) are
//! killed by a check put in front, since seccompiler's rules would not see them; the flags and
//! the listener need seccomp(2), not prctl, so we install the programs ourselves.
//!
//! Only the native architecture is compiled: a syscall made through another ABI (32-bit x86)
//! kills the process, as seccompiler's architecture check does.
//!
//! Profiles of any age, as runc takes them:
//!
//! - a syscall name this build does not know (a profile written for a newer kernel) is skipped
//!   with a warning; names of other architectures' syscalls are skipped silently;
//! - a syscall newer than every syscall the profile names (its number above the highest named
//!   one on this architecture) gets ENOSYS rather than the default action, unless the default
//!   lets it through anyway (ALLOW, LOG, TRACE, NOTIFY: the tracer or agent decides). A profile
//!   cannot deny what did not exist when it was written, and libc falls back to the older call
//!   on ENOSYS (faccessat2 to faccessat, clone3 to clone, statx to fstatat), not on EPERM. The
//!   check is put in front of the default filter only: every other filter holds rules for
//!   named syscalls, all at or below that number, so none of them is overruled.

mod syscalls;

use std::collections::BTreeMap;
use std::os::fd::{FromRawFd, OwnedFd};

use nix::errno::Errno;
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use seccompiler::{
    SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch, sock_filter,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A compiled profile: the programs to install, in order, and how.
#[derive(Debug, Clone)]
pub struct Program {
    filters: Vec<Filter>,
    flags: libc::c_ulong,
}

#[derive(Debug, Clone)]
struct Filter {
    code: Vec<sock_filter>,
    /// This filter returns SECCOMP_RET_USER_NOTIF: install it with a new listener.
    notify: bool,
}

/// What a profile with `SCMP_ACT_NOTIFY` sends to the agent at `listenerPath`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessState {
    pub oci_version: String,
    pub fds: Vec<String>,
    pub pid: i32,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub metadata: String,
    pub state: crate::state::ContainerState,
}

const SECCOMP_RET_USER_NOTIF: u32 = 0x7fc0_0000;
/// TRACE data that stands for NOTIFY until the rewrite.
const NOTIFY_MARK: u32 = 0xfe11;
const FLAG_TSYNC: libc::c_ulong = 1;
const FLAG_LOG: libc::c_ulong = 2;
const FLAG_SPEC_ALLOW: libc::c_ulong = 4;
const FLAG_NEW_LISTENER: libc::c_ulong = 8;
const FLAG_TSYNC_ESRCH: libc::c_ulong = 16;
const FLAG_WAIT_KILLABLE_RECV: libc::c_ulong = 32;

/// The native architecture: the only one compiled.
struct Arch {
    target: TargetArch,
    /// Its syscall numbers, sorted by name.
    table: &'static [(&'static str, i64)],
    /// Its name in `linux.seccomp.architectures`.
    name: &'static str,
    /// `seccomp_data.arch` for its native ABI (AUDIT_ARCH_*).
    audit: u32,
}

#[cfg(target_arch = "x86_64")]
const ARCH: Arch = Arch {
    target: TargetArch::x86_64,
    table: syscalls::X86_64,
    name: "SCMP_ARCH_X86_64",
    audit: 0xc000_003e, // EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE
};
#[cfg(target_arch = "aarch64")]
const ARCH: Arch = Arch {
    target: TargetArch::aarch64,
    table: syscalls::AARCH64,
    name: "SCMP_ARCH_AARCH64",
    audit: 0xc000_00b7, // EM_AARCH64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE
};

/// What a syscall name in a profile is here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syscall {
    /// A syscall of this architecture, with its number.
    Native(i64),
    /// A syscall of other architectures only, which a multi-arch profile may list.
    OtherArch,
    /// A name none of the generated tables knows: a syscall newer than them, or a typo.
    Unknown,
}

/// Look a syscall name up in the generated tables.
pub fn syscall(name: &str) -> Syscall {
    let find = |t: &[(&str, i64)]| t.binary_search_by(|(n, _)| (*n).cmp(name)).ok();
    if let Some(i) = find(ARCH.table) {
        return Syscall::Native(ARCH.table[i].1);
    }
    let elsewhere = syscalls::OTHER_ARCHES.binary_search(&name).is_ok()
        || find(syscalls::X86_64).is_some()
        || find(syscalls::AARCH64).is_some();
    if elsewhere {
        Syscall::OtherArch
    } else {
        Syscall::Unknown
    }
}

/// An action with its errno/trace value, as seccompiler spells it (NOTIFY as the marker).
fn action(a: LinuxSeccompAction, errno_ret: Option<u32>, what: &str) -> Result<SeccompAction> {
    use LinuxSeccompAction as A;
    let takes_errno = matches!(a, A::ScmpActErrno | A::ScmpActTrace);
    if errno_ret.is_some() && !takes_errno {
        return Err(Error::InvalidConfig(format!(
            "linux.seccomp: {what}: errnoRet is only for SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not {a:?}"
        )));
    }
    let errno = errno_ret.unwrap_or(libc::EPERM as u32);
    Ok(match a {
        A::ScmpActKill | A::ScmpActKillThread => SeccompAction::KillThread,
        A::ScmpActKillProcess => SeccompAction::KillProcess,
        A::ScmpActTrap => SeccompAction::Trap,
        A::ScmpActErrno => SeccompAction::Errno(errno),
        A::ScmpActTrace => SeccompAction::Trace(errno),
        A::ScmpActAllow => SeccompAction::Allow,
        A::ScmpActLog => SeccompAction::Log,
        A::ScmpActNotify => SeccompAction::Trace(NOTIFY_MARK),
    })
}

fn op(o: LinuxSeccompOperator, value: u64, value_two: Option<u64>) -> (SeccompCmpOp, u64) {
    use LinuxSeccompOperator as O;
    match o {
        O::ScmpCmpNe => (SeccompCmpOp::Ne, value),
        O::ScmpCmpLt => (SeccompCmpOp::Lt, value),
        O::ScmpCmpLe => (SeccompCmpOp::Le, value),
        O::ScmpCmpEq => (SeccompCmpOp::Eq, value),
        O::ScmpCmpGe => (SeccompCmpOp::Ge, value),
        O::ScmpCmpGt => (SeccompCmpOp::Gt, value),
        // libseccomp: `value` is the mask, `valueTwo` what the masked argument must equal.
        O::ScmpCmpMaskedEq => (SeccompCmpOp::MaskedEq(value), value_two.unwrap_or(0)),
    }
}

/// The rules of one action: per syscall, either unconditional (None) or a list of
/// alternatives (any may match).
type Rules = BTreeMap<i64, Option<Vec<SeccompRule>>>;

fn add(rules: &mut Rules, nr: i64, rule: Option<SeccompRule>) {
    match (rules.entry(nr).or_insert_with(|| Some(Vec::new())), rule) {
        (slot @ Some(_), None) => *slot = None,
        (Some(list), Some(r)) => list.push(r),
        (None, _) => {}
    }
}

fn to_filter_rules(r: &Rules) -> BTreeMap<i64, Vec<SeccompRule>> {
    r.iter()
        .map(|(nr, rules)| (*nr, rules.clone().unwrap_or_default()))
        .collect()
}

/// Compile a profile. Fails on anything it cannot honour: an unknown action or architecture
/// name, an errnoRet where it has no meaning, an argument index over 5. An unknown syscall
/// name is skipped with a warning.
pub fn compile(s: &LinuxSeccomp) -> Result<Program> {
    let default = action(s.default_action(), s.default_errno_ret(), "defaultAction")?;
    if let Some(archs) = s.architectures() {
        let names: Vec<String> = archs
            .iter()
            .map(|a| {
                serde_json::to_value(a)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
            })
            .map(|n| n.unwrap_or_default())
            .collect();
        if !names.is_empty() && !names.iter().any(|n| n == ARCH.name) {
            return Err(Error::Unsupported(format!(
                "linux.seccomp.architectures {names:?} does not include this machine's {}",
                ARCH.name
            )));
        }
    }
    // Rules grouped by action, in the order the profile gives them.
    let mut groups: Vec<(SeccompAction, Rules)> = Vec::new();
    // The highest syscall number the profile names, in a rule of any action (the default's
    // too): how new the profile is, for the ENOSYS check.
    let mut newest: Option<i64> = None;
    let mut unknown = std::collections::BTreeSet::new();
    for (i, sc) in s.syscalls().iter().flatten().enumerate() {
        let what = format!("syscalls[{i}]");
        let act = action(sc.action(), sc.errno_ret(), &what)?;
        let mut numbers = Vec::new();
        for name in sc.names() {
            match syscall(name) {
                Syscall::Native(nr) => numbers.push(nr),
                Syscall::OtherArch => {}
                Syscall::Unknown => {
                    if unknown.insert(name.as_str()) {
                        log::warn!(
                            "linux.seccomp: syscall {name:?} is unknown here (a newer \
                             kernel's?): skipped"
                        );
                    }
                }
            }
        }
        newest = newest.max(numbers.iter().copied().max());
        if act == default {
            // Matching it or not ends the same way.
            continue;
        }
        let args = sc.args().clone().unwrap_or_default();
        let mut conds = Vec::new();
        for a in &args {
            if a.index() > 5 {
                return Err(Error::InvalidConfig(format!(
                    "linux.seccomp: {what}: argument index {} is over 5",
                    a.index()
                )));
            }
            let (o, v) = op(a.op(), a.value(), a.value_two());
            let c = SeccompCondition::new(a.index() as u8, SeccompCmpArgLen::Qword, o, v)
                .map_err(|e| Error::InvalidConfig(format!("linux.seccomp: {what}: {e}")))?;
            conds.push(c);
        }
        // As libseccomp (and so runc) reads it: several conditions on one argument are
        // alternatives; on different arguments they must all hold.
        let same_index = args.len() > 1 && args.iter().all(|a| a.index() == args[0].index());
        let alternatives: Vec<Option<SeccompRule>> = if conds.is_empty() {
            vec![None]
        } else if same_index {
            conds
                .into_iter()
                .map(|c| SeccompRule::new(vec![c]).map(Some))
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| Error::InvalidConfig(format!("linux.seccomp: {what}: {e}")))?
        } else {
            vec![Some(SeccompRule::new(conds).map_err(|e| {
                Error::InvalidConfig(format!("linux.seccomp: {what}: {e}"))
            })?)]
        };
        let slot = match groups.iter().position(|(a, _)| *a == act) {
            Some(p) => p,
            None => {
                groups.push((act, Rules::new()));
                groups.len() - 1
            }
        };
        for &nr in &numbers {
            for alt in &alternatives {
                add(&mut groups[slot].1, nr, alt.clone());
            }
        }
    }

    let arch = ARCH.target;
    let build = |rules: BTreeMap<i64, Vec<SeccompRule>>,
                 mismatch: SeccompAction,
                 matched: SeccompAction,
                 prefix: Vec<sock_filter>|
     -> Result<Filter> {
        let notify = mismatch == SeccompAction::Trace(NOTIFY_MARK)
            || matched == SeccompAction::Trace(NOTIFY_MARK);
        let f = SeccompFilter::new(rules, mismatch, matched, arch)
            .map_err(|e| Error::InvalidConfig(format!("linux.seccomp: {e}")))?;
        let mut code: Vec<sock_filter> = f.try_into().map_err(|e: seccompiler::BackendError| {
            Error::InvalidConfig(format!("linux.seccomp: {e}"))
        })?;
        if notify {
            let mark = libc::SECCOMP_RET_TRACE | NOTIFY_MARK;
            for i in code.iter_mut().filter(|i| i.code == RET_K && i.k == mark) {
                i.k = SECCOMP_RET_USER_NOTIF;
            }
        }
        Ok(Filter {
            code: x32_guard().into_iter().chain(prefix).chain(code).collect(),
            notify,
        })
    };
    let mut filters = Vec::new();
    for (act, rules) in &groups {
        if *act != SeccompAction::Allow && !rules.is_empty() {
            filters.push(build(
                to_filter_rules(rules),
                SeccompAction::Allow,
                act.clone(),
                Vec::new(),
            )?);
        }
    }
    if default != SeccompAction::Allow {
        let mut all = Rules::new();
        for (_, rules) in &groups {
            for (nr, alts) in rules {
                match alts {
                    None => add(&mut all, *nr, None),
                    Some(list) => list
                        .iter()
                        .for_each(|r| add(&mut all, *nr, Some(r.clone()))),
                }
            }
        }
        // As runc decides: not where the default lets the syscall through or hands it to a
        // tracer or agent (which can answer ENOSYS itself), nor where it is ENOSYS already.
        let lets_through = matches!(default, SeccompAction::Log | SeccompAction::Trace(_));
        let enosys = match newest {
            Some(n) if !lets_through && default != SeccompAction::Errno(libc::ENOSYS as u32) => {
                enosys_above(n as u32)
            }
            _ => Vec::new(),
        };
        filters.push(build(
            to_filter_rules(&all),
            default.clone(),
            SeccompAction::Allow,
            enosys,
        )?);
    }
    let mut flags = 0;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => FLAG_WAIT_KILLABLE_RECV,
        };
    }
    let notifies = filters.iter().any(|f| f.notify);
    if notifies && s.listener_path().is_none() {
        return Err(Error::InvalidConfig(
            "linux.seccomp: SCMP_ACT_NOTIFY needs listenerPath".into(),
        ));
    }
    if s.listener_metadata().is_some() && s.listener_path().is_none() {
        return Err(Error::InvalidConfig(
            "linux.seccomp: listenerMetadata without listenerPath".into(),
        ));
    }
    Ok(Program { filters, flags })
}

const RET_K: u16 = 0x06; // BPF_RET | BPF_K

/// On x86_64, syscall numbers with bit 30 set are the x32 ABI, under the same audit arch:
/// kill them, as any other foreign ABI is killed.
fn x32_guard() -> Vec<sock_filter> {
    if !cfg!(target_arch = "x86_64") {
        return Vec::new();
    }
    let stmt = |code: u16, k: u32| sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    vec![
        stmt(0x20, 0), // A = seccomp_data.nr
        sock_filter {
            code: 0x45,
            jt: 0,
            jf: 1,
            k: 0x4000_0000,
        }, // if A & X32 bit
        stmt(RET_K, libc::SECCOMP_RET_KILL_PROCESS),
    ]
}

/// Native syscalls numbered above `newest` return ENOSYS; the rest go on to the filter that
/// follows. Other ABIs go on too, to be killed by seccompiler's architecture check.
fn enosys_above(newest: u32) -> Vec<sock_filter> {
    let i = |code: u16, jt: u8, jf: u8, k: u32| sock_filter { code, jt, jf, k };
    vec![
        i(0x20, 0, 0, 4),          // A = seccomp_data.arch
        i(0x15, 0, 3, ARCH.audit), // if A != native: on to the filter
        i(0x20, 0, 0, 0),          // A = seccomp_data.nr
        i(0x25, 0, 1, newest),     // if A > newest (unsigned):
        i(RET_K, 0, 0, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32), // ENOSYS
    ]
}

impl Program {
    /// Whether a listener fd comes out of [`Program::install`] (only the tests ask).
    #[cfg(test)]
    fn notifies(&self) -> bool {
        self.filters.iter().any(|f| f.notify)
    }

    /// Install every filter in the calling process (the init or an exec'd child, just before
    /// execve). Needs no_new_privs or CAP_SYS_ADMIN. Returns the notify listener, if any.
    pub fn install(&self) -> std::result::Result<Option<OwnedFd>, Errno> {
        let mut listener = None;
        for f in &self.filters {
            let mut flags = self.flags;
            if f.notify {
                flags |= FLAG_NEW_LISTENER;
                // TSYNC and a listener only go together with TSYNC_ESRCH.
                if flags & FLAG_TSYNC != 0 {
                    flags |= FLAG_TSYNC_ESRCH;
                }
            }
            let prog = libc::sock_fprog {
                len: f.code.len() as u16,
                filter: f.code.as_ptr() as *mut libc::sock_filter,
            };
            // SAFETY: seccomp(SET_MODE_FILTER) reads `len` instructions from the vector we own
            // (seccompiler's sock_filter is #[repr(C)] like the kernel's) and copies them.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    flags,
                    &prog as *const libc::sock_fprog,
                )
            };
            let r = Errno::result(r)?;
            if f.notify {
                // SAFETY: with NEW_LISTENER the return value is a new fd that only we own.
                listener = Some(unsafe { OwnedFd::from_raw_fd(r as i32) });
            }
        }
        Ok(listener)
    }
}

/// Send the container process state and the listener fd to the agent at `listenerPath`: one
/// message, one connection, closed after (the spec's protocol). A failure fails the create.
pub fn send_to_agent(
    s: &LinuxSeccomp,
    listener: &OwnedFd,
    pid: i32,
    state: crate::state::ContainerState,
) -> Result<()> {
    use std::os::fd::AsRawFd;
    let path = s.listener_path().clone().unwrap_or_default();
    let msg = ProcessState {
        oci_version: crate::spec::OCI_VERSION.to_string(),
        fds: vec!["seccompFd".into()],
        pid,
        metadata: s.listener_metadata().clone().unwrap_or_default(),
        state,
    };
    let json = serde_json::to_vec(&msg).expect("state serializes");
    let conn = std::os::unix::net::UnixStream::connect(&path).map_err(|source| Error::Io {
        op: "connect to the seccomp listener socket",
        path: path.clone(),
        source,
    })?;
    crate::terminal::send_fd(conn.as_raw_fd(), &json, listener.as_raw_fd()).map_err(|e| Error::Io {
        op: "send the seccomp listener",
        path,
        source: e.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: &str) -> Result<Program> {
        compile(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn names_and_errors() {
        assert!(matches!(syscall("read"), Syscall::Native(_)));
        assert_eq!(syscall("socketcall"), Syscall::OtherArch, "x86 32-bit only");
        assert_eq!(syscall("arm_fadvise64_64"), Syscall::OtherArch);
        assert_eq!(syscall("no_such_call"), Syscall::Unknown);
        // A newer kernel's syscall is skipped: the rest of the profile stands.
        let p = profile(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["frobnicate","mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#).unwrap();
        assert_eq!(p.filters.len(), 1);
        assert!(profile(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getcwd"],"action":"SCMP_ACT_ALLOW","errnoRet":5}]}"#).is_err());
        assert!(profile(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getcwd"],"action":"SCMP_ACT_NOTIFY"}]}"#).is_err(), "notify needs a listener");
        assert!(
            serde_json::from_str::<LinuxSeccomp>(r#"{"defaultAction":"SCMP_ACT_MAYBE"}"#).is_err()
        );
    }

    #[test]
    fn one_filter_per_action_and_a_default() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
            {"names":["read","write"],"action":"SCMP_ACT_ALLOW"},
            {"names":["getcwd"],"action":"SCMP_ACT_ERRNO","errnoRet":38},
            {"names":["chmod"],"action":"SCMP_ACT_ERRNO"}]}"#,
        )
        .unwrap();
        // getcwd → ENOSYS filter; chmod has the default action (EPERM): dropped; the default
        // filter allows read, write and getcwd.
        assert_eq!(p.filters.len(), 2);
        assert!(!p.notifies());
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/x","syscalls":[
            {"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        )
        .unwrap();
        assert_eq!(p.filters.len(), 1);
        assert!(p.notifies());
        assert!(
            p.filters[0]
                .code
                .iter()
                .any(|i| i.k == SECCOMP_RET_USER_NOTIF)
        );
    }

    /// Run `nr` (arguments all 0) in a forked child under the profile: its errno, 0 if it
    /// succeeded, or 128 + the signal that killed it.
    fn under(p: &Program, nr: libc::c_long) -> i32 {
        // SAFETY: the child only makes syscalls (the install allocates nothing) and _exits.
        unsafe {
            match libc::fork() {
                0 => {
                    libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                    if p.install().is_err() {
                        libc::_exit(255);
                    }
                    let r = libc::syscall(nr, 0, 0, 0, 0, 0, 0);
                    libc::_exit(if r < 0 { *libc::__errno_location() } else { 0 })
                }
                pid => {
                    let mut status = 0;
                    assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
                    if libc::WIFSIGNALED(status) {
                        128 + libc::WTERMSIG(status)
                    } else {
                        libc::WEXITSTATUS(status)
                    }
                }
            }
        }
    }

    #[test]
    fn syscalls_newer_than_the_profile_get_enosys_and_named_ones_keep_their_rule() {
        use libc::{SYS_getpid, SYS_getppid, SYS_getrandom, SYS_getuid};
        use libc::{SYS_membarrier, SYS_sched_yield};
        let named = ["exit_group", "getppid", "getpid", "getuid"];
        let newest = named
            .iter()
            .map(|n| match syscall(n) {
                Syscall::Native(nr) => nr,
                other => panic!("{n}: {other:?}"),
            })
            .max()
            .unwrap();
        // getrandom and membarrier (with zero arguments) succeed, and are newer than all of
        // those; sched_yield succeeds and is older.
        assert!(
            newest < SYS_getrandom && SYS_getrandom < SYS_membarrier && SYS_sched_yield < newest
        );
        let old = |default: &str, extra: &str| {
            profile(&format!(
                r#"{{"defaultAction":"{default}","syscalls":[
                {{"names":["exit_group","getppid"],"action":"SCMP_ACT_ALLOW"}},
                {{"names":["getpid"],"action":"SCMP_ACT_ERRNO"}},
                {{"names":["getuid"],"action":"SCMP_ACT_ERRNO","errnoRet":13}}{extra}]}}"#
            ))
            .unwrap()
        };
        let p = old("SCMP_ACT_ERRNO", "");
        assert_eq!(under(&p, SYS_getppid), 0, "allowed");
        assert_eq!(under(&p, SYS_getpid), libc::EPERM, "named, default action");
        assert_eq!(under(&p, SYS_getuid), libc::EACCES, "named, its own errno");
        assert_eq!(under(&p, SYS_sched_yield), libc::EPERM, "unnamed, older");
        assert_eq!(under(&p, SYS_getrandom), libc::ENOSYS, "newer");
        assert_eq!(under(&p, SYS_membarrier), libc::ENOSYS, "newer");

        // Naming getrandom makes it part of the profile: its rule holds, and only what is
        // newer than it gets ENOSYS.
        let p = old(
            "SCMP_ACT_ERRNO",
            r#",{"names":["getrandom"],"action":"SCMP_ACT_ERRNO","errnoRet":18}"#,
        );
        assert_eq!(under(&p, SYS_getrandom), libc::EXDEV);
        assert_eq!(under(&p, SYS_membarrier), libc::ENOSYS);
        let p = old(
            "SCMP_ACT_ERRNO",
            r#",{"names":["getrandom"],"action":"SCMP_ACT_ERRNO"}"#,
        );
        assert_eq!(
            under(&p, SYS_getrandom),
            libc::EPERM,
            "named, default action"
        );

        // A killing default kills what is older and unnamed; what is newer gets ENOSYS.
        let p = old("SCMP_ACT_KILL_PROCESS", "");
        assert_eq!(under(&p, SYS_sched_yield), 128 + libc::SIGSYS);
        assert_eq!(under(&p, SYS_getrandom), libc::ENOSYS);
        assert_eq!(under(&p, SYS_getuid), libc::EACCES);

        // Defaults that let a syscall through (or that are ENOSYS already) are left alone.
        let p = old("SCMP_ACT_LOG", "");
        assert_eq!(under(&p, SYS_getrandom), 0);
        assert_eq!(under(&p, SYS_getpid), libc::EPERM);
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"syscalls":[
            {"names":["exit_group"],"action":"SCMP_ACT_ALLOW"}]}"#,
        )
        .unwrap();
        assert_eq!(under(&p, SYS_sched_yield), libc::ENOSYS);
        assert_eq!(under(&p, SYS_getrandom), libc::ENOSYS);
    }
}
