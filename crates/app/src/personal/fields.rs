//! The stored form of personal data, pure and synchronous: a personal field
//! of a payload is replaced by
//!
//! ```json
//! {"$encrypted": {"v": 1, "subject": "user-alice", "nonce": "<base64>", "ct": "<base64>"}}
//! ```
//!
//! where `ct` is the field's JSON value sealed with the subject's key, bound
//! to the event id, the subject and the field name (so it opens nowhere
//! else). A snapshot holding personal data is sealed whole in the same form,
//! bound to its stream and version, once per subject (nested).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use logbook_domain::{EventId, Payload, SHREDDED_PLACEHOLDER, StreamId, SubjectId, Version};
use serde_json::{Map, Value};

use super::cipher::{Sealed, SecretKey, binding};

/// The key of the object that marks an encrypted value.
pub const ENCRYPTED_KEY: &str = "$encrypted";
/// The version of the encrypted form.
pub const FORM_VERSION: u64 = 1;

/// What a reader can do with one subject's data.
#[derive(Debug, Clone)]
pub enum Access {
    /// The subject's key, unsealed.
    Open(SecretKey),
    /// The subject's key is destroyed: its data reads as the placeholder.
    Shredded,
}

/// Why stored encrypted data could not be read (with the right key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    /// An `$encrypted` object of the wrong shape.
    #[error("malformed {ENCRYPTED_KEY} value: {0}")]
    Malformed(String),
    /// The ciphertext does not open with its subject's key where it is: it
    /// was altered, or moved from another event, field or snapshot.
    #[error(
        "the {what} encrypted for subject {subject} does not open here: altered, or moved from another event or field"
    )]
    DoesNotOpen {
        /// The field name, or "snapshot".
        what: String,
        /// The subject it names.
        subject: SubjectId,
    },
}

fn field_binding(event: EventId, subject: &SubjectId, field: &str) -> Vec<u8> {
    binding(&[
        b"logbook field v1",
        event.as_uuid().as_bytes(),
        subject.as_str().as_bytes(),
        field.as_bytes(),
    ])
}

fn snapshot_binding(stream: &StreamId, version: Version, subject: &SubjectId) -> Vec<u8> {
    binding(&[
        b"logbook snapshot v1",
        stream.as_str().as_bytes(),
        &version.to_be_bytes(),
        subject.as_str().as_bytes(),
    ])
}

fn encrypted(subject: &SubjectId, sealed: &Sealed) -> Value {
    let mut inner = Map::with_capacity(4);
    inner.insert("v".into(), Value::from(FORM_VERSION));
    inner.insert("subject".into(), Value::from(subject.as_str()));
    inner.insert("nonce".into(), Value::from(STANDARD.encode(sealed.nonce)));
    inner.insert(
        "ct".into(),
        Value::from(STANDARD.encode(&sealed.ciphertext)),
    );
    let mut outer = Map::with_capacity(1);
    outer.insert(ENCRYPTED_KEY.into(), Value::Object(inner));
    Value::Object(outer)
}

/// The subject and sealed bytes of an `$encrypted` value; `None` when
/// `value` is not one.
fn parse_encrypted(value: &Value) -> Option<Result<(SubjectId, Sealed), FormError>> {
    let object = value.as_object()?;
    if object.len() != 1 {
        return None;
    }
    let inner = object.get(ENCRYPTED_KEY)?;
    Some(read_inner(inner))
}

fn read_inner(inner: &Value) -> Result<(SubjectId, Sealed), FormError> {
    let malformed = |what: &str| FormError::Malformed(what.to_owned());
    let inner = inner
        .as_object()
        .ok_or_else(|| malformed("not an object"))?;
    match inner.get("v").and_then(Value::as_u64) {
        Some(FORM_VERSION) => {}
        Some(other) => return Err(FormError::Malformed(format!("unknown version {other}"))),
        None => return Err(malformed("no version `v`")),
    }
    let text = |key: &str| {
        inner
            .get(key)
            .and_then(Value::as_str)
            .ok_or_else(|| FormError::Malformed(format!("no `{key}`")))
    };
    let subject =
        SubjectId::new(text("subject")?).map_err(|e| FormError::Malformed(e.to_string()))?;
    let nonce = STANDARD
        .decode(text("nonce")?)
        .ok()
        .and_then(|n| <[u8; super::cipher::NONCE_LEN]>::try_from(n).ok())
        .ok_or_else(|| malformed("`nonce` is not 24 bytes of base64"))?;
    let ciphertext = STANDARD
        .decode(text("ct")?)
        .map_err(|_| malformed("`ct` is not base64"))?;
    Ok((subject, Sealed { nonce, ciphertext }))
}

