//! Field parsers shared by the Zeek and Argus readers: byte slices in, values out, no
//! allocation.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

use std::net::IpAddr;

/// Longest text line accepted; longer lines are counted as malformed and skipped.
pub(crate) const MAX_LINE: usize = 64 * 1024;

/// An IP address written in text. Dotted-quad IPv4 (most lines) is read directly;
/// anything else goes through the standard parser.
pub(crate) fn ip(b: &[u8]) -> Option<IpAddr> {
    let b = b.trim_ascii();
    if let Some(v4) = ipv4(b) {
        return Some(IpAddr::V4(v4));
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// `a.b.c.d` with decimal octets of 1 to 3 digits and no leading zeros (as the standard
/// parser requires); `None` otherwise.
fn ipv4(b: &[u8]) -> Option<std::net::Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = b.split(|c| *c == b'.');
    for o in &mut octets {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 3 || (p.len() > 1 && p.first() == Some(&b'0')) {
            return None;
        }
        let v = p.iter().try_fold(0u16, |acc, c| {
            let d = c.checked_sub(b'0').filter(|d| *d < 10)?;
            Some(acc * 10 + u16::from(d))
        })?;
        *o = u8::try_from(v).ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(std::net::Ipv4Addr::from(octets))
}

/// A decimal unsigned integer (or `0x`-prefixed hex, which Argus uses for ICMP ports).
pub(crate) fn uint(b: &[u8]) -> Option<u64> {
    // Fast path: plain digits, as almost every field is.
    if !b.is_empty() && b.len() <= 19 && b.iter().all(u8::is_ascii_digit) {
        return Some(b.iter().fold(0u64, |acc, c| acc * 10 + u64::from(c - b'0')));
    }
    let b = b.trim_ascii();
    if let Some(hex) = b.strip_prefix(b"0x").or_else(|| b.strip_prefix(b"0X")) {
        return u64::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok();
    }
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    b.iter().try_fold(0u64, |acc, c| {
        let d = c.checked_sub(b'0').filter(|d| *d < 10)?;
        acc.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// Decimal seconds with an optional fraction (`1596790164.509987`) → milliseconds,
/// without going through a float (so no rounding surprises). Fraction digits past
/// milliseconds are truncated.
pub(crate) fn seconds_to_ms(b: &[u8]) -> Option<i64> {
    let b = b.trim_ascii();
    let (neg, b) = match b.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, b),
    };
    let (int, frac) = match b.iter().position(|c| *c == b'.') {
        Some(p) => (b.get(..p)?, b.get(p + 1..)?),
        None => (b, &b""[..]),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let secs = i64::try_from(if int.is_empty() { 0 } else { uint(int)? }).ok()?;
    let mut ms = 0i64;
    for i in 0..3 {
        let d = match frac.get(i) {
            Some(c) if c.is_ascii_digit() => i64::from(c - b'0'),
            Some(_) => return None,
            None => 0,
        };
        ms = ms * 10 + d;
    }
    if !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = secs.checked_mul(1000)?.checked_add(ms)?;
    Some(if neg { -v } else { v })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(b: &[u8], from: usize, n: usize) -> Option<i64> {
    let s = b.get(from..from + n)?;
    i64::try_from(uint(s)?).ok()
}

/// `YYYY/MM/DD hh:mm:ss[.ffffff]` (Argus; `-` also accepted as date separator), read as
/// UTC → milliseconds since the epoch.
pub(crate) fn datetime_to_ms(b: &[u8]) -> Option<i64> {
    let b = b.trim_ascii();
    let sep_ok = |i: usize, ok: &[u8]| b.get(i).is_some_and(|c| ok.contains(c));
    if !(sep_ok(4, b"/-")
        && sep_ok(7, b"/-")
        && sep_ok(10, b" T")
        && sep_ok(13, b":")
        && sep_ok(16, b":"))
    {
        return None;
    }
    let (y, mo, d) = (digits(b, 0, 4)?, digits(b, 5, 2)?, digits(b, 8, 2)?);
    let (h, mi, s) = (digits(b, 11, 2)?, digits(b, 14, 2)?, digits(b, 17, 2)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let frac_ms = match b.get(19) {
        None => 0,
        Some(b'.') => seconds_to_ms(&[b"0", b.get(19..)?].concat())?,
        Some(_) => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s;
    Some(secs * 1000 + frac_ms)
}

/// IP protocol number of a protocol name as Zeek and Argus write them (or a number).
pub(crate) fn protocol(b: &[u8]) -> Option<u8> {
    let b = b.trim_ascii();
    if let Some(n) = uint(b) {
        return u8::try_from(n).ok();
    }
    let mut lower = [0u8; 16];
    let low = lower.get_mut(..b.len())?;
    low.copy_from_slice(b);
    low.make_ascii_lowercase();
    Some(match &*low {
        b"icmp" => 1,
        b"igmp" => 2,
        b"ipv4" | b"ipnip" => 4,
        b"tcp" => 6,
        b"egp" => 8,
        b"udp" | b"rtp" | b"rtcp" | b"udt" => 17,
        b"ipv6" => 41,
        b"rsvp" => 46,
        b"gre" => 47,
        b"esp" => 50,
        b"ah" => 51,
        b"icmp6" | b"ipv6-icmp" | b"icmpv6" => 58,
        b"eigrp" => 88,
        b"ospf" | b"ospfigp" => 89,
        b"pim" => 103,
        b"vrrp" => 112,
        b"l2tp" => 115,
        b"sctp" => 132,
        b"unknown_transport" => 0,
        _ => return None,
    })
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn parses_epoch_seconds_without_float_rounding() {
        assert_eq!(seconds_to_ms(b"1596790164.509987"), Some(1_596_790_164_509));
        assert_eq!(seconds_to_ms(b"13.184015"), Some(13_184));
        assert_eq!(seconds_to_ms(b"7"), Some(7_000));
        assert_eq!(seconds_to_ms(b"0.000001"), Some(0));
        assert_eq!(seconds_to_ms(b"1.2x"), None);
        assert_eq!(seconds_to_ms(b"-"), None);
    }

    #[test]
    fn parses_argus_datetimes_as_utc() {
        // 2019-04-04T16:24:47.672Z = 1554395087672 ms (checked with `date -u -d`).
        assert_eq!(
            datetime_to_ms(b"2019/04/04 16:24:47.672448"),
            Some(1_554_395_087_672)
        );
        assert_eq!(datetime_to_ms(b"1970/01/01 00:00:00.000000"), Some(0));
        assert_eq!(datetime_to_ms(b"2019/13/04 16:24:47"), None);
        assert_eq!(datetime_to_ms(b"2019/04/04"), None);
    }

    #[test]
    fn parses_ports_and_protocols() {
        assert_eq!(uint(b"0x0303"), Some(0x303));
        assert_eq!(uint(b"443"), Some(443));
        assert_eq!(uint(b""), None);
        assert_eq!(uint(b"99999999999999999999999"), None);
        assert_eq!(protocol(b"TCP"), Some(6));
        assert_eq!(ip(b"147.32.83.234"), Some(IpAddr::from([147, 32, 83, 234])));
        assert_eq!(
            ip(b" ::1 "),
            Some(IpAddr::from(std::net::Ipv6Addr::LOCALHOST))
        );
        for bad in [
            &b"1.2.3"[..],
            b"1.2.3.4.5",
            b"256.1.1.1",
            b"01.2.3.4",
            b"1..2.3",
            b"a.b.c.d",
        ] {
            assert_eq!(ip(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(protocol(b"ipv6-icmp"), Some(58));
        assert_eq!(protocol(b"man"), None);
        assert_eq!(protocol(b"a-protocol-name-longer-than-16"), None);
    }
}
