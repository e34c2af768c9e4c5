//! The SDK's errors; at the JavaScript boundary each becomes an `Error` with
//! a message a person can act on.

/// What went wrong.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SdkError {
    /// "invalid ProviderSyncService config: {field} {message}"
    Config {
        field: &'static str,
        message: &'static str,
    },
    /// "{what} failed: {message}"
    Network { what: &'static str, message: String },
    /// "{what} timed out after {ms} ms"
    Timeout { what: &'static str, ms: u32 },
    /// "{what} answered HTTP {status}"
    Http {
        what: &'static str,
        status: u16,
        /// From a `Retry-After` header on 429/503, in ms.
        retry_after_ms: Option<f64>,
    },
    /// "{what} sent a body that cannot be read: {message}"
    Decode { what: &'static str, message: String },
    /// "the service was destroyed"
    Destroyed,
}

/// [`SdkError::Destroyed`]'s message.
pub(crate) const DESTROYED: &str = "the service was destroyed";

/// The decimal digits of `n`.
pub(crate) fn decimal(n: u64) -> String {
    let mut out = String::new();
    crate::json::push_decimal(&mut out, n);
    out
}

impl SdkError {
    /// What a person reads. Put together from its parts rather than by
    /// `core::fmt`, which the wasm then does without.
    pub fn message(&self) -> String {
        use SdkError::*;
        match self {
            Config { field, message } => {
                crate::json::concat(&["invalid ProviderSyncService config: ", field, " ", message])
            }
            Network { what, message } => {
                crate::json::concat(&[what, " failed: ", message.as_str()])
            }
            Timeout { what, ms } => {
                crate::json::concat(&[what, " timed out after ", &decimal((*ms).into()), " ms"])
            }
            Http { what, status, .. } => {
                crate::json::concat(&[what, " answered HTTP ", &decimal((*status).into())])
            }
            Decode { what, message } => {
                crate::json::concat(&[what, " sent a body that cannot be read: ", message.as_str()])
            }
            Destroyed => DESTROYED.to_owned(),
        }
    }
}

impl std::fmt::Display for SdkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

/// At the JavaScript boundary: an `Error` with the message. (`SdkError`
/// is not a `std::error::Error`, whose conversion would format it.)
impl From<SdkError> for wasm_bindgen::JsError {
    fn from(error: SdkError) -> Self {
        Self::new(&error.message())
    }
}

/// The same, where a JavaScript value is thrown as it is (an `Error` a
/// snippet threw may be passed on).
impl From<SdkError> for wasm_bindgen::JsValue {
    fn from(error: SdkError) -> Self {
        wasm_bindgen::JsError::from(error).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_message_reads_as_documented() {
        let cases = [
            (
                SdkError::Config {
                    field: "syncTimeout",
                    message: "must be a positive number of milliseconds",
                },
                "invalid ProviderSyncService config: syncTimeout must be a positive number of milliseconds",
            ),
            (
                SdkError::Network {
                    what: "GET /state",
                    message: "Failed to fetch".into(),
                },
                "GET /state failed: Failed to fetch",
            ),
            (
                SdkError::Timeout {
                    what: "POST /sync",
                    ms: 10_000,
                },
                "POST /sync timed out after 10000 ms",
            ),
            (
                SdkError::Http {
                    what: "GET /version",
                    status: 503,
                    retry_after_ms: Some(2000.0),
                },
                "GET /version answered HTTP 503",
            ),
            (
                SdkError::Decode {
                    what: "a WebSocket frame",
                    message: "expected a value at byte 0".into(),
                },
                "a WebSocket frame sent a body that cannot be read: expected a value at byte 0",
            ),
            (SdkError::Destroyed, "the service was destroyed"),
        ];
        for (error, expected) in cases {
            assert_eq!(error.message(), expected);
            assert_eq!(error.to_string(), expected);
        }
    }
}
