//! Selection before keeping: which flows the sensor may keep, in what form, with every
//! subscriber address pseudonymised (REQUIREMENTS CI-2, CI-4; DESIGN invariants 2 and 3).
//!
//! # What
//! - [`SelectionPolicy`]: the carrier's policy file (TOML, unknown fields refused,
//!   defaults in code; `examples/selection.example.toml` is parsed by a test).
//! - [`Selector::classify`]: each end of a flow is a *subscriber* (inside the carrier's
//!   own prefixes), *domestic* (home country by [`GeoTable`]), *foreign*, or *unknown*
//!   (no country: private, unallocated or missing from the loaded files). Unknown ends
//!   count as domestic by default ([`UnknownCountry::Domestic`]), so that a flow is kept
//!   only when one end is positively known to be foreign. The [`Class`] is then
//!   domestic↔domestic (dropped), domestic↔foreign (kept), or foreign↔foreign transit
//!   (kept).
//! - [`Selector::process`] applies the policy to a [`FlowBatch`] in place:
//!   domestic↔domestic flows, unknown-country flows under [`UnknownCountry::Drop`],
//!   flows matching a drop rule, and flows past the aggregate bound are dropped with a
//!   counted [`DropReason`] (STYLE principle 4); every non-foreign end of a kept flow is
//!   replaced by its Crypto-PAn pseudonym; then, **broad first**, kept flows become
//!   per-server aggregates ([`ServerAggregate`]: per foreign address, port, protocol and
//!   time bin — flows, packets, bytes, distinct pseudonymised clients), except flows of
//!   servers on the caller's [`ConcernList`], which stay in the batch as per-flow records
//!   (**deep only on concern**).
//!
//! # Invariants
//! Pure: the caller passes the time (`now_ms`, for concern expiry), the country table and
//! the concern list; nothing is read or written here. **No domestic↔domestic flow
//! survives `process`** (CI-2, invariant 3) and **no subscriber or other domestic address
//! leaves it in clear** — neither in the records left in the batch nor in the aggregates
//! (CI-4, invariant 2): both are tested on the real captures in `tests/selection.rs`.
//! Foreign ends stay clear: they are the servers to find. Memory is bounded by
//! [`SelectionPolicy::max_aggregates`].
//!
//! Distinct clients are counted with `cardinality-estimator` (exact for small sets, then
//! HyperLogLog with 2^12 registers, about 1.6 % standard error) over pseudonymised
//! addresses only.

use std::net::IpAddr;

use cardinality_estimator::CardinalityEstimator;
use ipnet::IpNet;
use rustc_hash::FxHashMap;
use serde::Deserialize;

use crate::cryptopan::{CryptoPanKey, Pseudonymiser};
use crate::geo::RangeTable;
use crate::geo::{CountryCode, GeoTable, GeoTableBuilder};
use crate::record::{FlowBatch, FlowRecord};

/// The carrier's selection policy (`[selection]` of the sensor's configuration).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SelectionPolicy {
    /// The carrier's own and subscriber prefixes: always the domestic side, and always
    /// pseudonymised, whatever the country files say about them. Example:
    /// `["203.0.113.0/24", "2001:db8::/32", "100.64.0.0/10"]`.
    pub subscriber_prefixes: Vec<IpNet>,
    /// The home country (ISO 3166-1 alpha-2). Default `"JP"`.
    pub home_country: CountryCode,
    /// How an end with no known country counts. Default `"domestic"`.
    pub unknown_country: UnknownCountry,
    /// Width of the per-server aggregate time bins, in seconds. Default 300.
    pub aggregate_bin_seconds: u32,
    /// Most distinct aggregate keys held between two [`Selector::take_aggregates`];
    /// flows that would need one more are dropped and counted
    /// ([`DropReason::AggregateLimit`]). Default 1,000,000.
    pub max_aggregates: usize,
    /// Protocol/port rules that drop flows before anything else is kept (for services
    /// the carrier must not look at). Default: none.
    pub drop_rules: Vec<DropRule>,
}

impl Default for SelectionPolicy {
    fn default() -> Self {
        Self {
            subscriber_prefixes: Vec::new(),
            home_country: CountryCode::JP,
            unknown_country: UnknownCountry::Domestic,
            aggregate_bin_seconds: 300,
            max_aggregates: 1_000_000,
            drop_rules: Vec::new(),
        }
    }
}

