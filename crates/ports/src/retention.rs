//! Stream retention: the limits an operator sets on a stream (maximum age,
//! maximum count, truncate before a version) and the one rule every store
//! applies to decide which of the stream's events a reader still sees and
//! which a scavenge may reclaim.
//!
//! The rule, in one place:
//!
//! - An event of a stream at version `last` is **hidden** when its version
//!   is below [`Cutoff::min_version`] (the largest of `truncate_before`,
//!   `last - max_count + 1` and the floor kept from earlier policies) or it
//!   was recorded before [`Cutoff::min_recorded_at`] (`now - max_age`, or
//!   the time floor kept from earlier policies).
//! - Hidden events are left out of every read at once, stream reads and
//!   global-log reads alike, whether or not a scavenge has run: what a
//!   reader sees never depends on when scavenge last ran.
//! - Hiding is for ever: replacing or clearing a policy keeps, as floors,
//!   what the old policy hid at that moment ([`RetentionState::replace`]),
//!   so loosening a limit never brings expired events back.
//! - A scavenge reclaims hidden events except the stream's last event,
//!   which every store keeps (hidden when expired) so that the stream's
//!   version and whether it is deleted stay known from its events alone.
//! - Retention never changes a stream's version, never renumbers, and
//!   global positions of reclaimed events are never reused: the global log
//!   gets holes, and a reader from any position goes on at the next
//!   surviving one.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use logbook_domain::{Position, RecordedEvent, Version};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// Why a retention policy was refused. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetentionError {
    /// `max_count` of 0 would hide every event, the latest included.
    #[error("max count must be at least 1 (0 would hide every event)")]
    ZeroMaxCount,
    /// A zero `max_age` would hide every event as soon as it is recorded.
    #[error("max age must be at least one second")]
    ZeroMaxAge,
    /// A `max_age` too large to subtract from a date.
    #[error("max age must be at most 100000 days")]
    MaxAgeTooLarge,
    /// Versions start at 1.
    #[error("truncate before must be a version of at least 1")]
    ZeroTruncateBefore,
    /// An age that does not read as a number and a unit.
    #[error("max age {input:?} is not a duration such as 30d, 12h, 15m or 90s")]
    MalformedAge {
        /// What was given.
        input: String,
    },
}

/// Longest accepted `max_age`, in seconds (100 000 days).
const MAX_AGE_SECONDS: u64 = 100_000 * 86_400;

/// An operator's limits on one stream. Every limit is optional; none set is
/// no limit. Built only through [`StreamRetention::new`], so a value of
/// this type is always valid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamRetention {
    max_age: Option<Duration>,
    max_count: Option<u64>,
    truncate_before: Option<Version>,
}

impl StreamRetention {
    /// A policy with these limits.
    ///
    /// # Errors
    /// [`RetentionError`] for a `max_count` or `truncate_before` of 0, a
    /// `max_age` under a second or over 100 000 days.
    pub fn new(
        max_age: Option<Duration>,
        max_count: Option<u64>,
        truncate_before: Option<Version>,
    ) -> Result<Self, RetentionError> {
        if max_count == Some(0) {
            return Err(RetentionError::ZeroMaxCount);
        }
        if truncate_before == Some(0) {
            return Err(RetentionError::ZeroTruncateBefore);
        }
        if let Some(age) = max_age {
            if age.as_secs() == 0 {
                return Err(RetentionError::ZeroMaxAge);
            }
            if age.as_secs() > MAX_AGE_SECONDS {
                return Err(RetentionError::MaxAgeTooLarge);
            }
        }
        Ok(Self {
            max_age: max_age.map(|a| Duration::from_secs(a.as_secs())),
            max_count,
            truncate_before,
        })
    }

    /// No limit at all.
    pub fn none() -> Self {
        Self::default()
    }

    /// Events older than this are hidden (whole seconds).
    pub fn max_age(&self) -> Option<Duration> {
        self.max_age
    }

    /// Only this many of the stream's latest versions are visible.
    pub fn max_count(&self) -> Option<u64> {
        self.max_count
    }

    /// Versions below this are hidden.
    pub fn truncate_before(&self) -> Option<Version> {
        self.truncate_before
    }

