//! The mesh scenarios between two OS processes on loopback: this process sends through
//! proxies to actors in a child `iris-bench-node mesh`, which answers over the mesh.
//!
//! The child registers `sink` (counts; on `end` it tells our `bench-done`) and `pong` (sends
//! every message back to our `bench-ping`). It exits when its stdin closes, so it cannot
//! outlive the bench even if the bench is killed.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use iris::{MeshConfig, Message, Pid, Runtime};

use crate::Done;

/// The cookie both nodes share.
pub const COOKIE: &[u8] = b"iris-bench";

/// The mesh configuration of both nodes.
pub fn config() -> MeshConfig {
    MeshConfig {
        cookie: Some(COOKIE.to_vec()),
        ..MeshConfig::default()
    }
}

/// The end-of-stream marker of the sink scenario.
pub const END: &[u8] = b"end";

/// This side of a two-process mesh: a runtime with `bench-done` and `bench-ping`, a child
/// node, and proxies to its `sink` and `pong`.
#[derive(Debug)]
pub struct MeshPair {
    rt: Runtime,
    child: Child,
    stdin: Option<ChildStdin>,
    current: Arc<Mutex<Arc<Done>>>,
    sink: Pid,
    pong: Pid,
}

fn read_line(lines: &mut impl BufRead, prefix: &str) -> Result<String, String> {
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Err(format!("child exited before `{prefix}`"));
        }
        if let Some(rest) = line.trim().strip_prefix(prefix) {
            return Ok(rest.trim().to_owned());
        }
    }
}

impl MeshPair {
    /// Starts the child `bin` and connects both ways.
    pub fn start(bin: &Path) -> Result<MeshPair, String> {
        let rt = Runtime::new();
        rt.set_mesh_config(config());
        let current = Arc::new(Mutex::new(Done::new(0)));
        let c = current.clone();
        let done = rt.spawn_fn(
            move |_m| {
                c.lock().unwrap().hit();
            },
            100,
        );
        rt.register("bench-done", done).map_err(|e| e.to_string())?;
        let pong_slot = Arc::new(std::sync::OnceLock::<Pid>::new());
        let (c, rt2, slot) = (current.clone(), rt.clone(), pong_slot.clone());
        let ping = rt.spawn_fn(
            move |m| {
                let finished = c.lock().unwrap().hit();
                if !finished && let Some(&to) = slot.get() {
                    let _ = rt2.send(to, m);
                }
            },
            1000,
        );
        rt.register("bench-ping", ping).map_err(|e| e.to_string())?;
        let here = rt.listen("127.0.0.1:0").map_err(|e| e.to_string())?;

        let mut child = Command::new(bin)
            .arg("mesh")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        let mut stdin = child.stdin.take();
        let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
        let setup = (|| {
            let there = read_line(&mut out, "LISTENING")?;
            let w = stdin.as_mut().expect("piped stdin");
            writeln!(w, "PEER {here}").map_err(|e| e.to_string())?;
            w.flush().map_err(|e| e.to_string())?;
            read_line(&mut out, "READY")?;
            let resolve = |name: &str| {
                rt.resolve_remote_blocking(&there, name)
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("`{name}` not registered on the child"))
            };
            Ok::<_, String>((resolve("sink")?, resolve("pong")?))
        })();
        let (sink, pong) = match setup {
            Ok(p) => p,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        let _ = pong_slot.set(pong);
        Ok(MeshPair {
            rt,
            child,
            stdin,
            current,
            sink,
            pong,
        })
    }

    fn arm(&self, n: usize) -> Arc<Done> {
        let d = Done::new(n);
        *self.current.lock().unwrap() = d.clone();
        d
    }

