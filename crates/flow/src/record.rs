//! The one flow record every input is reduced to, and the reusable batch decoders fill.

use std::net::{IpAddr, Ipv4Addr};

use crate::anomaly::{Anomaly, AnomalyCounts};

/// Which input produced a record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FlowSource {
    /// Not set (a default record).
    #[default]
    Unknown,
    /// Cisco NetFlow version 5.
    NetflowV5,
    /// NetFlow version 9 (RFC 3954).
    NetflowV9,
    /// IPFIX (RFC 7011).
    Ipfix,
    /// An sFlow v5 flow sample (one sampled packet).
    Sflow,
    /// The flow meter, from a pcap/pcapng capture.
    Pcap,
    /// A Zeek `conn.log` line (TSV or JSON).
    Zeek,
    /// An Argus / CTU-13 `binetflow` line.
    Argus,
}

/// Flow direction as the exporter saw it (IPFIX IE 61 `flowDirection`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The input does not say.
    #[default]
    Unknown,
    /// Observed entering the exporter's interface.
    Ingress,
    /// Observed leaving the exporter's interface.
    Egress,
}

const UNSPECIFIED: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// One flow, as metadata only: no payload byte is ever part of it (CI-3).
///
/// `packets`/`bytes` count the forward direction (source → destination). Bidirectional
/// inputs (Zeek, Argus, IPFIX biflows per RFC 5103) put the other direction in
/// `rev_packets`/`rev_bytes`, so one input line or record stays one `FlowRecord`.
/// Counters are as exported: multiply by [`FlowRecord::sampling_factor`] to renormalise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowRecord {
    /// Source address.
    pub src_addr: IpAddr,
    /// Destination address.
    pub dst_addr: IpAddr,
    /// The exporter (router, probe) that sent the record; unspecified for file inputs.
    pub exporter: IpAddr,
    /// Flow start, UTC milliseconds since the Unix epoch (0 when the input has none).
    pub start_ms: i64,
    /// Flow end, UTC milliseconds since the Unix epoch (0 when the input has none).
    pub end_ms: i64,
    /// Packets, forward direction.
    pub packets: u64,
    /// Bytes (IP bytes: headers included), forward direction.
    pub bytes: u64,
    /// Packets, reverse direction (0 for unidirectional inputs).
    pub rev_packets: u64,
    /// Bytes, reverse direction (0 for unidirectional inputs).
    pub rev_bytes: u64,
    /// IPFIX observation domain id, NetFlow v9 source id, v5 `engine_type << 8 | engine_id`.
    pub observation_domain: u32,
    /// Input interface index (0 = unknown).
    pub input_if: u32,
    /// Output interface index (0 = unknown).
    pub output_if: u32,
    /// One packet in `sampling_rate` was sampled; 0 = unknown, 1 = unsampled.
    pub sampling_rate: u32,
    /// Source port (0 when the protocol has none).
    pub src_port: u16,
    /// Destination port (for ICMP, NetFlow exporters put `type << 8 | code` here).
    pub dst_port: u16,
    /// IP protocol number.
    pub protocol: u8,
    /// TCP flags (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, URG 0x20, ECE, CWR), ORed.
    pub tcp_flags: u8,
    /// IP type of service / traffic class.
    pub tos: u8,
    /// ICMP / ICMPv6 type (meaningful when `protocol` is 1 or 58).
    pub icmp_type: u8,
    /// ICMP / ICMPv6 code.
    pub icmp_code: u8,
    /// Direction, where the exporter says.
    pub direction: Direction,
    /// Which input produced the record.
    pub source: FlowSource,
}

impl Default for FlowRecord {
    fn default() -> Self {
        Self {
            src_addr: UNSPECIFIED,
            dst_addr: UNSPECIFIED,
            exporter: UNSPECIFIED,
            start_ms: 0,
            end_ms: 0,
            packets: 0,
            bytes: 0,
            rev_packets: 0,
            rev_bytes: 0,
            observation_domain: 0,
            input_if: 0,
            output_if: 0,
            sampling_rate: 0,
            src_port: 0,
            dst_port: 0,
            protocol: 0,
            tcp_flags: 0,
            tos: 0,
            icmp_type: 0,
            icmp_code: 0,
            direction: Direction::Unknown,
            source: FlowSource::Unknown,
        }
    }
}

impl FlowRecord {
    /// The factor that renormalises sampled counters: `sampling_rate`, or 1 when unknown.
    pub fn sampling_factor(&self) -> u64 {
        u64::from(self.sampling_rate.max(1))
    }

    /// Whether the protocol is ICMP or ICMPv6.
    pub fn is_icmp(&self) -> bool {
        self.protocol == 1 || self.protocol == 58
    }
}

/// A caller-owned, reusable batch: decoders push records and count anomalies into it.
///
/// Clear it between uses ([`FlowBatch::clear`]) so the record buffer's capacity is reused:
/// decoding then allocates nothing per record.
#[derive(Debug, Default, Clone)]
pub struct FlowBatch {
    /// Decoded records, in input order.
    pub records: Vec<FlowRecord>,
    /// Anomalies met while filling this batch, counted by kind.
    pub anomalies: AnomalyCounts,
}

impl FlowBatch {
    /// An empty batch with room for `capacity` records.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            records: Vec::with_capacity(capacity),
            anomalies: AnomalyCounts::default(),
        }
    }

    /// Empties the batch, keeping the record buffer's capacity.
    pub fn clear(&mut self) {
        self.records.clear();
        self.anomalies = AnomalyCounts::default();
    }

    /// Number of records held.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Counts one anomaly.
    pub fn count(&mut self, anomaly: Anomaly) {
        self.anomalies.add(anomaly);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_stays_compact_and_copy() {
        fn is_copy<T: Copy>() {}
        is_copy::<FlowRecord>();
        assert!(std::mem::size_of::<FlowRecord>() <= 128);
    }

    #[test]
    fn sampling_factor_treats_unknown_as_one() {
        let mut r = FlowRecord::default();
        assert_eq!(r.sampling_factor(), 1);
        r.sampling_rate = 30_000;
        assert_eq!(r.sampling_factor(), 30_000);
    }
}
