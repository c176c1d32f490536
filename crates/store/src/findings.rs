//! Findings received from carriers' sensors (issue 7), kept with their TLP marking. The
//! body is the finding as the sensor sent it (JSON); kind, address, port, protocol and
//! score are repeated as columns for queries.

use crate::Result;
use crate::backend::{Tx, on_backend};
use crate::error::StoreError;
use mamori_core::finding::Finding;
use mamori_core::time::Timestamp;
use mamori_core::{OrgId, Tlp};

/// A stored finding.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFinding {
    /// Its row id.
    pub id: i64,
    /// The organisation (carrier) that reported it.
    pub org: OrgId,
    /// Its marking.
    pub tlp: Tlp,
    /// The finding.
    pub finding: Finding,
    /// When the centre received it.
    pub received_at: Timestamp,
}

type Row = (i64, i64, String, String, Timestamp);

impl Tx {
    /// Stores `findings` reported by `org` under `tlp`.
    pub async fn insert_findings(
        &mut self,
        org: OrgId,
        tlp: Tlp,
        findings: &[Finding],
        now: Timestamp,
    ) -> Result<u64> {
        if findings.is_empty() {
            return Ok(0);
        }
        // The event clock first: its lock (PostgreSQL) is held to commit, so submissions
        // take their ids one after another and the event's id range holds this one only.
        let seq = self.advance_event_clock().await?;
        let (mut first, mut last) = (i64::MAX, i64::MIN);
        for chunk in findings.chunks(500) {
            let rows: Vec<(&Finding, String)> = chunk
                .iter()
                .map(|f| serde_json::to_string(f).map(|b| (f, b)))
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| StoreError::Invalid(format!("finding cannot be stored: {e}")))?;
            let ids: Vec<i64> = on_backend!(self, c => {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO findings (org_id, tlp, kind, address, port, proto, score, body, received_at) ");
                q.push_values(&rows, |mut b, (f, body)| {
                    b.push_bind(org.get())
                        .push_bind(tlp.slug())
                        .push_bind(f.kind.as_str())
                        .push_bind(f.address.to_string())
                        .push_bind(i32::from(f.port))
                        .push_bind(i32::from(f.proto))
                        .push_bind(f.score)
                        .push_bind(body.as_str())
                        .push_bind(now);
                });
                q.push(" RETURNING id");
                q.build_query_scalar::<i64>().fetch_all(&mut *c).await
            })
            .map_err(StoreError::db("store findings", ""))?;
            for id in ids {
                first = first.min(id);
                last = last.max(id);
            }
        }
        self.insert_event(
            seq,
            &crate::events::ShareEventKind::Findings { first, last },
        )
        .await?;
        Ok(findings.len() as u64)
    }

    /// Findings with id greater than `after`, oldest first, at most `limit`.
    pub async fn findings(&mut self, after: i64, limit: u32) -> Result<Vec<StoredFinding>> {
        let rows: Vec<Row> = on_backend!(self, c => sqlx::query_as(
            "SELECT id, org_id, tlp, body, received_at FROM findings WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&mut *c).await)
        .map_err(StoreError::db("read findings", ""))?;
        rows.into_iter()
            .map(|(id, org, tlp, body, received_at)| {
                Ok(StoredFinding {
                    id,
                    org: OrgId(org),
                    tlp: tlp.parse().map_err(|e: mamori_core::tlp::UnknownMarking| {
                        StoreError::Corrupt {
                            what: "finding tlp",
                            detail: e.to_string(),
                        }
                    })?,
                    finding: serde_json::from_str(&body).map_err(|e| StoreError::Corrupt {
                        what: "finding body",
                        detail: e.to_string(),
                    })?,
                    received_at,
                })
            })
            .collect()
    }
}
