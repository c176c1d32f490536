//! The concern list as the sensor's ledger holds it, and manual changes to it (REQUIREMENTS
//! CI-2, CI-4, CI-5).
//!
//! Every change to the concern list is an entry in the sensor's ledger before it takes
//! effect: `Act::ConcernListed` (a listing, or a renewal with `renewal: true`) and
//! `Act::ConcernEnded`. The ledger is therefore the list's durable state: the runtime
//! rebuilds the list from it at start and follows it while running
//! ([`crate::runtime`]), and an operator changes the list by recording an entry
//! ([`record_manual`], `mamori sensor concern add|remove`): the running sensor applies it
//! within a second, and a sensor started later finds it. No HTTP endpoint is needed, and
//! nothing can change the list without leaving its entry first.
//!
//! **Invariant:** deep collection follows foreign servers, never subscribers. A manual
//! concern on an address inside `[selection] subscriber_prefixes` is refused here, and
//! the runtime refuses (and counts) any such entry it finds in the ledger.

use crate::record::Recorder;
use mamori_core::entry::{Act, Actor, Entry};
use mamori_core::time::Timestamp;
use mamori_flow::SelectionPolicy;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// What one ledger entry does to the concern list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<'a> {
    /// `server` listed (or renewed) until `expires_at`.
    Listed {
        /// The server.
        server: IpAddr,
        /// Why.
        reason: &'a str,
        /// Until when.
        expires_at: Timestamp,
    },
    /// `server` taken off.
    Ended {
        /// The server.
        server: IpAddr,
    },
    /// A concern entry whose server is not a plain address (not applied).
    NotAnAddress(&'a str),
    /// Not a concern entry.
    Other,
}

/// Reads one entry as a change to the concern list.
pub fn change(entry: &Entry) -> Change<'_> {
    match &entry.act {
        Act::ConcernListed {
            server,
            reason,
            expires_at,
            ..
        } => match server.parse() {
            Ok(server) => Change::Listed {
                server,
                reason,
                expires_at: *expires_at,
            },
            Err(_) => Change::NotAnAddress(server),
        },
        Act::ConcernEnded { server, .. } => match server.parse() {
            Ok(server) => Change::Ended { server },
            Err(_) => Change::NotAnAddress(server),
        },
        _ => Change::Other,
    }
}

/// A manual change to the concern list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManualConcern {
    /// Put `server` on the list (or renew it) until `until`.
    Add {
        /// The foreign server.
        server: IpAddr,
        /// Why (a case number, an advisory): required.
        reason: String,
        /// When deep collection ends unless renewed.
        until: Timestamp,
    },
    /// Take `server` off the list.
    Remove {
        /// The server.
        server: IpAddr,
        /// Why: required.
        reason: String,
    },
}

/// Why a manual change was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConcernError {
    /// The address is one of the carrier's subscribers.
    #[error(
        "{server} lies inside the subscriber prefix {prefix}: the concern list is for foreign servers, never subscribers (see [selection] subscriber_prefixes)"
    )]
    Subscriber {
        /// The address refused.
        server: IpAddr,
        /// The prefix that covers it.
        prefix: ipnet::IpNet,
    },
    /// No reason given.
    #[error("a concern change needs a reason (--reason TEXT): the ledger records why")]
    NoReason,
    /// The expiry is not in the future.
    #[error(
        "the concern would expire at {until}, which is not after now: give a positive duration"
    )]
    Expiry {
        /// The expiry asked for (RFC 3339).
        until: String,
    },
    /// Removing a server that is not listed.
    #[error("{0} is not on the concern list: nothing to remove")]
    NotListed(IpAddr),
    /// The ledger could not be read or written: nothing changed.
    #[error("sensor ledger: {0}")]
    Ledger(#[from] std::io::Error),
}

impl ConcernError {
    /// The kind that decides how the error is reported.
    pub fn kind(&self) -> mamori_core::ErrorKind {
        match self {
            ConcernError::Subscriber { .. }
            | ConcernError::NoReason
            | ConcernError::Expiry { .. } => mamori_core::ErrorKind::InvalidInput,
            ConcernError::NotListed(_) => mamori_core::ErrorKind::NotFound,
            ConcernError::Ledger(_) => mamori_core::ErrorKind::Unavailable,
        }
    }
}

/// Parses a duration as the configuration writes them (`"7d"`, `"36h"`, `"90m"`, `"30s"`).
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    crate::archive::duration_text::parse(text)
}

/// The servers the ledger lists at `now` (expiry, reason), from its concern entries.
pub fn listed(
    recorder: &dyn Recorder,
    now: Timestamp,
) -> std::io::Result<BTreeMap<IpAddr, (Timestamp, String)>> {
    let mut list = BTreeMap::new();
    recorder.read_from(0, &mut |e| match change(e) {
        Change::Listed {
            server,
            reason,
            expires_at,
        } => {
            list.insert(server, (expires_at, reason.to_owned()));
        }
        Change::Ended { server } => {
            list.remove(&server);
        }
        Change::NotAnAddress(_) | Change::Other => {}
    })?;
    list.retain(|_, (expires_at, _)| *expires_at > now);
    Ok(list)
}

/// Records a manual concern change in the sensor's ledger, after checking it against the
/// selection policy and the list the ledger holds: an addition of a server already listed
/// is recorded as a renewal; a removal of one not listed is refused. Returns the entry's
/// ledger index. The reason is recorded as `manual: REASON`.
pub fn record_manual(
    recorder: &dyn Recorder,
    policy: &SelectionPolicy,
    actor: Actor,
    now: Timestamp,
    change: ManualConcern,
) -> Result<u64, ConcernError> {
    let (server, reason) = match &change {
        ManualConcern::Add { server, reason, .. } | ManualConcern::Remove { server, reason } => {
            (*server, reason.trim())
        }
    };
    if reason.is_empty() {
        return Err(ConcernError::NoReason);
    }
    let reason = format!("manual: {reason}");
    let in_force = listed(recorder, now)?;
    let act = match change {
        ManualConcern::Add { until, .. } => {
            if let Some(prefix) = policy
                .subscriber_prefixes
                .iter()
                .find(|p| p.contains(&server))
            {
                return Err(ConcernError::Subscriber {
                    server,
                    prefix: *prefix,
                });
            }
            if until <= now {
                return Err(ConcernError::Expiry {
                    until: mamori_core::time::rfc3339(until),
                });
            }
            Act::ConcernListed {
                server: server.to_string(),
                reason,
                expires_at: mamori_core::time::truncate_ms(until),
                renewal: in_force.contains_key(&server),
            }
        }
        ManualConcern::Remove { .. } => {
            if !in_force.contains_key(&server) {
                return Err(ConcernError::NotListed(server));
            }
            Act::ConcernEnded {
                server: server.to_string(),
                reason,
            }
        }
    };
    Ok(recorder.record(&[Entry::new(now, actor, act)])?)
}
