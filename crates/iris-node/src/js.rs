//! Raw JavaScript values: errors with a `code`, argument checks that throw `TypeError`,
//! messages as Buffers or `{ system }` objects. Everything here runs on the JS thread.

use std::cell::RefCell;
use std::ptr;

use iris::{ExitInfo, Message, SystemMessage};
use napi::bindgen_prelude::{FromNapiValue, ToNapiValue, TypeName, ValidateNapiValue};
use napi::{Error, Result, Status, Unknown, ValueType, sys};

use crate::runtime::ExitInfoJs;

use crate::args;

/// Turns a raw status into a `Result`.
pub(crate) fn check(status: sys::napi_status, what: &str) -> Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(Error::new(Status::from(status), what.to_owned()))
    }
}

pub(crate) fn js_string(env: sys::napi_env, s: &str) -> Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    // SAFETY: `env` is the live env of this callback; the pointer/length pair is a valid str.
    check(
        unsafe { sys::napi_create_string_utf8(env, s.as_ptr().cast(), s.len() as isize, &mut out) },
        "create string",
    )?;
    Ok(out)
}

fn js_number(env: sys::napi_env, n: f64) -> Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    // SAFETY: `env` is the live env of this callback.
    check(
        unsafe { sys::napi_create_double(env, n, &mut out) },
        "create number",
    )?;
    Ok(out)
}

fn js_null(env: sys::napi_env) -> Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    // SAFETY: `env` is the live env of this callback.
    check(unsafe { sys::napi_get_null(env, &mut out) }, "get null")?;
    Ok(out)
}

/// `undefined`.
pub(crate) fn undefined(env: sys::napi_env) -> Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    // SAFETY: `env` is the live env of this callback.
    check(
        unsafe { sys::napi_get_undefined(env, &mut out) },
        "get undefined",
    )?;
    Ok(out)
}

fn js_object(env: sys::napi_env) -> Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    // SAFETY: `env` is the live env of this callback.
    check(
        unsafe { sys::napi_create_object(env, &mut out) },
        "create object",
    )?;
    Ok(out)
}

fn set(
    env: sys::napi_env,
    obj: sys::napi_value,
    key: &std::ffi::CStr,
    v: sys::napi_value,
) -> Result<()> {
    // SAFETY: `obj` and `v` are values of this env; `key` is NUL-terminated.
    check(
        unsafe { sys::napi_set_named_property(env, obj, key.as_ptr(), v) },
        "set property",
    )
}

/// The kinds of error the binding throws; `code` is the JS `error.code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `Error`.
    Error,
    /// `TypeError`.
    Type,
    /// `RangeError`.
    Range,
}

/// An error whose JS form is a real `Error`/`TypeError` with a `code` property. The JS
/// object is made now, so `napi` throws (or rejects with) exactly this object.
pub(crate) fn coded(env: sys::napi_env, kind: Kind, code: &str, msg: &str) -> Error {
    let make = || -> Result<sys::napi_value> {
        let c = js_string(env, code)?;
        let m = js_string(env, msg)?;
        let mut out = ptr::null_mut();
        // SAFETY: `c` and `m` are strings of this env.
        let status = unsafe {
            match kind {
                Kind::Error => sys::napi_create_error(env, c, m, &mut out),
                Kind::Type => sys::napi_create_type_error(env, c, m, &mut out),
                Kind::Range => sys::napi_create_range_error(env, c, m, &mut out),
            }
        };
        check(status, "create error")?;
        Ok(out)
    };
    match make() {
        // SAFETY: `v` was just created in this env.
        Ok(v) => Error::from(unsafe { Unknown::from_raw_unchecked(env, v) }),
        Err(e) => e,
    }
}

/// A `TypeError` with code `ERR_INVALID_ARG_TYPE` (Node's own code for bad argument types).
pub(crate) fn type_error(env: sys::napi_env, msg: &str) -> Error {
    coded(env, Kind::Type, "ERR_INVALID_ARG_TYPE", msg)
}

