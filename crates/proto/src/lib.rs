//! The n2n 3.x wire format: the 24-byte common header, every message body and the TCP framing.
//!
//! Decoders follow the reference's leniency (spec §3.8): a body that ends early reads as if the
//! missing bytes were zero, and trailing bytes are handed back to the caller (the PACKET payload,
//! the user/password trailer). They never panic, never read out of bounds and never allocate
//! more than a message can hold (auth tokens ≤ 48 bytes, ≤ 44 supernode entries).

pub mod codec;
pub mod error;
pub mod header;
pub mod msg;
pub mod tcp;
pub mod types;

pub use codec::{Reader, Writer};
pub use error::{DecodeError, EncodeError};
pub use header::{COMMON_HEADER_LEN, Flags, Header, MsgType, PKT_VERSION};
pub use msg::{Datagram, Message};
pub use types::*;
