//! Middleware that decides from the request alone: pass it on (perhaps
//! marked, in its extensions or headers) or answer it at once. The address,
//! origin, capacity, rate-limit, currency and token checks are all of this
//! kind.
//!
//! axum's `from_fn` and `map_request` run such a check inside a boxed
//! `async` block, which must own what it calls: they clone every layer
//! inside them for each request (the whole stack below, CORS and the
//! compression included) and box the rest of the way down. A guard checks
//! in `call` itself and then calls the service it wraps in place: no clone
//! of it, no box (axum itself still clones each route's whole stack once a
//! request). Measured on `GET /version` under wrk: BENCHMARKS.md, "The
//! request path".

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::Response;
use futures_util::future::{Either, Ready, ready};
use tower::{Layer, Service};

/// What a guard runs on each request: `None` passes it on, `Some` is the
/// answer instead.
pub type Check<T> = fn(&T, &mut Request) -> Option<Response>;

/// A [`Layer`] of [`Guard`]s running `check` with `state`.
pub struct GuardLayer<T> {
    state: T,
    check: Check<T>,
}

// Derived `Clone` would ask `T: Clone` of the fn pointer's `T` as well; the
// same bound, written out.
impl<T: Clone> Clone for GuardLayer<T> {
    fn clone(&self) -> Self {
        GuardLayer {
            state: self.state.clone(),
            check: self.check,
        }
    }
}

/// Checks each request with `check` before the service it wraps.
pub fn guard<T: Clone>(state: T, check: Check<T>) -> GuardLayer<T> {
    GuardLayer { state, check }
}

impl<T: Clone, S> Layer<S> for GuardLayer<T> {
    type Service = Guard<T, S>;

    fn layer(&self, inner: S) -> Guard<T, S> {
        Guard {
            state: self.state.clone(),
            check: self.check,
            inner,
        }
    }
}

/// The service a [`GuardLayer`] makes.
pub struct Guard<T, S> {
    state: T,
    check: Check<T>,
    inner: S,
}

impl<T> std::fmt::Debug for GuardLayer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardLayer").finish_non_exhaustive()
    }
}

impl<T, S: std::fmt::Debug> std::fmt::Debug for Guard<T, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<T: Clone, S: Clone> Clone for Guard<T, S> {
    fn clone(&self) -> Self {
        Guard {
            state: self.state.clone(),
            check: self.check,
            inner: self.inner.clone(),
        }
    }
}

impl<T, S> Service<Request> for Guard<T, S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        match (self.check)(&self.state, &mut request) {
            Some(answer) => Either::Left(ready(Ok(answer))),
            None => Either::Right(self.inner.call(request)),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use tower::ServiceExt;

    use super::*;

    fn teapot_unless_marked(marker: &&'static str, request: &mut Request) -> Option<Response> {
        if request.headers().contains_key("x-pass") {
            request
                .headers_mut()
                .insert("x-marked", marker.parse().unwrap());
            None
        } else {
            Some(StatusCode::IM_A_TEAPOT.into_response())
        }
    }

    fn echo_marker()
    -> impl Service<Request, Response = Response, Error = Infallible, Future = impl Send> + Clone
    {
        tower::service_fn(|request: Request| async move {
            let marker = request
                .headers()
                .get("x-marked")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            Ok::<_, Infallible>(marker.into_response())
        })
    }

    #[tokio::test]
    async fn a_guard_answers_or_passes_the_request_on_as_it_left_it() {
        let service = guard("by-the-guard", teapot_unless_marked).layer(echo_marker());

        let refused = service
            .clone()
            .oneshot(Request::new(Body::empty()))
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::IM_A_TEAPOT);

        let passed = service
            .oneshot(
                Request::builder()
                    .header("x-pass", "1")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(passed.status(), StatusCode::OK);
        let body = axum::body::to_bytes(passed.into_body(), 64).await.unwrap();
        assert_eq!(&body[..], b"by-the-guard");
    }
}
