//! Client relations between organisations and the change feed of shared items (issue 8
//! item 3; PP-11).
//!
//! - **Clients** (`org_clients`): TLP:AMBER reaches "the recipient organisation *and its
//!   clients*". A provider lists its client organisations; a caller's `client_of` (the
//!   providers whose client its organisation is) travels in its [`crate::Principal`] into
//!   `mamori_core::tlp::Recipient::client_of`.
//! - **The change feed** (`share_events`): every new or updated report, every TAXII POST
//!   and every carrier's submission of findings appends an event naming *what* changed,
//!   never its content. The event stream
//!   (`GET /api/v1/events`) reads it by `seq` and renders each item through the one
//!   visibility function at read time.
//!
//! **Architecture invariant:** `seq` is handed out by the one-row `event_clock`, updated
//! first: on PostgreSQL the row lock is held to commit, so appenders commit in `seq` order
//! and a reader that has seen `seq = n` never later sees a new event below `n`. A cursor
//! over `seq` is therefore exact across several centre instances over one database. The
//! appends happen inside the store operations that change a report or add TAXII objects,
//! so no write path can forget them.

use crate::Result;
use crate::backend::{Tx, on_backend};
use crate::error::StoreError;
use mamori_core::OrgId;
use mamori_core::time::Timestamp;

/// What an event says changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareEventKind {
    /// A report was received or changed (stage, reassessment, acknowledgement, rating).
    Report(i64),
    /// A carrier's findings were received: ids `first` to `last` (one submission).
    Findings {
        /// The first finding's id.
        first: i64,
        /// The last finding's id.
        last: i64,
    },
    /// Objects were added to a TAXII collection: `date_added` from `first` to `last`.
    Objects {
        /// The collection's id.
        collection: String,
        /// The first `date_added` of the POST (µs).
        first: i64,
        /// The last `date_added` of the POST (µs).
        last: i64,
    },
}

/// One event of the change feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareEvent {
    /// Its position: strictly increasing, in commit order.
    pub seq: i64,
    /// What changed.
    pub kind: ShareEventKind,
}

type EventRow = (
    i64,
    String,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<i64>,
);

fn event_from((seq, kind, report, collection, first, last): EventRow) -> Result<ShareEvent> {
    let kind = match (kind.as_str(), report, collection, first, last) {
        ("report", Some(r), _, _, _) => ShareEventKind::Report(r),
        ("findings", None, None, Some(first), Some(last)) => {
            ShareEventKind::Findings { first, last }
        }
        ("objects", _, Some(collection), Some(first), Some(last)) => ShareEventKind::Objects {
            collection,
            first,
            last,
        },
        _ => {
            return Err(StoreError::Corrupt {
                what: "share event",
                detail: format!("event {seq} of kind {kind:?} lacks what it names"),
            });
        }
    };
    Ok(ShareEvent { seq, kind })
}

impl Tx {
    /// Records that `client` is a client of `provider` (AMBER's "and its clients").
    /// Recording it again is a [`StoreError::Conflict`]; an organisation is not its own
    /// client.
    pub async fn add_client(
        &mut self,
        provider: OrgId,
        client: OrgId,
        now: Timestamp,
    ) -> Result<()> {
        if provider == client {
            return Err(StoreError::Invalid(format!(
                "organisation {provider} cannot be its own client"
            )));
        }
        for o in [provider, client] {
            if let Err(StoreError::NotFound { .. }) = self.org(o).await {
                return Err(StoreError::Invalid(format!(
                    "organisation {o} does not exist"
                )));
            }
        }
        let conflict = format!("organisation {client} is already a client of {provider}");
        on_backend!(self, c => sqlx::query(
            "INSERT INTO org_clients (org_id, client_org_id, created_at) VALUES ($1, $2, $3)")
            .bind(provider.get())
            .bind(client.get())
            .bind(now)
            .execute(&mut *c).await.map(drop))
        .map_err(StoreError::db("record client", &conflict))
    }

