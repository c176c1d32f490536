//! The command line. Every command and subcommand has a one-line description.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// mamori (守り): an Active Cyber Defense platform for coordination centres, carriers and operators.
#[derive(Debug, Parser)]
#[command(name = "mamori", version, propagate_version = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes. Each one can also come from the config file or from a
/// `MAMORI_*` environment variable; the command line wins. These are read through the
/// layered configuration, not by clap, so their help names the variable by hand; an
/// argument with clap's `env = …` must not, or `--help` shows it twice.
#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// TOML configuration file [env: MAMORI_CONFIG]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory [env: MAMORI_DATA_DIR]. The centre's SQLite database, keys and local state [default: ./mamori-data]; for `mamori sensor`, its archive, ledger and pseudonym keys [default: data_dir of the sensor's --config, else /var/lib/mamori-sensor]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: postgres://USER@HOST/DB, or sqlite:PATH [default: SQLite in the data directory] [env: MAMORI_DATABASE_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Print results as JSON instead of text (admin commands)
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the coordination centre's server (initialises an empty data directory first)
    Serve(ServeArgs),
    /// Create the data directory and database, and print the first administrator's token once
    Init,
    /// Manage organisations, users and API tokens directly in the database
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Print the flow records in files (pcap/pcapng, Zeek conn.log, Argus binetflow, the sensor's Parquet) as JSON lines or CSV
    Flows {
        /// The files to read
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The files' format
        #[arg(long, value_enum, default_value = "auto")]
        format: crate::flows::Format,
        /// How to print records
        #[arg(long, value_enum, default_value = "json")]
        output: crate::flows::Output,
        /// Print counts per exporter and per anomaly kind to stderr at the end
        #[arg(long)]
        stats: bool,
    },
    /// The carrier's sensor: run or check it, ask a running one for its status, its operator and overseer tokens, its own ledger, its pseudonym keys, re-identification
    #[command(subcommand)]
    Sensor(SensorCommand),
    /// Find C2 servers, beacons, botnets, scanners, DDoS and indicator hits in flow files
    Detect {
        /// The files to read (anything `mamori flows` reads)
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The files' format
        #[arg(long, value_enum, default_value = "auto")]
        format: crate::flows::Format,
        /// Scan thresholds: telescope (CAIDA rule: any unsolicited probe) or slips
        #[arg(long, default_value = "slips")]
        profile: String,
        /// Indicator list: abuse.ch Feodo CSV or Spamhaus DROP/EDROP (repeatable)
        #[arg(long, value_name = "FILE")]
        indicators: Vec<PathBuf>,
        /// How many findings to print, best first
        #[arg(long, default_value = "50")]
        top: usize,
        /// Print findings as JSON lines
        #[arg(long)]
        json: bool,
        /// Also send the findings to the centre at this URL (POST /api/v1/findings; a carrier's token)
        #[arg(long, value_name = "URL")]
        post: Option<String>,
        /// The token for --post
        #[arg(long, env = "MAMORI_TOKEN", hide_env_values = true, requires = "post")]
        token: Option<String>,
        /// The TLP marking of posted findings: clear, green, amber, amber+strict, red
        #[arg(long, default_value = "amber")]
        tlp: mamori_core::Tlp,
    },
    /// Measure the detectors against labels: precision, recall and F1 per finding kind
    Eval {
        /// The flow files to run the detectors on
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The files' format
        #[arg(long, value_enum, default_value = "auto")]
        format: crate::flows::Format,
        /// Scan thresholds: telescope or slips
        #[arg(long, default_value = "slips")]
        profile: String,
        /// Indicator lists, as for detect
        #[arg(long, value_name = "FILE")]
        indicators: Vec<PathBuf>,
        /// CTU-style labelled file (conn.log.labeled or binetflow) (repeatable)
        #[arg(long, value_name = "FILE")]
        labels: Vec<PathBuf>,
        /// A ground-truth table (like GROUND_TRUTH.tsv); needs --dataset
        #[arg(long, value_name = "FILE", requires = "dataset")]
        ground_truth: Option<PathBuf>,
        /// The dataset's name in the ground-truth table
        #[arg(long)]
        dataset: Option<String>,
        /// Findings scoring below this are not counted
        #[arg(long, default_value = "0.5")]
        min_score: f64,
    },
    /// Receive NetFlow v5/v9, IPFIX and sFlow over UDP and print the records until stopped
    Collect {
        /// UDP address to listen on (repeat for several)
        #[arg(long, default_value = "127.0.0.1:2055")]
        listen: Vec<std::net::SocketAddr>,
        /// How to print records
        #[arg(long, value_enum, default_value = "json")]
        output: crate::flows::Output,
        /// Print counts per exporter to stderr every N seconds (and always at the end)
        #[arg(long, value_name = "SECS")]
        stats_every: Option<u64>,
    },
    /// Pseudonymise addresses read one per line on stdin with Crypto-PAn; prints address<TAB>pseudonym
    Pseudonymise {
        /// The 32-byte Crypto-PAn key as 64 hex digits (AES key, then padding key, as in the reference code)
        #[arg(long, env = "MAMORI_PSEUDONYM_KEY", hide_env_values = true)]
        key_hex: String,
    },
    /// The overseer's tools: verify the ledger independently, print transparency figures
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Report an incident to the centre's one window, and follow its status
    #[command(subcommand)]
    Report(ReportCommand),
    /// Everything your organisation may see (reports as STIX, TAXII objects) as one STIX 2.1 bundle on standard output
    Export {
        #[command(flatten)]
        centre: CentreArgs,
        /// Only what was received or added at or after this time (RFC 3339)
        #[arg(long)]
        since: Option<String>,
        /// Only these STIX types, comma-separated (a report is an incident, its stages notes)
        #[arg(long)]
        types: Option<String>,
    },
    /// Inspect the effective configuration
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Verify a ledger (the centre's or a carrier sensor's): signature, every entry, consistency with the saved checkpoint
    Verify {
        /// The log's base URL: the centre (e.g. https://centre.example.jp) or a sensor's HTTP endpoint
        #[arg(long)]
        url: String,
        /// The ledger's verifier key (name+keyid+key text, or a file holding it, e.g. ledger.pub)
        #[arg(long)]
        key: String,
        /// An overseer's API token
        #[arg(long, env = "MAMORI_TOKEN", hide_env_values = true)]
        token: String,
        /// File with the checkpoint saved by the last run: checked for consistency, then replaced
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
    },
    /// Count the recorded acts of each kind in a period (the figures of a transparency report)
    Report {
        /// Start of the period: RFC 3339 time, or a date (00:00 JST)
        #[arg(long)]
        from: String,
        /// End of the period (exclusive): RFC 3339 time, or a date (00:00 JST)
        #[arg(long)]
        to: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ReportCommand {
    /// Send a flash report (JSON, or a STIX 2.1 bundle) and print the status resource
    Submit {
        /// The report: a flash report as JSON, or a STIX 2.1 bundle (see docs/REPORTING.md)
        file: PathBuf,
        #[command(flatten)]
        centre: CentreArgs,
        /// A key that makes a retry of this submission return the first answer and store nothing
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
    /// Print a report's status: each stage (pending, due, overdue, received) and the centre's duties
    Status {
        /// The report's id
        id: i64,
        #[command(flatten)]
        centre: CentreArgs,
    },
    /// List the organisations (id, kind, sector, name) that a report's exclude, route_to and share_with may name
    Orgs {
        #[command(flatten)]
        centre: CentreArgs,
    },
}

/// Where the centre is, and the token to call it with.
#[derive(Debug, Args)]
pub(crate) struct CentreArgs {
    /// The centre's base URL
    #[arg(long, env = "MAMORI_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// An API token of your organisation
    #[arg(long, env = "MAMORI_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Debug, Args, Default)]
pub(crate) struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080] [env: MAMORI_LISTEN]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Log format: human or json [default: human] [env: MAMORI_LOG_FORMAT]
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<crate::logging::LogFormat>,
}

impl Command {
    /// The serve-only flags, to layer over the configuration (none for other commands).
    pub(crate) fn serve_overrides(&self) -> Option<&ServeArgs> {
        match self {
            Command::Serve(a) => Some(a),
            _ => None,
        }
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Print the configuration after merging defaults, file, environment and flags
    Show,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AdminCommand {
    /// Register and list organisations
    #[command(subcommand)]
    Org(OrgCommand),
    /// Create and list users
    #[command(subcommand)]
    User(UserCommand),
    /// Issue, list and revoke API tokens
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum OrgCommand {
    /// Register an organisation
    Add {
        /// What it is: operator, carrier, coordination_centre, operations_unit, overseer, sector_authority, isac, foreign_partner
        #[arg(long)]
        kind: mamori_core::OrgKind,
        /// Its name (unique)
        #[arg(long)]
        name: String,
        /// Its critical-infrastructure sector, e.g. electricity, finance, telecom
        #[arg(long)]
        sector: Option<mamori_core::Sector>,
    },
    /// List every organisation
    List,
    /// Add to an organisation's registered profile: what the anonymous relay scrubs (PP-12)
    Profile {
        /// The organisation's id
        org: mamori_core::OrgId,
        /// Another name it is known by (repeatable)
        #[arg(long)]
        alias: Vec<String>,
        /// A domain it uses; subdomains and e-mail addresses at it are scrubbed too (repeatable)
        #[arg(long)]
        domain: Vec<String>,
        /// A contact detail: e-mail address or phone number (repeatable)
        #[arg(long)]
        contact: Vec<String>,
        /// An address range it holds, as CIDR (repeatable)
        #[arg(long)]
        range: Vec<String>,
    },
    /// Show an organisation and its registered profile
    Show {
        /// The organisation's id
        org: mamori_core::OrgId,
    },
    /// Record that ORG is a client of PROVIDER: TLP:AMBER shared with PROVIDER then
    /// reaches ORG too (PP-11); with --remove, end the relation
    Client {
        /// The client organisation's id
        org: mamori_core::OrgId,
        /// The provider organisation's id (a carrier, a managed security provider)
        #[arg(long = "of")]
        provider: mamori_core::OrgId,
        /// End the relation instead of recording it
        #[arg(long)]
        remove: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Create a user in an organisation
    Add {
        /// The organisation's id
        #[arg(long)]
        org: mamori_core::OrgId,
        /// Login name (unique)
        #[arg(long)]
        name: String,
        /// Role: admin, analyst, officer, overseer, member (must fit the organisation's kind)
        #[arg(long)]
        role: mamori_core::Role,
        /// Security clearance: none, confidential, secret, top_secret
        #[arg(long, default_value = "none")]
        clearance: mamori_core::Clearance,
    },
    /// List every user
    List,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Issue a token for a user and print its secret once
    Issue {
        /// The user's id
        #[arg(long)]
        user: mamori_core::UserId,
        /// What the token is for
        #[arg(long, default_value = "")]
        label: String,
        /// Lifetime in days (1–3650) [default: the server's token_lifetime_days]
        #[arg(long)]
        days: Option<u32>,
    },
    /// Revoke a token at once
    Revoke {
        /// The token's id
        id: mamori_core::TokenId,
    },
    /// List tokens (never their secrets)
    List {
        /// Only this user's tokens
        #[arg(long)]
        user: Option<mamori_core::UserId>,
    },
}

/// `mamori sensor …`. The administration commands live in `sensor_admin.rs` and are
/// flattened in beside the runtime's.
#[derive(Debug, Subcommand)]
pub(crate) enum SensorCommand {
    /// Run the sensor as configured by --config FILE (see config/sensor.example.toml); --data-dir overrides its data_dir
    Run,
    /// Check --config FILE as `run` would (values, country data, the centre's token, input files, indicator lists) without writing anything, and print the effective policy
    Check,
    /// Print a running sensor's status: rates, queues, exporters, files, the concern list (--json: as JSON)
    Status {
        /// The sensor's HTTP endpoint (plain HTTP)
        #[arg(long, default_value = "http://127.0.0.1:9464")]
        url: String,
        /// The sensor's operator token (`mamori sensor operator-token`) or its overseer's
        #[arg(long, env = "MAMORI_TOKEN", hide_env_values = true)]
        token: String,
    },
    #[command(flatten)]
    Admin(crate::sensor_admin::SensorAdminCommand),
}
