//! The device's own counters (see `ferrotun_proto::counters`): one set per worker and one
//! for the control thread, each written only by its thread, summed when someone reads.

use ferrotun_proto::counters::{CounterSet, Counts};

pub struct ThreadCounters {
    /// Workers `0..n`, then the control thread.
    sets: Box<[CounterSet]>,
}

impl ThreadCounters {
    pub fn new(workers: usize) -> ThreadCounters {
        ThreadCounters {
            sets: (0..=workers).map(|_| CounterSet::default()).collect(),
        }
    }

    /// Worker `id`'s set; ids past the end share the control thread's (never the case:
    /// worker generations keep their ids).
    pub fn worker(&self, id: usize) -> &CounterSet {
        let last = self.sets.len() - 1;
        &self.sets[id.min(last)]
    }

    pub fn control(&self) -> &CounterSet {
        &self.sets[self.sets.len() - 1]
    }

    /// Every set's values added into `counts`.
    pub fn add_to(&self, counts: &mut Counts) {
        for set in self.sets.iter() {
            counts.add_set(set);
        }
    }
}
