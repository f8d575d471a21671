//! What a [`Repository`](super::Repository) remembers of the aggregates it
//! served, per stream: the state at a version, and (with a keyring) the
//! data subjects the stream's events name up to a version. One table for
//! both, so a command costs one hash of its aggregate id and one lookup.
//!
//! A repository serves one aggregate type, so every stream it caches is
//! `A::TYPE-<id>`: entries are hashed by the aggregate id alone, and a
//! command on a cached aggregate finds its stream id there instead of
//! joining and checking it again (an entry's stream was checked when it
//! was made).

use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, MutexGuard};

use hashbrown::HashTable;
use logbook_domain::{Aggregate, StreamId, StreamIdError, SubjectId, Version};

use super::Loaded;
use crate::personal::fields::add_subjects;

/// A stream id with its hash, computed once for all the cache calls of a
/// command.
pub(super) struct CacheKey {
    stream: StreamId,
    hash: u64,
}

impl CacheKey {
    /// The stream this key names.
    pub(super) fn stream(&self) -> &StreamId {
        &self.stream
    }
}

/// The data subjects named by a stream's events `1..=through`.
pub(super) struct KnownSubjects {
    pub(super) through: Version,
    pub(super) subjects: Vec<SubjectId>,
}

struct Entry<A> {
    stream: StreamId,
    hash: u64,
    loaded: Option<Loaded<A>>,
    subjects: Option<KnownSubjects>,
}

/// At most `capacity` streams (0: remembers nothing); when full, an
/// arbitrary one is forgotten, which costs one read of its stream later.
/// Keyed with std's randomly seeded SipHash: stream ids come from users.
pub(super) struct AggregateCache<A> {
    capacity: usize,
    hasher: RandomState,
    table: Mutex<HashTable<Entry<A>>>,
}

impl<A: Aggregate> AggregateCache<A> {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            hasher: RandomState::new(),
            table: Mutex::new(HashTable::new()),
        }
    }

    /// The key of `stream` (one of this repository's, `A::TYPE-<id>`).
    pub(super) fn key(&self, stream: &StreamId) -> CacheKey {
        CacheKey {
            stream: stream.clone(),
            hash: self
                .hasher
                .hash_one(aggregate_id::<A>(stream).unwrap_or(stream.as_str())),
        }
    }

    /// The key of aggregate `id`'s stream and its cached state (as cached,
    /// not checked against the stream), from one lookup. A cached stream's
    /// id is taken from its entry; any other is made and checked.
    ///
    /// # Errors
    /// As [`StreamId::for_aggregate`] when `id` names no valid stream.
    pub(super) fn resolve(&self, id: &str) -> Result<(CacheKey, Option<Loaded<A>>), StreamIdError> {
        let hash = self.hasher.hash_one(id);
        if self.capacity > 0
            && let Some(entry) = self
                .lock()
                .find(hash, |e| aggregate_id::<A>(&e.stream) == Some(id))
        {
            let key = CacheKey {
                stream: entry.stream.clone(),
                hash,
            };
            return Ok((key, entry.loaded.clone()));
        }
        let stream = StreamId::for_aggregate(A::TYPE, id)?;
        Ok((CacheKey { stream, hash }, None))
    }

    /// The cached state of the stream, as cached (not checked against it).
    pub(super) fn state(&self, key: &CacheKey) -> Option<Loaded<A>> {
        if self.capacity == 0 {
            return None;
        }
        self.lock()
            .find(key.hash, |e| e.stream == key.stream)
            .and_then(|e| e.loaded.clone())
    }

    /// Caches `state` at `version`.
    pub(super) fn remember(&self, key: &CacheKey, state: &A, version: Version) {
        self.update(key, |entry| put(&mut entry.loaded, state, version));
    }

    /// After a command appended `events` at `before`, leading to `state`
    /// at `version` and naming `subjects`: the usual case, the entry still
    /// at `before`, applies the same events to it (a fold is deterministic,
    /// so no clone is needed), and extends what is known of the subjects.
    pub(super) fn advance(
        &self,
        key: &CacheKey,
        events: &[A::Event],
        state: &A,
        (before, version): (Version, Version),
        subjects: Vec<SubjectId>,
    ) {
        self.update(key, |entry| {
            match &mut entry.loaded {
                Some(loaded) if loaded.version == before => {
                    loaded.state.apply_all(events);
                    loaded.version = version;
                }
                other => put(other, state, version),
            }
            extend(&mut entry.subjects, before, version, subjects);
        });
    }

    /// Forgets the stream's state (what is known of its subjects stays
    /// true: it describes a prefix of the stream).
    pub(super) fn forget_state(&self, key: &CacheKey) {
        if let Some(entry) = self.lock().find_mut(key.hash, |e| e.stream == key.stream) {
            entry.loaded = None;
        }
    }

    /// Forgets everything about the stream.
    pub(super) fn forget(&self, key: &CacheKey) {
        if let Ok(entry) = self.lock().find_entry(key.hash, |e| e.stream == key.stream) {
            entry.remove();
        }
    }

    /// Records that events `1..=through` of the stream name `subjects`.
    pub(super) fn set_subjects(&self, key: &CacheKey, through: Version, subjects: Vec<SubjectId>) {
        self.update(key, |entry| {
            entry.subjects = Some(KnownSubjects { through, subjects });
        });
    }

    /// Extends what is known of the stream's subjects from `from` to `to`
    /// with `subjects`, when it reaches exactly `from`; otherwise forgets
    /// it (it no longer describes a prefix of the stream).
    pub(super) fn extend_subjects(
        &self,
        key: &CacheKey,
        (from, to): (Version, Version),
        subjects: Vec<SubjectId>,
    ) {
        if let Some(entry) = self.lock().find_mut(key.hash, |e| e.stream == key.stream) {
            extend(&mut entry.subjects, from, to, subjects);
        }
    }

    /// The subjects named by events `1..=version` of the stream, if known.
    pub(super) fn subjects_at(&self, key: &CacheKey, version: Version) -> Option<Vec<SubjectId>> {
        self.lock()
            .find(key.hash, |e| e.stream == key.stream)
            .and_then(|e| e.subjects.as_ref())
            .filter(|known| known.through == version)
            .map(|known| known.subjects.clone())
    }

    /// Runs `change` on the stream's entry, made (empty) if missing.
    fn update(&self, key: &CacheKey, change: impl FnOnce(&mut Entry<A>)) {
        if self.capacity == 0 {
            return;
        }
        let mut table = self.lock();
        if let Some(entry) = table.find_mut(key.hash, |e| e.stream == key.stream) {
            change(entry);
            return;
        }
        if table.len() >= self.capacity {
            let victim = table.iter().next().map(|e| (e.hash, e.stream.clone()));
            if let Some((hash, stream)) = victim
                && let Ok(found) = table.find_entry(hash, |e| e.stream == stream)
            {
                found.remove();
            }
        }
        let mut entry = Entry {
            stream: key.stream.clone(),
            hash: key.hash,
            loaded: None,
            subjects: None,
        };
        change(&mut entry);
        table.insert_unique(key.hash, entry, |e| e.hash);
    }

    // A panic while holding the lock leaves whole entries (each change is
    // made in place on one entry), so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, HashTable<Entry<A>>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The aggregate id of `stream`: what follows `A::TYPE-` (hashed as the
