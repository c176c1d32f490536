//! What a detector reports: a [`Finding`] about one server (or scanner / DDoS source, or
//! DDoS victim), with the figures behind its score.
//!
//! It lives in `core` because it is what a sensor sends to the centre: the detectors
//! (`mamori-detect`) produce it, and the centre receives it without depending on `flow` or
//! `detect` (DESIGN.md: the centre's crates never depend on flow/detect). It holds only
//! `IpAddr`, numbers and strings.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// What kind of attacker infrastructure a finding names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FindingKind {
    /// A beacon with command-and-control traits; `address` is the server.
    C2,
    /// Periodic client → server contact; `address` is the server.
    Beacon,
    /// A server many clients contact alike (the bots of one botnet); `address` is the server.
    Botnet,
    /// A horizontal or vertical scanner; `address` is the scanner.
    Scan,
    /// A volumetric anomaly; `address` is the victim, top sources in the evidence.
    Ddos,
    /// A flow endpoint on an indicator list; `address` is the listed address.
    Indicator,
    /// One of the carrier's own subscribers behaving as attacker infrastructure (a
    /// scanning, beaconing or listed host); `address` is its **pseudonym**, never a
    /// server's address, and the evidence ([`Evidence::InfectedClient`]) names the
    /// pseudonym key and what the detectors saw (CI-4, DESIGN invariant 2). Never a
    /// target for deep collection or a measure by address.
    #[serde(rename = "infected_client")]
    InfectedClient,
}

impl FindingKind {
    /// Every kind, in report order.
    pub const ALL: [FindingKind; 7] = [
        FindingKind::C2,
        FindingKind::Beacon,
        FindingKind::Botnet,
        FindingKind::Scan,
        FindingKind::Ddos,
        FindingKind::Indicator,
        FindingKind::InfectedClient,
    ];

    /// The lower-case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::C2 => "c2",
            FindingKind::Beacon => "beacon",
            FindingKind::Botnet => "botnet",
            FindingKind::Scan => "scan",
            FindingKind::Ddos => "ddos",
            FindingKind::Indicator => "indicator",
            FindingKind::InfectedClient => "infected_client",
        }
    }
}

impl std::fmt::Display for FindingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The clients (peers) behind a finding: how many, and up to a bounded number of their
/// addresses. In sensor mode these addresses are already pseudonymised.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Clients {
    /// Distinct clients seen (may exceed `addresses.len()`).
    pub count: u64,
    /// Client addresses, sorted, at most [`Clients::MAX_LISTED`].
    pub addresses: Vec<IpAddr>,
}

impl Clients {
    /// At most this many client addresses are listed in one finding.
    pub const MAX_LISTED: usize = 32;

    /// Clients from a distinct count and some addresses (sorted, deduplicated, capped).
    pub fn new(count: u64, mut addresses: Vec<IpAddr>) -> Self {
        addresses.sort_unstable();
        addresses.dedup();
        addresses.truncate(Self::MAX_LISTED);
        let count = count.max(addresses.len() as u64);
        Self { count, addresses }
    }
}

/// One finding: one JSON object per line (see [`Finding::to_json_line`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// What was found.
    pub kind: FindingKind,
    /// The server; or the scanner / DDoS source; or the victim for `ddos`.
    pub address: IpAddr,
    /// The server port (0 when the finding is not about one port).
    pub port: u16,
    /// IP protocol number (0 when the finding spans protocols).
    pub proto: u8,
    /// 0–1; how strongly the evidence supports the kind.
    pub score: f64,
    /// First record time behind the finding.
    #[serde(with = "rfc3339_ms")]
    pub first_seen: i64,
    /// Last record time behind the finding.
    #[serde(with = "rfc3339_ms")]
    pub last_seen: i64,
    /// The clients / peers involved.
    pub clients: Clients,
    /// The figures behind the score.
    pub evidence: Evidence,
    /// The indicator feed that listed the address (indicator findings only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feed: Option<String>,
}

