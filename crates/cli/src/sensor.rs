//! `mamori sensor run` and `mamori sensor status` (issue 6 part 5, issue 7 part 3):
//! the carrier's sensor as one process, and a look at a running one.
//!
//! `run` reads the sensor's own configuration (`--config FILE`, the format of
//! `config/sensor.example.toml`; `--data-dir` overrides its `data_dir`), starts
//! [`mamori_sensor::runtime::Sensor`], logs its status on SIGUSR1 and stops gracefully
//! (sources stopped, queues drained, detection window closed, archive flushed) on
//! SIGTERM or SIGINT.
//!
//! **Interim pieces, replaced when the sensor's ledger and key ring are merged:** the
//! pseudonym key is one key in `DATA/pseudonym.key` (64 hex digits, created with mode
//! 0600 from the OS's randomness on first start; never printed or sent), and acts are
//! appended as canonical JSON entries to `DATA/acts.jsonl`, fsynced before the act.

use anyhow::Context;
use mamori_core::entry::Entry;
use mamori_flow::CryptoPanKey;
use mamori_sensor::config::SensorConfig;
use mamori_sensor::record::Recorder;
use mamori_sensor::runtime::{Deps, Sensor, StaticKey};
use sha2::Digest;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Appends entries to a file, one canonical JSON entry per line, fsynced.
struct FileRecorder {
    file: Mutex<std::fs::File>,
    next: Mutex<u64>,
}

impl FileRecorder {
    fn open(path: &Path) -> anyhow::Result<Self> {
        let existing = std::fs::read_to_string(path)
            .map(|t| t.lines().count() as u64)
            .unwrap_or(0);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(Self {
            file: Mutex::new(file),
            next: Mutex::new(existing),
        })
    }
}

impl Recorder for FileRecorder {
    fn record(&self, entries: &[Entry]) -> std::io::Result<u64> {
        let mut file = self
            .file
            .lock()
            .map_err(|_| std::io::Error::other("recorder poisoned"))?;
        let mut next = self
            .next
            .lock()
            .map_err(|_| std::io::Error::other("recorder poisoned"))?;
        let mut buf = Vec::new();
        for e in entries {
            buf.extend_from_slice(&e.encode());
            buf.push(b'\n');
        }
        file.write_all(&buf)?;
        file.sync_data()?;
        let first = *next;
        *next += entries.len() as u64;
        Ok(first)
    }
}

/// The one pseudonym key of `DATA/pseudonym.key`, created if missing.
fn key(data_dir: &Path) -> anyhow::Result<StaticKey> {
    let path = data_dir.join("pseudonym.key");
    if !path.exists() {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no OS randomness: {e}"))?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        writeln!(f, "{hex}")?;
        f.sync_all()?;
        tracing::info!(file = %path.display(), "pseudonym key created");
    }
    let hex =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let key = CryptoPanKey::from_hex(hex.trim())
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    // The id names the key without revealing it.
    let digest =
        sha2::Sha256::digest([b"mamori pseudonym key id\n", hex.trim().as_bytes()].concat());
    let id: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    Ok(StaticKey {
        id: format!("local-{id}"),
        key,
    })
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
    let deps = Deps {
        clock: Arc::new(mamori_core::time::SystemClock),
        keys: Arc::new(key(&cfg.data_dir)?),
        recorder: Arc::new(FileRecorder::open(&cfg.data_dir.join("acts.jsonl"))?),
        geo: Arc::new(geo),
        centre_token,
    };
    let sensor = tokio::task::spawn_blocking(move || Sensor::start(&cfg, deps)).await??;
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
