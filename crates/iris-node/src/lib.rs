#![doc = include_str!("../README.md")]
#![deny(unsafe_op_in_unsafe_fn)]

mod args;
mod dispatch;
mod fast;
// Argument and result types of the `#[napi]` methods, hence `pub`.
#[allow(unreachable_pub)]
mod js;
// `#[napi]` wants `pub` items; JavaScript is their only user.
#[allow(unreachable_pub)]
mod runtime;

/// Locks a mutex, ignoring poison (a panicking handler must not wedge the binding).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