impl Finding {
    /// The finding as one line of JSON (no trailing newline).
    pub fn to_json_line(&self) -> String {
        // Serialising this type cannot fail (no maps with non-string keys, finite
        // floats are checked by the detectors); fall back to an empty object rather
        // than panic.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

/// Sorts findings by score (highest first), then kind, address and port, so output is
/// deterministic.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.kind.cmp(&b.kind))
            .then(a.address.cmp(&b.address))
            .then(a.port.cmp(&b.port))
            .then(a.proto.cmp(&b.proto))
    });
}

/// The figures behind a score, one typed struct per kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Evidence {
    /// Beacon and C2 findings.
    Beacon(BeaconEvidence),
    /// Botnet (fan-in) findings.
    Botnet(BotnetEvidence),
    /// Scan findings.
    Scan(ScanEvidence),
    /// DDoS findings.
    Ddos(DdosEvidence),
    /// Indicator findings.
    Indicator(IndicatorEvidence),
    /// Infected-client findings: the address is a pseudonym.
    #[serde(rename = "infected_client")]
    InfectedClient(InfectedClientEvidence),
}

/// What a finding about a subscriber says: its address is a pseudonym (Crypto-PAn under
/// the sensor's key `pseudonym_key_id`, re-identifiable only at the carrier with an
/// approval recorded in its ledger, CI-4, CI-5), and what the detectors saw.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InfectedClientEvidence {
    /// Always `"pseudonym"`: the finding's address is not an address on the internet.
    pub address_is: String,
    /// The id of the sensor's pseudonym key the address was made with.
    pub pseudonym_key_id: String,
    /// The kind the detectors gave (e.g. `scan`: the subscriber scans).
    pub detected_as: FindingKind,
    /// Their evidence, unchanged.
    pub detail: Box<Evidence>,
}

impl Finding {
    /// This finding recast as one about a subscriber whose address is a pseudonym made
    /// with key `key_id`: kind [`FindingKind::InfectedClient`], the detectors' kind and
    /// evidence kept inside.
    pub fn into_infected_client(self, key_id: &str) -> Finding {
        if self.kind == FindingKind::InfectedClient {
            return self;
        }
        Finding {
            kind: FindingKind::InfectedClient,
            evidence: Evidence::InfectedClient(InfectedClientEvidence {
                address_is: "pseudonym".to_owned(),
                pseudonym_key_id: key_id.to_owned(),
                detected_as: self.kind,
                detail: Box::new(self.evidence),
            }),
            ..self
        }
    }
}

/// RITA v5-style beacon sub-scores of the strongest pair, plus the sampling-robust phase
/// test and the C2 traits.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BeaconEvidence {
    /// The client of the strongest pair (pseudonymised in sensor mode).
    pub client: Option<IpAddr>,
    /// Connections seen for the strongest pair (client → server records).
    pub connections: u64,
    /// Points kept in the bounded sketch (every `2^decimation`-th connection).
    pub kept_points: u32,
    /// log2 of the decimation step of the kept points.
    pub decimation: u8,
    /// Median inter-arrival of kept points, seconds.
    pub median_interval_s: f64,
    /// Bowley skew of the intervals (0 = symmetric).
    pub ts_skew: f64,
    /// Median absolute deviation of the intervals, seconds.
    pub ts_mad_s: f64,
    /// RITA timestamp score: mean of (1 − |skew|) and (median − MAD)/median.
    pub ts_score: f64,
    /// Median bytes per connection (client → server).
    pub median_bytes: f64,
    /// Bowley skew of the sizes.
    pub ds_skew: f64,
    /// MAD of the sizes, bytes.
    pub ds_mad: f64,
    /// RITA data-size score.
    pub ds_score: f64,
    /// RITA histogram score (coefficient of variation or bimodal fit over 24 bins).
    pub hist_score: f64,
    /// RITA duration score (coverage of the window or run of consecutive bins).
    pub dur_score: f64,
    /// RITA's weighted mean of the four sub-scores.
    pub rita_score: f64,
    /// Period the phase test locked on, seconds (0 when not run).
    pub phase_period_s: f64,
    /// Phase coherence (mean resultant length) at that period, 0–1.
    pub phase_coherence: f64,
    /// −log10 of the phase test's p-value, corrected for the periods tried.
    pub phase_neg_log10_p: f64,
    /// Longest single connection, seconds.
    pub max_duration_s: f64,
    /// Connected time: the sum of the connections' durations, capped by the span from
    /// the first connection's start to the last one's end (overlaps count once at most).
    pub total_duration_s: f64,
    /// Server → client bytes per connection.
    pub down_bytes_per_connection: f64,
    /// Fraction of the pair's bytes the client sent (upload share).
    pub upload_share: f64,
    /// Whether the server port is outside the well-known service ports.
    pub nonstandard_port: bool,
    /// Distinct clients of this server:port among tracked pairs.
    pub server_clients: u64,
}

