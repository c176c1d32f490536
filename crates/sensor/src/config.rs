//! The sensor's configuration file (`mamori sensor run --config FILE`;
//! REQUIREMENTS CI-2…CI-6): what it reads, how it selects, how long it keeps, how it
//! detects, where findings go and where it reports. TOML, unknown fields refused, every
//! field optional with a default in code; `config/sensor.example.toml` documents each
//! field and is parsed by a test.
//!
//! **Architecture invariant:** the file holds no secret. The centre's token is read from
//! the environment variable the file names ([`CentreConfig::token_env`]); the pseudonym key
//! lives in the data directory and never appears here (DESIGN invariant 2).
//!
//! **API boundary:** [`SensorConfig::from_toml`] / [`SensorConfig::load`]; the parts are
//! handed to the runtime ([`crate::runtime`]).

pub use crate::archive::duration_text::format as format_duration;
use crate::archive::{RetentionPolicy, duration_text};
use crate::collector::CollectorConfig;
use crate::files::FileFormat;
use mamori_flow::{CountryCode, GeoTable, GeoTableBuilder, SelectionPolicy};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Everything `mamori sensor run` needs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SensorConfig {
    /// Where the archive, the sensor's ledger (`ledger/`, `ledger.key`, `ledger.pub`) and
    /// the pseudonym keys (`keys/`) live.
    pub data_dir: PathBuf,
    /// Pseudonym keys (`[keys]`).
    pub keys: KeysConfig,
    /// The sensor's own ledger (`[ledger]`).
    pub ledger: SensorLedgerConfig,
    /// UDP export listeners (`[collector]`; `listen = []` for none).
    pub collector: CollectorConfig,
    /// Flow files and watched directories (`[files]`).
    pub files: FilesConfig,
    /// The selection policy (`[selection]`, the format of
    /// `crates/flow/examples/selection.example.toml`).
    pub selection: SelectionPolicy,
    /// Country data (`[geo]`).
    pub geo: GeoConfig,
    /// Retention per kind (`[retention]`).
    pub retention: RetentionPolicy,
    /// Archive writing (`[archive]`).
    pub archive: ArchiveConfig,
    /// Detection on time windows (`[detection]`).
    pub detection: DetectionConfig,
    /// Where findings go (`[centre]`); absent: findings are only counted and logged.
    pub centre: Option<CentreConfig>,
    /// The HTTP endpoint for `/metrics` and `/status` (`[http]`).
    pub http: HttpConfig,
    /// Queue capacities between stages, in batches (`[queues]`).
    pub queues: QueueConfig,
}

impl Default for SensorConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("/var/lib/mamori-sensor"),
            keys: KeysConfig::default(),
            ledger: SensorLedgerConfig::default(),
            collector: CollectorConfig::default(),
            files: FilesConfig::default(),
            selection: SelectionPolicy::default(),
            geo: GeoConfig::default(),
            retention: RetentionPolicy::default(),
            archive: ArchiveConfig::default(),
            detection: DetectionConfig::default(),
            centre: None,
            http: HttpConfig::default(),
            queues: QueueConfig::default(),
        }
    }
}

/// Files read once at start, and directories polled for new files.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilesConfig {
    /// Files read once, in order, at start.
    pub paths: Vec<PathBuf>,
    /// Directories polled for new files; each file is read once, when its size has not
    /// changed between two polls (a file still being written is left for the next poll).
    pub watch: Vec<PathBuf>,
    /// Poll interval for `watch`.
    #[serde(with = "duration_text")]
    pub poll: Duration,
    /// Format of every file: `auto` (by content), `zeek`, `argus`, `pcap-exports`,
    /// `pcap-meter`.
    pub format: FileFormat,
}

impl Default for FilesConfig {
    fn default() -> Self {
        Self {
            paths: Vec::new(),
            watch: Vec::new(),
            poll: Duration::from_secs(10),
            format: FileFormat::Auto,
        }
    }
}

/// Country data for the selection.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeoConfig {
    /// RIR `delegated-*-extended-latest` (or `delegated-*-latest`) files.
    pub rir_delegated: Vec<PathBuf>,
    /// CIDR lists, one prefix per line, each of one country; loaded after the RIR files,
    /// so they win where both name a prefix.
    pub cidr_lists: Vec<CidrList>,
    /// How often the files are checked for changes (the RIRs publish daily); a changed
    /// file reloads the table, swapped in without pausing ingest. `0s`: never.
    #[serde(with = "duration_text")]
    pub refresh: Duration,
    /// When a file is older than this (by its modification time) the sensor warns — in
    /// its log, `/metrics` (`geo_data_stale`) and `/status` — that the countries it
    /// selects by are out of date. `0s`: never.
    #[serde(with = "duration_text")]
    pub max_age: Duration,
}

