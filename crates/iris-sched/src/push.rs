//! The push-actor loop: batches from the mailbox, one handler call per message, a reduction
//! budget after which the actor yields to Tokio.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;

use iris_mailbox::Mailbox;

/// What a handler wants after a message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Flow {
    /// Keep handling messages.
    #[default]
    Continue,
    /// End the actor normally.
    Stop,
    /// End the actor because guest code failed; the text describes the failure.
    Crash(String),
    /// End the actor because what runs its code is going away (an embedding interpreter
    /// exiting): the actor ends as if the runtime had shut it down, not normally.
    Shutdown,
}

/// The result of calling a handler on one message: finished at once, or a future to await.
pub enum Step {
    /// The handler finished synchronously.
    Done(Flow),
    /// The handler is asynchronous; the loop awaits it before the next message.
    Async(Pin<Box<dyn Future<Output = Flow> + Send + 'static>>),
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Done(flow) => write!(f, "Done({flow:?})"),
            Step::Async(_) => f.write_str("Async(..)"),
        }
    }
}

/// Why a push loop returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoopEnd {
    /// The mailbox was closed (the actor was stopped).
    Closed,
    /// The handler returned [`Flow::Stop`].
    Stopped,
    /// No message arrived within the idle timeout.
    Idle,
    /// The handler returned [`Flow::Crash`].
    Crashed(String),
    /// The handler returned [`Flow::Shutdown`].
    ShutDown,
}

/// A reduction counter: `budget` messages in a row, then a yield.
#[derive(Debug, Clone, Copy)]
pub struct Reductions {
    budget: usize,
    used: usize,
}

impl Reductions {
    /// A counter with the given budget (at least 1).
    pub fn new(budget: usize) -> Reductions {
        Reductions {
            budget: budget.max(1),
            used: 0,
        }
    }

    /// The budget.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Counts one reduction; yields to the scheduler when the budget is spent.
    pub async fn tick(&mut self) {
        self.used += 1;
        if self.used >= self.budget {
            self.used = 0;
            tokio::task::yield_now().await;
        }
    }
}

/// Runs a push actor: handles messages one at a time, in arrival order, until the mailbox
/// closes, the handler returns anything but [`Flow::Continue`], or (with `idle`) no message
/// arrives in time.
///
/// A stop is noticed after the message being handled: messages still in the current batch are
/// dropped, like the rest of the closed mailbox.
pub async fn push_loop<M, H>(
    mailbox: &Mailbox<M>,
    budget: usize,
    idle: Option<std::time::Duration>,
    mut handler: H,
) -> LoopEnd
where
    H: FnMut(M) -> Step,
{
    let mut reductions = Reductions::new(budget);
    let mut batch = VecDeque::new();
    loop {
        let got = match idle {
            None => mailbox.recv_batch(reductions.budget(), &mut batch).await,
            Some(t) => {
                match tokio::time::timeout(t, mailbox.recv_batch(reductions.budget(), &mut batch))
                    .await
                {
                    Ok(got) => got,
                    Err(_) => return LoopEnd::Idle,
                }
            }
        };
        if !got {
            return LoopEnd::Closed;
        }
        while let Some(msg) = batch.pop_front() {
            let flow = match handler(msg) {
                Step::Done(flow) => flow,
                Step::Async(fut) => fut.await,
            };
            match flow {
                Flow::Continue => {}
                Flow::Stop => return LoopEnd::Stopped,
                Flow::Crash(why) => return LoopEnd::Crashed(why),
                Flow::Shutdown => return LoopEnd::ShutDown,
            }
            if mailbox.is_closed() {
                return LoopEnd::Closed;
            }
            reductions.tick().await;
        }
    }
}
