//! The `logbook` command line, as a library a team builds its own
//! `logbook` with: register aggregates and read models on a [`Logbook`],
//! call [`Logbook::run`] from `main`, and get every command (`exec`,
//! `show`, `events`, `log`, `follow`, `projection`, `export`, `import`,
//! `verify`) for them. The seed domains' own commands (`demo`, `account`,
//! `ship`, `user`) come with [`Logbook::with_seed_domains`].
//!
//! Argument parsing and dispatch live here; every rule lives in the library
//! (`logbook`). Every failure ends as one line on standard error and a
//! non-zero exit status; nothing panics on bad input.
//!
//! **Architecture invariant:** a front end: it depends on the library, the
//! ports and the domain, never on an adapter crate directly, and nothing
//! but a binary depends on it.

/// `println!` through [`output::line`]: quiet on a closed pipe.
macro_rules! say {
    () => {
        $crate::output::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}

mod account;
mod aggregate;
mod demo;
mod events;
mod exec;
mod log;
mod output;
mod progress;
mod projection;
mod retention;
mod serve;
mod ship;
mod show;
mod subject;
mod transfer;
mod user;
mod verify;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use logbook::domain::Aggregate;
use logbook::projection::{ProjectionRegistry, ReadModel};
use logbook::registry::AggregateRegistry;
use logbook::store_url::{DEFAULT_STORE_URL, StoreUrl};
use logbook_ports::Stores;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A `logbook` command line with the aggregates and read models registered
/// on it.
///
/// ```no_run
/// use logbook_cli::Logbook;
///
/// fn main() -> std::process::ExitCode {
///     // The tool as shipped: the seed domains and their read models.
///     Logbook::new().with_seed_domains().run()
/// }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Logbook {
    aggregates: AggregateRegistry,
    projections: ProjectionRegistry,
    seed_commands: bool,
}

impl Logbook {
    /// A command line that knows no aggregate and no read model yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the seed domains (bank account, cargo ship, user wallet), their
    /// read models and their own commands: `demo`, `account`, `ship`, `user`.
    #[must_use]
    pub fn with_seed_domains(mut self) -> Self {
        self.aggregates = self
            .aggregates
            .merge(&AggregateRegistry::with_seed_domains());
        self.projections = self
            .projections
            .merge(&ProjectionRegistry::with_seed_read_models());
        self.seed_commands = true;
        self
    }

    /// Adds aggregate `A`: `exec` runs its commands, `show` prints its state.
    #[must_use]
    pub fn aggregate<A>(mut self) -> Self
    where
        A: Aggregate,
        A::Command: DeserializeOwned + Serialize,
    {
        self.aggregates = self.aggregates.with::<A>();
        self
    }

    /// Adds read model `R` to the `projection` commands.
    #[must_use]
    pub fn read_model<R: ReadModel>(mut self) -> Self {
        self.projections = self.projections.with::<R>();
        self
    }

    /// Parses the process's arguments, runs the command and returns the exit
    /// status: success, or failure after one line on standard error.
    pub fn run(self) -> ExitCode {
        self.run_from(std::env::args_os())
    }

    /// As [`Logbook::run`], with the arguments given (the first is the
    /// program name).
    pub fn run_from<I, T>(self, args: I) -> ExitCode
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let (global, command) = match self.parse(args) {
            Ok(parsed) => parsed,
            Err(error) => error.exit(),
        };
        let serving = match &command {
            Parsed::Common(Command::Serve(args)) => Some(args.log_format),
            _ => None,
        };
        init_tracing(serving);
        output::set_json(global.json);
        if let Some(path) = &global.master_key_file {
            match logbook::personal::MasterKey::from_file(path) {
                Ok(key) => {
                    logbook::personal::use_master_key(key);
                }
                Err(error) => {
                    eprintln!("error: {error}");
                    return ExitCode::FAILURE;
                }
            }
        }
        progress::set_asked(global.progress);
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
        match runtime.block_on(self.dispatch(&global.store, command)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                // Output into a closed pipe is no failure: the reader left.
                if let Some(io) = error
                    .chain()
                    .find_map(|cause| cause.downcast_ref::<std::io::Error>())
                {
                    output::exit_if_reader_left(io);
                }
                eprintln!("error: {}", one_line(&error));
                ExitCode::FAILURE
            }
        }
    }

    fn parse<I, T>(&self, args: I) -> Result<(GlobalArgs, Parsed), clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let mut command = Cli::command();
        if self.seed_commands {
            command = SeedCommand::augment_subcommands(command);
        }
        let matches = command.try_get_matches_from(args)?;
        let global = GlobalArgs::from_arg_matches(&matches)?;
        let parsed = match matches.subcommand_name() {
            Some(name) if self.seed_commands && SeedCommand::has_subcommand(name) => {
                Parsed::Seed(SeedCommand::from_arg_matches(&matches)?)
            }
            _ => Parsed::Common(Command::from_arg_matches(&matches)?),
        };
        Ok((global, parsed))
    }

    async fn dispatch(&self, url: &StoreUrl, command: Parsed) -> anyhow::Result<()> {
        // Opened by the commands that need it: `verify` must not open a store
        // for writing (that takes the lock and repairs what it should report).
        let open = || -> anyhow::Result<Stores> { Ok(url.open()?) };
        // Commands that only read open for reading: a file store without its
        // write lock, so they never block a writer.
        let read = || -> anyhow::Result<Stores> { Ok(url.open_read_only()?) };
        match command {
            Parsed::Common(command) => match command {
                Command::Verify(args) => verify::run(url, args).await,
                Command::Stream(args) => retention::stream(url, args).await,
                Command::Scavenge(args) => retention::scavenge(url, args).await,
                Command::Exec(args) => exec::run(&open()?, &self.aggregates, args).await,
                Command::Show(args) => show::run(&read()?, &self.aggregates, args).await,
                Command::Events(args) => events::run(&read()?, args).await,
                Command::Log(args) => log::log(&read()?, args).await,
                Command::Follow(args) => log::follow(&read()?, args).await,
                Command::Projection(args) => {
                    // Listing and inspecting save nothing; catching up saves.
                    let stores = if args.only_reads() { read()? } else { open()? };
                    projection::run(&stores, &self.projections, args).await
                }
                Command::Export(args) => transfer::export(&read()?, args).await,
                Command::Import(args) => transfer::import(&open()?, &self.aggregates, args).await,
                Command::Serve(args) => {
                    serve::run(url, &self.aggregates, &self.projections, args).await
                }
                Command::Subject(command) => subject::run(url, command).await,
            },
            Parsed::Seed(command) => match command {
                SeedCommand::Demo => demo::run(&open()?, url).await,
                SeedCommand::Account(command) => account::run(&open()?, command).await,
                SeedCommand::Ship(command) => ship::run(&open()?, command).await,
                SeedCommand::User(command) => user::run(&open()?, command).await,
            },
        }
    }
}

