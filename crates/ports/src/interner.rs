//! [`Interner`]: names (stream ids, event types) numbered in the order they
//! are first seen, so a store keeps a small number per event instead of a
//! copy of the name, and gets the name back from the number.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use logbook_domain::StreamId;

/// Names numbered from 0 in the order they were interned. `K` is the name
/// as the store hands it out again: `Arc<str>` for event types (so a read
/// event shares it), [`StreamId`] for streams.
#[derive(Debug, Clone)]
pub struct Interner<K = Arc<str>> {
    names: Vec<K>,
    numbers: HashMap<K, u32>,
}

impl<K> Default for Interner<K> {
    fn default() -> Self {
        Self {
            names: Vec::new(),
            numbers: HashMap::new(),
        }
    }
}

impl<K: Clone + Eq + Hash + Borrow<str>> Interner<K> {
    /// The number of `name`, if it has been interned.
    pub fn number(&self, name: &str) -> Option<u32> {
        self.numbers.get(name).copied()
    }

    /// The number of `key`, adding it if new.
    ///
    /// # Panics
    /// Past 4 billion names (a store's events are counted in `u32` too).
    pub fn intern_key(&mut self, key: &K) -> u32 {
        match self.number(key.borrow()) {
            Some(number) => number,
            None => self.add(key.clone()),
        }
    }

    /// The number of `name`, adding it (made with `K::from`) if new.
    ///
    /// # Panics
    /// As [`Interner::intern_key`].
    pub fn intern(&mut self, name: &str) -> u32
    where
        K: for<'a> From<&'a str>,
    {
        match self.number(name) {
            Some(number) => number,
            None => self.add(K::from(name)),
        }
    }

    fn add(&mut self, key: K) -> u32 {
        let number = u32::try_from(self.names.len()).expect("fewer than 4 billion names");
        self.names.push(key.clone());
        self.numbers.insert(key, number);
        number
    }

    /// The name numbered `number`.
    ///
    /// # Panics
    /// When no name has that number.
    pub fn name(&self, number: u32) -> &K {
        &self.names[number as usize]
    }

    /// How many names.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when no name is interned.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Interned stream ids.
pub type StreamNames = Interner<StreamId>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_numbered_in_first_seen_order_and_read_back() {
        // Given an interner of event types
        let mut types: Interner = Interner::default();
        // When names are interned, one of them twice
        let a = types.intern("Opened");
        let b = types.intern("Closed");
        let again = types.intern("Opened");
        // Then each name keeps its first number and reads back
        assert_eq!((a, b, again), (0, 1, 0));
        assert_eq!(&**types.name(1), "Closed");
        assert_eq!(types.number("Closed"), Some(1));
        assert_eq!(types.number("Renamed"), None);
        assert_eq!(types.len(), 2);
    }

    #[test]
    fn stream_ids_are_found_by_their_text() {
        let mut streams = StreamNames::default();
        let id = StreamId::new("Account-1").unwrap();
        assert_eq!(streams.intern_key(&id), 0);
        assert_eq!(streams.number("Account-1"), Some(0));
        assert_eq!(streams.name(0), &id);
        assert_eq!(streams.intern_key(&id), 0);
        assert!(!streams.is_empty());
    }
}
