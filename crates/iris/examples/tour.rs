//! A short tour of Iris from Rust: push and pull actors, exit reasons, children, bounded
//! mailboxes, timers, virtual actors and hot swap. Run with `cargo xtask demo`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iris::prelude::*;
use iris::{Behavior, SpawnOptions};

fn wait_until(mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn text(m: &Message) -> String {
    match m {
        Message::User(b) => String::from_utf8_lossy(b).into_owned(),
        Message::System(s) => format!("<system {}>", s.type_name()),
    }
}

fn main() {
    // Panics inside actors are expected in this tour: print one line instead of a backtrace.
    std::panic::set_hook(Box::new(|info| eprintln!("  (panic hook) {info}")));
    let rt = Runtime::new();
    println!("== Iris tour (Rust) ==");

    // 1. Push actors: a handler per message, one at a time, in order.
    let processed = Arc::new(AtomicUsize::new(0));
    let p = processed.clone();
    let start = Instant::now();
    let workers: Vec<Pid> = (0..10_000)
        .map(|_| {
            let p = p.clone();
            rt.spawn_fn(
                move |_m| {
                    p.fetch_add(1, Ordering::Relaxed);
                },
                50,
            )
        })
        .collect();
    for &w in &workers {
        rt.send(w, Message::User(Bytes::from_static(b"job")))
            .unwrap();
    }
    wait_until(|| processed.load(Ordering::Relaxed) == workers.len());
    println!(
        "[push] 10,000 actors spawned and each processed one message in {:?}",
        start.elapsed()
    );
    for &w in &workers {
        rt.stop(w);
    }

    // 2. Exit reasons: a panic ends only its actor, with the panic message.
    let crasher = rt.spawn_fn(|_m| -> () { panic!("division by zero in a handler") }, 10);
    rt.send(crasher, Message::User(Bytes::from_static(b"boom")))
        .unwrap();
    let info = rt.join(crasher).unwrap();
    println!(
        "[exit] pid {crasher} ended with {} ({})",
        info.reason,
        info.metadata.unwrap_or_default()
    );

    // 3. Pull actor on its own thread, with selective receive.
    let pull = rt
        .spawn_with_mailbox(|mut rx| {
            let urgent = rx
                .selective_recv_blocking(|m| text(m).starts_with("urgent"), None)
                .unwrap();
            println!("[pull] selective receive picked {:?} first", text(&urgent));
            while let Ok(m) = rx.recv_blocking(Some(Duration::from_millis(200))) {
                println!("[pull] then {:?}", text(&m));
            }
        })
        .unwrap();
    for m in ["routine 1", "routine 2", "urgent!"] {
        rt.send(pull, Message::User(Bytes::from(m))).unwrap();
    }
    println!("[pull] ended: {}", rt.join(pull).unwrap().reason);

    // 4. Structured concurrency: children die with their parent.
    let parent = rt.spawn_fn(|_m| Flow::Stop, 10);
    let child = rt.spawn_child_handler_with_budget(parent, |_m| async {}, 10);
    rt.send(parent, Message::User(Bytes::from_static(b"quit")))
        .unwrap();
    rt.join(parent);
    println!(
        "[children] parent exited; child {child} alive: {}",
        rt.is_alive(child)
    );

    // 5. Bounded mailbox with DropOld: exactly one message is lost.
    let gate = Arc::new(std::sync::Barrier::new(2));
    let g = gate.clone();
    let bounded = rt
        .spawn_with_mailbox_opts(
            move |mut rx| {
                g.wait();
                let mut got = Vec::new();
                while let Ok(m) = rx.recv_blocking(Some(Duration::from_millis(100))) {
                    got.push(text(&m));
                }
                println!("[bounded] capacity 3 + DropOld received {got:?}");
            },
            SpawnOptions {
                capacity: Some(3),
                ..Default::default()
            },
        )
        .unwrap();
    rt.set_overflow_policy(bounded, OverflowPolicy::DropOld)
        .unwrap();
    for i in 0..4 {
        rt.send(bounded, Message::User(Bytes::from(format!("m{i}"))))
            .unwrap();
    }
    gate.wait();
    rt.join(bounded);

    // 6. Timers and a virtual actor that starts on its first message.
    let ticks = Arc::new(AtomicUsize::new(0));
    let t = ticks.clone();
    let lazy = rt.spawn_virtual_handler_with_budget(
        move |_m| {
            let t = t.clone();
            async move {
                t.fetch_add(1, Ordering::Relaxed);
            }
        },
        10,
        Some(Duration::from_millis(300)),
    );
    println!(
        "[virtual] pid {lazy} reserved, dormant: {}",
        rt.is_dormant(lazy)
    );
    let timer = rt.send_interval(lazy, 20, Bytes::from_static(b"tick"));
    wait_until(|| ticks.load(Ordering::Relaxed) >= 3);
    rt.cancel_timer(timer);
    println!(
        "[virtual] activated by an interval timer, {} ticks so far; idles out with {}",
        ticks.load(Ordering::Relaxed),
        rt.join(lazy).unwrap().reason
    );

    // 7. Hot swap with rollback.
    let log = Arc::new(Mutex::new(Vec::new()));
    let make = |tag: &'static str| {
        let l = log.clone();
        Behavior::from_fn(move |_m| l.lock().unwrap().push(tag))
    };
    let svc = rt
        .try_spawn_behavior(make("logic A"), SpawnOptions::default())
        .unwrap();
    let send = |n| {
        rt.send(svc, Message::User(Bytes::from_static(b"req")))
            .unwrap();
        wait_until(|| log.lock().unwrap().len() == n);
    };
    send(1);
    let v = rt
        .hot_swap_behavior(svc, make("logic B (upgraded)"))
        .unwrap();
    send(2);
    rt.rollback_behavior(svc, 1).unwrap();
    send(3);
    println!(
        "[hot swap] version {v} installed then rolled back: {:?}",
        log.lock().unwrap()
    );

    // 8. Supervision: a crashing worker is restarted by its factory, re-registered under its
    //    path, and the supervisor gives up (Shutdown) past 3 restarts in 5 s.
    let sup = rt
        .spawn_supervisor(iris::SupervisorSpec::default())
        .unwrap();
    let starts = Arc::new(AtomicUsize::new(0));
    let make_worker = {
        let (rt, starts) = (rt.clone(), starts.clone());
        move || {
            starts.fetch_add(1, Ordering::SeqCst);
            rt.spawn_fn(|_m| Err::<(), _>("worker crashed"), 10)
        }
    };
    let first = make_worker();
    rt.register_path("/svc/worker", first).unwrap();
    let factory: iris::Factory = {
        let make = make_worker.clone();
        Arc::new(move || Ok(make()))
    };
    rt.supervise(
        sup,
        first,
        iris::ChildOptions {
            factory: Some(factory),
            ..Default::default()
        },
    )
    .unwrap();
    let mut last = first;
    while rt.is_alive(sup) {
        let Some(current) = rt.whereis_path("/svc/worker") else {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        };
        if current != last {
            println!("[supervision] restarted: /svc/worker is now pid {current}");
            last = current;
        }
        let _ = rt.send(current, Message::User(Bytes::from_static(b"crash")));
        std::thread::sleep(Duration::from_millis(5));
    }
    println!(
        "[supervision] {} starts, then the supervisor gave up with {}",
        starts.load(Ordering::SeqCst),
        rt.join(sup).unwrap().reason
    );

    // 9. The mesh: a second node on loopback, an authenticated connection, a remote actor
    //    reached through a local proxy PID, and its crash seen here.
    let cookie = Some(b"tour-cookie".to_vec());
    let remote = Runtime::new();
    let config = iris::MeshConfig {
        heartbeat: Duration::from_millis(200),
        cookie,
        ..Default::default()
    };
    remote.set_mesh_config(config.clone());
    rt.set_mesh_config(config);
    let greeter = remote.spawn_fn(
        |m| match m {
            Message::User(b) if &b[..] == b"crash" => Err("remote crash"),
            Message::User(b) => {
                println!("[mesh] node B got {:?}", String::from_utf8_lossy(&b));
                Ok(())
            }
            _ => Ok(()),
        },
        10,
    );
    remote.register("greeter", greeter).unwrap();
    let addr = remote.listen("127.0.0.1:0").unwrap().to_string();
    println!("[mesh] node B listens on {addr}");
    let proxy = rt
        .resolve_remote_blocking(&addr, "greeter")
        .unwrap()
        .expect("registered on B");
    println!("[mesh] node A resolved \"greeter\" to local proxy pid {proxy}");
    rt.send(proxy, Message::User(Bytes::from_static(b"hello from A")))
        .unwrap();
    rt.monitor_remote_blocking(&addr, greeter).unwrap();
    rt.send(proxy, Message::User(Bytes::from_static(b"crash")))
        .unwrap();
    let info = rt.join(proxy).unwrap();
    println!(
        "[mesh] the remote actor crashed; its proxy on A exited with {} ({})",
        info.reason,
        info.metadata.unwrap_or_default()
    );
    remote.shutdown();

    // 10. JIT offload: a Python-semantics expression compiled by Cranelift, called directly
    //     and from a pool of actors (the `strategy="actor"` shape of `@iris.offload`).
    let opts = iris::jit::CompileOptions::default();
    let magnitude = Arc::new(
        iris::jit::Jit::compile("(x*x + y*y + z*z) ** 0.5", &["x", "y", "z"], &opts).unwrap(),
    );
    let value = |v: f64| iris::jit::Value::F64(v);
    println!(
        "[jit] compiled in {:?}; vector_magnitude(1, 2, 3) = {:?}",
        magnitude.compile_time(),
        magnitude
            .call_scalar(&[value(1.0), value(2.0), value(3.0)])
            .unwrap()
    );
    let results = Arc::new(Mutex::new(Vec::new()));
    let pool: Vec<Pid> = (0..4)
        .map(|_| {
            let (f, results) = (magnitude.clone(), results.clone());
            rt.spawn_fn(
                move |m| {
                    let Message::User(b) = m else { return };
                    let x = f64::from(b[0]);
                    let r = f.call_scalar(&[value(x), value(x), value(x)]).unwrap();
                    results.lock().unwrap().push((x as u8, r));
                },
                10,
            )
        })
        .collect();
    for i in 0..8u8 {
        rt.send(
            pool[usize::from(i) % pool.len()],
            Message::User(Bytes::from(vec![i])),
        )
        .unwrap();
    }
    wait_until(|| results.lock().unwrap().len() == 8);
    let mut got = results.lock().unwrap().clone();
    got.sort_by_key(|(i, _)| *i);
    println!("[jit] 4 offload actors computed |(i, i, i)| for i in 0..8: {got:?}");

    rt.shutdown();
    println!("== done ==");
}
