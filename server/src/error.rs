//! The one error type of the HTTP layer and how it becomes a response: every
//! error is `{"error": {"code", "message", "field"?}}` with the right status,
//! and internals are logged, not shown.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use provider_sync_protocol::{ErrorBody, ErrorData};
use serde::Serialize;

use crate::store::StoreError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 400: the request cannot be read (malformed JSON, bad query).
    #[error("{0}")]
    BadRequest(String),
    /// 401: missing or wrong admin token.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// 403: a page of a foreign origin.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such provider or model, in the path or named by a field of
    /// the body (`field`).
    #[error("{kind} '{id}' not found")]
    NotFound {
        kind: &'static str,
        id: String,
        field: Option<String>,
    },
    /// 404: an id in the path whose percent-escapes are not UTF-8 text,
    /// which no entity has.
    #[error(
        "no provider or model has this id: its percent-escapes are not UTF-8 text, and ids are"
    )]
    IdNotUtf8,
    /// 409: the id is taken.
    #[error("{0}")]
    Conflict(String),
    /// 409: the change is acceptable on its own but contradicts a field the
    /// entity keeps (a sunset date before its stored deprecation date);
    /// carries the current entity. The message names the fields itself.
    #[error("{message}")]
    Contradicts {
        field: String,
        message: String,
        current: Box<serde_json::value::RawValue>,
    },
    /// 412: `If-Match` named a stale revision; carries the current entity.
    #[error("revision {expected} is stale: the current revision is {revision}")]
    PreconditionFailed {
        expected: u64,
        revision: u64,
        current: Box<serde_json::value::RawValue>,
    },
    /// 415: the body is not JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 413: the body is larger than the limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 422: a field's value is not acceptable.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// 426: a WebSocket upgrade in a version of the protocol other than
    /// RFC 6455's 13 (answered with `Sec-WebSocket-Version: 13`).
    #[error("{0}")]
    UpgradeRequired(String),
    /// 429: past the client's rate limit (`Retry-After` set by the caller).
    #[error("{0}")]
    TooManyRequests(String),
    /// 501: a request in a form this server does not take (a transfer
    /// coding other than `chunked`).
    #[error("{0}")]
    NotImplemented(String),
    /// 503: try again shortly (`Retry-After`).
    #[error("{0}")]
    Unavailable(String),
    /// 500 (503 when the database does not answer): the store failed;
    /// details go to the log only.
    #[error(transparent)]
    Store(#[from] StoreError),

    /// A read of what only the store holds (the audit) that it did not
    /// answer: nothing was to be acknowledged.
    #[error(transparent)]
    StoreRead(StoreError),
}

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The id in the message as [`crate::validate::shown`] shows text from
    /// outside: escaped, and no more than 100 characters (a 5,000-character
    /// id in a path was repeated whole).
    pub fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        Self::NotFound {
            kind,
            id: crate::validate::shown(&id.into()),
            field: None,
        }
    }

    /// 404 for an entity a field of the body names.
    pub fn missing(field: impl Into<String>, kind: &'static str, id: impl Into<String>) -> Self {
        Self::NotFound {
            kind,
            id: crate::validate::shown(&id.into()),
            field: Some(field.into()),
        }
    }

    pub fn contradicts(
        field: impl Into<String>,
        message: impl Into<String>,
        current: &impl Serialize,
    ) -> Self {
        Self::Contradicts {
            field: field.into(),
            message: message.into(),
            current: current_of(current),
        }
    }

    pub fn precondition_failed(expected: u64, revision: u64, current: &impl Serialize) -> Self {
        Self::PreconditionFailed {
            expected,
            revision,
            current: current_of(current),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::NotFound { .. } | Self::IdNotUtf8 => (StatusCode::NOT_FOUND, "not_found"),
            Self::Conflict(_) | Self::Contradicts { .. } => (StatusCode::CONFLICT, "conflict"),
            Self::PreconditionFailed { .. } => {
                (StatusCode::PRECONDITION_FAILED, "precondition_failed")
            }
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            Self::UpgradeRequired(_) => (StatusCode::UPGRADE_REQUIRED, "upgrade_required"),
            Self::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::NotImplemented(_) => (StatusCode::NOT_IMPLEMENTED, "not_implemented"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Store(err) if err.is_unreachable() || err.is_read_only() => {
                (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable")
            }
            Self::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            Self::StoreRead(err) if err.is_unreachable() => {
                (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable")
            }
            Self::StoreRead(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

/// The body of a 412 (and of a 409 that contradicts the entity): the error
/// plus the entity as it is now.
#[derive(Serialize)]
struct PreconditionBody<'a> {
    error: ErrorData,
    current: &'a serde_json::value::RawValue,
}

/// An entity as an error body carries it: its fields in the order of the
/// entity's own answers (a `serde_json::Value` sorted them by name).
fn current_of(entity: &impl Serialize) -> Box<serde_json::value::RawValue> {
    serde_json::value::to_raw_value(entity).unwrap_or_else(|_| {
        serde_json::value::RawValue::from_string("null".into()).expect("null is JSON")
    })
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            // A read on an instance cut off from a shared store: nothing to
            // acknowledge, and no error to log per request.
            Self::Store(err @ crate::store::StoreError::Unreachable) => err.to_string(),
            Self::Store(err @ crate::store::StoreError::Gone(_)) => {
                tracing::error!(error = %err, "the store's file is gone");
                err.to_string()
            }
            Self::Store(err) if err.is_read_only() => {
                tracing::warn!(error = %err, "the database takes no writes now");
                "the database takes no writes now (read-only: a standby, or a failover under way): the change was not made; try again".to_owned()
            }
            Self::Store(err) if err.is_unreachable() => {
                tracing::error!(error = %err, "the store does not answer");
                "the store does not answer: the change was not acknowledged (read it back before trying again)".to_owned()
            }
            Self::Store(err) => {
                tracing::error!(error = %err, "store failure");
                "the store failed; the change was not made".to_owned()
            }
            Self::StoreRead(err) if err.is_unreachable() => {
                tracing::warn!(error = %err, "the store does not answer a read");
                "the store does not answer; try again".to_owned()
            }
            Self::StoreRead(err) => {
                tracing::error!(error = %err, "store failure on a read");
                "the store failed to answer".to_owned()
            }
            other => other.to_string(),
        };
        let error = ErrorData {
            code: code.to_owned(),
            message,
            field: match &self {
                Self::Invalid { field, .. } | Self::Contradicts { field, .. } => {
                    Some(field.clone())
                }
                Self::NotFound { field, .. } => field.clone(),
                _ => None,
            },
        };
        let mut response = match &self {
            Self::PreconditionFailed { current, .. } | Self::Contradicts { current, .. } => {
                (status, Json(PreconditionBody { error, current })).into_response()
            }
            _ => (status, Json(ErrorBody { error })).into_response(),
        };
        if matches!(&self, Self::UpgradeRequired(_)) {
            // RFC 6455, 4.4: the versions this server speaks.
            response.headers_mut().insert(
                axum::http::header::SEC_WEBSOCKET_VERSION,
                axum::http::HeaderValue::from_static("13"),
            );
        }
        // Not for a store file removed under the server: trying again
        // changes nothing until it is restarted on the store.
        if matches!(&self, Self::Unavailable(_))
            || matches!(&self, Self::Store(err) | Self::StoreRead(err)
                if (err.is_unreachable() || err.is_read_only())
                    && !matches!(err, crate::store::StoreError::Gone(_)))
        {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        if let Self::Unauthorized(_) = self {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// axum's wording of a rejection without its framework prefix, which names
/// Rust's types ("…into the target type: ") rather than the request: what
/// is left names the field and the problem.
fn plain(text: String) -> String {
    const PREFIXES: [(&str, &str); 2] = [
        (
            "Failed to deserialize the JSON body into the target type: ",
            "",
        ),
        ("Failed to deserialize query string: ", "query string: "),
    ];
    for (prefix, instead) in PREFIXES {
        if let Some(rest) = text.strip_prefix(prefix) {
            return format!("{instead}{rest}");
        }
    }
    text
}

impl From<JsonRejection> for Error {
    fn from(rejection: JsonRejection) -> Self {
        let text = plain(rejection.body_text());
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge(text),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType(text),
            StatusCode::UNPROCESSABLE_ENTITY => invalid_from(without_position(&text)),
            _ => Self::BadRequest(text),
        }
    }
}

impl From<QueryRejection> for Error {
    fn from(rejection: QueryRejection) -> Self {
        Self::BadRequest(plain(rejection.body_text()))
    }
}

/// Gives error responses made outside the handlers (405 from the router, 504
/// from the timeout layer, a plain-text rejection, a static file's 404) the
/// same JSON shape as everything else, keeping their status and headers.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() && status == StatusCode::GATEWAY_TIMEOUT {
        // `TimeoutLayer`'s: the handler was dropped, not the store's work
        // it had started. A write may still land (it was handed to the
        // store; the audit log records what came of it), as after a 503.
        "the request took longer than --request-timeout-ms: not answered in time; a write may \
         still be applied (read it back, or see GET /admin/audit, before trying again)"
            .to_owned()
    } else if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => "timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let body = serde_json::to_vec(&ErrorBody {
        error: ErrorData {
            code: code.to_owned(),
            message,
            field: None,
        },
    })
    .expect("error body serialises");
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// A 422 from serde's message: the field it names, and the message naming
/// it once (the error shows the field before it: it read `pricing: pricing:
/// duplicate key …`).
fn invalid_from(text: &str) -> Error {
    let field = field_of(text).unwrap_or_else(|| "body".into());
    let message = text
        .strip_prefix(field.as_str())
        .and_then(|rest| rest.strip_prefix(": "))
        .unwrap_or(text);
    Error::invalid(field, message)
}

/// The field serde named in a message such as "context_window: invalid
/// type: floating point `1.5`" (the path before the error) or "missing
/// field `name`" (the name it quotes).
fn field_of(message: &str) -> Option<String> {
    let detail = message
        .rsplit_once("target type: ")
        .map_or(message, |(_, detail)| detail);
    if let Some((path, _)) = detail.split_once(": ")
        && !path.contains(' ')
    {
        return Some(path.to_owned());
    }
    let start = detail.find('`')?;
    let rest = &detail[start + 1..];
    let end = rest.find('`')?;
    Some(rest[..end].to_owned())
}

/// `Json` whose rejections are this crate's `Error`, so a malformed body gets
/// the same error shape as everything else. Every body of the API is a JSON
/// object (serde would also read a struct from an array: `[null, null]`),
/// and a number without a fractional part is an integer however it is
/// written (`128000.0`), as JSON Schema counts it.
#[derive(Debug)]
pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = Error;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self> {
        read_body(request, state)
            .await
            .map(|(value, _)| Self(value))
    }
}

/// `AppJson` for the admin API's bodies, whose types refuse unknown fields:
/// a nested object's unknown field is refused too (422 naming its path,
/// `pricing.cached_input_per_milion`), where the nested type is one the
/// server also sends (`pricing`) and serde would skip it.
#[derive(Debug)]
pub struct StrictJson<T>(pub T);

impl<S, T> FromRequest<S> for StrictJson<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = Error;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self> {
        let (value, body) = read_body::<S, T>(request, state).await?;
        let mut unknown = None;
        let _: std::result::Result<T, _> = serde_ignored::deserialize(&body, |path| {
            unknown.get_or_insert_with(|| unknown_field(&path));
        });
        match unknown {
            Some((field, message)) => Err(Error::invalid(field, message)),
            None => Ok(Self(value)),
        }
    }
}

/// A key serde_ignored reports: its path, as the API and the catalog file
/// name fields (`pricing.cached_input_per_million`, `models[2].pricing.x`),
/// and the message that refuses it.
pub(crate) fn unknown_field(path: &serde_ignored::Path<'_>) -> (String, String) {
    fn last_key(path: &serde_ignored::Path<'_>) -> String {
        use serde_ignored::Path;
        match path {
            Path::Root => String::new(),
            Path::Seq { index, .. } => index.to_string(),
            Path::Map { key, .. } => key.clone(),
            Path::Some { parent }
            | Path::NewtypeStruct { parent }
            | Path::NewtypeVariant { parent } => last_key(parent),
        }
    }
    (
        field_path(path),
        format!("unknown field `{}`", last_key(path)),
    )
}

fn field_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", field_path(parent)),
        Path::Map { parent, key } => {
            let parent = field_path(parent);
            // The TOML reader's spans travel as a private key.
            if key.starts_with("$__serde_spanned_private") {
                parent
            } else if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => field_path(parent),
    }
}

