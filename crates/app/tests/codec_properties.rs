//! Property: reading a stored payload through the codec gives what serde_json
//! gives when it reads the event in its tagged form `{"<type>": <payload>}`:
//! the same event when serde_json reads it, an error when serde_json
//! refuses it. Payloads are near-misses of JSON on purpose (escapes,
//! floats, big and negative integers, stray commas, odd whitespace, bytes
//! that are not UTF-8), so that every shortcut the codec takes is checked
//! against serde_json's own reading.

use std::collections::BTreeMap;
use std::sync::Arc;

use logbook::codec;
use logbook_domain::{DomainEvent, EventId, Metadata, Payload, RecordedEvent, StreamId};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

/// An event enum with a field of most shapes serde has (one large variant
/// on purpose: a struct variant with every kind of field).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Probe {
    Shaped {
        text: String,
        count: u64,
        delta: i64,
        small: i8,
        ratio: Option<f64>,
        flag: bool,
        maybe: Option<i32>,
        list: Vec<u16>,
        map: BTreeMap<String, i64>,
        nested: Nested,
        kind: Kind,
        #[serde(default)]
        note: String,
        any: serde_json::Value,
    },
    Pair(u8, String),
    Wrapped(Kind),
    Nothing,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Nested {
    label: Option<String>,
    kinds: Vec<Kind>,
    unit: (),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Kind {
    Plain,
    Tagged(i32),
    Spot { x: i64 },
}

impl DomainEvent for Probe {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Shaped { .. } => "Shaped",
            Self::Pair(..) => "Pair",
            Self::Wrapped(_) => "Wrapped",
            Self::Nothing => "Nothing",
        }
    }
}

fn recorded(event_type: &str, payload: Vec<u8>) -> RecordedEvent {
    RecordedEvent {
        id: EventId::new(),
        stream: StreamId::new("Probe-1").unwrap(),
        version: 1,
        position: 1,
        event_type: Arc::from(event_type),
        schema_version: 1,
        payload: Payload::from_stored(payload),
        metadata: Metadata::default(),
        recorded_at: chrono::Utc::now(),
    }
}

/// Text, mostly of characters JSON writes as they are, now and then one it
/// escapes.
fn text() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        8 => prop::sample::select(vec!["a", "Zz", "é", "☕", " ", "/", "12345678"]),
        1 => prop::sample::select(vec!["\"", "\\", "\n", "\u{1}"]),
    ];
    prop::collection::vec(part, 0..4).prop_map(|parts| parts.concat())
}

/// A float that prints and parses back exactly (a multiple of a quarter).
fn quarter() -> impl Strategy<Value = f64> {
    (-4_000i32..4_000).prop_map(|n| f64::from(n) / 4.0)
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Plain),
        any::<i32>().prop_map(Kind::Tagged),
        any::<i64>().prop_map(|x| Kind::Spot { x }),
    ]
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        quarter().prop_map(serde_json::Value::from),
        text().prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(text(), inner, 0..4)
                .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        ]
    })
}

fn probe() -> impl Strategy<Value = Probe> {
    let shaped = (
        (
            text(),
            any::<u64>(),
            any::<i64>(),
            any::<i8>(),
            prop::option::weighted(0.2, quarter()),
        ),
        (
            any::<bool>(),
            any::<Option<i32>>(),
            prop::collection::vec(any::<u16>(), 0..4),
        ),
        prop::collection::btree_map(text(), any::<i64>(), 0..3),
        (any::<Option<String>>(), prop::collection::vec(kind(), 0..3)),
        (kind(), text(), json_value()),
    )
        .prop_map(
            |(
                (text, count, delta, small, ratio),
                (flag, maybe, list),
                map,
                (label, kinds),
                (kind, note, any),
            )| Probe::Shaped {
                text,
                count,
                delta,
                small,
                ratio,
                flag,
                maybe,
                list,
                map,
                nested: Nested {
                    label,
                    kinds,
                    unit: (),
                },
                kind,
                note,
                any,
            },
        );
    prop_oneof![
        4 => shaped,
        1 => (any::<u8>(), text()).prop_map(|(n, s)| Probe::Pair(n, s)),
        1 => kind().prop_map(Probe::Wrapped),
        1 => Just(Probe::Nothing),
    ]
}

