//! Country of an address, from RIR delegation files and per-country CIDR lists
//! (REQUIREMENTS CI-2: the selection is mechanical — domestic, foreign, transit).
//!
//! # What
//! [`GeoTableBuilder`] reads, from any `io::Read` the caller opens:
//! - RIR statistics exchange files (`delegated-*-extended-latest` and the older
//!   `delegated-<rir>-latest`): `registry|cc|type|start|value|date|status[|…]`, where
//!   `value` is an address count for `ipv4` (not always a power of two: split into CIDRs)
//!   and a prefix length for `ipv6`; headers, summaries, comments, `asn` lines and
//!   records without a country (`available`, `reserved`, `ZZ`) are skipped, and lines that
//!   do not parse are counted in [`LoadReport`], never a panic;
//! - CIDR lists, one prefix a line (`country-ip-blocks`' `ipv4/jp.cidr`), for a country
//!   the caller names.
//!
//! [`GeoTableBuilder::build`] flattens the prefixes into an immutable table of disjoint
//! ranges — the longest prefix wins where prefixes nest; of two equal prefixes the one
//! added later wins — and [`GeoTable::country`] finds an address's range by binary search
//! within a 16-bit bucket (figures: `docs/benchmarks/cryptopan.md`).
//!
//! # Invariants
//! Pure: the caller opens files and decides when to refresh (build a new table, swap it
//! in). Memory is linear in the number of input prefixes; lines longer than
//! [`MAX_LINE`] are counted as malformed and skipped.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Longest line read from an input; longer ones are counted and skipped.
pub const MAX_LINE: usize = 4096;

/// An ISO 3166-1 alpha-2 country code (or an RIR region code such as `AP`, `EU`), in
/// upper case.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// Japan, the default home country.
    pub const JP: CountryCode = CountryCode(*b"JP");

    /// The code from two ASCII letters (either case), or `None`.
    pub fn new(code: [u8; 2]) -> Option<Self> {
        let [a, b] = code;
        (a.is_ascii_alphabetic() && b.is_ascii_alphabetic())
            .then(|| CountryCode([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
    }

    /// The two upper-case ASCII letters.
    pub fn bytes(self) -> [u8; 2] {
        self.0
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CountryCode({})", self.as_str())
    }
}

/// A country code that is not two letters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("country code must be two letters (ISO 3166-1 alpha-2, e.g. \"JP\"), got {0:?}")]
pub struct BadCountryCode(pub String);

impl FromStr for CountryCode {
    type Err = BadCountryCode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.as_bytes() {
            [a, b] => CountryCode::new([*a, *b]),
            _ => None,
        }
        .ok_or_else(|| BadCountryCode(s.to_owned()))
    }
}

impl serde::Serialize for CountryCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for CountryCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What one input contributed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// IPv4 prefixes added (after splitting start+count ranges into CIDRs).
    pub ipv4_prefixes: u64,
    /// IPv6 prefixes added.
    pub ipv6_prefixes: u64,
    /// Lines skipped on purpose (comments, headers, summaries, ASNs, no country).
    pub skipped: u64,
    /// Lines that did not parse (counted, skipped).
    pub malformed: u64,
}

/// Reading an input failed (its *content* never fails: see [`LoadReport::malformed`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GeoError {
    /// The reader failed.
    #[error("reading geolocation input: {0}")]
    Io(#[from] io::Error),
}

/// Collects prefixes; [`GeoTableBuilder::build`] makes the lookup table.
#[derive(Debug, Default, Clone)]
pub struct GeoTableBuilder {
    /// (first, last, order, country); order keeps "later wins" for equal prefixes.
    v4: Vec<(u32, u32, u32, CountryCode)>,
    v6: Vec<(u128, u128, u32, CountryCode)>,
    added: u32,
}

/// Calls `line` for every line of `input`, lines longer than [`MAX_LINE`] counted as
/// malformed.
fn for_each_line(
    input: impl Read,
    report: &mut LoadReport,
    mut line: impl FnMut(&str, &mut LoadReport),
) -> Result<(), GeoError> {
    let mut reader = BufReader::new(input);
    let mut buf = Vec::with_capacity(256);
    loop {
        buf.clear();
        let n = reader
            .by_ref()
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        if buf.len() > MAX_LINE && buf.last() != Some(&b'\n') {
            report.malformed += 1;
            // Skip the rest of the over-long line.
            loop {
                buf.clear();
                let n = reader
                    .by_ref()
                    .take(MAX_LINE as u64)
                    .read_until(b'\n', &mut buf)?;
                if n == 0 || buf.last() == Some(&b'\n') {
                    break;
                }
            }
            continue;
        }
        match std::str::from_utf8(&buf) {
            Ok(text) => line(text.trim_end_matches(['\n', '\r']), report),
            Err(_) => report.malformed += 1,
        }
    }
}

