//! The typed frames and their body layout.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{EncodeError, Rejection};

/// Magic bytes opening a [`Frame::Hello`] body.
pub const MAGIC: [u8; 4] = *b"IRIS";

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u16 = 1;

/// Type bytes of every frame (see the README table).
pub mod frame_type {
    /// User message `[target u64][sender u64][data..]`.
    pub const USER: u8 = 0x00;
    /// Resolve request `[req u64][name utf8..]`.
    pub const RESOLVE_REQUEST: u8 = 0x01;
    /// Heartbeat ping `[nonce u64]`.
    pub const PING: u8 = 0x02;
    /// Heartbeat pong `[nonce u64]`.
    pub const PONG: u8 = 0x03;
    /// Resolve reply `[req u64][found u8][pid u64]`.
    pub const RESOLVE_REPLY: u8 = 0x04;
    /// Handshake hello `[magic "IRIS"][version u16][node id u64][challenge 32]`.
    pub const HELLO: u8 = 0x05;
    /// Handshake response `[mac 32]`: HMAC-SHA256(cookie, peer's challenge).
    pub const HANDSHAKE_RESPONSE: u8 = 0x06;
    /// Handshake accepted `[]`.
    pub const HANDSHAKE_OK: u8 = 0x07;
    /// Handshake refused `[reason utf8..]`.
    pub const HANDSHAKE_FAIL: u8 = 0x08;
    /// Exit notification `[from u64][target u64][reason][metadata utf8..]`.
    pub const EXIT: u8 = 0x09;
    /// Monitor down notification `[ref u64][pid u64][reason][metadata utf8..]`.
    pub const DOWN: u8 = 0x0A;
    /// Monitor request `[ref u64][watcher u64][target u64]`.
    pub const MONITOR: u8 = 0x0B;
    /// Demonitor request `[ref u64]`.
    pub const DEMONITOR: u8 = 0x0C;
    /// Link request `[from u64][target u64]`.
    pub const LINK: u8 = 0x0D;
    /// Unlink request `[from u64][target u64]`.
    pub const UNLINK: u8 = 0x0E;
    /// Error `[code u16][message utf8..]`.
    pub const ERROR: u8 = 0x0F;
}

/// Codes carried by [`Frame::Error`].
pub mod error_code {
    /// A frame exceeded the receiver's maximum frame length and was discarded.
    pub const OVERSIZED: u16 = 1;
    /// A frame of an unknown type was discarded.
    pub const UNKNOWN_TYPE: u16 = 2;
    /// A frame of a known type had a malformed body and was discarded.
    pub const MALFORMED: u16 = 3;
    /// The handshake failed.
    pub const HANDSHAKE: u16 = 4;
    /// A user message was addressed to a PID that does not exist here.
    pub const NO_PROC: u16 = 5;
}

/// Why an actor exited, as carried by [`Frame::Exit`] and [`Frame::Down`]: the runtime's own
/// type, shared with `iris-supervisor`.
///
/// On the wire: one code byte (see [`exit_reason_code`]), and for `Other` (code 7)
/// `[len u16][text utf8]`.
pub use iris_supervisor::ExitReason;

/// The wire code of an exit reason: `Normal` 0, `Killed` 1, `Panic` 2, `Crash` 3, `Timeout` 4,
/// `Disconnect` 5, `Shutdown` 6; any other reason is `Other` (7) and travels as its text.
pub fn exit_reason_code(reason: &ExitReason) -> u8 {
    match reason {
        ExitReason::Normal => 0,
        ExitReason::Killed => 1,
        ExitReason::Panic => 2,
        ExitReason::Crash => 3,
        ExitReason::Timeout => 4,
        ExitReason::Disconnect => 5,
        ExitReason::Shutdown => 6,
        _ => 7,
    }
}

/// The text that follows code 7, for reasons without a code of their own.
fn other_text(reason: &ExitReason) -> Option<&str> {
    (exit_reason_code(reason) == 7).then(|| reason.as_str())
}

