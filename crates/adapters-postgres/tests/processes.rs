//! Races across processes. Expected versions: N processes, each with its
//! own store (its own pool and writer), append to one stream with
//! `Exact(v)` until it reaches a target version. Exactly one wins each
//! version, with no gap and no duplicate, in the stream and in the global
//! log. Subject keys: N processes create the same new subjects' keys at
//! once, each with its own candidates; all end with one key per subject.
//!
//! The test binary is its own child: run with `child URL STREAM TARGET` it
//! is one racing appender, printing `won VERSION POSITION` per win; with
//! `keys URL NAME` one key creator, printing `key SUBJECT HEX` per
//! subject once a line arrives on its standard input. It runs
//! without libtest's harness for that reason, and ends with the usual
//! `N passed, N failed` line.

use std::collections::BTreeMap;
use std::process::{Command, ExitCode};

use logbook_adapters_postgres::{PostgresOptions, PostgresStore};
use logbook_domain::{NewEvent, Payload, StreamId};
use logbook_ports::{
    EventFilter, EventStore, ExpectedVersion, StoreError, SubjectId, SubjectKey, SubjectKeyStore,
    WrappedKey,
};

const PROCESSES: usize = 4;
const TARGET: u64 = 120;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// One racing process: append `Exact(v)` after reading `v`, until the
/// stream is at `target`.
async fn race(url: &str, stream: &str, target: u64) {
    let store = PostgresStore::connect(url, PostgresOptions::default())
        .await
        .expect("the store opens")
        .event_store();
    let stream = StreamId::new(stream).expect("valid stream id");
    loop {
        let version = store.stream_version(&stream).await.unwrap().unwrap_or(0);
        if version >= target {
            return;
        }
        let event = NewEvent::new("Won", Payload::from_json(b"{}".to_vec()).unwrap());
        match store
            .append(&stream, ExpectedVersion::Exact(version), vec![event])
            .await
        {
            Ok(outcome) => println!(
                "won {} {}",
                outcome.stream_version.unwrap(),
                outcome.first_position.unwrap()
            ),
            Err(StoreError::WrongExpectedVersion { .. }) => {}
            Err(error) => panic!("append failed: {error}"),
        }
    }
}

fn exact_version_races_across_processes_have_one_winner_per_version() {
    // Given a fresh schema
    let database = logbook_test_postgres::database();
    let url = database.fresh_schema_url("race");
    runtime().block_on(async {
        PostgresStore::connect(&url, PostgresOptions::default())
            .await
            .expect("the schema is created");
    });
    // When 4 processes race with Exact(v) on one stream up to version 120
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args(["child", &url, "Race-1", &TARGET.to_string()])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("the child starts")
        })
        .collect();
    let mut wins: BTreeMap<u64, Vec<(usize, u64)>> = BTreeMap::new();
    for (child_index, child) in children.into_iter().enumerate() {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "child {child_index} failed");
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let mut parts = line.split_whitespace().skip(1);
            let version: u64 = parts.next().unwrap().parse().unwrap();
            let position: u64 = parts.next().unwrap().parse().unwrap();
            wins.entry(version)
                .or_default()
                .push((child_index, position));
        }
    }
    // Then every version 1..=120 was won exactly once
    let versions: Vec<u64> = wins.keys().copied().collect();
    assert_eq!(versions, (1..=TARGET).collect::<Vec<_>>());
    for (version, winners) in &wins {
        assert_eq!(winners.len(), 1, "version {version} won by {winners:?}");
    }
    // And the processes really raced: more than one of them won
    let winners: std::collections::HashSet<usize> = wins.values().map(|w| w[0].0).collect();
    assert!(winners.len() > 1, "only {winners:?} won");
    // And the log holds exactly the winners, gap-free, in version order
    runtime().block_on(async {
        let store = PostgresStore::connect(&url, PostgresOptions::default())
            .await
            .unwrap()
            .event_store();
        let log = store
            .read_all(1, usize::MAX, &EventFilter::all())
            .await
            .unwrap();
        let positions: Vec<u64> = log.iter().map(|e| e.position).collect();
        assert_eq!(positions, (1..=TARGET).collect::<Vec<_>>());
        let reported: Vec<u64> = wins.values().map(|w| w[0].1).collect();
        assert_eq!(reported, positions, "each win's position is its version's");
    });
}