/// True when `payload` may hold encrypted values (a cheap byte check, so
/// events without personal data pass untouched): it holds the quoted
/// [`ENCRYPTED_KEY`]. The search looks for its `$`, rare in JSON, so a
/// payload is neither decoded as text nor searched for the whole marker at
/// every byte.
#[must_use]
pub fn may_be_encrypted(payload: &Payload) -> bool {
    payload_may_be_encrypted(payload.as_bytes())
}

/// The longest payload first searched for a `$` without memchr.
const SHORT_PAYLOAD: usize = 64;

/// True when `bytes` hold a `$`, eight bytes at a time (the last eight
/// overlapping the ones before): a `$` is a zero byte of the word xor
/// `$$$$$$$$`.
fn holds_dollar(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const DOLLARS: u64 = ONES * b'$' as u64;
    let has = |word: &[u8; 8]| {
        let word = u64::from_le_bytes(*word) ^ DOLLARS;
        word.wrapping_sub(ONES) & !word & (ONES << 7) != 0
    };
    let Some(last) = bytes.last_chunk::<8>() else {
        return bytes.contains(&b'$');
    };
    let (words, _) = bytes.as_chunks::<8>();
    words.iter().any(has) || has(last)
}

/// [`may_be_encrypted`] for a payload's bytes as a store lends them.
#[must_use]
pub(crate) fn payload_may_be_encrypted(bytes: &[u8]) -> bool {
    // Most payloads hold no `$`; a short one is ruled out eight bytes at a
    // time, for less than setting up memchr's vectorized search costs.
    if bytes.len() <= SHORT_PAYLOAD && !holds_dollar(bytes) {
        return false;
    }
    memchr::memchr_iter(b'$', bytes).any(|at| {
        at > 0
            && bytes[at - 1] == b'"'
            && bytes[at + 1..].starts_with(&ENCRYPTED_KEY.as_bytes()[1..])
            && bytes.get(at + ENCRYPTED_KEY.len()) == Some(&b'"')
    })
}

/// The subjects whose encrypted values `payload`'s top-level fields (or the
/// payload as a whole, for a snapshot, nested) hold, in order, without
/// repeats.
#[must_use]
pub fn subjects_in(payload: &Payload) -> Vec<SubjectId> {
    let mut subjects = Vec::new();
    if !may_be_encrypted(payload) {
        return subjects;
    }
    let Ok(value) = serde_json::from_slice::<Value>(payload.as_bytes()) else {
        return subjects;
    };
    let mut push = |subject: SubjectId| add_subjects(&mut subjects, [subject]);
    if let Some(Ok((subject, _))) = parse_encrypted(&value) {
        push(subject);
    } else if let Some(object) = value.as_object() {
        for field in object.values() {
            if let Some(Ok((subject, _))) = parse_encrypted(field) {
                push(subject);
            }
        }
    }
    subjects
}

/// Adds to `into` each subject of `from` it does not hold yet, in order.
pub(crate) fn add_subjects(into: &mut Vec<SubjectId>, from: impl IntoIterator<Item = SubjectId>) {
    for subject in from {
        if !into.contains(&subject) {
            into.push(subject);
        }
    }
}

