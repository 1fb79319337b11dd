//! Running a request again when the database undid its transaction.
//!
//! On PostgreSQL, write transactions are SERIALIZABLE (see [`crate::store`]): when replicas'
//! transactions conflict, PostgreSQL undoes some of them with a serialization failure. The undo
//! is complete, so the request that ran the transaction can run again from the start and will
//! see what the other transaction did: a second reservation then finds the first and is
//! refused, as it would have been had it come later. A request is run again only when
//!
//! - its failure was a serialization failure or a deadlock (never a lost connection, whose
//!   commit may have happened: [`crate::store::StoreError::OutcomeUnknown`]), and
//! - none of its transactions had committed yet (running it again would repeat that one),
//!
//! at most [`MAX_ATTEMPTS`] times, after a short random pause so that the contenders spread out.
//! A request that still conflicts is answered with the internal error it got.
//!
//! The handlers' effects before their commit are database writes only, which the undo removes;
//! that is what makes running them again sound. SQLite serializes writers with its write lock
//! and never reports such a failure, so there a request always runs once.

use std::cell::Cell;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jit_proto::api::ErrorCode;
use rand::Rng;

use crate::error::ApiError;

/// How many times a request runs at most (the first run included).
pub const MAX_ATTEMPTS: u32 = 8;

/// What one run of a request did to the database.
#[derive(Default)]
struct Attempt {
    commits: Cell<u32>,
    conflicted: Cell<bool>,
}

tokio::task_local! {
    static ATTEMPT: Attempt;
}

/// Called when a write transaction committed ([`crate::store::WriteTx::commit`]).
pub(crate) fn note_commit() {
    let _ = ATTEMPT.try_with(|a| a.commits.set(a.commits.get() + 1));
}

/// Called when the database undid a transaction of this request (from the error conversion).
pub(crate) fn note_conflict() {
    let _ = ATTEMPT.try_with(|a| a.conflicted.set(true));
}

/// Runs `work` (outside a request) and says whether the database undid a transaction of it.
pub(crate) async fn watching_conflicts<T>(work: impl Future<Output = T>) -> (T, bool) {
    ATTEMPT
        .scope(Attempt::default(), async {
            let out = work.await;
            (out, ATTEMPT.with(|a| a.conflicted.get()))
        })
        .await
}

/// Middleware: buffers the request body (at most `limit` bytes) and runs the request again as
/// the module comment says.
pub async fn rerun_on_conflict(req: Request, next: Next, limit: usize) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("request body is over the size limit (at most {limit} bytes)"),
            )
            .into_response();
        }
    };
    let mut attempt = 1;
    loop {
        let mut again = Request::builder()
            .method(parts.method.clone())
            .uri(parts.uri.clone())
            .version(parts.version)
            .body(Body::from(bytes.clone()))
            .expect("a request rebuilt from a valid one is valid");
        *again.headers_mut() = parts.headers.clone();
        *again.extensions_mut() = parts.extensions.clone();
        let (response, retry) = ATTEMPT
            .scope(Attempt::default(), async {
                let response = next.clone().run(again).await;
                let retry = ATTEMPT.with(|a| a.conflicted.get() && a.commits.get() == 0);
                (response, retry)
            })
            .await;
        if !retry || attempt >= MAX_ATTEMPTS {
            if retry {
                tracing::warn!(
                    path = %parts.uri.path(),
                    attempts = attempt,
                    "request still conflicted with concurrent transactions; giving up"
                );
            }
            return response;
        }
        // Up to 5 ms, then 10, 20, ... 320 ms: contenders rarely meet twice.
        let cap = 5u64 << (attempt - 1).min(6);
        let pause = rand::rng().random_range(1..=cap);
        tracing::debug!(path = %parts.uri.path(), attempt, "transaction conflicted; running the request again");
        tokio::time::sleep(Duration::from_millis(pause)).await;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use axum::http::StatusCode;
    use tower::ServiceExt;

    use super::*;

    /// A route whose handler runs `behave(n)` on its n-th run (from 0) and echoes the body.
    fn app(behave: fn(u32)) -> (axum::Router, Arc<AtomicU32>) {
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        let app = axum::Router::new()
            .route(
                "/x",
                axum::routing::post(move |body: String| {
                    let r = r.clone();
                    async move {
                        behave(r.fetch_add(1, Ordering::SeqCst));
                        (StatusCode::OK, body)
                    }
                }),
            )
            .layer(axum::middleware::from_fn(|req: Request, next: Next| {
                rerun_on_conflict(req, next, 1024)
            }));
        (app, runs)
    }

    async fn post(app: axum::Router, body: &'static str) -> (StatusCode, String) {
        let req = Request::post("/x").body(Body::from(body)).unwrap();
        let resp = app.oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn a_conflict_runs_the_request_again_with_the_same_body() {
        let (app, runs) = app(|n| {
            if n < 2 {
                note_conflict();
            }
        });
        assert_eq!(post(app, "hello").await, (StatusCode::OK, "hello".into()));
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn nothing_runs_again_after_a_commit_of_the_same_request() {
        let (app, runs) = app(|_| {
            note_commit();
            note_conflict();
        });
        post(app, "x").await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_request_that_keeps_conflicting_runs_a_bounded_number_of_times() {
        let (app, runs) = app(|_| note_conflict());
        post(app, "x").await;
        assert_eq!(runs.load(Ordering::SeqCst), MAX_ATTEMPTS);
    }

    #[tokio::test]
    async fn work_outside_a_request_reports_its_conflicts() {
        let conflicted = async {
            note_conflict();
            1
        };
        assert_eq!(watching_conflicts(conflicted).await, (1, true));
        assert_eq!(watching_conflicts(async { 2 }).await, (2, false));
    }

    #[tokio::test]
    async fn an_oversized_body_is_refused() {
        let (app, runs) = app(|_| {});
        let big: &'static str = Box::leak("y".repeat(2048).into_boxed_str());
        assert_eq!(post(app, big).await.0, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(runs.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn marks_are_per_request_and_ignored_outside_one() {
        // Outside a request nothing is recorded (and nothing panics).
        note_commit();
        note_conflict();
        let (conflicted, commits) = ATTEMPT
            .scope(Attempt::default(), async {
                note_conflict();
                note_commit();
                note_commit();
                ATTEMPT.with(|a| (a.conflicted.get(), a.commits.get()))
            })
            .await;
        assert!(conflicted);
        assert_eq!(commits, 2);
    }
}
