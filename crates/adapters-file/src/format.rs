//! The on-disk layout shared by every file of a store: format version,
//! segment header, file names, and the checksummed envelope of the small
//! files (snapshots, projection documents, checkpoints). docs/file-format.md describes it byte by
//! byte; the constants here are the source of truth.

use std::path::Path;

/// Newest format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The first bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"LOGBOOK\x00";

/// Length of a segment header: magic (8), format version (4), first global
/// position (8), CRC32C of those 20 bytes (4).
pub const SEGMENT_HEADER_LEN: usize = 24;

/// Extension of segment files.
pub const SEGMENT_EXT: &str = "seg";

/// Extension of a sealed segment's index sidecar (same name as the
/// segment otherwise; see `sidecar.rs`).
pub const SIDECAR_EXT: &str = "idx";

/// Digits in a segment file name (the segment's first global position,
/// zero-padded).
pub const SEGMENT_NAME_DIGITS: usize = 20;

/// Name of the lock file in the store directory.
pub const LOCK_FILE: &str = "LOCK";

/// Name of the checkpoints file.
pub const CHECKPOINTS_FILE: &str = "checkpoints";

/// Every stream's retention policy, in one file.
pub const RETENTION_FILE: &str = "retention";

/// Name of the durable-mark file (see `durable.rs`).
pub const DURABLE_FILE: &str = "durable";

/// Name of the file holding data subjects' wrapped keys and tombstones.
pub const SUBJECT_KEYS_FILE: &str = "subject-keys";

/// Name of the snapshots directory.
pub const SNAPSHOTS_DIR: &str = "snapshots";

/// Name of the directory of read models' documents.
pub const PROJECTIONS_DIR: &str = "projections";

/// Suffix of files being written before an atomic rename.
pub const TEMP_SUFFIX: &str = ".tmp";

/// The file name of the segment whose first event has `first_position`.
pub fn segment_name(first_position: u64) -> String {
    format!(
        "{first_position:0width$}.{SEGMENT_EXT}",
        width = SEGMENT_NAME_DIGITS
    )
}

/// The first position encoded in a segment file name, if it is one.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_EXT)?.strip_suffix('.')?;
    if digits.len() != SEGMENT_NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Encodes a segment header.
pub fn encode_segment_header(first_position: u64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut header = [0u8; SEGMENT_HEADER_LEN];
    header[..8].copy_from_slice(&SEGMENT_MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[12..20].copy_from_slice(&first_position.to_le_bytes());
    let crc = crc32c::crc32c(&header[..20]);
    header[20..24].copy_from_slice(&crc.to_le_bytes());
    header
}

/// Why a segment header was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// Fewer bytes than a header.
    Short,
    /// Not a logbook segment, or a damaged header.
    Invalid(String),
    /// Written by a newer format.
    Version(u32),
}

/// Decodes a segment header: its first global position.
///
/// # Errors
/// [`HeaderError`] for a short, damaged or newer header.
pub fn decode_segment_header(bytes: &[u8]) -> Result<u64, HeaderError> {
    let header = bytes.get(..SEGMENT_HEADER_LEN).ok_or(HeaderError::Short)?;
    if header[..8] != SEGMENT_MAGIC {
        return Err(HeaderError::Invalid(
            "bad magic: not a logbook segment".into(),
        ));
    }
    let stored = u32::from_le_bytes(header[20..24].try_into().expect("4 bytes"));
    if crc32c::crc32c(&header[..20]) != stored {
        return Err(HeaderError::Invalid(
            "segment header checksum mismatch".into(),
        ));
    }
    let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    if version > FORMAT_VERSION {
        return Err(HeaderError::Version(version));
    }
    Ok(u64::from_le_bytes(
        header[12..20].try_into().expect("8 bytes"),
    ))
}

/// Magic of the small files (snapshots, projection documents,
/// checkpoints): kind-specific.
pub type FileMagic = [u8; 8];

/// Magic of a snapshot file.
pub const SNAPSHOT_MAGIC: FileMagic = *b"LBSNAPSH";

/// Magic of the durable-mark file (body: the segment's first position and
/// the offset durable in it, two little-endian `u64`).
pub const DURABLE_MAGIC: FileMagic = *b"LBDURABL";

/// Magic of the checkpoints file.
pub const CHECKPOINTS_MAGIC: FileMagic = *b"LBCHKPTS";

/// Magic of the stream retention file.
pub const RETENTION_MAGIC: FileMagic = *b"LBRETAIN";
/// Magic of the subject-keys file.
pub const SUBJECT_KEYS_MAGIC: FileMagic = *b"LBSUBKEY";

/// Magic of a segment's index sidecar (its summary's envelope).
pub const SIDECAR_MAGIC: FileMagic = *b"LBSEGIX2";

/// Magic of the earlier sidecar layout (one envelope, no summary): such a
/// sidecar is not read; the segment is scanned and the sidecar written
/// again.
pub const SIDECAR_V1_MAGIC: FileMagic = *b"LBSEGIDX";

/// Magic of a projection document file.
pub const PROJECTION_MAGIC: FileMagic = *b"LBPROJDC";

