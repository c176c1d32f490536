//! The overseer's verifier against a real `mamori serve`, on SQLite and on PostgreSQL:
//! an untouched log verifies; each kind of tampering done directly in the database makes
//! `mamori audit verify` fail, naming the problem (issue 4; DESIGN invariant 7; AN-7).

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod support;

use assert_cmd::Command;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

struct Centre {
    data: tempfile::TempDir,
    db_url: Option<String>,
    overseer: String,
    child: std::process::Child,
    addr: String,
}

impl Drop for Centre {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn mamori(data: &Path, db_url: Option<&str>) -> Command {
    let mut cmd = Command::cargo_bin("mamori").unwrap();
    for (k, _) in std::env::vars() {
        if k.starts_with("MAMORI_") {
            cmd.env_remove(k);
        }
    }
    cmd.arg("--data-dir").arg(data);
    if let Some(url) = db_url {
        cmd.arg("--database-url").arg(url);
    }
    cmd
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A centre with an overseer and nine ledger entries: entry 0 the first admin token,
/// 1 the overseer's token, 2–6 more tokens, 7–8 two revocations.
#[allow(clippy::disallowed_methods)] // starts the server as an operator would
fn centre(db_url: Option<String>) -> Centre {
    let data = tempfile::tempdir().unwrap();
    let url = db_url.as_deref();
    run(mamori(data.path(), url).arg("init"));
    run(mamori(data.path(), url).args([
        "admin",
        "org",
        "add",
        "--kind",
        "overseer",
        "--name",
        "Oversight Board",
    ]));
    run(mamori(data.path(), url).args([
        "admin", "user", "add", "--org", "2", "--name", "kimura", "--role", "overseer",
    ]));
    let overseer = run(mamori(data.path(), url)
        .args(["admin", "token", "issue", "--user", "2", "--label", "audit"]));
    for _ in 0..5 {
        run(mamori(data.path(), url).args(["admin", "token", "issue", "--user", "2"]));
    }
    run(mamori(data.path(), url).args(["admin", "token", "revoke", "3"]));
    run(mamori(data.path(), url).args(["admin", "token", "revoke", "4"]));

    let mut args = vec![OsString::from("--data-dir"), data.path().into()];
    if let Some(u) = url {
        args.extend([OsString::from("--database-url"), u.into()]);
    }
    let server = support::start_serve(args, &[("MAMORI_LEDGER__CHECKPOINT_INTERVAL_SECS", "0")]);
    let (child, addr, lines) = (server.child, server.addr, server.lines);
    std::thread::spawn(move || for _ in lines {}); // keep draining the log
    Centre {
        data,
        db_url,
        overseer,
        child,
        addr,
    }
}

impl Centre {
    fn saved(&self) -> PathBuf {
        self.data.path().join("overseer-checkpoint.txt")
    }

    /// Runs `mamori audit verify`; Ok(stdout) or Err(stderr).
    fn verify(&self) -> Result<String, String> {
        let out = Command::cargo_bin("mamori")
            .unwrap()
            .args([
                "audit",
                "verify",
                "--url",
                &format!("http://{}", self.addr),
                "--key",
            ])
            .arg(self.data.path().join("ledger.pub"))
            .arg("--checkpoint")
            .arg(self.saved())
            .env("MAMORI_TOKEN", &self.overseer)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(stderr)
        }
    }

    /// The centre's database, opened directly as a tamperer would.
    async fn store(&self) -> mamori_store::Store {
        let cfg = mamori_store::StoreConfig {
            data_dir: self.data.path().to_owned(),
            database_url: self.db_url.clone(),
            max_connections: 1,
        };
        mamori_store::Store::open(&cfg).await.unwrap()
    }

    async fn tamper(&self, sql: &str) {
        let store = self.store().await;
        let mut tx = store.begin().await.unwrap();
        tx.execute_raw(sql).await.unwrap();
        tx.commit().await.unwrap();
        store.close().await;
    }

    async fn is_postgres(&self) -> bool {
        self.db_url.is_some()
    }

