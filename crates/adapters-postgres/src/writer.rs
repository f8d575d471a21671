//! The one writer of a store: a task that owns the write connection and
//! commits queued appends in groups.
//!
//! **Group commit.** Callers queue appends and await their replies. The task
//! takes every append waiting in the queue (up to
//! [`PostgresOptions::max_group_events`](crate::PostgresOptions) events) and
//! runs them in one transaction:
//!
//! 1. `BEGIN; SELECT position FROM head FOR UPDATE` — the lock of the one
//!    head row, held until COMMIT: writers of every process take turns here;
//! 2. two statements sent together read the state of every stream the
//!    group names and where each of its event ids is recorded; each append
//!    is then decided in order by [`logbook_ports::append::decide_append`]
//!    against those facts as the earlier appends of the group left them (a
//!    refused append takes no position), and the events of every accepted
//!    one are inserted with one statement. If a statement fails (a row the
//!    server refuses), the group is rolled back and run again append by
//!    append, each in its own savepoint, so only the append at fault fails;
//! 3. `UPDATE head SET position = <last>` and `pg_notify` in one statement,
//!    then COMMIT, all sent together with the insert (if a statement fails
//!    the server ends the transaction at that COMMIT with a rollback), and
//!    only then every caller is answered.
//!
//! Appends that arrive while a group commits form the next group, so N
//! concurrent appenders share one transaction and one WAL flush: two round
//! trips and one flush per group, whatever its size.
//!
//! Because the head row lock is held until COMMIT, a transaction takes its
//! positions only after the previous holder is visible: positions become
//! visible in order, without gaps (docs/postgres.md has the argument).
//!
//! The connection is re-opened before the next group when it was lost; the
//! appends of a group whose connection is lost get an error that says the
//! outcome is unknown, and their retry with the same event ids is
//! idempotent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use logbook_domain::{EventId, NewEvent, Position, StreamId, Version};
use logbook_ports::append::{self, AppendDecision, IdCheck, RecordedAt, StreamState, WritePlan};
use logbook_ports::event_store::timestamp_now;
use logbook_ports::{AppendOutcome, ExpectedVersion, StoreError};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Statement};
use uuid::Uuid;

use crate::config::{PostgresUrl, connect};
use crate::error::{BACKEND, corrupt, store_error};
use crate::rows::{encode_metadata, sql_int, unsigned};

/// What one queued write does.
pub(crate) enum Work {
    /// Append `events` if `expected` holds.
    Append {
        stream: StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    },
    /// Record a tombstone if `expected` holds.
    Delete {
        stream: StreamId,
        expected: ExpectedVersion,
    },
}

impl Work {
    fn weight(&self) -> usize {
        match self {
            Self::Append { events, .. } => events.len().max(1),
            Self::Delete { .. } => 1,
        }
    }
}

struct Job {
    work: Work,
    reply: oneshot::Sender<Result<AppendOutcome, StoreError>>,
}

/// The writer's handle: queues work for the task.
pub(crate) struct Writer {
    queue: mpsc::UnboundedSender<Job>,
    url: PostgresUrl,
}

impl Writer {
    /// Starts the writer task on `client` (re-connecting with `config`
    /// when the connection is lost). `commits` is told the head after every
    /// commit that wrote events. The task ends when the handle is dropped.
    pub(crate) fn start(
        client: Client,
        config: tokio_postgres::Config,
        url: PostgresUrl,
        max_group_events: usize,
        pause_before_commit: Option<(Duration, Duration)>,
        commits: Arc<watch::Sender<Position>>,
    ) -> Self {
        let (queue, jobs) = mpsc::unbounded_channel();
        let task = Task {
            client: Some(client),
            statements: None,
            config,
            url: url.clone(),
            max_group_events,
            pause: pause_before_commit.map(Pause::new),
            commits,
        };
        tokio::spawn(task.run(jobs));
        Self { queue, url }
    }

