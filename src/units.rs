//! Sizes and durations as runc's command line spells them (Docker's and Go's conventions), for
//! programs that take the same values: [`parse_size`] (`64m`, `1.5g`, `-1`) and
//! [`parse_duration`] (`5s`, `500ms`, `1m30s`).

use std::time::Duration;

/// A size in bytes as runc's flags take it (docker/go-units' `RAMInBytes`): a number of bytes,
/// or a number (decimals allowed) with `k`, `m`, `g`, `t` or `p`, powers of 1024, with or
/// without a trailing `b`, in any case; `-1` for unlimited. `None` for anything else.
///
/// ```
/// use cofferdam::units::parse_size;
/// assert_eq!(parse_size("64m"), Some(64 << 20));
/// assert_eq!(parse_size("1.5KB"), Some(1536));
/// assert_eq!(parse_size("-1"), Some(-1));
/// assert_eq!(parse_size("ten"), None);
/// ```
pub fn parse_size(s: &str) -> Option<i64> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Some(-1);
    }
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, shift) = match t.chars().last()? {
        'k' => (&t[..t.len() - 1], 10),
        'm' => (&t[..t.len() - 1], 20),
        'g' => (&t[..t.len() - 1], 30),
        't' => (&t[..t.len() - 1], 40),
        'p' => (&t[..t.len() - 1], 50),
        _ => (t, 0),
    };
    let n: f64 = num.trim().parse().ok().filter(|n: &f64| *n >= 0.0)?;
    Some((n * (1u64 << shift) as f64) as i64)
}

/// A positive duration as Go's `time.ParseDuration` reads it: numbers (decimals allowed), each
/// with a unit of `ns`, `us` (or `µs`), `ms`, `s`, `m` or `h`, one after the other (`1m30s`).
/// `None` for anything else, and for zero.
///
/// ```
/// use std::time::Duration;
/// use cofferdam::units::parse_duration;
/// assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
/// assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
/// assert_eq!(parse_duration("5"), None);
/// ```
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let value: f64 = rest[..n].parse().ok()?;
        let unit_len = rest[n..]
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len() - n);
        let scale = match &rest[n..n + unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[n + unit_len..];
    }
    (total > 0.0).then(|| Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("2Mb"), Some(2 << 20));
        assert_eq!(parse_size(" 3 k "), Some(3 << 10));
        assert_eq!(parse_size("-2"), None);
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("1x"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250us"), Some(Duration::from_micros(250)));
        assert_eq!(parse_duration("0s"), None);
        assert_eq!(parse_duration("5d"), None);
        assert_eq!(parse_duration(""), None);
    }
}