/// A change to a payload's bytes: where (a fraction of its length, or of
/// its structural bytes) and what.
#[derive(Debug, Clone)]
enum Edit {
    Insert(f64, Vec<u8>),
    Delete(f64),
    Replace(f64, Vec<u8>),
    /// Inserted just before one of the bytes `{}[],:` (or at the end).
    BeforeStructure(f64, Vec<u8>),
}

fn edit() -> impl Strategy<Value = Edit> {
    let bytes = prop::sample::select(vec![
        b"\"".to_vec(),
        b"\\".to_vec(),
        b",".to_vec(),
        b":".to_vec(),
        b"{".to_vec(),
        b"}".to_vec(),
        b"[".to_vec(),
        b"]".to_vec(),
        b"-".to_vec(),
        b"0".to_vec(),
        b"7".to_vec(),
        b".5".to_vec(),
        b"e3".to_vec(),
        b" ".to_vec(),
        b"\n".to_vec(),
        b"\t".to_vec(),
        b"\x01".to_vec(),
        b"null".to_vec(),
        b"true".to_vec(),
        b"\"x\"".to_vec(),
        b"\"note\":\"n\",".to_vec(),
        b"\"extra\":[1,{}],".to_vec(),
        "é".as_bytes().to_vec(),
        vec![0xC3],
        b"99999999999999999999".to_vec(),
        b"-0".to_vec(),
    ]);
    prop_oneof![
        1 => (0.0..1.0f64, bytes.clone()).prop_map(|(at, b)| Edit::Insert(at, b)),
        1 => (0.0..1.0f64).prop_map(Edit::Delete),
        1 => (0.0..1.0f64, bytes.clone()).prop_map(|(at, b)| Edit::Replace(at, b)),
        2 => (0.0..1.0f64, bytes).prop_map(|(at, b)| Edit::BeforeStructure(at, b)),
    ]
}

fn apply(payload: &mut Vec<u8>, edit: &Edit) {
    let at = |fraction: f64, len: usize| ((fraction * len as f64) as usize).min(len);
    match edit {
        Edit::Insert(f, bytes) => {
            let i = at(*f, payload.len());
            payload.splice(i..i, bytes.iter().copied());
        }
        Edit::Delete(f) if !payload.is_empty() => {
            let i = at(*f, payload.len() - 1);
            payload.remove(i);
        }
        Edit::Replace(f, bytes) if !payload.is_empty() => {
            let i = at(*f, payload.len() - 1);
            payload.splice(i..=i, bytes.iter().copied());
        }
        Edit::BeforeStructure(f, bytes) => {
            let mut places: Vec<usize> = payload
                .iter()
                .enumerate()
                .filter(|(_, b)| b"{}[],:".contains(b))
                .map(|(i, _)| i)
                .collect();
            places.push(payload.len());
            let i = places[at(*f, places.len() - 1)];
            payload.splice(i..i, bytes.iter().copied());
        }
        Edit::Delete(_) | Edit::Replace(..) => {}
    }
}

/// The payload of `event` as the codec stores it, indented or not.
fn stored_payload(event: &Probe, pretty: bool) -> Vec<u8> {
    let tagged = serde_json::to_value(event).unwrap();
    let content = match tagged {
        serde_json::Value::Object(map) => map.into_iter().next().unwrap().1,
        // A unit variant's content is null.
        _ => serde_json::Value::Null,
    };
    if pretty {
        serde_json::to_vec_pretty(&content).unwrap()
    } else {
        serde_json::to_vec(&content).unwrap()
    }
}

