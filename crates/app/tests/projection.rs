//! Projections on every store: caught up, restartable, never double-counting.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use logbook::Repository;
use logbook::projection::{
    AccountBalances, AccountSummaries, PoisonPolicy, ProjectionError, Projector, ProjectorOptions,
    ReadModel, ShipsByPort,
};
use logbook_domain::bank_account::{BankAccount, BankAccountCommand};
use logbook_domain::cargo_ship::{CargoShip, CargoShipCommand};
use logbook_domain::{Currency, Money, NewEvent, Payload, RecordedEvent, StreamId};
use logbook_ports::{
    EventFilter, ExpectedVersion, ProjectionDocument, ProjectionSave, ProjectionStore, StoreError,
    Stores,
};
use serde::{Deserialize, Serialize};

fn money(text: &str) -> Money {
    text.parse().unwrap()
}

async fn bank_activity(stores: &Stores, id: &str, deposits: u32) {
    let accounts = Repository::<BankAccount>::new(stores);
    let open = BankAccountCommand::Open {
        owner: "u".into(),
        initial_balance: money("100"),
        currency: Currency::default(),
    };
    accounts.execute(id, &open).await.unwrap();
    for _ in 0..deposits {
        accounts
            .execute(
                id,
                &BankAccountCommand::Deposit {
                    amount: money("10"),
                    description: String::new(),
                },
            )
            .await
            .unwrap();
    }
    accounts
        .execute(
            id,
            &BankAccountCommand::Withdraw {
                amount: money("5"),
                description: String::new(),
            },
        )
        .await
        .unwrap();
}

