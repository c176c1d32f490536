//! Scanning: sources that probe many destinations (horizontal) or many ports of one
//! destination (vertical), or — seen from a telescope — send unsolicited probes at all.
//!
//! # Probes and answers
//! A *probe* is a connection attempt that got nothing back: a TCP flow with no reverse
//! packets or only a refusal (bidirectional inputs), or with SYN and no ACK in its flags
//! (unidirectional exports); an unanswered UDP flow; an ICMP echo request. An *answer*
//! is a TCP attempt that carried data both ways. Everything else is neutral.
//!
//! # Score: threshold random walk
//! Each probe multiplies the scanner-vs-benign likelihood ratio by (1 − θ₁)/(1 − θ₀) and
//! each answer by θ₁/θ₀, with θ₀ = 0.8 (a benign source's attempts mostly succeed) and
//! θ₁ = 0.2 (a scanner's mostly fail), as in Jung et al., "Fast Portscan Detection Using
//! Sequential Hypothesis Testing" (IEEE S&P 2004). The score is the posterior
//! probability `sigmoid(prior log-odds + log LR)`; the profile sets the prior and the
//! structural rule:
//! - [`ScanProfile::Telescope`] (CAIDA network-telescope rule): traffic that reaches an
//!   address which answers nothing is unsolicited, so the prior odds are even and one
//!   probe (SYN without completion, unanswered UDP, ICMP echo request) makes a scanner
//!   (posterior 0.8). Backscatter (replies to spoofed floods) is not a probe. Use it
//!   where monitored addresses are dark or honeypot-like.
//! - [`ScanProfile::Slips`] (Stratosphere Slips thresholds): a source needs not-
//!   established flows to ≥ 5 ports of one destination (vertical) or to ≥ 5
//!   destinations on one port (horizontal); the prior is α/β = 1/99 (Jung et al.'s
//!   η₁ = 99), so about five net probes are needed. The default for a carrier sensor.
//!
//! # Bounded state
//! Per source: counters, three distinct-count sketches (`cardinality-estimator`: exact
//! when small, HyperLogLog++ when large) and two heavy slots each for the busiest
//! destination (ports) and port (destinations). Sources beyond `max_sources` are counted,
//! not tracked.

use std::net::IpAddr;

use std::collections::hash_map::Entry;

use cardinality_estimator::CardinalityEstimator;
use rustc_hash::FxHashMap;

use crate::orient::is_bidirectional;
use mamori_core::finding::{Clients, Evidence, Finding, FindingKind, ScanEvidence};
use mamori_flow::FlowRecord;

/// Which thresholds and prior apply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ScanProfile {
    /// CAIDA network-telescope rule: any unsolicited probe to a dark address.
    Telescope,
    /// Stratosphere Slips: ≥ 5 ports on one host or ≥ 5 hosts on one port, not established.
    #[default]
    Slips,
}

impl ScanProfile {
    /// The profile's name in evidence and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            ScanProfile::Telescope => "telescope",
            ScanProfile::Slips => "slips",
        }
    }

    /// Parses `telescope`/`caida` or `slips`.
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "telescope" | "caida" => Some(ScanProfile::Telescope),
            "slips" => Some(ScanProfile::Slips),
            _ => None,
        }
    }
}

/// Scan detector settings.
#[derive(Clone, Debug)]
pub struct ScanConfig {
    /// Thresholds and prior.
    pub profile: ScanProfile,
    /// θ₀: probability an attempt of a benign source is answered.
    pub theta_benign: f64,
    /// θ₁: probability an attempt of a scanner is answered.
    pub theta_scanner: f64,
    /// Report at this posterior probability.
    pub report_threshold: f64,
    /// Slips: distinct ports on one destination for a vertical scan.
    pub vertical_ports: u64,
    /// Slips: distinct destinations on one port for a horizontal scan.
    pub horizontal_destinations: u64,
    /// Most sources tracked at once.
    pub max_sources: usize,
}

impl Default for ScanConfig {
    fn default() -> Self {
        Self {
            profile: ScanProfile::default(),
            theta_benign: 0.8,
            theta_scanner: 0.2,
            report_threshold: 0.5,
            vertical_ports: 5,
            horizontal_destinations: 5,
            max_sources: 1 << 20,
        }
    }
}

type Sketch<T> = CardinalityEstimator<T>;

#[derive(Debug)]
struct SourceState {
    first_ms: i64,
    last_ms: i64,
    attempts: u64,
    probes: u64,
    answers: u64,
    destinations: Sketch<IpAddr>,
    ports: Sketch<u16>,
    /// The two busiest probed destinations, each with its distinct ports.
    by_destination: [Option<(IpAddr, Sketch<u16>)>; 2],
    /// The two busiest probed ports, each with its distinct destinations.
    by_port: [Option<(u16, Sketch<IpAddr>)>; 2],
    sample_ports: [u16; 8],
    nports: u8,
}

