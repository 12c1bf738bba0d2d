//! `linux.netDevices`: network devices of the host moved into the container's network
//! namespace, renamed as asked, with their permanent global addresses and up (config-linux.md,
//! "Network Devices"). `create` does it, as runc does, once the init has made (or joined) its
//! network namespace and before the init goes on, so that the create-time hooks see them.
//!
//! Nothing is done at `delete`: the spec forbids moving a device back. When the namespace
//! goes, the kernel returns a physical device to the host's and destroys a virtual one.
//!
//! The kernel is spoken to in rtnetlink directly (a handful of messages): a socket in our own
//! namespace finds, downs and moves each device; one made in the container's (by a short-lived
//! thread that enters it) adds the addresses and sets the device up.

use std::collections::BTreeSet;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, Result};

const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_DUMP: u16 = 0x300;
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_FD: u16 = 28;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_FLAGS: u16 = 8;
const IFA_F_PERMANENT: u32 = 0x80;
const IFF_UP: u32 = 0x1;
/// The kernel's limit on a device name, its NUL included.
const IFNAMSIZ: usize = 16;

/// Whether the config moves any device.
pub fn wanted(spec: &Spec) -> bool {
    devices(spec).next().is_some()
}

/// (host name, name in the container) of each device.
fn devices(spec: &Spec) -> impl Iterator<Item = (&str, &str)> {
    spec.linux()
        .iter()
        .flat_map(|l| l.net_devices().iter().flatten())
        .map(|(host, d)| (host.as_str(), d.name().as_deref().unwrap_or(host.as_str())))
}

/// The kernel's rule for a device name (dev_valid_name): 1 to 15 bytes, not `.` or `..`, no
/// `/`, `:` or white space.
fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() < IFNAMSIZ
        && n != "."
        && n != ".."
        && !n
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace())
}

/// Before anything is made: valid names, distinct in the container, a network namespace of
/// the container's own to move them to, a privileged runtime, and each device on the host
/// (the spec: the runtime MUST check the move is possible).
pub fn validate(spec: &Spec) -> Result<()> {
    if !wanted(spec) {
        return Ok(());
    }
    let invalid = |m: String| Err(Error::InvalidConfig(m));
    if !crate::namespaces::is_private(spec, LinuxNamespaceType::Network) {
        return invalid("linux.netDevices needs a network namespace for the container".into());
    }
    if !nix::unistd::geteuid().is_root() {
        return Err(Error::Unsupported(
            "linux.netDevices: a rootless container cannot take the host's network devices".into(),
        ));
    }
    let new_netns = crate::namespaces::wants_new(spec, LinuxNamespaceType::Network);
    let mut names = BTreeSet::new();
    let mut nl = Netlink::open().map_err(crate::error::sys_err("open a netlink socket"))?;
    for (host, name) in devices(spec) {
        for n in [host, name] {
            if !valid_name(n) {
                return invalid(format!("linux.netDevices: invalid device name {n:?}"));
            }
        }
        // A name with %d is a template the kernel completes with a free number.
        if !name.contains("%d") && !names.insert(name) {
            return invalid(format!(
                "linux.netDevices: two devices would be named {name:?} in the container"
            ));
        }
        if new_netns && name == "lo" {
            return invalid(
                "linux.netDevices: \"lo\" is already in the container's network namespace".into(),
            );
        }
        match nl.link_by_name(host) {
            Ok(_) => {}
            Err(Errno::ENODEV) => {
                return invalid(format!(
                    "linux.netDevices: the host has no network device {host:?}"
                ));
            }
            Err(e) => {
                return Err(Error::Sys {
                    op: "look up a network device of linux.netDevices",
                    errno: e,
                });
            }
        }
    }
    Ok(())
}

