//! `logbook events <STREAM>`: the history of one stream.

use anyhow::{Context, bail};
use clap::Args;
use logbook_domain::{RecordedEvent, StreamId};
use logbook_ports::{ReadDirection, Stores};

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

const PAGE: usize = 1_000;

pub async fn run(stores: &Stores, args: EventsArgs) -> anyhow::Result<()> {
    let stream =
        StreamId::new(&args.stream).with_context(|| format!("invalid stream {:?}", args.stream))?;
    let mut events: Vec<RecordedEvent> = Vec::new();
    loop {
        let from = events.last().map_or(1, |e| e.version + 1);
        let page = stores
            .events
            .read_stream(&stream, ReadDirection::Forward, from, PAGE)
            .await?;
        let done = page.len() < PAGE;
        events.extend(page);
        if done {
            break;
        }
    }
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
