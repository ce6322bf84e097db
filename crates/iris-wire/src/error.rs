//! Error types, one per failure domain.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::frame::{Frame, error_code};

/// Why one frame was discarded by the decoder.
///
/// A rejection concerns exactly one frame: the decoder has already skipped (or is skipping) that
/// frame's bytes, so the connection can answer with [`Rejection::to_error_frame`] and keep reading.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// The length prefix announced more than the configured maximum frame length.
    Oversized {
        /// Announced length (type byte + payload).
        len: u64,
        /// Configured maximum.
        max: usize,
    },
    /// The type byte is not one this protocol version knows.
    UnknownType(u8),
    /// A frame of a known type whose body does not parse (truncated field, bad UTF-8, bad code,
    /// trailing bytes, wrong magic).
    Malformed {
        /// The frame's type byte.
        frame_type: u8,
        /// What is wrong with it.
        detail: &'static str,
    },
}

impl Rejection {
    /// The error code sent back to the peer for this rejection (see [`error_code`]).
    pub fn code(&self) -> u16 {
        match self {
            Rejection::Oversized { .. } => error_code::OVERSIZED,
            Rejection::UnknownType(_) => error_code::UNKNOWN_TYPE,
            Rejection::Malformed { .. } => error_code::MALFORMED,
        }
    }

    /// The [`Frame::Error`] a connection loop sends back to the peer.
    pub fn to_error_frame(&self) -> Frame {
        Frame::Error {
            code: self.code(),
            message: self.to_string(),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Oversized { len, max } => {
                write!(f, "frame of {len} bytes exceeds the maximum of {max} bytes")
            }
            Rejection::UnknownType(t) => write!(f, "unknown frame type 0x{t:02x}"),
            Rejection::Malformed { frame_type, detail } => {
                write!(f, "malformed frame of type 0x{frame_type:02x}: {detail}")
            }
        }
    }
}

impl std::error::Error for Rejection {}

/// A failure while decoding the byte stream.
///
/// Use [`DecodeError::is_fatal`] to decide whether the connection must be closed.
#[derive(Debug)]
#[non_exhaustive]
pub enum DecodeError {
    /// The underlying transport failed. Fatal.
    Io(io::Error),
    /// A length prefix of 0 (a frame needs at least its type byte): the stream cannot be trusted
    /// to be in sync any more. Fatal.
    ZeroLength,
    /// The stream ended in the middle of a frame. Fatal.
    Truncated {
        /// Bytes of the current frame still missing.
        missing: usize,
    },
    /// One frame was rejected and skipped; the connection may continue. Not fatal.
    Rejected(Rejection),
}

impl DecodeError {
    /// Whether the connection must be closed (`true`), or only the one frame was lost (`false`).
    pub fn is_fatal(&self) -> bool {
        !matches!(self, DecodeError::Rejected(_))
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Io(_) => f.write_str("i/o error while reading frames"),
            DecodeError::ZeroLength => f.write_str("frame length prefix of 0"),
            DecodeError::Truncated { missing } => {
                write!(f, "stream ended {missing} bytes before the end of a frame")
            }
            DecodeError::Rejected(_) => f.write_str("frame rejected"),
        }
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DecodeError::Io(e) => Some(e),
            DecodeError::Rejected(r) => Some(r),
            _ => None,
        }
    }
}

impl From<io::Error> for DecodeError {
    fn from(e: io::Error) -> Self {
        DecodeError::Io(e)
    }
}

impl From<Rejection> for DecodeError {
    fn from(r: Rejection) -> Self {
        DecodeError::Rejected(r)
    }
}

/// A failure while encoding a frame.
#[derive(Debug)]
#[non_exhaustive]
pub enum EncodeError {
    /// The underlying transport failed.
    Io(io::Error),
    /// The encoded frame would exceed the codec's maximum frame length (the peer would reject it).
    TooLarge {
        /// Length of the frame (type byte + payload).
        len: usize,
        /// Configured maximum.
        max: usize,
    },
    /// A length-prefixed text field (the text of [`crate::ExitReason::Other`]) is longer than
    /// `u16::MAX` bytes.
    FieldTooLong {
        /// Length of the field in bytes.
        len: usize,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::Io(_) => f.write_str("i/o error while writing frames"),
            EncodeError::TooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the maximum of {max} bytes")
            }
            EncodeError::FieldTooLong { len } => {
                write!(f, "text field of {len} bytes exceeds {} bytes", u16::MAX)
            }
        }
    }
}

impl std::error::Error for EncodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EncodeError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for EncodeError {
    fn from(e: io::Error) -> Self {
        EncodeError::Io(e)
    }
}

/// A failure while loading or creating the shared cookie.
#[derive(Debug)]
#[non_exhaustive]
pub enum CookieError {
    /// Reading or creating the cookie file failed.
    Io {
        /// The cookie file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The cookie (from the environment or the file) is empty.
    Empty,
    /// Neither `IRIS_COOKIE` nor a home directory is available.
    NoHome,
    /// The operating system's random source failed.
    Random(io::Error),
}

impl fmt::Display for CookieError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CookieError::Io { path, .. } => write!(f, "cookie file {}", path.display()),
            CookieError::Empty => f.write_str("the cookie is empty"),
            CookieError::NoHome => {
                f.write_str("IRIS_COOKIE is not set and no home directory is known")
            }
            CookieError::Random(_) => f.write_str("the random source failed"),
        }
    }
}

impl std::error::Error for CookieError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CookieError::Io { source, .. } => Some(source),
            CookieError::Random(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a handshake failed. The connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The peer speaks another protocol version.
    VersionMismatch {
        /// Our version.
        ours: u16,
        /// The peer's version.
        theirs: u16,
    },
    /// The peer's answer to our challenge is wrong: it does not hold the cookie.
    BadMac,
    /// The peer sent back our own challenge (a reflection attempt).
    ReflectedChallenge,
    /// The peer refused us with `HandshakeFail`.
    Refused(String),
    /// A frame of this type arrived out of order during the handshake.
    Unexpected(u8),
}

impl HandshakeError {
    /// The `HandshakeFail` frame to send before closing.
    pub fn to_fail_frame(&self) -> Frame {
        Frame::HandshakeFail {
            reason: self.to_string(),
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::VersionMismatch { ours, theirs } => {
                write!(f, "protocol version {theirs} is not ours ({ours})")
            }
            HandshakeError::BadMac => f.write_str("challenge answer does not match the cookie"),
            HandshakeError::ReflectedChallenge => f.write_str("peer reflected our challenge"),
            HandshakeError::Refused(reason) => write!(f, "peer refused the handshake: {reason}"),
            HandshakeError::Unexpected(t) => {
                write!(f, "unexpected frame type 0x{t:02x} during the handshake")
            }
        }
    }
}

impl std::error::Error for HandshakeError {}
