//! [`Repository`]: load an aggregate, execute commands against it with
//! optimistic concurrency, take snapshots, and travel back in time.

mod cache;

use std::marker::PhantomData;
use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use logbook_domain::{
    Aggregate, Metadata, Payload, RecordedEvent, RecordedTime, StreamId, StreamIdError, SubjectId,
    Version,
};
use logbook_ports::event_store::timestamp_now;
use logbook_ports::{
    EventBus, EventStore, ExpectedVersion, ReadDirection, Snapshot, SnapshotStore, StoreError,
    Stores, StreamPages,
};

use crate::codec::{self, CodecError, Decoder};
use crate::personal::{Keyring, PersonalDataError, fields};
use cache::{AggregateCache, CacheKey};

/// How a [`Repository`] behaves.
#[derive(Debug, Clone)]
pub struct RepositoryOptions {
    /// Take a snapshot whenever a save crosses a multiple of this many
    /// events (`None`: never).
    pub snapshot_every: Option<NonZeroU64>,
    /// How long a command keeps being re-decided after version conflicts
    /// before giving up. A budget in time rather than in attempts, so a
    /// command succeeds however many writers contend, as long as each gets
    /// a turn within the budget; retries back off exponentially with full
    /// jitter (1 ms doubling up to 64 ms) so racing writers spread apart.
    pub retry_budget: Duration,
    /// Events read per page while loading.
    pub page_size: usize,
    /// Aggregates kept loaded in this process. A command decides on the
    /// cached state without reading the stream, and its append's expected
    /// version catches a stale one (then the state catches up with a short
    /// read and the command is decided again); a load checks it against the
    /// stream.
    pub cache_capacity: usize,
}

impl Default for RepositoryOptions {
    fn default() -> Self {
        Self {
            snapshot_every: NonZeroU64::new(100),
            retry_budget: Duration::from_secs(30),
            page_size: 1_000,
            cache_capacity: 10_000,
        }
    }
}

impl RepositoryOptions {
    /// A page of at least one event (a zero page would never advance).
    fn checked(mut self) -> Self {
        self.page_size = self.page_size.max(1);
        self
    }
}

/// An aggregate's state at a version of its stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded<A> {
    /// The folded state (`A::default()` for a stream with no events).
    pub state: A,
    /// Version of the last event folded in (0: no events).
    pub version: Version,
}

/// What executing a command did.
#[derive(Debug, Clone)]
pub struct Executed<A: Aggregate> {
    /// State after the command.
    pub state: A,
    /// Stream version after the command.
    pub version: Version,
    /// The events recorded (empty when the command decided nothing).
    pub events: Vec<A::Event>,
    /// Global position of the first recorded event.
    pub first_position: Option<u64>,
    /// True when this save took a snapshot.
    pub snapshot_taken: bool,
    /// Version conflicts met (and retried) on the way.
    pub conflicts: u32,
}

/// Why a repository call failed.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError<E: std::error::Error + 'static> {
    /// The aggregate refused the command; nothing was appended.
    #[error(transparent)]
    Rejected(E),
    /// The aggregate id does not make a valid stream id.
    #[error("invalid id: {0}")]
    InvalidId(#[from] StreamIdError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored event could not be read as this aggregate's event.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// Personal data could not be sealed or opened (no or a wrong master
    /// key, a shredded subject to write for); nothing was appended.
    #[error(transparent)]
    Personal(#[from] PersonalDataError),
    /// The aggregate has no events (nothing to delete).
    #[error("stream {stream} does not exist")]
    NotFound {
        /// The stream.
        stream: StreamId,
    },
    /// Other writers kept changing the stream; nothing was appended.
    #[error(
        "stream {stream} kept changing under concurrent writers; gave up after {attempts} attempts"
    )]
    TooManyConflicts {
        /// The contended stream.
        stream: StreamId,
        /// Attempts made.
        attempts: u32,
    },
}

