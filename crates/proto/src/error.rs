//! Codec errors: small, `Copy`, allocation-free.

/// Why a datagram could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated: need {need} bytes, have {have}")]
    Truncated { need: usize, have: usize },
    #[error("unsupported packet version {0}")]
    Version(u8),
    #[error("auth token of {0} bytes exceeds the 48-byte maximum")]
    TokenTooLong(u16),
    #[error("TCP frame of {0} bytes exceeds the 2048-byte buffer")]
    FrameTooLong(usize),
}

/// Why a message could not be encoded into the buffer it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("buffer too small: need {need} bytes, have {have}")]
    BufferTooSmall { need: usize, have: usize },
}
