//! Our local session indices: the random 32-bit numbers we put in the sender field of
//! handshake messages and that peers echo as the receiver field, mapped to the handshake or
//! keypair they name.
//!
//! Indices are drawn at random, never counted up: sequential indices (a boringtun bug that
//! gotatun fixed) tell an observer how many sessions a host has made, and make a stale or
//! forged receiver index likely to hit a live session.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use rand_core::RngCore;

/// Fresh draws before giving up on the rng and probing upward from the last one. With a
/// working rng and any table that fits in memory, a second draw is already rare.
const RANDOM_DRAWS: u32 = 16;

/// Map from local index to `T`.
#[derive(Clone, Debug)]
pub struct IndexTable<T> {
    map: HashMap<u32, T, BuildHasherDefault<IndexHasher>>,
}

impl<T> IndexTable<T> {
    pub fn new() -> Self {
        IndexTable {
            map: HashMap::default(),
        }
    }

    /// Stores `value` under a fresh random index and returns the index.
    pub fn insert(&mut self, value: T, rng: &mut impl RngCore) -> u32 {
        self.insert_with(rng, |_| value)
    }

    /// Like [`insert`](Self::insert), for values that must know their own index (a
    /// handshake puts it on the wire).
    pub fn insert_with(&mut self, rng: &mut impl RngCore, make: impl FnOnce(u32) -> T) -> u32 {
        let mut candidate = rng.next_u32();
        let mut draws = 1;
        // Terminates while fewer than 2^32 indices are in use, which memory guarantees
        // long before the index space runs out.
        loop {
            if let Entry::Vacant(slot) = self.map.entry(candidate) {
                slot.insert(make(candidate));
                return candidate;
            }
            candidate = if draws < RANDOM_DRAWS {
                draws += 1;
                rng.next_u32()
            } else {
                candidate.wrapping_add(1)
            };
        }
    }

    pub fn get(&self, index: u32) -> Option<&T> {
        self.map.get(&index)
    }

    #[cfg(test)]
    pub fn get_mut(&mut self, index: u32) -> Option<&mut T> {
        self.map.get_mut(&index)
    }

    #[cfg(test)]
    pub fn contains(&self, index: u32) -> bool {
        self.map.contains_key(&index)
    }

    pub fn remove(&mut self, index: u32) -> Option<T> {
        self.map.remove(&index)
    }

    /// Puts `value` in place of what `index` names, keeping the index (a completed
    /// handshake becoming a keypair). Returns the previous value, or hands `value` back if
    /// `index` is not in use: an index is only ever created by [`insert`](Self::insert).
    pub fn replace(&mut self, index: u32, value: T) -> Result<T, T> {
        match self.map.get_mut(&index) {
            Some(slot) => Ok(std::mem::replace(slot, value)),
            None => Err(value),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.map.iter().map(|(&index, value)| (index, value))
    }
}

impl<T> Default for IndexTable<T> {
    fn default() -> Self {
        IndexTable::new()
    }
}

/// The keys are uniformly random already, so one multiply is enough to spread them over
/// the whole 64-bit hash (the table uses the top bits as tags and the low bits as slots).
/// This lookup runs for every received transport packet, where SipHash would cost more
/// than the rest of the lookup; an attacker can choose which index to look up but not
/// which indices are stored, so collision flooding is not possible.
#[derive(Default)]
struct IndexHasher(u64);

impl Hasher for IndexHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::collections::HashSet;

    /// Yields a fixed script of values, then repeats the last one forever.
    struct Script(Vec<u32>);

    impl RngCore for Script {
        fn next_u32(&mut self) -> u32 {
            if self.0.len() > 1 {
                self.0.remove(0)
            } else {
                self.0.first().copied().unwrap_or(0)
            }
        }
        fn next_u64(&mut self) -> u64 {
            u64::from(self.next_u32())
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for b in dest {
                *b = self.next_u32() as u8;
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }

    #[test]
    fn indices_are_unique_and_random_looking() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut table = IndexTable::new();
        let indices: Vec<u32> = (0..10_000).map(|n| table.insert(n, &mut rng)).collect();
        assert_eq!(table.len(), 10_000);
        assert_eq!(indices.iter().collect::<HashSet<_>>().len(), 10_000);
        // Neither counting up nor confined to a small range.
        assert!(indices.windows(2).all(|w| w[1].abs_diff(w[0]) > 1));
        assert!(indices.iter().any(|&i| i >= 1 << 31));
        assert!(indices.iter().any(|&i| i < 1 << 31));
        let mut sorted = indices.clone();
        sorted.sort_unstable();
        assert_ne!(sorted, indices);
        for (n, &index) in indices.iter().enumerate() {
            assert_eq!(table.get(index), Some(&n));
        }
    }

    #[test]
    fn a_colliding_draw_is_redrawn() {
        let mut table = IndexTable::new();
        let mut rng = Script(vec![0xdead_beef, 0xdead_beef, 0x1234_5678]);
        assert_eq!(table.insert('a', &mut rng), 0xdead_beef);
        assert_eq!(table.insert('b', &mut rng), 0x1234_5678);
        assert_eq!(table.get(0xdead_beef), Some(&'a'));
    }

    #[test]
    fn a_stuck_rng_still_yields_unique_indices() {
        let mut table = IndexTable::new();
        let mut rng = Script(vec![u32::MAX]);
        let got: Vec<u32> = (0..4).map(|n| table.insert(n, &mut rng)).collect();
        assert_eq!(got, [u32::MAX, 0, 1, 2]);
    }

    #[test]
    fn values_can_know_their_index() {
        let mut table = IndexTable::new();
        let mut rng = StdRng::seed_from_u64(1);
        let index = table.insert_with(&mut rng, |i| i ^ 1);
        assert_eq!(table.get(index), Some(&(index ^ 1)));
    }

    #[test]
    fn get_remove_replace() {
        let mut table = IndexTable::new();
        let mut rng = StdRng::seed_from_u64(2);
        let index = table.insert("handshake", &mut rng);
        assert!(table.contains(index));
        assert_eq!(table.replace(index, "keypair"), Ok("handshake"));
        assert_eq!(table.get(index), Some(&"keypair"));
        assert_eq!(table.replace(index.wrapping_add(1), "stray"), Err("stray"));
        assert_eq!(table.len(), 1);
        if let Some(v) = table.get_mut(index) {
            *v = "rekeyed";
        }
        assert_eq!(table.iter().collect::<Vec<_>>(), [(index, &"rekeyed")]);
        assert_eq!(table.remove(index), Some("rekeyed"));
        assert_eq!(table.remove(index), None);
        assert_eq!(table.get(index), None);
        assert!(table.is_empty());
    }
}
