//! `linux.resources.devices`: the rules, with the devices every container gets (runc's list),
//! written as v1 `devices.allow`/`devices.deny` lines or compiled into the
//! `BPF_PROG_TYPE_CGROUP_DEVICE` program that cgroup v2 uses instead.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::error::{Error, Result};

/// One rule: `type major:minor access`, None for `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    /// 'a', 'c' or 'b'.
    pub kind: char,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    /// A subset of "rwm".
    pub access: String,
}

impl Rule {
    fn new(allow: bool, kind: char, major: Option<i64>, minor: Option<i64>, access: &str) -> Rule {
        Rule {
            allow,
            kind,
            major,
            minor,
            access: access.into(),
        }
    }

    fn from_spec(d: &LinuxDeviceCgroup) -> Result<Rule> {
        let kind = match d.typ().unwrap_or_default() {
            LinuxDeviceType::A => 'a',
            LinuxDeviceType::C | LinuxDeviceType::U => 'c',
            LinuxDeviceType::B => 'b',
            LinuxDeviceType::P => {
                return Err(Error::InvalidConfig(
                    "linux.resources.devices: type \"p\" (fifo) cannot be a cgroup rule".into(),
                ));
            }
        };
        let access = d.access().clone().unwrap_or_else(|| "rwm".into());
        if access.is_empty() || !access.chars().all(|c| "rwm".contains(c)) {
            return Err(Error::InvalidConfig(format!(
                "linux.resources.devices: access {access:?} is not a subset of \"rwm\""
            )));
        }
        Ok(Rule::new(d.allow(), kind, d.major(), d.minor(), &access))
    }

    /// Everything, of every type: such a rule decides the default.
    pub(super) fn is_wildcard(&self) -> bool {
        self.kind == 'a'
            && self.major.is_none()
            && self.minor.is_none()
            && "rwm".chars().all(|c| self.access.contains(c))
    }

    /// The line for `devices.allow` / `devices.deny`.
    pub fn to_v1(&self) -> String {
        if self.kind == 'a' {
            // The kernel reads "a" alone as every device (the rest of the line is ignored).
            return "a".into();
        }
        let n = |v: Option<i64>| v.map_or("*".into(), |v| v.to_string());
        format!(
            "{} {}:{} {}",
            self.kind,
            n(self.major),
            n(self.minor),
            self.access
        )
    }
}

/// The devices every container may use whatever its rules say, appended last as runc does:
/// mknod of any device (the spec's linux.devices are made in /dev), and null, zero, full,
/// random, urandom, tty, console, ptmx and the pty slaves.
fn defaults() -> Vec<Rule> {
    let c = |maj, min: Option<i64>| Rule::new(true, 'c', Some(maj), min, "rwm");
    vec![
        Rule::new(true, 'c', None, None, "m"),
        Rule::new(true, 'b', None, None, "m"),
        c(1, Some(3)),
        c(1, Some(5)),
        c(1, Some(7)),
        c(1, Some(8)),
        c(1, Some(9)),
        c(5, Some(0)),
        c(5, Some(1)),
        c(5, Some(2)),
        c(136, None),
    ]
}

/// The rules to apply: the config's, then the defaults. None when the config has none, which
/// leaves the cgroup as its parent has it (as runc does).
pub fn rules(spec: Option<&Vec<LinuxDeviceCgroup>>) -> Result<Option<Vec<Rule>>> {
    let Some(list) = spec.filter(|l| !l.is_empty()) else {
        return Ok(None);
    };
    let mut out: Vec<Rule> = list.iter().map(Rule::from_spec).collect::<Result<_>>()?;
    out.extend(defaults());
    Ok(Some(out))
}

// --- cgroup v2: a BPF program -------------------------------------------------------------

/// One eBPF instruction, as `struct bpf_insn`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    /// dst_reg in the low nibble, src_reg in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

const LDX_MEM_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const ALU64_AND_K: u8 = 0x57;
const ALU64_RSH_K: u8 = 0x77;
const ALU64_MOV_K: u8 = 0xb7;
const ALU64_MOV_X: u8 = 0xbf;
const JMP_JNE_K: u8 = 0x55; // if dst != imm goto +off
const JMP_JSET_K: u8 = 0x45; // if dst & imm goto +off
const JMP_EXIT: u8 = 0x95;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