    /// True when no limit is set.
    pub fn is_none(&self) -> bool {
        *self == Self::none()
    }

    /// Reads an age such as `30d`, `12h`, `15m` or `90s` (a whole number
    /// and one unit: days, hours, minutes, seconds).
    ///
    /// # Errors
    /// [`RetentionError::MalformedAge`] for anything else; a zero or too
    /// large age as in [`StreamRetention::new`].
    pub fn parse_age(input: &str) -> Result<Duration, RetentionError> {
        let malformed = || RetentionError::MalformedAge {
            input: input.to_owned(),
        };
        let trimmed = input.trim();
        let split = trimmed
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(malformed)?;
        let (number, unit) = trimmed.split_at(split);
        let number: u64 = number.parse().map_err(|_| malformed())?;
        let unit_seconds = match unit {
            "d" => 86_400,
            "h" => 3_600,
            "m" => 60,
            "s" => 1,
            _ => return Err(malformed()),
        };
        let seconds = number
            .checked_mul(unit_seconds)
            .ok_or(RetentionError::MaxAgeTooLarge)?;
        if seconds == 0 {
            return Err(RetentionError::ZeroMaxAge);
        }
        if seconds > MAX_AGE_SECONDS {
            return Err(RetentionError::MaxAgeTooLarge);
        }
        Ok(Duration::from_secs(seconds))
    }
}

/// An age in the largest unit that divides it: `30d`, `36h`, `90s`.
pub fn format_age(age: Duration) -> String {
    let s = age.as_secs();
    match s {
        _ if s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        _ if s.is_multiple_of(3_600) => format!("{}h", s / 3_600),
        _ if s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

impl fmt::Display for StreamRetention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_none() {
            return f.write_str("no limit");
        }
        let mut parts = Vec::new();
        if let Some(age) = self.max_age {
            parts.push(format!("max age {}", format_age(age)));
        }
        if let Some(count) = self.max_count {
            parts.push(format!("max count {count}"));
        }
        if let Some(version) = self.truncate_before {
            parts.push(format!("truncate before {version}"));
        }
        f.write_str(&parts.join(", "))
    }
}

/// What a store keeps for a stream: the operator's policy and the floors
/// left by the policies before it (what they had hidden when replaced).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionState {
    /// The policy in force.
    pub policy: StreamRetention,
    /// Versions below this stay hidden whatever the policy (1: none).
    pub hidden_below: Version,
    /// Events recorded before this stay hidden whatever the policy.
    pub hidden_before: Option<DateTime<Utc>>,
}

impl Default for RetentionState {
    fn default() -> Self {
        Self {
            policy: StreamRetention::none(),
            hidden_below: 1,
            hidden_before: None,
        }
    }
}

/// Which events of one stream are hidden, at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoff {
    /// Versions below this are hidden.
    pub min_version: Version,
    /// Events recorded before this are hidden.
    pub min_recorded_at: Option<DateTime<Utc>>,
    /// The stream's version: its last event is never reclaimed.
    pub last_version: Version,
}

impl Cutoff {
    /// True when a reader must not see the event at `version`, recorded at
    /// `recorded_at`.
    pub fn hides(&self, version: Version, recorded_at: DateTime<Utc>) -> bool {
        version < self.min_version || self.min_recorded_at.is_some_and(|t| recorded_at < t)
    }

    /// True when a scavenge may reclaim the event: hidden, and not the
    /// stream's last event.
    pub fn reclaims(&self, version: Version, recorded_at: DateTime<Utc>) -> bool {
        self.hides(version, recorded_at) && version < self.last_version
    }
}

/// One page of a global-log read under retention, for stores that filter
/// rows they read by their stream's [`Cutoff`] (keyed by stream name): moves
/// the visible events of `page` (a read of at most `want` rows) into `out`
/// and answers where to read on, or `None` when the log ended in this page.
/// A store loops while `out` is short of its limit, so a page is short
/// only at the end however many events retention hides.
pub fn keep_visible(
    out: &mut Vec<RecordedEvent>,
    page: Vec<RecordedEvent>,
    want: usize,
    cutoffs: &std::collections::HashMap<String, Cutoff>,
) -> Option<Position> {
    let next = page.last()?.position.saturating_add(1);
    let full = page.len() == want;
    out.extend(page.into_iter().filter(|e| {
        cutoffs
            .get(e.stream.as_str())
            .is_none_or(|cut| !cut.hides(e.version, e.recorded_at))
    }));
    full.then_some(next)
}

