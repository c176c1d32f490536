//! The store conformance suite: every operation, on every backend (STYLE principle 10).
//! SQLite always; PostgreSQL when `MAMORI_TEST_POSTGRES_URL` is set (CI sets it).

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use chrono::Duration;
use mamori_core::time::{Timestamp, from_millis};
use mamori_core::{Clearance, ErrorKind, OrgKind, Role, Sector, UserId};
use mamori_store::{NewOrg, NewUser, Store, StoreError, store_test_suite};

fn t0() -> Timestamp {
    from_millis(1_790_000_000_000).unwrap()
}

fn operator(name: &str) -> NewOrg {
    NewOrg {
        kind: OrgKind::Operator,
        sector: Some(Sector::Electricity),
        name: name.into(),
    }
}

async fn org_round_trip(store: Store) {
    let mut tx = store.begin().await.unwrap();
    let a = tx.create_org(&operator("Kanto Power"), t0()).await.unwrap();
    let b = tx
        .create_org(
            &NewOrg {
                kind: OrgKind::Carrier,
                sector: None,
                name: "電気通信A社".into(),
            },
            t0(),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_ne!(a.id, b.id);

    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.org(a.id).await.unwrap(), a);
    assert_eq!(tx.orgs().await.unwrap(), vec![a.clone(), b.clone()]);
    let err = tx.org(mamori_core::OrgId(9999)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

async fn duplicate_and_bad_names_are_refused_without_change(store: Store) {
    let mut tx = store.begin().await.unwrap();
    tx.create_org(&operator("Kansai Gas"), t0()).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    let err = tx
        .create_org(&operator("Kansai Gas"), t0())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.to_string().contains("already exists"), "{err}");
    drop(tx); // rolled back
    for bad in ["", " padded", "a\u{7}bell", &"x".repeat(201)] {
        let mut tx = store.begin().await.unwrap();
        let err = tx.create_org(&operator(bad), t0()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}: {err}");
    }
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.orgs().await.unwrap().len(), 1);
}

