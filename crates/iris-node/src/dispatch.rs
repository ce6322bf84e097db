//! Getting messages to JavaScript: one queue per runtime, drained on the JS thread through a
//! threadsafe function, so a burst of messages costs one wake-up of the event loop.
//!
//! Order: a push actor's behaviour queues message k+1 only after message k was queued, and
//! the JS thread runs the queue in order, so each actor sees its messages in order and one
//! at a time. A handler that returns a Promise holds its actor's later messages (in a
//! backlog) until the Promise settles. Each actor may have at most `budget` messages taken
//! from its mailbox and not yet handled (its *window*), so bounded mailboxes still fill up
//! when JS is slower than the senders.
//!
//! Batching: the messages of a drain go to JavaScript in chunks of up to [`CHUNK`], through
//! one call of a small JS function (`deliver`) per chunk instead of several N-API calls per
//! message. The chunk's small payloads are copied into one Buffer that each message views
//! (`subarray`, made in JS); handlers are found by slot in a JS array; a shared `Int32Array`
//! (`mem`) carries the chunk's layout in and, when a handler throws, returns `STOP` or a
//! Promise, or a `stop` call ran, the index where `deliver` returned so Rust can act on it
//! and resume after it. An actor that ended or awaits a Promise is *blocked* for the rest of
//! the chunk: JS skips its messages, and Rust then drops them or moves them to its backlog.
//!
//! Lingering: every message a JS handler sends leaves the JS thread for the runtime and, if
//! its receiver is a JS actor too, comes back. So that a request/response chain does not pay
//! two thread wake-ups per hop, a drain whose handlers sent polls the queue for a little
//! while ([`LINGER`]) before it returns to the event loop (never longer than [`SLICE`] in
//! all), and the runtime's schedulers poll for work before they park, as long.

use std::collections::VecDeque;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use iris::{Behavior, ExitInfo, ExitReason, Flow, Message, Pid, Runtime, Step};
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
    /// The chunk this lane was last put in and its index there (`generation << 32 | index`).
    /// JS thread only.
    mark: AtomicU64,
    /// Messages the actor may still hand to JS before one is handled.
    window: Semaphore,
    js: Mutex<LaneJs>,
}

#[derive(Default)]
struct LaneJs {
    dead: bool,
    /// A handler's Promise is pending: later messages wait here.
    busy: bool,
    backlog: VecDeque<(Arc<Route>, Message, InFlight)>,
}

impl Lane {
    pub(crate) fn new(window: usize) -> Arc<Lane> {
        Arc::new(Lane {
            pid: OnceLock::new(),
            mark: AtomicU64::new(u64::MAX),
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
        route: Arc<Route>,
        msg: Message,
        token: InFlight,
    },
    /// Anything else that must run on the JS thread.
    Call(JsThreadFn),
}

/// Messages per call of `deliver`.
pub(crate) const CHUNK: usize = 512;
/// Payloads up to this size share their chunk's Buffer; larger ones get their own.
const SHARED_MAX: usize = 1024;
/// A chunk's small payloads stay below this many bytes.
const SHARED_CAP: usize = 16 * 1024;
/// Chunks copy their small payloads into a pool Buffer of this size, one after the other, as
/// Node's `Buffer.allocUnsafe` does with `Buffer.poolSize` (a handler that keeps a message
/// keeps its pool alive); a new pool is made when one is used up.
const POOL: usize = 8 * 1024;

// The layout of `mem` (i32s): what `deliver` reads and writes.
const M_EPOCH: usize = 0;
const M_AT: usize = 1;
const M_WHY: usize = 2;
const M_BLOCKED: usize = 3;
const M_META: usize = M_BLOCKED + CHUNK;
const MEM_LEN: usize = M_META + 4 * CHUNK;

// Why `deliver` returned before the end of its chunk.
const WHY_DONE: i32 = 0;
const WHY_THREW: i32 = 1;
const WHY_RETURNED: i32 = 2;
const WHY_STOPPED: i32 = 3;

/// Runs a chunk's handlers. Per message `mem` holds: the handler's slot in `table`, the
/// payload's start and end in `payload` (end -1: the message is `vals[i]`), and the
/// actor's index in the chunk, whose `blocked` flag makes JS skip its messages. Returns to
/// Rust (`mem[M_AT]`, `mem[M_WHY]`) when a handler throws, returns `STOP` or a thenable, or
/// when `mem[M_EPOCH]` changed (an actor was stopped from JS).
const DELIVER_JS: &str = r#"(function (STOP, BLOCKED, META) {
  'use strict'
  return function irisDeliver(table, mem, payload, vals, from, n) {
    const epoch = mem[0]
    for (let i = from; i < n; i++) {
      const k = META + 4 * i
      if (mem[BLOCKED + mem[k + 3]] !== 0) continue
      const end = mem[k + 2]
      let msg
      if (end < 0) {
        msg = vals[i]
      } else {
        msg = payload.subarray(mem[k + 1], end)
        msg.data = msg
      }
      const f = table[mem[k]]
      let r
      try {
        r = f(msg)
        if (r !== undefined && r !== null && (r === STOP || typeof r.then === 'function')) {
          mem[1] = i
          mem[2] = 2
          return r
        }
      } catch (e) {
        mem[1] = i
        mem[2] = 1
        return e
      }
      if (mem[0] !== epoch) {
        mem[1] = i
        mem[2] = 3
        return undefined
      }
    }
    mem[1] = n
    mem[2] = 0
    return undefined
  }
})"#;

