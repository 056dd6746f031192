//! `/proc/net/udp` parsing: which IPv4 UDP ports are bound in a namespace.

use std::net::Ipv4Addr;

/// Local (address, port) of every socket listed in a `/proc/net/udp` table.
pub fn parse_udp(table: &str) -> Vec<(Ipv4Addr, u16)> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let local = line.split_whitespace().nth(1)?;
            let (addr, port) = local.split_once(':')?;
            // The kernel prints the network-order u32 as a native integer: its native-endian
            // bytes are the address octets in order.
            let raw = u32::from_str_radix(addr, 16).ok()?;
            Some((
                Ipv4Addr::from(raw.to_ne_bytes()),
                u16::from_str_radix(port, 16).ok()?,
            ))
        })
        .collect()
}

/// Whether process `pid`'s network namespace has UDP `port` bound on `addr` or the wildcard (any
/// address if `addr` is None): `/proc/PID/net/udp` shows the namespace of that process.
pub fn udp_bound_by(pid: u32, addr: Option<Ipv4Addr>, port: u16) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/net/udp")).is_ok_and(|t| udp_bound(&t, addr, port))
}

/// Whether `port` is bound on `addr` or on the wildcard address in `table`.
pub fn udp_bound(table: &str, addr: Option<Ipv4Addr>, port: u16) -> bool {
    parse_udp(table)
        .iter()
        .any(|&(a, p)| p == port && addr.is_none_or(|want| a == want || a.is_unspecified()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
 2344: 010012C6:0043 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 17557 2 00000000db469bc7 0\n\
  100: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 17558 2 00000000db469bc8 0\n";

    #[test]
    #[cfg(target_endian = "little")]
    fn parses_addresses_and_ports() {
        assert_eq!(
            parse_udp(TABLE),
            vec![
                (Ipv4Addr::new(198, 18, 0, 1), 67),
                (Ipv4Addr::UNSPECIFIED, 68)
            ]
        );
        assert!(udp_bound(TABLE, Some(Ipv4Addr::new(198, 18, 0, 1)), 67));
        assert!(!udp_bound(TABLE, Some(Ipv4Addr::new(198, 18, 0, 2)), 67));
        assert!(udp_bound(TABLE, Some(Ipv4Addr::new(198, 18, 0, 2)), 68));
        assert!(udp_bound(TABLE, None, 67));
        assert!(!udp_bound(TABLE, None, 69));
        assert!(parse_udp("header only\n").is_empty());
    }

    #[test]
    fn a_process_table_shows_its_own_sockets() {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        let me = std::process::id();
        assert!(udp_bound_by(me, Some(Ipv4Addr::LOCALHOST), port));
        assert!(udp_bound_by(me, None, port));
        assert!(!udp_bound_by(me, Some(Ipv4Addr::new(198, 18, 0, 1)), port));
        drop(sock);
        assert!(!udp_bound_by(me, None, port));
        assert!(!udp_bound_by(u32::MAX, None, port));
    }
}