impl RetentionState {
    /// What is hidden at `now` in a stream whose last version is `last`
    /// (0 for a stream with no events).
    pub fn cutoff(&self, now: DateTime<Utc>, last: Version) -> Cutoff {
        let policy = &self.policy;
        let by_count = policy
            .max_count
            .map_or(1, |count| last.saturating_add(1).saturating_sub(count));
        let min_version = self
            .hidden_below
            .max(policy.truncate_before.unwrap_or(1))
            .max(by_count)
            .max(1);
        let by_age = policy.max_age.map(|age| {
            let age = TimeDelta::from_std(age).unwrap_or(TimeDelta::MAX);
            now.checked_sub_signed(age)
                .unwrap_or(DateTime::<Utc>::MIN_UTC)
        });
        let min_recorded_at = match (self.hidden_before, by_age) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        Cutoff {
            min_version,
            min_recorded_at,
            last_version: last,
        }
    }

    /// The state after the operator sets `policy` at `now` on a stream at
    /// version `last`: the new policy, and as floors what the old one hid
    /// at that moment, so nothing hidden becomes visible again.
    pub fn replace(&self, policy: StreamRetention, now: DateTime<Utc>, last: Version) -> Self {
        let cut = self.cutoff(now, last);
        Self {
            policy,
            hidden_below: cut.min_version,
            hidden_before: cut.min_recorded_at,
        }
    }

    /// True when this state hides nothing and never will: a store may
    /// forget it.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The state as a store keeps it: a small JSON object.
    pub fn encode(&self) -> String {
        let stored = Stored {
            max_age_seconds: self.policy.max_age.map(|a| a.as_secs()),
            max_count: self.policy.max_count,
            truncate_before: self.policy.truncate_before,
            hidden_below: self.hidden_below,
            hidden_before_micros: self.hidden_before.map(|t| t.timestamp_micros()),
        };
        serde_json::to_string(&stored).expect("a retention state serializes")
    }

