//! `mamori sensor run` and `mamori sensor status` (issue 6 part 5, issue 7 part 3):
//! the carrier's sensor as one process, and a look at a running one.
//!
//! `run` reads the sensor's own configuration (`--config FILE`, the format of
//! `config/sensor.example.toml`; `--data-dir` overrides its `data_dir`), starts
//! [`mamori_sensor::runtime::Sensor`], logs its status on SIGUSR1 and stops gracefully
//! (sources stopped, queues drained, detection window closed, archive flushed) on
//! SIGTERM or SIGINT.
//!
//! The runtime records its acts in the sensor's own ledger (`DATA/ledger/`, served beside
//! `/metrics` with the centre's ledger endpoints, so `mamori audit verify` checks a sensor
//! as it checks the centre) and pseudonymises with the key ring (`DATA/keys/`, one key per
//! `[keys] rotation` period; issue 6 parts 1, 2). The administration commands
//! (`overseer-token`, `ledger verify`, `keys`, `reidentify`) are in `sensor_admin.rs`.

use anyhow::Context;
use mamori_core::entry::Actor;
use mamori_core::time::Timestamp;
use mamori_flow::CryptoPanKey;
use mamori_sensor::config::SensorConfig;
use mamori_sensor::http_ledger::{self, OverseerAuth};
use mamori_sensor::keys::{KeyId, KeyRing, period_start};
use mamori_sensor::ledger::{LedgerConfig, SensorLedger};
use mamori_sensor::record::Recorder;
use mamori_sensor::runtime::{Deps, KeySource, Sensor};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The key ring as the runtime's key source: the key of each period, made (and its
/// creation recorded) when the period starts.
struct RingKeys {
    ring: KeyRing,
    period: Duration,
    /// How long kept rows may wait in the archive's buffers (their key must outlive them).
    flush: Duration,
    last: Mutex<(KeyId, CryptoPanKey)>,
}

impl RingKeys {
    fn open(
        ring: KeyRing,
        period: Duration,
        flush: Duration,
        now: Timestamp,
    ) -> anyhow::Result<Self> {
        let first = ring
            .current(now, period)
            .context("making or reading the pseudonym key of this period")?;
        Ok(Self {
            ring,
            period,
            flush,
            last: Mutex::new(first),
        })
    }
}

impl KeySource for RingKeys {
    fn key_for(&self, now: Timestamp) -> (String, CryptoPanKey) {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match self.ring.current(now, self.period) {
            Ok(k) => *last = k,
            // Until the new period's key is made and recorded, the key in use stays.
            Err(e) => tracing::warn!(error = %e, "no new pseudonym key yet; the current one stays"),
        }
        (last.0.to_string(), last.1.clone())
    }

    fn retire_unused(&self, now: Timestamp, archive_dir: &Path) -> Result<usize, String> {
        let mut needed: BTreeSet<KeyId> = self
            .ring
            .keys_in_use(archive_dir)
            .map_err(|e| e.to_string())?;
        // Rows still buffered for the archive may carry the key of the period before.
        let buffered = chrono::Duration::from_std(self.flush + Duration::from_secs(60))
            .map_err(|e| e.to_string())?;
        if let Ok(start) = period_start(now - buffered, self.period) {
            needed.insert(KeyId::for_start(start));
        }
        if let Ok(last) = self.last.lock() {
            needed.insert(last.0.clone());
        }
        self.ring
            .retire(now, &needed)
            .map(|retired| retired.len())
            .map_err(|e| e.to_string())
    }
}

fn log_format() -> crate::logging::LogConfig {
    let mut cfg = crate::logging::LogConfig::default();
    if std::env::var("MAMORI_LOG_FORMAT").as_deref() == Ok("json") {
        cfg.format = crate::logging::LogFormat::Json;
    }
    if let Ok(filter) = std::env::var("MAMORI_LOG_FILTER") {
        cfg.filter = filter;
    }
    cfg
}

/// `mamori sensor …`.
pub(crate) async fn command(
    cmd: crate::cli::SensorCommand,
    global: &crate::cli::GlobalArgs,
) -> anyhow::Result<()> {
    match cmd {
        crate::cli::SensorCommand::Run => {
            // As for every command, MAMORI_CONFIG / MAMORI_DATA_DIR stand in for the flags.
            let env = |k: &str| std::env::var_os(k).map(PathBuf::from);
            let config = global.config.clone().or_else(|| env("MAMORI_CONFIG"));
            let data_dir = global.data_dir.clone().or_else(|| env("MAMORI_DATA_DIR"));
            run(config, data_dir).await
        }
        crate::cli::SensorCommand::Status { url } => {
            tokio::task::spawn_blocking(move || status(&url)).await?
        }
        crate::cli::SensorCommand::Admin(cmd) => {
            let data_dir = admin_data_dir(global)?;
            let config = global
                .config
                .clone()
                .or_else(|| std::env::var_os("MAMORI_CONFIG").map(PathBuf::from));
            let out = tokio::task::spawn_blocking(move || {
                crate::sensor_admin::run(&data_dir, config.as_deref(), cmd)
            })
            .await??;
            #[allow(clippy::print_stdout)]
            {
                println!("{out}");
            }
            Ok(())
        }
    }
}