fn small_batches() -> ProjectorOptions {
    ProjectorOptions {
        batch: 3,
        ..ProjectorOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catching_up_folds_the_log_and_a_restart_neither_repeats_nor_skips() {
    for (url, stores, _dir) in support::every_store() {
        // Given account activity and a ship voyage
        bank_activity(&stores, "a1", 4).await;
        let ships = Repository::<CargoShip>::new(&stores);
        ships
            .execute(
                "s1",
                &CargoShipCommand::Register {
                    name: "Pacific Explorer".into(),
                },
            )
            .await
            .unwrap();
        ships
            .execute(
                "s1",
                &CargoShipCommand::Dock {
                    port: "Singapore".into(),
                },
            )
            .await
            .unwrap();
        ships
            .execute(
                "s1",
                &CargoShipCommand::LoadCargo {
                    item: "electronics".into(),
                    quantity: 500,
                },
            )
            .await
            .unwrap();
        // When the projections catch up
        let summaries = Projector::<AccountSummaries>::with_options(&stores, small_batches());
        summaries.catch_up().await.unwrap();
        Projector::<ShipsByPort>::new(&stores)
            .catch_up()
            .await
            .unwrap();
        // Then they hold the fold, with the checkpoint at the head (ship events
        // the account filter skipped move it too)
        let state = summaries.state().await.unwrap();
        let a1 = &state.model.accounts["a1"];
        assert_eq!(
            (
                a1.total_deposits,
                a1.total_withdrawals,
                a1.transaction_count
            ),
            (money("40"), money("5"), 5),
            "{url}"
        );
        assert_eq!(summaries.status().await.unwrap().lag, 0, "{url}");
        let ships_view = Projector::<ShipsByPort>::new(&stores)
            .state()
            .await
            .unwrap()
            .model;
        assert_eq!(ships_view.docked()["Singapore"], ["s1"], "{url}");
        assert_eq!(
            ships_view.cargo_by_port()["Singapore"]["electronics"],
            500,
            "{url}"
        );

        // When more happens and a new projector (a restart) catches up again
        bank_activity(&stores, "a2", 2).await;
        let restarted = Projector::<AccountSummaries>::with_options(&stores, small_batches());
        let done = restarted.catch_up().await.unwrap();
        // Then only the new events were applied, and the result equals a rebuild
        assert_eq!(done.applied, 4, "{url}");
        let incremental = restarted.state().await.unwrap();
        restarted.rebuild(|_| {}).await.unwrap();
        assert_eq!(
            restarted.state().await.unwrap().model,
            incremental.model,
            "{url}"
        );
        assert!(restarted.verify().await.unwrap().is_empty(), "{url}");
    }
}

#[tokio::test]
async fn the_balance_projection_keeps_the_seeds_version_guard() {
    for (url, stores, _dir) in support::every_store() {
        bank_activity(&stores, "a1", 3).await;
        let balances = Projector::<AccountBalances>::new(&stores);
        balances.catch_up().await.unwrap();
        let mut model = balances.state().await.unwrap().model;
        assert_eq!(model.accounts["a1"].balance, money("125"), "{url}");
        // An event delivered a second time is not counted twice.
        let events = stores
            .events
            .read_all(1, 100, &EventFilter::all())
            .await
            .unwrap();
        model.apply(&events[1]).unwrap();
        assert_eq!(model.accounts["a1"].balance, money("125"), "{url}");
    }
}

async fn append_raw(stores: &Stores, stream: &str, event_type: &str, payload: &str) {
    let event = NewEvent::new(
        event_type,
        Payload::from_json(payload.as_bytes().to_vec()).unwrap(),
    );
    stores
        .events
        .append(
            &StreamId::new(stream).unwrap(),
            ExpectedVersion::Any,
            vec![event],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_poison_event_stops_the_projection_just_before_it_and_again_on_the_next_start() {
    for (url, stores, _dir) in support::every_store() {
        bank_activity(&stores, "a1", 1).await; // positions 1..=3
        append_raw(
            &stores,
            "BankAccount-a1",
            "MoneyDeposited",
            r#"{"amount":"lots"}"#,
        )
        .await; // 4
        bank_activity(&stores, "a2", 0).await; // 5..=6
        let summaries = Projector::<AccountSummaries>::new(&stores);
        for _start in 0..2 {
            match summaries.catch_up().await {
                Err(ProjectionError::Stopped {
                    position,
                    event_type,
                    stream,
                    error,
                    ..
                }) => {
                    assert_eq!(
                        (position, event_type.as_str(), stream.as_str()),
                        (4, "MoneyDeposited", "BankAccount-a1"),
                        "{url}"
                    );
                    assert!(error.contains("invalid amount"), "{url}: {error}");
                }
                other => panic!("{url}: expected a stop, got {other:?}"),
            }
            let state = summaries.state().await.unwrap();
            assert_eq!(
                state.checkpoint,
                Some(3),
                "{url}: not advanced past the failed event"
            );
            assert!(
                !state.model.accounts.contains_key("a2"),
                "{url}: nothing after it applied"
            );
        }
    }
}

#[tokio::test]
async fn a_parked_event_is_listed_skipped_and_retried_on_request() {
    for (url, stores, _dir) in support::every_store() {
        append_raw(&stores, "Counter-1", "Counted", "1").await;
        append_raw(&stores, "Counter-1", "Counted", "2").await;
        append_raw(&stores, "Counter-1", "Counted", "3").await;
        FAIL_ON_TWO.store(true, Ordering::SeqCst);
        let counter = Projector::<Counter>::with_options(
            &stores,
            ProjectorOptions {
                batch: 10,
                policy: PoisonPolicy::Park,
            },
        );
        let done = counter.catch_up().await.unwrap();
        assert_eq!((done.applied, done.parked), (2, 1), "{url}");
        let state = counter.state().await.unwrap();
        assert_eq!(state.model.sum, 4, "{url}");
        assert_eq!(state.parked.len(), 1, "{url}");
        assert_eq!(
            (state.parked[0].position, state.parked[0].error.as_str()),
            (2, "two is unlucky"),
            "{url}"
        );
        assert_eq!(state.checkpoint, Some(3), "{url}");
        // When the cause is fixed and the parked events are retried
        FAIL_ON_TWO.store(false, Ordering::SeqCst);
        assert_eq!(counter.retry_parked().await.unwrap(), (1, 0), "{url}");
        let state = counter.state().await.unwrap();
        assert_eq!((state.model.sum, state.parked.len()), (6, 0), "{url}");
    }
}

static FAIL_ON_TWO: AtomicBool = AtomicBool::new(false);

/// Sums `Counted` payloads; refuses 2 while `FAIL_ON_TWO` is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Counter {
    sum: u64,
}

impl ReadModel for Counter {
    const NAME: &'static str = "counter";

    fn filter() -> EventFilter {
        EventFilter::event_types(["Counted"])
    }

    fn apply(&mut self, event: &RecordedEvent) -> Result<(), String> {
        let n: u64 = event.payload.to_value().map_err(|e| e.to_string())?;
        if n == 2 && FAIL_ON_TWO.load(Ordering::SeqCst) {
            return Err("two is unlucky".into());
        }
        self.sum += n;
        Ok(())
    }
}

#[tokio::test]
async fn verify_reports_where_the_live_model_differs_from_a_fresh_fold() {
    let stores = logbook_adapters_memory::stores();
    bank_activity(&stores, "a1", 2).await;
    let summaries = Projector::<AccountSummaries>::new(&stores);
    summaries.catch_up().await.unwrap();
    assert!(summaries.verify().await.unwrap().is_empty());
    // Tamper with the saved model, keeping its checkpoint.
    let mut state = summaries.state().await.unwrap();
    state
        .model
        .accounts
        .get_mut("a1")
        .unwrap()
        .transaction_count = 99;
    stores
        .projections
        .save(
            AccountSummaries::NAME,
            &state.to_document().unwrap(),
            ProjectionSave::Advance,
        )
        .await
        .unwrap();
    let differences = summaries.verify().await.unwrap();
    assert_eq!(differences.len(), 1, "{differences:?}");
    assert!(
        differences[0].starts_with("accounts.a1.transaction_count: live 99, fresh fold 3"),
        "{differences:?}"
    );
}

/// Counts the loads and saves that reach the projection store.
struct Counting {
    inner: Arc<dyn ProjectionStore>,
    loads: AtomicUsize,
    saves: AtomicUsize,
}

impl Counting {
    fn around(inner: &Stores) -> (Arc<Self>, Stores) {
        let counting = Arc::new(Self {
            inner: inner.projections.clone(),
            loads: AtomicUsize::new(0),
            saves: AtomicUsize::new(0),
        });
        let stores = Stores {
            projections: counting.clone(),
            ..inner.clone()
        };
        (counting, stores)
    }
}

#[async_trait::async_trait]
impl ProjectionStore for Counting {
    async fn load(&self, name: &str) -> Result<Option<ProjectionDocument>, StoreError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        self.inner.load(name).await
    }
    async fn save(
        &self,
        name: &str,
        document: &ProjectionDocument,
        save: ProjectionSave,
    ) -> Result<u64, StoreError> {
        self.saves.fetch_add(1, Ordering::SeqCst);
        self.inner.save(name, document, save).await
    }
}

#[tokio::test]
async fn a_catch_up_keeps_the_model_in_memory_between_batches() {
    for (url, inner, _dir) in support::every_store() {
        // Given 22 account events, read in batches of 5
        bank_activity(&inner, "a1", 20).await;
        let (counting, stores) = Counting::around(&inner);
        let summaries = Projector::<AccountSummaries>::with_options(
            &stores,
            ProjectorOptions {
                batch: 5,
                ..Default::default()
            },
        );
        // When it catches up
        let done = summaries.catch_up().await.unwrap();
        // Then it loaded the document once, at the start, and saved once per batch
        assert_eq!(done.applied, 22, "{url}");
        assert_eq!(counting.loads.load(Ordering::SeqCst), 1, "{url}");
        assert_eq!(counting.saves.load(Ordering::SeqCst), 5, "{url}");
        let state = summaries.state().await.unwrap();
        assert_eq!((state.generation, state.checkpoint), (5, Some(22)), "{url}");
    }
}

#[tokio::test]
async fn a_rebuild_reports_progress_and_replaces_the_model_in_one_save() {
    let inner = logbook_adapters_memory::stores();
    bank_activity(&inner, "a1", 20).await;
    let (counting, stores) = Counting::around(&inner);
    let summaries = Projector::<AccountSummaries>::with_options(
        &stores,
        ProjectorOptions {
            batch: 5,
            ..Default::default()
        },
    );
    let mut reports = Vec::new();
    summaries.rebuild(|p| reports.push(p)).await.unwrap();
    assert_eq!(
        counting.saves.load(Ordering::SeqCst),
        1,
        "five batches folded, one save at the end"
    );
    assert_eq!(reports.len(), 5, "one report per batch of 5: {reports:?}");
    assert!(reports.windows(2).all(|w| w[0].position < w[1].position));
    assert_eq!(reports.last().unwrap().head, 22);
    assert_eq!(
        summaries.state().await.unwrap().model.accounts["a1"].transaction_count,
        21
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_never_saves_over_a_rebuild_and_a_checkpoint_past_the_log_is_refused() {
    let stores = logbook_adapters_memory::stores();
    bank_activity(&stores, "a1", 2).await;
    let summaries = Projector::<AccountSummaries>::new(&stores);
    summaries.catch_up().await.unwrap();
    // Given a damaged live model that a follower loads
    let mut state = summaries.state().await.unwrap();
    state
        .model
        .accounts
        .get_mut("a1")
        .unwrap()
        .transaction_count = 99;
    stores
        .projections
        .save(
            AccountSummaries::NAME,
            &state.to_document().unwrap(),
            ProjectionSave::Advance,
        )
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let follower = {
        let stores = stores.clone();
        tokio::spawn(async move {
            Projector::<AccountSummaries>::new(&stores)
                .follow(async {
                    let _ = stopped.await;
                })
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    // When a rebuild repairs it and more events arrive for the follower
    summaries.rebuild(|_| {}).await.unwrap();
    bank_activity(&stores, "a2", 1).await;
    let head = stores.events.head_position().await.unwrap();
    for _ in 0..200 {
        if summaries.state().await.unwrap().checkpoint == head {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    stop.send(()).unwrap();
    follower.await.unwrap().unwrap();
    // Then the follower went on from the rebuilt model instead of undoing it
    assert_eq!(summaries.state().await.unwrap().checkpoint, head);
    assert!(
        summaries.verify().await.unwrap().is_empty(),
        "{:?}",
        summaries.verify().await
    );

    // And a checkpoint past the end of the log is refused, not trusted
    let mut ahead = summaries.state().await.unwrap();
    ahead.checkpoint = Some(1_000);
    stores
        .projections
        .save(
            AccountSummaries::NAME,
            &ahead.to_document().unwrap(),
            ProjectionSave::Advance,
        )
        .await
        .unwrap();
    match summaries.catch_up().await {
        Err(ProjectionError::AheadOfLog { checkpoint, .. }) => assert_eq!(checkpoint, 1_000),
        other => panic!("expected AheadOfLog, got {other:?}"),
    }
    // And a rebuild, as the error advises, brings it back to the log's end
    summaries.rebuild(|_| {}).await.unwrap();
    assert_eq!(summaries.state().await.unwrap().checkpoint, head);
    summaries.catch_up().await.unwrap();
    assert!(summaries.verify().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runners_catching_up_at_once_lose_nothing_and_count_nothing_twice() {
    for (url, stores, _dir) in support::every_store() {
        // Given account activity
        bank_activity(&stores, "a1", 30).await;
        bank_activity(&stores, "a2", 30).await;
        // When two runners of one projection catch up at the same time, in
        // small batches, so their saves interleave
        let runners: Vec<_> = (0..2)
            .map(|_| {
                let stores = stores.clone();
                tokio::spawn(async move {
                    Projector::<AccountSummaries>::with_options(&stores, small_batches())
                        .catch_up()
                        .await
                })
            })
            .collect();
        for runner in runners {
            runner.await.unwrap().unwrap();
        }
        // Then the saved model is exactly the fold of the log: each saver
        // that lost a race reloaded the winner's document instead of
        // saving over it
        let summaries = Projector::<AccountSummaries>::new(&stores);
        let state = summaries.state().await.unwrap();
        assert_eq!(
            state.checkpoint,
            stores.events.head_position().await.unwrap(),
            "{url}"
        );
        assert_eq!(state.model.accounts["a1"].transaction_count, 31, "{url}");
        assert_eq!(state.model.accounts["a2"].transaction_count, 31, "{url}");
        assert!(summaries.verify().await.unwrap().is_empty(), "{url}");
    }
}

#[tokio::test]
async fn a_model_that_no_longer_decodes_is_refused_and_a_rebuild_replaces_it() {
    for (url, stores, _dir) in support::every_store() {
        // Given a saved document whose model has a shape the read model does
        // not know (its struct changed since)
        bank_activity(&stores, "a1", 2).await;
        let old_shape = ProjectionDocument {
            generation: 0,
            checkpoint: Some(2),
            model: Payload::from_json(br#"{"accounts": 7}"#.to_vec()).unwrap(),
            parked: Vec::new(),
            saved_at: chrono::Utc::now(),
        };
        stores
            .projections
            .save(AccountSummaries::NAME, &old_shape, ProjectionSave::Advance)
            .await
            .unwrap();
        let summaries = Projector::<AccountSummaries>::new(&stores);
        // When it catches up, it refuses the document instead of folding onto it
        assert!(
            matches!(
                summaries.catch_up().await,
                Err(ProjectionError::Unreadable { .. })
            ),
            "{url}"
        );
        // And a rebuild, as the error advises, replaces it with the fold of the log
        summaries.rebuild(|_| {}).await.unwrap();
        let state = summaries.state().await.unwrap();
        assert_eq!(state.generation, 2, "{url}");
        assert_eq!(state.model.accounts["a1"].transaction_count, 3, "{url}");
        assert!(summaries.verify().await.unwrap().is_empty(), "{url}");
    }
}
