//! A bidirectional 5-tuple flow meter: captured packets in, flow records out.
//!
//! Each packet's L2–L4 headers are read (and nothing after them, CI-3) and accounted to
//! its connection, keyed by (protocol, both endpoints) in either direction. The side that
//! sent the first packet is the record's source; the other direction's counters go to
//! `rev_packets`/`rev_bytes`. A flow ends when it has been idle for the idle timeout, has
//! lasted the active timeout (long flows are split, as NetFlow exporters do), or — for
//! TCP, unless configured otherwise — when a new SYN arrives after both FINs or a RST. Time is the packets' own
//! timestamps: the meter reads no clock.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

use std::net::IpAddr;

use rustc_hash::FxHashMap;

use crate::anomaly::Anomaly;
use crate::packet::{self, Headers};
use crate::record::{FlowBatch, FlowRecord, FlowSource};

/// Timeouts and bounds of the flow meter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeterConfig {
    /// A flow with no packet for this long is ended.
    pub idle_timeout_ms: i64,
    /// A flow is ended (and a new one started) after lasting this long.
    pub active_timeout_ms: i64,
    /// Flows held at once; packets of new flows beyond it are counted and dropped.
    pub max_flows: usize,
    /// End a TCP flow when a new SYN arrives after both FINs or a RST (a new connection
    /// reusing the 5-tuple). Exporters such as softflowd do not, and merge them.
    pub split_tcp_on_new_syn: bool,
}

impl Default for MeterConfig {
    fn default() -> Self {
        Self {
            idle_timeout_ms: 300_000,
            active_timeout_ms: 1_800_000,
            max_flows: 1 << 20,
            split_tcp_on_new_syn: true,
        }
    }
}

/// The link layer a captured frame starts with (pcap `LINKTYPE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkType {
    /// Ethernet (1).
    Ethernet,
    /// Linux cooked capture v1 (113).
    LinuxSll,
    /// Linux cooked capture v2 (276).
    LinuxSll2,
    /// Raw IP (101, and the DLT_RAW values 12 and 14; 228 IPv4; 229 IPv6).
    RawIp,
    /// BSD loopback (0): a 4-byte address family, then IP.
    Null,
    /// Anything else (the number as in the capture).
    Other(u32),
}

impl LinkType {
    /// The link type of a pcap/pcapng `LINKTYPE_*` number.
    pub fn from_pcap(n: u32) -> Self {
        match n {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            12 | 14 | 101 | 228 | 229 => LinkType::RawIp,
            113 => LinkType::LinuxSll,
            276 => LinkType::LinuxSll2,
            n => LinkType::Other(n),
        }
    }
}

/// Reads a captured frame's headers according to its link type.
/// `l4_end` in the result counts from the start of the frame.
pub(crate) fn headers(link: LinkType, frame: &[u8]) -> Result<Headers, Anomaly> {
    let (mut h, skip) = match link {
        LinkType::Ethernet => (packet::ethernet(frame)?, 0),
        // SLL: 14 bytes of pseudo-header, then the protocol (ethertype); SLL2: 20, type first.
        LinkType::LinuxSll => (cooked(frame, 14, 16)?, 16),
        LinkType::LinuxSll2 => (cooked(frame, 0, 20)?, 20),
        LinkType::RawIp => (packet::ip(frame)?, 0),
        LinkType::Null => (packet::ip(frame.get(4..).unwrap_or_default())?, 4),
        LinkType::Other(_) => {
            return Err(Anomaly::NotIpFlow {
                what: "unsupported link type",
            });
        }
    };
    h.l4_end += skip;
    Ok(h)
}

