//! The control messages of the data-plane sockets, written for sendmmsg and read after
//! recvmmsg: UDP_SEGMENT (GSO) and UDP_GRO sizes, and IP_PKTINFO / IPV6_PKTINFO (which of
//! our addresses a datagram arrived at, and which one a datagram leaves from).

use ferrotun_proto::source::LocalSource;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Control buffer for one message: a UDP_SEGMENT or UDP_GRO int (CMSG_SPACE(4) = 24 on
/// 64-bit) plus the larger of the two PKTINFOs (CMSG_SPACE(20) = 40); u64s for cmsghdr
/// alignment.
pub(crate) type Control = [u64; 8];

const fn cmsg_space(data: usize) -> usize {
    let align = std::mem::size_of::<usize>();
    let hdr = (std::mem::size_of::<libc::cmsghdr>() + align - 1) & !(align - 1);
    hdr + ((data + align - 1) & !(align - 1))
}

const fn cmsg_len(data: usize) -> usize {
    let align = std::mem::size_of::<usize>();
    ((std::mem::size_of::<libc::cmsghdr>() + align - 1) & !(align - 1)) + data
}

const PKTINFO4: usize = std::mem::size_of::<libc::in_pktinfo>();
const PKTINFO6: usize = std::mem::size_of::<libc::in6_pktinfo>();
const INT: usize = std::mem::size_of::<libc::c_int>();

const _: () = assert!(
    cmsg_space(INT) + cmsg_space(PKTINFO6) <= std::mem::size_of::<Control>()
        && cmsg_space(INT) + cmsg_space(PKTINFO4) <= std::mem::size_of::<Control>()
);

/// Fills `buf` with the control messages of one send: a UDP_SEGMENT size for a GSO train
/// and the PKTINFO naming the source address. Returns the control length (0: none).
///
/// An IPv4 source goes out with interface index 0: the kernel then routes the datagram
/// by its table (a better route is followed) and fails the send with EINVAL when the
/// address is no longer ours. An IPv6 source carries its index only when it is
/// link-local, where the address means nothing without the link.
pub(crate) fn encode(buf: &mut Control, segment: Option<u16>, src: Option<LocalSource>) -> usize {
    *buf = [0; 8];
    let bytes = buf.as_mut_ptr().cast::<u8>();
    let mut used = 0;
    if let Some(size) = segment {
        // SAFETY: `used` + this cmsg's space fit in `buf` (const assertion above); the
        // buffer is 8-byte aligned and every cmsg starts at a multiple of 8.
        unsafe { put(bytes.add(used), libc::SOL_UDP, libc::UDP_SEGMENT, &size) };
        used += cmsg_space(std::mem::size_of::<u16>());
    }
    match src {
        Some(LocalSource {
            addr: IpAddr::V4(a),
            ..
        }) => {
            let info = libc::in_pktinfo {
                ipi_ifindex: 0,
                ipi_spec_dst: libc::in_addr {
                    s_addr: u32::from(a).to_be(),
                },
                ipi_addr: libc::in_addr { s_addr: 0 },
            };
            // SAFETY: as above.
            unsafe { put(bytes.add(used), libc::IPPROTO_IP, libc::IP_PKTINFO, &info) };
            used += cmsg_space(PKTINFO4);
        }
        Some(LocalSource {
            addr: IpAddr::V6(a),
            ifindex,
        }) => {
            let link_local = a.segments()[0] & 0xffc0 == 0xfe80;
            let info = libc::in6_pktinfo {
                ipi6_addr: libc::in6_addr {
                    s6_addr: a.octets(),
                },
                ipi6_ifindex: if link_local { ifindex } else { 0 },
            };
            // SAFETY: as above.
            unsafe {
                put(
                    bytes.add(used),
                    libc::IPPROTO_IPV6,
                    libc::IPV6_PKTINFO,
                    &info,
                )
            };
            used += cmsg_space(PKTINFO6);
        }
        None => {}
    }
    used
}

/// Writes one cmsg carrying `value` at `at`.
///
/// # Safety
/// `at` must be 8-byte aligned with `cmsg_space(size_of::<T>())` writable bytes.
unsafe fn put<T: Copy>(at: *mut u8, level: libc::c_int, kind: libc::c_int, value: &T) {
    let c = at.cast::<libc::cmsghdr>();
    (*c).cmsg_level = level;
    (*c).cmsg_type = kind;
    (*c).cmsg_len = cmsg_len(std::mem::size_of::<T>()) as _;
    std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<T>(), *value);
}