/// Seals the named top-level fields of `payload` (event `event`), each with
/// its subject's key. Fields the payload lacks are left alone.
///
/// # Errors
/// [`FormError::Malformed`] when the payload is not a JSON object.
pub fn seal_fields(
    payload: &Payload,
    event: EventId,
    fields: &[(&'static str, SubjectId, SecretKey)],
) -> Result<Payload, FormError> {
    seal_fields_naming(payload, event, fields, &mut Vec::new())
}

/// As [`seal_fields`], adding to `sealed` (once each) the subjects of the
/// fields it sealed (a field the payload lacks seals nothing).
pub(crate) fn seal_fields_naming(
    payload: &Payload,
    event: EventId,
    fields: &[(&'static str, SubjectId, SecretKey)],
    sealed: &mut Vec<SubjectId>,
) -> Result<Payload, FormError> {
    let mut object: Map<String, Value> =
        serde_json::from_slice(payload.as_bytes()).map_err(|_| {
            FormError::Malformed("a payload with personal fields must be an object".into())
        })?;
    for (field, subject, key) in fields {
        let Some(value) = object.get_mut(*field) else {
            continue;
        };
        let plain = serde_json::to_vec(value).unwrap_or_default();
        let ciphertext = key.seal(&plain, &field_binding(event, subject, field));
        *value = encrypted(subject, &ciphertext);
        add_subjects(sealed, [subject.clone()]);
    }
    Payload::from_serialize(&object).map_err(|e| FormError::Malformed(e.to_string()))
}

/// Opens every encrypted top-level field of `payload` (event `event`) with
/// what `access` gives for its subject: the plain value, or
/// [`SHREDDED_PLACEHOLDER`] for a shredded subject.
///
/// # Errors
/// [`FormError`] for a malformed value or one that does not open.
pub fn open_fields(
    payload: &Payload,
    event: EventId,
    access: impl Fn(&SubjectId) -> Access,
) -> Result<Payload, FormError> {
    let mut object: Map<String, Value> = serde_json::from_slice(payload.as_bytes())
        .map_err(|_| FormError::Malformed("payload is not an object".into()))?;
    for (field, value) in &mut object {
        let Some(parsed) = parse_encrypted(value) else {
            continue;
        };
        let (subject, sealed) = parsed?;
        *value = match access(&subject) {
            Access::Shredded => Value::from(SHREDDED_PLACEHOLDER),
            Access::Open(key) => {
                let plain = key
                    .open(&sealed, &field_binding(event, &subject, field))
                    .ok_or_else(|| FormError::DoesNotOpen {
                        what: format!("field `{field}`"),
                        subject: subject.clone(),
                    })?;
                serde_json::from_slice(&plain).map_err(|e| FormError::Malformed(e.to_string()))?
            }
        };
    }
    Payload::from_serialize(&object).map_err(|e| FormError::Malformed(e.to_string()))
}

/// Seals a snapshot's whole state with each subject's key in turn.
#[must_use]
pub fn seal_snapshot(
    state: &Payload,
    stream: &StreamId,
    version: Version,
    keys: &[(SubjectId, SecretKey)],
) -> Payload {
    let mut bytes = state.as_bytes().to_vec();
    for (subject, key) in keys {
        let sealed = key.seal(&bytes, &snapshot_binding(stream, version, subject));
        bytes = serde_json::to_vec(&encrypted(subject, &sealed)).unwrap_or_default();
    }
    Payload::from_stored(bytes)
}

/// Opens the outer layer of a sealed snapshot state; `Ok(None)` when its
/// subject is shredded (the snapshot is then useless: replay the events).
/// A state that is not sealed is returned as it is.
///
/// # Errors
/// [`FormError`] for a malformed layer or one that does not open.
pub fn open_snapshot_layer(
    state: &Payload,
    stream: &StreamId,
    version: Version,
    access: impl Fn(&SubjectId) -> Access,
) -> Result<Option<Payload>, FormError> {
    if !may_be_encrypted(state) {
        return Ok(Some(state.clone()));
    }
    let value: Value = serde_json::from_slice(state.as_bytes())
        .map_err(|e| FormError::Malformed(e.to_string()))?;
    let Some(parsed) = parse_encrypted(&value) else {
        return Ok(Some(state.clone()));
    };
    let (subject, sealed) = parsed?;
    let Access::Open(key) = access(&subject) else {
        return Ok(None);
    };
    let plain = key
        .open(&sealed, &snapshot_binding(stream, version, &subject))
        .ok_or_else(|| FormError::DoesNotOpen {
            what: "snapshot".into(),
            subject: subject.clone(),
        })?;
    Payload::from_json(plain)
        .map(Some)
        .map_err(|e| FormError::Malformed(e.to_string()))
}

/// Opens every layer of a sealed snapshot state with `access`.
///
/// # Errors
/// As [`open_snapshot_layer`].
pub fn open_snapshot(
    state: &Payload,
    stream: &StreamId,
    version: Version,
    access: impl Fn(&SubjectId) -> Access,
) -> Result<Option<Payload>, FormError> {
    let mut current = state.clone();
    while is_sealed_whole(&current) {
        match open_snapshot_layer(&current, stream, version, &access)? {
            Some(inner) => current = inner,
            None => return Ok(None),
        }
    }
    Ok(Some(current))
}

/// True when `payload` as a whole is one `$encrypted` value.
#[must_use]
pub fn is_sealed_whole(payload: &Payload) -> bool {
    may_be_encrypted(payload)
        && serde_json::from_slice::<Value>(payload.as_bytes())
            .ok()
            .is_some_and(|v| parse_encrypted(&v).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> SubjectId {
        SubjectId::new("user-alice").unwrap()
    }

    fn payload(json: &str) -> Payload {
        Payload::from_json(json.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn the_marker_check_finds_the_quoted_key_and_nothing_shorter() {
        // Given payloads with the quoted marker anywhere, and near misses
        let found = [
            r#"{"name":{"$encrypted":"x"}}"#,
            r#""$encrypted""#,
            r#"{"$price":1,"n":{"$encrypted":1}}"#,
            r#"["café","$encrypted"]"#,
        ];
        let missed = [
            r#"{"name":"plain"}"#,
            r#"{"$encrypte":1}"#,
            r#"{"$encryptedX":1}"#,
            r#"{"x$encrypted":1}"#,
            r#"{"$price":"$5"}"#,
            r#""$""#,
        ];
        // Then the check says "may be encrypted" exactly for the first
        for json in found {
            assert!(may_be_encrypted(&payload(json)), "{json}");
        }
        for json in missed {
            assert!(!may_be_encrypted(&payload(json)), "{json}");
        }
        // And the marker is found wherever it starts, in short payloads and
        // long ones
        for before in 0..140 {
            let padding = "a".repeat(before);
            let json = format!(r#"["{padding}","$encrypted"]"#);
            assert!(may_be_encrypted(&payload(&json)), "{json}");
            let json = format!(r#"["{padding}","$encrypte"]"#);
            assert!(!may_be_encrypted(&payload(&json)), "{json}");
        }
    }

    #[test]
    fn a_sealed_field_hides_its_value_keeps_the_others_and_opens_again() {
        // Given a payload with a personal username
        let key = SecretKey::generate();
        let event = EventId::new();
        let plain = payload(r#"{"username":"Alice Liddell","balance":"10.00"}"#);
        // When its username is sealed
        let sealed = seal_fields(&plain, event, &[("username", alice(), key.clone())]).unwrap();
        // Then the name is gone, the balance is plain, the subject is named
        assert!(!sealed.as_str().contains("Liddell"), "{}", sealed.as_str());
        assert!(sealed.as_str().contains(r#""balance":"10.00""#));
        assert_eq!(subjects_in(&sealed), vec![alice()]);
        // And it opens to the original with the key
        let opened = open_fields(&sealed, event, |_| Access::Open(key.clone())).unwrap();
        let opened: Value = serde_json::from_slice(opened.as_bytes()).unwrap();
        let plain: Value = serde_json::from_slice(plain.as_bytes()).unwrap();
        assert_eq!(opened, plain);
        // And reads as the placeholder once shredded
        let shredded = open_fields(&sealed, event, |_| Access::Shredded).unwrap();
        assert!(shredded.as_str().contains(r#""username":"[shredded]""#));
    }

    #[test]
    fn a_field_moved_to_another_event_or_field_does_not_open() {
        let key = SecretKey::generate();
        let event = EventId::new();
        let sealed = seal_fields(
            &payload(r#"{"username":"alice"}"#),
            event,
            &[("username", alice(), key.clone())],
        )
        .unwrap();
        // Given the same ciphertext under another event id
        let err = open_fields(&sealed, EventId::new(), |_| Access::Open(key.clone())).unwrap_err();
        assert!(matches!(err, FormError::DoesNotOpen { .. }), "{err}");
        // Given it under another field name
        let moved = payload(&sealed.as_str().replace("\"username\"", "\"nickname\""));
        let err = open_fields(&moved, event, |_| Access::Open(key.clone())).unwrap_err();
        assert!(err.to_string().contains("nickname"), "{err}");
    }

    #[test]
    fn a_snapshot_sealed_for_two_subjects_opens_with_both_and_not_once_one_is_shredded() {
        let stream = StreamId::new("UserWallet-1").unwrap();
        let bob = SubjectId::new("user-bob").unwrap();
        let (ka, kb) = (SecretKey::generate(), SecretKey::generate());
        let state = payload(r#"{"username":"Alice Liddell"}"#);
        let sealed = seal_snapshot(
            &state,
            &stream,
            4,
            &[(alice(), ka.clone()), (bob.clone(), kb.clone())],
        );
        assert!(!sealed.as_str().contains("Liddell"));
        let both = |s: &SubjectId| Access::Open(if *s == bob { kb.clone() } else { ka.clone() });
        assert_eq!(
            open_snapshot(&sealed, &stream, 4, both).unwrap(),
            Some(state)
        );
        let alice_gone = |s: &SubjectId| {
            if *s == bob {
                Access::Open(kb.clone())
            } else {
                Access::Shredded
            }
        };
        assert_eq!(
            open_snapshot(&sealed, &stream, 4, alice_gone).unwrap(),
            None
        );
        // A snapshot copied to another version does not open
        assert!(open_snapshot(&sealed, &stream, 5, both).is_err());
    }
}
