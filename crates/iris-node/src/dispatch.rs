//! Getting messages to JavaScript: one queue per runtime, drained on the JS thread through a
//! threadsafe function, so a burst of messages costs one wake-up of the event loop.
//!
//! Order: a push actor's behaviour queues message k+1 only after message k was queued, and
//! the JS thread runs the queue in order, so each actor sees its messages in order and one
//! at a time. A handler that returns a Promise holds its actor's later messages (in a
//! backlog) until the Promise settles. Each actor may have at most `budget` messages taken
//! from its mailbox and not yet handled (its *window*), so bounded mailboxes still fill up
//! when JS is slower than the senders.

use std::collections::VecDeque;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use iris::{Behavior, ExitInfo, ExitReason, Flow, Message, Pid, Runtime};
use napi::bindgen_prelude::{FunctionRef, PromiseRaw};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, JsValue, Result, Status, Unknown, sys};
use tokio::sync::Semaphore;

use crate::js;

/// A JS function kept alive from Rust.
pub(crate) type JsFn = FunctionRef<Unknown<'static>, Unknown<'static>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The JS side of one push actor, shared by all its behaviours (hot swaps included).
pub(crate) struct Lane {
    pid: OnceLock<Pid>,
    /// Messages the actor may still hand to JS before one is handled.
    window: Semaphore,
    js: Mutex<LaneJs>,
}

#[derive(Default)]
struct LaneJs {
    dead: bool,
    /// A handler's Promise is pending: later messages wait here.
    busy: bool,
    backlog: VecDeque<(Arc<JsFn>, Message)>,
}

impl Lane {
    pub(crate) fn new(window: usize) -> Arc<Lane> {
        Arc::new(Lane {
            pid: OnceLock::new(),
            window: Semaphore::new(window.clamp(1, Semaphore::MAX_PERMITS)),
            js: Mutex::new(LaneJs::default()),
        })
    }

    pub(crate) fn set_pid(&self, pid: Pid) {
        let _ = self.pid.set(pid);
    }

    fn pid(&self) -> Pid {
        self.pid.get().copied().unwrap_or(0)
    }

    /// Ends the actor from the JS side: later messages are dropped, a waiting behaviour is
    /// released so the actor can run its exit.
    fn end(&self, rt: &Runtime, info: Option<ExitInfo>) {
        {
            let mut js = lock(&self.js);
            js.dead = true;
            js.backlog.clear();
        }
        if let Some(info) = info {
            rt.exit(self.pid(), info);
        }
        self.window.close();
    }
}

/// A closure for the JS thread.
pub(crate) type JsThreadFn = Box<dyn FnOnce(&Env, &Runtime) + Send>;

/// Work for the JS thread.
pub(crate) enum Job {
    /// A message for a push actor's handler.
    Msg {
        lane: Arc<Lane>,
        handler: Arc<JsFn>,
        msg: Message,
    },
    /// Anything else that must run on the JS thread.
    Call(JsThreadFn),
}

struct Shared {
    queue: Mutex<Vec<Job>>,
    scheduled: AtomicBool,
    rt: Runtime,
}

type Tsfn = ThreadsafeFunction<(), (), (), Status, false, true>;

/// The per-runtime queue to the JS thread.
pub(crate) struct Dispatcher {
    shared: Arc<Shared>,
    tsfn: Tsfn,
}

impl Dispatcher {
    /// Must run on the JS thread.
    pub(crate) fn new(env: &Env, rt: Runtime) -> Result<Arc<Dispatcher>> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Vec::new()),
            scheduled: AtomicBool::new(false),
            rt,
        });
        let drain_shared = shared.clone();
        let noop = env.create_function_from_closure::<(), (), _>("irisDispatch", |_| Ok(()))?;
        // Weak: the queue alone never keeps the process alive.
        let tsfn: Tsfn = noop
            .build_threadsafe_function::<()>()
            .callee_handled::<false>()
            .weak::<true>()
            .build_callback(move |ctx| {
                drain(&ctx.env, &drain_shared);
                Ok(())
            })?;
        Ok(Arc::new(Dispatcher { shared, tsfn }))
    }

    pub(crate) fn push(&self, job: Job) {
        lock(&self.shared.queue).push(job);
        if !self.shared.scheduled.swap(true, Ordering::AcqRel) {
            self.tsfn.call((), ThreadsafeFunctionCallMode::NonBlocking);
        }
    }

    /// A push actor's behaviour: hands each message to JS, at most `window` ahead.
    pub(crate) fn behavior(self: &Arc<Self>, lane: Arc<Lane>, handler: Arc<JsFn>) -> Behavior {
        let disp = self.clone();
        Behavior::from_async(move |msg| {
            let disp = disp.clone();
            let lane = lane.clone();
            let handler = handler.clone();
            async move {
                let admitted = match lane.window.try_acquire() {
                    Ok(p) => {
                        p.forget();
                        true
                    }
                    Err(_) => match lane.window.acquire().await {
                        Ok(p) => {
                            p.forget();
                            true
                        }
                        Err(_) => false,
                    },
                };
                if !admitted {
                    // The JS side ended the actor; its exit is under way.
                    return Flow::Continue;
                }
                disp.push(Job::Msg {
                    lane: lane.clone(),
                    handler,
                    msg,
                });
                // Take no further message from the mailbox while the window is full: what
                // waits for JS stays in the mailbox, where capacity and policies apply.
                if lane.window.available_permits() == 0 {
                    let _ = lane.window.acquire().await;
                }
                Flow::Continue
            }
        })
    }
}