    /// A state as [`RetentionState::encode`] wrote it; `location` names
    /// where it was read for the error.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when it does not decode or holds an invalid
    /// policy.
    pub fn decode(text: &str, location: impl Fn() -> String) -> Result<Self, StoreError> {
        let corrupt = |detail: String| StoreError::Corrupt {
            location: location(),
            detail: format!("stream retention: {detail}"),
        };
        let stored: Stored = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
        let policy = StreamRetention::new(
            stored.max_age_seconds.map(Duration::from_secs),
            stored.max_count,
            stored.truncate_before,
        )
        .map_err(|e| corrupt(e.to_string()))?;
        let hidden_before = match stored.hidden_before_micros {
            Some(micros) => Some(
                DateTime::from_timestamp_micros(micros)
                    .ok_or_else(|| corrupt("time floor out of range".into()))?,
            ),
            None => None,
        };
        Ok(Self {
            policy,
            hidden_below: stored.hidden_below.max(1),
            hidden_before,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct Stored {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_age_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    truncate_before: Option<u64>,
    hidden_below: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hidden_before_micros: Option<i64>,
}

/// What a scavenge reclaimed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScavengeReport {
    /// Streams that had at least one event reclaimed.
    pub streams: u64,
    /// Events reclaimed.
    pub events: u64,
    /// Bytes of payload and metadata reclaimed (what the events held; the
    /// space the store returns to the file system is described by each
    /// adapter's documentation).
    pub bytes: u64,
}

impl ScavengeReport {
    /// Counts one stream's reclaimed events and bytes in.
    pub fn add_stream(&mut self, events: u64, bytes: u64) {
        if events > 0 {
            self.streams += 1;
            self.events += events;
            self.bytes += bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    fn policy(age: Option<u64>, count: Option<u64>, tb: Option<u64>) -> StreamRetention {
        StreamRetention::new(age.map(Duration::from_secs), count, tb).unwrap()
    }

    #[test]
    fn invalid_policies_are_refused() {
        assert_eq!(
            StreamRetention::new(None, Some(0), None),
            Err(RetentionError::ZeroMaxCount)
        );
        assert_eq!(
            StreamRetention::new(None, None, Some(0)),
            Err(RetentionError::ZeroTruncateBefore)
        );
        assert_eq!(
            StreamRetention::new(Some(Duration::from_millis(10)), None, None),
            Err(RetentionError::ZeroMaxAge)
        );
        assert_eq!(
            StreamRetention::new(Some(Duration::from_secs(MAX_AGE_SECONDS + 1)), None, None),
            Err(RetentionError::MaxAgeTooLarge)
        );
    }

    #[test]
    fn ages_parse_in_days_hours_minutes_and_seconds() {
        assert_eq!(
            StreamRetention::parse_age("30d"),
            Ok(Duration::from_secs(30 * 86_400))
        );
        assert_eq!(
            StreamRetention::parse_age("12h"),
            Ok(Duration::from_secs(43_200))
        );
        assert_eq!(
            StreamRetention::parse_age("15m"),
            Ok(Duration::from_secs(900))
        );
        assert_eq!(
            StreamRetention::parse_age("90s"),
            Ok(Duration::from_secs(90))
        );
        for bad in ["", "30", "d", "3x", "-1d", "1.5d", "30 days"] {
            assert!(
                matches!(
                    StreamRetention::parse_age(bad),
                    Err(RetentionError::MalformedAge { .. })
                ),
                "{bad:?}"
            );
        }
        assert_eq!(
            StreamRetention::parse_age("0d"),
            Err(RetentionError::ZeroMaxAge)
        );
        assert_eq!(format_age(Duration::from_secs(30 * 86_400)), "30d");
        assert_eq!(format_age(Duration::from_secs(90)), "90s");
    }

    #[test]
    fn each_limit_hides_its_events_and_the_last_event_is_never_reclaimed() {
        let now = at(1_000);
        let state = |p| RetentionState {
            policy: p,
            ..RetentionState::default()
        };
        let cut = state(policy(None, Some(3), None)).cutoff(now, 10);
        assert_eq!(cut.min_version, 8);
        assert!(cut.hides(7, now) && !cut.hides(8, now));
        let cut = state(policy(None, None, Some(4))).cutoff(now, 10);
        assert_eq!(cut.min_version, 4);
        let cut = state(policy(Some(100), None, None)).cutoff(now, 10);
        assert!(cut.hides(10, at(899)) && !cut.hides(10, at(900)));
        assert!(!cut.reclaims(10, at(0)), "the last event stays");
        assert!(cut.reclaims(9, at(0)));
        let cut = state(policy(Some(100), Some(5), Some(7))).cutoff(now, 10);
        assert_eq!(cut.min_version, 7);
        assert!(cut.hides(8, at(10)) && !cut.hides(8, at(950)));
        // A stream with fewer events than max_count hides nothing.
        assert_eq!(
            state(policy(None, Some(5), None))
                .cutoff(now, 2)
                .min_version,
            1
        );
    }

    #[test]
    fn replacing_a_policy_never_reveals_what_it_hid() {
        let now = at(1_000);
        let old = RetentionState {
            policy: policy(Some(100), Some(2), None),
            ..RetentionState::default()
        };
        let cleared = old.replace(StreamRetention::none(), now, 10);
        let cut = cleared.cutoff(at(5_000), 12);
        assert_eq!(cut.min_version, 9, "max count 2 at version 10 hid 1..=8");
        assert!(
            cut.hides(10, at(899)),
            "max age hid what was older than 900"
        );
        assert!(!cut.hides(10, at(900)));
        assert!(!cleared.is_empty());
        assert!(RetentionState::default().is_empty());
    }

    #[test]
    fn a_state_round_trips_and_a_bad_one_is_corrupt() {
        let state = RetentionState {
            policy: policy(Some(86_400), Some(3), Some(2)),
            hidden_below: 5,
            hidden_before: Some(at(77)),
        };
        let decoded = RetentionState::decode(&state.encode(), || "here".into()).unwrap();
        assert_eq!(decoded, state);
        let bad = RetentionState::decode(r#"{"max_count":0,"hidden_below":1}"#, || "here".into());
        assert!(matches!(bad, Err(StoreError::Corrupt { location, .. }) if location == "here"));
    }
}
