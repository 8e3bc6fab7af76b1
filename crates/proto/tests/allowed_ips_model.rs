//! `AllowedIps` against a brute-force model: a list of (prefix, value) in insertion order
//! where a lookup scans every entry for the longest one containing the address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ferrotun_proto::allowed_ips::{AllowedIps, AllowedIpsError};
use proptest::prelude::*;

type Value = u8;

/// Addresses as (bits, width) so both families share one bit-by-bit implementation.
fn bits(addr: IpAddr) -> (u128, u8) {
    match addr {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    }
}

fn bit(value: u128, width: u8, i: u8) -> bool {
    (value >> (width - 1 - i)) & 1 == 1
}

fn masked(addr: IpAddr, cidr: u8) -> IpAddr {
    let (mut v, width) = bits(addr);
    for i in cidr..width {
        v &= !(1u128 << (width - 1 - i));
    }
    match addr {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(v as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(v)),
    }
}

fn contains(prefix: IpAddr, cidr: u8, addr: IpAddr) -> bool {
    let ((p, pw), (a, aw)) = (bits(prefix), bits(addr));
    pw == aw && (0..cidr).all(|i| bit(p, pw, i) == bit(a, aw, i))
}

fn too_long(addr: IpAddr, cidr: u8) -> Option<AllowedIpsError> {
    let max = bits(addr).1;
    (cidr > max).then_some(AllowedIpsError::CidrTooLong { addr, cidr, max })
}

#[derive(Default)]
struct Model {
    entries: Vec<(IpAddr, u8, Value)>,
}

impl Model {
    fn insert(&mut self, addr: IpAddr, cidr: u8, value: Value) -> Result<(), AllowedIpsError> {
        if let Some(e) = too_long(addr, cidr) {
            return Err(e);
        }
        let net = masked(addr, cidr);
        self.entries.retain(|&(a, c, _)| (a, c) != (net, cidr));
        self.entries.push((net, cidr, value));
        Ok(())
    }

    fn remove_value(&mut self, value: Value) -> usize {
        let before = self.entries.len();
        self.entries.retain(|&(_, _, v)| v != value);
        before - self.entries.len()
    }

    fn remove_prefix_for(
        &mut self,
        value: Value,
        addr: IpAddr,
        cidr: u8,
    ) -> Result<bool, AllowedIpsError> {
        if let Some(e) = too_long(addr, cidr) {
            return Err(e);
        }
        let net = masked(addr, cidr);
        let before = self.entries.len();
        self.entries.retain(|&e| e != (net, cidr, value));
        Ok(self.entries.len() != before)
    }

    fn lookup(&self, addr: IpAddr) -> Option<Value> {
        self.entries
            .iter()
            .filter(|&&(p, c, _)| contains(p, c, addr))
            .max_by_key(|&&(_, c, _)| c)
            .map(|&(_, _, v)| v)
    }

    fn iter_value(&self, value: Value) -> Vec<(IpAddr, u8)> {
        self.entries
            .iter()
            .filter(|&&(_, _, v)| v == value)
            .map(|&(a, c, _)| (a, c))
            .collect()
    }
}

#[derive(Clone, Debug)]
enum Op {
    Insert(IpAddr, u8, Value),
    RemoveValue(Value),
    RemovePrefix(Value, IpAddr, u8),
    Lookup(IpAddr),
    Clear,
}

/// Addresses clustered around a few networks, so that prefixes overlap and nest often.
fn v4_addr() -> impl Strategy<Value = IpAddr> {
    let bases = prop::sample::select(vec![0u32, 0x0a00_0000, 0x0a01_0200, 0xc0a8_0000, u32::MAX]);
    prop_oneof![
        4 => (bases, any::<u32>()).prop_map(|(b, r)| b ^ (r & 0x0103_0307)),
        1 => any::<u32>(),
    ]
    .prop_map(|a| IpAddr::V4(Ipv4Addr::from(a)))
}