/// What `AppJson` reads: the body as `T`, and as the JSON value it was read
/// from.
async fn read_body<S, T>(
    request: axum::extract::Request,
    state: &S,
) -> Result<(T, serde_json::Value)>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    // A compressed body would be read as JSON text and fail as bad
    // syntax (an unknown coding was ignored): the coding is refused.
    // Every coding named, in every Content-Encoding header (a list's
    // empty elements name none: RFC 9110, 5.6.1).
    let coded = request
        .headers()
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .find(|coding| !coding.is_empty() && !coding.eq_ignore_ascii_case(b"identity"));
    if let Some(coding) = coded {
        return Err(Error::UnsupportedMediaType(format!(
            "the body's Content-Encoding {} is not supported: send the JSON uncompressed",
            String::from_utf8_lossy(coding)
        )));
    }
    // Content type (415), size (413) and syntax (400) first; a key
    // given twice in an object (422).
    let Json(Unique(mut body)) = Json::<Unique>::from_request(request, state).await?;
    if !body.is_object() {
        return Err(Error::invalid("body", "must be a JSON object"));
    }
    whole_numbers_as_integers(&mut body);
    let bytes = serde_json::to_vec(&body).expect("a JSON value serialises");
    // The fields' types (422, naming the field). Without serde's
    // position: it counts in these bytes (the body as read back, its
    // keys sorted), not in the body as it was sent.
    let Json(value) = Json::<T>::from_bytes(&bytes).map_err(|rejection| {
        let text = plain(rejection.body_text());
        invalid_from(without_position(&text))
    })?;
    Ok((value, body))
}

