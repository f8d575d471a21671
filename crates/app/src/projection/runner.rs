//! [`Projector`]: keeps one [`ReadModel`] caught up with the global log.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use logbook_domain::{EventId, Payload, PayloadError, Position, RecordedEvent};
pub use logbook_ports::ParkedEvent;
use logbook_ports::event_store::timestamp_now;
use logbook_ports::{
    EventFilter, EventStore, GlobalPages, ProjectionDocument, ProjectionSave, ProjectionStore,
    StoreError, Stores,
};
use serde::{Deserialize, Serialize};

use super::ReadModel;
use crate::personal::Keyring;
use crate::subscription::Subscription;

/// What to do with an event the read model cannot apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoisonPolicy {
    /// Stop the projection before the event, reporting it; the next run
    /// tries it again. The default.
    Stop,
    /// Try again up to `attempts` more times, waiting `backoff` times the
    /// attempt number in between, then stop.
    Retry {
        /// Extra attempts.
        attempts: u32,
        /// Base wait.
        backoff: Duration,
    },
    /// Set the event aside in the projection's parked list (shown by
    /// `logbook projection parked`, replayed by `logbook projection retry`)
    /// and go on.
    Park,
}

/// How a [`Projector`] runs.
#[derive(Debug, Clone)]
pub struct ProjectorOptions {
    /// Events applied per saved batch.
    pub batch: usize,
    /// What to do with an event that fails.
    pub policy: PoisonPolicy,
}

impl Default for ProjectorOptions {
    fn default() -> Self {
        Self {
            batch: 1_000,
            policy: PoisonPolicy::Stop,
        }
    }
}

/// A read model with its checkpoint and parked events: the decoded
/// [`ProjectionDocument`], saved whole, atomically, after each batch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(bound = "R: ReadModel")]
pub struct ProjectionState<R> {
    /// Saves so far (0: never saved). A save expects the stored document to
    /// be at this generation, so two runners cannot silently undo each
    /// other.
    #[serde(default)]
    pub generation: u64,
    /// Position of the last event applied or skipped (`None`: nothing yet).
    pub checkpoint: Option<Position>,
    /// The model.
    pub model: R,
    /// Events set aside.
    pub parked: Vec<ParkedEvent>,
}

impl<R: ReadModel> ProjectionState<R> {
    /// The document to save: the model serialized, at this state's
    /// generation (the one the store expects to find).
    ///
    /// # Errors
    /// When the model does not serialize.
    pub fn to_document(&self) -> Result<ProjectionDocument, PayloadError> {
        Ok(ProjectionDocument {
            generation: self.generation,
            checkpoint: self.checkpoint,
            model: Payload::from_serialize(&self.model)?,
            parked: self.parked.clone(),
            saved_at: timestamp_now(),
        })
    }
}

/// What a catch-up did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CatchUp {
    /// Events applied.
    pub applied: u64,
    /// Events parked.
    pub parked: u64,
    /// The checkpoint afterwards.
    pub checkpoint: Option<Position>,
}

/// Where a projection stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// Its name.
    pub name: &'static str,
    /// Its checkpoint.
    pub checkpoint: Option<Position>,
    /// The head of the global log.
    pub head: Option<Position>,
    /// Positions between the checkpoint and the head.
    pub lag: u64,
    /// Events parked.
    pub parked: usize,
}

/// Progress of a rebuild, reported after every batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Position reached.
    pub position: Position,
    /// Head when the rebuild started.
    pub head: Position,
    /// Events applied so far.
    pub applied: u64,
}