/// Fan-in evidence: many clients contacting one server alike.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BotnetEvidence {
    /// Clients with enough connections to compare.
    pub regular_clients: u64,
    /// Clients whose median interval lies within the tolerance of the server's median.
    pub similar_timing_clients: u64,
    /// Clients whose median size lies within the tolerance of the server's median.
    pub similar_volume_clients: u64,
    /// The server-wide median of the per-client median intervals, seconds.
    pub median_interval_s: f64,
    /// The server-wide median of the per-client median sizes, bytes.
    pub median_bytes: f64,
    /// Other servers shared by these clients (the group's other contacts).
    pub shared_servers: Vec<IpAddr>,
}

/// Scanner evidence.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScanEvidence {
    /// `horizontal`, `vertical`, `both` or `probe` (telescope-style unsolicited probes).
    pub scan_type: String,
    /// The profile whose thresholds applied.
    pub profile: String,
    /// Connection attempts seen from the source.
    pub attempts: u64,
    /// Attempts that got no answer or were refused.
    pub unanswered: u64,
    /// Distinct destinations (estimate).
    pub distinct_destinations: u64,
    /// Distinct destination ports (estimate).
    pub distinct_ports: u64,
    /// Most distinct ports seen on one destination (estimate; vertical scans).
    pub max_ports_one_destination: u64,
    /// Most distinct destinations seen on one port (estimate; horizontal scans).
    pub max_destinations_one_port: u64,
    /// Log-likelihood ratio (natural log) of scanner vs benign from the answered /
    /// unanswered outcomes (threshold random walk).
    pub trw_log_lr: f64,
    /// Up to 8 destination ports probed.
    pub sample_ports: Vec<u16>,
}

/// DDoS evidence for the worst window of an episode.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DdosEvidence {
    /// `volumetric`, `syn_flood` or `icmp_flood`.
    pub attack: String,
    /// Window length, seconds.
    pub window_s: u32,
    /// Packets per second in the worst window (sampling renormalised).
    pub pps: f64,
    /// Bits per second in the worst window.
    pub bps: f64,
    /// Flows per second in the worst window.
    pub flows_per_s: f64,
    /// Baseline packets per second before the episode (0 when none).
    pub baseline_pps: f64,
    /// Robust z-score of log(pps) against the baseline.
    pub z: f64,
    /// Fraction of packets that were unanswered TCP SYNs.
    pub syn_share: f64,
    /// Fraction of packets that were ICMP.
    pub icmp_share: f64,
    /// Windows in the episode.
    pub windows: u32,
    /// The heaviest sources, (address, packets) in decreasing order.
    pub top_sources: Vec<(IpAddr, u64)>,
}

/// Indicator-hit evidence.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IndicatorEvidence {
    /// The list entry that matched (an address or a CIDR).
    pub entry: String,
    /// Flows that touched the address.
    pub flows: u64,
    /// Packets in those flows (sampling renormalised).
    pub packets: u64,
    /// Bytes in those flows (sampling renormalised).
    pub bytes: u64,
    /// Whether the listed address was the flow's destination at least once.
    pub as_destination: bool,
}

/// Rounds to 4 decimals: evidence is for people, and short decimals survive a JSON
/// round trip exactly (serde_json's fast float path is exact below 2^53 · 10^±22).
fn r4(x: f64) -> f64 {
    if x.is_finite() {
        (x * 10_000.0).round() / 10_000.0
    } else {
        0.0
    }
}

