//! Resident memory of the in-memory store per 1,000,000 events of ~235-byte
//! payloads. Not a timing: it prints the growth of the process's resident
//! set (Linux `/proc/self/statm`) while the events are appended.

use logbook_adapters_memory::MemoryEventStore;
use logbook_domain::{NewEvent, Payload, StreamId};
use logbook_ports::{EventStore, ExpectedVersion};

const EVENTS: usize = 1_000_000;
const STREAMS: usize = 10_000;

fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn main() {
    // `cargo bench` passes criterion's flags; a listing run must do nothing.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let payload = Payload::from_serialize(&serde_json::json!({
        "amount": "1400.00",
        "description": "Monthly salary deposit from ACME Corporation, reference 2026-11-23, batch 7",
        "currency": "USD",
        "account": "BankAccount-acc_001",
        "tags": ["salary", "recurring", "payroll", "imported"],
        "note": "padding to 2"
    }))
    .expect("serializable");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = MemoryEventStore::new();
    let before = resident_bytes();
    rt.block_on(async {
        let per_stream = EVENTS / STREAMS;
        for s in 0..STREAMS {
            let stream = StreamId::new(format!("BankAccount-{s:05}")).unwrap();
            let batch = (0..per_stream)
                .map(|_| NewEvent::new("MoneyDeposited", payload.clone()))
                .collect();
            store
                .append(&stream, ExpectedVersion::Any, batch)
                .await
                .unwrap();
        }
    });
    let after = resident_bytes();
    match (before, after) {
        (Some(before), Some(after)) => println!(
            "memory/footprint: {EVENTS} events, {} B payload each, {STREAMS} streams: {:.0} MB resident ({:.0} B per event)",
            payload.len(),
            (after - before) as f64 / 1e6,
            (after - before) as f64 / EVENTS as f64
        ),
        _ => println!("memory/footprint: /proc/self/statm is not available on this system"),
    }
}
