//! Property: whatever the interleaving of appends and projector restarts,
//! the read model equals a fresh fold of the log.

use logbook::projection::{AccountSummaries, Projector, ProjectorOptions, ReadModel};
use logbook_domain::{NewEvent, Payload, StreamId};
use logbook_ports::ExpectedVersion;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    /// Append a batch of deposits (and the opening, the first time) to an account.
    Append { account: u8, deposits: u8 },
    /// Stop the projector and start a new one, which catches up.
    Restart { batch: usize },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0u8..5, 1u8..4).prop_map(|(account, deposits)| Step::Append { account, deposits }),
        1 => (1usize..6).prop_map(|batch| Step::Restart { batch }),
    ]
}

fn deposit(cents: u64) -> NewEvent {
    let payload = serde_json::json!({"amount": format!("{}.{:02}", cents / 100, cents % 100), "description": ""});
    NewEvent::new("MoneyDeposited", Payload::from_serialize(&payload).unwrap())
}

fn opened() -> NewEvent {
    let payload = serde_json::json!({"owner": "u", "initial_balance": "0.00", "currency": "USD"});
    NewEvent::new("AccountOpened", Payload::from_serialize(&payload).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_read_model_always_equals_a_fresh_fold(steps in prop::collection::vec(step(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let stores = logbook_adapters_memory::stores();
            let mut opened_accounts = std::collections::HashSet::new();
            let mut counter = 1u64;
            for step in steps {
                match step {
                    Step::Append { account, deposits } => {
                        let stream = StreamId::new(format!("BankAccount-{account}")).unwrap();
                        let mut batch = Vec::new();
                        if opened_accounts.insert(account) {
                            batch.push(opened());
                        }
                        for _ in 0..deposits {
                            batch.push(deposit(counter));
                            counter += 1;
                        }
                        stores.events.append(&stream, ExpectedVersion::Any, batch).await.unwrap();
                        // Noise from another category, which the projection skips.
                        let noise = NewEvent::new("ShipDocked", Payload::from_json(br#"{"port":"X"}"#.to_vec()).unwrap());
                        stores.events.append(&StreamId::new("CargoShip-1").unwrap(), ExpectedVersion::Any, vec![noise]).await.unwrap();
                    }
                    Step::Restart { batch } => {
                        let projector = Projector::<AccountSummaries>::with_options(&stores, ProjectorOptions { batch, ..ProjectorOptions::default() });
                        projector.catch_up().await.unwrap();
                    }
                }
            }
            let projector = Projector::<AccountSummaries>::new(&stores);
            projector.catch_up().await.unwrap();
            let mut fresh = AccountSummaries::default();
            for event in stores.events.read_all(1, usize::MAX, &AccountSummaries::filter()).await.unwrap() {
                fresh.apply(&event).unwrap();
            }
            let state = projector.state().await.unwrap();
            assert_eq!(state.model, fresh);
            assert_eq!(state.checkpoint, stores.events.head_position().await.unwrap());
        });
    }
}
