//! logbook-server: a driving adapter that serves any logbook store over
//! HTTP. It offers a versioned JSON API (`/api/v1`: append, read, list and
//! delete streams, the global log with long-polling, commands by name,
//! aggregate state, projections), live subscriptions as server-sent events,
//! Prometheus metrics at `/metrics`, an OpenAPI document, and a web console
//! embedded in the binary that uses only the public API.
//!
//! ```no_run
//! # async fn run() -> Result<(), logbook_server::ServeError> {
//! let stores = logbook::open_stores("memory:").expect("store");
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:2113").await?;
//! logbook_server::Server::new(stores, logbook_server::ServerOptions::default())
//!     .serve(listener, logbook_server::shutdown_signal())
//!     .await
//! # }
//! ```
//!
//! **Architecture invariant:** this crate is a front end. It reaches storage
//! only through the library (`logbook`) and the ports, never names an
//! adapter, and nothing else in the workspace except the command-line tool
//! depends on it.

mod api;
mod auth;
mod console;
mod error;
mod metrics;
mod sse;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use logbook::StreamCatalog;
use logbook::projection::ProjectionRegistry;
use logbook::registry::AggregateRegistry;
use logbook_ports::Stores;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use auth::{Access, Tokens};

/// The OpenAPI document of `/api/v1`, as served at `/api/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// How the server behaves: its limits, tokens and registries.
#[derive(Clone)]
pub struct ServerOptions {
    /// What the dashboard shows as the store (its URL).
    pub store_label: String,
    /// The commands by name (`POST /api/v1/aggregates/...`).
    pub commands: AggregateRegistry,
    /// The projections (`/api/v1/projections`).
    pub projections: ProjectionRegistry,
    /// Tokens checked on every request (none: the API is open, which
    /// [`check_bind`] allows on a loopback address only).
    pub tokens: Tokens,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Most events one append may carry.
    pub max_batch: usize,
    /// Most events one read returns.
    pub max_page: usize,
    /// Time a request may take before it is answered 503 (subscriptions
    /// excepted once they stream).
    pub request_timeout: Duration,
    /// Longest long-poll `wait` honoured on the global log.
    pub max_wait: Duration,
    /// Events buffered per subscriber.
    pub subscriber_buffer: usize,
    /// How long a subscriber's full buffer may stay full before the
    /// subscriber is dropped.
    pub slow_subscriber_grace: Duration,
    /// Interval of the comment lines that keep idle subscriptions open.
    pub heartbeat: Duration,
    /// The origin allowed to call the API from another site's pages (none:
    /// no CORS headers are sent).
    pub cors_origin: Option<String>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            store_label: "memory:".into(),
            commands: AggregateRegistry::with_seed_domains(),
            projections: ProjectionRegistry::with_seed_read_models(),
            tokens: Tokens::default(),
            max_body_bytes: 1024 * 1024,
            max_batch: 1_000,
            max_page: 1_000,
            request_timeout: Duration::from_secs(30),
            max_wait: Duration::from_secs(25),
            subscriber_buffer: 1_024,
            slow_subscriber_grace: Duration::from_secs(5),
            heartbeat: Duration::from_secs(15),
            cors_origin: None,
        }
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A non-loopback address was asked for without a token.
    #[error(
        "refusing to listen on {addr} without a token: pass --token (or LOGBOOK_TOKEN) to serve beyond this machine, or listen on 127.0.0.1"
    )]
    TokenRequired {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The listener failed.
    #[error("server I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Refuses a non-loopback address when no token is configured.
///
/// # Errors
/// [`ServeError::TokenRequired`].
pub fn check_bind(addr: SocketAddr, tokens: &Tokens) -> Result<(), ServeError> {
    if addr.ip().is_loopback() || !tokens.is_empty() {
        Ok(())
    } else {
        Err(ServeError::TokenRequired { addr })
    }
}

/// What every handler shares.
pub(crate) struct AppState {
    pub stores: Stores,
    pub catalog: StreamCatalog,
    pub options: ServerOptions,
    pub metrics: metrics::Metrics,
    pub shutdown: watch::Receiver<bool>,
}

/// The HTTP server over one store.
pub struct Server {
    state: Arc<AppState>,
    shutdown: watch::Sender<bool>,
}

impl Server {
    /// A server over `stores`.
    pub fn new(stores: Stores, options: ServerOptions) -> Self {
        let (shutdown, receiver) = watch::channel(false);
        let state = Arc::new(AppState {
            catalog: StreamCatalog::new(stores.events.clone()),
            stores,
            options,
            metrics: metrics::Metrics::default(),
            shutdown: receiver,
        });
        Self { state, shutdown }
    }

    /// The routes, for embedding in another axum application.
    pub fn router(&self) -> Router {
        api::router(self.state.clone())
    }

    /// `(method, path)` of every route of `/api/v1`, as the router is built
    /// from them (the OpenAPI test checks the document against this list).
    pub fn api_routes() -> Vec<(&'static str, &'static str)> {
        api::routes_table()
    }

    /// Serves on `listener` until `shutdown` completes, then stops
    /// accepting, closes subscriptions (each gets a `shutdown` event) and
    /// answers the requests in flight before returning.
    ///
    /// # Errors
    /// [`ServeError::Io`] when the listener fails.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        if let Ok(addr) = listener.local_addr() {
            check_bind(addr, &self.state.options.tokens)?;
            tracing::info!(%addr, store = %self.state.options.store_label, "logbook server listening");
        }
        let router = self.router();
        let signal = self.shutdown;
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                shutdown.await;
                tracing::info!("shutting down: closing subscriptions, finishing requests");
                let _ = signal.send(true);
            })
            .await?;
        Ok(())
    }
}

/// Completes once the server is shutting down.
pub(crate) async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|stop| *stop).await.is_err() {
        // The server is gone: that is a shutdown too.
    }
}

/// Completes on Ctrl-C or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
