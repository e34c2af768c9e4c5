//! Persistence: what the service needs from a store, whatever the database.
//!
//! The service keeps the live state in memory; a store makes each write
//! durable (entities, version, event log in one transaction) and hands the
//! whole thing back at start-up.

mod sqlite;

pub use sqlite::SqliteStore;

use provider_sync_protocol::{ModelSpecification, ProviderSyncInfo, SyncEvent};

/// Everything a store holds, as read at start-up.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub epoch: String,
    pub version: u64,
    pub providers: Vec<ProviderSyncInfo>,
    pub models: Vec<ModelSpecification>,
    pub active_provider_id: Option<String>,
    pub default_provider_id: Option<String>,
    /// The retained change events, oldest first, with their stored JSON.
    pub log: Vec<(SyncEvent, String)>,
    /// The catalog file as last applied (its JSON form), if any.
    pub catalog: Option<String>,
}

/// One row-level effect of a write.
#[derive(Debug, Clone)]
pub enum RowChange<'a> {
    Provider(&'a ProviderSyncInfo),
    ProviderGone(&'a str),
    Model(&'a ModelSpecification),
    ModelGone(&'a str),
    Pointers {
        active: Option<&'a str>,
        default: Option<&'a str>,
    },
}

/// One write: made durable as a whole or not at all.
#[derive(Debug, Clone)]
pub struct Commit<'a> {
    /// The version the write was built on; a store at another version refuses
    /// it (another writer got there first).
    pub base_version: u64,
    /// Change events with consecutive versions from `base_version + 1`, as the
    /// JSON that was broadcast.
    pub events: Vec<(u64, &'a str)>,
    pub rows: Vec<RowChange<'a>>,
    /// How many events the log keeps after this commit.
    pub retain: u64,
    /// A catalog file this write applied: its JSON form, kept as the last
    /// applied catalog.
    pub catalog: Option<&'a str>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("the store is at version {found}, not {expected}: another writer changed it")]
    VersionConflict { expected: u64, found: u64 },
    #[error("stored data cannot be read: {0}")]
    Corrupt(String),
    #[error("unsupported store URL '{0}': use sqlite://FILE or a file path")]
    UnsupportedUrl(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

#[async_trait::async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// Reads everything; a new store starts a new epoch at version 0.
    async fn load(&self) -> Result<Loaded, StoreError>;
    /// Applies one write atomically.
    async fn commit(&self, commit: &Commit<'_>) -> Result<(), StoreError>;
    /// Starts a new history (after a restore from backup, say): a new epoch
    /// and an empty event log, so every client takes a full state.
    async fn rotate_epoch(&self) -> Result<String, StoreError>;
    /// Whether the store answers (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Opens the store a URL names.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Err(StoreError::UnsupportedUrl(url.to_owned()));
    }
    Ok(std::sync::Arc::new(SqliteStore::open(url).await?))
}
