//! Evaluation: findings against labels — precision, recall and F1 per finding kind,
//! and the false and missed addresses.
//!
//! # Labels
//! - CTU / Stratosphere per-flow labels: the `label` (+ `detailedlabel`) columns of a
//!   Zeek `conn.log.labeled`, or the `Label` column of an Argus `binetflow`
//!   ([`Labels::from_zeek_labeled`], [`Labels::from_binetflow`]). A malicious flow
//!   names, by its label: C&C (`C&C`, `CC<n>`) → responder is a C2 server, originator
//!   a bot; malware traffic (`Malware`, `From-Botnet`) → originator is a bot, responder
//!   a malware server (not when it is port 53/123: resolvers are not infrastructure);
//!   any other malicious label (`Malicious`, `Attack`, `Scan`) → originator is an
//!   attacker (a malicious source).
//! - A ground-truth summary like `../shared/data/botnet/GROUND_TRUTH.tsv`
//!   ([`Labels::from_ground_truth`]): roles naming `c2` or `beacon destination` are C2
//!   servers, `bot` / `beacon source` are bots.
//!
//! # What counts
//! A finding claims its `address`. `c2`, `beacon` and `botnet` claims are checked
//! against the C2 and malware servers, `scan` claims against the malicious sources (C2 servers
//! and bots excluded: a bot's C&C traffic does not make it a scanner), `ddos` against the labelled victims. Everything the labels do not mark
//! is taken as benign, so every other claim is a false address. Indicator hits are
//! counted but not scored (a list is not a label).

use std::collections::BTreeSet;
use std::fmt;
use std::io::BufRead;
use std::net::IpAddr;

use serde::Serialize;

use crate::Error;
use mamori_core::finding::{Finding, FindingKind};

/// Longest label-file line read.
const MAX_LINE: u64 = 1 << 16;

/// What the labels say about addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Labels {
    /// Originators of malicious flows (attackers, scanners, bots).
    pub malicious_sources: BTreeSet<IpAddr>,
    /// C2 servers.
    pub c2_servers: BTreeSet<IpAddr>,
    /// Other servers malware-labelled flows contact (not resolvers on 53/123).
    pub malware_servers: BTreeSet<IpAddr>,
    /// Infected clients.
    pub bots: BTreeSet<IpAddr>,
    /// DDoS victims.
    pub ddos_victims: BTreeSet<IpAddr>,
    /// Labelled flows read.
    pub labelled_flows: u64,
}

fn is_attack(label: &str) -> bool {
    let l = label.to_ascii_lowercase();
    l.contains("attack") || l.contains("scan")
}

fn is_malware(label: &str) -> bool {
    let l = label.to_ascii_lowercase();
    (l.contains("malware") || l.contains("from-botnet")) && !is_attack(label)
}

fn is_malicious(label: &str) -> bool {
    let l = label.to_ascii_lowercase();
    ["malicious", "malware", "botnet", "attack", "scan"]
        .iter()
        .any(|w| l.contains(w))
        && !l.starts_with("benign")
        && !l.contains("normal")
}