    /// `n` messages one way; the time until the child's sink handled the last one (its
    /// answer crosses loopback once more, a few microseconds in `n` messages).
    pub fn sink(&self, n: usize) -> Duration {
        let done = self.arm(1);
        let payload = Bytes::from_static(b"0123456789abcdef");
        let start = Instant::now();
        for _ in 0..n {
            self.rt
                .send(self.sink, Message::User(payload.clone()))
                .unwrap();
        }
        self.rt
            .send(self.sink, Message::User(Bytes::from_static(END)))
            .unwrap();
        done.wait();
        start.elapsed()
    }

    /// `n` round trips to the child's `pong` and back.
    pub fn pingpong(&self, n: usize) -> Duration {
        let done = self.arm(n);
        let start = Instant::now();
        self.rt
            .send(self.pong, Message::User(Bytes::from_static(b"ball")))
            .unwrap();
        done.wait();
        start.elapsed()
    }
}

impl Drop for MeshPair {
    fn drop(&mut self) {
        // Closing stdin asks the child to leave; kill it if it has not within a second.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.rt.shutdown();
    }
}

/// The child's side (`iris-bench-node mesh`): serves `sink` and `pong` until stdin closes.
pub fn serve() -> Result<(), String> {
    let rt = Runtime::new();
    rt.set_mesh_config(config());
    let peer_done = Arc::new(std::sync::OnceLock::<Pid>::new());
    let peer_ping = Arc::new(std::sync::OnceLock::<Pid>::new());
    let (r, d) = (rt.clone(), peer_done.clone());
    let sink = rt.spawn_fn(
        move |m| {
            if let Message::User(b) = &m
                && &b[..] == END
                && let Some(&p) = d.get()
            {
                let _ = r.send(p, m);
            }
        },
        1000,
    );
    rt.register("sink", sink).map_err(|e| e.to_string())?;
    let (r, p) = (rt.clone(), peer_ping.clone());
    let pong = rt.spawn_fn(
        move |m| {
            if let Some(&to) = p.get() {
                let _ = r.send(to, m);
            }
        },
        1000,
    );
    rt.register("pong", pong).map_err(|e| e.to_string())?;
    let addr = rt.listen("127.0.0.1:0").map_err(|e| e.to_string())?;
    println!("LISTENING {addr}");
    let stdin = std::io::stdin();
    let mut lines = stdin.lock();
    let there = read_line(&mut lines, "PEER")?;
    let resolve = |name: &str| {
        rt.resolve_remote_blocking(&there, name)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("`{name}` not registered on the bench side"))
    };
    let _ = peer_done.set(resolve("bench-done")?);
    let _ = peer_ping.set(resolve("bench-ping")?);
    println!("READY");
    // Serve until the bench closes our stdin (or kills us).
    let mut rest = String::new();
    while lines.read_line(&mut rest).map_or(0, |n| n) > 0 {
        rest.clear();
    }
    rt.shutdown();
    Ok(())
}

/// The floor of the mesh scenarios: plain Tokio TCP between the same two processes, frames of
/// `[u32 length][payload]` and no actors (`iris-bench-node tcp` echoes `ball`, reads the
/// rest and answers `end` with `done`).
#[derive(Debug)]
pub struct TcpPair {
    rt: tokio::runtime::Runtime,
    child: Child,
    stdin: Option<ChildStdin>,
    conn: Mutex<Option<tokio::net::TcpStream>>,
}

/// One frame in one write: a length prefix written on its own would be a segment of its
/// own under `TCP_NODELAY`, and the reader would wake for it.
async fn write_frame(
    w: &mut (impl tokio::io::AsyncWrite + Unpin),
    scratch: &mut Vec<u8>,
    payload: &[u8],
) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    scratch.clear();
    scratch.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    scratch.extend_from_slice(payload);
    w.write_all(scratch).await
}

async fn read_frame(
    r: &mut (impl tokio::io::AsyncBufRead + Unpin),
    buf: &mut Vec<u8>,
) -> std::io::Result<()> {
    use tokio::io::AsyncReadExt;
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await?;
    buf.resize(u32::from_le_bytes(len) as usize, 0);
    r.read_exact(buf).await.map(|_| ())
}

