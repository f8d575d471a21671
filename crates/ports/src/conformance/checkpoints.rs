//! Subscribers' checkpoint storage.

use std::sync::Arc;

use super::Fixture;

pub(super) async fn a_missing_checkpoint_is_none(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.checkpoints;
    assert_eq!(store.load("account-summary").await.unwrap(), None);
}

pub(super) async fn checkpoints_are_saved_overwritten_and_reset(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.checkpoints;
    store.save("account-summary", 10).await.unwrap();
    assert_eq!(store.load("account-summary").await.unwrap(), Some(10));
    store.save("account-summary", 25).await.unwrap();
    assert_eq!(store.load("account-summary").await.unwrap(), Some(25));
    store.reset("account-summary").await.unwrap();
    assert_eq!(store.load("account-summary").await.unwrap(), None);
    store.reset("never-saved").await.unwrap();
}

pub(super) async fn checkpoints_are_per_projection(fixture: Arc<dyn Fixture>) {
    let store = fixture.open().await.checkpoints;
    store.save("account-summary", 10).await.unwrap();
    store.save("ships-by-port", 3).await.unwrap();
    store.reset("ships-by-port").await.unwrap();
    assert_eq!(store.load("account-summary").await.unwrap(), Some(10));
    assert_eq!(store.load("ships-by-port").await.unwrap(), None);
}

pub(super) async fn checkpoints_survive_reopening(fixture: Arc<dyn Fixture>) {
    {
        let store = fixture.open().await.checkpoints;
        store.save("account-summary", 42).await.unwrap();
    }
    let store = fixture.open().await.checkpoints;
    assert_eq!(store.load("account-summary").await.unwrap(), Some(42));
}
