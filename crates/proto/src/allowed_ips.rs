//! Cryptokey routing (docs/PROTOCOL.md §6): the longest-prefix-match table from an address to the
//! value (peer) owning the best-matching prefix, with separate IPv4 and IPv6 tables.
//!
//! Layout: per family, one hash table per prefix length in use, kept from longest to
//! shortest. A lookup masks the address to each length in turn and probes that table; the
//! first hit is the longest match.
//!
//! Why not the Patricia trie of the kernel and wireguard-go: a trie lookup makes one
//! dependent memory load per branching node, so its cost grows with the number and spread
//! of prefixes (about log2(n), ~14 loads for 10,000 host routes, each a likely cache miss).
//! Here a lookup costs one hash probe per *distinct prefix length configured*, however many
//! prefixes share that length: a server with 10,000 peers holding a /32 and a /128 each
//! does one probe per packet. The worst case is bounded as well (33 probes for IPv4, 129
//! for IPv6 if a configuration uses every length), and updates need no rebalancing.
//!
//! Each value also keeps its own list of prefixes, so listing or removing one peer's
//! prefixes costs what that peer holds, not what the whole table holds.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AllowedIpsError {
    #[error("prefix length /{cidr} is too long for {addr} (at most /{max})")]
    CidrTooLong { addr: IpAddr, cidr: u8, max: u8 },
}

/// Longest-prefix match from addresses to values of type `T`.
///
/// `T` is what a lookup yields, typically a peer id or a handle whose equality means "same
/// peer". It must be `Hash` so that each value's prefixes can be found without a scan.
///
/// [`iter_value`](Self::iter_value) lists a value's prefixes in the order they were last
/// inserted, the order the kernel and wireguard-go report them in: inserting a prefix that
/// exists already (for this or another value) moves it to the end of its new owner's list.
#[derive(Clone)]
pub struct AllowedIps<T> {
    v4: Table<u32>,
    v6: Table<u128>,
    owners: Vec<Option<Owner<T>>>,
    vacant_owners: Vec<usize>,
    owner_ids: HashMap<T, usize>,
    next_seq: u64,
    len: usize,
}

#[derive(Clone)]
struct Owner<T> {
    value: T,
    /// Keyed by insertion sequence number so iteration follows insertion order and a
    /// single prefix can still be unlinked in O(log n).
    prefixes: BTreeMap<u64, Prefix>,
}

/// A prefix with its host bits already cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Prefix {
    V4(u32, u8),
    V6(u128, u8),
}

impl Prefix {
    fn new(addr: IpAddr, cidr: u8) -> Result<Self, AllowedIpsError> {
        let too_long = |max| AllowedIpsError::CidrTooLong { addr, cidr, max };
        match addr {
            IpAddr::V4(a) if cidr <= u32::WIDTH => {
                Ok(Prefix::V4(u32::from(a) & u32::mask(cidr), cidr))
            }
            IpAddr::V6(a) if cidr <= u128::WIDTH => {
                Ok(Prefix::V6(u128::from(a) & u128::mask(cidr), cidr))
            }
            IpAddr::V4(_) => Err(too_long(u32::WIDTH)),
            IpAddr::V6(_) => Err(too_long(u128::WIDTH)),
        }
    }

    fn to_pair(self) -> (IpAddr, u8) {
        match self {
            Prefix::V4(a, len) => (IpAddr::V4(Ipv4Addr::from(a)), len),
            Prefix::V6(a, len) => (IpAddr::V6(Ipv6Addr::from(a)), len),
        }
    }
}

impl<T: Clone + Eq + Hash> AllowedIps<T> {
    pub fn new() -> Self {
        AllowedIps {
            v4: Table::new(),
            v6: Table::new(),
            owners: Vec::new(),
            vacant_owners: Vec::new(),
            owner_ids: HashMap::new(),
            next_seq: 0,
            len: 0,
        }
    }

