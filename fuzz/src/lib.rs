//! What the fuzz targets share: one community, its keys, and a way to cut one fuzz input into
//! several datagrams or frames.

use n2n_proto::Community;

pub const COMMUNITY: &str = "n2nvectors";
/// The key of the captured vectors (../shared/vectors), so seeds decrypt.
pub const KEY: &[u8] = b"AES128-test-key!";

pub fn community() -> Community {
    Community::new(COMMUNITY).expect("valid name")
}

/// Cuts `data` into pieces, each announced by a little-endian u16 length (cut short at the
/// end of the input), at most `max` pieces.
pub fn pieces(mut data: &[u8], max: usize) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        if data.len() < 2 {
            return None;
        }
        let n = usize::from(u16::from_le_bytes([data[0], data[1]])).min(data.len() - 2);
        let (piece, rest) = data[2..].split_at(n);
        data = rest;
        Some(piece)
    })
    .take(max)
}

/// When the vectors were captured: their `-H` stamps are fresh at this time.
pub const CAPTURE_US: u64 = 1_795_544_064_000_000;

/// An edge's data plane as `edge -c n2nvectors -k AES128-test-key!` runs it: `-A3` (the
/// vectors' cipher, so captured PACKETs open), or `-A6`; `-H` when `header_enc`.
pub fn tunnel(aead: bool, header_enc: bool) -> n2n_edge::tunnel::Tunnel {
    use n2n_crypto::compress::Codec;
    use n2n_crypto::transform::{AeadTransform, RootKey, id};
    use n2n_crypto::{HeaderKey, StampGenerator, Transform, Xorshift128Plus};
    use n2n_edge::tunnel::{Halves, Tunnel, TunnelConfig};
    use n2n_proto::Mac;
    use n2n_proto::msg::compression;

    let c = community();
    let own_mac = Mac([2, 0, 0, 0, 0, 2]);
    let cfg = TunnelConfig {
        community: c,
        own_mac,
        transform: if aead { id::AEAD } else { id::AES },
        compression: compression::LZO,
        header_key: header_enc.then(|| Box::new(HeaderKey::for_community(&c))),
        multicast: false,
        routing: false,
        p2p_window_us: 10_000_000,
        user_auth: false,
        filter: Default::default(),
    };
    let half = |seed| {
        if aead {
            let root = RootKey::derive_with_cost(KEY, &c, 8, 1).expect("key");
            let mut rng = Xorshift128Plus::seeded(seed);
            Transform::Aead(Box::new(AeadTransform::new(
                root,
                own_mac,
                CAPTURE_US / 1_000_000,
                &mut rng,
            )))
        } else {
            Transform::legacy(id::AES, Some(KEY)).expect("AES")
        }
    };
    let codec = || Codec::new(compression::LZO).expect("codec");
    let halves = Halves {
        seal: half(1),
        open: half(2),
        seal_codec: codec(),
        open_codec: codec(),
        seed: 3,
    };
    Tunnel::new(cfg, halves, std::sync::Arc::new(StampGenerator::default()))
}

/// One of eight sources: 0 is the supernode of the vectors, 1 and 11 their edges.
pub fn source(n: u8) -> std::net::SocketAddr {
    match n % 8 {
        0 => ([192, 0, 2, 1], 7654).into(),
        1 => ([192, 0, 2, 11], 50001).into(),
        k => ([198, 51, 100, k], 40000 + u16::from(k)).into(),
    }
}
