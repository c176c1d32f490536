//! The relay's tables (issue 8 item 4; PP-12) in the conformance suite: registered
//! profiles, each report's random source handle and relay state, and reveal requests with
//! their one decision — on SQLite always, on PostgreSQL when `MAMORI_TEST_POSTGRES_URL`
//! is set.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use mamori_core::time::{Timestamp, from_millis};
use mamori_core::tlp::Audience;
use mamori_core::{Clearance, ErrorKind, OrgId, OrgKind, Role, Sector, Tlp};
use mamori_store::{NewOrg, NewReport, NewUser, Store, store_test_suite};

fn t0() -> Timestamp {
    from_millis(1_790_000_000_000).unwrap()
}

async fn profiles_relays_and_reveal_requests(store: Store) {
    let mut tx = store.begin().await.unwrap();
    let org = tx
        .create_org(
            &NewOrg {
                kind: OrgKind::Operator,
                sector: Some(Sector::Electricity),
                name: "Kanto Power".into(),
            },
            t0(),
        )
        .await
        .unwrap();
    let user = tx
        .create_user(
            &NewUser {
                org: org.id,
                name: "sato".into(),
                role: Role::Member,
                clearance: Clearance::None,
            },
            t0(),
        )
        .await
        .unwrap();
    // Profiles: kept once, read back in order, per organisation.
    let entries = [("domain", "kanto-power.example"), ("alias", "KantoDen")];
    tx.add_org_identifiers(org.id, &entries, t0())
        .await
        .unwrap();
    tx.add_org_identifiers(org.id, &entries[..1], t0())
        .await
        .unwrap();
    let got: Vec<(String, String)> = tx
        .org_identifiers(&[org.id])
        .await
        .unwrap()
        .into_iter()
        .map(|i| (i.kind, i.value))
        .collect();
    assert_eq!(
        got,
        vec![
            ("alias".into(), "KantoDen".into()),
            ("domain".into(), "kanto-power.example".into())
        ]
    );
    assert!(tx.org_identifiers(&[OrgId(999)]).await.unwrap().is_empty());
    // PostgreSQL spoils a transaction after an error: each refusal gets its own.
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let e = tx
        .add_org_identifiers(OrgId(999), &entries, t0())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    drop(tx);
    let mut tx = store.begin().await.unwrap();

    // Relay rows: a random handle per report, states counted.
    let aud = Audience {
        originator: Some(org.id),
        ..Audience::default()
    };
    let mut ids = Vec::new();
    for _ in 0..2 {
        let id = tx
            .insert_report(
                &NewReport {
                    org: org.id,
                    user: user.id,
                    tlp: Tlp::Green,
                    confidential: false,
                    sector: Sector::Electricity,
                    impact: "low",
                    regime: "default",
                    detected_at: t0(),
                    body: "{}",
                    audience: &aud,
                    idempotency_key: None,
                },
                t0(),
            )
            .await
            .unwrap();
        ids.push(id);
    }
    let a = tx
        .insert_report_relay(ids[0], Some("{\"type\":\"bundle\"}"), t0())
        .await
        .unwrap();
    let b = tx.insert_report_relay(ids[1], None, t0()).await.unwrap();
    assert!(
        a.handle.starts_with("src-") && a.handle.len() == 36,
        "{}",
        a.handle
    );
    assert_ne!(a.handle, b.handle);
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let e = tx
        .insert_report_relay(ids[0], None, t0())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    drop(tx);
    let mut tx = store.begin().await.unwrap();
    tx.set_report_relay_state(ids[0], "written", None, t0())
        .await
        .unwrap();
    tx.set_report_relay_state(ids[0], "written", None, t0())
        .await
        .unwrap();
    tx.set_report_relay_state(ids[1], "withheld", Some("failed closed"), t0())
        .await
        .unwrap();
    let rows = tx.report_relays(&ids).await.unwrap();
    assert_eq!((rows[0].state.as_str(), rows[0].versions), ("written", 2));
    assert_eq!(rows[0].bundle.as_deref(), Some("{\"type\":\"bundle\"}"));
    assert_eq!(rows[1].reason.as_deref(), Some("failed closed"));
    assert_eq!(
        tx.report_relay_counts().await.unwrap(),
        vec![("withheld".to_owned(), 1), ("written".to_owned(), 1)]
    );

    // Reveal requests: decided once.
    let rid = tx
        .insert_reveal_request(ids[0], user.id, "why", t0())
        .await
        .unwrap();
    tx.decide_reveal_request(rid, "approved", user.id, "ok", t0())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let e = tx
        .decide_reveal_request(rid, "refused", user.id, "no", t0())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    drop(tx);
    let mut tx = store.begin().await.unwrap();
    let r = tx.reveal_request(rid).await.unwrap().unwrap();
    assert_eq!(r.decision.as_deref(), Some("approved"));
    assert_eq!(r.decided_at, Some(t0()));
    assert_eq!(tx.reveal_requests(ids[0]).await.unwrap(), vec![r]);
    assert!(tx.reveal_requests(ids[1]).await.unwrap().is_empty());
    tx.commit().await.unwrap();
}

store_test_suite!(profiles_relays_and_reveal_requests);
