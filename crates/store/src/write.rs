//! The request path's writes (accept, begin an attempt, finish) as both
//! engines' writers receive them: an engine's side of the [`Store`](crate::Store)
//! seam turns each call into a [`Write`] carrying its caller's answer
//! channel; the engine's writer applies it in a group and answers through
//! it ([`Write::answer`], [`Write::fail`]). What else a writer does is the
//! engine's own (the embedded writer's restores, purges and reclaims).

use reroute_core::{CorrelationId, Timestamp};
use tokio::sync::oneshot;

use crate::{Acceptance, Attempt, NewPayment, Outcome, StoreError, StoreResult};

/// A write of the request path, waiting for a writer.
pub(crate) enum Write {
    Accept(
        NewPayment,
        Option<Attempt>,
        oneshot::Sender<StoreResult<Acceptance>>,
    ),
    BeginAttempt(CorrelationId, Attempt, oneshot::Sender<StoreResult<bool>>),
    /// The instant is when the processor answered.
    Finish(
        CorrelationId,
        Outcome,
        Timestamp,
        oneshot::Sender<StoreResult<bool>>,
    ),
}

/// What one write came to.
pub(crate) enum Answer {
    Acceptance(Acceptance),
    Flag(bool),
}

impl Write {
    /// The payment the write is about.
    pub(crate) fn id(&self) -> CorrelationId {
        match self {
            Write::Accept(p, _, _) => p.id,
            Write::BeginAttempt(id, _, _) | Write::Finish(id, _, _, _) => *id,
        }
    }

    pub(crate) fn fail(self, e: StoreError) {
        // A caller that went away no longer needs the answer.
        match self {
            Write::Accept(_, _, tx) => drop(tx.send(Err(e))),
            Write::BeginAttempt(_, _, tx) | Write::Finish(_, _, _, tx) => drop(tx.send(Err(e))),
        }
    }

    pub(crate) fn answer(self, answer: Answer) {
        match (self, answer) {
            (Write::Accept(_, _, tx), Answer::Acceptance(a)) => drop(tx.send(Ok(a))),
            (Write::BeginAttempt(_, _, tx), Answer::Flag(f))
            | (Write::Finish(_, _, _, tx), Answer::Flag(f)) => drop(tx.send(Ok(f))),
            (write, _) => write.fail(StoreError::Unavailable(
                "internal: a write got another kind's answer".into(),
            )),
        }
    }
}