impl SelectionPolicy {
    /// Parses a policy from TOML text (unknown fields are refused).
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        let policy: Self = toml::from_str(text).map_err(|e| PolicyError::Toml(e.to_string()))?;
        policy.validate()?;
        Ok(policy)
    }

    fn validate(&self) -> Result<(), PolicyError> {
        if self.aggregate_bin_seconds == 0 {
            return Err(PolicyError::Invalid(
                "aggregate_bin_seconds must be at least 1".into(),
            ));
        }
        for (i, rule) in self.drop_rules.iter().enumerate() {
            if rule.protocol.is_none() && rule.ports.is_empty() {
                return Err(PolicyError::Invalid(format!(
                    "drop_rules[{i}] ({:?}) names neither a protocol nor ports: it would drop everything",
                    rule.name
                )));
            }
        }
        Ok(())
    }
}

/// How an address without a known country counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownCountry {
    /// As domestic: pseudonymised, and a flow between it and a domestic end is dropped.
    /// The safe default: a flow is kept only if one end is known to be foreign.
    Domestic,
    /// As foreign: kept in clear. Use only when `subscriber_prefixes` covers every
    /// subscriber address, or unknown subscriber addresses would leave in clear.
    Foreign,
    /// Drop every flow with an unknown end ([`DropReason::UnknownCountry`]).
    Drop,
}

/// A protocol/port drop rule: matches when the protocol (if given) is the flow's and one
/// of `ports` (if any) is either end's port.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropRule {
    /// A name for the counters and the audit trail.
    pub name: String,
    /// IP protocol number (6 TCP, 17 UDP, …); any when absent.
    #[serde(default)]
    pub protocol: Option<u8>,
    /// Ports; any when empty.
    #[serde(default)]
    pub ports: Vec<u16>,
}

impl DropRule {
    fn matches(&self, r: &FlowRecord) -> bool {
        self.protocol.is_none_or(|p| p == r.protocol)
            && (self.ports.is_empty()
                || self.ports.contains(&r.src_port)
                || self.ports.contains(&r.dst_port))
    }
}

/// A policy that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The TOML does not parse or names an unknown field.
    #[error("selection policy: {0}")]
    Toml(String),
    /// A value is out of range.
    #[error("selection policy: {0}")]
    Invalid(String),
}

/// Which end of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum End {
    /// The source address.
    Src,
    /// The destination address.
    Dst,
}

/// What one end of a flow is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Inside the carrier's subscriber prefixes.
    Subscriber,
    /// In the home country.
    Domestic,
    /// In another country.
    Foreign,
    /// No country known.
    Unknown,
}

/// The class of a flow under the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Both ends domestic (subscriber, home country, or unknown counted as domestic):
    /// never kept.
    DomesticDomestic,
    /// One end domestic, the other foreign: kept; the foreign end is the server.
    DomesticForeign {
        /// The foreign end.
        foreign: End,
    },
    /// Both ends foreign (transit): kept, both in clear.
    Transit,
    /// An end has no country and the policy drops such flows.
    UnknownCountry,
}

/// Why a flow was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(usize)]
pub enum DropReason {
    /// Both ends domestic (CI-2).
    DomesticDomestic = 0,
    /// An end without a country, under [`UnknownCountry::Drop`].
    UnknownCountry,
    /// A [`DropRule`] matched.
    PolicyRule,
    /// The aggregate table was full ([`SelectionPolicy::max_aggregates`]).
    AggregateLimit,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 4] = [
        DropReason::DomesticDomestic,
        DropReason::UnknownCountry,
        DropReason::PolicyRule,
        DropReason::AggregateLimit,
    ];

    /// The metric label value (`mamori_selection_dropped_total{reason="…"}`).
    pub fn name(self) -> &'static str {
        match self {
            DropReason::DomesticDomestic => "domestic_domestic",
            DropReason::UnknownCountry => "unknown_country",
            DropReason::PolicyRule => "policy_rule",
            DropReason::AggregateLimit => "aggregate_limit",
        }
    }
}

/// Counters of what selection did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectionCounts {
    /// Records looked at.
    pub seen: u64,
    /// Records dropped, by [`DropReason`] (index `reason as usize`).
    pub dropped: [u64; DropReason::ALL.len()],
    /// Records dropped per drop rule (same order as the policy's `drop_rules`).
    pub dropped_by_rule: Vec<u64>,
    /// Kept records folded into per-server aggregates.
    pub aggregated: u64,
    /// Kept records left as per-flow records (server on the concern list).
    pub kept_per_flow: u64,
    /// Addresses replaced by their pseudonyms.
    pub pseudonymised: u64,
}

