//! How the tool prints: times and events in one shape, and every line of
//! standard output through [`line`], so that output into a closed pipe
//! (`logbook log | head -2`) ends the program quietly, as a good Unix tool
//! does, instead of panicking.

use chrono::{DateTime, SecondsFormat, Utc};
use logbook_domain::RecordedEvent;

/// RFC 3339 with microseconds, UTC.
pub fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// One line of a stream's history: version, type, time, payload.
pub fn event_line(event: &RecordedEvent) -> String {
    format!(
        "{:>4}  {:<18} {}  {}",
        event.version,
        event.event_type,
        time(event.recorded_at),
        event.payload.as_str()
    )
}

static JSON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Chooses, once per run, whether commands print JSON (`--json`) or lines
/// for a person.
pub fn set_json(json: bool) {
    JSON.store(json, std::sync::atomic::Ordering::Relaxed);
}

/// True when `--json` was given: every command then prints JSON, in the
/// vocabulary of the library's own types.
pub fn json() -> bool {
    JSON.load(std::sync::atomic::Ordering::Relaxed)
}

/// Prints `value` as one line of JSON.
pub fn json_line(value: &impl serde::Serialize) {
    match serde_json::to_string(value) {
        Ok(text) => line(format_args!("{text}")),
        Err(error) => {
            eprintln!("error: cannot print JSON: {error}");
            std::process::exit(1);
        }
    }
}

/// Prints one line on standard output (what `println!` does), except that a
/// reader who went away (a closed pipe) ends the program quietly with
/// success: there is no one left to tell.
pub fn line(text: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if let Err(error) = out.write_fmt(text).and_then(|()| out.write_all(b"\n")) {
        exit_if_reader_left(&error);
        eprintln!("error: cannot write to standard output: {error}");
        std::process::exit(1);
    }
}

/// Ends the program with success when `error` says the reader of standard
/// output went away.
pub fn exit_if_reader_left(error: &std::io::Error) {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
}

/// A time as given on the command line: RFC 3339 with an offset. Anything
/// else is refused with an example, not the parser's words.
///
/// # Errors
/// The one-line reason.
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|_| {
            format!(
                "{text:?} is not a time: give an RFC 3339 time with an offset, e.g. {} or {}",
                Utc::now().format("%Y-%m-%dT%H:%M:%SZ"),
                Utc::now().format("%Y-%m-%dT%H:%M:%S+01:00")
            )
        })
}
