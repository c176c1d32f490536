//! Indicator match: exact addresses and CIDR longest-prefix sets from threat feeds
//! (abuse.ch Feodo Tracker CSV, Spamhaus DROP/EDROP/DROPv6), each hit naming its feed.
//!
//! # Reload without pausing ingest
//! An [`IndicatorSet`] is immutable once built. To reload, build a new one off the hot
//! path and swap the `Arc` in an [`IndicatorSlot`]; detectors hold the `Arc` they
//! loaded (one atomic reference-count increment per batch), so a swap never waits for
//! them and never shows a half-built set.
//!
//! # Lookup structures
//! Exact IPv4 addresses are sorted and bucketed by their top 16 bits: a 256 KiB offset
//! table leads to the low halves of that /16, binary-searched (one or two cache lines).
//! CIDRs are flattened at build time into disjoint intervals carrying their most
//! specific prefix (longest-prefix match becomes "the interval containing x"); for IPv4
//! the intervals and the gaps between them partition the address space, are split at
//! every /16 boundary and packed one `u32` each (start's low 16 bits, payload id), so a
//! lookup is the offset table, a binary search in one /16, and a tiny payload table.
//! Exact IPv6 addresses are in a hash map; IPv6 prefixes are binary-searched intervals.

use std::io::BufRead;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use rustc_hash::FxHashMap;

use crate::Error;
use mamori_core::finding::{Clients, Evidence, Finding, FindingKind, IndicatorEvidence};
use mamori_flow::FlowRecord;

/// Most feeds in one set.
const MAX_FEEDS: usize = 1_985;

/// Longest line read from a feed; longer lines are refused (a feed is line-oriented).
const MAX_LINE: usize = 4096;

/// One matched list entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit<'a> {
    /// The feed that listed it.
    pub feed: &'a str,
    /// The listed network address (the address itself for exact entries).
    pub network: IpAddr,
    /// The prefix length (32 / 128 for exact entries).
    pub prefix_len: u8,
}