/// Move the config's devices into the network namespace of `pid` (the init, which has made or
/// joined it): each down on the host, moved and renamed in one request, its permanent global
/// addresses added back there, then up.
pub fn move_into(spec: &Spec, pid: i32) -> Result<()> {
    let sys = |op: &'static str| move |errno: Errno| Error::Sys { op, errno };
    let ns_path = format!("/proc/{pid}/ns/net");
    let ns = crate::container::open_fd(
        std::path::Path::new(&ns_path),
        libc::O_RDONLY | libc::O_CLOEXEC,
    )?;
    let mut host = Netlink::open().map_err(sys("open a netlink socket"))?;
    let mut inside = Netlink::open_in(&ns).map_err(sys(
        "open a netlink socket in the container's network namespace",
    ))?;
    // Every check first, so that a device is moved only when all can be: once moved, a
    // virtual device cannot come back (it dies with the namespace if create fails).
    let mut plan = Vec::new();
    for (host_name, name) in devices(spec) {
        let index = host.link_by_name(host_name).map_err(|e| {
            Error::InvalidConfig(format!(
                "linux.netDevices: network device {host_name:?} on the host: {e}"
            ))
        })?;
        if !name.contains("%d") && inside.link_by_name(name).is_ok() {
            return Err(Error::InvalidConfig(format!(
                "linux.netDevices: the container's network namespace already has a device {name:?}"
            )));
        }
        plan.push((host_name, name, index));
    }
    for (host_name, name, index) in plan {
        let what = |step: &str, e: Errno| {
            Error::InvalidConfig(format!(
                "linux.netDevices: {step} {host_name:?} (as {name:?}): {e}"
            ))
        };
        host.set_up(index, false).map_err(|e| what("set down", e))?;
        let addrs = host
            .addresses(index)
            .map_err(|e| what("list the addresses of", e))?;
        let before = inside
            .links()
            .map_err(|e| what("list the links before moving", e))?;
        host.move_to(index, name, &ns)
            .map_err(|e| what("move", e))?;
        // Found by what is new there: the kernel may give it another index, and a %d name
        // is completed by the kernel.
        let after = inside
            .links()
            .map_err(|e| what("list the links after moving", e))?;
        let new_index = after
            .iter()
            .filter(|l| !before.contains(l) && name_matches(name, &l.1))
            .map(|l| l.0)
            .next()
            .ok_or_else(|| what("find in the container", Errno::ENODEV))?;
        for a in addrs.iter().filter(|a| a.global_permanent()) {
            inside
                .add_address(new_index, a)
                .map_err(|e| what("add an address back to", e))?;
        }
        inside
            .set_up(new_index, true)
            .map_err(|e| what("set up", e))?;
        log::debug!("moved network device {host_name} into {ns_path} as {name}");
    }
    Ok(())
}

/// Whether a device name is what `want` asked for: itself, or its `%d` filled with a number.
fn name_matches(want: &str, got: &str) -> bool {
    match want.split_once("%d") {
        None => want == got,
        Some((pre, post)) => got
            .strip_prefix(pre)
            .and_then(|r| r.strip_suffix(post))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
    }
}

/// An address as RTM_GETADDR reports it, with the attributes that make it.
struct Addr {
    family: u8,
    prefixlen: u8,
    flags: u32,
    scope: u8,
    /// (type, value) of IFA_ADDRESS, IFA_LOCAL and IFA_BROADCAST.
    attrs: Vec<(u16, Vec<u8>)>,
}

impl Addr {
    /// What the spec says moves with the device: permanent addresses of global scope.
    fn global_permanent(&self) -> bool {
        self.flags & IFA_F_PERMANENT != 0 && self.scope == 0
    }
}

/// A NETLINK_ROUTE socket, in the network namespace it was made in.
struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

