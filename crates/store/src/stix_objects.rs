//! The TAXII 2.1 object store (issue 8 item 5; PP-9, PP-11): STIX objects kept by
//! (collection, id, version), each with the owner organisation that posted it, its TLP
//! marking and [`Audience`], and its JSON as received.
//!
//! **Architecture invariant:** visibility is never decided here. Rows carry their `tlp` and
//! `audience` out, and the server passes every row through `mamori_core::tlp::may_see`
//! before showing it (DESIGN invariant 5). This module knows nothing of STIX either: the
//! caller hands it ids, types and versions already checked by `mamori-stix`.
//!
//! **Paging is exact.** `date_added` (µs since the epoch) is strictly increasing within a
//! collection: a writer takes the collection's row lock (`last_added`) first, so on
//! PostgreSQL writers to one collection serialise and commit in `date_added` order, and
//! a reader that has seen `date_added = t` will never later see a new row below `t`. A page
//! is `date_added > cursor ORDER BY date_added LIMIT n`, read through the primary key
//! (collection, date_added), so its cost does not grow with the collection.
//!
//! Why µs rather than ms: a 10⁵-object POST gets 10⁵ distinct `date_added` values; in µs
//! that spans 0.1 s beyond the clock instead of 100 s.

use crate::Result;
use crate::backend::{Backend, Tx, on_backend};
use crate::error::StoreError;
use mamori_core::time::Timestamp;
use mamori_core::tlp::Audience;
use mamori_core::{OrgId, Role, Tlp};

/// Rows per INSERT: 11 parameters a row × 500 stays inside SQLite's 32,766.
const CHUNK: usize = 500;
/// After a POST of at least this many objects, PostgreSQL's statistics are refreshed at
/// once: planned with stale ones (a table it believes small), a page is a scan and sort of
/// the whole collection instead of a walk of the primary key (27 ms instead of 0.3 ms at
/// 10⁴ objects; docs/benchmarks/taxii.md, run 4).
const ANALYZE_AFTER: usize = 5_000;

/// A TAXII collection and who may use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxiiCollection {
    /// Its id (a UUID).
    pub id: String,
    /// Its short name (`indicators`, `reports`).
    pub alias: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Roles that may read objects.
    pub read_roles: Vec<Role>,
    /// Roles that may add objects.
    pub write_roles: Vec<Role>,
}

/// One object version to store.
#[derive(Debug, Clone)]
pub struct NewStixObject {
    /// The STIX id.
    pub id: String,
    /// The STIX type.
    pub object_type: String,
    /// `2.1`.
    pub spec_version: String,
    /// The version's instant in µs (`modified`, else `created`, else the time of adding).
    pub version: i64,
    /// The version as the object writes it.
    pub version_text: String,
    /// Its effective TLP marking.
    pub tlp: Tlp,
    /// Who it is shared with.
    pub audience: Audience,
    /// The object's JSON.
    pub body: String,
}

/// A stored object version, with what the visibility rule needs.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredStixObject {
    /// When the collection received it (µs since the epoch).
    pub date_added: i64,
    /// The STIX id.
    pub id: String,
    /// The STIX type.
    pub object_type: String,
    /// `2.1`.
    pub spec_version: String,
    /// The version's instant in µs.
    pub version: i64,
    /// The version as the object writes it.
    pub version_text: String,
    /// The organisation that posted it.
    pub owner: OrgId,
    /// Its effective TLP marking.
    pub tlp: Tlp,
    /// Who it is shared with.
    pub audience: Audience,
    /// The object's JSON; empty when the query asked for no bodies (manifests).
    pub body: String,
}

/// Which versions of each object a query returns (TAXII `match[version]`); several are OR'ed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionMatch {
    /// The newest version of each object (the TAXII default).
    Last,
    /// The oldest.
    First,
    /// Every version.
    All,
    /// The version at this instant (µs).
    At(i64),
}

/// A query of one collection's objects (TAXII 2.1 §3.4 filters).
#[derive(Debug, Clone)]
pub struct StixQuery {
    /// Only objects added after this (µs): the larger of `added_after` and the `next` cursor.
    pub added_after: Option<i64>,
    /// `match[id]`: any of these ids (empty: any).
    pub ids: Vec<String>,
    /// `match[type]`: any of these types (empty: any).
    pub types: Vec<String>,
    /// `match[version]`: empty means [`VersionMatch::Last`].
    pub versions: Vec<VersionMatch>,
    /// `match[spec_version]`: any of these (empty: any).
    pub spec_versions: Vec<String>,
    /// At most this many rows.
    pub limit: u32,
    /// Whether to read the objects' JSON (manifests and versions do not need it).
    pub with_body: bool,
}