impl GeoTableBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one prefix for `country` (bits past the prefix length are ignored).
    pub fn add_prefix(&mut self, addr: IpAddr, len: u8, country: CountryCode) -> bool {
        self.added = self.added.wrapping_add(1);
        match addr {
            IpAddr::V4(a) if len <= 32 => {
                let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
                let first = u32::from(a) & mask;
                self.v4.push((first, first | !mask, self.added, country));
                true
            }
            IpAddr::V6(a) if len <= 128 => {
                let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
                let first = u128::from(a) & mask;
                self.v6.push((first, first | !mask, self.added, country));
                true
            }
            _ => false,
        }
    }

    /// Adds `count` IPv4 addresses from `start` as the CIDRs that cover them exactly.
    /// Returns the number of prefixes added (0 when the range is empty or wraps).
    pub fn add_v4_range(&mut self, start: Ipv4Addr, count: u64, country: CountryCode) -> u64 {
        let mut at = u64::from(u32::from(start));
        let end = at.saturating_add(count);
        if count == 0 || end > 1 << 32 {
            return 0;
        }
        let mut added = 0;
        while at < end {
            // The largest aligned block that starts at `at` and fits.
            let align = if at == 0 {
                32
            } else {
                at.trailing_zeros().min(32)
            };
            let fit = 63 - (end - at).leading_zeros();
            let bits = align.min(fit);
            let len = (32 - bits) as u8;
            self.add_prefix(IpAddr::V4(Ipv4Addr::from(at as u32)), len, country);
            at += 1u64 << bits;
            added += 1;
        }
        added
    }

    /// Reads an RIR statistics exchange file (`delegated-*-latest`, extended or not).
    pub fn add_rir_delegations(&mut self, input: impl Read) -> Result<LoadReport, GeoError> {
        let mut report = LoadReport::default();
        for_each_line(input, &mut report, |line, report| {
            self.rir_line(line, report)
        })?;
        Ok(report)
    }

    fn rir_line(&mut self, line: &str, report: &mut LoadReport) {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            report.skipped += 1;
            return;
        }
        let mut f = line.split('|');
        let (Some(_registry), Some(cc), Some(kind), Some(start), Some(value)) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            // The version header has 7 fields too, but starts with a digit: caught below.
            report.malformed += 1;
            return;
        };
        if line.as_bytes().first().is_some_and(u8::is_ascii_digit) || cc == "*" {
            report.skipped += 1; // version header, summaries
            return;
        }
        if kind != "ipv4" && kind != "ipv6" {
            report.skipped += 1; // asn
            return;
        }
        let Some(country) = cc.parse::<CountryCode>().ok().filter(|c| c.0 != *b"ZZ") else {
            if cc.is_empty() || cc == "ZZ" {
                report.skipped += 1; // available / reserved
            } else {
                report.malformed += 1;
            }
            return;
        };
        match kind {
            "ipv4" => match (start.parse::<Ipv4Addr>(), value.parse::<u64>()) {
                (Ok(start), Ok(count)) => match self.add_v4_range(start, count, country) {
                    0 => report.malformed += 1,
                    n => report.ipv4_prefixes += n,
                },
                _ => report.malformed += 1,
            },
            _ => match (start.parse::<Ipv6Addr>(), value.parse::<u8>()) {
                (Ok(start), Ok(len)) if self.add_prefix(IpAddr::V6(start), len, country) => {
                    report.ipv6_prefixes += 1;
                }
                _ => report.malformed += 1,
            },
        }
    }

    /// Reads a CIDR list (one `address/len` a line; `#` comments) for `country`.
    pub fn add_cidr_list(
        &mut self,
        input: impl Read,
        country: CountryCode,
    ) -> Result<LoadReport, GeoError> {
        let mut report = LoadReport::default();
        for_each_line(input, &mut report, |line, report| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                report.skipped += 1;
                return;
            }
            match line.parse::<ipnet::IpNet>() {
                Ok(net) => {
                    self.add_prefix(net.addr(), net.prefix_len(), country);
                    match net {
                        ipnet::IpNet::V4(_) => report.ipv4_prefixes += 1,
                        ipnet::IpNet::V6(_) => report.ipv6_prefixes += 1,
                    }
                }
                Err(_) => report.malformed += 1,
            }
        })?;
        Ok(report)
    }

    /// The immutable lookup table.
    pub fn build(self) -> GeoTable {
        GeoTable {
            v4: RangeTable::build(self.v4),
            v6: RangeTable::build(self.v6),
        }
    }
}

