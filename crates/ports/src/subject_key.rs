//! The [`SubjectKeyStore`] port: one data key per data subject, so the
//! personal fields of that subject's events can be encrypted with it and
//! erased for good by destroying it (crypto-shredding).
//!
//! The store keeps keys only as [`WrappedKey`]s: sealed by the operator's
//! master key in the application before they reach the port, unsealed there
//! after. No adapter ever holds a plain key or knows a cipher.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use logbook_domain::SubjectId;

use crate::error::StoreError;

/// A subject's data key as stored: the key sealed by the master key. Opaque
/// bytes to every store; `Debug` shows only the length.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey(Vec<u8>);

impl WrappedKey {
    /// Wraps sealed key bytes.
    #[must_use]
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The sealed bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The sealed bytes, owned.
    #[must_use]
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WrappedKey({} bytes)", self.0.len())
    }
}

/// The time a store stamps on a new key or tombstone: now, to the
/// microsecond, the precision every store keeps, so a record reads back
/// equal to the one returned when it was stored.
#[must_use]
pub fn stamp_now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// What a store holds for one subject. Times have microsecond precision
/// ([`stamp_now`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectKey {
    /// The subject's key, usable.
    Active {
        /// The key, sealed by the master key.
        wrapped: WrappedKey,
        /// When the key was created.
        created_at: DateTime<Utc>,
    },
    /// The key was destroyed; only this tombstone remains, so the subject
    /// can never silently receive a new key.
    Shredded {
        /// When the key was destroyed.
        shredded_at: DateTime<Utc>,
    },
}

/// Keeps each subject's data key, at most one per subject, ever.
#[async_trait]
pub trait SubjectKeyStore: Send + Sync {
    /// What is stored for `subject`: its key, its tombstone, or `None` when
    /// it never had a key.
    ///
    /// # Errors
    /// MUST return [`StoreError::Corrupt`] when the stored record cannot be
    /// read back; backend failures otherwise.
    async fn get(&self, subject: &SubjectId) -> Result<Option<SubjectKey>, StoreError>;

    /// Stores `candidate` as `subject`'s key if the subject has no record,
    /// and returns the record stored afterwards: `candidate` itself, the key
    /// another caller created first, or the tombstone of a shredded subject.
    /// Atomic across callers in different processes and on different hosts:
    /// every concurrent caller gets back the same key, and a stored key or
    /// tombstone is never overwritten.
    ///
    /// # Errors
    /// MUST return an error, and store nothing, when the record could not be
    /// stored durably (backend failures).
    async fn get_or_create(
        &self,
        subject: &SubjectId,
        candidate: WrappedKey,
    ) -> Result<SubjectKey, StoreError>;

    /// Destroys `subject`'s key and leaves a tombstone; returns the
    /// tombstone. The wrapped bytes MUST be gone from the store's live data
    /// when this returns (not only marked deleted), as far as the backend
    /// lets an adapter erase them; each adapter documents what outlives the
    /// call (journals, backups). Idempotent: shredding again returns the
    /// first tombstone. Shredding a subject that never had a key records a
    /// tombstone too, so it can never get one.
    ///
    /// # Errors
    /// MUST return an error, and keep the key, when the tombstone could not
    /// be stored durably (backend failures). MUST also return an error when
    /// the tombstone is stored but the erasure that should follow it could
    /// not be finished (SQLite: a reader of another process kept the
    /// write-ahead log from being truncated); the key is then unusable, and
    /// shredding again retries the erasure.
    async fn shred(&self, subject: &SubjectId) -> Result<SubjectKey, StoreError>;

    /// Up to `limit` records in subject-id order (byte order of the id),
    /// starting after `after` (from the first when `None`). Shorter than
    /// `limit` only at the end.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for an unreadable record; backend failures.
    async fn list(
        &self,
        after: Option<&SubjectId>,
        limit: usize,
    ) -> Result<Vec<(SubjectId, SubjectKey)>, StoreError>;

    /// Replaces `subject`'s wrapped key with `replacement` only if the
    /// stored one is exactly `current` (compare-and-set, for rotating the
    /// master key); returns whether it was replaced. A shredded or unknown
    /// subject, or a key that changed meanwhile, answers `false` and changes
    /// nothing.
    ///
    /// # Errors
    /// MUST return an error, and keep `current`, when the replacement could
    /// not be stored durably (backend failures).
    async fn rewrap(
        &self,
        subject: &SubjectId,
        current: &WrappedKey,
        replacement: WrappedKey,
    ) -> Result<bool, StoreError>;
}

/// The key store's rules over an ordered map of subject to record, for
/// stores that keep their keys as a map (in memory, or a map they persist
/// whole): one home for what get-or-create, shred, rewrap and list decide.
pub mod in_map {
    use std::collections::BTreeMap;
    use std::ops::Bound;

    use logbook_domain::SubjectId;

    use super::{SubjectKey, WrappedKey, stamp_now};

    /// Subject to key or tombstone, in subject-id order.
    pub type SubjectKeys = BTreeMap<SubjectId, SubjectKey>;

    /// [`SubjectKeyStore::get_or_create`](super::SubjectKeyStore::get_or_create):
    /// stores `candidate` only when `subject` has no record; returns the
    /// record stored afterwards.
    pub fn get_or_create(
        keys: &mut SubjectKeys,
        subject: &SubjectId,
        candidate: WrappedKey,
    ) -> SubjectKey {
        keys.entry(subject.clone())
            .or_insert_with(|| SubjectKey::Active {
                wrapped: candidate,
                created_at: stamp_now(),
            })
            .clone()
    }

    /// [`SubjectKeyStore::shred`](super::SubjectKeyStore::shred): replaces
    /// a key (its wrapped bytes dropped with it) or records a tombstone for
    /// an unknown subject; an existing tombstone stays as it is.
    pub fn shred(keys: &mut SubjectKeys, subject: &SubjectId) -> SubjectKey {
        let tombstone = SubjectKey::Shredded {
            shredded_at: stamp_now(),
        };
        let entry = keys
            .entry(subject.clone())
            .or_insert_with(|| tombstone.clone());
        if matches!(entry, SubjectKey::Active { .. }) {
            *entry = tombstone;
        }
        entry.clone()
    }

    /// [`SubjectKeyStore::list`](super::SubjectKeyStore::list): up to
    /// `limit` records after `after`, in subject-id order.
    pub fn page(
        keys: &SubjectKeys,
        after: Option<&SubjectId>,
        limit: usize,
    ) -> Vec<(SubjectId, SubjectKey)> {
        let start = after.map_or(Bound::Unbounded, |id| Bound::Excluded(id.clone()));
        keys.range((start, Bound::Unbounded))
            .take(limit)
            .map(|(id, key)| (id.clone(), key.clone()))
            .collect()
    }

    /// [`SubjectKeyStore::rewrap`](super::SubjectKeyStore::rewrap): replaces
    /// the wrapped key only if it is exactly `current`.
    pub fn rewrap(
        keys: &mut SubjectKeys,
        subject: &SubjectId,
        current: &WrappedKey,
        replacement: WrappedKey,
    ) -> bool {
        match keys.get_mut(subject) {
            Some(SubjectKey::Active { wrapped, .. }) if wrapped == current => {
                *wrapped = replacement;
                true
            }
            _ => false,
        }
    }
}
