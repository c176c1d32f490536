//! The overseer checks a sensor's own ledger with the same `mamori audit verify` as the
//! centre's (issue 6 part 2; DESIGN invariant 7; CI-5, CI-9): the sensor's router on
//! 127.0.0.1, the real binary against it. An honest log verifies (and stays consistent as it
//! grows); a rewritten entry file, a wrong token and a wrong key fail.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use chrono::TimeZone;
use mamori_core::entry::{Act, Actor, Entry};
use mamori_sensor::http_ledger::{OverseerAuth, router};
use mamori_sensor::ledger::{LedgerConfig, SensorLedger};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn entry(i: u64) -> Entry {
    Entry::new(
        chrono::Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap()
            + chrono::Duration::seconds(i64::try_from(i).unwrap()),
        Actor {
            org: None,
            user: None,
            name: "sensor".into(),
        },
        Act::Deletion {
            what: format!("flows:2026-11-24/00/part-{i}.parquet"),
            count: i,
            content_sha256: format!("{i:064x}"),
            reason: "retention expired".into(),
        },
    )
}

/// Serves `ledger` on a free port of 127.0.0.1 from a background runtime.
fn serve(ledger: Arc<SensorLedger>, data_dir: &Path) -> String {
    let app = router(ledger, OverseerAuth::from_data_dir(data_dir));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{}", rx.recv().unwrap())
}

