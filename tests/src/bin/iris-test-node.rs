//! A mesh node for the multi-process tests: listens, registers a few actors, reports what
//! they receive on stdout, and exits when its stdin closes.
//!
//! Actors: `echo` prints `ECHO <text>`; `sink` checks that 8-byte big-endian counters arrive
//! complete and in order and prints `SINK count=<n> errors=<e>` when sent `?`; `crasher`
//! crashes on any message.

use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iris::MeshConfig;
use iris::prelude::*;

fn say(out: &Mutex<std::io::Stdout>, line: String) {
    let mut out = out.lock().unwrap();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn main() {
    let mut listen = "127.0.0.1:0".to_owned();
    let mut heartbeat_ms = 1000u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => listen = args.next().expect("--listen ADDR"),
            "--heartbeat-ms" => {
                heartbeat_ms = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--heartbeat-ms N")
            }
            other => panic!("unknown argument {other}"),
        }
    }
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let rt = Runtime::new();
    rt.set_mesh_config(MeshConfig {
        heartbeat: Duration::from_millis(heartbeat_ms),
        ..MeshConfig::default()
    });

    let o = out.clone();
    let echo = rt.spawn_fn(
        move |m| {
            if let Message::User(b) = m {
                say(&o, format!("ECHO {}", String::from_utf8_lossy(&b)));
            }
        },
        100,
    );
    rt.register("echo", echo).unwrap();

    let (next, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let o = out.clone();
    let sink = rt.spawn_fn(
        move |m| {
            let Message::User(b) = m else { return };
            if &b[..] == b"?" {
                let (n, e) = (next.load(Ordering::SeqCst), errors.load(Ordering::SeqCst));
                say(&o, format!("SINK count={n} errors={e}"));
            } else if b.len() == 8 {
                let i = u64::from_be_bytes(b[..8].try_into().unwrap());
                if next.fetch_add(1, Ordering::SeqCst) != i {
                    errors.fetch_add(1, Ordering::SeqCst);
                }
            } else {
                errors.fetch_add(1, Ordering::SeqCst);
            }
        },
        1000,
    );
    rt.register("sink", sink).unwrap();

    let crasher = rt.spawn_fn(|_m| Err::<(), _>("crashed on request"), 10);
    rt.register("crasher", crasher).unwrap();

    let addr = rt.listen(&listen).expect("listen");
    say(&out, format!("LISTENING {addr}"));
    // Serve until the parent closes our stdin (or kills us).
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        if line.is_err() {
            break;
        }
    }
    rt.shutdown();
}
