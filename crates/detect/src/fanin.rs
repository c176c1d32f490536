//! Fan-in / botnet: a server that many distinct clients contact *alike* — with the same
//! connection interval and the same request size — is what the bots of one botnet look
//! like from the network; the clients are then grouped by the other servers they share.
//!
//! Works on the beacon detector's pair sketches (no state of its own). For each
//! server:port:proto with at least `min_clients` clients of ≥ 4 connections, it takes
//! each client's median interval and median size, and the server-wide medians of those.
//! Under the null hypothesis that clients behave independently, a client's median lies
//! within ±10 % of the server-wide median with probability at most `null_share` (0.2 —
//! generous: benign intervals and sizes spread over orders of magnitude). The binomial
//! tails of the timing and volume agreements are multiplied (independent evidence) and
//! the score is −log10(p)/12 capped at 1, as for beacons (p = 10⁻⁶ → 0.5).

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::beacon::{BeaconDetector, Scratch};
use crate::stats;
use mamori_core::finding::{BotnetEvidence, Clients, Evidence, Finding, FindingKind};

/// Fan-in detector settings.
#[derive(Clone, Debug)]
pub struct FanInConfig {
    /// Fewest comparable clients (≥ 4 connections each) for a server to be considered.
    pub min_clients: usize,
    /// Chance agreement of one client with the server-wide median under the null.
    pub null_share: f64,
    /// Relative tolerance of "alike".
    pub tolerance: f64,
    /// Report at this score.
    pub report_threshold: f64,
}

impl Default for FanInConfig {
    fn default() -> Self {
        Self {
            min_clients: 3,
            null_share: 0.2,
            tolerance: 0.1,
            report_threshold: 0.5,
        }
    }
}

/// Botnet findings from the beacon detector's pairs, by server.
pub fn fan_in_findings(beacons: &BeaconDetector, cfg: &FanInConfig) -> Vec<Finding> {
    let mut scratch = Scratch::default();
    type Row = (IpAddr, f64, f64, i64, i64);
    let mut servers: BTreeMap<(IpAddr, u16, u8), Vec<Row>> = BTreeMap::new();
    for (k, p) in beacons.pairs() {
        if let Some((interval, size)) = p.medians(&mut scratch) {
            let (first, last) = p.span();
            servers
                .entry((k.server, k.port, k.proto))
                .or_default()
                .push((k.client, interval, size, first, last));
        }
    }
    let mut out = Vec::new();
    for ((server, port, proto), mut rows) in servers {
        if rows.len() < cfg.min_clients {
            continue;
        }
        rows.sort_by_key(|r| r.0);
        let mut v: Vec<f64> = rows.iter().map(|r| r.1).collect();
        v.sort_unstable_by(f64::total_cmp);
        let m_int = stats::median_sorted(&v);
        let mut v: Vec<f64> = rows.iter().map(|r| r.2).collect();
        v.sort_unstable_by(f64::total_cmp);
        let m_size = stats::median_sorted(&v);
        let near = |x: f64, m: f64| (x - m).abs() <= cfg.tolerance * m.max(1.0);
        let alike_t: Vec<&Row> = rows.iter().filter(|r| near(r.1, m_int)).collect();
        let alike_v = rows.iter().filter(|r| near(r.2, m_size)).count();
        let n = rows.len() as u32;
        // The median element agrees by construction when n is odd: drop it.
        let odd = n % 2;
        let lp_t = stats::binomial_tail_log10(
            (alike_t.len() as u32).saturating_sub(odd),
            n - odd,
            cfg.null_share,
        );
        let lp_v = stats::binomial_tail_log10(
            (alike_v as u32).saturating_sub(odd),
            n - odd,
            cfg.null_share,
        );
        let score = (-(lp_t + lp_v) / 12.0).clamp(0.0, 1.0);
        if score < cfg.report_threshold || alike_t.len() < cfg.min_clients {
            continue;
        }
        let clients: Vec<IpAddr> = alike_t.iter().map(|r| r.0).collect();
        let first = alike_t.iter().map(|r| r.3).min().unwrap_or(0);
        let last = alike_t.iter().map(|r| r.4).max().unwrap_or(0);
        // Other servers at least half of these clients also contact.
        let mut shared: BTreeMap<IpAddr, usize> = BTreeMap::new();
        for k in beacons.pairs().keys() {
            if k.server != server && clients.binary_search(&k.client).is_ok() {
                *shared.entry(k.server).or_default() += 1;
            }
        }
        let mut shared: Vec<(IpAddr, usize)> = shared
            .into_iter()
            .filter(|(_, c)| 2 * c >= clients.len())
            .collect();
        shared.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        out.push(Finding {
            kind: FindingKind::Botnet,
            address: server,
            port,
            proto,
            score: (score * 1000.0).round() / 1000.0,
            first_seen: first,
            last_seen: last,
            clients: Clients::new(clients.len() as u64, clients),
            evidence: Evidence::Botnet(BotnetEvidence {
                regular_clients: u64::from(n),
                similar_timing_clients: alike_t.len() as u64,
                similar_volume_clients: alike_v as u64,
                median_interval_s: m_int,
                median_bytes: m_size,
                shared_servers: shared.into_iter().take(8).map(|(a, _)| a).collect(),
            }),
            feed: None,
        });
    }
    out
}
