//! `logbook stream retention` (show or set a stream's limits) and
//! `logbook scavenge` (reclaim what retention hides). Every rule is the
//! library's (`logbook_ports::retention`): this module parses, calls and
//! prints.

use anyhow::Context;
use logbook::StoreUrl;
use logbook_domain::StreamId;
use logbook_ports::retention::{RetentionState, StreamRetention, format_age};

use crate::output;

/// Arguments of `logbook stream`.
#[derive(Debug, clap::Args)]
pub struct StreamArgs {
    #[command(subcommand)]
    command: StreamCommand,
}

#[derive(Debug, clap::Subcommand)]
enum StreamCommand {
    /// Show a stream's retention, or set it: the limits given replace the
    /// policy (what it hid stays hidden). Enforced on every read at once;
    /// `logbook scavenge` reclaims the space.
    Retention(RetentionArgs),
}

/// Arguments of `logbook stream retention`.
#[derive(Debug, clap::Args)]
pub struct RetentionArgs {
    /// The stream, e.g. BankAccount-acc_001.
    stream: String,
    /// Hide events older than this: a whole number and d, h, m or s (30d).
    #[arg(long, value_name = "AGE")]
    max_age: Option<String>,
    /// Keep only the latest N versions visible (at least 1).
    #[arg(long, value_name = "N")]
    max_count: Option<String>,
    /// Hide versions below V (at least 1).
    #[arg(long, value_name = "V")]
    truncate_before: Option<String>,
    /// Remove every limit (what was hidden stays hidden).
    #[arg(long, conflicts_with_all = ["max_age", "max_count", "truncate_before"])]
    clear: bool,
}

/// Arguments of `logbook scavenge`.
#[derive(Debug, clap::Args)]
pub struct ScavengeArgs {}

fn number(flag: &str, text: &str) -> anyhow::Result<u64> {
    text.trim()
        .parse()
        .with_context(|| format!("--{flag} {text:?} is not a whole number"))
}

impl RetentionArgs {
    /// The policy asked for, `None` to only show it; checked before any
    /// store is opened, so bad input changes nothing.
    fn policy(&self) -> anyhow::Result<Option<StreamRetention>> {
        if self.clear {
            return Ok(Some(StreamRetention::none()));
        }
        if self.max_age.is_none() && self.max_count.is_none() && self.truncate_before.is_none() {
            return Ok(None);
        }
        let age = self
            .max_age
            .as_deref()
            .map(StreamRetention::parse_age)
            .transpose()?;
        let count = self
            .max_count
            .as_deref()
            .map(|t| number("max-count", t))
            .transpose()?;
        let before = self
            .truncate_before
            .as_deref()
            .map(|t| number("truncate-before", t))
            .transpose()?;
        Ok(Some(StreamRetention::new(age, count, before)?))
    }
}

pub async fn stream(url: &StoreUrl, args: StreamArgs) -> anyhow::Result<()> {
    let StreamCommand::Retention(args) = args.command;
    let stream = StreamId::new(&args.stream)
        .map_err(|e| anyhow::anyhow!("stream {:?} is not a valid stream id: {e}", args.stream))?;
    let state = match args.policy()? {
        None => {
            let stores = url.open_read_only()?;
            stores.events.retention(&stream).await?
        }
        Some(policy) => {
            let stores = url.open()?;
            stores.events.set_retention(&stream, policy).await?
        }
    };
    print_state(&stream, &state);
    Ok(())
}

fn print_state(stream: &StreamId, state: &RetentionState) {
    let policy = &state.policy;
    if output::json() {
        output::json_line(&serde_json::json!({
            "stream": stream.as_str(),
            "max_age": policy.max_age().map(format_age),
            "max_age_seconds": policy.max_age().map(|a| a.as_secs()),
            "max_count": policy.max_count(),
            "truncate_before": policy.truncate_before(),
            "hidden_below_version": state.hidden_below,
            "hidden_before": state.hidden_before.map(output::time),
        }));
        return;
    }
    say!("stream {stream}: {policy}");
    if state.hidden_below > 1 {
        say!("  versions below {} stay hidden", state.hidden_below);
    }
    if let Some(before) = state.hidden_before {
        say!(
            "  events recorded before {} stay hidden",
            output::time(before)
        );
    }
}

pub async fn scavenge(url: &StoreUrl, _args: ScavengeArgs) -> anyhow::Result<()> {
    let stores = url.open()?;
    let report = stores.events.scavenge().await?;
    if output::json() {
        output::json_line(&report);
        return Ok(());
    }
    say!(
        "scavenged {} event{} ({} bytes) from {} stream{}",
        report.events,
        if report.events == 1 { "" } else { "s" },
        report.bytes,
        report.streams,
        if report.streams == 1 { "" } else { "s" }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(age: Option<&str>, count: Option<&str>, before: Option<&str>) -> RetentionArgs {
        RetentionArgs {
            stream: "S-1".into(),
            max_age: age.map(Into::into),
            max_count: count.map(Into::into),
            truncate_before: before.map(Into::into),
            clear: false,
        }
    }

    #[test]
    fn limits_parse_and_bad_ones_are_refused_in_one_line() {
        assert_eq!(args(None, None, None).policy().unwrap(), None);
        let policy = args(Some("30d"), Some("5"), None)
            .policy()
            .unwrap()
            .unwrap();
        assert_eq!(policy.max_count(), Some(5));
        for (bad, says) in [
            (args(Some("3x"), None, None), "is not a duration"),
            (args(None, Some("0"), None), "at least 1"),
            (args(None, Some("many"), None), "not a whole number"),
            (args(None, None, Some("0")), "at least 1"),
        ] {
            let error = format!("{:#}", bad.policy().unwrap_err());
            assert!(error.contains(says) && !error.contains('\n'), "{error}");
        }
    }
}
