//! Append-only byte storage in fixed-size chunks: no per-event allocation,
//! and no doubling copy of everything when it grows.

/// Size of one chunk; a value larger than this gets a chunk of its own.
const CHUNK: usize = 1 << 20;

/// Where a value sits in the arena.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    chunk: u32,
    offset: u32,
    len: u32,
}

#[derive(Default)]
pub(crate) struct Arena {
    chunks: Vec<Vec<u8>>,
}

impl Slot {
    /// How many bytes the slot holds.
    pub(crate) fn len(self) -> u32 {
        self.len
    }
}

impl Arena {
    /// Stores `parts` one after the other and returns the slot of the whole.
    pub(crate) fn push(&mut self, parts: &[&[u8]]) -> Slot {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let fits = self
            .chunks
            .last()
            .is_some_and(|c| c.capacity() - c.len() >= len);
        if !fits {
            self.chunks.push(Vec::with_capacity(len.max(CHUNK)));
        }
        let index = self.chunks.len() - 1;
        let chunk = &mut self.chunks[index];
        let offset = chunk.len();
        for part in parts {
            chunk.extend_from_slice(part);
        }
        Slot {
            chunk: u32::try_from(index).expect("fewer than 4 billion chunks"),
            offset: u32::try_from(offset).expect("chunk offsets fit in u32"),
            len: u32::try_from(len).expect("a value under 4 GiB"),
        }
    }

    /// The bytes of `slot`.
    pub(crate) fn get(&self, slot: Slot) -> &[u8] {
        let start = slot.offset as usize;
        &self.chunks[slot.chunk as usize][start..start + slot.len as usize]
    }
}
