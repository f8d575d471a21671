//! The repository through its public API, on the in-memory store.

mod support;

use std::num::NonZeroU64;
use std::sync::Arc;

use async_trait::async_trait;
use logbook::{Repository, RepositoryError, RepositoryOptions};
use logbook_domain::bank_account::{BankAccount, BankAccountCommand, BankAccountError};
use logbook_domain::{
    Currency, Metadata, Money, NewEvent, Payload, Position, RecordedEvent, StreamId, Version,
};
use logbook_ports::{
    AppendOutcome, EventFilter, EventStore, ExpectedVersion, ReadDirection, Snapshot, StoreError,
};

fn money(text: &str) -> Money {
    text.parse().unwrap()
}

fn open(initial: &str) -> BankAccountCommand {
    BankAccountCommand::Open {
        owner: "user_123".into(),
        initial_balance: money(initial),
        currency: Currency::default(),
    }
}

fn deposit(amount: &str) -> BankAccountCommand {
    BankAccountCommand::Deposit {
        amount: money(amount),
        description: String::new(),
    }
}

fn withdraw(amount: &str) -> BankAccountCommand {
    BankAccountCommand::Withdraw {
        amount: money(amount),
        description: String::new(),
    }
}

fn every(n: u64) -> RepositoryOptions {
    RepositoryOptions {
        snapshot_every: NonZeroU64::new(n),
        ..RepositoryOptions::default()
    }
}

fn stream(id: &str) -> StreamId {
    Repository::<BankAccount>::stream_id(id).unwrap()
}

#[tokio::test]
async fn a_command_is_decided_appended_and_loaded_back() {
    // Given an empty store
    let stores = logbook_adapters_memory::stores();
    let accounts = Repository::<BankAccount>::new(&stores);
    // When an account is opened and used
    accounts.execute("acc_001", &open("1000")).await.unwrap();
    accounts.execute("acc_001", &deposit("500")).await.unwrap();
    let done = accounts.execute("acc_001", &withdraw("200")).await.unwrap();
    // Then the state and version come back, from this repository and a fresh one
    assert_eq!((done.state.balance, done.version), (money("1300"), 3));
    let fresh = Repository::<BankAccount>::new(&stores)
        .load("acc_001")
        .await
        .unwrap();
    assert_eq!((fresh.state.balance, fresh.version), (money("1300"), 3));
    assert_eq!(
        stores
            .events
            .stream_version(&stream("acc_001"))
            .await
            .unwrap(),
        Some(3)
    );
}

#[tokio::test]
async fn a_rejected_command_appends_nothing() {
    let stores = logbook_adapters_memory::stores();
    let accounts = Repository::<BankAccount>::new(&stores);
    accounts.execute("acc_001", &open("10")).await.unwrap();
    let err = accounts
        .execute("acc_001", &withdraw("10.01"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RepositoryError::Rejected(BankAccountError::InsufficientFunds { .. })
        ),
        "{err}"
    );
    assert_eq!(stores.events.head_position().await.unwrap(), Some(1));
}

#[tokio::test]
async fn a_batch_of_commands_is_all_or_nothing() {
    let stores = logbook_adapters_memory::stores();
    let accounts = Repository::<BankAccount>::new(&stores);
    let err = accounts
        .execute_all(
            "acc_001",
            &[open("10"), deposit("5"), withdraw("100")],
            &Metadata::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RepositoryError::Rejected(_)));
    assert_eq!(stores.events.head_position().await.unwrap(), None);
    let done = accounts
        .execute_all("acc_001", &[open("10"), deposit("5")], &Metadata::default())
        .await
        .unwrap();
    assert_eq!((done.version, done.events.len()), (2, 2));
}