fn cooked(frame: &[u8], type_at: usize, header: usize) -> Result<Headers, Anomaly> {
    let ethertype = frame
        .get(type_at..type_at + 2)
        .and_then(|b| b.first_chunk::<2>())
        .map(|b| u16::from_be_bytes(*b))
        .ok_or(Anomaly::Truncated {
            what: "linux cooked header",
        })?;
    let rest = frame.get(header..).ok_or(Anomaly::Truncated {
        what: "linux cooked header",
    })?;
    match ethertype {
        0x0800 | 0x86dd => packet::ip(rest),
        _ => Err(Anomaly::NotIpFlow {
            what: "non-IP frame",
        }),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    protocol: u8,
    a: (IpAddr, u16),
    b: (IpAddr, u16),
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    /// The first packet went from `a` to `b`.
    a_first: bool,
    first_ms: i64,
    last_ms: i64,
    /// Counters from `a` to `b`, then from `b` to `a`.
    packets: [u64; 2],
    bytes: [u64; 2],
    tcp_flags: u8,
    fin: [bool; 2],
    rst: bool,
    tos: u8,
    icmp: (u8, u8),
}

/// The flow table.
#[derive(Debug, Default)]
pub struct FlowMeter {
    config: MeterConfig,
    flows: FxHashMap<Key, Entry>,
    last_scan_ms: i64,
}

const SCAN_EVERY_MS: i64 = 1000;

impl FlowMeter {
    /// A meter with the given timeouts and bounds.
    pub fn new(config: MeterConfig) -> Self {
        Self {
            config,
            flows: FxHashMap::default(),
            last_scan_ms: i64::MIN,
        }
    }

    /// Flows currently held.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// Whether no flow is held.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Accounts one captured frame received at `ts_ms`; flows that ended by then are
    /// pushed into `batch`. A frame that is not IP is counted as a deliberate drop.
    pub fn packet(&mut self, ts_ms: i64, link: LinkType, frame: &[u8], batch: &mut FlowBatch) {
        match headers(link, frame) {
            Ok(h) => self.account(ts_ms, &h, batch),
            Err(a) => batch.count(a),
        }
        if ts_ms.saturating_sub(self.last_scan_ms) >= SCAN_EVERY_MS {
            self.expire(ts_ms, batch);
        }
    }

    fn account(&mut self, ts_ms: i64, h: &Headers, batch: &mut FlowBatch) {
        let src = (h.src, h.src_port);
        let dst = (h.dst, h.dst_port);
        let forward = src <= dst;
        let key = Key {
            protocol: h.protocol,
            a: if forward { src } else { dst },
            b: if forward { dst } else { src },
        };
        let side = usize::from(!forward);
        let syn_only = h.protocol == 6 && h.tcp_flags & 0x12 == 0x02;
        if let Some(e) = self.flows.get(&key) {
            let ended =
                self.config.split_tcp_on_new_syn && (e.rst || e.fin == [true, true]) && syn_only;
            let too_long = ts_ms.saturating_sub(e.first_ms) >= self.config.active_timeout_ms;
            let idle = ts_ms.saturating_sub(e.last_ms) >= self.config.idle_timeout_ms;
            if ended || too_long || idle {
                let e = *e;
                self.flows.remove(&key);
                batch.records.push(record(&key, &e));
            }
        }
        if !self.flows.contains_key(&key) && self.flows.len() >= self.config.max_flows {
            batch.count(Anomaly::FlowTableFull);
            return;
        }
        let e = self.flows.entry(key).or_insert(Entry {
            a_first: forward,
            first_ms: ts_ms,
            last_ms: ts_ms,
            packets: [0; 2],
            bytes: [0; 2],
            tcp_flags: 0,
            fin: [false; 2],
            rst: false,
            tos: h.tos,
            icmp: (h.icmp_type, h.icmp_code),
        });
        e.last_ms = e.last_ms.max(ts_ms);
        if let (Some(p), Some(b)) = (e.packets.get_mut(side), e.bytes.get_mut(side)) {
            *p += 1;
            *b += u64::from(h.ip_len);
        }
        e.tcp_flags |= h.tcp_flags;
        if h.protocol == 6 {
            if h.tcp_flags & 0x01 != 0
                && let Some(f) = e.fin.get_mut(side)
            {
                *f = true;
            }
            e.rst |= h.tcp_flags & 0x04 != 0;
        }
    }

    /// Ends the flows idle or too long as of `now_ms` (packet time).
    pub fn expire(&mut self, now_ms: i64, batch: &mut FlowBatch) {
        self.last_scan_ms = now_ms;
        let start = batch.records.len();
        let (idle, active) = (self.config.idle_timeout_ms, self.config.active_timeout_ms);
        self.flows.retain(|k, e| {
            let done = now_ms.saturating_sub(e.last_ms) >= idle
                || now_ms.saturating_sub(e.first_ms) >= active;
            if done {
                batch.records.push(record(k, e));
            }
            !done
        });
        sort_flows(batch.records.get_mut(start..).unwrap_or_default());
    }

    /// Ends every flow (end of capture), oldest first.
    pub fn flush(&mut self, batch: &mut FlowBatch) {
        let start = batch.records.len();
        batch
            .records
            .extend(self.flows.iter().map(|(k, e)| record(k, e)));
        self.flows.clear();
        sort_flows(batch.records.get_mut(start..).unwrap_or_default());
    }
}

/// Flows ended together come out in a deterministic order (hash-table order is not).
fn sort_flows(records: &mut [FlowRecord]) {
    records.sort_unstable_by_key(|r| {
        (
            r.start_ms, r.end_ms, r.src_addr, r.src_port, r.dst_addr, r.dst_port, r.protocol,
        )
    });
}

fn record(k: &Key, e: &Entry) -> FlowRecord {
    let (src, dst, fwd, rev) = if e.a_first {
        (k.a, k.b, 0, 1)
    } else {
        (k.b, k.a, 1, 0)
    };
    let get = |v: &[u64; 2], i: usize| v.get(i).copied().unwrap_or(0);
    let mut r = FlowRecord {
        src_addr: src.0,
        dst_addr: dst.0,
        src_port: src.1,
        dst_port: dst.1,
        protocol: k.protocol,
        start_ms: e.first_ms,
        end_ms: e.last_ms,
        packets: get(&e.packets, fwd),
        bytes: get(&e.bytes, fwd),
        rev_packets: get(&e.packets, rev),
        rev_bytes: get(&e.bytes, rev),
        tcp_flags: e.tcp_flags,
        tos: e.tos,
        sampling_rate: 1,
        source: FlowSource::Pcap,
        ..FlowRecord::default()
    };
    if r.is_icmp() {
        (r.icmp_type, r.icmp_code) = e.icmp;
    }
    r
}
