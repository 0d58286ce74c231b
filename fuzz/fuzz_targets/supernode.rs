//! The supernode machine whole: a run of hostile datagrams (each piece: source, time step,
//! bytes) into an open supernode and one with a community list and `-H` communities. Nothing
//! panics and nothing it sends is larger than a datagram or goes to more edges than
//! the supernode may hold.
#![no_main]

use libfuzzer_sys::fuzz_target;
use n2n_crypto::Xorshift128Plus;
use n2n_fuzz::{CAPTURE_US, pieces, source};
use n2n_supernode::community_list::CommunityList;
use n2n_supernode::machine::{MachineConfig, Outbox, Supernode};

fn supernode(listed: bool) -> Supernode {
    let cfg = MachineConfig {
        communities: listed.then(|| CommunityList::parse("n2nvectors\n*.x\n")),
        max_edges: 64,
        ..MachineConfig::default()
    };
    Supernode::new(cfg, CAPTURE_US, Box::new(Xorshift128Plus::seeded(1)))
}

fuzz_target!(|data: &[u8]| {
    let [which, rest @ ..] = data else {
        return;
    };
    let mut sn = supernode(which & 1 != 0);
    let mut out = Outbox::default();
    let mut now = CAPTURE_US;
    for p in pieces(rest, 64) {
        let [from, step, bytes @ ..] = p else {
            continue;
        };
        now += u64::from(*step) * 100_000;
        let mut d = bytes.to_vec();
        sn.handle_datagram(now, source(*from), &mut d, &mut out);
        for t in out.transmits() {
            assert!(t.data.len() <= 65_507);
            // A broadcast reaches at most the edges a community may hold (and the sender's
            // federation, which this supernode has not got).
            assert!(t.dests.len() <= 64);
        }
    }
});