/// logbook: event sourcing with a swappable store.
#[derive(Debug, Parser)]
#[command(name = "logbook", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,

    #[command(subcommand)]
    command: Command,
}

/// The options every command takes.
#[derive(Debug, Args)]
struct GlobalArgs {
    /// Where events live: memory:, sqlite:PATH or file:DIR.
    #[arg(long, global = true, env = "LOGBOOK_STORE", default_value = DEFAULT_STORE_URL, value_name = "URL")]
    store: StoreUrl,

    /// The master key that seals subject keys, from this file (64 hex digits
    /// or base64); else LOGBOOK_MASTER_KEY or LOGBOOK_MASTER_KEY_FILE.
    #[arg(long, global = true, value_name = "PATH")]
    master_key_file: Option<std::path::PathBuf>,

    /// Print JSON instead of lines for a person (every command but `demo`).
    #[arg(long, global = true)]
    json: bool,

    /// Report progress of long commands as plain lines on standard error even
    /// when it is not a terminal (on a terminal a bar is shown anyway).
    #[arg(long, global = true)]
    progress: bool,
}

enum Parsed {
    Common(Command),
    Seed(SeedCommand),
}

/// The commands that work for every registered aggregate and read model.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run any command of any registered aggregate by name, with JSON arguments.
    Exec(exec::ExecArgs),
    /// Print the state of any registered aggregate, now or in the past.
    Show(show::ShowAnyArgs),
    /// Print the history of one stream.
    Events(events::EventsArgs),
    /// Print a page of the global log.
    Log(log::LogArgs),
    /// Print events as they are committed, until interrupted.
    Follow(log::FollowArgs),
    /// Write the global log (or the seed's ship file) to a file or standard output.
    Export(transfer::ExportArgs),
    /// Read events written by `export` (or the seed's ship file) into the store.
    Import(transfer::ImportArgs),
    /// Check a store: events, streams, segments, the first corruption (exit 1).
    Verify(verify::VerifyArgs),
    /// A stream's settings: its retention (maximum age, count, truncation).
    Stream(retention::StreamArgs),
    /// Reclaim the space of events that retention hides; prints what it reclaimed.
    Scavenge(retention::ScavengeArgs),
    /// List, show, rebuild and verify the read models.
    Projection(projection::ProjectionArgs),
    /// Serve the store over HTTP: JSON API, live subscriptions, metrics, web console.
    Serve(serve::ServeArgs),
    /// Personal data: shred a subject, make or rotate the master key.
    #[command(subcommand)]
    Subject(subject::SubjectCommand),
}

/// The seed domains' own commands.
#[derive(Debug, Subcommand)]
enum SeedCommand {
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
    #[arg(long, value_name = "TIME", value_parser = crate::output::parse_time)]
    at: Option<chrono::DateTime<chrono::Utc>>,
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

/// Logging to standard error. Commands log warnings (a snapshot that could
/// not be saved, a torn log tail cut off); a server (`serving`) logs from
/// info, with times, as text or JSON. RUST_LOG can ask for more
/// (`RUST_LOG=logbook=debug`).
fn init_tracing(serving: Option<serve::LogFormat>) {
    let default = if serving.is_some() {
        "warn,logbook=info"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match serving {
        Some(serve::LogFormat::Json) => builder.json().with_current_span(true).init(),
        Some(serve::LogFormat::Text) => builder.with_ansi(colour_on_stderr()).init(),
        None => builder
            .with_ansi(colour_on_stderr())
            .with_target(false)
            .without_time()
            .init(),
    }
}

/// Colour only for a person at a terminal, and never when `NO_COLOR` is set
/// to anything (<https://no-color.org>).
fn colour_on_stderr() -> bool {
    use std::io::IsTerminal as _;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The README's Rust examples, compiled as doc tests so they stay true (here,
/// where every crate they use is a dependency).
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeExamples;