/// Length of a small file's envelope header: magic (8), format version (4),
/// body length (4), CRC32C of the body (4).
pub const ENVELOPE_LEN: usize = 20;

/// Wraps `body` in the small-file envelope.
pub fn seal(magic: FileMagic, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ENVELOPE_LEN + body.len());
    out.extend_from_slice(&magic);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// Checks a small file's envelope and returns its body.
///
/// # Errors
/// A description of the failed check, or [`HeaderError::Version`].
pub fn open_sealed(magic: FileMagic, bytes: &[u8]) -> Result<&[u8], HeaderError> {
    if bytes.len() < ENVELOPE_LEN {
        return Err(HeaderError::Short);
    }
    if bytes[..8] != magic {
        return Err(HeaderError::Invalid("bad magic".into()));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version > FORMAT_VERSION {
        return Err(HeaderError::Version(version));
    }
    let len = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes"));
    let body = &bytes[ENVELOPE_LEN..];
    if body.len() != len {
        return Err(HeaderError::Invalid(format!(
            "body is {} bytes, header says {len}",
            body.len()
        )));
    }
    if crc32c::crc32c(body) != crc {
        return Err(HeaderError::Invalid("checksum mismatch".into()));
    }
    Ok(body)
}

/// A file name for `key` (a stream id or projection name): readable when
/// the key is made of safe characters, percent-encoded otherwise, and a
/// hash when that would be too long. The key itself is stored in the file,
/// so a reader checks it.
pub fn file_name_for(key: &str) -> String {
    let mut name = String::with_capacity(key.len());
    for (i, byte) in key.bytes().enumerate() {
        let safe =
            byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' || (byte == b'.' && i > 0);
        if safe {
            name.push(char::from(byte));
        } else {
            name.push_str(&format!("%{byte:02X}"));
        }
    }
    if name.len() > 200 {
        let a = crc32c::crc32c(key.as_bytes());
        let b = crc32c::crc32c_append(0x9E37_79B9, key.as_bytes());
        name = format!("~{a:08x}{b:08x}");
    }
    name
}

/// As [`open_sealed`], with the failure mapped for the file at `path`
/// (`what` names it in messages: "snapshot file", "checkpoints file").
///
/// # Errors
/// [`StoreError::IncompatibleFormat`] for a newer format version,
/// [`StoreError::Corrupt`] naming the file otherwise.
///
/// [`StoreError::IncompatibleFormat`]: logbook_ports::StoreError::IncompatibleFormat
/// [`StoreError::Corrupt`]: logbook_ports::StoreError::Corrupt
pub fn unseal<'a>(
    magic: FileMagic,
    path: &Path,
    bytes: &'a [u8],
    what: &str,
) -> Result<&'a [u8], logbook_ports::StoreError> {
    use logbook_ports::StoreError;
    let corrupt = |detail: String| StoreError::Corrupt {
        location: location(path, 0),
        detail,
    };
    match open_sealed(magic, bytes) {
        Ok(body) => Ok(body),
        Err(HeaderError::Version(found)) => Err(StoreError::IncompatibleFormat {
            location: path.display().to_string(),
            found,
            supported: FORMAT_VERSION,
        }),
        Err(HeaderError::Short) => Err(corrupt(format!("{what} is truncated"))),
        Err(HeaderError::Invalid(detail)) => Err(corrupt(detail)),
    }
}

/// Display form of a path for error locations.
pub fn location(path: &Path, offset: u64) -> String {
    format!("{} at offset {offset}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip() {
        assert_eq!(segment_name(1), "00000000000000000001.seg");
        assert_eq!(parse_segment_name(&segment_name(42)), Some(42));
        assert_eq!(parse_segment_name("1.seg"), None);
        assert_eq!(parse_segment_name("00000000000000000001.seg.tmp"), None);
    }

    #[test]
    fn headers_round_trip_and_detect_damage() {
        let header = encode_segment_header(77);
        assert_eq!(decode_segment_header(&header), Ok(77));
        let mut bad = header;
        bad[13] ^= 1;
        assert!(matches!(
            decode_segment_header(&bad),
            Err(HeaderError::Invalid(_))
        ));
        assert_eq!(
            decode_segment_header(&header[..10]),
            Err(HeaderError::Short)
        );
    }

    #[test]
    fn sealed_files_round_trip() {
        let sealed = seal(SNAPSHOT_MAGIC, b"body");
        assert_eq!(open_sealed(SNAPSHOT_MAGIC, &sealed), Ok(&b"body"[..]));
        assert!(open_sealed(CHECKPOINTS_MAGIC, &sealed).is_err());
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(open_sealed(SNAPSHOT_MAGIC, &bad).is_err());
    }

    #[test]
    fn file_names_are_safe() {
        assert_eq!(file_name_for("BankAccount-acc_001"), "BankAccount-acc_001");
        assert_eq!(file_name_for("a/b"), "a%2Fb");
        assert_eq!(file_name_for(".x"), "%2Ex");
        assert!(file_name_for(&"ü".repeat(200)).starts_with('~'));
    }
}
