//! The framed event record: encoding and decoding, pure functions over byte
//! slices (no I/O), so the decoder can be fuzzed on arbitrary input.
//!
//! A frame is `body length: u32 LE`, `CRC32C(length bytes ++ body): u32 LE`,
//! then the body; see docs/file-format.md for the body's fields.

use logbook_domain::EventId;

/// Bytes before a record's body: length (4) and checksum (4).
pub const FRAME_HEADER_LEN: usize = 8;

/// Bytes of a body before its variable-length fields.
pub const BODY_FIXED_LEN: usize = 61;

/// Largest body accepted (1 GiB): a length above it is damage, not data.
pub const MAX_BODY_LEN: usize = 1 << 30;

/// Flag: the last event of its append batch. A batch is visible only when
/// its last record is present.
pub const FLAG_BATCH_END: u8 = 0b01;

/// Flag: the record was reclaimed by a scavenge (its stream's retention
/// hides it): its metadata and payload are gone, every other field stays.
pub const FLAG_RECLAIMED: u8 = 0b10;

const KNOWN_FLAGS: u8 = FLAG_BATCH_END | FLAG_RECLAIMED;

/// An event record's fields, borrowed from a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// [`FLAG_BATCH_END`] and/or [`FLAG_RECLAIMED`], or 0.
    pub flags: u8,
    /// Global position.
    pub position: u64,
    /// Stream version.
    pub version: u64,
    /// Event id.
    pub id: EventId,
    /// Recorded-at time, microseconds since the Unix epoch (UTC).
    pub recorded_at_micros: i64,
    /// Schema version of the payload.
    pub schema_version: u32,
    /// How many records precede this one in the same write to the segment
    /// (one group commit): the write began at `position - write_index`.
    pub write_index: u32,
    /// Stream id (UTF-8).
    pub stream: &'a str,
    /// Event type (UTF-8).
    pub event_type: &'a str,
    /// Metadata as JSON; empty when the event has none.
    pub metadata: &'a [u8],
    /// Payload as JSON.
    pub payload: &'a [u8],
}

impl Record<'_> {
    /// Length of this record's body.
    pub fn body_len(&self) -> usize {
        BODY_FIXED_LEN
            + self.stream.len()
            + self.event_type.len()
            + self.metadata.len()
            + self.payload.len()
    }

    /// Length of this record's whole frame.
    pub fn frame_len(&self) -> usize {
        FRAME_HEADER_LEN + self.body_len()
    }

    /// True when a scavenge cut this record down.
    pub fn is_reclaimed(&self) -> bool {
        self.flags & FLAG_RECLAIMED != 0
    }

    /// True when this record ends its batch.
    pub fn ends_batch(&self) -> bool {
        self.flags & FLAG_BATCH_END != 0
    }

    /// Position of the first record of the write this record was part of.
    pub fn write_start(&self) -> u64 {
        self.position.saturating_sub(u64::from(self.write_index))
    }
}

/// The frame length of an event with these variable parts.
pub fn frame_len_for(stream: usize, event_type: usize, metadata: usize, payload: usize) -> usize {
    FRAME_HEADER_LEN + BODY_FIXED_LEN + stream + event_type + metadata + payload
}