impl SourceState {
    fn new(ms: i64) -> Self {
        Self {
            first_ms: ms,
            last_ms: ms,
            attempts: 0,
            probes: 0,
            answers: 0,
            destinations: Sketch::new(),
            ports: Sketch::new(),
            by_destination: [None, None],
            by_port: [None, None],
            sample_ports: [0; 8],
            nports: 0,
        }
    }

    fn probe(&mut self, dst: IpAddr, port: u16) {
        self.probes += 1;
        self.destinations.insert(&dst);
        self.ports.insert(&port);
        if !self.sample_ports[..usize::from(self.nports)].contains(&port)
            && usize::from(self.nports) < self.sample_ports.len()
        {
            self.sample_ports[usize::from(self.nports)] = port;
            self.nports += 1;
        }
        heavy_insert(&mut self.by_destination, dst, &port);
        heavy_insert(&mut self.by_port, port, &dst);
    }
}

/// Adds `item` under `key` in two heavy slots; a new key replaces the slot with fewer
/// distinct items (so a long scan of one host or port keeps its slot).
fn heavy_insert<K: PartialEq + Copy, T: std::hash::Hash>(
    slots: &mut [Option<(K, Sketch<T>)>; 2],
    key: K,
    item: &T,
) {
    if let Some((_, s)) = slots.iter_mut().flatten().find(|(k, _)| *k == key) {
        s.insert(item);
        return;
    }
    let victim = match slots {
        [None, _] => 0,
        [_, None] => 1,
        [Some((_, a)), Some((_, b))] => usize::from(b.estimate() < a.estimate()),
    };
    let mut s = Sketch::new();
    s.insert(item);
    if let Some(slot) = slots.get_mut(victim) {
        *slot = Some((key, s));
    }
}

/// What one record says about its originator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Probe,
    Answered,
    Neutral,
}

fn outcome(r: &FlowRecord) -> Outcome {
    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    if r.is_icmp() {
        // Echo request (4 → ICMP, 128 → ICMPv6): host discovery.
        let echo =
            (r.protocol == 1 && r.icmp_type == 8) || (r.protocol == 58 && r.icmp_type == 128);
        return if echo {
            Outcome::Probe
        } else {
            Outcome::Neutral
        };
    }
    let bidi = is_bidirectional(r);
    match r.protocol {
        6 if bidi => {
            if r.rev_packets == 0 {
                if r.packets == 0 {
                    Outcome::Neutral
                } else {
                    Outcome::Probe
                }
            } else if r.rev_packets <= 2
                && r.rev_bytes <= 60u64.saturating_mul(r.rev_packets.max(1))
                && r.bytes <= 60u64.saturating_mul(r.packets.max(1))
            {
                // Only headers back (a RST or a bare SYN-ACK) and no data sent: refused.
                Outcome::Probe
            } else {
                Outcome::Answered
            }
        }
        6 => {
            if r.tcp_flags & SYN != 0 && r.tcp_flags & ACK == 0 {
                Outcome::Probe
            } else if r.tcp_flags & ACK != 0 && r.packets > 2 {
                Outcome::Answered
            } else {
                Outcome::Neutral
            }
        }
        17 if bidi => {
            if r.rev_packets == 0 {
                Outcome::Probe
            } else {
                Outcome::Answered
            }
        }
        _ => Outcome::Neutral,
    }
}

/// Streams records into per-source state; reports scanners on [`ScanDetector::findings`].
#[derive(Debug, Default)]
pub struct ScanDetector {
    cfg: ScanConfig,
    sources: FxHashMap<IpAddr, SourceState>,
    /// Sources not tracked because `max_sources` was reached.
    pub untracked_sources: u64,
}

impl ScanDetector {
    /// A detector with `cfg`.
    pub fn new(cfg: ScanConfig) -> Self {
        Self {
            cfg,
            ..Self::default()
        }
    }