impl Default for GeoConfig {
    fn default() -> Self {
        Self {
            rir_delegated: Vec::new(),
            cidr_lists: Vec::new(),
            refresh: Duration::from_secs(3600),
            max_age: Duration::from_secs(30 * 86_400),
        }
    }
}

/// One country's CIDR list.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CidrList {
    /// ISO 3166-1 alpha-2.
    pub country: CountryCode,
    /// The file.
    pub path: PathBuf,
}

impl GeoConfig {
    /// Loads the files into a table (relative paths are taken from `base`).
    pub fn load(&self, base: &Path) -> Result<GeoTable, ConfigError> {
        let mut b = GeoTableBuilder::new();
        for p in &self.rir_delegated {
            let path = base.join(p);
            let f = std::fs::File::open(&path).map_err(ConfigError::io(&path))?;
            let report = b
                .add_rir_delegations(std::io::BufReader::new(f))
                .map_err(|e| ConfigError::Invalid(format!("{}: {e}", path.display())))?;
            usable(&path, &report)?;
        }
        for l in &self.cidr_lists {
            let path = base.join(&l.path);
            let f = std::fs::File::open(&path).map_err(ConfigError::io(&path))?;
            let report = b
                .add_cidr_list(std::io::BufReader::new(f), l.country)
                .map_err(|e| ConfigError::Invalid(format!("{}: {e}", path.display())))?;
            usable(&path, &report)?;
        }
        Ok(b.build())
    }
}

impl GeoConfig {
    /// Every country file, RIR files first.
    pub fn files(&self) -> Vec<PathBuf> {
        self.rir_delegated
            .iter()
            .cloned()
            .chain(self.cidr_lists.iter().map(|l| l.path.clone()))
            .collect()
    }

    /// The age at `now` of the oldest country file (by modification time; a file that
    /// cannot be read counts as infinitely old), or `None` without files.
    pub fn oldest_age(&self, now: mamori_core::Timestamp) -> Option<Duration> {
        self.files()
            .iter()
            .map(|p| {
                std::fs::metadata(p)
                    .and_then(|m| m.modified())
                    .map(|t| {
                        let modified = chrono::DateTime::<chrono::Utc>::from(t);
                        (now - modified).to_std().unwrap_or(Duration::ZERO)
                    })
                    .unwrap_or(Duration::MAX)
            })
            .max()
    }
}

/// Refuses a country file that did not parse cleanly. The selection rests on this table
/// (CI-2), so a file caught half-written, an HTML error page saved in place of a list, or a
/// wrong format must not become a table with countries missing: at start it is a
/// configuration error, on refresh the table in force stays (the RIR and CIDR files that
/// real registries publish have no malformed line).
fn usable(path: &Path, report: &mamori_flow::LoadReport) -> Result<(), ConfigError> {
    let prefixes = report.ipv4_prefixes + report.ipv6_prefixes;
    if report.malformed > 0 || prefixes == 0 {
        return Err(ConfigError::Invalid(format!(
            "{}: {} malformed line(s) and {prefixes} prefix(es); a country file must parse \
             cleanly (is it complete, and in the format its setting names?)",
            path.display(),
            report.malformed
        )));
    }
    Ok(())
}

/// Pseudonym keys (CI-4): one Crypto-PAn key per period, in the data
/// directory only, destroyed once no kept file needs it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// A new key starts every period (aligned to the Unix epoch, UTC).
    #[serde(with = "duration_text")]
    pub rotation: Duration,
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            rotation: Duration::from_secs(30 * 86_400),
        }
    }
}

/// The sensor's own ledger (CI-5, CI-9).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SensorLedgerConfig {
    /// The log's origin line, naming this sensor (e.g. `sensor.carrier.example.jp/ledger`);
    /// used when its signing key is first made. Empty: `mamori-sensor/<random id>`.
    pub origin: String,
    /// A new signed checkpoint at most this often while the log grows.
    #[serde(with = "duration_text")]
    pub checkpoint_interval: Duration,
}

impl Default for SensorLedgerConfig {
    fn default() -> Self {
        Self {
            origin: String::new(),
            checkpoint_interval: Duration::from_secs(60),
        }
    }
}

