//! Reads a Zeek `conn.log` or Argus `binetflow` file from memory N times into one reused
//! batch; run it under `valgrind --tool=callgrind` (instructions) or `--tool=dhat`
//! (allocations) with two values of N and take the difference per pass, or under
//! `perf stat -e task-clock` (docs/benchmarks/flow-decode.md).
//! Usage: `text_loop zeek|argus FILE N`.
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use mamori_flow::{ArgusReader, FlowBatch, ZeekConnReader};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let kind = args[1].as_str();
    let bytes = std::fs::read(&args[2]).unwrap();
    let passes: usize = args[3].parse().unwrap();
    let mut batch = FlowBatch::with_capacity(16 * 1024);
    let (mut records, mut lines) = (0, 0);
    for _ in 0..passes {
        batch.clear();
        let input = std::hint::black_box(&bytes[..]);
        lines += match kind {
            "zeek" => {
                let mut r = ZeekConnReader::new(input).unwrap();
                while r.read_batch(&mut batch, 4096).unwrap() > 0 {}
                r.lines()
            }
            "argus" => {
                let mut r = ArgusReader::new(input).unwrap();
                while r.read_batch(&mut batch, 4096).unwrap() > 0 {}
                r.lines()
            }
            other => panic!("unknown kind {other}: zeek or argus"),
        };
        records += batch.len();
    }
    println!("{lines} lines, {records} records in {passes} passes");
}
