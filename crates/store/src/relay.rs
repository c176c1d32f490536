//! The anonymous relay's and the sealed source's rows (issue 8 item 4; PP-12, DESIGN
//! invariant 6): each organisation's registered profile (what the relay scrubs), each
//! report's opaque source handle, submitted STIX bundle and relay state, and the requests
//! to reveal a sealed source with their decisions.
//!
//! **Nothing here decides** who sees a source or whether a reveal is allowed: `mamori-share`
//! does, and records the approval and the reveal in the ledger in the same transaction.
//! The handle is 128 random bits, so no reader can derive it from an organisation id.

use crate::Result;
use crate::backend::{Tx, on_backend};
use crate::error::StoreError;
use mamori_core::time::Timestamp;
use mamori_core::{OrgId, UserId};

/// One entry of an organisation's registered profile.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct OrgIdentifier {
    /// The organisation.
    pub org: OrgId,
    /// `alias`, `domain`, `contact` or `range`.
    pub kind: String,
    /// The value as registered.
    pub value: String,
}

/// A report's relay row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRelay {
    /// The report.
    pub report: i64,
    /// The sealed source's opaque handle (`src-` and 32 hex digits).
    pub handle: String,
    /// The STIX bundle the report was submitted as, if it was one.
    pub bundle: Option<String>,
    /// `pending`, `written`, `withheld` or `not_relayed`.
    pub state: String,
    /// Why it was withheld or not relayed.
    pub reason: Option<String>,
    /// How many versions of the relayed copy were written.
    pub versions: i64,
}

/// A request to reveal a sealed source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevealRequest {
    /// Its id.
    pub id: i64,
    /// The report.
    pub report: i64,
    /// The analyst who asked.
    pub requester: UserId,
    /// Why.
    pub reason: String,
    /// When.
    pub created_at: Timestamp,
    /// `approved` or `refused`, once decided.
    pub decision: Option<String>,
    /// Who decided.
    pub decided_by: Option<UserId>,
    /// The decider's reasoning.
    pub decision_reason: Option<String>,
    /// When it was decided.
    pub decided_at: Option<Timestamp>,
}

type RelayRow = (i64, String, Option<String>, String, Option<String>, i64);
type RequestRow = (
    i64,
    i64,
    i64,
    String,
    Timestamp,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<Timestamp>,
);

fn request_from(r: RequestRow) -> RevealRequest {
    let (
        id,
        report,
        requester,
        reason,
        created_at,
        decision,
        decided_by,
        decision_reason,
        decided_at,
    ) = r;
    RevealRequest {
        id,
        report,
        requester: UserId(requester),
        reason,
        created_at,
        decision,
        decided_by: decided_by.map(UserId),
        decision_reason,
        decided_at,
    }
}

const REQUEST_COLUMNS: &str = "id, report_id, requester, reason, created_at, decision, decided_by, decision_reason, decided_at";

fn random_handle() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Random(e.to_string()))?;
    let mut s = String::with_capacity(36);
    s.push_str("src-");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    Ok(s)
}

impl Tx {
    /// Adds entries to `org`'s registered profile; entries already there are kept once.
    pub async fn add_org_identifiers(
        &mut self,
        org: OrgId,
        entries: &[(&str, &str)],
        now: Timestamp,
    ) -> Result<()> {
        self.org(org).await?;
        for (kind, value) in entries {
            on_backend!(self, c => sqlx::query(
                "INSERT INTO org_identifiers (org_id, kind, value, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (org_id, kind, value) DO NOTHING")
                .bind(org.get())
                .bind(*kind)
                .bind(*value)
                .bind(now)
                .execute(&mut *c).await.map(drop))
            .map_err(StoreError::db("store org identifier", ""))?;
        }
        Ok(())
    }

    /// The registered profiles of `orgs` (every organisation's when empty), ordered.
    pub async fn org_identifiers(&mut self, orgs: &[OrgId]) -> Result<Vec<OrgIdentifier>> {
        let rows: Vec<(i64, String, String)> = on_backend!(self, c => {
            let mut b = sqlx::QueryBuilder::new("SELECT org_id, kind, value FROM org_identifiers");
            if !orgs.is_empty() {
                b.push(" WHERE org_id IN (");
                let mut s = b.separated(", ");
                for o in orgs {
                    s.push_bind(o.get());
                }
                b.push(")");
            }
            b.push(" ORDER BY org_id, kind, value");
            b.build_query_as().fetch_all(&mut *c).await
        })
        .map_err(StoreError::db("read org identifiers", ""))?;
        Ok(rows
            .into_iter()
            .map(|(org, kind, value)| OrgIdentifier {
                org: OrgId(org),
                kind,
                value,
            })
            .collect())
    }