/// An integer address type the range table works on.
pub(crate) trait Key: Copy + Ord + fmt::Debug {
    fn succ(self) -> Option<Self>;
    fn pred(self) -> Option<Self>;
    fn top16(self) -> usize;
}

impl Key for u32 {
    fn succ(self) -> Option<Self> {
        self.checked_add(1)
    }
    fn pred(self) -> Option<Self> {
        self.checked_sub(1)
    }
    fn top16(self) -> usize {
        (self >> 16) as usize
    }
}

impl Key for u128 {
    fn succ(self) -> Option<Self> {
        self.checked_add(1)
    }
    fn pred(self) -> Option<Self> {
        self.checked_sub(1)
    }
    fn top16(self) -> usize {
        (self >> 112) as usize
    }
}

/// Disjoint ranges sorted by start, with a 16-bit bucket index into them.
#[derive(Clone, Debug)]
pub(crate) struct RangeTable<K, V> {
    starts: Vec<K>,
    ends: Vec<K>,
    values: Vec<V>,
    /// `bucket[h]`: number of ranges whose start's top 16 bits are below `h`.
    bucket: Vec<u32>,
}

impl<K: Key, V: Copy + PartialEq> RangeTable<K, V> {
    /// Flattens nested or disjoint prefixes (`(first, last, order, value)`; prefixes never
    /// partially overlap) into disjoint ranges where the innermost prefix wins.
    pub(crate) fn build(mut prefixes: Vec<(K, K, u32, V)>) -> Self {
        // Outer before inner; of equal prefixes the later-added one is inner.
        prefixes.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        let mut out: Vec<(K, K, V)> = Vec::with_capacity(prefixes.len());
        let mut emit = |from: K, to: K, v: V| {
            if from > to {
                return;
            }
            match out.last_mut() {
                Some(last) if last.2 == v && last.1.succ() == Some(from) => last.1 = to,
                _ => out.push((from, to, v)),
            }
        };
        let mut stack: Vec<(K, V)> = Vec::new();
        // Next address not yet emitted; None once the top of the space is emitted.
        let mut cursor: Option<K> = None;
        for (first, last, _, v) in prefixes {
            while let Some(&(end, tv)) = stack.last() {
                if end >= first {
                    break;
                }
                if let Some(c) = cursor {
                    emit(c, end, tv);
                }
                cursor = end.succ();
                stack.pop();
            }
            if let (Some(&(_, tv)), Some(c), Some(before)) = (stack.last(), cursor, first.pred()) {
                emit(c, before, tv);
            }
            // Everything before `first` inside open prefixes is emitted; gaps between
            // prefixes have no value.
            cursor = Some(first);
            stack.push((last, v));
        }
        while let Some((end, tv)) = stack.pop() {
            if let Some(c) = cursor {
                emit(c, end, tv);
            }
            cursor = end.succ();
        }
        let mut bucket = vec![0u32; (1 << 16) + 1];
        let mut i = 0usize;
        for (h, b) in bucket.iter_mut().enumerate() {
            while out.get(i).is_some_and(|r| r.0.top16() < h) {
                i += 1;
            }
            *b = i as u32;
        }
        Self {
            starts: out.iter().map(|r| r.0).collect(),
            ends: out.iter().map(|r| r.1).collect(),
            values: out.iter().map(|r| r.2).collect(),
            bucket,
        }
    }

    #[inline]
    pub(crate) fn get(&self, key: K) -> Option<V> {
        let h = key.top16();
        // The range holding `key` starts at or before it: the last start <= key is
        // at most one bucket back.
        let lo = (*self.bucket.get(h)? as usize).saturating_sub(1);
        let hi = *self.bucket.get(h + 1)? as usize;
        let starts = self.starts.get(lo..hi)?;
        let idx = lo + starts.partition_point(|s| *s <= key);
        let i = idx.checked_sub(1)?;
        (*self.ends.get(i)? >= key).then(|| self.values.get(i).copied())?
    }

    pub(crate) fn len(&self) -> usize {
        self.starts.len()
    }
}

/// The immutable country table: [`GeoTable::country`] per address.
#[derive(Clone, Debug)]
pub struct GeoTable {
    v4: RangeTable<u32, CountryCode>,
    v6: RangeTable<u128, CountryCode>,
}

