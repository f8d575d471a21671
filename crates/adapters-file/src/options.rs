//! [`FileOptions`] and the [`Durability`] policy.

use std::time::Duration;

/// When appended events are forced to the disk (fsync), and so what a
/// crash of the machine (not just of the process) may lose.
///
/// A crash of the *process* alone never loses an acknowledged event under
/// any policy: an append is acknowledged after its bytes were handed to the
/// operating system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync (fdatasync) before an append is acknowledged. Appenders that
    /// arrive while a write is in flight are written and synced together
    /// (group commit), so one fsync serves many appends. A power loss loses
    /// nothing acknowledged.
    Always,
    /// Acknowledge after the write; fsync (on a background thread, while
    /// appends go on) at most this long after it. A power loss may lose the
    /// appends of the last interval.
    Interval(Duration),
    /// Acknowledge after the write; never fsync for an append (segments are
    /// still synced when they roll and when the store closes, and a
    /// background thread syncs every 8 MiB written so a roll never waits
    /// for a whole segment; no acknowledgement waits for those). A power
    /// loss may lose whatever the operating system had not written back
    /// yet.
    Never,
}

/// How a [`crate::FileStore`] is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileOptions {
    /// The fsync policy. Default: [`Durability::Always`].
    pub durability: Durability,
    /// A segment file is closed and a new one started before a write would
    /// make it larger than this (a single larger write gets a segment of
    /// its own). Default 64 MiB; clamped to 4 KiB ..= 2 GiB.
    pub segment_size: u64,
}

/// Smallest segment size accepted.
pub const MIN_SEGMENT_SIZE: u64 = 4 << 10;
/// Largest segment size accepted (offsets in the index are 32-bit).
pub const MAX_SEGMENT_SIZE: u64 = 2 << 30;

impl Default for FileOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Always,
            segment_size: 64 << 20,
        }
    }
}

impl FileOptions {
    /// The defaults: [`Durability::Always`], 64 MiB segments.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the durability policy.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets the segment size (clamped to 4 KiB ..= 2 GiB).
    pub fn segment_size(mut self, bytes: u64) -> Self {
        self.segment_size = bytes;
        self
    }

    pub(crate) fn effective_segment_size(&self) -> u64 {
        self.segment_size.clamp(MIN_SEGMENT_SIZE, MAX_SEGMENT_SIZE)
    }
}