    /// Runs `work` in the next group and answers once that group has
    /// committed.
    ///
    /// # Errors
    /// The work's own error; [`StoreError::Backend`] when the group's
    /// transaction failed (then nothing of the work was written, or, when
    /// the connection was lost during COMMIT, the outcome is unknown and
    /// the error says so).
    pub(crate) async fn run(&self, work: Work) -> Result<AppendOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || {
            StoreError::backend(
                BACKEND,
                format!("writing to {}", self.url),
                "the writer task has stopped",
            )
        };
        self.queue
            .send(Job { work, reply })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// The statements of an append, prepared once per connection.
struct Statements {
    states: Statement,
    recorded_ids: Statement,
    insert: Statement,
    advance: Statement,
}

struct Task {
    client: Option<Client>,
    statements: Option<Statements>,
    config: tokio_postgres::Config,
    url: PostgresUrl,
    max_group_events: usize,
    pause: Option<Pause>,
    commits: Arc<watch::Sender<Position>>,
}

/// The fault tests' pause before COMMIT: a random time in a range
/// (xorshift, seeded from the clock; no quality needed).
struct Pause {
    min: Duration,
    max: Duration,
    state: u64,
}

impl Pause {
    fn new((min, max): (Duration, Duration)) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9E37_79B9, |d| d.as_nanos() as u64);
        Self {
            min,
            max,
            state: seed | 1,
        }
    }

    fn next(&mut self) -> Duration {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        let span = (self.max - self.min).as_micros() as u64;
        self.min + Duration::from_micros(self.state % (span + 1))
    }
}

/// Why a group's transaction did not commit.
enum Lost {
    /// Nothing of the group was written.
    RolledBack(StoreError),
    /// COMMIT was sent and no answer came: the outcome is unknown.
    Unknown(StoreError),
}

impl Task {
    async fn run(mut self, mut jobs: mpsc::UnboundedReceiver<Job>) {
        let mut group = Vec::new();
        while let Some(first) = jobs.recv().await {
            // The callers answered by the last commit were woken together
            // and are queueing their next appends: let them run before the
            // group is taken (the runtime would otherwise run this task
            // right after the first of them, and the group would be one).
            tokio::task::yield_now().await;
            let mut events = first.work.weight();
            group.push(first);
            while events < self.max_group_events {
                let Ok(job) = jobs.try_recv() else { break };
                events += job.work.weight();
                group.push(job);
            }
            self.commit_group(std::mem::take(&mut group)).await;
        }
    }

    /// The connection and its statements, re-opened if it was lost.
    async fn ready(&mut self) -> Result<(&Client, &Statements), StoreError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = None;
            self.statements = None;
            self.client = Some(connect(&self.config, &self.url).await?);
        }
        let client = self.client.as_ref().expect("connected above");
        if self.statements.is_none() {
            self.statements = Some(prepare(client, &self.url).await?);
        }
        Ok((client, self.statements.as_ref().expect("prepared above")))
    }

    async fn commit_group(&mut self, group: Vec<Job>) {
        let commits = Arc::clone(&self.commits);
        let url = self.url.clone();
        let pause = self.pause.as_mut().map(Pause::next);
        let (client, statements) = match self.ready().await {
            Ok(ready) => ready,
            Err(error) => {
                let reason = error.to_string();
                for job in group {
                    let _ = job.reply.send(Err(StoreError::backend(
                        BACKEND,
                        format!("appending ({url})"),
                        reason.clone(),
                    )));
                }
                return;
            }
        };
        match run_group(client, statements, &url, &group, pause).await {
            Ok((results, head)) => {
                if let Some(head) = head {
                    commits.send_if_modified(|known| {
                        let newer = head > *known;
                        if newer {
                            *known = head;
                        }
                        newer
                    });
                }
                for (job, result) in group.into_iter().zip(results) {
                    let _ = job.reply.send(result);
                }
            }
            Err(lost) => {
                let (reason, unknown) = match &lost {
                    Lost::RolledBack(e) => (e.to_string(), false),
                    Lost::Unknown(e) => (e.to_string(), true),
                };
                if !client.is_closed() {
                    // Best effort: never stay inside a failed transaction.
                    let _ = client.batch_execute("ROLLBACK").await;
                }
                for job in group {
                    let detail = if unknown {
                        format!(
                            "{reason}; the connection was lost while committing, so the append \
                             may or may not be recorded: retry it with the same event ids"
                        )
                    } else {
                        format!("{reason}; nothing was written")
                    };
                    let _ = job.reply.send(Err(StoreError::backend(
                        BACKEND,
                        format!("appending ({url})"),
                        detail,
                    )));
                }
            }
        }
    }
}