impl Hit<'_> {
    /// The entry as text: `a.b.c.d` for exact entries, `net/len` for prefixes.
    pub fn entry(&self) -> String {
        let full = if self.network.is_ipv4() { 32 } else { 128 };
        if self.prefix_len == full {
            self.network.to_string()
        } else {
            format!("{}/{}", self.network, self.prefix_len)
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Prefix {
    start: u128,
    end: u128,
    len: u8,
    feed: u16,
}

/// Builds an [`IndicatorSet`] from feeds.
#[derive(Debug, Default)]
pub struct IndicatorSetBuilder {
    feeds: Vec<String>,
    exact_v4: FxHashMap<u32, u16>,
    exact_v6: FxHashMap<u128, u16>,
    v4: Vec<Prefix>,
    v6: Vec<Prefix>,
}

impl IndicatorSetBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    fn feed_id(&mut self, feed: &str) -> Result<u16, Error> {
        if let Some(i) = self.feeds.iter().position(|f| f == feed) {
            return u16::try_from(i).map_err(|_| Error::TooManyFeeds);
        }
        // (prefix length, feed) pairs share a 16-bit payload id: 33 lengths × 1,985 feeds.
        if self.feeds.len() >= MAX_FEEDS {
            return Err(Error::TooManyFeeds);
        }
        let id = u16::try_from(self.feeds.len()).map_err(|_| Error::TooManyFeeds)?;
        self.feeds.push(feed.to_string());
        Ok(id)
    }

    /// Adds one exact address under `feed` (the first feed to list an address keeps it).
    pub fn add_address(&mut self, addr: IpAddr, feed: &str) -> Result<(), Error> {
        let id = self.feed_id(feed)?;
        match addr {
            IpAddr::V4(a) => {
                self.exact_v4.entry(u32::from(a)).or_insert(id);
            }
            IpAddr::V6(a) => {
                self.exact_v6.entry(u128::from(a)).or_insert(id);
            }
        }
        Ok(())
    }

    /// Adds one CIDR (host bits are cleared) under `feed`.
    pub fn add_prefix(&mut self, network: IpAddr, len: u8, feed: &str) -> Result<(), Error> {
        let id = self.feed_id(feed)?;
        let (bits, value, list) = match network {
            IpAddr::V4(a) => (32u32, u128::from(u32::from(a)), &mut self.v4),
            IpAddr::V6(a) => (128u32, u128::from(a), &mut self.v6),
        };
        let len32 = u32::from(len);
        if len32 > bits {
            return Err(Error::BadEntry {
                entry: format!("{network}/{len}"),
            });
        }
        let host_bits = bits - len32;
        let host_mask: u128 = if host_bits == 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        let start = value & !host_mask;
        list.push(Prefix {
            start,
            end: start | host_mask,
            len,
            feed: id,
        });
        Ok(())
    }

    /// Adds an entry written as `addr` or `addr/len`.
    pub fn add_entry(&mut self, text: &str, feed: &str) -> Result<(), Error> {
        let bad = || Error::BadEntry {
            entry: text.chars().take(80).collect(),
        };
        match text.split_once('/') {
            None => self.add_address(text.trim().parse().map_err(|_| bad())?, feed),
            Some((net, len)) => {
                let net: IpAddr = net.trim().parse().map_err(|_| bad())?;
                let len: u8 = len.trim().parse().map_err(|_| bad())?;
                let full = if net.is_ipv4() { 32 } else { 128 };
                if len == full {
                    self.add_address(net, feed)
                } else {
                    self.add_prefix(net, len, feed)
                }
            }
        }
    }

    /// Reads an abuse.ch Feodo Tracker IP blocklist CSV (`# …` comments, a header,
    /// `"first_seen_utc","dst_ip","dst_port",…` rows). Returns the entries added.
    pub fn add_feodo_csv(&mut self, input: impl BufRead, feed: &str) -> Result<usize, Error> {
        let mut added = 0;
        for_each_line(input, |line| {
            if line.starts_with('#') || line.starts_with("\"first_seen") || line.is_empty() {
                return Ok(());
            }
            let ip = line
                .split(',')
                .nth(1)
                .map(|f| f.trim().trim_matches('"'))
                .unwrap_or("");
            self.add_entry(ip, feed)?;
            added += 1;
            Ok(())
        })?;
        Ok(added)
    }

    /// Reads a Spamhaus DROP / EDROP / DROPv6 text list (`; comments`, lines
    /// `net/len ; SBLnnn`), or any plain list of addresses and CIDRs with `#`/`;`
    /// comments. Returns the entries added.
    pub fn add_drop_list(&mut self, input: impl BufRead, feed: &str) -> Result<usize, Error> {
        let mut added = 0;
        for_each_line(input, |line| {
            let entry = line.split([';', '#']).next().unwrap_or("").trim();
            if entry.is_empty() {
                return Ok(());
            }
            self.add_entry(entry, feed)?;
            added += 1;
            Ok(())
        })?;
        Ok(added)
    }

    /// Reads one indicator list of either format, told apart by its first 4 KiB: an
    /// abuse.ch Feodo CSV names `dst_ip` or `abuse.ch` there, anything else is read as a
    /// DROP-style list ([`Self::add_feodo_csv`], [`Self::add_drop_list`]). Pure parsing: the
    /// caller reads the file (the sensor, bounded). Returns the entries added.
    pub fn add_list(&mut self, text: &[u8], feed: &str) -> Result<usize, Error> {
        let head = String::from_utf8_lossy(text.get(..4096).unwrap_or(text)).to_lowercase();
        if head.contains("dst_ip") || head.contains("abuse.ch") {
            self.add_feodo_csv(text, feed)
        } else {
            self.add_drop_list(text, feed)
        }
    }

    /// Freezes the set.
    pub fn build(self) -> IndicatorSet {
        // Exact IPv4: sorted, bucketed by the top 16 bits; the low halves of one /16 sit
        // together (one cache line for a typical bucket) and the bucket table is 256 KiB.
        let mut exact: Vec<(u32, u16)> = self.exact_v4.into_iter().collect();
        exact.sort_unstable();
        let exact_v4 = Bucketed::new(exact.iter().map(|(a, _)| *a), exact.iter().map(|(_, f)| *f));

        // CIDR IPv4: the flattened intervals become a complete partition of the address
        // space (gaps included), split at every /16 boundary, each piece one `u32`:
        // start's low 16 bits above a payload id (prefix length and feed; 0 = gap).
        let v4_prefixes = self.v4.len();
        let v4 = flatten(self.v4);
        let mut payloads: Vec<(u8, u16)> = vec![(0, 0)];
        let mut payload_ids: FxHashMap<(u8, u16), u16> = FxHashMap::default();
        let mut pieces: Vec<(u32, u16)> = Vec::with_capacity(v4.len() * 2 + 1);
        let mut cursor: u64 = 0;
        for (start, end, p) in &v4 {
            let (start, end) = (*start as u64, *end as u64);
            if start > cursor {
                pieces.push((cursor as u32, 0));
            }
            let next = payloads.len();
            let id = *payload_ids.entry((p.len, p.feed)).or_insert_with(|| {
                payloads.push((p.len, p.feed));
                u16::try_from(next).unwrap_or(0)
            });
            pieces.push((start as u32, id));
            cursor = end + 1;
        }
        if cursor <= u64::from(u32::MAX) {
            pieces.push((cursor as u32, 0));
        }
        let mut split: Vec<u32> = Vec::with_capacity(pieces.len() + 65_536);
        let mut offsets = vec![0u32; 65_537];
        for (i, (start, id)) in pieces.iter().enumerate() {
            let last = pieces
                .get(i + 1)
                .map_or(u64::from(u32::MAX), |n| u64::from(n.0) - 1);
            let mut at = u64::from(*start);
            while at <= last {
                if let Some(o) = offsets.get_mut((at >> 16) as usize + 1) {
                    *o += 1;
                }
                split.push(((at as u32 & 0xffff) << 16) | u32::from(*id));
                at = ((at >> 16) + 1) << 16;
            }
        }
        for i in 1..offsets.len() {
            offsets[i] += offsets[i - 1];
        }
        IndicatorSet {
            feeds: self.feeds,
            exact_v4,
            exact_v6: self.exact_v6,
            v4_offsets: offsets,
            v4_pieces: split,
            v4_payloads: payloads,
            v4_prefixes,
            v6: flatten(self.v6),
        }
    }
}

/// Sorted IPv4 addresses bucketed by their top 16 bits: `offsets[b]..offsets[b + 1]`
/// index the low 16 bits (`lows`) of the addresses in /16 number `b`.
#[derive(Debug, Default)]
struct Bucketed {
    offsets: Vec<u32>,
    lows: Vec<u16>,
    /// Per-address payload (feed ids for exact sets; empty for interval starts).
    feeds: Vec<u16>,
}

impl Bucketed {
    fn new(sorted: impl Iterator<Item = u32>, feeds: impl Iterator<Item = u16>) -> Self {
        let mut offsets = vec![0u32; 65_537];
        let mut lows = Vec::new();
        for a in sorted {
            if let Some(o) = offsets.get_mut((a >> 16) as usize + 1) {
                *o += 1;
            }
            lows.push(a as u16);
        }
        for i in 1..offsets.len() {
            offsets[i] += offsets[i - 1];
        }
        Self {
            offsets,
            lows,
            feeds: feeds.collect(),
        }
    }

    /// Index range of bucket `b`.
    fn range(&self, x: u32) -> Option<(usize, usize)> {
        let b = (x >> 16) as usize;
        Some((
            *self.offsets.get(b)? as usize,
            *self.offsets.get(b + 1)? as usize,
        ))
    }

    /// Index of `x` itself.
    fn find(&self, x: u32) -> Option<usize> {
        let (lo, hi) = self.range(x)?;
        let k = self.lows.get(lo..hi)?.binary_search(&(x as u16)).ok()?;
        Some(lo + k)
    }

    fn len(&self) -> usize {
        self.lows.len()
    }
}

fn for_each_line(
    mut input: impl BufRead,
    mut f: impl FnMut(&str) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let n = std::io::Read::take(&mut input, MAX_LINE as u64 + 1).read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        line_no += 1;
        if buf.len() > MAX_LINE && !buf.ends_with(b"\n") {
            return Err(Error::LineTooLong { line: line_no });
        }
        let text = String::from_utf8_lossy(&buf);
        f(text.trim())?;
    }
}

