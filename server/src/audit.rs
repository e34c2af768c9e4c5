//! Who changed what: the record each admin write leaves — a log line at
//! info and a row in the store's `audit` table — and the trim that keeps the
//! table to `--audit-retention-days`.
//!
//! A write that commits keeps its row in its own transaction
//! (`Commit::audit`), so an acknowledged change always has its record. A
//! write that changes nothing, and one that is refused after the token check
//! (404, 409, 412, 422 …), gets its row on its own, without versions. A
//! request with no valid admin token names no one and gets no row (it is
//! logged at info).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::clock::{now_ms, rfc3339_of_ms};
use crate::service::Service;
use crate::shutdown::Shutdown;
use crate::store::Store;

/// How often the trim runs (and once at start).
const TRIM_EVERY: Duration = Duration::from_secs(3600);

const DAY_MS: i64 = 24 * 3600 * 1000;

/// One admin request as the audit keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// When the request arrived, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The name of the token (or of the trusted caller) that sent it.
    pub token: String,
    pub client: String,
    pub request_id: String,
    pub method: String,
    /// The path as the client sent it (with the mount prefix).
    pub path: String,
    /// The HTTP status of the answer.
    pub status: u16,
    /// The history the versions belong to.
    pub epoch: Option<String>,
    /// The first and last version the write produced; `None` when it
    /// produced none (refused, or nothing to change).
    pub versions: Option<(u64, u64)>,
}

impl AuditRecord {
    /// A record of a request arriving now, not answered yet.
    pub fn new(token: &str, client: String, request_id: &str, method: &str, path: &str) -> Self {
        Self {
            at_ms: now_ms(),
            token: token.to_owned(),
            client,
            request_id: request_id.to_owned(),
            method: method.to_owned(),
            path: path.to_owned(),
            status: 0,
            epoch: None,
            versions: None,
        }
    }

    /// The log line: one per admin write, at info.
    pub fn log(&self) {
        let versions = match self.versions {
            Some((first, last)) => format!("{first}..{last}"),
            None => "none".to_owned(),
        };
        tracing::info!(
            token = %self.token,
            client = %self.client,
            request_id = %self.request_id,
            method = %self.method,
            path = %self.path,
            status = self.status,
            versions = %versions,
            "admin write"
        );
    }
}

/// An audit record as `GET /admin/audit` answers it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Larger for newer records; `before` in the next page's query.
    pub id: u64,
    /// When the request arrived (RFC 3339, UTC).
    pub at: String,
    /// The name of the token that sent it (`admin` for `--admin-token`).
    pub token: String,
    /// The client's address.
    pub client: String,
    /// The request's `X-Request-Id` (the client's, or one the server made).
    pub request_id: String,
    pub method: String,
    pub path: String,
    /// The HTTP status of the answer.
    pub status: u16,
    /// The history `first_version` and `last_version` belong to.
    pub epoch: Option<String>,
    /// The first version the write produced; null when it produced none.
    pub first_version: Option<u64>,
    pub last_version: Option<u64>,
}

impl AuditEntry {
    pub fn new(id: u64, record: AuditRecord) -> Self {
        Self {
            id,
            at: rfc3339_of_ms(record.at_ms),
            token: record.token,
            client: record.client,
            request_id: record.request_id,
            method: record.method,
            path: record.path,
            status: record.status,
            epoch: record.epoch,
            first_version: record.versions.map(|v| v.0),
            last_version: record.versions.map(|v| v.1),
        }
    }
}

/// Removes the records older than `retention_days`.
pub async fn trim(store: &dyn Store, retention_days: u32) {
    let cutoff = now_ms().saturating_sub(i64::from(retention_days) * DAY_MS);
    match store.trim_audit(cutoff).await {
        Ok(0) => {}
        Ok(removed) => tracing::info!(removed, retention_days, "trimmed the audit table"),
        Err(err) => tracing::warn!(error = %err, "cannot trim the audit table; trying again later"),
    }
}

/// Trims every hour until shutdown (the first trim is the caller's, at
/// start). On PostgreSQL one instance trims at a time (`Store::trim_audit`).
pub fn spawn_trim(
    service: Arc<Service>,
    retention_days: u32,
    mut shutdown: Shutdown,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks =
            tokio::time::interval_at(tokio::time::Instant::now() + TRIM_EVERY, TRIM_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => trim(service.store().as_ref(), retention_days).await,
                _ = shutdown.wait() => return,
            }
        }
    })
}
