//! The stored ledger on every backend: roots and proofs from stored nodes agree with the
//! in-memory tree and verify; checkpoints are signed and paced; an act whose ledger append
//! fails does not happen (DESIGN invariant 7; CI-5, AN-7).

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use chrono::Duration;
use mamori_core::time::{Timestamp, from_millis};
use mamori_core::{ErrorKind, UserId};
use mamori_ledger::{Checkpoint, MemoryTree, verify_consistency, verify_inclusion};
use mamori_oversight::entry::{Decision, MeasureStep};
use mamori_oversight::{Act, Actor, Entry, Ledger, LedgerConfig, acts};
use mamori_store::{Store, store_test_suite};

fn t0() -> Timestamp {
    from_millis(1_790_000_000_000).unwrap()
}

fn entry(i: u64) -> Entry {
    let act = match i % 3 {
        0 => Act::CommsAccess {
            query: format!("flows to 203.0.113.{}", i % 250),
            purpose: "c2 hunt".into(),
            records: i,
        },
        1 => Act::Approval {
            subject: format!("measure:{i}"),
            decision: Decision::Approved,
            reason: "necessary".into(),
        },
        _ => Act::Measure {
            measure: format!("measure:{i}"),
            step: MeasureStep::Applied,
            target: "198.51.100.7".into(),
            reason: "c2".into(),
        },
    };
    Entry::new(
        t0() + Duration::seconds(i as i64),
        Actor {
            org: None,
            user: Some(UserId(1)),
            name: "analyst".into(),
        },
        act,
    )
}

async fn roots_and_proofs_match_the_in_memory_tree(store: Store) {
    let mut mem = MemoryTree::new();
    // Appends in uneven batches, so frontiers are rebuilt from stored nodes many times.
    let mut next = 0u64;
    for batch in [1u64, 2, 5, 1, 13, 8, 40] {
        let es: Vec<Entry> = (next..next + batch).map(entry).collect();
        let mut tx = store.begin().await.unwrap();
        let range = mamori_oversight::append(&mut tx, &es).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(range, next..next + batch);
        for e in &es {
            mem.push(&e.encode()).unwrap();
        }
        next += batch;
    }
    let n = next;
    let mut tx = store.begin().await.unwrap();
    for size in [1, 2, 3, 7, 8, 9, 31, 32, 33, n] {
        let stored = mamori_oversight::root(&mut tx, size).await.unwrap();
        let mut prefix = MemoryTree::new();
        for i in 0..size {
            prefix.push(&entry(i).encode()).unwrap();
        }
        assert_eq!(stored, prefix.root().unwrap(), "root at {size}");
    }
    let root_n = mem.root().unwrap();
    for (index, size) in [(0, 1), (0, n), (5, 9), (n - 1, n), (31, 33), (17, 40)] {
        let proof = mamori_oversight::inclusion_proof(&mut tx, index, size)
            .await
            .unwrap();
        let mut prefix = MemoryTree::new();
        for i in 0..size {
            prefix.push(&entry(i).encode()).unwrap();
        }
        let leaf = mamori_ledger::leaf_hash(&entry(index).encode());
        verify_inclusion(index, size, &leaf, &proof.path, &prefix.root().unwrap()).unwrap();
    }
    for (from, to) in [(1, 2), (3, 7), (8, n), (n, n), (33, 64.min(n))] {
        let proof = mamori_oversight::consistency_proof(&mut tx, from, to)
            .await
            .unwrap();
        let root_at = |k: u64| {
            let mut t = MemoryTree::new();
            for i in 0..k {
                t.push(&entry(i).encode()).unwrap();
            }
            t.root().unwrap()
        };
        verify_consistency(from, to, &root_at(from), &root_at(to), &proof.path).unwrap();
    }
    // Beyond the end: a clear, client-side error.
    let err = mamori_oversight::inclusion_proof(&mut tx, 0, n + 1)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let err = mamori_oversight::consistency_proof(&mut tx, 5, 4)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    // Entries come back byte for byte, paged.
    let page = mamori_oversight::entries(&mut tx, 60, 10_000)
        .await
        .unwrap();
    assert_eq!(page.len() as u64, n - 60);
    assert_eq!(page[0], (60, entry(60).encode()));
    assert!(
        mamori_oversight::entries(&mut tx, n, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(root_n, mamori_oversight::root(&mut tx, n).await.unwrap());
}

async fn checkpoints_are_signed_and_paced(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LedgerConfig {
        origin: "centre.test/ledger".into(),
        checkpoint_interval_secs: 60,
    };
    let (ledger, created) = Ledger::open(dir.path(), &cfg).unwrap();
    assert!(created);
    let (again, created) = Ledger::open(dir.path(), &cfg).unwrap();
    assert!(!created);
    assert_eq!(
        again.verifier().to_string(),
        ledger.verifier().to_string(),
        "the key persists"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("ledger.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the private key is private");
    }

    let empty = ledger.checkpoint(&store, t0(), false).await.unwrap();
    assert_eq!(empty.size, 0);
    let mut tx = store.begin().await.unwrap();
    mamori_oversight::append(&mut tx, &[entry(0), entry(1)])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // Within the interval: the old checkpoint stands; forced: a new one.
    let same = ledger
        .checkpoint(&store, t0() + Duration::seconds(10), false)
        .await
        .unwrap();
    assert_eq!(same.size, 0);
    let forced = ledger
        .checkpoint(&store, t0() + Duration::seconds(11), true)
        .await
        .unwrap();
    assert_eq!(forced.size, 2);
    let opened = Checkpoint::open(
        forced.note.as_bytes(),
        "centre.test/ledger",
        &[ledger.verifier()],
    )
    .unwrap();
    assert_eq!(opened.checkpoint().size(), 2);
    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        opened.checkpoint().root(),
        mamori_oversight::root(&mut tx, 2).await.unwrap()
    );
    tx.commit().await.unwrap();
    // After the interval, growth gets a new checkpoint unasked.
    let mut tx = store.begin().await.unwrap();
    mamori_oversight::append(&mut tx, &[entry(2)])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        ledger
            .checkpoint(&store, t0() + Duration::seconds(30), false)
            .await
            .unwrap()
            .size,
        2
    );
    assert_eq!(
        ledger
            .checkpoint(&store, t0() + Duration::seconds(80), false)
            .await
            .unwrap()
            .size,
        3
    );
    // A different key does not verify it.
    let other = tempfile::tempdir().unwrap();
    let (stranger, _) = Ledger::open(other.path(), &cfg).unwrap();
    assert!(
        Checkpoint::open(
            forced.note.as_bytes(),
            "centre.test/ledger",
            &[stranger.verifier()]
        )
        .is_err()
    );
}

