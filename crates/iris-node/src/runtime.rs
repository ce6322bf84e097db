//! `NodeRuntime` and the pull actors' `Mailbox`.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use iris::{
    ActorError, ExitInfo, ExitReason, Factory, MeshError, Message, Pid, Receiver, RegistryError,
    Runtime, SpawnOptions, Strategy, TryRecvError,
};
use napi::bindgen_prelude::{JsObjectValue, Object, PromiseRaw, ToNapiValue};
use napi::{Env, JsValue, Result, sys};
use napi_derive::napi;
use tokio::sync::oneshot;

use crate::dispatch::{Called, Dispatcher, Job, JsFn, Lane, PushHandler, call};
use crate::js::{
    self, Count, Exit, Handler, Kind, Outcome, Payload, Pid as PidArg, Received, Seconds, Wrapped,
};
use crate::{args, lock};

const DEFAULT_BUDGET: u64 = iris::DEFAULT_BUDGET as u64;

/// The least window of a push actor with an unbounded mailbox: how many of its messages may
/// wait for JS at once. A window of `budget` (100) made the actor's task and the JS thread
/// hand over every 100 messages, which halved the sink's rate.
const UNBOUNDED_WINDOW: usize = 2 * crate::dispatch::CHUNK;

/// The JS error for a failed runtime call, with a stable `code`.
fn actor_error(env: &Env, e: &ActorError) -> napi::Error {
    let code = match e {
        ActorError::NoProcess(_) => "ERR_IRIS_NO_PROCESS",
        ActorError::NotSwappable(_) => "ERR_IRIS_NOT_SWAPPABLE",
        ActorError::NoSuchVersion { .. } => "ERR_IRIS_NO_SUCH_VERSION",
        ActorError::Mailbox(_, iris_mailbox_err) => {
            if iris_mailbox_err.to_string().contains("capacity") {
                "ERR_IRIS_CAPACITY"
            } else {
                "ERR_IRIS_UNBOUNDED"
            }
        }
        ActorError::ParentDead(_) => "ERR_IRIS_PARENT_DEAD",
        ActorError::ShuttingDown => "ERR_IRIS_CLOSED",
        ActorError::Registry(RegistryError::NameTaken { .. }) => "ERR_IRIS_NAME_TAKEN",
        ActorError::Registry(RegistryError::EmptyName) => "ERR_IRIS_INVALID_NAME",
        ActorError::Registry(RegistryError::InvalidPath { .. }) => "ERR_IRIS_INVALID_PATH",
        ActorError::Supervision(_) => "ERR_IRIS_SUPERVISION",
        ActorError::NoSupervisor(_) => "ERR_IRIS_NO_SUPERVISOR",
        _ => "ERR_IRIS",
    };
    js::coded(env.raw(), Kind::Error, code, &e.to_string())
}

fn strategy_of(env: &Env, name: Option<String>) -> Result<Strategy> {
    match name {
        None => Ok(Strategy::OneForOne),
        Some(n) => iris::parse_strategy(&n).ok_or_else(|| {
            let msg =
                format!("unknown strategy `{n}`; expected restartone, restartall or restforone");
            js::coded(env.raw(), Kind::Error, "ERR_IRIS_INVALID_STRATEGY", &msg)
        }),
    }
}

fn mesh_code(e: &MeshError) -> &'static str {
    match e {
        MeshError::Bind(_) => "ERR_IRIS_BIND",
        MeshError::Handshake(_) | MeshError::Cookie(_) => "ERR_IRIS_HANDSHAKE",
        MeshError::Timeout => "ERR_IRIS_TIMEOUT",
        MeshError::Unreachable(_) | MeshError::Io(_) => "ERR_IRIS_UNREACHABLE",
        _ => "ERR_IRIS_MESH",
    }
}

fn mesh<T, U>(r: std::result::Result<T, MeshError>, f: impl FnOnce(T) -> U) -> Outcome<U> {
    match r {
        Ok(v) => Outcome::Ok(f(v)),
        Err(e) => Outcome::Err(mesh_code(&e), e.to_string()),
    }
}

/// How long a supervisor waits for a JS factory.
const FACTORY_TIMEOUT: Duration = Duration::from_secs(10);

/// A registration under a path.
#[napi(object)]
pub struct PathEntry {
    /// The full path.
    pub path: String,
    /// The actor registered there.
    pub pid: f64,
}

fn entries(v: Vec<(String, Pid)>) -> Vec<PathEntry> {
    v.into_iter()
        .map(|(path, pid)| PathEntry {
            path,
            pid: pid as f64,
        })
        .collect()
}

fn budget_of(b: Option<Count>) -> usize {
    b.map_or(DEFAULT_BUDGET, |c| c.0).max(1) as usize
}

/// The Iris runtime for Node.js.
///
/// PIDs are plain numbers. Push handlers get each message as a `Buffer` (whose `.data` is
/// the Buffer itself) or a `{ system }` object, run on the JS thread one at a time per actor,
/// and may return a Promise (the actor waits for it) or `NodeRuntime.STOP` (the actor ends
/// normally). A handler that throws ends its actor with `Crash`.
#[napi]
pub struct NodeRuntime {
    rt: Runtime,
    disp: Arc<Dispatcher>,
    /// The JS side of each push actor, for hot swaps.
    lanes: Mutex<HashMap<Pid, Weak<Lane>>>,
    lanes_pruned_at: Mutex<usize>,
    closed: AtomicBool,
    /// Sends from JS waiting for room under `block`/`spill`, per target, in order.
    waiting: Arc<Mutex<HashMap<Pid, VecDeque<Message>>>>,
    /// Entries in `waiting`: while 0, `send` skips its lock (only `send` adds entries).
    waiting_n: Arc<AtomicUsize>,
}

/// Why an actor exited.
#[napi(object, js_name = "ExitInfo")]
pub struct ExitInfoJs {
    /// `"Normal"`, `"Killed"`, `"Panic"`, `"Crash"`, `"Timeout"`, `"Disconnect"`,
    /// `"Shutdown"` or a custom reason.
    pub reason: String,
    /// Extra text: the error's stack for `Crash`, the panic message for `Panic`.
    pub metadata: Option<String>,
}

