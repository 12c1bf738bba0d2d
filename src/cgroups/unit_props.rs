//! Extra unit properties from `org.systemd.property.<Name>` annotations, as runc takes them
//! under its systemd driver: CRI-O sends `TimeoutStopUSec`, `CollectMode`,
//! `DefaultDependencies` and `After`, newer podman `KillSignal` and `TimeoutStopUSec`. They go
//! with the scope when it starts, after the driver's own properties, so they can override them.
//!
//! - The name is three or more ASCII letters.
//! - The value is in GVariant's text format (GLib's `g_variant_parse`, without a type given):
//!   `true`/`false`; a number, bare (an `int32`, or a `double` with `.` or an exponent) or typed
//!   (`byte 7`, `int16`, `uint16`, `int32`, `uint32`, `int64`, `uint64`, `double`); a string
//!   in single or double quotes with backslash escapes; an array `[...]` of one type. What this
//!   does not parse (maybes, tuples, dicts, `@type` annotations) is an error that says so.
//! - A name ending in a lowercase letter and `Sec` is systemd's documented spelling of a
//!   `...USec` property: the number is seconds, sent as microseconds (`TimeoutStopSec=5` is
//!   `TimeoutStopUSec` 5000000).
//!
//! A bad annotation fails `create` before anything is made.

use std::collections::HashMap;

use super::dbus::{Value, prop};
use crate::error::{Error, Result};

const PREFIX: &str = "org.systemd.property.";

/// The `(sv)` properties of the config's `org.systemd.property.*` annotations, sorted by name.
pub fn from_annotations(annotations: Option<&HashMap<String, String>>) -> Result<Vec<Value>> {
    let Some(annotations) = annotations else {
        return Ok(Vec::new());
    };
    let mut keys: Vec<&String> = annotations
        .keys()
        .filter(|k| k.starts_with(PREFIX))
        .collect();
    keys.sort();
    let mut props = Vec::new();
    for key in keys {
        let text = &annotations[key];
        let bad = |why: String| Error::InvalidConfig(format!("annotation {key}={text:?}: {why}"));
        let name = &key[PREFIX.len()..];
        if name.len() < 3 || !name.bytes().all(|c| c.is_ascii_alphabetic()) {
            return Err(bad(
                "a systemd property name is three or more ASCII letters".into(),
            ));
        }
        let value = parse(text).map_err(bad)?;
        let seconds = name
            .strip_suffix("Sec")
            .filter(|stem| stem.ends_with(|c: char| c.is_ascii_lowercase()));
        match seconds {
            Some(stem) => {
                let usec = to_usec(&value).map_err(bad)?;
                props.push(prop(&format!("{stem}USec"), Value::U64(usec)));
            }
            None => props.push(prop(name, value)),
        }
    }
    Ok(props)
}

/// Seconds, of any number type, as microseconds.
fn to_usec(v: &Value) -> std::result::Result<u64, String> {
    const M: u64 = 1_000_000;
    let whole = |n: i128| {
        u64::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(M))
            .ok_or_else(|| format!("{n} seconds is not a time systemd can take"))
    };
    match v {
        Value::Byte(n) => whole((*n).into()),
        Value::I16(n) => whole((*n).into()),
        Value::U16(n) => whole((*n).into()),
        Value::I32(n) => whole((*n).into()),
        Value::U32(n) => whole((*n).into()),
        Value::I64(n) => whole((*n).into()),
        Value::U64(n) => whole((*n).into()),
        Value::Double(d) if d.is_finite() && *d >= 0.0 && *d * (M as f64) < u64::MAX as f64 => {
            Ok((*d * M as f64) as u64)
        }
        _ => Err("a ...Sec property takes a number of seconds".into()),
    }
}

