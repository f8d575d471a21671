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

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use logbook_domain::Position;
use logbook_ports::StoreError;
use rusqlite::Connection;
use tokio::sync::{oneshot, watch};

use crate::error::{GroupFailure, store_error};

/// Answers a job's caller once the transaction is over: with the work's
/// own result, or with the group's failure when the commit did not happen.
type Reply = Box<dyn FnOnce(Option<&GroupFailure>) + Send>;

/// What a job's work left behind.
struct Ran {
    /// False when the work failed: its savepoint is rolled back.
    ok: bool,
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
        })
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
}

impl Thread {
    fn run(&mut self, jobs: &mpsc::Receiver<Box<dyn Job>>) {
        let mut group = VecDeque::new();
        // Block for the first job of a group, then take whatever else is
        // already waiting: those arrived while the last commit was syncing.
        while let Ok(first) = jobs.recv() {
            let mut events = first.weight();
            group.push_back(first);
            while events < self.max_group_events {
                match jobs.try_recv() {
                    Ok(job) => {
                        events += job.weight();
                        group.push_back(job);
                    }
                    Err(_) => break,
                }
            }
            while !group.is_empty() {
                self.commit_group(&mut group);
            }
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
        if let Err(error) = self.exec("BEGIN IMMEDIATE") {
            let failure = GroupFailure::from_error(&error);
            for job in group.drain(..) {
                job.fail(&failure);
            }
            return;
        }
        let mut done = Vec::with_capacity(group.len());
        let mut head = None;
        let mut lost = None;
        while let Some(job) = group.pop_front() {
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
        let outcome = match lost {
            Some(failure) => Err(failure),
            None => self
                .exec("COMMIT")
                .map_err(|e| GroupFailure::from_error(&e)),
        };
        if outcome.is_err() && !self.conn.is_autocommit() {
            // Best effort: the connection must not stay inside a failed
            // transaction; if even this fails the next BEGIN reports it.
            let _ = self.exec("ROLLBACK");
        }
        match outcome {
            Ok(()) => {
                if let Some(head) = head {
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