async fn users_fit_their_organisation(store: Store) {
    let mut tx = store.begin().await.unwrap();
    let op = tx.create_org(&operator("Tokyo Water"), t0()).await.unwrap();
    let overseer = tx
        .create_org(
            &NewOrg {
                kind: OrgKind::Overseer,
                sector: None,
                name: "Oversight Board".into(),
            },
            t0(),
        )
        .await
        .unwrap();
    let u = tx
        .create_user(
            &NewUser {
                org: op.id,
                name: "sato".into(),
                role: Role::Member,
                clearance: Clearance::Confidential,
            },
            t0(),
        )
        .await
        .unwrap();
    let o = tx
        .create_user(
            &NewUser {
                org: overseer.id,
                name: "kimura".into(),
                role: Role::Overseer,
                clearance: Clearance::Secret,
            },
            t0(),
        )
        .await
        .unwrap();
    // An operator cannot employ an overseer.
    let err = tx
        .create_user(
            &NewUser {
                org: op.id,
                name: "mallory".into(),
                role: Role::Overseer,
                clearance: Clearance::None,
            },
            t0(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("independent overseer"), "{err}");
    // Nor can a user join an organisation that does not exist.
    let err = tx
        .create_user(
            &NewUser {
                org: mamori_core::OrgId(777),
                name: "ghost".into(),
                role: Role::Member,
                clearance: Clearance::None,
            },
            t0(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.user(u.id).await.unwrap(), u);
    assert_eq!(tx.users().await.unwrap(), vec![u, o]);
    assert_eq!(
        tx.user(UserId(4242)).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

async fn token_lifecycle(store: Store) {
    let mut tx = store.begin().await.unwrap();
    let (admin, info, secret) = tx
        .bootstrap_admin("Coordination Centre", "admin", Duration::days(90), t0())
        .await
        .unwrap()
        .expect("empty store bootstraps");
    assert_eq!(admin.role, Role::Admin);
    // A second bootstrap changes nothing.
    assert!(
        tx.bootstrap_admin("X", "y", Duration::days(1), t0())
            .await
            .unwrap()
            .is_none()
    );
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    let who = tx.authenticate(secret.expose(), t0()).await.unwrap();
    assert_eq!(
        (who.user.id, who.token, who.org.kind),
        (admin.id, info.id, OrgKind::CoordinationCentre)
    );

    // Wrong secret with the right id, and a malformed text: both unauthenticated.
    let mut forged = secret.expose().to_owned();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    for bad in [forged.as_str(), "Bearer nonsense", ""] {
        let err = tx.authenticate(bad, t0()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{bad}");
    }
    // Expiry is exclusive: at the instant of expiry the token no longer works.
    let err = tx
        .authenticate(secret.expose(), info.expires_at)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");

    // Revocation.
    let (second, second_secret) = tx
        .issue_token(admin.id, "ci", t0() + Duration::hours(1), t0())
        .await
        .unwrap();
    let revoked = tx
        .revoke_token(second.id, t0() + Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(t0() + Duration::minutes(5)));
    let err = tx
        .authenticate(second_secret.expose(), t0() + Duration::minutes(6))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("revoked"), "{err}");
    let err = tx
        .revoke_token(second.id, t0() + Duration::minutes(7))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    let all = tx.tokens(Some(admin.id)).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(
        all[1].revoked_at,
        Some(t0() + Duration::minutes(5)),
        "first revocation time kept"
    );
    assert!(tx.tokens(Some(UserId(999))).await.unwrap().is_empty());
    // Only the digest is stored: the secret text appears nowhere in what is read back.
    let listed = format!("{all:?}");
    assert!(!listed.contains(&secret.expose()[15..]));
}

async fn token_issue_refuses_bad_requests(store: Store) {
    let mut tx = store.begin().await.unwrap();
    let (admin, _, _) = tx
        .bootstrap_admin("Centre", "admin", Duration::days(1), t0())
        .await
        .unwrap()
        .unwrap();
    let past = tx
        .issue_token(admin.id, "late", t0(), t0())
        .await
        .unwrap_err();
    assert_eq!(past.kind(), ErrorKind::InvalidInput);
    let ghost = tx
        .issue_token(UserId(555), "ghost", t0() + Duration::days(1), t0())
        .await
        .unwrap_err();
    assert_eq!(ghost.kind(), ErrorKind::InvalidInput);
    let missing = tx
        .revoke_token(mamori_core::TokenId(555), t0())
        .await
        .unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    assert_eq!(tx.tokens(None).await.unwrap().len(), 1);
}

async fn uncommitted_work_is_rolled_back(store: Store) {
    let mut tx = store.begin().await.unwrap();
    tx.create_org(&operator("Ephemeral"), t0()).await.unwrap();
    tx.rollback().await.unwrap();
    {
        let mut tx = store.begin().await.unwrap();
        tx.create_org(&operator("Dropped"), t0()).await.unwrap();
        // dropped without commit
    }
    let mut tx = store.begin().await.unwrap();
    assert!(tx.orgs().await.unwrap().is_empty());
}

async fn concurrent_writers_do_not_fail(store: Store) {
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut tx = store.begin().await?;
            tx.create_org(&operator(&format!("Org {i}")), t0()).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(())
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.orgs().await.unwrap().len(), 8);
    store.ping().await.unwrap();
}

async fn readers_do_not_wait_for_a_writer(store: Store) {
    let mut writer = store.begin().await.unwrap();
    writer.create_org(&operator("Pending"), t0()).await.unwrap();
    // While the write is open, a reader sees the committed state at once (no lock wait).
    let read = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        let mut r = store.begin_read().await.unwrap();
        let n = r.orgs().await.unwrap().len();
        r.commit().await.unwrap();
        n
    })
    .await
    .expect("a reader must not wait for the writer");
    assert_eq!(read, 0);
    writer.commit().await.unwrap();
    let mut r = store.begin_read().await.unwrap();
    assert_eq!(r.orgs().await.unwrap().len(), 1);
}

store_test_suite!(
    readers_do_not_wait_for_a_writer,
    org_round_trip,
    duplicate_and_bad_names_are_refused_without_change,
    users_fit_their_organisation,
    token_lifecycle,
    token_issue_refuses_bad_requests,
    uncommitted_work_is_rolled_back,
    concurrent_writers_do_not_fail,
);
