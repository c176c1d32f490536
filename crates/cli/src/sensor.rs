//! `mamori sensor run`, `check` and `status` (issue 6 part 5, issue 7 part 3; CI-5,
//! CI-6): the carrier's sensor as one process, the checks it makes before it writes
//! anything (`check` makes them alone and prints the effective policy), and a look at a
//! running one with the operator's token.
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
//! (`overseer-token`, `operator-token`, `ledger verify`, `keys`, `reidentify`) are in
//! `sensor_admin.rs`.

use anyhow::Context;
use mamori_core::entry::Actor;
use mamori_flow::CryptoPanKey;
use mamori_sensor::config::SensorConfig;
use mamori_sensor::http_ledger::{self, OverseerAuth};
use mamori_sensor::keys::KeyRing;
use mamori_sensor::ledger::{LedgerConfig, SensorLedger};
use mamori_sensor::record::Recorder;
use mamori_sensor::runtime::{Deps, RingKeys, Sensor};
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    // As for every command, MAMORI_CONFIG / MAMORI_DATA_DIR stand in for the flags.
    let env = |k: &str| std::env::var_os(k).map(PathBuf::from);
    let config = global.config.clone().or_else(|| env("MAMORI_CONFIG"));
    let data_dir = global.data_dir.clone().or_else(|| env("MAMORI_DATA_DIR"));
    match cmd {
        crate::cli::SensorCommand::Run => run(config, data_dir).await,
        crate::cli::SensorCommand::Check => {
            let out = tokio::task::spawn_blocking(move || {
                prepare(config, data_dir).map(|p| describe(&p))
            })
            .await??;
            #[allow(clippy::print_stdout)]
            {
                print!("{out}");
            }
            Ok(())
        }
        crate::cli::SensorCommand::Status { url, token } => {
            let json = global.json;
            tokio::task::spawn_blocking(move || status(&url, &token, json)).await?
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
/// else its default (`SensorConfig::default`, `/var/lib/mamori-sensor`: the one default,
/// the same in `--help`, `config/sensor.example.toml`, the README and the docs).
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

/// A configuration that passed every check `run` makes before it writes anything.
struct Prepared {
    path: PathBuf,
    cfg: SensorConfig,
    geo: mamori_flow::GeoTable,
    centre_token: Option<String>,
}

/// Every check of `mamori sensor run` that needs no write (CI-5, CI-6): the file and its values, country data, the centre's token, the input files and
/// watched directories, the indicator lists and the selection policy. Reads only: `check`
/// runs exactly this, and `run` writes nothing (no data directory, ledger key or pseudonym
/// key) before it has passed.
fn prepare(config: Option<PathBuf>, data_dir: Option<PathBuf>) -> anyhow::Result<Prepared> {
    let path =
        config.context("mamori sensor needs --config FILE (see config/sensor.example.toml)")?;
    let mut cfg = SensorConfig::load(&path)?;
    if let Some(d) = data_dir {
        cfg.data_dir = d;
    }
    cfg.check_for_run()
        .with_context(|| format!("checking {}", path.display()))?;
    let base = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    // Relative files are taken from the configuration's directory; made absolute so the
    // runtime's refresh and file readers find them too.
    for p in cfg
        .geo
        .rir_delegated
        .iter_mut()
        .chain(cfg.geo.cidr_lists.iter_mut().map(|l| &mut l.path))
        .chain(cfg.files.paths.iter_mut())
        .chain(cfg.files.watch.iter_mut())
    {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    }
    if cfg.data_dir.exists() && !cfg.data_dir.is_dir() {
        anyhow::bail!(
            "data_dir {} is not a directory: name the sensor's data directory",
            cfg.data_dir.display()
        );
    }
    let geo = cfg.geo.load(&base)?;
    let centre_token = match &cfg.centre {
        None => None,
        Some(c) => match std::env::var(&c.token_env) {
            Ok(t) if !t.trim().is_empty() => Some(t),
            _ => anyhow::bail!(
                "[centre] is configured but the environment variable {} holding the carrier's \
                 token for {} is not set: set it, or remove [centre] to only count findings",
                c.token_env,
                c.url
            ),
        },
    };
    for p in &cfg.files.paths {
        std::fs::File::open(p)
            .with_context(|| format!("[files] paths: cannot read {}", p.display()))?;
    }
    for d in &cfg.files.watch {
        std::fs::read_dir(d)
            .with_context(|| format!("[files] watch: cannot list {}", d.display()))?;
    }
    if !cfg.detection.indicators.is_empty() {
        mamori_sensor::runtime::load_indicators(&cfg.detection.indicators)?;
    }
    // The policy's own checks (the key here only lets it be built; none is made or read).
    mamori_flow::Selector::new(cfg.selection.clone(), &CryptoPanKey::from_bytes([0; 32]))
        .context("selection policy")?;
    Ok(Prepared {
        path,
        cfg,
        geo,
        centre_token,
    })
}

/// Whether the UDP and HTTP addresses can be bound, tried (and let go) before anything is
/// written, so a port in use refuses the start before the ledger or a key is made. Not in
/// `check`, which may run beside the sensor that holds them.
fn ports_free(cfg: &SensorConfig) -> anyhow::Result<()> {
    for addr in &cfg.collector.listen {
        std::net::UdpSocket::bind(addr)
            .with_context(|| format!("[collector] listen: cannot listen on UDP {addr}"))?;
    }
    if cfg.http.enabled {
        let addr = cfg.http.listen;
        std::net::TcpListener::bind(addr)
            .with_context(|| format!("[http] listen: cannot listen on {addr}"))?;
    }
    Ok(())
}

/// The effective policy, as `mamori sensor check` prints it.
fn describe(p: &Prepared) -> String {
    use std::fmt::Write as _;
    let c = &p.cfg;
    let d = mamori_sensor::config::format_duration;
    let mut o = String::new();
    let _ = writeln!(o, "{}: the sensor can start with it.", p.path.display());
    let _ = writeln!(o, "data directory      {}", c.data_dir.display());
    let sel = &c.selection;
    let prefixes: Vec<String> = sel
        .subscriber_prefixes
        .iter()
        .map(ToString::to_string)
        .collect();
    let _ = writeln!(
        o,
        "subscribers         {} (always pseudonymised)",
        listed(&prefixes, "none listed")
    );
    let _ = writeln!(o, "home country        {}", sel.home_country);
    let _ = writeln!(
        o,
        "unknown country     counted as {:?}",
        sel.unknown_country
    );
    let (v4, v6) = p.geo.ranges();
    let _ = writeln!(
        o,
        "country data        {} file(s), {v4} IPv4 and {v6} IPv6 ranges, checked every {}",
        c.geo.rir_delegated.len() + c.geo.cidr_lists.len(),
        d(c.geo.refresh)
    );
    if let Some(age) = c
        .geo
        .oldest_age(mamori_core::Clock::now(&mamori_core::time::SystemClock))
    {
        let stale = !c.geo.max_age.is_zero() && age > c.geo.max_age;
        let _ = writeln!(
            o,
            "country data age    oldest file {} day(s) (max_age {}){}",
            age.as_secs() / 86_400,
            d(c.geo.max_age),
            if stale {
                ": OUT OF DATE, fetch the RIRs' current files"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(
        o,
        "kept                flows with a foreign end: aggregates per server every {} s \
         (at most {}), per flow only for servers on the concern list",
        sel.aggregate_bin_seconds, sel.max_aggregates
    );
    for r in &sel.drop_rules {
        let _ = writeln!(
            o,
            "dropped by rule     {:?} {:?} ports {:?}",
            r.name, r.protocol, r.ports
        );
    }
    let _ = writeln!(
        o,
        "retention           flows {}, aggregates {}",
        d(c.retention.flows),
        d(c.retention.aggregates)
    );
    let _ = writeln!(
        o,
        "detection           {}; window {}, score ≥ {}, concerns expire after {}, {} indicator list(s)",
        if c.detection.enabled { "on" } else { "off" },
        d(c.detection.window),
        c.detection.min_score,
        d(c.detection.concern_expiry),
        c.detection.indicators.len()
    );
    let listen: Vec<String> = c.collector.listen.iter().map(ToString::to_string).collect();
    let exporters: Vec<String> = c
        .collector
        .exporters
        .iter()
        .map(ToString::to_string)
        .collect();
    let _ = writeln!(
        o,
        "UDP                 {}; exporters {}; at most {} counted one by one",
        listed(&listen, "off"),
        listed(&exporters, "any source"),
        c.collector.max_exporters
    );
    let _ = writeln!(
        o,
        "files               {} file(s), {} watched director(y/ies), format {:?}",
        c.files.paths.len(),
        c.files.watch.len(),
        c.files.format
    );
    match &c.centre {
        Some(centre) => {
            let _ = writeln!(
                o,
                "centre              {} as TLP:{}, token from {} (set)",
                centre.url, centre.tlp, centre.token_env
            );
        }
        None => {
            let _ = writeln!(
                o,
                "centre              none: findings are counted and logged only"
            );
        }
    }
    let _ = writeln!(
        o,
        "HTTP                {}",
        if c.http.enabled {
            format!(
                "http://{} (plain HTTP): /metrics open, /status with the operator's or overseer's token",
                c.http.listen
            )
        } else {
            "off".to_owned()
        }
    );
    o
}

/// `mamori sensor run`.
async fn run(config: Option<PathBuf>, data_dir: Option<PathBuf>) -> anyhow::Result<()> {
    crate::logging::init(&log_format())?;
    let Prepared {
        cfg,
        geo,
        centre_token,
        ..
    } = tokio::task::spawn_blocking(move || prepare(config, data_dir)).await??;
    ports_free(&cfg)?;
    // Every check passed: from here on the data directory is written.
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating {}", cfg.data_dir.display()))?;
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
    let keys = RingKeys::open(ring, cfg.keys.rotation, cfg.archive.flush, clock.now())
        .context("making or reading the pseudonym key of this period")?;
    let deps = Deps {
        clock: Arc::clone(&clock),
        keys: Arc::new(keys),
        recorder,
        geo: Arc::new(geo),
        centre_token,
    };
    let routes =
        http_ledger::router_with_clock(ledger, OverseerAuth::from_data_dir(&cfg.data_dir), clock);
    let data_dir = cfg.data_dir.clone();
    let sensor = tokio::task::spawn_blocking(move || Sensor::start_with_routes(&cfg, deps, routes))
        .await??;
    if let Some(addr) = sensor.http_addr() {
        tracing::info!(%addr, "metrics at http://{addr}/metrics, status at http://{addr}/status (with a token)");
        if !data_dir
            .join(http_ledger::OPERATOR_TOKEN_DIGEST_FILE)
            .exists()
        {
            tracing::info!(
                "no operator token yet: /status refuses every request until `mamori sensor operator-token` makes one"
            );
        }
    }
    let view = sensor.view();
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    // A stage that panicked stops the sensor: `stop` below returns the panic, naming it.
    let mut health = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = health.tick() => {
                if let Some(stage) = sensor.failed_stage() {
                    tracing::error!(%stage, "a sensor stage panicked: stopping");
                    break;
                }
            }
            _ = int.recv() => break,
            _ = usr1.recv() => {
                let status = serde_json::to_string(&view.status())?;
                tracing::info!(status = %status, "sensor status (SIGUSR1)");
            }
        }
    }
    tracing::info!("stopping: draining queues and flushing the archive");
    let end = tokio::task::spawn_blocking(move || sensor.stop()).await??;
    tracing::info!(status = %serde_json::to_string(&end)?, "final status");
    Ok(())
}

/// `mamori sensor status --url URL --token TOKEN`: the running sensor's status, for a
/// person (rates, queues, exporters, files, the concern list) or as JSON (`--json`).
#[allow(clippy::print_stdout)]
fn status(url: &str, token: &str, json: bool) -> anyhow::Result<()> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{}/status", url.trim_end_matches('/'));
    let resp = agent
        .get(&url)
        .header("Authorization", &format!("Bearer {}", token.trim()))
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
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!(
            "{}",
            readable(
                &v,
                mamori_core::Clock::now(&mamori_core::time::SystemClock).timestamp_millis()
            )
        );
    }
    Ok(())
}

/// The status for a person. Rates are averages since start (the status holds totals).
fn readable(v: &serde_json::Value, now_ms: i64) -> String {
    use std::fmt::Write as _;
    let n = |p: &str| {
        v.pointer(p)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    let up = v["uptime_seconds"].as_f64().unwrap_or(0.0).max(1e-9);
    let rate = |total: u64| total as f64 / up;
    let mut o = String::new();
    let _ = writeln!(o, "up {up:.0} s (rates are averages since start)");
    let seen = n("/selection/seen");
    let _ = writeln!(
        o,
        "records        {seen} seen ({:.1}/s), {} kept per flow, {} aggregated, {} dropped by the selection",
        rate(seen),
        n("/selection/kept_per_flow"),
        n("/selection/aggregated"),
        v["selection"]["dropped"].as_object().map_or(0, |m| m
            .values()
            .filter_map(serde_json::Value::as_u64)
            .sum::<u64>())
    );
    let _ = writeln!(
        o,
        "UDP            {} rejected (not an allowed exporter), {} dropped by the kernel (receive buffer full)",
        n("/collector/rejected_datagrams"),
        n("/collector/kernel_drops")
    );
    if let Some(exporters) = v["exporters"].as_object() {
        for (name, e) in exporters {
            let g = |k: &str| e[k].as_u64().unwrap_or(0);
            let last = e["last_datagram_ms"].as_i64().unwrap_or(0);
            let ago = if last > 0 {
                format!(
                    "last datagram {:.0} s ago",
                    (now_ms - last).max(0) as f64 / 1000.0
                )
            } else {
                "no datagram yet".to_owned()
            };
            let malformed: u64 = e["anomalies"].as_object().map_or(0, |m| {
                m.values().filter_map(serde_json::Value::as_u64).sum()
            });
            let _ = writeln!(
                o,
                "  exporter {name:<15} {} datagrams ({:.1}/s), {} records, {malformed} anomalies, {} records dropped; {ago}",
                g("datagrams"),
                rate(g("datagrams")),
                g("records"),
                g("dropped_records"),
            );
        }
    }
    let _ = writeln!(
        o,
        "files          {} read, {} failed, {} pending; {} records, {} malformed lines",
        n("/files_read"),
        n("/file_errors"),
        n("/files_pending"),
        n("/file_records"),
        n("/file_malformed")
    );
    if let Some(queues) = v["queues"].as_object() {
        for (stage, q) in queues {
            let g = |k: &str| q[k].as_u64().unwrap_or(0);
            let _ = writeln!(
                o,
                "  queue to {stage:<8} {} records waiting (capacity {} batches), {} batches dropped",
                g("depth_records"),
                g("capacity"),
                g("dropped_batches"),
            );
        }
    }
    let _ = writeln!(
        o,
        "archive        {} files, {} bytes, {} write errors; {} expired files deleted, {} deletions pending",
        n("/archive/files"),
        n("/archive/bytes"),
        n("/archive/errors"),
        n("/archive/reaped_files"),
        n("/archive/reaped_pending")
    );
    let _ = writeln!(
        o,
        "detection      {} windows, {} findings ({} reported, {} posted, {} failed)",
        n("/detection/windows"),
        n("/detection/findings"),
        n("/detection/findings_reported"),
        n("/detection/findings_posted"),
        n("/detection/findings_post_failed")
    );
    let _ = writeln!(
        o,
        "memory         {} MiB resident (peak {} MiB), {:.1} s CPU",
        n("/process/resident_bytes") >> 20,
        n("/process/max_resident_bytes") >> 20,
        v.pointer("/process/cpu_seconds")
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(0.0)
    );
    let concerns = v["concern_list"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let _ = writeln!(o, "concern list   {} server(s)", concerns.len());
    for c in concerns {
        let _ = writeln!(
            o,
            "  {} until {}: {}",
            c["server"].as_str().unwrap_or("?"),
            c["expires_at"].as_str().unwrap_or("?"),
            c["reason"].as_str().unwrap_or("")
        );
    }
    o
}

/// `items` joined by commas, or `empty` when there are none (for `mamori sensor check`).
fn listed(items: &[String], empty: &str) -> String {
    if items.is_empty() {
        empty.to_owned()
    } else {
        items.join(", ")
    }
}
