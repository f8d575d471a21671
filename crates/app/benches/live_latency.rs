//! End-to-end latency from a call to append to a live subscriber
//! receiving the event, per store: p50, p99 and max over 2,000 appends.
//! Not a criterion timing (criterion reports means, this needs the tail):
//! it prints percentiles.

use std::sync::Arc;
use std::time::{Duration, Instant};

use logbook::{StoreUrl, Subscription};
use logbook_domain::{NewEvent, Payload, StreamId};
use logbook_ports::{EventFilter, ExpectedVersion};

const SAMPLES: usize = 2_000;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for url in [
        StoreUrl::Memory,
        StoreUrl::Sqlite(dir.path().join("lat.db")),
        StoreUrl::File(dir.path().join("log")),
    ] {
        let Ok(stores) = url.open() else { continue };
        let latencies = rt.block_on(async {
            let store = Arc::clone(&stores.events);
            let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<Instant>();
            let mut subscription = Subscription::new(Arc::clone(&store), 1, EventFilter::all());
            let subscriber = tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(SAMPLES);
                for _ in 0..SAMPLES {
                    subscription.next().await.unwrap();
                    let received = Instant::now();
                    let appended: Instant = receiver.recv().await.unwrap();
                    latencies.push(received.saturating_duration_since(appended));
                }
                latencies
            });
            let stream = StreamId::new("Latency-1").unwrap();
            let payload = Payload::from_serialize(&serde_json::json!({"n": 1})).unwrap();
            for _ in 0..SAMPLES {
                // From the call to append (so the commit itself counts) to
                // the subscriber holding the event.
                sender.send(Instant::now()).unwrap();
                store
                    .append(
                        &stream,
                        ExpectedVersion::Any,
                        vec![NewEvent::new("Pinged", payload.clone())],
                    )
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            subscriber.await.unwrap()
        });
        let mut sorted = latencies;
        sorted.sort();
        let at = |q: f64| sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)];
        println!(
            "live_latency/{}: append called -> subscriber holds the event: p50 {:?}, p99 {:?}, max {:?} over {SAMPLES} events",
            url.to_string().split(':').next().unwrap_or("store"),
            at(0.50),
            at(0.99),
            sorted[sorted.len() - 1]
        );
    }
}