/// Nested-or-disjoint prefixes → disjoint sorted intervals labelled with the most
/// specific covering prefix.
fn flatten(mut prefixes: Vec<Prefix>) -> Vec<(u128, u128, Prefix)> {
    // Start ascending, shorter (covering) first; equal prefixes: the first feed wins.
    prefixes.sort_by(|a, b| a.start.cmp(&b.start).then(a.len.cmp(&b.len)));
    prefixes.dedup_by(|b, a| a.start == b.start && a.len == b.len);
    let mut out: Vec<(u128, u128, Prefix)> = Vec::with_capacity(prefixes.len() * 2);
    let mut stack: Vec<Prefix> = Vec::new();
    // `cursor` = first address not yet emitted; None once the top of space is passed.
    let mut cursor: Option<u128> = None;
    let emit = |out: &mut Vec<(u128, u128, Prefix)>, from: u128, to: u128, p: Prefix| {
        if from <= to {
            out.push((from, to, p));
        }
    };
    for p in prefixes {
        // Close prefixes that end before p starts.
        while let Some(top) = stack.last().copied() {
            if top.end >= p.start {
                break;
            }
            if let Some(c) = cursor {
                emit(&mut out, c, top.end, top);
            }
            cursor = top.end.checked_add(1);
            stack.pop();
        }
        if let (Some(top), Some(c)) = (stack.last().copied(), cursor)
            && p.start > c
        {
            emit(&mut out, c, p.start - 1, top);
        }
        cursor = Some(p.start);
        stack.push(p);
    }
    while let Some(top) = stack.pop() {
        if let Some(c) = cursor {
            emit(&mut out, c, top.end, top);
        }
        cursor = top.end.checked_add(1);
    }
    out
}