impl SelectionCounts {
    /// Records dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped.get(reason as usize).copied().unwrap_or(0)
    }

    /// All records dropped.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    fn drop(&mut self, reason: DropReason) {
        if let Some(c) = self.dropped.get_mut(reason as usize) {
            *c += 1;
        }
    }

    /// Adds another set of counters into this one.
    pub fn merge(&mut self, other: &SelectionCounts) {
        self.seen += other.seen;
        for (a, b) in self.dropped.iter_mut().zip(other.dropped.iter()) {
            *a += b;
        }
        if self.dropped_by_rule.len() < other.dropped_by_rule.len() {
            self.dropped_by_rule.resize(other.dropped_by_rule.len(), 0);
        }
        for (a, b) in self
            .dropped_by_rule
            .iter_mut()
            .zip(other.dropped_by_rule.iter())
        {
            *a += b;
        }
        self.aggregated += other.aggregated;
        self.kept_per_flow += other.kept_per_flow;
        self.pseudonymised += other.pseudonymised;
    }
}

/// One server on the concern list: per-flow records are kept for it until `expires_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Concern {
    /// The server address or prefix (foreign).
    pub prefix: IpNet,
    /// Why (detection id, indicator, case number).
    pub reason: String,
    /// Expiry, UTC milliseconds since the Unix epoch.
    pub expires_ms: i64,
}

/// The concerns in force, for longest-prefix lookup.
#[derive(Debug, Clone)]
pub struct ConcernList {
    concerns: Vec<Concern>,
    v4: RangeTable<u32, usize>,
    v6: RangeTable<u128, usize>,
}

impl Default for ConcernList {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl ConcernList {
    /// A list of concerns (the caller records each one in its ledger when it adds it).
    pub fn new(concerns: Vec<Concern>) -> Self {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (i, c) in concerns.iter().enumerate() {
            let order = i as u32;
            match c.prefix {
                IpNet::V4(n) => {
                    v4.push((u32::from(n.network()), u32::from(n.broadcast()), order, i))
                }
                IpNet::V6(n) => {
                    v6.push((u128::from(n.network()), u128::from(n.broadcast()), order, i))
                }
            }
        }
        Self {
            concerns,
            v4: RangeTable::build(v4),
            v6: RangeTable::build(v6),
        }
    }

    /// The concern covering `addr` that is in force at `now_ms`, if any.
    pub fn active(&self, addr: IpAddr, now_ms: i64) -> Option<&Concern> {
        let i = match addr {
            IpAddr::V4(a) => self.v4.get(u32::from(a)),
            IpAddr::V6(a) => self.v6.get(u128::from(a)),
        }?;
        let c = self.concerns.get(i)?;
        if c.expires_ms > now_ms {
            return Some(c);
        }
        // The most specific one expired: a broader one may still be in force.
        self.concerns
            .iter()
            .find(|c| c.expires_ms > now_ms && c.prefix.contains(&addr))
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.concerns.is_empty()
    }
}

/// Which ends of an observed record [`Selector::process_observed`] replaced by their
/// pseudonyms. Decided before pseudonymisation, where the side of each end is known: a
/// pseudonym is no address to look up in country data afterwards, since it may fall in any
/// country's prefix (CI-4, DESIGN invariant 2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Pseudonymised {
    /// The source address is a pseudonym.
    pub src: bool,
    /// The destination address is a pseudonym.
    pub dst: bool,
}

impl Pseudonymised {
    /// Whether the end `end` is a pseudonym.
    pub fn end(self, end: End) -> bool {
        match end {
            End::Src => self.src,
            End::Dst => self.dst,
        }
    }
}

/// What the detectors may see of a batch: every kept record, pseudonymised, and beside
/// each one (same index) which of its ends are pseudonyms. Caller-owned and reused:
/// [`Observed::clear`] keeps the capacity, so filling it allocates nothing per record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Kept records, in input order.
    pub records: Vec<FlowRecord>,
    /// For `records[i]`, which ends are pseudonyms.
    pub pseudonymised: Vec<Pseudonymised>,
}

impl Observed {
    /// Empties both vectors, keeping their capacity.
    pub fn clear(&mut self) {
        self.records.clear();
        self.pseudonymised.clear();
    }