    /// Runs `mamori audit verify`, which must fail saying each of `says`; returns stderr.
    fn refused(&self, says: &[&str]) -> String {
        let err = self.verify().unwrap_err();
        for part in says {
            assert!(err.contains(part), "{part:?} in {err}");
        }
        err
    }

    /// Removes the leaf record the last successful verification saved, as an overseer
    /// verifying for the first time would have none.
    fn forget_record(&self) {
        let mut name = self.saved().into_os_string();
        name.push(".leaves");
        std::fs::remove_file(name).unwrap();
    }

    /// Rewrites every stored tree node from the entries as they now are, as a tamperer
    /// who knows the tree layout would, so that the centre's proofs agree with the
    /// rewritten entries (the old signed checkpoint stays).
    async fn recompute_tree(&self) {
        let store = self.store().await;
        let mut tx = store.begin().await.unwrap();
        let entries = mamori_oversight::entries(&mut tx, 0, 1000).await.unwrap();
        let mut frontier = mamori_ledger::Frontier::empty();
        let mut nodes = Vec::new();
        for (_, data) in &entries {
            frontier
                .push(mamori_ledger::leaf_hash(data), &mut nodes)
                .unwrap();
        }
        let mut sql = String::from("DELETE FROM ledger_nodes;");
        for (id, hash) in nodes {
            let blob = if self.is_postgres().await {
                format!("decode('{}', 'hex')", hash.to_hex())
            } else {
                format!("X'{}'", hash.to_hex())
            };
            sql.push_str(&format!(
                "INSERT INTO ledger_nodes (level, idx, hash) VALUES ({}, {}, {blob});",
                id.level, id.index
            ));
        }
        tx.execute_raw(&sql).await.unwrap();
        tx.commit().await.unwrap();
        store.close().await;
    }
}

async fn scenarios(
    db_url: impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<String>>>>,
) {
    // Untouched: verifies, and again (now also consistent with the saved checkpoint).
    let c = centre(db_url().await);
    let first = c.verify().unwrap();
    assert!(first.contains("verified: 9 entries"), "{first}");
    let again = c.verify().unwrap();
    assert!(
        again.contains("consistent with the saved checkpoint of size 9"),
        "{again}"
    );
    drop(c);

    // One entry's bytes rewritten.
    let c = centre(db_url().await);
    c.verify().unwrap();
    let rewrite = if c.is_postgres().await {
        "UPDATE ledger_entries SET data = convert_to(replace(convert_from(data, 'UTF8'), 'local:', 'LOCAL:'), 'UTF8') WHERE idx = 4"
    } else {
        "UPDATE ledger_entries SET data = CAST(replace(CAST(data AS TEXT), 'local:', 'LOCAL:') AS BLOB) WHERE idx = 4"
    };
    c.tamper(rewrite).await;
    let entry_4 = "entry 4 does not match the signed log";
    c.refused(&[entry_4]);
    // Without the overseer's leaf record, the centre's own proofs name it.
    c.forget_record();
    c.refused(&[entry_4]);
    // The stored tree recomputed over the rewritten entry, the old checkpoint kept: no
    // proof the centre serves verifies any more. The leaf record of the last verification
    // names the entry; without it the verifier says it cannot, rather than blame entry 0.
    c.recompute_tree().await;
    let err = c.refused(&["entries 0..9 do not match the signed log", "FILE.leaves"]);
    assert!(!err.contains("entry 0 "), "{err}");
    drop(c);
    let c = centre(db_url().await);
    c.verify().unwrap();
    c.tamper(rewrite).await;
    c.recompute_tree().await;
    c.refused(&[entry_4]);
    drop(c);

    // A middle entry deleted and the later rows renumbered to close the gap: named, with
    // the leaf record and, without it, by the centre's proofs.
    let c = centre(db_url().await);
    c.verify().unwrap();
    c.tamper(
        "DELETE FROM ledger_entries WHERE idx = 4;
         UPDATE ledger_entries SET idx = -idx WHERE idx > 4;
         UPDATE ledger_entries SET idx = -idx - 1 WHERE idx < 0;",
    )
    .await;
    c.refused(&[entry_4, "renumbered"]);
    c.forget_record();
    c.refused(&[entry_4, "renumbered"]);
    drop(c);

    // The last entries deleted, leaving the rest alone.
    let c = centre(db_url().await);
    c.verify().unwrap();
    c.tamper("DELETE FROM ledger_entries WHERE idx >= 7").await;
    let err = c.verify().unwrap_err();
    assert!(err.contains("entries 7..9 are missing"), "{err}");
    drop(c);

    // The last entries deleted thoroughly: rows, tree nodes, head and checkpoints, so the
    // centre signs a fresh, smaller log.
    let c = centre(db_url().await);
    c.verify().unwrap();
    c.tamper(
        "DELETE FROM ledger_entries WHERE idx >= 7;
         DELETE FROM ledger_nodes WHERE (idx + 1) * (1 << level) > 7;
         UPDATE ledger_head SET size = 7;
         DELETE FROM ledger_checkpoints;",
    )
    .await;
    let err = c.verify().unwrap_err();
    assert!(
        err.contains("the log shrank") && err.contains("entries 7..9 were removed"),
        "{err}"
    );
    drop(c);

    // Two entries swapped.
    let c = centre(db_url().await);
    c.verify().unwrap();
    c.tamper(
        "UPDATE ledger_entries SET idx = -1 WHERE idx = 2;
         UPDATE ledger_entries SET idx = 2 WHERE idx = 3;
         UPDATE ledger_entries SET idx = 3 WHERE idx = -1;",
    )
    .await;
    let err = c.verify().unwrap_err();
    assert!(
        err.contains("entry 2 does not match the signed log"),
        "{err}"
    );
    drop(c);

    // The whole log replaced by a consistent fork, re-signed with the centre's own key.
    let c = centre(db_url().await);
    c.verify().unwrap();
    c.tamper("DELETE FROM ledger_entries; DELETE FROM ledger_nodes; UPDATE ledger_head SET size = 0; DELETE FROM ledger_checkpoints;")
        .await;
    {
        let store = c.store().await;
        let mut tx = store.begin().await.unwrap();
        let t = mamori_core::time::from_millis(1_790_000_000_000).unwrap();
        let forged: Vec<_> = (0..12)
            .map(|i| {
                mamori_oversight::Entry::new(
                    t,
                    mamori_oversight::Actor::local_cli(),
                    mamori_oversight::Act::TokenRevoked {
                        token: mamori_core::TokenId(i + 1),
                        user: mamori_core::UserId(1),
                    },
                )
            })
            .collect();
        mamori_oversight::append(&mut tx, &forged).await.unwrap();
        tx.commit().await.unwrap();
        store.close().await;
    }
    let err = c.verify().unwrap_err();
    assert!(
        err.contains("does not verify: the log was rewritten or forked"),
        "{err}"
    );
    // Without the saved checkpoint the fork is internally consistent: the saved
    // checkpoint is what makes it detectable — which is why the overseer keeps it.
    std::fs::remove_file(c.saved()).unwrap();
    assert!(c.verify().is_ok());
    drop(c);

    // A wrong key: nothing verifies.
    let c = centre(db_url().await);
    let other = centre(db_url().await);
    let out = Command::cargo_bin("mamori")
        .unwrap()
        .args([
            "audit",
            "verify",
            "--url",
            &format!("http://{}", c.addr),
            "--key",
        ])
        .arg(other.data.path().join("ledger.pub"))
        .env("MAMORI_TOKEN", &c.overseer)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not verify with key"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_is_detected_on_sqlite() {
    scenarios(|| Box::pin(async { None })).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_is_detected_on_postgres() {
    if std::env::var("MAMORI_TEST_POSTGRES_URL").is_err() {
        mamori_store::testing::fresh_postgres_url().await; // says it skips, or fails in CI
        return;
    }
    scenarios(|| {
        Box::pin(async { Some(mamori_store::testing::fresh_postgres_url().await.unwrap()) })
    })
    .await;
}
