//! Helpers shared by the behaviour tests: where the third-party data lives, and a tiny
//! classic-pcap reader that yields the UDP datagrams of export captures.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::type_complexity
)]

use std::net::IpAddr;
use std::path::PathBuf;

/// The shared test-data file `rel`, or `None` (after saying so) when it is not there.
/// With `MAMORI_REQUIRE_TEST_DATA=1` a missing file fails the test instead.
pub fn test_data(rel: &str) -> Option<PathBuf> {
    let root = std::env::var_os("MAMORI_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    let path = root.join(rel);
    if path.exists() {
        return Some(path);
    }
    if std::env::var("MAMORI_REQUIRE_TEST_DATA").as_deref() == Ok("1") {
        panic!(
            "test data {} not found (MAMORI_REQUIRE_TEST_DATA=1; set MAMORI_TEST_DATA)",
            path.display()
        );
    }
    println!(
        "skipping: {} not found (set MAMORI_TEST_DATA)",
        path.display()
    );
    None
}

/// One UDP datagram out of a capture.
#[derive(Debug, Clone)]
pub struct Udp {
    pub src: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub ts_ms: i64,
    pub payload: Vec<u8>,
}

fn u16be(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// The UDP datagrams of a classic (little-endian, µs) pcap with Ethernet or Linux SLL
/// framing; IPv4 fragments are reassembled (exports bigger than the MTU are fragmented).
pub fn udp_datagrams(path: &std::path::Path) -> Vec<Udp> {
    let data = std::fs::read(path).expect("read pcap");
    assert_eq!(
        &data[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "classic LE µs pcap expected"
    );
    let linktype = u32::from_le_bytes(data[20..24].try_into().unwrap());
    let mut out = Vec::new();
    let mut frags: std::collections::HashMap<(IpAddr, u16), Vec<(usize, Vec<u8>, bool)>> =
        Default::default();
    let mut at = 24;
    while at + 16 <= data.len() {
        let sec = u32::from_le_bytes(data[at..at + 4].try_into().unwrap());
        let usec = u32::from_le_bytes(data[at + 4..at + 8].try_into().unwrap());
        let caplen = u32::from_le_bytes(data[at + 8..at + 12].try_into().unwrap()) as usize;
        let frame = &data[at + 16..at + 16 + caplen];
        at += 16 + caplen;
        let ts_ms = i64::from(sec) * 1000 + i64::from(usec / 1000);
        let (mut ethertype, mut l3) = match linktype {
            1 => (u16be(frame, 12), 14),
            113 => (u16be(frame, 14), 16),
            other => panic!("linktype {other} not handled"),
        };
        while ethertype == 0x8100 || ethertype == 0x88a8 {
            ethertype = u16be(frame, l3 + 2);
            l3 += 4;
        }
        let ip = &frame[l3..];
        let (src, udp): (IpAddr, Vec<u8>) = match ethertype {
            0x0800 => {
                let ihl = usize::from(ip[0] & 0x0f) * 4;
                let total = usize::from(u16be(ip, 2));
                if ip[9] != 17 {
                    continue;
                }
                let src = IpAddr::from(<[u8; 4]>::try_from(&ip[12..16]).unwrap());
                let flags_off = u16be(ip, 6);
                let more = flags_off & 0x2000 != 0;
                let offset = usize::from(flags_off & 0x1fff) * 8;
                let body = ip[ihl..total.min(ip.len())].to_vec();
                if more || offset > 0 {
                    let key = (src, u16be(ip, 4));
                    let parts = frags.entry(key).or_default();
                    parts.push((offset, body, more));
                    let Some(last) = parts.iter().find(|p| !p.2) else {
                        continue;
                    };
                    let len = last.0 + last.1.len();
                    let have: usize = parts.iter().map(|p| p.1.len()).sum();
                    if have < len {
                        continue;
                    }
                    let mut whole = vec![0u8; len];
                    for (o, b, _) in parts.iter() {
                        whole[*o..*o + b.len()].copy_from_slice(b);
                    }
                    frags.remove(&key);
                    (src, whole)
                } else {
                    (src, body)
                }
            }
            0x86dd => {
                if ip[6] != 17 {
                    continue;
                }
                let src = IpAddr::from(<[u8; 16]>::try_from(&ip[8..24]).unwrap());
                let plen = usize::from(u16be(ip, 4));
                (src, ip[40..(40 + plen).min(ip.len())].to_vec())
            }
            _ => continue,
        };
        let ulen = usize::from(u16be(&udp, 4));
        out.push(Udp {
            src,
            src_port: u16be(&udp, 0),
            dst_port: u16be(&udp, 2),
            ts_ms,
            payload: udp[8..ulen.min(udp.len())].to_vec(),
        });
    }
    out
}
