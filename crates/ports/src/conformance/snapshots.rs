//! Snapshot storage.

use std::sync::Arc;

use chrono::DateTime;
use serde_json::json;

use super::Fixture;
use super::support::*;
use crate::snapshot::Snapshot;

fn snapshot(name: &str, version: u64) -> Snapshot {
    Snapshot {
        stream: stream(name),
        version,
        schema_version: 2,
        state: payload(json!({"balance": format!("{version}.00"), "owner": "Zoë"})),
        taken_at: DateTime::from_timestamp_micros(1_700_000_000_000_000 + version as i64).unwrap(),
    }
}

pub(super) async fn a_missing_snapshot_is_none(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.snapshots;
    assert_eq!(store.load(&stream("A-1")).await.unwrap(), None);
}

pub(super) async fn a_snapshot_round_trips(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.snapshots;
    let saved = snapshot("A-1", 10);
    store.save(saved.clone()).await.unwrap();
    let loaded = store
        .load(&stream("A-1"))
        .await
        .unwrap()
        .expect("saved snapshot");
    assert_eq!(loaded.stream, saved.stream);
    assert_eq!(loaded.version, 10);
    assert_eq!(loaded.schema_version, 2);
    assert_eq!(loaded.taken_at, saved.taken_at);
    assert_eq!(
        loaded.state.to_value::<serde_json::Value>().unwrap(),
        saved.state.to_value::<serde_json::Value>().unwrap()
    );
}

pub(super) async fn a_newer_snapshot_replaces_an_older_one_never_the_reverse(
    fixture: Arc<dyn Fixture>,
) {
    let store = fixture.open().await.snapshots;
    store.save(snapshot("A-1", 10)).await.unwrap();
    store.save(snapshot("A-1", 20)).await.unwrap();
    assert_eq!(
        store.load(&stream("A-1")).await.unwrap().unwrap().version,
        20
    );
    store.save(snapshot("A-1", 15)).await.unwrap();
    assert_eq!(
        store.load(&stream("A-1")).await.unwrap().unwrap().version,
        20,
        "a late, older snapshot is ignored"
    );
}

pub(super) async fn a_snapshot_at_the_same_version_replaces_the_stored_one(
    fixture: Arc<dyn Fixture>,
) {
    let store = fixture.open().await.snapshots;
    store.save(snapshot("A-1", 10)).await.unwrap();
    let mut again = snapshot("A-1", 10);
    again.state = payload(json!({"balance": "replaced"}));
    store.save(again).await.unwrap();
    let loaded = store.load(&stream("A-1")).await.unwrap().unwrap();
    assert_eq!(
        loaded.state.to_value::<serde_json::Value>().unwrap()["balance"],
        "replaced"
    );
}

pub(super) async fn snapshots_are_per_stream_and_deletable(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.snapshots;
    store.save(snapshot("A-1", 10)).await.unwrap();
    store.save(snapshot("A-2", 30)).await.unwrap();
    assert_eq!(
        store.load(&stream("A-1")).await.unwrap().unwrap().version,
        10
    );
    store.delete(&stream("A-1")).await.unwrap();
    assert_eq!(store.load(&stream("A-1")).await.unwrap(), None);
    assert_eq!(
        store.load(&stream("A-2")).await.unwrap().unwrap().version,
        30
    );
    store.delete(&stream("A-9")).await.unwrap();
}

pub(super) async fn snapshots_survive_reopening(fixture: Arc<dyn Fixture>) {
    {
        let store = fixture.open().await.snapshots;
        store.save(snapshot("A-1", 10)).await.unwrap();
    }
    let store = fixture.open().await.snapshots;
    assert_eq!(
        store.load(&stream("A-1")).await.unwrap().unwrap().version,
        10
    );
}
