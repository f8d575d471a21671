//! The writer: one thread that owns the open segment and applies every
//! append, so the check and the write are one step and the log has one
//! order.
//!
//! Appenders queue requests; the thread takes every request waiting (a
//! *group*), checks each against the index, encodes the accepted batches
//! into one buffer, writes it with one call, and (under
//! [`Durability::Always`]) fsyncs once for the whole group before
//! publishing the new head and answering. Appenders that arrive during an
//! fsync form the next group: group commit.
//!
//! Under [`Durability::Always`] the open segment is *preallocated*: the
//! writer extends it with zeros a few MiB ahead of the log's end, so a write
//! lands in blocks that already
//! exist inside the file's size, and the fsync that follows has only data to
//! flush, not a size change or a block allocation to commit through the file
//! system's journal. Recovery reads the zero-filled tail as free space; the
//! writer trims it when the segment is closed (on roll and on close).
//!
//! Under [`Durability::Interval`] and [`Durability::Never`] a second thread,
//! the *flusher*, runs the `fdatasync`s that are not part of an
//! acknowledgement: the periodic one of `Interval`, and one every
//! [`FLUSH_EVERY`] bytes written, so the disk writes the log while the
//! writer goes on appending and a segment roll (which must fsync the whole
//! segment before the next one exists) finds little left to flush.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use logbook_domain::{NewEvent, StreamId};
use logbook_ports::append::{self, AppendDecision, IdCheck};
use logbook_ports::event_store::timestamp_now;
use logbook_ports::{AppendOutcome, ExpectedVersion, StoreError};
use tokio::sync::oneshot;

use crate::durable::MarkWriter;
use crate::event_store::Shared;
use crate::format::{self, SEGMENT_HEADER_LEN};
use crate::index::{Entry, Index, MAX_EVENTS, SegmentRef};
use crate::options::Durability;
use crate::record::{self, FLAG_BATCH_END, Record};
use crate::segment;
use crate::sidecar;

/// Most requests in one group.
const MAX_GROUP_REQUESTS: usize = 4096;
/// Most bytes in one group (unless one request alone is larger).
const MAX_GROUP_BYTES: u64 = 16 << 20;
/// A write buffer larger than this is released after use.
const KEEP_BUFFER: usize = 32 << 20;
/// How far ahead of the log's end the open segment is filled with zeros.
const PREALLOCATE: u64 = 4 << 20;
/// Bytes written between two background fsyncs (`Interval`, `Never`).
pub const FLUSH_EVERY: u64 = 8 << 20;
/// How long the writer waits before asking again while the flusher is busy.
const FLUSH_RETRY: Duration = Duration::from_millis(1);
/// Zeros written per call when preallocating.
static ZEROS: [u8; 64 << 10] = [0; 64 << 10];

/// One append, checked by the caller as far as it can be without the store.
pub struct AppendRequest {
    /// The stream.
    pub stream: StreamId,
    /// What the caller expects of it.
    pub expected: ExpectedVersion,
    /// The batch.
    pub events: Vec<NewEvent>,
    /// Each event's metadata as JSON (empty when it has none).
    pub metadata: Vec<Vec<u8>>,
    /// Bytes the batch takes in the log.
    pub frame_bytes: u64,
    /// True for a deletion: the batch is the tombstone, and `expected` is
    /// checked as a deletion's.
    pub delete: bool,
    /// True for no append at all but a request to seal the open segment
    /// (start the next one) if it holds any record, as a scavenge needs:
    /// it rewrites sealed segments only. `events` is empty.
    pub seal: bool,
    /// Where the outcome goes.
    pub reply: oneshot::Sender<Result<AppendOutcome, StoreError>>,
}