    /// Ends `client`'s client relation with `provider`; [`StoreError::NotFound`] if there
    /// was none.
    pub async fn remove_client(&mut self, provider: OrgId, client: OrgId) -> Result<()> {
        let n = on_backend!(self, c => sqlx::query(
            "DELETE FROM org_clients WHERE org_id = $1 AND client_org_id = $2")
            .bind(provider.get())
            .bind(client.get())
            .execute(&mut *c).await.map(|r| r.rows_affected()))
        .map_err(StoreError::db("remove client", ""))?;
        if n == 0 {
            return Err(StoreError::NotFound {
                what: "client relation",
                id: format!("{client} of {provider}"),
            });
        }
        Ok(())
    }

    /// The organisations whose client `org` is, in id order.
    pub async fn client_of(&mut self, org: OrgId) -> Result<Vec<OrgId>> {
        let rows: Vec<i64> = on_backend!(self, c => sqlx::query_scalar(
            "SELECT org_id FROM org_clients WHERE client_org_id = $1 ORDER BY org_id")
            .bind(org.get())
            .fetch_all(&mut *c).await)
        .map_err(StoreError::db("read client relations", ""))?;
        Ok(rows.into_iter().map(OrgId).collect())
    }

    /// The clients of `provider`, in id order.
    pub async fn clients(&mut self, provider: OrgId) -> Result<Vec<OrgId>> {
        let rows: Vec<i64> = on_backend!(self, c => sqlx::query_scalar(
            "SELECT client_org_id FROM org_clients WHERE org_id = $1 ORDER BY client_org_id")
            .bind(provider.get())
            .fetch_all(&mut *c).await)
        .map_err(StoreError::db("read clients", ""))?;
        Ok(rows.into_iter().map(OrgId).collect())
    }

    /// Appends an event to the change feed; returns its `seq`. See the module docs for
    /// why the clock row is updated first.
    pub(crate) async fn append_event(&mut self, kind: &ShareEventKind) -> Result<i64> {
        let seq = self.advance_event_clock().await?;
        self.insert_event(seq, kind).await?;
        Ok(seq)
    }

    /// Takes the next `seq` (and, on PostgreSQL, the clock row's lock until commit).
    pub(crate) async fn advance_event_clock(&mut self) -> Result<i64> {
        on_backend!(self, c => sqlx::query_scalar(
            "UPDATE event_clock SET last_seq = last_seq + 1 WHERE id = 1 RETURNING last_seq")
            .fetch_one(&mut *c).await)
        .map_err(StoreError::db("advance the event clock", ""))
    }

    /// Records the event `seq` (taken by [`Tx::advance_event_clock`] in this transaction).
    pub(crate) async fn insert_event(&mut self, seq: i64, kind: &ShareEventKind) -> Result<()> {
        let (k, report, collection, first, last) = match kind {
            ShareEventKind::Report(r) => ("report", Some(*r), None, None, None),
            ShareEventKind::Findings { first, last } => {
                ("findings", None, None, Some(*first), Some(*last))
            }
            ShareEventKind::Objects {
                collection,
                first,
                last,
            } => (
                "objects",
                None,
                Some(collection.as_str()),
                Some(*first),
                Some(*last),
            ),
        };
        on_backend!(self, c => sqlx::query(
            "INSERT INTO share_events (seq, kind, report_id, collection_id, first_added, last_added) \
             VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(seq)
            .bind(k)
            .bind(report)
            .bind(collection)
            .bind(first)
            .bind(last)
            .execute(&mut *c).await.map(drop))
        .map_err(StoreError::db("store share event", ""))
    }

    /// At most `limit` events after `after`, oldest first.
    pub async fn share_events(&mut self, after: i64, limit: u32) -> Result<Vec<ShareEvent>> {
        let rows: Vec<EventRow> = on_backend!(self, c => sqlx::query_as(
            "SELECT seq, kind, report_id, collection_id, first_added, last_added FROM share_events \
             WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&mut *c).await)
        .map_err(StoreError::db("read share events", ""))?;
        rows.into_iter().map(event_from).collect()
    }

    /// The newest event's `seq` (0 when there is none): where a new subscriber starts.
    pub async fn last_event_seq(&mut self) -> Result<i64> {
        on_backend!(self, c => sqlx::query_scalar("SELECT last_seq FROM event_clock WHERE id = 1")
            .fetch_one(&mut *c).await)
        .map_err(StoreError::db("read the event clock", ""))
    }
}
