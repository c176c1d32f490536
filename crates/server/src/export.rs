//! The export `GET /api/v1/export` (issue 8 item 3; PP-4, PP-9, PP-11): everything the
//! caller may see as STIX 2.1 bundles — its reports rendered as STIX
//! (`mamori_share::stix_out`) and the TAXII collections' objects — one bounded page at a
//! time.
//!
//! **Architecture invariant:** nothing here decides who sees what. Reports come from
//! `mamori_share::intake::list` (the one report function, `view::reveal`, and the
//! reporter's name scrubbed for others), objects through the TAXII gate
//! [`crate::taxii::visible`] and their collection's read roles.
//!
//! **API boundary:** `since` (RFC 3339: reports received, objects added at or after it),
//! `types` (STIX types, comma-separated; a report is an `incident` and its stages `note`s),
//! `limit` (objects per page, at most [`MAX_PAGE`]) and `after` (the `Mamori-Next` header
//! of the previous page, unchanged). Each page is a complete bundle, with the official TLP
//! marking definitions its objects use; `Mamori-Next` is absent on the last page.

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::json::ApiQuery;
use crate::state::AppState;
use crate::taxii;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mamori_core::{ErrorKind, Timestamp, Tlp};
use mamori_share::intake::{self, ListQuery};
use mamori_stix::{MarkingDefinition, StixId, StixObject, object_tlp};
use mamori_store::{StixQuery, VersionMatch};
use serde::Deserialize;
use std::collections::BTreeSet;

/// The default and largest number of objects in one page.
pub(crate) const MAX_PAGE: usize = 1_000;
/// The header naming the next page's `after`.
pub(crate) const NEXT: &str = "mamori-next";
/// The media type of a STIX bundle.
const MEDIA_TYPE_STIX: &str = "application/stix+json;version=2.1";

/// What to export.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExportParams {
    /// Only reports received and objects added at or after this time (RFC 3339).
    #[param(value_type = Option<String>)]
    since: Option<Timestamp>,
    /// Only these STIX types, comma-separated (`incident,note,indicator`).
    types: Option<String>,
    /// Objects per page (default and maximum 1000).
    limit: Option<usize>,
    /// Where the previous page ended: its `Mamori-Next` header, unchanged.
    after: Option<String>,
}

/// Where a page starts: in the reports after report `n`, or in collection `alias` after
/// `date_added`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Position {
    Reports(i64),
    Objects(String, i64),
}

impl Position {
    fn parse(s: &str) -> Option<Position> {
        let mut parts = s.split(':');
        let p = match (parts.next()?, parts.next(), parts.next()) {
            ("r", Some(n), None) => Position::Reports(n.parse().ok()?),
            ("o", Some(alias), Some(t)) if !alias.is_empty() => {
                Position::Objects(alias.to_owned(), t.parse().ok()?)
            }
            _ => return None,
        };
        parts.next().is_none().then_some(p)
    }

    fn text(&self) -> String {
        match self {
            Position::Reports(n) => format!("r:{n}"),
            Position::Objects(a, t) => format!("o:{a}:{t}"),
        }
    }
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::InvalidInput, msg)
}

