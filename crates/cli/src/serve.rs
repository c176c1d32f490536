//! `mamori init` and `mamori serve`.

use crate::config::MamoriConfig;
use anyhow::{Context, bail};
use chrono::Duration;
use mamori_core::Clock;
use mamori_core::time::{SystemClock, display_jst, rfc3339};
use mamori_server::{AppState, router};
use mamori_store::{Store, TokenInfo, TokenSecret};

const CENTRE_NAME: &str = "Coordination centre";
const ADMIN_NAME: &str = "admin";

fn where_data_lives(cfg: &MamoriConfig) -> String {
    match cfg
        .store
        .database_url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
    {
        Some(url) if url.starts_with("postgres") => "PostgreSQL".to_owned(),
        Some(url) => url.to_owned(),
        None => format!("SQLite at {}", cfg.store.default_sqlite_path().display()),
    }
}

pub(crate) async fn open_store(cfg: &MamoriConfig) -> anyhow::Result<Store> {
    Store::open(&cfg.store)
        .await
        .with_context(|| format!("cannot open the database ({})", where_data_lives(cfg)))
}

/// Creates the first administrator on an empty database; `None` if it was not empty.
async fn bootstrap(
    store: &Store,
    cfg: &MamoriConfig,
) -> anyhow::Result<Option<(TokenInfo, TokenSecret)>> {
    let now = SystemClock.now();
    let lifetime = Duration::days(i64::from(cfg.server.token_lifetime_days.max(1)));
    let mut tx = store.begin().await?;
    let made = tx
        .bootstrap_admin(CENTRE_NAME, ADMIN_NAME, lifetime, now)
        .await?;
    if let Some((user, info, _)) = &made {
        // The first token is an act like any other: it goes into the ledger with it.
        let act = mamori_oversight::Act::TokenIssued {
            token: info.id,
            user: user.id,
            expires_at: info.expires_at,
        };
        let entry = mamori_oversight::Entry::new(now, mamori_oversight::Actor::local_cli(), act);
        mamori_oversight::append(&mut tx, &[entry]).await?;
    }
    tx.commit().await?;
    Ok(made.map(|(_, info, secret)| (info, secret)))
}

fn token_notice(info: &TokenInfo) -> String {
    format!(
        "This is the first administrator's token ({ADMIN_NAME}, token id {}). It is shown once and \
         only its digest is kept: store it now. It expires {} ({}). Use it as \
         `Authorization: Bearer <token>`; issue more with `mamori admin token issue`.",
        info.id,
        rfc3339(info.expires_at),
        display_jst(info.expires_at)
    )
}

/// The ledger's signing key from the data directory, created on first use.
pub(crate) fn open_ledger(cfg: &MamoriConfig) -> anyhow::Result<(mamori_oversight::Ledger, bool)> {
    std::fs::create_dir_all(&cfg.store.data_dir)
        .with_context(|| format!("creating {}", cfg.store.data_dir.display()))?;
    mamori_oversight::Ledger::open(&cfg.store.data_dir, &cfg.ledger)
        .context("opening the ledger's signing key")
}

/// `mamori init`.
#[allow(clippy::print_stdout, clippy::print_stderr)] // the token goes to stdout, once
pub(crate) async fn init(cfg: &MamoriConfig) -> anyhow::Result<()> {
    let store = open_store(cfg).await?;
    let Some((info, secret)) = bootstrap(&store, cfg).await? else {
        bail!(
            "the database ({}) is already initialised: issue more tokens with `mamori admin token issue`",
            where_data_lives(cfg)
        );
    };
    store.close().await;
    let (ledger, _) = open_ledger(cfg)?;
    eprintln!("Initialised mamori: {}.", where_data_lives(cfg));
    eprintln!(
        "The ledger's verifier key (give it to the overseer; also in {}):\n    {}",
        cfg.store
            .data_dir
            .join(mamori_oversight::PUBLIC_KEY_FILE)
            .display(),
        ledger.verifier()
    );
    eprintln!("{}", token_notice(&info));
    println!("{}", secret.expose());
    Ok(())
}

/// `mamori serve`.
pub(crate) async fn serve(cfg: MamoriConfig) -> anyhow::Result<()> {
    // Checked before anything is opened: a bad regime file stops the start, naming it.
    let regime = cfg.server.load_regime()?;
    let store = open_store(&cfg).await?;
    if let Some((info, secret)) = bootstrap(&store, &cfg).await? {
        tracing::warn!(token = %info.id, "initialised an empty database with a first administrator");
        #[allow(clippy::print_stderr)] // a secret never goes into the log
        {
            eprintln!("\n{}\n\n    {}\n", token_notice(&info), secret.expose());
        }
    }
    let (ledger, created) = open_ledger(&cfg)?;
    if created {
        tracing::warn!(key = %ledger.verifier(), "created the ledger's signing key; give the verifier key to the overseer");
    }
    let listener = tokio::net::TcpListener::bind(cfg.server.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (is another server using it?)",
                cfg.server.listen
            )
        })?;
    let addr = listener
        .local_addr()
        .context("reading the listening address")?;
    tracing::info!(%addr, database = %where_data_lives(&cfg), "mamori serving on http://{addr}");
    let mut state = AppState::new(store.clone(), cfg.server.clone(), ledger);
    if let Some(r) = regime {
        tracing::info!(regime = %r.name, "reporting regime loaded from [server.reports] regime");
        state = state.with_regime(r);
    }
    let app = router(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("the server stopped with an error")?;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C; requests in flight are finished first.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C: shutting down"),
        () = term => tracing::info!("SIGTERM: shutting down"),
    }
}
