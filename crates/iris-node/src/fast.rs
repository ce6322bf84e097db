//! The hottest `NodeRuntime` methods (`send`, `spawn`) as raw N-API callbacks installed on the
//! class's prototype at load. napi-rs's own method glue records every receiver borrow in a
//! process-wide mutex-guarded map (about a third of a `send`); these check the receiver's
//! type tag, unwrap it and convert the arguments with the same types as the `#[napi]`
//! methods they replace, which still give the typings.

use std::ptr;

use napi::bindgen_prelude::{FromNapiValue, TypeTag, validate_type_tag};
use napi::{Env, JsError, Result, ValueType, sys};

use crate::js::{self, Count, Payload, Pid};
use crate::runtime::NodeRuntime;

/// Runs `f(runtime, args)` for a call of a prototype method with up to `N` arguments
/// (missing ones are `undefined`), turning its error into a JS throw.
///
/// # Safety
/// `env` and `info` are those of a live N-API callback on the JS thread.
unsafe fn method<const N: usize>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    f: impl FnOnce(&NodeRuntime, &Env, [sys::napi_value; N]) -> Result<sys::napi_value>,
) -> sys::napi_value {
    let run = || -> Result<sys::napi_value> {
        let mut argc = N;
        let mut argv = [ptr::null_mut(); N];
        let mut this = ptr::null_mut();
        // SAFETY: as the function's contract says; `argv` has room for `argc` values.
        unsafe {
            js::check(
                sys::napi_get_cb_info(
                    env,
                    info,
                    &mut argc,
                    argv.as_mut_ptr(),
                    &mut this,
                    ptr::null_mut(),
                ),
                "read arguments",
            )?;
            let undefined = js::undefined(env)?;
            for a in argv.iter_mut().skip(argc.min(N)) {
                *a = undefined;
            }
            // The receiver must be a NodeRuntime: its tag, then the wrapped Box<NodeRuntime>.
            validate_type_tag(
                env,
                this,
                &<NodeRuntime as TypeTag>::type_tag(),
                "NodeRuntime",
            )?;
            let mut raw = ptr::null_mut();
            js::check(sys::napi_unwrap(env, this, &mut raw), "unwrap NodeRuntime")?;
            // SAFETY: napi-rs wrapped a `Box<NodeRuntime>` in `this`, alive while `this` is
            // (on the stack of this call); every method of it takes `&self`.
            let rt = &*raw.cast::<NodeRuntime>();
            f(rt, &Env::from_raw(env), argv)
        }
    };
    match run() {
        Ok(v) => v,
        Err(e) => {
            // SAFETY: on the JS thread, with its env; throws the error (a coded Error made in
            // this env, or a new one).
            unsafe { JsError::from(e).throw_into(env) };
            ptr::null_mut()
        }
    }
}

/// `rt.send(pid, data)`.
unsafe extern "C" fn send(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: called by N-API with a live env and info.
    unsafe {
        method(env, info, |rt, e, [pid, data]: [sys::napi_value; 2]| {
            let pid = Pid::from_napi_value(env, pid)?;
            let data = Payload::from_napi_value(env, data)?;
            let sent = rt.send_bytes(e, pid, data);
            let mut out = ptr::null_mut();
            js::check(sys::napi_get_boolean(env, sent, &mut out), "boolean")?;
            Ok(out)
        })
    }
}

/// `rt.spawn(handler, budget?)`.
unsafe extern "C" fn spawn(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: called by N-API with a live env and info.
    unsafe {
        method(
            env,
            info,
            |rt, e, [handler, budget]: [sys::napi_value; 2]| {
                let mut t = 0;
                js::check(sys::napi_typeof(env, handler, &mut t), "typeof")?;
                if ValueType::from(t) != ValueType::Function {
                    return Err(js::type_error(env, "handler must be a function"));
                }
                let budget = Option::<Count>::from_napi_value(env, budget)?;
                let pid = rt.spawn_value(e, handler, budget)?;
                let mut out = ptr::null_mut();
                js::check(sys::napi_create_double(env, pid, &mut out), "number")?;
                Ok(out)
            },
        )
    }
}

/// Puts the raw `send` and `spawn` on `NodeRuntime.prototype`.
#[cfg_attr(test, allow(dead_code))]
pub(crate) fn install(env: &Env, class: sys::napi_value) -> Result<()> {
    type Callback = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value;
    let raw = env.raw();
    let mut proto = ptr::null_mut();
    // SAFETY: on the JS thread at module load; `class` is the NodeRuntime constructor.
    js::check(
        unsafe { sys::napi_get_named_property(raw, class, c"prototype".as_ptr(), &mut proto) },
        "NodeRuntime.prototype",
    )?;
    let methods: [(&std::ffi::CStr, Callback); 2] = [(c"send", send), (c"spawn", spawn)];
    for (name, cb) in methods {
        let mut f = ptr::null_mut();
        // SAFETY: as above; `name` is NUL-terminated.
        unsafe {
            js::check(
                sys::napi_create_function(
                    raw,
                    name.as_ptr(),
                    name.to_bytes().len() as isize,
                    Some(cb),
                    ptr::null_mut(),
                    &mut f,
                ),
                "create a method",
            )?;
            js::check(
                sys::napi_set_named_property(raw, proto, name.as_ptr(), f),
                "install a method",
            )?;
        }
    }
    Ok(())
}
