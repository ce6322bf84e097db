#![doc = include_str!("../README.md")]
#![warn(missing_docs, unreachable_pub)]
#![deny(unsafe_op_in_unsafe_fn)]

mod codec;
mod cookie;
mod error;
mod frame;
mod handshake;

pub use codec::{Builder, DEFAULT_MAX_FRAME_LENGTH, DecodedFrame, FrameCodec, HEADER_LEN};
pub use cookie::{COOKIE_ENV, COOKIE_FILE_NAME, COOKIE_LEN, Cookie, mac, new_challenge, verify};
pub use error::{CookieError, DecodeError, EncodeError, HandshakeError, Rejection};
pub use frame::{
    ExitReason, Frame, MAGIC, PROTOCOL_VERSION, error_code, exit_reason_code, frame_type,
};
pub use handshake::{Handshake, HandshakeStep};
