//! Decodes the data datagrams of an export capture N times into one reused batch; run it
//! under `valgrind --tool=dhat` with two values of N to count allocations per pass
//! (BENCH_NOTES.md). Usage: `decode_loop CAPTURE.pcap N`.
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use mamori_flow::{Datagram, DatagramDecoder, ExportDecoder, FlowBatch};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = std::path::Path::new(&args[1]);
    let passes: usize = args[2].parse().unwrap();
    let datagrams = common::udp_datagrams(path);
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
