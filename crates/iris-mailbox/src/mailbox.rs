//! The mailbox: a system lane that overtakes a user lane, an optional bound with an overflow
//! policy, and a stash for selective receive.
//!
//! One mutex guards the shared state; producers hold it for a push (a few nanoseconds: a
//! `VecDeque` push and a waker check). An *unbounded* mailbox also has a consumer-side buffer:
//! when it runs dry the consumer swaps the whole user lane into it in O(1) and then pops from
//! it without meeting the producers on their lock, so the shared lock is taken about once per
//! message by producers and once per *lane* by the consumer, never held while the consumer
//! copies, and the two buffers trade places so neither reallocates in a steady stream. A
//! bounded mailbox has no such buffer: its capacity must be checked against what is queued
//! atomically with every push. An atomic count of the system lane and the stash lets the
//! consumer skip the shared lock while only user messages wait. Wakers are only touched when
//! the consumer (or a blocked producer) is actually parked.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use slab::Slab;

use crate::error::{Closed, MailboxError, RecvError, TryRecvError};

/// What a bounded mailbox does with a message that arrives while it is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum OverflowPolicy {
    /// Reject the new message (the default).
    #[default]
    DropNew,
    /// Evict the oldest queued user message and queue the new one: exactly one message is lost.
    DropOld,
    /// Hand the message to another mailbox (identified by the caller's id, e.g. a PID).
    Redirect(u64),
    /// Hand a copy to another mailbox and wait for room for the original, as [`OverflowPolicy::Block`].
    Spill(u64),
    /// Make the sender wait until there is room.
    Block,
}

/// The outcome of [`Mailbox::offer`].
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a message that was not queued is handed back here"]
pub enum Offer<M> {
    /// The message was queued.
    Queued,
    /// The message was queued after evicting the oldest user message ([`OverflowPolicy::DropOld`]).
    Evicted(M),
    /// The mailbox is full and the policy is [`OverflowPolicy::DropNew`].
    Rejected(M),
    /// The mailbox is full; the policy asks to deliver the message to this target instead.
    Redirect(u64, M),
    /// The mailbox is full; the policy asks to give a copy to this target and then wait for room
    /// with the original ([`Mailbox::push_wait`]).
    Spill(u64, M),
    /// The mailbox is full and the policy is [`OverflowPolicy::Block`]: wait with
    /// [`Mailbox::push_wait`] or [`Mailbox::push_wait_blocking`].
    MustWait(M),
    /// The mailbox is closed.
    Closed(M),
}

struct Stashed<M> {
    msg: M,
    user: bool,
}

struct State<M> {
    system: VecDeque<M>,
    user: VecDeque<M>,
    capacity: Option<NonZeroUsize>,
    policy: OverflowPolicy,
    closed: bool,
    rx_waker: Option<Waker>,
    /// The selective-receive stash and the blocked senders, boxed on first use: most
    /// mailboxes never have either, and a mailbox is paid for by every actor.
    cold: Option<Box<Cold<M>>>,
}

/// The parts of a mailbox's state that most mailboxes never use.
struct Cold<M> {
    stash: VecDeque<Stashed<M>>,
    /// User messages in `stash` (they count towards `len`).
    stash_user: usize,
    tx_waiters: Slab<(u64, Waker)>,
    next_waiter: u64,
}

impl<M> Default for Cold<M> {
    fn default() -> Self {
        Cold {
            stash: VecDeque::new(),
            stash_user: 0,
            tx_waiters: Slab::new(),
            next_waiter: 0,
        }
    }
}

impl<M> State<M> {
    /// The cold parts, boxed now if they were not yet.
    fn cold(&mut self) -> &mut Cold<M> {
        self.cold.get_or_insert_with(Box::default)
    }

    fn stash_len(&self) -> usize {
        self.cold.as_ref().map_or(0, |c| c.stash.len())
    }

    fn stash_user(&self) -> usize {
        self.cold.as_ref().map_or(0, |c| c.stash_user)
    }

    /// The oldest stashed message, counted out of `stash_user` if it is a user message.
    fn pop_stashed(&mut self) -> Option<Stashed<M>> {
        let cold = self.cold.as_mut()?;
        let s = cold.stash.pop_front()?;
        if s.user {
            cold.stash_user -= 1;
        }
        Some(s)
    }

    /// Forgets a blocked sender's registration.
    fn forget(&mut self, key: WaiterKey) {
        if let Some(c) = self.cold.as_mut() {
            forget(&mut c.tx_waiters, key);
        }
    }
}

