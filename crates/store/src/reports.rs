//! Incident reports (issue 8; PP-8): the flash report, its follow-up stages, the audience
//! that decides who sees it, and idempotency keys per submitting organisation.
//!
//! Bodies are stored as the `share` room validated them (JSON); the store does not know
//! their shape. Sector, impact, marking, confidentiality and times are repeated as columns
//! for filters. **Nothing here decides visibility**: rows go back to `mamori-share`, whose
//! one function does (DESIGN invariant 5).

use crate::Result;
use crate::backend::{Tx, on_backend};
use crate::error::StoreError;
use mamori_core::time::Timestamp;
use mamori_core::tlp::Audience;
use mamori_core::{OrgId, Sector, Tlp, UserId};

/// What storing a report needs.
#[derive(Debug, Clone, Copy)]
pub struct NewReport<'a> {
    /// The reporting organisation (the audience's originator).
    pub org: OrgId,
    /// The user who submitted it.
    pub user: UserId,
    /// The reporter's marking.
    pub tlp: Tlp,
    /// Held in confidence (PP-22).
    pub confidential: bool,
    /// Its sector.
    pub sector: Sector,
    /// Its impact level's machine name.
    pub impact: &'a str,
    /// The regime that governs it.
    pub regime: &'a str,
    /// When the incident was detected.
    pub detected_at: Timestamp,
    /// The flash report, as JSON.
    pub body: &'a str,
    /// Who it is shared with and who is excluded.
    pub audience: &'a Audience,
    /// The submitter's idempotency key, if it sent one.
    pub idempotency_key: Option<&'a str>,
}

/// A stored report.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReport {
    /// Its id.
    pub id: i64,
    /// The reporting organisation.
    pub org: OrgId,
    /// The submitting user.
    pub user: UserId,
    /// Its marking.
    pub tlp: Tlp,
    /// Held in confidence.
    pub confidential: bool,
    /// Its sector.
    pub sector: Sector,
    /// Its current impact level's machine name.
    pub impact: String,
    /// The regime that governs it.
    pub regime: String,
    /// When the incident was detected.
    pub detected_at: Timestamp,
    /// When the centre received the flash report.
    pub received_at: Timestamp,
    /// The flash report, as JSON.
    pub body: String,
    /// Who it is shared with and who is excluded.
    pub audience: Audience,
    /// When the centre acknowledged it.
    pub acknowledged_at: Option<Timestamp>,
    /// When the centre gave the reporter feedback.
    pub feedback_at: Option<Timestamp>,
    /// The centre's feedback.
    pub feedback: Option<String>,
}

/// A stored follow-up stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredStage {
    /// The report.
    pub report: i64,
    /// The stage's name.
    pub stage: String,
    /// The stage, as JSON.
    pub body: String,
    /// When it was received.
    pub received_at: Timestamp,
}

/// Which reports to read, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportQuery {
    /// Only ids above this.
    pub after: i64,
    /// At most this many rows.
    pub limit: u32,
    /// Only this sector.
    pub sector: Option<Sector>,
    /// Only reports received at or after this time.
    pub since: Option<Timestamp>,
}

/// Row counts, for "nothing was stored" checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportCounts {
    /// Reports.
    pub reports: i64,
    /// Stages.
    pub stages: i64,
    /// Idempotency keys.
    pub keys: i64,
    /// Ratings.
    pub ratings: i64,
}

const COLUMNS: &str = "id, org_id, user_id, tlp, confidential, sector, impact, regime, detected_at, \
     received_at, body, audience, acknowledged_at, feedback_at, feedback";

type Row = (
    i64,
    i64,
    i64,
    String,
    i32,
    String,
    String,
    String,
    Timestamp,
    Timestamp,
    String,
    String,
    Option<Timestamp>,
    Option<Timestamp>,
    Option<String>,
);

fn report_from(r: Row) -> Result<StoredReport> {
    let (
        id,
        org,
        user,
        tlp,
        confidential,
        sector,
        impact,
        regime,
        detected_at,
        received_at,
        body,
        audience,
        acknowledged_at,
        feedback_at,
        feedback,
    ) = r;
    Ok(StoredReport {
        id,
        org: OrgId(org),
        user: UserId(user),
        tlp: crate::accounts::parse_col("report tlp", &tlp)?,
        confidential: confidential != 0,
        sector: crate::accounts::parse_col("report sector", &sector)?,
        impact,
        regime,
        detected_at,
        received_at,
        body,
        audience: serde_json::from_str(&audience).map_err(|e| StoreError::Corrupt {
            what: "report audience",
            detail: e.to_string(),
        })?,
        acknowledged_at,
        feedback_at,
        feedback,
    })
}