/// An immutable set of indicators from one or more feeds.
#[derive(Debug, Default)]
pub struct IndicatorSet {
    feeds: Vec<String>,
    exact_v4: Bucketed,
    exact_v6: FxHashMap<u128, u16>,
    /// Start of /16 number b's pieces in `v4_pieces` (65,537 entries).
    v4_offsets: Vec<u32>,
    /// `start_low16 << 16 | payload id`, sorted within each /16; every /16 begins at 0.
    v4_pieces: Vec<u32>,
    /// (prefix length, feed) per payload id; id 0 is "not listed".
    v4_payloads: Vec<(u8, u16)>,
    v4_prefixes: usize,
    v6: Vec<(u128, u128, Prefix)>,
}

impl IndicatorSet {
    /// Entries held: exact addresses plus prefixes (after flattening, intervals).
    pub fn len(&self) -> usize {
        self.exact_v4.len() + self.exact_v6.len() + self.v4_prefixes + self.v6.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The feeds, in the order they were added.
    pub fn feeds(&self) -> &[String] {
        &self.feeds
    }

    fn feed(&self, id: u16) -> &str {
        self.feeds
            .get(usize::from(id))
            .map(String::as_str)
            .unwrap_or("")
    }

    /// Whether `addr` is listed exactly (no prefix lookup).
    pub fn contains_exact(&self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => self.exact_v4.find(u32::from(a)).is_some(),
            IpAddr::V6(a) => self.exact_v6.contains_key(&u128::from(a)),
        }
    }

