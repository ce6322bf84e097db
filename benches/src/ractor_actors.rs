//! The scenarios on ractor 0.16 (unbounded mailboxes by design).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::memory::rss_bytes;
use crate::{Done, Scenarios};

/// ractor actors on a multi-threaded Tokio runtime.
#[derive(Debug)]
pub struct RactorBench {
    rt: tokio::runtime::Runtime,
}

impl RactorBench {
    /// A fresh runtime.
    pub fn new() -> RactorBench {
        RactorBench {
            rt: crate::tokio_runtime(),
        }
    }

    /// Spawns `n` counters (each spawn awaits the actor's start, as ractor does).
    fn counters(&self, n: usize, done: &Arc<Done>) -> Vec<ActorRef<()>> {
        self.rt.block_on(async {
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(Actor::spawn(None, Counter, done.clone()).await.unwrap().0);
            }
            v
        })
    }

    fn stop_all(&self, refs: Vec<ActorRef<()>>) {
        self.rt.block_on(async {
            for r in &refs {
                r.stop(None);
            }
            for r in refs {
                r.wait(None).await.ok();
            }
        });
    }
}

impl Default for RactorBench {
    fn default() -> Self {
        RactorBench::new()
    }
}

struct Counter;

impl Actor for Counter {
    type Msg = ();
    type State = Arc<Done>;
    type Arguments = Arc<Done>;

    async fn pre_start(
        &self,
        _: ActorRef<()>,
        done: Arc<Done>,
    ) -> Result<Arc<Done>, ActorProcessingErr> {
        Ok(done)
    }

    async fn handle(
        &self,
        _: ActorRef<()>,
        _: (),
        done: &mut Arc<Done>,
    ) -> Result<(), ActorProcessingErr> {
        done.hit();
        Ok(())
    }
}

struct Pinger;

impl Actor for Pinger {
    type Msg = ();
    type State = (ActorRef<PongMsg>, Arc<Done>);
    type Arguments = (ActorRef<PongMsg>, Arc<Done>);

    async fn pre_start(
        &self,
        _: ActorRef<()>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(args)
    }

    async fn handle(
        &self,
        _: ActorRef<()>,
        _: (),
        (ponger, done): &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if !done.hit() {
            let _ = ponger.send_message(PongMsg::Ball);
        }
        Ok(())
    }
}

enum PongMsg {
    SetPinger(ActorRef<()>),
    Ball,
}

struct Ponger;

impl Actor for Ponger {
    type Msg = PongMsg;
    type State = Option<ActorRef<()>>;
    type Arguments = ();

    async fn pre_start(
        &self,
        _: ActorRef<PongMsg>,
        _: (),
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(None)
    }

    async fn handle(
        &self,
        _: ActorRef<PongMsg>,
        m: PongMsg,
        pinger: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match m {
            PongMsg::SetPinger(p) => *pinger = Some(p),
            PongMsg::Ball => {
                if let Some(p) = pinger {
                    let _ = p.send_message(());
                }
            }
        }
        Ok(())
    }
}

enum Parent {
    Node(ActorRef<u64>),
    Root(Arc<Done>),
}

impl Parent {
    fn report(&self, v: u64) {
        match self {
            Parent::Node(p) => {
                let _ = p.send_message(v);
            }
            Parent::Root(d) => {
                d.finish_with(v);
            }
        }
    }
}

/// A skynet node: it spawns its children in `post_start`, so a parent's `spawn` only waits
/// for the child's (empty) `pre_start`, not for its whole subtree.
struct SkyNode;

struct SkyState {
    parent: Parent,
    num: u64,
    size: u64,
    sum: u64,
    answers: u32,
}

impl Actor for SkyNode {
    type Msg = u64;
    type State = SkyState;
    type Arguments = (Parent, u64, u64);

    async fn pre_start(
        &self,
        _: ActorRef<u64>,
        (parent, num, size): Self::Arguments,
    ) -> Result<SkyState, ActorProcessingErr> {
        Ok(SkyState {
            parent,
            num,
            size,
            sum: 0,
            answers: 0,
        })
    }

    async fn post_start(
        &self,
        me: ActorRef<u64>,
        s: &mut SkyState,
    ) -> Result<(), ActorProcessingErr> {
        if s.size == 1 {
            s.parent.report(s.num);
            me.stop(None);
            return Ok(());
        }
        let step = s.size / 10;
        for i in 0..10 {
            Actor::spawn(
                None,
                SkyNode,
                (Parent::Node(me.clone()), s.num + i * step, step),
            )
            .await?;
        }
        Ok(())
    }

    async fn handle(
        &self,
        me: ActorRef<u64>,
        v: u64,
        s: &mut SkyState,
    ) -> Result<(), ActorProcessingErr> {
        s.sum += v;
        s.answers += 1;
        if s.answers == 10 {
            s.parent.report(s.sum);
            me.stop(None);
        }
        Ok(())
    }
}

impl Scenarios for RactorBench {
    fn spawn_idle(&self, n: usize) -> (Duration, usize) {
        let before = rss_bytes();
        let start = Instant::now();
        let refs = self.counters(n, &Done::new(0));
        let t = start.elapsed();
        let grown = rss_bytes().saturating_sub(before);
        self.stop_all(refs);
        (t, grown)
    }

    fn fanout(&self, n: usize) -> Duration {
        let done = Done::new(n);
        let refs = self.counters(n, &done);
        let start = Instant::now();
        for r in &refs {
            r.send_message(()).unwrap();
        }
        done.wait();
        let t = start.elapsed();
        self.stop_all(refs);
        t
    }

    fn sink(&self, n: usize) -> Duration {
        let done = Done::new(n);
        let refs = self.counters(1, &done);
        let start = Instant::now();
        for _ in 0..n {
            refs[0].send_message(()).unwrap();
        }
        done.wait();
        let t = start.elapsed();
        self.stop_all(refs);
        t
    }

    fn pingpong(&self, n: usize) -> Duration {
        let done = Done::new(n);
        let (pinger, ponger) = self.rt.block_on(async {
            let ponger = Actor::spawn(None, Ponger, ()).await.unwrap().0;
            let pinger = Actor::spawn(None, Pinger, (ponger.clone(), done.clone()))
                .await
                .unwrap()
                .0;
            (pinger, ponger)
        });
        ponger
            .send_message(PongMsg::SetPinger(pinger.clone()))
            .unwrap();
        let start = Instant::now();
        ponger.send_message(PongMsg::Ball).unwrap();
        done.wait();
        let t = start.elapsed();
        pinger.stop(None);
        ponger.stop(None);
        t
    }

    fn skynet(&self, depth: u32) -> (u64, Duration) {
        let done = Done::new(1);
        let start = Instant::now();
        self.rt.block_on(async {
            Actor::spawn(
                None,
                SkyNode,
                (Parent::Root(done.clone()), 0, 10u64.pow(depth)),
            )
            .await
            .unwrap();
        });
        done.wait();
        (done.value(), start.elapsed())
    }
}