    /// Gives `addr/cidr` (host bits cleared) to `value`, taking it from any previous owner.
    pub fn insert(&mut self, addr: IpAddr, cidr: u8, value: T) -> Result<(), AllowedIpsError> {
        let prefix = Prefix::new(addr, cidr)?;
        let owner = self.owner_for(value);
        let seq = self.next_seq;
        self.next_seq += 1;
        // Link the new entry before unlinking the old one: when the owner is unchanged,
        // unlinking first could leave it empty and free its slot under our feet.
        if let Some(Some(o)) = self.owners.get_mut(owner) {
            o.prefixes.insert(seq, prefix);
        }
        let slot = Slot { owner, seq };
        let previous = match prefix {
            Prefix::V4(a, len) => self.v4.insert(a, len, slot),
            Prefix::V6(a, len) => self.v6.insert(a, len, slot),
        };
        match previous {
            Some(old) => self.unlink(old),
            None => self.len += 1,
        }
        Ok(())
    }

    /// Removes every prefix of `value`; returns how many there were.
    pub fn remove_value(&mut self, value: &T) -> usize {
        let Some(id) = self.owner_ids.remove(value) else {
            return 0;
        };
        let Some(owner) = self.owners.get_mut(id).and_then(Option::take) else {
            return 0;
        };
        self.vacant_owners.push(id);
        for prefix in owner.prefixes.values() {
            match *prefix {
                Prefix::V4(a, len) => self.v4.remove(a, len),
                Prefix::V6(a, len) => self.v6.remove(a, len),
            };
        }
        self.len -= owner.prefixes.len();
        owner.prefixes.len()
    }

    /// Removes `addr/cidr` (host bits cleared) if, and only if, `value` owns it. This is the
    /// `allowed_ip=-prefix` form of the configuration protocol, which must not take a
    /// prefix away from a peer it was not addressed to.
    pub fn remove_prefix_for(
        &mut self,
        value: &T,
        addr: IpAddr,
        cidr: u8,
    ) -> Result<bool, AllowedIpsError> {
        let prefix = Prefix::new(addr, cidr)?;
        let Some(&id) = self.owner_ids.get(value) else {
            return Ok(false);
        };
        let owned = match prefix {
            Prefix::V4(a, len) => self.v4.get(a, len),
            Prefix::V6(a, len) => self.v6.get(a, len),
        }
        .is_some_and(|slot| slot.owner == id);
        if !owned {
            return Ok(false);
        }
        let removed = match prefix {
            Prefix::V4(a, len) => self.v4.remove(a, len),
            Prefix::V6(a, len) => self.v6.remove(a, len),
        };
        if let Some(slot) = removed {
            self.unlink(slot);
            self.len -= 1;
        }
        Ok(true)
    }

    /// The value owning the longest prefix that contains `addr`.
    #[inline]
    pub fn lookup(&self, addr: IpAddr) -> Option<&T> {
        match addr {
            IpAddr::V4(a) => self.lookup_v4(&a.octets()),
            IpAddr::V6(a) => self.lookup_v6(&a.octets()),
        }
    }

    /// [`lookup`](Self::lookup) on the four address bytes as they sit in an IPv4 header.
    #[inline]
    pub fn lookup_v4(&self, addr: &[u8; 4]) -> Option<&T> {
        let owner = self.v4.lookup(u32::from_be_bytes(*addr))?;
        self.value_of(owner)
    }

    /// [`lookup`](Self::lookup) on the sixteen address bytes as they sit in an IPv6 header.
    #[inline]
    pub fn lookup_v6(&self, addr: &[u8; 16]) -> Option<&T> {
        let owner = self.v6.lookup(u128::from_be_bytes(*addr))?;
        self.value_of(owner)
    }

