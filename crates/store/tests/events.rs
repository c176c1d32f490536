//! Client relations and the change feed (issue 8 item 3; PP-11) in the conformance suite:
//! on SQLite always, on PostgreSQL when `MAMORI_TEST_POSTGRES_URL` is set.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use chrono::Duration;
use mamori_core::time::{Timestamp, from_millis};
use mamori_core::tlp::Audience;
use mamori_core::{Clearance, ErrorKind, OrgId, OrgKind, Role, Sector, Tlp, UserId};
use mamori_store::{
    NewOrg, NewReport, NewStixObject, NewUser, ShareEvent, ShareEventKind, Store, store_test_suite,
};

fn t0() -> Timestamp {
    from_millis(1_790_000_000_000).unwrap()
}

async fn org(store: &Store, name: &str) -> (OrgId, UserId) {
    let mut tx = store.begin().await.unwrap();
    let org = tx
        .create_org(
            &NewOrg {
                kind: OrgKind::Operator,
                sector: Some(Sector::Electricity),
                name: name.into(),
            },
            t0(),
        )
        .await
        .unwrap();
    let user = tx
        .create_user(
            &NewUser {
                org: org.id,
                name: format!("{name}-user"),
                role: Role::Member,
                clearance: Clearance::None,
            },
            t0(),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    (org.id, user.id)
}

async fn client_relations_round_trip_and_reach_the_principal(store: Store) {
    let (provider, _) = org(&store, "Provider").await;
    let (other, _) = org(&store, "Other provider").await;
    let (client, client_user) = org(&store, "Client").await;
    let mut tx = store.begin().await.unwrap();
    tx.add_client(provider, client, t0()).await.unwrap();
    tx.add_client(other, client, t0()).await.unwrap();
    let (_, secret) = tx
        .issue_token(client_user, "t", t0() + Duration::days(1), t0())
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.client_of(client).await.unwrap(), [provider, other]);
    assert_eq!(tx.clients(provider).await.unwrap(), [client]);
    assert!(tx.client_of(provider).await.unwrap().is_empty());
    let p = tx.authenticate(secret.expose(), t0()).await.unwrap();
    assert_eq!(p.client_of, [provider, other]);
    tx.commit().await.unwrap();

    // Refusals change nothing.
    let mut tx = store.begin().await.unwrap();
    let e = tx.add_client(provider, client, t0()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    drop(tx);
    let mut tx = store.begin().await.unwrap();
    let e = tx.add_client(provider, provider, t0()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let e = tx
        .add_client(provider, OrgId(9_999), t0())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    drop(tx);

    let mut tx = store.begin().await.unwrap();
    tx.remove_client(other, client).await.unwrap();
    let e = tx.remove_client(other, client).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    drop(tx);
    let mut tx = store.begin().await.unwrap();
    tx.remove_client(other, client).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.client_of(client).await.unwrap(), [provider]);
    tx.commit().await.unwrap();
}

async fn every_report_change_and_taxii_post_is_one_event_in_commit_order(store: Store) {
    let (o, u) = org(&store, "Reporter").await;
    let aud = Audience {
        originator: Some(o),
        ..Audience::default()
    };
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.last_event_seq().await.unwrap(), 0);
    let id = tx
        .insert_report(
            &NewReport {
                org: o,
                user: u,
                tlp: Tlp::Amber,
                confidential: false,
                sector: Sector::Electricity,
                impact: "medium",
                regime: "default",
                detected_at: t0() - Duration::hours(1),
                body: r#"{"text":"x"}"#,
                audience: &aud,
                idempotency_key: None,
            },
            t0(),
        )
        .await
        .unwrap();
    tx.insert_report_stage(id, "update", "{}", t0())
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    let c = tx.taxii_collection("indicators").await.unwrap();
    let objects: Vec<NewStixObject> = (0..3)
        .map(|n| NewStixObject {
            id: format!("indicator--00000000-0000-4000-8000-{n:012}"),
            object_type: "indicator".into(),
            spec_version: "2.1".into(),
            version: 1,
            version_text: "v1".into(),
            tlp: Tlp::Green,
            audience: aud.clone(),
            body: "{}".into(),
        })
        .collect();
    let (first, last, stored) = tx
        .insert_stix_objects(&c.id, o, &objects, t0())
        .await
        .unwrap();
    assert_eq!(stored, 3);
    // The same objects again store nothing and add no event.
    tx.insert_stix_objects(&c.id, o, &objects, t0())
        .await
        .unwrap();
    tx.acknowledge_report(id, t0(), Some("thanks"))
        .await
        .unwrap();
    tx.rate_report(id, o, "useful", t0()).await.unwrap();
    tx.commit().await.unwrap();

    // A rolled-back change leaves no event.
    let mut tx = store.begin().await.unwrap();
    tx.acknowledge_report(id, t0(), None).await.unwrap();
    drop(tx);

    let mut tx = store.begin_read().await.unwrap();
    let all = tx.share_events(0, 100).await.unwrap();
    let want = vec![
        ShareEvent {
            seq: 1,
            kind: ShareEventKind::Report(id),
        },
        ShareEvent {
            seq: 2,
            kind: ShareEventKind::Report(id),
        },
        ShareEvent {
            seq: 3,
            kind: ShareEventKind::Objects {
                collection: c.id.clone(),
                first,
                last,
            },
        },
        ShareEvent {
            seq: 4,
            kind: ShareEventKind::Report(id),
        },
        ShareEvent {
            seq: 5,
            kind: ShareEventKind::Report(id),
        },
    ];
    assert_eq!(all, want);
    assert_eq!(tx.share_events(2, 2).await.unwrap(), want[2..4]);
    assert_eq!(tx.last_event_seq().await.unwrap(), 5);
    tx.commit().await.unwrap();
}