/// One frame of the Iris mesh protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame {
    /// A user message for `target`, sent by `sender` (per-sender FIFO, replies).
    User {
        /// Receiving PID on the peer.
        target: u64,
        /// Sending PID on this node.
        sender: u64,
        /// The payload.
        data: Bytes,
    },
    /// Ask the peer for the PID registered under `name`.
    ResolveRequest {
        /// Request id echoed in the reply.
        req_id: u64,
        /// Registered name.
        name: String,
    },
    /// Answer to a [`Frame::ResolveRequest`].
    ResolveReply {
        /// The request's id.
        req_id: u64,
        /// The PID, or `None` if the name is not registered.
        pid: Option<u64>,
    },
    /// Heartbeat probe.
    Ping {
        /// Echoed in the pong.
        nonce: u64,
    },
    /// Heartbeat answer.
    Pong {
        /// The ping's nonce.
        nonce: u64,
    },
    /// First handshake frame, sent by both sides.
    Hello {
        /// Protocol version of the sender.
        version: u16,
        /// Node id of the sender.
        node_id: u64,
        /// Random challenge the peer must answer with [`crate::mac`].
        challenge: [u8; 32],
    },
    /// Answer to the peer's challenge: HMAC-SHA256(cookie, peer's challenge).
    HandshakeResponse {
        /// The MAC.
        mac: [u8; 32],
    },
    /// The peer's response verified; the connection is open.
    HandshakeOk,
    /// The handshake failed; the connection closes after this frame.
    HandshakeFail {
        /// Why.
        reason: String,
    },
    /// `from` exited (link propagation or exit signal) towards `target`.
    Exit {
        /// The exiting PID.
        from: u64,
        /// The linked PID receiving the signal.
        target: u64,
        /// Why it exited.
        reason: ExitReason,
        /// Panic message, exception and traceback, etc.
        metadata: String,
    },
    /// A monitored process went down.
    Down {
        /// The monitor reference.
        monitor_ref: u64,
        /// The PID that went down.
        pid: u64,
        /// Why it exited.
        reason: ExitReason,
        /// Panic message, exception and traceback, etc.
        metadata: String,
    },
    /// `watcher` asks to monitor `target`.
    Monitor {
        /// The monitor reference.
        monitor_ref: u64,
        /// The watching PID.
        watcher: u64,
        /// The watched PID.
        target: u64,
    },
    /// Remove a monitor.
    Demonitor {
        /// The monitor reference.
        monitor_ref: u64,
    },
    /// Link `from` and `target`.
    Link {
        /// Requesting PID.
        from: u64,
        /// Linked PID.
        target: u64,
    },
    /// Remove the link between `from` and `target`.
    Unlink {
        /// Requesting PID.
        from: u64,
        /// Unlinked PID.
        target: u64,
    },
    /// A per-frame error report; the connection stays up.
    Error {
        /// One of [`error_code`].
        code: u16,
        /// Human-readable detail.
        message: String,
    },
}

impl Frame {
    /// The type byte of this frame.
    pub fn frame_type(&self) -> u8 {
        use frame_type::*;
        match self {
            Frame::User { .. } => USER,
            Frame::ResolveRequest { .. } => RESOLVE_REQUEST,
            Frame::ResolveReply { .. } => RESOLVE_REPLY,
            Frame::Ping { .. } => PING,
            Frame::Pong { .. } => PONG,
            Frame::Hello { .. } => HELLO,
            Frame::HandshakeResponse { .. } => HANDSHAKE_RESPONSE,
            Frame::HandshakeOk => HANDSHAKE_OK,
            Frame::HandshakeFail { .. } => HANDSHAKE_FAIL,
            Frame::Exit { .. } => EXIT,
            Frame::Down { .. } => DOWN,
            Frame::Monitor { .. } => MONITOR,
            Frame::Demonitor { .. } => DEMONITOR,
            Frame::Link { .. } => LINK,
            Frame::Unlink { .. } => UNLINK,
            Frame::Error { .. } => ERROR,
        }
    }

    /// Length of the payload (without the type byte and the length prefix).
    pub(crate) fn payload_len(&self) -> usize {
        fn reason_len(r: &ExitReason) -> usize {
            other_text(r).map_or(1, |t| 3 + t.len())
        }
        match self {
            Frame::User { data, .. } => 16 + data.len(),
            Frame::ResolveRequest { name, .. } => 8 + name.len(),
            Frame::ResolveReply { .. } => 17,
            Frame::Ping { .. } | Frame::Pong { .. } | Frame::Demonitor { .. } => 8,
            Frame::Hello { .. } => 4 + 2 + 8 + 32,
            Frame::HandshakeResponse { .. } => 32,
            Frame::HandshakeOk => 0,
            Frame::HandshakeFail { reason } => reason.len(),
            Frame::Exit {
                reason, metadata, ..
            }
            | Frame::Down {
                reason, metadata, ..
            } => 16 + reason_len(reason) + metadata.len(),
            Frame::Monitor { .. } => 24,
            Frame::Link { .. } | Frame::Unlink { .. } => 16,
            Frame::Error { message, .. } => 2 + message.len(),
        }
    }