/// Compile rules into a program over `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major;
/// u32 minor; }` (access_type: access << 16 | type) that returns 1 to allow and 0 to deny.
///
/// The last matching rule wins, so the program tests the rules last to first and returns at
/// the first match. A wildcard rule (`a *:* rwm`) makes every earlier rule irrelevant and sets
/// what happens when no later rule matches; with none, that is "allow", which is what a
/// cgroup with no program does.
pub fn program(rules: &[Rule]) -> Vec<Insn> {
    let start = rules.iter().rposition(Rule::is_wildcard);
    let default = start.is_none_or(|i| rules[i].allow);
    let live = &rules[start.map_or(0, |i| i + 1)..];
    // r2 = type, r3 = requested access, r4 = major, r5 = minor.
    let mut p = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU64_AND_K, 2, 0, 0, 0xffff),
        insn(LDX_MEM_W, 3, 1, 0, 0),
        insn(ALU64_RSH_K, 3, 0, 0, 16),
        insn(LDX_MEM_W, 4, 1, 4, 0),
        insn(LDX_MEM_W, 5, 1, 8, 0),
    ];
    for r in live.iter().rev() {
        // Each test jumps past the rest of this rule's block when it does not match.
        let mut tests: Vec<(u8, u8, i32)> = Vec::new();
        match r.kind {
            'c' => tests.push((JMP_JNE_K, 2, 2)), // BPF_DEVCG_DEV_CHAR
            'b' => tests.push((JMP_JNE_K, 2, 1)), // BPF_DEVCG_DEV_BLOCK
            _ => {}
        }
        let bits = r.access.chars().fold(0, |b, c| {
            b | match c {
                'm' => 1, // BPF_DEVCG_ACC_MKNOD
                'r' => 2, // BPF_DEVCG_ACC_READ
                _ => 4,   // BPF_DEVCG_ACC_WRITE
            }
        });
        if bits != 7 {
            // The request must ask for nothing beyond the rule's access: r6 = r3 & ~bits.
            tests.push((0, 0, !bits));
        }
        if let Some(m) = r.major {
            tests.push((JMP_JNE_K, 4, m as i32));
        }
        if let Some(m) = r.minor {
            tests.push((JMP_JNE_K, 5, m as i32));
        }
        let len: usize = tests
            .iter()
            .map(|t| if t.0 == 0 { 2 } else { 1 })
            .sum::<usize>()
            + 2;
        let mut at = 0;
        for (code, reg, imm) in tests {
            if code == 0 {
                p.push(insn(ALU64_MOV_X, 6, 3, 0, 0));
                at += 1;
                let off = (len - at - 1) as i16;
                p.push(insn(JMP_JSET_K, 6, 0, off, imm));
            } else {
                let off = (len - at - 1) as i16;
                p.push(insn(code, reg, 0, off, imm));
            }
            at += 1;
        }
        p.push(insn(ALU64_MOV_K, 0, 0, 0, i32::from(r.allow)));
        p.push(insn(JMP_EXIT, 0, 0, 0, 0));
    }
    p.push(insn(ALU64_MOV_K, 0, 0, 0, i32::from(default)));
    p.push(insn(JMP_EXIT, 0, 0, 0, 0));
    p
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The parts of `union bpf_attr` we use; the kernel takes any size up to its own and reads the
/// rest as zero.
#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
}