fn type_of(env: sys::napi_env, v: sys::napi_value) -> Result<ValueType> {
    let mut t = 0;
    // SAFETY: `v` is a value of this env.
    check(unsafe { sys::napi_typeof(env, v, &mut t) }, "typeof")?;
    Ok(ValueType::from(t))
}

fn number(env: sys::napi_env, v: sys::napi_value, what: &str) -> Result<f64> {
    if type_of(env, v)? != ValueType::Number {
        return Err(type_error(env, &format!("{what} must be a number")));
    }
    let mut n = 0.0;
    // SAFETY: `v` is a number of this env.
    check(
        unsafe { sys::napi_get_value_double(env, v, &mut n) },
        "read number",
    )?;
    Ok(n)
}

macro_rules! js_arg {
    ($ty:ident, $ts:literal) => {
        impl TypeName for $ty {
            fn type_name() -> &'static str {
                $ts
            }
            fn value_type() -> ValueType {
                ValueType::Unknown
            }
        }
        impl ValidateNapiValue for $ty {}
    };
}

/// A PID argument: a positive integer below 2^53.
#[derive(Debug, Clone, Copy)]
pub struct Pid(pub u64);
js_arg!(Pid, "number");

impl FromNapiValue for Pid {
    unsafe fn from_napi_value(env: sys::napi_env, v: sys::napi_value) -> Result<Self> {
        let n = number(env, v, "pid")?;
        args::pid(n)
            .map(Pid)
            .map_err(|m| coded(env, Kind::Range, "ERR_OUT_OF_RANGE", &m))
    }
}

/// A count argument (budget, capacity, milliseconds): a non-negative integer.
#[derive(Debug, Clone, Copy)]
pub struct Count(pub u64);
js_arg!(Count, "number");

impl FromNapiValue for Count {
    unsafe fn from_napi_value(env: sys::napi_env, v: sys::napi_value) -> Result<Self> {
        let n = number(env, v, "argument")?;
        args::count(n)
            .map(Count)
            .map_err(|m| coded(env, Kind::Range, "ERR_OUT_OF_RANGE", &m))
    }
}

/// A duration in seconds (a non-negative number, fractions allowed).
#[derive(Debug, Clone, Copy)]
pub struct Seconds(pub(crate) std::time::Duration);
js_arg!(Seconds, "number");

impl FromNapiValue for Seconds {
    unsafe fn from_napi_value(env: sys::napi_env, v: sys::napi_value) -> Result<Self> {
        let n = number(env, v, "timeout")?;
        args::seconds(n)
            .map(Seconds)
            .map_err(|m| coded(env, Kind::Range, "ERR_OUT_OF_RANGE", &m))
    }
}

/// A message payload: a `Buffer` or `Uint8Array`, copied.
#[derive(Debug, Clone)]
pub struct Payload(pub(crate) bytes::Bytes);
js_arg!(Payload, "Buffer | Uint8Array");

impl FromNapiValue for Payload {
    unsafe fn from_napi_value(env: sys::napi_env, v: sys::napi_value) -> Result<Self> {
        let mut is_ta = false;
        // SAFETY: `v` is a value of this env.
        check(
            unsafe { sys::napi_is_typedarray(env, v, &mut is_ta) },
            "is typedarray",
        )?;
        if !is_ta {
            return Err(type_error(env, "data must be a Buffer or a Uint8Array"));
        }
        let mut kind = 0;
        let mut len = 0usize;
        let mut data = ptr::null_mut();
        let mut ab = ptr::null_mut();
        let mut off = 0usize;
        // SAFETY: `v` is a typed array of this env; the out-pointers are valid.
        check(
            unsafe {
                sys::napi_get_typedarray_info(
                    env, v, &mut kind, &mut len, &mut data, &mut ab, &mut off,
                )
            },
            "typedarray info",
        )?;
        if kind != sys::TypedarrayType::uint8_array
            && kind != sys::TypedarrayType::uint8_clamped_array
        {
            return Err(type_error(env, "data must be a Buffer or a Uint8Array"));
        }
        let bytes = if len == 0 || data.is_null() {
            bytes::Bytes::new()
        } else {
            // SAFETY: napi reports `len` readable bytes at `data`, alive during this call; they
            // are copied before returning to JS.
            bytes::Bytes::copy_from_slice(unsafe {
                std::slice::from_raw_parts(data.cast::<u8>(), len)
            })
        };
        Ok(Payload(bytes))
    }
}