/// A page of everything the caller may see, as a STIX 2.1 bundle; the header
/// `Mamori-Next` names the next page's `after` while there is more.
#[utoipa::path(get, path = "/api/v1/export", tag = "export", security(("bearer" = [])), params(ExportParams),
    responses((status = 200, content_type = "application/stix+json;version=2.1", description = "a STIX 2.1 bundle"),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub(crate) async fn export(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(p): ApiQuery<ExportParams>,
) -> Result<Response, ApiError> {
    let who = &caller.0;
    let limit = p.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
    let types: BTreeSet<String> = p
        .types
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(t) = types.iter().find(|t| !mamori_stix::is_valid_type_name(t)) {
        return Err(bad(format!(
            "types: {:?} is not a STIX type name",
            t.chars().take(60).collect::<String>()
        )));
    }
    let wanted = |t: &str| types.is_empty() || types.contains(t);
    let mut pos = match p.after.as_deref() {
        None => Position::Reports(0),
        Some(a) => Position::parse(a).ok_or_else(|| {
            bad("after: pass the Mamori-Next header of the previous page unchanged")
        })?,
    };
    let now = s.clock.now();
    let regime = s.regime()?;
    let mut objects: Vec<StixObject> = Vec::new();
    let mut next: Option<Position> = None;
    let mut tx = s.store.begin_read().await?;

    if let Position::Reports(after) = pos {
        let mut after = after;
        if wanted("incident") || wanted("note") {
            loop {
                let page = intake::list(
                    &mut tx,
                    who,
                    &ListQuery {
                        after,
                        limit: intake::MAX_PAGE,
                        sector: None,
                        status: None,
                        since: p.since,
                    },
                    regime,
                    now,
                )
                .await?;
                let mut full = false;
                for r in &page.reports {
                    let rendered: Vec<StixObject> = mamori_share::stix_out::report_objects(r)?
                        .into_iter()
                        .filter(|o| wanted(o.object_type()))
                        .collect();
                    if !objects.is_empty() && objects.len() + rendered.len() > limit {
                        full = true;
                        break;
                    }
                    objects.extend(rendered);
                    after = r.id;
                }
                if full {
                    next = Some(Position::Reports(after));
                    break;
                }
                match page.next {
                    Some(n) => after = n,
                    None => break,
                }
            }
        }
        pos = Position::Objects(String::new(), 0);
    }

    if next.is_none() {
        let collections: Vec<_> = tx
            .taxii_collections()
            .await?
            .into_iter()
            .filter(|c| taxii::may_read(c, who.user.role))
            .collect();
        let since = p.since.map(|t| t.timestamp_micros() - 1);
        let (start_alias, start_added) = match &pos {
            Position::Objects(a, t) => (a.clone(), *t),
            Position::Reports(_) => (String::new(), 0),
        };
        'collections: for c in collections.iter().filter(|c| c.alias >= start_alias) {
            let mut after = if c.alias == start_alias {
                Some(start_added)
            } else {
                None
            };
            after = match (after, since) {
                (Some(a), Some(s)) => Some(a.max(s)),
                (a, s) => a.or(s),
            };
            loop {
                let room = limit.saturating_sub(objects.len());
                if room == 0 {
                    next = Some(Position::Objects(c.alias.clone(), after.unwrap_or(0)));
                    break 'collections;
                }
                let mut q = StixQuery::new(u32::try_from(room).unwrap_or(u32::MAX));
                q.added_after = after;
                q.versions = vec![VersionMatch::Last];
                q.types = types.iter().cloned().collect();
                let rows = tx.stix_objects(&c.id, &q).await?;
                let read_all = rows.len() < room;
                let (shown, last) = taxii::visible(rows, who);
                for r in shown {
                    let v: serde_json::Value = serde_json::from_str(r.body()).map_err(|e| {
                        ApiError::new(ErrorKind::Internal, format!("stored object: {e}"))
                    })?;
                    objects.push(mamori_stix::check_object(v).map_err(|e| {
                        ApiError::new(ErrorKind::Internal, format!("stored object: {e}"))
                    })?);
                }
                if let Some(l) = last {
                    after = Some(l);
                }
                if read_all {
                    break;
                }
            }
        }
    }
    tx.commit().await?;

    // The official TLP marking definitions the page's objects use.
    let used: BTreeSet<Tlp> = objects
        .iter()
        .filter_map(|o| object_tlp(o, Tlp::Amber).ok())
        .filter(|_| wanted("marking-definition"))
        .collect();
    let mut all: Vec<StixObject> = used
        .into_iter()
        .map(|t| StixObject::MarkingDefinition(Box::new(MarkingDefinition::official_tlp(t))))
        .filter(|m| !objects.iter().any(|o| o.id() == m.id()))
        .collect();
    all.extend(objects);
    let n = all.len();
    let bundle_id = StixId::deterministic(
        "bundle",
        &format!(
            "mamori-export/{}/{}/{}/{}",
            who.user.id,
            now.timestamp_micros(),
            p.after.as_deref().unwrap_or(""),
            n
        ),
    )
    .map_err(|e| ApiError::new(ErrorKind::Internal, e))?;
    // STIX 2.1 §8: a bundle's `objects`, when present, holds one or more objects.
    let mut bundle = serde_json::json!({"type": "bundle", "id": bundle_id.as_str()});
    if !all.is_empty() {
        bundle["objects"] = serde_json::to_value(&all)
            .map_err(|e| ApiError::new(ErrorKind::Internal, format!("serialising: {e}")))?;
    }
    let body = serde_json::to_vec(&bundle)
        .map_err(|e| ApiError::new(ErrorKind::Internal, format!("serialising: {e}")))?;
    tracing::info!(org = %who.org.id, objects = n, more = next.is_some(), "export page");
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(MEDIA_TYPE_STIX),
    );
    if let Some(n) = next
        && let Ok(v) = HeaderValue::from_str(&n.text())
    {
        resp.headers_mut().insert(NEXT, v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_and_bad_ones_are_refused() {
        for p in [
            Position::Reports(0),
            Position::Reports(42),
            Position::Objects("indicators".into(), 1_790_000_000_000_001),
        ] {
            assert_eq!(Position::parse(&p.text()), Some(p));
        }
        for bad in [
            "",
            "r",
            "r:x",
            "o:indicators",
            "o::1",
            "x:1",
            "r:1:2",
            "o:a:1:2",
        ] {
            assert_eq!(Position::parse(bad), None, "{bad:?}");
        }
    }
}
