//! [`FileStore`]: opening a store directory (lock, recovery, writer) and
//! handing out its four stores, which share one writer.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use logbook_ports::{StoreError, Stores};
use tokio::sync::watch;

use crate::checkpoints::{self, Checkpoints, FileCheckpointStore};
use crate::event_store::{FileEventStore, Shared};
use crate::format::{PROJECTIONS_DIR, SEGMENT_HEADER_LEN, SNAPSHOTS_DIR};
use crate::index::SegmentRef;
use crate::lock::{self, DirLock};
use crate::options::FileOptions;
use crate::projections::FileProjectionStore;
use crate::recovery::{self, Mode, Sidecars, Tail, TornTail};
use crate::retention::{self, Retentions};
use crate::segment;
use crate::snapshots::FileSnapshotStore;
use crate::subject_keys::{self, FileSubjectKeyStore, SubjectKeys};
use crate::writer::Writer;

/// What opening the store found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Segment files.
    pub segments: usize,
    /// Events in the log.
    pub events: u64,
    /// Streams with at least one event.
    pub streams: usize,
    /// Bytes of the log.
    pub bytes: u64,
    /// The torn tail cut off (or, read-only, ignored), if there was one.
    pub torn_tail: Option<TornTail>,
    /// Leftover temporary files removed.
    pub removed_temp_files: Vec<PathBuf>,
    /// Sealed segments read through their index sidecar (not scanned).
    pub sidecars_read: usize,
    /// Index sidecars that were missing, damaged or did not match their
    /// segment: each segment was scanned instead and, by an open for
    /// writing, its sidecar written again (a read-only open leaves them).
    /// Derived files only, so [`RecoveryReport::is_clean`] does not count
    /// them.
    pub sidecars_rebuilt: Vec<PathBuf>,
    /// How long the scan and index rebuild took.
    pub elapsed: Duration,
}

impl RecoveryReport {
    /// True when opening changed nothing on disk.
    pub fn is_clean(&self) -> bool {
        self.torn_tail.is_none() && self.removed_temp_files.is_empty()
    }
}

impl fmt::Display for RecoveryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} events in {} streams, {} segments ({} bytes), opened in {:.0?}",
            self.events, self.streams, self.segments, self.bytes, self.elapsed
        )?;
        if let Some(torn) = &self.torn_tail {
            write!(f, "; {torn}")?;
        }
        for path in &self.removed_temp_files {
            write!(f, "; removed unfinished temporary file {}", path.display())?;
        }
        for path in &self.sidecars_rebuilt {
            write!(
                f,
                "; index sidecar {} not used, segment scanned",
                path.display()
            )?;
        }
        Ok(())
    }
}

/// Everything one open store owns. Dropped when the last store handle
/// goes: the writer stops (answering what is queued, syncing what it
/// wrote), then the directory lock is released.
pub struct Core {
    // Field order matters: the writer stops before the lock is released.
    writer: Option<Writer>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) checkpoints: Mutex<Checkpoints>,
    /// Every stream's retention state, read on open.
    pub(crate) retention: Mutex<Retentions>,
    /// Held by a scavenge, so two never rewrite one segment at once.
    pub(crate) scavenge_lock: Mutex<()>,
    pub(crate) subject_keys: Mutex<SubjectKeys>,
    pub(crate) snapshot_lock: Mutex<()>,
    pub(crate) projection_lock: Mutex<()>,
    recovery: RecoveryReport,
    /// For a store opened read-only: where its view of the log ends, so
    /// reads can take in what another process's writer commits.
    follower: Option<Mutex<Option<Tail>>>,
    _lock: Option<DirLock>,
}

impl Core {
    /// The writer, or the error of a read-only store.
    pub(crate) fn writer(&self) -> Result<&Writer, StoreError> {
        self.writer.as_ref().ok_or_else(read_only)
    }

    /// Fails for a read-only store.
    pub(crate) fn check_writable(&self) -> Result<(), StoreError> {
        self.writer().map(|_| ())
    }

    /// True for a store opened read-only, whose reads take in another
    /// process's commits with [`Core::catch_up`].
    pub(crate) fn is_following(&self) -> bool {
        self.follower.is_some()
    }

