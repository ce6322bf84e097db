//! Messages: user bytes or system signals.

use bytes::Bytes;
use iris_supervisor::ExitInfo;

use crate::Pid;

/// A message in an actor's mailbox.
///
/// Four words (32 bytes): a system signal is boxed, so the user messages every send moves
/// (into mailboxes, batches and handlers) are no bigger than their [`Bytes`]. Signals are
/// rare; build one with [`Message::system`] (or `From<SystemMessage>`) and read it with
/// [`Message::as_system`] or by matching `Message::System(sys)` and then `&*sys`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Application data.
    User(Bytes),
    /// A runtime signal; system messages overtake user messages in a mailbox.
    System(Box<SystemMessage>),
}

// The size the hot paths were measured with: a user message moves as its `Bytes` alone.
const _: () = assert!(std::mem::size_of::<Message>() == std::mem::size_of::<Bytes>());

impl Message {
    /// The payload of a user message.
    pub fn as_user(&self) -> Option<&Bytes> {
        match self {
            Message::User(b) => Some(b),
            Message::System(_) => None,
        }
    }

    /// `true` for a system message.
    pub fn is_system(&self) -> bool {
        matches!(self, Message::System(_))
    }

    /// A system message carrying `sys`.
    pub fn system(sys: SystemMessage) -> Message {
        Message::System(Box::new(sys))
    }

    /// The signal of a system message.
    pub fn as_system(&self) -> Option<&SystemMessage> {
        match self {
            Message::System(sys) => Some(sys),
            Message::User(_) => None,
        }
    }
}

impl From<SystemMessage> for Message {
    fn from(sys: SystemMessage) -> Message {
        Message::system(sys)
    }
}

impl From<Bytes> for Message {
    fn from(b: Bytes) -> Message {
        Message::User(b)
    }
}

impl From<&'static str> for Message {
    fn from(s: &'static str) -> Message {
        Message::User(Bytes::from_static(s.as_bytes()))
    }
}

impl From<Vec<u8>> for Message {
    fn from(v: Vec<u8>) -> Message {
        Message::User(Bytes::from(v))
    }
}

/// A runtime signal delivered on the system lane.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SystemMessage {
    /// A linked actor (or a child, for a supervisor) exited and this actor traps exits.
    Exit {
        /// The actor that exited.
        from: Pid,
        /// The actor receiving the signal.
        target: Pid,
        /// Why it exited.
        info: ExitInfo,
    },
    /// A monitored actor exited (type `"DOWN"` in Python and Node).
    Down {
        /// The monitor reference returned by `monitor`.
        monitor: u64,
        /// The actor that exited.
        from: Pid,
        /// The watcher receiving the signal.
        target: Pid,
        /// Why it exited (`Other("noproc")` when it was already dead).
        info: ExitInfo,
    },
}

impl SystemMessage {
    /// The type name the bindings show: `"EXIT"`, `"DOWN"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            SystemMessage::Exit { .. } => "EXIT",
            SystemMessage::Down { .. } => "DOWN",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iris_supervisor::ExitReason;

    fn exit() -> SystemMessage {
        SystemMessage::Exit {
            from: 1,
            target: 2,
            info: ExitInfo::with_metadata(ExitReason::Crash, "boom"),
        }
    }

    #[test]
    fn system_messages_are_built_and_read_through_the_box() {
        let m = Message::system(exit());
        assert!(m.is_system());
        assert_eq!(m.as_user(), None);
        assert_eq!(m.as_system(), Some(&exit()));
        assert_eq!(Message::from(exit()), m);
        match &m {
            Message::System(sys) => assert_eq!(sys.type_name(), "EXIT"),
            Message::User(_) => panic!("a system message"),
        }
    }

    #[test]
    fn user_messages_have_no_signal() {
        let m = Message::from("data");
        assert!(!m.is_system());
        assert_eq!(m.as_system(), None);
        assert_eq!(m.as_user().map(|b| &b[..]), Some(&b"data"[..]));
    }
}