/// The pause before retry number `conflicts`: a random time up to 1 ms
/// doubled per conflict, at most 64 ms ("full jitter"), so writers that
/// collided do not collide again in lockstep.
fn backoff(conflicts: u32) -> Duration {
    let ceiling_us = 1_000u64 << conflicts.saturating_sub(1).min(6);
    let random = u64::from_le_bytes(
        uuid::Uuid::new_v4().as_bytes()[..8]
            .try_into()
            .unwrap_or([0; 8]),
    );
    Duration::from_micros(random % ceiling_us + 1)
}

/// The time-travel rule: a stream as of `at` is its events in stream order
/// up to the first one recorded after `at` (asked of an event's version and
/// time).
fn recorded_by(at: DateTime<Utc>) -> impl Fn(Version, RecordedTime) -> bool + Sync {
    move |_, recorded_at| recorded_at.time() <= at
}

/// Loads and saves aggregates of type `A` through any [`EventStore`].
///
/// ```
/// use logbook::Repository;
/// use logbook_domain::bank_account::{BankAccount, BankAccountCommand};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let stores = logbook_adapters_memory::stores();
/// let accounts = Repository::<BankAccount>::new(&stores);
/// let open = BankAccountCommand::Open {
///     owner: "alice".into(),
///     initial_balance: "100.00".parse().unwrap(),
///     currency: Default::default(),
/// };
/// accounts.execute("acc_001", &open).await.unwrap();
/// let deposit = BankAccountCommand::Deposit {
///     amount: "5.00".parse().unwrap(),
///     description: String::new(),
/// };
/// let done = accounts.execute("acc_001", &deposit).await.unwrap();
/// assert_eq!((done.state.balance.to_string(), done.version), ("105.00".into(), 2));
/// // Time travel: the account just after its first event.
/// let then = accounts.load_at_version("acc_001", 1).await.unwrap();
/// assert_eq!(then.state.balance.to_string(), "100.00");
/// // A refused command appends nothing.
/// let overdraw = BankAccountCommand::Withdraw {
///     amount: "1000.00".parse().unwrap(),
///     description: String::new(),
/// };
/// assert!(accounts.execute("acc_001", &overdraw).await.is_err());
/// assert_eq!(accounts.load("acc_001").await.unwrap().version, 2);
/// # });
/// ```
pub struct Repository<A: Aggregate> {
    events: Arc<dyn EventStore>,
    snapshots: Option<Arc<dyn SnapshotStore>>,
    bus: Option<Arc<dyn EventBus>>,
    options: RepositoryOptions,
    /// Loaded states and (with a keyring) the data subjects each stream's
    /// events name, so a snapshot is sealed without reading the stream
    /// again.
    cache: AggregateCache<A>,
    decoder: Decoder<A::Event>,
    keyring: Option<Keyring>,
    _aggregate: PhantomData<fn() -> A>,
}

type Result<T, A> = std::result::Result<T, RepositoryError<<A as Aggregate>::Error>>;

impl<A: Aggregate> Repository<A> {
    /// A repository over `stores` (events, snapshots and subject keys, with
    /// this process's master key: see [`crate::personal`]) with default
    /// options.
    pub fn new(stores: &Stores) -> Self {
        Self::with_options(stores, RepositoryOptions::default())
    }

    /// A repository over `stores` with `options`.
    pub fn with_options(stores: &Stores, options: RepositoryOptions) -> Self {
        let options = options.checked();
        let cache = AggregateCache::new(options.cache_capacity);
        Self {
            events: Arc::clone(&stores.events),
            snapshots: Some(Arc::clone(&stores.snapshots)),
            bus: None,
            options,
            cache,
            decoder: Decoder::new(),
            keyring: Some(Keyring::for_process(Arc::clone(&stores.subject_keys))),
            _aggregate: PhantomData,
        }
    }

