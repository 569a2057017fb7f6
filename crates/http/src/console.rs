//! The web console: one page of plain HTML, CSS and JavaScript written for
//! Sluice, embedded in the binary with `include_str!` so it ships with no
//! extra install and no third-party code. It talks only to the `/v1` API.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::AppState;

const INDEX_HTML: &str = include_str!("console/index.html");
const CONSOLE_CSS: &str = include_str!("console/console.css");
const CONSOLE_JS: &str = include_str!("console/console.js");
const FAVICON_SVG: &str = include_str!("console/favicon.svg");

/// Routes of the console's static files (outside the OpenAPI document).
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/",
            get(|| async { page(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/console/console.css",
            get(|| async { page(CONSOLE_CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/console/console.js",
            get(|| async { page(CONSOLE_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/console/favicon.svg",
            get(|| async { page(FAVICON_SVG, "image/svg+xml") }),
        )
}

fn page(body: &'static str, content_type: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // The files change with the binary; a restart may bring new ones.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}
