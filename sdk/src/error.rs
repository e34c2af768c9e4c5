//! The SDK's errors; at the JavaScript boundary each becomes an `Error` with
//! a message a person can act on.

/// What went wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SdkError {
    #[error("invalid ProviderSyncService config: {field} {message}")]
    Config {
        field: &'static str,
        message: String,
    },
    #[error("{what} failed: {message}")]
    Network { what: &'static str, message: String },
    #[error("{what} timed out after {ms} ms")]
    Timeout { what: &'static str, ms: u32 },
    #[error("{what} answered HTTP {status}")]
    Http {
        what: &'static str,
        status: u16,
        /// From a `Retry-After` header on 429/503, in ms.
        retry_after_ms: Option<f64>,
    },
    #[error("{what} sent a body that cannot be read: {message}")]
    Decode { what: &'static str, message: String },
    #[error("the service was destroyed")]
    Destroyed,
}