impl Netlink {
    fn open() -> std::result::Result<Netlink, Errno> {
        // SAFETY: socket takes integers; the fd returned is new and ours.
        let fd = Errno::result(unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        })?;
        Ok(Netlink {
            // SAFETY: the kernel just gave us this fd.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            seq: 0,
        })
    }

    /// A socket in the network namespace `ns`, made by a thread that enters it and ends: the
    /// caller's threads stay where they are.
    fn open_in(ns: &OwnedFd) -> std::result::Result<Netlink, Errno> {
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: setns of this thread only, with an fd we own.
                Errno::result(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) })?;
                Netlink::open()
            })
            .join()
            .unwrap_or(Err(Errno::EIO))
        })
    }

    /// Send one request and collect the payloads of its answers, until its ack, its error or
    /// the end of a dump.
    fn request(
        &mut self,
        typ: u16,
        flags: u16,
        body: &[u8],
    ) -> std::result::Result<Vec<(u16, Vec<u8>)>, Errno> {
        self.seq += 1;
        let len = 16 + body.len();
        let mut msg = Vec::with_capacity(len);
        msg.extend((len as u32).to_ne_bytes());
        msg.extend(typ.to_ne_bytes());
        msg.extend((flags | NLM_F_REQUEST).to_ne_bytes());
        msg.extend(self.seq.to_ne_bytes());
        msg.extend(0u32.to_ne_bytes());
        msg.extend(body);
        // SAFETY: send reads the buffer we own; to the kernel (no address: it is connected to
        // nothing, and an unbound netlink socket sends to the kernel).
        Errno::result(unsafe {
            libc::send(self.fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0)
        })?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: recv fills the buffer we own, up to its length.
            let n = loop {
                match Errno::result(unsafe {
                    libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0)
                }) {
                    Err(Errno::EINTR) => continue,
                    other => break other? as usize,
                }
            };
            let mut at = 0;
            while at + 16 <= n {
                let mlen = u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
                let mtyp = u16::from_ne_bytes(buf[at + 4..at + 6].try_into().unwrap());
                let mseq = u32::from_ne_bytes(buf[at + 8..at + 12].try_into().unwrap());
                if mlen < 16 || at + mlen > n {
                    return Err(Errno::EBADMSG);
                }
                let payload = &buf[at + 16..at + mlen];
                at += align(mlen);
                if mseq != self.seq {
                    continue;
                }
                match mtyp {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let code = payload
                            .get(..4)
                            .map(|b| i32::from_ne_bytes(b.try_into().unwrap()))
                            .ok_or(Errno::EBADMSG)?;
                        return if code == 0 {
                            Ok(out)
                        } else {
                            Err(Errno::from_raw(-code))
                        };
                    }
                    _ => out.push((mtyp, payload.to_vec())),
                }
            }
        }
    }

    /// The index of the device named `name`.
    fn link_by_name(&mut self, name: &str) -> std::result::Result<i32, Errno> {
        let mut body = ifinfomsg(0, 0, 0);
        attr(&mut body, IFLA_IFNAME, &cstr(name));
        let answers = self.request(RTM_GETLINK, NLM_F_ACK, &body)?;
        answers
            .iter()
            .find(|(t, p)| *t == RTM_NEWLINK && p.len() >= 16)
            .map(|(_, p)| i32::from_ne_bytes(p[4..8].try_into().unwrap()))
            .ok_or(Errno::ENODEV)
    }

    /// Every device: (index, name).
    fn links(&mut self) -> std::result::Result<Vec<(i32, String)>, Errno> {
        let answers = self.request(RTM_GETLINK, NLM_F_DUMP, &ifinfomsg(0, 0, 0))?;
        Ok(answers
            .iter()
            .filter(|(t, p)| *t == RTM_NEWLINK && p.len() >= 16)
            .map(|(_, p)| {
                let index = i32::from_ne_bytes(p[4..8].try_into().unwrap());
                let name = attrs(&p[16..])
                    .find(|(t, _)| *t == IFLA_IFNAME)
                    .map(|(_, v)| {
                        String::from_utf8_lossy(v.split(|b| *b == 0).next().unwrap_or(&[]))
                            .into_owned()
                    })
                    .unwrap_or_default();
                (index, name)
            })
            .collect())
    }

    fn set_up(&mut self, index: i32, up: bool) -> std::result::Result<(), Errno> {
        let body = ifinfomsg(index, if up { IFF_UP } else { 0 }, IFF_UP);
        self.request(RTM_NEWLINK, NLM_F_ACK, &body).map(drop)
    }

    /// Move the device into the namespace `ns`, named `name` there, in one request.
    fn move_to(&mut self, index: i32, name: &str, ns: &OwnedFd) -> std::result::Result<(), Errno> {
        let mut body = ifinfomsg(index, 0, 0);
        attr(&mut body, IFLA_IFNAME, &cstr(name));
        attr(
            &mut body,
            IFLA_NET_NS_FD,
            &(ns.as_raw_fd() as u32).to_ne_bytes(),
        );
        self.request(RTM_NEWLINK, NLM_F_ACK, &body).map(drop)
    }

    fn addresses(&mut self, index: i32) -> std::result::Result<Vec<Addr>, Errno> {
        // struct ifaddrmsg, all families.
        let body = [0u8; 8];
        let answers = self.request(RTM_GETADDR, NLM_F_DUMP, &body)?;
        Ok(answers
            .iter()
            .filter(|(t, p)| *t == RTM_NEWADDR && p.len() >= 8)
            .filter(|(_, p)| u32::from_ne_bytes(p[4..8].try_into().unwrap()) == index as u32)
            .map(|(_, p)| {
                let mut a = Addr {
                    family: p[0],
                    prefixlen: p[1],
                    flags: u32::from(p[2]),
                    scope: p[3],
                    attrs: Vec::new(),
                };
                for (t, v) in attrs(&p[8..]) {
                    match t {
                        // The 32-bit flags, when the kernel has more than fit in 8 bits.
                        IFA_FLAGS if v.len() >= 4 => {
                            a.flags = u32::from_ne_bytes(v[..4].try_into().unwrap())
                        }
                        IFA_ADDRESS | IFA_LOCAL | IFA_BROADCAST => a.attrs.push((t, v.to_vec())),
                        // The label holds the host's name of the device: not carried over.
                        _ => {}
                    }
                }
                a
            })
            .collect())
    }

    fn add_address(&mut self, index: i32, a: &Addr) -> std::result::Result<(), Errno> {
        let mut body = vec![a.family, a.prefixlen, 0, a.scope];
        body.extend((index as u32).to_ne_bytes());
        for (t, v) in &a.attrs {
            attr(&mut body, *t, v);
        }
        self.request(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, &body)
            .map(drop)
    }
}

fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// struct ifinfomsg: family, type, index, flags, change.
fn ifinfomsg(index: i32, flags: u32, change: u32) -> Vec<u8> {
    let mut b = vec![libc::AF_UNSPEC as u8, 0, 0, 0];
    b.extend(index.to_ne_bytes());
    b.extend(flags.to_ne_bytes());
    b.extend(change.to_ne_bytes());
    b
}

/// Append a struct rtattr and its value, padded to 4 bytes.
fn attr(buf: &mut Vec<u8>, typ: u16, value: &[u8]) {
    let len = 4 + value.len();
    buf.extend((len as u16).to_ne_bytes());
    buf.extend(typ.to_ne_bytes());
    buf.extend(value);
    buf.resize(buf.len() + align(len) - len, 0);
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// The (type, value) attributes in a message's tail.
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let typ = u16::from_ne_bytes([b[2], b[3]]);
        if len < 4 || len > b.len() {
            return None;
        }
        let value = &b[4..len];
        b = &b[align(len).min(b.len())..];
        Some((typ, value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_templates() {
        assert!(valid_name("eth0") && valid_name("a23456789012345"));
        for bad in ["", ".", "..", "a/b", "a:b", "a b", "a234567890123456"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        assert!(name_matches("eth%d", "eth12") && name_matches("eth7", "eth7"));
        assert!(!name_matches("eth%d", "eth") && !name_matches("eth%d", "ethx"));
    }

    #[test]
    fn attributes_round_trip() {
        let mut b = Vec::new();
        attr(&mut b, IFLA_IFNAME, &cstr("eth7"));
        attr(&mut b, IFLA_NET_NS_FD, &5u32.to_ne_bytes());
        let got: Vec<(u16, Vec<u8>)> = attrs(&b).map(|(t, v)| (t, v.to_vec())).collect();
        assert_eq!(
            got,
            vec![
                (IFLA_IFNAME, b"eth7\0".to_vec()),
                (IFLA_NET_NS_FD, 5u32.to_ne_bytes().to_vec())
            ]
        );
    }
}
