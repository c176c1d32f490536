//! Field parsers shared by the Zeek and Argus readers: byte slices in, values out, no
//! allocation.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

use std::io::{BufRead, Read};
use std::net::IpAddr;

use crate::Error;
use crate::anomaly::Anomaly;
use crate::record::FlowBatch;

/// Longest text line accepted; longer lines are counted as malformed and skipped.
pub(crate) const MAX_LINE: usize = 64 * 1024;

/// What one input line turned into.
pub(crate) enum Line {
    /// The input is exhausted.
    End,
    /// A header, comment or blank line: not a data line.
    Header,
    /// A data line: one record or one counted anomaly.
    Data,
}

/// Reads up to `max_lines` data lines from `input`, handing each line (terminator and
/// trailing `\r` stripped) to `each`; returns how many data lines were read.
///
/// Lines that lie whole in the input's buffer are parsed in place (found with `memchr`,
/// no copy, no allocation); a line that straddles the end of the buffer is copied into
/// `spill` by [`read_line`], which also applies the [`MAX_LINE`] limit. Either way a line
/// is accepted or refused exactly as [`for_each_line_copying`] does.
pub(crate) fn for_each_line<R: BufRead>(
    input: &mut R,
    spill: &mut Vec<u8>,
    batch: &mut FlowBatch,
    max_lines: usize,
    mut each: impl FnMut(&[u8], &mut FlowBatch) -> Line,
) -> Result<usize, Error> {
    let mut n = 0;
    while n < max_lines {
        let buf = input.fill_buf()?;
        let mut used = 0;
        while n < max_lines {
            let Some(rest) = buf.get(used..) else { break };
            let Some(p) = memchr::memchr(b'\n', rest) else {
                break;
            };
            used += p + 1;
            if p >= MAX_LINE {
                batch.count(Anomaly::MalformedLine {
                    what: "line too long",
                });
                n += 1;
                continue;
            }
            let mut line = rest.get(..p).unwrap_or_default();
            while let [head @ .., b'\r'] = line {
                line = head;
            }
            if let Line::Data = each(line, batch) {
                n += 1;
            }
        }
        if used > 0 {
            input.consume(used);
            continue;
        }
        // No whole line left in the buffer: this one is copied.
        match read_line(input, spill, batch)? {
            Some(Line::End) => break,
            Some(Line::Data) => n += 1,
            Some(Line::Header) => {}
            None => {
                if let Line::Data = each(spill, batch) {
                    n += 1;
                }
            }
        }
    }
    Ok(n)
}

/// The reference line loop: every line copied into `line` by [`read_line`] (the
/// readers' behaviour before [`for_each_line`]; kept for the differential tests).
pub(crate) fn for_each_line_copying<R: BufRead>(
    input: &mut R,
    line: &mut Vec<u8>,
    batch: &mut FlowBatch,
    max_lines: usize,
    mut each: impl FnMut(&[u8], &mut FlowBatch) -> Line,
) -> Result<usize, Error> {
    let mut n = 0;
    while n < max_lines {
        match read_line(input, line, batch)? {
            Some(Line::End) => break,
            Some(Line::Data) => n += 1,
            Some(Line::Header) => {}
            None => {
                if let Line::Data = each(line, batch) {
                    n += 1;
                }
            }
        }
    }
    Ok(n)
}