    /// Number of records held.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Each record with its pseudonym flags.
    pub fn iter(&self) -> impl Iterator<Item = (&FlowRecord, Pseudonymised)> {
        self.records.iter().zip(self.pseudonymised.iter().copied())
    }
}

/// Per-server aggregate key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct AggKey {
    server: IpAddr,
    port: u16,
    protocol: u8,
    bin_start_ms: i64,
}

#[derive(Debug, Default)]
struct AggValue {
    flows: u64,
    packets_to_server: u64,
    bytes_to_server: u64,
    packets_from_server: u64,
    bytes_from_server: u64,
    clients: CardinalityEstimator<IpAddr>,
}

/// Traffic of one foreign server on one port/protocol in one time bin (broad first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAggregate {
    /// The server (foreign end; for transit flows, the destination), in clear.
    pub server: IpAddr,
    /// The server's port.
    pub port: u16,
    /// IP protocol.
    pub protocol: u8,
    /// Start of the time bin, UTC ms.
    pub bin_start_ms: i64,
    /// Flows.
    pub flows: u64,
    /// Packets towards the server (renormalised by the sampling rate).
    pub packets_to_server: u64,
    /// Bytes towards the server (renormalised).
    pub bytes_to_server: u64,
    /// Packets from the server (renormalised).
    pub packets_from_server: u64,
    /// Bytes from the server (renormalised).
    pub bytes_from_server: u64,
    /// Distinct clients (pseudonymised domestic ends; for transit, the clear source),
    /// estimated: exact for small sets, HyperLogLog beyond.
    pub distinct_clients: u64,
    /// Whether these are transit (foreign↔foreign) flows.
    pub transit: bool,
}

/// What to do with one record, decided in the first pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Drop,
    Aggregate,
    KeepFlow,
}

/// The policy compiled for lookups, the pseudonymiser, and the aggregates.
#[derive(Debug)]
pub struct Selector {
    policy: SelectionPolicy,
    subscribers_v4: RangeTable<u32, ()>,
    subscribers_v6: RangeTable<u128, ()>,
    pseudonymiser: Pseudonymiser,
    aggregates: FxHashMap<(AggKey, bool), AggValue>,
    counts: SelectionCounts,
    // Reused between batches.
    actions: Vec<(Action, Class, bool, bool)>,
    addrs: Vec<IpAddr>,
}

impl Selector {
    /// A selector for `policy`, pseudonymising with `key`.
    pub fn new(policy: SelectionPolicy, key: &CryptoPanKey) -> Result<Self, PolicyError> {
        policy.validate()?;
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (i, net) in policy.subscriber_prefixes.iter().enumerate() {
            match net {
                IpNet::V4(n) => v4.push((
                    u32::from(n.network()),
                    u32::from(n.broadcast()),
                    i as u32,
                    (),
                )),
                IpNet::V6(n) => v6.push((
                    u128::from(n.network()),
                    u128::from(n.broadcast()),
                    i as u32,
                    (),
                )),
            }
        }
        let counts = SelectionCounts {
            dropped_by_rule: vec![0; policy.drop_rules.len()],
            ..SelectionCounts::default()
        };
        Ok(Self {
            subscribers_v4: RangeTable::build(v4),
            subscribers_v6: RangeTable::build(v6),
            pseudonymiser: Pseudonymiser::new(key),
            aggregates: FxHashMap::default(),
            counts,
            actions: Vec::new(),
            addrs: Vec::new(),
            policy,
        })
    }

    /// The policy in force.
    pub fn policy(&self) -> &SelectionPolicy {
        &self.policy
    }

    /// Counters since the selector was made.
    pub fn counts(&self) -> &SelectionCounts {
        &self.counts
    }

    /// The pseudonymiser (for re-identification by the sensor, with an approval).
    pub fn pseudonymiser(&self) -> &Pseudonymiser {
        &self.pseudonymiser
    }

