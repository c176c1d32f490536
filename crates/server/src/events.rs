//! The event stream `GET /api/v1/events` (issue 8 item 3; PP-9, PP-11): server-sent
//! events for new and updated reports, new TAXII objects and carriers' findings, each rendered for this
//! subscriber by the same functions as the API and TAXII, so it carries only what the one
//! visibility rule lets the subscriber see.
//!
//! **Architecture invariant:** the stream holds no state that another centre instance
//! would lack (DESIGN "Scale-out"). Events are read from the store's change feed
//! (`share_events`, appended by the store operations themselves) by a cursor; a write
//! through this instance wakes subscribers at once ([`AppState::changes`]), a write
//! through another is picked up by the poll (`events_poll_millis`). What is sent is
//! decided at read time: a report goes through `mamori_share::intake::get` (the one
//! report function, `view::reveal`), an object through the TAXII gate
//! [`crate::taxii::visible`] and its collection's read roles. The token is checked again
//! before every read, so a revoked token ends the stream and a changed client relation
//! takes effect.
//!
//! **API boundary:** each event has an `id` to resume from with `Last-Event-ID`: `N` after
//! report event `N`, `N:T` inside TAXII event `N` after the object added at `T` (µs), or
//! inside findings event `N` after finding `T`. With
//! no `Last-Event-ID` the stream starts at the newest event; `Last-Event-ID: 0` replays
//! the whole feed. Events are `report` (the report as `GET /api/v1/reports/{id}` shows
//! it), `object` (`{"collection": id, "object": STIX object}`) and `finding` (as
//! `GET /api/v1/findings` shows it, through its gate `findings::visible`); a `: keep-alive`
//! comment is sent every 15 s of silence. At most [`MAX_PER_READ`] events go out per read;
//! inside one TAXII POST or one submission of findings, `N:T` names the last object
//! (`date_added`) or finding (id) sent.

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::taxii;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use mamori_core::ErrorKind;
use mamori_share::ShareError;
use mamori_store::{Principal, ShareEventKind, StixQuery, VersionMatch};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::watch;

/// Most events sent per read of the change feed (the bound on one read's work).
pub(crate) const MAX_PER_READ: usize = 100;
/// Change-feed events read at once.
const FEED_BATCH: u32 = 100;
/// Silence after which a keep-alive comment is sent.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Where a subscriber stands: after event `seq`, and inside it after `added` when a TAXII
/// event was only partly sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cursor {
    seq: i64,
    added: Option<i64>,
}

impl Cursor {
    /// Reads a `Last-Event-ID`: `N` or `N:T`.
    pub(crate) fn parse(s: &str) -> Option<Cursor> {
        let (seq, added) = match s.trim().split_once(':') {
            Some((a, b)) => (a, Some(b.parse::<i64>().ok()?)),
            None => (s.trim(), None),
        };
        let seq = seq.parse::<i64>().ok().filter(|n| *n >= 0)?;
        Some(Cursor { seq, added })
    }

    fn id(self) -> String {
        match self.added {
            Some(a) => format!("{}:{a}", self.seq),
            None => self.seq.to_string(),
        }
    }
}

/// The subscriber's credentials, kept to re-check before every read.
fn token_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(|t| t.trim().to_owned())
}