/// What the control messages of one received datagram say.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Received {
    /// UDP_GRO: the size of each coalesced datagram.
    pub segment: Option<usize>,
    /// IP_PKTINFO / IPV6_PKTINFO: our address it was sent to, and the interface it came in
    /// on.
    pub dst: Option<LocalSource>,
}

/// Reads the control messages of a message recvmmsg just filled in.
pub(crate) fn decode(h: &libc::msghdr) -> Received {
    let mut out = Received::default();
    if h.msg_control.is_null() || h.msg_controllen < cmsg_len(0) {
        return out;
    }
    // SAFETY: `h` is a msghdr whose msg_control points to a control buffer with
    // msg_controllen valid bytes (the kernel's, or one `encode` wrote), so the CMSG_* walk
    // stays inside it; payloads are read unaligned and only when their length covers them.
    unsafe {
        let start = h.msg_control as usize;
        let end = start + h.msg_controllen;
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            let data = libc::CMSG_DATA(c);
            // What the cmsg claims, cut to what the buffer holds (a truncated one may
            // claim more).
            let room = (*c)
                .cmsg_len
                .min(end.saturating_sub(c as usize))
                .saturating_sub(cmsg_len(0));
            match ((*c).cmsg_level, (*c).cmsg_type) {
                (libc::SOL_UDP, libc::UDP_GRO) if room >= INT => {
                    let v = std::ptr::read_unaligned(data.cast::<libc::c_int>());
                    out.segment = usize::try_from(v).ok().filter(|&v| v > 0);
                }
                (libc::IPPROTO_IP, libc::IP_PKTINFO) if room >= PKTINFO4 => {
                    let info = std::ptr::read_unaligned(data.cast::<libc::in_pktinfo>());
                    // spec_dst is the address the kernel itself would answer from (the
                    // header's destination for a unicast datagram to us).
                    let spec = u32::from_be(info.ipi_spec_dst.s_addr);
                    let addr = if spec != 0 {
                        spec
                    } else {
                        u32::from_be(info.ipi_addr.s_addr)
                    };
                    out.dst = (addr != 0).then(|| LocalSource {
                        addr: IpAddr::V4(Ipv4Addr::from(addr)),
                        ifindex: info.ipi_ifindex as u32,
                    });
                }
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) if room >= PKTINFO6 => {
                    let info = std::ptr::read_unaligned(data.cast::<libc::in6_pktinfo>());
                    let addr = Ipv6Addr::from(info.ipi6_addr.s6_addr);
                    out.dst = (!addr.is_unspecified()).then_some(LocalSource {
                        addr: IpAddr::V6(addr),
                        ifindex: info.ipi6_ifindex,
                    });
                }
                _ => {}
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
    }
    out
}

