//! The management API: any request datagram, with or without the right password, to the
//! supernode's and the edge's handlers. Answers are text lines; nothing panics.
#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use n2n_crypto::{StampGenerator, Xorshift128Plus};
use n2n_edge::machine::{Edge, EdgeMachineConfig};
use n2n_fuzz::{CAPTURE_US, community, tunnel};
use n2n_proto::{Desc, Mac};
use n2n_supernode::machine::{MachineConfig, Supernode};

fn edge() -> Edge {
    let cfg = EdgeMachineConfig {
        desc: Desc::from_text("fuzz"),
        ..EdgeMachineConfig::new(
            community(),
            Mac([2, 0, 0, 0, 0, 2]),
            vec![([192, 0, 2, 1], 7654).into()],
        )
    };
    Edge::new(
        cfg,
        Box::new(Xorshift128Plus::seeded(1)),
        std::sync::Arc::new(StampGenerator::default()),
        CAPTURE_US,
    )
}

fuzz_target!(|data: &[u8]| {
    let hash = n2n_crypto::pearson::pearson_hash_64(b"n2n");
    let _ = n2n_daemon::mgmt::parse(data, hash);

    let mut sn = Supernode::new(
        MachineConfig::default(),
        CAPTURE_US,
        Box::new(Xorshift128Plus::seeded(1)),
    );
    let mut ctl = n2n_supernode::mgmt::Control {
        password_hash: hash,
        verbosity: 2,
        keep_running: true,
        list_path: None,
        out: Default::default(),
    };
    for line in n2n_supernode::mgmt::handle(&mut sn, &mut ctl, CAPTURE_US, data) {
        assert!(line.len() < 65_507);
    }

    let m = edge();
    let t = tunnel(false, false);
    let from: SocketAddr = ([127, 0, 0, 1], 40000).into();
    let mut ctl = n2n_edge::mgmt::Control {
        password_hash: hash,
        verbosity: 2,
        keep_running: true,
        subs: Default::default(),
        local: ([0, 0, 0, 0], 50001).into(),
    };
    for line in n2n_edge::mgmt::handle(&m, &t, &mut ctl, CAPTURE_US, data, from) {
        assert!(line.len() < 65_507);
    }
});
