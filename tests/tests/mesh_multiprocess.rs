//! The mesh between OS processes on 127.0.0.1: a second process runs `iris-test-node`.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use iris::prelude::*;
use iris::{ChildOptions, Factory, MeshConfig, MeshError, SupervisorSpec};
use iris_wire::{DecodedFrame, Frame, FrameCodec, Handshake};
use tokio_util::codec::{Decoder, Encoder};

const COOKIE: &str = "multiprocess-test-cookie";

struct Node {
    child: Child,
    lines: mpsc::Receiver<String>,
    addr: String,
}

impl Node {
    fn start(listen: &str, heartbeat_ms: u64) -> Node {
        let mut child = Command::new(env!("CARGO_BIN_EXE_iris-test-node"))
            .args([
                "--listen",
                listen,
                "--heartbeat-ms",
                &heartbeat_ms.to_string(),
            ])
            .env("IRIS_COOKIE", COOKIE)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the node process");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut node = Node {
            child,
            lines,
            addr: String::new(),
        };
        let first = node.expect_line(|l| l.starts_with("LISTENING "));
        node.addr = first["LISTENING ".len()..].to_owned();
        node
    }

    fn expect_line(&mut self, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if want(&line) => return line,
                Ok(_) => {}
                Err(e) => panic!("no expected line from the node: {e}"),
            }
        }
    }

    fn kill9(&mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client(heartbeat_ms: u64, cookie: &str) -> Runtime {
    let rt = Runtime::new();
    rt.set_mesh_config(MeshConfig {
        heartbeat: Duration::from_millis(heartbeat_ms),
        missed: 3,
        io_timeout: Duration::from_secs(3),
        cookie: Some(cookie.as_bytes().to_vec()),
        ..MeshConfig::default()
    });
    rt
}

fn text(s: &str) -> Message {
    Message::User(Bytes::copy_from_slice(s.as_bytes()))
}

#[test]
fn mesh_mp_resolve_and_send() {
    let mut node = Node::start("127.0.0.1:0", 1000);
    let rt = client(1000, COOKIE);
    let echo = rt
        .resolve_remote_blocking(&node.addr, "echo")
        .unwrap()
        .unwrap();
    rt.send(echo, text("hello over tcp")).unwrap();
    node.expect_line(|l| l == "ECHO hello over tcp");
    assert!(rt.send_remote(&node.addr, echo, Bytes::from("again")));
    node.expect_line(|l| l == "ECHO again");
    assert_eq!(
        rt.resolve_remote_blocking(&node.addr, "nobody").unwrap(),
        None
    );
    assert!(rt.is_node_up(&node.addr, Duration::from_secs(2)));
}

#[test]
fn mesh_mp_hundred_thousand_messages_complete_and_in_order() {
    let mut node = Node::start("127.0.0.1:0", 1000);
    let rt = client(1000, COOKIE);
    let sink = rt
        .resolve_remote_blocking(&node.addr, "sink")
        .unwrap()
        .unwrap();
    for i in 0..100_000u64 {
        rt.send(
            sink,
            Message::User(Bytes::copy_from_slice(&i.to_be_bytes())),
        )
        .unwrap();
    }
    rt.send(sink, text("?")).unwrap();
    node.expect_line(|l| l == "SINK count=100000 errors=0");
}

#[test]
fn mesh_mp_kill_9_is_detected_as_disconnect() {
    let mut node = Node::start("127.0.0.1:0", 200);
    let rt = client(200, COOKIE);
    let echo = rt
        .resolve_remote_blocking(&node.addr, "echo")
        .unwrap()
        .unwrap();
    let watcher = rt.spawn_observed_handler(10).unwrap();
    rt.monitor(watcher, echo).unwrap();
    let killed = Instant::now();
    node.kill9();
    let info = rt.join_timeout(echo, Duration::from_secs(10)).unwrap();
    let took = killed.elapsed();
    assert_eq!(info.reason, ExitReason::Disconnect);
    // heartbeat x missed + 1 s
    assert!(
        took < Duration::from_millis(200 * 3 + 1000),
        "took {took:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !rt.get_messages(watcher).iter().any(|m| {
        matches!(m.as_system(), Some(SystemMessage::Down { info, .. }) if info.reason == ExitReason::Disconnect)
    }) {
        assert!(Instant::now() < deadline, "no DOWN(Disconnect) at the local monitor");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!rt.is_node_up(&node.addr, Duration::from_millis(500)));
}

