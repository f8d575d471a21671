//! Projection documents: whole, per name, compare-and-swap on the
//! generation, never moving the checkpoint back unless replaced.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use logbook_domain::{EventId, Position};
use tokio::sync::Barrier;

use super::Fixture;
use super::support::payload;
use crate::error::StoreError;
use crate::projection::{ParkedEvent, ProjectionDocument, ProjectionSave};

/// Rounds of the race between two savers.
const RACE_ROUNDS: u64 = 20;

fn document(generation: u64, checkpoint: Option<Position>, n: u64) -> ProjectionDocument {
    ProjectionDocument {
        generation,
        checkpoint,
        model: payload(serde_json::json!({ "n": n, "name": "Zoë ✓" })),
        parked: Vec::new(),
        // Whole microseconds: what every store keeps.
        saved_at: DateTime::<Utc>::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
    }
}

fn n(document: &ProjectionDocument) -> u64 {
    document.model.to_value::<serde_json::Value>().unwrap()["n"]
        .as_u64()
        .unwrap()
}

pub(super) async fn a_missing_projection_document_is_none(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.projections;
    assert_eq!(store.load("account-summary").await.unwrap(), None);
}

pub(super) async fn a_projection_document_round_trips_whole(fixture: Arc<dyn Fixture>) {
    // Given a document with a model, a checkpoint and parked events
    let store = fixture.open().await.projections;
    let mut saved = document(0, Some(42), 7);
    saved.parked = vec![ParkedEvent {
        position: 17,
        event_id: EventId::new(),
        stream: "BankAccount-a1".into(),
        event_type: "MoneyDeposited".into(),
        error: "invalid amount \"lots\"".into(),
    }];
    // When it is saved as the first generation
    let generation = store
        .save("account-summary", &saved, ProjectionSave::Advance)
        .await
        .unwrap();
    // Then it reads back exactly, at generation 1
    assert_eq!(generation, 1);
    let loaded = store.load("account-summary").await.unwrap().unwrap();
    assert_eq!(
        loaded,
        ProjectionDocument {
            generation: 1,
            ..saved
        }
    );
}

pub(super) async fn each_save_moves_the_generation_on_and_a_stale_one_is_refused(
    fixture: Arc<dyn Fixture>,
) {
    let store = fixture.open().await.projections;
    // Given a document saved twice
    assert_eq!(
        store
            .save("p", &document(0, Some(1), 1), ProjectionSave::Advance)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .save("p", &document(1, Some(2), 2), ProjectionSave::Advance)
            .await
            .unwrap(),
        2
    );
    // When a saver still holding generation 1, or expecting none, saves
    for stale in [1, 0, 3] {
        match store
            .save("p", &document(stale, Some(9), 99), ProjectionSave::Advance)
            .await
        {
            // Then it gets the typed conflict naming both generations
            Err(StoreError::ProjectionConflict {
                name,
                expected,
                actual,
            }) => assert_eq!((name.as_str(), expected, actual), ("p", stale, 2)),
            other => panic!("expected a conflict for generation {stale}, got {other:?}"),
        }
    }
    // And nothing was written
    let loaded = store.load("p").await.unwrap().unwrap();
    assert_eq!(
        (loaded.generation, loaded.checkpoint, n(&loaded)),
        (2, Some(2), 2)
    );
    // And a first save expecting a document that does not exist is refused too
    assert!(matches!(
        store
            .save("q", &document(1, None, 0), ProjectionSave::Advance)
            .await,
        Err(StoreError::ProjectionConflict {
            expected: 1,
            actual: 0,
            ..
        })
    ));
    assert_eq!(store.load("q").await.unwrap(), None);
}

pub(super) async fn two_savers_racing_on_one_generation_exactly_one_wins(
    fixture: Arc<dyn Fixture>,
) {
    let store = fixture.open().await.projections;
    let mut generation = 0;
    for round in 0..RACE_ROUNDS {
        // Given two savers that both read the same generation
        let barrier = Arc::new(Barrier::new(2));
        let mut savers = Vec::new();
        for saver in 0..2u64 {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            let doc = document(generation, Some(round + 1), round * 10 + saver);
            savers.push(tokio::spawn(async move {
                // When they save at the same instant
                barrier.wait().await;
                store.save("raced", &doc, ProjectionSave::Advance).await
            }));
        }
        let mut winners = Vec::new();
        for (saver, handle) in savers.into_iter().enumerate() {
            match handle.await.unwrap() {
                Ok(new) => {
                    assert_eq!(new, generation + 1, "round {round}");
                    winners.push(saver as u64);
                }
                Err(StoreError::ProjectionConflict {
                    expected, actual, ..
                }) => assert_eq!((expected, actual), (generation, generation + 1)),
                Err(other) => panic!("round {round}: unexpected error {other}"),
            }
        }
        // Then exactly one won, and the stored document is the winner's
        assert_eq!(winners.len(), 1, "round {round}: exactly one saver wins");
        let stored = store.load("raced").await.unwrap().unwrap();
        assert_eq!(stored.generation, generation + 1, "round {round}");
        assert_eq!(n(&stored), round * 10 + winners[0], "round {round}");
        generation = stored.generation;
    }
}

