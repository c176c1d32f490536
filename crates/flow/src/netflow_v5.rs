//! NetFlow version 5: a 24-byte header and up to 30 fixed 48-byte records.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr};

use crate::anomaly::Anomaly;
use crate::export::{Datagram, DatagramDecoder, uptime_to_utc_ms};
use crate::reader::Reader;
use crate::record::{FlowBatch, FlowRecord, FlowSource};

const HEADER_LEN: usize = 24;
const RECORD_LEN: usize = 48;
/// Cisco's documented maximum; more is a malformed (or hostile) header.
const MAX_RECORDS: usize = 30;

/// Decodes NetFlow v5 datagrams. Stateless.
#[derive(Debug, Default, Clone, Copy)]
pub struct NetflowV5Decoder;

impl DatagramDecoder for NetflowV5Decoder {
    fn decode(&mut self, datagram: Datagram<'_>, batch: &mut FlowBatch) {
        if let Err(a) = decode_v5(datagram, batch) {
            batch.count(a);
        }
    }
}

fn decode_v5(datagram: Datagram<'_>, batch: &mut FlowBatch) -> Result<(), Anomaly> {
    let mut r = Reader::new(datagram.payload);
    let h = r.array::<HEADER_LEN>().ok_or(Anomaly::Truncated {
        what: "netflow v5 header",
    })?;
    let version = u16::from_be_bytes([h[0], h[1]]);
    if version != 5 {
        return Err(Anomaly::UnsupportedVersion { version });
    }
    let count = usize::from(u16::from_be_bytes([h[2], h[3]]));
    let sys_uptime = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
    let unix_secs = u32::from_be_bytes([h[8], h[9], h[10], h[11]]);
    let unix_nsecs = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
    let engine_type = h[20];
    let engine_id = h[21];
    let sampling = u16::from_be_bytes([h[22], h[23]]) & 0x3fff;
    if count > MAX_RECORDS {
        return Err(Anomaly::BadLength {
            what: "netflow v5 record count",
        });
    }
    let export_ms = i64::from(unix_secs) * 1000 + i64::from(unix_nsecs / 1_000_000);
    let body = r.bytes(count * RECORD_LEN, "netflow v5 records")?;
    let (records, _) = body.as_chunks::<RECORD_LEN>();
    let base = FlowRecord {
        exporter: datagram.exporter,
        observation_domain: (u32::from(engine_type) << 8) | u32::from(engine_id),
        sampling_rate: u32::from(sampling.max(1)),
        source: FlowSource::NetflowV5,
        ..FlowRecord::default()
    };
    batch.records.reserve(records.len());
    for d in records {
        let first = u32::from_be_bytes([d[24], d[25], d[26], d[27]]);
        let last = u32::from_be_bytes([d[28], d[29], d[30], d[31]]);
        let protocol = d[38];
        let dst_port = u16::from_be_bytes([d[34], d[35]]);
        let mut rec = FlowRecord {
            src_addr: IpAddr::V4(Ipv4Addr::new(d[0], d[1], d[2], d[3])),
            dst_addr: IpAddr::V4(Ipv4Addr::new(d[4], d[5], d[6], d[7])),
            input_if: u32::from(u16::from_be_bytes([d[12], d[13]])),
            output_if: u32::from(u16::from_be_bytes([d[14], d[15]])),
            packets: u64::from(u32::from_be_bytes([d[16], d[17], d[18], d[19]])),
            bytes: u64::from(u32::from_be_bytes([d[20], d[21], d[22], d[23]])),
            start_ms: uptime_to_utc_ms(export_ms, sys_uptime, first),
            end_ms: uptime_to_utc_ms(export_ms, sys_uptime, last),
            src_port: u16::from_be_bytes([d[32], d[33]]),
            dst_port,
            tcp_flags: d[37],
            protocol,
            tos: d[39],
            ..base
        };
        if rec.is_icmp() {
            // v5 has no ICMP fields: exporters put type and code in the destination port.
            let [t, c] = dst_port.to_be_bytes();
            rec.icmp_type = t;
            rec.icmp_code = c;
        }
        batch.records.push(rec);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn datagram(count: u16, records: usize) -> Vec<u8> {
        let mut d = vec![0u8; HEADER_LEN + records * RECORD_LEN];
        d[1] = 5;
        d[2..4].copy_from_slice(&count.to_be_bytes());
        d
    }

    #[test]
    fn count_beyond_the_payload_is_counted_not_read() {
        let mut b = FlowBatch::default();
        let bytes = datagram(3, 2);
        NetflowV5Decoder.decode(
            Datagram::new(IpAddr::from([127, 0, 0, 1]), 0, &bytes),
            &mut b,
        );
        assert!(b.is_empty());
        assert_eq!(
            b.anomalies.last(),
            Some(Anomaly::Truncated {
                what: "netflow v5 records"
            })
        );
    }

    #[test]
    fn count_above_thirty_is_refused() {
        let mut b = FlowBatch::default();
        let bytes = datagram(31, 31);
        NetflowV5Decoder.decode(
            Datagram::new(IpAddr::from([127, 0, 0, 1]), 0, &bytes),
            &mut b,
        );
        assert!(b.is_empty());
        assert_eq!(b.anomalies.total(), 1);
    }
}
