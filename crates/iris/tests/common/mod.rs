//! Helpers shared by the runtime's integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::time::{Duration, Instant};

use iris::prelude::*;

/// Polls `cond` until it holds, failing the test after 20 seconds.
pub(crate) fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A user message with static text.
pub(crate) fn user(s: &'static str) -> Message {
    Message::User(Bytes::from_static(s.as_bytes()))
}
