//! `logbook events <STREAM>`: the history of one stream.

use anyhow::{Context, bail};
use clap::Args;
use logbook_domain::StreamId;
use logbook_ports::{Stores, read_stream_to_end};

use super::output;

/// Arguments of `logbook events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// The stream, e.g. BankAccount-acc_001.
    stream: String,
    /// Print a JSON array of recorded events instead of lines.
    #[arg(long)]
    json: bool,
}

pub async fn run(stores: &Stores, args: EventsArgs) -> anyhow::Result<()> {
    let stream =
        StreamId::new(&args.stream).with_context(|| format!("invalid stream {:?}", args.stream))?;
    let events = read_stream_to_end(&*stores.events, &stream, 1).await?;
    if events.is_empty() {
        bail!("stream {stream} has no events");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&events)?);
    } else {
        println!(
            "{:>4}  {:<18} {:<27}  payload",
            "ver", "type", "recorded at"
        );
        for event in &events {
            println!("{}", output::event_line(event));
        }
    }
    Ok(())
}
