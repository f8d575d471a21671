//! What one commit writes at FULL durability, and what this disk charges for
//! syncing it: the profile behind the group-commit figures in
//! docs/benchmarks.md ("What bounds the SQLite ratio").
//!
//! For 1 and for 16 concurrent appenders (one event per append, each
//! appender on its own stream, as in the `sqlite/append_one` benchmark) it
//! restarts the write-ahead log, appends 1,000-odd events, then reads the log
//! file frame by frame and names the B-tree each frame's page belongs to
//! (SQLite's `dbstat` table). Then it writes the same number of frames to a
//! plain file, as SQLite lays them out (a 24-byte header, then the page) and
//! as one contiguous write, and times each write followed by `fsync`.
//!
//! Run with
//! `cargo run --release -p logbook-adapters-sqlite --example commit_profile`.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use logbook_adapters_sqlite::{SqliteOptions, SqliteStore, Synchronous};
use logbook_domain::{EventId, NewEvent, Payload, StreamId};
use logbook_ports::{EventStore, ExpectedVersion};

/// Events appended (by all appenders together) before the log restarts:
/// every stream gets an index history of several leaves, and the log file
/// grows past what the recorded appends write, so they overwrite it in
/// place as the appends of a long run do.
const WARM_UP: usize = 6_400;
/// Events appended while the log is recorded: few enough that no automatic
/// checkpoint restarts the log meanwhile.
const RECORDED: usize = 1_008;
/// Bytes in a write-ahead-log frame header (SQLite's file format).
const FRAME_HEADER: usize = 24;
/// Bytes in the write-ahead-log file header.
const WAL_HEADER: usize = 32;
/// Write-and-sync rounds per disk pattern; the median is reported.
const SYNC_ROUNDS: usize = 300;

/// One frame of the log: the page it holds and whether it ends a commit.
struct Frame {
    page: u32,
    ends_commit: bool,
}

/// What the recorded appends left in the log.
struct Census {
    commits: usize,
    frames: usize,
    page_size: usize,
    /// Wall time of the recorded appends.
    elapsed: Duration,
    /// Frames per B-tree (or "pointer map / free list"), over all commits.
    by_tree: BTreeMap<String, usize>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let rt = tokio::runtime::Runtime::new()?;
    let mut frames_per_commit = Vec::new();
    let mut rates = Vec::new();
    for appenders in [1, 16] {
        let path = dir.path().join(format!("{appenders}.db"));
        let census = rt.block_on(record(&path, appenders))?;
        let commits = census.commits.max(1) as f64;
        let per_commit = census.frames as f64 / commits;
        let rate = RECORDED as f64 / census.elapsed.as_secs_f64();
        println!(
            "{appenders:>2} appender(s): {} commits; per commit {:.1} events, {per_commit:.1} \
             frames ({:.0} KiB), {:.1} us; {rate:.0} events/s",
            census.commits,
            RECORDED as f64 / commits,
            per_commit * (census.page_size + FRAME_HEADER) as f64 / 1024.0,
            micros(census.elapsed) / commits,
        );
        let mut trees: Vec<_> = census.by_tree.into_iter().collect();
        trees.sort_by_key(|tree| std::cmp::Reverse(tree.1));
        for (tree, frames) in trees {
            println!(
                "      {tree:<32} {:>6.2} frames per commit",
                frames as f64 / commits
            );
        }
        frames_per_commit.push((per_commit.round() as usize, census.page_size));
        rates.push(rate);
    }
    println!("16 appenders against 1: {:.1}x", rates[1] / rates[0]);

    println!("\nwrite + fsync of a commit's frames on this disk (median of {SYNC_ROUNDS}):");
    let disk = dir.path().join("sync-probe");
    for &(frames, page_size) in &frames_per_commit {
        let logged = median_sync(&disk, frames, page_size, Layout::AsSqliteWrites)?;
        let contiguous = median_sync(&disk, frames, page_size, Layout::OneWrite)?;
        println!(
            "  {frames:>3} frames: as SQLite writes them {:>7.1} us, as one write {:>7.1} us",
            micros(logged),
            micros(contiguous),
        );
    }
    Ok(())
}

