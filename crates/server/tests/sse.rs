//! Subscriptions over server-sent events, on every store: history then
//! live with four concurrent writers, exactly once and in order; resuming
//! with `Last-Event-ID`; one stream only; a slow subscriber dropped with a
//! reason; graceful shutdown closing subscriptions and answering appends.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use logbook_domain::{NewEvent, Payload, StreamId};
use logbook_ports::ExpectedVersion;
use serde_json::json;
use support::{STORES, SseReader, TestServer};

const WRITERS: usize = 4;
const PER_WRITER: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_sees_history_then_live_events_of_four_writers_exactly_once_in_order() {
    for kind in STORES {
        // Given some history
        let server = TestServer::start(kind).await;
        server
            .append("W-history", json!("any"), &["Old", "Old"])
            .await;

        // When a subscriber starts while four writers append over HTTP
        let mut reader = SseReader::open(&server, "/api/v1/log/subscribe", &[]).await;
        let mut writers = Vec::new();
        for writer in 0..WRITERS {
            let client = server.client.clone();
            let url = server.url(&format!("/api/v1/streams/W-{writer}"));
            writers.push(tokio::spawn(async move {
                for n in 0..PER_WRITER {
                    let body = json!({"events": [{"type": "Wrote", "payload": {"writer": writer, "n": n}}]});
                    let response = client.post(&url).body(body.to_string()).send().await.unwrap();
                    assert_eq!(response.status().as_u16(), 201);
                }
            }));
        }
        let total = 2 + WRITERS * PER_WRITER;
        let mut positions = Vec::new();
        let mut next_n: HashMap<u64, u64> = HashMap::new();
        for _ in 0..total {
            let event = reader.next_event().await;
            positions.push(event["position"].as_u64().unwrap());
            if event["type"] == "Wrote" {
                // Each writer's events arrive in the order it wrote them
                let writer = event["payload"]["writer"].as_u64().unwrap();
                let n = event["payload"]["n"].as_u64().unwrap();
                let expected = next_n.entry(writer).or_default();
                assert_eq!(n, *expected, "{kind}: writer {writer}");
                *expected += 1;
            }
        }
        for writer in writers {
            writer.await.unwrap();
        }

        // Then every position came exactly once, in order, with no gap at
        // the hand-over from history to live
        assert_eq!(positions, (1..=total as u64).collect::<Vec<_>>(), "{kind}");
        assert_eq!(next_n.values().sum::<u64>(), (WRITERS * PER_WRITER) as u64);
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_with_last_event_id_resumes_with_no_gap_or_repeat() {
    for kind in STORES {
        // Given ten events, and a subscriber that read four and went away
        let server = TestServer::start(kind).await;
        for n in 0..10 {
            server
                .append(&format!("R-{}", n % 3), json!("any"), &["E"])
                .await;
        }
        let mut first = SseReader::open(&server, "/api/v1/log/subscribe", &[]).await;
        let mut last_id = String::new();
        for _ in 0..4 {
            let event = first.next().await.unwrap();
            last_id = event.id.unwrap();
        }
        drop(first);

        // When it reconnects with Last-Event-ID and more events come
        let mut resumed = SseReader::open(
            &server,
            "/api/v1/log/subscribe",
            &[("last-event-id", &last_id)],
        )
        .await;
        server.append("R-9", json!("any"), &["Late"]).await;

        // Then it continues right after the last event it saw
        let mut positions = Vec::new();
        for _ in 0..7 {
            positions.push(resumed.next_event().await["position"].as_u64().unwrap());
        }
        assert_eq!(last_id, "4");
        assert_eq!(positions, [5, 6, 7, 8, 9, 10, 11], "{kind}");
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_and_category_subscriptions_see_only_their_events() {
    for kind in STORES {
        // Given events in "Box-1", "Box-10" (same prefix) and "Bag-1"
        let server = TestServer::start(kind).await;
        server.append("Box-1", json!("any"), &["A"]).await;
        server.append("Box-10", json!("any"), &["B"]).await;
        server.append("Bag-1", json!("any"), &["C"]).await;
        server.append("Box-1", json!("any"), &["D"]).await;

        // When one stream and one category are subscribed to
        let mut one = SseReader::open(&server, "/api/v1/streams/Box-1/subscribe", &[]).await;
        let mut bags = SseReader::open(&server, "/api/v1/log/subscribe?category=Bag", &[]).await;
        server.append("Bag-2", json!("any"), &["E"]).await;
        server.append("Box-1", json!("any"), &["F"]).await;

        // Then each sees its own, history and live
        let mut types = Vec::new();
        for _ in 0..3 {
            types.push(one.next_event().await["type"].as_str().unwrap().to_owned());
        }
        assert_eq!(types, ["A", "D", "F"], "{kind}");
        assert_eq!(bags.next_event().await["stream"], "Bag-1");
        assert_eq!(bags.next_event().await["stream"], "Bag-2");
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_does_not_read_is_dropped_with_a_reason_and_writers_go_on() {
    // Given a server whose subscribers may fall 8 events behind for 300 ms
    let server = TestServer::with_options("memory", |o| {
        o.subscriber_buffer = 8;
        o.slow_subscriber_grace = Duration::from_millis(300);
    })
    .await;
    let mut slow = SseReader::open(&server, "/api/v1/log/subscribe", &[]).await;

    // When far more is written than the socket and the buffer hold, and
    // the subscriber reads nothing for a while
    let payload = Payload::from_serialize(&json!({ "filler": "x".repeat(16 * 1024) })).unwrap();
    let stream = StreamId::new("Big-1").unwrap();
    for _ in 0..8 {
        let batch = (0..100)
            .map(|_| NewEvent::new("Filled", payload.clone()))
            .collect();
        server
            .stores
            .events
            .append(&stream, ExpectedVersion::Any, batch)
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    // Then writers were never held up, and the subscriber, reading again,
    // gets what was buffered and then a `dropped` event with the reason
    let (status, _) = server.append("Big-2", json!("any"), &["After"]).await;
    assert_eq!(status, 201);
    let mut received = 0;
    let last = loop {
        let event = slow.next().await.expect("a dropped event before the end");
        if event.kind.is_empty() {
            received += 1;
        } else {
            break event;
        }
    };
    assert_eq!(last.kind, "dropped", "{last:?}");
    assert!(last.data.contains("Last-Event-ID"), "{}", last.data);
    assert!(
        received < 800,
        "it was dropped before the end ({received} events)"
    );
    assert!(
        slow.next().await.is_none(),
        "the stream ends after the reason"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_subscriptions_with_an_event_and_answers_appends_in_flight() {
    for kind in STORES {
        // Given a live subscriber and appends in flight
        let mut server = TestServer::start(kind).await;
        let mut reader = SseReader::open(&server, "/api/v1/log/subscribe", &[]).await;
        server.append("S-1", json!("any"), &["Before"]).await;
        assert_eq!(reader.next_event().await["type"], "Before");
        let mut appends = Vec::new();
        for n in 0..8 {
            let client = server.client.clone();
            let url = server.url(&format!("/api/v1/streams/S-{n}"));
            appends.push(tokio::spawn(async move {
                let body = json!({"events": [{"type": "During", "payload": {}}]});
                client
                    .post(&url)
                    .body(body.to_string())
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            }));
        }
        tokio::task::yield_now().await;

        // When the server is asked to stop
        let stopped = server.begin_stop();

        // Then the subscriber is told, its stream ends, and the server
        // returns
        let closing = loop {
            let event = reader.next().await.expect("a shutdown event");
            if !event.kind.is_empty() {
                break event;
            }
        };
        assert_eq!(closing.kind, "shutdown", "{kind}");
        assert!(reader.next().await.is_none());
        tokio::time::timeout(Duration::from_secs(10), stopped)
            .await
            .expect("the server stops")
            .unwrap()
            .unwrap();

        // And every append that was accepted was answered, and is in the log
        let mut answered = 0;
        for append in appends {
            match append.await.unwrap() {
                Ok(status) => {
                    assert_eq!(status, 201, "{kind}");
                    answered += 1;
                }
                // Not yet accepted when the listener closed: refused, not lost.
                Err(error) => assert!(error.is_connect() || error.is_request(), "{error}"),
            }
        }
        let head = server.stores.events.head_position().await.unwrap().unwrap();
        assert_eq!(head, 1 + answered, "{kind}");
    }
}