    /// The prefixes `value` owns, in insertion order (see the type's documentation).
    pub fn iter_value<'a>(&'a self, value: &T) -> impl Iterator<Item = (IpAddr, u8)> + 'a {
        let owner = self.owner_ids.get(value).and_then(|&id| self.owner(id));
        owner
            .into_iter()
            .flat_map(|o| o.prefixes.values().map(|p| p.to_pair()))
    }

    pub fn clear(&mut self) {
        *self = AllowedIps::new();
    }

    /// Number of prefixes in both families.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn owner(&self, id: usize) -> Option<&Owner<T>> {
        self.owners.get(id).and_then(Option::as_ref)
    }

    #[inline]
    fn value_of(&self, id: usize) -> Option<&T> {
        self.owner(id).map(|o| &o.value)
    }

    fn owner_for(&mut self, value: T) -> usize {
        if let Some(&id) = self.owner_ids.get(&value) {
            return id;
        }
        let owner = Some(Owner {
            value: value.clone(),
            prefixes: BTreeMap::new(),
        });
        let id = match self.vacant_owners.pop() {
            Some(id) => {
                if let Some(entry) = self.owners.get_mut(id) {
                    *entry = owner;
                }
                id
            }
            None => {
                self.owners.push(owner);
                self.owners.len() - 1
            }
        };
        self.owner_ids.insert(value, id);
        id
    }

    /// Drops a table entry from its owner's list, and the owner once it holds nothing, so
    /// removed peers do not linger as values.
    fn unlink(&mut self, slot: Slot) {
        let Some(entry) = self.owners.get_mut(slot.owner) else {
            return;
        };
        let now_empty = entry.as_mut().is_some_and(|o| {
            o.prefixes.remove(&slot.seq);
            o.prefixes.is_empty()
        });
        if now_empty {
            if let Some(o) = entry.take() {
                self.owner_ids.remove(&o.value);
            }
            self.vacant_owners.push(slot.owner);
        }
    }
}

impl<T: Clone + Eq + Hash> Default for AllowedIps<T> {
    fn default() -> Self {
        AllowedIps::new()
    }
}

impl<T> fmt::Debug for AllowedIps<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AllowedIps")
            .field("len", &self.len)
            .field("v4_lengths", &self.v4.levels.len())
            .field("v6_lengths", &self.v6.levels.len())
            .finish()
    }
}

/// What a table entry points at: the owner's slot, and the entry's key in that owner's
/// prefix list.
#[derive(Clone, Copy, Debug)]
struct Slot {
    owner: usize,
    seq: u64,
}

/// An address family as an unsigned integer in network bit order.
trait Bits: Copy + Eq + Hash + std::ops::BitAnd<Output = Self> {
    const WIDTH: u8;
    /// The netmask of a `len`-bit prefix; all ones if `len` exceeds the width.
    fn mask(len: u8) -> Self;
}

impl Bits for u32 {
    const WIDTH: u8 = 32;
    fn mask(len: u8) -> u32 {
        u32::MAX
            .checked_shl(u32::from(Self::WIDTH.saturating_sub(len)))
            .unwrap_or(0)
    }
}

impl Bits for u128 {
    const WIDTH: u8 = 128;
    fn mask(len: u8) -> u128 {
        u128::MAX
            .checked_shl(u32::from(Self::WIDTH.saturating_sub(len)))
            .unwrap_or(0)
    }
}

/// All prefixes of one length.
#[derive(Clone)]
struct Level<A> {
    len: u8,
    mask: A,
    entries: HashMap<A, Slot, SeededState>,
}

/// One family's prefixes, grouped by length, longest first.
#[derive(Clone)]
struct Table<A> {
    levels: Vec<Level<A>>,
    hasher: SeededState,
}

impl<A: Bits> Table<A> {
    fn new() -> Self {
        Table {
            levels: Vec::new(),
            hasher: SeededState::random(),
        }
    }

    #[inline]
    fn lookup(&self, addr: A) -> Option<usize> {
        self.levels
            .iter()
            .find_map(|level| level.entries.get(&(addr & level.mask)))
            .map(|slot| slot.owner)
    }

    fn position(&self, len: u8) -> Result<usize, usize> {
        // Descending order: a level longer than `len` sorts before it.
        self.levels.binary_search_by(|level| len.cmp(&level.len))
    }