    /// A repository over an event store alone (no snapshots).
    pub fn without_snapshots(events: Arc<dyn EventStore>, options: RepositoryOptions) -> Self {
        let options = options.checked();
        let cache = AggregateCache::new(options.cache_capacity);
        Self {
            events,
            snapshots: None,
            bus: None,
            options,
            cache,
            decoder: Decoder::new(),
            keyring: None,
            _aggregate: PhantomData,
        }
    }

    /// Seals the personal fields of new events and snapshots with subject
    /// keys from `keyring` (instead of the stores' keys with this process's
    /// master key), and opens them when loading (a shredded subject's as the
    /// placeholder). A repository made with
    /// [`Repository::without_snapshots`] has none: it writes personal fields
    /// in plain text and cannot load encrypted ones.
    #[must_use]
    pub fn with_keyring(mut self, keyring: Keyring) -> Self {
        self.keyring = Some(keyring);
        self
    }

    /// Publishes every committed event to `bus` after the append.
    pub fn with_bus(mut self, bus: Arc<dyn EventBus>) -> Self {
        self.bus = Some(bus);
        self
    }

    /// The stream of aggregate `id`: `A::TYPE-id`.
    ///
    /// # Errors
    /// [`RepositoryError::InvalidId`] when that is not a valid stream id.
    pub fn stream_id(id: &str) -> Result<StreamId, A> {
        Ok(StreamId::for_aggregate(A::TYPE, id)?)
    }

    /// The current state of aggregate `id` (default state, version 0, when
    /// it has no events).
    ///
    /// # Errors
    /// Store and decoding failures.
    #[tracing::instrument(name = "load", level = "debug", skip(self), fields(aggregate = A::TYPE))]
    pub async fn load(&self, id: &str) -> Result<Loaded<A>, A> {
        let key = self.cache.key(&Self::stream_id(id)?);
        let loaded = self.load_stream(&key).await?;
        tracing::debug!(stream = %key.stream(), version = loaded.version, "loaded");
        Ok(loaded)
    }

    /// Decides `command` against the current state of `id` and appends the
    /// resulting events, expecting the version it decided on. A cached
    /// state is used as it is: if the stream moved on, the append is
    /// refused and the command is decided again on the caught-up state (not
    /// counted as a conflict); a refusal or an empty decision from a cached
    /// state is checked the same way before it is returned. On a version
    /// conflict it reloads and decides again, within
    /// [`RepositoryOptions::retry_budget`].
    ///
    /// # Errors
    /// [`RepositoryError::Rejected`] when the aggregate refuses;
    /// [`RepositoryError::TooManyConflicts`] when retries run out; store and
    /// decoding failures. In every error case nothing was appended.
    pub async fn execute(&self, id: &str, command: &A::Command) -> Result<Executed<A>, A> {
        self.execute_all(id, std::slice::from_ref(command), &Metadata::default())
            .await
    }