impl StixQuery {
    /// Every object's newest version, `limit` at a time.
    pub fn new(limit: u32) -> Self {
        StixQuery {
            added_after: None,
            ids: Vec::new(),
            types: Vec::new(),
            versions: Vec::new(),
            spec_versions: Vec::new(),
            limit,
            with_body: true,
        }
    }
}

type CollectionRow = (String, String, String, String, String, String);
type ObjectRow = (
    i64,
    String,
    String,
    String,
    i64,
    String,
    i64,
    String,
    String,
    String,
);

fn roles(what: &'static str, s: &str) -> Result<Vec<Role>> {
    s.split(',')
        .filter(|r| !r.is_empty())
        .map(|r| {
            r.parse::<Role>().map_err(|e| StoreError::Corrupt {
                what,
                detail: e.to_string(),
            })
        })
        .collect()
}

fn collection_from(
    (id, alias, title, description, r, w): CollectionRow,
) -> Result<TaxiiCollection> {
    Ok(TaxiiCollection {
        id,
        alias,
        title,
        description,
        read_roles: roles("collection read_roles", &r)?,
        write_roles: roles("collection write_roles", &w)?,
    })
}

fn object_from(row: ObjectRow) -> Result<StoredStixObject> {
    let (date_added, id, object_type, spec_version, version, version_text, owner, tlp, aud, body) =
        row;
    Ok(StoredStixObject {
        date_added,
        id,
        object_type,
        spec_version,
        version,
        version_text,
        owner: OrgId(owner),
        tlp: tlp
            .parse()
            .map_err(|e: mamori_core::tlp::UnknownMarking| StoreError::Corrupt {
                what: "stix object tlp",
                detail: e.to_string(),
            })?,
        audience: serde_json::from_str(&aud).map_err(|e| StoreError::Corrupt {
            what: "stix object audience",
            detail: e.to_string(),
        })?,
        body,
    })
}

fn micros(t: Timestamp) -> i64 {
    t.timestamp_micros()
}

impl Tx {
    /// The TAXII collections, by alias.
    pub async fn taxii_collections(&mut self) -> Result<Vec<TaxiiCollection>> {
        let rows: Vec<CollectionRow> = on_backend!(self, c => sqlx::query_as(
            "SELECT id, alias, title, description, read_roles, write_roles FROM taxii_collections ORDER BY alias")
            .fetch_all(&mut *c).await)
        .map_err(StoreError::db("read taxii collections", ""))?;
        rows.into_iter().map(collection_from).collect()
    }

    /// One TAXII collection, by id or alias.
    pub async fn taxii_collection(&mut self, id_or_alias: &str) -> Result<TaxiiCollection> {
        let row: Option<CollectionRow> = on_backend!(self, c => sqlx::query_as(
            "SELECT id, alias, title, description, read_roles, write_roles FROM taxii_collections WHERE id = $1 OR alias = $1")
            .bind(id_or_alias)
            .fetch_optional(&mut *c).await)
        .map_err(StoreError::db("read taxii collection", ""))?;
        row.map(collection_from)
            .transpose()?
            .ok_or_else(|| StoreError::NotFound {
                what: "TAXII collection",
                id: id_or_alias.chars().take(80).collect(),
            })
    }

