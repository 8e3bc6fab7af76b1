//! The connections the endpoint holds, oldest first, at most `max` at once. A newcomer
//! beyond that ends the oldest instead of being turned away: a flood of idle or slow
//! connections then only ever holds the newest few slots, each for seconds, and an honest
//! scraper still gets in at once and is served in milliseconds, before enough newer
//! connections arrive to end it. (Refusing newcomers would let eight idle connections,
//! renewed every few seconds, lock every scraper out; leaving them in the kernel's backlog
//! would queue the scraper behind the flood.)

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::oneshot;

pub struct Slots {
    max: usize,
    inner: Mutex<Inner>,
}

struct Inner {
    next: u64,
    /// Oldest first; the sender ends that connection.
    open: VecDeque<(u64, oneshot::Sender<()>)>,
}

/// One connection's place; freed on drop.
pub struct Slot {
    id: u64,
    slots: Arc<Slots>,
    /// Resolves when a newer connection needs the place.
    pub ended: oneshot::Receiver<()>,
}

impl Slots {
    pub fn new(max: usize) -> Arc<Slots> {
        Arc::new(Slots {
            max,
            inner: Mutex::new(Inner {
                next: 0,
                open: VecDeque::new(),
            }),
        })
    }

    /// A place for a new connection, and whether the oldest had to be ended for it.
    pub fn take(self: &Arc<Self>) -> (Slot, bool) {
        let mut inner = self.inner.lock();
        let mut ended_one = false;
        while inner.open.len() >= self.max {
            if let Some((_, end)) = inner.open.pop_front() {
                // Its task may have finished already; then the place was free anyway.
                ended_one |= end.send(()).is_ok();
            }
        }
        let id = inner.next;
        inner.next += 1;
        let (end, ended) = oneshot::channel();
        inner.open.push_back((id, end));
        let slot = Slot {
            id,
            slots: self.clone(),
            ended,
        };
        (slot, ended_one)
    }

    pub fn held(&self) -> usize {
        self.inner.lock().open.len()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots
            .inner
            .lock()
            .open
            .retain(|(id, _)| *id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_makes_room() {
        let slots = Slots::new(2);
        let (mut a, ended) = slots.take();
        assert!(!ended);
        let (mut b, _) = slots.take();
        let (mut c, ended) = slots.take();
        assert!(ended, "a third connection ends the first");
        assert!(a.ended.try_recv().is_ok());
        assert!(b.ended.try_recv().is_err());
        assert!(c.ended.try_recv().is_err());
        assert_eq!(slots.held(), 2);
        drop(a);
        drop(b);
        assert_eq!(slots.held(), 1);
        let (_d, ended) = slots.take();
        assert!(!ended, "room was free");
        assert_eq!(slots.held(), 2);
    }
}
