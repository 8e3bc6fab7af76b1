//! Grouping a batch's sealed datagrams into UDP GSO "trains": consecutive datagrams to one
//! destination, from one source, with one size (the last may be shorter) become one `sendmmsg` entry with a
//! `UDP_SEGMENT` size, which the kernel carries as one packet as far as it can.

use crate::udp::BATCH;
use ferrotun_proto::source::LocalSource;
use std::net::SocketAddr;
use std::ops::Range;

/// The kernel accepts at most 64 KiB of payload in one GSO send.
const MAX_TRAIN_BYTES: usize = 65_000;
/// Segments per train (the kernel's limit is 128; 64 is one full batch).
const MAX_SEGMENTS: usize = 64;
/// Datagrams larger than this are sent on their own: trains are for MTU-sized traffic.
const MAX_SEGMENT: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// A datagram sent from its own buffer: `bufs[index][..len]`.
    Buffer { index: usize, len: usize },
    /// A train copied into the arena.
    Arena(Range<usize>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Train {
    pub dst: SocketAddr,
    /// Our address the whole train leaves from (one cmsg for all its segments).
    pub src: Option<LocalSource>,
    source: Source,
    /// `Some` when the train holds more than one datagram.
    pub segment_size: Option<u16>,
    segments: usize,
    open: bool,
}

impl Train {
    /// How many datagrams the train carries.
    pub fn datagrams(&self) -> usize {
        self.segments.max(1)
    }

    pub fn data<'a>(&self, arena: &'a [u8], bufs: &'a [Vec<u8>]) -> &'a [u8] {
        match &self.source {
            Source::Buffer { index, len } => bufs.get(*index).and_then(|b| b.get(..*len)),
            Source::Arena(range) => arena.get(range.clone()),
        }
        .unwrap_or(&[])
    }
}

/// Reusable state of one worker: the arena is allocated once, never per packet.
pub struct GsoPlanner {
    pub arena: Vec<u8>,
}

impl Default for GsoPlanner {
    fn default() -> Self {
        Self::new()
    }
}

impl GsoPlanner {
    pub fn new() -> Self {
        GsoPlanner {
            arena: Vec::with_capacity(BATCH * MAX_SEGMENT),
        }
    }

    /// Plans the sends for `items` = (buffer index, destination, source, sealed length), in
    /// order. Without GSO every datagram is its own entry.
    pub fn plan(
        &mut self,
        items: impl Iterator<Item = (usize, SocketAddr, Option<LocalSource>, usize)>,
        gso: bool,
        bufs: &[Vec<u8>],
    ) -> Vec<Train> {
        self.arena.clear();
        let mut trains: Vec<Train> = Vec::new();
        for (index, dst, src, len) in items {
            let Some(data) = bufs.get(index).and_then(|b| b.get(..len)) else {
                continue;
            };
            let fits_arena = self.arena.len() + len <= self.arena.capacity();
            if !gso || len > MAX_SEGMENT || len == 0 || !fits_arena {
                trains.push(Train {
                    dst,
                    src,
                    source: Source::Buffer { index, len },
                    segment_size: None,
                    segments: 1,
                    open: false,
                });
                continue;
            }
            if let Some(t) = trains.last_mut() {
                if let (true, Source::Arena(range), Some(seg)) =
                    (t.open, &mut t.source, t.segment_size)
                {
                    let seg = usize::from(seg);
                    if t.dst == dst
                        && t.src == src
                        && len <= seg
                        && t.segments < MAX_SEGMENTS
                        && range.len() + len <= MAX_TRAIN_BYTES
                    {
                        self.arena.extend_from_slice(data);
                        range.end += len;
                        t.segments += 1;
                        // A shorter datagram can only be the last of a train.
                        t.open = len == seg;
                        continue;
                    }
                }
            }
            let start = self.arena.len();
            self.arena.extend_from_slice(data);
            trains.push(Train {
                dst,
                src,
                source: Source::Arena(start..start + len),
                segment_size: u16::try_from(len).ok(),
                segments: 1,
                open: true,
            });
        }
        for t in &mut trains {
            if t.segments == 1 {
                t.segment_size = None;
            }
        }
        trains
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    fn bufs(lens: &[usize]) -> Vec<Vec<u8>> {
        lens.iter()
            .enumerate()
            .map(|(i, &l)| vec![i as u8; l])
            .collect()
    }

    #[test]
    fn equal_sizes_to_one_destination_make_one_train() {
        let b = bufs(&[100, 100, 100, 60]);
        let mut p = GsoPlanner::new();
        let items = (0..4).map(|i| (i, addr(1), None, b[i].len()));
        let trains = p.plan(items, true, &b);
        assert_eq!(trains.len(), 1);
        assert_eq!(trains[0].segment_size, Some(100));
        let data = trains[0].data(&p.arena, &b);
        assert_eq!(data.len(), 360);
        assert_eq!(&data[300..], &[3u8; 60][..]);
    }

    #[test]
    fn a_short_datagram_ends_a_train_and_destinations_split_trains() {
        let b = bufs(&[100, 50, 100, 100]);
        let mut p = GsoPlanner::new();
        let dsts = [addr(1), addr(1), addr(1), addr(2)];
        let trains = p.plan((0..4).map(|i| (i, dsts[i], None, b[i].len())), true, &b);
        let shapes: Vec<_> = trains
            .iter()
            .map(|t| (t.dst, t.segment_size, t.segments))
            .collect();
        assert_eq!(
            shapes,
            vec![
                (addr(1), Some(100), 2),
                (addr(1), None, 1),
                (addr(2), None, 1)
            ]
        );
    }

    #[test]
    fn without_gso_every_datagram_goes_alone_from_its_buffer() {
        let b = bufs(&[100, 100]);
        let mut p = GsoPlanner::new();
        let trains = p.plan((0..2).map(|i| (i, addr(1), None, 100)), false, &b);
        assert_eq!(trains.len(), 2);
        assert!(p.arena.is_empty());
        assert_eq!(trains[1].data(&p.arena, &b), &[1u8; 100][..]);
    }

    #[test]
    fn trains_respect_the_byte_limit() {
        let b = bufs(&[1500; 64]);
        let mut p = GsoPlanner::new();
        let trains = p.plan((0..64).map(|i| (i, addr(1), None, 1500)), true, &b);
        assert!(trains
            .iter()
            .all(|t| t.data(&p.arena, &b).len() <= MAX_TRAIN_BYTES));
        let total: usize = trains.iter().map(|t| t.segments).sum();
        assert_eq!(total, 64);
    }

    #[test]
    fn a_train_shares_its_source_too() {
        let b = bufs(&[100; 4]);
        let mut p = GsoPlanner::new();
        let from = |ip: [u8; 4]| {
            Some(LocalSource {
                addr: ip.into(),
                ifindex: 2,
            })
        };
        let srcs = [
            from([10, 0, 0, 1]),
            from([10, 0, 0, 1]),
            from([10, 0, 0, 2]),
            None,
        ];
        let trains = p.plan((0..4).map(|i| (i, addr(1), srcs[i], 100)), true, &b);
        let shapes: Vec<_> = trains.iter().map(|t| (t.src, t.segments)).collect();
        assert_eq!(shapes, vec![(srcs[0], 2), (srcs[2], 1), (None, 1)]);
    }
}