    /// Check the fields that have a bounded length.
    pub(crate) fn validate(&self) -> Result<(), EncodeError> {
        if let Frame::Exit { reason, .. } | Frame::Down { reason, .. } = self
            && let Some(t) = other_text(reason)
            && t.len() > usize::from(u16::MAX)
        {
            return Err(EncodeError::FieldTooLong { len: t.len() });
        }
        Ok(())
    }

    /// Write the payload (after the type byte). [`Frame::validate`] must have passed.
    pub(crate) fn put_payload(&self, dst: &mut BytesMut) {
        fn put_reason(dst: &mut BytesMut, r: &ExitReason) {
            dst.put_u8(exit_reason_code(r));
            if let Some(t) = other_text(r) {
                // validate() bounded the length.
                dst.put_u16(t.len() as u16);
                dst.put_slice(t.as_bytes());
            }
        }
        match self {
            Frame::User {
                target,
                sender,
                data,
            } => {
                dst.put_u64(*target);
                dst.put_u64(*sender);
                dst.put_slice(data);
            }
            Frame::ResolveRequest { req_id, name } => {
                dst.put_u64(*req_id);
                dst.put_slice(name.as_bytes());
            }
            Frame::ResolveReply { req_id, pid } => {
                dst.put_u64(*req_id);
                dst.put_u8(u8::from(pid.is_some()));
                dst.put_u64(pid.unwrap_or(0));
            }
            Frame::Ping { nonce } | Frame::Pong { nonce } => dst.put_u64(*nonce),
            Frame::Hello {
                version,
                node_id,
                challenge,
            } => {
                dst.put_slice(&MAGIC);
                dst.put_u16(*version);
                dst.put_u64(*node_id);
                dst.put_slice(challenge);
            }
            Frame::HandshakeResponse { mac } => dst.put_slice(mac),
            Frame::HandshakeOk => {}
            Frame::HandshakeFail { reason } => dst.put_slice(reason.as_bytes()),
            Frame::Exit {
                from: a,
                target: b,
                reason,
                metadata,
            }
            | Frame::Down {
                monitor_ref: a,
                pid: b,
                reason,
                metadata,
            } => {
                dst.put_u64(*a);
                dst.put_u64(*b);
                put_reason(dst, reason);
                dst.put_slice(metadata.as_bytes());
            }
            Frame::Monitor {
                monitor_ref,
                watcher,
                target,
            } => {
                dst.put_u64(*monitor_ref);
                dst.put_u64(*watcher);
                dst.put_u64(*target);
            }
            Frame::Demonitor { monitor_ref } => dst.put_u64(*monitor_ref),
            Frame::Link { from, target } | Frame::Unlink { from, target } => {
                dst.put_u64(*from);
                dst.put_u64(*target);
            }
            Frame::Error { code, message } => {
                dst.put_u16(*code);
                dst.put_slice(message.as_bytes());
            }
        }
    }