/// One read of the change feed for `who` from `cursor`: the events to send (at most
/// [`MAX_PER_READ`]) and the cursor after them (advanced past events `who` may not see,
/// which are skipped without a trace).
pub(crate) async fn read(
    state: &AppState,
    who: &Principal,
    cursor: Cursor,
) -> Result<(Vec<(Cursor, &'static str, String)>, Cursor), ApiError> {
    let now = state.clock.now();
    let regime = state.regime()?;
    let mut out = Vec::new();
    let mut at = cursor;
    let mut tx = state.store.begin_read().await?;
    // A partly sent TAXII event is read again from its start.
    let from = if cursor.added.is_some() {
        cursor.seq - 1
    } else {
        cursor.seq
    };
    let events = tx.share_events(from, FEED_BATCH).await?;
    let collections = tx.taxii_collections().await?;
    'events: for e in events {
        match e.kind {
            ShareEventKind::Report(id) => {
                at = Cursor {
                    seq: e.seq,
                    added: None,
                };
                match mamori_share::intake::get(&mut tx, who, id, regime, now).await {
                    Ok(r) => {
                        let json = serde_json::to_string(&r).map_err(|e| {
                            ApiError::new(ErrorKind::Internal, format!("serialising: {e}"))
                        })?;
                        out.push((at, "report", json));
                    }
                    Err(ShareError::NotFound(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            ShareEventKind::Findings { first, last } => {
                let mut after = match (cursor.added, e.seq == cursor.seq) {
                    (Some(a), true) => a,
                    _ => first - 1,
                };
                at = Cursor {
                    seq: e.seq,
                    added: None,
                };
                let centres = crate::findings::centres(&mut tx).await?;
                loop {
                    let room = MAX_PER_READ.saturating_sub(out.len());
                    if room == 0 {
                        at = Cursor {
                            seq: e.seq,
                            added: Some(after),
                        };
                        break 'events;
                    }
                    let rows: Vec<_> = tx
                        .findings(after, u32::try_from(room).unwrap_or(u32::MAX))
                        .await?
                        .into_iter()
                        .filter(|r| r.id <= last)
                        .collect();
                    let read_all = rows.len() < room;
                    let last_read = rows.last().map(|r| r.id);
                    for f in crate::findings::visible(rows, &centres, who) {
                        let json = serde_json::to_string(&f).map_err(|e| {
                            ApiError::new(ErrorKind::Internal, format!("serialising: {e}"))
                        })?;
                        let c = Cursor {
                            seq: e.seq,
                            added: Some(f.id),
                        };
                        out.push((c, "finding", json));
                    }
                    match last_read {
                        Some(l) if !read_all && l < last => after = l,
                        _ => break,
                    }
                }
            }
            ShareEventKind::Objects {
                collection,
                first,
                last,
            } => {
                let readable = collections
                    .iter()
                    .any(|c| c.id == collection && c.read_roles.contains(&who.user.role));
                let mut after = match (cursor.added, e.seq == cursor.seq) {
                    (Some(a), true) => a,
                    _ => first - 1,
                };
                at = Cursor {
                    seq: e.seq,
                    added: None,
                };
                if !readable {
                    continue;
                }
                loop {
                    let room = MAX_PER_READ.saturating_sub(out.len());
                    if room == 0 {
                        // Stop inside this event; the next read resumes after `after`.
                        at = Cursor {
                            seq: e.seq,
                            added: Some(after),
                        };
                        break 'events;
                    }
                    let mut q = StixQuery::new(u32::try_from(room).unwrap_or(u32::MAX));
                    q.added_after = Some(after);
                    q.versions = vec![VersionMatch::All];
                    let rows: Vec<_> = tx
                        .stix_objects(&collection, &q)
                        .await?
                        .into_iter()
                        .filter(|r| r.date_added <= last)
                        .collect();
                    let read_all = rows.len() < room;
                    let (shown, last_read) = taxii::visible(rows, who);
                    for r in shown {
                        let added = r.date_added();
                        let json = format!(
                            "{{\"collection\":{},\"object\":{}}}",
                            serde_json::Value::String(collection.clone()),
                            r.body()
                        );
                        out.push((
                            Cursor {
                                seq: e.seq,
                                added: Some(added),
                            },
                            "object",
                            json,
                        ));
                    }
                    match last_read {
                        Some(l) if !read_all && l < last => after = l,
                        _ => break,
                    }
                }
            }
        }
        if out.len() >= MAX_PER_READ {
            break;
        }
    }
    tx.commit().await?;
    // The last event sent names where the stream stands; skipped events move it on too.
    Ok((out, at))
}

/// Subscribes to new and updated reports and new TAXII objects, as this caller may see
/// them (`text/event-stream`). See the module docs for ids and resumption.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", security(("bearer" = [])),
    params(("Last-Event-ID" = Option<String>, Header, description = "resume after this event id; 0 replays the whole feed")),
    responses((status = 200, content_type = "text/event-stream", description = "the event stream"),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub(crate) async fn stream(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let start = match headers.get("last-event-id") {
        Some(v) => v.to_str().ok().and_then(Cursor::parse).ok_or_else(|| {
            ApiError::new(
                ErrorKind::InvalidInput,
                "Last-Event-ID must be an event id this stream sent (N or N:T), or 0 for everything",
            )
        })?,
        None => {
            let mut tx = s.store.begin_read().await?;
            let seq = tx.last_event_seq().await?;
            tx.commit().await?;
            Cursor { seq, added: None }
        }
    };
    let token = token_of(&headers);
    let poll = Duration::from_millis(s.config.events_poll_millis.max(50));
    let rx = s.changes.subscribe();
    tracing::info!(org = %caller.0.org.id, from = %start.id(), "event stream opened");
    struct Sub {
        state: AppState,
        who: Principal,
        token: Option<String>,
        cursor: Cursor,
        rx: watch::Receiver<u64>,
        poll: Duration,
        first: bool,
        done: bool,
    }
    let sub = Sub {
        state: s,
        who: caller.0,
        token,
        cursor: start,
        rx,
        poll,
        first: true,
        done: false,
    };
    let events = stream::unfold(sub, |mut sub| async move {
        if sub.done {
            return None;
        }
        loop {
            if !sub.first {
                // Woken by a write through this instance, or by the poll for the others.
                let _ = tokio::time::timeout(sub.poll, sub.rx.changed()).await;
            }
            sub.first = false;
            sub.rx.mark_unchanged();
            // The token again: a revoked one ends the stream; client relations refresh.
            if let Some(t) = &sub.token {
                match Caller::from_token(&sub.state, t).await {
                    Ok(c) => sub.who = c.0,
                    Err(e) => {
                        sub.done = true;
                        let ev = Event::default().event("error").data(e.message);
                        return Some((vec![ev], sub));
                    }
                }
            }
            match read(&sub.state, &sub.who, sub.cursor).await {
                Ok((out, at)) => {
                    let more = out.len() >= MAX_PER_READ || at != sub.cursor;
                    sub.cursor = at;
                    if out.is_empty() {
                        if more {
                            sub.first = true; // skipped events only: read on at once
                        }
                        continue;
                    }
                    let evs = out
                        .into_iter()
                        .map(|(c, kind, data)| Event::default().id(c.id()).event(kind).data(data))
                        .collect();
                    sub.first = more;
                    return Some((evs, sub));
                }
                Err(e) => {
                    tracing::error!(error = %e.message, "event stream read failed");
                    sub.done = true;
                    let ev = Event::default()
                        .event("error")
                        .data("the stream stopped on a server error: reconnect with Last-Event-ID");
                    return Some((vec![ev], sub));
                }
            }
        }
    })
    .flat_map(|evs: Vec<Event>| stream::iter(evs.into_iter().map(Ok)));
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_bad_ones_are_refused() {
        for s in ["0", "17", "17:1790000000000001"] {
            assert_eq!(Cursor::parse(s).map(Cursor::id).as_deref(), Some(s));
        }
        for bad in ["", "-1", "x", "1:", "1:x", "1:2:3"] {
            assert_eq!(Cursor::parse(bad), None, "{bad:?}");
        }
    }
}