/// The sensor's data directory for the administration commands: `--data-dir` or
/// `MAMORI_DATA_DIR`, else the `data_dir` of the sensor configuration `--config` names,
/// else the default `/var/lib/mamori-sensor`.
fn admin_data_dir(global: &crate::cli::GlobalArgs) -> anyhow::Result<PathBuf> {
    let env = |k: &str| std::env::var_os(k).map(PathBuf::from);
    if let Some(d) = global.data_dir.clone().or_else(|| env("MAMORI_DATA_DIR")) {
        return Ok(d);
    }
    match global.config.clone().or_else(|| env("MAMORI_CONFIG")) {
        Some(path) => Ok(SensorConfig::load(&path)?.data_dir),
        None => Ok(SensorConfig::default().data_dir),
    }
}

/// `mamori sensor run`.
async fn run(config: Option<PathBuf>, data_dir: Option<PathBuf>) -> anyhow::Result<()> {
    crate::logging::init(&log_format())?;
    let path =
        config.context("mamori sensor run needs --config FILE (see config/sensor.example.toml)")?;
    let mut cfg = SensorConfig::load(&path)?;
    if let Some(d) = data_dir {
        cfg.data_dir = d;
    }
    let base = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating {}", cfg.data_dir.display()))?;
    // Relative country files are taken from the configuration's directory; made absolute
    // so the runtime's refresh finds them too.
    for p in cfg
        .geo
        .rir_delegated
        .iter_mut()
        .chain(cfg.geo.cidr_lists.iter_mut().map(|l| &mut l.path))
    {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    }
    let geo = cfg.geo.load(&base)?;
    let centre_token = cfg
        .centre
        .as_ref()
        .and_then(|c| std::env::var(&c.token_env).ok());
    // Relative file inputs are taken from the configuration's directory too.
    for p in cfg.files.paths.iter_mut().chain(cfg.files.watch.iter_mut()) {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    }
    let clock: Arc<dyn mamori_core::Clock> = Arc::new(mamori_core::time::SystemClock);
    let ledger = Arc::new(
        SensorLedger::open(
            &cfg.data_dir,
            &LedgerConfig {
                origin: cfg.ledger.origin.clone(),
                checkpoint_interval: cfg.ledger.checkpoint_interval,
            },
        )
        .with_context(|| format!("opening the sensor's ledger in {}", cfg.data_dir.display()))?,
    );
    let recorder: Arc<dyn Recorder> = ledger.clone();
    let ring = KeyRing::open(
        &cfg.data_dir,
        Arc::clone(&recorder),
        Actor {
            org: None,
            user: None,
            name: "sensor:keys".to_owned(),
        },
    )?;
    let keys = RingKeys::open(ring, cfg.keys.rotation, cfg.archive.flush, clock.now())?;
    let deps = Deps {
        clock: Arc::clone(&clock),
        keys: Arc::new(keys),
        recorder,
        geo: Arc::new(geo),
        centre_token,
    };
    let routes =
        http_ledger::router_with_clock(ledger, OverseerAuth::from_data_dir(&cfg.data_dir), clock);
    let sensor = tokio::task::spawn_blocking(move || Sensor::start_with_routes(&cfg, deps, routes))
        .await??;
    if let Some(addr) = sensor.http_addr() {
        tracing::info!(%addr, "metrics at http://{addr}/metrics, status at http://{addr}/status");
    }
    let view = sensor.view();
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = usr1.recv() => {
                let status = serde_json::to_string(&view.status())?;
                tracing::info!(status = %status, "sensor status (SIGUSR1)");
            }
        }
    }
    tracing::info!("stopping: draining queues and flushing the archive");
    let end = tokio::task::spawn_blocking(move || sensor.stop()).await?;
    tracing::info!(status = %serde_json::to_string(&end)?, "final status");
    Ok(())
}

/// `mamori sensor status --url URL`: prints the running sensor's status as JSON.
#[allow(clippy::print_stdout)]
fn status(url: &str) -> anyhow::Result<()> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{}/status", url.trim_end_matches('/'));
    let resp = agent
        .get(&url)
        .call()
        .map_err(|e| anyhow::anyhow!("GET {url}: {e}"))?;
    let status = resp.status();
    let mut text = String::new();
    #[allow(clippy::disallowed_methods)] // bounded by take()
    std::io::Read::read_to_string(
        &mut std::io::Read::take(resp.into_body().into_reader(), 16 << 20),
        &mut text,
    )?;
    if !status.is_success() {
        anyhow::bail!("GET {url}: HTTP {status}: {text}");
    }
    let v: serde_json::Value = serde_json::from_str(&text).context("the status is not JSON")?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}
