//! L2–L4 header parsing of a (sampled or captured) packet, through the one reader.
//!
//! Reads Ethernet, 802.1Q / QinQ tags, MPLS label stacks, IPv4 (with options), IPv6 (with
//! extension headers), and the TCP / UDP / ICMP / ICMPv6 header fields a flow record
//! keeps. **It stops at the end of the L4 header**: no byte after it is ever read, so
//! nothing of a payload can reach a record (CI-3). Non-first fragments yield addresses
//! without ports.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::anomaly::Anomaly;
use crate::reader::Reader;

/// The header fields of one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Headers {
    pub(crate) src: IpAddr,
    pub(crate) dst: IpAddr,
    pub(crate) protocol: u8,
    pub(crate) tos: u8,
    pub(crate) src_port: u16,
    pub(crate) dst_port: u16,
    pub(crate) tcp_flags: u8,
    pub(crate) icmp_type: u8,
    pub(crate) icmp_code: u8,
    /// IP length (IPv4 total length; IPv6 payload length + 40), as the header says.
    pub(crate) ip_len: u32,
    /// UDP length field (header included), 0 for other protocols.
    pub(crate) udp_len: u16,
    /// Offset of the first byte after the L4 header, from the start of the parsed
    /// bytes: only for VXLAN decapsulation and export-capture datagrams.
    pub(crate) l4_end: usize,
}

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const MAX_TAGS: usize = 8;
const MAX_EXT_HEADERS: usize = 8;

/// Parses an Ethernet frame's headers.
pub(crate) fn ethernet(frame: &[u8]) -> Result<Headers, Anomaly> {
    let mut r = Reader::new(frame);
    r.skip(12, "ethernet header")?;
    let mut ethertype = r.u16("ethernet header")?;
    for _ in 0..MAX_TAGS {
        match ethertype {
            0x8100 | 0x88a8 | 0x9100 => {
                r.skip(2, "vlan tag")?;
                ethertype = r.u16("vlan tag")?;
            }
            0x8847 | 0x8848 => {
                // MPLS: labels until bottom-of-stack, then guess the payload from the
                // IP version nibble.
                for _ in 0..MAX_TAGS {
                    let label = r.u32("mpls label")?;
                    if label & 0x100 != 0 {
                        break;
                    }
                }
                ethertype = match r.rest().first().map(|b| b >> 4) {
                    Some(4) => ETH_IPV4,
                    Some(6) => ETH_IPV6,
                    _ => {
                        return Err(Anomaly::NotIpFlow {
                            what: "mpls payload",
                        });
                    }
                };
            }
            _ => break,
        }
    }
    let offset = frame.len() - r.remaining();
    let mut h = match ethertype {
        ETH_IPV4 => ipv4(r.rest())?,
        ETH_IPV6 => ipv6(r.rest())?,
        _ => {
            return Err(Anomaly::NotIpFlow {
                what: "non-IP frame",
            });
        }
    };
    h.l4_end += offset;
    Ok(h)
}

/// Parses a packet that starts with its IP header (version from the first nibble).
pub(crate) fn ip(packet: &[u8]) -> Result<Headers, Anomaly> {
    match packet.first().map(|b| b >> 4) {
        Some(4) => ipv4(packet),
        Some(6) => ipv6(packet),
        _ => Err(Anomaly::NotIpFlow {
            what: "not an IP header",
        }),
    }
}

fn ipv4(packet: &[u8]) -> Result<Headers, Anomaly> {
    let mut r = Reader::new(packet);
    let vihl = r.u8("ipv4 header")?;
    let ihl = usize::from(vihl & 0x0f) * 4;
    if vihl >> 4 != 4 || ihl < 20 {
        return Err(Anomaly::BadLength {
            what: "ipv4 header",
        });
    }
    let tos = r.u8("ipv4 header")?;
    let total = r.u16("ipv4 header")?;
    r.skip(2, "ipv4 header")?;
    let frag = r.u16("ipv4 header")?;
    r.skip(1, "ipv4 header")?;
    let protocol = r.u8("ipv4 header")?;
    r.skip(2, "ipv4 header")?;
    let src = Ipv4Addr::from(*r.array::<4>().ok_or(Anomaly::Truncated {
        what: "ipv4 header",
    })?);
    let dst = Ipv4Addr::from(*r.array::<4>().ok_or(Anomaly::Truncated {
        what: "ipv4 header",
    })?);
    r.skip(ihl - 20, "ipv4 options")?;
    let mut h = Headers {
        src: IpAddr::V4(src),
        dst: IpAddr::V4(dst),
        protocol,
        tos,
        src_port: 0,
        dst_port: 0,
        tcp_flags: 0,
        icmp_type: 0,
        icmp_code: 0,
        ip_len: u32::from(total),
        udp_len: 0,
        l4_end: ihl,
    };
    if frag & 0x1fff == 0 {
        transport(&mut h, &mut r, packet.len())?;
    }
    Ok(h)
}

