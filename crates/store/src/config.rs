//! The store's part of the configuration (STYLE principle 8).

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where the data lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// The data directory: the SQLite database (unless `database_url` says otherwise),
    /// keys and other local state. Created on first start.
    pub data_dir: PathBuf,
    /// A `postgres://` URL to use PostgreSQL, or `sqlite:PATH`; empty means the SQLite
    /// database `mamori.db` inside `data_dir`.
    pub database_url: Option<String>,
    /// Connections kept open to the database.
    pub max_connections: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./mamori-data"),
            database_url: None,
            max_connections: 8,
        }
    }
}

impl StoreConfig {
    /// The SQLite file used when no URL is given.
    pub fn default_sqlite_path(&self) -> PathBuf {
        self.data_dir.join("mamori.db")
    }

    /// A config for the SQLite database in `data_dir`.
    pub fn sqlite_in(data_dir: &Path) -> Self {
        Self {
            data_dir: data_dir.to_owned(),
            ..Self::default()
        }
    }
}
