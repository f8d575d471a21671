//! Turning a JSON object of arguments into an aggregate's command, with
//! errors that say which field is wrong and what was expected.
//!
//! serde's own JSON errors are text; a front end that must answer "400,
//! field `amount`" would have to parse them. Instead the arguments are fed
//! to the command's `Deserialize` through a small deserializer whose error
//! type records what serde reports structurally (the missing or unknown
//! field, the type found and the one expected, the list of variants). When
//! serde cannot say which field failed (internally tagged enums buffer their
//! content first), the field is found by elimination: the first argument
//! whose removal changes the error is the one at fault.

use std::fmt;

use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::{Serialize, forward_to_deserialize_any};

/// What is wrong with the arguments of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgumentError {
    /// The argument at fault, when one is.
    pub field: Option<String>,
    /// What is wrong with it.
    pub kind: ArgumentErrorKind,
}

/// The ways arguments can be wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgumentErrorKind {
    /// The arguments are not a JSON object (`found` says what they are).
    NotAnObject {
        /// What was given instead: "an array", "a string", ...
        found: String,
    },
    /// `command` was given as an argument; it is given by name.
    CommandAsArgument,
    /// A required field is absent.
    Missing,
    /// A field the command does not have.
    Unknown {
        /// The fields it has.
        expected: Vec<String>,
    },
    /// A field of the wrong JSON type.
    WrongType {
        /// What was found ("string \"abc\"", "integer `5`").
        found: String,
        /// What was expected ("a string", "u64").
        expected: String,
    },
    /// A field of the right type but an invalid value (an amount that does
    /// not parse, a negative quantity).
    InvalidValue {
        /// Why the value was refused, in the value type's own words.
        reason: String,
    },
}

impl fmt::Display for ArgumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        match &self.kind {
            ArgumentErrorKind::NotAnObject { found } => {
                write!(f, "arguments must be a JSON object, not {found}")
            }
            ArgumentErrorKind::CommandAsArgument => {
                f.write_str("`command` is given by name, not as an argument")
            }
            ArgumentErrorKind::Missing => f.write_str("required, but missing"),
            ArgumentErrorKind::Unknown { expected } if expected.is_empty() => {
                f.write_str("unknown field; this command takes no arguments")
            }
            ArgumentErrorKind::Unknown { expected } => {
                write!(f, "unknown field; expected one of {}", expected.join(", "))
            }
            ArgumentErrorKind::WrongType { found, expected } => {
                write!(f, "expected {expected}, found {found}")
            }
            ArgumentErrorKind::InvalidValue { reason } => f.write_str(reason),
        }
    }
}

/// Parses `arguments` (a JSON object, or null for none) as command `name`
/// of a command enum tagged by a `command` field.
///
/// `Ok(None)` when the enum has no command of that name.
///
/// # Errors
/// [`ArgumentError`] naming the field at fault and what was expected.
pub(crate) fn parse_command<C: DeserializeOwned + Serialize>(
    name: &str,
    arguments: serde_json::Value,
) -> Result<Option<C>, ArgumentError> {
    let object = match arguments {
        serde_json::Value::Object(object) => object,
        serde_json::Value::Null => serde_json::Map::new(),
        other => {
            return Err(ArgumentError {
                field: None,
                kind: ArgumentErrorKind::NotAnObject {
                    found: describe(&other).to_owned(),
                },
            });
        }
    };
    if object.contains_key("command") {
        return Err(ArgumentError {
            field: Some("command".into()),
            kind: ArgumentErrorKind::CommandAsArgument,
        });
    }
    match attempt::<C>(name, &object) {
        Ok(command) => match unknown_field::<C>(name, &object, &command) {
            Some(field) => Err(ArgumentError {
                field: Some(field),
                kind: ArgumentErrorKind::Unknown {
                    expected: fields_of(&command),
                },
            }),
            None => Ok(Some(command)),
        },
        Err(Probe::UnknownVariant) => Ok(None),
        Err(Probe::Argument(mut error)) => {
            if error.field.is_none() {
                error.field = culprit::<C>(name, &object, &error);
            }
            Err(error)
        }
    }
}