/// whole name for a stream not of that form, which this repository never
/// makes).
fn aggregate_id<A: Aggregate>(stream: &StreamId) -> Option<&str> {
    stream
        .as_str()
        .strip_prefix(A::TYPE)
        .and_then(|rest| rest.strip_prefix('-'))
}

/// `loaded` set to `state` at `version`; `clone_from` may reuse the
/// allocations of the state it replaces.
fn put<A: Clone>(loaded: &mut Option<Loaded<A>>, state: &A, version: Version) {
    match loaded {
        Some(loaded) => {
            loaded.state.clone_from(state);
            loaded.version = version;
        }
        None => {
            *loaded = Some(Loaded {
                state: state.clone(),
                version,
            });
        }
    }
}

/// `known` extended from `from` to `to` with `subjects` when it reaches
/// exactly `from`, else forgotten.
fn extend(known: &mut Option<KnownSubjects>, from: Version, to: Version, subjects: Vec<SubjectId>) {
    match known {
        Some(entry) if entry.through == from => {
            add_subjects(&mut entry.subjects, subjects);
            entry.through = to;
        }
        Some(_) => *known = None,
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use logbook_domain::Money;
    use logbook_domain::bank_account::{BankAccount, BankAccountEvent};

    use super::*;

    fn stream(name: &str) -> StreamId {
        StreamId::new(name).unwrap()
    }

    fn deposited(cents: i64) -> BankAccountEvent {
        BankAccountEvent::MoneyDeposited {
            amount: Money::from_cents(cents),
            description: String::new(),
        }
    }

    fn subject(name: &str) -> SubjectId {
        SubjectId::new(name).unwrap()
    }

    #[test]
    fn advancing_applies_the_events_to_the_entry_at_the_version_before() {
        // Given a state cached at version 1
        let cache = AggregateCache::<BankAccount>::new(4);
        let s = stream("BankAccount-a");
        let key = cache.key(&s);
        let mut state = BankAccount::default();
        state.apply(&deposited(100));
        cache.remember(&key, &state, 1);
        // When a command appended one more event at version 1
        let events = [deposited(50)];
        let mut after = state.clone();
        after.apply_all(&events);
        cache.advance(&key, &events, &after, (1, 2), Vec::new());
        // Then the entry is the fold of both, at version 2
        let cached = cache.state(&key).unwrap();
        assert_eq!((cached.state, cached.version), (after, 2));
    }

    #[test]
    fn advancing_an_entry_at_another_version_takes_the_given_state() {
        // Given an entry that moved on (another command cached version 3)
        let cache = AggregateCache::<BankAccount>::new(4);
        let s = stream("BankAccount-a");
        let key = cache.key(&s);
        let mut newer = BankAccount::default();
        newer.apply_all(&[deposited(1), deposited(2), deposited(3)]);
        cache.remember(&key, &newer, 3);
        // When a command decided at version 1 reports version 2
        let mut given = BankAccount::default();
        given.apply_all(&[deposited(7), deposited(8)]);
        cache.advance(&key, &[deposited(8)], &given, (1, 2), Vec::new());
        // Then the entry is the state given, not the events applied to 3
        let cached = cache.state(&key).unwrap();
        assert_eq!((cached.state, cached.version), (given, 2));
    }

    #[test]
    fn subjects_extend_only_from_where_they_reach_and_outlive_a_forgotten_state() {
        // Given subjects known through version 2 and a cached state
        let cache = AggregateCache::<BankAccount>::new(4);
        let s = stream("BankAccount-a");
        let key = cache.key(&s);
        cache.set_subjects(&key, 2, vec![subject("alice")]);
        cache.remember(&key, &BankAccount::default(), 2);
        // When a command at version 2 names bob, and the state is forgotten
        cache.advance(
            &key,
            &[],
            &BankAccount::default(),
            (2, 3),
            vec![subject("bob")],
        );
        cache.forget_state(&key);
        // Then both are known through 3, for version 3 only
        assert!(cache.state(&key).is_none());
        assert_eq!(
            cache.subjects_at(&key, 3),
            Some(vec![subject("alice"), subject("bob")])
        );
        assert_eq!(cache.subjects_at(&key, 2), None);
        // And an extension from a version they do not reach forgets them
        cache.extend_subjects(&key, (5, 6), vec![subject("carol")]);
        assert_eq!(cache.subjects_at(&key, 3), None);
        assert_eq!(cache.subjects_at(&key, 6), None);
    }

    #[test]
    fn a_full_cache_forgets_one_stream_to_take_another() {
        // Given a cache of two streams, full
        let cache = AggregateCache::<BankAccount>::new(2);
        let streams: Vec<StreamId> = ["a", "b", "c"].iter().map(|n| stream(n)).collect();
        for s in &streams[..2] {
            cache.remember(&cache.key(s), &BankAccount::default(), 1);
        }
        // When a third is remembered
        cache.remember(&cache.key(&streams[2]), &BankAccount::default(), 1);
        // Then it is cached, and exactly one of the others was forgotten
        assert!(cache.state(&cache.key(&streams[2])).is_some());
        let kept = streams[..2]
            .iter()
            .filter(|s| cache.state(&cache.key(s)).is_some())
            .count();
        assert_eq!(kept, 1);
    }

    #[test]
    fn resolving_an_id_finds_its_cached_stream_and_state_and_checks_any_other() {
        // Given a state cached for BankAccount-a, and one for a stream named
        // like the bare id
        let cache = AggregateCache::<BankAccount>::new(4);
        let cached = stream("BankAccount-a");
        cache.remember(&cache.key(&cached), &BankAccount::default(), 3);
        cache.remember(&cache.key(&stream("b")), &BankAccount::default(), 1);
        // When aggregate ids are resolved
        let (key, state) = cache.resolve("a").unwrap();
        // Then a cached one comes with its stream and state
        assert_eq!(key.stream(), &cached);
        assert_eq!(state.map(|s| s.version), Some(3));
        assert_eq!(key.hash, cache.key(&cached).hash);
        // And another is made as the repository names it, with no state
        let (key, state) = cache.resolve("b").unwrap();
        assert_eq!(key.stream().as_str(), "BankAccount-b");
        assert!(state.is_none());
        // And an id that names no valid stream is refused
        assert!(matches!(
            cache.resolve(""),
            Err(StreamIdError::EmptyAggregateId { .. })
        ));
        assert!(matches!(
            cache.resolve("a\u{0}"),
            Err(StreamIdError::ControlCharacter { .. })
        ));
    }

    #[test]
    fn a_cache_of_no_capacity_remembers_nothing() {
        let cache = AggregateCache::<BankAccount>::new(0);
        let s = stream("BankAccount-a");
        let key = cache.key(&s);
        cache.remember(&key, &BankAccount::default(), 1);
        cache.set_subjects(&key, 1, vec![subject("alice")]);
        assert!(cache.state(&key).is_none());
        assert_eq!(cache.subjects_at(&key, 1), None);
    }
}
