//! What commands that work on the hub's data directly (not over the API) share: where the
//! data is, and opening it with its keys.

use anyhow::Context;
use hub::config::HubConfig;
use hub::crypto::KeyRing;
use hub::store::Db;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct DataArgs {
    /// The hub's data directory (holds master.key, and hub.db for SQLite).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The hub's database, when not the SQLite file in the data directory.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Config file to read the rest from.
    #[arg(long, default_value = "hub.toml")]
    pub config: PathBuf,
}

impl DataArgs {
    /// The config file (when it exists) and `HUB_*` variables, with these flags over them.
    pub fn config(self) -> anyhow::Result<HubConfig> {
        let mut config = HubConfig::load(self.config.exists().then_some(self.config.as_path()))?;
        if let Some(dir) = self.data_dir {
            config.data_dir = dir;
        }
        if self.database_url.is_some() {
            config.database_url = self.database_url;
        }
        Ok(config)
    }

    /// Opens the hub's database and keys; never creates a master key.
    pub async fn open(self) -> anyhow::Result<(HubConfig, Db, KeyRing)> {
        let config = self.config()?;
        let key_path = config.data_dir.join("master.key");
        if config.keys.kek == hub::crypto::KekKind::Local && !key_path.exists() {
            anyhow::bail!(
                "{} does not exist: point --data-dir at the hub's data directory",
                key_path.display()
            );
        }
        let db = Db::open(&config.database_url())
            .await
            .context("opening the hub's database")?;
        let vault = hub::connect_vault(&config).await?;
        let kek = hub::key_encryption_key(&config, vault.as_ref())?;
        let keys = KeyRing::load_or_init(db.clone(), kek).await?;
        Ok((config, db, keys))
    }
}
