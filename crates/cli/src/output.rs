//! How the tool prints times and events.

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