/// How kept data is written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiveConfig {
    /// Kept records and aggregates are buffered and written at least this often (and at
    /// stop): fewer, larger files compress better.
    #[serde(with = "duration_text")]
    pub flush: Duration,
    /// …or when this many rows are buffered.
    pub max_buffered_rows: usize,
    /// How often the reaper runs (deleting expired files, CI-5).
    #[serde(with = "duration_text")]
    pub reap_every: Duration,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        Self {
            flush: Duration::from_secs(300),
            max_buffered_rows: 1 << 20,
            reap_every: Duration::from_secs(600),
        }
    }
}

/// The detectors on time windows (CI-1, CI-11, CI-12).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectionConfig {
    /// Run the detectors at all.
    pub enabled: bool,
    /// Window length: the detectors see the flows whose start falls in one window, and
    /// report when it closes.
    #[serde(with = "duration_text")]
    pub window: Duration,
    /// A window also closes when no flow arrived for this long (wall clock), so an
    /// idle link or a finished file still gets its findings.
    #[serde(with = "duration_text")]
    pub idle_close: Duration,
    /// Scan thresholds: `slips` or `telescope`.
    pub profile: String,
    /// Findings below this score neither raise a concern nor go to the centre.
    pub min_score: f64,
    /// How long a server found stays on the concern list (its flows kept per record).
    #[serde(with = "duration_text")]
    pub concern_expiry: Duration,
    /// Indicator lists (abuse.ch Feodo CSV, Spamhaus DROP/EDROP).
    pub indicators: Vec<PathBuf>,
    /// How often the lists are checked for changes; a changed list is reloaded and swapped
    /// in without pausing ingest.
    #[serde(with = "duration_text")]
    pub indicators_reload: Duration,
}

impl Default for DetectionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window: Duration::from_secs(3600),
            idle_close: Duration::from_secs(300),
            profile: "slips".to_owned(),
            min_score: 0.5,
            concern_expiry: Duration::from_secs(7 * 86_400),
            indicators: Vec::new(),
            indicators_reload: Duration::from_secs(60),
        }
    }
}

/// Where findings go.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CentreConfig {
    /// The centre's base URL.
    pub url: String,
    /// The environment variable holding the carrier's token.
    #[serde(default = "default_token_env")]
    pub token_env: String,
    /// The TLP findings are shared under (`clear`, `green`, `amber`, `amber+strict`, `red`).
    #[serde(default = "default_tlp")]
    pub tlp: mamori_core::Tlp,
    /// Attempts per submission before it is counted as failed.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Timeout of one request.
    #[serde(default = "default_timeout", with = "duration_text")]
    pub timeout: Duration,
}

fn default_token_env() -> String {
    "MAMORI_SENSOR_TOKEN".to_owned()
}
fn default_tlp() -> mamori_core::Tlp {
    mamori_core::Tlp::Amber
}
fn default_attempts() -> u32 {
    5
}
fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

/// The metrics/status endpoint.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Listen address (port 0: any free port, logged at start).
    pub listen: SocketAddr,
    /// Serve at all (`false`: no endpoint; SIGUSR1 still logs the status).
    pub enabled: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
            enabled: true,
        }
    }
}

/// Queue capacities, in batches. When a queue is full the batch is dropped and counted
/// (UDP) or the file reader waits (files): the socket is never blocked.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Sources → pseudonymise+select.
    pub ingest: usize,
    /// Select → archive.
    pub archive: usize,
    /// Select → detection.
    pub detect: usize,
    /// Detection → poster (submissions of findings).
    pub findings: usize,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            ingest: 256,
            archive: 64,
            detect: 256,
            findings: 64,
        }
    }
}

/// The ISO 3166-1 alpha-2 codes officially assigned (249, as the ISO 3166 Maintenance
/// Agency lists them). RIR files also use region codes (`AP`, `EU`) and reserved ones; a
/// setting naming a country must name one of these.
const ISO_3166_ALPHA2: &str = "\
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ \
    BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ \
    CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ \
    DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR \
    GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU \
    ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ \
    LA LB LC LI LK LR LS LT LU LV LY \
    MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ \
    NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA \
    RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ \
    TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ \
    VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// Whether `code` is an assigned ISO 3166-1 alpha-2 country code.
pub fn is_assigned_country(code: CountryCode) -> bool {
    ISO_3166_ALPHA2
        .split_ascii_whitespace()
        .any(|c| c == code.as_str())
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The TOML does not parse or names unknown fields.
    #[error("sensor configuration: {0}")]
    Toml(String),
    /// A value is out of range.
    #[error("sensor configuration: {0}")]
    Invalid(String),
}

