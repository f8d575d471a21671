//! The one writer of a store: a dedicated thread that owns the write
//! connection and commits queued writes in groups.
//!
//! **Group commit.** Callers queue jobs and await their replies. The thread
//! takes every job waiting in the queue (up to
//! [`SqliteOptions::max_group_events`] events), runs them one after the other
//! inside one `BEGIN IMMEDIATE` transaction, each in its own savepoint (a job
//! that fails is rolled back alone and answers with its own error), commits
//! once, and only then answers every job. Jobs that arrive while a commit is
//! being synced to disk wait in the queue and form the next group, so N
//! concurrent appenders share one fsync instead of paying one each.
//!
//! The thread ends, closing the connection, when the last handle of the
//! store is dropped (the queue's sender goes with it); dropping joins it, so
//! the file is released when the drop returns.
//!
//! **A malformed database stops the writer.** When SQLite reports the file
//! malformed (`SQLITE_CORRUPT`, `SQLITE_NOTADB`) to any write, that write
//! fails with [`StoreError::Corrupt`] naming the file, and every later write
//! of this store is refused with the same error before it begins: nothing
//! more is written into a database that SQLite no longer trusts.
//!
//! A store opened read-only has a writer without a thread, which refuses
//! every write ([`Writer::read_only`]).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use logbook_domain::Position;
use logbook_ports::StoreError;
use rusqlite::Connection;
use tokio::sync::{oneshot, watch};

use crate::error::{GroupFailure, store_error};

/// The longest the writer waits for the callers of its last group to queue
/// their next writes before it commits what it has.
const MAX_GATHER: Duration = Duration::from_millis(1);

/// Answers a job's caller once the transaction is over: with the work's
/// own result, or with the group's failure when the commit did not happen.
type Reply = Box<dyn FnOnce(Option<&GroupFailure>) + Send>;

/// What a job's work left behind.
struct Ran {
    /// False when the work failed: its savepoint is rolled back.
    ok: bool,
    /// The corruption the work met, if it failed on a malformed database.
    corrupt: Option<GroupFailure>,
    /// The last position it wrote, if it appended events.
    head: Option<Position>,
    /// Answers the caller.
    reply: Reply,
}

/// One queued write, whatever its result type.
trait Job: Send {
    /// Events it writes (for the group's size limit).
    fn weight(&self) -> usize;
    /// Does the work inside the group's transaction and savepoint.
    fn run(self: Box<Self>, conn: &Connection) -> Ran;
    /// Answers without running: the group's transaction never began.
    fn fail(self: Box<Self>, failure: &GroupFailure);
}

/// The corruption a failed result reports, as the group's failure.
fn corruption_of<T>(result: &Result<T, StoreError>) -> Option<GroupFailure> {
    match result {
        Err(error @ StoreError::Corrupt { .. }) => Some(GroupFailure::from_error(error)),
        _ => None,
    }
}

struct TypedJob<T, W> {
    weight: usize,
    work: W,
    head: fn(&T) -> Option<Position>,
    reply: oneshot::Sender<Result<T, StoreError>>,
    path: PathBuf,
}

impl<T, W> Job for TypedJob<T, W>
where
    T: Send + 'static,
    W: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
{
    fn weight(&self) -> usize {
        self.weight
    }

    fn run(self: Box<Self>, conn: &Connection) -> Ran {
        let Self {
            work,
            head,
            reply,
            path,
            ..
        } = *self;
        let result = work(conn);
        Ran {
            ok: result.is_ok(),
            corrupt: corruption_of(&result),
            head: result.as_ref().ok().and_then(head),
            reply: Box::new(move |failure| {
                let answer = match (failure, result) {
                    (Some(failure), Ok(_)) => Err(failure.to_store_error(&path)),
                    (_, result) => result,
                };
                // The caller may have gone (its future dropped): nothing to tell.
                let _ = reply.send(answer);
            }),
        }
    }

    fn fail(self: Box<Self>, failure: &GroupFailure) {
        let _ = self.reply.send(Err(failure.to_store_error(&self.path)));
    }
}

