//! A small blocking D-Bus client: just what the systemd cgroup driver needs of the protocol
//! (SASL EXTERNAL authentication, method calls and their replies, signals), over a unix
//! socket, with no thread and no runtime.
//!
//! Why not a crate: zbus's blocking API (5.x) added 0.97 MB to the 2.27 MB static release
//! binary, past the project's 3 MiB budget, and zbus 6 (async only) 0.7 MB, a third of the
//! binary for five method calls. This file is the marshalling of the D-Bus specification's
//! little-endian wire format for the types systemd's manager uses (basic types, strings, object
//! paths, signatures, arrays, structs, dict entries, variants); no unix fd passing, no
//! introspection.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// A D-Bus value, typed as it goes on the wire.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Byte(u8),
    Bool(bool),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    Double(f64),
    Str(String),
    Path(String),
    Sig(String),
    /// The element signature (so that an empty array has a type), and the elements.
    Array(String, Vec<Value>),
    Struct(Vec<Value>),
    /// A `{kv}` entry of a dict (an array of them).
    DictEntry(Box<Value>, Box<Value>),
    Variant(Box<Value>),
}

impl Value {
    pub fn signature(&self) -> String {
        match self {
            Value::Byte(_) => "y".into(),
            Value::Bool(_) => "b".into(),
            Value::I16(_) => "n".into(),
            Value::U16(_) => "q".into(),
            Value::I32(_) => "i".into(),
            Value::U32(_) => "u".into(),
            Value::I64(_) => "x".into(),
            Value::U64(_) => "t".into(),
            Value::Double(_) => "d".into(),
            Value::Str(_) => "s".into(),
            Value::Path(_) => "o".into(),
            Value::Sig(_) => "g".into(),
            Value::Array(elem, _) => format!("a{elem}"),
            Value::Struct(fields) => {
                let inner: String = fields.iter().map(Value::signature).collect();
                format!("({inner})")
            }
            Value::DictEntry(k, v) => format!("{{{}{}}}", k.signature(), v.signature()),
            Value::Variant(_) => "v".into(),
        }
    }

    /// A string or object path's text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Path(s) | Value::Sig(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_u32(&self) -> Option<u32> {
        match self {
            Value::U32(v) => Some(*v),
            _ => None,
        }
    }
}

/// A `(sv)` pair, as systemd takes unit properties.
pub fn prop(name: &str, v: Value) -> Value {
    Value::Struct(vec![Value::Str(name.into()), Value::Variant(Box::new(v))])
}

/// What a call can fail with.
#[derive(Debug)]
pub enum DbusError {
    Io(std::io::Error),
    /// The peer answered with an error: its name (`org.freedesktop.systemd1.NoSuchUnit`) and
    /// message.
    Remote {
        name: String,
        message: String,
    },
    Protocol(String),
    /// Bad input found while making a call (a config value systemd cannot take): not the
    /// connection's fault.
    Invalid(String),
}

impl std::fmt::Display for DbusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbusError::Io(e) => write!(f, "{e}"),
            DbusError::Remote { name, message } => write!(f, "{message} ({name})"),
            DbusError::Protocol(m) => write!(f, "D-Bus protocol error: {m}"),
            DbusError::Invalid(m) => f.write_str(m),
        }
    }
}

impl From<std::io::Error> for DbusError {
    fn from(e: std::io::Error) -> Self {
        DbusError::Io(e)
    }
}

impl DbusError {
    /// Whether the peer answered with the error `name`.
    pub fn is(&self, name: &str) -> bool {
        matches!(self, DbusError::Remote { name: n, .. } if n == name)
    }
}

fn bad(m: impl Into<String>) -> DbusError {
    DbusError::Protocol(m.into())
}

// ---- marshalling ------------------------------------------------------------------------------

/// Alignment of the type that starts `sig`.
fn alignment(code: u8) -> usize {
    match code {
        b'y' | b'g' | b'v' => 1,
        b'n' | b'q' => 2,
        b'x' | b't' | b'd' | b'(' | b'{' => 8,
        _ => 4,
    }
}

