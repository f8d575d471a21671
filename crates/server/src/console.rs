//! The web console: three plain files embedded in the binary (no front-end
//! build), a single page that talks only to the public `/api/v1`. Event
//! content is untrusted and is only ever inserted as text.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

const INDEX: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/app.js");
const STYLE: &str = include_str!("console/style.css");

/// The console's routes: `/`, `/console/app.js`, `/console/style.css`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    // A strict policy: scripts and styles from this origin only, no inline
    // script, so even markup that slipped into the page could not run.
    const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";
    Router::new()
        .route(
            "/",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                        (header::CONTENT_SECURITY_POLICY, POLICY),
                    ],
                    INDEX,
                )
                    .into_response()
            }),
        )
        .route(
            "/console/app.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    SCRIPT,
                )
                    .into_response()
            }),
        )
        .route(
            "/console/style.css",
            get(|| async {
                ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
            }),
        )
}