impl From<ExitInfo> for ExitInfoJs {
    fn from(i: ExitInfo) -> Self {
        ExitInfoJs {
            reason: i.reason.as_str().to_owned(),
            metadata: i.metadata,
        }
    }
}

impl NodeRuntime {
    fn spawn_push(
        &self,
        env: &Env,
        handler: Arc<PushHandler>,
        opts: SpawnOptions,
        virt: Option<(Option<Duration>, bool)>,
    ) -> Result<f64> {
        // The window: a bounded mailbox keeps the budget's, so that it fills up while JS is
        // behind; an unbounded one lets JS take a few chunks per wake-up of the actor.
        let window = match opts.capacity {
            Some(_) => opts.budget,
            None => opts.budget.max(UNBOUNDED_WINDOW),
        };
        let lane = Lane::new(window);
        let behavior = self.disp.behavior(lane.clone(), handler);
        let r = match virt {
            None => self.rt.try_spawn_behavior(behavior, opts),
            Some((idle, re)) => self.rt.try_spawn_virtual(behavior, opts.budget, idle, re),
        };
        let pid = r.map_err(|e| actor_error(env, &e))?;
        lane.set_pid(pid);
        let mut lanes = lock(&self.lanes);
        lanes.insert(pid, Arc::downgrade(&lane));
        // Forget the lanes of exited actors now and then (amortized O(1) per spawn).
        let mut at = lock(&self.lanes_pruned_at);
        if lanes.len() > 2 * (*at).max(1024) {
            lanes.retain(|_, l| l.strong_count() > 0);
            *at = lanes.len();
        }
        Ok(pid as f64)
    }

    /// A supervisor factory that runs `f()` on the JS thread; the supervisor waits for it.
    fn factory(&self, f: Handler) -> Factory {
        let disp = self.disp.clone();
        let f = Arc::new(f.0);
        Arc::new(move || {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            let f = f.clone();
            disp.push(Job::Call(Box::new(move |env, _| {
                let undefined = js::undefined(env.raw());
                let r = match undefined.and_then(|u| call(env, &f, u)) {
                    Ok(Called::Returned(v)) => js::returned_pid(env.raw(), v),
                    Ok(Called::Threw(why)) => Err(why),
                    Err(e) => Err(e.to_string()),
                };
                let _ = tx.send(r);
            })));
            rx.recv_timeout(FACTORY_TIMEOUT)
                .unwrap_or_else(|_| Err("the JS factory did not answer in time".to_owned()))
        })
    }

    fn spawn_pull(&self, env: &Env, f: Handler, opts: SpawnOptions) -> Result<f64> {
        let (rx_tx, rx_rx) = oneshot::channel::<Receiver>();
        let (done_tx, done_rx) = oneshot::channel::<()>();
        let pid = self
            .rt
            .try_spawn_actor(
                move |rx| async move {
                    let _ = rx_tx.send(rx);
                    // The actor lives until its JS function settles.
                    let _ = done_rx.await;
                },
                opts,
            )
            .map_err(|e| actor_error(env, &e))?;
        let mailbox = Mailbox {
            pid,
            state: Arc::new(tokio::sync::Mutex::new(MbState::Pending(rx_rx))),
            stash: Arc::new(Mutex::new(VecDeque::new())),
            disp: self.disp.clone(),
            rt: self.rt.clone(),
        };
        let f = Arc::new(f.0);
        // On the next turn, so the caller has the PID before the function runs.
        self.disp.push(Job::Call(Box::new(move |env, rt| {
            run_pull(env, rt, pid, &f, mailbox, done_tx);
        })));
        Ok(pid as f64)
    }
}

fn run_pull(
    env: &Env,
    rt: &Runtime,
    pid: Pid,
    f: &JsFn,
    mailbox: Mailbox,
    done: oneshot::Sender<()>,
) {
    // A plain fn: the Promise callbacks outlive this frame, so they must own what they use.
    fn crash(rt: &Runtime, pid: Pid, why: String) {
        rt.exit(pid, ExitInfo::with_metadata(ExitReason::Crash, why));
    }
    // SAFETY: on the JS thread, with its env.
    let called =
        unsafe { ToNapiValue::to_napi_value(env.raw(), mailbox) }.and_then(|m| call(env, f, m));
    match called {
        Err(e) => {
            crash(
                rt,
                pid,
                format!("iris: cannot start the mailbox function: {e}"),
            );
            let _ = done.send(());
        }
        Ok(Called::Threw(why)) => {
            crash(rt, pid, why);
            let _ = done.send(());
        }
        Ok(Called::Returned(v)) if js::is_promise(env.raw(), v) => {
            let done = Arc::new(Mutex::new(Some(done)));
            let d2 = done.clone();
            let rt2 = rt.clone();
            let p: napi::bindgen_prelude::PromiseRaw<'_, napi::Unknown<'static>> =
                napi::bindgen_prelude::PromiseRaw::new(env.raw(), v);
            let attached = p
                .then(
                    move |_: napi::bindgen_prelude::CallbackContext<napi::Unknown<'static>>| {
                        if let Some(d) = lock(&done).take() {
                            let _ = d.send(());
                        }
                        Ok(())
                    },
                )
                .and_then(|then| {
                    then.catch(
                        move |ctx: napi::bindgen_prelude::CallbackContext<
                            napi::Unknown<'static>,
                        >| {
                            // A stopped actor's pending `recv` rejects: that is not a crash.
                            if rt2.is_alive(pid) {
                                crash(
                                    &rt2,
                                    pid,
                                    js::describe_thrown(ctx.env.raw(), ctx.value.raw()),
                                );
                            }
                            if let Some(d) = lock(&d2).take() {
                                let _ = d.send(());
                            }
                            Ok(())
                        },
                    )
                });
            if let Err(e) = attached {
                crash(
                    rt,
                    pid,
                    format!("iris: cannot await the mailbox function: {e}"),
                );
            }
        }
        Ok(Called::Returned(_)) => {
            let _ = done.send(());
        }
    }
}

fn pids(v: Vec<Pid>) -> Vec<f64> {
    v.into_iter().map(|p| p as f64).collect()
}