fn drain(env: &Env, shared: &Arc<Shared>) {
    shared.scheduled.store(false, Ordering::Release);
    let jobs = std::mem::take(&mut *lock(&shared.queue));
    for job in jobs {
        match job {
            Job::Msg { lane, handler, msg } => {
                let mut js = lock(&lane.js);
                if js.dead {
                    continue;
                }
                if js.busy {
                    js.backlog.push_back((handler, msg));
                    continue;
                }
                drop(js);
                run_one(env, &shared.rt, &lane, &handler, &msg);
            }
            Job::Call(f) => f(env, &shared.rt),
        }
    }
}

/// What calling a JS function did.
pub(crate) enum Called {
    Returned(sys::napi_value),
    Threw(String),
}

/// Calls `f(arg)` with `this` undefined, catching what it throws.
pub(crate) fn call(env: &Env, f: &JsFn, arg: sys::napi_value) -> Result<Called> {
    let raw = env.raw();
    let func = f.borrow_back(env)?;
    let mut undefined = ptr::null_mut();
    let mut ret = ptr::null_mut();
    // SAFETY: all values belong to this env, on its thread.
    let status = unsafe {
        sys::napi_get_undefined(raw, &mut undefined);
        sys::napi_call_function(raw, undefined, func.raw(), 1, [arg].as_ptr(), &mut ret)
    };
    if status == sys::Status::napi_ok {
        return Ok(Called::Returned(ret));
    }
    let mut pending = false;
    // SAFETY: as above.
    unsafe { sys::napi_is_exception_pending(raw, &mut pending) };
    if !pending {
        return Err(napi::Error::new(
            Status::from(status),
            "calling a JS handler failed",
        ));
    }
    let mut ex = ptr::null_mut();
    // SAFETY: an exception is pending in this env.
    unsafe { sys::napi_get_and_clear_last_exception(raw, &mut ex) };
    Ok(Called::Threw(js::describe_thrown(raw, ex)))
}

fn crash(why: String) -> Option<ExitInfo> {
    Some(ExitInfo::with_metadata(ExitReason::Crash, why))
}

/// Runs one message through its handler on the JS thread.
fn run_one(env: &Env, rt: &Runtime, lane: &Arc<Lane>, handler: &Arc<JsFn>, msg: &Message) {
    let pid = lane.pid();
    if !rt.is_alive(pid) {
        // Stopped meanwhile: the messages it had not started are dropped.
        lane.end(rt, None);
        return;
    }
    let raw = env.raw();
    let outcome = js::message_value(raw, msg).and_then(|arg| call(env, handler, arg));
    match outcome {
        Err(e) => lane.end(rt, crash(format!("iris: cannot deliver a message: {e}"))),
        Ok(Called::Threw(why)) => lane.end(rt, crash(why)),
        Ok(Called::Returned(v)) if js::is_stop(raw, v) => {
            lane.end(rt, Some(ExitInfo::new(ExitReason::Normal)));
        }
        Ok(Called::Returned(v)) if js::is_promise(raw, v) => {
            lock(&lane.js).busy = true;
            if let Err(e) = await_handler(env, rt, lane, v) {
                lane.end(rt, crash(format!("iris: cannot await a handler: {e}")));
            }
        }
        Ok(Called::Returned(_)) => lane.window.add_permits(1),
    }
}

/// Waits for a handler's Promise, then runs the messages that arrived meanwhile.
fn await_handler(
    env: &Env,
    rt: &Runtime,
    lane: &Arc<Lane>,
    promise: sys::napi_value,
) -> Result<()> {
    let p: PromiseRaw<'_, Unknown<'static>> = PromiseRaw::new(env.raw(), promise);
    let (l1, r1) = (lane.clone(), rt.clone());
    let (l2, r2) = (lane.clone(), rt.clone());
    let then = p.then(move |ctx| {
        if js::is_stop(ctx.env.raw(), ctx.value.raw()) {
            l1.end(&r1, Some(ExitInfo::new(ExitReason::Normal)));
        } else {
            settle(&ctx.env, &r1, &l1);
        }
        Ok(())
    })?;
    then.catch(
        move |ctx: napi::bindgen_prelude::CallbackContext<Unknown<'static>>| {
            let why = js::describe_thrown(ctx.env.raw(), ctx.value.raw());
            l2.end(&r2, crash(why));
            Ok(())
        },
    )?;
    Ok(())
}

fn settle(env: &Env, rt: &Runtime, lane: &Arc<Lane>) {
    lane.window.add_permits(1);
    loop {
        let next = {
            let mut js = lock(&lane.js);
            if js.dead {
                return;
            }
            js.busy = false;
            js.backlog.pop_front()
        };
        let Some((handler, msg)) = next else { return };
        run_one(env, rt, lane, &handler, &msg);
        let js = lock(&lane.js);
        if js.dead || js.busy {
            return;
        }
    }
}