/// Where one behaviour of a push actor sends its messages: the dispatcher, the actor's lane
/// and the handler. One `Arc` per behaviour, so a message costs one reference count, on a
/// line of its own actor (the handler may be shared by many actors).
pub(crate) struct Route {
    disp: Arc<Dispatcher>,
    lane: Arc<Lane>,
    handler: Arc<PushHandler>,
}

/// A push actor's handler as the dispatcher knows it: the function, and its slot in the JS
/// handler table (freed when the last behaviour using it is gone).
pub(crate) struct PushHandler {
    f: JsFn,
    slot: u32,
    freed: Arc<Mutex<Vec<u32>>>,
}

impl Drop for PushHandler {
    fn drop(&mut self) {
        lock(&self.freed).push(self.slot);
    }
}

/// JS values the dispatcher keeps (created once, on the JS thread).
struct JsRefs {
    /// `Array<Function>`: handlers by slot.
    table: sys::napi_ref,
    /// The `Int32Array` `mem`, and its memory.
    mem: sys::napi_ref,
    mem_ptr: *mut i32,
    deliver: sys::napi_ref,
}

// SAFETY: the references and the pointer are only used on the JS thread (drain, spawn and
// stop run there); other threads only move the struct along with `Shared`.
unsafe impl Send for JsRefs {}
// SAFETY: as above.
unsafe impl Sync for JsRefs {}

#[derive(Default)]
struct Slots {
    next: u32,
    free: Vec<u32>,
}

/// The current payload pool. JS thread only.
struct Pool {
    buf: sys::napi_ref,
    data: *mut u8,
    len: usize,
    used: usize,
}

// SAFETY: only used on the JS thread (in `drain`); other threads only move it with `Shared`.
unsafe impl Send for Pool {}