    /// On a store opened read-only, reads what another process's writer
    /// committed since the last call (a `stat` when nothing was) and
    /// signals the new head; nothing on a store that writes, whose own
    /// writer keeps the index. Blocks while it reads.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] naming the file and offset of damage in what
    /// was written meanwhile; [`StoreError::Io`] when a segment cannot be
    /// read.
    pub(crate) fn catch_up(&self) -> Result<(), StoreError> {
        let Some(follower) = &self.follower else {
            return Ok(());
        };
        let mut tail = follower.lock().unwrap_or_else(PoisonError::into_inner);
        let (found, head) = {
            let mut index = self
                .shared
                .index
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            let before = index.committed();
            let found = recovery::follow(&self.shared.dir, &mut index, &mut tail)?;
            let head = index.committed();
            (found, (head != before).then_some(head))
        };
        if let Some(head) = head {
            self.shared.commits.send_replace(head);
        }
        match found {
            Some(corruption) => Err(corruption.to_error()),
            None => Ok(()),
        }
    }
}

fn read_only() -> StoreError {
    StoreError::io(
        "write to the file store",
        std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "the store was opened read-only",
        ),
    )
}

/// A store in a directory: segment files of framed, checksummed event
/// records, snapshot files, read models' document files and a checkpoints
/// file.
///
/// ```no_run
/// use logbook_adapters_file::{Durability, FileOptions, FileStore};
///
/// let store = FileStore::open("data", FileOptions::new().durability(Durability::Always))?;
/// println!("{}", store.recovery_report());
/// let stores = store.stores();
/// # Ok::<(), logbook_ports::StoreError>(())
/// ```
#[derive(Clone)]
pub struct FileStore {
    core: Arc<Core>,
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("dir", &self.core.shared.dir)
            .field("read_only", &self.core.writer.is_none())
            .finish_non_exhaustive()
    }
}

