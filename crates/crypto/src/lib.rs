//! n2n's cryptography, bit-exact with n2n 3.x (hashes, Speck, header encryption, the payload
//! transforms, compression, the user/password keys), plus n2n-rs's authenticated transform.

pub mod compress;
pub mod header_enc;
pub mod keys;
pub mod pearson;
pub mod random;
pub mod speck;
pub mod transform;
pub mod twofish;

pub use header_enc::{HeaderError, HeaderKey, SenderStamp, StampGenerator};
pub use random::{OsRandom, RandomSource, Xorshift128Plus};
pub use transform::{PacketContext, Transform, TransformError};
