//! The reports tables (issue 8) in the conformance suite: on SQLite always, on PostgreSQL
//! when `MAMORI_TEST_POSTGRES_URL` is set.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use chrono::Duration;
use mamori_core::time::{Timestamp, from_millis};
use mamori_core::tlp::Audience;
use mamori_core::{Clearance, ErrorKind, OrgId, OrgKind, Role, Sector, Tlp, UserId};
use mamori_store::{NewOrg, NewReport, NewUser, ReportQuery, Store, StoreError, store_test_suite};

fn t0() -> Timestamp {
    from_millis(1_790_000_000_000).unwrap()
}

/// An operator with one user; returns their ids.
async fn reporter(store: &Store, name: &str) -> (OrgId, UserId) {
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

fn audience(org: OrgId) -> Audience {
    Audience {
        originator: Some(org),
        organisations: [OrgId(999)].into(),
        excluded: [OrgId(998)].into(),
        ..Audience::default()
    }
}

fn new<'a>(org: OrgId, user: UserId, aud: &'a Audience, key: Option<&'a str>) -> NewReport<'a> {
    NewReport {
        org,
        user,
        tlp: Tlp::AmberStrict,
        confidential: false,
        sector: Sector::Electricity,
        impact: "medium",
        regime: "default",
        detected_at: t0() - Duration::hours(1),
        body: r#"{"text":"x"}"#,
        audience: aud,
        idempotency_key: key,
    }
}

async fn reports_round_trip_with_stages_and_acknowledgement(store: Store) {
    let (org, user) = reporter(&store, "Kanto Power").await;
    let aud = audience(org);
    let mut tx = store.begin().await.unwrap();
    let id = tx
        .insert_report(&new(org, user, &aud, Some("k1")), t0())
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    let r = tx.report(id).await.unwrap().unwrap();
    assert_eq!(
        (r.org, r.user, r.tlp, r.confidential),
        (org, user, Tlp::AmberStrict, false)
    );
    assert_eq!(
        (r.sector, r.impact.as_str(), r.regime.as_str()),
        (Sector::Electricity, "medium", "default")
    );
    assert_eq!(
        (r.detected_at, r.received_at),
        (t0() - Duration::hours(1), t0())
    );
    assert_eq!(r.audience, aud);
    assert_eq!(
        (r.acknowledged_at, r.feedback_at, r.feedback),
        (None, None, None)
    );
    assert_eq!(tx.report(id + 100).await.unwrap(), None);

    tx.insert_report_stage(id, "interim", "{}", t0() + Duration::hours(2))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // A failed statement spoils its transaction on PostgreSQL: the caller drops it.
    let mut tx = store.begin().await.unwrap();
    let e = tx
        .insert_report_stage(id, "interim", "{\"again\":1}", t0() + Duration::hours(3))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    drop(tx);

    let mut tx = store.begin().await.unwrap();
    let wider = Audience {
        organisations: [OrgId(999), OrgId(997)].into(),
        ..aud.clone()
    };
    tx.update_report_assessment(id, "high", &wider)
        .await
        .unwrap();
    tx.acknowledge_report(id, t0() + Duration::minutes(10), None)
        .await
        .unwrap();
    tx.acknowledge_report(
        id,
        t0() + Duration::minutes(30),
        Some("Thanks; see advisory 12."),
    )
    .await
    .unwrap();
    assert!(matches!(
        tx.acknowledge_report(id + 100, t0(), None).await,
        Err(StoreError::NotFound { .. })
    ));
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    let r = tx.report(id).await.unwrap().unwrap();
    assert_eq!((r.impact.as_str(), &r.audience), ("high", &wider));
    assert_eq!(
        r.acknowledged_at,
        Some(t0() + Duration::minutes(10)),
        "the first acknowledgement counts"
    );
    assert_eq!(r.feedback_at, Some(t0() + Duration::minutes(30)));
    assert_eq!(r.feedback.as_deref(), Some("Thanks; see advisory 12."));
    let stages = tx.report_stages(&[id]).await.unwrap();
    assert_eq!(stages.len(), 1);
    assert_eq!(
        (stages[0].stage.as_str(), stages[0].received_at),
        ("interim", t0() + Duration::hours(2))
    );
    assert!(tx.report_stages(&[]).await.unwrap().is_empty());
    tx.commit().await.unwrap();
}

async fn idempotency_keys_are_unique_per_organisation(store: Store) {
    let (a, ua) = reporter(&store, "Kanto Power").await;
    let (b, ub) = reporter(&store, "Kansai Gas").await;
    let (aa, ab) = (audience(a), audience(b));
    let mut tx = store.begin().await.unwrap();
    let id = tx
        .insert_report(&new(a, ua, &aa, Some("same")), t0())
        .await
        .unwrap();
    // Another organisation may use the same key.
    let other = tx
        .insert_report(&new(b, ub, &ab, Some("same")), t0())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_ne!(id, other);

    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.report_for_key(a, "same").await.unwrap(), Some(id));
    assert_eq!(tx.report_for_key(b, "same").await.unwrap(), Some(other));
    assert_eq!(tx.report_for_key(a, "unused").await.unwrap(), None);
    let before = tx.report_counts().await.unwrap();
    assert_eq!((before.reports, before.keys), (2, 2));
    // Reusing a key inside the organisation is refused, and the transaction that tried
    // is rolled back: nothing of it is kept.
    let e = tx
        .insert_report(&new(a, ua, &aa, Some("same")), t0())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert!(e.to_string().contains("Idempotency-Key"), "{e}");
    drop(tx);
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.report_counts().await.unwrap(), before);
    tx.commit().await.unwrap();
}