/// A JS function argument, kept alive by a reference.
pub struct Handler(
    pub(crate) napi::bindgen_prelude::FunctionRef<Unknown<'static>, Unknown<'static>>,
);
js_arg!(Handler, "Function");

impl FromNapiValue for Handler {
    unsafe fn from_napi_value(env: sys::napi_env, v: sys::napi_value) -> Result<Self> {
        if type_of(env, v)? != ValueType::Function {
            return Err(type_error(env, "handler must be a function"));
        }
        // SAFETY: `v` is a function of this env.
        Ok(Handler(unsafe { FromNapiValue::from_napi_value(env, v) }?))
    }
}

thread_local! {
    /// `NodeRuntime.STOP` of the env on this thread.
    static STOP: RefCell<Option<sys::napi_ref>> = const { RefCell::new(None) };
}

/// Creates the STOP symbol and hangs it on the `NodeRuntime` class.
// Called from the module's init, which test builds do not register.
#[cfg_attr(test, allow(dead_code))]
pub(crate) fn install_stop(env: sys::napi_env, class: sys::napi_value) -> Result<()> {
    let desc = js_string(env, "iris.STOP")?;
    let mut sym = ptr::null_mut();
    // SAFETY: `desc` is a string of this env.
    check(
        unsafe { sys::napi_create_symbol(env, desc, &mut sym) },
        "create symbol",
    )?;
    let mut r = ptr::null_mut();
    // SAFETY: `sym` is a value of this env; the reference lives as long as the env.
    check(
        unsafe { sys::napi_create_reference(env, sym, 1, &mut r) },
        "reference",
    )?;
    STOP.with(|s| *s.borrow_mut() = Some(r));
    set(env, class, c"STOP", sym)
}

/// `NodeRuntime.STOP`, once the module is initialized.
pub(crate) fn stop_value(env: sys::napi_env) -> Option<sys::napi_value> {
    let r = STOP.with(|s| *s.borrow())?;
    let mut sym = ptr::null_mut();
    // SAFETY: `r` was created on this thread's env and is never deleted.
    (unsafe { sys::napi_get_reference_value(env, r, &mut sym) } == sys::Status::napi_ok)
        .then_some(sym)
}

/// `true` when `v` is `NodeRuntime.STOP`.
pub(crate) fn is_stop(env: sys::napi_env, v: sys::napi_value) -> bool {
    let Some(r) = STOP.with(|s| *s.borrow()) else {
        return false;
    };
    let mut sym = ptr::null_mut();
    let mut eq = false;
    // SAFETY: `r` was created on this thread's env and is never deleted.
    unsafe {
        sys::napi_get_reference_value(env, r, &mut sym) == sys::Status::napi_ok
            && sys::napi_strict_equals(env, v, sym, &mut eq) == sys::Status::napi_ok
            && eq
    }
}

/// A PID returned by JS code (a factory).
pub(crate) fn returned_pid(
    env: sys::napi_env,
    v: sys::napi_value,
) -> std::result::Result<u64, String> {
    if !matches!(type_of(env, v), Ok(ValueType::Number)) {
        return Err("a factory must return the new actor's pid (a number)".to_owned());
    }
    let mut n = 0.0;
    // SAFETY: `v` is a number of this env.
    unsafe { sys::napi_get_value_double(env, v, &mut n) };
    args::pid(n)
}