    fn get(&self, addr: A, len: u8) -> Option<&Slot> {
        let at = self.position(len).ok()?;
        self.levels.get(at)?.entries.get(&addr)
    }

    /// Returns the entry this one replaced.
    fn insert(&mut self, addr: A, len: u8, slot: Slot) -> Option<Slot> {
        let at = match self.position(len) {
            Ok(at) => at,
            Err(at) => {
                let level = Level {
                    len,
                    mask: A::mask(len),
                    entries: HashMap::with_hasher(self.hasher.clone()),
                };
                self.levels.insert(at, level);
                at
            }
        };
        self.levels.get_mut(at)?.entries.insert(addr, slot)
    }

    fn remove(&mut self, addr: A, len: u8) -> Option<Slot> {
        let at = self.position(len).ok()?;
        let level = self.levels.get_mut(at)?;
        let removed = level.entries.remove(&addr);
        // An empty level would still cost every lookup a probe.
        if level.entries.is_empty() {
            self.levels.remove(at);
        }
        removed
    }
}

/// Builds [`PrefixHasher`]s starting from a per-table random seed.
#[derive(Clone)]
struct SeededState {
    seed: u64,
}

impl SeededState {
    fn random() -> Self {
        // std's RandomState is seeded from the OS once per thread and perturbed per
        // instance: a source of distinct seeds without a dependency or an rng parameter.
        SeededState {
            seed: RandomState::new().hash_one(0x5eed_u32),
        }
    }
}

impl BuildHasher for SeededState {
    type Hasher = PrefixHasher;
    fn build_hasher(&self) -> PrefixHasher {
        PrefixHasher { state: self.seed }
    }
}

/// A folded 64×64→128-bit multiply per word: a few cycles per probe where SipHash takes
/// tens of nanoseconds, and this runs once per prefix length per packet. Flooding
/// resistance is not needed because the keys are configured prefixes, not attacker input;
/// the random seed still keeps the probe-chain layout unpredictable to outsiders.
struct PrefixHasher {
    state: u64,
}

impl PrefixHasher {
    #[inline]
    fn mix(&mut self, word: u64) {
        const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;
        let product = u128::from(self.state ^ word) * u128::from(MULTIPLIER);
        self.state = (product as u64) ^ ((product >> 64) as u64);
    }
}

