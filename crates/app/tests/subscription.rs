//! Subscriptions on every store: history then live, no gap, no duplicate.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use logbook::Subscription;
use logbook_domain::{NewEvent, Payload, StreamId};
use logbook_ports::{EventFilter, EventStore, ExpectedVersion};

fn event(event_type: &str, n: u64) -> NewEvent {
    NewEvent::new(
        event_type,
        Payload::from_serialize(&serde_json::json!({ "n": n })).unwrap(),
    )
}

async fn append(store: &dyn EventStore, stream: &str, events: Vec<NewEvent>) {
    store
        .append(
            &StreamId::new(stream).unwrap(),
            ExpectedVersion::Any,
            events,
        )
        .await
        .unwrap();
}

const PATIENCE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_then_live_events_arrive_in_order_without_gap_or_duplicate() {
    for (url, stores, _dir) in support::every_store() {
        // Given three events already in the log
        let store = Arc::clone(&stores.events);
        append(
            &*store,
            "A-1",
            vec![event("E", 1), event("E", 2), event("E", 3)],
        )
        .await;
        let mut subscription =
            Subscription::new(Arc::clone(&store), 2, EventFilter::all()).with_page_size(2);
        // When it reads from position 2, and more events arrive while it waits
        let first = subscription.next().await.unwrap();
        let second = subscription.next().await.unwrap();
        let writer = {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                append(&*store, "B-1", vec![event("E", 4), event("E", 5)]).await;
            })
        };
        let third = tokio::time::timeout(PATIENCE, subscription.next())
            .await
            .expect("live event delivered")
            .unwrap();
        let fourth = tokio::time::timeout(PATIENCE, subscription.next())
            .await
            .expect("live event delivered")
            .unwrap();
        writer.await.unwrap();
        // Then it sees positions 2..=5 exactly once, in order
        let positions: Vec<u64> = [first, second, third, fourth]
            .iter()
            .map(|e| e.position)
            .collect();
        assert_eq!(positions, [2, 3, 4, 5], "{url}");
        assert!(
            subscription.next_batch(10).await.unwrap().is_empty(),
            "{url}: nothing more"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscriber_started_during_four_concurrent_writers_sees_every_event_once() {
    for (read_ahead, (url, stores, _dir)) in [false, true]
        .into_iter()
        .flat_map(|ahead| support::every_store().into_iter().map(move |s| (ahead, s)))
    {
        let store = Arc::clone(&stores.events);
        append(&*store, "Seed-0", vec![event("E", 0)]).await;
        let mut writers = Vec::new();
        for w in 0..4u64 {
            let store = Arc::clone(&store);
            writers.push(tokio::spawn(async move {
                for i in 0..50u64 {
                    append(&*store, &format!("W-{w}"), vec![event("E", w * 1000 + i)]).await;
                }
            }));
        }
        let mut subscription =
            Subscription::new(Arc::clone(&store), 1, EventFilter::all()).with_page_size(7);
        if read_ahead {
            subscription = subscription.with_read_ahead();
        }
        let total = 1 + 4 * 50;
        let mut seen = Vec::new();
        while seen.len() < total {
            let event = tokio::time::timeout(PATIENCE, subscription.next())
                .await
                .expect("no stall")
                .unwrap();
            seen.push(event.position);
        }
        for writer in writers {
            writer.await.unwrap();
        }
        assert_eq!(
            seen,
            (1..=total as u64).collect::<Vec<_>>(),
            "{url} (read ahead: {read_ahead}): in position order, no gap"
        );
        assert_eq!(
            seen.iter().collect::<HashSet<_>>().len(),
            total,
            "{url}: no duplicate"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_by_type_and_by_category_also_live() {
    for (url, stores, _dir) in support::every_store() {
        let store = Arc::clone(&stores.events);
        append(
            &*store,
            "BankAccount-1",
            vec![event("MoneyDeposited", 1), event("MoneyWithdrawn", 2)],
        )
        .await;
        append(&*store, "CargoShip-1", vec![event("ShipDocked", 3)]).await;
        let mut deposits = Subscription::new(
            Arc::clone(&store),
            1,
            EventFilter::event_types(["MoneyDeposited"]),
        )
        .with_page_size(1);
        let mut ships = Subscription::new(
            Arc::clone(&store),
            1,
            EventFilter::stream_prefix("CargoShip-"),
        );
        assert_eq!(deposits.next().await.unwrap().position, 1, "{url}");
        assert_eq!(ships.next().await.unwrap().position, 3, "{url}");
        append(
            &*store,
            "BankAccount-2",
            vec![event("MoneyWithdrawn", 4), event("MoneyDeposited", 5)],
        )
        .await;
        append(&*store, "CargoShip-2", vec![event("ShipDocked", 6)]).await;
        let next_deposit = tokio::time::timeout(PATIENCE, deposits.next())
            .await
            .unwrap()
            .unwrap();
        let next_ship = tokio::time::timeout(PATIENCE, ships.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((next_deposit.position, next_ship.position), (5, 6), "{url}");
    }
}

#[tokio::test]
async fn a_slow_consumer_holds_at_most_one_page() {
    let stores = logbook_adapters_memory::stores();
    for i in 0..100 {
        append(&*stores.events, "A-1", vec![event("E", i)]).await;
    }
    let mut subscription =
        Subscription::new(Arc::clone(&stores.events), 1, EventFilter::all()).with_page_size(10);
    let batch = subscription.next_batch(1_000).await.unwrap();
    assert_eq!(batch.len(), 10, "one page read, not the whole log");
    assert_eq!(subscription.position(), 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_subscriber_sees_every_surviving_event_once_in_order_while_scavenge_reclaims() {
    for (url, stores, _dir) in support::every_store() {
        // Given a stream kept to its latest 3 versions beside one without limits,
        // and a subscriber following the log live from the start.
        let store = Arc::clone(&stores.events);
        let kept = StreamId::new("Kept-1").unwrap();
        let policy = logbook_ports::StreamRetention::new(None, Some(3), None).unwrap();
        store.set_retention(&kept, policy).await.unwrap();
        let subscriber = {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut subscription =
                    Subscription::new(store, 1, EventFilter::all()).with_page_size(4);
                let mut seen = Vec::new();
                loop {
                    let event = tokio::time::timeout(PATIENCE, subscription.next())
                        .await
                        .expect("the subscriber keeps receiving")
                        .unwrap();
                    let done = &*event.event_type == "Done";
                    seen.push(event);
                    if done {
                        return seen;
                    }
                }
            })
        };
        // When a writer appends to both while scavenge reclaims now and then.
        let mut reclaimed = 0;
        for round in 0..40u64 {
            append(&*store, "Kept-1", vec![event("E", round)]).await;
            append(&*store, "Other-1", vec![event("E", round)]).await;
            if round % 8 == 7 {
                reclaimed += store.scavenge().await.unwrap().events;
                tokio::task::yield_now().await;
            }
        }
        append(&*store, "Other-1", vec![event("Done", 0)]).await;
        let seen = subscriber.await.unwrap();
        // Then scavenge did reclaim, and the subscriber saw every event once, in
        // position order, and every event that survives among them.
        assert!(reclaimed > 0, "{url}: nothing was reclaimed");
        assert!(
            seen.windows(2).all(|w| w[0].position < w[1].position),
            "{url}: positions strictly increase, nothing repeated"
        );
        let seen_positions: HashSet<u64> = seen.iter().map(|e| e.position).collect();
        let surviving = store
            .read_all(1, usize::MAX, &EventFilter::all())
            .await
            .unwrap();
        assert_eq!(surviving.len(), 41 + 3, "{url}: 40 others, Done and 3 kept");
        for event in &surviving {
            assert!(
                seen_positions.contains(&event.position),
                "{url}: surviving position {} was not delivered",
                event.position
            );
        }
        let others: Vec<_> = seen
            .iter()
            .filter(|e| e.stream.as_str() == "Other-1")
            .collect();
        assert_eq!(
            others.len(),
            41,
            "{url}: every event of the unlimited stream"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_ahead_a_filtered_history_gives_the_pages_a_plain_read_gives() {
    for (url, stores, _dir) in support::every_store() {
        // Given 60 events where every third is a deposit, in two categories
        let store = Arc::clone(&stores.events);
        for n in 0..60u64 {
            let (stream, kind) = match n % 3 {
                0 => ("BankAccount-1", "MoneyDeposited"),
                1 => ("BankAccount-2", "MoneyWithdrawn"),
                _ => ("CargoShip-1", "ShipDocked"),
            };
            append(&*store, stream, vec![event(kind, n)]).await;
        }
        let filter = EventFilter::event_types(["MoneyDeposited"]);
        // When one subscription reads pages of 4 plainly and another reads ahead
        let mut plain = Subscription::new(Arc::clone(&store), 1, filter.clone()).with_page_size(4);
        let mut ahead = Subscription::new(Arc::clone(&store), 1, filter)
            .with_page_size(4)
            .with_read_ahead();
        let (mut by_plain, mut by_ahead) = (Vec::new(), Vec::new());
        loop {
            let (p, a) = (
                plain.next_batch(4).await.unwrap(),
                ahead.next_batch(4).await.unwrap(),
            );
            if p.is_empty() && a.is_empty() {
                break;
            }
            by_plain.push(p.iter().map(|e| e.position).collect::<Vec<_>>());
            by_ahead.push(a.iter().map(|e| e.position).collect::<Vec<_>>());
        }
        // Then both saw the same 20 deposits in the same batches, and both
        // stand past the log's end
        assert_eq!(by_ahead, by_plain, "{url}");
        assert_eq!(
            by_plain.concat(),
            (0..20).map(|i| 3 * i + 1).collect::<Vec<u64>>(),
            "{url}"
        );
        assert_eq!(ahead.position(), plain.position(), "{url}");
        assert_eq!(ahead.position(), 61, "{url}");
    }
}
