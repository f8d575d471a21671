//! `logbook projection ...`: list, inspect, rebuild, verify the read models,
//! and handle their parked events.

use anyhow::bail;
use clap::Subcommand;
use logbook::projection::{
    PoisonPolicy, ProjectionRegistry, ProjectorOptions, RegisteredProjection,
};

use crate::progress::Reporter;
use logbook_ports::Stores;

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

pub async fn run(
    stores: &Stores,
    projections: &ProjectionRegistry,
    args: ProjectionArgs,
) -> anyhow::Result<()> {
    use ProjectionCommand as P;
    let policy = match args.on_poison {
        OnPoison::Stop => PoisonPolicy::Stop,
        OnPoison::Park => PoisonPolicy::Park,
    };
    let options = || ProjectorOptions {
        policy,
        ..ProjectorOptions::default()
    };
    let (name, action) = match args.command {
        P::List if crate::output::json() => {
            let mut statuses = Vec::new();
            for projection in projections.iter() {
                statuses.push(projection.status(stores, options()).await?);
            }
            crate::output::json_line(&statuses);
            return Ok(());
        }
        P::List => {
            say!(
                "{:<18} {:>10} {:>10} {:>8} {:>7}",
                "name",
                "checkpoint",
                "head",
                "lag",
                "parked"
            );
            for projection in projections.iter() {
                act(stores, &**projection, Action::StatusLine, options()).await?;
            }
            return Ok(());
        }
        P::Status { name } => (name, Action::Status),
        P::Show { name } => (name, Action::Show),
        P::Rebuild { name } => (name, Action::Rebuild),
        P::Verify { name } => (name, Action::Verify),
        P::Parked { name } => (name, Action::Parked),
        P::Retry { name } => (name, Action::Retry),
    };
    act(stores, &**projections.get(&name)?, action, options()).await
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

async fn act(
    stores: &Stores,
    projection: &dyn RegisteredProjection,
    action: Action,
    options: ProjectorOptions,
) -> anyhow::Result<()> {
    let name = projection.name();
    let json = crate::output::json();
    match action {
        Action::StatusLine => {
            let s = projection.status(stores, options).await?;
            let show = |p: Option<u64>| p.map_or_else(|| "-".to_owned(), |p| p.to_string());
            say!(
                "{:<18} {:>10} {:>10} {:>8} {:>7}",
                s.name,
                show(s.checkpoint),
                show(s.head),
                s.lag,
                s.parked
            );
        }
        Action::Status if json => {
            crate::output::json_line(&projection.status(stores, options).await?);
        }
        Action::Status => {
            let s = projection.status(stores, options).await?;
            say!("projection: {}", s.name);
            say!(
                "checkpoint: {}",
                s.checkpoint
                    .map_or_else(|| "none".to_owned(), |p| p.to_string())
            );
            say!(
                "head:       {}",
                s.head.map_or_else(|| "none".to_owned(), |p| p.to_string())
            );
            say!("lag:        {}", s.lag);
            say!("parked:     {}", s.parked);
        }
        Action::Show => {
            let mut report = Reporter::new("catch-up", "positions");
            let (done, model) = projection
                .show(stores, options, &mut |p| report.update(p.position, p.head))
                .await?;
            report.finish();
            if done.parked > 0 {
                eprintln!(
                    "warning: {} events parked; see `logbook projection parked {name}`",
                    done.parked
                );
            }
            if json {
                crate::output::json_line(&model);
            } else {
                say!("{}", serde_json::to_string_pretty(&model)?);
            }
        }
        Action::Rebuild => {
            let mut report = Reporter::new("rebuild", "positions");
            let done = projection
                .rebuild(stores, options, &mut |p| report.update(p.position, p.head))
                .await?;
            report.finish();
            if json {
                crate::output::json_line(&serde_json::json!({
                    "name": name,
                    "rebuilt": done,
                }));
                return Ok(());
            }
            say!(
                "rebuilt {name}: {} events applied, {} parked, checkpoint {}",
                done.applied,
                done.parked,
                done.checkpoint.unwrap_or(0)
            );
        }
        Action::Verify => {
            let differences = projection.verify(stores, options).await?;
            if json {
                crate::output::json_line(&serde_json::json!({
                    "name": name,
                    "matches": differences.is_empty(),
                    "differences": differences,
                }));
            }
            if !differences.is_empty() {
                if !json {
                    for difference in &differences {
                        say!("{difference}");
                    }
                }
                bail!(
                    "projection {name} differs from a fresh fold in {} places",
                    differences.len()
                );
            }
            if !json {
                say!("projection {name} matches a fresh fold of the log");
            }
        }
        Action::Parked => {
            let parked = projection.parked(stores, options).await?;
            if json {
                crate::output::json_line(&parked);
                return Ok(());
            }
            if parked.is_empty() {
                say!("no parked events");
            }
            for p in &parked {
                say!(
                    "{:>8}  {}  {}  {}  {}",
                    p.position,
                    p.event_id,
                    p.stream,
                    p.event_type,
                    p.error
                );
            }
        }
        Action::Retry => {
            let (applied, still) = projection.retry_parked(stores, options).await?;
            if json {
                crate::output::json_line(&serde_json::json!({
                    "name": name,
                    "applied": applied,
                    "still_parked": still,
                }));
            } else {
                say!("{applied} parked events applied, {still} still parked");
            }
        }
    }
    Ok(())
}
