//! The logging hook: `IRIS_JIT_LOG=1` in the environment, or [`set_jit_logging`].

use std::sync::atomic::{AtomicU8, Ordering};

/// 0: follow the environment; 1: on; 2: off.
static MODE: AtomicU8 = AtomicU8::new(0);

/// Turns JIT logging on (`Some(true)`), off (`Some(false)`), or back to following the
/// `IRIS_JIT_LOG` environment variable (`None`).
pub fn set_jit_logging(on: Option<bool>) {
    MODE.store(
        match on {
            None => 0,
            Some(true) => 1,
            Some(false) => 2,
        },
        Ordering::Relaxed,
    );
}

/// Whether JIT logging is currently on.
pub fn jit_logging() -> bool {
    match MODE.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            std::env::var("IRIS_JIT_LOG").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
        }
    }
}

macro_rules! jit_log {
    ($($arg:tt)*) => {
        if $crate::log::jit_logging() {
            eprintln!("[iris-jit] {}", format_args!($($arg)*));
        }
    };
}
pub(crate) use jit_log;
