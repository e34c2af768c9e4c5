//! `fetch` with a deadline (an `AbortController` fired by a timer) and
//! errors that say what failed, including `Retry-After` on 429/503.

use gloo_timers::callback::Timeout;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, Request, RequestInit, Response};

use super::js_message;
use crate::error::SdkError;

/// `Retry-After` in ms: delta-seconds or an HTTP date.
fn retry_after(response: &Response) -> Option<f64> {
    let value = response.headers().get("retry-after").ok()??;
    // Parsed by JS (`Number`), which keeps float parsing out of the wasm.
    let seconds = js_sys::Number::from(JsValue::from_str(value.trim())).value_of();
    if !seconds.is_nan() {
        return Some(seconds.max(0.0) * 1000.0);
    }
    let at = js_sys::Date::parse(&value);
    (!at.is_nan()).then(|| (at - js_sys::Date::now()).max(0.0))
}

/// Sends a request and reads the answer's text (JSON, read by the caller).
pub(crate) async fn fetch_text(
    what: &'static str,
    method: &str,
    url: &str,
    body: Option<&str>,
    timeout_ms: f64,
    headers: &[(String, String)],
    credentials: Option<&str>,
) -> Result<String, SdkError> {
    let network = |e: JsValue| SdkError::Network {
        what,
        message: js_message(&e),
    };
    let controller = AbortController::new().map_err(network)?;
    let init = RequestInit::new();
    init.set_method(method);
    init.set_signal(Some(&controller.signal()));
    if let Some(credentials) = credentials {
        // By name: the binding of RequestCredentials weighs more than this.
        let _ = js_sys::Reflect::set(&init, &"credentials".into(), &credentials.into());
    }
    if body.is_some() || !headers.is_empty() {
        let sent = web_sys::Headers::new().map_err(network)?;
        for (name, value) in headers {
            sent.set(name, value).map_err(network)?;
        }
        if let Some(body) = body {
            init.set_body(&JsValue::from_str(body));
            sent.set("content-type", "application/json")
                .map_err(network)?;
        }
        init.set_headers(&sent);
    }
    let request = Request::new_with_str_and_init(url, &init).map_err(network)?;
    let global = js_sys::global();
    let promise = if let Some(window) = global.dyn_ref::<web_sys::Window>() {
        window.fetch_with_request(&request)
    } else {
        return Err(SdkError::Network {
            what,
            message: "no window: the SDK runs in a browser page".into(),
        });
    };
    let deadline = Timeout::new(timeout_ms.min(u32::MAX as f64) as u32, move || {
        controller.abort()
    });
    let answered = JsFuture::from(promise).await;
    let response: Response = match answered {
        Ok(response) => response.unchecked_into(),
        Err(e) => {
            let aborted = e
                .dyn_ref::<web_sys::DomException>()
                .is_some_and(|d| d.name() == "AbortError");
            return Err(if aborted {
                SdkError::Timeout {
                    what,
                    ms: timeout_ms as u32,
                }
            } else {
                network(e)
            });
        }
    };
    if !response.ok() {
        deadline.cancel();
        return Err(SdkError::Http {
            what,
            status: response.status(),
            retry_after_ms: retry_after(&response),
        });
    }
    let text = response.text().map_err(network)?;
    let read = JsFuture::from(text).await;
    deadline.cancel();
    read.map(|text| text.as_string().unwrap_or_default())
        .map_err(|e| SdkError::Decode {
            what,
            message: js_message(&e),
        })
}
