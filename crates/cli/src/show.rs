//! `logbook show <AGGREGATE> <ID>`: the state of any registered aggregate,
//! now, just after a version, or as of a time.

use clap::Args;
use logbook::registry::{AggregateRegistry, At};
use logbook_ports::Stores;

/// Arguments of `logbook show`.
#[derive(Debug, Args)]
pub struct ShowAnyArgs {
    /// Aggregate type, as registered (e.g. BankAccount).
    aggregate: String,
    /// The aggregate's id.
    id: String,
    /// State just after this version of its stream.
    #[arg(long, value_name = "N", conflicts_with = "at")]
    at_version: Option<u64>,
    /// State as of this time (RFC 3339 with an offset, e.g. 2026-11-23T10:00:00Z).
    #[arg(long, value_name = "TIME", value_parser = crate::output::parse_time)]
    at: Option<chrono::DateTime<chrono::Utc>>,
}

pub async fn run(
    stores: &Stores,
    aggregates: &AggregateRegistry,
    args: ShowAnyArgs,
) -> anyhow::Result<()> {
    let at = match (args.at_version, args.at) {
        (Some(version), _) => At::Version(version),
        (None, Some(time)) => At::Time(time),
        (None, None) => At::Latest,
    };
    let shown = aggregates
        .state(stores, &args.aggregate, &args.id, at)
        .await?;
    if crate::output::json() {
        say!("{}", serde_json::to_string(&shown)?);
    } else {
        say!(
            "{} {}, version {}",
            shown.aggregate,
            shown.id,
            shown.version
        );
        say!("{}", serde_json::to_string_pretty(&shown.state)?);
    }
    Ok(())
}
