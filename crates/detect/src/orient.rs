//! Who is the client and who the server in a flow record.

use std::net::IpAddr;

use mamori_flow::{FlowRecord, FlowSource};

/// A record seen from the client's side.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Oriented {
    pub(crate) client: IpAddr,
    pub(crate) client_port: u16,
    pub(crate) server: IpAddr,
    pub(crate) server_port: u16,
    /// Client → server bytes (sampling renormalised).
    pub(crate) up_bytes: u64,
    /// Server → client bytes (sampling renormalised).
    pub(crate) down_bytes: u64,
    /// Whether the record runs client → server (false: a reply record of a
    /// unidirectional export).
    pub(crate) forward: bool,
}

/// Whether the input carries both directions in one record (originator first).
pub(crate) fn is_bidirectional(r: &FlowRecord) -> bool {
    matches!(r.source, FlowSource::Zeek | FlowSource::Argus) || r.rev_packets > 0
}

/// Orients a record. Bidirectional inputs (Zeek, Argus, biflows) already put the
/// originator first. For unidirectional exports the lower port is taken as the
/// service port (ephemeral client ports are high), so the reply record of a
/// connection maps to the same pair with `forward == false`.
pub(crate) fn orient(r: &FlowRecord) -> Oriented {
    let f = r.sampling_factor();
    let (fwd, rev) = (r.bytes.saturating_mul(f), r.rev_bytes.saturating_mul(f));
    let reverse =
        !is_bidirectional(r) && !r.is_icmp() && r.src_port != 0 && r.src_port < r.dst_port;
    if reverse {
        Oriented {
            client: r.dst_addr,
            client_port: r.dst_port,
            server: r.src_addr,
            server_port: r.src_port,
            up_bytes: rev,
            down_bytes: fwd,
            forward: false,
        }
    } else {
        Oriented {
            client: r.src_addr,
            client_port: r.src_port,
            server: r.dst_addr,
            server_port: if r.is_icmp() { 0 } else { r.dst_port },
            up_bytes: fwd,
            down_bytes: rev,
            forward: true,
        }
    }
}

/// Well-known service ports benign clients reach every day. A repeated contact on a
/// port outside this list is a C2 trait (MITRE ATT&CK T1571, Non-Standard Port).
/// Push channels (XMPP 5222, APNs 5223, FCM 5228, MQTT 1883/8883) are listed: they are
/// persistent, periodic and answered by design, exactly like C2, and only the port tells
/// them apart from flow metadata. (1883/8883 were added after ESET's MQTT push channel
/// showed up as three false C2 servers in sdt-008.)
const SERVICE_PORTS: [u16; 36] = [
    0, 20, 21, 22, 25, 53, 67, 68, 80, 110, 123, 137, 138, 143, 161, 389, 443, 465, 500, 587, 853,
    993, 995, 1900, 3478, 4500, 5222, 5223, 5228, 5353, 8080, 8443, 5349, 19302, 1883, 8883,
];

/// Whether `port` is outside the well-known service ports.
pub(crate) fn is_nonstandard_port(port: u16) -> bool {
    !SERVICE_PORTS.contains(&port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unidirectional_reply_maps_to_the_same_pair() {
        let c: IpAddr = [10, 0, 0, 1].into();
        let s: IpAddr = [192, 0, 2, 1].into();
        let req = FlowRecord {
            src_addr: c,
            dst_addr: s,
            src_port: 50_000,
            dst_port: 443,
            protocol: 6,
            bytes: 100,
            source: FlowSource::NetflowV9,
            ..FlowRecord::default()
        };
        let rep = FlowRecord {
            src_addr: s,
            dst_addr: c,
            src_port: 443,
            dst_port: 50_000,
            bytes: 900,
            ..req
        };
        let (a, b) = (orient(&req), orient(&rep));
        assert!(a.forward && !b.forward);
        assert_eq!(
            (a.client, a.server, a.server_port),
            (b.client, b.server, b.server_port)
        );
        assert_eq!((a.up_bytes, b.down_bytes, b.up_bytes), (100, 900, 0));
    }

    #[test]
    fn service_ports_are_standard_and_1337_is_not() {
        assert!(!is_nonstandard_port(443));
        assert!(is_nonstandard_port(1337));
    }
}
