//! `logbook serve`: the HTTP API, live subscriptions, metrics and the web
//! console over the store, with this command line's aggregates and read
//! models registered, until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use logbook::projection::ProjectionRegistry;
use logbook::registry::AggregateRegistry;
use logbook::store_url::StoreUrl;
use logbook_server::{Access, Server, ServerOptions, Tokens};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// `logbook serve [--listen ADDR] [--token T] [--read-token T]`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on; anything but a loopback address needs a token.
    #[arg(long, default_value = "127.0.0.1:2113", value_name = "ADDR")]
    listen: SocketAddr,
    /// A read-write token every request must carry (`Authorization: Bearer`).
    #[arg(
        long,
        env = "LOGBOOK_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    /// A read-only token: reads, subscriptions and metrics, no changes.
    #[arg(
        long,
        env = "LOGBOOK_READ_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    read_token: Option<String>,
    /// Let pages of this origin call the API (CORS); none by default.
    #[arg(long, value_name = "ORIGIN")]
    cors_origin: Option<String>,
    /// Largest request body, in bytes.
    #[arg(long, default_value_t = 1024 * 1024, value_name = "BYTES")]
    max_body: usize,
    /// Seconds a request may take.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    request_timeout: u64,
    /// Log lines as text or JSON.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

pub async fn run(
    url: &StoreUrl,
    aggregates: &AggregateRegistry,
    projections: &ProjectionRegistry,
    args: ServeArgs,
) -> anyhow::Result<()> {
    let mut tokens = Tokens::none();
    if let Some(token) = args.token {
        tokens = tokens.with(token, Access::ReadWrite);
    }
    if let Some(token) = args.read_token {
        tokens = tokens.with(token, Access::Read);
    }
    logbook_server::check_bind(args.listen, &tokens)?;
    let stores = url.open()?;
    let options = ServerOptions {
        store_label: url.to_string(),
        commands: aggregates.clone(),
        projections: projections.clone(),
        tokens,
        cors_origin: args.cors_origin,
        max_body_bytes: args.max_body,
        request_timeout: Duration::from_secs(args.request_timeout.max(1)),
        ..ServerOptions::default()
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    eprintln!("logbook serving {url} at http://{addr}/ (Ctrl-C to stop)");
    Server::new(stores, options)
        .serve(listener, logbook_server::shutdown_signal())
        .await?;
    Ok(())
}
