//! No input panics a detector: records with extreme and inconsistent values (times at
//! the ends of i64, end before start, zero and maximal counters and sampling rates,
//! every protocol, IPv6) through every detector, with indicators loaded.
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::sync::Arc;

use mamori_detect::{DetectConfig, IndicatorSetBuilder, ScanProfile, run_all};
use mamori_flow::{Direction, FlowRecord, FlowSource};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

#[test]
fn extreme_records_never_panic_any_detector() {
    let mut rng = Rng(5);
    let times = [
        i64::MIN,
        -1,
        0,
        1,
        1_700_000_000_000,
        i64::MAX - 1,
        i64::MAX,
    ];
    let counts = [0u64, 1, 2, 1 << 40, u64::MAX];
    let rates = [0u32, 1, 1000, u32::MAX];
    let addrs: [IpAddr; 5] = [
        [10, 0, 0, 1].into(),
        [10, 0, 0, 2].into(),
        [192, 0, 2, 1].into(),
        "2001:db8::1".parse().unwrap(),
        [0, 0, 0, 0].into(),
    ];
    let mut records = Vec::new();
    for i in 0..20_000 {
        let start = if i % 3 == 0 {
            rng.pick(&times)
        } else {
            1_700_000_000_000 + (rng.next() % 86_400_000) as i64
        };
        records.push(FlowRecord {
            src_addr: rng.pick(&addrs),
            dst_addr: rng.pick(&addrs),
            exporter: rng.pick(&addrs),
            start_ms: start,
            end_ms: if i % 5 == 0 {
                rng.pick(&times)
            } else {
                start.saturating_add(500)
            },
            packets: rng.pick(&counts),
            bytes: rng.pick(&counts),
            rev_packets: rng.pick(&counts),
            rev_bytes: rng.pick(&counts),
            sampling_rate: rng.pick(&rates),
            src_port: rng.next() as u16,
            dst_port: rng.pick(&[0u16, 1, 22, 443, 1337, u16::MAX]),
            protocol: rng.pick(&[0u8, 1, 6, 17, 58, 255]),
            tcp_flags: rng.next() as u8,
            icmp_type: rng.pick(&[0u8, 8, 128, 255]),
            direction: Direction::Unknown,
            source: rng.pick(&[FlowSource::Zeek, FlowSource::NetflowV9, FlowSource::Argus]),
            ..FlowRecord::default()
        });
    }
    let mut b = IndicatorSetBuilder::new();
    b.add_entry("10.0.0.0/8", "t").unwrap();
    b.add_entry("2001:db8::1", "t").unwrap();
    let set = Arc::new(b.build());
    for profile in [ScanProfile::Slips, ScanProfile::Telescope] {
        let mut cfg = DetectConfig::default();
        cfg.scan.profile = profile;
        cfg.beacon.phase_test_unsampled = true;
        cfg.indicators = Arc::clone(&set);
        let findings = run_all(records.iter().copied(), &cfg);
        for f in &findings {
            assert!((0.0..=1.0).contains(&f.score), "{f:?}");
            assert!(!f.to_json_line().is_empty());
        }
        assert!(
            findings.iter().any(|f| f.feed.is_some()),
            "indicator hits reported"
        );
    }
}

#[test]
fn garbage_feeds_and_label_files_are_errors_or_ignored_never_panics() {
    let mut rng = Rng(9);
    let (mut ok, mut refused) = (0, 0);
    let pieces: [&[u8]; 12] = [
        b"1.2.3.4",
        b"/",
        b"33",
        b" ; SBL1\n",
        b"\"2024\",\"",
        b",",
        b"#fields\tid.orig_h\tid.resp_h\tid.resp_p\tlabel\n",
        b"\t",
        b"::/0",
        b"\xff\xfe",
        b"\n",
        b"Malicious C&C",
    ];
    for _ in 0..500 {
        let mut input = Vec::new();
        for _ in 0..(rng.next() % 40) {
            input.extend_from_slice(rng.pick(&pieces));
        }
        if rng.next().is_multiple_of(10) {
            input.extend(std::iter::repeat_n(b'a', 5000));
        }
        let mut b = IndicatorSetBuilder::new();
        match b.add_drop_list(input.as_slice(), "x") {
            Ok(_) => ok += 1,
            Err(_) => refused += 1,
        }
        let _ = b.add_feodo_csv(input.as_slice(), "y");
        let set = b.build();
        let _ = set.lookup("1.2.3.4".parse().unwrap());
        let _ = mamori_detect::eval::Labels::from_zeek_labeled(input.as_slice());
        let _ = mamori_detect::eval::Labels::from_binetflow(input.as_slice());
        let _ = mamori_detect::eval::Labels::from_ground_truth(input.as_slice(), "");
    }
    // Both outcomes were exercised (the inputs are neither all valid nor all invalid).
    assert!(ok > 0 && refused > 0, "ok {ok}, refused {refused}");
}