/// A JSON value whose objects give each key once: a body with a field twice
/// is ambiguous (serde_json's own `Value` keeps the last copy silently).
struct Unique(serde_json::Value);

impl<'de> serde::Deserialize<'de> for Unique {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueVisitor).map(Unique)
    }
}

struct UniqueVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Self::Value, E> {
        Ok(value.into())
    }

    fn visit_i64<E>(self, value: i64) -> Result<Self::Value, E> {
        Ok(value.into())
    }

    fn visit_u64<E>(self, value: u64) -> Result<Self::Value, E> {
        Ok(value.into())
    }

    fn visit_f64<E>(self, value: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(value).map_or(serde_json::Value::Null, Into::into))
    }

    fn visit_str<E>(self, value: &str) -> Result<Self::Value, E> {
        Ok(value.into())
    }

    fn visit_string<E>(self, value: String) -> Result<Self::Value, E> {
        Ok(value.into())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Unique(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(items.into())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format_args!(
                    "duplicate key `{key}`: give each field once"
                )));
            }
            let Unique(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(object.into())
    }
}

/// `message` without serde's " at line L column C" at its end.
fn without_position(message: &str) -> &str {
    let Some((before, position)) = message.rsplit_once(" at line ") else {
        return message;
    };
    let numbers = position.split_once(" column ").filter(|(line, column)| {
        [line, column]
            .iter()
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    });
    if numbers.is_some() { before } else { message }
}