/// Each named stream's last version and event type (`$1`: the names).
pub(crate) const STATES_SQL: &str = "SELECT s.stream, l.version, l.event_type \
     FROM unnest($1::text[]) AS s(stream) \
     LEFT JOIN LATERAL (SELECT version, event_type FROM events e \
         WHERE e.stream = s.stream ORDER BY version DESC LIMIT 1) l ON true";

/// Where each of the ids `$1` is recorded.
pub(crate) const RECORDED_IDS_SQL: &str =
    "SELECT event_id, stream, version, position FROM events WHERE event_id = ANY($1::uuid[])";

async fn prepare(client: &Client, url: &PostgresUrl) -> Result<Statements, StoreError> {
    let error = |e: tokio_postgres::Error| store_error(url, "preparing the append statements", &e);
    Ok(Statements {
        states: client.prepare(STATES_SQL).await.map_err(error)?,
        recorded_ids: client.prepare(RECORDED_IDS_SQL).await.map_err(error)?,
        insert: client
            .prepare(
                "INSERT INTO events (position, stream, version, event_id, event_type, \
                 schema_version, payload, metadata, recorded_at) \
                 SELECT p, st, v, i, t, s, pl::json, m::json, r FROM UNNEST(\
                 $1::text[], $2::bigint[], $3::bigint[], $4::uuid[], $5::text[], $6::bigint[], \
                 $7::text[], $8::text[], $9::timestamptz[]) AS u(st, p, v, i, t, s, pl, m, r)",
            )
            .await
            .map_err(error)?,
        advance: client
            .prepare(
                "WITH moved AS (UPDATE head SET position = $1 RETURNING position) \
                 SELECT pg_notify($2, position::text) FROM moved",
            )
            .await
            .map_err(error)?,
    })
}

/// One group in one transaction: each job's result, and the new head if
/// events were written.
///
/// The whole group is decided and written with a constant number of
/// statements ([`run_batched`]). When one of them fails (the server refuses
/// a row, say) the group is rolled back and run again append by append,
/// each in its own savepoint, so that only the append at fault fails.
async fn run_group(
    client: &Client,
    statements: &Statements,
    url: &PostgresUrl,
    group: &[Job],
    pause: Option<Duration>,
) -> Result<(Vec<Result<AppendOutcome, StoreError>>, Option<Position>), Lost> {
    let lost = |doing: &'static str| {
        move |e: tokio_postgres::Error| Lost::RolledBack(store_error(url, doing, &e))
    };
    let works: Vec<&Work> = group.iter().map(|job| &job.work).collect();
    // Without a pause (the fault tests' only), COMMIT is sent with the
    // insert: one round trip fewer per group.
    let start = if pause.is_none() {
        Start::BeginAndCommit
    } else {
        Start::Begin
    };
    let error = match run_batched(client, statements, url, &works, start).await {
        Ok((results, start, head)) if pause.is_none() => {
            return Ok((results, (head > start).then_some(head)));
        }
        Ok((results, start, head)) => {
            return finish(client, statements, url, results, (start, head, true), pause).await;
        }
        Err(Batch::Lost(lost)) => return Err(lost),
        Err(Batch::Failed(error)) => error,
    };
    if works.len() == 1 {
        return Err(Lost::RolledBack(store_error(url, "appending", &error)));
    }
    client
        .batch_execute("ROLLBACK")
        .await
        .map_err(lost("rolling back"))?;
    let start = begin(client, url).await?;
    let mut head = start;
    let mut results = Vec::with_capacity(works.len());
    for work in works {
        client
            .batch_execute("SAVEPOINT job")
            .await
            .map_err(lost("opening a savepoint"))?;
        match run_batched(client, statements, url, &[work], Start::After(head)).await {
            Ok((mut result, _, moved)) => {
                client
                    .batch_execute("RELEASE job")
                    .await
                    .map_err(lost("releasing a savepoint"))?;
                head = moved;
                results.push(result.remove(0));
            }
            Err(Batch::Lost(lost)) => return Err(lost),
            Err(Batch::Failed(error)) => {
                client
                    .batch_execute("ROLLBACK TO job; RELEASE job")
                    .await
                    .map_err(lost("rolling back to a savepoint"))?;
                results.push(Err(store_error(url, "appending", &error)));
            }
        }
    }
    finish(
        client,
        statements,
        url,
        results,
        (start, head, false),
        pause,
    )
    .await
}

