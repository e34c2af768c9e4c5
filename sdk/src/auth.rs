//! Credentials for apps behind a login: headers sent with every request, a
//! token asked for before each request and connection (`getToken`), and
//! `fetch`'s credentials mode. The WebSocket cannot carry headers: the token
//! goes in its `access_token` query parameter. The cache and the shared
//! connection are kept apart per token: a copy fetched with one token is
//! never shown with another.

use js_sys::{Function, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};

#[wasm_bindgen::prelude::wasm_bindgen(module = "/js/host.js")]
extern "C" {
    /// `value` if it settles within `ms`, else a rejection.
    fn within(value: &JsValue, ms: f64) -> js_sys::Promise;
}

use crate::error::SdkError;
use crate::fields::{FieldError, Fields};

/// What a page's config says about credentials.
#[derive(Debug, Default)]
pub(crate) struct Auth {
    headers: Vec<(String, String)>,
    /// The same, as `fetchText` takes them: names and values in turn.
    sent: js_sys::Array,
    get_token: Option<Function>,
    /// `fetch`'s `credentials`, one of its three names.
    credentials: Option<&'static str>,
}

/// The token, known at once or asked of `getToken()`.
#[derive(Debug)]
pub(crate) enum Token {
    Known(Option<String>),
    /// Settles with `getToken()`'s answer, or fails past the time limit.
    Asked(js_sys::Promise),
}

fn token_failed(e: JsValue) -> SdkError {
    SdkError::Network {
        what: "getToken()",
        message: crate::transport::js_message(&e),
    }
}

fn field(field: &'static str, message: &'static str) -> SdkError {
    SdkError::Config {
        field,
        message: message.into(),
    }
}

impl Auth {
    /// Reads `headers`, `getToken` and `credentials` from the config object.
    pub(crate) fn read(config: &JsValue) -> Result<Self, SdkError> {
        if !config.is_object() {
            return Ok(Self::default());
        }
        let get = |name: &str| {
            Reflect::get(config, &name.into())
                .ok()
                .filter(|v| !v.is_undefined() && !v.is_null())
        };
        let mut headers = Vec::new();
        if let Some(object) = get("headers") {
            let object: Object = object
                .dyn_into()
                .map_err(|_| field("headers", "must be an object of strings"))?;
            for entry in Object::entries(&object) {
                let pair: js_sys::Array = entry.unchecked_into();
                match (pair.get(0).as_string(), pair.get(1).as_string()) {
                    (Some(name), Some(value)) => headers.push((name, value)),
                    _ => return Err(field("headers", "must be an object of strings")),
                }
            }
        }
        let get_token = match get("getToken") {
            None => None,
            Some(f) => Some(
                f.dyn_into::<Function>()
                    .map_err(|_| field("getToken", "must be a function"))?,
            ),
        };
        let credentials = Fields::of(config.clone())
            .and_then(|fields| {
                const MODES: [&str; 3] = ["omit", "same-origin", "include"];
                fields
                    .choice(
                        "credentials",
                        "must be \"omit\", \"same-origin\" or \"include\"",
                        &MODES,
                    )
                    .map(|at| at.map(|at| MODES[at]))
            })
            .map_err(|e: FieldError| field(e.field, e.message))?;
        let sent = js_sys::Array::new();
        for (name, value) in &headers {
            sent.push(&name.into());
            sent.push(&value.into());
        }
        Ok(Self {
            headers,
            sent,
            get_token,
            credentials,
        })
    }

    pub(crate) fn credentials(&self) -> Option<&'static str> {
        self.credentials
    }

    /// The configured headers, names and values in turn (the token is sent
    /// besides).
    pub(crate) fn sent(&self) -> &js_sys::Array {
        &self.sent
    }

    /// The configured headers and the token's: what [`Auth::identity`]
    /// digests (requests send the token beside [`Auth::sent`]).
    pub(crate) fn headers(&self, token: Option<&str>) -> Vec<(String, String)> {
        let mut headers = self.headers.clone();
        if let Some(token) = token {
            headers.push((
                "authorization".into(),
                crate::json::concat(&["Bearer ", token]),
            ));
        }
        headers
    }

    /// The token for the next request: `getToken()`'s (awaited if it is a
    /// promise or any thenable, for at most `limit_ms`: then [`Token::Asked`],
    /// whose answer [`Auth::token_of`] reads), else a bearer token in the
    /// configured `Authorization`.
    pub(crate) fn token(&self, limit_ms: f64) -> Result<Token, SdkError> {
        let Some(get_token) = &self.get_token else {
            return Ok(Token::Known(self.headers.iter().find_map(
                |(name, value)| {
                    let bearer = value.strip_prefix("Bearer ")?;
                    name.eq_ignore_ascii_case("authorization")
                        .then(|| bearer.to_owned())
                },
            )));
        };
        let value = get_token.call0(&JsValue::NULL).map_err(token_failed)?;
        // Never waited on for good.
        Ok(Token::Asked(within(&value, limit_ms)))
    }

    /// The token `getToken()` answered (or the reason it did not). A result
    /// that is neither a string nor null is an error: a request is never
    /// sent without the token the app meant to give.
    pub(crate) fn token_of(answer: Result<JsValue, JsValue>) -> Result<Option<String>, SdkError> {
        let value = answer.map_err(token_failed)?;
        match value.as_string() {
            Some(token) => Ok(Some(token).filter(|t| !t.is_empty())),
            None if value.is_null() || value.is_undefined() => Ok(None),
            None => Err(token_failed(JsValue::from_str(
                "it gave neither a string nor null",
            ))),
        }
    }

    /// Whom a cached copy or a shared connection belongs to: "" without
    /// credentials, else a digest of them (never the token itself). FNV-1a:
    /// a key, not a secret, and a few bytes of wasm.
    pub(crate) fn identity(&self, token: Option<&str>) -> String {
        let headers = self.headers(token);
        if headers.is_empty() {
            return String::new();
        }
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for (name, value) in &headers {
            let name = name.to_ascii_lowercase();
            for byte in [name.as_bytes(), b"\n", value.as_bytes(), b"\n"].concat() {
                hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        let mut out = String::new();
        crate::json::push_hex(&mut out, hash.into(), 1);
        out
    }
}