fn verify(url: &str, key: &Path, token: &str, saved: &Path) -> Result<String, String> {
    let out = support::mamori()
        .args(["audit", "verify", "--url", url, "--key"])
        .arg(key)
        .args(["--token", token, "--checkpoint"])
        .arg(saved)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn audit_verify_checks_a_sensor_like_the_centre() {
    let data = tempfile::tempdir().unwrap();
    let overseer = tempfile::tempdir().unwrap(); // where the centre cannot write
    let ledger = Arc::new(
        SensorLedger::open(
            data.path(),
            &LedgerConfig {
                origin: "sensor.carrier.test/ledger".into(),
                checkpoint_interval: Duration::ZERO,
            },
        )
        .unwrap(),
    );
    ledger
        .append(&(0..25).map(entry).collect::<Vec<_>>())
        .unwrap();

    // The carrier's operator makes the overseer's token; it is printed once.
    let out = support::mamori()
        .arg("--data-dir")
        .arg(data.path())
        .args(["sensor", "overseer-token"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("mamori_overseer_"), "{token}");
    let stored = std::fs::read_to_string(data.path().join("overseer.token.sha256")).unwrap();
    assert!(!stored.contains(&token), "only the digest is stored");

    let url = serve(ledger.clone(), data.path());
    let key = overseer.path().join("sensor.pub");
    std::fs::copy(data.path().join("ledger.pub"), &key).unwrap();
    let saved = overseer.path().join("checkpoint.txt");

    let ok = verify(&url, &key, &token, &saved).unwrap();
    assert!(ok.contains("verified: 25 entries"), "{ok}");
    assert!(saved.exists());

    // The log grows; the next run proves it extends the saved checkpoint.
    ledger
        .append(&(25..40).map(entry).collect::<Vec<_>>())
        .unwrap();
    let ok = verify(&url, &key, &token, &saved).unwrap();
    assert!(
        ok.contains("verified: 40 entries")
            && ok.contains("consistent with the saved checkpoint of size 25"),
        "{ok}"
    );

    // Not the overseer's token: refused.
    let err = verify(&url, &key, "mamori_overseer_guess", &saved).unwrap_err();
    assert!(err.contains("401"), "{err}");

    // Not the sensor's key: refused.
    let other = tempfile::tempdir().unwrap();
    SensorLedger::open(other.path(), &LedgerConfig::default()).unwrap();
    let err = verify(&url, &other.path().join("ledger.pub"), &token, &saved).unwrap_err();
    assert!(err.contains("does not verify"), "{err}");

    // One entry rewritten in the entry file behind the sensor's back (same length, so the
    // index still frames it): the verifier names it.
    let entries = data.path().join("ledger/entries");
    let text = std::fs::read_to_string(&entries).unwrap();
    let forged = text.replacen(
        "part-17.parquet\",\"count\":17",
        "part-17.parquet\",\"count\":71",
        1,
    );
    assert_ne!(forged, text);
    std::fs::write(&entries, forged).unwrap();
    let err = verify(&url, &key, &token, &saved).unwrap_err();
    assert!(
        err.contains("entry 17 does not match the signed log"),
        "{err}"
    );
    // The sensor's own check agrees.
    let out = support::mamori()
        .arg("--data-dir")
        .arg(data.path())
        .args(["sensor", "ledger", "verify"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("entry 17 "),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn reidentify(data: &Path, args: &[&str]) -> std::process::Output {
    support::mamori()
        .arg("--data-dir")
        .arg(data)
        .args(["sensor", "reidentify"])
        .args(args)
        .output()
        .unwrap()
}

/// `mamori sensor reidentify` (issue 6 part 2; DESIGN invariant 2; CI-4, CI-5): the entry
/// first, then the address — and no address when the entry cannot be written.
#[test]
fn reidentify_records_before_it_reveals() {
    use mamori_core::time::{Clock, ManualClock};
    use mamori_sensor::keys::KeyRing;
    let data = tempfile::tempdir().unwrap();
    let ledger = Arc::new(SensorLedger::open(data.path(), &LedgerConfig::default()).unwrap());
    let clock = ManualClock::new(chrono::Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap());
    let ring = KeyRing::open(
        data.path(),
        ledger.clone(),
        Actor {
            org: None,
            user: None,
            name: "sensor".into(),
        },
    )
    .unwrap();
    let (key_id, key) = ring
        .current(clock.now(), Duration::from_secs(86_400))
        .unwrap();
    let p = mamori_flow::CryptoPan::new(&key);
    let subscriber: std::net::IpAddr = "203.0.113.77".parse().unwrap();
    let subscriber6: std::net::IpAddr = "2001:db8:1234::42".parse().unwrap();
    let pseudonym = p.anonymise(subscriber).to_string();
    let pseudonym6 = p.anonymise(subscriber6).to_string();
    assert_ne!(pseudonym, subscriber.to_string());
    let id = key_id.to_string();

    let out = reidentify(
        data.path(),
        &[
            "--pseudonym",
            &pseudonym,
            "--key-id",
            &id,
            "--approval",
            "warrant 2026-117",
            "--purpose",
            "notify the subscriber of an infected host",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        subscriber.to_string()
    );
    let out = reidentify(
        data.path(),
        &[
            "--pseudonym",
            &pseudonym6,
            "--key-id",
            &id,
            "--approval",
            "warrant 2026-118",
            "--purpose",
            "same",
        ],
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        subscriber6.to_string()
    );

    // Both acts are in the ledger, with the approval and the purpose; the clear address is not.
    let acts: Vec<Act> = ledger
        .entries(0, 100)
        .unwrap()
        .into_iter()
        .map(|(_, b)| Entry::decode(&b).unwrap().act)
        .collect();
    assert_eq!(acts.len(), 3); // the key's creation, two re-identifications
    assert_eq!(
        acts[1],
        Act::Reidentification {
            pseudonym: format!("{pseudonym}@{id}"),
            approval: "warrant 2026-117".into(),
            purpose: "notify the subscriber of an infected host".into(),
        }
    );
    let text = String::from_utf8(
        ledger
            .entries(0, 100)
            .unwrap()
            .into_iter()
            .flat_map(|(_, b)| b)
            .collect(),
    )
    .unwrap();
    assert!(!text.contains("203.0.113.77"), "{text}");

    // No approval, no purpose: refused, nothing recorded, nothing printed.
    for args in [
        vec!["--pseudonym", &pseudonym, "--key-id", &id, "--purpose", "x"],
        vec![
            "--pseudonym",
            &pseudonym,
            "--key-id",
            &id,
            "--approval",
            "x",
        ],
        vec![
            "--pseudonym",
            &pseudonym,
            "--key-id",
            &id,
            "--approval",
            " ",
            "--purpose",
            "x",
        ],
        vec![
            "--pseudonym",
            &pseudonym,
            "--key-id",
            &id,
            "--approval",
            "x",
            "--purpose",
            "",
        ],
    ] {
        let out = reidentify(data.path(), &args);
        assert!(!out.status.success(), "{args:?}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("203.0.113.77"));
    }
    // A key that is not here.
    let out = reidentify(
        data.path(),
        &[
            "--pseudonym",
            &pseudonym,
            "--key-id",
            "20200101T000000Z",
            "--approval",
            "x",
            "--purpose",
            "y",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no pseudonym key 20200101T000000Z"));
    assert_eq!(ledger.size().unwrap(), 3);

    // The ledger cannot be written (its commit file cannot be replaced): the address is
    // not printed.
    std::fs::create_dir(data.path().join("ledger/size.tmp")).unwrap();
    let out = reidentify(
        data.path(),
        &[
            "--pseudonym",
            &pseudonym,
            "--key-id",
            &id,
            "--approval",
            "warrant 2026-119",
            "--purpose",
            "z",
        ],
    );
    assert!(!out.status.success());
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("did not record"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir(data.path().join("ledger/size.tmp")).unwrap();
    assert_eq!(ledger.size().unwrap(), 3);

    // The key list names ids only.
    let out = support::mamori()
        .arg("--data-dir")
        .arg(data.path())
        .args(["sensor", "keys"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), id);
}