    /// The longest-prefix CIDR entry covering `addr` (exact entries not consulted).
    pub fn lookup_prefix(&self, addr: IpAddr) -> Option<Hit<'_>> {
        match addr {
            IpAddr::V4(a) => {
                let x = u32::from(a);
                let b = (x >> 16) as usize;
                let lo = *self.v4_offsets.get(b)? as usize;
                let hi = *self.v4_offsets.get(b + 1)? as usize;
                let pieces = self.v4_pieces.get(lo..hi)?;
                let key = ((x & 0xffff) << 16) | 0xffff;
                let k = pieces.partition_point(|p| *p <= key);
                let id = *pieces.get(k.checked_sub(1)?)? & 0xffff;
                if id == 0 {
                    return None;
                }
                let (len, feed) = *self.v4_payloads.get(id as usize)?;
                let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
                Some(Hit {
                    feed: self.feed(feed),
                    network: IpAddr::from((x & mask).to_be_bytes()),
                    prefix_len: len,
                })
            }
            IpAddr::V6(a) => {
                let x = u128::from(a);
                let k = self.v6.partition_point(|(s, _, _)| *s <= x);
                let (_, e, p) = self.v6.get(k.checked_sub(1)?)?;
                (*e >= x).then(|| Hit {
                    feed: self.feed(p.feed),
                    network: IpAddr::from(p.start.to_be_bytes()),
                    prefix_len: p.len,
                })
            }
        }
    }

    /// The entry listing `addr`: exact first, then the longest prefix.
    pub fn lookup(&self, addr: IpAddr) -> Option<Hit<'_>> {
        let exact = match addr {
            IpAddr::V4(a) => self
                .exact_v4
                .find(u32::from(a))
                .and_then(|i| self.exact_v4.feeds.get(i))
                .map(|f| (f, 32)),
            IpAddr::V6(a) => self.exact_v6.get(&u128::from(a)).map(|f| (f, 128)),
        };
        if let Some((f, len)) = exact {
            return Some(Hit {
                feed: self.feed(*f),
                network: addr,
                prefix_len: len,
            });
        }
        self.lookup_prefix(addr)
    }
}

/// Where the current [`IndicatorSet`] lives: readers `load` an `Arc`, a reload `store`s
/// a new one. The lock is held only to clone or replace the `Arc`.
#[derive(Debug, Default)]
pub struct IndicatorSlot(RwLock<Arc<IndicatorSet>>);

impl IndicatorSlot {
    /// A slot holding `set`.
    pub fn new(set: IndicatorSet) -> Self {
        Self(RwLock::new(Arc::new(set)))
    }

    /// The current set.
    pub fn load(&self) -> Arc<IndicatorSet> {
        match self.0.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Replaces the set; returns the previous one.
    pub fn store(&self, set: Arc<IndicatorSet>) -> Arc<IndicatorSet> {
        match self.0.write() {
            Ok(mut g) => std::mem::replace(&mut *g, set),
            Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), set),
        }
    }
}

#[derive(Debug)]
struct HitAcc {
    entry: String,
    feed: String,
    first: i64,
    last: i64,
    flows: u64,
    packets: u64,
    bytes: u64,
    as_destination: bool,
    ports: FxHashMap<(u16, u8), u64>,
    peers: Vec<IpAddr>,
    peer_count: u64,
}

/// Matches both endpoints of every record against an [`IndicatorSet`].
#[derive(Debug, Default)]
pub struct IndicatorDetector {
    set: Arc<IndicatorSet>,
    hits: FxHashMap<IpAddr, HitAcc>,
}

impl IndicatorDetector {
    /// A detector over `set`.
    pub fn new(set: Arc<IndicatorSet>) -> Self {
        Self {
            set,
            hits: FxHashMap::default(),
        }
    }

    /// Switches to a reloaded set (hits so far are kept).
    pub fn replace_set(&mut self, set: Arc<IndicatorSet>) {
        self.set = set;
    }