async fn reports_are_listed_by_sector_time_and_cursor(store: Store) {
    let (org, user) = reporter(&store, "Kanto Power").await;
    let aud = audience(org);
    let mut tx = store.begin().await.unwrap();
    let mut ids = Vec::new();
    for (i, sector) in [
        Sector::Electricity,
        Sector::Gas,
        Sector::Electricity,
        Sector::Water,
    ]
    .into_iter()
    .enumerate()
    {
        let r = NewReport {
            sector,
            ..new(org, user, &aud, None)
        };
        ids.push(
            tx.insert_report(&r, t0() + Duration::hours(i as i64))
                .await
                .unwrap(),
        );
    }
    tx.commit().await.unwrap();
    let q = |after, limit, sector, since| ReportQuery {
        after,
        limit,
        sector,
        since,
    };
    let mut tx = store.begin_read().await.unwrap();
    let got = |v: Vec<mamori_store::StoredReport>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(got(tx.reports(&q(0, 10, None, None)).await.unwrap()), ids);
    assert_eq!(
        got(tx.reports(&q(0, 2, None, None)).await.unwrap()),
        ids[..2]
    );
    assert_eq!(
        got(tx.reports(&q(ids[1], 10, None, None)).await.unwrap()),
        ids[2..]
    );
    assert_eq!(
        got(tx
            .reports(&q(0, 10, Some(Sector::Electricity), None))
            .await
            .unwrap()),
        [ids[0], ids[2]]
    );
    assert_eq!(
        got(tx
            .reports(&q(0, 10, None, Some(t0() + Duration::hours(2))))
            .await
            .unwrap()),
        ids[2..]
    );
    assert!(
        tx.reports(&q(0, 10, Some(Sector::Finance), None))
            .await
            .unwrap()
            .is_empty()
    );
    tx.commit().await.unwrap();
}

async fn a_stage_of_an_unknown_report_is_refused(store: Store) {
    let mut tx = store.begin().await.unwrap();
    let e = tx
        .insert_report_stage(42, "interim", "{}", t0())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    drop(tx);
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.report_counts().await.unwrap().stages, 0);
    tx.commit().await.unwrap();
}

async fn ratings_are_one_per_organisation_and_counted(store: Store) {
    let (org, user) = reporter(&store, "Kanto Power").await;
    let (a, _) = reporter(&store, "Kansai Gas").await;
    let (b, _) = reporter(&store, "Tohoku Rail").await;
    let aud = audience(org);
    let mut tx = store.begin().await.unwrap();
    let id = tx
        .insert_report(&new(org, user, &aud, None), t0())
        .await
        .unwrap();
    let other = tx
        .insert_report(&new(org, user, &aud, None), t0())
        .await
        .unwrap();
    tx.rate_report(id, a, "useful", t0()).await.unwrap();
    tx.rate_report(id, b, "false_positive", t0()).await.unwrap();
    // Rating again replaces the organisation's earlier rating.
    tx.rate_report(id, a, "not_useful", t0() + Duration::hours(1))
        .await
        .unwrap();
    tx.rate_report(other, a, "useful", t0()).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.begin_read().await.unwrap();
    assert_eq!(
        tx.report_rating_counts(&[id, other]).await.unwrap(),
        [
            (id, "false_positive".to_owned(), 1),
            (id, "not_useful".to_owned(), 1),
            (other, "useful".to_owned(), 1)
        ]
    );
    assert!(tx.report_rating_counts(&[]).await.unwrap().is_empty());
    assert_eq!(tx.report_counts().await.unwrap().ratings, 3);
    tx.commit().await.unwrap();
}

store_test_suite!(
    ratings_are_one_per_organisation_and_counted,
    reports_round_trip_with_stages_and_acknowledgement,
    idempotency_keys_are_unique_per_organisation,
    reports_are_listed_by_sector_time_and_cursor,
    a_stage_of_an_unknown_report_is_refused,
);
