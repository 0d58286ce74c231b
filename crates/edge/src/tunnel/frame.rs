//! Ethernet frame checks of spec §7.7 and the gratuitous ARP of §7.13.

use std::net::Ipv4Addr;

use n2n_proto::Mac;

use super::{DropReason, TunnelConfig};

const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];

pub fn dst_mac(frame: &[u8]) -> Mac {
    let mut m = [0u8; 6];
    m.copy_from_slice(&frame[..6]);
    Mac(m)
}

/// Without `-E`, IPv4/IPv6 Ethernet multicast is dropped both ways (broadcast passes).
pub fn multicast_blocked(dst: &Mac, accept_multicast: bool) -> bool {
    !accept_multicast && dst.is_multicast_not_broadcast()
}

fn ipv4_at(frame: &[u8], at: usize) -> Option<Ipv4Addr> {
    if frame.len() < 34 || frame[12..14] != ETHERTYPE_IPV4 {
        return None;
    }
    Some(Ipv4Addr::new(
        frame[at],
        frame[at + 1],
        frame[at + 2],
        frame[at + 3],
    ))
}

/// Without `-r`: IPv4 frames read from the TAP must come from our own address.
pub fn tx_blocked(frame: &[u8], own: Option<Ipv4Addr>, routing: bool) -> bool {
    !routing && matches!((ipv4_at(frame, 26), own), (Some(src), Some(me)) if src != me)
}

/// Without `-r`: received unicast IPv4 frames must be for our own address.
pub fn rx_blocked(frame: &[u8], own: Option<Ipv4Addr>, routing: bool) -> bool {
    !routing
        && dst_mac(frame) != Mac::BROADCAST
        && matches!((ipv4_at(frame, 30), own), (Some(dst), Some(me)) if dst != me)
}

/// Whether a frame read from the TAP may leave: `-E`, `-r`, `-R` (spec §7.7).
pub fn tx_check(frame: &[u8], own: Option<Ipv4Addr>, cfg: &TunnelConfig) -> Option<DropReason> {
    check(frame, tx_blocked(frame, own, cfg.routing), cfg)
}

/// Whether a received frame may reach the TAP: length, `-E`, `-r`, `-R`.
pub fn rx_check(frame: &[u8], own: Option<Ipv4Addr>, cfg: &TunnelConfig) -> Option<DropReason> {
    if frame.len() < 14 {
        return Some(DropReason::TooShort);
    }
    check(frame, rx_blocked(frame, own, cfg.routing), cfg)
}

/// The checks both directions make, in n2n's order; `not_ours` is the direction's `-r` check.
fn check(frame: &[u8], not_ours: bool, cfg: &TunnelConfig) -> Option<DropReason> {
    if multicast_blocked(&dst_mac(frame), cfg.multicast) {
        Some(DropReason::Multicast)
    } else if not_ours {
        Some(DropReason::NotOurs)
    } else if !cfg.filter.allows(frame) {
        Some(DropReason::Rule)
    } else {
        None
    }
}

/// The 42-byte gratuitous ARP (an ARP reply from us to ourselves, broadcast).
pub fn gratuitous_arp(mac: Mac, ip: Ipv4Addr) -> [u8; 42] {
    let mut f = [0u8; 42];
    f[..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&mac.0);
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    f[14..22].copy_from_slice(&[0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02]);
    f[22..28].copy_from_slice(&mac.0);
    f[28..32].copy_from_slice(&ip.octets());
    f[32..38].copy_from_slice(&[0xff; 6]);
    f[38..42].copy_from_slice(&ip.octets());
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gratuitous_arp_matches_the_reference() {
        // The frame_hex of edge1's first PACKET in the vectors.
        let want =
            "ffffffffffff020000000001080600010800060400020200000000010a630001ffffffffffff0a630001";
        let f = gratuitous_arp(Mac([2, 0, 0, 0, 0, 1]), Ipv4Addr::new(10, 99, 0, 1));
        let got: String = f.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn routing_filters() {
        let me = Some(Ipv4Addr::new(10, 0, 0, 1));
        let mut f = [0u8; 60];
        f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[12..14].copy_from_slice(&ETHERTYPE_IPV4);
        f[26..30].copy_from_slice(&[10, 0, 0, 1]);
        f[30..34].copy_from_slice(&[10, 0, 0, 9]);
        assert!(!tx_blocked(&f, me, false));
        assert!(rx_blocked(&f, me, false));
        assert!(!rx_blocked(&f, me, true));
        f[26..30].copy_from_slice(&[192, 168, 1, 1]);
        assert!(tx_blocked(&f, me, false));
        assert!(multicast_blocked(&Mac([1, 0, 0x5e, 0, 0, 1]), false));
        assert!(!multicast_blocked(&Mac::BROADCAST, false));
    }
}
