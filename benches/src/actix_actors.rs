//! The scenarios on actix 0.13, each run in a fresh `actix_rt::System` (one thread: the
//! default arbiter runs the senders and the actors alike, as actix applications do).

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, Addr, AsyncContext, Context, Handler, Message};

use crate::memory::rss_bytes;
use crate::{Done, Scenarios};

/// actix actors on the system arbiter.
#[derive(Debug)]
pub struct ActixBench;

fn run<T>(f: impl AsyncFnOnce() -> T) -> T {
    actix_rt::System::new().block_on(f())
}

struct Counter {
    started: Arc<Done>,
    done: Arc<Done>,
}

impl Actor for Counter {
    type Context = Context<Self>;
    fn started(&mut self, _: &mut Context<Self>) {
        self.started.hit();
    }
}

struct Tick;

impl Message for Tick {
    type Result = ();
}

impl Handler<Tick> for Counter {
    type Result = ();
    fn handle(&mut self, _: Tick, _: &mut Context<Self>) {
        self.done.hit();
    }
}

async fn counters(n: usize, done: &Arc<Done>) -> Vec<Addr<Counter>> {
    let started = Done::new(n);
    let v = (0..n)
        .map(|_| {
            Counter {
                started: started.clone(),
                done: done.clone(),
            }
            .start()
        })
        .collect();
    started.wait_async().await;
    v
}

struct Ball;

impl Message for Ball {
    type Result = ();
}

struct Pinger {
    ponger: Addr<Ponger>,
    done: Arc<Done>,
}

impl Actor for Pinger {
    type Context = Context<Self>;
}

impl Handler<Ball> for Pinger {
    type Result = ();
    fn handle(&mut self, m: Ball, _: &mut Context<Self>) {
        if !self.done.hit() {
            self.ponger.do_send(m);
        }
    }
}

struct Ponger {
    pinger: Option<Addr<Pinger>>,
}

impl Actor for Ponger {
    type Context = Context<Self>;
}

struct SetPinger(Addr<Pinger>);

impl Message for SetPinger {
    type Result = ();
}

impl Handler<SetPinger> for Ponger {
    type Result = ();
    fn handle(&mut self, m: SetPinger, _: &mut Context<Self>) {
        self.pinger = Some(m.0);
    }
}

impl Handler<Ball> for Ponger {
    type Result = ();
    fn handle(&mut self, m: Ball, _: &mut Context<Self>) {
        if let Some(p) = &self.pinger {
            p.do_send(m);
        }
    }
}

enum Parent {
    Node(Addr<SkyNode>),
    Root(Arc<Done>),
}

impl Parent {
    fn report(&self, v: u64) {
        match self {
            Parent::Node(p) => p.do_send(Answer(v)),
            Parent::Root(d) => {
                d.finish_with(v);
            }
        }
    }
}

/// A skynet node: a leaf answers from `started`, an inner node spawns ten children there.
struct SkyNode {
    parent: Parent,
    num: u64,
    size: u64,
    sum: u64,
    answers: u32,
}

impl SkyNode {
    fn new(parent: Parent, num: u64, size: u64) -> SkyNode {
        SkyNode {
            parent,
            num,
            size,
            sum: 0,
            answers: 0,
        }
    }
}

impl Actor for SkyNode {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.size == 1 {
            self.parent.report(self.num);
            ctx.stop();
            return;
        }
        let step = self.size / 10;
        for i in 0..10 {
            SkyNode::new(Parent::Node(ctx.address()), self.num + i * step, step).start();
        }
    }
}

struct Answer(u64);

impl Message for Answer {
    type Result = ();
}

impl Handler<Answer> for SkyNode {
    type Result = ();
    fn handle(&mut self, m: Answer, ctx: &mut Context<Self>) {
        self.sum += m.0;
        self.answers += 1;
        if self.answers == 10 {
            self.parent.report(self.sum);
            ctx.stop();
        }
    }
}

impl Scenarios for ActixBench {
    fn spawn_idle(&self, n: usize) -> (Duration, usize) {
        run(async || {
            let before = rss_bytes();
            let start = Instant::now();
            let addrs = counters(n, &Done::new(0)).await;
            let t = start.elapsed();
            let grown = rss_bytes().saturating_sub(before);
            drop(addrs);
            (t, grown)
        })
    }

    fn fanout(&self, n: usize) -> Duration {
        run(async || {
            let done = Done::new(n);
            let addrs = counters(n, &done).await;
            let start = Instant::now();
            for a in &addrs {
                a.do_send(Tick);
            }
            done.wait_async().await;
            start.elapsed()
        })
    }

    fn sink(&self, n: usize) -> Duration {
        run(async || {
            let done = Done::new(n);
            let addrs = counters(1, &done).await;
            let start = Instant::now();
            for _ in 0..n {
                addrs[0].do_send(Tick);
            }
            done.wait_async().await;
            start.elapsed()
        })
    }

    fn pingpong(&self, n: usize) -> Duration {
        run(async || {
            let done = Done::new(n);
            let ponger = Ponger { pinger: None }.start();
            let pinger = Pinger {
                ponger: ponger.clone(),
                done: done.clone(),
            }
            .start();
            ponger.do_send(SetPinger(pinger));
            let start = Instant::now();
            ponger.do_send(Ball);
            done.wait_async().await;
            start.elapsed()
        })
    }

    fn skynet(&self, depth: u32) -> (u64, Duration) {
        run(async || {
            let done = Done::new(1);
            let start = Instant::now();
            SkyNode::new(Parent::Root(done.clone()), 0, 10u64.pow(depth)).start();
            done.wait_async().await;
            (done.value(), start.elapsed())
        })
    }
}
