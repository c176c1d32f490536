//! The TAXII object store on every backend (STYLE principle 10; issue 8 item 5, PP-9,
//! PP-11): paging by `date_added`, the `match[…]` filters, versions, owner-only deletion,
//! status resources.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use mamori_core::time::{Timestamp, from_millis};
use mamori_core::tlp::Audience;
use mamori_core::{ErrorKind, OrgId, OrgKind, Role, Sector, Tlp};
use mamori_store::{
    NewOrg, NewStixObject, StixQuery, Store, StoredStixObject, VersionMatch, store_test_suite,
};
use std::collections::BTreeSet;

const INDICATORS: &str = "4f6d1c2e-9a3b-4c8e-8f1a-2b7d5e0c9a11";

fn t0() -> Timestamp {
    from_millis(1_790_000_000_000).unwrap()
}

async fn two_orgs(store: &Store) -> (OrgId, OrgId) {
    let mut tx = store.begin().await.unwrap();
    let mut ids = Vec::new();
    for name in ["Kanto Power", "Kansai Gas"] {
        let o = tx
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
        ids.push(o.id);
    }
    tx.commit().await.unwrap();
    (ids[0], ids[1])
}

fn obj(n: u32, version: i64, t: &str, owner: OrgId, tlp: Tlp) -> NewStixObject {
    let id = format!("{t}--00000000-0000-4000-8000-{n:012}");
    NewStixObject {
        body: format!(r#"{{"id":"{id}","v":{version}}}"#),
        id,
        object_type: t.to_owned(),
        spec_version: "2.1".to_owned(),
        version,
        version_text: format!("v{version}"),
        tlp,
        audience: Audience {
            originator: Some(owner),
            excluded: BTreeSet::from([OrgId(999)]),
            ..Audience::default()
        },
    }
}

async fn query(store: &Store, q: &StixQuery) -> Vec<StoredStixObject> {
    let mut tx = store.begin_read().await.unwrap();
    let r = tx.stix_objects(INDICATORS, q).await.unwrap();
    tx.commit().await.unwrap();
    r
}

fn ids(rows: &[StoredStixObject]) -> Vec<(String, i64)> {
    rows.iter()
        .map(|r| (r.id[r.id.len() - 2..].to_owned(), r.version))
        .collect()
}

async fn collections_are_seeded(store: Store) {
    let mut tx = store.begin_read().await.unwrap();
    let all = tx.taxii_collections().await.unwrap();
    let aliases: Vec<&str> = all.iter().map(|c| c.alias.as_str()).collect();
    assert_eq!(aliases, ["indicators", "reports"]);
    assert!(all[0].write_roles.contains(&Role::Member));
    assert!(!all[1].write_roles.contains(&Role::Member));
    assert!(!all[0].read_roles.contains(&Role::Overseer));
    assert_eq!(tx.taxii_collection("indicators").await.unwrap(), all[0]);
    assert_eq!(tx.taxii_collection(INDICATORS).await.unwrap(), all[0]);
    let e = tx.taxii_collection("nope").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

async fn pages_by_date_added_are_exact(store: Store) {
    let (a, _) = two_orgs(&store).await;
    let batch: Vec<NewStixObject> = (0..7)
        .map(|n| obj(n, 100, "indicator", a, Tlp::Green))
        .collect();
    let mut tx = store.begin().await.unwrap();
    let (first, last, n) = tx
        .insert_stix_objects(INDICATORS, a, &batch, t0())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!((last - first, n), (6, 7));
    assert_eq!(first, t0().timestamp_micros());
    // A second POST in the same microsecond still gets later date_added values.
    let mut tx = store.begin().await.unwrap();
    let (f2, _, _) = tx
        .insert_stix_objects(
            INDICATORS,
            a,
            &[obj(7, 100, "indicator", a, Tlp::Red)],
            t0(),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(f2, last + 1);

    let mut seen = Vec::new();
    let mut q = StixQuery::new(3);
    loop {
        let page = query(&store, &q).await;
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        q.added_after = page.last().map(|r| r.date_added);
        seen.extend(page);
    }
    assert_eq!(seen.len(), 8);
    assert!(seen.windows(2).all(|w| w[0].date_added < w[1].date_added));
    let last = seen.last().unwrap();
    assert_eq!((last.tlp, last.owner), (Tlp::Red, a));
    assert_eq!(last.audience.excluded, BTreeSet::from([OrgId(999)]));
    assert!(last.body.contains("000000000007"));
    // Without bodies (manifests), the rest is the same.
    q = StixQuery::new(100);
    q.with_body = false;
    let bare = query(&store, &q).await;
    assert_eq!(ids(&bare), ids(&seen));
    assert!(bare.iter().all(|r| r.body.is_empty()));
}

async fn versions_and_filters(store: Store) {
    let (a, _) = two_orgs(&store).await;
    let mut tx = store.begin().await.unwrap();
    // Object 1 in three versions, added out of order; object 2 a note.
    let batch = [
        obj(1, 200, "indicator", a, Tlp::Green),
        obj(1, 100, "indicator", a, Tlp::Green),
        obj(2, 50, "note", a, Tlp::Amber),
        obj(1, 300, "indicator", a, Tlp::Green),
    ];
    tx.insert_stix_objects(INDICATORS, a, &batch, t0())
        .await
        .unwrap();
    // The same version again is kept once.
    let (_, _, stored) = tx
        .insert_stix_objects(
            INDICATORS,
            a,
            &[obj(1, 300, "indicator", a, Tlp::Red)],
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(stored, 0);
    tx.commit().await.unwrap();

    let with = |versions: Vec<VersionMatch>| {
        let mut q = StixQuery::new(100);
        q.versions = versions;
        q
    };
    let s = |v: &[(&str, i64)]| {
        v.iter()
            .map(|(a, b)| ((*a).to_owned(), *b))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(&query(&store, &with(vec![])).await),
        s(&[("02", 50), ("01", 300)])
    );
    assert_eq!(
        ids(&query(&store, &with(vec![VersionMatch::First])).await),
        s(&[("01", 100), ("02", 50)])
    );
    assert_eq!(
        ids(&query(&store, &with(vec![VersionMatch::All])).await),
        s(&[("01", 200), ("01", 100), ("02", 50), ("01", 300)])
    );
    assert_eq!(
        ids(&query(
            &store,
            &with(vec![VersionMatch::At(200), VersionMatch::First])
        )
        .await),
        s(&[("01", 200), ("01", 100), ("02", 50)])
    );
    let mut q = with(vec![VersionMatch::All]);
    q.types = vec!["note".into()];
    assert_eq!(ids(&query(&store, &q).await), s(&[("02", 50)]));
    q.types = vec![];
    q.ids = vec!["indicator--00000000-0000-4000-8000-000000000001".into()];
    assert_eq!(query(&store, &q).await.len(), 3);
    q.spec_versions = vec!["2.0".into()];
    assert!(query(&store, &q).await.is_empty());
    // The duplicate did not overwrite the stored version's marking.
    q.spec_versions = vec![];
    assert!(query(&store, &q).await.iter().all(|r| r.tlp == Tlp::Green));
}

async fn only_the_owner_deletes(store: Store) {
    let (a, b) = two_orgs(&store).await;
    let mut tx = store.begin().await.unwrap();
    tx.insert_stix_objects(
        INDICATORS,
        a,
        &[
            obj(1, 1, "indicator", a, Tlp::Green),
            obj(1, 2, "indicator", a, Tlp::Green),
        ],
        t0(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let id = "indicator--00000000-0000-4000-8000-000000000001";
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.delete_stix_object(INDICATORS, id, b).await.unwrap(), 0);
    let e = tx
        .delete_stix_object(INDICATORS, "indicator--nope", a)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    tx.commit().await.unwrap();
    let mut q = StixQuery::new(10);
    q.versions = vec![VersionMatch::All];
    assert_eq!(query(&store, &q).await.len(), 2);
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.delete_stix_object(INDICATORS, id, a).await.unwrap(), 2);
    tx.commit().await.unwrap();
    assert!(query(&store, &q).await.is_empty());
}

async fn status_is_the_posters_only(store: Store) {
    let (a, b) = two_orgs(&store).await;
    let mut tx = store.begin().await.unwrap();
    tx.insert_taxii_status("s-1", INDICATORS, a, r#"{"id":"s-1"}"#, t0())
        .await
        .unwrap();
    let dup = tx
        .insert_taxii_status("s-1", INDICATORS, a, "{}", t0())
        .await
        .unwrap_err();
    assert_eq!(dup.kind(), ErrorKind::Conflict);
    drop(tx);
    let mut tx = store.begin().await.unwrap();
    tx.insert_taxii_status("s-1", INDICATORS, a, r#"{"id":"s-1"}"#, t0())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.begin_read().await.unwrap();
    assert_eq!(tx.taxii_status("s-1", a).await.unwrap(), r#"{"id":"s-1"}"#);
    let e = tx.taxii_status("s-1", b).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

async fn a_failed_insert_leaves_nothing(store: Store) {
    let (a, _) = two_orgs(&store).await;
    let mut tx = store.begin().await.unwrap();
    tx.insert_stix_objects(
        INDICATORS,
        a,
        &[obj(1, 1, "indicator", a, Tlp::Green)],
        t0(),
    )
    .await
    .unwrap();
    // An unknown owner breaks the foreign key: the whole transaction is refused.
    let e = tx
        .insert_stix_objects(
            INDICATORS,
            OrgId(4242),
            &[obj(2, 1, "indicator", a, Tlp::Green)],
            t0(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    drop(tx);
    assert!(query(&store, &StixQuery::new(10)).await.is_empty());
    let mut tx = store.begin().await.unwrap();
    let e = tx
        .insert_stix_objects("no-such", a, &[obj(1, 1, "indicator", a, Tlp::Green)], t0())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

async fn a_large_post_pages_the_same(store: Store) {
    // Large enough that PostgreSQL refreshes its statistics inside the transaction.
    let (a, _) = two_orgs(&store).await;
    let batch: Vec<NewStixObject> = (0..6_000)
        .map(|n| obj(n, 1, "indicator", a, Tlp::Green))
        .collect();
    let mut tx = store.begin().await.unwrap();
    let (_, _, n) = tx
        .insert_stix_objects(INDICATORS, a, &batch, t0())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(n, 6_000);
    let mut q = StixQuery::new(100);
    q.added_after = Some(t0().timestamp_micros() + 2_999);
    let page = query(&store, &q).await;
    assert_eq!(page.len(), 100);
    assert!(page[0].id.ends_with("000000003000"), "{}", page[0].id);
}

async fn concurrent_posts_get_disjoint_date_added_runs(store: Store) {
    // Writers to one collection take turns (SQLite's write lock, PostgreSQL's row lock on
    // the collection), so each POST's date_added values form one unbroken run and no
    // reader can see a later run before an earlier one commits.
    let (a, _) = two_orgs(&store).await;
    let mut tasks = Vec::new();
    for w in 0..4u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let batch: Vec<NewStixObject> = (0..50)
                .map(|n| obj(w * 1000 + n, 1, "indicator", a, Tlp::Green))
                .collect();
            let mut tx = store.begin().await.unwrap();
            tx.insert_stix_objects(INDICATORS, a, &batch, t0())
                .await
                .unwrap();
            tokio::task::yield_now().await;
            tx.commit().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let rows = query(&store, &StixQuery::new(1_000)).await;
    assert_eq!(rows.len(), 200);
    assert!(rows.windows(2).all(|w| w[0].date_added < w[1].date_added));
    for run in rows.chunks(50) {
        let writer = &run[0].id[run[0].id.len() - 4..run[0].id.len() - 3];
        assert!(
            run.iter()
                .all(|r| &r.id[r.id.len() - 4..r.id.len() - 3] == writer),
            "interleaved runs"
        );
        assert_eq!(run[49].date_added - run[0].date_added, 49);
    }
}

// The relay's centre identity (DESIGN invariant 5): the owner's versions of one object
// get a new marking and audience, bodies unchanged; other owners' rows and other objects
// are left alone.
async fn an_owner_resets_an_objects_audience(store: Store) {
    let (a, b) = two_orgs(&store).await;
    let mut tx = store.begin().await.unwrap();
    tx.insert_stix_objects(
        INDICATORS,
        a,
        &[
            obj(1, 1, "identity", a, Tlp::AmberStrict),
            obj(1, 2, "identity", a, Tlp::AmberStrict),
            obj(2, 1, "identity", a, Tlp::AmberStrict),
        ],
        t0(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let id = "identity--00000000-0000-4000-8000-000000000001";
    let open = Audience {
        originator: Some(a),
        ..Audience::default()
    };
    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.set_stix_object_audience(INDICATORS, id, b, Tlp::Clear, &open)
            .await
            .unwrap(),
        0,
        "not b's"
    );
    assert_eq!(
        tx.set_stix_object_audience(INDICATORS, id, a, Tlp::Clear, &open)
            .await
            .unwrap(),
        2
    );
    tx.commit().await.unwrap();
    let mut q = StixQuery::new(10);
    q.versions = vec![VersionMatch::All];
    let rows = query(&store, &q).await;
    assert_eq!(rows.len(), 3);
    for r in &rows {
        let reset = r.id == id;
        assert_eq!(r.tlp == Tlp::Clear, reset, "{}", r.id);
        assert_eq!(r.audience == open, reset, "{}", r.id);
        assert!(r.body.contains(&r.id), "the body is kept");
    }
}

// DESIGN invariant 5: migration 0008 makes the centre's identity in the relayed copies,
// stored by an earlier release with the first relayed report's marking and audience,
// CLEAR; other identities (a marked one, another name) are left as they were. Run again on
// SQLite by forgetting that it ran; PostgreSQL runs it on every fresh database of the
// suite.
#[tokio::test]
async fn migration_0008_makes_an_old_centre_identity_clear() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mamori.db");
    let store = Store::open_sqlite(&path, 1).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    tx.bootstrap_admin("Centre", "admin", chrono::Duration::days(1), t0())
        .await
        .unwrap()
        .unwrap();
    let centre = tx.orgs().await.unwrap()[0].id;
    let reports = tx.taxii_collection("reports").await.unwrap().id;
    let narrow = Audience {
        originator: Some(OrgId(2)),
        organisations: BTreeSet::from([centre]),
        excluded: BTreeSet::from([OrgId(3)]),
        ..Audience::default()
    };
    let identity = |n: u32, name: &str, marked: bool| {
        let id = format!("identity--00000000-0000-4000-8000-{n:012}");
        let mut body = serde_json::json!({"type": "identity", "id": id, "name": name});
        if marked {
            body["object_marking_refs"] = serde_json::json!([Tlp::AmberStrict.stix_id()]);
        }
        NewStixObject {
            body: body.to_string(),
            id,
            object_type: "identity".to_owned(),
            spec_version: "2.1".to_owned(),
            version: 1,
            version_text: "v1".to_owned(),
            tlp: Tlp::AmberStrict,
            audience: narrow.clone(),
        }
    };
    let rows = [
        identity(1, "Centre", false),
        identity(2, "Centre", true),
        identity(3, "Kanto Power", false),
    ];
    tx.insert_stix_objects(&reports, centre, &rows, t0())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    store.close().await;

    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 8")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let store = Store::open_sqlite(&path, 1).await.unwrap();
    let mut tx = store.begin_read().await.unwrap();
    let mut q = StixQuery::new(10);
    q.versions = vec![VersionMatch::All];
    let got = tx.stix_objects(&reports, &q).await.unwrap();
    tx.commit().await.unwrap();
    let clear = Audience {
        originator: Some(centre),
        ..Audience::default()
    };
    assert_eq!(got.len(), 3);
    for r in got {
        if r.id.ends_with("000000000001") {
            assert_eq!((r.tlp, &r.audience), (Tlp::Clear, &clear), "{}", r.id);
        } else {
            assert_eq!(
                (r.tlp, &r.audience),
                (Tlp::AmberStrict, &narrow),
                "{}",
                r.id
            );
        }
    }
}

store_test_suite!(
    an_owner_resets_an_objects_audience,
    concurrent_posts_get_disjoint_date_added_runs,
    a_large_post_pages_the_same,
    collections_are_seeded,
    pages_by_date_added_are_exact,
    versions_and_filters,
    only_the_owner_deletes,
    status_is_the_posters_only,
    a_failed_insert_leaves_nothing,
);