/// Subjects the key creators race on.
const SUBJECTS: usize = 25;

fn describe(key: &SubjectKey) -> String {
    match key {
        SubjectKey::Active { wrapped, .. } => wrapped
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        SubjectKey::Shredded { .. } => "shredded".into(),
    }
}

/// One key-creating process: once told to start (a line on standard
/// input), get-or-create each subject's key with a candidate of its own.
async fn create_keys(url: &str, name: &str) {
    let keys = PostgresStore::connect(url, PostgresOptions::default())
        .await
        .expect("the store opens")
        .subject_key_store();
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .expect("the start line");
    for i in 0..SUBJECTS {
        let subject = SubjectId::new(format!("user-{i}")).unwrap();
        let candidate = WrappedKey::new(format!("{name}-candidate-{i}").into_bytes());
        let got = keys.get_or_create(&subject, candidate).await.unwrap();
        println!("key {subject} {}", describe(&got));
    }
}

fn processes_creating_one_subjects_key_at_once_end_with_one_key() {
    // Given a fresh schema
    let database = logbook_test_postgres::database();
    let url = database.fresh_schema_url("keys");
    runtime().block_on(async {
        PostgresStore::connect(&url, PostgresOptions::default())
            .await
            .expect("the schema is created");
    });
    // When 4 processes create the same new subjects' keys at once
    let mut children: Vec<_> = (0..PROCESSES)
        .map(|child| {
            Command::new(std::env::current_exe().unwrap())
                .args(["keys", &url, &format!("process-{child}")])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("the child starts")
        })
        .collect();
    for child in &mut children {
        use std::io::Write;
        writeln!(child.stdin.take().unwrap(), "go").unwrap();
    }
    let printed: Vec<Vec<String>> = children
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().unwrap();
            assert!(output.status.success(), "a child failed");
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .filter_map(|line| line.strip_prefix("key ").map(str::to_owned))
                .collect()
        })
        .collect();
    // Then every process got the same key for every subject, the stored one
    assert_eq!(printed[0].len(), SUBJECTS);
    for other in &printed[1..] {
        assert_eq!(other, &printed[0]);
    }
    runtime().block_on(async {
        let keys = PostgresStore::connect(&url, PostgresOptions::default())
            .await
            .unwrap()
            .subject_key_store();
        for line in &printed[0] {
            let (id, key) = line.split_once(' ').unwrap();
            let stored = keys
                .get(&SubjectId::new(id).unwrap())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(describe(&stored), key);
        }
        let stored = keys.list(None, SUBJECTS + 1).await.unwrap();
        assert_eq!(stored.len(), SUBJECTS, "one key per subject, no more");
    });
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("child") {
        let target = args[3].parse().expect("a target version");
        runtime().block_on(race(&args[1], &args[2], target));
        return ExitCode::SUCCESS;
    }
    if args.first().map(String::as_str) == Some("keys") {
        runtime().block_on(create_keys(&args[1], &args[2]));
        return ExitCode::SUCCESS;
    }
    let tests: &[(&str, fn())] = &[
        (
            "exact_version_races_across_processes_have_one_winner_per_version",
            exact_version_races_across_processes_have_one_winner_per_version,
        ),
        (
            "processes_creating_one_subjects_key_at_once_end_with_one_key",
            processes_creating_one_subjects_key_at_once_end_with_one_key,
        ),
    ];
    let mut failed = 0;
    for (name, test) in tests {
        let outcome = std::panic::catch_unwind(test);
        println!(
            "test {name} ... {}",
            if outcome.is_ok() { "ok" } else { "FAILED" }
        );
        failed += usize::from(outcome.is_err());
    }
    println!("{} passed, {failed} failed", tests.len() - failed);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
