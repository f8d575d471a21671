//! `logbook export` and `logbook import`: the global log as JSON lines, or
//! the first seed's ship JSON file.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use logbook::registry::AggregateRegistry;
use logbook::transfer;

use crate::progress::Reporter;
use logbook_ports::Stores;

/// File formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One recorded event per line (every field, payload bytes untouched).
    Jsonl,
    /// The JSON array the seed's `EventStore.persist` wrote (cargo ships).
    SeedJson,
}

/// Arguments of `logbook export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write here instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// File format.
    #[arg(long, value_enum, default_value = "jsonl")]
    format: Format,
}

/// Arguments of `logbook import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Read this file (or use --input; standard input when neither).
    #[arg(value_name = "FILE", conflicts_with = "input")]
    file: Option<PathBuf>,
    /// Read this file instead of standard input.
    #[arg(long, short, value_name = "FILE")]
    input: Option<PathBuf>,
    /// File format.
    #[arg(long, value_enum, default_value = "jsonl")]
    format: Format,
}

pub async fn export(stores: &Stores, args: ExportArgs) -> anyhow::Result<()> {
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let count = match args.format {
        Format::Jsonl => {
            let mut report = Reporter::new("export", "events");
            let count = transfer::export_json_lines(&*stores.events, &mut out, &mut |p| {
                report.update(p.done, p.total);
            })
            .await?;
            report.finish();
            count
        }
        Format::SeedJson => {
            let written = transfer::export_seed_json(&*stores.events, &mut out).await?;
            if written.deleted_ships_left_out > 0 {
                eprintln!(
                    "note: {} deleted ships left out (the seed format cannot express a deletion)",
                    written.deleted_ships_left_out
                );
            }
            written.events
        }
    };
    drop(out);
    if crate::output::json() && args.output.is_some() {
        crate::output::json_line(&serde_json::json!({ "exported": count }));
    } else {
        eprintln!("exported {count} events");
    }
    Ok(())
}

pub async fn import(
    stores: &Stores,
    aggregates: &AggregateRegistry,
    args: ImportArgs,
) -> anyhow::Result<()> {
    let mut text = String::new();
    match args.file.as_ref().or(args.input.as_ref()) {
        Some(path) => {
            File::open(path)
                .and_then(|mut f| f.read_to_string(&mut text))
                .with_context(|| format!("cannot read {}", path.display()))?;
        }
        None => {
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read standard input")?;
        }
    }
    let events = match args.format {
        Format::Jsonl => transfer::parse_json_lines(&text)?,
        Format::SeedJson => transfer::parse_seed_json(&text)?,
    };
    if events.is_empty() {
        bail!("the input holds no events");
    }
    let mut progress = Reporter::new("import", "events");
    let imported = transfer::import(&*stores.events, events, aggregates, &mut |p| {
        progress.update(p.done, p.total);
    })
    .await;
    progress.finish();
    let report = match imported {
        Err(transfer::TransferError::Undecodable { number, problem })
            if args.format == Format::Jsonl =>
        {
            // Events are counted without the blank lines the file may have.
            let line = text
                .lines()
                .enumerate()
                .filter(|(_, line)| !line.trim().is_empty())
                .nth(number - 1)
                .map_or(number, |(index, _)| index + 1);
            bail!("line {line}: {problem}; nothing was imported");
        }
        other => other?,
    };
    if crate::output::json() {
        crate::output::json_line(&report);
        return Ok(());
    }
    say!(
        "imported {} events into {} streams ({} were already present)",
        report.imported,
        report.streams,
        report.already_present
    );
    if report.unchecked > 0 {
        eprintln!(
            "note: {} events of streams no registered aggregate claims were kept without checking their payloads",
            report.unchecked
        );
    }
    Ok(())
}