#[test]
fn mesh_mp_self_healing_supervisor_reconnects_when_the_node_returns() {
    let mut node = Node::start("127.0.0.1:0", 200);
    let addr = node.addr.clone();
    let rt = client(200, COOKIE);
    let resolves = Arc::new(AtomicUsize::new(0));
    // The factory re-resolves until the node is back (it runs only to restart).
    let factory: Factory = {
        let (rt, addr, resolves) = (rt.clone(), addr.clone(), resolves.clone());
        Arc::new(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                resolves.fetch_add(1, Ordering::SeqCst);
                if let Ok(Some(pid)) = rt.resolve_remote_blocking(&addr, "echo") {
                    return Ok(pid);
                }
                if Instant::now() > deadline {
                    return Err("node did not come back".to_owned());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let first = rt.resolve_remote_blocking(&addr, "echo").unwrap().unwrap();
    let sup = rt.spawn_supervisor(SupervisorSpec::default()).unwrap();
    rt.supervise(
        sup,
        first,
        ChildOptions {
            factory: Some(factory),
            ..ChildOptions::default()
        },
    )
    .unwrap();
    assert_eq!(
        resolves.load(Ordering::SeqCst),
        0,
        "factory not called at registration"
    );
    node.kill9();
    assert_eq!(
        rt.join_timeout(first, Duration::from_secs(10))
            .unwrap()
            .reason,
        ExitReason::Disconnect
    );
    // The node comes back on the same address.
    let mut again = Node::start(&addr, 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    let healed = loop {
        let kids = rt.supervisor_children(sup);
        if let Some(&p) = kids.first()
            && p != first
            && rt.is_alive(p)
        {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "the supervisor never reconnected"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    rt.send(healed, text("healed")).unwrap();
    again.expect_line(|l| l == "ECHO healed");
}

#[test]
fn mesh_mp_wrong_cookie_can_neither_resolve_nor_send() {
    let mut node = Node::start("127.0.0.1:0", 1000);
    let intruder = client(1000, "not-the-cookie");
    assert!(matches!(
        intruder.resolve_remote_blocking(&node.addr, "echo"),
        Err(MeshError::Handshake(_) | MeshError::Unreachable(_))
    ));
    assert!(!intruder.send_remote(&node.addr, 1, Bytes::from("sneaky")));
    // The node serves the right cookie afterwards, and never printed the intruder's text.
    let friend = client(1000, COOKIE);
    let echo = friend
        .resolve_remote_blocking(&node.addr, "echo")
        .unwrap()
        .unwrap();
    friend.send(echo, text("friend")).unwrap();
    let line = node.expect_line(|l| l.starts_with("ECHO"));
    assert_eq!(line, "ECHO friend");
}

/// Completes the handshake by hand on a raw socket, then returns it.
fn raw_session(addr: &str) -> (std::net::TcpStream, BytesMut, FrameCodec) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut codec = FrameCodec::new();
    let mut rbuf = BytesMut::new();
    let cookie = iris_wire::Cookie::new(COOKIE.as_bytes().to_vec()).unwrap();
    let mut hs = Handshake::new(cookie, 99).unwrap();
    let send = |s: &mut std::net::TcpStream, f: Frame| {
        let mut out = BytesMut::new();
        FrameCodec::new().encode(f, &mut out).unwrap();
        s.write_all(&out).unwrap();
    };
    send(&mut s, hs.hello());
    loop {
        let item = next_frame(&mut s, &mut rbuf, &mut codec);
        let DecodedFrame::Frame(frame) = item else {
            panic!("rejected during handshake")
        };
        let step = hs.on_frame(frame).unwrap();
        if let Some(reply) = step.reply {
            send(&mut s, reply);
        }
        if step.established.is_some() {
            return (s, rbuf, codec);
        }
    }
}

fn next_frame(
    s: &mut std::net::TcpStream,
    buf: &mut BytesMut,
    codec: &mut FrameCodec,
) -> DecodedFrame {
    loop {
        if let Some(item) = codec.decode(buf).unwrap() {
            return item;
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn mesh_mp_garbage_oversized_and_truncated_frames_leave_the_node_serving() {
    let mut node = Node::start("127.0.0.1:0", 1000);
    // Unauthenticated garbage: closed before it reaches anything.
    for junk in [
        &b"\x00\x00\x00\x05\x00garbage"[..],
        &[0xff; 64][..],
        &[0, 0, 0, 20, 0][..],
    ] {
        let mut s = std::net::TcpStream::connect(&node.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.write_all(junk);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    }
    // Authenticated, then an oversized frame and an unknown type: each is answered with an
    // error frame and the same connection keeps working.
    let (mut s, mut buf, mut codec) = raw_session(&node.addr);
    let mut oversized = Vec::new();
    oversized.extend_from_slice(&(2u32 * 1024 * 1024).to_be_bytes());
    oversized.push(0x00);
    oversized.resize(4 + 2 * 1024 * 1024, 0xAB);
    s.write_all(&oversized).unwrap();
    s.write_all(&[0, 0, 0, 3, 0x7f, 1, 2]).unwrap(); // unknown type 0x7f
    let mut errors = 0;
    while errors < 2 {
        match next_frame(&mut s, &mut buf, &mut codec) {
            DecodedFrame::Frame(Frame::Error { .. }) => errors += 1,
            DecodedFrame::Frame(Frame::Ping { nonce }) => {
                let mut out = BytesMut::new();
                codec.encode(Frame::Pong { nonce }, &mut out).unwrap();
                s.write_all(&out).unwrap();
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let mut out = BytesMut::new();
    codec
        .encode(
            Frame::ResolveRequest {
                req_id: 7,
                name: "echo".into(),
            },
            &mut out,
        )
        .unwrap();
    s.write_all(&out).unwrap();
    let echo = loop {
        if let DecodedFrame::Frame(Frame::ResolveReply { req_id: 7, pid }) =
            next_frame(&mut s, &mut buf, &mut codec)
        {
            break pid.expect("echo is registered");
        }
    };
    // A truncated frame (the socket closes mid-frame) costs only that connection.
    s.write_all(&[0, 0, 0, 100, 0x00, 1, 2, 3]).unwrap();
    drop(s);
    let rt = client(1000, COOKIE);
    assert!(rt.send_remote(&node.addr, echo, Bytes::from("still serving")));
    node.expect_line(|l| l == "ECHO still serving");
}

#[test]
fn mesh_mp_thirty_second_idle_gap_loses_nothing() {
    let mut node = Node::start("127.0.0.1:0", 1000);
    let rt = client(1000, COOKIE);
    let sink = rt
        .resolve_remote_blocking(&node.addr, "sink")
        .unwrap()
        .unwrap();
    rt.send(
        sink,
        Message::User(Bytes::copy_from_slice(&0u64.to_be_bytes())),
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(30));
    for i in 1..1000u64 {
        rt.send(
            sink,
            Message::User(Bytes::copy_from_slice(&i.to_be_bytes())),
        )
        .unwrap();
    }
    rt.send(sink, text("?")).unwrap();
    node.expect_line(|l| l == "SINK count=1000 errors=0");
}
