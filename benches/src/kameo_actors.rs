//! The scenarios on kameo 0.22. Every actor gets an unbounded mailbox, like Iris's default
//! (kameo's own default is bounded at 64, which would make the sender wait for the actor).

use std::sync::Arc;
use std::time::{Duration, Instant};

use kameo::actor::{Actor, ActorRef, Spawn};
use kameo::error::Infallible;
use kameo::mailbox;
use kameo::message::{Context, Message};

use crate::memory::rss_bytes;
use crate::{Done, Scenarios};

/// kameo actors on a multi-threaded Tokio runtime.
#[derive(Debug)]
pub struct KameoBench {
    rt: tokio::runtime::Runtime,
}

impl KameoBench {
    /// A fresh runtime.
    pub fn new() -> KameoBench {
        KameoBench {
            rt: crate::tokio_runtime(),
        }
    }
}

impl Default for KameoBench {
    fn default() -> Self {
        KameoBench::new()
    }
}

fn spawn<A: Actor>(args: A::Args) -> ActorRef<A> {
    A::spawn_with_mailbox(args, mailbox::unbounded())
}

/// Counts every message it handles; reports its start.
struct Counter {
    started: Arc<Done>,
    done: Arc<Done>,
}

impl Actor for Counter {
    type Args = Self;
    type Error = Infallible;

    async fn on_start(state: Self, _: ActorRef<Self>) -> Result<Self, Infallible> {
        state.started.hit();
        Ok(state)
    }
}

struct Tick;

impl Message<Tick> for Counter {
    type Reply = ();
    async fn handle(&mut self, _: Tick, _: &mut Context<Self, ()>) {
        self.done.hit();
    }
}

fn counters(n: usize, done: &Arc<Done>) -> Vec<ActorRef<Counter>> {
    let started = Done::new(n);
    let v: Vec<_> = (0..n)
        .map(|_| {
            spawn(Counter {
                started: started.clone(),
                done: done.clone(),
            })
        })
        .collect();
    started.wait();
    v
}

fn stop_all(rt: &tokio::runtime::Runtime, refs: Vec<ActorRef<Counter>>) {
    rt.block_on(async {
        for r in &refs {
            r.kill();
        }
        for r in &refs {
            r.wait_for_shutdown().await;
        }
    });
}

struct Pinger {
    ponger: ActorRef<Ponger>,
    done: Arc<Done>,
}

#[derive(kameo::Actor)]
struct Ponger {
    pinger: Option<ActorRef<Pinger>>,
}

impl Actor for Pinger {
    type Args = Self;
    type Error = Infallible;
    async fn on_start(state: Self, _: ActorRef<Self>) -> Result<Self, Infallible> {
        Ok(state)
    }
}

struct Ball;
struct SetPinger(ActorRef<Pinger>);

impl Message<Ball> for Pinger {
    type Reply = ();
    async fn handle(&mut self, m: Ball, _: &mut Context<Self, ()>) {
        if !self.done.hit() {
            let _ = self.ponger.tell(m).try_send();
        }
    }
}

impl Message<Ball> for Ponger {
    type Reply = ();
    async fn handle(&mut self, m: Ball, _: &mut Context<Self, ()>) {
        if let Some(p) = &self.pinger {
            let _ = p.tell(m).try_send();
        }
    }
}

impl Message<SetPinger> for Ponger {
    type Reply = ();
    async fn handle(&mut self, m: SetPinger, _: &mut Context<Self, ()>) {
        self.pinger = Some(m.0);
    }
}

enum Parent {
    Node(ActorRef<SkyNode>),
    Root(Arc<Done>),
}

impl Parent {
    fn report(&self, v: u64) {
        match self {
            Parent::Node(p) => {
                let _ = p.tell(Answer(v)).try_send();
            }
            Parent::Root(d) => {
                d.finish_with(v);
            }
        }
    }
}

/// A skynet node: a leaf answers from `on_start`, an inner node spawns ten children there.
struct SkyNode {
    parent: Parent,
    sum: u64,
    answers: u32,
}

struct Answer(u64);

impl Actor for SkyNode {
    type Args = (Parent, u64, u64);
    type Error = Infallible;

    async fn on_start(
        (parent, num, size): (Parent, u64, u64),
        me: ActorRef<Self>,
    ) -> Result<Self, Infallible> {
        if size == 1 {
            parent.report(num);
            me.kill();
        } else {
            let step = size / 10;
            for i in 0..10 {
                let _ = spawn::<SkyNode>((Parent::Node(me.clone()), num + i * step, step));
            }
        }
        Ok(SkyNode {
            parent,
            sum: 0,
            answers: 0,
        })
    }
}

impl Message<Answer> for SkyNode {
    type Reply = ();
    async fn handle(&mut self, m: Answer, ctx: &mut Context<Self, ()>) {
        self.sum += m.0;
        self.answers += 1;
        if self.answers == 10 {
            self.parent.report(self.sum);
            ctx.stop();
        }
    }
}

impl Scenarios for KameoBench {
    fn spawn_idle(&self, n: usize) -> (Duration, usize) {
        let _rt = self.rt.enter();
        let before = rss_bytes();
        let start = Instant::now();
        let refs = counters(n, &Done::new(0));
        let t = start.elapsed();
        let grown = rss_bytes().saturating_sub(before);
        stop_all(&self.rt, refs);
        (t, grown)
    }

    fn fanout(&self, n: usize) -> Duration {
        let _rt = self.rt.enter();
        let done = Done::new(n);
        let refs = counters(n, &done);
        let start = Instant::now();
        for r in &refs {
            r.tell(Tick).try_send().unwrap();
        }
        done.wait();
        let t = start.elapsed();
        stop_all(&self.rt, refs);
        t
    }

    fn sink(&self, n: usize) -> Duration {
        let _rt = self.rt.enter();
        let done = Done::new(n);
        let refs = counters(1, &done);
        let start = Instant::now();
        for _ in 0..n {
            refs[0].tell(Tick).try_send().unwrap();
        }
        done.wait();
        let t = start.elapsed();
        stop_all(&self.rt, refs);
        t
    }

    fn pingpong(&self, n: usize) -> Duration {
        let _rt = self.rt.enter();
        let done = Done::new(n);
        let ponger = spawn(Ponger { pinger: None });
        let pinger = spawn(Pinger {
            ponger: ponger.clone(),
            done: done.clone(),
        });
        ponger.tell(SetPinger(pinger.clone())).try_send().unwrap();
        let start = Instant::now();
        ponger.tell(Ball).try_send().unwrap();
        done.wait();
        let t = start.elapsed();
        pinger.kill();
        ponger.kill();
        t
    }

    fn skynet(&self, depth: u32) -> (u64, Duration) {
        let _rt = self.rt.enter();
        let done = Done::new(1);
        let start = Instant::now();
        let _ = spawn::<SkyNode>((Parent::Root(done.clone()), 0, 10u64.pow(depth)));
        done.wait();
        (done.value(), start.elapsed())
    }
}
