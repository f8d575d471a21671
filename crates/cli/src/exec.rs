//! `logbook exec <AGGREGATE> <ID> <COMMAND> [JSON-ARGS]`: any command of any
//! registered aggregate, by name.

use anyhow::Context;
use clap::Args;
use logbook::registry::AggregateRegistry;
use logbook_ports::Stores;

/// Arguments of `logbook exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Aggregate type, as registered (e.g. BankAccount, CargoShip).
    aggregate: String,
    /// The aggregate's id.
    id: String,
    /// Command name, e.g. dock (or the seed's dock_ship).
    command: String,
    /// Arguments as a JSON object, e.g. '{"port": "Singapore"}'.
    #[arg(default_value = "{}")]
    arguments: String,
}

pub async fn run(
    stores: &Stores,
    aggregates: &AggregateRegistry,
    args: ExecArgs,
) -> anyhow::Result<()> {
    let arguments: serde_json::Value = serde_json::from_str(&args.arguments)
        .with_context(|| format!("arguments are not JSON: {}", args.arguments))?;
    let done = aggregates
        .execute(stores, &args.aggregate, &args.id, &args.command, arguments)
        .await?;
    say!("{}", serde_json::to_string(&done)?);
    Ok(())
}
