//! Subjects' keys: one key per subject, ever; a shred leaves a tombstone
//! that no later call turns back into a key.

use std::sync::Arc;

use logbook_domain::SubjectId;
use tokio::sync::Barrier;

use super::Fixture;
use crate::{SubjectKey, SubjectKeyStore, WrappedKey};

/// Tasks racing to create one subject's key.
const RACERS: usize = 8;

fn subject(id: &str) -> SubjectId {
    SubjectId::new(id).expect("a valid subject id")
}

/// A wrapped key that tells its creator apart (opaque bytes to the store).
fn key(tag: &str) -> WrappedKey {
    WrappedKey::new(format!("sealed-key-of-{tag}").into_bytes())
}

fn wrapped(record: &SubjectKey) -> &WrappedKey {
    match record {
        SubjectKey::Active { wrapped, .. } => wrapped,
        SubjectKey::Shredded { .. } => panic!("expected a live key, found {record:?}"),
    }
}

fn is_shredded(record: &SubjectKey) -> bool {
    matches!(record, SubjectKey::Shredded { .. })
}

pub(super) async fn an_unknown_subject_has_no_key(fixture: Arc<dyn Fixture>) {
    let keys = fixture.open().await.subject_keys;
    assert_eq!(keys.get(&subject("user-nobody")).await.unwrap(), None);
}

pub(super) async fn get_or_create_stores_the_candidate_and_returns_it(fixture: Arc<dyn Fixture>) {
    let keys = fixture.open().await.subject_keys;
    // When a new subject gets a key
    let created = keys
        .get_or_create(&subject("user-alice"), key("first"))
        .await
        .unwrap();
    // Then it is the candidate, and it is what is stored
    assert_eq!(wrapped(&created), &key("first"));
    assert_eq!(
        keys.get(&subject("user-alice")).await.unwrap(),
        Some(created)
    );
}

pub(super) async fn a_second_get_or_create_returns_the_first_key(fixture: Arc<dyn Fixture>) {
    let keys = fixture.open().await.subject_keys;
    // Given a subject with a key
    let first = keys
        .get_or_create(&subject("user-alice"), key("first"))
        .await
        .unwrap();
    // When another caller offers another candidate
    let second = keys
        .get_or_create(&subject("user-alice"), key("second"))
        .await
        .unwrap();
    // Then it gets the first key, and the first key stays stored
    assert_eq!(second, first);
    assert_eq!(keys.get(&subject("user-alice")).await.unwrap(), Some(first));
}

pub(super) async fn a_shred_leaves_a_tombstone_that_get_returns(fixture: Arc<dyn Fixture>) {
    let keys = fixture.open().await.subject_keys;
    // Given a subject with a key, and another one
    keys.get_or_create(&subject("user-alice"), key("alice"))
        .await
        .unwrap();
    let bob = keys
        .get_or_create(&subject("user-bob"), key("bob"))
        .await
        .unwrap();
    // When the first is shredded
    let tombstone = keys.shred(&subject("user-alice")).await.unwrap();
    // Then it reads as its tombstone, and the other keeps its key
    assert!(is_shredded(&tombstone), "{tombstone:?}");
    assert_eq!(
        keys.get(&subject("user-alice")).await.unwrap(),
        Some(tombstone)
    );
    assert_eq!(keys.get(&subject("user-bob")).await.unwrap(), Some(bob));
}

pub(super) async fn get_or_create_after_a_shred_returns_the_tombstone(fixture: Arc<dyn Fixture>) {
    let keys = fixture.open().await.subject_keys;
    // Given a shredded subject
    keys.get_or_create(&subject("user-alice"), key("old"))
        .await
        .unwrap();
    let tombstone = keys.shred(&subject("user-alice")).await.unwrap();
    // When a caller asks for a key again
    let again = keys
        .get_or_create(&subject("user-alice"), key("new"))
        .await
        .unwrap();
    // Then it gets the tombstone, never a new key
    assert_eq!(again, tombstone);
    assert_eq!(
        keys.get(&subject("user-alice")).await.unwrap(),
        Some(tombstone)
    );
}

pub(super) async fn shredding_again_returns_the_first_tombstone(fixture: Arc<dyn Fixture>) {
    let keys = fixture.open().await.subject_keys;
    keys.get_or_create(&subject("user-alice"), key("alice"))
        .await
        .unwrap();
    let first = keys.shred(&subject("user-alice")).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    let second = keys.shred(&subject("user-alice")).await.unwrap();
    // The same tombstone, the same time
    assert_eq!(second, first);
}

pub(super) async fn shredding_an_unknown_subject_records_a_tombstone(fixture: Arc<dyn Fixture>) {
    let keys = fixture.open().await.subject_keys;
    // When a subject that never had a key is shredded
    let tombstone = keys.shred(&subject("user-carol")).await.unwrap();
    // Then it has a tombstone, and can never get a key
    assert!(is_shredded(&tombstone), "{tombstone:?}");
    assert_eq!(
        keys.get(&subject("user-carol")).await.unwrap(),
        Some(tombstone.clone())
    );
    assert_eq!(
        keys.get_or_create(&subject("user-carol"), key("carol"))
            .await
            .unwrap(),
        tombstone
    );
}

