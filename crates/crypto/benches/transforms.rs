//! Per-core throughput of every transform and of header encryption at 64, 1400 and 1500
//! bytes. `cargo bench -p n2n-crypto` (criterion reports bytes/s; ×8 for bit/s).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use n2n_crypto::transform::{AeadSuite, AeadTransform, PREFIX, RootKey, SUFFIX, id};
use n2n_crypto::{HeaderKey, OsRandom, PacketContext, Transform, Xorshift128Plus};
use n2n_proto::{Community, Mac};

const SIZES: [usize; 3] = [64, 1400, 1500];

fn transforms(c: &Community) -> Vec<(&'static str, Transform, Transform)> {
    let mk = |i| Transform::legacy(i, Some(b"benchmark-key")).expect("legacy");
    let me = Mac([2, 0, 0, 0, 0, 1]);
    let aead_of = |suite, mac| {
        let root = RootKey::derive_suite_with_cost(suite, b"benchmark-key", c, 64, 1).expect("kdf");
        Transform::Aead(Box::new(AeadTransform::new(root, mac, 1, &mut OsRandom)))
    };
    let aead = |mac| aead_of(AeadSuite::ChaCha20Poly1305, mac);
    let gcm = |mac| aead_of(AeadSuite::Aes256Gcm, mac);
    vec![
        ("A1-null", mk(id::NULL), mk(id::NULL)),
        ("A2-twofish", mk(id::TWOFISH), mk(id::TWOFISH)),
        ("A3-aes128", mk(id::AES), mk(id::AES)),
        ("A4-chacha20", mk(id::CHACHA20), mk(id::CHACHA20)),
        ("A5-speck", mk(id::SPECK), mk(id::SPECK)),
        (
            "A6-chacha20poly1305",
            aead(me),
            aead(Mac([2, 0, 0, 0, 0, 2])),
        ),
        ("A7-aes256gcm", gcm(me), gcm(Mac([2, 0, 0, 0, 0, 2]))),
    ]
}

fn bench_transforms(cr: &mut Criterion) {
    let c = Community::new("bench").expect("valid");
    let mut rng = Xorshift128Plus::seeded(1);
    for (name, tx, mut rx) in transforms(&c) {
        let mut g = cr.benchmark_group(format!("transform/{name}"));
        for size in SIZES {
            g.throughput(Throughput::Bytes(size as u64));
            let ctx = PacketContext {
                community: &c,
                src_mac: Mac([2, 0, 0, 0, 0, 1]),
                dst_mac: Mac([2, 0, 0, 0, 0, 2]),
                compression: 1,
                transform: tx.id(),
            };
            let mut buf = vec![0x5au8; PREFIX + size + SUFFIX];
            g.bench_function(BenchmarkId::new("encrypt", size), |b| {
                b.iter(|| {
                    tx.encrypt(&mut buf, size, &ctx, &mut rng)
                        .expect("encrypts")
                })
            });
            // Decrypt a fresh packet each time (the AEAD refuses replays).
            let mut sealed = vec![0u8; PREFIX + size + SUFFIX];
            g.bench_function(BenchmarkId::new("encrypt+decrypt", size), |b| {
                b.iter(|| {
                    let r = tx
                        .encrypt(&mut sealed, size, &ctx, &mut rng)
                        .expect("encrypts");
                    rx.decrypt(&mut sealed[r], &ctx).expect("decrypts")
                })
            });
        }
        g.finish();
    }
}

fn bench_header(cr: &mut Criterion) {
    let c = Community::new("bench").expect("valid");
    let key = HeaderKey::for_community(&c);
    let mut g = cr.benchmark_group("header-encryption");
    for size in SIZES {
        g.throughput(Throughput::Bytes(size as u64));
        let mut pkt = vec![0u8; size];
        pkt[0] = 3;
        pkt[4..24].copy_from_slice(&c.0);
        let plain = pkt.clone();
        g.bench_function(
            BenchmarkId::new("encrypt+decrypt PACKET hl=38", size),
            |b| {
                b.iter(|| {
                    pkt.copy_from_slice(&plain);
                    key.encrypt(&mut pkt, 38, 1 << 40, 7);
                    key.decrypt(&mut pkt, &c).expect("opens")
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, bench_transforms, bench_header);
criterion_main!(benches);