async fn an_act_whose_append_fails_does_not_happen(store: Store) {
    let mut tx = store.begin().await.unwrap();
    let (admin, _, _) = tx
        .bootstrap_admin("Centre", "admin", Duration::days(1), t0())
        .await
        .unwrap()
        .unwrap();
    tx.commit().await.unwrap();
    let tokens_before = store
        .begin()
        .await
        .unwrap()
        .tokens(None)
        .await
        .unwrap()
        .len();

    // Sabotage: every insert into the ledger fails, as a full disk or a broken table would.
    let mut tx = store.begin().await.unwrap();
    let sabotage = if tx.is_postgres() {
        "CREATE FUNCTION fail_ledger() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'forced ledger failure'; END $$ LANGUAGE plpgsql;
         CREATE TRIGGER fail_ledger BEFORE INSERT ON ledger_entries FOR EACH ROW EXECUTE FUNCTION fail_ledger();"
    } else {
        "CREATE TRIGGER fail_ledger BEFORE INSERT ON ledger_entries BEGIN SELECT RAISE(ABORT, 'forced ledger failure'); END;"
    };
    tx.execute_raw(sabotage).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    let result = acts::issue_token(
        &mut tx,
        Actor::local_cli(),
        admin.id,
        "doomed",
        t0() + Duration::days(1),
        t0(),
    )
    .await;
    assert!(result.is_err(), "the append failed, so the act must fail");
    drop(tx); // the caller's transaction is abandoned: rolled back
    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.tokens(None).await.unwrap().len(),
        tokens_before,
        "no token without its ledger entry"
    );
    assert_eq!(tx.ledger_size().await.unwrap(), 0);
    tx.execute_raw("DROP TRIGGER fail_ledger ON ledger_entries")
        .await
        .ok();
    tx.rollback().await.unwrap();

    // Without sabotage the same act commits with its entry.
    let mut tx = store.begin().await.unwrap();
    let drop_sql = if tx.is_postgres() {
        "DROP TRIGGER fail_ledger ON ledger_entries"
    } else {
        "DROP TRIGGER fail_ledger"
    };
    tx.execute_raw(drop_sql).await.unwrap();
    let (info, _) = acts::issue_token(
        &mut tx,
        Actor::local_cli(),
        admin.id,
        "fine",
        t0() + Duration::days(1),
        t0(),
    )
    .await
    .unwrap();
    acts::revoke_token(&mut tx, Actor::local_cli(), info.id, t0())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let stored = mamori_oversight::entries(&mut tx, 0, 10).await.unwrap();
    let kinds: Vec<&'static str> = stored
        .iter()
        .map(|(_, b)| Entry::decode(b).unwrap().act.kind())
        .collect();
    assert_eq!(kinds, ["token_issued", "token_revoked"]);
    let counts = mamori_oversight::counts(&mut tx, t0(), t0() + Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(
        (
            counts["token_issued"],
            counts["token_revoked"],
            counts["deletion"]
        ),
        (1, 1, 0)
    );
    let later = mamori_oversight::counts(
        &mut tx,
        t0() + Duration::seconds(1),
        t0() + Duration::days(1),
    )
    .await
    .unwrap();
    assert_eq!(later["token_issued"], 0, "the period bounds the count");
}

store_test_suite!(
    roots_and_proofs_match_the_in_memory_tree,
    checkpoints_are_signed_and_paced,
    an_act_whose_append_fails_does_not_happen,
);