impl Default for GeoTable {
    fn default() -> Self {
        GeoTableBuilder::new().build()
    }
}

impl GeoTable {
    /// The country of `addr`, or `None` when no loaded prefix covers it.
    #[inline]
    pub fn country(&self, addr: IpAddr) -> Option<CountryCode> {
        match addr {
            IpAddr::V4(a) => self.v4.get(u32::from(a)),
            IpAddr::V6(a) => self.v6.get(u128::from(a)),
        }
    }

    /// Disjoint IPv4 and IPv6 ranges held (after merging neighbours of one country).
    pub fn ranges(&self) -> (usize, usize) {
        (self.v4.len(), self.v6.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cc(s: &str) -> CountryCode {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_wins_and_gaps_stay_empty() {
        let mut b = GeoTableBuilder::new();
        b.add_prefix(ip("10.0.0.0"), 8, cc("US"));
        b.add_prefix(ip("10.1.0.0"), 16, cc("JP"));
        b.add_prefix(ip("10.1.2.0"), 24, cc("KR"));
        b.add_prefix(ip("0.0.0.0"), 0, cc("ZZ"));
        b.add_prefix(ip("255.255.255.255"), 32, cc("CN"));
        let t = b.build();
        assert_eq!(t.country(ip("10.0.0.1")), Some(cc("US")));
        assert_eq!(t.country(ip("10.1.0.0")), Some(cc("JP")));
        assert_eq!(t.country(ip("10.1.2.255")), Some(cc("KR")));
        assert_eq!(t.country(ip("10.1.3.0")), Some(cc("JP")));
        assert_eq!(t.country(ip("10.2.0.0")), Some(cc("US")));
        assert_eq!(t.country(ip("11.0.0.0")), Some(cc("ZZ")));
        assert_eq!(t.country(ip("255.255.255.254")), Some(cc("ZZ")));
        assert_eq!(t.country(ip("255.255.255.255")), Some(cc("CN")));
        assert_eq!(t.country(ip("::1")), None);
    }

    #[test]
    fn ranges_split_into_exact_cidrs() {
        let mut b = GeoTableBuilder::new();
        // 1.0.16.0 + 768 addresses = 1.0.16.0/23 + 1.0.18.0/24
        assert_eq!(b.add_v4_range(ip4("1.0.16.0"), 768, cc("JP")), 2);
        assert_eq!(b.add_v4_range(ip4("255.255.255.0"), 512, cc("JP")), 0);
        let t = b.build();
        assert_eq!(t.country(ip("1.0.15.255")), None);
        assert_eq!(t.country(ip("1.0.18.255")), Some(cc("JP")));
        assert_eq!(t.country(ip("1.0.19.0")), None);
    }

    fn ip4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn rir_lines_count_what_they_skip() {
        let text = "2|apnic|20101217|23704|19850701|20101216|+1000\n\
                    apnic|*|ipv4|*|18242|summary\n\
                    # comment\n\
                    apnic|JP|asn|173|1|20020801|allocated\n\
                    apnic|JP|ipv4|1.0.16.0|4096|20110412|allocated\n\
                    apnic|AU|ipv6|2001:200::|35|19990813|allocated\n\
                    apnic||ipv4|1.1.0.0|256||available\n\
                    apnic|JP|ipv4|not-an-address|256|20110412|allocated\n\
                    garbage\n";
        let mut b = GeoTableBuilder::new();
        let r = b.add_rir_delegations(text.as_bytes()).unwrap();
        assert_eq!(r.ipv4_prefixes, 1);
        assert_eq!(r.ipv6_prefixes, 1);
        assert_eq!(r.skipped, 5);
        assert_eq!(r.malformed, 2);
        let t = b.build();
        assert_eq!(t.country(ip("1.0.31.255")), Some(cc("JP")));
        assert_eq!(t.country(ip("2001:200:1fff::1")), Some(cc("AU")));
        assert_eq!(t.country(ip("2001:200:2000::")), None);
    }

    #[test]
    fn over_long_lines_are_counted() {
        let mut text = "1.2.3.0/24\n".to_owned();
        text.push_str(&"9".repeat(MAX_LINE * 3));
        text.push_str("\n5.6.7.0/24\n");
        let mut b = GeoTableBuilder::new();
        let r = b.add_cidr_list(text.as_bytes(), cc("JP")).unwrap();
        assert_eq!((r.ipv4_prefixes, r.malformed), (2, 1));
    }
}
