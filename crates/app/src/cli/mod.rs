//! Argument parsing and dispatch. Every failure ends here as one line on
//! standard error and a non-zero exit status; nothing panics on bad input.

mod account;
mod aggregate;
mod demo;
mod events;
mod exec;
mod log;
mod output;
mod projection;
mod ship;
mod transfer;
mod user;
mod verify;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use logbook::store_url::{DEFAULT_STORE_URL, StoreUrl};
use logbook_ports::Stores;

/// logbook: event sourcing with a swappable store.
#[derive(Debug, Parser)]
#[command(name = "logbook", version, about, propagate_version = true)]
struct Cli {
    /// Where events live: memory:, sqlite:PATH or file:DIR.
    #[arg(long, global = true, env = "LOGBOOK_STORE", default_value = DEFAULT_STORE_URL, value_name = "URL")]
    store: StoreUrl,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the seed scenarios (user wallet, cargo ship, bank account) end to end.
    Demo,
    /// Open, use, close and inspect bank accounts.
    #[command(subcommand)]
    Account(account::AccountCommand),
    /// Register, move, load and inspect cargo ships.
    #[command(subcommand)]
    Ship(ship::ShipCommand),
    /// Create users, change their balance, replay their history.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Print the history of one stream.
    Events(events::EventsArgs),
    /// Run any command of any aggregate by name, with JSON arguments.
    Exec(exec::ExecArgs),
    /// Print a page of the global log.
    Log(log::LogArgs),
    /// Print events as they are committed, until interrupted.
    Follow(log::FollowArgs),
    /// Write the global log (or the seed's ship file) to a file or standard output.
    Export(transfer::ExportArgs),
    /// Read events written by `export` (or the seed's ship file) into the store.
    Import(transfer::ImportArgs),
    /// Check a store: events, streams, segments, the first corruption (exit 1).
    Verify,
    /// List, show, rebuild and verify the read models.
    Projection(projection::ProjectionArgs),
}

/// Arguments of every `show` subcommand.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The aggregate's id.
    id: String,
    /// State just after this version of its stream.
    #[arg(long, value_name = "N", conflicts_with = "at")]
    at_version: Option<u64>,
    /// State as of this time (RFC 3339, e.g. 2026-11-23T10:00:00Z).
    #[arg(long, value_name = "TIME")]
    at: Option<chrono::DateTime<chrono::Utc>>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs the tool and turns any error into one line and exit status 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let url = &cli.store;
    // Opened by the commands that need it: `verify` must not open a store
    // for writing (that takes the lock and repairs what it should report).
    let open = || -> anyhow::Result<Stores> { Ok(url.open()?) };
    match cli.command {
        Command::Verify => verify::run(url).await,
        Command::Demo => demo::run(&open()?, url).await,
        Command::Account(command) => account::run(&open()?, command).await,
        Command::Ship(command) => ship::run(&open()?, command).await,
        Command::User(command) => user::run(&open()?, command).await,
        Command::Events(args) => events::run(&open()?, args).await,
        Command::Exec(args) => exec::run(&open()?, args).await,
        Command::Log(args) => log::log(&open()?, args).await,
        Command::Follow(args) => log::follow(&open()?, args).await,
        Command::Projection(args) => projection::run(&open()?, args).await,
        Command::Export(args) => transfer::export(&open()?, args).await,
        Command::Import(args) => transfer::import(&open()?, args).await,
    }
}

/// The error and its causes on one line, each cause said once (many errors
/// already repeat their source in their own message).
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}

fn init_tracing() {
    // Warnings (a snapshot that could not be saved, a torn log tail cut off)
    // go to standard error; RUST_LOG can ask for more.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
}