fn is_cc(label: &str) -> bool {
    let l = label.to_ascii_lowercase();
    // CTU-13 writes `CC` followed by a channel number (`…-TCP-CC6-Plain-HTTP`).
    l.contains("c&c")
        || l.split(|c: char| !c.is_ascii_alphanumeric()).any(|w| {
            w.strip_prefix("cc")
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
}

fn lines(
    mut input: impl BufRead,
    mut f: impl FnMut(&str) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut buf = Vec::new();
    let mut n = 0u64;
    loop {
        buf.clear();
        let read = std::io::Read::take(&mut input, MAX_LINE + 1).read_until(b'\n', &mut buf)?;
        if read == 0 {
            return Ok(());
        }
        n += 1;
        if buf.len() as u64 > MAX_LINE && !buf.ends_with(b"\n") {
            return Err(Error::LineTooLong { line: n });
        }
        let text = String::from_utf8_lossy(&buf);
        f(text.trim_end_matches(['\n', '\r']))?;
    }
}

impl Labels {
    /// Labels from a Zeek `conn.log.labeled` (TSV with `#fields`, `label` and optional
    /// `detailedlabel` columns).
    pub fn from_zeek_labeled(input: impl BufRead) -> Result<Self, Error> {
        let mut out = Labels::default();
        let mut cols: Option<(usize, usize, usize, usize, Option<usize>)> = None;
        lines(input, |line| {
            if let Some(h) = line.strip_prefix("#fields\t") {
                let names: Vec<&str> = h.split('\t').collect();
                let at = |n: &'static str| {
                    names
                        .iter()
                        .position(|x| *x == n)
                        .ok_or(Error::MissingColumn { column: n })
                };
                cols = Some((
                    at("id.orig_h")?,
                    at("id.resp_h")?,
                    at("id.resp_p")?,
                    at("label")?,
                    names.iter().position(|x| *x == "detailedlabel"),
                ));
                return Ok(());
            }
            if line.starts_with('#') || line.is_empty() {
                return Ok(());
            }
            let Some((o, r, p, l, d)) = cols else {
                return Err(Error::MissingColumn { column: "#fields" });
            };
            let f: Vec<&str> = line.split('\t').collect();
            let get = |i: usize| f.get(i).copied().unwrap_or("");
            let label = format!("{} {}", get(l), d.map(get).unwrap_or(""));
            out.add(get(o), get(r), get(p), &label);
            Ok(())
        })?;
        Ok(out)
    }

    /// Labels from an Argus / CTU `binetflow` (CSV or TSV with a `Label` column).
    pub fn from_binetflow(input: impl BufRead) -> Result<Self, Error> {
        let mut out = Labels::default();
        let mut cols: Option<(char, usize, usize, usize, usize)> = None;
        lines(input, |line| {
            if line.trim().is_empty() {
                return Ok(());
            }
            let Some((sep, s, d, p, l)) = cols else {
                let sep = if line.contains('\t') { '\t' } else { ',' };
                let names: Vec<&str> = line.split(sep).map(str::trim).collect();
                let at = |n: &'static str| {
                    names
                        .iter()
                        .position(|x| *x == n)
                        .ok_or(Error::MissingColumn { column: n })
                };
                cols = Some((
                    sep,
                    at("SrcAddr")?,
                    at("DstAddr")?,
                    at("Dport")?,
                    at("Label")?,
                ));
                return Ok(());
            };
            let f: Vec<&str> = line.split(sep).map(str::trim).collect();
            let get = |i: usize| f.get(i).copied().unwrap_or("");
            out.add(get(s), get(d), get(p), get(l));
            Ok(())
        })?;
        Ok(out)
    }

    /// Labels for `dataset` from a ground-truth summary (`dataset  file  role  address
    /// port/proto  source  flows`, tab-separated, `#` comments). Rows whose dataset
    /// column starts with `dataset` are used; non-address rows are skipped.
    pub fn from_ground_truth(input: impl BufRead, dataset: &str) -> Result<Self, Error> {
        let mut out = Labels::default();
        lines(input, |line| {
            if line.starts_with('#') || line.trim().is_empty() {
                return Ok(());
            }
            let f: Vec<&str> = line.split('\t').collect();
            let (Some(ds), Some(role), Some(addr)) = (f.first(), f.get(2), f.get(3)) else {
                return Ok(());
            };
            if !ds.starts_with(dataset) {
                return Ok(());
            }
            let Ok(addr) = addr.trim().parse::<IpAddr>() else {
                return Ok(());
            };
            let role = role.to_ascii_lowercase();
            if role.contains("c2") || role.contains("beacon destination") {
                out.c2_servers.insert(addr);
            } else if role.contains("bot") || role.contains("beacon source") {
                out.bots.insert(addr);
            } else if role.contains("victim") && role.contains("ddos") {
                out.ddos_victims.insert(addr);
            }
            out.labelled_flows += 1;
            Ok(())
        })?;
        Ok(out)
    }

    fn add(&mut self, src: &str, dst: &str, dport: &str, label: &str) {
        self.labelled_flows += 1;
        if !is_malicious(label) && !is_cc(label) {
            return;
        }
        let (Ok(s), Ok(d)) = (src.parse::<IpAddr>(), dst.parse::<IpAddr>()) else {
            return;
        };
        if is_cc(label) {
            // A bot talking to its C2: the bot is not a scanner or attacker by this flow.
            self.c2_servers.insert(d);
            self.bots.insert(s);
        } else if is_malware(label) {
            // Traffic the malware made: its originator is infected, its responder one of
            // the malware's contacts, unless that is a resolver or time server.
            self.bots.insert(s);
            if !matches!(dport.trim(), "53" | "123") {
                self.malware_servers.insert(d);
            }
        } else {
            self.malicious_sources.insert(s);
        }
    }

    /// Adds another label source (e.g. a file's labels and a ground-truth summary).
    pub fn merge(&mut self, other: Labels) {
        self.malicious_sources.extend(other.malicious_sources);
        self.c2_servers.extend(other.c2_servers);
        self.malware_servers.extend(other.malware_servers);
        self.bots.extend(other.bots);
        self.ddos_victims.extend(other.ddos_victims);
        self.labelled_flows += other.labelled_flows;
    }

    fn truth(&self, kind: FindingKind) -> Option<BTreeSet<IpAddr>> {
        match kind {
            FindingKind::C2 | FindingKind::Beacon | FindingKind::Botnet => Some(
                self.c2_servers
                    .union(&self.malware_servers)
                    .copied()
                    .collect(),
            ),
            FindingKind::Scan => Some(
                self.malicious_sources
                    .iter()
                    .filter(|a| !self.c2_servers.contains(a) && !self.bots.contains(a))
                    .copied()
                    .collect(),
            ),
            FindingKind::Ddos => Some(self.ddos_victims.clone()),
            // Indicator hits are not scored; infected-client findings are made by the
            // sensor, never by the detectors.
            FindingKind::Indicator | FindingKind::InfectedClient => None,
        }
    }
}

