//! `logbook projection ...`: list, inspect, rebuild, verify the read models,
//! and handle their parked events.

use std::io::IsTerminal;

use anyhow::bail;
use clap::Subcommand;
use logbook::projection::{
    AccountBalances, AccountSummaries, PoisonPolicy, Progress, Projector, ProjectorOptions,
    ReadModel, ShipsByPort,
};
use logbook_ports::Stores;

/// Every projection the tool knows.
pub const NAMES: [&str; 3] = [
    AccountSummaries::NAME,
    AccountBalances::NAME,
    ShipsByPort::NAME,
];

/// `logbook projection [--on-poison POLICY] <COMMAND>`.
#[derive(Debug, clap::Args)]
pub struct ProjectionArgs {
    /// What to do with an event a read model cannot apply: stop before it
    /// (and report it), or park it for `projection retry` and go on.
    #[arg(long, value_enum, default_value = "stop", global = true)]
    on_poison: OnPoison,
    #[command(subcommand)]
    command: ProjectionCommand,
}

/// The poison policies offered on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum OnPoison {
    Stop,
    Park,
}

/// Subcommands of `logbook projection`.
#[derive(Debug, Subcommand)]
pub enum ProjectionCommand {
    /// Name, checkpoint, lag and parked events of every projection.
    List,
    /// Checkpoint, head, lag and parked events of one projection.
    Status {
        /// Projection name.
        name: String,
    },
    /// Bring a projection up to date and print its read model as JSON.
    Show {
        /// Projection name.
        name: String,
    },
    /// Rebuild a projection from the whole log, beside the live model.
    Rebuild {
        /// Projection name.
        name: String,
    },
    /// Compare the live model with a fresh fold; exit 1 on a difference.
    Verify {
        /// Projection name.
        name: String,
    },
    /// Events set aside because the projection could not apply them.
    Parked {
        /// Projection name.
        name: String,
    },
    /// Apply the parked events again.
    Retry {
        /// Projection name.
        name: String,
    },
}

pub async fn run(stores: &Stores, args: ProjectionArgs) -> anyhow::Result<()> {
    use ProjectionCommand as P;
    let policy = match args.on_poison {
        OnPoison::Stop => PoisonPolicy::Stop,
        OnPoison::Park => PoisonPolicy::Park,
    };
    match args.command {
        P::List => {
            println!(
                "{:<18} {:>10} {:>10} {:>8} {:>7}",
                "name", "checkpoint", "head", "lag", "parked"
            );
            for name in NAMES {
                dispatch(stores, name, Action::StatusLine, policy).await?;
            }
            Ok(())
        }
        P::Status { name } => dispatch(stores, &name, Action::Status, policy).await,
        P::Show { name } => dispatch(stores, &name, Action::Show, policy).await,
        P::Rebuild { name } => dispatch(stores, &name, Action::Rebuild, policy).await,
        P::Verify { name } => dispatch(stores, &name, Action::Verify, policy).await,
        P::Parked { name } => dispatch(stores, &name, Action::Parked, policy).await,
        P::Retry { name } => dispatch(stores, &name, Action::Retry, policy).await,
    }
}

#[derive(Debug, Clone, Copy)]
enum Action {
    StatusLine,
    Status,
    Show,
    Rebuild,
    Verify,
    Parked,
    Retry,
}

async fn dispatch(
    stores: &Stores,
    name: &str,
    action: Action,
    policy: PoisonPolicy,
) -> anyhow::Result<()> {
    match name {
        AccountSummaries::NAME => act::<AccountSummaries>(stores, action, policy).await,
        AccountBalances::NAME => act::<AccountBalances>(stores, action, policy).await,
        ShipsByPort::NAME => act::<ShipsByPort>(stores, action, policy).await,
        _ => bail!("unknown projection {name:?}; known: {}", NAMES.join(", ")),
    }
}

async fn act<R: ReadModel>(
    stores: &Stores,
    action: Action,
    policy: PoisonPolicy,
) -> anyhow::Result<()> {
    let options = ProjectorOptions {
        policy,
        ..ProjectorOptions::default()
    };
    let projector = Projector::<R>::with_options(stores, options);
    match action {
        Action::StatusLine => {
            let s = projector.status().await?;
            let show = |p: Option<u64>| p.map_or_else(|| "-".to_owned(), |p| p.to_string());
            println!(
                "{:<18} {:>10} {:>10} {:>8} {:>7}",
                s.name,
                show(s.checkpoint),
                show(s.head),
                s.lag,
                s.parked
            );
        }
        Action::Status => {
            let s = projector.status().await?;
            println!("projection: {}", s.name);
            println!(
                "checkpoint: {}",
                s.checkpoint
                    .map_or_else(|| "none".to_owned(), |p| p.to_string())
            );
            println!(
                "head:       {}",
                s.head.map_or_else(|| "none".to_owned(), |p| p.to_string())
            );
            println!("lag:        {}", s.lag);
            println!("parked:     {}", s.parked);
        }
        Action::Show => {
            let done = projector.catch_up().await?;
            if done.parked > 0 {
                eprintln!(
                    "warning: {} events parked; see `logbook projection parked {}`",
                    done.parked,
                    R::NAME
                );
            }
            let state = projector.state().await?;
            println!("{}", serde_json::to_string_pretty(&state.model)?);
        }
        Action::Rebuild => {
            let mut report = Reporter::new();
            let done = projector.rebuild(|p| report.progress(p)).await?;
            report.finish();
            println!(
                "rebuilt {}: {} events applied, {} parked, checkpoint {}",
                R::NAME,
                done.applied,
                done.parked,
                done.checkpoint.unwrap_or(0)
            );
        }
        Action::Verify => {
            let differences = projector.verify().await?;
            if !differences.is_empty() {
                for difference in &differences {
                    println!("{difference}");
                }
                bail!(
                    "projection {} differs from a fresh fold in {} places",
                    R::NAME,
                    differences.len()
                );
            }
            println!("projection {} matches a fresh fold of the log", R::NAME);
        }
        Action::Parked => {
            let state = projector.state().await?;
            if state.parked.is_empty() {
                println!("no parked events");
            }
            for p in &state.parked {
                println!(
                    "{:>8}  {}  {}  {}  {}",
                    p.position, p.event_id, p.stream, p.event_type, p.error
                );
            }
        }
        Action::Retry => {
            let (applied, still) = projector.retry_parked().await?;
            println!("{applied} parked events applied, {still} still parked");
        }
    }
    Ok(())
}

/// A progress bar with rate and ETA on a terminal; plain lines otherwise.
struct Reporter {
    bar: Option<indicatif::ProgressBar>,
    last_line: std::time::Instant,
}

impl Reporter {
    fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} positions  {per_sec}  eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        Self {
            bar,
            last_line: std::time::Instant::now(),
        }
    }

    fn progress(&mut self, p: Progress) {
        match &self.bar {
            Some(bar) => {
                bar.set_length(p.head);
                bar.set_position(p.position);
            }
            None if self.last_line.elapsed().as_secs() >= 1 || p.position >= p.head => {
                eprintln!(
                    "rebuild: position {} of {}, {} events applied",
                    p.position, p.head, p.applied
                );
                self.last_line = std::time::Instant::now();
            }
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