    /// Stores `objects` posted by `owner` into `collection`, in order, each with its own
    /// `date_added` (strictly increasing, at or after `now`). A version already present
    /// (same id and version) is kept as it was. Returns the `date_added` of the first and
    /// last object and how many new versions were stored.
    pub async fn insert_stix_objects(
        &mut self,
        collection: &str,
        owner: OrgId,
        objects: &[NewStixObject],
        now: Timestamp,
    ) -> Result<(i64, i64, u64)> {
        // The no-op UPDATE takes the collection's row lock (PostgreSQL) before reading the
        // high-water mark, so writers to one collection go one at a time.
        let last: Option<i64> = on_backend!(self, c => {
            let r = sqlx::query("UPDATE taxii_collections SET last_added = last_added WHERE id = $1")
                .bind(collection)
                .execute(&mut *c).await;
            match r {
                Ok(_) => sqlx::query_scalar("SELECT last_added FROM taxii_collections WHERE id = $1")
                    .bind(collection)
                    .fetch_optional(&mut *c).await,
                Err(e) => Err(e),
            }
        })
        .map_err(StoreError::db("lock taxii collection", ""))?;
        let last = last.ok_or_else(|| StoreError::NotFound {
            what: "TAXII collection",
            id: collection.chars().take(80).collect(),
        })?;
        let first = last.saturating_add(1).max(micros(now));
        let mut stored = 0u64;
        for (n, chunk) in objects.chunks(CHUNK).enumerate() {
            let base = first.saturating_add((n * CHUNK) as i64);
            let rows: Vec<(i64, &NewStixObject, String)> = chunk
                .iter()
                .enumerate()
                .map(|(i, o)| {
                    serde_json::to_string(&o.audience)
                        .map(|a| (base.saturating_add(i as i64), o, a))
                })
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| StoreError::Invalid(format!("audience cannot be stored: {e}")))?;
            let done = on_backend!(self, c => {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO stix_objects (collection_id, date_added, object_id, object_type, spec_version, \
                     version, version_text, owner_org, tlp, audience, body) ");
                q.push_values(&rows, |mut b, (added, o, aud)| {
                    b.push_bind(collection)
                        .push_bind(*added)
                        .push_bind(o.id.as_str())
                        .push_bind(o.object_type.as_str())
                        .push_bind(o.spec_version.as_str())
                        .push_bind(o.version)
                        .push_bind(o.version_text.as_str())
                        .push_bind(owner.get())
                        .push_bind(o.tlp.slug())
                        .push_bind(aud.as_str())
                        .push_bind(o.body.as_str());
                });
                q.push(" ON CONFLICT (collection_id, object_id, version) DO NOTHING");
                q.build().execute(&mut *c).await.map(|r| r.rows_affected())
            })
            .map_err(StoreError::db("store stix objects", ""))?;
            stored += done;
        }
        let end = first.saturating_add(objects.len().saturating_sub(1) as i64);
        if !objects.is_empty() {
            on_backend!(self, c => sqlx::query("UPDATE taxii_collections SET last_added = $1 WHERE id = $2")
                .bind(end)
                .bind(collection)
                .execute(&mut *c).await.map(drop))
            .map_err(StoreError::db("advance taxii collection", ""))?;
        }
        if stored > 0 {
            self.append_event(&crate::events::ShareEventKind::Objects {
                collection: collection.to_owned(),
                first,
                last: end,
            })
            .await?;
        }
        if self.backend() == Backend::Postgres && objects.len() >= ANALYZE_AFTER {
            on_backend!(self, c => sqlx::query("ANALYZE stix_objects").execute(&mut *c).await.map(drop))
                .map_err(StoreError::db("analyse stix objects", ""))?;
        }
        Ok((first, end, stored))
    }

    /// Object versions of `collection` matching `q`, oldest `date_added` first.
    pub async fn stix_objects(
        &mut self,
        collection: &str,
        q: &StixQuery,
    ) -> Result<Vec<StoredStixObject>> {
        let rows: Vec<ObjectRow> = on_backend!(self, c => {
            let mut b = sqlx::QueryBuilder::new(
                "SELECT o.date_added, o.object_id, o.object_type, o.spec_version, o.version, o.version_text, \
                 o.owner_org, o.tlp, o.audience, ");
            b.push(if q.with_body { "o.body" } else { "''" });
            b.push(" FROM stix_objects o WHERE o.collection_id = ").push_bind(collection);
            if let Some(after) = q.added_after {
                b.push(" AND o.date_added > ").push_bind(after);
            }
            if !q.ids.is_empty() {
                b.push(" AND o.object_id IN (");
                let mut s = b.separated(", ");
                for id in &q.ids {
                    s.push_bind(id.as_str());
                }
                b.push(")");
            }
            if !q.types.is_empty() {
                b.push(" AND o.object_type IN (");
                let mut s = b.separated(", ");
                for t in &q.types {
                    s.push_bind(t.as_str());
                }
                b.push(")");
            }
            if !q.spec_versions.is_empty() {
                b.push(" AND o.spec_version IN (");
                let mut s = b.separated(", ");
                for v in &q.spec_versions {
                    s.push_bind(v.as_str());
                }
                b.push(")");
            }
            let versions: &[VersionMatch] = if q.versions.is_empty() { &[VersionMatch::Last] } else { &q.versions };
            if !versions.contains(&VersionMatch::All) {
                b.push(" AND (");
                for (i, v) in versions.iter().enumerate() {
                    if i > 0 {
                        b.push(" OR ");
                    }
                    match v {
                        VersionMatch::Last => b.push(
                            "NOT EXISTS (SELECT 1 FROM stix_objects n WHERE n.collection_id = o.collection_id \
                             AND n.object_id = o.object_id AND n.version > o.version)"),
                        VersionMatch::First => b.push(
                            "NOT EXISTS (SELECT 1 FROM stix_objects n WHERE n.collection_id = o.collection_id \
                             AND n.object_id = o.object_id AND n.version < o.version)"),
                        VersionMatch::At(t) => b.push("o.version = ").push_bind(*t),
                        VersionMatch::All => b.push("TRUE"),
                    };
                }
                b.push(")");
            }
            b.push(" ORDER BY o.date_added LIMIT ").push_bind(i64::from(q.limit));
            b.build_query_as().fetch_all(&mut *c).await
        })
        .map_err(StoreError::db("read stix objects", ""))?;
        rows.into_iter().map(object_from).collect()
    }

    /// Deletes every version of `object_id` in `collection` that `owner` posted, and returns
    /// how many were deleted: `Ok(0)` when only other organisations posted it (the caller
    /// refuses), [`StoreError::NotFound`] when the collection holds no version of it.
    pub async fn delete_stix_object(
        &mut self,
        collection: &str,
        object_id: &str,
        owner: OrgId,
    ) -> Result<u64> {
        let any: Option<i64> = on_backend!(self, c => sqlx::query_scalar(
            "SELECT version FROM stix_objects WHERE collection_id = $1 AND object_id = $2 LIMIT 1")
            .bind(collection)
            .bind(object_id)
            .fetch_optional(&mut *c).await)
        .map_err(StoreError::db("read stix object", ""))?;
        if any.is_none() {
            return Err(StoreError::NotFound {
                what: "object",
                id: object_id.chars().take(100).collect(),
            });
        }
        on_backend!(self, c => sqlx::query(
            "DELETE FROM stix_objects WHERE collection_id = $1 AND object_id = $2 AND owner_org = $3")
            .bind(collection)
            .bind(object_id)
            .bind(owner.get())
            .execute(&mut *c).await.map(|r| r.rows_affected()))
        .map_err(StoreError::db("delete stix object", ""))
    }

    /// Sets the marking and audience of every version of `object_id` in `collection` that
    /// `owner` stored, and returns how many rows it set (0 when there are none). The
    /// relay uses it for the centre's identity, whose one version was stored before it was
    /// CLEAR; the body is left as it is.
    pub async fn set_stix_object_audience(
        &mut self,
        collection: &str,
        object_id: &str,
        owner: OrgId,
        tlp: Tlp,
        audience: &Audience,
    ) -> Result<u64> {
        let audience = serde_json::to_string(audience)
            .map_err(|e| StoreError::Invalid(format!("audience cannot be stored: {e}")))?;
        on_backend!(self, c => sqlx::query(
            "UPDATE stix_objects SET tlp = $1, audience = $2 \
             WHERE collection_id = $3 AND object_id = $4 AND owner_org = $5")
            .bind(tlp.slug())
            .bind(audience.as_str())
            .bind(collection)
            .bind(object_id)
            .bind(owner.get())
            .execute(&mut *c).await.map(|r| r.rows_affected()))
        .map_err(StoreError::db("set stix object audience", ""))
    }

    /// Records the status resource of a POST (its JSON), readable by `owner` only.
    pub async fn insert_taxii_status(
        &mut self,
        id: &str,
        collection: &str,
        owner: OrgId,
        body: &str,
        now: Timestamp,
    ) -> Result<()> {
        on_backend!(self, c => sqlx::query(
            "INSERT INTO taxii_status (id, collection_id, owner_org, created_at, body) VALUES ($1, $2, $3, $4, $5)")
            .bind(id)
            .bind(collection)
            .bind(owner.get())
            .bind(micros(now))
            .bind(body)
            .execute(&mut *c).await.map(drop))
        .map_err(StoreError::db("store taxii status", "a status with this id already exists"))
    }

    /// A status resource's JSON, if `owner` made it ([`StoreError::NotFound`] otherwise, so
    /// another organisation's status ids tell nothing).
    pub async fn taxii_status(&mut self, id: &str, owner: OrgId) -> Result<String> {
        let body: Option<String> = on_backend!(self, c => sqlx::query_scalar(
            "SELECT body FROM taxii_status WHERE id = $1 AND owner_org = $2")
            .bind(id)
            .bind(owner.get())
            .fetch_optional(&mut *c).await)
        .map_err(StoreError::db("read taxii status", ""))?;
        body.ok_or_else(|| StoreError::NotFound {
            what: "status",
            id: id.chars().take(80).collect(),
        })
    }
}
