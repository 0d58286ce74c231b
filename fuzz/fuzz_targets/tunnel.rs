//! The edge's receive path whole: hostile datagrams (each piece: source, then bytes) through
//! the Tunnel of an edge with `-A3`, `-A3 -H` or `-A6 -H` (first byte) that knows one peer.
//! Nothing panics, and whatever is delivered lies inside the buffers. The three Tunnels live
//! for the whole run (their key derivation is too slow per input), so replay windows and
//! stamps carry over between inputs: a finding may depend on the inputs run before it, so
//! reproduce one by running the target over its corpus and the artifact together.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use n2n_edge::tunnel::{Decap, MAX_FRAME, Now, Tunnel, View};
use n2n_fuzz::{CAPTURE_US, pieces, source, tunnel};
use n2n_proto::Mac;

fn tunnels() -> &'static [Tunnel; 3] {
    static T: OnceLock<[Tunnel; 3]> = OnceLock::new();
    T.get_or_init(|| {
        let ts = [
            tunnel(false, false),
            tunnel(false, true),
            tunnel(true, true),
        ];
        for t in &ts {
            t.set_view(View {
                registered: true,
                supernode: Some(source(0)),
                own_ip: None,
                peers: vec![(Mac([2, 0, 0, 0, 0, 1]), source(1), CAPTURE_US)],
            });
        }
        ts
    })
}

fuzz_target!(|data: &[u8]| {
    let [which, rest @ ..] = data else {
        return;
    };
    let t = &tunnels()[usize::from(*which % 3)];
    let mut out = vec![0u8; MAX_FRAME];
    for (i, p) in pieces(rest, 64).enumerate() {
        let Some((from, bytes)) = p.split_first() else {
            continue;
        };
        let mut d = bytes.to_vec();
        let now = Now::at(CAPTURE_US + i as u64 * 1000);
        if let Decap::Deliver {
            frame,
            decompressed,
            ..
        } = t.decapsulate(now, source(*from), &mut d, &mut out)
        {
            assert!(frame.end <= if decompressed { out.len() } else { d.len() });
        }
    }
});