    /// Adds one record.
    pub fn observe(&mut self, r: &FlowRecord) {
        let o = outcome(r);
        if o == Outcome::Neutral {
            return;
        }
        let len = self.sources.len();
        let st = match self.sources.entry(r.src_addr) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(v) if len < self.cfg.max_sources => {
                v.insert(SourceState::new(r.start_ms))
            }
            Entry::Vacant(_) => {
                self.untracked_sources += 1;
                return;
            }
        };
        st.first_ms = st.first_ms.min(r.start_ms);
        st.last_ms = st.last_ms.max(r.start_ms);
        st.attempts += 1;
        match o {
            Outcome::Probe => st.probe(r.dst_addr, if r.is_icmp() { 0 } else { r.dst_port }),
            Outcome::Answered => st.answers += 1,
            Outcome::Neutral => {}
        }
    }

    /// The scanners, deterministic order (by address).
    pub fn findings(&self) -> Vec<Finding> {
        let cfg = &self.cfg;
        let (t0, t1) = (cfg.theta_benign, cfg.theta_scanner);
        let (lr_probe, lr_answer) = (((1.0 - t1) / (1.0 - t0)).ln(), (t1 / t0).ln());
        let prior = match cfg.profile {
            ScanProfile::Telescope => 0.0,
            ScanProfile::Slips => -(99f64.ln()),
        };
        let mut out = Vec::new();
        let mut sources: Vec<(&IpAddr, &SourceState)> = self.sources.iter().collect();
        sources.sort_unstable_by_key(|(a, _)| **a);
        for (addr, s) in sources {
            if s.probes == 0 {
                continue;
            }
            let log_lr = s.probes as f64 * lr_probe + s.answers as f64 * lr_answer;
            let posterior = 1.0 / (1.0 + (-(prior + log_lr)).exp());
            let vertical = s
                .by_destination
                .iter()
                .flatten()
                .map(|(_, p)| p.estimate() as u64)
                .max()
                .unwrap_or(0);
            let horizontal = s
                .by_port
                .iter()
                .flatten()
                .map(|(_, d)| d.estimate() as u64)
                .max()
                .unwrap_or(0);
            let is_vertical = vertical >= cfg.vertical_ports;
            let is_horizontal = horizontal >= cfg.horizontal_destinations;
            let structural = match cfg.profile {
                ScanProfile::Telescope => true,
                ScanProfile::Slips => is_vertical || is_horizontal,
            };
            if !structural || posterior < cfg.report_threshold {
                continue;
            }
            let scan_type = match (is_horizontal, is_vertical) {
                (true, true) => "both",
                (true, false) => "horizontal",
                (false, true) => "vertical",
                (false, false) => "probe",
            };
            // The single port when the scan is of one port, else 0.
            let ports = s.ports.estimate() as u64;
            let port = if ports == 1 { s.sample_ports[0] } else { 0 };
            let victims: Vec<IpAddr> = s.by_destination.iter().flatten().map(|(d, _)| *d).collect();
            out.push(Finding {
                kind: FindingKind::Scan,
                address: *addr,
                port,
                proto: 0,
                score: (posterior * 1000.0).round() / 1000.0,
                first_seen: s.first_ms,
                last_seen: s.last_ms,
                clients: Clients::new(s.destinations.estimate() as u64, victims),
                evidence: Evidence::Scan(ScanEvidence {
                    scan_type: scan_type.to_string(),
                    profile: cfg.profile.as_str().to_string(),
                    attempts: s.attempts,
                    unanswered: s.probes,
                    distinct_destinations: s.destinations.estimate() as u64,
                    distinct_ports: ports,
                    max_ports_one_destination: vertical,
                    max_destinations_one_port: horizontal,
                    trw_log_lr: log_lr,
                    sample_ports: s.sample_ports[..usize::from(s.nports)].to_vec(),
                }),
                feed: None,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mamori_flow::FlowSource;

    fn syn(src: [u8; 4], dst: [u8; 4], port: u16) -> FlowRecord {
        FlowRecord {
            src_addr: src.into(),
            dst_addr: dst.into(),
            src_port: 40_000,
            dst_port: port,
            protocol: 6,
            packets: 1,
            bytes: 60,
            tcp_flags: 0x02,
            start_ms: 1_000,
            source: FlowSource::NetflowV9,
            ..FlowRecord::default()
        }
    }

    #[test]
    fn slips_profile_needs_five_ports_on_one_host() {
        let mut d = ScanDetector::new(ScanConfig::default());
        for p in 1..=4 {
            d.observe(&syn([198, 51, 100, 7], [192, 0, 2, 1], p));
        }
        assert!(d.findings().is_empty(), "4 ports is below Slips' threshold");
        d.observe(&syn([198, 51, 100, 7], [192, 0, 2, 1], 5));
        let f = d.findings();
        assert_eq!(f.len(), 1);
        assert!(matches!(&f[0].evidence, Evidence::Scan(e) if e.scan_type == "vertical"));
    }

    #[test]
    fn telescope_profile_reports_a_single_probe_but_not_an_answered_client() {
        let cfg = ScanConfig {
            profile: ScanProfile::Telescope,
            ..ScanConfig::default()
        };
        let mut d = ScanDetector::new(cfg);
        d.observe(&syn([198, 51, 100, 7], [192, 0, 2, 1], 23));
        let mut ok = syn([203, 0, 113, 5], [192, 0, 2, 1], 443);
        ok.tcp_flags = 0x1a;
        ok.packets = 10;
        for _ in 0..3 {
            d.observe(&ok);
        }
        let mut one_failure = ok;
        one_failure.tcp_flags = 0x02;
        d.observe(&one_failure);
        let f = d.findings();
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].address, IpAddr::from([198, 51, 100, 7]));
    }
}
