//! The admin API's audit: each write's record (see `crate::audit`), made
//! around the handler, and `GET /admin/audit` to read the records back.

use std::sync::{Arc, OnceLock};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use provider_sync_protocol::ErrorBody;
use serde::{Deserialize, Serialize};

use super::{client, trace};
use crate::access::Holder;
use crate::app::AppState;
use crate::audit::{AuditEntry, AuditRecord};
use crate::error::{AppJson, AppQuery, Error, Result};
use crate::service::{Draft, Service, Written};

/// An admin write in progress, in its request's extensions: who sent it
/// and, once the write is done, the versions it produced.
#[derive(Debug)]
pub struct AdminWrite {
    record: AuditRecord,
    /// Set when the write succeeded (its record is then in the store).
    done: OnceLock<Option<(u64, u64)>>,
}

impl AdminWrite {
    /// Runs a write that keeps this request's record with it; `status` is
    /// the answer when it succeeds.
    pub async fn write<T>(
        &self,
        service: &Arc<Service>,
        status: StatusCode,
        build: impl FnMut(&mut Draft) -> Result<T>,
    ) -> Result<Written<T>> {
        let record = AuditRecord {
            status: status.as_u16(),
            ..self.record.clone()
        };
        let written = service.write_audited(record, build).await?;
        let versions = (written.events > 0)
            .then(|| (written.version + 1 - written.events as u64, written.version));
        let _ = self.done.set(versions);
        Ok(written)
    }
}

/// Around each admin write (behind the token check): makes its
/// [`AdminWrite`], and once it is answered logs it and, if the write did not
/// keep its record itself (it was refused), keeps one without versions.
pub async fn record(State(app): State<AppState>, mut request: Request, next: Next) -> Response {
    let token = request
        .extensions()
        .get::<Holder>()
        .map_or_else(|| "unknown".into(), |h| h.name.clone());
    let path = trace::original_path(&request);
    let write = Arc::new(AdminWrite {
        record: AuditRecord::new(
            &token,
            client::address(&request),
            trace::request_id(&request),
            request.method().as_str(),
            &path,
        ),
        done: OnceLock::new(),
    });
    request.extensions_mut().insert(write.clone());
    let response = next.run(request).await;
    let mut record = AuditRecord {
        status: response.status().as_u16(),
        ..write.record.clone()
    };
    match write.done.get() {
        Some(versions) => record.versions = *versions,
        None => {
            record.epoch = Some(app.service.snapshot().epoch().to_owned());
            match app.service.store().record_audit(&record).await {
                Ok(()) => {}
                // The write was refused for the same reason (a database
                // that takes no writes, as in a failover, or is out of
                // reach): the record goes to the log alone, below.
                Err(err) if err.is_read_only() => {
                    tracing::warn!(error = %err, request_id = %record.request_id, "the audit record of a refused admin write is in the log only: the store takes no writes now");
                }
                // Busy, timed out or out of reach (not read-only: a review,
                // 2026-12-05, found that reason given for these).
                Err(err) if err.is_unreachable() => {
                    tracing::warn!(error = %err, request_id = %record.request_id, "the audit record of a refused admin write is in the log only: the store does not answer now");
                }
                Err(err) => {
                    tracing::error!(error = %err, request_id = %record.request_id, "cannot keep the audit record of a refused admin write");
                }
            }
        }
    }
    record.log();
    response
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only records older than this id (the previous page's `next_before`).
    before: Option<u64>,
    /// Page size (default 100, at most 1000).
    limit: Option<u32>,
}

/// One page of audit records, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// `before` for the next (older) page; null on the last page.
    pub next_before: Option<u64>,
}

/// Who changed what: the admin writes, newest first, kept for
/// `--audit-retention-days`.
#[utoipa::path(
    get,
    path = "/admin/audit",
    operation_id = "list_audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "One page of records, newest first", body = AuditPage),
        (status = 400, description = "A parameter cannot be read", body = ErrorBody),
        (status = 401, description = "No or wrong admin token", body = ErrorBody),
        (status = 422, description = "Limit out of range", body = ErrorBody),
    ),
    security(("admin_token" = [])),
    tag = "admin"
)]
pub async fn list(
    State(app): State<AppState>,
    AppQuery(query): AppQuery<AuditQuery>,
) -> Result<AppJson<AuditPage>> {
    let limit = super::page_limit(query.limit)?;
    // One more than asked: whether there is a next page.
    let mut rows = app
        .service
        .store()
        .audit(query.before, limit + 1)
        .await
        .map_err(Error::StoreRead)?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_before = if more { rows.last().map(|r| r.0) } else { None };
    Ok(AppJson(AuditPage {
        entries: rows
            .into_iter()
            .map(|(id, record)| AuditEntry::new(id, record))
            .collect(),
        next_before,
    }))
}