/// The end (exclusive) of the single complete type that starts at `sig[i]`.
fn type_end(sig: &[u8], i: usize) -> Result<usize, DbusError> {
    match sig.get(i) {
        None => Err(bad("signature ends early")),
        Some(b'a') => type_end(sig, i + 1),
        Some(open @ (b'(' | b'{')) => {
            let close = if *open == b'(' { b')' } else { b'}' };
            let mut j = i + 1;
            while sig.get(j) != Some(&close) {
                j = type_end(sig, j)?;
            }
            Ok(j + 1)
        }
        Some(b'y' | b'b' | b'n' | b'q' | b'i' | b'u' | b'x' | b't' | b'd' | b's' | b'o' | b'g')
        | Some(b'v')
        | Some(b'h') => Ok(i + 1),
        Some(c) => Err(bad(format!("unknown type code {:?}", *c as char))),
    }
}

struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn pad(&mut self, align: usize) {
        while !self.buf.len().is_multiple_of(align) {
            self.buf.push(0);
        }
    }

    fn u32(&mut self, v: u32) {
        self.pad(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn string(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    fn sig(&mut self, s: &str) {
        self.buf.push(s.len() as u8);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    fn put(&mut self, v: &Value) {
        match v {
            Value::Byte(b) => self.buf.push(*b),
            Value::Bool(b) => self.u32(u32::from(*b)),
            Value::I16(x) => {
                self.pad(2);
                self.buf.extend_from_slice(&x.to_le_bytes());
            }
            Value::U16(x) => {
                self.pad(2);
                self.buf.extend_from_slice(&x.to_le_bytes());
            }
            Value::I32(x) => {
                self.pad(4);
                self.buf.extend_from_slice(&x.to_le_bytes());
            }
            Value::U32(x) => self.u32(*x),
            Value::I64(x) => {
                self.pad(8);
                self.buf.extend_from_slice(&x.to_le_bytes());
            }
            Value::U64(x) => {
                self.pad(8);
                self.buf.extend_from_slice(&x.to_le_bytes());
            }
            Value::Double(x) => {
                self.pad(8);
                self.buf.extend_from_slice(&x.to_le_bytes());
            }
            Value::Str(s) | Value::Path(s) => self.string(s),
            Value::Sig(s) => self.sig(s),
            Value::Array(elem, items) => {
                self.u32(0);
                let len_at = self.buf.len() - 4;
                // The length counts from the first element, after its padding.
                self.pad(alignment(elem.as_bytes().first().copied().unwrap_or(b'y')));
                let start = self.buf.len();
                for it in items {
                    self.put(it);
                }
                let len = (self.buf.len() - start) as u32;
                self.buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
            }
            Value::Struct(fields) => {
                self.pad(8);
                for f in fields {
                    self.put(f);
                }
            }
            Value::DictEntry(k, v) => {
                self.pad(8);
                self.put(k);
                self.put(v);
            }
            Value::Variant(inner) => {
                self.sig(&inner.signature());
                self.put(inner);
            }
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// How deep in containers the value being read is: the specification's limit is 64, and
    /// anyone on the bus may send us a message.
    depth: usize,
}

impl Reader<'_> {
    fn align(&mut self, n: usize) -> Result<(), DbusError> {
        let to = self.pos.next_multiple_of(n);
        if to > self.buf.len() {
            return Err(bad("message is truncated"));
        }
        self.pos = to;
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&[u8], DbusError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len());
        let end = end.ok_or_else(|| bad("message is truncated"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], DbusError> {
        self.align(N)?;
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }

    fn u32(&mut self) -> Result<u32, DbusError> {
        Ok(u32::from_le_bytes(self.fixed()?))
    }

    fn text(&mut self, len: usize) -> Result<String, DbusError> {
        let s = self.take(len + 1)?;
        String::from_utf8(s[..len].to_vec()).map_err(|_| bad("a string is not UTF-8"))
    }

    /// One value of the complete type `sig`.
    fn get(&mut self, sig: &[u8]) -> Result<Value, DbusError> {
        if self.depth > 64 {
            return Err(bad("values nested too deep"));
        }
        self.depth += 1;
        let v = self.get_inner(sig);
        self.depth -= 1;
        v
    }

    fn get_inner(&mut self, sig: &[u8]) -> Result<Value, DbusError> {
        Ok(match sig.first().copied() {
            Some(b'y') => Value::Byte(self.take(1)?[0]),
            Some(b'b') => Value::Bool(self.u32()? != 0),
            Some(b'n') => Value::I16(i16::from_le_bytes(self.fixed()?)),
            Some(b'q') => Value::U16(u16::from_le_bytes(self.fixed()?)),
            Some(b'i') => Value::I32(i32::from_le_bytes(self.fixed()?)),
            Some(b'u') | Some(b'h') => Value::U32(self.u32()?),
            Some(b'x') => Value::I64(i64::from_le_bytes(self.fixed()?)),
            Some(b't') => Value::U64(u64::from_le_bytes(self.fixed()?)),
            Some(b'd') => Value::Double(f64::from_le_bytes(self.fixed()?)),
            Some(b's') => {
                let n = self.u32()? as usize;
                Value::Str(self.text(n)?)
            }
            Some(b'o') => {
                let n = self.u32()? as usize;
                Value::Path(self.text(n)?)
            }
            Some(b'g') => {
                let n = self.take(1)?[0] as usize;
                Value::Sig(self.text(n)?)
            }
            Some(b'v') => {
                let n = self.take(1)?[0] as usize;
                let s = self.text(n)?;
                if s.is_empty() || type_end(s.as_bytes(), 0)? != s.len() {
                    return Err(bad(format!("variant signature {s:?}")));
                }
                Value::Variant(Box::new(self.get(s.as_bytes())?))
            }
            Some(b'a') => {
                let elem = &sig[1..type_end(sig, 1)?];
                let len = self.u32()? as usize;
                self.align(alignment(elem[0]))?;
                let end = self.pos + len;
                if end > self.buf.len() {
                    return Err(bad("array is truncated"));
                }
                let mut items = Vec::new();
                while self.pos < end {
                    items.push(self.get(elem)?);
                }
                let elem = String::from_utf8_lossy(elem).into_owned();
                Value::Array(elem, items)
            }
            Some(b'(') => {
                self.align(8)?;
                let mut fields = Vec::new();
                let mut i = 1;
                while sig.get(i) != Some(&b')') {
                    let e = type_end(sig, i)?;
                    fields.push(self.get(&sig[i..e])?);
                    i = e;
                }
                Value::Struct(fields)
            }
            Some(b'{') => {
                self.align(8)?;
                let k_end = type_end(sig, 1)?;
                let v_end = type_end(sig, k_end)?;
                let k = self.get(&sig[1..k_end])?;
                let v = self.get(&sig[k_end..v_end])?;
                Value::DictEntry(Box::new(k), Box::new(v))
            }
            _ => return Err(bad("unsupported type in a message")),
        })
    }
}

// ---- messages ---------------------------------------------------------------------------------

const METHOD_CALL: u8 = 1;
const METHOD_RETURN: u8 = 2;
const ERROR: u8 = 3;
const SIGNAL: u8 = 4;

/// A message received: its kind, the header fields we use, and the body.
#[derive(Debug, Clone)]
pub struct Message {
    pub kind: u8,
    pub reply_serial: u32,
    pub path: String,
    pub interface: String,
    pub member: String,
    pub error_name: String,
    pub body: Vec<Value>,
}

impl Message {
    pub fn is_signal(&self, interface: &str, member: &str) -> bool {
        self.kind == SIGNAL && self.interface == interface && self.member == member
    }
}

/// A method call, marshalled.
fn call_bytes(
    serial: u32,
    dest: Option<&str>,
    path: &str,
    iface: &str,
    member: &str,
    args: &[Value],
) -> Vec<u8> {
    let mut body = Writer { buf: Vec::new() };
    for a in args {
        body.put(a);
    }
    let sig: String = args.iter().map(Value::signature).collect();
    let mut fields = vec![
        (1u8, Value::Path(path.into())),
        (2, Value::Str(iface.into())),
        (3, Value::Str(member.into())),
    ];
    if let Some(d) = dest {
        fields.push((6, Value::Str(d.into())));
    }
    if !sig.is_empty() {
        fields.push((8, Value::Sig(sig)));
    }
    let fields = Value::Array(
        "(yv)".into(),
        fields
            .into_iter()
            .map(|(code, v)| Value::Struct(vec![Value::Byte(code), Value::Variant(Box::new(v))]))
            .collect(),
    );
    let mut m = Writer { buf: Vec::new() };
    m.buf.extend_from_slice(&[b'l', METHOD_CALL, 0, 1]);
    m.u32(body.buf.len() as u32);
    m.u32(serial);
    m.put(&fields);
    m.pad(8);
    m.buf.extend_from_slice(&body.buf);
    m.buf
}

/// Parse one whole message (header and body).
fn parse_message(buf: &[u8]) -> Result<Message, DbusError> {
    if buf[0] != b'l' {
        return Err(bad("big-endian messages are not supported"));
    }
    let mut r = Reader {
        buf,
        pos: 12,
        depth: 0,
    };
    let mut msg = Message {
        kind: buf[1],
        reply_serial: 0,
        path: String::new(),
        interface: String::new(),
        member: String::new(),
        error_name: String::new(),
        body: Vec::new(),
    };
    let mut sig = String::new();
    let Value::Array(_, fields) = r.get(b"a(yv)")? else {
        unreachable!("an array signature reads an array")
    };
    for f in fields {
        let Value::Struct(f) = f else { continue };
        let (Some(Value::Byte(code)), Some(Value::Variant(v))) = (f.first(), f.get(1)) else {
            continue;
        };
        let text = v.as_str().unwrap_or_default().to_string();
        match code {
            1 => msg.path = text,
            2 => msg.interface = text,
            3 => msg.member = text,
            4 => msg.error_name = text,
            5 => msg.reply_serial = v.as_u32().unwrap_or(0),
            8 => sig = text,
            _ => {}
        }
    }
    r.align(8)?;
    let sig = sig.as_bytes();
    let mut i = 0;
    while i < sig.len() {
        let e = type_end(sig, i)?;
        msg.body.push(r.get(&sig[i..e])?);
        i = e;
    }
    Ok(msg)
}

// ---- the connection ---------------------------------------------------------------------------

/// A connection to a bus (or straight to a peer, such as systemd's private socket).
pub struct Connection {
    sock: UnixStream,
    serial: u32,
    /// Signals that arrived while a reply was awaited.
    queued: VecDeque<Message>,
}

/// How long one call may take before the connection is given up.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

impl Connection {
    /// Connect to the unix socket at `path` and authenticate as our uid (SASL EXTERNAL).
    /// Through a bus (`hello`), also say Hello, as the bus requires before anything else.
    pub fn open(path: &Path, hello: bool) -> Result<Connection, DbusError> {
        let sock = UnixStream::connect(path)?;
        sock.set_read_timeout(Some(CALL_TIMEOUT))?;
        let mut c = Connection {
            sock,
            serial: 0,
            queued: VecDeque::new(),
        };
        let uid = nix::unistd::geteuid().as_raw().to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        c.sock
            .write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())?;
        let line = c.read_line()?;
        if !line.starts_with("OK ") {
            return Err(bad(format!("authentication refused: {line:?}")));
        }
        c.sock.write_all(b"BEGIN\r\n")?;
        if hello {
            c.call(
                Some("org.freedesktop.DBus"),
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                "Hello",
                &[],
            )?;
        }
        Ok(c)
    }

    fn read_line(&mut self) -> Result<String, DbusError> {
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        // The server says nothing after its line until we BEGIN, so reading byte by byte
        // takes nothing of the first message.
        while !line.ends_with(b"\r\n") {
            if self.sock.read(&mut b)? == 0 {
                return Err(bad("the peer closed the connection during authentication"));
            }
            line.push(b[0]);
            if line.len() > 4096 {
                return Err(bad("authentication line too long"));
            }
        }
        line.truncate(line.len() - 2);
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    /// Read the next message, waiting until `deadline`.
    fn read_message(&mut self, deadline: Instant) -> Result<Message, DbusError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(DbusError::Io(ErrorKind::TimedOut.into()));
        }
        self.sock.set_read_timeout(Some(left))?;
        let mut head = [0u8; 16];
        self.read_exact(&mut head)?;
        let body_len = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes")) as usize;
        let fields_len = u32::from_le_bytes(head[12..16].try_into().expect("4 bytes")) as usize;
        let total = (16 + fields_len).next_multiple_of(8) + body_len;
        // The specification's limit on a message's size.
        if total > 128 << 20 {
            return Err(bad("message too long"));
        }
        let mut buf = vec![0u8; total];
        buf[..16].copy_from_slice(&head);
        self.read_exact(&mut buf[16..])?;
        parse_message(&buf)
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), DbusError> {
        self.sock.read_exact(buf).map_err(|e| match e.kind() {
            // SO_RCVTIMEO expiring shows as EAGAIN.
            ErrorKind::WouldBlock => DbusError::Io(ErrorKind::TimedOut.into()),
            _ => DbusError::Io(e),
        })
    }

    /// Call a method and wait for its reply's body. An error reply is [`DbusError::Remote`].
    pub fn call(
        &mut self,
        dest: Option<&str>,
        path: &str,
        iface: &str,
        member: &str,
        args: &[Value],
    ) -> Result<Vec<Value>, DbusError> {
        self.serial += 1;
        let serial = self.serial;
        let bytes = call_bytes(serial, dest, path, iface, member, args);
        self.sock.write_all(&bytes)?;
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            let m = self.read_message(deadline)?;
            match m.kind {
                METHOD_RETURN if m.reply_serial == serial => return Ok(m.body),
                ERROR if m.reply_serial == serial => {
                    let message = m
                        .body
                        .first()
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    return Err(DbusError::Remote {
                        name: m.error_name,
                        message,
                    });
                }
                SIGNAL => self.queued.push_back(m),
                // Replies to nothing we asked, calls to us: not ours to answer.
                _ => {}
            }
        }
    }

    /// The next signal (queued ones first), waiting until `deadline`.
    pub fn next_signal(&mut self, deadline: Instant) -> Result<Message, DbusError> {
        if let Some(m) = self.queued.pop_front() {
            return Ok(m);
        }
        loop {
            let m = self.read_message(deadline)?;
            if m.kind == SIGNAL {
                return Ok(m);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_round_trips_through_the_reader() {
        let args = [
            Value::Str("x.scope".into()),
            Value::Str("replace".into()),
            Value::Array(
                "(sv)".into(),
                vec![
                    prop("PIDs", Value::Array("u".into(), vec![Value::U32(42)])),
                    prop("MemoryMax", Value::U64(1 << 30)),
                    prop("Delegate", Value::Bool(true)),
                    prop(
                        "AllowedCPUs",
                        Value::Array("y".into(), vec![Value::Byte(5)]),
                    ),
                    // The types annotations can give (unit_props.rs).
                    prop("A", Value::I16(-2)),
                    prop("B", Value::U16(2)),
                    prop("C", Value::Double(2.5)),
                    prop("D", Value::I64(-9)),
                    prop("E", Value::Array("s".into(), vec![Value::Str("x".into())])),
                ],
            ),
            Value::Array("(sa(sv))".into(), vec![]),
        ];
        let bytes = call_bytes(7, Some("d"), "/p", "i.f", "M", &args);
        let m = parse_message(&bytes).unwrap();
        assert_eq!(m.kind, METHOD_CALL);
        assert_eq!((m.path.as_str(), m.member.as_str()), ("/p", "M"));
        assert_eq!(m.body, args);
        // The header fields array ends padded to 8, where the body begins.
        let fields_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
        let body_len = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
        assert_eq!(
            bytes.len(),
            (16 + fields_len).next_multiple_of(8) + body_len
        );
    }

    #[test]
    fn wire_layout_matches_the_specification() {
        // A string: u32 length, bytes, NUL; a u64 after it is aligned to 8.
        let mut w = Writer { buf: Vec::new() };
        w.put(&Value::Struct(vec![Value::Str("ab".into()), Value::U64(1)]));
        assert_eq!(
            w.buf,
            [2, 0, 0, 0, b'a', b'b', 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
        );
        // An empty array of structs still pads to the element's alignment after its length.
        let mut w = Writer { buf: vec![0; 4] };
        w.put(&Value::Array("(sv)".into(), vec![]));
        assert_eq!(w.buf.len(), 8);
        let mut w = Writer { buf: Vec::new() };
        w.put(&Value::Array("(sv)".into(), vec![]));
        assert_eq!(w.buf, [0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn truncated_or_odd_input_is_an_error_not_a_panic() {
        let bytes = call_bytes(1, None, "/", "a.b", "C", &[Value::Str("x".into())]);
        for n in 16..bytes.len() {
            let mut cut = bytes[..n].to_vec();
            // Keep the declared lengths, so that the reader runs off the end.
            cut.resize(n, 0);
            let _ = parse_message(&cut);
        }
        assert!(type_end(b"a", 0).is_err());
        assert!(type_end(b"(s", 0).is_err());
        assert!(type_end(b"z", 0).is_err());
    }
}
