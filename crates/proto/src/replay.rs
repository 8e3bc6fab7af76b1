//! Sliding window of received transport counters (RFC 6479), sized as wireguard-go's.
//!
//! The bitmap is a ring of 64-bit blocks. Moving forward only clears the blocks the window
//! slides over, so a jump of any size costs at most one pass over the ring.

/// Counters at or past this are refused by sender and receiver (docs/PROTOCOL.md §5, go value).
pub const REJECT_AFTER_MESSAGES: u64 = u64::MAX - (1 << 13);

const BLOCK_BITS: u64 = 64;
const RING_BLOCKS: usize = 128;
/// One block is always partly ahead of the newest counter, so it does not count as history.
pub const WINDOW_SIZE: u64 = (RING_BLOCKS as u64 - 1) * BLOCK_BITS;

#[derive(Clone)]
pub struct ReplayWindow {
    ring: [u64; RING_BLOCKS],
    /// Highest counter accepted so far (0 before any, which a first counter 0 may still use).
    last: u64,
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for ReplayWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayWindow")
            .field("last", &self.last)
            .finish_non_exhaustive()
    }
}

fn slot(block: u64) -> usize {
    // RING_BLOCKS is a power of two, so masking maps every block number into the ring.
    (block % RING_BLOCKS as u64) as usize
}

impl ReplayWindow {
    pub fn new() -> Self {
        ReplayWindow {
            ring: [0; RING_BLOCKS],
            last: 0,
        }
    }

    /// Records `counter` and says whether it is new. Call only after the packet authenticated,
    /// or a forged counter could slide the window past genuine packets.
    pub fn check_and_update(&mut self, counter: u64) -> bool {
        if counter >= REJECT_AFTER_MESSAGES {
            return false;
        }
        let block = counter / BLOCK_BITS;
        if counter > self.last {
            let current = self.last / BLOCK_BITS;
            let advance = (block - current).min(RING_BLOCKS as u64);
            for step in 1..=advance {
                if let Some(b) = self.ring.get_mut(slot(current + step)) {
                    *b = 0;
                }
            }
            self.last = counter;
        } else if self.last - counter > WINDOW_SIZE {
            return false;
        }
        let bit = 1u64 << (counter % BLOCK_BITS);
        match self.ring.get_mut(slot(block)) {
            Some(b) => {
                let seen = *b & bit != 0;
                *b |= bit;
                !seen
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    /// The obvious specification: new, not too far behind the highest seen, under the limit.
    struct Model {
        seen: BTreeSet<u64>,
        last: u64,
    }

    impl Model {
        fn check_and_update(&mut self, c: u64) -> bool {
            if c >= REJECT_AFTER_MESSAGES || self.seen.contains(&c) {
                return false;
            }
            if c <= self.last && self.last - c > WINDOW_SIZE {
                return false;
            }
            self.seen.insert(c);
            self.last = self.last.max(c);
            true
        }
    }

    #[test]
    fn basics() {
        let mut w = ReplayWindow::new();
        assert!(w.check_and_update(0));
        assert!(!w.check_and_update(0));
        assert!(w.check_and_update(2));
        assert!(w.check_and_update(1));
        assert!(!w.check_and_update(1));
        assert!(w.check_and_update(WINDOW_SIZE + 10));
        assert!(!w.check_and_update(9), "more than a window behind");
        assert!(w.check_and_update(10), "exactly a window behind");
        assert!(w.check_and_update(REJECT_AFTER_MESSAGES - 1));
        assert!(!w.check_and_update(REJECT_AFTER_MESSAGES));
        assert!(!w.check_and_update(u64::MAX));
    }

    #[test]
    fn big_jump_clears_stale_bits() {
        let mut w = ReplayWindow::new();
        for c in 0..200 {
            assert!(w.check_and_update(c));
        }
        // Same ring slots, one full ring later: must not look like duplicates.
        let lap = RING_BLOCKS as u64 * BLOCK_BITS;
        for c in lap..lap + 200 {
            assert!(w.check_and_update(c));
        }
        assert!(w.check_and_update(1 << 40));
        assert!(w.check_and_update((1 << 40) - 5));
    }

    fn counters() -> impl Strategy<Value = Vec<u64>> {
        // A moving front with reordering and duplicates, plus far jumps and very old counters;
        // values at the limit come last, since accepting one ends the useful part of a run.
        let step = prop_oneof![
            8 => (0u64..70).prop_map(|d| (0u8, d)),
            3 => (0u64..9000).prop_map(|d| (1u8, d)),
            1 => (0u64..20_000).prop_map(|d| (2u8, d)),
        ];
        let steps = proptest::collection::vec(step, 1..400);
        let limit_tail = proptest::collection::vec(0u64..3, 0..3);
        (steps, limit_tail).prop_map(|(steps, tail)| {
            let mut front = 0u64;
            let mut out: Vec<u64> = steps
                .into_iter()
                .map(|(kind, d)| match kind {
                    0 => {
                        front += d / 2;
                        front.saturating_sub(d % 35)
                    }
                    1 => front.saturating_sub(d),
                    _ => {
                        front += d;
                        front
                    }
                })
                .collect();
            out.extend(tail.into_iter().map(|d| REJECT_AFTER_MESSAGES - 1 + d));
            out
        })
    }

    proptest! {
        #[test]
        fn matches_model(cs in counters()) {
            let mut w = ReplayWindow::new();
            let mut m = Model { seen: BTreeSet::new(), last: 0 };
            for c in cs {
                prop_assert_eq!(w.check_and_update(c), m.check_and_update(c), "counter {}", c);
            }
        }
    }
}