/// Opens a fresh store at FULL, warms `appenders` streams up, restarts the
/// log, appends [`RECORDED`] events and reads back what they wrote.
async fn record(path: &Path, appenders: usize) -> Result<Census, Box<dyn std::error::Error>> {
    let store = Arc::new(
        SqliteStore::open(
            path,
            SqliteOptions::default().with_synchronous(Synchronous::Full),
        )?
        .event_store(),
    );
    append_concurrently(&store, appenders, WARM_UP / appenders).await?;
    let side = rusqlite::Connection::open(path)?;
    let busy: i64 = side.query_row("PRAGMA wal_checkpoint(RESTART)", [], |row| row.get(0))?;
    if busy != 0 {
        return Err("the write-ahead log could not be restarted".into());
    }
    let started = Instant::now();
    append_concurrently(&store, appenders, RECORDED / appenders).await?;
    let elapsed = started.elapsed();

    let wal = std::fs::read(path.with_extension("db-wal"))?;
    let owners: HashMap<u32, String> = side
        .prepare("SELECT pageno, name, pagetype FROM dbstat")?
        .query_map([], |row| {
            Ok((
                row.get::<_, u32>(0)?,
                format!(
                    "{} ({})",
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?
                ),
            ))
        })?
        .collect::<Result<_, _>>()?;
    let (page_size, frames) = frames(&wal)?;
    let mut census = Census {
        commits: frames.iter().filter(|f| f.ends_commit).count(),
        frames: frames.len(),
        page_size,
        elapsed,
        by_tree: BTreeMap::new(),
    };
    for frame in &frames {
        let tree = owners
            .get(&frame.page)
            .map_or("pointer map / free list", String::as_str);
        *census.by_tree.entry(tree.to_owned()).or_default() += 1;
    }
    Ok(census)
}

async fn append_concurrently(
    store: &Arc<logbook_adapters_sqlite::SqliteEventStore>,
    appenders: usize,
    each: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    // About 200 bytes of JSON, the size the `sqlite_store` benchmark appends.
    let note = "salary ".repeat(24);
    let payload =
        Payload::from_serialize(&serde_json::json!({ "amount": "1400.00", "note": note }))?;
    debug_assert!((190..=230).contains(&payload.as_bytes().len()));
    let event = NewEvent::new("MoneyDeposited", payload);
    let tasks: Vec<_> = (0..appenders)
        .map(|appender| {
            let store = Arc::clone(store);
            let event = event.clone();
            tokio::spawn(async move {
                let stream = StreamId::new(format!("BankAccount-{appender}"))?;
                for _ in 0..each {
                    let mut e = event.clone();
                    e.id = EventId::new();
                    store.append(&stream, ExpectedVersion::Any, vec![e]).await?;
                }
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .collect();
    for task in tasks {
        task.await?.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The page size and the valid frames of a write-ahead log: those after the
/// header whose salts match it, up to the last that ends a commit.
fn frames(wal: &[u8]) -> Result<(usize, Vec<Frame>), Box<dyn std::error::Error>> {
    let word = |at: usize| -> Result<u32, Box<dyn std::error::Error>> {
        let bytes = wal.get(at..at + 4).ok_or("the log ends inside a header")?;
        Ok(u32::from_be_bytes(bytes.try_into()?))
    };
    if wal.len() < WAL_HEADER {
        return Err("the write-ahead log is empty".into());
    }
    let page_size = word(8)? as usize;
    let salts = (word(16)?, word(20)?);
    let mut frames = Vec::new();
    let mut committed = 0;
    let mut at = WAL_HEADER;
    while at + FRAME_HEADER + page_size <= wal.len() && (word(at + 8)?, word(at + 12)?) == salts {
        frames.push(Frame {
            page: word(at)?,
            ends_commit: word(at + 4)? != 0,
        });
        if frames.last().is_some_and(|f| f.ends_commit) {
            committed = frames.len();
        }
        at += FRAME_HEADER + page_size;
    }
    frames.truncate(committed);
    Ok((page_size, frames))
}

#[derive(Clone, Copy)]
enum Layout {
    /// Per frame, a 24-byte header and then the page: two writes.
    AsSqliteWrites,
    /// Every frame's bytes in one write.
    OneWrite,
}

/// Median time to write `frames` frames at the end of the previous round's
/// and `fsync` the file, over [`SYNC_ROUNDS`] rounds in a preallocated file.
fn median_sync(
    path: &Path,
    frames: usize,
    page_size: usize,
    layout: Layout,
) -> std::io::Result<Duration> {
    const SPAN: usize = 16 << 20;
    let file = File::options()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(path)?;
    file.write_all_at(&vec![0; SPAN], 0)?;
    file.sync_all()?;
    let header = [0x5a_u8; FRAME_HEADER];
    let page = vec![0xa5_u8; page_size];
    let whole = [header.as_slice(), &page].concat().repeat(frames);
    let mut offset = WAL_HEADER as u64;
    let mut times = Vec::with_capacity(SYNC_ROUNDS);
    for _ in 0..SYNC_ROUNDS {
        if offset + whole.len() as u64 > SPAN as u64 {
            offset = WAL_HEADER as u64;
        }
        let started = Instant::now();
        match layout {
            Layout::AsSqliteWrites => {
                for frame in 0..frames as u64 {
                    let at = offset + frame * (FRAME_HEADER + page_size) as u64;
                    file.write_all_at(&header, at)?;
                    file.write_all_at(&page, at + FRAME_HEADER as u64)?;
                }
            }
            Layout::OneWrite => file.write_all_at(&whole, offset)?,
        }
        file.sync_all()?;
        times.push(started.elapsed());
        offset += whole.len() as u64;
    }
    times.sort_unstable();
    Ok(times[times.len() / 2])
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