/// What serde_json makes of `payload` as the content of `event_type`.
fn serde_json_reading(event_type: &str, payload: &[u8]) -> Result<Probe, serde_json::Error> {
    let mut tagged = format!("{{{}:", serde_json::to_string(event_type).unwrap()).into_bytes();
    tagged.extend_from_slice(payload);
    tagged.push(b'}');
    serde_json::from_slice(&tagged)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3_000, ..ProptestConfig::default() })]

    #[test]
    fn the_codec_reads_what_serde_json_reads_and_refuses_what_it_refuses(
        event in probe(),
        pretty in any::<bool>(),
        edits in prop::collection::vec(edit(), 0..3),
        retype in prop::option::weighted(0.1, prop::sample::select(vec!["Shaped", "Pair", "Wrapped", "Nothing", "Unknown"])),
    ) {
        // Given a stored event, its payload perhaps edited and its type
        // perhaps changed
        let mut payload = stored_payload(&event, pretty);
        for edit in &edits {
            apply(&mut payload, edit);
        }
        let event_type = retype.unwrap_or(event.event_type());
        // When the codec reads it
        let read = codec::decode::<Probe>(&recorded(event_type, payload.clone()));
        // Then it reads the event serde_json reads, or fails where it fails
        match serde_json_reading(event_type, &payload) {
            Ok(expected) => {
                let read = read.map_err(|e| e.to_string());
                prop_assert_eq!(read, Ok(expected), "payload {:?}", String::from_utf8_lossy(&payload));
            }
            Err(refusal) => prop_assert!(
                read.is_err(),
                "serde_json refuses {:?} ({refusal}), the codec read {:?}",
                String::from_utf8_lossy(&payload),
                read
            ),
        }
        // And an unedited event reads back as itself
        if edits.is_empty() && retype.is_none() {
            let again = codec::decode::<Probe>(&recorded(event.event_type(), stored_payload(&event, pretty)));
            prop_assert_eq!(again.map_err(|e| e.to_string()), Ok(event));
        }
    }
}

#[test]
fn a_refused_payload_gets_serde_jsons_own_error() {
    // Given a stored deposit whose amount is a number, not a string
    let payload = br#"{"amount": 5, "description": "x"}"#.to_vec();
    // When the codec reads it
    let error = codec::decode::<logbook_domain::bank_account::BankAccountEvent>(&recorded(
        "MoneyDeposited",
        payload,
    ))
    .unwrap_err();
    // Then the error carries serde_json's message, with its position in
    // the payload
    let source = std::error::Error::source(&error).unwrap().to_string();
    assert_eq!(
        source,
        "invalid type: integer `5`, expected a string at line 1 column 12"
    );
}

#[test]
fn a_payload_with_escapes_or_floats_still_reads() {
    // Given payloads written with escapes and a float, as serde_json may
    // store them
    let deposit = br#"{"amount":"1.50","description":"caf\u00e9 \"bar\"\n"}"#.to_vec();
    let probe = Probe::Shaped {
        text: "a\"b".into(),
        count: 1,
        delta: -2,
        small: 3,
        ratio: Some(0.25),
        flag: true,
        maybe: None,
        list: vec![1],
        map: BTreeMap::new(),
        nested: Nested {
            label: Some("l".into()),
            kinds: vec![Kind::Plain],
            unit: (),
        },
        kind: Kind::Spot { x: -1 },
        note: String::new(),
        any: serde_json::json!({"f": 1.5}),
    };
    // When the codec reads them, then each is what was written
    let read = codec::decode::<logbook_domain::bank_account::BankAccountEvent>(&recorded(
        "MoneyDeposited",
        deposit,
    ))
    .unwrap();
    assert_eq!(
        read,
        logbook_domain::bank_account::BankAccountEvent::MoneyDeposited {
            amount: logbook_domain::Money::from_cents(150),
            description: "café \"bar\"\n".into(),
        }
    );
    let stored = stored_payload(&probe, false);
    assert_eq!(
        codec::decode::<Probe>(&recorded("Shaped", stored)).unwrap(),
        probe
    );
}