/// Numbers without a fractional part, written as floats (`3.0`, `1e3`),
/// become integers, which serde reads into integer fields too.
pub(crate) fn whole_numbers_as_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(number) => {
            if let Some(float) = number.as_f64().filter(|_| number.is_f64())
                && float.fract() == 0.0
            {
                let integer = if (0.0..2f64.powi(64)).contains(&float) {
                    Some(serde_json::Number::from(float as u64))
                } else if float < 0.0 && float >= i64::MIN as f64 {
                    Some(serde_json::Number::from(float as i64))
                } else {
                    None
                };
                if let Some(integer) = integer
                    && integer.as_f64() == Some(float)
                {
                    *number = integer;
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        Value::Object(map) => map.values_mut().for_each(whole_numbers_as_integers),
        _ => {}
    }
}

impl<T: Serialize> IntoResponse for AppJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

impl From<PathRejection> for Error {
    fn from(rejection: PathRejection) -> Self {
        use axum::extract::path::ErrorKind;
        match &rejection {
            // Ids are text: bytes that are not UTF-8 name no entity, as any
            // id of another form (the document's 404).
            PathRejection::FailedToDeserializePathParams(e)
                if matches!(e.kind(), ErrorKind::InvalidUtf8InPathParam { .. }) =>
            {
                Self::IdNotUtf8
            }
            _ => Self::BadRequest(plain(rejection.body_text())),
        }
    }
}

/// `Path` whose rejections are this crate's `Error`.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Error))]
pub struct AppPath<T>(pub T);

/// `Query` whose rejections are this crate's `Error`, and which refuses a
/// query whose percent-escapes are not UTF-8 text (axum's reads them with
/// replacement characters: `?provider_id=%ff` answered 200 with an empty
/// list).
#[derive(Debug)]
pub struct AppQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for AppQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self> {
        let query = parts.uri.query().unwrap_or_default();
        let text = query
            .split('&')
            .flat_map(|pair| pair.split('='))
            .all(|part| {
                percent_encoding::percent_decode_str(&part.replace('+', " "))
                    .decode_utf8()
                    .is_ok()
            });
        if !text {
            return Err(Self::Rejection::BadRequest(
                "the query string's escapes are not UTF-8 text".into(),
            ));
        }
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

#[cfg(test)]
mod tests {
    use super::{field_of, without_position};

    #[test]
    fn drops_the_position_serde_counts_in_the_normalised_body() {
        assert_eq!(
            without_position(
                "enabled: invalid type: string \"yes\", expected a boolean at line 1 column 16"
            ),
            "enabled: invalid type: string \"yes\", expected a boolean"
        );
        // Text that only looks like it stays.
        for kept in [
            "missing field `name`",
            "a b at line x column 2",
            "at line 3 column ",
        ] {
            assert_eq!(without_position(kept), kept);
        }
    }

    #[test]
    fn finds_the_field_serde_names() {
        assert_eq!(
            field_of("Failed to deserialize the JSON body into the target type: missing field `name` at line 1 column 9").as_deref(),
            Some("name")
        );
        assert_eq!(
            field_of("Failed to deserialize the JSON body into the target type: context_window: invalid type: string \"x\", expected u32 at line 1 column 30").as_deref(),
            Some("context_window")
        );
        assert_eq!(
            field_of("Failed to deserialize the JSON body into the target type: max_output_tokens: invalid type: floating point `29686668.5`, expected u32 at line 1 column 83").as_deref(),
            Some("max_output_tokens")
        );
        assert_eq!(
            field_of("Failed to deserialize the JSON body into the target type: unknown field `colour`, expected one of `id`, `name` at line 1 column 9").as_deref(),
            Some("colour")
        );
        assert_eq!(field_of("something else entirely"), None);
    }
}