fn audience_json(a: &Audience) -> Result<String> {
    serde_json::to_string(a)
        .map_err(|e| StoreError::Invalid(format!("report audience cannot be stored: {e}")))
}

impl Tx {
    /// Stores a report received at `now` (and its idempotency key, if any); returns its id.
    /// A key the organisation already used is a [`StoreError::Conflict`].
    pub async fn insert_report(&mut self, r: &NewReport<'_>, now: Timestamp) -> Result<i64> {
        let audience = audience_json(r.audience)?;
        let (id,): (i64,) = on_backend!(self, c => sqlx::query_as(
            "INSERT INTO reports (org_id, user_id, tlp, confidential, sector, impact, regime, \
             detected_at, received_at, body, audience) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id")
            .bind(r.org.get())
            .bind(r.user.get())
            .bind(r.tlp.slug())
            .bind(i32::from(r.confidential))
            .bind(r.sector.slug())
            .bind(r.impact)
            .bind(r.regime)
            .bind(r.detected_at)
            .bind(now)
            .bind(r.body)
            .bind(&audience)
            .fetch_one(&mut *c).await)
        .map_err(StoreError::db("store report", ""))?;
        if let Some(key) = r.idempotency_key {
            on_backend!(self, c => sqlx::query(
                "INSERT INTO report_idempotency_keys (org_id, idem_key, report_id, created_at) \
                 VALUES ($1, $2, $3, $4)")
                .bind(r.org.get())
                .bind(key)
                .bind(id)
                .bind(now)
                .execute(&mut *c).await.map(drop))
            .map_err(StoreError::db(
                "store idempotency key",
                "this Idempotency-Key was already used by your organisation; retry with the same body, or use a new key",
            ))?;
        }
        self.append_event(&crate::events::ShareEventKind::Report(id))
            .await?;
        Ok(id)
    }

    /// The report an organisation's idempotency key names, if it used the key before.
    pub async fn report_for_key(&mut self, org: OrgId, key: &str) -> Result<Option<i64>> {
        let row: Option<(i64,)> = on_backend!(self, c => sqlx::query_as(
            "SELECT report_id FROM report_idempotency_keys WHERE org_id = $1 AND idem_key = $2")
            .bind(org.get())
            .bind(key)
            .fetch_optional(&mut *c).await)
        .map_err(StoreError::db("read idempotency key", ""))?;
        Ok(row.map(|(id,)| id))
    }

    /// The report with this id.
    pub async fn report(&mut self, id: i64) -> Result<Option<StoredReport>> {
        let sql = format!("SELECT {COLUMNS} FROM reports WHERE id = $1");
        let row: Option<Row> =
            on_backend!(self, c => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(id)
            .fetch_optional(&mut *c).await)
            .map_err(StoreError::db("read report", ""))?;
        row.map(report_from).transpose()
    }

    /// Reports matching `q`, oldest first.
    pub async fn reports(&mut self, q: &ReportQuery) -> Result<Vec<StoredReport>> {
        let rows: Vec<Row> = on_backend!(self, c => {
            let mut b = sqlx::QueryBuilder::new(format!("SELECT {COLUMNS} FROM reports WHERE id > "));
            b.push_bind(q.after);
            if let Some(s) = q.sector {
                b.push(" AND sector = ").push_bind(s.slug());
            }
            if let Some(t) = q.since {
                b.push(" AND received_at >= ").push_bind(t);
            }
            b.push(" ORDER BY id LIMIT ").push_bind(i64::from(q.limit));
            b.build_query_as().fetch_all(&mut *c).await
        })
        .map_err(StoreError::db("read reports", ""))?;
        rows.into_iter().map(report_from).collect()
    }

    /// Stores a follow-up stage received at `now`. A stage already received for the report
    /// is a [`StoreError::Conflict`]; an unknown report is [`StoreError::Invalid`].
    pub async fn insert_report_stage(
        &mut self,
        report: i64,
        stage: &str,
        body: &str,
        now: Timestamp,
    ) -> Result<()> {
        on_backend!(self, c => sqlx::query(
            "INSERT INTO report_stages (report_id, stage, body, received_at) VALUES ($1, $2, $3, $4)")
            .bind(report)
            .bind(stage)
            .bind(body)
            .bind(now)
            .execute(&mut *c).await.map(drop))
        .map_err(StoreError::db(
            "store report stage",
            &format!("stage {stage:?} of report {report} was already received"),
        ))?;
        self.append_event(&crate::events::ShareEventKind::Report(report))
            .await?;
        Ok(())
    }