/// Reads one line (without its terminator) into `line`, at most [`MAX_LINE`] bytes;
/// an overlong line is skipped to its end and counted.
fn read_line<R: BufRead>(
    input: &mut R,
    line: &mut Vec<u8>,
    batch: &mut FlowBatch,
) -> Result<Option<Line>, Error> {
    line.clear();
    let n = input
        .by_ref()
        .take(MAX_LINE as u64)
        .read_until(b'\n', line)?;
    if n == 0 {
        return Ok(Some(Line::End));
    }
    if line.last() != Some(&b'\n') && n == MAX_LINE {
        batch.count(Anomaly::MalformedLine {
            what: "line too long",
        });
        loop {
            let buf = input.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            match memchr::memchr(b'\n', buf) {
                Some(p) => {
                    input.consume(p + 1);
                    break;
                }
                None => {
                    let l = buf.len();
                    input.consume(l);
                }
            }
        }
        return Ok(Some(Line::Data));
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    Ok(None)
}

/// Calls `f` with the position of every `sep` byte in `line`, in order, until `f`
/// returns `false`. Eight bytes are compared at a time (SWAR: no `unsafe`, no
/// per-byte branch), which beats both a byte loop and a `memchr` call per field on
/// lines of ~20 short fields.
pub(crate) fn for_each_separator(line: &[u8], sep: u8, mut f: impl FnMut(usize) -> bool) {
    const LO7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let pattern = u64::from_ne_bytes([sep; 8]);
    let (chunks, tail) = line.as_chunks::<8>();
    let mut base = 0;
    for chunk in chunks {
        let x = u64::from_le_bytes(*chunk) ^ pattern;
        // High bit set exactly in the bytes of `x` that are zero (no borrow between bytes).
        let mut zero = !(((x & LO7).wrapping_add(LO7)) | x | LO7);
        while zero != 0 {
            if !f(base + (zero.trailing_zeros() / 8) as usize) {
                return;
            }
            zero &= zero - 1;
        }
        base += 8;
    }
    for (i, b) in tail.iter().enumerate() {
        if *b == sep && !f(base + i) {
            return;
        }
    }
}

/// An IP address written in text. Dotted-quad IPv4 (most lines) is read directly;
/// anything else goes through the standard parser.
pub(crate) fn ip(b: &[u8]) -> Option<IpAddr> {
    if let Some(v4) = ipv4(b) {
        return Some(IpAddr::V4(v4));
    }
    let b = b.trim_ascii();
    if let Some(v4) = ipv4(b) {
        return Some(IpAddr::V4(v4));
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// `a.b.c.d` with decimal octets of 1 to 3 digits and no leading zeros (as the standard
/// parser requires); `None` otherwise. One pass, one octet at a time.
fn ipv4(b: &[u8]) -> Option<std::net::Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut rest = b;
    for (i, o) in octets.iter_mut().enumerate() {
        let (v, n) = octet(rest)?;
        *o = v;
        rest = rest.get(n..)?;
        if i < 3 {
            match rest.split_first() {
                Some((b'.', tail)) => rest = tail,
                _ => return None,
            }
        }
    }
    rest.is_empty().then_some(std::net::Ipv4Addr::from(octets))
}

/// The decimal octet `b` starts with (1 to 3 digits, no leading zero, at most 255) and
/// its length; a fourth digit is left for the caller to refuse.
fn octet(b: &[u8]) -> Option<(u8, usize)> {
    let digit = |i: usize| b.get(i).map(|c| c.wrapping_sub(b'0')).filter(|d| *d <= 9);
    let d0 = digit(0)?;
    let Some(d1) = digit(1) else {
        return Some((d0, 1));
    };
    if d0 == 0 {
        return None; // "01"
    }
    let Some(d2) = digit(2) else {
        return Some((d0 * 10 + d1, 2));
    };
    let v = u16::from(d0) * 100 + u16::from(d1) * 10 + u16::from(d2);
    Some((u8::try_from(v).ok()?, 3))
}

/// A decimal unsigned integer (or `0x`-prefixed hex, which Argus uses for ICMP ports).
pub(crate) fn uint(b: &[u8]) -> Option<u64> {
    // Fast path: plain digits, as almost every field is (19 digits cannot overflow).
    if !b.is_empty() && b.len() <= 19 {
        let mut v = 0u64;
        let mut plain = true;
        for &c in b {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                plain = false;
                break;
            }
            v = v * 10 + u64::from(d);
        }
        if plain {
            return Some(v);
        }
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
    // Fast path, one pass: `digits[.digits]` with at most 15 integer digits (so the
    // millisecond value cannot overflow); anything else takes the general path below.
    let mut secs = 0i64;
    let mut int_digits = 0usize;
    let mut rest = b;
    while let Some((&c, tail)) = rest.split_first() {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        secs = secs * 10 + i64::from(d);
        int_digits += 1;
        rest = tail;
        if int_digits > 15 {
            return seconds_to_ms_general(b);
        }
    }
    if int_digits > 0 {
        match rest.split_first() {
            None => return Some(secs * 1000),
            Some((b'.', frac)) => {
                if let Some(ms) = frac_ms(frac) {
                    return Some(secs * 1000 + ms);
                }
            }
            Some(_) => {}
        }
    }
    seconds_to_ms_general(b)
}

/// Milliseconds of the fraction digits after a decimal point (truncated); all of them
/// must be digits (none at all reads as 0).
fn frac_ms(frac: &[u8]) -> Option<i64> {
    let mut ms = 0i64;
    for i in 0..3 {
        let d = match frac.get(i) {
            Some(c) if c.is_ascii_digit() => i64::from(c - b'0'),
            Some(_) => return None,
            None => 0,
        };
        ms = ms * 10 + d;
    }
    frac.iter().all(u8::is_ascii_digit).then_some(ms)
}

/// [`seconds_to_ms`] for every form the fast path does not take: surrounding blanks, a
/// sign, no integer digits, long integer parts.
fn seconds_to_ms_general(b: &[u8]) -> Option<i64> {
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
    let ms = frac_ms(frac)?;
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
        Some(b'.') => frac_ms(b.get(20..)?)?,
        Some(_) => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s;
    Some(secs * 1000 + frac_ms)
}

/// IP protocol number of a protocol name as Zeek and Argus write them (or a number).
pub(crate) fn protocol(b: &[u8]) -> Option<u8> {
    // The names on almost every line, as written.
    match b {
        b"tcp" => return Some(6),
        b"udp" => return Some(17),
        b"icmp" => return Some(1),
        _ => {}
    }
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

    proptest::proptest! {
        /// The IPv4 fast path reads exactly what the standard parser reads (CI-1: the
        /// same address from every text reader), on near-addresses built to hit its edges:
        /// leading zeros, 3- and 4-digit octets, values past 255, missing or extra dots.
        #[test]
        fn ipv4_reads_as_the_standard_parser(
            s in "((0|00|[0-9]{1,4})\\.){0,4}[0-9]{0,4}|[0-9.]{0,16}",
        ) {
            let std_v4 = s.parse::<std::net::Ipv4Addr>().ok();
            proptest::prop_assert_eq!(ipv4(s.as_bytes()), std_v4, "{}", s);
            proptest::prop_assert_eq!(ip(s.as_bytes()), s.parse::<IpAddr>().ok(), "{}", s);
        }
    }

    #[test]
    fn ipv4_edges() {
        for (s, v) in [
            ("0.0.0.0", Some([0, 0, 0, 0])),
            ("255.255.255.255", Some([255; 4])),
            ("10.0.10.100", Some([10, 0, 10, 100])),
            ("256.0.0.0", None),
            ("1.2.3.04", None),
            ("1.2.3.1000", None),
            ("1.2.3.4.", None),
            (".1.2.3", None),
            ("1.2.3.", None),
            ("", None),
        ] {
            assert_eq!(ipv4(s.as_bytes()), v.map(std::net::Ipv4Addr::from), "{s}");
        }
    }
}