/// Why a projection could not go on.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An event could not be applied; the checkpoint stays just before it.
    #[error(
        "projection {name} stopped at global position {position} (event {event_id}, {event_type} in {stream}): {error}"
    )]
    Stopped {
        /// The projection.
        name: &'static str,
        /// The failing event's position.
        position: Position,
        /// Its id.
        event_id: EventId,
        /// Its type.
        event_type: String,
        /// Its stream.
        stream: String,
        /// What the read model said.
        error: String,
    },
    /// Another runner (a rebuild, a retry of parked events) saved the
    /// projection since this one loaded it, again and again; this one's
    /// work was not saved. (A single such conflict is not an error: the
    /// runner reloads the document and goes on from it.)
    #[error("projection {name} was changed by another runner meanwhile; run again")]
    Superseded {
        /// The projection.
        name: &'static str,
    },
    /// The checkpoint is past the end of the log: the store lost events it
    /// had acknowledged (a power cut without fsync), or the log was replaced.
    #[error("projection {name} is at position {checkpoint} but the log ends at {head}; rebuild it")]
    AheadOfLog {
        /// The projection.
        name: &'static str,
        /// Its checkpoint.
        checkpoint: Position,
        /// The log's head.
        head: Position,
    },
    /// The saved projection document does not decode (a model whose shape
    /// changed: rebuild it).
    #[error("projection {name}'s saved state does not decode ({detail}); rebuild it")]
    Unreadable {
        /// The projection.
        name: &'static str,
        /// What serde said.
        detail: String,
    },
}

/// Keeps the read model `R` caught up, saving it with its checkpoint through
/// the [`ProjectionStore`] port. The model stays in memory between batches;
/// each save expects the generation this runner last saved or loaded.
///
/// ```
/// use logbook::Repository;
/// use logbook::projection::{AccountBalances, Projector};
/// use logbook_domain::bank_account::{BankAccount, BankAccountCommand};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let stores = logbook_adapters_memory::stores();
/// let open = BankAccountCommand::Open {
///     owner: "alice".into(),
///     initial_balance: "10.00".parse().unwrap(),
///     currency: Default::default(),
/// };
/// Repository::<BankAccount>::new(&stores).execute("a1", &open).await.unwrap();
///
/// let balances = Projector::<AccountBalances>::new(&stores);
/// let done = balances.catch_up().await.unwrap();
/// assert_eq!((done.applied, done.checkpoint), (1, Some(1)));
/// let state = balances.state().await.unwrap();
/// assert_eq!(state.model.accounts["a1"].balance.to_string(), "10.00");
/// // Caught up: a second catch-up applies nothing, a fresh fold agrees.
/// assert_eq!(balances.catch_up().await.unwrap().applied, 0);
/// assert!(balances.verify().await.unwrap().is_empty());
/// # });
/// ```
pub struct Projector<R> {
    events: Arc<dyn EventStore>,
    documents: Arc<dyn ProjectionStore>,
    options: ProjectorOptions,
    keyring: Option<Keyring>,
    _model: PhantomData<fn() -> R>,
}

/// Whether [`Projector::fold`] saves as it goes (live) or not (a rebuild
/// beside the live model).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Save {
    EachBatch,
    Never,
}

/// How many times in a row a one-shot operation (a retry of parked
/// events, a rebuild's final replacement) reloads after a conflict before
/// it gives up with [`ProjectionError::Superseded`].
const CONFLICT_RETRIES: usize = 10;

impl<R: ReadModel> Projector<R> {
    /// A projector over `stores` with default options.
    pub fn new(stores: &Stores) -> Self {
        Self::with_options(stores, ProjectorOptions::default())
    }

    /// A projector over `stores` with `options`.
    pub fn with_options(stores: &Stores, mut options: ProjectorOptions) -> Self {
        // A zero batch would never advance.
        options.batch = options.batch.max(1);
        Self {
            events: Arc::clone(&stores.events),
            documents: Arc::clone(&stores.projections),
            options,
            keyring: Some(Keyring::for_process(Arc::clone(&stores.subject_keys))),
            _model: PhantomData,
        }
    }

    /// Opens events' personal fields with `keyring` before the model sees
    /// them (a shredded subject's as the placeholder), instead of the
    /// stores' keys with this process's master key.
    #[must_use]
    pub fn with_keyring(mut self, keyring: Keyring) -> Self {
        self.keyring = Some(keyring);
        self
    }