/// A whole value of GVariant text.
pub fn parse(text: &str) -> std::result::Result<Value, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let v = p.value()?;
    p.space();
    if p.i != p.s.len() {
        return Err(format!("unexpected text at byte {}", p.i));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn space(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    /// The next run of characters that can make a word or a number.
    fn word(&mut self) -> &str {
        let start = self.i;
        while self
            .s
            .get(self.i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || b"+-._".contains(c))
        {
            self.i += 1;
        }
        // Only ASCII was taken.
        std::str::from_utf8(&self.s[start..self.i]).unwrap_or_default()
    }

    fn value(&mut self) -> std::result::Result<Value, String> {
        self.space();
        match self.s.get(self.i) {
            None => Err("a value is missing".into()),
            Some(b'\'' | b'"') => self.string(),
            Some(b'[') => self.array(),
            Some(c) if c.is_ascii_digit() || *c == b'-' || *c == b'+' || *c == b'.' => {
                let w = self.word().to_string();
                number(&w, None)
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let w = self.word().to_string();
                match w.as_str() {
                    "true" => Ok(Value::Bool(true)),
                    "false" => Ok(Value::Bool(false)),
                    "byte" | "int16" | "uint16" | "int32" | "uint32" | "int64" | "uint64"
                    | "double" => {
                        self.space();
                        let n = self.word().to_string();
                        number(&n, Some(&w))
                    }
                    _ => Err(format!("{w:?} is not a value this parser knows")),
                }
            }
            Some(c) => Err(format!(
                "{:?} starts no value this parser knows (booleans, numbers, strings, arrays)",
                *c as char
            )),
        }
    }

    fn string(&mut self) -> std::result::Result<Value, String> {
        let quote = self.s[self.i];
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.s.get(self.i) {
                None => return Err("a string is not closed".into()),
                Some(c) if *c == quote => {
                    self.i += 1;
                    break;
                }
                Some(b'\\') => {
                    self.i += 1;
                    let c = *self.s.get(self.i).ok_or("a string ends in a backslash")?;
                    out.push(match c {
                        b'n' => b'\n',
                        b't' => b'\t',
                        b'r' => b'\r',
                        b'0' => 0,
                        c => c,
                    });
                    self.i += 1;
                }
                Some(c) => {
                    out.push(*c);
                    self.i += 1;
                }
            }
        }
        String::from_utf8(out)
            .map(Value::Str)
            .map_err(|_| "a string is not UTF-8".into())
    }

    fn array(&mut self) -> std::result::Result<Value, String> {
        self.i += 1;
        let mut items: Vec<Value> = Vec::new();
        loop {
            self.space();
            if self.s.get(self.i) == Some(&b']') && items.is_empty() {
                self.i += 1;
                return Err("an empty array has no type (this parser takes no @type)".into());
            }
            let v = self.value()?;
            if let Some(first) = items.first()
                && first.signature() != v.signature()
            {
                return Err("an array's elements are not of one type".into());
            }
            items.push(v);
            self.space();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    let elem = items[0].signature();
                    return Ok(Value::Array(elem, items));
                }
                _ => return Err("an array is not closed".into()),
            }
        }
    }
}