struct Shared {
    queue: Mutex<Vec<Job>>,
    refs: JsRefs,
    pool: Mutex<Option<Pool>>,
    slots: Mutex<Slots>,
    freed: Arc<Mutex<Vec<u32>>>,
    /// The handler of the latest `spawn`: actors spawned with one function share it.
    last: Mutex<std::sync::Weak<PushHandler>>,
    /// Chunks made so far (a lane's `mark` names the chunk it is in).
    generation: AtomicU64,
    in_flight: Arc<AtomicUsize>,
    /// PIDs that JS sent to lately (repeats allowed, deduplicated by the watcher): while
    /// their mailboxes hold messages, the loop stays alive.
    active: Mutex<Vec<Pid>>,
    /// The threadsafe function is referenced (keeps the event loop alive). JS thread only.
    refd: AtomicBool,
    closed: AtomicBool,
    tsfn: OnceLock<Tsfn>,
    scheduled: AtomicBool,
    /// Sends from JS so far (see [`Dispatcher::keep_alive`]); a drain lingers after its
    /// handlers sent.
    sends: AtomicU64,
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
            refs: js_refs(env)?,
            pool: Mutex::new(None),
            slots: Mutex::new(Slots::default()),
            freed: Arc::new(Mutex::new(Vec::new())),
            last: Mutex::new(std::sync::Weak::new()),
            generation: AtomicU64::new(0),
            in_flight: Arc::new(AtomicUsize::new(0)),
            active: Mutex::new(Vec::new()),
            refd: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            tsfn: OnceLock::new(),
            scheduled: AtomicBool::new(false),
            sends: AtomicU64::new(0),
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
            shared.sends.fetch_add(1, Ordering::Relaxed);
            let mut active = lock(&shared.active);
            if active.last() != Some(&pid) {
                active.push(pid);
            }
        }
        if !shared.refd.load(Ordering::Acquire) && !shared.refd.swap(true, Ordering::AcqRel) {
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

    /// The handler for the JS function `f`: the latest one if it has the same function (no
    /// new reference, slot or allocation per actor), else a new one. Called on the JS thread.
    pub(crate) fn handler_for(&self, env: &Env, f: sys::napi_value) -> Result<Arc<PushHandler>> {
        let last = lock(&self.shared.last).upgrade();
        if let Some(h) = last
            && let Ok(known) = h.f.borrow_back(env)
        {
            let mut same = false;
            // SAFETY: both are values of this env.
            unsafe { sys::napi_strict_equals(env.raw(), known.raw(), f, &mut same) };
            if same {
                return Ok(h);
            }
        }
        // SAFETY: `f` is a function of this env (the caller checked).
        let f: JsFn =
            unsafe { napi::bindgen_prelude::FromNapiValue::from_napi_value(env.raw(), f) }?;
        let h = self.handler(env, f)?;
        *lock(&self.shared.last) = Arc::downgrade(&h);
        Ok(h)
    }

    /// Puts `f` in the handler table. Called on the JS thread.
    pub(crate) fn handler(&self, env: &Env, f: JsFn) -> Result<Arc<PushHandler>> {
        let shared = &self.shared;
        let raw = env.raw();
        let table = get_ref(raw, shared.refs.table)?;
        let slot = {
            let mut slots = lock(&shared.slots);
            // Forget the functions of freed slots, so they can be collected.
            let freed = std::mem::take(&mut *lock(&shared.freed));
            if !freed.is_empty() {
                let undefined = js::undefined(raw)?;
                for &slot in &freed {
                    // SAFETY: `table` is an array of this env.
                    js::check(
                        unsafe { sys::napi_set_element(raw, table, slot, undefined) },
                        "free a handler slot",
                    )?;
                }
                slots.free.extend(freed);
            }
            match slots.free.pop() {
                Some(s) => s,
                None => {
                    slots.next += 1;
                    slots.next - 1
                }
            }
        };
        let func = f.borrow_back(env)?;
        // SAFETY: `table` and `func` are values of this env.
        let set = js::check(
            unsafe { sys::napi_set_element(raw, table, slot, func.raw()) },
            "store a handler",
        );
        let h = Arc::new(PushHandler {
            f,
            slot,
            freed: shared.freed.clone(),
        });
        set.map(|()| h)
    }

    /// Tells a running `deliver` that an actor may have been stopped, so it checks before
    /// running the chunk's next handler. Called on the JS thread.
    pub(crate) fn stopped(&self) {
        // SAFETY: `mem_ptr` points at `MEM_LEN` i32s kept alive by `refs.mem`; JS thread.
        unsafe {
            let p = self.shared.refs.mem_ptr.add(M_EPOCH);
            p.write(p.read().wrapping_add(1));
        }
    }

    /// A push actor's behaviour: hands each message to JS, at most `window` ahead.
    pub(crate) fn behavior(
        self: &Arc<Self>,
        lane: Arc<Lane>,
        handler: Arc<PushHandler>,
    ) -> Behavior {
        let route = Arc::new(Route {
            disp: self.clone(),
            lane,
            handler,
        });
        Behavior::from_step(move |msg| {
            // With room to spare in the window the message goes to JS at once, and the actor
            // stays on the scheduler loops (no task, no wake-up of one). Otherwise a future
            // waits for room: from then on the actor runs as a task.
            let lane = &route.lane;
            if lane.window.available_permits() > 1
                && let Ok(p) = lane.window.try_acquire()
            {
                p.forget();
                let token = InFlight::new(&route.disp.shared.in_flight);
                push(
                    &route.disp.shared,
                    Job::Msg {
                        route: route.clone(),
                        msg,
                        token,
                    },
                );
                return Step::Done(Flow::Continue);
            }
            let route = route.clone();
            Step::Async(Box::pin(async move {
                let lane = &route.lane;
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
                let token = InFlight::new(&route.disp.shared.in_flight);
                let full = lane.window.available_permits() == 0;
                let shared = route.disp.shared.clone();
                let lane = full.then(|| route.lane.clone());
                push(&shared, Job::Msg { route, msg, token });
                // Take no further message from the mailbox while the window is full: what
                // waits for JS stays in the mailbox, where capacity and policies apply.
                if let Some(lane) = lane {
                    let _ = lane.window.acquire().await;
                }
                Flow::Continue
            }))
        })
    }
}