    /// Whether `addr` lies inside the carrier's subscriber prefixes (always pseudonymised).
    pub fn is_subscriber(&self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => self.subscribers_v4.get(u32::from(a)),
            IpAddr::V6(a) => self.subscribers_v6.get(u128::from(a)),
        }
        .is_some()
    }

    /// What one address is under the policy.
    pub fn side(&self, addr: IpAddr, geo: &GeoTable) -> Side {
        if self.is_subscriber(addr) {
            return Side::Subscriber;
        }
        match geo.country(addr) {
            Some(c) if c == self.policy.home_country => Side::Domestic,
            Some(_) => Side::Foreign,
            None => Side::Unknown,
        }
    }

    /// Whether an end counts as foreign (kept in clear) under the policy.
    fn is_foreign(&self, side: Side) -> bool {
        match side {
            Side::Foreign => true,
            Side::Unknown => self.policy.unknown_country == UnknownCountry::Foreign,
            Side::Subscriber | Side::Domestic => false,
        }
    }

    /// The class of a flow.
    pub fn classify(&self, record: &FlowRecord, geo: &GeoTable) -> Class {
        let src = self.side(record.src_addr, geo);
        let dst = self.side(record.dst_addr, geo);
        if self.policy.unknown_country == UnknownCountry::Drop
            && (src == Side::Unknown || dst == Side::Unknown)
        {
            return Class::UnknownCountry;
        }
        match (self.is_foreign(src), self.is_foreign(dst)) {
            (false, false) => Class::DomesticDomestic,
            (true, true) => Class::Transit,
            (false, true) => Class::DomesticForeign { foreign: End::Dst },
            (true, false) => Class::DomesticForeign { foreign: End::Src },
        }
    }

    /// Applies the policy to `batch` in place and returns this batch's counters.
    ///
    /// Afterwards the batch holds only per-flow records of servers on `concerns` (active
    /// at `now_ms`), with every non-foreign end pseudonymised; other kept flows are in
    /// the aggregates ([`Selector::take_aggregates`]); everything else was dropped and
    /// counted.
    pub fn process(
        &mut self,
        batch: &mut FlowBatch,
        geo: &GeoTable,
        concerns: &ConcernList,
        now_ms: i64,
    ) -> SelectionCounts {
        self.process_observed(batch, geo, concerns, now_ms, None)
    }

    /// As [`Selector::process`], and also appends to `observed` every kept record —
    /// aggregated or kept per flow — already pseudonymised, in input order: what the
    /// sensor's detectors see (issue 7 part 3). Dropped flows are never appended, so
    /// the detectors see nothing the selection did not allow (CI-2, CI-4). Beside each
    /// record goes which of its ends were pseudonymised ([`Pseudonymised`]), so that the
    /// detection never mistakes a subscriber's pseudonym for a foreign server (CI-4).
    pub fn process_observed(
        &mut self,
        batch: &mut FlowBatch,
        geo: &GeoTable,
        concerns: &ConcernList,
        now_ms: i64,
        mut observed: Option<&mut Observed>,
    ) -> SelectionCounts {
        let mut counts = SelectionCounts {
            dropped_by_rule: vec![0; self.policy.drop_rules.len()],
            ..SelectionCounts::default()
        };
        self.actions.clear();
        self.addrs.clear();
        // Pass 1: classify, decide, collect the addresses to pseudonymise.
        for r in &batch.records {
            counts.seen += 1;
            if let Some(i) = self
                .policy
                .drop_rules
                .iter()
                .position(|rule| rule.matches(r))
            {
                counts.drop(DropReason::PolicyRule);
                if let Some(c) = counts.dropped_by_rule.get_mut(i) {
                    *c += 1;
                }
                self.actions
                    .push((Action::Drop, Class::Transit, false, false));
                continue;
            }
            let class = self.classify(r, geo);
            let (action, pseudo_src, pseudo_dst) = match class {
                Class::DomesticDomestic => {
                    counts.drop(DropReason::DomesticDomestic);
                    (Action::Drop, false, false)
                }
                Class::UnknownCountry => {
                    counts.drop(DropReason::UnknownCountry);
                    (Action::Drop, false, false)
                }
                Class::DomesticForeign { foreign } => {
                    let server = match foreign {
                        End::Src => r.src_addr,
                        End::Dst => r.dst_addr,
                    };
                    let action =
                        if !concerns.is_empty() && concerns.active(server, now_ms).is_some() {
                            Action::KeepFlow
                        } else {
                            Action::Aggregate
                        };
                    (action, foreign == End::Dst, foreign == End::Src)
                }
                Class::Transit => {
                    let concerned = !concerns.is_empty()
                        && (concerns.active(r.dst_addr, now_ms).is_some()
                            || concerns.active(r.src_addr, now_ms).is_some());
                    let action = if concerned {
                        Action::KeepFlow
                    } else {
                        Action::Aggregate
                    };
                    (action, false, false)
                }
            };
            if pseudo_src {
                self.addrs.push(r.src_addr);
            }
            if pseudo_dst {
                self.addrs.push(r.dst_addr);
            }
            self.actions.push((action, class, pseudo_src, pseudo_dst));
        }
        // Pass 2: all pseudonyms of the batch in one go (blocks of many addresses per
        // AES call).
        self.pseudonymiser.pseudonymise_in_place(&mut self.addrs);
        counts.pseudonymised = self.addrs.len() as u64;
        // Pass 3: substitute, aggregate or keep, compact.
        let bin_ms = i64::from(self.policy.aggregate_bin_seconds) * 1000;
        let mut next = 0usize;
        let mut kept = 0usize;
        for i in 0..batch.records.len() {
            let (Some(&(action, class, ps, pd)), Some(mut r)) =
                (self.actions.get(i), batch.records.get(i).copied())
            else {
                break;
            };
            // Pseudonyms are in the order pass 1 pushed the addresses.
            if ps {
                r.src_addr = self.addrs.get(next).copied().unwrap_or(r.src_addr);
                next += 1;
            }
            if pd {
                r.dst_addr = self.addrs.get(next).copied().unwrap_or(r.dst_addr);
                next += 1;
            }
            if action != Action::Drop
                && let Some(out) = observed.as_deref_mut()
            {
                out.records.push(r);
                out.pseudonymised.push(Pseudonymised { src: ps, dst: pd });
            }
            match action {
                Action::Drop => {}
                Action::KeepFlow => {
                    counts.kept_per_flow += 1;
                    if let Some(slot) = batch.records.get_mut(kept) {
                        *slot = r;
                    }
                    kept += 1;
                }
                Action::Aggregate => {
                    if self.aggregate(&r, class, bin_ms) {
                        counts.aggregated += 1;
                    } else {
                        counts.drop(DropReason::AggregateLimit);
                    }
                }
            }
        }
        batch.records.truncate(kept);
        // (The reused buffer holds pseudonyms only: they replaced the clear addresses.)
        self.addrs.clear();
        self.counts.merge(&counts);
        counts
    }

    /// Folds one kept, pseudonymised record into its aggregate; false when the table is
    /// full.
    fn aggregate(&mut self, r: &FlowRecord, class: Class, bin_ms: i64) -> bool {
        let (server_end, transit) = match class {
            Class::DomesticForeign { foreign } => (foreign, false),
            _ => (End::Dst, true),
        };
        let (server, port, client) = match server_end {
            End::Dst => (r.dst_addr, r.dst_port, r.src_addr),
            End::Src => (r.src_addr, r.src_port, r.dst_addr),
        };
        let f = r.sampling_factor();
        let (to_p, to_b, from_p, from_b) = match server_end {
            End::Dst => (r.packets, r.bytes, r.rev_packets, r.rev_bytes),
            End::Src => (r.rev_packets, r.rev_bytes, r.packets, r.bytes),
        };
        let ts = if r.start_ms != 0 {
            r.start_ms
        } else {
            r.end_ms
        };
        let key = AggKey {
            server,
            port,
            protocol: r.protocol,
            bin_start_ms: ts.div_euclid(bin_ms).saturating_mul(bin_ms),
        };
        let full = self.aggregates.len() >= self.policy.max_aggregates;
        let v = match self.aggregates.get_mut(&(key, transit)) {
            Some(v) => v,
            None if full => return false,
            None => self.aggregates.entry((key, transit)).or_default(),
        };
        v.flows += 1;
        v.packets_to_server = v.packets_to_server.saturating_add(to_p.saturating_mul(f));
        v.bytes_to_server = v.bytes_to_server.saturating_add(to_b.saturating_mul(f));
        v.packets_from_server = v
            .packets_from_server
            .saturating_add(from_p.saturating_mul(f));
        v.bytes_from_server = v.bytes_from_server.saturating_add(from_b.saturating_mul(f));
        v.clients.insert(&client);
        true
    }

    /// Number of aggregate keys held.
    pub fn aggregate_count(&self) -> usize {
        self.aggregates.len()
    }

    /// Takes the aggregates accumulated so far (sorted by bin, server, port, protocol),
    /// leaving the table empty.
    pub fn take_aggregates(&mut self) -> Vec<ServerAggregate> {
        let mut out: Vec<ServerAggregate> = self
            .aggregates
            .drain()
            .map(|((k, transit), v)| ServerAggregate {
                server: k.server,
                port: k.port,
                protocol: k.protocol,
                bin_start_ms: k.bin_start_ms,
                flows: v.flows,
                packets_to_server: v.packets_to_server,
                bytes_to_server: v.bytes_to_server,
                packets_from_server: v.packets_from_server,
                bytes_from_server: v.bytes_from_server,
                distinct_clients: v.clients.estimate() as u64,
                transit,
            })
            .collect();
        out.sort_unstable_by(|a, b| {
            (a.bin_start_ms, a.server, a.port, a.protocol, a.transit).cmp(&(
                b.bin_start_ms,
                b.server,
                b.port,
                b.protocol,
                b.transit,
            ))
        });
        out
    }
}

