//! [`Projector`]: keeps one [`ReadModel`] caught up with the global log.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use logbook_domain::{EventId, Payload, Position, RecordedEvent, StreamId};
use logbook_ports::event_store::timestamp_now;
use logbook_ports::{EventFilter, EventStore, Snapshot, SnapshotStore, StoreError, Stores};
use serde::{Deserialize, Serialize};

use super::ReadModel;
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

/// An event set aside by [`PoisonPolicy::Park`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkedEvent {
    /// Its global position.
    pub position: Position,
    /// Its id.
    pub event_id: EventId,
    /// Its stream.
    pub stream: String,
    /// Its type.
    pub event_type: String,
    /// Why it could not be applied (the last attempt).
    pub error: String,
}

/// A read model with its checkpoint and parked events: what is saved,
/// atomically, after each batch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(bound = "R: ReadModel")]
pub struct ProjectionState<R> {
    /// Saves so far: a save expects the stored document to be the one it
    /// loaded (same generation), so two writers cannot silently undo each
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
    /// projection since this one loaded it; this one's work was not saved.
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
/// the snapshot port.
pub struct Projector<R> {
    events: Arc<dyn EventStore>,
    documents: Arc<dyn SnapshotStore>,
    options: ProjectorOptions,
    _model: PhantomData<fn() -> R>,
}

/// Whether [`Projector::fold`] saves as it goes (live) or not (a rebuild
/// beside the live model).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Save {
    EachBatch,
    Never,
}

/// The schema version of saved projection documents.
const DOCUMENT_VERSION: u32 = 1;

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
            documents: Arc::clone(&stores.snapshots),
            options,
            _model: PhantomData,
        }
    }

    /// Where the projection's document is kept.
    pub fn document_id() -> StreamId {
        StreamId::new(format!("$projection-{}", R::NAME)).expect("projection names make valid ids")
    }

    /// The saved state (empty before the first run).
    ///
    /// # Errors
    /// Store failures; [`ProjectionError::Unreadable`].
    pub async fn state(&self) -> Result<ProjectionState<R>, ProjectionError> {
        match self.documents.load(&Self::document_id()).await? {
            None => Ok(ProjectionState::default()),
            Some(document) => document
                .state
                .to_value()
                .map_err(|e| ProjectionError::Unreadable {
                    name: R::NAME,
                    detail: e.to_string(),
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
    /// after each batch.
    ///
    /// # Errors
    /// [`ProjectionError::Stopped`] when an event fails under
    /// [`PoisonPolicy::Stop`] (or after its retries): everything before it
    /// is saved, it is not.
    pub async fn catch_up(&self) -> Result<CatchUp, ProjectionError> {
        let mut state = self.checked_state().await?;
        let mut subscription = self.subscription(state.checkpoint);
        self.fold(&mut state, &mut subscription, Save::EachBatch, |_| {})
            .await
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
            // before replacing, so the save is not refused as older.
            let live = self.state().await?;
            if live.checkpoint <= fresh.checkpoint {
                // Replace the live document on purpose: a runner still
                // holding the old one is told it was superseded.
                fresh.generation = live.generation;
                self.save(&mut fresh).await?;
                return Ok(total);
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
        let mut from = 1;
        'read: loop {
            let page = self
                .events
                .read_all(from, self.options.batch, &R::filter())
                .await?;
            let Some(last) = page.last() else { break };
            from = last.position + 1;
            for event in &page {
                if event.position > through {
                    break 'read;
                }
                // Parked events failed live as well; skip them alike.
                let _ = fresh.apply(event);
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
                Some(event) => match state.model.apply(&event) {
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
        self.save(&mut state).await?;
        Ok((applied, state.parked.len()))
    }

    fn subscription(&self, checkpoint: Option<Position>) -> Subscription {
        Subscription::new(
            Arc::clone(&self.events),
            checkpoint.unwrap_or(0) + 1,
            R::filter(),
        )
        .with_page_size(self.options.batch)
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
                        self.save(state).await?;
                    }
                }
                done.checkpoint = state.checkpoint;
                return Ok(done);
            }
            let mut model = state.model.clone();
            for event in &batch {
                match self.apply_with_policy(&mut model, event).await {
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
                        state.model = model;
                        state.checkpoint = Some(event.position - 1)
                            .filter(|p| *p > 0)
                            .or(state.checkpoint);
                        if save == Save::EachBatch {
                            self.save(state).await?;
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
            state.model = model;
            state.checkpoint = Some(through.max(batch.last().map_or(0, |e| e.position)));
            done.checkpoint = state.checkpoint;
            if save == Save::EachBatch {
                self.save(state).await?;
            }
            progress((state.checkpoint.unwrap_or(0), done.applied));
        }
    }

    async fn apply_with_policy(&self, model: &mut R, event: &RecordedEvent) -> Result<(), String> {
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

    /// Saves `state` if the stored document is still the generation it was
    /// loaded as. The check and the write are two steps, so two runners
    /// saving at the very same moment can still race; everything else (a
    /// rebuild or a retry meeting a follower) is caught.
    async fn save(&self, state: &mut ProjectionState<R>) -> Result<(), ProjectionError> {
        let stored = self.state().await?;
        if stored.generation != state.generation {
            return Err(ProjectionError::Superseded { name: R::NAME });
        }
        state.generation += 1;
        let saved = match Payload::from_serialize(&*state) {
            Ok(document) => self
                .documents
                .save(Snapshot {
                    stream: Self::document_id(),
                    version: state.checkpoint.unwrap_or(0),
                    schema_version: DOCUMENT_VERSION,
                    state: document,
                    taken_at: timestamp_now(),
                })
                .await
                .map_err(ProjectionError::from),
            Err(e) => Err(ProjectionError::Unreadable {
                name: R::NAME,
                detail: e.to_string(),
            }),
        };
        if saved.is_err() {
            state.generation -= 1;
        }
        saved
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