impl ConfigError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl SensorConfig {
    /// Parses and checks a configuration.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let cfg: Self = toml::from_str(text).map_err(|e| ConfigError::Toml(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(ConfigError::io(path))?;
        Self::from_toml(&text)
    }

    /// The checks that need the whole deployment, not only the file: `mamori sensor run`
    /// and `mamori sensor check` make them, a test that hands the runtime its own country
    /// table does not. Without a country file every end has an unknown country; counted as
    /// domestic (the default) every flow is dropped as domestic↔domestic.
    pub fn check_for_run(&self) -> Result<(), ConfigError> {
        let no_geo = self.geo.rir_delegated.is_empty() && self.geo.cidr_lists.is_empty();
        if no_geo && self.selection.unknown_country != mamori_flow::UnknownCountry::Foreign {
            return Err(ConfigError::Invalid(
                "no country data: [geo] names no rir_delegated or cidr_lists file, so every \
                 address has an unknown country, counted as domestic, and every flow would be \
                 dropped as domestic↔domestic; name the RIR delegation files (see \
                 config/sensor.example.toml)"
                    .into(),
            ));
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        // The rest of the selection policy is checked by `Selector::new` at start.
        if self.selection.aggregate_bin_seconds == 0 {
            return Err(ConfigError::Invalid(
                "selection.aggregate_bin_seconds must be at least 1".into(),
            ));
        }
        // A wrong value here is never a crash: it silently changes what is kept (CI-2,
        // CI-6), so each is refused with what to write.
        let home = self.selection.home_country;
        if !is_assigned_country(home) {
            return Err(ConfigError::Invalid(format!(
                "selection.home_country {:?} is not an assigned ISO 3166-1 alpha-2 country \
                 code (Japan is \"JP\"): no address would be domestic, so subscriber↔domestic \
                 flows would be kept as transit",
                home.as_str()
            )));
        }
        for l in &self.geo.cidr_lists {
            if !is_assigned_country(l.country) {
                return Err(ConfigError::Invalid(format!(
                    "geo.cidr_lists: country {:?} of {} is not an assigned ISO 3166-1 alpha-2 \
                     country code",
                    l.country.as_str(),
                    l.path.display()
                )));
            }
        }
        if self.selection.max_aggregates == 0 {
            return Err(ConfigError::Invalid(
                "selection.max_aggregates must be at least 1 (0 drops every aggregate); the \
                 default is 1000000"
                    .into(),
            ));
        }
        for p in &self.selection.subscriber_prefixes {
            if p.trunc() != *p {
                return Err(ConfigError::Invalid(format!(
                    "selection.subscriber_prefixes: {p} has host bits set; write the network \
                     {} (or a longer prefix if only part of it is the carrier's)",
                    p.trunc()
                )));
            }
        }
        for (name, d) in [
            ("retention.flows", self.retention.flows),
            ("retention.aggregates", self.retention.aggregates),
        ] {
            if d.is_zero() {
                return Err(ConfigError::Invalid(format!(
                    "{name} must be positive (e.g. \"7d\")"
                )));
            }
        }
        if self.detection.window.is_zero() {
            return Err(ConfigError::Invalid(
                "detection.window must be positive".into(),
            ));
        }
        if mamori_detect::ScanProfile::parse(&self.detection.profile).is_none() {
            return Err(ConfigError::Invalid(format!(
                "detection.profile {:?}: use slips or telescope",
                self.detection.profile
            )));
        }
        if !(0.0..=1.0).contains(&self.detection.min_score) {
            return Err(ConfigError::Invalid(
                "detection.min_score must be within 0..=1".into(),
            ));
        }
        let q = &self.queues;
        if q.ingest == 0 || q.archive == 0 || q.detect == 0 || q.findings == 0 {
            return Err(ConfigError::Invalid(
                "queue capacities must be at least 1".into(),
            ));
        }
        if let Some(c) = &self.centre {
            if c.max_attempts == 0 {
                return Err(ConfigError::Invalid(
                    "centre.max_attempts must be at least 1".into(),
                ));
            }
            if !(c.url.starts_with("http://") || c.url.starts_with("https://")) {
                return Err(ConfigError::Invalid(format!(
                    "centre.url {:?} must start with http:// or https://",
                    c.url
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_file_parses_with_every_section() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../config/sensor.example.toml"
        );
        let cfg = SensorConfig::load(Path::new(path)).unwrap();
        assert_eq!(cfg.http.listen, SocketAddr::from(([127, 0, 0, 1], 9464)));
        assert!(!cfg.selection.subscriber_prefixes.is_empty());
        assert!(!cfg.geo.rir_delegated.is_empty());
        let centre = cfg.centre.unwrap();
        assert_eq!(centre.token_env, "MAMORI_SENSOR_TOKEN");
        assert_eq!(cfg.detection.window, Duration::from_secs(3600));
        assert_eq!(cfg.retention.flows, Duration::from_secs(7 * 86_400));
    }

    #[test]
    fn empty_file_is_the_defaults() {
        assert_eq!(
            SensorConfig::from_toml("").unwrap(),
            SensorConfig::default()
        );
    }

    #[test]
    fn nonsense_is_refused_with_the_field_named() {
        let e = SensorConfig::from_toml("[detection]\nwindw = \"1h\"").unwrap_err();
        assert!(e.to_string().contains("windw"), "{e}");
        let e = SensorConfig::from_toml("[detection]\nprofile = \"fast\"").unwrap_err();
        assert!(e.to_string().contains("fast"), "{e}");
        let e = SensorConfig::from_toml("[queues]\ningest = 0").unwrap_err();
        assert!(e.to_string().contains("queue"), "{e}");
        let e = SensorConfig::from_toml("[detection]\nwindow = \"soon\"").unwrap_err();
        assert!(e.to_string().contains("soon"), "{e}");
        let e = SensorConfig::from_toml("[centre]\nurl = \"centre.example\"").unwrap_err();
        assert!(e.to_string().contains("http"), "{e}");
    }

    /// Settings that parse but would silently change what is kept (CI-2, CI-6) are
    /// refused, each naming the field and the fix.
    #[test]
    fn settings_that_would_silently_change_the_selection_are_refused() {
        for (text, needles) in [
            (
                "[selection]\nhome_country = \"JA\"",
                &["home_country", "\"JA\"", "ISO 3166-1"][..],
            ),
            (
                "[selection]\nmax_aggregates = 0",
                &["max_aggregates", "at least 1"][..],
            ),
            (
                "[retention]\nflows = \"99999999999999d\"",
                &["99999999999999d", "36500d", "flows"][..],
            ),
            (
                "[retention]\naggregates = \"0s\"",
                &["retention.aggregates"][..],
            ),
            (
                "[selection]\nsubscriber_prefixes = [\"147.32.1.7/16\"]",
                &["147.32.1.7/16", "host bits", "147.32.0.0/16"][..],
            ),
            (
                "[[geo.cidr_lists]]\ncountry = \"XX\"\npath = \"xx.cidr\"",
                &["\"XX\"", "xx.cidr"][..],
            ),
        ] {
            let e = SensorConfig::from_toml(text).unwrap_err().to_string();
            for n in needles {
                assert!(e.contains(n), "{text}: {n:?} missing from {e}");
            }
        }
        // The duration error names the duration, not another setting.
        let e = SensorConfig::from_toml("[detection]\nwindow = \"soon\"").unwrap_err();
        let e = e.to_string();
        assert!(e.contains("window") && !e.contains("retention"), "{e}");
        // Every assigned code is accepted, in either case.
        for text in ["home_country = \"jp\"", "home_country = \"ZW\""] {
            SensorConfig::from_toml(&format!("[selection]\n{text}")).unwrap();
        }
    }

    #[test]
    fn the_country_table_has_the_249_assigned_codes_once_each() {
        let codes: Vec<&str> = ISO_3166_ALPHA2.split_ascii_whitespace().collect();
        assert_eq!(codes.len(), 249);
        assert!(codes.windows(2).all(|w| w[0] < w[1]), "sorted, no repeat");
        for (code, assigned) in [("JP", true), ("JA", false), ("EU", false), ("AP", false)] {
            assert_eq!(
                is_assigned_country(code.parse().unwrap()),
                assigned,
                "{code}"
            );
        }
    }

    #[test]
    fn a_sensor_without_country_data_is_refused_to_run() {
        let cfg = SensorConfig::from_toml("").unwrap();
        let e = cfg.check_for_run().unwrap_err().to_string();
        assert!(e.contains("[geo]") && e.contains("domestic"), "{e}");
        let foreign = "[selection]\nunknown_country = \"foreign\"";
        SensorConfig::from_toml(foreign)
            .unwrap()
            .check_for_run()
            .unwrap();
    }
}
