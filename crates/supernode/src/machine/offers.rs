//! Addresses just handed to address requests (auto-IP), held for their requester a moment.
//!
//! An edge asks for an address with a null MAC, which the supernode answers without storing
//! (spec §7.1 step 3); it registers with the address only after it has set up its TAP. Edges
//! with the same description (n2n's default is the host name) hash to the same first
//! candidate, so n2n gives two that ask within that moment the same address, and refuses the
//! second ("MAC or IP address already in use") for as long as the first stays. Holding each
//! offered address for its requester closes that window. Bounded: the oldest hold goes first.

use std::net::{Ipv4Addr, SocketAddr};

/// How long an offered address stays held for its requester: ample for an edge to set up its
/// TAP and register with the address.
pub const OFFER_HOLD_US: u64 = 10_000_000;
/// Holds per community; a flood of requests only displaces holds, it never grows the table.
pub const MAX_OFFERS: usize = 32;

#[derive(Debug, Clone, Copy)]
struct Offer {
    addr: Ipv4Addr,
    to: SocketAddr,
    until_us: u64,
}

#[derive(Debug, Default)]
pub struct Offers(Vec<Offer>);

impl Offers {
    /// Whether `addr` is held, at `now_us`, for a requester other than `to`.
    pub fn held_for_other(&self, addr: Ipv4Addr, to: SocketAddr, now_us: u64) -> bool {
        self.0
            .iter()
            .any(|o| o.addr == addr && o.to != to && now_us < o.until_us)
    }

    /// Holds `addr` for `to` from `now_us` on, in place of what `to` was offered before.
    pub fn hold(&mut self, addr: Ipv4Addr, to: SocketAddr, now_us: u64) {
        self.0.retain(|o| o.to != to && now_us < o.until_us);
        if self.0.len() >= MAX_OFFERS {
            // Holds all last equally long: the first in the list ends first.
            self.0.remove(0);
        }
        self.0.push(Offer {
            addr,
            to,
            until_us: now_us + OFFER_HOLD_US,
        });
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requester(n: u16) -> SocketAddr {
        SocketAddr::from(([198, 18, 0, 1], 7000 + n))
    }

    const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);

    #[test]
    fn a_hold_blocks_others_until_it_ends_but_not_its_requester() {
        let mut o = Offers::default();
        o.hold(A, requester(1), 100);
        assert!(o.held_for_other(A, requester(2), 100));
        assert!(!o.held_for_other(A, requester(1), 100));
        assert!(o.held_for_other(A, requester(2), 100 + OFFER_HOLD_US - 1));
        assert!(!o.held_for_other(A, requester(2), 100 + OFFER_HOLD_US));
    }

    #[test]
    fn a_new_offer_replaces_the_requesters_last() {
        let mut o = Offers::default();
        o.hold(A, requester(1), 0);
        o.hold(Ipv4Addr::new(10, 0, 0, 6), requester(1), 1);
        assert!(!o.held_for_other(A, requester(2), 1));
        assert_eq!(o.len(), 1);
    }

    #[test]
    fn a_flood_of_requesters_keeps_the_table_bounded() {
        let mut o = Offers::default();
        for n in 0..(3 * MAX_OFFERS as u16) {
            o.hold(Ipv4Addr::new(10, 0, 0, n as u8), requester(n), 0);
        }
        assert_eq!(o.len(), MAX_OFFERS);
        // The newest holds stay, the oldest went.
        let newest = 3 * MAX_OFFERS as u16 - 1;
        assert!(o.held_for_other(Ipv4Addr::new(10, 0, 0, newest as u8), requester(0), 0));
        assert!(!o.held_for_other(Ipv4Addr::new(10, 0, 0, 0), requester(1), 0));
    }
}