#[napi]
impl NodeRuntime {
    /// A new runtime. Its actors run on a shared Tokio runtime; handlers run on this thread.
    #[napi(constructor)]
    pub fn new(env: Env) -> Result<Self> {
        let rt = napi::bindgen_prelude::within_runtime_if_available(Runtime::try_new)
            .map_err(|e| actor_error(&env, &e))?;
        rt.set_linger(crate::dispatch::LINGER);
        let disp = Dispatcher::new(&env, rt.clone())?;
        Ok(NodeRuntime {
            rt,
            disp,
            lanes: Mutex::new(HashMap::new()),
            lanes_pruned_at: Mutex::new(0),
            closed: AtomicBool::new(false),
            waiting: Arc::new(Mutex::new(HashMap::new())),
            waiting_n: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Spawns a push actor: `handler(msg)` runs once per message, in order, one at a time.
    /// `budget` (default 100) is the reduction budget; at least 1024 messages may be taken
    /// from the (unbounded) mailbox ahead of the handler.
    // Replaced at load by `fast::spawn`, like `send`.
    #[napi(ts_args_type = "handler: (msg: Message) => unknown, budget?: number")]
    pub fn spawn(&self, env: Env, handler: Handler, budget: Option<Count>) -> Result<f64> {
        let opts = SpawnOptions {
            budget: budget_of(budget),
            ..SpawnOptions::default()
        };
        self.spawn_push(&env, self.disp.handler(&env, handler.0)?, opts, None)
    }

    /// Spawns a push actor with a bounded mailbox of `capacity` messages (policy `dropnew`).
    #[napi(ts_args_type = "handler: (msg: Message) => unknown, budget: number, capacity: number")]
    pub fn spawn_bounded(
        &self,
        env: Env,
        handler: Handler,
        budget: Count,
        capacity: Count,
    ) -> Result<f64> {
        let opts = SpawnOptions {
            budget: budget_of(Some(budget)),
            capacity: Some(capacity.0 as usize),
            parent: None,
        };
        self.spawn_push(&env, self.disp.handler(&env, handler.0)?, opts, None)
    }

    /// Spawns a push actor that is shut down when `parent` exits.
    #[napi(ts_args_type = "parent: number, handler: (msg: Message) => unknown, budget?: number")]
    pub fn spawn_child(
        &self,
        env: Env,
        parent: PidArg,
        handler: Handler,
        budget: Option<Count>,
    ) -> Result<f64> {
        let opts = SpawnOptions {
            budget: budget_of(budget),
            capacity: None,
            parent: Some(parent.0),
        };
        self.spawn_push(&env, self.disp.handler(&env, handler.0)?, opts, None)
    }

    /// Spawns `size` (default 4) long-lived push workers under `parent` and returns their
    /// PIDs; without a handler they accept and ignore messages.
    #[napi(
        ts_args_type = "parent: number, size?: number, handler?: ((msg: Message) => unknown) | null, budget?: number"
    )]
    pub fn spawn_child_pool(
        &self,
        env: Env,
        parent: PidArg,
        size: Option<Count>,
        handler: Option<Handler>,
        budget: Option<Count>,
    ) -> Result<Vec<f64>> {
        let size = size.map_or(4, |c| c.0);
        let handler = match handler {
            Some(h) => Some(self.disp.handler(&env, h.0)?),
            None => None,
        };
        let mut out = Vec::with_capacity(size as usize);
        for _ in 0..size {
            let opts = SpawnOptions {
                budget: budget_of(budget),
                capacity: None,
                parent: Some(parent.0),
            };
            let pid = match &handler {
                Some(h) => self.spawn_push(&env, h.clone(), opts, None)?,
                None => self
                    .rt
                    .try_spawn_behavior(iris::Behavior::from_fn(|_| ()), opts)
                    .map(|p| p as f64)
                    .map_err(|e| actor_error(&env, &e))?,
            };
            out.push(pid);
        }
        Ok(out)
    }

    /// Reserves a PID for a virtual actor, started by its first message; with
    /// `idleTimeoutMs` it stops (`Timeout`) after that long without one, or with
    /// `reactivate` goes dormant and keeps its PID.
    #[napi(
        ts_args_type = "handler: (msg: Message) => unknown, budget?: number, idleTimeoutMs?: number, reactivate?: boolean"
    )]
    pub fn spawn_virtual(
        &self,
        env: Env,
        handler: Handler,
        budget: Option<Count>,
        idle_timeout_ms: Option<Count>,
        reactivate: Option<bool>,
    ) -> Result<f64> {
        let opts = SpawnOptions {
            budget: budget_of(budget),
            ..SpawnOptions::default()
        };
        let idle = idle_timeout_ms.map(|c| Duration::from_millis(c.0));
        self.spawn_push(
            &env,
            self.disp.handler(&env, handler.0)?,
            opts,
            Some((idle, reactivate.unwrap_or(false))),
        )
    }

    /// Spawns a pull actor: `fn(mailbox)` runs once (on the next turn of the event loop) and
    /// awaits `mailbox.recv()`; the actor exits when the function's Promise settles
    /// (`Normal`, or `Crash` if it rejects).
    #[napi(ts_args_type = "fn: (mailbox: Mailbox) => unknown, budget?: number")]
    pub fn spawn_with_mailbox(&self, env: Env, f: Handler, budget: Option<Count>) -> Result<f64> {
        let opts = SpawnOptions {
            budget: budget_of(budget),
            ..SpawnOptions::default()
        };
        self.spawn_pull(&env, f, opts)
    }

    /// Spawns a pull actor that is shut down when `parent` exits.
    #[napi(ts_args_type = "parent: number, fn: (mailbox: Mailbox) => unknown, budget?: number")]
    pub fn spawn_child_with_mailbox(
        &self,
        env: Env,
        parent: PidArg,
        f: Handler,
        budget: Option<Count>,
    ) -> Result<f64> {
        let opts = SpawnOptions {
            budget: budget_of(budget),
            capacity: None,
            parent: Some(parent.0),
        };
        self.spawn_pull(&env, f, opts)
    }

    /// Spawns an actor that records every message it receives (see `getMessages`).
    #[napi(ts_args_type = "budget?: number")]
    pub fn spawn_observed(&self, env: Env, budget: Option<Count>) -> Result<f64> {
        self.rt
            .spawn_observed_handler(budget_of(budget))
            .map(|p| p as f64)
            .map_err(|e| actor_error(&env, &e))
    }

    /// Every message an observed actor received, oldest first: `{ data }` or `{ system }`.
    #[napi(ts_args_type = "pid: number", ts_return_type = "Array<WrappedMessage>")]
    pub fn get_messages(&self, pid: PidArg) -> Wrapped {
        Wrapped(self.rt.get_messages(pid.0))
    }

    /// Sends bytes; `false` for a dead PID or a full mailbox that rejects. Under `block` (or
    /// `spill`) a full mailbox does not block the event loop: the message waits for room in
    /// the background, and later sends to the same PID queue up behind it, in order (use
    /// `sendAsync` to wait for the room instead).
    // At load the class's `send` is replaced by `fast::send`, the same call without napi-rs's
    // per-call receiver bookkeeping; this one gives it its types.
    #[napi(ts_args_type = "pid: number, data: Buffer | Uint8Array")]
    pub fn send(&self, env: Env, pid: PidArg, data: Payload) -> bool {
        self.send_bytes(&env, pid, data)
    }

    /// Sends bytes, waiting for room under the `block` and `spill` policies.
    #[napi(ts_args_type = "pid: number, data: Buffer | Uint8Array")]
    pub async fn send_async(&self, pid: PidArg, data: Payload) -> Result<bool> {
        // The pending Promise keeps the loop alive until the message is queued.
        Ok(self
            .rt
            .send_async(pid.0, Message::User(data.0))
            .await
            .is_ok())
    }

    /// Stops an actor (`Killed`) after the message it is handling; `false` if it was not alive.
    #[napi(ts_args_type = "pid: number")]
    pub fn stop(&self, pid: PidArg) -> bool {
        self.disp.stopped();
        self.rt.stop(pid.0)
    }

    /// Resolves with the actor's exit once it has run, or `null` for an unknown PID.
    #[napi(
        ts_args_type = "pid: number",
        ts_return_type = "Promise<ExitInfo | null>"
    )]
    pub async fn join(&self, pid: PidArg) -> Result<Exit> {
        Ok(Exit(self.rt.wait(pid.0).await))
    }

    /// The exit of an actor that already ended (recent ones are remembered), else `null`.
    #[napi(ts_args_type = "pid: number", ts_return_type = "ExitInfo | null")]
    pub fn exit_info(&self, pid: PidArg) -> Exit {
        Exit(self.rt.exit_info(pid.0))
    }

    /// `true` while the actor is alive.
    #[napi(ts_args_type = "pid: number")]
    pub fn is_alive(&self, pid: PidArg) -> bool {
        self.rt.is_alive(pid.0)
    }

    /// Queued user messages, or `null` for an unknown or dead PID.
    #[napi(ts_args_type = "pid: number")]
    pub fn mailbox_size(&self, pid: PidArg) -> Option<f64> {
        self.rt.mailbox_size(pid.0).map(|n| n as f64)
    }

    /// Sets the overflow policy of a bounded mailbox: `"dropnew"`, `"dropold"`,
    /// `"redirect"` (to `target`), `"spill"` (a copy to `target`) or `"block"`.
    #[napi(ts_args_type = "pid: number, policy: OverflowPolicyName, target?: number | null")]
    pub fn set_overflow_policy(
        &self,
        env: Env,
        pid: PidArg,
        policy: String,
        target: Option<PidArg>,
    ) -> Result<()> {
        let p = args::policy(&policy, target.map(|t| t.0))
            .map_err(|m| js::coded(env.raw(), Kind::Error, "ERR_IRIS_INVALID_POLICY", &m))?;
        self.rt
            .set_overflow_policy(pid.0, p)
            .map_err(|e| actor_error(&env, &e))
    }

    /// The PIDs of an actor's live children.
    #[napi(ts_args_type = "pid: number")]
    pub fn children_of(&self, pid: PidArg) -> Vec<f64> {
        pids(self.rt.children_of(pid.0))
    }

    /// Replaces a push actor's handler; messages started afterwards use it. Returns the new
    /// behaviour version.
    #[napi(ts_args_type = "pid: number, handler: (msg: Message) => unknown")]
    pub fn hot_swap(&self, env: Env, pid: PidArg, handler: Handler) -> Result<f64> {
        let lane = lock(&self.lanes).get(&pid.0).and_then(Weak::upgrade);
        let Some(lane) = lane else {
            let e = if self.rt.is_alive(pid.0) {
                ActorError::NotSwappable(pid.0)
            } else {
                ActorError::NoProcess(pid.0)
            };
            return Err(actor_error(&env, &e));
        };
        let behavior = self
            .disp
            .behavior(lane, self.disp.handler(&env, handler.0)?);
        self.rt
            .hot_swap_behavior(pid.0, behavior)
            .map(|v| v as f64)
            .map_err(|e| actor_error(&env, &e))
    }

    /// The version of a push actor's current handler (the first is 1), or `null`.
    #[napi(ts_args_type = "pid: number")]
    pub fn behavior_version(&self, pid: PidArg) -> Option<f64> {
        self.rt.behavior_version(pid.0).map(|v| v as f64)
    }

    /// Goes back `steps` handlers (default 1); returns the version now current.
    #[napi(ts_args_type = "pid: number, steps?: number")]
    pub fn rollback_behavior(&self, env: Env, pid: PidArg, steps: Option<Count>) -> Result<f64> {
        let steps = steps.map_or(1, |s| s.0 as usize);
        self.rt
            .rollback_behavior(pid.0, steps)
            .map(|v| v as f64)
            .map_err(|e| actor_error(&env, &e))
    }

    /// Sends `data` to `pid` once after `ms` milliseconds; returns the timer id.
    #[napi(ts_args_type = "pid: number, ms: number, data: Buffer | Uint8Array")]
    pub fn send_after(&self, env: Env, pid: PidArg, ms: Count, data: Payload) -> f64 {
        self.disp.keep_alive(&env, Some(pid.0));
        self.rt.send_after(pid.0, ms.0, data.0) as f64
    }

    /// Sends `data` to `pid` every `ms` milliseconds (the first after one interval).
    #[napi(ts_args_type = "pid: number, ms: number, data: Buffer | Uint8Array")]
    pub fn send_interval(&self, env: Env, pid: PidArg, ms: Count, data: Payload) -> f64 {
        self.disp.keep_alive(&env, Some(pid.0));
        self.rt.send_interval(pid.0, ms.0, data.0) as f64
    }

    /// Cancels a timer; `true` only if it was still pending.
    #[napi(ts_args_type = "timerId: number")]
    pub fn cancel_timer(&self, timer_id: Count) -> bool {
        self.rt.cancel_timer(timer_id.0)
    }

    // ----- names and paths ---------------------------------------------------------------

    /// Registers `name` for `pid`; a name held by a live actor throws `ERR_IRIS_NAME_TAKEN`.
    #[napi(ts_args_type = "name: string, pid: number")]
    pub fn register(&self, env: Env, name: String, pid: PidArg) -> Result<()> {
        self.rt
            .register(&name, pid.0)
            .map_err(|e| actor_error(&env, &e))
    }

    /// Removes a name; returns the PID it named, or `null`.
    #[napi]
    pub fn unregister(&self, name: String) -> Option<f64> {
        self.rt.unregister(&name).map(|p| p as f64)
    }

    /// The PID registered under `name`, or `null`.
    #[napi]
    pub fn whereis(&self, name: String) -> Option<f64> {
        self.rt.whereis(&name).map(|p| p as f64)
    }

    /// Same as `whereis`.
    #[napi]
    pub fn resolve(&self, name: String) -> Option<f64> {
        self.rt.resolve(&name).map(|p| p as f64)
    }

    /// Sends to the actor registered under `name`; `false` if there is none (or it refuses).
    #[napi(ts_args_type = "name: string, data: Buffer | Uint8Array")]
    pub fn send_named(&self, env: Env, name: String, data: Payload) -> bool {
        match self.rt.whereis(&name) {
            Some(pid) => self.send(env, PidArg(pid), data),
            None => false,
        }
    }

    /// Registers a path such as `/svc/payment/processor`; a malformed one throws
    /// `ERR_IRIS_INVALID_PATH`.
    #[napi(ts_args_type = "path: string, pid: number")]
    pub fn register_path(&self, env: Env, path: String, pid: PidArg) -> Result<()> {
        self.rt
            .register_path(&path, pid.0)
            .map_err(|e| actor_error(&env, &e))
    }

    /// Removes a path; returns the PID it named, or `null`.
    #[napi]
    pub fn unregister_path(&self, path: String) -> Option<f64> {
        self.rt.unregister_path(&path).map(|p| p as f64)
    }

    /// The PID registered under `path`, or `null`.
    #[napi]
    pub fn whereis_path(&self, path: String) -> Option<f64> {
        self.rt.whereis_path(&path).map(|p| p as f64)
    }

    /// Every registration below `prefix`, sorted by path.
    #[napi]
    pub fn list_children(&self, env: Env, prefix: String) -> Result<Vec<PathEntry>> {
        self.rt
            .list_children(&prefix)
            .map(entries)
            .map_err(|e| actor_error(&env, &e))
    }

    /// The registrations exactly one level below `prefix`, sorted by path.
    #[napi]
    pub fn list_children_direct(&self, env: Env, prefix: String) -> Result<Vec<PathEntry>> {
        self.rt
            .list_children_direct(&prefix)
            .map(entries)
            .map_err(|e| actor_error(&env, &e))
    }

    /// Watches the actors one level below `prefix` under the root supervisor; returns them.
    #[napi]
    pub fn watch_path(&self, env: Env, prefix: String) -> Result<Vec<f64>> {
        self.rt
            .watch_path(&prefix)
            .map(pids)
            .map_err(|e| actor_error(&env, &e))
    }

    // ----- links and monitors ------------------------------------------------------------

    /// Links two actors: when one exits abnormally the other is killed, unless it traps exits
    /// and gets an `EXIT` system message instead.
    #[napi(ts_args_type = "a: number, b: number")]
    pub fn link(&self, env: Env, a: PidArg, b: PidArg) -> Result<()> {
        self.rt.link(a.0, b.0).map_err(|e| actor_error(&env, &e))
    }

    /// Removes a link; `true` if there was one.
    #[napi(ts_args_type = "a: number, b: number")]
    pub fn unlink(&self, a: PidArg, b: PidArg) -> bool {
        self.rt.unlink(a.0, b.0)
    }

    /// Makes `pid` receive linked actors' exits as `EXIT` system messages instead of dying.
    #[napi(ts_args_type = "pid: number, trap?: boolean")]
    pub fn trap_exit(&self, env: Env, pid: PidArg, trap: Option<bool>) -> Result<()> {
        self.rt
            .trap_exit(pid.0, trap.unwrap_or(true))
            .map_err(|e| actor_error(&env, &e))
    }

    /// Monitors `target` for `watcher`, which gets a `DOWN` system message when it exits
    /// (at once, reason `"noproc"`, if it is gone). Returns the monitor reference.
    #[napi(ts_args_type = "watcher: number, target: number")]
    pub fn monitor(&self, env: Env, watcher: PidArg, target: PidArg) -> Result<f64> {
        self.rt
            .monitor(watcher.0, target.0)
            .map(|r| r as f64)
            .map_err(|e| actor_error(&env, &e))
    }

    /// Removes a monitor; `true` if it had not fired yet.
    #[napi(ts_args_type = "monitorRef: number")]
    pub fn demonitor(&self, monitor_ref: Count) -> bool {
        self.rt.demonitor(monitor_ref.0)
    }

    // ----- supervision -------------------------------------------------------------------

    /// Watches `pid` under the root supervisor (no restarts: there is no factory).
    /// `strategy`: `"restartone"` (default), `"restartall"` or `"restforone"`.
    #[napi(ts_args_type = "pid: number, strategy?: StrategyName")]
    pub fn watch(&self, env: Env, pid: PidArg, strategy: Option<String>) -> Result<()> {
        let s = strategy_of(&env, strategy)?;
        self.rt.watch(pid.0, s).map_err(|e| actor_error(&env, &e))
    }

    /// Supervises `pid` under the root supervisor; after a failure `factory()` runs on this
    /// thread and returns the replacement's PID (it is never called at registration).
    #[napi(ts_args_type = "pid: number, factory: () => number, strategy?: StrategyName")]
    pub fn supervise_with_factory(
        &self,
        env: Env,
        pid: PidArg,
        factory: Handler,
        strategy: Option<String>,
    ) -> Result<()> {
        let s = strategy_of(&env, strategy)?;
        self.rt
            .supervise_with_factory(pid.0, self.factory(factory), s)
            .map_err(|e| actor_error(&env, &e))
    }

    /// Live children of the root supervisor.
    #[napi]
    pub fn child_pids(&self) -> Vec<f64> {
        pids(self.rt.child_pids())
    }

    /// Number of live children of the root supervisor.
    #[napi]
    pub fn children_count(&self) -> f64 {
        self.rt.children_count() as f64
    }

    /// Creates (or finds) the supervisor of a path prefix; returns its PID.
    #[napi]
    pub fn create_path_supervisor(&self, env: Env, path: String) -> Result<f64> {
        self.rt
            .create_path_supervisor(&path)
            .map(|p| p as f64)
            .map_err(|e| actor_error(&env, &e))
    }

    /// Watches `pid` under the supervisor of `path` (`ERR_IRIS_NO_SUPERVISOR` if none).
    #[napi(ts_args_type = "path: string, pid: number")]
    pub fn path_supervisor_watch(&self, env: Env, path: String, pid: PidArg) -> Result<()> {
        self.rt
            .path_supervisor_watch(&path, pid.0)
            .map_err(|e| actor_error(&env, &e))
    }

    /// Supervises `pid` under the supervisor of `path`, restarting it with `factory()`.
    #[napi(
        ts_args_type = "path: string, pid: number, factory: () => number, strategy?: StrategyName"
    )]
    pub fn path_supervise_with_factory(
        &self,
        env: Env,
        path: String,
        pid: PidArg,
        factory: Handler,
        strategy: Option<String>,
    ) -> Result<()> {
        let s = strategy_of(&env, strategy)?;
        self.rt
            .path_supervise_with_factory(&path, pid.0, self.factory(factory), s)
            .map_err(|e| actor_error(&env, &e))
    }

    /// Live children of the supervisor of `path` (empty if there is none).
    #[napi]
    pub fn path_supervisor_children(&self, path: String) -> Vec<f64> {
        pids(self.rt.path_supervisor_children(&path))
    }

    /// Removes the supervisor of `path` (its children live on); `false` if there was none.
    #[napi]
    pub fn remove_path_supervisor(&self, path: String) -> bool {
        self.rt.remove_path_supervisor(&path)
    }

    /// Spawns an observed actor registered under `path`.
    #[napi(ts_args_type = "budget: number, path: string")]
    pub fn spawn_with_path_observed(&self, env: Env, budget: Count, path: String) -> Result<f64> {
        self.rt
            .spawn_with_path_observed(budget_of(Some(budget)), &path)
            .map(|p| p as f64)
            .map_err(|e| actor_error(&env, &e))
    }

    // ----- the mesh ----------------------------------------------------------------------

    /// Starts accepting mesh connections on `addr` (default `"127.0.0.1:0"`, a free port);
    /// resolves with the bound address. A bind failure rejects with `ERR_IRIS_BIND`.
    /// A listening node keeps the event loop alive until `closeListener` or `close`.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn listen<'env>(
        &self,
        env: &'env Env,
        addr: Option<String>,
    ) -> Result<PromiseRaw<'env, String>> {
        let addr = addr.unwrap_or_else(|| "127.0.0.1:0".to_owned());
        // Binding is immediate; the Promise is for symmetry with the other mesh calls.
        match self.rt.listen(&addr) {
            Ok(a) => {
                self.disp.keep_alive(env, None);
                PromiseRaw::resolve(env, a.to_string())
            }
            Err(e) => {
                let err = js::coded(env.raw(), Kind::Error, mesh_code(&e), &e.to_string());
                PromiseRaw::reject(env, napi::JsError::from(err))
            }
        }
    }

    /// Stops accepting mesh connections; `false` if this node was not listening.
    #[napi]
    pub fn close_listener(&self) -> bool {
        self.rt.close_listener()
    }

    /// Resolves `name` on the node at `addr`: a local proxy PID (sends to it go to the remote
    /// actor), or `null` if the name is not registered there.
    #[napi(ts_return_type = "Promise<number | null>")]
    pub async fn resolve_remote(&self, addr: String, name: String) -> Result<Outcome<Option<f64>>> {
        let r = self.rt.resolve_remote(&addr, &name).await;
        Ok(mesh(r, |p| p.map(|p| p as f64)))
    }

    /// Sends to `pid` on the node at `addr`: a proxy from `resolveRemote` (delivered like any
    /// local send, in order) or the remote node's own PID number. `false` when the node
    /// cannot be reached. The first send to a node not yet connected waits for the
    /// connection (bounded by the mesh's I/O timeout); `resolveRemote` first avoids that.
    #[napi(ts_args_type = "addr: string, pid: number, data: Buffer | Uint8Array")]
    pub fn send_remote(&self, env: Env, addr: String, pid: PidArg, data: Payload) -> bool {
        self.disp.keep_alive(&env, Some(pid.0));
        self.rt.send_remote(&addr, pid.0, data.0)
    }

    /// Watches the actor `pid` on the node at `addr`; resolves with its local proxy, which
    /// exits with the remote actor's reason (or `Disconnect`), so `monitor`/`link` on the
    /// proxy observe the remote actor.
    #[napi(
        ts_args_type = "addr: string, pid: number",
        ts_return_type = "Promise<number>"
    )]
    pub async fn monitor_remote(&self, addr: String, pid: PidArg) -> Result<Outcome<f64>> {
        let r = self.rt.monitor_remote(&addr, pid.0).await;
        Ok(mesh(r, |p| p as f64))
    }

    /// Links the local actor `local` with `pid` on the node at `addr`; resolves with the
    /// proxy.
    #[napi(
        ts_args_type = "local: number, addr: string, pid: number",
        ts_return_type = "Promise<number>"
    )]
    pub async fn link_remote(
        &self,
        local: PidArg,
        addr: String,
        pid: PidArg,
    ) -> Result<Outcome<f64>> {
        let r = self.rt.link_remote(local.0, &addr, pid.0).await;
        Ok(mesh(r, |p| p as f64))
    }

    /// `true` if the node at `addr` completes a handshake and answers a ping within
    /// `timeoutMs` (default 1000).
    #[napi(ts_args_type = "addr: string, timeoutMs?: number")]
    pub async fn is_node_up(&self, addr: String, timeout_ms: Option<Count>) -> Result<bool> {
        let rt = self.rt.clone();
        let t = Duration::from_millis(timeout_ms.map_or(1000, |c| c.0));
        Ok(tokio::task::spawn_blocking(move || rt.is_node_up(&addr, t))
            .await
            .unwrap_or(false))
    }

    /// The address this node listens on, or `null`.
    #[napi]
    pub fn listen_addr(&self) -> Option<String> {
        self.rt.listen_addr().map(|a| a.to_string())
    }

    /// How long, in microseconds, the JS thread polls for the answers of its handlers' sends
    /// before it returns to the event loop, and the runtime's idle threads poll for work
    /// before they sleep (default 50). Polling spares each hop of a request/response chain
    /// a thread wake-up (a ping-pong runs several times faster) at the price of up to this
    /// long of a core after each burst of messages; 0 turns it off. The JS thread never
    /// stays in one drain longer than 2 ms, whatever this says.
    #[napi(ts_args_type = "microseconds: number")]
    pub fn set_linger(&self, microseconds: Count) {
        // The JS side reads the runtime's setting.
        self.rt.set_linger(Duration::from_micros(microseconds.0));
    }

    /// The current `setLinger` setting, in microseconds.
    #[napi]
    pub fn linger(&self) -> f64 {
        self.rt.linger().as_micros() as f64
    }

    /// Number of live actors.
    #[napi]
    pub fn actor_count(&self) -> f64 {
        self.rt.actor_count() as f64
    }

    /// Stops every actor (`Shutdown`) and cancels every timer, without waiting; new spawns
    /// fail afterwards. Safe to call twice.
    #[napi]
    pub fn close(&self, env: Env) {
        self.disp.stopped();
        self.disp.release(&env);
        if !self.closed.swap(true, Ordering::AcqRel) {
            // Waiting here would block the JS thread that pending handlers need.
            self.rt.close_listener();
            self.rt.shutdown_timeout(Duration::ZERO);
        }
    }

    /// Like `close`, then resolves once every actor has exited (or after 5 s).
    #[napi]
    pub async fn shutdown(&self) -> Result<bool> {
        self.closed.store(true, Ordering::Release);
        // The loop is let go once the dispatcher sees the runtime closed.
        self.disp.mark_closed();
        self.rt.close_listener();
        self.rt.shutdown_timeout(Duration::ZERO);
        let rt = self.rt.clone();
        let waited = tokio::time::timeout(Duration::from_secs(5), async move {
            while rt.actor_count() > 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        Ok(waited.await.is_ok())
    }

    /// `true` once `close` or `shutdown` was called.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

enum MbState {
    Pending(oneshot::Receiver<Receiver>),
    Ready(Receiver),
    Closed,
}

/// The mailbox of a pull actor (`spawnWithMailbox`).
#[napi]
pub struct Mailbox {
    pid: Pid,
    state: Arc<tokio::sync::Mutex<MbState>>,
    /// Messages passed over by `selectiveRecv`, in arrival order; `recv` returns them first.
    stash: Arc<Mutex<VecDeque<Message>>>,
    disp: Arc<Dispatcher>,
    rt: Runtime,
}

type Resolve = Box<dyn FnOnce(Env) -> Result<Received> + Send>;

/// Asks `matcher(msg)` on the JS thread.
async fn ask_matcher(
    disp: &Dispatcher,
    matcher: &Arc<JsFn>,
    msg: &Message,
) -> std::result::Result<bool, String> {
    let (tx, rx) = oneshot::channel();
    let (m, f) = (msg.clone(), matcher.clone());
    disp.push(Job::Call(Box::new(move |env, _| {
        let _ = tx.send(matches(env, &f, &m));
    })));
    rx.await
        .unwrap_or_else(|_| Err("the runtime was closed".to_owned()))
}

/// Runs `matcher(msg)` here, on the JS thread.
fn matches(env: &Env, f: &JsFn, msg: &Message) -> std::result::Result<bool, String> {
    let v = js::message_value(env.raw(), msg).map_err(|e| e.to_string())?;
    match call(env, f, v).map_err(|e| e.to_string())? {
        Called::Returned(r) => Ok(js::truthy(env.raw(), r)),
        Called::Threw(why) => Err(why),
    }
}

async fn ready(st: &mut MbState) {
    if let MbState::Pending(o) = st {
        *st = match o.await {
            Ok(rx) => MbState::Ready(rx),
            Err(_) => MbState::Closed,
        };
    }
}

#[napi]
impl Mailbox {
    /// The PID of the actor this mailbox belongs to.
    #[napi(getter)]
    pub fn pid(&self) -> f64 {
        self.pid as f64
    }

    /// The next message (system messages first): a Buffer (with `.data`), a `{ system }`
    /// object, or `null` once `timeoutSec` passes. Rejects with `ERR_IRIS_MAILBOX_CLOSED`
    /// when the actor was stopped.
    #[napi(
        ts_args_type = "timeoutSec?: number | null",
        ts_return_type = "Promise<Message | null>"
    )]
    pub async fn recv(&self, timeout_sec: Option<Seconds>) -> Result<Received> {
        let mut st = self.state.clone().lock_owned().await;
        if let Some(m) = lock(&self.stash).pop_front() {
            return Ok(Received::Msg(m));
        }
        ready(&mut st).await;
        let MbState::Ready(rx) = &mut *st else {
            return Ok(Received::Closed);
        };
        let got = match timeout_sec {
            None => rx.recv().await,
            Some(t) => match tokio::time::timeout(t.0, rx.recv()).await {
                Ok(m) => m,
                Err(_) => return Ok(Received::Timeout),
            },
        };
        Ok(got.map_or(Received::Closed, Received::Msg))
    }

    /// The next message without waiting, or `null`.
    #[napi(ts_return_type = "Message | null")]
    pub fn try_recv(&self) -> Received {
        let Ok(mut st) = self.state.try_lock() else {
            return Received::Timeout;
        };
        if let Some(m) = lock(&self.stash).pop_front() {
            return Received::Msg(m);
        }
        if let MbState::Pending(o) = &mut *st {
            match o.try_recv() {
                Ok(rx) => *st = MbState::Ready(rx),
                Err(oneshot::error::TryRecvError::Empty) => return Received::Timeout,
                Err(oneshot::error::TryRecvError::Closed) => *st = MbState::Closed,
            }
        }
        match &mut *st {
            MbState::Ready(rx) => match rx.try_recv() {
                Ok(m) => Received::Msg(m),
                Err(TryRecvError::Empty) => Received::Timeout,
                Err(_) => Received::Closed,
            },
            _ => Received::Closed,
        }
    }

    /// The first message, passed over or new, for which `matcher(msg)` is truthy; the others
    /// keep their order for later `recv` calls. `null` once `timeoutSec` passes. A matcher
    /// that throws rejects the Promise.
    #[napi(
        ts_args_type = "matcher: (msg: Message) => unknown, timeoutSec?: number | null",
        ts_return_type = "Promise<Message | null>"
    )]
    pub fn selective_recv<'env>(
        &self,
        env: &'env Env,
        matcher: Handler,
        timeout_sec: Option<Seconds>,
    ) -> Result<Object<'env>> {
        let matcher = Arc::new(matcher.0);
        let (deferred, promise) = env.create_deferred::<Received, Resolve>()?;
        // First the messages passed over before, here on the JS thread.
        let stashed: Vec<Message> = lock(&self.stash).iter().cloned().collect();
        for (i, m) in stashed.into_iter().enumerate() {
            match matches(env, &matcher, &m) {
                Ok(true) => {
                    lock(&self.stash).remove(i);
                    deferred.resolve(Box::new(move |_| Ok(Received::Msg(m))));
                    return Ok(promise);
                }
                Ok(false) => {}
                Err(why) => {
                    deferred.reject(napi::Error::from_reason(why));
                    return Ok(promise);
                }
            }
        }
        let (state, stash, disp) = (self.state.clone(), self.stash.clone(), self.disp.clone());
        let deadline = timeout_sec.map(|t| tokio::time::Instant::now() + t.0);
        self.rt.handle().spawn(async move {
            // Holding the receiver: concurrent `recv` calls wait for this one.
            let mut st = state.lock_owned().await;
            ready(&mut st).await;
            let outcome = loop {
                let MbState::Ready(rx) = &mut *st else {
                    break Ok(Received::Closed);
                };
                let next = match deadline {
                    None => rx.recv().await,
                    Some(d) => match tokio::time::timeout_at(d, rx.recv()).await {
                        Ok(m) => m,
                        Err(_) => break Ok(Received::Timeout),
                    },
                };
                let Some(m) = next else {
                    break Ok(Received::Closed);
                };
                match ask_matcher(&disp, &matcher, &m).await {
                    Ok(true) => break Ok(Received::Msg(m)),
                    Ok(false) => lock(&stash).push_back(m),
                    Err(why) => break Err(why),
                }
            };
            match outcome {
                Ok(r) => deferred.resolve(Box::new(move |_| Ok(r))),
                Err(why) => deferred.reject(napi::Error::from_reason(why)),
            }
        });
        Ok(promise)
    }

    /// Messages passed over by `selectiveRecv` and not yet received.
    #[napi(getter)]
    pub fn stashed(&self) -> f64 {
        lock(&self.stash).len() as f64
    }
}