    /// `event` with its personal fields opened, when it has any and a
    /// keyring is set; why not, as the model's error would say it.
    async fn opened<'e>(
        &self,
        event: &'e RecordedEvent,
    ) -> Result<std::borrow::Cow<'e, RecordedEvent>, String> {
        let Some(keyring) = &self.keyring else {
            return Ok(std::borrow::Cow::Borrowed(event));
        };
        match keyring.open_event(event).await {
            Ok(Some(opened)) => Ok(std::borrow::Cow::Owned(opened)),
            Ok(None) => Ok(std::borrow::Cow::Borrowed(event)),
            Err(error) => Err(error.to_string()),
        }
    }

    /// The saved state (empty, at generation 0, before the first run).
    ///
    /// # Errors
    /// Store failures; [`ProjectionError::Unreadable`].
    pub async fn state(&self) -> Result<ProjectionState<R>, ProjectionError> {
        match self.documents.load(R::NAME).await? {
            None => Ok(ProjectionState::default()),
            Some(document) => Ok(ProjectionState {
                generation: document.generation,
                checkpoint: document.checkpoint,
                model: document
                    .model
                    .to_value()
                    .map_err(|e| ProjectionError::Unreadable {
                        name: R::NAME,
                        detail: e.to_string(),
                    })?,
                parked: document.parked,
            }),
        }
    }

    /// Checkpoint, head, lag and parked count.
    ///
    /// # Errors
    /// As [`Projector::state`].
    pub async fn status(&self) -> Result<Status, ProjectionError> {
        let state = self.state().await?;
        let head = self.events.head_position().await?;
        Ok(Status {
            name: R::NAME,
            checkpoint: state.checkpoint,
            head,
            lag: head
                .unwrap_or(0)
                .saturating_sub(state.checkpoint.unwrap_or(0)),
            parked: state.parked.len(),
        })
    }

    /// Applies everything after the checkpoint, a batch at a time, saving
    /// after each batch. When another runner saved meanwhile (a rebuild),
    /// it reloads that document and goes on from it.
    ///
    /// # Errors
    /// [`ProjectionError::Stopped`] when an event fails under
    /// [`PoisonPolicy::Stop`] (or after its retries): everything before it
    /// is saved, it is not.
    pub async fn catch_up(&self) -> Result<CatchUp, ProjectionError> {
        self.catch_up_reporting(|_| {}).await
    }

    /// As [`Projector::catch_up`], reporting progress after every batch (for
    /// a long catch-up over a big log).
    ///
    /// # Errors
    /// As [`Projector::catch_up`].
    #[tracing::instrument(name = "catch_up", level = "debug", skip_all, fields(projection = R::NAME))]
    pub async fn catch_up_reporting(
        &self,
        mut progress: impl FnMut(Progress),
    ) -> Result<CatchUp, ProjectionError> {
        let mut state = self.checked_state().await?;
        let mut subscription = self.subscription(state.checkpoint);
        let mut total = CatchUp {
            applied: 0,
            parked: 0,
            checkpoint: state.checkpoint,
        };
        let head = self.events.head_position().await?.unwrap_or(0);
        loop {
            let applied_before = total.applied;
            match self
                .fold(&mut state, &mut subscription, Save::EachBatch, |p| {
                    progress(Progress {
                        position: p.0,
                        head,
                        applied: applied_before + p.1,
                    });
                })
                .await
            {
                Ok(done) => {
                    total.applied += done.applied;
                    total.parked += done.parked;
                    total.checkpoint = done.checkpoint;
                    tracing::debug!(
                        applied = total.applied,
                        parked = total.parked,
                        checkpoint = total.checkpoint,
                        "caught up"
                    );
                    return Ok(total);
                }
                // What this runner applied since its last save is dropped;
                // the other runner's document is the truth now.
                Err(ProjectionError::Superseded { .. }) => {
                    state = self.checked_state().await?;
                    subscription = self.subscription(state.checkpoint);
                    total.checkpoint = state.checkpoint;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Catches up, then applies new events as they are committed, until
    /// `stop` resolves.
    ///
    /// # Errors
    /// As [`Projector::catch_up`].
    pub async fn follow(
        &self,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<CatchUp, ProjectionError> {
        let mut state = self.checked_state().await?;
        let mut subscription = self.subscription(state.checkpoint);
        let mut total = CatchUp {
            applied: 0,
            parked: 0,
            checkpoint: state.checkpoint,
        };
        tokio::pin!(stop);
        loop {
            let done = match self
                .fold(&mut state, &mut subscription, Save::EachBatch, |_| {})
                .await
            {
                Ok(done) => done,
                // A rebuild or a retry replaced the document: go on from it.
                Err(ProjectionError::Superseded { .. }) => {
                    state = self.checked_state().await?;
                    subscription = self.subscription(state.checkpoint);
                    continue;
                }
                Err(error) => return Err(error),
            };
            total.applied += done.applied;
            total.parked += done.parked;
            total.checkpoint = done.checkpoint;
            tokio::select! {
                () = &mut stop => return Ok(total),
                () = subscription.wait() => {}
            }
        }
    }

    /// Folds the whole log into a fresh model beside the live one, then
    /// replaces the live one in a single save. Readers see the old model
    /// until then, never an empty or partial one.
    ///
    /// # Errors
    /// As [`Projector::catch_up`]; on error the live model is untouched.
    #[tracing::instrument(name = "rebuild", level = "debug", skip_all, fields(projection = R::NAME))]
    pub async fn rebuild(
        &self,
        mut progress: impl FnMut(Progress),
    ) -> Result<CatchUp, ProjectionError> {
        let mut fresh = ProjectionState::<R>::default();
        let head = self.events.head_position().await?.unwrap_or(0);
        let mut subscription = self.subscription(None);
        let mut total = CatchUp {
            applied: 0,
            parked: 0,
            checkpoint: None,
        };
        let mut conflicts = 0;
        loop {
            let done = self
                .fold(&mut fresh, &mut subscription, Save::Never, |p| {
                    progress(Progress {
                        position: p.0,
                        head,
                        applied: total.applied + p.1,
                    })
                })
                .await?;
            total.applied += done.applied;
            total.parked += done.parked;
            total.checkpoint = fresh.checkpoint;
            // A live runner may have saved past us meanwhile: catch up to it
            // before replacing, so readers never see the model go back. A
            // live checkpoint past the log's end is what a rebuild repairs:
            // replace it all the same.
            let live = self.state_or_empty().await?;
            let log_end = self.events.head_position().await?;
            if live.checkpoint <= fresh.checkpoint || live.checkpoint > log_end {
                // Replace the live document on purpose: a runner still
                // holding the old one is told it was superseded.
                fresh.generation = live.generation;
                match self.save(&mut fresh, ProjectionSave::Replace).await {
                    Ok(()) => return Ok(total),
                    // Someone saved between our look and our save: look again.
                    Err(ProjectionError::Superseded { .. }) if conflicts < CONFLICT_RETRIES => {
                        conflicts += 1;
                    }
                    Err(error) => return Err(error),
                }
            }
        }
    }

    /// Compares the live model with a fresh fold of the log up to the live
    /// checkpoint; returns the differences (empty when they agree).
    ///
    /// # Errors
    /// Store failures; [`ProjectionError::Unreadable`].
    pub async fn verify(&self) -> Result<Vec<String>, ProjectionError> {
        let live = self.state().await?;
        let Some(through) = live.checkpoint else {
            return Ok(Vec::new());
        };
        let mut fresh = R::default();
        let filter = R::filter();
        let mut pages = GlobalPages::new(&*self.events, 1, &filter, self.options.batch);
        'read: while let Some(page) = pages.next_page().await? {
            for event in &page {
                if event.position > through {
                    break 'read;
                }
                // Parked events failed live as well; skip them alike.
                if let Ok(event) = self.opened(event).await {
                    let _ = fresh.apply(&event);
                }
            }
        }
        let mut differences = Vec::new();
        let live = serde_json::to_value(&live.model).unwrap_or_default();
        let fresh = serde_json::to_value(&fresh).unwrap_or_default();
        diff("", &live, &fresh, &mut differences);
        Ok(differences)
    }

    /// Applies the parked events again, in position order; those that now
    /// succeed leave the list. Returns how many were applied and how many
    /// remain parked.
    ///
    /// # Errors
    /// Store failures; [`ProjectionError::Unreadable`].
    pub async fn retry_parked(&self) -> Result<(usize, usize), ProjectionError> {
        let mut conflicts = 0;
        loop {
            match self.retry_parked_once().await {
                Err(ProjectionError::Superseded { .. }) if conflicts < CONFLICT_RETRIES => {
                    conflicts += 1;
                }
                done => return done,
            }
        }
    }

    async fn retry_parked_once(&self) -> Result<(usize, usize), ProjectionError> {
        let mut state = self.state().await?;
        let mut still = Vec::new();
        let mut applied = 0;
        for mut parked in std::mem::take(&mut state.parked) {
            let event = self
                .events
                .read_all(parked.position, 1, &EventFilter::all())
                .await?
                .into_iter()
                .next();
            match event.filter(|e| e.id == parked.event_id) {
                Some(event) => match match self.opened(&event).await {
                    Ok(event) => state.model.apply(&event),
                    Err(error) => Err(error),
                } {
                    Ok(()) => applied += 1,
                    Err(error) => {
                        parked.error = error;
                        still.push(parked);
                    }
                },
                None => {
                    parked.error = "the event is no longer in the log".into();
                    still.push(parked);
                }
            }
        }
        state.parked = still;
        self.save(&mut state, ProjectionSave::Advance).await?;
        Ok((applied, state.parked.len()))
    }

    fn subscription(&self, checkpoint: Option<Position>) -> Subscription {
        Subscription::new(
            Arc::clone(&self.events),
            checkpoint.unwrap_or(0) + 1,
            R::filter(),
        )
        .with_page_size(self.options.batch)
        .with_read_ahead()
    }

    /// Folds batches into `state` until the subscription has caught up,
    /// saving after each batch (and before reporting a stop) when `save`
    /// says so.
    async fn fold(
        &self,
        state: &mut ProjectionState<R>,
        subscription: &mut Subscription,
        save: Save,
        mut progress: impl FnMut((Position, u64)),
    ) -> Result<CatchUp, ProjectionError> {
        let mut done = CatchUp {
            applied: 0,
            parked: 0,
            checkpoint: state.checkpoint,
        };
        loop {
            let batch = subscription.next_batch(self.options.batch).await?;
            let through = subscription.position().saturating_sub(1);
            if batch.is_empty() {
                // Events the filter skipped still move the checkpoint.
                if through > state.checkpoint.unwrap_or(0) {
                    state.checkpoint = Some(through);
                    if save == Save::EachBatch {
                        self.save(state, ProjectionSave::Advance).await?;
                    }
                }
                done.checkpoint = state.checkpoint;
                return Ok(done);
            }
            // The model is folded in place: an event that fails leaves it as
            // it was (the ReadModel contract), so what is saved on a stop is
            // exactly the events before it.
            for event in &batch {
                match self.apply_with_policy(&mut state.model, event).await {
                    Ok(()) => done.applied += 1,
                    Err(error) if self.options.policy == PoisonPolicy::Park => {
                        state.parked.push(ParkedEvent {
                            position: event.position,
                            event_id: event.id,
                            stream: event.stream.to_string(),
                            event_type: event.event_type.to_string(),
                            error,
                        });
                        done.parked += 1;
                    }
                    Err(error) => {
                        // Keep what came before the failing event, not it.
                        state.checkpoint = Some(event.position - 1)
                            .filter(|p| *p > 0)
                            .or(state.checkpoint);
                        if save == Save::EachBatch {
                            self.save(state, ProjectionSave::Advance).await?;
                        }
                        return Err(ProjectionError::Stopped {
                            name: R::NAME,
                            position: event.position,
                            event_id: event.id,
                            event_type: event.event_type.to_string(),
                            stream: event.stream.to_string(),
                            error,
                        });
                    }
                }
            }
            state.checkpoint = Some(through.max(batch.last().map_or(0, |e| e.position)));
            done.checkpoint = state.checkpoint;
            if save == Save::EachBatch {
                self.save(state, ProjectionSave::Advance).await?;
            }
            progress((state.checkpoint.unwrap_or(0), done.applied));
        }
    }

    async fn apply_with_policy(&self, model: &mut R, event: &RecordedEvent) -> Result<(), String> {
        let event = &*self.opened(event).await?;
        let mut result = model.apply(event);
        if let (Err(_), PoisonPolicy::Retry { attempts, backoff }) = (&result, self.options.policy)
        {
            for attempt in 1..=attempts {
                tokio::time::sleep(backoff * attempt).await;
                result = model.apply(event);
                if result.is_ok() {
                    break;
                }
            }
        }
        result
    }

    /// The saved state, refused when its checkpoint is past the log's end.
    async fn checked_state(&self) -> Result<ProjectionState<R>, ProjectionError> {
        let state = self.state().await?;
        let head = self.events.head_position().await?.unwrap_or(0);
        match state.checkpoint {
            Some(checkpoint) if checkpoint > head => Err(ProjectionError::AheadOfLog {
                name: R::NAME,
                checkpoint,
                head,
            }),
            _ => Ok(state),
        }
    }

    /// The saved state, or an empty one at the stored generation when the
    /// stored model does not decode (a rebuild replaces it).
    async fn state_or_empty(&self) -> Result<ProjectionState<R>, ProjectionError> {
        match self.state().await {
            Err(ProjectionError::Unreadable { .. }) => {
                let stored = self.documents.load(R::NAME).await?;
                Ok(ProjectionState {
                    generation: stored.map_or(0, |d| d.generation),
                    ..ProjectionState::default()
                })
            }
            other => other,
        }
    }

    /// Saves `state` if the stored document is still at the generation it
    /// holds (the store checks and writes in one step), and moves it to the
    /// new generation.
    ///
    /// # Errors
    /// [`ProjectionError::Superseded`] when another runner saved meanwhile;
    /// store failures; [`ProjectionError::Unreadable`] for a model that
    /// does not serialize.
    async fn save(
        &self,
        state: &mut ProjectionState<R>,
        save: ProjectionSave,
    ) -> Result<(), ProjectionError> {
        let document = state
            .to_document()
            .map_err(|e| ProjectionError::Unreadable {
                name: R::NAME,
                detail: e.to_string(),
            })?;
        match self.documents.save(R::NAME, &document, save).await {
            Ok(generation) => {
                state.generation = generation;
                Ok(())
            }
            Err(StoreError::ProjectionConflict { .. }) => {
                Err(ProjectionError::Superseded { name: R::NAME })
            }
            Err(error) => Err(error.into()),
        }
    }
}

/// Collects the paths where two JSON documents differ.
fn diff(path: &str, live: &serde_json::Value, fresh: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    match (live, fresh) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let null = Value::Null;
                let sub = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                diff(
                    &sub,
                    a.get(key).unwrap_or(&null),
                    b.get(key).unwrap_or(&null),
                    out,
                );
            }
        }
        (a, b) if a != b => out.push(format!("{path}: live {a}, fresh fold {b}")),
        _ => {}
    }
}
