//! `struct sockaddr_in`/`sockaddr_in6` to and from `SocketAddr`, for the
//! raw socket calls (bind, getsockname, recvmmsg, sendmmsg).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// A sockaddr_in or sockaddr_in6, whichever the family needs.
#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) union SockAddr {
    v4: libc::sockaddr_in,
    v6: libc::sockaddr_in6,
}

impl SockAddr {
    pub const CAPACITY: libc::socklen_t = std::mem::size_of::<SockAddr>() as libc::socklen_t;

    pub fn zeroed() -> SockAddr {
        // SAFETY: all-zero is a valid value for both plain C structs.
        unsafe { std::mem::zeroed() }
    }

    pub fn from_socket_addr(addr: &SocketAddr) -> (SockAddr, libc::socklen_t) {
        let mut sa = SockAddr::zeroed();
        match addr {
            SocketAddr::V4(a) => {
                sa.v4 = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from(*a.ip()).to_be(),
                    },
                    sin_zero: [0; 8],
                };
                (
                    sa,
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            }
            SocketAddr::V6(a) => {
                sa.v6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                (
                    sa,
                    std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                )
            }
        }
    }

    pub fn socket_addr(&self) -> Option<SocketAddr> {
        // SAFETY: the family field sits at the same offset in both variants
        // and every bit pattern is a valid integer; the variant read below is
        // the one the family names, fully initialised by the kernel (or by
        // zeroed()).
        unsafe {
            match libc::c_int::from(self.v4.sin_family) {
                libc::AF_INET => {
                    let a = &self.v4;
                    Some(SocketAddr::V4(SocketAddrV4::new(
                        Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                        u16::from_be(a.sin_port),
                    )))
                }
                libc::AF_INET6 => {
                    let a = &self.v6;
                    Some(SocketAddr::V6(SocketAddrV6::new(
                        Ipv6Addr::from(a.sin6_addr.s6_addr),
                        u16::from_be(a.sin6_port),
                        a.sin6_flowinfo,
                        a.sin6_scope_id,
                    )))
                }
                _ => None,
            }
        }
    }

    pub fn as_ptr(&self) -> *const libc::sockaddr {
        (self as *const SockAddr).cast()
    }

    pub fn as_mut_ptr(&mut self) -> *mut libc::sockaddr {
        (self as *mut SockAddr).cast()
    }
}

/// `[::ffff:a.b.c.d]:p` → `a.b.c.d:p`: an IPv4 socket cannot take the mapped
/// form, and a V6ONLY socket cannot reach it either way.
#[inline]
pub(crate) fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::V4(SocketAddrV4::new(v4, a.port())),
            None => addr,
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_round_trip() {
        for a in ["192.0.2.1:51820", "[2001:db8::1]:443", "[fe80::1%3]:9"] {
            let addr: SocketAddr = a.parse().unwrap();
            let (sa, _) = SockAddr::from_socket_addr(&addr);
            assert_eq!(sa.socket_addr(), Some(addr));
        }
        assert_eq!(SockAddr::zeroed().socket_addr(), None);
    }

    #[test]
    fn mapped_addresses_become_ipv4() {
        let m: SocketAddr = "[::ffff:192.0.2.7]:51820".parse().unwrap();
        assert_eq!(canonical(m), "192.0.2.7:51820".parse().unwrap());
        let v6: SocketAddr = "[2001:db8::7]:1".parse().unwrap();
        assert_eq!(canonical(v6), v6);
    }
}