/// The writer's handle: queues jobs and owns the thread.
pub(crate) struct Writer {
    queue: Option<mpsc::Sender<Box<dyn Job>>>,
    thread: Option<JoinHandle<()>>,
    path: PathBuf,
    /// True for the writer of a store opened read-only: it has no thread.
    read_only: bool,
}

impl Writer {
    /// Starts the writer thread on `conn`. `commits` is told the head
    /// position after every commit that wrote events.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the thread cannot be started.
    pub(crate) fn start(
        conn: Connection,
        path: &Path,
        max_group_events: usize,
        commits: Arc<watch::Sender<Position>>,
    ) -> Result<Self, StoreError> {
        let (queue, jobs) = mpsc::channel::<Box<dyn Job>>();
        let thread_path = path.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("logbook-sqlite-writer".into())
            .spawn(move || {
                let mut writer = Thread {
                    conn,
                    path: thread_path,
                    max_group_events: max_group_events.max(1),
                    commits,
                    corrupt: None,
                };
                writer.run(&jobs);
            })
            .map_err(|e| {
                StoreError::io(
                    format!("starting the writer thread of {}", path.display()),
                    e,
                )
            })?;
        Ok(Self {
            queue: Some(queue),
            thread: Some(thread),
            path: path.to_path_buf(),
            read_only: false,
        })
    }

    /// The writer of a store opened read-only: no thread, no connection;
    /// every write fails with [`StoreError::Io`] of kind
    /// [`std::io::ErrorKind::PermissionDenied`].
    pub(crate) fn read_only(path: &Path) -> Self {
        Self {
            queue: None,
            thread: None,
            path: path.to_path_buf(),
            read_only: true,
        }
    }

    /// Runs `work` on the write connection inside a group's transaction and
    /// returns its result once that transaction has committed. `weight` is
    /// the number of events it writes; `head` names the last position a
    /// successful result wrote.
    ///
    /// # Errors
    /// The work's own error; or, when the group's transaction could not
    /// begin or commit, [`StoreError::Locked`] or [`StoreError::Backend`]
    /// (then nothing of the work was written).
    pub(crate) async fn run<T, W>(
        &self,
        weight: usize,
        work: W,
        head: fn(&T) -> Option<Position>,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        W: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        if self.read_only {
            return Err(StoreError::io(
                format!("writing to SQLite database {}", self.path.display()),
                std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    "the store was opened read-only",
                ),
            ));
        }
        let (reply, answer) = oneshot::channel::<Result<T, StoreError>>();
        let job = Box::new(TypedJob {
            weight,
            work,
            head,
            reply,
            path: self.path.clone(),
        });
        let stopped = || {
            StoreError::backend(
                crate::error::BACKEND,
                format!("writing to SQLite database {}", self.path.display()),
                "the writer thread has stopped",
            )
        };
        self.queue
            .as_ref()
            .ok_or_else(stopped)?
            .send(job)
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the queue ends the thread after the jobs already queued.
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            // A panicked writer already answered nobody; nothing to add.
            let _ = thread.join();
        }
    }
}

/// The writer thread's state.
struct Thread {
    conn: Connection,
    path: PathBuf,
    max_group_events: usize,
    commits: Arc<watch::Sender<Position>>,
    /// Set once SQLite has reported the database malformed: every later
    /// write is refused with it.
    corrupt: Option<GroupFailure>,
}

impl Thread {
    fn run(&mut self, jobs: &mpsc::Receiver<Box<dyn Job>>) {
        let mut group = VecDeque::new();
        // Callers answered by the last commit, and how long it took.
        let mut answered = 0;
        let mut last_commit = Duration::ZERO;
        // Block for the first job of a group, then take whatever else is
        // already waiting: those arrived while the last commit was syncing.
        while let Ok(first) = jobs.recv() {
            let mut events = first.weight();
            group.push_back(first);
            // The callers just answered are likely to queue their next
            // write at once, but on busy cores they run only after this
            // thread has moved on. Wait for as many jobs as the last group
            // answered, at most as long as that commit took (so a group that
            // does not come back costs at most one commit's time): a few
            // microseconds of waiting buys a group as large as the callers.
            let deadline = Instant::now() + last_commit.min(MAX_GATHER);
            while events < self.max_group_events {
                let next = if group.len() < answered {
                    match deadline.checked_duration_since(Instant::now()) {
                        Some(left) => jobs.recv_timeout(left).ok(),
                        None => jobs.try_recv().ok(),
                    }
                } else {
                    jobs.try_recv().ok()
                };
                let Some(job) = next else { break };
                events += job.weight();
                group.push_back(job);
            }
            answered = group.len();
            let started = Instant::now();
            while !group.is_empty() {
                self.commit_group(&mut group);
            }
            last_commit = started.elapsed();
        }
    }