#[tokio::test]
async fn an_invalid_id_is_an_error_not_a_panic() {
    let stores = logbook_adapters_memory::stores();
    let accounts = Repository::<BankAccount>::new(&stores);
    let err = accounts.execute("bad\nid", &open("1")).await.unwrap_err();
    assert!(matches!(err, RepositoryError::InvalidId(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_on_one_account_all_succeed() {
    // Given an account and eight writers with their own repositories (as
    // separate processes would have), each depositing ten times
    let stores = logbook_adapters_memory::stores();
    Repository::<BankAccount>::new(&stores)
        .execute("acc_001", &open("0"))
        .await
        .unwrap();
    let mut writers = Vec::new();
    for _ in 0..8 {
        let stores = stores.clone();
        writers.push(tokio::spawn(async move {
            let accounts = Repository::<BankAccount>::new(&stores);
            for _ in 0..10 {
                accounts.execute("acc_001", &deposit("1.00")).await.unwrap();
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    // Then every deposit landed exactly once
    let loaded = Repository::<BankAccount>::new(&stores)
        .load("acc_001")
        .await
        .unwrap();
    assert_eq!((loaded.state.balance, loaded.version), (money("80.00"), 81));
}

/// A store whose every append conflicts, as if another writer always won.
struct AlwaysBehind(Arc<dyn EventStore>);

#[async_trait]
impl EventStore for AlwaysBehind {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        _: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        Err(StoreError::WrongExpectedVersion {
            stream: stream.clone(),
            expected,
            actual: Some(99),
        })
    }
    async fn delete_stream(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
    ) -> Result<AppendOutcome, StoreError> {
        self.0.delete_stream(stream, expected).await
    }
    async fn read_stream(
        &self,
        s: &StreamId,
        d: ReadDirection,
        from: Version,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.0.read_stream(s, d, from, limit).await
    }
    async fn read_all(
        &self,
        from: Position,
        limit: usize,
        f: &EventFilter,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.0.read_all(from, limit, f).await
    }
    async fn set_retention(
        &self,
        s: &StreamId,
        policy: logbook_ports::StreamRetention,
    ) -> Result<logbook_ports::RetentionState, StoreError> {
        self.0.set_retention(s, policy).await
    }
    async fn retention(&self, s: &StreamId) -> Result<logbook_ports::RetentionState, StoreError> {
        self.0.retention(s).await
    }
    async fn scavenge(&self) -> Result<logbook_ports::ScavengeReport, StoreError> {
        self.0.scavenge().await
    }
    async fn stream_version(&self, s: &StreamId) -> Result<Option<Version>, StoreError> {
        self.0.stream_version(s).await
    }
    async fn head_position(&self) -> Result<Option<Position>, StoreError> {
        self.0.head_position().await
    }
}

#[tokio::test]
async fn retries_stop_when_the_time_budget_is_spent() {
    let inner = logbook_adapters_memory::stores();
    let options = RepositoryOptions {
        retry_budget: std::time::Duration::from_millis(200),
        ..RepositoryOptions::default()
    };
    let accounts =
        Repository::<BankAccount>::without_snapshots(Arc::new(AlwaysBehind(inner.events)), options);
    match accounts.execute("acc_001", &open("1")).await {
        Err(RepositoryError::TooManyConflicts { stream, attempts }) => {
            assert_eq!(stream.as_str(), "BankAccount-acc_001");
            assert!(attempts >= 2, "retried within the budget: {attempts}");
        }
        other => panic!("expected TooManyConflicts, got {other:?}"),
    }
}

#[tokio::test]
async fn a_snapshot_is_taken_on_the_save_that_crosses_the_interval() {
    let stores = logbook_adapters_memory::stores();
    let accounts = Repository::<BankAccount>::with_options(&stores, every(10));
    let mut commands = vec![open("1000")];
    commands.extend((0..7).map(|_| deposit("1")));
    let first = accounts
        .execute_all("acc_001", &commands, &Metadata::default())
        .await
        .unwrap();
    assert!(!first.snapshot_taken);
    assert_eq!(
        stores.snapshots.load(&stream("acc_001")).await.unwrap(),
        None
    );
    // 8 -> 12 crosses 10 without landing on it: the seed's `% 10 == 0` missed this.
    let batch: Vec<_> = (0..4).map(|_| deposit("1")).collect();
    let second = accounts
        .execute_all("acc_001", &batch, &Metadata::default())
        .await
        .unwrap();
    assert!(second.snapshot_taken);
    let snapshot = stores
        .snapshots
        .load(&stream("acc_001"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(snapshot.version, 12);
    assert_eq!(
        snapshot.state.to_value::<BankAccount>().unwrap(),
        second.state
    );
}

#[tokio::test]
async fn loading_from_a_snapshot_equals_replaying_and_deleting_snapshots_changes_nothing() {
    let stores = logbook_adapters_memory::stores();
    let writer = Repository::<BankAccount>::with_options(&stores, every(5));
    writer.execute("acc_001", &open("0")).await.unwrap();
    for _ in 0..23 {
        writer.execute("acc_001", &deposit("2.50")).await.unwrap();
    }
    assert_eq!(
        stores
            .snapshots
            .load(&stream("acc_001"))
            .await
            .unwrap()
            .unwrap()
            .version,
        20
    );
    let with_snapshot = Repository::<BankAccount>::new(&stores)
        .load("acc_001")
        .await
        .unwrap();
    stores.snapshots.delete(&stream("acc_001")).await.unwrap();
    let replayed = Repository::<BankAccount>::new(&stores)
        .load("acc_001")
        .await
        .unwrap();
    assert_eq!(with_snapshot, replayed);
    assert_eq!(
        (replayed.state.balance, replayed.version),
        (money("57.50"), 24)
    );
}

#[tokio::test]
async fn a_snapshot_that_does_not_decode_or_has_another_shape_is_ignored() {
    let stores = logbook_adapters_memory::stores();
    let accounts = Repository::<BankAccount>::new(&stores);
    accounts
        .execute_all("acc_001", &[open("5"), deposit("5")], &Metadata::default())
        .await
        .unwrap();
    for (schema_version, state) in [
        (1, r#"{"nonsense":true}"#),
        (
            7,
            r#"{"status":"active","owner":"x","balance":"999.00","currency":"USD"}"#,
        ),
    ] {
        stores.snapshots.delete(&stream("acc_001")).await.unwrap();
        let bogus = Snapshot {
            stream: stream("acc_001"),
            version: 2,
            schema_version,
            state: Payload::from_json(state.as_bytes().to_vec()).unwrap(),
            taken_at: chrono::Utc::now(),
        };
        stores.snapshots.save(bogus).await.unwrap();
        let loaded = Repository::<BankAccount>::new(&stores)
            .load("acc_001")
            .await
            .unwrap();
        assert_eq!(
            loaded.state.balance,
            money("10"),
            "schema {schema_version}: the events win"
        );
    }
}

/// An account `mine` opened empty (and so cached at version 1), then given
/// 7 by `theirs`, another repository on the same stores.
async fn cached_here_then_funded_elsewhere() -> (
    logbook_ports::Stores,
    Repository<BankAccount>,
    Repository<BankAccount>,
) {
    let stores = logbook_adapters_memory::stores();
    let mine = Repository::<BankAccount>::new(&stores);
    let theirs = Repository::<BankAccount>::new(&stores);
    mine.execute("acc_001", &open("0")).await.unwrap();
    theirs.execute("acc_001", &deposit("7")).await.unwrap();
    (stores, mine, theirs)
}

#[tokio::test]
async fn a_cached_aggregate_still_sees_what_other_writers_appended() {
    let (_stores, mine, _theirs) = cached_here_then_funded_elsewhere().await;
    let loaded = mine.load("acc_001").await.unwrap();
    assert_eq!((loaded.state.balance, loaded.version), (money("7"), 2));
    let done = mine.execute("acc_001", &withdraw("7")).await.unwrap();
    assert_eq!((done.version, done.conflicts), (3, 0));
}

#[tokio::test]
async fn a_command_decided_on_a_stale_cached_state_is_decided_again_on_the_stream() {
    // Given an account this repository has cached at version 1, then
    // changed by another writer
    let (stores, mine, _theirs) = cached_here_then_funded_elsewhere().await;
    // When this repository executes a command without loading first
    let done = mine.execute("acc_001", &deposit("3")).await.unwrap();
    // Then it is decided on the stream's state: nothing is lost, no
    // conflict is reported, and the cache holds the new state
    assert_eq!((done.state.balance, done.version), (money("10"), 3));
    assert_eq!(done.conflicts, 0);
    let events = stores
        .events
        .read_stream(&stream("acc_001"), ReadDirection::Forward, 1, 10)
        .await
        .unwrap();
    assert_eq!(events.len(), 3);
    let loaded = mine.load("acc_001").await.unwrap();
    assert_eq!((loaded.state.balance, loaded.version), (money("10"), 3));
}

#[tokio::test]
async fn a_command_refused_by_a_stale_cached_state_is_decided_again_on_the_stream() {
    // Given an account cached empty here and funded by another writer
    let (_stores, mine, theirs) = cached_here_then_funded_elsewhere().await;
    // When this repository withdraws what only the fresh state holds
    let done = mine.execute("acc_001", &withdraw("7")).await.unwrap();
    // Then the withdrawal is accepted against the stream's state
    assert_eq!((done.state.balance, done.version), (money("0"), 3));
    // And a withdrawal the fresh state refuses is still refused, appending
    // nothing
    let refused = mine.execute("acc_001", &withdraw("1")).await;
    assert!(
        matches!(
            refused,
            Err(RepositoryError::Rejected(
                BankAccountError::InsufficientFunds { .. }
            ))
        ),
        "{refused:?}"
    );
    assert_eq!(theirs.load("acc_001").await.unwrap().version, 3);
}

#[tokio::test]
async fn time_travel_by_version_and_by_time() {
    let stores = logbook_adapters_memory::stores();
    let accounts = Repository::<BankAccount>::with_options(&stores, every(2));
    accounts.execute("acc_001", &open("1000")).await.unwrap();
    accounts.execute("acc_001", &deposit("500")).await.unwrap();
    accounts.execute("acc_001", &withdraw("200")).await.unwrap();
    let between = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    accounts.execute("acc_001", &deposit("100")).await.unwrap();

    let at_3 = accounts.load_at_version("acc_001", 3).await.unwrap();
    assert_eq!((at_3.state.balance, at_3.version), (money("1300"), 3));
    let at_1 = accounts.load_at_version("acc_001", 1).await.unwrap();
    assert_eq!(at_1.state.balance, money("1000"));
    let past_end = accounts.load_at_version("acc_001", 99).await.unwrap();
    assert_eq!(
        (past_end.state.balance, past_end.version),
        (money("1400"), 4)
    );
    let then = accounts.load_at_time("acc_001", between).await.unwrap();
    assert_eq!((then.state.balance, then.version), (money("1300"), 3));
    let before_all = accounts
        .load_at_time("acc_001", between - chrono::Duration::days(1))
        .await
        .unwrap();
    assert_eq!(before_all.version, 0);
}

#[tokio::test]
async fn loading_and_history_page_through_long_streams() {
    let stores = logbook_adapters_memory::stores();
    let options = RepositoryOptions {
        page_size: 7,
        snapshot_every: None,
        cache_capacity: 0,
        ..RepositoryOptions::default()
    };
    let accounts = Repository::<BankAccount>::with_options(&stores, options);
    accounts.execute("acc_001", &open("0")).await.unwrap();
    for _ in 0..29 {
        accounts.execute("acc_001", &deposit("1")).await.unwrap();
    }
    let loaded = accounts.load("acc_001").await.unwrap();
    assert_eq!((loaded.state.balance, loaded.version), (money("29"), 30));
    let history = accounts.history("acc_001").await.unwrap();
    assert_eq!(
        history.iter().map(|e| e.version).collect::<Vec<_>>(),
        (1..=30).collect::<Vec<_>>()
    );
}

struct Collect(std::sync::Mutex<Vec<(u64, String)>>);

#[async_trait]
impl logbook_ports::EventHandler for Collect {
    fn name(&self) -> &str {
        "collect"
    }

    async fn handle(&self, event: &RecordedEvent) -> Result<(), logbook_ports::BoxError> {
        self.0
            .lock()
            .unwrap()
            .push((event.position, event.event_type.to_string()));
        Ok(())
    }
}

#[tokio::test]
async fn committed_events_are_published_to_the_bus_with_their_positions() {
    use logbook_ports::EventBus as _;
    let stores = logbook_adapters_memory::stores();
    let bus = Arc::new(logbook_adapters_memory::MemoryEventBus::new());
    let collected = Arc::new(Collect(std::sync::Mutex::new(Vec::new())));
    bus.register(None, collected.clone());
    let accounts = Repository::<BankAccount>::new(&stores).with_bus(bus);
    accounts
        .execute_all("acc_001", &[open("10"), deposit("5")], &Metadata::default())
        .await
        .unwrap();
    let _ = accounts
        .execute("acc_001", &withdraw("100"))
        .await
        .unwrap_err();
    assert_eq!(
        *collected.0.lock().unwrap(),
        [
            (1, "AccountOpened".to_owned()),
            (2, "MoneyDeposited".to_owned())
        ],
        "committed events only, in order"
    );
}

#[tokio::test]
async fn a_deleted_aggregate_can_be_neither_loaded_nor_changed_and_its_events_stay_in_the_log() {
    let stores = logbook_adapters_memory::stores();
    let accounts = Repository::<BankAccount>::with_options(&stores, every(1));
    accounts
        .execute_all("acc_001", &[open("10"), deposit("5")], &Metadata::default())
        .await
        .unwrap();
    assert!(
        stores
            .snapshots
            .load(&stream("acc_001"))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(accounts.delete("acc_001").await.unwrap(), 3);
    for result in [
        accounts.load("acc_001").await.map(|_| ()),
        accounts.execute("acc_001", &deposit("1")).await.map(|_| ()),
    ] {
        match result {
            Err(RepositoryError::Store(StoreError::StreamDeleted { stream })) => {
                assert_eq!(stream.as_str(), "BankAccount-acc_001")
            }
            other => panic!("expected StreamDeleted, got {other:?}"),
        }
    }
    assert!(
        stores
            .snapshots
            .load(&stream("acc_001"))
            .await
            .unwrap()
            .is_none(),
        "its snapshot is gone"
    );
    let log = stores
        .events
        .read_all(1, 10, &EventFilter::all())
        .await
        .unwrap();
    assert_eq!(log.len(), 3, "events stay for audit");
    assert!(accounts.delete("acc_001").await.is_err());
}

#[tokio::test]
async fn seed_shaped_version_1_wallet_events_load_through_the_upcasters() {
    use logbook_domain::user_wallet::UserWallet;
    // Given events as the first seed wrote them: whole units, a redundant id
    let stores = logbook_adapters_memory::stores();
    let v1 = |event_type: &str, payload: &str| {
        NewEvent::new(
            event_type,
            Payload::from_json(payload.as_bytes().to_vec()).unwrap(),
        )
        .with_schema_version(1)
    };
    let stream = Repository::<UserWallet>::stream_id("1").unwrap();
    let seed = vec![
        v1(
            "UserCreated",
            r#"{"id": 1, "username": "test_user", "balance": 100}"#,
        ),
        v1("UserBalanceChanged", r#"{"id": 1, "balance_change": 10}"#),
        v1("UserBalanceChanged", r#"{"id": 1, "balance_change": 250}"#),
        v1("UserBalanceChanged", r#"{"id": 1, "balance_change": -50}"#),
    ];
    stores
        .events
        .append(&stream, ExpectedVersion::NoStream, seed)
        .await
        .unwrap();
    // When the wallet is loaded and used with today's code
    let wallets = Repository::<UserWallet>::new(&stores);
    let loaded = wallets.load("1").await.unwrap();
    // Then the old events read as version 2, and new ones are written as version 2
    assert_eq!((loaded.state.balance, loaded.version), (money("310.00"), 4));
    let change = logbook_domain::user_wallet::UserWalletCommand::ChangeBalance {
        balance_change: money("-10"),
    };
    wallets.execute("1", &change).await.unwrap();
    let newest = stores
        .events
        .read_stream(&stream, ReadDirection::Backward, u64::MAX, 1)
        .await
        .unwrap();
    assert_eq!(
        (
            newest[0].schema_version,
            newest[0].payload.as_str().as_ref()
        ),
        (2, r#"{"balance_change":"-10.00"}"#)
    );
}

#[tokio::test]
async fn a_snapshot_ahead_of_its_stream_is_not_trusted() {
    // Given a snapshot at version 5 of a stream that has only 2 events (as
    // after a crash that lost unsynced appends but kept the snapshot)
    let stores = logbook_adapters_memory::stores();
    let accounts = Repository::<BankAccount>::new(&stores);
    accounts
        .execute_all("acc_001", &[open("10"), deposit("5")], &Metadata::default())
        .await
        .unwrap();
    let phantom = BankAccount {
        balance: money("999"),
        ..accounts.load("acc_001").await.unwrap().state
    };
    let snapshot = Snapshot {
        stream: stream("acc_001"),
        version: 5,
        schema_version: 1,
        state: Payload::from_serialize(&phantom).unwrap(),
        taken_at: chrono::Utc::now(),
    };
    stores.snapshots.save(snapshot).await.unwrap();
    // When a fresh repository loads and uses it
    let fresh = Repository::<BankAccount>::new(&stores);
    let loaded = fresh.load("acc_001").await.unwrap();
    // Then the events win, and commands work
    assert_eq!((loaded.state.balance, loaded.version), (money("15"), 2));
    assert_eq!(
        fresh
            .execute("acc_001", &deposit("1"))
            .await
            .unwrap()
            .version,
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repository_behaves_alike_on_every_store() {
    for (url, stores, _dir) in support::every_store() {
        let accounts = Repository::<BankAccount>::with_options(&stores, every(3));
        let mut commands = vec![open("100")];
        commands.extend((0..3).map(|_| deposit("10")));
        accounts
            .execute_all("acc_001", &commands, &Metadata::default())
            .await
            .unwrap();
        accounts.execute("acc_001", &withdraw("30")).await.unwrap();
        let err = accounts
            .execute("acc_001", &withdraw("1000"))
            .await
            .unwrap_err();
        assert!(matches!(err, RepositoryError::Rejected(_)), "{url}: {err}");
        // The crossing save left a snapshot; a fresh repository loads from it.
        assert_eq!(
            stores
                .snapshots
                .load(&stream("acc_001"))
                .await
                .unwrap()
                .unwrap()
                .version,
            4,
            "{url}"
        );
        let fresh = Repository::<BankAccount>::new(&stores);
        let loaded = fresh.load("acc_001").await.unwrap();
        assert_eq!(
            (loaded.state.balance, loaded.version),
            (money("100"), 5),
            "{url}"
        );
        assert_eq!(
            fresh
                .load_at_version("acc_001", 2)
                .await
                .unwrap()
                .state
                .balance,
            money("110"),
            "{url}"
        );
        assert_eq!(fresh.history("acc_001").await.unwrap().len(), 5, "{url}");
        assert_eq!(fresh.delete("acc_001").await.unwrap(), 6, "{url}");
        assert!(fresh.load("acc_001").await.is_err(), "{url}");
        assert!(
            stores
                .snapshots
                .load(&stream("acc_001"))
                .await
                .unwrap()
                .is_none(),
            "{url}"
        );
    }
}