pub(super) async fn an_advancing_save_never_moves_the_checkpoint_back(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.projections;
    // Given a document at checkpoint 10
    store
        .save("p", &document(0, Some(10), 1), ProjectionSave::Advance)
        .await
        .unwrap();
    // When a save at the right generation would move it back (or clear it)
    for behind in [Some(9), None] {
        match store
            .save("p", &document(1, behind, 2), ProjectionSave::Advance)
            .await
        {
            // Then it is refused, typed, and nothing changes
            Err(StoreError::ProjectionCheckpointBehind {
                name,
                stored,
                attempted,
            }) => assert_eq!((name.as_str(), stored, attempted), ("p", Some(10), behind)),
            other => panic!("expected the checkpoint to be kept, got {other:?}"),
        }
    }
    let loaded = store.load("p").await.unwrap().unwrap();
    assert_eq!(
        (loaded.generation, loaded.checkpoint, n(&loaded)),
        (1, Some(10), 1)
    );
    // And staying at the same checkpoint (a retry of parked events) is a save
    assert_eq!(
        store
            .save("p", &document(1, Some(10), 3), ProjectionSave::Advance)
            .await
            .unwrap(),
        2
    );
}

pub(super) async fn a_replacing_save_may_move_the_checkpoint_back_but_checks_the_generation(
    fixture: Arc<dyn Fixture>,
) {
    let store = fixture.open().await.projections;
    store
        .save("p", &document(0, Some(10), 1), ProjectionSave::Advance)
        .await
        .unwrap();
    // A replacement from a stale generation is refused like any save
    assert!(matches!(
        store
            .save("p", &document(0, Some(4), 2), ProjectionSave::Replace)
            .await,
        Err(StoreError::ProjectionConflict { .. })
    ));
    // One from the stored generation replaces the document, checkpoint and all
    assert_eq!(
        store
            .save("p", &document(1, Some(4), 3), ProjectionSave::Replace)
            .await
            .unwrap(),
        2
    );
    let loaded = store.load("p").await.unwrap().unwrap();
    assert_eq!(
        (loaded.generation, loaded.checkpoint, n(&loaded)),
        (2, Some(4), 3)
    );
}

pub(super) async fn projection_documents_are_per_name(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.projections;
    store
        .save(
            "account-summary",
            &document(0, Some(5), 1),
            ProjectionSave::Advance,
        )
        .await
        .unwrap();
    store
        .save(
            "ships-by-port",
            &document(0, Some(3), 2),
            ProjectionSave::Advance,
        )
        .await
        .unwrap();
    store
        .save(
            "ships-by-port",
            &document(1, Some(8), 3),
            ProjectionSave::Advance,
        )
        .await
        .unwrap();
    let summary = store.load("account-summary").await.unwrap().unwrap();
    let ships = store.load("ships-by-port").await.unwrap().unwrap();
    assert_eq!(
        (summary.generation, summary.checkpoint, n(&summary)),
        (1, Some(5), 1)
    );
    assert_eq!(
        (ships.generation, ships.checkpoint, n(&ships)),
        (2, Some(8), 3)
    );
}

pub(super) async fn projection_documents_survive_reopening(fixture: Arc<dyn Fixture>) {
    {
        let store = fixture.open().await.projections;
        store
            .save("p", &document(0, Some(1), 1), ProjectionSave::Advance)
            .await
            .unwrap();
        store
            .save("p", &document(1, Some(42), 2), ProjectionSave::Advance)
            .await
            .unwrap();
    }
    let store = fixture.open().await.projections;
    let loaded = store.load("p").await.unwrap().unwrap();
    assert_eq!(
        (loaded.generation, loaded.checkpoint, n(&loaded)),
        (2, Some(42), 2)
    );
    // And the generation check goes on across the reopen
    assert!(matches!(
        store
            .save("p", &document(1, Some(50), 3), ProjectionSave::Advance)
            .await,
        Err(StoreError::ProjectionConflict { actual: 2, .. })
    ));
}