/// Concurrent writers and a reader following the feed by cursor: the reader sees every
/// event exactly once, in order — no event commits below a `seq` the reader has passed
/// (on PostgreSQL the clock row's lock orders the commits; SQLite has one writer).
async fn a_cursor_over_the_feed_misses_nothing_under_concurrent_writers(store: Store) {
    let (o, u) = org(&store, "Reporter").await;
    const WRITERS: usize = 6;
    const EACH: usize = 15;
    let mut handles = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let aud = Audience {
                originator: Some(o),
                ..Audience::default()
            };
            for n in 0..EACH {
                let body = format!(r#"{{"text":"{w}-{n}"}}"#);
                loop {
                    let mut tx = store.begin().await.unwrap();
                    let r = tx
                        .insert_report(
                            &NewReport {
                                org: o,
                                user: u,
                                tlp: Tlp::Green,
                                confidential: false,
                                sector: Sector::Electricity,
                                impact: "low",
                                regime: "default",
                                detected_at: t0() - Duration::hours(1),
                                body: &body,
                                audience: &aud,
                                idempotency_key: None,
                            },
                            t0(),
                        )
                        .await;
                    if r.is_err() {
                        continue; // SQLite busy: try again
                    }
                    // Hold the transaction open a little, as a slow request would.
                    tokio::time::sleep(std::time::Duration::from_millis((n % 3) as u64)).await;
                    if tx.commit().await.is_ok() {
                        break;
                    }
                }
            }
        }));
    }
    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut cursor = 0;
            let mut seen = Vec::new();
            while seen.len() < WRITERS * EACH {
                let mut tx = store.begin_read().await.unwrap();
                let events = tx.share_events(cursor, 7).await.unwrap();
                tx.commit().await.unwrap();
                for e in events {
                    cursor = e.seq;
                    seen.push(e.seq);
                }
                tokio::task::yield_now().await;
            }
            seen
        })
    };
    for h in handles {
        h.await.unwrap();
    }
    let seen = tokio::time::timeout(std::time::Duration::from_secs(60), reader)
        .await
        .expect("the reader caught up")
        .unwrap();
    let want: Vec<i64> = (1..=(WRITERS * EACH) as i64).collect();
    assert_eq!(seen, want);
}

store_test_suite!(
    client_relations_round_trip_and_reach_the_principal,
    every_report_change_and_taxii_post_is_one_event_in_commit_order,
    a_cursor_over_the_feed_misses_nothing_under_concurrent_writers,
);