/// Whether a failed send from a chosen source says that source is unusable (the address
/// is gone, tentative, or has no route from it): the datagram is then sent again from the
/// kernel's choice and the source forgotten.
pub fn is_source_error(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL | libc::EADDRNOTAVAIL | libc::ENETUNREACH | libc::ENODEV)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(buf: &mut Control, len: usize) -> libc::msghdr {
        // SAFETY: msghdr is a plain C struct; all-zero is a valid empty value.
        let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
        h.msg_control = buf.as_mut_ptr().cast();
        h.msg_controllen = len as _;
        h
    }

    #[test]
    fn cmsg_sizes_match_libc() {
        for n in [2, 4, PKTINFO4, PKTINFO6] {
            // SAFETY: CMSG_SPACE/CMSG_LEN are pure arithmetic.
            let (space, len) = unsafe { (libc::CMSG_SPACE(n as _), libc::CMSG_LEN(n as _)) };
            assert_eq!(cmsg_space(n), space as usize);
            assert_eq!(cmsg_len(n), len as usize);
        }
    }

    fn src(addr: &str, ifindex: u32) -> LocalSource {
        LocalSource {
            addr: addr.parse().unwrap(),
            ifindex,
        }
    }

    #[test]
    fn nothing_to_say_writes_nothing() {
        let mut buf = [7; 8];
        assert_eq!(encode(&mut buf, None, None), 0);
        assert_eq!(decode(&header(&mut buf, 0)), Received::default());
    }

    #[test]
    fn segment_and_v4_source_round_trip_without_the_interface() {
        let mut buf = Control::default();
        let len = encode(&mut buf, Some(1380), Some(src("192.0.2.7", 9)));
        assert_eq!(len, cmsg_space(2) + cmsg_space(PKTINFO4));
        let c = buf.as_ptr().cast::<u8>();
        // SAFETY: reading the first header of the buffer just written.
        let first = unsafe { std::ptr::read(c.cast::<libc::cmsghdr>()) };
        assert_eq!(
            (first.cmsg_level, first.cmsg_type),
            (libc::SOL_UDP, libc::UDP_SEGMENT)
        );
        // The kernel reads UDP_SEGMENT as a u16.
        // SAFETY: the payload follows the 16-byte header inside the buffer.
        let seg = unsafe { std::ptr::read_unaligned(c.add(cmsg_len(0)).cast::<u16>()) };
        assert_eq!(seg, 1380);
        let got = decode(&header(&mut buf, len));
        // The interface is left to routing, so it does not come back.
        assert_eq!(got.dst, Some(src("192.0.2.7", 0)));
    }

    #[test]
    fn v6_sources_keep_the_interface_only_when_link_local() {
        for (addr, sent) in [("2001:db8::7", 0), ("fe80::7", 4)] {
            let mut buf = Control::default();
            let len = encode(&mut buf, None, Some(src(addr, 4)));
            assert_eq!(len, cmsg_space(PKTINFO6));
            assert_eq!(decode(&header(&mut buf, len)).dst, Some(src(addr, sent)));
        }
        let mut buf = Control::default();
        let len = encode(&mut buf, Some(100), Some(src("2001:db8::1", 0)));
        assert_eq!(len, cmsg_space(2) + cmsg_space(PKTINFO6));
        assert!(len <= std::mem::size_of::<Control>());
    }

    #[test]
    fn received_gro_and_pktinfo_are_both_read() {
        // What the kernel hands recvmmsg: UDP_GRO (an int) then IP_PKTINFO with the
        // header destination and the arrival interface.
        let mut buf = Control::default();
        let bytes = buf.as_mut_ptr().cast::<u8>();
        let info = libc::in_pktinfo {
            ipi_ifindex: 3,
            ipi_spec_dst: libc::in_addr {
                s_addr: u32::from(Ipv4Addr::new(10, 0, 0, 2)).to_be(),
            },
            ipi_addr: libc::in_addr {
                s_addr: u32::from(Ipv4Addr::new(10, 0, 0, 2)).to_be(),
            },
        };
        // SAFETY: both cmsgs fit the aligned buffer (const assertion above).
        unsafe {
            put(bytes, libc::SOL_UDP, libc::UDP_GRO, &1420i32);
            put(
                bytes.add(cmsg_space(INT)),
                libc::IPPROTO_IP,
                libc::IP_PKTINFO,
                &info,
            );
        }
        let got = decode(&header(&mut buf, cmsg_space(INT) + cmsg_space(PKTINFO4)));
        assert_eq!(got.segment, Some(1420));
        assert_eq!(got.dst, Some(src("10.0.0.2", 3)));
    }

    #[test]
    fn a_cut_control_buffer_is_not_read_past() {
        let mut buf = Control::default();
        let len = encode(&mut buf, None, Some(src("2001:db8::9", 0)));
        // The kernel sets MSG_CTRUNC and a shorter length when the buffer was too small.
        assert_eq!(decode(&header(&mut buf, len - 24)).dst, None);
        assert_eq!(decode(&header(&mut buf, 4)), Received::default());
    }

    #[test]
    fn source_errors() {
        for errno in [libc::EINVAL, libc::EADDRNOTAVAIL, libc::ENETUNREACH] {
            assert!(is_source_error(&std::io::Error::from_raw_os_error(errno)));
        }
        assert!(!is_source_error(&std::io::Error::from_raw_os_error(
            libc::EAGAIN
        )));
    }
}