    /// Adds one record.
    pub fn observe(&mut self, r: &FlowRecord) {
        if self.set.is_empty() {
            return;
        }
        for (listed, peer, is_dst) in [
            (r.dst_addr, r.src_addr, true),
            (r.src_addr, r.dst_addr, false),
        ] {
            let Some(hit) = self.set.lookup(listed) else {
                continue;
            };
            let f = r.sampling_factor();
            let acc = self.hits.entry(listed).or_insert_with(|| HitAcc {
                entry: hit.entry(),
                feed: hit.feed.to_string(),
                first: r.start_ms,
                last: r.start_ms,
                flows: 0,
                packets: 0,
                bytes: 0,
                as_destination: false,
                ports: FxHashMap::default(),
                peers: Vec::new(),
                peer_count: 0,
            });
            acc.first = acc.first.min(r.start_ms);
            acc.last = acc.last.max(r.start_ms);
            acc.flows += 1;
            acc.packets = acc
                .packets
                .saturating_add(r.packets.saturating_add(r.rev_packets).saturating_mul(f));
            acc.bytes = acc
                .bytes
                .saturating_add(r.bytes.saturating_add(r.rev_bytes).saturating_mul(f));
            acc.as_destination |= is_dst;
            let port = if is_dst { r.dst_port } else { r.src_port };
            if acc.ports.len() < 64 || acc.ports.contains_key(&(port, r.protocol)) {
                *acc.ports.entry((port, r.protocol)).or_default() += 1;
            }
            if !acc.peers.contains(&peer) {
                acc.peer_count += 1;
                if acc.peers.len() < Clients::MAX_LISTED {
                    acc.peers.push(peer);
                }
            }
        }
    }