impl FileStore {
    /// Opens (creating it if missing) the store in `dir` for reading and
    /// writing: takes the directory's exclusive lock, scans the log to
    /// rebuild the index, cuts a torn tail left by a crash (with a
    /// `tracing` warning and an entry in [`FileStore::recovery_report`]),
    /// and starts the writer.
    ///
    /// Blocks while it scans; call it before serving requests, or from a
    /// blocking thread.
    ///
    /// # Errors
    /// - [`StoreError::Locked`] when another process has the store open for
    ///   writing;
    /// - [`StoreError::Corrupt`] naming the file and offset of damage that
    ///   is not a torn tail (nothing is skipped or dropped);
    /// - [`StoreError::IncompatibleFormat`] for a store written by a newer
    ///   format;
    /// - [`StoreError::Io`] for file-system failures.
    pub fn open(dir: impl AsRef<Path>, options: FileOptions) -> Result<Self, StoreError> {
        let dir = dir.as_ref();
        if let Some(kind) = logbook_ports::paths::not_a_regular_file(dir).filter(|_| !dir.is_dir())
        {
            return Err(StoreError::io(
                format!("cannot open file store {}", dir.display()),
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("it is {kind}, not a directory"),
                ),
            ));
        }
        for sub in [SNAPSHOTS_DIR, PROJECTIONS_DIR] {
            let sub = dir.join(sub);
            std::fs::create_dir_all(&sub).map_err(|e| {
                StoreError::io(
                    format!("cannot create file store {}", dir.display()),
                    std::io::Error::new(
                        e.kind(),
                        logbook_ports::paths::describe_create_error(&sub, &e),
                    ),
                )
            })?;
        }
        let lock = lock::acquire(dir)?;
        let started = Instant::now();
        let scan = recovery::scan(dir, Mode::Repair, Sidecars::Use)?;
        if let Some(corruption) = &scan.corruption {
            return Err(corruption.to_error());
        }
        let checkpoints = checkpoints::load(dir)?;
        let retention = retention::load(dir)?;
        let keys = subject_keys::load(dir)?;
        let mut index = scan.index;
        index.repair_sidecars();
        let (path, file, len) = match scan.last_segment {
            Some((path, len)) => {
                let file = segment::open_for_append(&path)?;
                (path, file, len)
            }
            None => {
                let first = index.head() + 1;
                let (path, file) = segment::create(dir, first)?;
                index.segments.push(SegmentRef {
                    first_position: first,
                    path: Arc::from(path.as_path()),
                    file: Arc::new(segment::open_for_read(&path)?),
                });
                (path, file, SEGMENT_HEADER_LEN as u64)
            }
        };
        index.commit();
        let recovery = RecoveryReport {
            segments: index.segments.len(),
            events: index.head(),
            streams: index.stream_count(),
            bytes: scan.bytes,
            torn_tail: scan.torn,
            removed_temp_files: scan.removed,
            sidecars_read: scan.sidecars_read,
            sidecars_rebuilt: scan.sidecars_rebuilt,
            elapsed: started.elapsed(),
        };
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            commits: watch::Sender::new(index.head()),
            index: RwLock::new(index),
        });
        let writer = Writer::start(
            Arc::clone(&shared),
            path,
            file,
            len,
            options.durability,
            options.effective_segment_size(),
        )?;
        Ok(Self {
            core: Arc::new(Core {
                writer: Some(writer),
                shared,
                checkpoints: Mutex::new(checkpoints),
                retention: Mutex::new(retention),
                scavenge_lock: Mutex::new(()),
                subject_keys: Mutex::new(keys),
                snapshot_lock: Mutex::new(()),
                projection_lock: Mutex::new(()),
                recovery,
                follower: None,
                _lock: Some(lock),
            }),
        })
    }

    /// Opens the store in `dir` for reading only, without the lock, so it
    /// works while another process writes, and never makes a writer wait.
    /// Its reads take in what that process commits meanwhile (each read
    /// re-checks the end of the log, a `stat` when nothing was written), and
    /// its commit signal tells subscribers; a batch still being written (a
    /// torn tail) is left alone until it is whole. Appends and saves fail.
    ///
    /// # Errors
    /// As [`FileStore::open`], except [`StoreError::Locked`]; and
    /// [`StoreError::Io`] when `dir` does not exist.
    pub fn open_read_only(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            let why = logbook_ports::paths::unreachable_parent(&dir.join(SNAPSHOTS_DIR))
                .unwrap_or_else(|| "no such directory".to_owned());
            return Err(StoreError::io(
                format!("cannot open file store {}", dir.display()),
                std::io::Error::new(std::io::ErrorKind::NotFound, why),
            ));
        }
        let started = Instant::now();
        let scan = recovery::scan(dir, Mode::ReadOnly, Sidecars::Use)?;
        if let Some(corruption) = &scan.corruption {
            return Err(corruption.to_error());
        }
        let checkpoints = checkpoints::load(dir)?;
        let retention = retention::load(dir)?;
        let keys = subject_keys::load(dir)?;
        let tail = Tail::of(&scan);
        let mut index = scan.index;
        index.commit();
        let recovery = RecoveryReport {
            segments: index.segments.len(),
            events: index.head(),
            streams: index.stream_count(),
            bytes: scan.bytes,
            torn_tail: scan.torn,
            removed_temp_files: Vec::new(),
            sidecars_read: scan.sidecars_read,
            sidecars_rebuilt: scan.sidecars_rebuilt,
            elapsed: started.elapsed(),
        };
        Ok(Self {
            core: Arc::new(Core {
                writer: None,
                shared: Arc::new(Shared {
                    dir: dir.to_path_buf(),
                    commits: watch::Sender::new(index.head()),
                    index: RwLock::new(index),
                }),
                checkpoints: Mutex::new(checkpoints),
                retention: Mutex::new(retention),
                scavenge_lock: Mutex::new(()),
                subject_keys: Mutex::new(keys),
                snapshot_lock: Mutex::new(()),
                projection_lock: Mutex::new(()),
                recovery,
                follower: Some(Mutex::new(tail)),
                _lock: None,
            }),
        })
    }

    /// The events, snapshots, projections and checkpoints of this store, sharing one
    /// writer. The store closes (writer stopped, lock released) when the
    /// last handle, this one included, is dropped.
    pub fn stores(&self) -> Stores {
        Stores {
            events: Arc::new(self.events()),
            snapshots: Arc::new(FileSnapshotStore::new(Arc::clone(&self.core))),
            projections: Arc::new(FileProjectionStore::new(Arc::clone(&self.core))),
            checkpoints: Arc::new(FileCheckpointStore::new(Arc::clone(&self.core))),
            subject_keys: Arc::new(FileSubjectKeyStore::new(Arc::clone(&self.core))),
        }
    }

    /// The event store alone.
    pub fn events(&self) -> FileEventStore {
        FileEventStore::new(Arc::clone(&self.core))
    }

    /// What opening found and did: counts, and the torn tail cut, if any.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.core.recovery
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.core.shared.dir
    }

    /// True when opened with [`FileStore::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.core.writer.is_none()
    }
}