/// Scores of one finding kind.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KindReport {
    /// The kind.
    pub kind: FindingKind,
    /// Addresses the labels hold for this kind (`None`: not scored).
    pub truth: Option<usize>,
    /// Distinct addresses claimed.
    pub found: usize,
    /// Claimed and labelled.
    pub true_positives: usize,
    /// Claimed, not labelled.
    pub false_positives: usize,
    /// Labelled, not claimed.
    pub false_negatives: usize,
    /// TP / (TP + FP), when anything was claimed and the kind is scored.
    pub precision: Option<f64>,
    /// TP / (TP + FN), when the labels hold any address of this kind.
    pub recall: Option<f64>,
    /// Harmonic mean of precision and recall, when both exist.
    pub f1: Option<f64>,
    /// Claimed addresses the labels do not support (at most 50 listed).
    pub false_addresses: Vec<IpAddr>,
    /// Labelled addresses not claimed (at most 50 listed).
    pub missed: Vec<IpAddr>,
}

/// Precision, recall and F1 per finding kind.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Findings counted (score ≥ the threshold given).
    pub findings: usize,
    /// One row per kind, in [`FindingKind::ALL`] order.
    pub kinds: Vec<KindReport>,
}

impl Report {
    /// The row of `kind`.
    pub fn kind(&self, kind: FindingKind) -> Option<&KindReport> {
        self.kinds.iter().find(|k| k.kind == kind)
    }
}

