//! Bad input and deliberate drops as typed, counted events (STYLE principle 4).
//!
//! A decoder never panics and never logs: it turns what it cannot use into an
//! [`Anomaly`], counts it in the caller's [`crate::FlowBatch`], and moves on to the next
//! record, set or line. The counter names ([`AnomalyKind::name`]) are the metric label
//! values the collector publishes (`mamori_flow_anomalies_total{kind="…"}`).

/// One thing a decoder could not turn into a flow record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Anomaly {
    /// The input ended inside a structure.
    #[error("truncated {what}")]
    Truncated {
        /// The structure that was cut short.
        what: &'static str,
    },
    /// A length field is impossible (too short for its own header, or past the end).
    #[error("bad length in {what}")]
    BadLength {
        /// The structure whose length field is wrong.
        what: &'static str,
    },
    /// The export datagram carries a version this decoder does not read.
    #[error("unsupported export version {version}")]
    UnsupportedVersion {
        /// The version number found.
        version: u16,
    },
    /// A data set refers to a template that is not (or no longer) cached; the set was
    /// buffered for replay if the bound allowed, otherwise dropped.
    #[error("data set for unknown template {template_id}")]
    UnknownTemplate {
        /// The template id the data set named.
        template_id: u16,
    },
    /// Data buffered while waiting for its template was dropped (bound reached or expired).
    #[error("buffered data set dropped: {reason}")]
    PendingDropped {
        /// Why.
        reason: &'static str,
    },
    /// A template was refused (too many fields, zero-length records, bad field length).
    #[error("template {template_id} rejected: {reason}")]
    TemplateRejected {
        /// The template id.
        template_id: u16,
        /// Why.
        reason: &'static str,
    },
    /// A template could not be cached because its exporter already has the maximum.
    #[error("template limit reached for an exporter")]
    TemplateLimit,
    /// A text line lacks a field or holds a value that does not parse.
    #[error("bad field {field}")]
    BadField {
        /// The field (column) name.
        field: &'static str,
    },
    /// A text line is not a flow (`#fields` header missing, malformed JSON, wrong field count).
    #[error("malformed line: {what}")]
    MalformedLine {
        /// What was wrong.
        what: &'static str,
    },
    /// A deliberate drop: the input describes something that is not an IP flow
    /// (Argus `man` records, ARP, LLC).
    #[error("not an IP flow: {what}")]
    NotIpFlow {
        /// What it was.
        what: &'static str,
    },
    /// An sFlow counter sample: interface counters, not flows (counted, not decoded).
    #[error("sflow counter sample")]
    CounterSample,
    /// The flow meter holds its maximum of flows: a packet of a new flow was dropped.
    #[error("flow table full")]
    FlowTableFull,
}

/// The counter an [`Anomaly`] increments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(usize)]
pub enum AnomalyKind {
    /// Truncated structures and impossible lengths.
    Malformed = 0,
    /// Export versions this decoder does not read.
    UnsupportedVersion,
    /// Data sets whose template is not cached.
    UnknownTemplate,
    /// Buffered data sets dropped before their template came.
    PendingDropped,
    /// Templates refused by the DoS bounds or as nonsensical.
    TemplateRejected,
    /// Templates refused because the exporter holds the maximum.
    TemplateLimit,
    /// Text lines with a bad or missing field.
    BadField,
    /// Text lines that are not flow lines at all.
    MalformedLine,
    /// Deliberate drops of non-IP records.
    NotIpFlow,
    /// sFlow counter samples (counted, not decoded).
    CounterSample,
    /// Packets dropped because the flow meter was full.
    FlowTableFull,
}

impl AnomalyKind {
    /// Every kind, in counter order.
    pub const ALL: [AnomalyKind; 11] = [
        AnomalyKind::Malformed,
        AnomalyKind::UnsupportedVersion,
        AnomalyKind::UnknownTemplate,
        AnomalyKind::PendingDropped,
        AnomalyKind::TemplateRejected,
        AnomalyKind::TemplateLimit,
        AnomalyKind::BadField,
        AnomalyKind::MalformedLine,
        AnomalyKind::NotIpFlow,
        AnomalyKind::CounterSample,
        AnomalyKind::FlowTableFull,
    ];