/// A number, typed as `ty` says, or as GVariant types a bare one (`int32`; `double` with a
/// `.` or an exponent).
fn number(w: &str, ty: Option<&str>) -> std::result::Result<Value, String> {
    let floaty = w.contains(['.', 'e', 'E']) && !w.starts_with("0x");
    let ty = ty.unwrap_or(if floaty { "double" } else { "int32" });
    let bad = || format!("{w:?} is not a {ty}");
    Ok(match ty {
        "byte" => Value::Byte(w.parse().map_err(|_| bad())?),
        "int16" => Value::I16(w.parse().map_err(|_| bad())?),
        "uint16" => Value::U16(w.parse().map_err(|_| bad())?),
        "int32" => Value::I32(w.parse().map_err(|_| bad())?),
        "uint32" => Value::U32(w.parse().map_err(|_| bad())?),
        "int64" => Value::I64(w.parse().map_err(|_| bad())?),
        "uint64" => Value::U64(w.parse().map_err(|_| bad())?),
        _ => Value::Double(w.parse().map_err(|_| bad())?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(name: &str, value: &str) -> Result<Vec<Value>> {
        let m = HashMap::from([(format!("{PREFIX}{name}"), value.to_string())]);
        from_annotations(Some(&m))
    }

    #[test]
    fn values_of_each_kind() {
        assert_eq!(parse("true"), Ok(Value::Bool(true)));
        assert_eq!(parse(" 15 "), Ok(Value::I32(15)));
        assert_eq!(parse("-3"), Ok(Value::I32(-3)));
        assert_eq!(parse("2.5"), Ok(Value::Double(2.5)));
        assert_eq!(parse("uint64 10000000"), Ok(Value::U64(10_000_000)));
        assert_eq!(parse("byte 7"), Ok(Value::Byte(7)));
        assert_eq!(parse("int16 -2"), Ok(Value::I16(-2)));
        assert_eq!(parse("uint16 2"), Ok(Value::U16(2)));
        assert_eq!(parse("int64 -9"), Ok(Value::I64(-9)));
        assert_eq!(parse("uint32 9"), Ok(Value::U32(9)));
        assert_eq!(
            parse("'inactive-or-failed'"),
            Ok(Value::Str("inactive-or-failed".into()))
        );
        assert_eq!(parse(r#""a\"b""#), Ok(Value::Str("a\"b".into())));
        assert_eq!(
            parse("['crio.service', \"x.target\"]"),
            Ok(Value::Array(
                "s".into(),
                vec![
                    Value::Str("crio.service".into()),
                    Value::Str("x.target".into())
                ]
            ))
        );
    }

    #[test]
    fn what_is_not_gvariant_text_is_an_error() {
        for bad in [
            "",
            "'open",
            "[1, 'a']",
            "[]",
            "uint64 -1",
            "byte 300",
            "yes",
            "1 2",
            "(1, 2)",
            "@as []",
            "[1,",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was parsed");
        }
    }

    #[test]
    fn names_and_seconds_as_runc_takes_them() {
        assert_eq!(
            one("TimeoutStopUSec", "uint64 123456789").unwrap(),
            [prop("TimeoutStopUSec", Value::U64(123_456_789))]
        );
        // ...Sec is seconds, sent as ...USec, from any number type.
        for v in ["456", "uint64 456", "byte 200", "int16 7", "456.5"] {
            let p = one("TimeoutStopSec", v).unwrap();
            let Value::Struct(f) = &p[0] else {
                panic!("{p:?}")
            };
            assert_eq!(f[0], Value::Str("TimeoutStopUSec".into()), "{v}");
        }
        assert_eq!(
            one("TimeoutStopSec", "456.5").unwrap(),
            [prop("TimeoutStopUSec", Value::U64(456_500_000))]
        );
        assert_eq!(
            one("KillSignal", "15").unwrap(),
            [prop("KillSignal", Value::I32(15))]
        );
        // Not a lowercase letter before Sec: the name is kept.
        assert_eq!(
            one("FooUSec", "uint64 1").unwrap(),
            [prop("FooUSec", Value::U64(1))]
        );
        for (name, value) in [
            ("TimeoutStopSec", "false"),
            ("TimeoutStopSec", "'covfefe'"),
            ("TimeoutStopSec", "-1"),
            ("Ab", "1"),
            ("Kill_Signal", "1"),
            ("KillSignal", "'open"),
        ] {
            let err = one(name, value).unwrap_err().to_string();
            assert!(err.contains(&format!("{PREFIX}{name}")), "{err}");
        }
        // Other annotations are not properties.
        let m = HashMap::from([("org.example.x".to_string(), "1".to_string())]);
        assert!(from_annotations(Some(&m)).unwrap().is_empty());
    }
}
