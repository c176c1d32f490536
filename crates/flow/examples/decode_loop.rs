//! Decodes the datagrams of an export capture N times into one reused batch; run it under
//! `valgrind --tool=dhat` (allocations) or `--tool=callgrind` (instructions) with two
//! values of N and take the difference per pass (docs/benchmarks/flow-decode.md).
//! Usage: `decode_loop CAPTURE.pcap N [peer]` — `peer` runs `netflow_parser` instead.
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use mamori_flow::{Datagram, DatagramDecoder, ExportDecoder, FlowBatch};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = std::path::Path::new(&args[1]);
    let passes: usize = args[2].parse().unwrap();
    let datagrams = common::udp_datagrams(path);
    if args.get(3).map(String::as_str) == Some("peer") {
        let mut peer = netflow_parser::NetflowParser::default();
        let mut packets = 0;
        for _ in 0..=passes {
            for d in &datagrams {
                let parsed = peer.parse_bytes(&d.payload);
                packets += std::hint::black_box(&parsed).packets.len();
            }
        }
        println!(
            "{packets} packets parsed by netflow_parser in {} passes",
            passes + 1
        );
        return;
    }
    let mut decoder = ExportDecoder::default();
    let mut batch = FlowBatch::with_capacity(4096);
    // First pass caches the templates.
    for d in &datagrams {
        decoder.decode(Datagram::new(d.src, 0, &d.payload), &mut batch);
    }
    let mut records = 0;
    for _ in 0..passes {
        batch.clear();
        for d in &datagrams {
            decoder.decode(Datagram::new(d.src, 0, &d.payload), &mut batch);
        }
        records += batch.len();
    }
    println!("{records} records decoded in {passes} passes");
}