fn v6_addr() -> impl Strategy<Value = IpAddr> {
    let bases = prop::sample::select(vec![
        0u128,
        0xfd00_u128 << 112,
        0x2001_0db8_u128 << 96,
        (0x2001_0db8_u128 << 96) | (1 << 64),
        u128::MAX,
    ]);
    let jitter = (0x0103_u128 << 112) | (0x0307_u128 << 56) | 0x0307;
    prop_oneof![
        4 => (bases, any::<u128>()).prop_map(move |(b, r)| b ^ (r & jitter)),
        1 => any::<u128>(),
    ]
    .prop_map(|a| IpAddr::V6(Ipv6Addr::from(a)))
}

fn prefix() -> impl Strategy<Value = (IpAddr, u8)> {
    let v4_len = prop_oneof![
        Just(0u8),
        Just(32),
        prop::sample::select(vec![8u8, 16, 22, 24, 30, 31]),
        0..=32u8,
        33..=40u8,
    ];
    let v6_len = prop_oneof![
        Just(0u8),
        Just(128),
        prop::sample::select(vec![16u8, 32, 48, 64, 120, 126, 127]),
        0..=128u8,
        129..=255u8,
    ];
    prop_oneof![(v4_addr(), v4_len), (v6_addr(), v6_len)]
}

fn address() -> impl Strategy<Value = IpAddr> {
    prop_oneof![v4_addr(), v6_addr()]
}

fn op() -> impl Strategy<Value = Op> {
    let value = 0..4u8;
    prop_oneof![
        16 => (prefix(), value.clone()).prop_map(|((a, c), v)| Op::Insert(a, c, v)),
        2 => value.clone().prop_map(Op::RemoveValue),
        4 => (value, prefix()).prop_map(|(v, (a, c))| Op::RemovePrefix(v, a, c)),
        8 => address().prop_map(Op::Lookup),
        1 => Just(Op::Clear),
    ]
}

/// Compares everything observable: size, each value's list, and a lookup inside, at the
/// edges of and just outside every prefix the model holds.
fn assert_same(table: &AllowedIps<Value>, model: &Model) {
    assert_eq!(table.len(), model.entries.len());
    for v in 0..4 {
        assert_eq!(
            table.iter_value(&v).collect::<Vec<_>>(),
            model.iter_value(v)
        );
    }
    for &(net, cidr, _) in &model.entries {
        let (n, width) = bits(net);
        let host = if cidr == width {
            0
        } else {
            u128::MAX >> (128 - u32::from(width - cidr))
        };
        let beyond = n.wrapping_add(host).wrapping_add(1) & (u128::MAX >> (128 - u32::from(width)));
        for probe in [
            n,
            n | host,
            beyond,
            n.wrapping_sub(1) & (u128::MAX >> (128 - u32::from(width))),
        ] {
            let addr = match net {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(probe as u32)),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(probe)),
            };
            assert_eq!(
                table.lookup(addr).copied(),
                model.lookup(addr),
                "lookup {addr}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn matches_brute_force_model(ops in prop::collection::vec(op(), 1..80)) {
        let mut table = AllowedIps::new();
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Insert(a, c, v) => prop_assert_eq!(table.insert(a, c, v), model.insert(a, c, v)),
                Op::RemoveValue(v) => prop_assert_eq!(table.remove_value(&v), model.remove_value(v)),
                Op::RemovePrefix(v, a, c) => prop_assert_eq!(
                    table.remove_prefix_for(&v, a, c),
                    model.remove_prefix_for(v, a, c)
                ),
                Op::Lookup(a) => {
                    prop_assert_eq!(table.lookup(a).copied(), model.lookup(a));
                    let raw = match a {
                        IpAddr::V4(x) => table.lookup_v4(&x.octets()),
                        IpAddr::V6(x) => table.lookup_v6(&x.octets()),
                    };
                    prop_assert_eq!(raw.copied(), model.lookup(a));
                }
                Op::Clear => {
                    table.clear();
                    model.entries.clear();
                }
            }
            assert_same(&table, &model);
        }
    }
}
