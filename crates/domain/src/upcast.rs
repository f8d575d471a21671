//! Schema evolution: pure functions that turn a stored payload written at an
//! older schema version of an event type into the next version's shape, so
//! old events are read as current ones.

use std::collections::HashMap;

use serde_json::Value;

/// One step: the payload at version `n` in, the payload at `n + 1` out, or
/// why it cannot be converted.
pub type UpcastStep = fn(Value) -> Result<Value, String>;

/// The upcasters of one event enum, keyed by event type and the version
/// they upgrade from.
#[derive(Debug, Clone, Default)]
pub struct Upcasters {
    steps: HashMap<(&'static str, u32), UpcastStep>,
}

/// Why a stored payload could not be brought to the current shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot upcast {event_type} from schema version {from_version}: {reason}")]
pub struct UpcastError {
    /// The event type.
    pub event_type: String,
    /// The version the failing step started from.
    pub from_version: u32,
    /// What the step said.
    pub reason: String,
}

impl Upcasters {
    /// No upcasters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the step from `from_version` to `from_version + 1` of
    /// `event_type`.
    pub fn with(mut self, event_type: &'static str, from_version: u32, step: UpcastStep) -> Self {
        self.steps.insert((event_type, from_version), step);
        self
    }

    /// True when there is nothing to apply.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// True when a payload of `event_type` at `version` has a step to run.
    pub fn applies_to(&self, event_type: &str, version: u32) -> bool {
        !self.steps.is_empty() && self.steps.contains_key(&(event_type, version))
    }

    /// Runs every step from `version` on; returns the payload and the
    /// version it ends at.
    ///
    /// # Errors
    /// [`UpcastError`] naming the step that refused.
    pub fn upcast(
        &self,
        event_type: &str,
        mut version: u32,
        mut payload: Value,
    ) -> Result<(Value, u32), UpcastError> {
        while let Some(step) = self.steps.get(&(event_type, version)) {
            payload = step(payload).map_err(|reason| UpcastError {
                event_type: event_type.to_owned(),
                from_version: version,
                reason,
            })?;
            version += 1;
        }
        Ok((payload, version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rename(mut v: Value) -> Result<Value, String> {
        let object = v.as_object_mut().ok_or("not an object")?;
        let name = object.remove("owner_id").ok_or("no owner_id")?;
        object.insert("owner".into(), name);
        Ok(v)
    }

    fn add_note(mut v: Value) -> Result<Value, String> {
        v["note"] = json!("");
        Ok(v)
    }

    #[test]
    fn steps_chain_from_the_stored_version() {
        let upcasters = Upcasters::new()
            .with("Opened", 1, rename)
            .with("Opened", 2, add_note);
        let (payload, version) = upcasters
            .upcast("Opened", 1, json!({"owner_id": "u1"}))
            .unwrap();
        assert_eq!((payload, version), (json!({"owner": "u1", "note": ""}), 3));
        let (payload, version) = upcasters
            .upcast("Opened", 2, json!({"owner": "u1"}))
            .unwrap();
        assert_eq!((payload, version), (json!({"owner": "u1", "note": ""}), 3));
        assert_eq!(upcasters.upcast("Other", 1, json!({})).unwrap().1, 1);
    }

    #[test]
    fn a_refusing_step_is_an_error_naming_it() {
        let upcasters = Upcasters::new().with("Opened", 1, rename);
        let err = upcasters.upcast("Opened", 1, json!({})).unwrap_err();
        assert_eq!(err.from_version, 1);
        assert!(err.to_string().contains("Opened") && err.to_string().contains("no owner_id"));
    }
}
