//! One edge's sending work with a free core: a TSO super-frame's 52 frames (1 304 bytes, MSS
//! 1 250) sealed by the send thread alone and split with the sealing helper, for each cipher
//! with work to share. Prints µs per super-frame both ways and the speed-up, measured in the
//! same run. Run it on an otherwise idle machine: it shows what the helper gives when the
//! second core is free (bench/throughput.sh shows the lab, where it is not).
//! `cargo bench -p n2n-edge --bench seal`

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use n2n_crypto::compress::Codec;
use n2n_crypto::transform::{AeadSuite, AeadTransform, RootKey, id};
use n2n_crypto::{StampGenerator, Transform, Xorshift128Plus};
use n2n_edge::datapath::Shared;
use n2n_edge::datapath::seal_helper::SealHelper;
use n2n_edge::tunnel::{Encap, FRAME_AT, Halves, Now, Slot, Tunnel, TunnelConfig, View};
use n2n_proto::msg::compression;
use n2n_proto::{Community, Mac};

const FRAMES: usize = 52;
const FRAME: usize = 1304;
const ROUNDS: usize = 7;
const BATCHES: usize = 400;
const OWN: Mac = Mac([2, 0, 0, 0, 0, 1]);
const PEER: Mac = Mac([2, 0, 0, 0, 0, 2]);

fn transform(cipher: u8, community: &Community) -> Transform {
    let suite = match cipher {
        id::AEAD => AeadSuite::ChaCha20Poly1305,
        id::AEAD_GCM => AeadSuite::Aes256Gcm,
        _ => return Transform::legacy(cipher, Some(b"bench-secret")).expect("transform"),
    };
    let root = RootKey::derive_for(suite, b"bench-secret", community).expect("key");
    let mut rng = Xorshift128Plus::seeded(1);
    Transform::Aead(Box::new(AeadTransform::new(root, OWN, 1, &mut rng)))
}

fn shared(cipher: u8) -> Arc<Shared> {
    let community = Community::new("bench").expect("community");
    let cfg = TunnelConfig {
        community,
        own_mac: OWN,
        transform: cipher,
        compression: compression::NONE,
        header_key: None,
        multicast: false,
        routing: false,
        p2p_window_us: 10_000_000,
        user_auth: false,
        filter: Default::default(),
    };
    let halves = Halves {
        seal: transform(cipher, &community),
        open: transform(cipher, &community),
        seal_codec: Codec::new(compression::NONE).expect("codec"),
        open_codec: Codec::new(compression::NONE).expect("codec"),
        seed: 2,
    };
    let tunnel = Tunnel::new(cfg, halves, Arc::new(StampGenerator::default()));
    tunnel.set_view(View {
        registered: true,
        supernode: Some(SocketAddr::from(([192, 0, 2, 1], 7654))),
        own_ip: None,
        peers: Vec::new(),
    });
    Arc::new(Shared {
        tunnel,
        gso: AtomicBool::new(false),
        gro: false,
        parallel: true,
        duplex_wanted: false,
        duplex: AtomicBool::new(false),
        rx_thread: OnceLock::new(),
        rx_parked: false.into(),
        tcp: None,
        tap: OnceLock::new(),
    })
}

/// Median µs per super-frame over `ROUNDS` rounds of `BATCHES`.
fn time(helper: &mut SealHelper, shared: &Shared, split: bool) -> f64 {
    let mut slots: Vec<Slot> = (0..FRAMES).map(|_| Slot::default()).collect();
    let mut out = vec![0..0; FRAMES];
    let lens = [FRAME; FRAMES];
    let mut rounds = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        for _ in 0..BATCHES {
            for slot in &mut slots {
                // Ethernet header to the peer, EtherType without address checks.
                slot.0[FRAME_AT..FRAME_AT + 6].copy_from_slice(&PEER.0);
                slot.0[FRAME_AT + 6..FRAME_AT + 12].copy_from_slice(&OWN.0);
                slot.0[FRAME_AT + 12..FRAME_AT + 14].copy_from_slice(&[0x88, 0xb5]);
            }
            let now = Now::at(1_800_000_000_000_000);
            let encap =
                helper.encapsulate_as(split, now, &shared.tunnel, &mut slots, &lens, &mut out);
            assert!(matches!(encap, Encap::Send { .. }), "{encap:?}");
        }
        rounds.push(started.elapsed().as_secs_f64() * 1e6 / BATCHES as f64);
    }
    rounds.sort_by(f64::total_cmp);
    rounds[ROUNDS / 2]
}

fn main() {
    println!(
        "one super-frame of {FRAMES} frames x {FRAME} bytes, sealed (median of {ROUNDS} x {BATCHES}):"
    );
    println!(
        "{:<6} {:>14} {:>14} {:>9}",
        "cipher", "alone µs", "split µs", "speed-up"
    );
    for (name, cipher) in [("-A3", id::AES), ("-A6", id::AEAD), ("-A7", id::AEAD_GCM)] {
        let shared = shared(cipher);
        let mut helper = SealHelper::start(&shared).expect("helper thread");
        // Warm both ways up first (caches, the helper thread's first wake-up).
        time(&mut helper, &shared, true);
        let alone = time(&mut helper, &shared, false);
        let split = time(&mut helper, &shared, true);
        println!(
            "{name:<6} {alone:>14.1} {split:>14.1} {:>8.2}x",
            alone / split
        );
    }
}
