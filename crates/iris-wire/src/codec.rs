//! `FrameCodec`: the length-prefixed framing over `tokio_util::codec`.

use bytes::{Buf, BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::error::{DecodeError, EncodeError, Rejection};
use crate::frame::Frame;

/// Default maximum frame length (type byte + payload): 1 MiB.
pub const DEFAULT_MAX_FRAME_LENGTH: usize = 1024 * 1024;

/// Length of the length prefix in bytes.
pub const HEADER_LEN: usize = 4;

/// One item produced by the decoder.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodedFrame {
    /// A well-formed frame.
    Frame(Frame),
    /// A frame was discarded; the stream stays in sync. Reply with
    /// [`Rejection::to_error_frame`] and keep reading.
    Rejected(Rejection),
}

impl DecodedFrame {
    /// The frame, or the rejection as a non-fatal [`DecodeError::Rejected`].
    pub fn into_result(self) -> Result<Frame, DecodeError> {
        match self {
            DecodedFrame::Frame(f) => Ok(f),
            DecodedFrame::Rejected(r) => Err(DecodeError::Rejected(r)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for a length prefix.
    Head,
    /// Waiting for `len` bytes (type byte + payload) of an accepted frame.
    Body { len: usize },
    /// Discarding `remaining` bytes of a rejected oversized frame as they arrive.
    Skip { remaining: u64 },
}

/// Encoder and decoder of [`Frame`]s: `[len u32 BE][type u8][payload]`, `len` counting the type
/// byte and the payload.
///
/// Decoding never panics. An oversized frame, an unknown type or a malformed body yields
/// [`DecodedFrame::Rejected`] and only that frame is lost; the oversized frame's bytes are
/// discarded as they arrive, never buffered. A zero length prefix, an i/o error, or the stream
/// ending inside a frame is a fatal [`DecodeError`].
#[derive(Debug, Clone)]
pub struct FrameCodec {
    max_frame_length: usize,
    state: State,
}

impl FrameCodec {
    /// A codec with the default settings.
    pub fn new() -> Self {
        Builder::new().build()
    }

    /// Start configuring a codec.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// The maximum frame length (type byte + payload) accepted and produced.
    pub fn max_frame_length(&self) -> usize {
        self.max_frame_length
    }
}

impl Default for FrameCodec {
    fn default() -> Self {
        Self::new()
    }
}

/// Configures a [`FrameCodec`].
#[derive(Debug, Clone)]
pub struct Builder {
    max_frame_length: usize,
}

impl Builder {
    /// Defaults: max frame length [`DEFAULT_MAX_FRAME_LENGTH`].
    pub fn new() -> Self {
        Builder {
            max_frame_length: DEFAULT_MAX_FRAME_LENGTH,
        }
    }

    /// Maximum frame length (type byte + payload). Clamped to `1..=u32::MAX`.
    pub fn max_frame_length(&mut self, max: usize) -> &mut Self {
        self.max_frame_length = max.clamp(1, u32::MAX as usize);
        self
    }

    /// Build the codec.
    pub fn build(&self) -> FrameCodec {
        FrameCodec {
            max_frame_length: self.max_frame_length,
            state: State::Head,
        }
    }
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder for FrameCodec {
    type Item = DecodedFrame;
    type Error = DecodeError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<DecodedFrame>, DecodeError> {
        loop {
            match self.state {
                State::Skip { remaining } => {
                    let n = usize::try_from(remaining).map_or(src.len(), |r| r.min(src.len()));
                    src.advance(n);
                    let remaining = remaining - n as u64;
                    if remaining > 0 {
                        self.state = State::Skip { remaining };
                        return Ok(None);
                    }
                    self.state = State::Head;
                }
                State::Head => {
                    let Some(prefix) = src.first_chunk::<HEADER_LEN>() else {
                        return Ok(None);
                    };
                    let len = u32::from_be_bytes(*prefix);
                    src.advance(HEADER_LEN);
                    if len == 0 {
                        return Err(DecodeError::ZeroLength);
                    }
                    // Checked before any reserve: an oversized frame is never buffered.
                    match usize::try_from(len) {
                        Ok(len) if len <= self.max_frame_length => {
                            src.reserve(len.saturating_sub(src.len()));
                            self.state = State::Body { len };
                        }
                        _ => {
                            self.state = State::Skip {
                                remaining: u64::from(len),
                            };
                            return Ok(Some(DecodedFrame::Rejected(Rejection::Oversized {
                                len: u64::from(len),
                                max: self.max_frame_length,
                            })));
                        }
                    }
                }
                State::Body { len } => {
                    if src.len() < len {
                        return Ok(None);
                    }
                    let mut body = src.split_to(len).freeze();
                    self.state = State::Head;
                    let ty = body.get_u8();
                    return Ok(Some(match Frame::parse(ty, body) {
                        Ok(frame) => DecodedFrame::Frame(frame),
                        Err(r) => DecodedFrame::Rejected(r),
                    }));
                }
            }
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<DecodedFrame>, DecodeError> {
        if let Some(item) = self.decode(src)? {
            return Ok(Some(item));
        }
        let missing = match self.state {
            State::Head if src.is_empty() => return Ok(None),
            State::Head => HEADER_LEN - src.len(),
            State::Body { len } => len - src.len(),
            State::Skip { remaining } => usize::try_from(remaining).unwrap_or(usize::MAX),
        };
        Err(DecodeError::Truncated { missing })
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = EncodeError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), EncodeError> {
        self.encode(&frame, dst)
    }
}

impl Encoder<&Frame> for FrameCodec {
    type Error = EncodeError;

    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), EncodeError> {
        frame.validate()?;
        let len = 1 + frame.payload_len();
        if len > self.max_frame_length {
            return Err(EncodeError::TooLarge {
                len,
                max: self.max_frame_length,
            });
        }
        dst.reserve(HEADER_LEN + len);
        // max_frame_length <= u32::MAX, so the cast is lossless.
        dst.put_u32(len as u32);
        dst.put_u8(frame.frame_type());
        frame.put_payload(dst);
        Ok(())
    }
}