    /// The metric label value.
    pub fn name(self) -> &'static str {
        match self {
            AnomalyKind::Malformed => "malformed",
            AnomalyKind::UnsupportedVersion => "unsupported_version",
            AnomalyKind::UnknownTemplate => "unknown_template",
            AnomalyKind::PendingDropped => "pending_dropped",
            AnomalyKind::TemplateRejected => "template_rejected",
            AnomalyKind::TemplateLimit => "template_limit",
            AnomalyKind::BadField => "bad_field",
            AnomalyKind::MalformedLine => "malformed_line",
            AnomalyKind::NotIpFlow => "not_ip_flow",
            AnomalyKind::CounterSample => "sflow_counter_sample",
            AnomalyKind::FlowTableFull => "flow_table_full",
        }
    }
}

impl Anomaly {
    /// The counter this anomaly increments.
    pub fn kind(&self) -> AnomalyKind {
        match self {
            Anomaly::Truncated { .. } | Anomaly::BadLength { .. } => AnomalyKind::Malformed,
            Anomaly::UnsupportedVersion { .. } => AnomalyKind::UnsupportedVersion,
            Anomaly::UnknownTemplate { .. } => AnomalyKind::UnknownTemplate,
            Anomaly::PendingDropped { .. } => AnomalyKind::PendingDropped,
            Anomaly::TemplateRejected { .. } => AnomalyKind::TemplateRejected,
            Anomaly::TemplateLimit => AnomalyKind::TemplateLimit,
            Anomaly::BadField { .. } => AnomalyKind::BadField,
            Anomaly::MalformedLine { .. } => AnomalyKind::MalformedLine,
            Anomaly::NotIpFlow { .. } => AnomalyKind::NotIpFlow,
            Anomaly::CounterSample => AnomalyKind::CounterSample,
            Anomaly::FlowTableFull => AnomalyKind::FlowTableFull,
        }
    }
}

/// Anomaly counters by kind, plus the last anomaly seen (for a diagnostic message).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AnomalyCounts {
    counts: [u64; AnomalyKind::ALL.len()],
    last: Option<Anomaly>,
}

impl AnomalyCounts {
    /// Counts one anomaly.
    pub fn add(&mut self, anomaly: Anomaly) {
        if let Some(c) = self.counts.get_mut(anomaly.kind() as usize) {
            *c = c.saturating_add(1);
        }
        self.last = Some(anomaly);
    }

    /// How many anomalies of `kind` were counted.
    pub fn get(&self, kind: AnomalyKind) -> u64 {
        self.counts.get(kind as usize).copied().unwrap_or(0)
    }

    /// All anomalies counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().fold(0u64, |a, c| a.saturating_add(*c))
    }

    /// The most recent anomaly, with its context.
    pub fn last(&self) -> Option<Anomaly> {
        self.last
    }

    /// Non-zero counters as `(kind, count)`.
    pub fn iter(&self) -> impl Iterator<Item = (AnomalyKind, u64)> + '_ {
        AnomalyKind::ALL
            .iter()
            .map(|k| (*k, self.get(*k)))
            .filter(|(_, c)| *c > 0)
    }

    /// Adds another set of counters into this one.
    pub fn merge(&mut self, other: &AnomalyCounts) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine = mine.saturating_add(*theirs);
        }
        if other.last.is_some() {
            self.last = other.last;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_kind_and_keeps_the_last() {
        let mut c = AnomalyCounts::default();
        c.add(Anomaly::Truncated {
            what: "ipfix set header",
        });
        c.add(Anomaly::BadLength { what: "ipfix set" });
        c.add(Anomaly::UnknownTemplate { template_id: 300 });
        assert_eq!(c.get(AnomalyKind::Malformed), 2);
        assert_eq!(c.get(AnomalyKind::UnknownTemplate), 1);
        assert_eq!(c.total(), 3);
        assert_eq!(
            c.last(),
            Some(Anomaly::UnknownTemplate { template_id: 300 })
        );
        assert_eq!(
            c.last().map(|a| a.to_string()).as_deref(),
            Some("data set for unknown template 300")
        );
    }
}