/// JavaScript truthiness.
pub(crate) fn truthy(env: sys::napi_env, v: sys::napi_value) -> bool {
    let mut b = ptr::null_mut();
    let mut out = false;
    // SAFETY: `v` is a value of this env; ToBoolean never throws.
    unsafe {
        sys::napi_coerce_to_bool(env, v, &mut b) == sys::Status::napi_ok
            && sys::napi_get_value_bool(env, b, &mut out) == sys::Status::napi_ok
            && out
    }
}

/// `true` when `v` is a native Promise.
pub(crate) fn is_promise(env: sys::napi_env, v: sys::napi_value) -> bool {
    let mut p = false;
    // SAFETY: `v` is a value of this env.
    unsafe { sys::napi_is_promise(env, v, &mut p) == sys::Status::napi_ok && p }
}

/// What a thrown value says: its `stack` (which starts with the message) when it has one,
/// else its string form.
pub(crate) fn describe_thrown(env: sys::napi_env, v: sys::napi_value) -> String {
    let read = |v: sys::napi_value| -> Option<String> {
        // SAFETY: `v` is a value of this env.
        let s = unsafe { String::from_napi_value(env, v) }.ok()?;
        Some(s)
    };
    if matches!(type_of(env, v), Ok(ValueType::Object)) {
        let mut stack = ptr::null_mut();
        // SAFETY: `v` is an object of this env.
        let ok = unsafe { sys::napi_get_named_property(env, v, c"stack".as_ptr(), &mut stack) }
            == sys::Status::napi_ok;
        if ok
            && matches!(type_of(env, stack), Ok(ValueType::String))
            && let Some(s) = read(stack)
        {
            return s;
        }
    }
    let mut s = ptr::null_mut();
    // SAFETY: `v` is a value of this env; a failing coercion leaves an exception we clear.
    unsafe {
        if sys::napi_coerce_to_string(env, v, &mut s) == sys::Status::napi_ok
            && let Some(s) = read(s)
        {
            return s;
        }
        let mut ex = ptr::null_mut();
        let mut pending = false;
        sys::napi_is_exception_pending(env, &mut pending);
        if pending {
            sys::napi_get_and_clear_last_exception(env, &mut ex);
        }
    }
    "uncaught JavaScript value".to_owned()
}

/// A user message as a handler sees it: a Buffer whose `.data` is itself.
pub(crate) fn user_buffer(env: sys::napi_env, data: &[u8]) -> Result<sys::napi_value> {
    let mut buf = ptr::null_mut();
    let mut out_data = ptr::null_mut();
    // SAFETY: the source slice is valid for `len` bytes; napi copies it.
    check(
        unsafe {
            sys::napi_create_buffer_copy(
                env,
                data.len(),
                data.as_ptr().cast(),
                &mut out_data,
                &mut buf,
            )
        },
        "create buffer",
    )?;
    set(env, buf, c"data", buf)?;
    Ok(buf)
}

fn pid_value(env: sys::napi_env, pid: u64) -> Result<sys::napi_value> {
    js_number(env, pid as f64)
}

/// `{ typeName, fromPid, targetPid, reason, metadata }`.
fn system_value(env: sys::napi_env, sys_msg: &SystemMessage) -> Result<sys::napi_value> {
    let o = js_object(env)?;
    set(env, o, c"typeName", js_string(env, sys_msg.type_name())?)?;
    let (from, target, info, monitor) = match sys_msg {
        SystemMessage::Exit { from, target, info } => (*from, *target, info, None),
        SystemMessage::Down {
            monitor,
            from,
            target,
            info,
        } => (*from, *target, info, Some(*monitor)),
        #[allow(unreachable_patterns)]
        _ => return Ok(o),
    };
    set(env, o, c"fromPid", pid_value(env, from)?)?;
    set(env, o, c"targetPid", pid_value(env, target)?)?;
    set(env, o, c"reason", js_string(env, info.reason.as_str())?)?;
    let meta = match &info.metadata {
        Some(m) => js_string(env, m)?,
        None => js_null(env)?,
    };
    set(env, o, c"metadata", meta)?;
    if let Some(m) = monitor {
        set(env, o, c"monitorRef", js_number(env, m as f64)?)?;
    }
    Ok(o)
}

