//! Getting messages to JavaScript: one queue per runtime, drained on the JS thread through a
//! threadsafe function, so a burst of messages costs one wake-up of the event loop.
//!
//! Order: a push actor's behaviour queues message k+1 only after message k was queued, and
//! the JS thread runs the queue in order, so each actor sees its messages in order and one
//! at a time. A handler that returns a Promise holds its actor's later messages (in a
//! backlog) until the Promise settles. Each actor may have at most `budget` messages taken
//! from its mailbox and not yet handled (its *window*), so bounded mailboxes still fill up
//! when JS is slower than the senders.

use std::collections::{HashSet, VecDeque};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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
    backlog: VecDeque<(Arc<JsFn>, Message, InFlight)>,
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

/// Counts a message from the moment it is handed to JS until its handler is done with it
/// (or it is dropped): the runtime keeps the event loop alive while any is in flight.
pub(crate) struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn new(count: &Arc<AtomicUsize>) -> InFlight {
        count.fetch_add(1, Ordering::AcqRel);
        InFlight(count.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
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
        token: InFlight,
    },
    /// Anything else that must run on the JS thread.
    Call(JsThreadFn),
}

struct Shared {
    queue: Mutex<Vec<Job>>,
    in_flight: Arc<AtomicUsize>,
    /// PIDs that JS sent to lately: while their mailboxes hold messages, the loop stays alive.
    active: Mutex<HashSet<Pid>>,
    /// The threadsafe function is referenced (keeps the event loop alive). JS thread only.
    refd: AtomicBool,
    closed: AtomicBool,
    tsfn: OnceLock<Tsfn>,
    scheduled: AtomicBool,
    rt: Runtime,
}

type Tsfn = ThreadsafeFunction<(), (), (), Status, false, true>;

/// The per-runtime queue to the JS thread.
pub(crate) struct Dispatcher {
    shared: Arc<Shared>,
}