/// A mailbox with a system lane and a user lane.
///
/// Any number of producers may push; one consumer receives (the receive methods take `&self`
/// for convenience, but two consumers racing would steal each other's wake-ups).
pub struct Mailbox<M> {
    state: Mutex<State<M>>,
    /// Mirrors `State::closed` so senders can fail fast without the lock.
    closed: AtomicBool,
    /// The consumer's buffer of an unbounded mailbox: user messages older than any in
    /// `State::user`. Only the consumer (and `close`, `len`) take this lock.
    rx: Option<Mutex<VecDeque<M>>>,
    /// Messages in `State::system` and `State::stash`, mirrored after every change, so the
    /// consumer knows without the shared lock that no message may overtake its buffer.
    urgent: AtomicUsize,
    /// `true` while `State::user` holds a message, mirrored like `urgent`.
    lane: AtomicBool,
    /// Messages in the consumer's buffer (`rx`), published by [`Rx`] whenever it changes.
    buffered: AtomicUsize,
}

/// The consumer's buffer, locked. Its length is published to `Mailbox::buffered` when the
/// lock is released, and by [`Rx::publish`] before the lane's flag is cleared after a refill,
/// so [`Mailbox::has_messages`] never sees a message in neither place.
struct Rx<'a, M> {
    buf: MutexGuard<'a, VecDeque<M>>,
    len: &'a AtomicUsize,
}

impl<M> Rx<'_, M> {
    /// Publishes the length; stores only on a change, so a consumer that keeps up with its
    /// producers does not keep writing a line they read.
    fn publish(&self) {
        let len = self.buf.len();
        if self.len.load(Ordering::Relaxed) != len {
            self.len.store(len, Ordering::SeqCst);
        }
    }
}

impl<M> std::ops::Deref for Rx<'_, M> {
    type Target = VecDeque<M>;
    fn deref(&self) -> &VecDeque<M> {
        &self.buf
    }
}

impl<M> std::ops::DerefMut for Rx<'_, M> {
    fn deref_mut(&mut self) -> &mut VecDeque<M> {
        &mut self.buf
    }
}

impl<M> Drop for Rx<'_, M> {
    fn drop(&mut self) {
        // Before the guard (a field) unlocks.
        self.publish();
    }
}

impl<M> Default for Mailbox<M> {
    fn default() -> Self {
        Mailbox::unbounded()
    }
}

impl<M> std::fmt::Debug for Mailbox<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox")
            .field("len", &self.len())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// Moves up to `n` messages from the front of `lane` to the back of `out`; the whole lane
/// without copying when `out` is empty.
fn take<M>(lane: &mut VecDeque<M>, n: usize, out: &mut VecDeque<M>) -> usize {
    let n = n.min(lane.len());
    // A swap leaves `out`'s allocation with the mailbox; only when it is not much bigger than
    // the lane's own, so a caller's big batch buffer never stays behind in a quiet mailbox
    // (a few messages are copied instead).
    if n > 0 && n == lane.len() && out.is_empty() && out.capacity() <= 2 * lane.capacity().max(8) {
        std::mem::swap(out, lane);
    } else {
        out.extend(lane.drain(..n));
    }
    n
}

/// What the consumer's lock-free path found.
enum Buffered<M> {
    /// The oldest user message.
    Got(M),
    /// Nothing waits (seen under the lock, with no system or stashed message either).
    Empty,
    /// Ask the locked path: a bounded mailbox, a system or stashed message first, or closed.
    Slow,
}

fn wake_all(waiters: &mut Slab<(u64, Waker)>) -> Vec<Waker> {
    waiters.drain().map(|(_, w)| w).collect()
}

/// A blocked sender's registration: the slab key plus a unique id, because keys are reused
/// once the waiters are drained and woken.
type WaiterKey = (usize, u64);

fn forget(waiters: &mut Slab<(u64, Waker)>, key: WaiterKey) {
    if waiters.get(key.0).is_some_and(|(id, _)| *id == key.1) {
        waiters.remove(key.0);
    }
}

impl<M> Mailbox<M> {
    /// An unbounded mailbox.
    pub fn unbounded() -> Mailbox<M> {
        Mailbox::with_capacity(None, VecDeque::new())
    }

    /// An unbounded mailbox whose lane starts in `buffer`'s allocation (cleared first), so a
    /// recycled buffer (see [`Mailbox::reclaim`]) spares the first send an allocation.
    pub fn unbounded_in(mut buffer: VecDeque<M>) -> Mailbox<M> {
        buffer.clear();
        Mailbox::with_capacity(None, buffer)
    }