/// The floor's runtime: one thread that runs the connection's task and polls the socket
/// itself, the best a plain Tokio program does for one connection. On a multi-thread
/// runtime driven by `block_on` from outside, every readiness event would be taken by a
/// worker and handed to the blocked thread (two wake-ups per message).
fn floor_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

impl TcpPair {
    /// Starts the child `bin` in `tcp` mode and connects to it.
    pub fn start(bin: &Path) -> Result<TcpPair, String> {
        let rt = floor_runtime();
        let mut child = Command::new(bin)
            .arg("tcp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        let stdin = child.stdin.take();
        let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
        let conn = read_line(&mut out, "LISTENING").and_then(|addr| {
            let s = rt
                .block_on(tokio::net::TcpStream::connect(&addr))
                .map_err(|e| e.to_string())?;
            s.set_nodelay(true).map_err(|e| e.to_string())?;
            Ok(s)
        });
        let conn = match conn {
            Ok(c) => c,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        Ok(TcpPair {
            rt,
            child,
            stdin,
            conn: Mutex::new(Some(conn)),
        })
    }

    /// `n` frames one way (buffered, as any framed protocol writes them), until the child
    /// has read the last one.
    pub fn sink(&self, n: usize) -> Duration {
        let mut guard = self.conn.lock().unwrap();
        let conn = guard.as_mut().expect("connected");
        self.rt.block_on(async {
            use tokio::io::AsyncWriteExt;
            let (r, w) = conn.split();
            let mut w = tokio::io::BufWriter::with_capacity(64 * 1024, w);
            let mut r = tokio::io::BufReader::new(r);
            let (mut buf, mut scratch) = (Vec::new(), Vec::new());
            let start = Instant::now();
            for _ in 0..n {
                write_frame(&mut w, &mut scratch, b"0123456789abcdef")
                    .await
                    .unwrap();
            }
            write_frame(&mut w, &mut scratch, END).await.unwrap();
            w.flush().await.unwrap();
            read_frame(&mut r, &mut buf).await.unwrap();
            start.elapsed()
        })
    }

    /// `n` request/response round trips.
    pub fn pingpong(&self, n: usize) -> Duration {
        let mut guard = self.conn.lock().unwrap();
        let conn = guard.as_mut().expect("connected");
        self.rt.block_on(async {
            let (r, mut w) = conn.split();
            let mut r = tokio::io::BufReader::new(r);
            let (mut buf, mut scratch) = (Vec::new(), Vec::new());
            let start = Instant::now();
            for _ in 0..n {
                write_frame(&mut w, &mut scratch, b"ball").await.unwrap();
                read_frame(&mut r, &mut buf).await.unwrap();
            }
            start.elapsed()
        })
    }
}

impl Drop for TcpPair {
    fn drop(&mut self) {
        drop(self.conn.lock().unwrap().take());
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The child's side of [`TcpPair`] (`iris-bench-node tcp`): serves one connection; exits when
/// its stdin closes.
pub fn serve_tcp() -> Result<(), String> {
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        std::process::exit(0);
    });
    let rt = floor_runtime();
    rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        println!("LISTENING {}", l.local_addr().map_err(|e| e.to_string())?);
        let (mut s, _) = l.accept().await.map_err(|e| e.to_string())?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        let (r, mut w) = s.split();
        let mut r = tokio::io::BufReader::with_capacity(64 * 1024, r);
        let (mut buf, mut scratch) = (Vec::new(), Vec::new());
        while read_frame(&mut r, &mut buf).await.is_ok() {
            match &buf[..] {
                b"ball" => write_frame(&mut w, &mut scratch, b"ball").await,
                END => write_frame(&mut w, &mut scratch, b"done").await,
                _ => Ok(()),
            }
            .map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}
