//! The configuration, layered: defaults in code ← TOML file ← `MAMORI_*` environment ←
//! command-line flags (STYLE principle 8). Each room owns its section's struct;
//! `config/mamori.example.toml` documents every field and is parsed by a test.

use crate::cli::{GlobalArgs, ServeArgs};
use crate::logging::LogConfig;
use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use mamori_server::ServerConfig;
use mamori_store::StoreConfig;
use serde::{Deserialize, Serialize};

/// Everything `mamori` can be configured with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct MamoriConfig {
    /// Where data lives (`[store]`).
    pub store: StoreConfig,
    /// The centre's HTTP server (`[server]`).
    pub server: ServerConfig,
    /// Logging (`[log]`).
    pub log: LogConfig,
    /// The overseer's log (`[ledger]`).
    pub ledger: mamori_oversight::LedgerConfig,
}

/// Environment variables that are not configuration keys (test switches, the file path).
const NOT_CONFIG: &[&str] = &[
    "config",
    "test_",
    "require_",
    "token",
    "pseudonym_key",
    "bench_",
];

/// Short names for the settings people set most; anything else is `MAMORI_SECTION__KEY`.
fn env_key(key: &str) -> String {
    let key = key.to_ascii_lowercase();
    match key.as_str() {
        "data_dir" => "store.data_dir".into(),
        "database_url" => "store.database_url".into(),
        "listen" => "server.listen".into(),
        "log_format" => "log.format".into(),
        "log" => "log.filter".into(),
        other => other.replace("__", "."),
    }
}

/// Loads the layered configuration.
pub(crate) fn load(global: &GlobalArgs, serve: Option<&ServeArgs>) -> anyhow::Result<MamoriConfig> {
    figment(global, serve)
        .extract()
        .context("the configuration is invalid (see config/mamori.example.toml for every key)")
}

pub(crate) fn figment(global: &GlobalArgs, serve: Option<&ServeArgs>) -> Figment {
    let mut fig = Figment::from(Serialized::defaults(MamoriConfig::default()));
    let file = global
        .config
        .clone()
        .or_else(|| std::env::var_os("MAMORI_CONFIG").map(Into::into));
    if let Some(path) = file {
        // A named file that is missing is an error, not a silent fallback to defaults.
        fig = fig.merge(Toml::file_exact(path));
    }
    fig = fig.merge(
        Env::prefixed("MAMORI_")
            .filter(|k| {
                let k = k.as_str().to_ascii_lowercase();
                !NOT_CONFIG.iter().any(|p| k.starts_with(p))
            })
            .map(|k| env_key(k.as_str()).into()),
    );
    if let Some(dir) = &global.data_dir {
        fig = fig.merge(Serialized::default("store.data_dir", dir));
    }
    if let Some(url) = &global.database_url {
        fig = fig.merge(Serialized::default("store.database_url", url));
    }
    if let Some(s) = serve {
        if let Some(listen) = s.listen {
            fig = fig.merge(Serialized::default("server.listen", listen));
        }
        if let Some(format) = s.log_format {
            fig = fig.merge(Serialized::default("log.format", format));
        }
    }
    fig
}

/// `mamori config show`: the merged configuration as TOML, with the database password
/// hidden.
pub(crate) fn show(cfg: &MamoriConfig) -> anyhow::Result<()> {
    let mut shown = cfg.clone();
    if let Some(url) = shown.store.database_url.as_mut() {
        *url = redact_password(url);
    }
    let text = toml_text(&shown)?;
    #[allow(clippy::print_stdout)]
    {
        println!("{}", text.trim_end());
    }
    Ok(())
}

fn toml_text(cfg: &MamoriConfig) -> anyhow::Result<String> {
    toml::to_string_pretty(cfg).context("serialising the configuration")
}

fn redact_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail API returns figment::Error
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn no_args() -> GlobalArgs {
        GlobalArgs {
            config: None,
            data_dir: None,
            database_url: None,
            json: false,
        }
    }

    #[test]
    fn the_example_file_parses_and_states_the_defaults() {
        let path =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config/mamori.example.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let parsed: MamoriConfig = Figment::from(Serialized::defaults(MamoriConfig::default()))
            .merge(Toml::string(&text))
            .extract()
            .unwrap();
        assert_eq!(
            parsed,
            MamoriConfig::default(),
            "the example documents the defaults"
        );
        // Every key is present in the example, so it documents all of them.
        let raw: toml::Table = text.parse().unwrap();
        for (section, keys) in [
            ("store", vec!["data_dir", "database_url", "max_connections"]),
            (
                "server",
                vec![
                    "listen",
                    "body_limit_bytes",
                    "request_timeout_secs",
                    "token_lifetime_days",
                ],
            ),
            ("log", vec!["format", "filter"]),
            ("ledger", vec!["origin", "checkpoint_interval_secs"]),
        ] {
            for k in keys {
                assert!(
                    raw[section].get(k).is_some() || text.contains(&format!("# {k} =")),
                    "{section}.{k} documented"
                );
            }
        }
    }

    #[test]
    fn layers_file_then_env_then_flags() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("m.toml", "[server]\nlisten = \"127.0.0.1:9000\"\nbody_limit_bytes = 10\n[store]\ndata_dir = \"/from/file\"\n")?;
            jail.set_env("MAMORI_LISTEN", "127.0.0.1:9001");
            jail.set_env("MAMORI_SERVER__REQUEST_TIMEOUT_SECS", "7");
            jail.set_env("MAMORI_TEST_DATA", "/ignored");
            let mut g = no_args();
            g.config = Some("m.toml".into());
            let cfg = load(&g, None).unwrap();
            assert_eq!(cfg.server.listen.port(), 9001, "env beats file");
            assert_eq!(cfg.server.body_limit_bytes, 10, "file beats default");
            assert_eq!(cfg.server.request_timeout_secs, 7);
            g.data_dir = Some("/from/flag".into());
            let serve = ServeArgs {
                listen: Some("127.0.0.1:9002".parse().unwrap()),
                log_format: None,
            };
            let cfg = load(&g, Some(&serve)).unwrap();
            assert_eq!(cfg.server.listen.port(), 9002, "flag beats env");
            assert_eq!(cfg.store.data_dir, PathBuf::from("/from/flag"));
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_missing_files_are_errors() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("typo.toml", "[server]\nlisen = \"127.0.0.1:1\"\n")?;
            let mut g = no_args();
            g.config = Some("typo.toml".into());
            let err = format!("{:#}", load(&g, None).unwrap_err());
            assert!(err.contains("lisen"), "{err}");
            g.config = Some("missing.toml".into());
            assert!(load(&g, None).is_err());
            Ok(())
        });
    }

    #[test]
    fn shown_urls_hide_passwords() {
        assert_eq!(
            redact_password("postgres://u:s3cret@db/m"),
            "postgres://u:***@db/m"
        );
        assert_eq!(redact_password("postgres://u@db/m"), "postgres://u@db/m");
        let text = toml_text(&MamoriConfig::default()).unwrap();
        let back: MamoriConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, MamoriConfig::default());
    }
}