#[repr(C)]
#[derive(Default)]
struct Attach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct Query {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFd {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::io::Result<libc::c_long> {
    // SAFETY: attr is a live, writable #[repr(C)] prefix of union bpf_attr of the given size;
    // every pointer inside it (instructions, license, log, id array) points to memory that
    // outlives the call. The kernel reads and writes only within that size.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn fd_from(r: libc::c_long) -> OwnedFd {
    // SAFETY: the bpf() call returned this new fd and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(r as i32) }
}

fn load(prog: &[Insn]) -> Result<OwnedFd> {
    let license = c"Apache";
    // Without a log first: a verifier log that overflows its buffer fails the load (ENOSPC)
    // of a program that is fine. Only a refused program is loaded again, for the reason.
    let attempt = |log: Option<&mut Vec<u8>>| {
        let mut attr = ProgLoad {
            prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
            insn_cnt: prog.len() as u32,
            insns: prog.as_ptr() as u64,
            license: license.as_ptr() as u64,
            ..Default::default()
        };
        if let Some(log) = log {
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
        }
        attr.prog_name[..7].copy_from_slice(b"devices");
        bpf(BPF_PROG_LOAD, &mut attr)
    };
    match attempt(None) {
        Ok(fd) => Ok(fd_from(fd)),
        Err(e) => {
            let mut log = vec![0u8; 1 << 20];
            let _ = attempt(Some(&mut log));
            let msg = String::from_utf8_lossy(&log);
            let last = msg
                .trim_end_matches('\0')
                .trim()
                .lines()
                .last()
                .unwrap_or("")
                .to_string();
            Err(Error::Unsupported(format!(
                "load the cgroup v2 device program: {e}: {last}"
            )))
        }
    }
}

/// The device programs attached to the cgroup now.
fn attached(cg: &OwnedFd) -> std::io::Result<Vec<OwnedFd>> {
    let mut ids = [0u32; 64];
    let mut q = Query {
        target_fd: cg.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut q)?;
    let mut out = Vec::new();
    for &id in &ids[..q.prog_cnt as usize] {
        let mut g = GetFd {
            prog_id: id,
            ..Default::default()
        };
        out.push(fd_from(bpf(BPF_PROG_GET_FD_BY_ID, &mut g)?));
    }
    Ok(out)
}

/// Attach the program for `rules` to the cgroup at `dir`, replacing ours from before (an
/// `update`): the new one is attached first, so there is no moment without rules.
pub fn apply_v2(dir: &Path, rules: &[Rule]) -> Result<()> {
    let prog = load(&program(rules))?;
    let cg: OwnedFd = std::fs::File::open(dir)
        .map_err(|source| Error::Cgroup {
            op: "open",
            path: dir.to_path_buf(),
            source,
        })?
        .into();
    let attach_err = |op: &'static str| {
        let path = dir.to_path_buf();
        move |source| Error::Cgroup { op, path, source }
    };
    let old = attached(&cg).map_err(attach_err("query device programs"))?;
    let mut a = Attach {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    bpf(BPF_PROG_ATTACH, &mut a).map_err(attach_err("attach device program"))?;
    for o in old {
        let mut d = Attach {
            target_fd: cg.as_raw_fd() as u32,
            attach_bpf_fd: o.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            attach_flags: 0,
        };
        bpf(BPF_PROG_DETACH, &mut d).map_err(attach_err("detach old device program"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run a program over one request, the way the kernel would.
    fn eval(p: &[Insn], kind: u32, access: u32, major: u32, minor: u32) -> i64 {
        let ctx = [(access << 16) | kind, major, minor];
        let mut r = [0i64; 11];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            let jump = |c: bool| if c { i.off as usize } else { 0 };
            pc += 1;
            match i.code {
                LDX_MEM_W => r[dst] = i64::from(ctx[i.off as usize / 4]),
                ALU64_AND_K => r[dst] &= i64::from(i.imm),
                ALU64_RSH_K => r[dst] >>= i.imm,
                ALU64_MOV_K => r[dst] = i64::from(i.imm),
                ALU64_MOV_X => r[dst] = r[src],
                JMP_JNE_K => pc += jump(r[dst] != i64::from(i.imm)),
                JMP_JSET_K => pc += jump(r[dst] & i64::from(i.imm) != 0),
                JMP_EXIT => return r[0],
                c => panic!("unknown opcode {c:#x}"),
            }
        }
    }

    fn rule(allow: bool, kind: char, major: Option<i64>, minor: Option<i64>, a: &str) -> Rule {
        Rule::new(allow, kind, major, minor, a)
    }

    #[test]
    fn last_matching_rule_wins() {
        let rules = vec![
            rule(false, 'a', None, None, "rwm"),
            rule(true, 'c', Some(1), Some(11), "r"),
            rule(true, 'c', Some(10), None, "rw"),
            rule(false, 'c', Some(10), Some(237), "rwm"),
        ];
        let p = program(&rules);
        const CHR: u32 = 2;
        const BLK: u32 = 1;
        assert_eq!(eval(&p, CHR, 2, 1, 11), 1, "read kmsg allowed");
        assert_eq!(eval(&p, CHR, 4, 1, 11), 0, "write kmsg denied");
        assert_eq!(
            eval(&p, CHR, 6, 1, 11),
            0,
            "read+write asks for more than r"
        );
        assert_eq!(eval(&p, CHR, 2, 10, 200), 1, "10:* rw");
        assert_eq!(eval(&p, CHR, 1, 10, 200), 0, "mknod not in rw");
        assert_eq!(eval(&p, CHR, 2, 10, 237), 0, "later deny wins");
        assert_eq!(eval(&p, BLK, 2, 1, 11), 0, "block 1:11 is another device");
        assert_eq!(eval(&p, CHR, 2, 4, 1), 0, "default deny");
    }

    #[test]
    fn without_a_wildcard_the_default_is_allow() {
        let p = program(&[rule(false, 'b', Some(8), None, "w")]);
        assert_eq!(eval(&p, 1, 4, 8, 0), 0);
        assert_eq!(eval(&p, 1, 2, 8, 0), 1);
        assert_eq!(eval(&p, 2, 4, 8, 0), 1);
    }

    #[test]
    fn defaults_come_last_and_v1_lines() {
        let spec = vec![LinuxDeviceCgroup::default()];
        let r = rules(Some(&spec)).unwrap().unwrap();
        assert_eq!(r[0].to_v1(), "a");
        assert!(!r[0].allow);
        assert_eq!(r.last().unwrap().to_v1(), "c 136:* rwm");
        assert!(rules(None).unwrap().is_none());
        let p = program(&r);
        assert_eq!(eval(&p, 2, 6, 1, 3), 1, "/dev/null is always allowed");
        assert_eq!(eval(&p, 2, 2, 1, 11), 0, "kmsg is not");
        assert_eq!(eval(&p, 1, 1, 8, 0), 1, "mknod of any block device");
    }
}
