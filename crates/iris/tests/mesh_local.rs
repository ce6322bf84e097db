//! The mesh between runtimes in one process (the multi-process tests live in `tests/`).

mod common;

use common::wait_until;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iris::prelude::*;
use iris::{MeshConfig, MeshError};

fn config(cookie: &str) -> MeshConfig {
    MeshConfig {
        heartbeat: Duration::from_millis(100),
        missed: 3,
        cookie: Some(cookie.as_bytes().to_vec()),
        io_timeout: Duration::from_secs(2),
        ..MeshConfig::default()
    }
}

fn node(cookie: &str) -> (Runtime, String) {
    let rt = Runtime::new();
    rt.set_mesh_config(config(cookie));
    let addr = rt.listen("127.0.0.1:0").unwrap();
    assert_ne!(addr.port(), 0);
    (rt, addr.to_string())
}

fn recorder(rt: &Runtime, name: &str) -> Arc<Mutex<Vec<Bytes>>> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let pid = rt.spawn_fn(
        move |m| {
            if let Message::User(b) = m {
                l.lock().unwrap().push(b);
            }
        },
        100,
    );
    rt.register(name, pid).unwrap();
    log
}

#[test]
fn mesh_listen_returns_the_bound_port_and_bind_failures_are_errors() {
    let (rt, addr) = node("c1");
    assert_eq!(rt.listen_addr().unwrap().to_string(), addr);
    let other = Runtime::new();
    other.set_mesh_config(config("c1"));
    assert!(matches!(other.listen(&addr), Err(MeshError::Bind(_))));
    assert!(matches!(
        other.listen("not an address"),
        Err(MeshError::Bind(_))
    ));
    assert!(rt.close_listener());
    assert!(!rt.close_listener());
}

#[test]
fn mesh_resolve_and_send_are_location_transparent() {
    let (server, addr) = node("secret");
    let log = recorder(&server, "auth_worker");
    let client = Runtime::new();
    client.set_mesh_config(config("secret"));
    let proxy = client
        .resolve_remote_blocking(&addr, "auth_worker")
        .unwrap()
        .expect("registered there");
    assert!(client.is_alive(proxy), "a local proxy PID");
    client
        .send(proxy, Message::User(Bytes::from("login")))
        .unwrap();
    assert!(client.send_remote(&addr, proxy, Bytes::from("via send_remote")));
    let handle = client.handle().clone();
    assert!(handle.block_on(client.send_remote_async(&addr, proxy, Bytes::from("async"))));
    wait_until("all delivered", || log.lock().unwrap().len() == 3);
    assert_eq!(log.lock().unwrap()[2], Bytes::from("async"));
    assert_eq!(log.lock().unwrap()[0], Bytes::from("login"));
    assert_eq!(
        client.resolve_remote_blocking(&addr, "nobody").unwrap(),
        None
    );
    // The same remote actor resolves to the same proxy.
    assert_eq!(
        client
            .resolve_remote_blocking(&addr, "auth_worker")
            .unwrap(),
        Some(proxy)
    );
}

#[test]
fn mesh_hundred_thousand_messages_arrive_complete_and_in_order() {
    let (server, addr) = node("order");
    let next = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(AtomicUsize::new(0));
    let (n, b) = (next.clone(), bad.clone());
    let sink = server.spawn_fn(
        move |m| {
            if let Message::User(data) = m {
                let i = u64::from_be_bytes(data[..8].try_into().unwrap());
                if n.fetch_add(1, Ordering::SeqCst) != i {
                    b.fetch_add(1, Ordering::SeqCst);
                }
            }
        },
        1000,
    );
    server.register("sink", sink).unwrap();
    let client = Runtime::new();
    client.set_mesh_config(config("order"));
    let proxy = client
        .resolve_remote_blocking(&addr, "sink")
        .unwrap()
        .unwrap();
    for i in 0..100_000u64 {
        client
            .send(
                proxy,
                Message::User(Bytes::copy_from_slice(&i.to_be_bytes())),
            )
            .unwrap();
    }
    wait_until("all arrived", || next.load(Ordering::SeqCst) == 100_000);
    assert_eq!(bad.load(Ordering::SeqCst), 0, "out of order");
}