/// The handle of the writer thread. Dropping it stops the thread (after
/// it has answered everything queued and synced what it wrote) and waits
/// for it.
pub struct Writer {
    tx: Option<Sender<AppendRequest>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

impl Writer {
    /// Starts the writer on the open segment `path` (handle `file`, valid
    /// length `len`).
    ///
    /// # Errors
    /// [`StoreError::Io`] when the thread cannot be started.
    pub fn start(
        shared: Arc<Shared>,
        path: PathBuf,
        file: File,
        len: u64,
        durability: Durability,
        segment_size: u64,
    ) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel();
        // A preallocated zero tail left by a crash is reused as it is.
        let allocated = file
            .metadata()
            .map_err(|e| StoreError::io(format!("stat {}", path.display()), e))?
            .len()
            .max(len);
        let mark = MarkWriter::open(&shared.dir)?;
        let mut state = WriterThread {
            shared,
            rx,
            path,
            file: Arc::new(file),
            len,
            allocated,
            durability,
            segment_size,
            buf: Vec::new(),
            dirty: false,
            last_sync: Instant::now(),
            unflushed: 0,
            flusher: None,
            failed: None,
            mark,
        };
        if durability != Durability::Always {
            state.flusher = Some(Flusher::start()?);
        }
        let thread = std::thread::Builder::new()
            .name("logbook-file-writer".into())
            .spawn(move || state.run())
            .map_err(|e| StoreError::io("start the file store's writer thread", e))?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queues `request`.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the writer has stopped.
    pub fn send(&self, request: AppendRequest) -> Result<(), StoreError> {
        self.tx
            .as_ref()
            .and_then(|tx| tx.send(request).ok())
            .ok_or_else(stopped)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The error for an append the writer could not take.
pub fn stopped() -> StoreError {
    StoreError::io(
        "append to the file store",
        std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the writer has stopped"),
    )
}

/// The background fsync thread: syncs the file it is handed, one at a
/// time, and keeps the first failure for the writer to pick up.
struct Flusher {
    tx: Option<Sender<(Arc<File>, PathBuf)>>,
    busy: Arc<AtomicBool>,
    error: Arc<Mutex<Option<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    fn start() -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel::<(Arc<File>, PathBuf)>();
        let busy = Arc::new(AtomicBool::new(false));
        let error = Arc::new(Mutex::new(None));
        let thread = {
            let (busy, error) = (Arc::clone(&busy), Arc::clone(&error));
            std::thread::Builder::new()
                .name("logbook-file-flusher".into())
                .spawn(move || {
                    for (file, path) in rx {
                        if let Err(e) = file.sync_data() {
                            tracing::error!(segment = %path.display(), "fsync failed: {e}");
                            error
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .get_or_insert(format!("fsync of {} failed: {e}", path.display()));
                        }
                        busy.store(false, Ordering::Release);
                    }
                })
                .map_err(|e| StoreError::io("start the file store's flusher thread", e))?
        };
        Ok(Self {
            tx: Some(tx),
            busy,
            error,
            thread: Some(thread),
        })
    }

    /// Starts an fsync of `file` unless one is running; true if started.
    fn start_sync(&self, file: &Arc<File>, path: &std::path::Path) -> bool {
        if self.busy.swap(true, Ordering::AcqRel) {
            return false;
        }
        let sent = self
            .tx
            .as_ref()
            .is_some_and(|tx| tx.send((Arc::clone(file), path.to_path_buf())).is_ok());
        if !sent {
            self.busy.store(false, Ordering::Release);
        }
        sent
    }

    /// The first fsync failure, if any.
    fn failure(&self) -> Option<String> {
        self.error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct WriterThread {
    shared: Arc<Shared>,
    rx: Receiver<AppendRequest>,
    path: PathBuf,
    file: Arc<File>,
    /// End of the log in the open segment: where the next write goes.
    len: u64,
    /// Size of the open segment file: `len`, then zeros up to here.
    allocated: u64,
    durability: Durability,
    segment_size: u64,
    buf: Vec<u8>,
    /// Written since the last fsync (or the last one the flusher started).
    dirty: bool,
    last_sync: Instant,
    /// Bytes written since the last fsync was started.
    unflushed: u64,
    /// The background fsync thread (`Interval`, `Never`).
    flusher: Option<Flusher>,
    /// Set when a write or fsync failed: what is on disk is uncertain, so
    /// every later append fails until the store is reopened (and recovered).
    failed: Option<String>,
    /// The durable mark, moved on after every fsync of the open segment.
    mark: MarkWriter,
}

type Reply = oneshot::Sender<Result<AppendOutcome, StoreError>>;

impl WriterThread {
    fn run(mut self) {
        while let Some(first) = self.next_request() {
            if first.seal {
                self.seal(first);
                continue;
            }
            let mut bytes = first.frame_bytes;
            let mut group = vec![first];
            let mut seal = None;
            let cap = MAX_GROUP_BYTES.min(self.segment_size);
            while group.len() < MAX_GROUP_REQUESTS && bytes < cap {
                match self.rx.try_recv() {
                    Ok(request) if request.seal => {
                        seal = Some(request);
                        break;
                    }
                    Ok(request) => {
                        bytes += request.frame_bytes;
                        group.push(request);
                    }
                    Err(_) => break,
                }
            }
            self.commit_group(group, bytes);
            if let Some(request) = seal {
                self.seal(request);
            }
        }
        // Synced even if the flusher started a sync: it may not have ended.
        self.dirty = true;
        if self.failed.is_none()
            && let Err(e) = self.trim()
        {
            tracing::error!("closing the open segment failed: {e}");
        } else if self.dirty
            && let Err(e) = self.file.sync_data()
        {
            tracing::error!(segment = %self.path.display(), "fsync on close failed: {e}");
        }
    }

    /// Cuts the preallocated zeros off the open segment and fsyncs it, so
    /// a closed segment ends with its last record.
    fn trim(&mut self) -> Result<(), StoreError> {
        if self.allocated > self.len {
            self.file
                .set_len(self.len)
                .map_err(|e| StoreError::io(format!("truncate {}", self.path.display()), e))?;
            self.allocated = self.len;
            self.dirty = true;
        }
        if self.dirty {
            self.file
                .sync_data()
                .map_err(|e| StoreError::io(format!("fsync {}", self.path.display()), e))?;
            self.dirty = false;
            self.mark_durable();
        }
        Ok(())
    }

    /// Moves the durable mark to the end of the log in the open segment:
    /// call right after an fsync of it returned.
    fn mark_durable(&self) {
        let first = self
            .path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(format::parse_segment_name);
        if let Some(first) = first {
            self.mark.record(first, self.len);
        }
    }

    /// Makes sure the segment file is at least `end` bytes long, filling it
    /// with zeros up to a chunk ahead (never past the segment size unless
    /// `end` itself is). Preallocation shrinks to what fits: when the disk
    /// (or a file-size limit) refuses the zeros, those written are cut off
    /// again and nothing is preallocated, so the write itself extends the
    /// file and fails only if its own bytes do not fit.
    ///
    /// Only under [`Durability::Always`]: its acknowledgements wait for
    /// the fsync, which preallocation keeps to data. Under the other
    /// policies no appender waits for an fsync, and the zeros would be
    /// copied into the page cache and written to disk once more before the
    /// records overwrite them.
    fn preallocate(&mut self, end: u64) -> std::io::Result<()> {
        if end <= self.allocated {
            return Ok(());
        }
        if self.durability != Durability::Always {
            self.allocated = end;
            return Ok(());
        }
        let target = end.max(
            end.next_multiple_of(PREALLOCATE)
                .min(self.segment_size.max(self.len)),
        );
        let mut at = self.allocated;
        while at < target {
            let n = (target - at).min(ZEROS.len() as u64) as usize;
            if let Err(e) = self.file.write_all_at(&ZEROS[..n], at) {
                if !is_out_of_room(&e) {
                    return Err(e);
                }
                // Give the blocks back: the write needs them more.
                self.file.set_len(self.allocated.max(self.len))?;
                tracing::debug!(
                    segment = %self.path.display(),
                    "no room to preallocate up to {target} bytes ({e}); writing without"
                );
                // The write extends the file to `end` itself.
                self.allocated = end;
                return Ok(());
            }
            at += n as u64;
        }
        self.allocated = target;
        Ok(())
    }

    /// The next request; under [`Durability::Interval`], starts the
    /// background fsync when due while waiting.
    fn next_request(&mut self) -> Option<AppendRequest> {
        loop {
            if let Durability::Interval(interval) = self.durability
                && self.dirty
            {
                let due = self.last_sync + interval;
                let now = Instant::now();
                let wait = if now >= due {
                    if self.background_sync() {
                        continue;
                    }
                    FLUSH_RETRY
                } else {
                    due - now
                };
                match self.rx.recv_timeout(wait) {
                    Ok(request) => return Some(request),
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => return None,
                }
            }
            return self.rx.recv().ok();
        }
    }

    /// Hands an fsync of the open segment to the flusher, unless it is
    /// still busy with the previous one. True if started.
    fn background_sync(&mut self) -> bool {
        let Some(flusher) = &self.flusher else {
            return false;
        };
        if !flusher.start_sync(&self.file, &self.path) {
            return false;
        }
        self.dirty = false;
        self.unflushed = 0;
        self.last_sync = Instant::now();
        true
    }

    /// After a write under `Interval` or `Never`: starts the background
    /// fsync when it is due or enough bytes have piled up.
    fn after_write(&mut self) {
        let due = match self.durability {
            Durability::Always => return,
            Durability::Interval(interval) => self.last_sync + interval <= Instant::now(),
            Durability::Never => false,
        };
        if due || self.unflushed >= FLUSH_EVERY {
            self.background_sync();
        }
    }

    fn commit_group(&mut self, group: Vec<AppendRequest>, bytes: u64) {
        if self.failed.is_none()
            && let Some(reason) = self.flusher.as_ref().and_then(Flusher::failure)
        {
            self.failed = Some(reason);
        }
        if let Some(reason) = &self.failed {
            let reason = reason.clone();
            for request in group {
                let _ = request.reply.send(Err(failed_error(&reason)));
            }
            return;
        }
        let header = SEGMENT_HEADER_LEN as u64;
        if self.len > header
            && self.len + bytes > self.segment_size
            && let Err(e) = self.roll()
        {
            let reason = e.to_string();
            self.failed = Some(reason.clone());
            for request in group {
                let _ = request.reply.send(Err(failed_error(&reason)));
            }
            return;
        }

        let mut outcomes: Vec<(Reply, Result<AppendOutcome, StoreError>)> =
            Vec::with_capacity(group.len());
        // The batches, freed after the appenders are answered, not before.
        let mut spent = Vec::with_capacity(group.len());
        let start_head;
        {
            let shared = Arc::clone(&self.shared);
            {
                // The sealed segments' ids, when a batch may need them, are
                // indexed under the read lock (once), so readers go on
                // meanwhile; an error comes again below, to its appender.
                let index = shared.index();
                for request in &group {
                    let _ = index.index_cold_ids_for(request.events.iter().map(|e| &e.id));
                }
            }
            let mut index = shared.index.write().unwrap_or_else(PoisonError::into_inner);
            start_head = index.head();
            for request in group {
                let result = self.apply(&mut index, &request, start_head + 1);
                outcomes.push((request.reply, result));
                spent.push((request.events, request.metadata));
            }
        }

        if !self.buf.is_empty() {
            let end = self.len + self.buf.len() as u64;
            let mut written = self
                .preallocate(end)
                .and_then(|()| self.file.write_all_at(&self.buf, self.len));
            if written.is_ok() && self.durability == Durability::Always {
                written = self.file.sync_data();
            }
            match written {
                Ok(()) => {
                    self.len += self.buf.len() as u64;
                    if self.durability == Durability::Always {
                        self.last_sync = Instant::now();
                        self.mark_durable();
                    } else {
                        if !self.dirty {
                            self.dirty = true;
                            self.last_sync = Instant::now();
                        }
                        self.unflushed += self.buf.len() as u64;
                    }
                }
                Err(e) => {
                    let reason = write_failure(&self.path, self.buf.len(), &e);
                    // Every caller gets `reason` as its error, once: logging it
                    // too would print the failure twice.
                    tracing::debug!("{reason}");
                    self.shared
                        .index
                        .write()
                        .unwrap_or_else(PoisonError::into_inner)
                        .truncate(start_head);
                    // Cut what may have been written (and the zeros after).
                    let _ = self.file.set_len(self.len);
                    self.allocated = self.len;
                    self.failed = Some(reason.clone());
                    for (_, result) in &mut outcomes {
                        if result.is_ok() {
                            // This write failed: say so, not "an earlier" one.
                            *result = Err(StoreError::io(
                                "append to the file store",
                                std::io::Error::new(e.kind(), reason.clone()),
                            ));
                        }
                    }
                }
            }
            self.buf.clear();
            if self.buf.capacity() > KEEP_BUFFER {
                self.buf = Vec::new();
            }
            if self.failed.is_none() {
                self.after_write();
            }
        }

        let head = {
            let mut index = self
                .shared
                .index
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            index.commit();
            index.committed()
        };
        if head != start_head {
            self.shared.commits.send_replace(head);
        }
        for (reply, result) in outcomes {
            let _ = reply.send(result);
        }
        drop(spent);
    }

    /// Decides one request (`ports::append`) from what the index knows and,
    /// if it is to be written, indexes its events and encodes them into the
    /// buffer.
    fn apply(
        &mut self,
        index: &mut Index,
        request: &AppendRequest,
        write_start: u64,
    ) -> Result<AppendOutcome, StoreError> {
        let AppendRequest {
            stream,
            expected,
            events,
            metadata,
            delete,
            ..
        } = request;
        let number = index.stream_number(stream.as_str());
        let state = index.stream_state(number);
        let plan = if *delete {
            append::decide_delete(stream, *expected, state)?
        } else {
            index.index_cold_ids_for(events.iter().map(|event| &event.id))?;
            let decision =
                append::decide_append(stream, *expected, events, state, IdCheck::Lookup, |id| {
                    index.locate(number, id)
                })?;
            match decision {
                AppendDecision::Write(plan) => plan,
                AppendDecision::Done(outcome) => return Ok(outcome),
            }
        };
        if index.head() + events.len() as u64 > MAX_EVENTS {
            return Err(StoreError::InvalidEvent {
                index: 0,
                reason: format!("the file store holds at most {MAX_EVENTS} events"),
            });
        }

        let stream_number = index.intern_stream_id(stream);
        let now = timestamp_now();
        let first_position = index.head() + 1;
        let mut last_type: Option<(&str, u32)> = None;
        for (i, (event, metadata)) in events.iter().zip(metadata).enumerate() {
            let offset = self.len + self.buf.len() as u64;
            let event_type = match last_type {
                Some((name, number)) if name == event.event_type => number,
                _ => {
                    let number = index.types.intern(&event.event_type);
                    last_type = Some((&event.event_type, number));
                    number
                }
            };
            let (position, version) = index.push(Entry {
                id: event.id,
                offset: u32::try_from(offset).expect("segments stay under 4 GiB"),
                stream: stream_number,
                event_type,
            });
            record::encode(
                &Record {
                    flags: if i + 1 == events.len() {
                        FLAG_BATCH_END
                    } else {
                        0
                    },
                    position,
                    version,
                    id: event.id,
                    recorded_at_micros: event.recorded_at.unwrap_or(now).timestamp_micros(),
                    schema_version: event.schema_version,
                    write_index: u32::try_from(position - write_start).unwrap_or(u32::MAX),
                    stream: stream.as_str(),
                    event_type: &event.event_type,
                    metadata,
                    payload: event.payload.as_bytes(),
                },
                &mut self.buf,
            );
            debug_assert_eq!(version, plan.first_version + i as u64);
        }
        Ok(plan.outcome(first_position))
    }

    /// Answers a seal request: rolls to a new segment when the open one
    /// holds a record.
    fn seal(&mut self, request: AppendRequest) {
        let result = match &self.failed {
            Some(reason) => Err(failed_error(reason)),
            None if self.len > SEGMENT_HEADER_LEN as u64 => self.roll().inspect_err(|e| {
                self.failed = Some(e.to_string());
            }),
            None => Ok(()),
        };
        let _ = request.reply.send(result.map(|()| AppendOutcome {
            stream_version: None,
            first_position: None,
            last_position: None,
            already_recorded: false,
        }));
    }

    /// Closes the current segment (fsynced, so only the last segment can
    /// ever hold a torn write) and starts the next one.
    fn roll(&mut self) -> Result<(), StoreError> {
        self.dirty = true;
        self.trim()?;
        let dir = self.shared.dir.clone();
        let next = {
            let index = self
                .shared
                .index
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            // The segment is sealed (trimmed, synced): its index sidecar,
            // so the next open need not scan it. Only a shortcut: without
            // it the open scans the segment, so a failure is a warning.
            if let Err(e) = sidecar::write(&index, index.segments.len() - 1, self.len) {
                tracing::warn!(
                    segment = %self.path.display(),
                    "the index sidecar of the sealed segment could not be written: {e}"
                );
            }
            index.head() + 1
        };
        let (path, file) = segment::create(&dir, next)?;
        let read = Arc::new(segment::open_for_read(&path)?);
        self.shared
            .index
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .segments
            .push(SegmentRef {
                first_position: next,
                path: Arc::from(path.as_path()),
                file: read,
            });
        self.path = path;
        self.file = Arc::new(file);
        self.len = SEGMENT_HEADER_LEN as u64;
        self.unflushed = 0;
        self.allocated = self.len;
        Ok(())
    }
}

/// True for the errors of a file that cannot grow: the disk or the user's
/// quota is full, or the process's file-size limit is reached.
fn is_out_of_room(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::StorageFull
            | std::io::ErrorKind::QuotaExceeded
            | std::io::ErrorKind::FileTooLarge
    )
}

/// Why a write of `bytes` bytes to `path` failed, in one line.
fn write_failure(path: &std::path::Path, bytes: usize, error: &std::io::Error) -> String {
    if is_out_of_room(error) {
        format!(
            "no room for the {bytes} bytes of this append in {}: the disk, the quota or the file-size limit is full",
            path.display()
        )
    } else {
        format!(
            "write to {} failed: {}",
            path.display(),
            logbook_ports::paths::describe_io_error(path, error)
        )
    }
}

fn failed_error(reason: &str) -> StoreError {
    StoreError::io(
        "append to the file store",
        std::io::Error::other(format!(
            "an earlier write failed ({reason}); reopen the store to recover"
        )),
    )
}
