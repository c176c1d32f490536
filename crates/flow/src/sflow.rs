//! sFlow version 5 (sflow.org `sflow_version_5.txt`): flow samples become records, counter
//! samples are counted.
//!
//! One flow sample is one sampled packet: a record with `packets = 1`, `bytes` = its IP
//! length, and the sample's `sampling_rate`. Its fields come from the sampled packet
//! header (raw header record, parsed only as far as the end of the L4 header — **every
//! byte beyond is dropped at decode**, CI-3) and from the IPv4/IPv6 data records when
//! the agent sends those. sFlow carries no flow times: start and end are the datagram's
//! receive time. The exporter is the sFlow *agent address* in the datagram (not the UDP
//! source), and the observation domain its sub-agent id.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::anomaly::Anomaly;
use crate::export::{Datagram, DatagramDecoder};
use crate::packet::{self, Headers};
use crate::reader::Reader;
use crate::record::{FlowBatch, FlowRecord, FlowSource};

/// sFlow's "this is the agent itself" interface index.
const IF_LOCAL: u32 = 0x3fff_ffff;
const VXLAN_PORT: u16 = 4789;

/// Decodes sFlow v5 datagrams. Stateless, apart from its one option.
#[derive(Debug, Default, Clone, Copy)]
pub struct SflowDecoder {
    /// Report the inner flow of VXLAN-encapsulated samples (UDP port 4789) instead of the
    /// outer one, and drop samples that are not VXLAN (as akvorado's decapsulation does).
    pub decapsulate_vxlan: bool,
}

impl DatagramDecoder for SflowDecoder {
    fn decode(&mut self, datagram: Datagram<'_>, batch: &mut FlowBatch) {
        if let Err(a) = self.decode_datagram(datagram, batch) {
            batch.count(a);
        }
    }
}

impl SflowDecoder {
    fn decode_datagram(&self, dg: Datagram<'_>, batch: &mut FlowBatch) -> Result<(), Anomaly> {
        let mut r = Reader::new(dg.payload);
        let version = r.u32("sflow header")?;
        if version != 5 {
            return Err(Anomaly::UnsupportedVersion {
                version: u16::try_from(version).unwrap_or(u16::MAX),
            });
        }
        let agent = match r.u32("sflow header")? {
            1 => IpAddr::V4(Ipv4Addr::from(*r.array::<4>().ok_or(
                Anomaly::Truncated {
                    what: "sflow agent address",
                },
            )?)),
            2 => IpAddr::V6(Ipv6Addr::from(*r.array::<16>().ok_or(
                Anomaly::Truncated {
                    what: "sflow agent address",
                },
            )?)),
            _ => {
                return Err(Anomaly::BadLength {
                    what: "sflow agent address type",
                });
            }
        };
        let sub_agent = r.u32("sflow header")?;
        let _sequence = r.u32("sflow header")?;
        let _uptime = r.u32("sflow header")?;
        let samples = r.u32("sflow header")?;
        let base = FlowRecord {
            exporter: agent,
            observation_domain: sub_agent,
            start_ms: dg.received_ms,
            end_ms: dg.received_ms,
            packets: 1,
            source: FlowSource::Sflow,
            ..FlowRecord::default()
        };
        // Each sample has an 8-byte header, so the count is bounded by the datagram.
        for _ in 0..samples {
            if r.is_empty() {
                return Err(Anomaly::Truncated {
                    what: "sflow sample",
                });
            }
            let format = r.u32("sflow sample header")?;
            let len = usize::try_from(r.u32("sflow sample header")?).unwrap_or(usize::MAX);
            let body = r.sub(len, "sflow sample")?;
            match (format >> 12, format & 0xfff) {
                (0, 1) => self.flow_sample(base, body, false, batch),
                (0, 3) => self.flow_sample(base, body, true, batch),
                (0, 2 | 4) => batch.count(Anomaly::CounterSample),
                _ => batch.count(Anomaly::NotIpFlow {
                    what: "unknown sflow sample format",
                }),
            }
        }
        Ok(())
    }

    fn flow_sample(
        &self,
        base: FlowRecord,
        mut r: Reader<'_>,
        expanded: bool,
        batch: &mut FlowBatch,
    ) {
        match self.flow_sample_inner(base, &mut r, expanded) {
            Ok(rec) => batch.records.push(rec),
            Err(a) => batch.count(a),
        }
    }

