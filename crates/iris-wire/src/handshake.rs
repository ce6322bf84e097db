//! The mutual challenge-response handshake as a small state machine over [`Frame`]s.

use std::io;

use crate::cookie::{Cookie, mac, new_challenge, verify};
use crate::error::HandshakeError;
use crate::frame::{Frame, PROTOCOL_VERSION};

/// One side of the handshake. Transport-agnostic: send [`Handshake::hello`] first, then feed
/// every received frame to [`Handshake::on_frame`] and send what it returns, until it reports
/// the peer's node id. On an error, send [`HandshakeError::to_fail_frame`] and close.
#[derive(Debug)]
pub struct Handshake {
    cookie: Cookie,
    node_id: u64,
    challenge: [u8; 32],
    peer_node_id: Option<u64>,
    peer_verified: bool,
    peer_accepted: bool,
}

/// What to do after a handshake frame.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HandshakeStep {
    /// A frame to send to the peer, if any.
    pub reply: Option<Frame>,
    /// `Some(peer node id)` once both sides have verified each other: the connection is open.
    pub established: Option<u64>,
}

impl Handshake {
    /// A handshake for this node, with a fresh random challenge.
    pub fn new(cookie: Cookie, node_id: u64) -> io::Result<Handshake> {
        Ok(Handshake {
            cookie,
            node_id,
            challenge: new_challenge()?,
            peer_node_id: None,
            peer_verified: false,
            peer_accepted: false,
        })
    }

    /// The `Hello` frame this side sends first.
    pub fn hello(&self) -> Frame {
        Frame::Hello {
            version: PROTOCOL_VERSION,
            node_id: self.node_id,
            challenge: self.challenge,
        }
    }

    /// Advance with a frame received from the peer.
    pub fn on_frame(&mut self, frame: Frame) -> Result<HandshakeStep, HandshakeError> {
        let reply = match frame {
            Frame::Hello {
                version,
                node_id,
                challenge,
            } if self.peer_node_id.is_none() => {
                if version != PROTOCOL_VERSION {
                    return Err(HandshakeError::VersionMismatch {
                        ours: PROTOCOL_VERSION,
                        theirs: version,
                    });
                }
                // A peer echoing our own challenge wants our answer to replay it back to us.
                if challenge == self.challenge {
                    return Err(HandshakeError::ReflectedChallenge);
                }
                self.peer_node_id = Some(node_id);
                Some(Frame::HandshakeResponse {
                    mac: mac(&self.cookie, &challenge),
                })
            }
            Frame::HandshakeResponse { mac: tag }
                if self.peer_node_id.is_some() && !self.peer_verified =>
            {
                if !verify(&self.cookie, &self.challenge, &tag) {
                    return Err(HandshakeError::BadMac);
                }
                self.peer_verified = true;
                Some(Frame::HandshakeOk)
            }
            Frame::HandshakeOk if self.peer_node_id.is_some() && !self.peer_accepted => {
                self.peer_accepted = true;
                None
            }
            Frame::HandshakeFail { reason } => return Err(HandshakeError::Refused(reason)),
            other => return Err(HandshakeError::Unexpected(other.frame_type())),
        };
        let established = (self.peer_verified && self.peer_accepted)
            .then_some(self.peer_node_id)
            .flatten();
        Ok(HandshakeStep { reply, established })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookie(s: &str) -> Cookie {
        Cookie::new(s.as_bytes()).unwrap()
    }

    /// Runs two handshakes against each other; returns what each side concluded.
    fn run(
        a: &mut Handshake,
        b: &mut Handshake,
    ) -> (
        Result<Option<u64>, HandshakeError>,
        Result<Option<u64>, HandshakeError>,
    ) {
        let mut to_b = vec![a.hello()];
        let mut to_a = vec![b.hello()];
        let (mut done_a, mut done_b) = (Ok(None), Ok(None));
        while !(to_a.is_empty() && to_b.is_empty()) {
            for f in std::mem::take(&mut to_b) {
                if done_b.is_err() {
                    break;
                }
                match b.on_frame(f) {
                    Ok(step) => {
                        to_a.extend(step.reply);
                        if step.established.is_some() {
                            done_b = Ok(step.established);
                        }
                    }
                    Err(e) => {
                        to_a.push(e.to_fail_frame());
                        done_b = Err(e);
                    }
                }
            }
            for f in std::mem::take(&mut to_a) {
                if done_a.is_err() {
                    break;
                }
                match a.on_frame(f) {
                    Ok(step) => {
                        to_b.extend(step.reply);
                        if step.established.is_some() {
                            done_a = Ok(step.established);
                        }
                    }
                    Err(e) => {
                        to_b.push(e.to_fail_frame());
                        done_a = Err(e);
                    }
                }
            }
        }
        (done_a, done_b)
    }

    #[test]
    fn same_cookie_establishes_both_ways() {
        let mut a = Handshake::new(cookie("s3cret"), 1).unwrap();
        let mut b = Handshake::new(cookie("s3cret"), 2).unwrap();
        let (ra, rb) = run(&mut a, &mut b);
        assert_eq!(ra.unwrap(), Some(2));
        assert_eq!(rb.unwrap(), Some(1));
    }

    #[test]
    fn different_cookies_fail_on_both_sides() {
        let mut a = Handshake::new(cookie("one"), 1).unwrap();
        let mut b = Handshake::new(cookie("two"), 2).unwrap();
        let (ra, rb) = run(&mut a, &mut b);
        assert_eq!(rb, Err(HandshakeError::BadMac));
        assert_eq!(ra, Err(HandshakeError::BadMac));
    }

    #[test]
    fn reflected_challenge_wrong_version_and_early_frames_are_refused() {
        let mut a = Handshake::new(cookie("c"), 1).unwrap();
        let Frame::Hello { challenge, .. } = a.hello() else {
            unreachable!()
        };
        let echo = Frame::Hello {
            version: PROTOCOL_VERSION,
            node_id: 9,
            challenge,
        };
        assert_eq!(a.on_frame(echo), Err(HandshakeError::ReflectedChallenge));

        let mut a = Handshake::new(cookie("c"), 1).unwrap();
        let old = Frame::Hello {
            version: PROTOCOL_VERSION + 1,
            node_id: 9,
            challenge: [0; 32],
        };
        assert!(matches!(
            a.on_frame(old),
            Err(HandshakeError::VersionMismatch { .. })
        ));

        let mut a = Handshake::new(cookie("c"), 1).unwrap();
        assert_eq!(
            a.on_frame(Frame::HandshakeOk),
            Err(HandshakeError::Unexpected(0x07))
        );
        let mut a = Handshake::new(cookie("c"), 1).unwrap();
        assert_eq!(
            a.on_frame(Frame::Ping { nonce: 1 }),
            Err(HandshakeError::Unexpected(0x02))
        );
    }
}