#[test]
fn tricky_payloads_read_as_serde_json_reads_them() {
    // Given payloads at each edge of the JSON the codec reads quickly
    let shaped = |any: &str, rest: &str| {
        format!(
            r#"{{"text":"t","count":1,"delta":-1,"small":0,"ratio":null,"flag":false,"maybe":null,"list":[],"map":{{}},"nested":{{"label":null,"kinds":[],"unit":null}},"kind":"Plain","any":{any}{rest}}}"#
        )
    };
    let deep = |levels: usize| format!("{}{}", "[".repeat(levels), "]".repeat(levels));
    let mut cases: Vec<(&str, String)> = [
        ("Wrapped", r#"{"Spot":{"x":-0}}"#),
        ("Wrapped", r#"{"Spot":{"x":0}}"#),
        ("Wrapped", r#"{"Spot":{"x":-9223372036854775808}}"#),
        ("Wrapped", r#"{"Spot":{"x":-9223372036854775809}}"#),
        ("Wrapped", r#"{"Spot":{"x":9223372036854775808}}"#),
        ("Wrapped", r#"{"Spot":{"x":01}}"#),
        ("Wrapped", r#"{"Spot":{"x":1.0}}"#),
        ("Wrapped", r#"{"Spot":{"x":1e2}}"#),
        ("Wrapped", r#"{"Spot":{"x":1,}}"#),
        ("Wrapped", r#"{"Spot":{"x":1,"x":2}}"#),
        ("Wrapped", r#"{"Spot":{"y":1,"x":2}}"#),
        (
            "Wrapped",
            r#"{"Spot":{"x":2,"y":[1,{"z":[true,null,"s"]}]}}"#,
        ),
        ("Wrapped", r#"{"Spot":{"x":2,"y":"\u0041"}}"#),
        ("Wrapped", r#"{"Spot":{"x":2,"y":1.5e3}}"#),
        ("Wrapped", r#"{"Spot":{"x":2,"y":[1,]}}"#),
        ("Wrapped", r#"{"Spot":[7]}"#),
        ("Wrapped", r#"{"Spot":[7,8]}"#),
        ("Wrapped", r#""Plain""#),
        ("Wrapped", r#"{"Plain":null}"#),
        ("Wrapped", r#"{"Plain":1}"#),
        ("Wrapped", r#""Tagged""#),
        ("Wrapped", r#"{"Tagged":-5}"#),
        ("Wrapped", r#"{"Tagged":5}}"#),
        ("Wrapped", " {\"Tagged\" : 5 } "),
        ("Wrapped", " \t\n{\"Tagged\":5}\r\n"),
        ("Wrapped", r#"{"Tagged":5},"#),
        ("Wrapped", r#"{"Tagged":5,"Plain":null}"#),
        ("Wrapped", r#"{"Unknown":5}"#),
        ("Wrapped", "[]"),
        ("Nothing", "null"),
        ("Nothing", " null "),
        ("Nothing", "nul"),
        ("Nothing", "nullx"),
        ("Nothing", "{}"),
        ("Pair", r#"[1,"a"]"#),
        ("Pair", r#"[1,"a",]"#),
        ("Pair", r#"[1 , "a"]"#),
        ("Pair", r#"[256,"a"]"#),
        ("Pair", r#"[1]"#),
        ("Pair", r#"[1,"a","b"]"#),
        ("Pair", r#"[-1,"a"]"#),
        ("Pair", r#"[1,"\u0000"]"#),
        ("Pair", "[1,\"a\tb\"]"),
        ("Pair", r#"[1,"é☕"]"#),
        ("Pair", r#"[1,"a"] "#),
        ("Pair", r#"[,1,"a"]"#),
        ("Pair", r#"{"0":1,"1":"a"}"#),
    ]
    .into_iter()
    .map(|(t, p)| (t, p.to_owned()))
    .collect();
    for any in [
        "-0".to_owned(),
        "18446744073709551615".to_owned(),
        "18446744073709551616".to_owned(),
        r#"{"k":1,"k":2}"#.to_owned(),
        r#"{"a":[1,2,{"b":null}],"c":"d"}"#.to_owned(),
        deep(63),
        deep(64),
        deep(65),
        deep(127),
        deep(200),
    ] {
        cases.push(("Shaped", shaped(&any, "")));
    }
    for rest in [
        r#","note":"n""#,
        r#","note":null"#,
        r#","ratio":1"#,
        r#","ratio":-0"#,
        r#","ratio":1.5"#,
        r#","maybe":7"#,
        r#","unknown":{"deep":[[[]]]}"#,
        r#","list":[65536]"#,
        r#","nested":{"label":"l","kinds":["Plain",{"Tagged":1}],"unit":0}"#,
        r#","map":{"a":1,"b":-2}"#,
        r#","map":{"a":1,}"#,
        ",",
    ] {
        cases.push(("Shaped", shaped("1", rest)));
    }
    cases.push(("Shaped", shaped("1", "").replace(r#""maybe":null,"#, "")));
    cases.push(("Shaped", shaped("1", "").replace(r#""count":1,"#, "")));
    for (event_type, payload) in &cases {
        // When the codec reads each, then it reads what serde_json reads,
        // or fails where serde_json fails
        let read = codec::decode::<Probe>(&recorded(event_type, payload.clone().into_bytes()));
        match serde_json_reading(event_type, payload.as_bytes()) {
            Ok(expected) => assert_eq!(
                read.map_err(|e| e.to_string()),
                Ok(expected),
                "{event_type} {payload}"
            ),
            Err(refusal) => assert!(
                read.is_err(),
                "{event_type} {payload}: serde_json refuses it ({refusal}), the codec read {read:?}"
            ),
        }
    }
}