/// Where [`run_batched`] starts and ends: with the group's BEGIN and head
/// lock (sent together with its lookups), leaving the transaction open or
/// sending COMMIT with the insert; or after `head` inside a transaction.
#[derive(Clone, Copy)]
enum Start {
    Begin,
    BeginAndCommit,
    After(Position),
}

/// Why [`run_batched`] did not finish.
enum Batch {
    /// The transaction could not begin.
    Lost(Lost),
    /// A statement failed: the caller rolls back.
    Failed(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for Batch {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Failed(error)
    }
}

/// Opens the group's transaction and takes the head row lock: the last
/// position taken.
async fn begin(client: &Client, url: &PostgresUrl) -> Result<Position, Lost> {
    let begun = client
        .simple_query("BEGIN; SELECT position FROM head FOR UPDATE")
        .await
        .map_err(|e| Lost::RolledBack(store_error(url, "beginning a transaction", &e)))?;
    begun
        .iter()
        .find_map(|message| match message {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0)?.parse().ok(),
            _ => None,
        })
        .ok_or_else(|| Lost::RolledBack(corrupt(url, "head", "its row", "the head row is missing")))
}

/// Moves the head (announcing it) when events were written, unless that
/// was done already (`advanced`), and commits.
async fn finish(
    client: &Client,
    statements: &Statements,
    url: &PostgresUrl,
    results: Vec<Result<AppendOutcome, StoreError>>,
    (start, head, advanced): (Position, Position, bool),
    pause: Option<Duration>,
) -> Result<(Vec<Result<AppendOutcome, StoreError>>, Option<Position>), Lost> {
    if head > start && !advanced {
        client
            .execute(&statements.advance, &[&sql_int(head), &url.channel()])
            .await
            .map_err(|e| Lost::RolledBack(store_error(url, "advancing the head", &e)))?;
    }
    if let Some(pause) = pause {
        tokio::time::sleep(pause).await;
    }
    client
        .batch_execute("COMMIT")
        .await
        .map_err(|e| Lost::Unknown(store_error(url, "committing", &e)))?;
    Ok((results, (head > start).then_some(head)))
}

/// Where an id is recorded: stream, version, position.
type Recorded = HashMap<Uuid, (String, Version, Position)>;

