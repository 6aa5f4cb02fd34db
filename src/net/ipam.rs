//! Choosing subnets for networks and addresses for containers.

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::Path;

use super::ipnet::{first_free, mac_for, Ipv4Net};
use super::NetError;

/// Held while a daemon picks a subnet and creates its bridge, so two
/// daemons starting at once never take the same subnet.
const SUBNET_LOCK: &str = "/run/amber-net.lock";

/// Docker's default pools, in its order: 172.17-31/16, then 192.168/20s.
pub fn candidates() -> impl Iterator<Item = Ipv4Net> {
    let big = (17..=31).map(|b| Ipv4Net {
        addr: Ipv4Addr::new(172, b, 0, 0),
        prefix: 16,
    });
    let small = (0..16).map(|i| Ipv4Net {
        addr: Ipv4Addr::new(192, 168, i * 16, 0),
        prefix: 20,
    });
    big.chain(small)
}

/// The first candidate that overlaps none of `taken`.
pub fn choose_subnet(taken: &[Ipv4Net]) -> Result<Ipv4Net, NetError> {
    candidates()
        .find(|c| !taken.iter().any(|t| t.overlaps(c)))
        .ok_or_else(|| {
            NetError::Exhausted(
                "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network".into(),
            )
        })
}

/// An exclusive lock across daemons on this host (released on drop).
pub struct SubnetLock {
    _file: File,
}

/// Take the host-wide subnet lock.
pub fn lock_subnets() -> Result<SubnetLock, NetError> {
    let p = Path::new(SUBNET_LOCK);
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(p)
        .map_err(|e| NetError::io("open", p, e))?;
    // SAFETY: flock on an fd we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(NetError::io("lock", p, std::io::Error::last_os_error()));
    }
    Ok(SubnetLock { _file: f })
}

/// The next address for a container on `subnet` (gateway and `used`
/// excluded) and its MAC.
pub fn next_address(
    subnet: &Ipv4Net,
    gateway: Ipv4Addr,
    used: &[String],
) -> Result<(Ipv4Addr, String), NetError> {
    let used: Vec<Ipv4Addr> = used.iter().filter_map(|u| u.parse().ok()).collect();
    let ip = first_free(subnet, gateway, &used).ok_or_else(|| {
        NetError::Exhausted(format!("no available IPv4 addresses on network {subnet}"))
    })?;
    Ok((ip, mac_for(ip)))
}

/// A requested address (`--ip`), if it is a free host address of `subnet`.
pub fn requested_address(
    subnet: &Ipv4Net,
    gateway: Ipv4Addr,
    used: &[String],
    ip: Ipv4Addr,
) -> Result<(Ipv4Addr, String), NetError> {
    if !subnet.contains(ip) || ip == subnet.network() || ip == subnet.broadcast() {
        return Err(NetError::Invalid(format!(
            "Invalid address {ip}: It does not belong to any of this network's subnets"
        )));
    }
    if ip == gateway || used.iter().any(|u| u.parse() == Ok(ip)) {
        return Err(NetError::Invalid(format!("Address already in use: {ip}")));
    }
    Ok((ip, mac_for(ip)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_taken_subnets() {
        let t = |s: &str| s.parse::<Ipv4Net>().unwrap();
        assert_eq!(choose_subnet(&[]).unwrap(), t("172.17.0.0/16"));
        let taken = [t("172.17.5.0/24"), t("172.16.0.0/12")];
        assert_eq!(choose_subnet(&taken).unwrap(), t("192.168.0.0/20"));
        let taken = [t("172.17.0.0/16"), t("172.18.3.3/32")];
        assert_eq!(choose_subnet(&taken).unwrap(), t("172.19.0.0/16"));
        assert!(choose_subnet(&[t("0.0.0.0/0")]).is_err());
    }

    #[test]
    fn addresses() {
        let s: Ipv4Net = "10.7.0.0/24".parse().unwrap();
        let gw = Ipv4Addr::new(10, 7, 0, 1);
        let (ip, mac) = next_address(&s, gw, &["10.7.0.2".into()]).unwrap();
        assert_eq!(ip, Ipv4Addr::new(10, 7, 0, 3));
        assert_eq!(mac, "02:42:0a:07:00:03");
        let ask = |ip: [u8; 4]| requested_address(&s, gw, &["10.7.0.2".into()], Ipv4Addr::from(ip));
        assert_eq!(ask([10, 7, 0, 9]).unwrap().0, Ipv4Addr::new(10, 7, 0, 9));
        for bad in [[10, 7, 0, 2], [10, 7, 0, 1], [10, 8, 0, 9], [10, 7, 0, 255]] {
            assert!(ask(bad).is_err(), "{bad:?}");
        }
    }
}