/// The names of the commands of a command enum tagged by a `command` field,
/// as serde reports them (in declaration order, aliases included).
pub(crate) fn command_names<C: DeserializeOwned>() -> Vec<&'static str> {
    let mut probe = serde_json::Map::new();
    probe.insert("command".into(), "\u{1}".into());
    match C::deserialize(Arguments(serde_json::Value::Object(probe))) {
        Err(ProbeError(ProbeErrorKind::UnknownVariant(expected))) => expected,
        _ => Vec::new(),
    }
}

enum Probe {
    UnknownVariant,
    Argument(ArgumentError),
}

fn attempt<C: DeserializeOwned>(
    name: &str,
    object: &serde_json::Map<String, serde_json::Value>,
) -> Result<C, Probe> {
    let mut tagged = serde_json::Map::with_capacity(object.len() + 1);
    tagged.insert("command".into(), name.into());
    tagged.extend(object.iter().map(|(k, v)| (k.clone(), v.clone())));
    C::deserialize(Arguments(serde_json::Value::Object(tagged))).map_err(|ProbeError(kind)| {
        let (field, kind) = match kind {
            ProbeErrorKind::UnknownVariant(_) => return Probe::UnknownVariant,
            ProbeErrorKind::Argument { field, kind } => (field, kind),
        };
        Probe::Argument(ArgumentError { field, kind })
    })
}

/// The first argument whose removal changes `error`: serde reads fields in
/// the order given and stops at the first bad one (missing fields are only
/// noticed after all were read), so removing any other field leaves the
/// same error.
fn culprit<C: DeserializeOwned>(
    name: &str,
    object: &serde_json::Map<String, serde_json::Value>,
    error: &ArgumentError,
) -> Option<String> {
    object.keys().find_map(|key| {
        let mut without = object.clone();
        without.remove(key);
        match attempt::<C>(name, &without) {
            Err(Probe::Argument(other)) if other == *error => None,
            _ => Some(key.clone()),
        }
    })
}

/// An argument the command ignored: absent from the command serialized
/// back, and making no difference when left out (so a field alias, which
/// does make a difference, is not taken for an unknown field).
fn unknown_field<C: DeserializeOwned + Serialize>(
    name: &str,
    object: &serde_json::Map<String, serde_json::Value>,
    command: &C,
) -> Option<String> {
    let parsed = serde_json::to_value(command).ok()?;
    let known = parsed.as_object()?;
    object
        .keys()
        .filter(|key| !known.contains_key(*key))
        .find(|key| {
            let mut without = object.clone();
            without.remove(*key);
            attempt::<C>(name, &without)
                .ok()
                .and_then(|other| serde_json::to_value(other).ok())
                .is_some_and(|other| other == parsed)
        })
        .cloned()
}

/// The field names of a parsed command, for "expected one of".
fn fields_of<C: Serialize>(command: &C) -> Vec<String> {
    let Ok(serde_json::Value::Object(object)) = serde_json::to_value(command) else {
        return Vec::new();
    };
    object
        .into_iter()
        .map(|(key, _)| key)
        .filter(|key| key != "command")
        .collect()
}

fn describe(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The error serde reports through [`Arguments`], kept as data.
#[derive(Debug)]
struct ProbeError(ProbeErrorKind);

#[derive(Debug)]
enum ProbeErrorKind {
    UnknownVariant(Vec<&'static str>),
    Argument {
        field: Option<String>,
        kind: ArgumentErrorKind,
    },
}

impl ProbeError {
    fn argument(field: Option<String>, kind: ArgumentErrorKind) -> Self {
        Self(ProbeErrorKind::Argument { field, kind })
    }
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            ProbeErrorKind::UnknownVariant(names) => {
                write!(f, "unknown command; expected one of {}", names.join(", "))
            }
            ProbeErrorKind::Argument { field, kind } => ArgumentError {
                field: field.clone(),
                kind: kind.clone(),
            }
            .fmt(f),
        }
    }
}

impl std::error::Error for ProbeError {}