    fn flow_sample_inner(
        &self,
        base: FlowRecord,
        r: &mut Reader<'_>,
        expanded: bool,
    ) -> Result<FlowRecord, Anomaly> {
        let _sequence = r.u32("sflow flow sample")?;
        if expanded {
            r.skip(8, "sflow flow sample")?; // source id type, index
        } else {
            r.skip(4, "sflow flow sample")?; // source id
        }
        let sampling_rate = r.u32("sflow flow sample")?;
        r.skip(8, "sflow flow sample")?; // sample pool, drops
        let (input, output) = if expanded {
            let (in_format, in_value) = (r.u32("sflow flow sample")?, r.u32("sflow flow sample")?);
            let (out_format, out_value) =
                (r.u32("sflow flow sample")?, r.u32("sflow flow sample")?);
            (
                if_index(in_format, in_value),
                if_index(out_format, out_value),
            )
        } else {
            let (i, o) = (r.u32("sflow flow sample")?, r.u32("sflow flow sample")?);
            (
                if_index(i >> 30, i & 0x3fff_ffff),
                if_index(o >> 30, o & 0x3fff_ffff),
            )
        };
        let records = r.u32("sflow flow sample")?;
        let mut rec = FlowRecord {
            sampling_rate,
            input_if: input,
            output_if: output,
            ..base
        };
        let mut found = false;
        let mut not_ip = None;
        for _ in 0..records {
            if r.is_empty() {
                return Err(Anomaly::Truncated {
                    what: "sflow flow record",
                });
            }
            let format = r.u32("sflow flow record header")?;
            let len = usize::try_from(r.u32("sflow flow record header")?).unwrap_or(usize::MAX);
            let mut body = r.sub(len, "sflow flow record")?;
            match format {
                // Raw packet header.
                1 => {
                    let protocol = body.u32("sflow raw header")?;
                    let _frame_length = body.u32("sflow raw header")?;
                    let _stripped = body.u32("sflow raw header")?;
                    let header_len =
                        usize::try_from(body.u32("sflow raw header")?).unwrap_or(usize::MAX);
                    let header = body.bytes(header_len, "sflow raw header")?;
                    let parsed = match protocol {
                        1 => packet::ethernet(header),
                        11 | 12 => packet::ip(header),
                        _ => Err(Anomaly::NotIpFlow {
                            what: "sflow header protocol",
                        }),
                    };
                    let parsed = match (parsed, self.decapsulate_vxlan) {
                        (Ok(h), true) => vxlan_inner(header, &h),
                        (p, _) => p,
                    };
                    match parsed {
                        Ok(h) => {
                            apply(&mut rec, &h);
                            found = true;
                        }
                        Err(a) => not_ip = Some(a),
                    }
                }
                // IPv4 / IPv6 data (decoded by the agent): only without decapsulation.
                3 | 4 if !self.decapsulate_vxlan => {
                    let ip_len = body.u32("sflow ip data")?;
                    let protocol = body.u32("sflow ip data")?;
                    let (src, dst) = if format == 3 {
                        let s = *body.array::<4>().ok_or(Anomaly::Truncated {
                            what: "sflow ipv4 data",
                        })?;
                        let d = *body.array::<4>().ok_or(Anomaly::Truncated {
                            what: "sflow ipv4 data",
                        })?;
                        (IpAddr::from(s), IpAddr::from(d))
                    } else {
                        let s = *body.array::<16>().ok_or(Anomaly::Truncated {
                            what: "sflow ipv6 data",
                        })?;
                        let d = *body.array::<16>().ok_or(Anomaly::Truncated {
                            what: "sflow ipv6 data",
                        })?;
                        (IpAddr::from(s), IpAddr::from(d))
                    };
                    let src_port = body.u32("sflow ip data")?;
                    let dst_port = body.u32("sflow ip data")?;
                    let tcp_flags = body.u32("sflow ip data")?;
                    let tos = body.u32("sflow ip data")?;
                    rec.src_addr = src;
                    rec.dst_addr = dst;
                    rec.bytes = u64::from(ip_len);
                    rec.protocol = u8::try_from(protocol).unwrap_or(u8::MAX);
                    rec.src_port = u16::try_from(src_port).unwrap_or(u16::MAX);
                    rec.dst_port = u16::try_from(dst_port).unwrap_or(u16::MAX);
                    rec.tcp_flags = u8::try_from(tcp_flags & 0xff).unwrap_or(0);
                    rec.tos = u8::try_from(tos & 0xff).unwrap_or(0);
                    found = true;
                }
                _ => {}
            }
        }
        if found {
            Ok(rec)
        } else {
            Err(not_ip.unwrap_or(Anomaly::NotIpFlow {
                what: "sflow sample without IP headers",
            }))
        }
    }
}

/// An sFlow interface value: only plain ifIndex values (format 0) other than "local"
/// name an interface; discarded (format 1) and multiple (format 2) read as 0.
fn if_index(format: u32, value: u32) -> u32 {
    if format == 0 && value != IF_LOCAL {
        value
    } else {
        0
    }
}

/// The inner flow of a VXLAN-encapsulated sample, parsed from the bytes right after the
/// outer UDP header (the VXLAN header, then the inner Ethernet frame).
fn vxlan_inner(header: &[u8], outer: &Headers) -> Result<Headers, Anomaly> {
    if outer.protocol != 17 || outer.dst_port != VXLAN_PORT {
        return Err(Anomaly::NotIpFlow {
            what: "not VXLAN-encapsulated",
        });
    }
    let inner = header
        .get(outer.l4_end..)
        .and_then(|b| b.get(8..))
        .ok_or(Anomaly::Truncated {
            what: "vxlan header",
        })?;
    packet::ethernet(inner)
}

fn apply(rec: &mut FlowRecord, h: &Headers) {
    rec.src_addr = h.src;
    rec.dst_addr = h.dst;
    rec.protocol = h.protocol;
    rec.tos = h.tos;
    rec.src_port = h.src_port;
    rec.dst_port = h.dst_port;
    rec.tcp_flags = h.tcp_flags;
    rec.icmp_type = h.icmp_type;
    rec.icmp_code = h.icmp_code;
    rec.bytes = u64::from(h.ip_len);
}