impl Evidence {
    /// Rounds every figure to 4 decimals and replaces non-finite ones by 0.
    pub fn round(&mut self) {
        match self {
            Evidence::Beacon(e) => {
                for x in [
                    &mut e.median_interval_s,
                    &mut e.ts_skew,
                    &mut e.ts_mad_s,
                    &mut e.ts_score,
                    &mut e.median_bytes,
                    &mut e.ds_skew,
                    &mut e.ds_mad,
                    &mut e.ds_score,
                    &mut e.hist_score,
                    &mut e.dur_score,
                    &mut e.rita_score,
                    &mut e.phase_period_s,
                    &mut e.phase_coherence,
                    &mut e.phase_neg_log10_p,
                    &mut e.max_duration_s,
                    &mut e.total_duration_s,
                    &mut e.down_bytes_per_connection,
                    &mut e.upload_share,
                ] {
                    *x = r4(*x);
                }
            }
            Evidence::Botnet(e) => {
                e.median_interval_s = r4(e.median_interval_s);
                e.median_bytes = r4(e.median_bytes);
            }
            Evidence::Scan(e) => e.trw_log_lr = r4(e.trw_log_lr),
            Evidence::Ddos(e) => {
                for x in [
                    &mut e.pps,
                    &mut e.bps,
                    &mut e.flows_per_s,
                    &mut e.baseline_pps,
                    &mut e.z,
                    &mut e.syn_share,
                    &mut e.icmp_share,
                ] {
                    *x = r4(*x);
                }
            }
            Evidence::Indicator(_) => {}
            Evidence::InfectedClient(e) => e.detail.round(),
        }
    }
}

/// `i64` UTC milliseconds ⇄ RFC 3339 with milliseconds and a `Z`.
pub mod rfc3339_ms {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Formats UTC milliseconds as RFC 3339 (`2024-04-03T10:00:00.000Z`).
    pub fn format(ms: i64) -> String {
        DateTime::<Utc>::from_timestamp_millis(ms)
            .unwrap_or_default()
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    /// Serde serialiser.
    pub fn serialize<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*ms))
    }

    /// Serde deserialiser.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc).timestamp_millis())
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finding_round_trips_as_one_json_line_with_rfc3339_ms() {
        let f = Finding {
            kind: FindingKind::C2,
            address: "147.32.83.234"
                .parse()
                .unwrap_or(IpAddr::from([0, 0, 0, 0])),
            port: 1337,
            proto: 6,
            score: 0.9,
            first_seen: 1_596_790_919_196,
            last_seen: 1_596_795_342_716,
            clients: Clients::new(1, vec![IpAddr::from([10, 8, 0, 61])]),
            evidence: Evidence::Beacon(BeaconEvidence::default()),
            feed: None,
        };
        let line = f.to_json_line();
        assert!(!line.contains('\n'));
        assert!(line.contains(r#""kind":"c2""#), "{line}");
        assert!(
            line.contains(r#""first_seen":"2020-08-07T09:01:59.196Z""#),
            "{line}"
        );
        assert!(!line.contains("feed"), "{line}");
        let back: Finding = serde_json::from_str(&line).unwrap();
        assert_eq!(back, f);
    }

    #[test]
    fn an_infected_client_finding_says_pseudonym_names_its_key_and_round_trips() {
        let f = Finding {
            kind: FindingKind::Scan,
            address: IpAddr::from([147, 26, 123, 12]),
            port: 0,
            proto: 6,
            score: 0.8,
            first_seen: 0,
            last_seen: 1,
            clients: Clients::default(),
            evidence: Evidence::Scan(ScanEvidence::default()),
            feed: None,
        }
        .into_infected_client("2026-12-01");
        let line = f.to_json_line();
        assert!(line.contains(r#""kind":"infected_client""#), "{line}");
        assert!(line.contains(r#""address_is":"pseudonym""#), "{line}");
        assert!(
            line.contains(r#""pseudonym_key_id":"2026-12-01""#),
            "{line}"
        );
        assert!(line.contains(r#""detected_as":"scan""#), "{line}");
        let back: Finding = serde_json::from_str(&line).unwrap();
        assert_eq!(back, f);
    }
}