/// Builds a [`GeoTable`] from CIDR lists already in memory (`(country, text)` pairs);
/// a convenience for tests and small deployments.
pub fn geo_from_cidr_lists<'a>(
    lists: impl IntoIterator<Item = (CountryCode, &'a str)>,
) -> GeoTable {
    let mut b = GeoTableBuilder::new();
    for (country, text) in lists {
        // In-memory input: reading cannot fail.
        let _ = b.add_cidr_list(text.as_bytes(), country);
    }
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn selector(text: &str) -> Selector {
        Selector::new(
            SelectionPolicy::from_toml(text).unwrap(),
            &CryptoPanKey::from_bytes([7; 32]),
        )
        .unwrap()
    }

    fn geo() -> GeoTable {
        geo_from_cidr_lists([
            ("JP".parse().unwrap(), "133.0.0.0/8\n2001:200::/32\n"),
            ("US".parse().unwrap(), "8.0.0.0/9\n"),
            ("CN".parse().unwrap(), "1.0.1.0/24\n"),
        ])
    }

    fn rec(src: &str, dst: &str) -> FlowRecord {
        FlowRecord {
            src_addr: ip(src),
            dst_addr: ip(dst),
            src_port: 50000,
            dst_port: 443,
            protocol: 6,
            packets: 3,
            bytes: 300,
            rev_packets: 2,
            rev_bytes: 2000,
            start_ms: 1_700_000_123_456,
            ..FlowRecord::default()
        }
    }

    fn batch_of(records: Vec<FlowRecord>) -> FlowBatch {
        FlowBatch {
            records,
            ..FlowBatch::default()
        }
    }

    #[test]
    fn selector_moves_between_threads() {
        fn is_send<T: Send>() {}
        is_send::<Selector>();
    }

    #[test]
    fn classes() {
        let s = selector("subscriber_prefixes = [\"203.0.113.0/24\"]");
        let g = geo();
        assert_eq!(
            s.classify(&rec("203.0.113.5", "133.1.1.1"), &g),
            Class::DomesticDomestic
        );
        assert_eq!(
            s.classify(&rec("203.0.113.5", "10.0.0.1"), &g),
            Class::DomesticDomestic
        );
        assert_eq!(
            s.classify(&rec("203.0.113.5", "8.8.8.8"), &g),
            Class::DomesticForeign { foreign: End::Dst }
        );
        assert_eq!(
            s.classify(&rec("8.8.8.8", "133.1.1.1"), &g),
            Class::DomesticForeign { foreign: End::Src }
        );
        assert_eq!(s.classify(&rec("8.8.8.8", "1.0.1.1"), &g), Class::Transit);
        let d = selector("unknown_country = \"drop\"");
        assert_eq!(
            d.classify(&rec("10.0.0.1", "8.8.8.8"), &g),
            Class::UnknownCountry
        );
        let f = selector("unknown_country = \"foreign\"");
        assert_eq!(f.classify(&rec("10.0.0.1", "8.8.8.8"), &g), Class::Transit);
    }

    #[test]
    fn process_drops_pseudonymises_aggregates_and_keeps_concerns() {
        let mut s = selector(
            "subscriber_prefixes = [\"203.0.113.0/24\"]\n\
             [[drop_rules]]\nname = \"dns\"\nprotocol = 17\nports = [53]\n",
        );
        let g = geo();
        let mut dns = rec("203.0.113.5", "8.8.8.8");
        dns.protocol = 17;
        dns.dst_port = 53;
        let mut batch = batch_of(vec![
            rec("203.0.113.5", "133.1.1.1"), // domestic-domestic
            rec("203.0.113.5", "8.8.8.8"),   // aggregated
            rec("203.0.113.6", "8.8.8.8"),   // aggregated, second client
            rec("203.0.113.7", "8.8.4.4"),   // concern: per flow
            dns,                             // rule
        ]);
        let concerns = ConcernList::new(vec![Concern {
            prefix: "8.8.4.0/24".parse().unwrap(),
            reason: "test".into(),
            expires_ms: 2_000_000_000_000,
        }]);
        let c = s.process(&mut batch, &g, &concerns, 1_700_000_000_000);
        assert_eq!(c.seen, 5);
        assert_eq!(c.dropped(DropReason::DomesticDomestic), 1);
        assert_eq!(c.dropped(DropReason::PolicyRule), 1);
        assert_eq!(c.dropped_by_rule, vec![1]);
        assert_eq!(c.aggregated, 2);
        assert_eq!(c.kept_per_flow, 1);
        assert_eq!(batch.records.len(), 1);
        let kept = batch.records[0];
        assert_eq!(kept.dst_addr, ip("8.8.4.4"));
        let want = s.pseudonymiser().crypto_pan().anonymise(ip("203.0.113.7"));
        assert_eq!(kept.src_addr, want);
        let aggs = s.take_aggregates();
        assert_eq!(aggs.len(), 1);
        let a = &aggs[0];
        assert_eq!(
            (a.server, a.port, a.protocol, a.flows),
            (ip("8.8.8.8"), 443, 6, 2)
        );
        assert_eq!((a.packets_to_server, a.bytes_to_server), (6, 600));
        assert_eq!((a.packets_from_server, a.bytes_from_server), (4, 4000));
        assert_eq!(a.distinct_clients, 2);
        assert_eq!(a.bin_start_ms, 1_700_000_100_000);
        // Expired concern: aggregated instead.
        let mut batch = batch_of(vec![rec("203.0.113.7", "8.8.4.4")]);
        s.process(&mut batch, &g, &concerns, 2_000_000_000_000);
        assert!(batch.records.is_empty());
        assert_eq!(s.aggregate_count(), 1);
    }

    #[test]
    fn observed_holds_every_kept_record_pseudonymised_and_no_dropped_one() {
        let mut s = selector("subscriber_prefixes = [\"203.0.113.0/24\"]");
        let g = geo();
        let mut batch = batch_of(vec![
            rec("203.0.113.5", "133.1.1.1"), // domestic-domestic: dropped
            rec("203.0.113.5", "8.8.8.8"),   // aggregated
            rec("203.0.113.7", "8.8.4.4"),   // concern: per flow
        ]);
        let concerns = ConcernList::new(vec![Concern {
            prefix: "8.8.4.0/24".parse().unwrap(),
            reason: "test".into(),
            expires_ms: i64::MAX,
        }]);
        let mut observed = Observed::default();
        s.process_observed(&mut batch, &g, &concerns, 0, Some(&mut observed));
        let cp = s.pseudonymiser().crypto_pan();
        let got: Vec<(IpAddr, IpAddr)> = observed
            .records
            .iter()
            .map(|r| (r.src_addr, r.dst_addr))
            .collect();
        // The side of each end travels with the record: the subscriber end is flagged.
        let flags = Pseudonymised {
            src: true,
            dst: false,
        };
        assert_eq!(observed.pseudonymised, vec![flags, flags]);
        assert_eq!(
            got,
            vec![
                (cp.anonymise(ip("203.0.113.5")), ip("8.8.8.8")),
                (cp.anonymise(ip("203.0.113.7")), ip("8.8.4.4")),
            ]
        );
        assert_eq!(batch.records.len(), 1);
    }

    #[test]
    fn policy_refuses_unknown_fields_and_empty_rules() {
        assert!(matches!(
            SelectionPolicy::from_toml("home_contry = \"JP\""),
            Err(PolicyError::Toml(_))
        ));
        assert!(matches!(
            SelectionPolicy::from_toml("[[drop_rules]]\nname = \"all\"\n"),
            Err(PolicyError::Invalid(_))
        ));
        assert!(SelectionPolicy::from_toml("home_country = \"J\"").is_err());
        assert_eq!(
            SelectionPolicy::from_toml("").unwrap(),
            SelectionPolicy::default()
        );
    }

    #[test]
    fn aggregate_bound_is_counted() {
        let mut s = selector("max_aggregates = 1");
        let g = geo();
        let mut batch = batch_of(vec![
            rec("133.1.1.1", "8.8.8.8"),
            rec("133.1.1.1", "8.8.8.9"),
        ]);
        let c = s.process(&mut batch, &g, &ConcernList::default(), 0);
        assert_eq!(
            (c.aggregated, c.dropped(DropReason::AggregateLimit)),
            (1, 1)
        );
    }
}
