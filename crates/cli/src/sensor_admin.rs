//! `mamori sensor …` administration at the carrier (issue 6 parts 1, 2; CI-4, CI-5, CI-9):
//! the overseer's and the operator's tokens, the sensor's ledger, its pseudonym keys, manual
//! concerns (CI-4), and re-identification of one pseudonymised address — recorded in the sensor's ledger *before* it is revealed.
//!
//! These commands work on the sensor's data directory (`--data-dir`, else the `data_dir`
//! of `--config`, else `/var/lib/mamori-sensor`) directly, beside a running sensor or
//! without one: the ledger's file lock makes them append in turn. They never make a data
//! directory or a ledger: one without a sensor's data is refused.

use anyhow::Context;
use clap::Subcommand;
use mamori_core::entry::Actor;
use mamori_core::time::{Clock, SystemClock};
use mamori_sensor::concern::{ManualConcern, record_manual};
use mamori_sensor::http_ledger::{self, TokenHolder};
use mamori_sensor::keys::KeyRing;
use mamori_sensor::ledger::{LedgerConfig, SensorLedger};
use std::path::Path;
use std::sync::Arc;

/// The administration subcommands of `mamori sensor` (flattened into it).
#[derive(Debug, Subcommand)]
pub(crate) enum SensorAdminCommand {
    /// Make a new overseer token for this sensor's ledger endpoints and /status, and print it once (replaces any earlier one)
    OverseerToken,
    /// Make a new operator token for this sensor's /status (`mamori sensor status`), and print it once (replaces any earlier one)
    OperatorToken,
    /// The sensor's own ledger: verify it locally
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// List the pseudonym keys held (their ids, the UTC start of each period; never the keys)
    Keys,
    /// Add a foreign server to the concern list, or remove one, with a reason: recorded in the sensor's ledger before it takes effect (a running sensor applies it within a second; a sensor started later finds it). Needs --config FILE (its subscriber prefixes are refused)
    #[command(subcommand)]
    Concern(ConcernCommand),
    /// Print the subscriber address behind one pseudonym, after recording the act and its approval in the sensor's ledger
    Reidentify {
        /// The pseudonymised address
        #[arg(long)]
        pseudonym: std::net::IpAddr,
        /// The id of the key it was made with (the archive file's mamori.pseudonym_key_id)
        #[arg(long, value_name = "KEY_ID")]
        key_id: mamori_sensor::keys::KeyId,
        /// The approval's reference (case, warrant or decision number)
        #[arg(long, value_name = "REF")]
        approval: String,
        /// Why the address is needed
        #[arg(long, value_name = "TEXT")]
        purpose: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConcernCommand {
    /// Put a foreign server on the concern list (its flows kept record by record), or renew it
    Add {
        /// The server's address (never a subscriber's)
        server: std::net::IpAddr,
        /// Why (case, advisory or decision number): recorded as "manual: TEXT"
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// How long, e.g. 7d, 36h (default: the configuration's [detection] concern_expiry)
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
        duration: Option<std::time::Duration>,
    },
    /// Take a server off the concern list
    Remove {
        /// The server's address
        server: std::net::IpAddr,
        /// Why: recorded as "manual: TEXT"
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    mamori_sensor::concern::parse_duration(text)
        .ok_or_else(|| format!("{text:?}: a whole number and a unit d, h, m or s, e.g. 7d"))
}

#[derive(Debug, Subcommand)]
pub(crate) enum LedgerCommand {
    /// Re-derive every entry's hash, every stored node and the last signed checkpoint's root
    Verify,
}

fn open_ledger(data_dir: &Path) -> anyhow::Result<SensorLedger> {
    SensorLedger::open(data_dir, &LedgerConfig::default())
        .with_context(|| format!("opening the sensor's ledger in {}", data_dir.display()))
}

/// Who did it, as the sensor's ledger records a person at the carrier's command line.
pub(crate) fn local_actor() -> Actor {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    Actor {
        org: None,
        user: None,
        name: format!("local:{user}"),
    }
}

/// Refuses a directory that holds no sensor: these commands work on a sensor's data and
/// never make one (CI-5: `keys` once made a ledger key in the default directory). The tokens need the directory; the rest its ledger.
fn sensor_data(data_dir: &Path, needs_ledger: bool) -> anyhow::Result<()> {
    let what = if needs_ledger {
        data_dir.join("ledger")
    } else {
        data_dir.to_path_buf()
    };
    if !what.is_dir() {
        anyhow::bail!(
            "{} holds no sensor data (no {}): name the sensor's data directory with --data-dir \
             DIR or its configuration with --config FILE (the default is {}); `mamori sensor \
             run` makes it",
            data_dir.display(),
            what.display(),
            mamori_sensor::config::SensorConfig::default()
                .data_dir
                .display()
        );
    }
    Ok(())
}

/// `mamori sensor concern add|remove`: checked against the configuration's selection
/// policy and the list the ledger holds, then recorded.
fn concern(data_dir: &Path, config: Option<&Path>, cmd: ConcernCommand) -> anyhow::Result<String> {
    let path = config.context(
        "mamori sensor concern needs --config FILE: its [selection] subscriber_prefixes decide which addresses may never be listed",
    )?;
    let cfg = mamori_sensor::config::SensorConfig::load(path)?;
    let ledger = open_ledger(data_dir)?;
    let now = SystemClock.now();
    let (change, what) = match cmd {
        ConcernCommand::Add {
            server,
            reason,
            duration,
        } => {
            let d = duration.unwrap_or(cfg.detection.concern_expiry);
            let until = chrono::Duration::from_std(d)
                .ok()
                .and_then(|d| now.checked_add_signed(d))
                .context("--for is too long")?;
            (
                ManualConcern::Add {
                    server,
                    reason,
                    until,
                },
                format!(
                    "{server} on the concern list until {}",
                    mamori_core::time::rfc3339(until)
                ),
            )
        }
        ConcernCommand::Remove { server, reason } => (
            ManualConcern::Remove { server, reason },
            format!("{server} taken off the concern list"),
        ),
    };
    let index = record_manual(&ledger, &cfg.selection, local_actor(), now, change)?;
    Ok(format!("{what} (sensor ledger entry {index})"))
}

/// Runs one administration command; returns what to print. `config` is the sensor's
/// configuration file, if given.
pub(crate) fn run(
    data_dir: &Path,
    config: Option<&Path>,
    cmd: SensorAdminCommand,
) -> anyhow::Result<String> {
    let needs_ledger = !matches!(
        cmd,
        SensorAdminCommand::OverseerToken | SensorAdminCommand::OperatorToken
    );
    sensor_data(data_dir, needs_ledger)?;
    match cmd {
        SensorAdminCommand::Concern(cmd) => concern(data_dir, config, cmd),
        SensorAdminCommand::OverseerToken | SensorAdminCommand::OperatorToken => {
            let holder = match cmd {
                SensorAdminCommand::OperatorToken => TokenHolder::Operator,
                _ => TokenHolder::Overseer,
            };
            let token = http_ledger::issue_token_for(data_dir, holder)
                .with_context(|| format!("storing the token's digest in {}", data_dir.display()))?;
            Ok(token)
        }
        SensorAdminCommand::Keys => {
            let ledger = Arc::new(open_ledger(data_dir)?);
            let ring = KeyRing::open(data_dir, ledger, local_actor())?;
            Ok(ring
                .list()?
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"))
        }
        SensorAdminCommand::Reidentify {
            pseudonym,
            key_id,
            approval,
            purpose,
        } => {
            let ledger = Arc::new(open_ledger(data_dir)?);
            let ring = KeyRing::open(data_dir, ledger, local_actor())?;
            let found = ring.reidentify(
                SystemClock.now(),
                local_actor(),
                pseudonym,
                &key_id,
                &approval,
                &purpose,
            )?;
            tracing::info!(
                ledger_index = found.ledger_index,
                "re-identification recorded in the sensor's ledger"
            );
            Ok(found.address.to_string())
        }
        SensorAdminCommand::Ledger(LedgerCommand::Verify) => {
            let ledger = open_ledger(data_dir)?;
            let report = ledger.verify()?;
            Ok(format!(
                "verified: {} entries recomputed to root {}{}",
                report.entries,
                report.root,
                report
                    .checkpoint_size
                    .map(|n| format!(", matching the signed checkpoint of size {n}"))
                    .unwrap_or_default()
            ))
        }
    }
}