/// Appends and deletions decided and written with a constant number of
/// statements, after `head`: the state of every stream named and where
/// each id of the batches is recorded are read with two statements (sent
/// together), each append is decided in order by
/// [`append::decide_append`] against those facts as the earlier appends of
/// the group left them, and the events of every accepted append are
/// inserted with one statement.
///
/// # Errors
/// A statement's error: the caller rolls back.
///
/// With [`Start::Begin`] the round trips are three whatever the group's
/// size: BEGIN with the head lock and both lookups are sent together (the
/// server runs them in order, so the lookups see everything committed
/// before the lock was granted), then the insert with the head's update,
/// then COMMIT (by [`finish`]). Returns the results, the head it started
/// after and the head it leaves.
async fn run_batched(
    client: &Client,
    statements: &Statements,
    url: &PostgresUrl,
    works: &[&Work],
    start: Start,
) -> Result<(Vec<Result<AppendOutcome, StoreError>>, Position, Position), Batch> {
    let mut names: Vec<&str> = works
        .iter()
        .map(|work| match work {
            Work::Append { stream, .. } | Work::Delete { stream, .. } => stream.as_str(),
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    let ids: Vec<Uuid> = works
        .iter()
        .flat_map(|work| match work {
            Work::Append { events, .. } => events.iter().map(|e| e.id.0).collect(),
            Work::Delete { .. } => Vec::new(),
        })
        .collect();
    // Sent together: the client pipelines them on the connection.
    let (names_param, ids_param): ([&(dyn ToSql + Sync); 1], [&(dyn ToSql + Sync); 1]) =
        ([&names], [&ids]);
    let lookups = async {
        tokio::try_join!(
            client.query(&statements.states, &names_param),
            client.query(&statements.recorded_ids, &ids_param),
        )
    };
    let (first, (state_rows, id_rows)) = match start {
        Start::Begin | Start::BeginAndCommit => {
            let (begun, looked) = tokio::join!(begin(client, url), lookups);
            (begun.map_err(Batch::Lost)?, looked?)
        }
        Start::After(head) => (head, lookups.await?),
    };
    let mut head = first;
    // Each stream's state as the group's appends leave it.
    let mut states: HashMap<String, StreamState> = HashMap::new();
    for row in &state_rows {
        let stream: String = row.try_get(0)?;
        let version: Option<i64> = row.try_get(1)?;
        let last_type: Option<&str> = row.try_get(2)?;
        states.insert(
            stream,
            StreamState {
                version: version.and_then(unsigned).filter(|v| *v > 0),
                deleted: last_type.is_some_and(append::is_tombstone),
            },
        );
    }
    let mut recorded: Recorded = HashMap::new();
    for row in &id_rows {
        let id: Uuid = row.try_get(0)?;
        let stream: String = row.try_get(1)?;
        let version: i64 = row.try_get(2)?;
        let position: i64 = row.try_get(3)?;
        recorded.insert(
            id,
            (
                stream,
                unsigned(version).unwrap_or(0),
                unsigned(position).unwrap_or(0),
            ),
        );
    }
    let mut rows = Rows::default();
    let mut results = Vec::with_capacity(works.len());
    for work in works {
        let (stream, batch, plan) = match work {
            Work::Append {
                stream,
                expected,
                events,
            } => {
                let state = states.get(stream.as_str()).copied().unwrap_or_default();
                let decision = append::decide_append(
                    stream,
                    *expected,
                    events,
                    state,
                    IdCheck::Lookup,
                    |id| locate(url, &recorded, stream, id),
                );
                match decision {
                    Ok(AppendDecision::Write(plan)) => (stream, events.clone(), plan),
                    Ok(AppendDecision::Done(outcome)) => {
                        results.push(Ok(outcome));
                        continue;
                    }
                    Err(error) => {
                        results.push(Err(error));
                        continue;
                    }
                }
            }
            Work::Delete { stream, expected } => {
                let state = states.get(stream.as_str()).copied().unwrap_or_default();
                match append::decide_delete(stream, *expected, state) {
                    Ok(plan) => (stream, vec![append::tombstone()], plan),
                    Err(error) => {
                        results.push(Err(error));
                        continue;
                    }
                }
            }
        };
        match stage(&mut rows, stream, &batch, plan, head) {
            Ok(outcome) => {
                for (i, event) in batch.iter().enumerate() {
                    recorded.insert(
                        event.id.0,
                        (
                            stream.as_str().to_owned(),
                            plan.first_version + i as Version,
                            head + 1 + i as Position,
                        ),
                    );
                }
                head += batch.len() as Position;
                states.insert(
                    stream.as_str().to_owned(),
                    StreamState {
                        version: outcome.stream_version,
                        deleted: matches!(work, Work::Delete { .. }),
                    },
                );
                results.push(Ok(outcome));
            }
            Err(error) => results.push(Err(error)),
        }
    }
    let channel = url.channel();
    let head_param = sql_int(head);
    let advance_params: [&(dyn ToSql + Sync); 2] = [&head_param, &channel];
    // Sent together with the insert (the server runs them in order); when
    // nothing was accepted there is nothing to move.
    let advance = async {
        if head > first {
            client
                .execute(&statements.advance, &advance_params)
                .await
                .map(drop)
        } else {
            Ok(())
        }
    };
    match start {
        Start::Begin => {
            let (flushed, advanced) = tokio::join!(flush(client, statements, &mut rows), advance);
            flushed?;
            advanced?;
        }
        Start::BeginAndCommit => {
            let (flushed, advanced, committed) = tokio::join!(
                flush(client, statements, &mut rows),
                advance,
                client.batch_execute("COMMIT"),
            );
            match (flushed.and(advanced), committed) {
                (Ok(()), Ok(())) => {}
                // A statement failed, so the server ended the transaction
                // at COMMIT with a rollback: nothing was written.
                (Err(error), Ok(())) => return Err(Batch::Failed(error)),
                // No answer to COMMIT (a lost connection, say): the
                // outcome is unknown.
                (_, Err(error)) => {
                    return Err(Batch::Lost(Lost::Unknown(store_error(
                        url,
                        "committing",
                        &error,
                    ))));
                }
            }
        }
        Start::After(_) => flush(client, statements, &mut rows).await?,
    }
    Ok((results, first, head))
}

/// Where `id` is recorded, for [`append::decide_append`], from the facts of
/// the group.
fn locate(
    url: &PostgresUrl,
    recorded: &Recorded,
    stream: &StreamId,
    id: &EventId,
) -> Result<Option<RecordedAt>, StoreError> {
    let Some((owner, version, position)) = recorded.get(&id.0) else {
        return Ok(None);
    };
    if owner == stream.as_str() {
        return Ok(Some(RecordedAt::ThisStream {
            version: *version,
            position: *position,
        }));
    }
    StreamId::new(owner.as_str())
        .map(|owner| Some(RecordedAt::OtherStream(owner)))
        .map_err(|e| corrupt(url, "events", &format!("event id {id}"), e.to_string()))
}

/// Event rows waiting to be inserted with one statement.
#[derive(Default)]
struct Rows {
    streams: Vec<String>,
    positions: Vec<i64>,
    versions: Vec<i64>,
    ids: Vec<Uuid>,
    types: Vec<String>,
    schema_versions: Vec<i64>,
    payloads: Vec<String>,
    metadata: Vec<Option<String>>,
    recorded_at: Vec<DateTime<Utc>>,
}

/// Stages `events` at the versions `plan` gives and the positions after
/// `head`; nothing is staged when an event is unusable.
fn stage(
    rows: &mut Rows,
    stream: &StreamId,
    events: &[NewEvent],
    plan: WritePlan,
    head: Position,
) -> Result<AppendOutcome, StoreError> {
    let mut payloads = Vec::with_capacity(events.len());
    let mut metadata = Vec::with_capacity(events.len());
    for (index, event) in events.iter().enumerate() {
        let payload = std::str::from_utf8(event.payload.as_bytes()).map_err(|error| {
            StoreError::InvalidEvent {
                index,
                reason: format!("payload is not UTF-8 JSON: {error}"),
            }
        })?;
        payloads.push(payload.to_owned());
        metadata.push(encode_metadata(&event.metadata, index)?);
    }
    let count = events.len() as u64;
    let now = timestamp_now();
    rows.streams.extend(std::iter::repeat_n(
        stream.as_str().to_owned(),
        events.len(),
    ));
    rows.positions
        .extend((1..=count).map(|i| sql_int(head + i)));
    rows.versions
        .extend((0..count).map(|i| sql_int(plan.first_version + i)));
    rows.ids.extend(events.iter().map(|e| e.id.0));
    rows.types
        .extend(events.iter().map(|e| e.event_type.clone()));
    rows.schema_versions
        .extend(events.iter().map(|e| i64::from(e.schema_version)));
    rows.payloads.extend(payloads);
    rows.metadata.extend(metadata);
    rows.recorded_at.extend(
        events
            .iter()
            .map(|e| e.recorded_at.map_or(now, |at| at.trunc_subsecs(6))),
    );
    Ok(plan.outcome(head + 1))
}

/// Inserts the staged rows with one statement, and empties `rows`.
async fn flush(
    client: &Client,
    statements: &Statements,
    rows: &mut Rows,
) -> Result<(), tokio_postgres::Error> {
    if rows.ids.is_empty() {
        return Ok(());
    }
    let rows = std::mem::take(rows);
    client
        .execute(
            &statements.insert,
            &[
                &rows.streams,
                &rows.positions,
                &rows.versions,
                &rows.ids,
                &rows.types,
                &rows.schema_versions,
                &rows.payloads,
                &rows.metadata,
                &rows.recorded_at,
            ],
        )
        .await
        .map(drop)
}
