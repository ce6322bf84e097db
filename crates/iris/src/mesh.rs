//! The mesh: nodes on TCP speaking the `iris-wire` protocol. Remote actors are represented
//! locally by proxy actors, so `send` is location transparent; exits travel as frames.
//!
//! Every connection starts with the authenticated handshake, then both sides ping every
//! `heartbeat`; a connection that hears nothing for `heartbeat × missed` is dead. An
//! outbound peer keeps its queue across reconnects (with backoff); when it cannot reconnect
//! within the same window the node is declared down: its proxies exit with `Disconnect`.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use bytes::{Bytes, BytesMut};
use iris_mailbox::{Mailbox, Offer, OverflowPolicy};
use iris_supervisor::{ExitInfo, ExitReason};
use iris_wire::{Cookie, DecodedFrame, Frame, FrameCodec, Handshake, error_code};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{oneshot, watch};
use tokio_util::codec::{Decoder, Encoder};
use tokio_util::sync::CancellationToken;

use crate::actor::{Pid, lock};
use crate::behavior::Behavior;
use crate::error::MeshError;
use crate::message::{Message, SystemMessage};
use crate::runtime::{Inner, Runtime, SpawnOptions};

/// Settings of a node.
#[derive(Debug, Clone)]
pub struct MeshConfig {
    /// Ping interval on every connection.
    pub heartbeat: Duration,
    /// Missed heartbeats after which a connection (and, without reconnect, the node) is down.
    pub missed: u32,
    /// Largest frame accepted (bigger ones are answered with an error frame and dropped).
    pub max_frame: usize,
    /// Limit for connecting, the handshake, a write, and a resolve.
    pub io_timeout: Duration,
    /// Frames queued for one peer before senders wait.
    pub outbound_capacity: usize,
    /// The shared secret; `None`: `IRIS_COOKIE`, else `~/.iris.cookie` (created on first use).
    pub cookie: Option<Vec<u8>>,
    /// How long a connection's reader keeps polling the socket after a read before it parks
    /// (`Duration::ZERO`: park at once). Like the BEAM's scheduler busy wait: an answer that
    /// arrives within this window is read without the thread wake-up a parked reader needs,
    /// which on a VM costs more than a loopback round trip itself. The reader yields to the
    /// worker's other tasks between polls.
    pub busy_poll: Duration,
}

impl Default for MeshConfig {
    fn default() -> Self {
        MeshConfig {
            heartbeat: Duration::from_millis(1000),
            missed: 3,
            max_frame: iris_wire::DEFAULT_MAX_FRAME_LENGTH,
            io_timeout: Duration::from_secs(5),
            outbound_capacity: 65_536,
            cookie: None,
            busy_poll: Duration::from_micros(50),
        }
    }
}