/// A message as handlers and `recv` see it: a Buffer with `.data`, or `{ system }`.
pub(crate) fn message_value(env: sys::napi_env, msg: &Message) -> Result<sys::napi_value> {
    match msg {
        Message::User(b) => user_buffer(env, b),
        Message::System(s) => {
            let o = js_object(env)?;
            set(env, o, c"system", system_value(env, s)?)?;
            Ok(o)
        }
    }
}

/// A message as `getMessages` returns it: `{ data }` or `{ system }`.
pub(crate) fn wrapped_message(env: sys::napi_env, msg: &Message) -> Result<sys::napi_value> {
    match msg {
        Message::User(b) => {
            let o = js_object(env)?;
            set(env, o, c"data", user_buffer(env, b)?)?;
            Ok(o)
        }
        Message::System(_) => message_value(env, msg),
    }
}

/// What `mailbox.recv` resolves to: a message, `null` on timeout; a closed mailbox rejects.
pub enum Received {
    /// A message.
    Msg(Message),
    /// The timeout passed.
    Timeout,
    /// The actor was stopped.
    Closed,
}

impl TypeName for Received {
    fn type_name() -> &'static str {
        "Buffer | { system: SystemMessage } | null"
    }
    fn value_type() -> ValueType {
        ValueType::Unknown
    }
}

impl ToNapiValue for Received {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        match val {
            Received::Msg(m) => message_value(env, &m),
            Received::Timeout => js_null(env),
            Received::Closed => Err(coded(
                env,
                Kind::Error,
                "ERR_IRIS_MAILBOX_CLOSED",
                "the mailbox is closed: its actor was stopped",
            )),
        }
    }
}

/// Messages of an observed actor.
pub struct Wrapped(pub(crate) Vec<Message>);

impl TypeName for Wrapped {
    fn type_name() -> &'static str {
        "Array<WrappedMessage>"
    }
    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl ToNapiValue for Wrapped {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        let mut arr = ptr::null_mut();
        // SAFETY: `env` is the live env of this call.
        check(
            unsafe { sys::napi_create_array_with_length(env, val.0.len(), &mut arr) },
            "create array",
        )?;
        for (i, m) in val.0.iter().enumerate() {
            let v = wrapped_message(env, m)?;
            // SAFETY: `arr` is an array of this env.
            check(
                unsafe { sys::napi_set_element(env, arr, i as u32, v) },
                "set element",
            )?;
        }
        Ok(arr)
    }
}

/// An exit, or `null`.
pub struct Exit(pub(crate) Option<ExitInfo>);

impl TypeName for Exit {
    fn type_name() -> &'static str {
        "ExitInfo | null"
    }
    fn value_type() -> ValueType {
        ValueType::Unknown
    }
}

impl ToNapiValue for Exit {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        match val.0 {
            // SAFETY: on the JS thread, with its env.
            Some(info) => unsafe { ToNapiValue::to_napi_value(env, ExitInfoJs::from(info)) },
            None => js_null(env),
        }
    }
}

/// The result of async work: the value, or an error made (with its `code`) on the JS thread.
pub enum Outcome<T> {
    /// The value.
    Ok(T),
    /// A failure: `code` and message.
    Err(&'static str, String),
}

impl<T> TypeName for Outcome<T> {
    fn type_name() -> &'static str {
        "unknown"
    }
    fn value_type() -> ValueType {
        ValueType::Unknown
    }
}

impl<T: ToNapiValue> ToNapiValue for Outcome<T> {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        match val {
            // SAFETY: on the JS thread, with its env.
            Outcome::Ok(v) => unsafe { T::to_napi_value(env, v) },
            Outcome::Err(code, msg) => Err(coded(env, Kind::Error, code, &msg)),
        }
    }
}
