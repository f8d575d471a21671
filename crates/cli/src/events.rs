//! `logbook events <STREAM>`: the history of one stream.

use anyhow::bail;
use clap::Args;
use logbook_domain::StreamId;
use logbook_ports::{Stores, read_stream_to_end};

use super::output;

/// Arguments of `logbook events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// The stream, e.g. BankAccount-acc_001 (checked before the store is
    /// opened).
    stream: StreamId,
}

pub async fn run(stores: &Stores, args: EventsArgs) -> anyhow::Result<()> {
    let stream = args.stream;
    let events = read_stream_to_end(&*stores.events, &stream, 1).await?;
    if events.is_empty() {
        bail!("stream {stream} has no events");
    }
    if output::json() {
        say!("{}", serde_json::to_string_pretty(&events)?);
    } else {
        say!(
            "{:>4}  {:<18} {:<27}  payload",
            "ver",
            "type",
            "recorded at"
        );
        for event in &events {
            say!("{}", output::event_line(event));
        }
    }
    Ok(())
}