fn push(shared: &Shared, job: Job) {
    lock(&shared.queue).push(job);
    if !shared.scheduled.swap(true, Ordering::SeqCst)
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
    active.sort_unstable();
    active.dedup();
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

fn get_ref(env: sys::napi_env, r: sys::napi_ref) -> Result<sys::napi_value> {
    let mut v = ptr::null_mut();
    // SAFETY: `r` is a live reference of this env.
    js::check(
        unsafe { sys::napi_get_reference_value(env, r, &mut v) },
        "read a reference",
    )?;
    Ok(v)
}

fn new_ref(env: sys::napi_env, v: sys::napi_value) -> Result<sys::napi_ref> {
    let mut r = ptr::null_mut();
    // SAFETY: `v` is a value of this env; the reference lives until deleted (the table, `mem`
    // and `deliver` as long as the dispatcher, a payload pool until the next one).
    js::check(
        unsafe { sys::napi_create_reference(env, v, 1, &mut r) },
        "make a reference",
    )?;
    Ok(r)
}

/// The handler table, `mem` and the compiled `deliver`.
fn js_refs(env: &Env) -> Result<JsRefs> {
    let raw = env.raw();
    let mut table = ptr::null_mut();
    // SAFETY: on the JS thread, with its env (as every call below).
    js::check(
        unsafe { sys::napi_create_array(raw, &mut table) },
        "create array",
    )?;
    let mut ab = ptr::null_mut();
    let mut data = ptr::null_mut();
    js::check(
        unsafe { sys::napi_create_arraybuffer(raw, MEM_LEN * 4, &mut data, &mut ab) },
        "create arraybuffer",
    )?;
    let mut mem = ptr::null_mut();
    js::check(
        unsafe {
            sys::napi_create_typedarray(
                raw,
                sys::TypedarrayType::int32_array,
                MEM_LEN,
                ab,
                0,
                &mut mem,
            )
        },
        "create Int32Array",
    )?;
    let src = js::js_string(raw, DELIVER_JS)?;
    let mut factory = ptr::null_mut();
    js::check(
        unsafe { sys::napi_run_script(raw, src, &mut factory) },
        "compile deliver",
    )?;
    let stop = match js::stop_value(raw) {
        Some(v) => v,
        None => js::undefined(raw)?,
    };
    let mut blocked = ptr::null_mut();
    let mut meta = ptr::null_mut();
    js::check(
        unsafe { sys::napi_create_uint32(raw, M_BLOCKED as u32, &mut blocked) },
        "create number",
    )?;
    js::check(
        unsafe { sys::napi_create_uint32(raw, M_META as u32, &mut meta) },
        "create number",
    )?;
    let undefined = js::undefined(raw)?;
    let mut deliver = ptr::null_mut();
    js::check(
        unsafe {
            sys::napi_call_function(
                raw,
                undefined,
                factory,
                3,
                [stop, blocked, meta].as_ptr(),
                &mut deliver,
            )
        },
        "make deliver",
    )?;
    Ok(JsRefs {
        table: new_ref(raw, table)?,
        mem: new_ref(raw, mem)?,
        mem_ptr: data.cast::<i32>(),
        deliver: new_ref(raw, deliver)?,
    })
}

/// Reserves `n` bytes of the payload pool: the pool Buffer, its memory and the offset.
fn take_pool(
    env: sys::napi_env,
    shared: &Shared,
    n: usize,
) -> Result<(sys::napi_value, *mut u8, usize)> {
    let mut pool = lock(&shared.pool);
    if let Some(p) = pool.as_mut()
        && p.len - p.used >= n
    {
        let at = p.used;
        p.used += n;
        return Ok((get_ref(env, p.buf)?, p.data, at));
    }
    let len = n.max(POOL);
    let mut data = ptr::null_mut();
    let mut buf = ptr::null_mut();
    // SAFETY: on the JS thread, with its env.
    js::check(
        unsafe { sys::napi_create_buffer(env, len, &mut data, &mut buf) },
        "create buffer",
    )?;
    let r = new_ref(env, buf)?;
    if let Some(old) = pool.replace(Pool {
        buf: r,
        data: data.cast(),
        len,
        used: n,
    }) {
        // SAFETY: `old.buf` is a reference of this env, not used again; views of the old pool
        // keep its memory alive.
        unsafe { sys::napi_delete_reference(env, old.buf) };
    }
    Ok((buf, data.cast(), 0))
}

/// How long, unless `setLinger` says otherwise, the JS thread keeps polling its queue after a
/// drain whose handlers sent messages, and the runtime's idle scheduler threads poll for work
/// before they park (the runtime's [`Runtime::set_linger`], which the JS side reads too):
/// the answers of a request/response chain then run in the same turn of the event loop, and
/// each message a JS handler sends, which comes back to the runtime from the JS thread,
/// seldom has to wake a parked thread.
pub(crate) const LINGER: Duration = Duration::from_micros(50);

/// The longest one turn of draining keeps the JS thread (lingering included); then timers,
/// I/O and Promise continuations run, and the drain goes on in a later turn.
const SLICE: Duration = Duration::from_millis(2);

fn drain(env: &Env, shared: &Arc<Shared>) {
    let start = Instant::now();
    loop {
        // `scheduled` stays set while this call runs, so jobs queued meanwhile schedule no
        // further call of it: this one takes them.
        let jobs = std::mem::take(&mut *lock(&shared.queue));
        if !jobs.is_empty() {
            let sends = shared.sends.load(Ordering::Relaxed);
            let mut chunk = Chunk::default();
            run_jobs(env, shared, jobs, &mut chunk);
            // Only a drain whose handlers sent lingers: answers to those sends may be on
            // the way.
            let sent = shared.sends.load(Ordering::Relaxed) != sends;
            if sent && start.elapsed() < SLICE && linger(shared, start + SLICE) {
                continue;
            }
        }
        shared.scheduled.store(false, Ordering::SeqCst);
        // A job queued after the take above saw `scheduled` set and scheduled nothing.
        if lock(&shared.queue).is_empty() || shared.scheduled.swap(true, Ordering::SeqCst) {
            // Nothing left, or a job queued since the store scheduled a call of its own.
            return;
        }
        if start.elapsed() >= SLICE {
            // Let the event loop run first; a later call takes the jobs.
            if let Some(tsfn) = shared.tsfn.get() {
                tsfn.call((), ThreadsafeFunctionCallMode::NonBlocking);
            }
            return;
        }
    }
}

/// Polls for up to the runtime's linger time ([`LINGER`] unless set otherwise), and not past
/// `end`, for a job queued since the last take; `true` once one is.
fn linger(shared: &Shared, end: Instant) -> bool {
    let linger = shared.rt.linger();
    if linger.is_zero() {
        return false;
    }
    let until = Instant::now()
        .checked_add(linger)
        .map_or(end, |t| t.min(end));
    loop {
        // `try_lock`: polling never makes a sender wait for the queue.
        if shared.queue.try_lock().is_ok_and(|q| !q.is_empty()) {
            return true;
        }
        if shared.closed.load(Ordering::Acquire) || Instant::now() >= until {
            return false;
        }
        for _ in 0..64 {
            std::hint::spin_loop();
        }
    }
}

fn run_jobs(env: &Env, shared: &Arc<Shared>, jobs: Vec<Job>, chunk: &mut Chunk) {
    for job in jobs {
        match job {
            Job::Msg { route, msg, token } => {
                // First run a full chunk: what its handlers do (await, end) decides this one.
                if chunk.is_full_for(&msg) {
                    chunk.run(env, shared);
                }
                {
                    let mut js = lock(&route.lane.js);
                    if js.dead {
                        continue;
                    }
                    if js.busy {
                        js.backlog.push_back((route.clone(), msg, token));
                        continue;
                    }
                }
                chunk.add(shared, route, msg, token);
            }
            Job::Call(f) => {
                chunk.run(env, shared);
                f(env, &shared.rt);
            }
        }
    }
    chunk.run(env, shared);
}

/// A message of a chunk.
struct Item {
    lane: u32,
    route: Arc<Route>,
    msg: Message,
    /// Taken when the handler returned a Promise (it then holds the window place).
    token: Option<InFlight>,
}

/// An actor with messages in a chunk.
struct ChunkLane {
    lane: Arc<Lane>,
    /// The index of the message after which its messages were skipped.
    blocked_at: Option<usize>,
    /// Its messages handled (each gives a place in its window back).
    handled: usize,
}

#[derive(Default)]
struct Chunk {
    items: Vec<Item>,
    lanes: Vec<ChunkLane>,
    shared_bytes: usize,
    own_buffers: bool,
    generation: u64,
}

fn shares(msg: &Message) -> Option<usize> {
    match msg {
        Message::User(b) if b.len() <= SHARED_MAX => Some(b.len()),
        _ => None,
    }
}

impl Chunk {
    fn is_full_for(&self, msg: &Message) -> bool {
        self.items.len() >= CHUNK || shares(msg).is_some_and(|n| self.shared_bytes + n > SHARED_CAP)
    }

    fn add(&mut self, shared: &Shared, route: Arc<Route>, msg: Message, token: InFlight) {
        let lane = &route.lane;
        if self.items.is_empty() && self.lanes.is_empty() {
            self.generation = shared.generation.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff;
        }
        let mark = lane.mark.load(Ordering::Relaxed);
        let at = (mark & 0xffff_ffff) as usize;
        let index = if mark >> 32 == self.generation
            && self
                .lanes
                .get(at)
                .is_some_and(|l| Arc::ptr_eq(&l.lane, lane))
        {
            at
        } else {
            if !shared.rt.is_alive(lane.pid()) {
                // Stopped meanwhile: the messages it had not started are dropped.
                lane.end(&shared.rt, None);
                return;
            }
            let index = self.lanes.len();
            lane.mark
                .store(self.generation << 32 | index as u64, Ordering::Relaxed);
            self.lanes.push(ChunkLane {
                lane: lane.clone(),
                blocked_at: None,
                handled: 0,
            });
            index
        };
        match shares(&msg) {
            Some(n) => self.shared_bytes += n,
            None => self.own_buffers = true,
        }
        self.items.push(Item {
            lane: index as u32,
            route,
            msg,
            token: Some(token),
        });
    }

    /// Runs the chunk's messages through their handlers, then empties it.
    fn run(&mut self, env: &Env, shared: &Shared) {
        if !self.items.is_empty()
            && let Err(e) = self.deliver(env, shared)
        {
            // No handler could run: end the actors of the messages left, as a failed
            // delivery of a single message does.
            let why = format!("iris: cannot deliver a message: {e}");
            for l in &mut self.lanes {
                if l.blocked_at.is_none() {
                    l.lane.end(&shared.rt, crash(why.clone()));
                }
            }
        }
        self.finish();
    }

    fn deliver(&mut self, env: &Env, shared: &Shared) -> Result<()> {
        let raw = env.raw();
        let refs = &shared.refs;
        let mem = refs.mem_ptr;
        let n = self.items.len();
        let (payload, data, mut off) = take_pool(raw, shared, self.shared_bytes)?;
        let vals = if self.own_buffers {
            let mut arr = ptr::null_mut();
            // SAFETY: as above.
            js::check(
                unsafe { sys::napi_create_array_with_length(raw, n, &mut arr) },
                "create array",
            )?;
            arr
        } else {
            js::undefined(raw)?
        };
        for (i, item) in self.items.iter().enumerate() {
            let (start, end) = match &item.msg {
                Message::User(b) if b.len() <= SHARED_MAX => {
                    // SAFETY: `take_pool` reserved `shared_bytes` bytes from `off`, the sum of
                    // these lengths.
                    unsafe { ptr::copy_nonoverlapping(b.as_ptr(), data.add(off), b.len()) };
                    off += b.len();
                    ((off - b.len()) as i32, off as i32)
                }
                other => {
                    let v = js::message_value(raw, other)?;
                    // SAFETY: `vals` is an array of this env.
                    js::check(
                        unsafe { sys::napi_set_element(raw, vals, i as u32, v) },
                        "set element",
                    )?;
                    (0, -1)
                }
            };
            // SAFETY: `mem` holds `MEM_LEN` i32s and `i < CHUNK`.
            unsafe {
                let k = mem.add(M_META + 4 * i);
                k.write(item.route.handler.slot as i32);
                k.add(1).write(start);
                k.add(2).write(end);
                k.add(3).write(item.lane as i32);
            }
        }
        // SAFETY: as above, `lanes.len() <= CHUNK`.
        unsafe { ptr::write_bytes(mem.add(M_BLOCKED), 0, self.lanes.len()) };
        let table = get_ref(raw, refs.table)?;
        let mem_v = get_ref(raw, refs.mem)?;
        let deliver = get_ref(raw, refs.deliver)?;
        let undefined = js::undefined(raw)?;
        let mut from = 0usize;
        while from < n {
            // SAFETY: `mem` as above.
            let epoch = unsafe { mem.add(M_EPOCH).read() };
            let mut from_v = ptr::null_mut();
            let mut n_v = ptr::null_mut();
            let mut ret = ptr::null_mut();
            // SAFETY: on the JS thread; every value belongs to this env.
            let status = unsafe {
                sys::napi_create_uint32(raw, from as u32, &mut from_v);
                sys::napi_create_uint32(raw, n as u32, &mut n_v);
                sys::napi_call_function(
                    raw,
                    undefined,
                    deliver,
                    6,
                    [table, mem_v, payload, vals, from_v, n_v].as_ptr(),
                    &mut ret,
                )
            };
            if status != sys::Status::napi_ok {
                let mut pending = false;
                // SAFETY: as above.
                unsafe {
                    sys::napi_is_exception_pending(raw, &mut pending);
                    if pending {
                        let mut ex = ptr::null_mut();
                        sys::napi_get_and_clear_last_exception(raw, &mut ex);
                    }
                }
                return Err(napi::Error::new(
                    Status::from(status),
                    "calling deliver failed",
                ));
            }
            // SAFETY: `mem` as above; `deliver` wrote these before returning.
            let (at, why) = unsafe { (mem.add(M_AT).read() as usize, mem.add(M_WHY).read()) };
            if why == WHY_DONE || at >= n {
                break;
            }
            let ended = self.returned(env, shared, at, why, ret);
            // SAFETY: `mem` as above.
            let stopped = unsafe { mem.add(M_EPOCH).read() } != epoch;
            if ended || stopped {
                // Actors may have been stopped from JS (`stop`, also by a handler that then
                // threw), or by the exit just made (links): those of this chunk take no more.
                self.recheck(shared, at);
            }
            from = at + 1;
        }
        Ok(())
    }

    /// Acts on what the handler of message `at` did, when `deliver` returned for it; `true`
    /// when its actor ended.
    fn returned(
        &mut self,
        env: &Env,
        shared: &Shared,
        at: usize,
        why: i32,
        v: sys::napi_value,
    ) -> bool {
        let raw = env.raw();
        let rt = &shared.rt;
        let li = self.items[at].lane as usize;
        let lane = self.lanes[li].lane.clone();
        match why {
            WHY_THREW => {
                lane.end(rt, crash(js::describe_thrown(raw, v)));
                self.block(shared, li, at);
                true
            }
            WHY_RETURNED if js::is_stop(raw, v) => {
                lane.end(rt, Some(ExitInfo::new(ExitReason::Normal)));
                self.block(shared, li, at);
                true
            }
            WHY_RETURNED if js::is_promise(raw, v) => {
                lock(&lane.js).busy = true;
                // The window place comes back when the Promise settles.
                let token = self.items[at].token.take();
                self.block(shared, li, at);
                if let Some(token) = token
                    && let Err(e) = await_handler(env, rt, &lane, v, token)
                {
                    lane.end(rt, crash(format!("iris: cannot await a handler: {e}")));
                    return true;
                }
                false
            }
            // The handler returned normally and `stop` ran: the caller rechecks.
            WHY_STOPPED => false,
            // A thenable that is not a Promise, like any other value.
            _ => false,
        }
    }

    /// Blocks the lanes of actors no longer alive, after message `at`.
    fn recheck(&mut self, shared: &Shared, at: usize) {
        let rt = &shared.rt;
        for i in 0..self.lanes.len() {
            let l = &self.lanes[i];
            if l.blocked_at.is_none() && !rt.is_alive(l.lane.pid()) {
                l.lane.end(rt, None);
                self.block(shared, i, at);
            }
        }
    }

    /// Skips lane `li`'s messages after `at` in this chunk.
    fn block(&mut self, shared: &Shared, li: usize, at: usize) {
        if self.lanes[li].blocked_at.is_none() {
            self.lanes[li].blocked_at = Some(at);
            // SAFETY: `mem_ptr` holds `MEM_LEN` i32s and `li < CHUNK`; on the JS thread.
            unsafe { shared.refs.mem_ptr.add(M_BLOCKED + li).write(1) };
        }
    }

    /// Drops or backlogs the skipped messages, gives window places back, empties the chunk.
    fn finish(&mut self) {
        for (i, item) in self.items.drain(..).enumerate() {
            let l = &mut self.lanes[item.lane as usize];
            match l.blocked_at {
                Some(b) if i > b => {
                    let mut js = lock(&l.lane.js);
                    if !js.dead
                        && let Some(token) = item.token
                    {
                        js.backlog.push_back((item.route, item.msg, token));
                    }
                }
                _ if item.token.is_some() => l.handled += 1,
                _ => {}
            }
        }
        for l in self.lanes.drain(..) {
            if l.handled > 0 {
                l.lane.window.add_permits(l.handled);
            }
        }
        self.shared_bytes = 0;
        self.own_buffers = false;
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
    route: &Route,
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
    let outcome = js::message_value(raw, msg).and_then(|arg| call(env, &route.handler.f, arg));
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
        let Some((route, msg, token)) = next else {
            return;
        };
        run_one(env, rt, lane, &route, &msg, token);
        let js = lock(&lane.js);
        if js.dead || js.busy {
            return;
        }
    }
}