#[test]
fn mesh_a_stalled_receiver_fills_the_socket_and_the_queue_and_loses_nothing() {
    // The receiving actor holds its first message until released and has a small `Block`
    // mailbox, so the server's connection reader stops reading: the sender's direct writes
    // find the socket full, the rest waits in the writer and the queue (4 frames, then the
    // proxy blocks). Once released, every frame must arrive, in order.
    let (server, addr) = node("stall");
    let gate = Arc::new(tokio::sync::Notify::new());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (g, log) = (gate.clone(), seen.clone());
    let sink = server
        .spawn_handler_bounded(
            move |m| {
                let (g, log) = (g.clone(), log.clone());
                async move {
                    if let Message::User(data) = m {
                        let i = u64::from_be_bytes(data[..8].try_into().unwrap());
                        if i == 0 {
                            g.notified().await;
                        }
                        log.lock().unwrap().push(i);
                    }
                }
            },
            100,
            2,
        )
        .unwrap();
    server
        .set_overflow_policy(sink, OverflowPolicy::Block)
        .unwrap();
    server.register("stalled", sink).unwrap();
    let client = Runtime::new();
    client.set_mesh_config(MeshConfig {
        outbound_capacity: 4,
        ..config("stall")
    });
    let proxy = client
        .resolve_remote_blocking(&addr, "stalled")
        .unwrap()
        .unwrap();
    const N: u64 = 160;
    let mut data = vec![0u8; 512 * 1024];
    for i in 0..N {
        data[..8].copy_from_slice(&i.to_be_bytes());
        client
            .send(proxy, Message::User(Bytes::copy_from_slice(&data)))
            .unwrap();
    }
    // 80 MiB is more than the loopback buffers and a 4-frame queue hold: once the server
    // stops reading, the proxy is stuck with messages left.
    wait_until("the server to stop reading", || {
        server.mailbox_size(sink) == Some(2)
    });
    wait_until("the proxy to back up", || {
        client.mailbox_size(proxy).is_some_and(|n| n > 0)
    });
    gate.notify_one();
    wait_until("all arrived", || seen.lock().unwrap().len() == N as usize);
    assert_eq!(*seen.lock().unwrap(), (0..N).collect::<Vec<_>>());
}

#[test]
fn mesh_wrong_cookie_can_neither_resolve_nor_send_and_the_node_keeps_serving() {
    let (server, addr) = node("right");
    let log = recorder(&server, "svc");
    let intruder = Runtime::new();
    intruder.set_mesh_config(config("wrong"));
    assert!(matches!(
        intruder.resolve_remote_blocking(&addr, "svc"),
        Err(MeshError::Handshake(_) | MeshError::Unreachable(_))
    ));
    assert!(!intruder.send_remote(&addr, 1, Bytes::from("x")));
    assert!(!intruder.is_node_up(&addr, Duration::from_secs(1)));
    let friend = Runtime::new();
    friend.set_mesh_config(config("right"));
    let proxy = friend
        .resolve_remote_blocking(&addr, "svc")
        .unwrap()
        .unwrap();
    friend
        .send(proxy, Message::User(Bytes::from("hi")))
        .unwrap();
    wait_until("friend served", || log.lock().unwrap().len() == 1);
    assert!(friend.is_node_up(&addr, Duration::from_secs(1)));
}

#[test]
fn mesh_garbage_and_broken_handshakes_close_only_that_connection() {
    let (server, addr) = node("g");
    let log = recorder(&server, "svc");
    for junk in [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        &[0, 0, 0, 0][..],
        &[0xff, 0xff, 0xff, 0xff, 0x00][..],
        &[0, 0, 0, 9, 0x05, b'I', b'R'][..],
    ] {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let _ = s.write_all(junk);
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest); // closed by the node (or timed out)
    }
    let client = Runtime::new();
    client.set_mesh_config(config("g"));
    let proxy = client
        .resolve_remote_blocking(&addr, "svc")
        .unwrap()
        .unwrap();
    client
        .send(proxy, Message::User(Bytes::from("still here")))
        .unwrap();
    wait_until("served after garbage", || log.lock().unwrap().len() == 1);
}