    /// One finding per listed address seen, score 1 (a curated list said so).
    pub fn findings(&self) -> Vec<Finding> {
        let mut out: Vec<Finding> = self
            .hits
            .iter()
            .map(|(addr, a)| {
                let (port, proto) = a
                    .ports
                    .iter()
                    .max_by(|x, y| x.1.cmp(y.1).then(y.0.cmp(x.0)))
                    .map(|(k, _)| *k)
                    .unwrap_or((0, 0));
                Finding {
                    kind: FindingKind::Indicator,
                    address: *addr,
                    port,
                    proto,
                    score: 1.0,
                    first_seen: a.first,
                    last_seen: a.last,
                    clients: Clients::new(a.peer_count, a.peers.clone()),
                    evidence: Evidence::Indicator(IndicatorEvidence {
                        entry: a.entry.clone(),
                        flows: a.flows,
                        packets: a.packets,
                        bytes: a.bytes,
                        as_destination: a.as_destination,
                    }),
                    feed: Some(a.feed.clone()),
                }
            })
            .collect();
        out.sort_by_key(|f| f.address);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn longest_prefix_wins_inside_a_covering_prefix() {
        let mut b = IndicatorSetBuilder::new();
        b.add_entry("10.0.0.0/8", "wide").unwrap();
        b.add_entry("10.1.0.0/16", "narrow").unwrap();
        b.add_entry("10.1.2.3", "exact").unwrap();
        b.add_entry("2001:db8::/32", "v6").unwrap();
        let s = b.build();
        assert_eq!(s.lookup(ip("10.1.2.3")).map(|h| h.feed), Some("exact"));
        assert_eq!(s.lookup(ip("10.1.9.9")).map(|h| h.feed), Some("narrow"));
        assert_eq!(s.lookup(ip("10.2.0.0")).map(|h| h.feed), Some("wide"));
        assert_eq!(s.lookup(ip("10.255.255.255")).map(|h| h.feed), Some("wide"));
        assert_eq!(s.lookup(ip("11.0.0.0")), None);
        assert_eq!(s.lookup(ip("9.255.255.255")), None);
        assert_eq!(
            s.lookup(ip("2001:db8::1")).map(|h| h.entry()),
            Some("2001:db8::/32".into())
        );
        assert_eq!(s.lookup(ip("2001:db9::1")), None);
        assert_eq!(
            s.lookup(ip("10.1.9.9")).map(|h| h.entry()),
            Some("10.1.0.0/16".into())
        );
    }

    #[test]
    fn lpm_agrees_with_brute_force_on_random_nested_prefixes() {
        let mut state = 0x1234_5678_u64;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 32) as u32
        };
        let mut b = IndicatorSetBuilder::new();
        let mut list = Vec::new();
        for i in 0..3000 {
            // Cluster addresses in a few /8s so prefixes nest and share /16s.
            let a = (next() & 0x03ff_ffff) | 0x0a00_0000;
            let len = (next() % 25 + 8) as u8;
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            let feed = if i % 2 == 0 { "a" } else { "b" };
            b.add_prefix(IpAddr::from((a & mask).to_be_bytes()), len, feed)
                .unwrap();
            list.push((a & mask, mask, len, feed));
        }
        let s = b.build();
        for _ in 0..20_000 {
            let x = (next() & 0x07ff_ffff) | 0x0800_0000;
            // Longest match; among equal prefixes the first added wins.
            let mut want: Option<(u8, &str)> = None;
            for (net, mask, len, feed) in &list {
                if x & mask == *net && want.is_none_or(|(l, _)| *len > l) {
                    want = Some((*len, feed));
                }
            }
            let got = s
                .lookup_prefix(IpAddr::from(x.to_be_bytes()))
                .map(|h| (h.prefix_len, h.feed));
            assert_eq!(got, want, "{}", std::net::Ipv4Addr::from(x));
        }
    }

    #[test]
    fn whole_space_prefixes_do_not_overflow() {
        let mut b = IndicatorSetBuilder::new();
        b.add_entry("0.0.0.0/0", "all").unwrap();
        b.add_entry("255.255.255.0/24", "top").unwrap();
        b.add_entry("::/0", "all6").unwrap();
        let s = b.build();
        assert_eq!(s.lookup(ip("255.255.255.255")).map(|h| h.feed), Some("top"));
        assert_eq!(s.lookup(ip("0.0.0.0")).map(|h| h.feed), Some("all"));
        assert_eq!(s.lookup(ip("ffff::1")).map(|h| h.feed), Some("all6"));
    }

    #[test]
    fn bad_entries_name_the_entry() {
        let mut b = IndicatorSetBuilder::new();
        let e = b.add_drop_list("1.2.3.0/33 ; SBL1\n".as_bytes(), "drop");
        assert!(matches!(e, Err(Error::BadEntry { entry }) if entry.contains("1.2.3.0/33")));
    }

    /// `add_list` tells the two formats apart by their header (CI-11): a Feodo CSV's
    /// address is its second field, a DROP list's the text before `;`.
    #[test]
    fn add_list_reads_a_feodo_csv_and_a_drop_list_by_their_header() {
        let feodo = "# abuse.ch Feodo Tracker\n\"first_seen_utc\",\"dst_ip\",\"dst_port\"\n\
                     \"2026-01-01 00:00:00\",\"192.0.2.7\",\"443\"\n";
        let drop = "; Spamhaus DROP\n198.51.100.0/24 ; SBL1\n";
        let mut b = IndicatorSetBuilder::new();
        assert_eq!(b.add_list(feodo.as_bytes(), "feodo").unwrap(), 1);
        assert_eq!(b.add_list(drop.as_bytes(), "drop").unwrap(), 1);
        let s = b.build();
        assert_eq!(s.lookup(ip("192.0.2.7")).map(|h| h.feed), Some("feodo"));
        assert_eq!(s.lookup(ip("198.51.100.9")).map(|h| h.feed), Some("drop"));
        // A Feodo row read as a DROP list would be a bad entry naming the row.
        let mut b = IndicatorSetBuilder::new();
        let e = b.add_list(b"\"x\",\"192.0.2.7\"\n", "plain");
        assert!(matches!(e, Err(Error::BadEntry { entry }) if entry.contains("192.0.2.7")));
    }

    #[test]
    fn slot_swaps_without_disturbing_holders() {
        let slot = IndicatorSlot::new(IndicatorSet::default());
        let held = slot.load();
        let mut b = IndicatorSetBuilder::new();
        b.add_entry("192.0.2.1", "f").unwrap();
        slot.store(Arc::new(b.build()));
        assert!(held.is_empty());
        assert!(slot.load().contains_exact(ip("192.0.2.1")));
    }
}
