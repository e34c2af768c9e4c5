//! Credentials for apps behind a login: headers sent with every request, a
//! token asked for before each request and connection (`getToken`), and
//! `fetch`'s credentials mode. The WebSocket cannot carry headers: the token
//! goes in its `access_token` query parameter. The cache and the shared
//! connection are kept apart per token: a copy fetched with one token is
//! never shown with another.
//!
//! `sdk/js/host.js` keeps them (`credentialsOf`), asks for the token
//! (`tokenOf`, which `fetchText` calls first) and writes out what whose
//! copy this is from (`identityText`); this module checks the config
//! through it and digests the identity.

use wasm_bindgen::JsValue;

#[wasm_bindgen::prelude::wasm_bindgen(module = "/js/host.js")]
extern "C" {
    /// The config's credentials, checked: an object; throws an `Error`
    /// naming the first field that is wrong (`headers`, `getToken`,
    /// `credentials`).
    #[wasm_bindgen(js_name = credentialsOf, catch)]
    fn credentials_of(config: &JsValue) -> Result<JsValue, JsValue>;
    /// The configured headers and the token's, a line each; "" without
    /// either.
    #[wasm_bindgen(js_name = identityText)]
    fn identity_text(credentials: &JsValue, token: Option<&str>) -> String;
    /// The token for the next request or connection, once what runs now is
    /// done: a string, or `undefined` for none; rejected as `fetchText` is
    /// (kinds 4 and 5: [`crate::transport::http::failure_of`]).
    #[wasm_bindgen(js_name = tokenOf)]
    pub(crate) fn token_of(hook: &JsValue, credentials: &JsValue, ms: f64) -> js_sys::Promise;
}

/// The identity of a page whose token could not be had when it was worked
/// out: `getToken` threw, timed out, or gave none (a page with `getToken`
/// signed out then may sign in later). No digest reads so (they are hex);
/// such a page neither reads nor writes the cache nor joins other tabs, for
/// its lifetime: whose copy it holds cannot be said.
pub(crate) const APART: &str = "!";

/// What a page's config says about credentials, as `sdk/js/host.js` keeps
/// them.
#[derive(Debug)]
pub(crate) struct Auth(JsValue);

impl Auth {
    /// Reads `headers`, `getToken` and `credentials` from the config object
    /// (none from anything else); the `Error` thrown names a wrong one.
    pub(crate) fn read(config: &JsValue) -> Result<Self, JsValue> {
        credentials_of(config).map(Self)
    }

    /// As `fetchText` and `tokenOf` take them.
    pub(crate) fn js(&self) -> &JsValue {
        &self.0
    }

    /// Whom a cached copy or a shared connection belongs to: "" without
    /// credentials, [`APART`] with `getToken` and no token, else a digest of
    /// them (never the token itself). FNV-1a:
    /// a key, not a secret, and a few bytes of wasm.
    pub(crate) fn identity(&self, token: Option<&str>) -> String {
        let text = identity_text(&self.0, token);
        if text.is_empty() || text == APART {
            return text;
        }
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in text.bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        let mut out = String::new();
        crate::json::push_hex(&mut out, hash.into(), 1);
        out
    }
}
