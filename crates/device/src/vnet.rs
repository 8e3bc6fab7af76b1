//! The 10-byte `struct virtio_net_hdr` that prefixes every packet read from or
//! written to a TUN opened with IFF_VNET_HDR (see `Tun::create_with_offload`).
//!
//! Layout (include/uapi/linux/virtio_net.h), fields in the host's byte order
//! (the kernel uses legacy virtio endianness, which is native unless
//! TUNSETVNETBE/LE is called, which we never do):
//!
//! ```text
//! 0 flags  1 gso_type  2..4 hdr_len  4..6 gso_size  6..8 csum_start  8..10 csum_offset
//! ```
//!
//! On read, a `gso_type` other than [`VirtioNetHdr::GSO_NONE`] means the
//! packet is a super-packet to be cut into `gso_size`-byte payload segments
//! (each with its own copy of the first `hdr_len` header bytes, fixed up), and
//! `flags & F_NEEDS_CSUM` means the L4 checksum is partial and must be
//! finished at `csum_start + csum_offset`. On write, an all-zero header
//! ([`VirtioNetHdr::NONE`]) passes a plain, fully checksummed packet.

/// Size of the header on the wire of the TUN fd.
pub const VNET_HDR_LEN: usize = 10;

/// A parsed `virtio_net_hdr`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VirtioNetHdr {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VirtioNetHdr {
    /// `flags`: checksum is partial; complete it at csum_start+csum_offset.
    pub const F_NEEDS_CSUM: u8 = 1;
    /// `flags`: checksum already verified (valid on write: the kernel trusts it).
    pub const F_DATA_VALID: u8 = 2;
    pub const GSO_NONE: u8 = 0;
    pub const GSO_TCPV4: u8 = 1;
    pub const GSO_UDP: u8 = 3;
    pub const GSO_TCPV6: u8 = 4;
    /// UDP segmentation offload (USO), kernel ≥ 6.2 with TUN_F_USO4/6.
    pub const GSO_UDP_L4: u8 = 5;
    /// Bit or'ed into `gso_type` when the TCP stream uses ECN (CWR).
    pub const GSO_ECN: u8 = 0x80;

    /// A header for a plain packet: no GSO, checksum complete.
    pub const NONE: VirtioNetHdr = VirtioNetHdr {
        flags: 0,
        gso_type: 0,
        hdr_len: 0,
        gso_size: 0,
        csum_start: 0,
        csum_offset: 0,
    };

    /// Parses the first [`VNET_HDR_LEN`] bytes of `buf`; `None` if shorter.
    #[inline]
    pub fn parse(buf: &[u8]) -> Option<VirtioNetHdr> {
        let b: &[u8; VNET_HDR_LEN] = buf.get(..VNET_HDR_LEN)?.try_into().ok()?;
        let u16_at = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        Some(VirtioNetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        })
    }

    /// Writes the header into the first [`VNET_HDR_LEN`] bytes of `buf`;
    /// returns `false` (writing nothing) if `buf` is shorter.
    #[inline]
    pub fn write(&self, buf: &mut [u8]) -> bool {
        let Some(b) = buf.get_mut(..VNET_HDR_LEN) else {
            return false;
        };
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        true
    }

    /// The GSO type without the ECN bit.
    #[inline]
    pub fn gso_kind(&self) -> u8 {
        self.gso_type & !Self::GSO_ECN
    }

    /// Whether this describes a super-packet that must be segmented.
    #[inline]
    pub fn is_gso(&self) -> bool {
        self.gso_kind() != Self::GSO_NONE
    }

    /// Whether the L4 checksum still has to be computed.
    #[inline]
    pub fn needs_csum(&self) -> bool {
        self.flags & Self::F_NEEDS_CSUM != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h = VirtioNetHdr {
            flags: VirtioNetHdr::F_NEEDS_CSUM,
            gso_type: VirtioNetHdr::GSO_TCPV4 | VirtioNetHdr::GSO_ECN,
            hdr_len: 52,
            gso_size: 1380,
            csum_start: 20,
            csum_offset: 16,
        };
        let mut b = [0u8; 12];
        assert!(h.write(&mut b));
        assert_eq!(VirtioNetHdr::parse(&b), Some(h));
        assert!(h.is_gso() && h.needs_csum());
        assert_eq!(h.gso_kind(), VirtioNetHdr::GSO_TCPV4);
        assert_eq!(VirtioNetHdr::parse(&b[..9]), None);
        assert!(!h.write(&mut b[..9]));
        assert!(!VirtioNetHdr::NONE.is_gso());
    }
}