impl de::Error for ProbeError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Self::argument(
            None,
            ArgumentErrorKind::InvalidValue {
                reason: message.to_string(),
            },
        )
    }

    fn invalid_type(unexpected: de::Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        Self::argument(
            None,
            ArgumentErrorKind::WrongType {
                found: unexpected.to_string(),
                expected: expected.to_string(),
            },
        )
    }

    fn invalid_value(unexpected: de::Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        Self::argument(
            None,
            ArgumentErrorKind::InvalidValue {
                reason: format!("expected {expected}, found {unexpected}"),
            },
        )
    }

    fn unknown_variant(_variant: &str, expected: &'static [&'static str]) -> Self {
        Self(ProbeErrorKind::UnknownVariant(expected.to_vec()))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Self::argument(
            Some(field.to_owned()),
            ArgumentErrorKind::Unknown {
                expected: expected.iter().map(|name| (*name).to_owned()).collect(),
            },
        )
    }

    fn missing_field(field: &'static str) -> Self {
        Self::argument(Some(field.to_owned()), ArgumentErrorKind::Missing)
    }

    fn duplicate_field(field: &'static str) -> Self {
        Self::argument(
            Some(field.to_owned()),
            ArgumentErrorKind::InvalidValue {
                reason: "given twice".into(),
            },
        )
    }
}

/// A JSON value as a serde deserializer whose errors are [`ProbeError`].
struct Arguments(serde_json::Value);

impl<'de> IntoDeserializer<'de, ProbeError> for Arguments {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> de::Deserializer<'de> for Arguments {
    type Error = ProbeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        use serde_json::Value;
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => visitor.visit_string(s),
            Value::Array(items) => {
                let mut seq = SeqDeserializer::new(items.into_iter().map(Arguments));
                let value = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(value)
            }
            Value::Object(map) => {
                let mut entries =
                    MapDeserializer::new(map.into_iter().map(|(k, v)| (k, Arguments(v))));
                let value = visitor.visit_map(&mut entries)?;
                entries.end()?;
                Ok(value)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        match self.0 {
            serde_json::Value::Null => visitor.visit_none(),
            other => visitor.visit_some(Arguments(other)),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use logbook_domain::bank_account::BankAccountCommand;
    use logbook_domain::cargo_ship::CargoShipCommand;

    use super::*;

    fn parse(name: &str, json: &str) -> Result<Option<BankAccountCommand>, ArgumentError> {
        parse_command::<BankAccountCommand>(name, serde_json::from_str(json).unwrap())
    }

    #[test]
    fn well_formed_arguments_give_the_command() {
        let command = parse("deposit", r#"{"amount": "5.00"}"#).unwrap().unwrap();
        assert!(matches!(command, BankAccountCommand::Deposit { .. }));
        assert!(parse("fly", "{}").unwrap().is_none());
    }

    #[test]
    fn a_bad_value_names_its_field_even_through_the_tagged_enum() {
        let error = parse("deposit", r#"{"description": "x", "amount": "abc"}"#).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("amount"), "{error}");
        assert!(matches!(error.kind, ArgumentErrorKind::InvalidValue { .. }));
        let error = parse("deposit", r#"{"amount": 5}"#).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("amount"), "{error}");
        assert!(
            matches!(&error.kind, ArgumentErrorKind::WrongType { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn a_missing_field_and_a_non_object_are_named() {
        let error = parse("deposit", "{}").unwrap_err();
        assert_eq!(error.field.as_deref(), Some("amount"));
        assert_eq!(error.kind, ArgumentErrorKind::Missing);
        let error = parse("deposit", "[1]").unwrap_err();
        assert!(matches!(error.kind, ArgumentErrorKind::NotAnObject { .. }));
        let error = parse("deposit", r#"{"command": "close"}"#).unwrap_err();
        assert_eq!(error.kind, ArgumentErrorKind::CommandAsArgument);
    }

    #[test]
    fn an_unknown_field_is_refused_by_name() {
        let error = parse("deposit", r#"{"amount": "5.00", "bogus": 1}"#).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("bogus"));
        assert!(
            matches!(&error.kind, ArgumentErrorKind::Unknown { expected } if expected.iter().any(|f| f == "amount")),
            "{error:?}"
        );
    }

    #[test]
    fn command_names_come_from_the_enum_not_from_a_message() {
        assert_eq!(
            command_names::<BankAccountCommand>(),
            ["open", "deposit", "withdraw", "close"]
        );
        assert!(command_names::<CargoShipCommand>().contains(&"dock_ship"));
    }
}