    fn exec(&self, sql: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut statement| statement.execute([]))
            .map(drop)
            .map_err(|e| store_error(&self.path, "committing a group of writes", e))
    }

    /// Runs jobs from the front of `group` in one transaction. Normally
    /// that is all of them; if the transaction is lost midway (SQLite rolls
    /// back on some I/O errors), the jobs that ran are told so and the rest
    /// stay in `group` for the next transaction.
    fn commit_group(&mut self, group: &mut VecDeque<Box<dyn Job>>) {
        if let Some(failure) = &self.corrupt {
            for job in group.drain(..) {
                job.fail(failure);
            }
            return;
        }
        if let Err(error) = self.exec("BEGIN IMMEDIATE") {
            let failure = GroupFailure::from_error(&error);
            if failure.is_corrupt() {
                self.corrupt = Some(failure.clone());
            }
            for job in group.drain(..) {
                job.fail(&failure);
            }
            return;
        }
        // A job alone in its transaction needs no savepoint: if it fails,
        // rolling the transaction back undoes exactly its work. This spares
        // a lone appender two statements and the savepoint's sub-journal.
        let lone = group.len() == 1;
        let mut done = Vec::with_capacity(group.len());
        let mut head = None;
        let mut lost: Option<GroupFailure> = None;
        let mut lone_failed = false;
        while let Some(job) = group.pop_front() {
            if lone {
                let ran = job.run(&self.conn);
                if ran.ok {
                    head = ran.head;
                } else {
                    lone_failed = true;
                }
                done.push(ran);
                break;
            }
            if let Err(error) = self.exec("SAVEPOINT job") {
                lost = Some(GroupFailure::from_error(&error));
                group.push_front(job);
                break;
            }
            let ran = job.run(&self.conn);
            if self.conn.is_autocommit() {
                // SQLite rolled the whole transaction back.
                lost = Some(GroupFailure::Other(
                    "SQLite rolled the transaction back after an error".into(),
                ));
                done.push(ran);
                break;
            }
            let end = if ran.ok {
                head = ran.head.or(head);
                self.exec("RELEASE job")
            } else {
                self.exec("ROLLBACK TO job")
                    .and_then(|()| self.exec("RELEASE job"))
            };
            done.push(ran);
            if let Err(error) = end {
                lost = Some(GroupFailure::from_error(&error));
                break;
            }
        }
        // A job that met a malformed database: nothing of the group is
        // committed, and the writer stops writing.
        if let Some(failure) = done.iter().find_map(|ran| ran.corrupt.clone()) {
            self.corrupt = Some(failure.clone());
            lost = Some(lost.filter(GroupFailure::is_corrupt).unwrap_or(failure));
        }
        let outcome = match lost {
            Some(failure) => Err(failure),
            // The lone job failed: nothing to commit; it answers with its
            // own error once the transaction is rolled back below.
            None if lone_failed => Ok(false),
            None => self
                .exec("COMMIT")
                .map(|()| true)
                .map_err(|e| GroupFailure::from_error(&e)),
        };
        if let Err(failure) = &outcome
            && failure.is_corrupt()
        {
            self.corrupt = Some(failure.clone());
        }
        if !matches!(outcome, Ok(true)) && !self.conn.is_autocommit() {
            // Best effort: the connection must not stay inside a failed
            // transaction; if even this fails the next BEGIN reports it.
            let _ = self.exec("ROLLBACK");
        }
        match outcome {
            Ok(committed) => {
                if let Some(head) = head.filter(|_| committed) {
                    self.commits.send_replace(head);
                }
                for ran in done {
                    (ran.reply)(None);
                }
            }
            Err(failure) => {
                for ran in done {
                    (ran.reply)(Some(&failure));
                }
            }
        }
    }
}