/// Why a record cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A field is longer than the format allows.
    #[error("{field} is {len} bytes; at most {max} fit in a record")]
    TooLong {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Checks that a record with these parts can be encoded.
///
/// # Errors
/// [`EncodeError::TooLong`] for a field or body over the format's limits.
pub fn check_sizes(
    stream: usize,
    event_type: usize,
    metadata: usize,
    payload: usize,
) -> Result<(), EncodeError> {
    let too_long = |field, len, max| Err(EncodeError::TooLong { field, len, max });
    if stream > usize::from(u16::MAX) {
        return too_long("stream id", stream, usize::from(u16::MAX));
    }
    if event_type > usize::from(u16::MAX) {
        return too_long("event type", event_type, usize::from(u16::MAX));
    }
    let body = BODY_FIXED_LEN + stream + event_type + metadata + payload;
    if body > MAX_BODY_LEN {
        return too_long(
            "payload and metadata",
            metadata + payload,
            MAX_BODY_LEN - BODY_FIXED_LEN,
        );
    }
    Ok(())
}

/// Appends `record`'s frame to `out`. Call [`check_sizes`] first: lengths
/// that do not fit are a programming error here.
pub fn encode(record: &Record<'_>, out: &mut Vec<u8>) {
    let body_len = record.body_len();
    let len = u32::try_from(body_len).expect("body length checked by check_sizes");
    let short = |n: usize| u16::try_from(n).expect("checked by check_sizes");
    let long = |n: usize| u32::try_from(n).expect("checked by check_sizes");
    // The frame header and the fixed fields, built on the stack and copied
    // once; the checksum goes in last.
    let mut fixed = [0u8; FRAME_HEADER_LEN + BODY_FIXED_LEN];
    let mut put = |at: usize, bytes: &[u8]| fixed[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, &len.to_le_bytes());
    let b = FRAME_HEADER_LEN;
    put(b, &[record.flags]);
    put(b + 1, &record.position.to_le_bytes());
    put(b + 9, &record.version.to_le_bytes());
    put(b + 17, record.id.as_uuid().as_bytes());
    put(b + 33, &record.recorded_at_micros.to_le_bytes());
    put(b + 41, &record.schema_version.to_le_bytes());
    put(b + 45, &record.write_index.to_le_bytes());
    put(b + 49, &short(record.stream.len()).to_le_bytes());
    put(b + 51, &short(record.event_type.len()).to_le_bytes());
    put(b + 53, &long(record.metadata.len()).to_le_bytes());
    put(b + 57, &long(record.payload.len()).to_le_bytes());
    let start = out.len();
    out.reserve(FRAME_HEADER_LEN + body_len);
    out.extend_from_slice(&fixed);
    out.extend_from_slice(record.stream.as_bytes());
    out.extend_from_slice(record.event_type.as_bytes());
    out.extend_from_slice(record.metadata);
    out.extend_from_slice(record.payload);
    let crc = crc32c::crc32c_append(
        crc32c::crc32c(&out[start..start + 4]),
        &out[start + FRAME_HEADER_LEN..],
    );
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Why bytes are not a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The buffer ends before the frame does: `needed` bytes in all would
    /// hold it (as far as the length field can be trusted).
    #[error("frame is incomplete: {needed} bytes needed, {available} present")]
    Incomplete {
        /// Bytes needed from the frame's start.
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// The frame is whole but wrong: checksum, length or field damage.
    #[error("{0}")]
    Invalid(String),
}

/// The body length a frame header announces, if it is plausible.
///
/// # Errors
/// [`DecodeError`] for a short header or an impossible length.
pub fn frame_body_len(bytes: &[u8]) -> Result<usize, DecodeError> {
    let Some(header) = bytes.get(..FRAME_HEADER_LEN) else {
        return Err(DecodeError::Incomplete {
            needed: FRAME_HEADER_LEN,
            available: bytes.len(),
        });
    };
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    if !(BODY_FIXED_LEN..=MAX_BODY_LEN).contains(&len) {
        return Err(DecodeError::Invalid(format!(
            "record length {len} is out of range ({BODY_FIXED_LEN}..={MAX_BODY_LEN})"
        )));
    }
    Ok(len)
}

/// Decodes the frame at the start of `bytes`: the record and the frame's
/// length. Checks the checksum, the field lengths, the flags and that the
/// strings and JSON fields are UTF-8; never panics.
///
/// # Errors
/// [`DecodeError::Incomplete`] when `bytes` ends inside the frame,
/// [`DecodeError::Invalid`] when the frame is damaged.
pub fn decode(bytes: &[u8]) -> Result<(Record<'_>, usize), DecodeError> {
    let frame_len = check_frame(bytes)?;
    decode_body(&bytes[FRAME_HEADER_LEN..frame_len]).map(|record| (record, frame_len))
}

/// Checks the frame at the start of `bytes` (length and checksum, not the
/// body's fields) and returns its length; [`decode`] does this first.
///
/// # Errors
/// As [`decode`], for the length and the checksum.
pub fn check_frame(bytes: &[u8]) -> Result<usize, DecodeError> {
    let body_len = frame_body_len(bytes)?;
    let frame_len = FRAME_HEADER_LEN + body_len;
    let Some(frame) = bytes.get(..frame_len) else {
        return Err(DecodeError::Incomplete {
            needed: frame_len,
            available: bytes.len(),
        });
    };
    let stored = u32::from_le_bytes(frame[4..8].try_into().expect("4 bytes"));
    let crc = crc32c::crc32c_append(crc32c::crc32c(&frame[..4]), &frame[FRAME_HEADER_LEN..]);
    if crc != stored {
        return Err(DecodeError::Invalid(format!(
            "checksum mismatch: stored {stored:08x}, computed {crc:08x}"
        )));
    }
    Ok(frame_len)
}

/// Decodes a whole frame whose length and checksum [`check_frame`] has
/// already verified (`frame` is exactly the frame); checks the body's
/// fields as [`decode`] does.
///
/// # Errors
/// [`DecodeError::Invalid`] for damaged fields.
pub fn decode_checked(frame: &[u8]) -> Result<Record<'_>, DecodeError> {
    decode_body(frame.get(FRAME_HEADER_LEN..).unwrap_or_default())
}

fn invalid(detail: impl Into<String>) -> DecodeError {
    DecodeError::Invalid(detail.into())
}

/// Decodes a body whose checksum was checked.
fn decode_body(body: &[u8]) -> Result<Record<'_>, DecodeError> {
    let fixed = body
        .get(..BODY_FIXED_LEN)
        .ok_or_else(|| invalid("record body is shorter than its fixed fields"))?;
    let u16_at = |at: usize| usize::from(u16::from_le_bytes([fixed[at], fixed[at + 1]]));
    let u32_at = |at: usize| u32::from_le_bytes(fixed[at..at + 4].try_into().expect("4 bytes"));
    let u64_at = |at: usize| u64::from_le_bytes(fixed[at..at + 8].try_into().expect("8 bytes"));
    let flags = fixed[0];
    if flags & !KNOWN_FLAGS != 0 {
        return Err(invalid(format!("unknown record flags {flags:#04x}")));
    }
    let id = EventId(uuid::Uuid::from_bytes(
        fixed[17..33].try_into().expect("16 bytes"),
    ));
    let (stream_len, type_len) = (u16_at(49), u16_at(51));
    let (metadata_len, payload_len) = (u32_at(53) as usize, u32_at(57) as usize);
    let total = BODY_FIXED_LEN
        .checked_add(stream_len)
        .and_then(|n| n.checked_add(type_len))
        .and_then(|n| n.checked_add(metadata_len))
        .and_then(|n| n.checked_add(payload_len));
    if total != Some(body.len()) {
        return Err(invalid(format!(
            "field lengths ({stream_len}, {type_len}, {metadata_len}, {payload_len}) do not add up to the body length {}",
            body.len()
        )));
    }
    let rest = &body[BODY_FIXED_LEN..];
    let (stream, rest) = rest.split_at(stream_len);
    let (event_type, rest) = rest.split_at(type_len);
    let (metadata, payload) = rest.split_at(metadata_len);
    let stream = std::str::from_utf8(stream).map_err(|_| invalid("stream id is not UTF-8"))?;
    let event_type =
        std::str::from_utf8(event_type).map_err(|_| invalid("event type is not UTF-8"))?;
    if stream.is_empty() || event_type.is_empty() {
        return Err(invalid("empty stream id or event type"));
    }
    Ok(Record {
        flags,
        position: u64_at(1),
        version: u64_at(9),
        id,
        recorded_at_micros: u64_at(33) as i64,
        schema_version: u32_at(41),
        write_index: u32_at(45),
        stream,
        event_type,
        metadata,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample<'a>() -> Record<'a> {
        Record {
            flags: FLAG_BATCH_END,
            position: 7,
            version: 3,
            id: EventId::new(),
            recorded_at_micros: 1_700_000_000_123_456,
            schema_version: 2,
            write_index: 4,
            stream: "Ship-Ünïcødé",
            event_type: "Arrived",
            metadata: br#"{"correlation_id":"x"}"#,
            payload: br#"{"port":"Hamburg"}"#,
        }
    }

    #[test]
    fn a_record_round_trips() {
        let record = sample();
        let mut out = Vec::new();
        encode(&record, &mut out);
        assert_eq!(out.len(), record.frame_len());
        let (decoded, len) = decode(&out).unwrap();
        assert_eq!(decoded, record);
        assert_eq!(len, out.len());
    }

    #[test]
    fn every_prefix_is_incomplete_and_every_flip_is_caught() {
        let mut out = Vec::new();
        encode(&sample(), &mut out);
        for cut in 0..out.len() {
            assert!(matches!(
                decode(&out[..cut]),
                Err(DecodeError::Incomplete { .. } | DecodeError::Invalid(_))
            ));
        }
        for at in 0..out.len() {
            let mut bad = out.clone();
            bad[at] ^= 0x40;
            assert!(decode(&bad).is_err(), "flip at {at} went unnoticed");
        }
    }
}