    /// A mailbox that holds at most `capacity` user messages; the policy starts as
    /// [`OverflowPolicy::DropNew`].
    pub fn bounded(capacity: usize) -> Result<Mailbox<M>, MailboxError> {
        let capacity = NonZeroUsize::new(capacity).ok_or(MailboxError::ZeroCapacity)?;
        Ok(Mailbox::with_capacity(Some(capacity), VecDeque::new()))
    }

    fn with_capacity(capacity: Option<NonZeroUsize>, user: VecDeque<M>) -> Mailbox<M> {
        Mailbox {
            rx: capacity.is_none().then(|| Mutex::new(VecDeque::new())),
            urgent: AtomicUsize::new(0),
            lane: AtomicBool::new(false),
            buffered: AtomicUsize::new(0),
            state: Mutex::new(State {
                system: VecDeque::new(),
                user,
                capacity,
                policy: OverflowPolicy::DropNew,
                closed: false,
                rx_waker: None,
                cold: None,
            }),
            closed: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<M>> {
        // A panic while holding this lock cannot leave the queues half-updated (every update
        // is a single VecDeque operation), so a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The consumer's buffer (unbounded mailboxes only). Lock order: `rx` before `state`.
    fn rx(&self) -> Option<Rx<'_, M>> {
        Some(Rx {
            buf: self.rx.as_ref()?.lock().unwrap_or_else(|e| e.into_inner()),
            len: &self.buffered,
        })
    }

    /// Publishes what the lock-free checks read: the size of the system lane and stash
    /// (`urgent`) and whether the user lane holds a message (`lane`). Call under the lock
    /// after changing any of them. The stores are sequentially consistent and made only on a
    /// change: an actor going idle sets its flag and then asks [`Mailbox::has_messages`],
    /// while a sender queues and then reads that flag, so one of the two always sees the other.
    #[inline]
    fn sync(&self, st: &State<M>) {
        let urgent = st.system.len() + st.stash_len();
        if self.urgent.load(Ordering::Relaxed) != urgent {
            self.urgent.store(urgent, Ordering::SeqCst);
        }
        let lane = !st.user.is_empty();
        if self.lane.load(Ordering::Relaxed) != lane {
            self.lane.store(lane, Ordering::SeqCst);
        }
    }

    /// The shared state, locked, when nothing but user messages can wait (no system or
    /// stashed message, not closed): the condition of the consumer's fast receive paths,
    /// checked under the lock. `None`: take the general path.
    #[inline]
    fn lock_user_lane(&self) -> Option<MutexGuard<'_, State<M>>> {
        let st = self.lock();
        (st.system.is_empty() && st.stash_len() == 0 && !st.closed).then_some(st)
    }

    /// Refills the consumer's buffer from the lane to `want` messages (the whole lane in one
    /// swap when the buffer is empty; its messages are older than the lane's) and publishes
    /// the buffer's length. Call under the state lock, before the `sync` that clears the lane's
    /// flag, so [`Mailbox::has_messages`] never sees a message in neither place.
    #[inline]
    fn refill(st: &mut State<M>, rx: &mut Rx<'_, M>, want: usize) {
        if rx.is_empty() {
            std::mem::swap(&mut **rx, &mut st.user);
        } else if rx.len() < want {
            let short = want - rx.len();
            take(&mut st.user, short, rx);
        }
        rx.publish();
    }

    /// Pops the oldest user message of an unbounded mailbox without the shared lock when the
    /// buffer has one; refills the buffer from the lane (one swap) when it is empty.
    fn pop_buffered(&self) -> Buffered<M> {
        if self.urgent.load(Ordering::Acquire) > 0 || self.is_closed() {
            return Buffered::Slow;
        }
        let Some(mut rx) = self.rx() else {
            return Buffered::Slow;
        };
        if let Some(m) = rx.pop_front() {
            return Buffered::Got(m);
        }
        let Some(mut st) = self.lock_user_lane() else {
            return Buffered::Slow;
        };
        Self::refill(&mut st, &mut rx, 1);
        self.sync(&st);
        drop(st);
        rx.pop_front().map_or(Buffered::Empty, Buffered::Got)
    }

    /// The capacity of a bounded mailbox.
    pub fn capacity(&self) -> Option<usize> {
        self.lock().capacity.map(NonZeroUsize::get)
    }

    /// The current overflow policy.
    pub fn policy(&self) -> OverflowPolicy {
        self.lock().policy
    }

    /// Changes the overflow policy; an unbounded mailbox never overflows, so it refuses.
    pub fn set_policy(&self, policy: OverflowPolicy) -> Result<(), MailboxError> {
        let mut st = self.lock();
        if st.capacity.is_none() {
            return Err(MailboxError::Unbounded);
        }
        st.policy = policy;
        Ok(())
    }

    /// Queued user messages, the selective-receive stash included.
    pub fn len(&self) -> usize {
        let buffered = self.rx().map_or(0, |rx| rx.len());
        let st = self.lock();
        st.user.len() + st.stash_user() + buffered
    }

    /// `true` when no user message is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `true` when any message (system, stashed or user) is waiting. Takes no lock: it reads
    /// the mirrored lane state, then the consumer buffer's published length (in that order:
    /// a refill publishes the buffer before it clears the lane's flag).
    #[inline]
    pub fn has_messages(&self) -> bool {
        self.urgent.load(Ordering::SeqCst) > 0
            || self.lane.load(Ordering::SeqCst)
            || self.buffered.load(Ordering::SeqCst) > 0
    }

    /// `true` for a bounded mailbox (lock-free: an unbounded one has a consumer buffer).
    pub fn is_bounded(&self) -> bool {
        self.rx.is_none()
    }

    /// `true` once [`Mailbox::close`] ran.
    #[inline]
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Queues a system message. The system lane is never bounded and overtakes the user lane.
    pub fn push_system(&self, msg: M) -> Result<(), Closed<M>> {
        self.push_to(msg, |st| &mut st.system).map_err(Closed)
    }

    /// Queues `msg` at the back of the lane `lane` picks, if the mailbox is open; publishes
    /// the lanes' state and wakes a waiting receiver. Gives the message back once closed.
    #[inline]
    fn push_to(
        &self,
        msg: M,
        lane: impl FnOnce(&mut State<M>) -> &mut VecDeque<M>,
    ) -> Result<(), M> {
        let mut st = self.lock();
        if st.closed {
            return Err(msg);
        }
        lane(&mut st).push_back(msg);
        self.pushed(st);
        Ok(())
    }

    /// After a push under the lock: mirrors the lanes, releases the lock, then wakes the
    /// consumer if it waits.
    #[inline]
    fn pushed(&self, mut st: MutexGuard<'_, State<M>>) {
        self.sync(&st);
        let waker = st.rx_waker.take();
        drop(st);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Queues every message of `msgs` as user messages, in order, under one lock with one
    /// wake-up of the consumer, leaving `msgs` empty; `false`, with `msgs` untouched, when the
    /// mailbox is bounded (each message needs the overflow policy: [`Mailbox::offer`] them)
    /// or closed.
    pub fn push_all(&self, msgs: &mut Vec<M>) -> bool {
        if self.rx.is_none() || self.is_closed() {
            return false;
        }
        let mut st = self.lock();
        if st.closed {
            return false;
        }
        st.user.extend(msgs.drain(..));
        self.pushed(st);
        true
    }

    /// Queues a user message if there is room, or says what the overflow policy asks for.
    #[inline]
    pub fn offer(&self, msg: M) -> Offer<M> {
        if self.is_closed() {
            return Offer::Closed(msg);
        }
        if self.rx.is_some() {
            return self.push_unbounded(msg);
        }
        self.offer_bounded(msg)
    }

    /// [`Mailbox::offer`] on an unbounded mailbox: always room, no policy.
    fn push_unbounded(&self, msg: M) -> Offer<M> {
        match self.push_to(msg, |st| &mut st.user) {
            Ok(()) => Offer::Queued,
            Err(msg) => Offer::Closed(msg),
        }
    }

    fn offer_bounded(&self, msg: M) -> Offer<M> {
        let mut st = self.lock();
        if st.closed {
            return Offer::Closed(msg);
        }
        let full = st.capacity.is_some_and(|c| st.user.len() >= c.get());
        let outcome = if !full {
            st.user.push_back(msg);
            Offer::Queued
        } else {
            match st.policy {
                OverflowPolicy::DropNew => return Offer::Rejected(msg),
                OverflowPolicy::Redirect(target) => return Offer::Redirect(target, msg),
                OverflowPolicy::Spill(target) => return Offer::Spill(target, msg),
                OverflowPolicy::Block => return Offer::MustWait(msg),
                OverflowPolicy::DropOld => match st.user.pop_front() {
                    Some(old) => {
                        st.user.push_back(msg);
                        Offer::Evicted(old)
                    }
                    // Everything queued sits in the stash; the lane itself has room.
                    None => {
                        st.user.push_back(msg);
                        Offer::Queued
                    }
                },
            }
        };
        self.pushed(st);
        outcome
    }

    /// Tries to queue without waiting: `Ok` when queued, `Err` with the message when full or
    /// closed. Ignores the overflow policy (the caller decided to wait or not).
    fn try_push_now(&self, msg: M, waiter: &mut Option<WaiterKey>, waker: &Waker) -> Result<(), M> {
        let mut st = self.lock();
        if let Some(key) = waiter.take() {
            st.forget(key);
        }
        if st.closed {
            return Err(msg);
        }
        let full = st.capacity.is_some_and(|c| st.user.len() >= c.get());
        if full {
            let cold = st.cold();
            cold.next_waiter += 1;
            let id = cold.next_waiter;
            *waiter = Some((cold.tx_waiters.insert((id, waker.clone())), id));
            return Err(msg);
        }
        st.user.push_back(msg);
        self.pushed(st);
        Ok(())
    }

    fn forget_waiter(&self, waiter: Option<WaiterKey>) {
        if let Some(key) = waiter {
            self.lock().forget(key);
        }
    }

    /// Waits asynchronously until there is room, then queues the message (the `Block`
    /// behaviour, whatever the policy). Fails only if the mailbox closes first.
    pub async fn push_wait(&self, msg: M) -> Result<(), Closed<M>> {
        struct Forget<'a, M> {
            mailbox: &'a Mailbox<M>,
            waiter: Option<WaiterKey>,
        }
        impl<M> Drop for Forget<'_, M> {
            fn drop(&mut self) {
                self.mailbox.forget_waiter(self.waiter.take());
            }
        }
        let mut guard = Forget {
            mailbox: self,
            waiter: None,
        };
        let mut slot = Some(msg);
        poll_fn(|cx| {
            let Some(msg) = slot.take() else {
                return Poll::Ready(Ok(()));
            };
            match self.try_push_now(msg, &mut guard.waiter, cx.waker()) {
                Ok(()) => Poll::Ready(Ok(())),
                Err(msg) if self.is_closed() => Poll::Ready(Err(Closed(msg))),
                Err(msg) => {
                    slot = Some(msg);
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// Blocks the calling thread until there is room (or the timeout passes), then queues the
    /// message. On timeout or close the message is handed back.
    pub fn push_wait_blocking(&self, msg: M, timeout: Option<Duration>) -> Result<(), M> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let waker = thread_waker();
        let mut waiter = None;
        let mut msg = msg;
        loop {
            match self.try_push_now(msg, &mut waiter, &waker) {
                Ok(()) => return Ok(()),
                Err(back) => msg = back,
            }
            if self.is_closed() {
                self.forget_waiter(waiter);
                return Err(msg);
            }
            if !park_until(deadline) {
                self.forget_waiter(waiter);
                // One last try: room may have appeared right at the deadline.
                let mut none = None;
                let r = self.try_push_now(msg, &mut none, &waker);
                self.forget_waiter(none);
                return r;
            }
        }
    }

    /// Closes the mailbox: queued messages (stash included) are dropped and returned, later
    /// pushes fail, the consumer sees the close once, and blocked senders get their message back.
    pub fn close(&self) -> Vec<M> {
        let mut st = self.lock();
        if st.closed {
            return Vec::new();
        }
        st.closed = true;
        self.closed.store(true, Ordering::Release);
        // Every actor's exit closes its mailbox, most of them empty: the lanes are only
        // drained (and the vector grown) when they hold something.
        let mut dropped: Vec<M> = Vec::new();
        if !st.system.is_empty() {
            dropped.extend(st.system.drain(..));
        }
        if let Some(c) = st.cold.as_mut().filter(|c| !c.stash.is_empty()) {
            dropped.extend(c.stash.drain(..).map(|s| s.msg));
        }
        drop(st);
        // The buffer's messages are older than the lane's; `rx` is locked before `state`.
        if let Some(mut rx) = self.rx().filter(|rx| !rx.is_empty()) {
            dropped.extend(rx.drain(..));
        }
        let mut st = self.lock();
        if !st.user.is_empty() {
            dropped.extend(st.user.drain(..));
        }
        self.sync(&st);
        let rx = st.rx_waker.take();
        let waiters = match st.cold.as_mut() {
            Some(c) => {
                c.stash_user = 0;
                wake_all(&mut c.tx_waiters)
            }
            None => Vec::new(),
        };
        drop(st);
        if let Some(w) = rx {
            w.wake();
        }
        waiters.into_iter().for_each(Waker::wake);
        dropped
    }

    /// After [`Mailbox::close`]: hands back the largest of the (now empty) buffers the
    /// mailbox holds, so its allocation can serve another mailbox or batch; an empty
    /// `VecDeque` while the mailbox is open (nothing is taken from a live mailbox).
    pub fn reclaim(&self) -> VecDeque<M> {
        if !self.is_closed() {
            return VecDeque::new();
        }
        let mut rx = self.rx();
        let mut st = self.lock();
        let lane = std::mem::take(&mut st.user);
        let buf = match rx.as_deref_mut() {
            Some(b) if b.capacity() > lane.capacity() => std::mem::take(b),
            _ => lane,
        };
        drop(st);
        // Closed mailboxes hold no message: `close` drained every lane, and pushes fail.
        debug_assert!(buf.is_empty());
        buf
    }

    /// Pops the next message: system lane, then stash, then the consumer's buffer, then the
    /// user lane (refilling the buffer from it). Call with `rx` locked before `st`. The flag
    /// says whether it was a user message (which makes room for blocked senders).
    fn pop_from(&self, st: &mut State<M>, rx: Option<&mut Rx<'_, M>>) -> Option<(M, bool)> {
        let popped = if let Some(m) = st.system.pop_front() {
            Some((m, false))
        } else if let Some(s) = st.pop_stashed() {
            Some((s.msg, s.user))
        } else if st.closed {
            None
        } else if let Some(rx) = rx {
            Self::refill(st, rx, 1);
            rx.pop_front().map(|m| (m, true))
        } else {
            st.user.pop_front().map(|m| (m, true))
        };
        self.sync(st);
        popped
    }

    /// Wakes blocked senders after user messages left the lane.
    fn room_made(st: &mut State<M>) -> Vec<Waker> {
        match st.cold.as_mut() {
            Some(c) if !c.tx_waiters.is_empty() => wake_all(&mut c.tx_waiters),
            _ => Vec::new(),
        }
    }

    /// The next message through the locked path, or the (held) state lock when none waits.
    fn pop_or_lock(&self) -> Result<M, MutexGuard<'_, State<M>>> {
        let mut rx = self.rx();
        let mut st = self.lock();
        let Some((m, user)) = self.pop_from(&mut st, rx.as_mut()) else {
            return Err(st);
        };
        let wake = if user {
            Self::room_made(&mut st)
        } else {
            Vec::new()
        };
        drop(st);
        wake.into_iter().for_each(Waker::wake);
        Ok(m)
    }

    /// Receives without waiting.
    pub fn try_recv(&self) -> Result<M, TryRecvError> {
        match self.pop_buffered() {
            Buffered::Got(m) => return Ok(m),
            Buffered::Empty => return Err(TryRecvError::Empty),
            Buffered::Slow => {}
        }
        match self.pop_or_lock() {
            Ok(m) => Ok(m),
            Err(st) if st.closed => Err(TryRecvError::Closed),
            Err(_) => Err(TryRecvError::Empty),
        }
    }

    /// Polls for the next message; `Ready(None)` once the mailbox is closed.
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<M>> {
        if let Buffered::Got(m) = self.pop_buffered() {
            return Poll::Ready(Some(m));
        }
        match self.pop_or_lock() {
            Ok(m) => Poll::Ready(Some(m)),
            Err(st) if st.closed => Poll::Ready(None),
            Err(mut st) => {
                st.rx_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Receives the next message: system messages first, then stashed ones, then user
    /// messages in arrival order. `None` once the mailbox is closed.
    pub async fn recv(&self) -> Option<M> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Moves up to `max` messages into `out`: system lane, stash, then user messages. An
    /// unbounded mailbox refills its buffer from the lane in O(1) under the shared lock and
    /// copies out of the buffer after releasing it, so producers never wait for the copy.
    fn drain(&self, max: usize, out: &mut VecDeque<M>) -> usize {
        if let Some(n) = self.drain_buffered(max.max(1), out) {
            return n;
        }
        let before = out.len();
        let max = max.max(1);
        let want = |out: &VecDeque<M>| max - (out.len() - before);
        let mut rx = self.rx();
        let wake = {
            let mut st = self.lock();
            while want(out) > 0 {
                match st.system.pop_front() {
                    Some(m) => out.push_back(m),
                    None => break,
                }
            }
            let mut user = false;
            while want(out) > 0 {
                match st.pop_stashed() {
                    Some(s) => {
                        user |= s.user;
                        out.push_back(s.msg);
                    }
                    None => break,
                }
            }
            if want(out) > 0 && !st.closed {
                match rx.as_mut() {
                    // Topped up even when a few are left (after single receives), so a batch
                    // is not cut short while messages wait.
                    Some(rx) => Self::refill(&mut st, rx, want(out)),
                    None => user |= take(&mut st.user, want(out), out) > 0,
                }
            }
            self.sync(&st);
            if user {
                Self::room_made(&mut st)
            } else {
                Vec::new()
            }
        };
        wake.into_iter().for_each(Waker::wake);
        if let Some(rx) = rx.as_deref_mut()
            && !self.is_closed()
        {
            take(rx, want(out), out);
        }
        out.len() - before
    }

    /// The common case of [`Mailbox::drain`] on an unbounded mailbox with no system or stashed
    /// message and no close: user messages from the consumer's buffer, refilled from the lane
    /// with one swap (the shared lock is not taken at all when the lane is empty). `None`:
    /// take the general path.
    fn drain_buffered(&self, max: usize, out: &mut VecDeque<M>) -> Option<usize> {
        if self.urgent.load(Ordering::Acquire) > 0 || self.is_closed() {
            return None;
        }
        // The consumer's buffer is empty (only the consumer fills it, and this is the
        // consumer reading the length it published): the lane goes straight into `out` under
        // the shared lock alone, without locking the buffer or publishing its length. A
        // `close` racing this is seen under the lock. This is the receive of every hop of a
        // request/response chain.
        if self.rx.is_some() && self.buffered.load(Ordering::Acquire) == 0 {
            if !self.lane.load(Ordering::SeqCst) {
                return Some(0);
            }
            let mut st = self.lock_user_lane()?;
            // Only a whole-lane swap is done under the shared lock; a copy (a lane longer
            // than `max`, or `out` not empty) goes through the buffer below, outside it, so
            // producers never wait for it.
            if out.is_empty() && st.user.len() <= max {
                let n = take(&mut st.user, max, out);
                self.sync(&st);
                return Some(n);
            }
            drop(st);
        }
        let mut rx = self.rx()?;
        if rx.len() < max && self.lane.load(Ordering::SeqCst) {
            let mut st = self.lock_user_lane()?;
            Self::refill(&mut st, &mut rx, max);
            self.sync(&st);
        }
        // An unbounded mailbox has no blocked senders to wake.
        Some(take(&mut rx, max, out))
    }

    /// Moves up to `max` messages into `out` (system lane first).
    /// `Ready(true)` when at least one message was moved, `Ready(false)` once closed and empty.
    pub fn poll_recv_batch(
        &self,
        cx: &mut Context<'_>,
        max: usize,
        out: &mut VecDeque<M>,
    ) -> Poll<bool> {
        loop {
            if self.drain(max, out) > 0 {
                return Poll::Ready(true);
            }
            let mut st = self.lock();
            if st.closed {
                return Poll::Ready(false);
            }
            if st.system.is_empty() && st.stash_len() == 0 && st.user.is_empty() {
                st.rx_waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
        }
    }

    /// Moves up to `max` waiting messages into `out` without waiting (system lane first).
    /// `Ok(n)` with the number moved (0: nothing waiting), `Err` once closed and empty.
    pub fn try_recv_batch(&self, max: usize, out: &mut VecDeque<M>) -> Result<usize, TryRecvError> {
        match self.drain(max, out) {
            0 if self.is_closed() => Err(TryRecvError::Closed),
            moved => Ok(moved),
        }
    }

    /// Receives up to `max` messages into `out`; `false` once the mailbox is closed and empty.
    pub async fn recv_batch(&self, max: usize, out: &mut VecDeque<M>) -> bool {
        poll_fn(|cx| self.poll_recv_batch(cx, max, out)).await
    }

    /// Blocks the calling thread for the next message, up to `timeout` (`None`: forever).
    pub fn recv_blocking(&self, timeout: Option<Duration>) -> Result<M, RecvError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let waker = thread_waker();
        let mut cx = Context::from_waker(&waker);
        loop {
            match self.poll_recv(&mut cx) {
                Poll::Ready(Some(m)) => return Ok(m),
                Poll::Ready(None) => return Err(RecvError::Closed),
                Poll::Pending => {
                    if !park_until(deadline) {
                        return match self.try_recv() {
                            Ok(m) => Ok(m),
                            Err(TryRecvError::Closed) => Err(RecvError::Closed),
                            Err(TryRecvError::Empty) => Err(RecvError::Timeout),
                        };
                    }
                }
            }
        }
    }

    /// Polls for the first message, stashed or new, that `matcher` accepts. Messages it
    /// rejects are stashed in order and come back, before newer ones, from later receives.
    pub fn poll_selective<F>(&self, cx: &mut Context<'_>, matcher: &mut F) -> Poll<Option<M>>
    where
        F: FnMut(&M) -> bool,
    {
        // The matcher is user code (in the bindings it needs an interpreter lock): it never
        // runs under the mailbox lock. Only the consumer touches the stash, so it can be
        // scanned outside the lock; `stash_user` keeps counting it meanwhile, so `len()` holds.
        let mut stash = self
            .lock()
            .cold
            .as_mut()
            .map(|c| std::mem::take(&mut c.stash))
            .unwrap_or_default();
        let found = stash
            .iter()
            .position(|s| matcher(&s.msg))
            .and_then(|i| stash.remove(i));
        {
            let mut st = self.lock();
            let closed = st.closed;
            // A non-empty stash (taken above) means the cold parts exist.
            if let Some(cold) = st.cold.as_mut() {
                if found.as_ref().is_some_and(|s| s.user) {
                    cold.stash_user -= 1;
                }
                if closed {
                    cold.stash_user = 0;
                } else {
                    stash.append(&mut cold.stash);
                    cold.stash = stash;
                }
            }
            self.sync(&st);
        }
        if let Some(s) = found {
            return Poll::Ready(Some(s.msg));
        }
        // New messages, one at a time: the ones before the match are stashed in order, the
        // ones after it stay in their lanes.
        loop {
            let (msg, user, wake) = {
                let mut rx = self.rx();
                let mut st = self.lock();
                if let Some(m) = st.system.pop_front() {
                    self.sync(&st);
                    (m, false, Vec::new())
                } else if let Some(m) = match rx.as_mut() {
                    Some(rx) => {
                        Self::refill(&mut st, rx, 1);
                        rx.pop_front()
                    }
                    None => st.user.pop_front(),
                } {
                    self.sync(&st);
                    let wake = Self::room_made(&mut st);
                    (m, true, wake)
                } else if st.closed {
                    return Poll::Ready(None);
                } else {
                    st.rx_waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            };
            wake.into_iter().for_each(Waker::wake);
            if matcher(&msg) {
                return Poll::Ready(Some(msg));
            }
            let mut st = self.lock();
            if st.closed {
                return Poll::Ready(None);
            }
            let cold = st.cold();
            if user {
                cold.stash_user += 1;
            }
            cold.stash.push_back(Stashed { msg, user });
            self.sync(&st);
        }
    }

    /// Receives the first message that `matcher` accepts (see [`Mailbox::poll_selective`]).
    pub async fn selective_recv<F>(&self, mut matcher: F) -> Option<M>
    where
        F: FnMut(&M) -> bool,
    {
        poll_fn(|cx| self.poll_selective(cx, &mut matcher)).await
    }

    /// Blocking form of [`Mailbox::selective_recv`] with an optional timeout.
    pub fn selective_recv_blocking<F>(
        &self,
        mut matcher: F,
        timeout: Option<Duration>,
    ) -> Result<M, RecvError>
    where
        F: FnMut(&M) -> bool,
    {
        let deadline = timeout.map(|t| Instant::now() + t);
        let waker = thread_waker();
        let mut cx = Context::from_waker(&waker);
        loop {
            match self.poll_selective(&mut cx, &mut matcher) {
                Poll::Ready(Some(m)) => return Ok(m),
                Poll::Ready(None) => return Err(RecvError::Closed),
                Poll::Pending => {
                    if !park_until(deadline) {
                        // Final check after the deadline, with a no-op waker.
                        return match self.poll_selective(&mut cx, &mut matcher) {
                            Poll::Ready(Some(m)) => Ok(m),
                            Poll::Ready(None) => Err(RecvError::Closed),
                            Poll::Pending => Err(RecvError::Timeout),
                        };
                    }
                }
            }
        }
    }
}

/// Wakes a parked thread.
struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

fn thread_waker() -> Waker {
    Waker::from(Arc::new(ThreadWaker(std::thread::current())))
}

/// Parks until unparked or the deadline; `false` when the deadline has passed.
fn park_until(deadline: Option<Instant>) -> bool {
    match deadline {
        None => {
            std::thread::park();
            true
        }
        Some(d) => {
            let now = Instant::now();
            if now >= d {
                return false;
            }
            std::thread::park_timeout(d - now);
            Instant::now() < d
        }
    }
}

/// Drives a future to completion on the current thread (used by blocking callers outside any
/// async runtime).
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let waker = thread_waker();
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = Pin::as_mut(&mut fut).poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}