    /// Decides `commands` one after the other, each against the state the
    /// previous ones lead to, and appends all their events in one atomic
    /// batch with `metadata` on each event. If any command is refused,
    /// nothing is appended.
    ///
    /// # Errors
    /// As [`Repository::execute`].
    #[tracing::instrument(
        name = "execute",
        level = "debug",
        skip(self, commands, metadata),
        fields(
            aggregate = A::TYPE,
            version = tracing::field::Empty,
            position = tracing::field::Empty,
            conflicts = tracing::field::Empty
        )
    )]
    pub async fn execute_all(
        &self,
        id: &str,
        commands: &[A::Command],
        metadata: &Metadata,
    ) -> Result<Executed<A>, A> {
        let (key, mut cached) = self.cache.resolve(id)?;
        let stream = key.stream();
        let mut conflicts = 0;
        let started = std::time::Instant::now();
        // The first attempt decides on the cached state as it is, without
        // reading the stream: the append's expected version tells whether it
        // was stale. Only an outcome the append cannot check (a refusal, or
        // no events) or a refused append makes it read the stream and decide
        // again; a stale cache is not counted as a conflict.
        'attempt: loop {
            let (loaded, unchecked) = match cached.take() {
                Some(cached) => (cached, true),
                None => (self.load_stream(&key).await?, false),
            };
            let mut state = loaded.state;
            let mut decided = Vec::new();
            for command in commands {
                let events = match state.handle(command) {
                    Ok(events) => events,
                    Err(_) if unchecked => continue 'attempt,
                    Err(refusal) => return Err(RepositoryError::Rejected(refusal)),
                };
                state.apply_all(&events);
                if decided.is_empty() {
                    decided = events;
                } else {
                    decided.extend(events);
                }
            }
            if decided.is_empty() && unchecked {
                continue 'attempt;
            }
            if decided.is_empty() {
                return Ok(Executed {
                    state,
                    version: loaded.version,
                    events: decided,
                    first_position: None,
                    snapshot_taken: false,
                    conflicts,
                });
            }
            let mut envelopes = Vec::with_capacity(decided.len());
            // The subjects whose keys sealed a field of these events.
            let mut written = Vec::new();
            for event in &decided {
                let envelope = codec::encode(event, metadata)?;
                envelopes.push(match &self.keyring {
                    Some(keyring) => {
                        keyring
                            .seal_event_naming(stream, event, envelope, &mut written)
                            .await?
                    }
                    None => envelope,
                });
            }
            let expected = ExpectedVersion::from_current(Some(loaded.version));
            match self.events.append(stream, expected, envelopes).await {
                Ok(outcome) => {
                    let version = outcome.stream_version.unwrap_or(loaded.version);
                    let span = tracing::Span::current();
                    span.record("version", version);
                    span.record("conflicts", conflicts);
                    if let Some(position) = outcome.first_position {
                        span.record("position", position);
                    }
                    tracing::debug!(
                        %stream,
                        version,
                        position = outcome.first_position,
                        events = decided.len(),
                        conflicts,
                        "command appended"
                    );
                    self.cache
                        .advance(&key, &decided, &state, (loaded.version, version), written);
                    let snapshot_taken = self
                        .maybe_snapshot(stream, &state, loaded.version, version)
                        .await;
                    self.publish(stream, loaded.version, decided.len()).await;
                    return Ok(Executed {
                        state,
                        version,
                        events: decided,
                        first_position: outcome.first_position,
                        snapshot_taken,
                        conflicts,
                    });
                }
                // The cached state was stale: catch it up and decide again.
                Err(error) if error.is_conflict() && unchecked => {}
                Err(error) if error.is_conflict() => {
                    self.cache.forget_state(&key);
                    conflicts += 1;
                    let pause = backoff(conflicts);
                    if started.elapsed() + pause > self.options.retry_budget {
                        return Err(RepositoryError::TooManyConflicts {
                            stream: stream.clone(),
                            attempts: conflicts,
                        });
                    }
                    tokio::time::sleep(pause).await;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Deletes aggregate `id` the event-sourcing way: a tombstone is
    /// recorded at the version loaded now, after which the aggregate can be
    /// neither loaded nor changed; its events stay in the global log. Its
    /// snapshot is removed.
    ///
    /// # Errors
    /// [`StoreError::StreamDeleted`] (as [`RepositoryError::Store`]) when it
    /// is deleted already; [`RepositoryError::NotFound`] when it never
    /// existed; a conflict when another writer changed it
    /// meanwhile (nothing is deleted then); store failures.
    pub async fn delete(&self, id: &str) -> Result<Version, A> {
        let stream = Self::stream_id(id)?;
        let key = self.cache.key(&stream);
        let loaded = self.load_stream(&key).await?;
        if loaded.version == 0 {
            return Err(RepositoryError::NotFound { stream });
        }
        let outcome = self
            .events
            .delete_stream(&stream, ExpectedVersion::Exact(loaded.version))
            .await?;
        self.cache.forget(&key);
        if let Some(snapshots) = &self.snapshots
            && let Err(error) = snapshots.delete(&stream).await
        {
            tracing::warn!(%stream, %error, "snapshot of a deleted stream not removed");
        }
        Ok(outcome.stream_version.unwrap_or(loaded.version + 1))
    }

    /// The state of `id` just after its event at `version` (the whole stream
    /// when `version` is past its end).
    ///
    /// # Errors
    /// Store and decoding failures.
    pub async fn load_at_version(&self, id: &str, version: Version) -> Result<Loaded<A>, A> {
        let stream = Self::stream_id(id)?;
        let base = match self.snapshot(&stream).await {
            Some(snapshot) if snapshot.version <= version => snapshot,
            _ => Loaded {
                state: A::default(),
                version: 0,
            },
        };
        self.fold_forward(&stream, base, |at, _| at <= version, &mut Vec::new())
            .await
    }

    /// The state of `id` as of `at`: its events in stream order, up to the
    /// first one recorded after `at` (times only grow within a stream unless
    /// it was imported with other times).
    ///
    /// # Errors
    /// Store and decoding failures.
    pub async fn load_at_time(&self, id: &str, at: DateTime<Utc>) -> Result<Loaded<A>, A> {
        let stream = Self::stream_id(id)?;
        let start = Loaded {
            state: A::default(),
            version: 0,
        };
        self.fold_forward(&stream, start, recorded_by(at), &mut Vec::new())
            .await
    }

    /// The recorded events of `id` as of `at`, oldest first: the events
    /// [`Repository::load_at_time`] folds.
    ///
    /// # Errors
    /// Store failures.
    pub async fn history_until(
        &self,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<RecordedEvent>, A> {
        let mut events = self.history(id).await?;
        let before = recorded_by(at);
        let kept = events
            .iter()
            .take_while(|e| before(e.version, e.recorded_at.into()))
            .count();
        events.truncate(kept);
        Ok(events)
    }

    /// The recorded events of `id`, oldest first.
    ///
    /// # Errors
    /// Store failures.
    pub async fn history(&self, id: &str) -> Result<Vec<RecordedEvent>, A> {
        let stream = Self::stream_id(id)?;
        Ok(StreamPages::new(
            &*self.events,
            &stream,
            ReadDirection::Forward,
            1,
            self.options.page_size,
        )
        .collect()
        .await?)
    }

    async fn load_stream(&self, key: &CacheKey) -> Result<Loaded<A>, A> {
        let stream = key.stream();
        let base = match self.cache.state(key) {
            Some(loaded) => loaded,
            None => self.snapshot(stream).await.unwrap_or(Loaded {
                state: A::default(),
                version: 0,
            }),
        };
        let start_version = base.version;
        let mut seen = Vec::new();
        let loaded = self
            .fold_forward(stream, base, |_, _| true, &mut seen)
            .await?;
        if loaded.version != start_version {
            self.cache.remember(key, &loaded.state, loaded.version);
        }
        if self.keyring.is_none() {
            // Without a keyring nothing is sealed: no subjects to know.
        } else if start_version == 0 {
            self.cache.set_subjects(key, loaded.version, seen);
        } else {
            self.cache
                .extend_subjects(key, (start_version, loaded.version), seen);
        }
        Ok(loaded)
    }

    /// Folds the stream's events after `base.version` into `base` while
    /// `keep` holds (asked of each event's version and time).
    ///
    /// The store lends each page's events and they are decoded straight
    /// from its bytes. An event that may hold encrypted fields is opened
    /// through the keyring, which is async: it and the rest of its page are
    /// taken as envelopes and folded after the page, in order. A page fails
    /// as a page read fails: with the store's error if it has one, else
    /// with the first event that does not read.
    async fn fold_forward(
        &self,
        stream: &StreamId,
        mut base: Loaded<A>,
        keep: impl Fn(Version, RecordedTime) -> bool + Sync,
        seen: &mut Vec<SubjectId>,
    ) -> Result<Loaded<A>, A> {
        let mut pages = StreamPages::new(
            &*self.events,
            stream,
            ReadDirection::Forward,
            base.version + 1,
            self.options.page_size,
        );
        loop {
            let mut failed: Option<CodecError> = None;
            let mut stopped = false;
            let mut to_open: Vec<RecordedEvent> = Vec::new();
            let lent = pages
                .visit_next_page(&mut |event| {
                    if stopped || failed.is_some() {
                        return;
                    }
                    if !to_open.is_empty() {
                        to_open.push(event.to_recorded());
                    } else if !keep(event.version, event.recorded_at) {
                        stopped = true;
                    } else if fields::payload_may_be_encrypted(event.payload) {
                        to_open.push(event.to_recorded());
                    } else {
                        match self.decoder.decode_lent(event) {
                            Ok(decoded) => {
                                base.state.apply(&decoded);
                                base.version = event.version;
                            }
                            Err(error) => failed = Some(error),
                        }
                    }
                })
                .await?;
            if let Some(error) = failed {
                return Err(error.into());
            }
            for recorded in &to_open {
                if !keep(recorded.version, recorded.recorded_at.into()) {
                    return Ok(base);
                }
                let event: A::Event = self.decode(recorded).await?;
                if self.keyring.is_some() {
                    fields::add_subjects(seen, fields::subjects_in(&recorded.payload));
                }
                base.state.apply(&event);
                base.version = recorded.version;
            }
            if stopped || lent.is_none() {
                return Ok(base);
            }
        }
    }

    /// Reads one stored event, its personal fields opened first.
    async fn decode(&self, recorded: &RecordedEvent) -> Result<A::Event, A> {
        if !fields::may_be_encrypted(&recorded.payload) {
            return Ok(self.decoder.decode(recorded)?);
        }
        let opened = match &self.keyring {
            Some(keyring) => keyring.open_event(recorded).await?,
            None => match fields::subjects_in(&recorded.payload).into_iter().next() {
                Some(subject) => return Err(PersonalDataError::NoMasterKey { subject }.into()),
                None => None,
            },
        };
        Ok(self.decoder.decode(opened.as_ref().unwrap_or(recorded))?)
    }

    /// The stored snapshot, if there is a usable one. A snapshot of another
    /// shape, or one that does not decode, is ignored: snapshots only save
    /// time, the events are the truth.
    async fn snapshot(&self, stream: &StreamId) -> Option<Loaded<A>> {
        let store = self.snapshots.as_ref()?;
        let snapshot = match store.load(stream).await {
            Ok(Some(snapshot)) => snapshot,
            Ok(None) => return None,
            Err(error) => {
                tracing::warn!(%stream, %error, "snapshot unreadable; replaying events instead");
                return None;
            }
        };
        if snapshot.schema_version != A::SNAPSHOT_VERSION {
            return None;
        }
        // A snapshot past the stream's end (the store lost unsynced events
        // in a crash) describes a state that never happened: replay instead.
        match self.events.stream_version(stream).await {
            Ok(Some(current)) if current >= snapshot.version => {}
            Ok(current) => {
                tracing::warn!(%stream, snapshot = snapshot.version, stream_version = ?current, "snapshot is ahead of its stream; replaying events instead");
                return None;
            }
            Err(_) => return None,
        }
        let state = if fields::is_sealed_whole(&snapshot.state) {
            let Some(keyring) = &self.keyring else {
                tracing::warn!(%stream, "snapshot is encrypted and no master key is configured; replaying events instead");
                return None;
            };
            match keyring
                .open_snapshot(&snapshot.state, stream, snapshot.version)
                .await
            {
                Ok(Some(state)) => state,
                // A subject of it is shredded: the events give the placeholder.
                Ok(None) => return None,
                Err(error) => {
                    tracing::warn!(%stream, %error, "snapshot does not open; replaying events instead");
                    return None;
                }
            }
        } else {
            snapshot.state
        };
        match state.to_value::<A>() {
            Ok(state) => Some(Loaded {
                state,
                version: snapshot.version,
            }),
            Err(error) => {
                tracing::warn!(%stream, version = snapshot.version, %error, "snapshot does not decode; replaying events instead");
                None
            }
        }
    }

    async fn maybe_snapshot(
        &self,
        stream: &StreamId,
        state: &A,
        before: Version,
        after: Version,
    ) -> bool {
        let (Some(store), Some(every)) = (&self.snapshots, self.options.snapshot_every) else {
            return false;
        };
        // A save that crosses a multiple of `every`, not only one that lands
        // on it: a batch from 8 to 12 still snapshots.
        if before / every.get() == after / every.get() {
            return false;
        }
        let state = match Payload::from_serialize(state) {
            Ok(state) => state,
            Err(error) => {
                tracing::warn!(%stream, %error, "state does not serialize; no snapshot taken");
                return false;
            }
        };
        let state = match self.sealed_snapshot(stream, state, after).await {
            Ok(state) => state,
            Err(error) => {
                tracing::debug!(%stream, %error, "state holds personal data that cannot be sealed; no snapshot taken");
                return false;
            }
        };
        let snapshot = Snapshot {
            stream: stream.clone(),
            version: after,
            schema_version: A::SNAPSHOT_VERSION,
            state,
            taken_at: timestamp_now(),
        };
        match store.save(snapshot).await {
            Ok(()) => true,
            Err(error) => {
                // The events are committed; a missing snapshot only costs speed.
                tracing::warn!(%stream, %error, "snapshot not saved");
                false
            }
        }
    }

    /// Records that events `1..=through` of `stream` name `subjects`
    /// (only with a keyring: without one nothing is sealed).
    fn set_subjects(&self, stream: &StreamId, through: Version, subjects: Vec<SubjectId>) {
        if self.keyring.is_some() {
            self.cache
                .set_subjects(&self.cache.key(stream), through, subjects);
        }
    }

    /// `state` sealed with the keys of every subject the stream's events
    /// name, so a snapshot never holds personal data in plain text (and is
    /// useless once one of them is shredded). The subjects are those this
    /// repository saw while folding and appending; when it has not seen the
    /// whole stream, they are read from the stream once.
    async fn sealed_snapshot(
        &self,
        stream: &StreamId,
        state: Payload,
        version: Version,
    ) -> std::result::Result<Payload, PersonalDataError> {
        let Some(keyring) = &self.keyring else {
            return Ok(state);
        };
        let known = self.cache.subjects_at(&self.cache.key(stream), version);
        let subjects = match known {
            Some(subjects) => subjects,
            None => self.subjects_through(stream, version).await?,
        };
        if subjects.is_empty() {
            return Ok(state);
        }
        keyring
            .seal_snapshot(&state, stream, version, &subjects)
            .await
    }

    /// The subjects named by events `1..=version` of `stream`, read from it.
    async fn subjects_through(
        &self,
        stream: &StreamId,
        version: Version,
    ) -> std::result::Result<Vec<SubjectId>, PersonalDataError> {
        let mut subjects = Vec::new();
        let mut pages = StreamPages::new(
            &*self.events,
            stream,
            ReadDirection::Forward,
            1,
            self.options.page_size,
        );
        while let Some(page) = pages.next_page().await? {
            for recorded in page.iter().filter(|e| e.version <= version) {
                fields::add_subjects(&mut subjects, fields::subjects_in(&recorded.payload));
            }
        }
        self.set_subjects(stream, version, subjects.clone());
        Ok(subjects)
    }

    async fn publish(&self, stream: &StreamId, before: Version, count: usize) {
        let Some(bus) = &self.bus else { return };
        match self
            .events
            .read_stream(stream, ReadDirection::Forward, before + 1, count)
            .await
        {
            Ok(recorded) => {
                let report = bus.publish(&recorded).await;
                for failure in report.failures {
                    tracing::warn!(
                        handler = failure.handler,
                        position = failure.position,
                        error = failure.error,
                        "event handler failed"
                    );
                }
            }
            Err(error) => tracing::warn!(%stream, %error, "committed events not published"),
        }
    }
}