/// Compares findings with at least `min_score` against `labels`.
pub fn evaluate(findings: &[Finding], labels: &Labels, min_score: f64) -> Report {
    const LISTED: usize = 50;
    let counted: Vec<&Finding> = findings.iter().filter(|f| f.score >= min_score).collect();
    let kinds = FindingKind::ALL
        .iter()
        // The detectors' kinds only: the sensor makes infected-client findings.
        .filter(|&&kind| kind != FindingKind::InfectedClient)
        .map(|&kind| {
            let claimed: BTreeSet<IpAddr> = counted
                .iter()
                .filter(|f| f.kind == kind)
                .map(|f| f.address)
                .collect();
            let truth = labels.truth(kind);
            let Some(truth) = truth else {
                return KindReport {
                    kind,
                    truth: None,
                    found: claimed.len(),
                    true_positives: 0,
                    false_positives: 0,
                    false_negatives: 0,
                    precision: None,
                    recall: None,
                    f1: None,
                    false_addresses: Vec::new(),
                    missed: Vec::new(),
                };
            };
            let tp = claimed.intersection(&truth).count();
            let false_addresses: Vec<IpAddr> = claimed.difference(&truth).copied().collect();
            let missed: Vec<IpAddr> = truth.difference(&claimed).copied().collect();
            let (fp, fn_) = (false_addresses.len(), missed.len());
            let precision = (!claimed.is_empty()).then(|| tp as f64 / claimed.len() as f64);
            let recall = (!truth.is_empty()).then(|| tp as f64 / truth.len() as f64);
            let f1 = match (precision, recall) {
                (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
                (Some(_), Some(_)) => Some(0.0),
                _ => None,
            };
            KindReport {
                kind,
                truth: Some(truth.len()),
                found: claimed.len(),
                true_positives: tp,
                false_positives: fp,
                false_negatives: fn_,
                precision,
                recall,
                f1,
                false_addresses: false_addresses.into_iter().take(LISTED).collect(),
                missed: missed.into_iter().take(LISTED).collect(),
            }
        })
        .collect();
    Report {
        findings: counted.len(),
        kinds,
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |x: Option<f64>| x.map_or_else(|| "-".to_string(), |v| format!("{v:.3}"));
        writeln!(
            f,
            "| kind | truth | found | TP | FP | FN | precision | recall | F1 |"
        )?;
        writeln!(f, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")?;
        for k in &self.kinds {
            writeln!(
                f,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                k.kind,
                k.truth.map_or_else(|| "-".to_string(), |t| t.to_string()),
                k.found,
                k.true_positives,
                k.false_positives,
                k.false_negatives,
                opt(k.precision),
                opt(k.recall),
                opt(k.f1)
            )?;
        }
        for k in &self.kinds {
            if !k.false_addresses.is_empty() && k.false_addresses.len() <= 10 {
                let list: Vec<String> = k.false_addresses.iter().map(|a| a.to_string()).collect();
                writeln!(f, "false {}: {}", k.kind, list.join(", "))?;
            }
            if !k.missed.is_empty() && k.missed.len() <= 10 {
                let list: Vec<String> = k.missed.iter().map(|a| a.to_string()).collect();
                writeln!(f, "missed {}: {}", k.kind, list.join(", "))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mamori_core::finding::{Clients, Evidence, ScanEvidence};

    fn finding(kind: FindingKind, addr: [u8; 4]) -> Finding {
        Finding {
            kind,
            address: addr.into(),
            port: 0,
            proto: 0,
            score: 0.9,
            first_seen: 0,
            last_seen: 0,
            clients: Clients::default(),
            evidence: Evidence::Scan(ScanEvidence::default()),
            feed: None,
        }
    }

    #[test]
    fn binetflow_labels_name_cc_servers_and_malicious_sources() {
        let text = "StartTime,Dur,Proto,SrcAddr,Sport,Dir,DstAddr,Dport,Label\n\
            t,0,tcp,10.0.0.5,1,->,192.0.2.9,80,flow=From-Botnet-V42-TCP-CC6-Plain-HTTP\n\
            t,0,tcp,10.0.0.6,1,->,192.0.2.10,80,flow=Background-TCP-Established\n\
            t,0,tcp,10.0.0.7,1,->,192.0.2.11,80,flow=Malware-TCP\n\
            t,0,tcp,198.51.100.1,1,->,10.0.0.8,23,flow=Attack-Telnet\n";
        let l = Labels::from_binetflow(text.as_bytes()).unwrap();
        assert_eq!(l.c2_servers.len(), 1);
        assert!(l.c2_servers.contains(&IpAddr::from([192, 0, 2, 9])));
        assert_eq!(l.malicious_sources.len(), 1);
        assert!(
            l.malicious_sources
                .contains(&IpAddr::from([198, 51, 100, 1]))
        );
        assert!(l.bots.contains(&IpAddr::from([10, 0, 0, 5])));
        assert!(l.bots.contains(&IpAddr::from([10, 0, 0, 7])));
        assert!(l.malware_servers.contains(&IpAddr::from([192, 0, 2, 11])));
        assert_eq!(l.labelled_flows, 4);
    }

    #[test]
    fn precision_recall_and_false_addresses() {
        let mut labels = Labels::default();
        for i in 1..=4u8 {
            labels.malicious_sources.insert([198, 51, 100, i].into());
        }
        let f = vec![
            finding(FindingKind::Scan, [198, 51, 100, 1]),
            finding(FindingKind::Scan, [198, 51, 100, 2]),
            finding(FindingKind::Scan, [198, 51, 100, 3]),
            finding(FindingKind::Scan, [203, 0, 113, 1]),
        ];
        let r = evaluate(&f, &labels, 0.5);
        let s = r.kind(FindingKind::Scan).unwrap();
        assert_eq!(
            (s.true_positives, s.false_positives, s.false_negatives),
            (3, 1, 1)
        );
        assert_eq!(s.precision, Some(0.75));
        assert_eq!(s.recall, Some(0.75));
        assert_eq!(s.false_addresses, vec![IpAddr::from([203, 0, 113, 1])]);
        assert!(
            r.to_string()
                .contains("| scan | 4 | 4 | 3 | 1 | 1 | 0.750 | 0.750 | 0.750 |")
        );
    }
}
