//! The record decoder never panics, whatever the bytes; whole records
//! round-trip; any damage to a record is refused.

use logbook_adapters_file::record::{self, FLAG_BATCH_END, Record};
use logbook_ports::EventId;
use proptest::prelude::*;

/// flags, position, version, id, micros, schema, write index, stream,
/// type, metadata, payload.
type Parts = (
    bool,
    u64,
    u64,
    [u8; 16],
    i64,
    u32,
    u32,
    String,
    String,
    Vec<u8>,
    Vec<u8>,
);

fn arb_record_parts() -> impl Strategy<Value = Parts> {
    (
        any::<bool>(),
        any::<u64>(),
        any::<u64>(),
        any::<[u8; 16]>(),
        any::<i64>(),
        any::<u32>(),
        any::<u32>(),
        "[^\\x00-\\x1f]{1,40}",
        "[A-Za-z]{1,20}",
        proptest::collection::vec(any::<u8>(), 0..64),
        proptest::collection::vec(any::<u8>(), 0..256),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = record::decode(&bytes);
        let _ = record::frame_body_len(&bytes);
    }

    #[test]
    fn records_round_trip_and_any_damage_is_refused(
        parts in arb_record_parts(),
        at in any::<prop::sample::Index>(),
        xor in 1u8..,
        cut in any::<prop::sample::Index>(),
    ) {
        let (batch_end, position, version, id, micros, schema, write_index, stream, event_type, metadata, payload) = parts;
        let record = Record {
            flags: if batch_end { FLAG_BATCH_END } else { 0 },
            position,
            version,
            id: EventId(uuid::Uuid::from_bytes(id)),
            recorded_at_micros: micros,
            schema_version: schema,
            write_index,
            stream: &stream,
            event_type: &event_type,
            metadata: &metadata,
            payload: &payload,
        };
        // Given an encoded record
        let mut bytes = Vec::new();
        record::encode(&record, &mut bytes);
        // Then it decodes to itself, with trailing bytes left alone
        let mut with_more = bytes.clone();
        with_more.extend_from_slice(b"next record");
        let (decoded, len) = record::decode(&with_more).unwrap();
        prop_assert_eq!(decoded, record);
        prop_assert_eq!(len, bytes.len());
        // And any changed byte is refused
        let mut damaged = bytes.clone();
        damaged[at.index(bytes.len())] ^= xor;
        prop_assert!(record::decode(&damaged).is_err());
        // And any strict prefix is refused
        let short = &bytes[..cut.index(bytes.len())];
        prop_assert!(record::decode(short).is_err());
    }
}