    /// Creates report `report`'s relay row with a fresh random handle (state `pending`) and
    /// the STIX bundle it was submitted as; returns the row.
    pub async fn insert_report_relay(
        &mut self,
        report: i64,
        bundle: Option<&str>,
        now: Timestamp,
    ) -> Result<ReportRelay> {
        let handle = random_handle()?;
        on_backend!(self, c => sqlx::query(
            "INSERT INTO report_relays (report_id, handle, bundle, state, updated_at) VALUES ($1, $2, $3, 'pending', $4)")
            .bind(report)
            .bind(&handle)
            .bind(bundle)
            .bind(now)
            .execute(&mut *c).await.map(drop))
        .map_err(StoreError::db("store report relay", "this report already has a relay row"))?;
        Ok(ReportRelay {
            report,
            handle,
            bundle: bundle.map(str::to_owned),
            state: "pending".to_owned(),
            reason: None,
            versions: 0,
        })
    }

    /// The relay rows of `reports`.
    pub async fn report_relays(&mut self, reports: &[i64]) -> Result<Vec<ReportRelay>> {
        if reports.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<RelayRow> = on_backend!(self, c => {
            let mut b = sqlx::QueryBuilder::new(
                "SELECT report_id, handle, bundle, state, reason, versions FROM report_relays WHERE report_id IN (");
            let mut s = b.separated(", ");
            for r in reports {
                s.push_bind(*r);
            }
            b.push(") ORDER BY report_id");
            b.build_query_as().fetch_all(&mut *c).await
        })
        .map_err(StoreError::db("read report relays", ""))?;
        Ok(rows
            .into_iter()
            .map(
                |(report, handle, bundle, state, reason, versions)| ReportRelay {
                    report,
                    handle,
                    bundle,
                    state,
                    reason,
                    versions,
                },
            )
            .collect())
    }

    /// Records where report `report`'s relay stands; `written` counts one more version.
    pub async fn set_report_relay_state(
        &mut self,
        report: i64,
        state: &str,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<()> {
        let add: i64 = i64::from(state == "written");
        let n = on_backend!(self, c => sqlx::query(
            "UPDATE report_relays SET state = $1, reason = $2, versions = versions + $3, updated_at = $4 WHERE report_id = $5")
            .bind(state)
            .bind(reason)
            .bind(add)
            .bind(now)
            .bind(report)
            .execute(&mut *c).await.map(|r| r.rows_affected()))
        .map_err(StoreError::db("update report relay", ""))?;
        if n == 0 {
            return Err(StoreError::NotFound {
                what: "report relay",
                id: report.to_string(),
            });
        }
        Ok(())
    }

    /// How many reports' relays are in each state (`withheld` is the failure count).
    pub async fn report_relay_counts(&mut self) -> Result<Vec<(String, i64)>> {
        on_backend!(self, c => sqlx::query_as(
            "SELECT state, COUNT(*) FROM report_relays GROUP BY state ORDER BY state")
            .fetch_all(&mut *c).await)
        .map_err(StoreError::db("count report relays", ""))
    }

    /// Stores a request to reveal report `report`'s source; returns its id.
    pub async fn insert_reveal_request(
        &mut self,
        report: i64,
        requester: UserId,
        reason: &str,
        now: Timestamp,
    ) -> Result<i64> {
        let (id,): (i64,) = on_backend!(self, c => sqlx::query_as(
            "INSERT INTO source_reveal_requests (report_id, requester, reason, created_at) \
             VALUES ($1, $2, $3, $4) RETURNING id")
            .bind(report)
            .bind(requester.get())
            .bind(reason)
            .bind(now)
            .fetch_one(&mut *c).await)
        .map_err(StoreError::db("store reveal request", ""))?;
        Ok(id)
    }

    /// One reveal request.
    pub async fn reveal_request(&mut self, id: i64) -> Result<Option<RevealRequest>> {
        let sql = format!("SELECT {REQUEST_COLUMNS} FROM source_reveal_requests WHERE id = $1");
        let row: Option<RequestRow> =
            on_backend!(self, c => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(id)
            .fetch_optional(&mut *c).await)
            .map_err(StoreError::db("read reveal request", ""))?;
        Ok(row.map(request_from))
    }

    /// The reveal requests on report `report`, oldest first.
    pub async fn reveal_requests(&mut self, report: i64) -> Result<Vec<RevealRequest>> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM source_reveal_requests WHERE report_id = $1 ORDER BY id"
        );
        let rows: Vec<RequestRow> =
            on_backend!(self, c => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(report)
            .fetch_all(&mut *c).await)
            .map_err(StoreError::db("read reveal requests", ""))?;
        Ok(rows.into_iter().map(request_from).collect())
    }

    /// Records the decision on an undecided request; [`StoreError::Conflict`] if it was
    /// decided already.
    pub async fn decide_reveal_request(
        &mut self,
        id: i64,
        decision: &str,
        by: UserId,
        reason: &str,
        now: Timestamp,
    ) -> Result<()> {
        let n = on_backend!(self, c => sqlx::query(
            "UPDATE source_reveal_requests SET decision = $1, decided_by = $2, decision_reason = $3, decided_at = $4 \
             WHERE id = $5 AND decision IS NULL")
            .bind(decision)
            .bind(by.get())
            .bind(reason)
            .bind(now)
            .bind(id)
            .execute(&mut *c).await.map(|r| r.rows_affected()))
        .map_err(StoreError::db("decide reveal request", ""))?;
        if n == 0 {
            return Err(StoreError::Conflict(format!(
                "reveal request {id} does not exist or was decided already"
            )));
        }
        Ok(())
    }
}
