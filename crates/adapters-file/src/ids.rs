//! The id table: every indexed event id, for the append checks
//! (duplicates, idempotent retries). It stores positions only: an id is
//! compared by reading it back from the index (`id_of`), so the table
//! costs about 10 bytes per event.

use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;
use logbook_domain::{EventId, Position};

/// The id table.
#[derive(Debug, Default)]
pub struct IdTable {
    slots: HashTable<IdSlot>,
    hasher: IdHasher,
}

/// One id in the id table: where the event is, and 32 bits of its id's
/// hash. The table's hash is widened from those bits ([`widen`]), so a
/// rehash while the table grows reads the table only, not one entry per id
/// (a cache miss each in a table of millions), and a probe compares ids
/// only when the 32 bits match.
#[derive(Debug, Clone, Copy)]
struct IdSlot {
    position: u32,
    hash: u32,
}

impl IdSlot {
    fn table_hash(self) -> u64 {
        widen(self.hash)
    }
}

/// The table's 64-bit hash of a 32-bit id hash: the bits themselves pick
/// the bucket (the low bits), and a multiple of them fills the high bits,
/// from which the table takes its 7-bit tags, so tags stay independent of
/// the bucket.
fn widen(hash: u32) -> u64 {
    u64::from(hash) | (u64::from(hash.wrapping_mul(0x9E37_79B9)) << 32)
}

/// Hashes event ids for the id table: a folded multiply of the id's two
/// halves with per-process random seeds (as `foldhash` does). Ids are
/// mostly random bits already; the seeds keep crafted ids from aiming at
/// one bucket. Several times cheaper than SipHash, which dominated the
/// open scan.
#[derive(Debug, Clone, Copy)]
struct IdHasher {
    seeds: [u64; 3],
}

impl Default for IdHasher {
    fn default() -> Self {
        let state = RandomState::new();
        Self {
            seeds: [
                state.hash_one(0u8) | 1,
                state.hash_one(1u8) | 1,
                state.hash_one(2u8) | 1,
            ],
        }
    }
}

fn fold(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

impl IdHasher {
    /// The 32 bits of `id`'s hash the table keeps.
    fn hash_one(&self, id: EventId) -> u32 {
        let bytes = id.as_uuid().as_bytes();
        let lo = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
        let hi = u64::from_le_bytes(bytes[8..].try_into().expect("8 bytes"));
        fold(fold(lo ^ self.seeds[0], hi ^ self.seeds[1]), self.seeds[2]) as u32
    }
}

impl IdTable {
    /// True when it holds no id.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Reserves room for `additional` more ids.
    pub fn reserve(&mut self, additional: usize) {
        self.slots.reserve(additional, |slot| slot.table_hash());
    }

    /// The position holding `id`; `id_of` reads a position's id back
    /// (`None`: not in memory, so not that id).
    pub fn find(
        &self,
        id: &EventId,
        id_of: impl Fn(Position) -> Option<EventId>,
    ) -> Option<Position> {
        let hash = self.hasher.hash_one(*id);
        self.slots
            .find(widen(hash), |slot| {
                slot.hash == hash && id_of(Position::from(slot.position)) == Some(*id)
            })
            .map(|slot| Position::from(slot.position))
    }

    /// Adds `id` at `position`, known not to be in the table.
    pub fn insert_unique(&mut self, id: EventId, position: u32) {
        let hash = self.hasher.hash_one(id);
        self.slots
            .insert_unique(widen(hash), IdSlot { position, hash }, |slot| {
                slot.table_hash()
            });
    }

    /// Removes `id` at `position`, if there.
    pub fn remove(&mut self, id: EventId, position: Position) {
        let hash = self.hasher.hash_one(id);
        if let Ok(slot) = self.slots.find_entry(widen(hash), |slot| {
            Position::from(slot.position) == position
        }) {
            slot.remove();
        }
    }

    /// Indexes the ids of positions `first..=last`, read with `id_of`
    /// (every one of them, and every position already in the table, must
    /// be in memory). Inserting 10 million ids in log order costs a cache
    /// miss or two each, in a table of ~100 MB; so the ids are first
    /// grouped by the part of their hash that picks the table region, and
    /// inserted region by region, where the table's memory stays in cache.
    ///
    /// # Errors
    /// The first duplicate in log order among them and the ids already
    /// indexed: its position and the earlier position holding the same id.
    /// Every other id is indexed, and the table keeps the earlier one.
    pub fn index_range(
        &mut self,
        first: Position,
        last: Position,
        id_of: impl Fn(Position) -> EventId,
    ) -> Result<(), (Position, Position)> {
        const PART_BITS: u32 = 8;
        let n = (last + 1).saturating_sub(first) as usize;
        if n == 0 {
            return Ok(());
        }
        self.reserve(n);
        // The table's buckets are picked by the hash's low bits; group by
        // the top PART_BITS of those.
        let buckets = self
            .slots
            .capacity()
            .max(1)
            .next_power_of_two()
            .max((self.slots.len() + n).next_power_of_two());
        let shift = buckets.trailing_zeros().saturating_sub(PART_BITS);
        let part = |hash: u64| ((hash >> shift) as usize) & ((1 << PART_BITS) - 1);
        let hashes: Vec<u32> = (first..=last)
            .map(|p| self.hasher.hash_one(id_of(p)))
            .collect();
        let mut starts = vec![0usize; (1 << PART_BITS) + 1];
        for &hash in &hashes {
            starts[part(widen(hash)) + 1] += 1;
        }
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        let mut grouped = vec![(0u32, 0u32); n];
        for (i, &hash) in hashes.iter().enumerate() {
            let slot = &mut starts[part(widen(hash))];
            grouped[*slot] = (hash, (first + i as u64) as u32);
            *slot += 1;
        }
        drop(hashes);
        let id = |p: u32| id_of(Position::from(p));
        let mut first_duplicate: Option<(Position, Position)> = None;
        for (hash, position) in grouped {
            // The ids are read only on a hash match: reading every one would
            // be a cache miss per insert again.
            match self.slots.entry(
                widen(hash),
                |slot| slot.hash == hash && id(slot.position) == id(position),
                |slot| slot.table_hash(),
            ) {
                hashbrown::hash_table::Entry::Vacant(slot) => {
                    slot.insert(IdSlot { position, hash });
                }
                hashbrown::hash_table::Entry::Occupied(mut found) => {
                    // Keep the earliest position in the table: then the
                    // second copy in log order is always found.
                    let other = found.get().position;
                    let (earlier, later) = (other.min(position), other.max(position));
                    found.get_mut().position = earlier;
                    if first_duplicate.is_none_or(|(p, _)| Position::from(later) < p) {
                        first_duplicate = Some((Position::from(later), Position::from(earlier)));
                    }
                }
            }
        }
        match first_duplicate {
            None => Ok(()),
            Some(found) => Err(found),
        }
    }
}
