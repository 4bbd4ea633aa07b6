//! The admin port: `/healthz`, `/readyz` (the first list of WasmApps is in and each app has been
//! prepared once), and `/apps`, the
//! report of every app the activator serves, which the operator polls.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::net::TcpListener;
use wasmpod_oci::activity::ACTIVATOR_APPS_PATH;

use crate::apps::Apps;

#[derive(Clone)]
struct Admin {
    apps: Arc<Apps>,
    ready: Arc<AtomicBool>,
}

/// Serves the admin endpoints until the process ends.
pub async fn serve(
    listener: TcpListener,
    apps: Arc<Apps>,
    ready: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let router = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route(ACTIVATOR_APPS_PATH, get(report))
        .with_state(Admin { apps, ready });
    axum::serve(listener, router).await
}

async fn readyz(State(admin): State<Admin>) -> (StatusCode, &'static str) {
    if !admin.ready.load(Ordering::SeqCst) {
        let why = "the first list of WasmApps is not in yet, or shutting down\n";
        (StatusCode::SERVICE_UNAVAILABLE, why)
    } else if !admin.apps.settled() {
        (StatusCode::SERVICE_UNAVAILABLE, "preparing apps\n")
    } else {
        (StatusCode::OK, "ready\n")
    }
}

async fn report(State(admin): State<Admin>) -> impl axum::response::IntoResponse {
    let body = serde_json::to_string(&admin.apps.report()).unwrap_or_default();
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
}
