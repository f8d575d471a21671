//! `logbook log` (a page of the global log) and `logbook follow` (the log,
//! live, until interrupted).

use std::sync::Arc;

use clap::Args;
use logbook::Subscription;
use logbook_domain::RecordedEvent;
use logbook_ports::{EventFilter, Stores};

use super::output;

/// Which events of the global log.
#[derive(Debug, Args)]
pub struct LogFilter {
    /// Only events of this type (repeatable).
    #[arg(long = "type", value_name = "TYPE")]
    types: Vec<String>,
    /// Only events of streams in this category (e.g. BankAccount).
    #[arg(long, value_name = "CATEGORY")]
    category: Option<String>,
}

impl LogFilter {
    fn to_filter(&self) -> EventFilter {
        EventFilter {
            event_types: self.types.clone(),
            stream_prefix: self.category.as_ref().map(|c| format!("{c}-")),
        }
    }
}

/// Arguments of `logbook log`.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// First global position to show.
    #[arg(long, default_value_t = 1, value_name = "POS")]
    from: u64,
    /// At most this many events.
    #[arg(long, default_value_t = 100, value_name = "N")]
    limit: usize,
    #[command(flatten)]
    filter: LogFilter,
}

/// Arguments of `logbook follow`.
#[derive(Debug, Args)]
pub struct FollowArgs {
    /// First global position to show (default: only new events).
    #[arg(long, value_name = "POS")]
    from: Option<u64>,
    #[command(flatten)]
    filter: LogFilter,
}

fn print(event: &RecordedEvent, json: bool) -> anyhow::Result<()> {
    if json {
        say!("{}", serde_json::to_string(event)?);
    } else {
        say!(
            "{:>8}  {:<28} {:>4}  {:<18} {}  {}",
            event.position,
            event.stream,
            event.version,
            event.event_type,
            output::time(event.recorded_at),
            event.payload.as_str()
        );
    }
    Ok(())
}

pub async fn log(stores: &Stores, args: LogArgs) -> anyhow::Result<()> {
    let events = stores
        .events
        .read_all(args.from, args.limit, &args.filter.to_filter())
        .await?;
    for event in &events {
        print(event, output::json())?;
    }
    Ok(())
}

pub async fn follow(stores: &Stores, args: FollowArgs) -> anyhow::Result<()> {
    let from = match args.from {
        Some(from) => from,
        None => stores.events.head_position().await?.unwrap_or(0) + 1,
    };
    let mut subscription =
        Subscription::new(Arc::clone(&stores.events), from, args.filter.to_filter());
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            _ = &mut interrupted => return Ok(()),
            event = subscription.next() => {
                print(&event?, output::json())?;
                use std::io::Write as _;
                std::io::stdout().flush()?;
            }
        }
    }
}
