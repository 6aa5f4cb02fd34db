//! IPv4 subnets: parsing, overlap, address arithmetic, and the MAC Docker
//! derives from an address.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 address with a prefix length: `172.17.0.1/16` (an interface
/// address) or `172.17.0.0/16` (a subnet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    /// The address as written.
    pub addr: Ipv4Addr,
    /// Prefix length, 0..=32.
    pub prefix: u8,
}

impl Ipv4Net {
    /// A subnet or interface address.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Option<Ipv4Net> {
        (prefix <= 32).then_some(Ipv4Net { addr, prefix })
    }

    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix as u32)
        }
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// The same prefix with host bits cleared.
    pub fn trunc(&self) -> Ipv4Net {
        Ipv4Net {
            addr: self.network(),
            prefix: self.prefix,
        }
    }

    /// The broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }

    /// Whether `ip` is inside the subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr) & self.mask()
    }

    /// Whether two subnets share any address.
    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        self.contains(other.network()) || other.contains(self.network())
    }

    /// The `n`-th address of the subnet (0 is the network address), if inside.
    pub fn nth(&self, n: u32) -> Option<Ipv4Addr> {
        let host_bits = 32 - self.prefix as u32;
        if host_bits < 32 && n >= (1u32 << host_bits) {
            return None;
        }
        Some(Ipv4Addr::from(u32::from(self.network()).wrapping_add(n)))
    }

    /// Usable host addresses (without network and broadcast).
    pub fn hosts(&self) -> u32 {
        let host_bits = 32 - self.prefix as u32;
        if host_bits < 2 {
            0
        } else if host_bits >= 32 {
            u32::MAX - 1
        } else {
            (1u32 << host_bits) - 2
        }
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv4Net {
    type Err = String;

    /// `a.b.c.d/n`; a bare address is a /32.
    fn from_str(s: &str) -> Result<Ipv4Net, String> {
        let bad = || format!("invalid CIDR address: {s}");
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, p.parse::<u8>().map_err(|_| bad())?),
            None => (s, 32),
        };
        let addr = a.parse::<Ipv4Addr>().map_err(|_| bad())?;
        Ipv4Net::new(addr, p).ok_or_else(bad)
    }
}

/// Docker's MAC for an address: `02:42` then the four address bytes.
pub fn mac_for(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}

/// The first free host address of `subnet` (from .2 on, skipping the
/// gateway, the broadcast and `used`).
pub fn first_free(subnet: &Ipv4Net, gateway: Ipv4Addr, used: &[Ipv4Addr]) -> Option<Ipv4Addr> {
    (1..=subnet.hosts())
        .filter_map(|n| subnet.nth(n))
        .find(|ip| *ip != gateway && *ip != subnet.broadcast() && !used.contains(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_arith() {
        let n: Ipv4Net = "172.18.5.1/16".parse().unwrap();
        assert_eq!(n.network(), Ipv4Addr::new(172, 18, 0, 0));
        assert_eq!(n.broadcast(), Ipv4Addr::new(172, 18, 255, 255));
        assert_eq!(n.trunc().to_string(), "172.18.0.0/16");
        assert_eq!(n.nth(1), Some(Ipv4Addr::new(172, 18, 0, 1)));
        assert_eq!(n.hosts(), 65534);
        for bad in ["", "1.2.3", "1.2.3.4/33", "1.2.3.4/x", "a/8"] {
            assert!(bad.parse::<Ipv4Net>().is_err(), "{bad}");
        }
        assert_eq!("10.0.0.7".parse::<Ipv4Net>().unwrap().prefix, 32);
    }

    #[test]
    fn overlap() {
        let a: Ipv4Net = "10.0.0.0/8".parse().unwrap();
        let b: Ipv4Net = "10.9.0.0/16".parse().unwrap();
        let c: Ipv4Net = "192.168.0.0/24".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
        let d: Ipv4Net = "0.0.0.0/0".parse().unwrap();
        assert!(d.overlaps(&c));
    }

    #[test]
    fn allocation() {
        let n: Ipv4Net = "10.1.0.0/29".parse().unwrap();
        let gw = Ipv4Addr::new(10, 1, 0, 1);
        assert_eq!(first_free(&n, gw, &[]), Some(Ipv4Addr::new(10, 1, 0, 2)));
        let used: Vec<Ipv4Addr> = (2..=6).map(|i| Ipv4Addr::new(10, 1, 0, i)).collect();
        assert_eq!(first_free(&n, gw, &used), None);
        assert_eq!(
            first_free(&n, gw, &used[1..]),
            Some(Ipv4Addr::new(10, 1, 0, 2))
        );
        assert_eq!(mac_for(Ipv4Addr::new(172, 17, 0, 2)), "02:42:ac:11:00:02");
    }
}