pub(super) async fn list_pages_in_subject_order_short_only_at_the_end(fixture: Arc<dyn Fixture>) {
    let keys = fixture.open().await.subject_keys;
    // Given seven subjects, stored out of order, one shredded; ids whose
    // byte order differs from a case-folding or locale order
    let ids = [
        "user-e", "User-B", "user-a", "user-d", "user-é", "user-c", "user-Z",
    ];
    for id in ids {
        keys.get_or_create(&subject(id), key(id)).await.unwrap();
    }
    keys.shred(&subject("user-c")).await.unwrap();
    let mut expected: Vec<&str> = ids.to_vec();
    expected.sort_unstable();
    // When they are listed three at a time
    let mut seen = Vec::new();
    let mut after: Option<SubjectId> = None;
    loop {
        let page = keys.list(after.as_ref(), 3).await.unwrap();
        let full = page.len() == 3;
        for (id, record) in &page {
            if id.as_str() == "user-c" {
                assert!(is_shredded(record), "{record:?}");
            } else {
                assert_eq!(wrapped(record), &key(id.as_str()));
            }
            seen.push(id.as_str().to_owned());
        }
        after = page.last().map(|(id, _)| id.clone());
        if !full {
            break;
        }
    }
    // Then every subject comes once, in byte order, and only the last page
    // is short (7 = 3 + 3 + 1)
    assert_eq!(seen, expected);
    assert_eq!(keys.list(None, 0).await.unwrap(), Vec::new());
    let past_the_end = keys.list(Some(&subject("user-é")), 3).await.unwrap();
    assert_eq!(past_the_end, Vec::new());
}

pub(super) async fn rewrap_is_a_compare_and_set(fixture: Arc<dyn Fixture>) {
    let keys = fixture.open().await.subject_keys;
    let alice = subject("user-alice");
    keys.get_or_create(&alice, key("v1")).await.unwrap();
    // A stale `current` changes nothing
    assert!(!keys.rewrap(&alice, &key("other"), key("v2")).await.unwrap());
    assert_eq!(
        wrapped(&keys.get(&alice).await.unwrap().unwrap()),
        &key("v1")
    );
    // The stored one is replaced
    assert!(keys.rewrap(&alice, &key("v1"), key("v2")).await.unwrap());
    let record = keys.get(&alice).await.unwrap().unwrap();
    assert_eq!(wrapped(&record), &key("v2"));
    // ... and the old one no longer matches
    assert!(!keys.rewrap(&alice, &key("v1"), key("v3")).await.unwrap());
    // An unknown subject answers false and gets no key
    let nobody = subject("user-nobody");
    assert!(!keys.rewrap(&nobody, &key("v1"), key("v2")).await.unwrap());
    assert_eq!(keys.get(&nobody).await.unwrap(), None);
    // A shredded one answers false and stays shredded
    let tombstone = keys.shred(&alice).await.unwrap();
    assert!(!keys.rewrap(&alice, &key("v2"), key("v3")).await.unwrap());
    assert_eq!(keys.get(&alice).await.unwrap(), Some(tombstone));
}

pub(super) async fn keys_and_tombstones_survive_reopening(fixture: Arc<dyn Fixture>) {
    let (alice, carol) = {
        let keys = fixture.open().await.subject_keys;
        let alice = keys
            .get_or_create(&subject("user-alice"), key("alice"))
            .await
            .unwrap();
        keys.get_or_create(&subject("user-carol"), key("carol"))
            .await
            .unwrap();
        let carol = keys.shred(&subject("user-carol")).await.unwrap();
        (alice, carol)
    };
    let keys = fixture.open().await.subject_keys;
    assert_eq!(keys.get(&subject("user-alice")).await.unwrap(), Some(alice));
    assert_eq!(
        keys.get(&subject("user-carol")).await.unwrap(),
        Some(carol.clone())
    );
    assert_eq!(
        keys.get_or_create(&subject("user-carol"), key("again"))
            .await
            .unwrap(),
        carol
    );
}

pub(super) async fn concurrent_creators_of_one_subject_all_get_one_key(fixture: Arc<dyn Fixture>) {
    // Given many callers, each on its own open of the store where the
    // fixture allows it, each with its own candidate
    let shared = fixture.open().await.subject_keys;
    let mut stores: Vec<Arc<dyn SubjectKeyStore>> = Vec::new();
    for _ in 0..RACERS {
        stores.push(if fixture.opens_side_by_side() {
            fixture.open().await.subject_keys
        } else {
            Arc::clone(&shared)
        });
    }
    for round in 0..4 {
        let id = subject(&format!("user-raced-{round}"));
        let barrier = Arc::new(Barrier::new(RACERS));
        let mut racers = Vec::new();
        for (racer, store) in stores.iter().enumerate() {
            let store = Arc::clone(store);
            let barrier = Arc::clone(&barrier);
            let id = id.clone();
            racers.push(tokio::spawn(async move {
                // When they all ask for the new subject's key at once
                barrier.wait().await;
                store
                    .get_or_create(&id, key(&format!("racer-{racer}")))
                    .await
            }));
        }
        let mut answers = Vec::new();
        for racer in racers {
            answers.push(racer.await.unwrap().unwrap());
        }
        // Then all get the same key, one of the candidates, and exactly
        // that one is stored
        let first = answers[0].clone();
        assert!(
            answers.iter().all(|answer| *answer == first),
            "round {round}: {answers:?}"
        );
        let won = wrapped(&first).clone();
        assert!(
            (0..RACERS).any(|racer| key(&format!("racer-{racer}")) == won),
            "round {round}: the stored key is one of the candidates"
        );
        assert_eq!(shared.get(&id).await.unwrap(), Some(first.clone()));
        for store in &stores {
            assert_eq!(store.get(&id).await.unwrap(), Some(first.clone()));
        }
    }
}