/// The version of the binding (the workspace version).
#[napi]
#[cfg_attr(test, allow(dead_code))]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

impl NodeRuntime {
    /// `spawn(handler, budget)` with the handler as a raw JS function: actors spawned with
    /// the same function share its handler slot.
    pub(crate) fn spawn_value(
        &self,
        env: &Env,
        handler: sys::napi_value,
        budget: Option<Count>,
    ) -> Result<f64> {
        let opts = SpawnOptions {
            budget: budget_of(budget),
            ..SpawnOptions::default()
        };
        self.spawn_push(env, self.disp.handler_for(env, handler)?, opts, None)
    }

    pub(crate) fn send_bytes(&self, env: &Env, pid: PidArg, data: Payload) -> bool {
        self.disp.keep_alive(env, Some(pid.0));
        let msg = Message::User(data.0);
        if self.waiting_n.load(Ordering::Acquire) > 0 {
            let mut waiting = lock(&self.waiting);
            if let Some(queue) = waiting.get_mut(&pid.0) {
                queue.push_back(msg);
                return true;
            }
        }
        let rt = self.rt.clone();
        let mut fut = Box::pin(async move { rt.send_async(pid.0, msg).await });
        match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(r) => r.is_ok(),
            Poll::Pending => {
                lock(&self.waiting).insert(pid.0, VecDeque::new());
                self.waiting_n.fetch_add(1, Ordering::AcqRel);
                let (rt, waiting, waiting_n) = (
                    self.rt.clone(),
                    self.waiting.clone(),
                    self.waiting_n.clone(),
                );
                self.rt.handle().spawn(async move {
                    let _ = fut.await;
                    loop {
                        let next = {
                            let mut w = lock(&waiting);
                            let next = w.get_mut(&pid.0).and_then(VecDeque::pop_front);
                            if next.is_none() {
                                w.remove(&pid.0);
                                waiting_n.fetch_sub(1, Ordering::AcqRel);
                            }
                            next
                        };
                        let Some(m) = next else { return };
                        let _ = rt.send_async(pid.0, m).await;
                    }
                });
                true
            }
        }
    }
}

/// Hangs `NodeRuntime.STOP` on the class and installs the fast `send` and `spawn`.
#[napi(module_exports)]
#[cfg_attr(test, allow(dead_code))]
pub fn init(exports: Object, env: Env) -> Result<()> {
    let class: napi::Unknown = exports.get_named_property("NodeRuntime")?;
    js::install_stop(env.raw(), class.raw())?;
    crate::fast::install(&env, class.raw())
}
