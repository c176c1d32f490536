//! A 60 s beacon with jitter among background traffic, thinned by 1:1,000 packet
//! sampling over 24 h (as a carrier router exports it), is still found; the same
//! traffic without periodicity is not.
//!
//! Model: each beacon connection is an HTTPS check-in of 20 client → server packets
//! over 2 s, scheduled every 60 s with ±6 s uniform jitter around the schedule. Every
//! packet is sampled with probability 1/1000; a connection yields a unidirectional
//! NetFlow record only if at least one of its packets was sampled (start = first
//! sampled packet), so ~2 % of the 1,440 check-ins survive. Background: 300 clients
//! (the beacon's client among them) opening Poisson-timed connections of 4–400 packets
//! to 2,000 servers, and their reply records.

use std::net::IpAddr;

use mamori_detect::{DetectConfig, Finding, FindingKind, run_all};
use mamori_flow::{FlowRecord, FlowSource};

const DAY_MS: i64 = 86_400_000;
const T0: i64 = 1_700_000_000_000;
const RATE: u32 = 1000;
const C2: [u8; 4] = [203, 0, 113, 50];
const BOT: [u8; 4] = [10, 1, 0, 5];

/// splitmix64: a fixed, seedable generator (tests must be deterministic).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One connection's packets in one direction, sampled 1:RATE → at most one record.
#[allow(clippy::too_many_arguments)]
fn sampled(
    rng: &mut Rng,
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    start_ms: i64,
    dur_ms: i64,
    packets: u32,
    bytes_per_packet: u64,
    out: &mut Vec<FlowRecord>,
) {
    let mut times = Vec::new();
    for i in 0..packets {
        if rng.below(u64::from(RATE)) == 0 {
            times.push(start_ms + dur_ms * i64::from(i) / i64::from(packets.max(1)));
        }
    }
    let (Some(first), Some(last)) = (times.first(), times.last()) else {
        return;
    };
    out.push(FlowRecord {
        src_addr: src,
        dst_addr: dst,
        src_port: sport,
        dst_port: dport,
        protocol: 6,
        start_ms: *first,
        end_ms: *last,
        packets: times.len() as u64,
        bytes: times.len() as u64 * bytes_per_packet,
        tcp_flags: 0x18,
        sampling_rate: RATE,
        source: FlowSource::NetflowV9,
        ..FlowRecord::default()
    });
}

fn traffic(seed: u64, periodic: bool) -> Vec<FlowRecord> {
    let mut rng = Rng(seed);
    let mut out = Vec::new();
    let (bot, c2) = (IpAddr::from(BOT), IpAddr::from(C2));
    let mut sport = 30_000u16;
    for k in 0..1440i64 {
        let at = if periodic {
            T0 + k * 60_000 + (rng.unit() * 12_000.0 - 6_000.0) as i64
        } else {
            T0 + (rng.unit() * DAY_MS as f64) as i64
        };
        sport = sport.wrapping_add(1).max(30_000);
        sampled(&mut rng, bot, c2, sport, 443, at, 2_000, 20, 180, &mut out);
        sampled(
            &mut rng,
            c2,
            bot,
            443,
            sport,
            at + 50,
            1_900,
            16,
            900,
            &mut out,
        );
    }
    // Background: Poisson connections, 60,000 over the day.
    for _ in 0..60_000 {
        let client = if rng.below(300) == 0 {
            bot
        } else {
            IpAddr::from([10, 1, (rng.below(2)) as u8, rng.below(150) as u8])
        };
        let server = IpAddr::from([198, 18, (rng.below(8)) as u8, rng.below(250) as u8]);
        let port = [443u16, 80, 443, 8080, 22, 993][rng.below(6) as usize];
        let at = T0 + (rng.unit() * DAY_MS as f64) as i64;
        let packets = 4 + rng.below(400) as u32;
        let dur = 100 + rng.below(60_000) as i64;
        let sp = 1024 + rng.below(60_000) as u16;
        let (up, down) = (120 + rng.below(1300), 120 + rng.below(1300));
        sampled(
            &mut rng, client, server, sp, port, at, dur, packets, up, &mut out,
        );
        sampled(
            &mut rng,
            server,
            client,
            port,
            sp,
            at + 20,
            dur,
            packets,
            down,
            &mut out,
        );
    }
    out.sort_by_key(|r| r.start_ms);
    out
}

fn c2_finding(findings: &[Finding]) -> Option<&Finding> {
    findings.iter().find(|f| {
        matches!(f.kind, FindingKind::Beacon | FindingKind::C2) && f.address == IpAddr::from(C2)
    })
}

/// Detection under sampling is probabilistic: over ten seeds the beacon keeps 17–31
/// of its 1,440 check-ins. With fewer than ~20 survivors whose smallest gap exceeds 24
/// periods, the period cannot be recovered; so the acceptance is a rate: found in at
/// least 8 of 10 days, while the random-timing control is reported on none.
#[test]
fn sampled_periodic_beacon_is_found_and_random_timing_is_not() {
    let mut found = Vec::new();
    for seed in 1..=10u64 {
        let records = traffic(seed, true);
        let bot_records = records
            .iter()
            .filter(|r| r.dst_addr == IpAddr::from(C2))
            .count();
        assert!(
            (10..=60).contains(&bot_records),
            "seed {seed}: {bot_records} sampled check-ins (expected ~29 of 1,440)"
        );
        let findings = run_all(records, &DetectConfig::default());
        if let Some(f) = c2_finding(&findings) {
            assert!(f.score >= 0.5, "seed {seed}: {f:?}");
            // When found, it is the strongest periodic finding of the day.
            let top = findings
                .iter()
                .find(|f| matches!(f.kind, FindingKind::Beacon | FindingKind::C2));
            assert_eq!(
                top.map(|t| t.address),
                Some(IpAddr::from(C2)),
                "seed {seed}"
            );
            found.push(seed);
        }
        let control = run_all(traffic(seed, false), &DetectConfig::default());
        assert!(
            c2_finding(&control).is_none(),
            "seed {seed}: random timing reported: {:?}",
            c2_finding(&control)
        );
    }
    eprintln!("sampled beacon found on days {found:?} of 1..=10");
    assert!(found.len() >= 8, "found on days {found:?} only");
}