fn ipv6(packet: &[u8]) -> Result<Headers, Anomaly> {
    let mut r = Reader::new(packet);
    let vtc = r.u32("ipv6 header")?;
    if vtc >> 28 != 6 {
        return Err(Anomaly::BadLength {
            what: "ipv6 header",
        });
    }
    let payload = r.u16("ipv6 header")?;
    let mut next = r.u8("ipv6 header")?;
    r.skip(1, "ipv6 header")?;
    let src = Ipv6Addr::from(*r.array::<16>().ok_or(Anomaly::Truncated {
        what: "ipv6 header",
    })?);
    let dst = Ipv6Addr::from(*r.array::<16>().ok_or(Anomaly::Truncated {
        what: "ipv6 header",
    })?);
    let mut first_fragment = true;
    for _ in 0..MAX_EXT_HEADERS {
        match next {
            // Hop-by-hop, routing, destination options: length in 8-octet units.
            0 | 43 | 60 => {
                let nh = r.u8("ipv6 extension header")?;
                let len = usize::from(r.u8("ipv6 extension header")?) * 8 + 6;
                r.skip(len, "ipv6 extension header")?;
                next = nh;
            }
            44 => {
                let nh = r.u8("ipv6 fragment header")?;
                r.skip(1, "ipv6 fragment header")?;
                let off = r.u16("ipv6 fragment header")?;
                r.skip(4, "ipv6 fragment header")?;
                first_fragment = off & 0xfff8 == 0;
                next = nh;
            }
            // Authentication header: length in 4-octet units, minus 2.
            51 => {
                let nh = r.u8("ipv6 authentication header")?;
                let len = (usize::from(r.u8("ipv6 authentication header")?) + 2) * 4 - 2;
                r.skip(len, "ipv6 authentication header")?;
                next = nh;
            }
            _ => break,
        }
    }
    let mut h = Headers {
        src: IpAddr::V6(src),
        dst: IpAddr::V6(dst),
        protocol: next,
        tos: ((vtc >> 20) & 0xff) as u8,
        src_port: 0,
        dst_port: 0,
        tcp_flags: 0,
        icmp_type: 0,
        icmp_code: 0,
        ip_len: u32::from(payload) + 40,
        udp_len: 0,
        l4_end: packet.len() - r.remaining(),
    };
    if first_fragment {
        transport(&mut h, &mut r, packet.len())?;
    }
    Ok(h)
}

/// Reads the L4 header fields. A sampled header may be cut inside the L4 header: what
/// is missing stays zero (addresses are still worth a record).
fn transport(h: &mut Headers, r: &mut Reader<'_>, total: usize) -> Result<(), Anomaly> {
    match h.protocol {
        6 | 17 | 132 => {
            let Ok(sp) = r.u16("l4 ports") else {
                return Ok(());
            };
            h.src_port = sp;
            let Ok(dp) = r.u16("l4 ports") else {
                return Ok(());
            };
            h.dst_port = dp;
            if h.protocol == 6 {
                let Some(hdr) = r.take(10) else { return Ok(()) };
                h.tcp_flags = hdr.get(9).copied().unwrap_or(0);
                // The rest of the TCP header (window, checksum, urgent pointer, options).
                let doff = usize::from(hdr.get(8).copied().unwrap_or(0) >> 4) * 4;
                if r.take(doff.saturating_sub(14)).is_none() {
                    return Ok(());
                }
            } else if h.protocol == 17 {
                let Ok(len) = r.u16("udp header") else {
                    return Ok(());
                };
                h.udp_len = len;
                if r.take(2).is_none() {
                    return Ok(());
                }
            }
        }
        1 | 58 => {
            let (Ok(t), Ok(c)) = (r.u8("icmp header"), r.u8("icmp header")) else {
                return Ok(());
            };
            h.icmp_type = t;
            h.icmp_code = c;
            // NetFlow convention, so records from every source compare alike.
            h.dst_port = u16::from_be_bytes([t, c]);
        }
        _ => {}
    }
    h.l4_end = total - r.remaining();
    Ok(())
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn eth_ipv4_tcp(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x81, 0x00, 0, 100, 0x08, 0x00]); // one VLAN tag
        let total = u16::try_from(20 + 20 + payload.len()).expect("small");
        f.extend_from_slice(&[0x45, 0x08]);
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend_from_slice(&[
            0x30, 0x39, 0x01, 0xbb, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x18, 0, 0, 0, 0, 0, 0,
        ]);
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn reads_headers_and_stops_at_the_l4_end() {
        let f = eth_ipv4_tcp(b"GET / HTTP/1.1");
        let h = ethernet(&f).expect("valid frame");
        assert_eq!(h.src, IpAddr::from([10, 0, 0, 1]));
        assert_eq!(
            (h.src_port, h.dst_port, h.protocol, h.tcp_flags, h.tos),
            (12345, 443, 6, 0x18, 8)
        );
        assert_eq!(h.ip_len, 54);
        assert_eq!(h.l4_end, 18 + 40);
    }

    #[test]
    fn truncated_l4_keeps_the_addresses() {
        let f = eth_ipv4_tcp(b"");
        let h = ethernet(&f[..18 + 22]).expect("addresses are there");
        assert_eq!((h.src_port, h.dst_port), (12345, 0));
    }

    #[test]
    fn non_ip_frames_are_deliberate_drops() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x06, 0, 1]); // ARP
        assert_eq!(
            ethernet(&f),
            Err(Anomaly::NotIpFlow {
                what: "non-IP frame"
            })
        );
    }
}
