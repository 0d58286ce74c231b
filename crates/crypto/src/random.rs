//! Randomness is passed in (STYLE.md §2): the OS generator in production, n2n's own
//! xorshift128+ in tests so the reference's "random" preambles can be reproduced.

/// A source of random 64-bit words. Bytes are taken as big-endian words, as n2n writes them.
pub trait RandomSource {
    fn next_u64(&mut self) -> u64;

    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let w = self.next_u64().to_be_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
    }
}

/// The operating system's generator.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    fn next_u64(&mut self) -> u64 {
        // The OS generator failing is not recoverable in any meaningful way; fall back to a
        // time-derived value would be weaker than stopping, so this is the one hard failure.
        match getrandom::u64() {
            Ok(v) => v,
            Err(e) => panic!("the operating system's random generator failed: {e}"),
        }
    }

    fn fill(&mut self, out: &mut [u8]) {
        if let Err(e) = getrandom::fill(out) {
            panic!("the operating system's random generator failed: {e}");
        }
    }
}

/// n2n's default PRNG (xorshift128+), seeded as the reference test programs are.
#[derive(Debug, Clone)]
pub struct Xorshift128Plus {
    a: u64,
    b: u64,
}

impl Xorshift128Plus {
    /// The reference's default state.
    pub fn n2n_default() -> Self {
        Xorshift128Plus {
            a: 0x9E37_79B9_7F4A_7C15,
            b: 0xBF58_476D_1CE4_E5B9,
        }
    }

    pub fn seeded(seed: u64) -> Self {
        Xorshift128Plus {
            a: seed ^ 0x9E37_79B9_7F4A_7C15,
            b: seed.rotate_left(32) | 1,
        }
    }
}

impl RandomSource for Xorshift128Plus {
    fn next_u64(&mut self) -> u64 {
        let mut t = self.a;
        let s = self.b;
        self.a = s;
        t ^= t << 23;
        t ^= t >> 17;
        t ^= s ^ (s >> 26);
        self.b = t;
        t.wrapping_add(s)
    }
}