impl Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        self.state
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            for (dst, src) in word.iter_mut().zip(chunk) {
                *dst = *src;
            }
            self.mix(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.mix(u64::from(n));
    }

    #[inline]
    fn write_u128(&mut self, n: u128) {
        self.mix(n as u64);
        self.mix((n >> 64) as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn prefixes(table: &AllowedIps<u32>, value: u32) -> Vec<String> {
        table
            .iter_value(&value)
            .map(|(a, len)| format!("{a}/{len}"))
            .collect()
    }

    #[test]
    fn host_bits_are_cleared_on_insert() {
        let mut t = AllowedIps::new();
        t.insert(ip("10.1.2.3"), 24, 1).unwrap();
        t.insert(ip("fd00::1:2:3"), 64, 1).unwrap();
        assert_eq!(prefixes(&t, 1), ["10.1.2.0/24", "fd00::/64"]);
        assert_eq!(t.lookup(ip("10.1.2.200")), Some(&1));
        assert_eq!(t.lookup(ip("10.1.3.1")), None);
        // The same prefix spelled with other host bits is the same entry.
        t.insert(ip("10.1.2.99"), 24, 1).unwrap();
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn longest_prefix_wins() {
        let mut t = AllowedIps::new();
        t.insert(ip("0.0.0.0"), 0, 0).unwrap();
        t.insert(ip("10.0.0.0"), 8, 8).unwrap();
        t.insert(ip("10.1.0.0"), 16, 16).unwrap();
        t.insert(ip("10.1.2.3"), 32, 32).unwrap();
        assert_eq!(t.lookup(ip("10.1.2.3")), Some(&32));
        assert_eq!(t.lookup(ip("10.1.2.4")), Some(&16));
        assert_eq!(t.lookup(ip("10.2.0.1")), Some(&8));
        assert_eq!(t.lookup(ip("192.0.2.1")), Some(&0));
        // Families never mix: an IPv4 default route says nothing about IPv6.
        assert_eq!(t.lookup(ip("::1")), None);

        t.insert(ip("::"), 0, 0).unwrap();
        t.insert(ip("2001:db8::"), 32, 32).unwrap();
        t.insert(ip("2001:db8::1"), 128, 128).unwrap();
        assert_eq!(t.lookup(ip("2001:db8::1")), Some(&128));
        assert_eq!(t.lookup(ip("2001:db8::2")), Some(&32));
        assert_eq!(t.lookup(ip("2001:db9::")), Some(&0));
    }

    #[test]
    fn raw_byte_lookups_agree() {
        let mut t = AllowedIps::new();
        t.insert(ip("192.168.0.0"), 16, 1).unwrap();
        t.insert(ip("fe80::"), 10, 2).unwrap();
        assert_eq!(t.lookup_v4(&[192, 168, 7, 7]), Some(&1));
        assert_eq!(t.lookup_v4(&[192, 169, 0, 0]), None);
        let mut v6 = [0u8; 16];
        v6[0] = 0xfe;
        v6[1] = 0xbf;
        assert_eq!(t.lookup_v6(&v6), Some(&2));
        v6[1] = 0xc0;
        assert_eq!(t.lookup_v6(&v6), None);
    }

    #[test]
    fn an_exact_prefix_moves_to_its_new_owner() {
        let mut t = AllowedIps::new();
        t.insert(ip("10.0.0.0"), 24, 1).unwrap();
        t.insert(ip("10.0.1.0"), 24, 1).unwrap();
        t.insert(ip("10.0.0.0"), 24, 2).unwrap();
        assert_eq!(t.lookup(ip("10.0.0.1")), Some(&2));
        assert_eq!(prefixes(&t, 1), ["10.0.1.0/24"]);
        assert_eq!(prefixes(&t, 2), ["10.0.0.0/24"]);
        assert_eq!(t.len(), 2);
        // Moving a value's last prefix away forgets the value.
        t.insert(ip("10.0.1.0"), 24, 2).unwrap();
        assert_eq!(prefixes(&t, 1), Vec::<String>::new());
        assert_eq!(t.remove_value(&1), 0);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn iteration_follows_last_insertion() {
        let mut t = AllowedIps::new();
        t.insert(ip("10.0.0.3"), 32, 1).unwrap();
        t.insert(ip("fd00::"), 8, 1).unwrap();
        t.insert(ip("10.0.0.1"), 32, 1).unwrap();
        assert_eq!(prefixes(&t, 1), ["10.0.0.3/32", "fd00::/8", "10.0.0.1/32"]);
        // As in the kernel and wireguard-go, re-adding a prefix moves it to the end.
        t.insert(ip("10.0.0.3"), 32, 1).unwrap();
        assert_eq!(prefixes(&t, 1), ["fd00::/8", "10.0.0.1/32", "10.0.0.3/32"]);
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn remove_value_leaves_others_and_uncovers_shorter_prefixes() {
        let mut t = AllowedIps::new();
        t.insert(ip("10.0.0.0"), 8, 1).unwrap();
        t.insert(ip("10.1.0.0"), 16, 2).unwrap();
        t.insert(ip("fd00::2"), 128, 2).unwrap();
        t.insert(ip("fd00::"), 64, 3).unwrap();
        assert_eq!(t.remove_value(&2), 2);
        assert_eq!(t.lookup(ip("10.1.0.1")), Some(&1));
        assert_eq!(t.lookup(ip("fd00::2")), Some(&3));
        assert_eq!(t.len(), 2);
        assert_eq!(t.remove_value(&2), 0);
        assert_eq!(prefixes(&t, 2), Vec::<String>::new());
    }

    #[test]
    fn remove_prefix_only_for_its_owner() {
        let mut t = AllowedIps::new();
        t.insert(ip("10.0.0.0"), 24, 1).unwrap();
        t.insert(ip("10.0.1.0"), 24, 2).unwrap();
        assert_eq!(t.remove_prefix_for(&2, ip("10.0.0.0"), 24), Ok(false));
        assert_eq!(t.remove_prefix_for(&1, ip("10.0.0.0"), 25), Ok(false));
        assert_eq!(t.remove_prefix_for(&9, ip("10.0.0.0"), 24), Ok(false));
        assert_eq!(t.lookup(ip("10.0.0.1")), Some(&1));
        // Host bits are cleared here too.
        assert_eq!(t.remove_prefix_for(&1, ip("10.0.0.77"), 24), Ok(true));
        assert_eq!(t.lookup(ip("10.0.0.1")), None);
        assert_eq!(t.remove_prefix_for(&1, ip("10.0.0.0"), 24), Ok(false));
        assert_eq!(t.len(), 1);
        assert_eq!(prefixes(&t, 2), ["10.0.1.0/24"]);
    }

    #[test]
    fn overlong_prefixes_are_refused() {
        let mut t = AllowedIps::new();
        for (addr, cidr, max) in [("10.0.0.1", 33, 32), ("::1", 129, 128), ("::1", 255, 128)] {
            let want = Err(AllowedIpsError::CidrTooLong {
                addr: ip(addr),
                cidr,
                max,
            });
            assert_eq!(t.insert(ip(addr), cidr, 1), want);
            assert_eq!(t.remove_prefix_for(&1, ip(addr), cidr).map(|_| ()), want);
        }
        assert!(t.is_empty());
        t.insert(ip("10.0.0.1"), 32, 1).unwrap();
        t.insert(ip("::1"), 128, 1).unwrap();
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn a_peer_cannot_pass_for_another_peers_addresses() {
        // gotatun fixed boringtun accepting inner packets whose source belongs to another
        // peer; the check is `lookup(source) == decrypting peer`, so the table must name the
        // owner, not merely find some entry.
        let mut t = AllowedIps::new();
        t.insert(ip("10.0.0.2"), 32, 1).unwrap();
        t.insert(ip("10.0.0.3"), 32, 2).unwrap();
        assert_ne!(t.lookup(ip("10.0.0.2")), Some(&2));
        assert_eq!(t.lookup(ip("10.0.0.4")), None);
    }

    #[test]
    fn clear_empties_everything() {
        let mut t = AllowedIps::new();
        t.insert(ip("10.0.0.0"), 8, 1).unwrap();
        t.insert(ip("::"), 0, 2).unwrap();
        t.clear();
        assert!(t.is_empty());
        assert_eq!(t.lookup(ip("10.0.0.1")), None);
        assert_eq!(t.lookup(ip("::1")), None);
        assert_eq!(prefixes(&t, 1), Vec::<String>::new());
        t.insert(ip("10.0.0.0"), 8, 1).unwrap();
        assert_eq!(t.lookup(ip("10.0.0.1")), Some(&1));
    }

    #[test]
    fn ten_thousand_peers_load_and_unload_quickly() {
        let started = Instant::now();
        let mut t = AllowedIps::new();
        for peer in 0..10_000u32 {
            let v4 = Ipv4Addr::from(0x0a00_0000 | peer);
            let v6 = Ipv6Addr::from(0xfd00_u128 << 112 | u128::from(peer));
            t.insert(IpAddr::V4(v4), 32, peer).unwrap();
            t.insert(IpAddr::V6(v6), 128, peer).unwrap();
        }
        assert_eq!(t.len(), 20_000);
        for peer in (0..10_000u32).step_by(997) {
            assert_eq!(t.iter_value(&peer).count(), 2);
            assert_eq!(
                t.lookup_v4(&(0x0a00_0000 | peer).to_be_bytes()),
                Some(&peer)
            );
        }
        for peer in 0..10_000u32 {
            assert_eq!(t.remove_value(&peer), 2);
        }
        assert!(t.is_empty());
        // Generous enough for an unoptimised build; an O(n) scan per peer would not fit.
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }
}