#[test]
fn mesh_remote_exit_reaches_the_proxy_and_local_monitors() {
    let (server, addr) = node("m");
    let victim = server.spawn_fn(|_m| Err::<(), _>("remote failure"), 10);
    server.register("victim", victim).unwrap();
    let client = Runtime::new();
    client.set_mesh_config(config("m"));
    let proxy = client.monitor_remote_blocking(&addr, victim).unwrap();
    let watcher = client.spawn_observed_handler(10).unwrap();
    client.monitor(watcher, proxy).unwrap();
    client
        .send(proxy, Message::User(Bytes::from("crash please")))
        .unwrap();
    let info = client.join(proxy).unwrap();
    assert_eq!(info.reason, ExitReason::Crash);
    assert_eq!(info.metadata.as_deref(), Some("remote failure"));
    wait_until("DOWN at the local watcher", || {
        client.get_messages(watcher).iter().any(|m| {
            matches!(m.as_system(), Some(SystemMessage::Down { info, .. }) if info.reason == ExitReason::Crash)
        })
    });
}

#[test]
fn mesh_node_shutdown_is_detected_and_proxies_exit_with_disconnect() {
    let (server, addr) = node("d");
    let _log = recorder(&server, "svc");
    let client = Runtime::new();
    client.set_mesh_config(config("d"));
    let proxy = client
        .resolve_remote_blocking(&addr, "svc")
        .unwrap()
        .unwrap();
    let started = Instant::now();
    server.shutdown();
    drop(server);
    let info = client.join_timeout(proxy, Duration::from_secs(10)).unwrap();
    assert_eq!(info.reason, ExitReason::Disconnect);
    // heartbeat 100 ms x 3 missed, plus one second of slack.
    assert!(
        started.elapsed() < Duration::from_millis(1300),
        "{:?}",
        started.elapsed()
    );
    assert!(!client.is_node_up(&addr, Duration::from_millis(300)));
}

#[test]
fn mesh_remote_link_kills_the_remote_actor_when_the_local_one_crashes() {
    let (server, addr) = node("l");
    let remote = server.spawn_fn(|_m| (), 10);
    let client = Runtime::new();
    client.set_mesh_config(config("l"));
    let local = client.spawn_fn(|_m| Err::<(), _>("local failure"), 10);
    let handle = client.handle().clone();
    let proxy = handle
        .block_on(client.link_remote(local, &addr, remote))
        .unwrap();
    assert!(client.is_alive(proxy));
    client
        .send(local, Message::User(Bytes::from("crash")))
        .unwrap();
    let info = server
        .join_timeout(remote, Duration::from_secs(10))
        .unwrap();
    assert_eq!(info.reason, ExitReason::Killed);
    assert!(info.metadata.unwrap().contains(&local.to_string()));
}

/// Round trips with the reader polling after each read (the default window, a long one) and
/// parking at once: frames of every size, many split across reads, come back intact and in
/// order whichever way the reader waits.
#[test]
fn mesh_round_trips_arrive_intact_with_and_without_busy_polling() {
    for busy_poll in [
        Duration::ZERO,
        MeshConfig::default().busy_poll,
        Duration::from_millis(5),
    ] {
        let cfg = MeshConfig {
            busy_poll,
            ..config("poll")
        };
        let server = Runtime::new();
        server.set_mesh_config(cfg.clone());
        let addr = server.listen("127.0.0.1:0").unwrap().to_string();
        let client = Runtime::new();
        client.set_mesh_config(cfg);
        let client_addr = client.listen("127.0.0.1:0").unwrap().to_string();

        let got = recorder(&client, "back");
        let (s, ca) = (server.clone(), client_addr.clone());
        let reply_to = Arc::new(std::sync::OnceLock::new());
        let r = reply_to.clone();
        let echo = server.spawn_fn(
            move |m| {
                let to = *r.get_or_init(|| {
                    s.resolve_remote_blocking(&ca, "back")
                        .unwrap()
                        .expect("`back` registered")
                });
                s.send(to, m).unwrap();
            },
            100,
        );
        server.register("echo", echo).unwrap();
        let proxy = client
            .resolve_remote_blocking(&addr, "echo")
            .unwrap()
            .unwrap();

        let sizes = [1usize, 7, 100, 4095, 4096, 20_000, 70_000, 250_000];
        let mut sent = Vec::new();
        for round in 0..40usize {
            let size = sizes[round % sizes.len()];
            let data: Bytes = (0..size).map(|i| (i * 31 + round) as u8).collect();
            sent.push(data.clone());
            client.send(proxy, Message::User(data)).unwrap();
            // One at a time: the answer comes while the reader polls (or after it parked).
            wait_until("the echo", || got.lock().unwrap().len() == sent.len());
        }
        assert_eq!(*got.lock().unwrap(), sent, "busy_poll {busy_poll:?}");
        server.shutdown();
        client.shutdown();
    }
}