    /// The stages of these reports, by report then time received.
    pub async fn report_stages(&mut self, reports: &[i64]) -> Result<Vec<StoredStage>> {
        if reports.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(i64, String, String, Timestamp)> = on_backend!(self, c => {
            let mut b = sqlx::QueryBuilder::new(
                "SELECT report_id, stage, body, received_at FROM report_stages WHERE report_id IN (");
            let mut list = b.separated(", ");
            for id in reports {
                list.push_bind(*id);
            }
            b.push(") ORDER BY report_id, received_at, stage");
            b.build_query_as().fetch_all(&mut *c).await
        })
        .map_err(StoreError::db("read report stages", ""))?;
        Ok(rows
            .into_iter()
            .map(|(report, stage, body, received_at)| StoredStage {
                report,
                stage,
                body,
                received_at,
            })
            .collect())
    }

    /// Records a reassessed impact and the audience it leads to.
    pub async fn update_report_assessment(
        &mut self,
        report: i64,
        impact: &str,
        audience: &Audience,
    ) -> Result<()> {
        let audience = audience_json(audience)?;
        let n = on_backend!(self, c => sqlx::query(
            "UPDATE reports SET impact = $1, audience = $2 WHERE id = $3")
            .bind(impact)
            .bind(&audience)
            .bind(report)
            .execute(&mut *c).await.map(|r| r.rows_affected()))
        .map_err(StoreError::db("update report", ""))?;
        if n == 0 {
            return Err(StoreError::NotFound {
                what: "report",
                id: report.to_string(),
            });
        }
        self.append_event(&crate::events::ShareEventKind::Report(report))
            .await?;
        Ok(())
    }

    /// Records the centre's acknowledgement at `at` (the first one counts) and, if given,
    /// its feedback to the reporter (PP-18).
    pub async fn acknowledge_report(
        &mut self,
        report: i64,
        at: Timestamp,
        feedback: Option<&str>,
    ) -> Result<()> {
        let n = on_backend!(self, c => sqlx::query(
            "UPDATE reports SET acknowledged_at = COALESCE(acknowledged_at, $1), \
             feedback_at = CASE WHEN $2 IS NULL THEN feedback_at ELSE $1 END, \
             feedback = COALESCE($2, feedback) WHERE id = $3")
            .bind(at)
            .bind(feedback)
            .bind(report)
            .execute(&mut *c).await.map(|r| r.rows_affected()))
        .map_err(StoreError::db("acknowledge report", ""))?;
        if n == 0 {
            return Err(StoreError::NotFound {
                what: "report",
                id: report.to_string(),
            });
        }
        self.append_event(&crate::events::ShareEventKind::Report(report))
            .await?;
        Ok(())
    }

    /// Records `org`'s rating of a report (a machine name such as `useful`), replacing the
    /// one it gave before (PP-13).
    pub async fn rate_report(
        &mut self,
        report: i64,
        org: OrgId,
        rating: &str,
        now: Timestamp,
    ) -> Result<()> {
        on_backend!(self, c => sqlx::query(
            "INSERT INTO report_ratings (report_id, org_id, rating, rated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (report_id, org_id) DO UPDATE SET rating = excluded.rating, rated_at = excluded.rated_at")
            .bind(report)
            .bind(org.get())
            .bind(rating)
            .bind(now)
            .execute(&mut *c).await.map(drop))
        .map_err(StoreError::db("store report rating", ""))?;
        self.append_event(&crate::events::ShareEventKind::Report(report))
            .await?;
        Ok(())
    }

    /// How many organisations gave each rating to each of these reports: `(report, rating,
    /// count)`, never who.
    pub async fn report_rating_counts(
        &mut self,
        reports: &[i64],
    ) -> Result<Vec<(i64, String, i64)>> {
        if reports.is_empty() {
            return Ok(Vec::new());
        }
        on_backend!(self, c => {
            let mut b = sqlx::QueryBuilder::new(
                "SELECT report_id, rating, COUNT(*) FROM report_ratings WHERE report_id IN (");
            let mut list = b.separated(", ");
            for id in reports {
                list.push_bind(*id);
            }
            b.push(") GROUP BY report_id, rating ORDER BY report_id, rating");
            b.build_query_as().fetch_all(&mut *c).await
        })
        .map_err(StoreError::db("read report ratings", ""))
    }

    /// How many reports, stages and idempotency keys are stored.
    pub async fn report_counts(&mut self) -> Result<ReportCounts> {
        let (reports, stages, keys, ratings): (i64, i64, i64, i64) =
            on_backend!(self, c => sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM reports), (SELECT COUNT(*) FROM report_stages), \
             (SELECT COUNT(*) FROM report_idempotency_keys), (SELECT COUNT(*) FROM report_ratings)")
            .fetch_one(&mut *c).await)
            .map_err(StoreError::db("count reports", ""))?;
        Ok(ReportCounts {
            reports,
            stages,
            keys,
            ratings,
        })
    }
}
