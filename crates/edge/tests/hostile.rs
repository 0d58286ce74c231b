//! Every datagram the reference network sent (as sent and header-decrypted, plus truncated,
//! bit-flipped variants) fed to the
//! edge machine as control input never panics it, and it keeps registering.

#[path = "../../proto/tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use n2n_crypto::{RandomSource, Xorshift128Plus};

use n2n_edge::machine::{Action, Edge, EdgeMachineConfig, PeerHint};

use n2n_proto::{Community, Datagram, Desc, IpSubnet, Mac};

#[test]
fn the_machine_survives_every_captured_and_mutated_datagram() {
    let sn: SocketAddr = "192.0.2.1:7654".parse().expect("addr");
    let cfg = EdgeMachineConfig {
        desc: Desc::from_text("edge1"),
        dev_addr: Some(IpSubnet::new([10, 99, 0, 1].into(), 24)),
        ..EdgeMachineConfig::new(
            Community::new("n2nvectors").expect("valid"),
            Mac([2, 0, 0, 0, 0, 1]),
            vec![sn],
        )
    };
    let t0 = 1_795_543_491_000_000;
    let mut e = Edge::new(
        cfg,
        Box::new(Xorshift128Plus::seeded(1)),
        Arc::new(n2n_crypto::StampGenerator::default()),
        t0,
    );
    let mut rng = Xorshift128Plus::seeded(2);
    let mut now = t0;
    let mut fed = 0;
    for (i, d) in support::captured_cached().iter().enumerate() {
        for variant in 0..20 {
            let mut b = d.clone();
            if variant > 0 {
                let cut = (rng.next_u64() as usize) % (b.len() + 1);
                b.truncate(cut.max(24));
                let at = (rng.next_u64() as usize) % b.len();
                b[at] ^= 1 << (rng.next_u64() % 8);
            }
            now += 1000;
            let from = if i % 2 == 0 {
                sn
            } else {
                SocketAddr::from(([192, 0, 2, 12], 50002))
            };
            if let Ok((dg, _)) = Datagram::decode(&b) {
                e.handle_control(now, from, dg);
                fed += 1;
            }
            let mut m = [0u8; 6];
            rng.fill(&mut m);
            e.handle_hint(
                now,
                PeerHint::Relayed {
                    mac: Mac(m),
                    sock: from,
                    unicast: true,
                },
            );
            e.handle_timeout(now);
            while e.poll_action().is_some() {}
        }
    }
    assert!(fed > 20_000, "only {fed} datagrams decoded");
    // ~31 000 random peers were announced: the tables stay bounded.
    assert!(e.pending().count() <= n2n_edge::machine::MAX_PEERS);
    assert!(e.known().count() <= n2n_edge::machine::MAX_PEERS);
    // Still alive: the registration timer still fires.
    e.handle_timeout(now + 30_000_000);
    let mut registering = false;
    while let Some(a) = e.poll_action() {
        registering |= matches!(a, Action::Transmit { dst, .. } if dst == sn);
    }
    assert!(registering);
}