impl MeshConfig {
    fn dead_after(&self) -> Duration {
        self.heartbeat * self.missed.max(1)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PeerStatus {
    Connecting,
    Up,
    Down(String),
}

/// An outbound connection to one node, kept across reconnects.
struct Peer {
    addr: String,
    out: Arc<Mailbox<Frame>>,
    /// The current connection's sending side, for senders that write to it directly.
    wire: ArcSwapOption<Wire>,
    status: watch::Sender<PeerStatus>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Option<u64>>>>,
    proxies: Mutex<HashMap<u64, Pid>>,
    cancel: CancellationToken,
}

impl Peer {
    /// Sends `frames` (emptying it) in order: written from this thread when the connection
    /// is idle, else queued, waiting for room under back-pressure as any queued frame does.
    fn send(&self, frames: &mut Vec<Frame>) {
        if frames.is_empty() {
            return;
        }
        if let Some(wire) = self.wire.load().as_ref()
            && wire.try_send(&self.out, frames)
        {
            frames.clear();
            return;
        }
        for frame in frames.drain(..) {
            if let Offer::MustWait(f) = self.out.offer(frame) {
                let _ = crate::runtime::block_in_place(|| self.out.push_wait_blocking(f, None));
            }
        }
    }
}

/// Payload bytes a proxy gathers before it sends them without waiting for its batch to end:
/// a direct write leaves at most about this much to the writer beyond the queue's bound.
const FLUSH_BYTES: usize = 64 * 1024;

/// A proxy's frames of the current batch, not yet sent.
#[derive(Default)]
struct Outgoing {
    frames: Vec<Frame>,
    bytes: usize,
}

impl Outgoing {
    fn send(&mut self, peer: &Peer) {
        peer.send(&mut self.frames);
        self.bytes = 0;
    }
}

/// A node's mesh state, created on first use.
pub(crate) struct Mesh {
    node_id: u64,
    config: Mutex<MeshConfig>,
    cookie: Mutex<Option<Cookie>>,
    peers: Mutex<HashMap<String, Arc<Peer>>>,
    listener: Mutex<Option<(SocketAddr, CancellationToken)>>,
    next_id: AtomicU64,
    /// Frames rejected by decoders (oversized, unknown, malformed), for tests and metrics.
    rejected: AtomicU64,
}

impl Mesh {
    pub(crate) fn new() -> Mesh {
        let seed = iris_wire::new_challenge().unwrap_or([7; 32]);
        let node_id = u64::from_be_bytes(seed[..8].try_into().expect("8 bytes")) | 1;
        Mesh {
            node_id,
            config: Mutex::new(MeshConfig::default()),
            cookie: Mutex::new(None),
            peers: Mutex::new(HashMap::new()),
            listener: Mutex::new(None),
            next_id: AtomicU64::new(1),
            rejected: AtomicU64::new(0),
        }
    }

    fn config(&self) -> MeshConfig {
        lock(&self.config).clone()
    }

    fn cookie(&self) -> Result<Cookie, MeshError> {
        let mut slot = lock(&self.cookie);
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let cookie = match self.config().cookie {
            Some(bytes) => Cookie::new(bytes).ok_or(MeshError::Cookie("empty cookie".into()))?,
            None => Cookie::load().map_err(|e| MeshError::Cookie(e.to_string()))?,
        };
        *slot = Some(cookie.clone());
        Ok(cookie)
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn shutdown(&self) {
        if let Some((_, cancel)) = lock(&self.listener).take() {
            cancel.cancel();
        }
        for (_, peer) in lock(&self.peers).drain() {
            peer.cancel.cancel();
            peer.out.close();
        }
    }
}

fn exit_info(reason: ExitReason, metadata: String) -> ExitInfo {
    ExitInfo {
        reason,
        metadata: (!metadata.is_empty()).then_some(metadata),
    }
}

// ----- framing over a TCP stream ---------------------------------------------------------

/// The reading half of a connection with its decoder.
struct FrameReader {
    rd: OwnedReadHalf,
    buf: BytesMut,
    codec: FrameCodec,
    /// [`MeshConfig::busy_poll`].
    busy_poll: Duration,
    /// Until when the reader polls instead of parking: `busy_poll` after the latest read.
    hot_until: Option<Instant>,
    /// Reads that brought bytes so far.
    reads: u64,
}

impl FrameReader {
    fn new(rd: OwnedReadHalf, max_frame: usize, busy_poll: Duration) -> FrameReader {
        FrameReader {
            rd,
            buf: BytesMut::new(),
            codec: FrameCodec::builder().max_frame_length(max_frame).build(),
            busy_poll,
            hot_until: None,
            reads: 0,
        }
    }

    /// Reads what the socket has into the buffer: while the connection is hot, by polling
    /// the socket itself (yielding to the worker's other tasks in between) until data comes
    /// or the window closes; then by waiting for Tokio's readiness. `Ok(0)` at the end of
    /// the stream.
    ///
    /// The polls call `recv` directly rather than `try_read_buf`: Tokio's readiness for the
    /// socket is set only when some worker polls the I/O driver, and while another worker
    /// sleeps in it that takes the sleeper's wake-up, the latency this avoids. A direct read
    /// leaves Tokio's readiness possibly stale, which its next read clears.
    async fn read_some(&mut self) -> std::io::Result<usize> {
        debug_assert!(self.buf.capacity() > self.buf.len(), "no room to read into");
        while let Some(until) = self.hot_until {
            let sock = socket2::SockRef::from(self.rd.as_ref());
            let spare = self.buf.spare_capacity_mut();
            match sock.recv(spare) {
                Ok(n) => {
                    // SAFETY: `recv` initialised the first `n` bytes of the spare capacity.
                    unsafe { self.buf.set_len(self.buf.len() + n) };
                    return Ok(n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() >= until {
                        self.hot_until = None;
                    } else {
                        tokio::task::yield_now().await;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.rd.read_buf(&mut self.buf).await
    }

    /// The next item decodable from what was read already, without reading.
    fn buffered(&mut self) -> Result<Option<DecodedFrame>, MeshError> {
        self.codec
            .decode(&mut self.buf)
            .map_err(|e| MeshError::Protocol(e.to_string()))
    }

    /// The next decoded item; `None` at a clean end of stream.
    async fn next(&mut self) -> Result<Option<DecodedFrame>, MeshError> {
        loop {
            if let Some(item) = self.buffered()? {
                return Ok(Some(item));
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(16 * 1024);
            }
            let n = self.read_some().await.map_err(MeshError::Io)?;
            if n > 0 {
                self.reads += 1;
                if !self.busy_poll.is_zero() {
                    self.hot_until = Some(Instant::now() + self.busy_poll);
                }
            }
            if n == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(MeshError::Protocol("stream ended inside a frame".into()))
                };
            }
        }
    }
}

/// Appends the encoded `frames` to `buf`.
fn encode_frames<'a>(
    frames: impl IntoIterator<Item = &'a Frame>,
    buf: &mut BytesMut,
) -> Result<(), MeshError> {
    // Encoding is stateless; the frame limit applies to what we read.
    let mut codec = FrameCodec::new();
    for f in frames {
        codec
            .encode(f, buf)
            .map_err(|e| MeshError::Protocol(e.to_string()))?;
    }
    Ok(())
}

/// Writes all of `buf`, waiting for the socket to be writable when it is full.
async fn write_all(
    wr: &OwnedWriteHalf,
    mut buf: &[u8],
    timeout: Duration,
) -> Result<(), MeshError> {
    let run = async {
        while !buf.is_empty() {
            wr.writable().await?;
            match wr.try_write(buf) {
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(r) => r.map_err(MeshError::Io),
        Err(_) => Err(MeshError::Timeout),
    }
}

async fn write_frames(
    wr: &OwnedWriteHalf,
    frames: impl IntoIterator<Item = Frame>,
    timeout: Duration,
) -> Result<(), MeshError> {
    let mut buf = BytesMut::new();
    let frames: Vec<Frame> = frames.into_iter().collect();
    encode_frames(&frames, &mut buf)?;
    write_all(wr, &buf, timeout).await
}

/// Runs the handshake on a fresh connection; returns the peer's node id.
async fn handshake(
    reader: &mut FrameReader,
    wr: &OwnedWriteHalf,
    mesh: &Mesh,
) -> Result<u64, MeshError> {
    let cfg = mesh.config();
    let mut hs = Handshake::new(mesh.cookie()?, mesh.node_id).map_err(MeshError::Io)?;
    let run = async {
        write_frames(wr, [hs.hello()], cfg.io_timeout).await?;
        loop {
            let frame = match reader.next().await? {
                Some(DecodedFrame::Frame(f)) => f,
                Some(_) => return Err(MeshError::Handshake("malformed handshake frame".into())),
                None => return Err(MeshError::Handshake("connection closed".into())),
            };
            if let Frame::HandshakeFail { reason } = &frame {
                return Err(MeshError::Handshake(reason.clone()));
            }
            match hs.on_frame(frame) {
                Ok(step) => {
                    if let Some(reply) = step.reply {
                        write_frames(wr, [reply], cfg.io_timeout).await?;
                    }
                    if let Some(peer) = step.established {
                        return Ok(peer);
                    }
                }
                Err(e) => {
                    let _ = write_frames(wr, [e.to_fail_frame()], cfg.io_timeout).await;
                    return Err(MeshError::Handshake(e.to_string()));
                }
            }
        }
    };
    match tokio::time::timeout(cfg.io_timeout, run).await {
        Ok(r) => r,
        Err(_) => Err(MeshError::Timeout),
    }
}

/// The sending side of one connection. Its writer task drains the connection's queue onto
/// the socket, coalescing queued frames into one write; a sender that finds the writer idle
/// and the queue empty writes to the socket itself instead ([`Wire::try_send`]), which saves
/// the hop to the writer task and its thread wake-up on every message of a request/response
/// exchange. Both paths take the frames they write under one lock, so a sender's frames stay
/// in order whichever path each one took.
struct Wire {
    wr: OwnedWriteHalf,
    state: Mutex<WireState>,
}

#[derive(Default)]
struct WireState {
    /// The writer task owns the socket: it is writing, or has bytes to write. Senders queue.
    busy: bool,
    /// The connection has ended; frames go to the queue (an outbound peer keeps it for the
    /// next connection).
    closed: bool,
    /// What a sender's write left when the socket was full: the writer's next bytes.
    leftover: BytesMut,
    /// A sender's encoding buffer, kept between writes.
    scratch: BytesMut,
    /// The writer task while it is parked without work.
    waker: Option<Waker>,
}

impl Wire {
    fn new(wr: OwnedWriteHalf) -> Wire {
        Wire {
            wr,
            state: Mutex::new(WireState::default()),
        }
    }

    /// Writes `frames` to the socket from the calling thread if nothing is ahead of them
    /// (the writer is idle and `out` is empty); what the socket does not take at once goes
    /// to the writer task. `false`, with `frames` untouched, when they must be queued.
    fn try_send(&self, out: &Mailbox<Frame>, frames: &[Frame]) -> bool {
        let mut st = match self.state.try_lock() {
            Ok(st) => st,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            // Another sender or the writer is at the socket: queue, the writer coalesces.
            Err(std::sync::TryLockError::WouldBlock) => return false,
        };
        if st.busy || st.closed || out.has_messages() {
            return false;
        }
        let mut buf = std::mem::take(&mut st.scratch);
        buf.clear();
        // An encoding error is left to the writer, which ends the connection on it.
        if encode_frames(frames, &mut buf).is_err() {
            return false;
        }
        let mut sent = 0;
        while sent < buf.len() {
            match self.wr.try_write(&buf[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // Full (or failed): the writer waits for room (or reports the failure).
                Err(_) => break,
            }
        }
        if sent < buf.len() {
            let _ = buf.split_to(sent);
            st.leftover = buf;
            st.busy = true;
            if let Some(w) = st.waker.take() {
                w.wake();
            }
        } else {
            st.scratch = buf;
        }
        true
    }

    /// The writer's next bytes: a sender's leftover first, then up to 1024 queued frames.
    /// `None` once `out` is closed and everything is written. While it returns bytes the
    /// writer owns the socket; when there are none it parks and senders may write again.
    fn poll_work(
        &self,
        cx: &mut Context<'_>,
        out: &Mailbox<Frame>,
        batch: &mut VecDeque<Frame>,
    ) -> Poll<Option<Result<BytesMut, MeshError>>> {
        let mut st = lock(&self.state);
        let mut buf = std::mem::take(&mut st.leftover);
        match out.poll_recv_batch(cx, 1024, batch) {
            Poll::Ready(true) => {
                let encoded = encode_frames(batch.iter(), &mut buf);
                batch.clear();
                if let Err(e) = encoded {
                    return Poll::Ready(Some(Err(e)));
                }
            }
            Poll::Ready(false) if buf.is_empty() => return Poll::Ready(None),
            Poll::Ready(false) | Poll::Pending => {}
        }
        if buf.is_empty() {
            st.busy = false;
            st.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        st.busy = true;
        Poll::Ready(Some(Ok(buf)))
    }

    /// Ends direct writes: from now on every frame is queued.
    fn close(&self) {
        let mut st = lock(&self.state);
        st.closed = true;
        st.waker = None;
    }
}

/// Drains `out` (and the senders' leftovers) onto the socket of `wire`.
async fn writer_loop(
    wire: Arc<Wire>,
    out: Arc<Mailbox<Frame>>,
    timeout: Duration,
    cancel: CancellationToken,
) {
    let mut batch = VecDeque::new();
    loop {
        let work = tokio::select! {
            _ = cancel.cancelled() => break,
            work = std::future::poll_fn(|cx| wire.poll_work(cx, &out, &mut batch)) => work,
        };
        let Some(bytes) = work else { break };
        let written = match bytes {
            Ok(bytes) => write_all(&wire.wr, &bytes, timeout).await,
            Err(e) => Err(e),
        };
        if written.is_err() {
            cancel.cancel();
            break;
        }
    }
    wire.close();
}

/// Pings every heartbeat and cancels the connection after `missed` silent intervals.
async fn heartbeat_loop(
    out: Arc<Mailbox<Frame>>,
    last_seen: Arc<Mutex<Instant>>,
    cfg: MeshConfig,
    cancel: CancellationToken,
) {
    let mut nonce = 0u64;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(cfg.heartbeat) => {}
        }
        if lock(&last_seen).elapsed() > cfg.dead_after() {
            cancel.cancel();
            return;
        }
        nonce += 1;
        // The system lane: a ping never waits behind a full queue of user frames.
        if out.push_system(Frame::Ping { nonce }).is_err() {
            return;
        }
    }
}

/// What a connection does with the frames it receives.
trait FrameSink: Send + Sync {
    fn on_frame(&self, frame: Frame);
}

/// Reads frames until the connection fails or is cancelled.
async fn reader_loop(
    mut reader: FrameReader,
    out: &Arc<Mailbox<Frame>>,
    last_seen: &Arc<Mutex<Instant>>,
    sink: &dyn FrameSink,
    mesh: &Mesh,
    cancel: &CancellationToken,
) {
    // Made once: a `cancelled()` per frame (and `select!`'s random branch order) cost more
    // than decoding a small frame.
    let cancelled = cancel.cancelled();
    let mut cancelled = std::pin::pin!(cancelled);
    // The reads whose frames `last_seen` already accounts for: it is the time of the latest
    // read that brought a frame, taken once per read rather than per frame.
    let mut seen_reads = 0;
    let mut saw_frame = |reader: &FrameReader| {
        if reader.reads != seen_reads {
            seen_reads = reader.reads;
            *lock(last_seen) = Instant::now();
        }
    };
    loop {
        // Frames already read are taken without a wait, so without polling the cancellation
        // (its flag is checked); the wait for more data watches it.
        let item = match reader.buffered() {
            Ok(Some(item)) if !cancel.is_cancelled() => Ok(Some(item)),
            Ok(Some(_)) => return,
            Ok(None) => tokio::select! {
                biased;
                _ = &mut cancelled => return,
                item = reader.next() => item,
            },
            Err(e) => Err(e),
        };
        match item {
            Ok(Some(DecodedFrame::Frame(frame))) => {
                saw_frame(&reader);
                match frame {
                    Frame::Ping { nonce } => {
                        let _ = out.push_system(Frame::Pong { nonce });
                    }
                    Frame::Pong { .. } => {}
                    other => sink.on_frame(other),
                }
            }
            Ok(Some(DecodedFrame::Rejected(rejection))) => {
                saw_frame(&reader);
                mesh.rejected.fetch_add(1, Ordering::Relaxed);
                let _ = out.push_system(rejection.to_error_frame());
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => {
                cancel.cancel();
                return;
            }
        }
    }
}

fn new_queue(capacity: usize) -> Arc<Mailbox<Frame>> {
    let q = Mailbox::bounded(capacity.max(1)).unwrap_or_else(|_| Mailbox::unbounded());
    let _ = q.set_policy(OverflowPolicy::Block);
    Arc::new(q)
}

// ----- inbound connections ---------------------------------------------------------------

/// The serving side of one accepted connection.
struct Inbound {
    rt: Weak<Inner>,
    out: Arc<Mailbox<Frame>>,
    /// Remote monitors of local actors: monitor ref -> (target, exit hook).
    watches: Mutex<HashMap<u64, (Pid, Option<u64>)>>,
}

impl FrameSink for Inbound {
    fn on_frame(&self, frame: Frame) {
        let Some(inner) = self.rt.upgrade() else {
            return;
        };
        let rt = Runtime { inner };
        match frame {
            Frame::User { target, data, .. } => {
                // In order per connection: a `Block` mailbox makes the reader wait here.
                if let Err(e) = rt.send(target, Message::User(data)) {
                    let _ = self.out.push_system(Frame::Error {
                        code: error_code::NO_PROC,
                        message: e.to_string(),
                    });
                }
            }
            Frame::ResolveRequest { req_id, name } => {
                let pid = rt.whereis(&name);
                let _ = self.out.push_system(Frame::ResolveReply { req_id, pid });
            }
            Frame::Monitor {
                monitor_ref,
                target,
                ..
            } => {
                let out = self.out.clone();
                lock(&self.watches).insert(monitor_ref, (target, None));
                let hook = rt.on_exit(target, move |pid, info| {
                    let _ = out.push_system(Frame::Down {
                        monitor_ref,
                        pid,
                        reason: info.reason.clone(),
                        metadata: info.metadata.clone().unwrap_or_default(),
                    });
                });
                if let Some(w) = lock(&self.watches).get_mut(&monitor_ref) {
                    w.1 = hook;
                }
            }
            Frame::Demonitor { monitor_ref } => {
                if let Some((target, Some(hook))) = lock(&self.watches).remove(&monitor_ref) {
                    rt.remove_exit_hook(target, hook);
                }
            }
            Frame::Exit {
                from,
                target,
                reason,
                metadata,
            } => {
                // A remote actor linked to `target` exited.
                let info = exit_info(reason, metadata);
                if rt.traps_exit(target) {
                    let _ = rt.send(
                        target,
                        Message::system(SystemMessage::Exit { from, target, info }),
                    );
                } else if !info.reason.is_normal() {
                    let why = format!(
                        "linked to remote pid {from}, which exited with {}",
                        info.reason
                    );
                    rt.exit(target, ExitInfo::with_metadata(ExitReason::Killed, why));
                }
            }
            _ => {}
        }
    }
}

impl Inbound {
    fn close(&self) {
        let Some(inner) = self.rt.upgrade() else {
            return;
        };
        let rt = Runtime { inner };
        for (_, (target, hook)) in lock(&self.watches).drain() {
            if let Some(h) = hook {
                rt.remove_exit_hook(target, h);
            }
        }
        self.out.close();
    }
}

async fn serve_inbound(
    stream: TcpStream,
    rt: Weak<Inner>,
    mesh: Arc<Mesh>,
    stop: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let cfg = mesh.config();
    let (rd, wr) = stream.into_split();
    let mut reader = FrameReader::new(rd, cfg.max_frame, cfg.busy_poll);
    // Unauthenticated peers are cut off here, before any frame reaches the runtime.
    if handshake(&mut reader, &wr, &mesh).await.is_err() {
        return;
    }
    let cancel = stop.child_token();
    let inbound = Inbound {
        rt,
        out: new_queue(cfg.outbound_capacity),
        watches: Mutex::new(HashMap::new()),
    };
    let last_seen = Arc::new(Mutex::new(Instant::now()));
    tokio::spawn(writer_loop(
        Arc::new(Wire::new(wr)),
        inbound.out.clone(),
        cfg.io_timeout,
        cancel.clone(),
    ));
    tokio::spawn(heartbeat_loop(
        inbound.out.clone(),
        last_seen.clone(),
        cfg.clone(),
        cancel.clone(),
    ));
    let out = inbound.out.clone();
    reader_loop(reader, &out, &last_seen, &inbound, &mesh, &cancel).await;
    cancel.cancel();
    inbound.close();
}

// ----- outbound peers --------------------------------------------------------------------

struct PeerSink {
    peer: Weak<Peer>,
    rt: Weak<Inner>,
}

impl FrameSink for PeerSink {
    fn on_frame(&self, frame: Frame) {
        let Some(peer) = self.peer.upgrade() else {
            return;
        };
        match frame {
            Frame::ResolveReply { req_id, pid } => {
                if let Some(tx) = lock(&peer.pending).remove(&req_id) {
                    let _ = tx.send(pid);
                }
            }
            Frame::Down {
                pid,
                reason,
                metadata,
                ..
            } => {
                let proxy = lock(&peer.proxies).get(&pid).copied();
                if let (Some(proxy), Some(inner)) = (proxy, self.rt.upgrade()) {
                    crate::runtime::kill(&inner, proxy, exit_info(reason, metadata));
                }
            }
            _ => {}
        }
    }
}

async fn connect(addr: &str, timeout: Duration) -> Result<TcpStream, MeshError> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Ok(Err(e)) => Err(MeshError::Io(e)),
        Err(_) => Err(MeshError::Timeout),
    }
}

/// Keeps a peer connected; declares the node down when it cannot be reached for
/// `heartbeat × missed` (or the first connection fails).
async fn peer_loop(peer: Arc<Peer>, rt: Weak<Inner>, mesh: Arc<Mesh>) {
    let cfg = mesh.config();
    let mut lost_at: Option<Instant> = None;
    let mut backoff = Duration::from_millis(20);
    let down_reason = loop {
        if peer.cancel.is_cancelled() {
            break "mesh closed".to_owned();
        }
        let attempt = async {
            let stream = connect(&peer.addr, cfg.io_timeout).await?;
            let (rd, wr) = stream.into_split();
            let mut reader = FrameReader::new(rd, cfg.max_frame, cfg.busy_poll);
            handshake(&mut reader, &wr, &mesh).await?;
            Ok::<_, MeshError>((reader, wr))
        };
        match attempt.await {
            Ok((reader, wr)) => {
                backoff = Duration::from_millis(20);
                let cancel = peer.cancel.child_token();
                let wire = Arc::new(Wire::new(wr));
                peer.wire.store(Some(wire.clone()));
                peer.status.send_replace(PeerStatus::Up);
                let last_seen = Arc::new(Mutex::new(Instant::now()));
                tokio::spawn(writer_loop(
                    wire.clone(),
                    peer.out.clone(),
                    cfg.io_timeout,
                    cancel.clone(),
                ));
                tokio::spawn(heartbeat_loop(
                    peer.out.clone(),
                    last_seen.clone(),
                    cfg.clone(),
                    cancel.clone(),
                ));
                let sink = PeerSink {
                    peer: Arc::downgrade(&peer),
                    rt: rt.clone(),
                };
                reader_loop(reader, &peer.out, &last_seen, &sink, &mesh, &cancel).await;
                cancel.cancel();
                // Senders queue from here on; the queue waits for the next connection.
                wire.close();
                peer.wire.store(None);
                if peer.cancel.is_cancelled() {
                    break "mesh closed".to_owned();
                }
                lost_at = Some(Instant::now());
                peer.status.send_replace(PeerStatus::Connecting);
            }
            Err(e) => {
                let since = *lost_at.get_or_insert_with(Instant::now);
                let never_up = *peer.status.borrow() == PeerStatus::Connecting
                    && matches!(e, MeshError::Handshake(_));
                if never_up || since.elapsed() >= cfg.dead_after() {
                    break e.to_string();
                }
            }
        }
        tokio::select! {
            _ = peer.cancel.cancelled() => {}
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_millis(500));
    };
    node_down(&peer, &rt, &mesh, down_reason);
}

fn node_down(peer: &Arc<Peer>, rt: &Weak<Inner>, mesh: &Mesh, why: String) {
    {
        let mut peers = lock(&mesh.peers);
        if peers.get(&peer.addr).is_some_and(|p| Arc::ptr_eq(p, peer)) {
            peers.remove(&peer.addr);
        }
    }
    peer.status.send_replace(PeerStatus::Down(why));
    peer.wire.store(None);
    peer.out.close();
    lock(&peer.pending).clear();
    let proxies: Vec<Pid> = lock(&peer.proxies).drain().map(|(_, p)| p).collect();
    if let Some(inner) = rt.upgrade() {
        let info = ExitInfo::with_metadata(
            ExitReason::Disconnect,
            format!("node {} is down", peer.addr),
        );
        for proxy in proxies {
            crate::runtime::kill(&inner, proxy, info.clone());
        }
    }
}

impl Runtime {
    fn mesh(&self) -> Arc<Mesh> {
        self.inner.mesh.clone()
    }

    /// Replaces the mesh settings (heartbeat, missed pongs, frame limit, timeouts, cookie).
    /// Connections opened later use them.
    pub fn set_mesh_config(&self, config: MeshConfig) {
        let mesh = self.mesh();
        *lock(&mesh.cookie) = None;
        *lock(&mesh.config) = config;
    }

    /// This node's random id (exchanged in the handshake).
    pub fn node_id(&self) -> u64 {
        self.inner.mesh.node_id
    }

    /// Frames this node rejected (oversized, unknown type, malformed) and answered with an
    /// error frame.
    pub fn rejected_frames(&self) -> u64 {
        self.inner.mesh.rejected.load(Ordering::Relaxed)
    }

    /// Starts accepting mesh connections on `addr` (`"127.0.0.1:0"` picks a port) and
    /// returns the bound address. A bind failure is an error.
    pub fn listen(&self, addr: &str) -> Result<SocketAddr, MeshError> {
        let mesh = self.mesh();
        mesh.cookie()?;
        let std_listener = std::net::TcpListener::bind(addr).map_err(MeshError::Bind)?;
        std_listener
            .set_nonblocking(true)
            .map_err(MeshError::Bind)?;
        let bound = std_listener.local_addr().map_err(MeshError::Bind)?;
        let listener = {
            let _guard = self.handle().enter();
            tokio::net::TcpListener::from_std(std_listener).map_err(MeshError::Bind)?
        };
        let stop = CancellationToken::new();
        if let Some((_, old)) = lock(&mesh.listener).replace((bound, stop.clone())) {
            old.cancel();
        }
        let weak = Arc::downgrade(&self.inner);
        self.handle().spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = stop.cancelled() => return,
                    a = listener.accept() => a,
                };
                match accepted {
                    Ok((stream, _)) => {
                        tokio::spawn(serve_inbound(
                            stream,
                            weak.clone(),
                            mesh.clone(),
                            stop.clone(),
                        ));
                    }
                    // Out of descriptors and the like: back off, keep serving.
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        Ok(bound)
    }

    /// The address this node listens on, if any.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        lock(&self.inner.mesh.listener).as_ref().map(|(a, _)| *a)
    }

    /// Stops accepting connections and closes the accepted ones.
    pub fn close_listener(&self) -> bool {
        match lock(&self.inner.mesh.listener).take() {
            Some((_, stop)) => {
                stop.cancel();
                true
            }
            None => false,
        }
    }

    /// The connected peer for `addr`, connecting first if needed.
    async fn peer(&self, addr: &str) -> Result<Arc<Peer>, MeshError> {
        let mesh = self.mesh();
        mesh.cookie()?;
        let peer = {
            let mut peers = lock(&mesh.peers);
            match peers.get(addr) {
                Some(p) => p.clone(),
                None => {
                    let (status, _) = watch::channel(PeerStatus::Connecting);
                    let peer = Arc::new(Peer {
                        addr: addr.to_owned(),
                        out: new_queue(mesh.config().outbound_capacity),
                        wire: ArcSwapOption::empty(),
                        status,
                        pending: Mutex::new(HashMap::new()),
                        proxies: Mutex::new(HashMap::new()),
                        cancel: CancellationToken::new(),
                    });
                    peers.insert(addr.to_owned(), peer.clone());
                    self.handle().spawn(peer_loop(
                        peer.clone(),
                        Arc::downgrade(&self.inner),
                        mesh.clone(),
                    ));
                    peer
                }
            }
        };
        let mut status = peer.status.subscribe();
        let timeout = mesh.config().io_timeout;
        let ready = tokio::time::timeout(timeout, async {
            loop {
                let now = status.borrow_and_update().clone();
                match now {
                    PeerStatus::Up => return Ok(()),
                    PeerStatus::Down(why) => return Err(MeshError::Unreachable(why)),
                    PeerStatus::Connecting => {}
                }
                if status.changed().await.is_err() {
                    return Err(MeshError::Unreachable("peer gone".into()));
                }
            }
        })
        .await;
        match ready {
            Ok(Ok(())) => Ok(peer),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(MeshError::Timeout),
        }
    }

    /// The local proxy actor for `remote` on `peer`: messages sent to it are forwarded.
    fn proxy_for(&self, peer: &Arc<Peer>, remote: u64) -> Result<Pid, MeshError> {
        let mut proxies = lock(&peer.proxies);
        if let Some(&p) = proxies.get(&remote)
            && self.is_alive(p)
        {
            return Ok(p);
        }
        // The frames of one batch of messages are sent together when the batch ends (or
        // when `FLUSH_BYTES` have gathered): in one write if the connection is idle, else
        // through the queue (see `Peer::send`).
        let buffered = Arc::new(Mutex::new(Outgoing::default()));
        let (peer_a, peer_b) = (peer.clone(), peer.clone());
        let to_send = buffered.clone();
        let behavior = Behavior::from_fn(move |m| {
            let Message::User(data) = m else { return };
            let mut out = lock(&buffered);
            out.bytes += data.len();
            out.frames.push(Frame::User {
                target: remote,
                sender: 0,
                data,
            });
            if out.bytes >= FLUSH_BYTES {
                out.send(&peer_a);
            }
        })
        .with_batch_guard(move |batch| {
            batch();
            lock(&to_send).send(&peer_b);
        });
        let pid = self
            .try_spawn_behavior(behavior, SpawnOptions::default())
            .map_err(|e| MeshError::Unreachable(e.to_string()))?;
        proxies.insert(remote, pid);
        drop(proxies);
        let weak = Arc::downgrade(peer);
        self.on_exit(pid, move |_, _| {
            if let Some(peer) = weak.upgrade() {
                let mut proxies = lock(&peer.proxies);
                if proxies.get(&remote) == Some(&pid) {
                    proxies.remove(&remote);
                }
            }
        });
        Ok(pid)
    }

    /// Resolves `name` on the node at `addr`; returns a local proxy PID for it, or `None` if
    /// the name is not registered there.
    pub async fn resolve_remote(&self, addr: &str, name: &str) -> Result<Option<Pid>, MeshError> {
        let peer = self.peer(addr).await?;
        let req_id = self.mesh().next_id();
        let (tx, rx) = oneshot::channel();
        lock(&peer.pending).insert(req_id, tx);
        let request = Frame::ResolveRequest {
            req_id,
            name: name.to_owned(),
        };
        if peer.out.push_wait(request).await.is_err() {
            lock(&peer.pending).remove(&req_id);
            return Err(MeshError::Unreachable(addr.to_owned()));
        }
        let timeout = self.mesh().config().io_timeout;
        let reply = tokio::time::timeout(timeout, rx).await;
        lock(&peer.pending).remove(&req_id);
        match reply {
            Ok(Ok(Some(remote))) => self.proxy_for(&peer, remote).map(Some),
            Ok(Ok(None)) => Ok(None),
            Ok(Err(_)) => Err(MeshError::Unreachable(addr.to_owned())),
            Err(_) => Err(MeshError::Timeout),
        }
    }

    /// Blocking form of [`Runtime::resolve_remote`] (safe on any thread, also on a Tokio
    /// worker or inside an actor).
    pub fn resolve_remote_blocking(
        &self,
        addr: &str,
        name: &str,
    ) -> Result<Option<Pid>, MeshError> {
        self.block_on(self.resolve_remote(addr, name))
    }

    /// Sends `data` to `pid` on the node at `addr`. `pid` may be a local proxy for that node
    /// (as returned by [`Runtime::resolve_remote`]) or the remote node's own PID number.
    /// `false` when the node cannot be reached. Blocks while connecting; see
    /// [`Runtime::send_remote_async`].
    pub fn send_remote(&self, addr: &str, pid: Pid, data: impl Into<Bytes>) -> bool {
        let data = data.into();
        self.block_on(self.send_remote_async(addr, pid, data))
    }

    /// [`Runtime::send_remote`] without blocking: waits asynchronously for the connection and,
    /// under back-pressure, for room in the peer's queue.
    pub async fn send_remote_async(&self, addr: &str, pid: Pid, data: Bytes) -> bool {
        let Ok(peer) = self.peer(addr).await else {
            return false;
        };
        let proxied = lock(&peer.proxies).values().any(|&p| p == pid);
        if proxied {
            // Through the proxy, so this stays in order with other sends to it.
            return self.send_async(pid, Message::User(data)).await.is_ok();
        }
        let frame = Frame::User {
            target: pid,
            sender: 0,
            data,
        };
        peer.out.push_wait(frame).await.is_ok()
    }

    /// Watches the actor `pid` on the node at `addr`: returns its local proxy, which exits
    /// with the remote actor's exit reason (or `Disconnect` when the node goes down), so
    /// local `monitor`/`link` on the proxy observe the remote actor.
    pub async fn monitor_remote(&self, addr: &str, pid: u64) -> Result<Pid, MeshError> {
        let peer = self.peer(addr).await?;
        let proxy = self.proxy_for(&peer, pid)?;
        let frame = Frame::Monitor {
            monitor_ref: self.mesh().next_id(),
            watcher: proxy,
            target: pid,
        };
        peer.out
            .push_wait(frame)
            .await
            .map_err(|_| MeshError::Unreachable(addr.to_owned()))?;
        Ok(proxy)
    }

    /// Blocking form of [`Runtime::monitor_remote`].
    pub fn monitor_remote_blocking(&self, addr: &str, pid: u64) -> Result<Pid, MeshError> {
        self.block_on(self.monitor_remote(addr, pid))
    }

    /// Links the local actor `local` with `pid` on the node at `addr`: the remote actor's
    /// abnormal exit kills `local` (through its proxy), and `local`'s exit is sent to the
    /// remote node, which applies link semantics there. Returns the proxy.
    pub async fn link_remote(&self, local: Pid, addr: &str, pid: u64) -> Result<Pid, MeshError> {
        let proxy = self.monitor_remote(addr, pid).await?;
        self.link(local, proxy)
            .map_err(|e| MeshError::Unreachable(e.to_string()))?;
        let peer = self.peer(addr).await?;
        let out = Arc::downgrade(&peer.out);
        self.on_exit(local, move |from, info| {
            if let Some(out) = out.upgrade() {
                let _ = out.push_system(Frame::Exit {
                    from,
                    target: pid,
                    reason: info.reason.clone(),
                    metadata: info.metadata.clone().unwrap_or_default(),
                });
            }
        });
        Ok(proxy)
    }

    /// `true` if the node at `addr` completes a handshake and answers a ping within
    /// `timeout`.
    pub fn is_node_up(&self, addr: &str, timeout: Duration) -> bool {
        let mesh = self.mesh();
        let probe = async move {
            let cfg = mesh.config();
            let stream = connect(addr, timeout).await?;
            let (rd, wr) = stream.into_split();
            let mut reader = FrameReader::new(rd, cfg.max_frame, cfg.busy_poll);
            handshake(&mut reader, &wr, &mesh).await?;
            write_frames(&wr, [Frame::Ping { nonce: 1 }], timeout).await?;
            loop {
                match reader.next().await? {
                    Some(DecodedFrame::Frame(Frame::Pong { nonce: 1 })) => return Ok(()),
                    Some(_) => {}
                    None => return Err(MeshError::Unreachable(addr.to_owned())),
                }
            }
        };
        let checked = self.block_on(async move {
            match tokio::time::timeout(timeout, probe).await {
                Ok(r) => r,
                Err(_) => Err(MeshError::Timeout),
            }
        });
        checked.is_ok()
    }

    /// Runs a future to completion from synchronous code on any thread.
    pub(crate) fn block_on<F>(&self, fut: F) -> F::Output
    where
        F: std::future::Future + Send,
        F::Output: Send,
    {
        let handle = self.handle().clone();
        match tokio::runtime::Handle::try_current() {
            // A current-thread runtime cannot hand its thread off: drive the future from a
            // helper thread instead.
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread => {
                std::thread::scope(|s| {
                    s.spawn(|| handle.block_on(fut))
                        .join()
                        .unwrap_or_else(|p| std::panic::resume_unwind(p))
                })
            }
            _ => crate::runtime::block_in_place(move || handle.block_on(fut)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_metadata_is_none() {
        assert_eq!(exit_info(ExitReason::Crash, String::new()).metadata, None);
        assert_eq!(
            exit_info(ExitReason::Crash, "why".into())
                .metadata
                .as_deref(),
            Some("why")
        );
    }
}