impl Dispatcher {
    /// Must run on the JS thread.
    pub(crate) fn new(env: &Env, rt: Runtime) -> Result<Arc<Dispatcher>> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Vec::new()),
            in_flight: Arc::new(AtomicUsize::new(0)),
            active: Mutex::new(HashSet::new()),
            refd: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            tsfn: OnceLock::new(),
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
        // A cycle (the callback holds `shared`), broken only with the process: the function
        // is weak, so it never keeps the loop alive by itself.
        let _ = shared.tsfn.set(tsfn);
        Ok(Arc::new(Dispatcher { shared }))
    }

    /// Keeps the event loop alive until the work JS just started (a send to `pid`, a timer,
    /// a listener) has run its course. Called on the JS thread.
    pub(crate) fn keep_alive(&self, env: &Env, pid: Option<Pid>) {
        let shared = &self.shared;
        if shared.closed.load(Ordering::Acquire) {
            return;
        }
        if let Some(pid) = pid {
            lock(&shared.active).insert(pid);
        }
        if !shared.refd.swap(true, Ordering::AcqRel) {
            set_ref(env, shared, true);
            watch_quiet(shared.clone());
        }
    }

    /// Marks the runtime closed from any thread; a running watcher then lets the loop go.
    pub(crate) fn mark_closed(&self) {
        self.shared.closed.store(true, Ordering::Release);
    }

    /// Lets the event loop go for good (the runtime is closed). Called on the JS thread.
    pub(crate) fn release(&self, env: &Env) {
        self.shared.closed.store(true, Ordering::Release);
        if self.shared.refd.swap(false, Ordering::AcqRel) {
            set_ref(env, &self.shared, false);
        }
        lock(&self.shared.active).clear();
    }

    pub(crate) fn push(&self, job: Job) {
        push(&self.shared, job);
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
                let token = InFlight::new(&disp.shared.in_flight);
                disp.push(Job::Msg {
                    lane: lane.clone(),
                    handler,
                    msg,
                    token,
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

fn push(shared: &Shared, job: Job) {
    lock(&shared.queue).push(job);
    if !shared.scheduled.swap(true, Ordering::AcqRel)
        && let Some(tsfn) = shared.tsfn.get()
    {
        tsfn.call((), ThreadsafeFunctionCallMode::NonBlocking);
    }
}

fn set_ref(env: &Env, shared: &Shared, on: bool) {
    let Some(tsfn) = shared.tsfn.get() else {
        return;
    };
    let raw = tsfn.raw();
    // SAFETY: on the JS thread; the function lives as long as the dispatcher, and a closed
    // (released) one makes these calls fail harmlessly.
    unsafe {
        if on {
            sys::napi_ref_threadsafe_function(env.raw(), raw);
        } else {
            sys::napi_unref_threadsafe_function(env.raw(), raw);
        }
    }
}

/// Nothing started from JS is still under way.
fn quiet(shared: &Shared) -> bool {
    if shared.closed.load(Ordering::Acquire) {
        return true;
    }
    if shared.in_flight.load(Ordering::Acquire) > 0
        || !lock(&shared.queue).is_empty()
        || shared.rt.timer_count() > 0
        || shared.rt.listen_addr().is_some()
    {
        return false;
    }
    let mut active = lock(&shared.active);
    active.retain(|&pid| shared.rt.mailbox_size(pid).is_some_and(|n| n > 0));
    active.is_empty()
}

/// Polls for quiet (twice in a row, so a message between mailbox and JS is not missed),
/// then lets the JS thread unreference the loop if it is still quiet there.
fn watch_quiet(shared: Arc<Shared>) {
    let handle = shared.rt.handle().clone();
    handle.spawn(async move {
        let mut calm = 0;
        while calm < 2 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            calm = if quiet(&shared) { calm + 1 } else { 0 };
        }
        let again = shared.clone();
        let job = Job::Call(Box::new(move |env, _| {
            if !again.refd.load(Ordering::Acquire) {
                return;
            }
            if quiet(&again) {
                again.refd.store(false, Ordering::Release);
                set_ref(env, &again, false);
            } else {
                watch_quiet(again.clone());
            }
        }));
        push(&shared, job);
    });
}

fn drain(env: &Env, shared: &Arc<Shared>) {
    shared.scheduled.store(false, Ordering::Release);
    let jobs = std::mem::take(&mut *lock(&shared.queue));
    for job in jobs {
        match job {
            Job::Msg {
                lane,
                handler,
                msg,
                token,
            } => {
                let mut js = lock(&lane.js);
                if js.dead {
                    continue;
                }
                if js.busy {
                    js.backlog.push_back((handler, msg, token));
                    continue;
                }
                drop(js);
                run_one(env, &shared.rt, &lane, &handler, &msg, token);
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
fn run_one(
    env: &Env,
    rt: &Runtime,
    lane: &Arc<Lane>,
    handler: &Arc<JsFn>,
    msg: &Message,
    token: InFlight,
) {
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
            if let Err(e) = await_handler(env, rt, lane, v, token) {
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
    token: InFlight,
) -> Result<()> {
    let p: PromiseRaw<'_, Unknown<'static>> = PromiseRaw::new(env.raw(), promise);
    let (l1, r1) = (lane.clone(), rt.clone());
    let (l2, r2) = (lane.clone(), rt.clone());
    let t1 = Arc::new(Mutex::new(Some(token)));
    let t2 = t1.clone();
    let then = p.then(move |ctx| {
        drop(lock(&t1).take());
        if js::is_stop(ctx.env.raw(), ctx.value.raw()) {
            l1.end(&r1, Some(ExitInfo::new(ExitReason::Normal)));
        } else {
            settle(&ctx.env, &r1, &l1);
        }
        Ok(())
    })?;
    then.catch(
        move |ctx: napi::bindgen_prelude::CallbackContext<Unknown<'static>>| {
            drop(lock(&t2).take());
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
        let Some((handler, msg, token)) = next else {
            return;
        };
        run_one(env, rt, lane, &handler, &msg, token);
        let js = lock(&lane.js);
        if js.dead || js.busy {
            return;
        }
    }
}