    /// Parse a frame from its type byte and its complete payload.
    pub(crate) fn parse(ty: u8, payload: Bytes) -> Result<Frame, Rejection> {
        let mut r = Reader {
            ty,
            buf: &payload[..],
        };
        let frame = match ty {
            frame_type::USER => {
                let target = r.u64()?;
                let sender = r.u64()?;
                let data = payload.slice(16..);
                return Ok(Frame::User {
                    target,
                    sender,
                    data,
                });
            }
            frame_type::RESOLVE_REQUEST => Frame::ResolveRequest {
                req_id: r.u64()?,
                name: r.rest_utf8()?,
            },
            frame_type::RESOLVE_REPLY => {
                let req_id = r.u64()?;
                let found = r.u8()?;
                let pid = r.u64()?;
                let pid = match found {
                    0 => None,
                    1 => Some(pid),
                    _ => return Err(r.malformed("found flag is neither 0 nor 1")),
                };
                Frame::ResolveReply { req_id, pid }
            }
            frame_type::PING => Frame::Ping { nonce: r.u64()? },
            frame_type::PONG => Frame::Pong { nonce: r.u64()? },
            frame_type::HELLO => {
                if r.array::<4>()? != MAGIC {
                    return Err(r.malformed("bad magic"));
                }
                Frame::Hello {
                    version: r.u16()?,
                    node_id: r.u64()?,
                    challenge: r.array()?,
                }
            }
            frame_type::HANDSHAKE_RESPONSE => Frame::HandshakeResponse { mac: r.array()? },
            frame_type::HANDSHAKE_OK => Frame::HandshakeOk,
            frame_type::HANDSHAKE_FAIL => Frame::HandshakeFail {
                reason: r.rest_utf8()?,
            },
            frame_type::EXIT => Frame::Exit {
                from: r.u64()?,
                target: r.u64()?,
                reason: r.reason()?,
                metadata: r.rest_utf8()?,
            },
            frame_type::DOWN => Frame::Down {
                monitor_ref: r.u64()?,
                pid: r.u64()?,
                reason: r.reason()?,
                metadata: r.rest_utf8()?,
            },
            frame_type::MONITOR => Frame::Monitor {
                monitor_ref: r.u64()?,
                watcher: r.u64()?,
                target: r.u64()?,
            },
            frame_type::DEMONITOR => Frame::Demonitor {
                monitor_ref: r.u64()?,
            },
            frame_type::LINK => Frame::Link {
                from: r.u64()?,
                target: r.u64()?,
            },
            frame_type::UNLINK => Frame::Unlink {
                from: r.u64()?,
                target: r.u64()?,
            },
            frame_type::ERROR => Frame::Error {
                code: r.u16()?,
                message: r.rest_utf8()?,
            },
            other => return Err(Rejection::UnknownType(other)),
        };
        if !r.buf.is_empty() {
            return Err(r.malformed("trailing bytes"));
        }
        Ok(frame)
    }
}

/// Bounds-checked big-endian reader over a payload; every shortfall is a [`Rejection`].
struct Reader<'a> {
    ty: u8,
    buf: &'a [u8],
}

impl Reader<'_> {
    fn malformed(&self, detail: &'static str) -> Rejection {
        Rejection::Malformed {
            frame_type: self.ty,
            detail,
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Rejection> {
        let Some((head, tail)) = self.buf.split_first_chunk::<N>() else {
            return Err(self.malformed("truncated field"));
        };
        self.buf = tail;
        Ok(*head)
    }

    fn u8(&mut self) -> Result<u8, Rejection> {
        self.array::<1>().map(|[b]| b)
    }

    fn u16(&mut self) -> Result<u16, Rejection> {
        self.array().map(u16::from_be_bytes)
    }

    fn u64(&mut self) -> Result<u64, Rejection> {
        self.array().map(u64::from_be_bytes)
    }

    fn utf8(&self, bytes: &[u8]) -> Result<String, Rejection> {
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| self.malformed("invalid utf-8"))
    }

    fn rest_utf8(&mut self) -> Result<String, Rejection> {
        let s = self.utf8(self.buf)?;
        self.buf = &[];
        Ok(s)
    }

    fn reason(&mut self) -> Result<ExitReason, Rejection> {
        Ok(match self.u8()? {
            0 => ExitReason::Normal,
            1 => ExitReason::Killed,
            2 => ExitReason::Panic,
            3 => ExitReason::Crash,
            4 => ExitReason::Timeout,
            5 => ExitReason::Disconnect,
            6 => ExitReason::Shutdown,
            7 => {
                let len = usize::from(self.u16()?);
                if self.buf.len() < len {
                    return Err(self.malformed("truncated field"));
                }
                let (text, tail) = self.buf.split_at(len);
                let text = self.utf8(text)?;
                self.buf = tail;
                ExitReason::Other(text)
            }
            _ => return Err(self.malformed("unknown exit reason code")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_reasons_have_distinct_codes_and_binding_names() {
        let all = [
            ExitReason::Normal,
            ExitReason::Killed,
            ExitReason::Panic,
            ExitReason::Crash,
            ExitReason::Timeout,
            ExitReason::Disconnect,
            ExitReason::Shutdown,
            ExitReason::Other("custom".into()),
        ];
        let codes: Vec<u8> = all.iter().map(exit_reason_code).collect();
        assert_eq!(codes, [0, 1, 2, 3, 4, 5, 6, 7]);
        let names: Vec<String> = all.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            [
                "Normal",
                "Killed",
                "Panic",
                "Crash",
                "Timeout",
                "Disconnect",
                "Shutdown",
                "custom"
            ]
        );
    }
}
