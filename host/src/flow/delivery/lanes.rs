//! Where a sink's calls run: its instances. With `max_in_flight = 1` the one
//! instance is called on the partition's own thread, as it always was (no
//! thread hop per batch). With more, each call in flight runs on its own
//! instance on its own thread (a wasmtime store is single-threaded), from a
//! pool that grows on demand up to `max_in_flight` and never beyond: memory
//! is bounded by `max_in_flight` × the instance's limits.
//!
//! Every instance switches to a reloaded version on its own, between its
//! calls, so a call in flight finishes on the version it started on.

use crate::config::{FailurePolicy, RetryConfig};
use crate::contract::{Batch, SinkVerdict, Source};
use crate::flow::component::{CallError, Sink};
use crate::flow::failure::{FailureHandling, Guarded};
use crossbeam_channel::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A finished call, as the partition's worker takes it back.
pub struct Done {
    /// The sink's index in configuration order.
    pub sink: usize,
    /// The call's number, unique per sink.
    pub call: u64,
    /// The lane that ran it, free again.
    pub lane: usize,
    /// The verdicts, or why the whole call failed.
    pub result: Result<Vec<SinkVerdict>, CallError>,
    /// The failure handling of the version that ran the call.
    pub handling: FailureHandling,
    /// How long the call took.
    pub elapsed: Duration,
}

/// A call to start: the events offered (exactly those, in order).
pub struct Job {
    /// The call's number.
    pub call: u64,
    /// The events.
    pub batch: Arc<Batch>,
    /// Whether it retries events offered before (a reload then logs so).
    pub retrying: bool,
}

/// Runs one call on `g`, switching it to a reloaded version first.
fn run<S: Sink>(g: &mut Guarded<S>, source: &Source, sink: usize, lane: usize, job: Job) -> Done {
    if let Some(&first) = job.batch.offsets().first() {
        g.switch_version(first, job.retrying);
    }
    let started = Instant::now();
    // A panic in the call (a bug, not a guest's trap, which is an error)
    // must not leave the call in flight for ever: it fails the call, and
    // the events are retried like any failed call's.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        g.guest.deliver(source, &job.batch)
    }))
    .unwrap_or_else(|_| Err("the sink call panicked (a bug in flumen; see the log)".into()));
    Done {
        sink,
        call: job.call,
        lane,
        result,
        handling: g.handling.clone(),
        elapsed: started.elapsed(),
    }
}

/// One sink's instances for one partition.
pub enum Lanes<S> {
    /// One instance, called on the worker's thread.
    Inline {
        /// The instance.
        guest: Box<Guarded<S>>,
        /// The partition, as the sink is told it.
        source: Source,
        /// The sink's index.
        sink: usize,
    },
    /// Instances on threads of their own.
    Threads(Pool<S>),
}

/// Instances on their own threads, started as calls need them.
pub struct Pool<S> {
    /// The instance the next lane is made from, until it is handed to one.
    first: Option<Guarded<S>>,
    /// An instance to make more from (it is never called).
    template: S,
    retry: RetryConfig,
    /// Job queues of the lanes started so far.
    lanes: Vec<Sender<Job>>,
    /// Lanes waiting for a job.
    idle: Vec<usize>,
    max: usize,
    source: Source,
    sink: usize,
    done: Sender<Done>,
}

impl<S: Sink + Send + 'static> Lanes<S> {
    /// The lanes of sink `sink` (its index) for `source`, starting from
    /// `guest`: inline for `max_in_flight = 1`, else a pool reporting to
    /// `done`.
    pub fn new(
        guest: Guarded<S>,
        max_in_flight: usize,
        source: &Source,
        sink: usize,
        done: &Sender<Done>,
    ) -> Self {
        if max_in_flight <= 1 {
            return Lanes::Inline {
                guest: Box::new(guest),
                source: source.clone(),
                sink,
            };
        }
        Lanes::Threads(Pool {
            template: guest.guest.another(),
            retry: guest.pipeline_retry.clone(),
            first: Some(guest),
            lanes: Vec::new(),
            idle: Vec::new(),
            max: max_in_flight,
            source: source.clone(),
            sink,
            done: done.clone(),
        })
    }

    /// Makes sure the first instance is live, so that a broken start is
    /// reported before the first batch.
    pub fn ensure_live(&mut self) -> Result<(), CallError> {
        match self {
            Lanes::Inline { guest, .. } => guest.guest.ensure_live(),
            Lanes::Threads(pool) => match &mut pool.first {
                Some(g) => g.guest.ensure_live(),
                None => Ok(()),
            },
        }
    }

    /// Starts `job`. Inline, it runs to its end before this returns, with
    /// its result; on a thread, the result is sent where [`Self::new`]
    /// said.
    pub fn start(&mut self, job: Job) -> std::io::Result<Option<Done>> {
        match self {
            Lanes::Inline {
                guest,
                source,
                sink,
            } => Ok(Some(run(guest, source, *sink, 0, job))),
            Lanes::Threads(pool) => pool.start(job).map(|()| None),
        }
    }

    /// Lane `lane` finished its call and may take another.
    pub fn free(&mut self, lane: usize) {
        if let Lanes::Threads(pool) = self {
            pool.idle.push(lane);
        }
    }
}

impl<S: Sink + Send + 'static> Pool<S> {
    fn start(&mut self, job: Job) -> std::io::Result<()> {
        let lane = match self.idle.pop() {
            Some(lane) => lane,
            None if self.lanes.len() < self.max => self.spawn()?,
            // The window never allows more calls than lanes.
            None => return Err(std::io::Error::other("more calls than max_in_flight lanes")),
        };
        if let Err(e) = self.lanes[lane].send(job) {
            // The lane's thread is gone (it panicked): answer for it, so the
            // events are retried on another lane rather than waited for.
            let job = e.into_inner();
            let _ = self.done.send(Done {
                sink: self.sink,
                call: job.call,
                lane,
                result: Err("the sink's instance thread has stopped".into()),
                handling: FailureHandling {
                    retry: self.retry.clone(),
                    policy: FailurePolicy::Block,
                },
                elapsed: Duration::ZERO,
            });
        }
        Ok(())
    }

    /// Starts a lane: the first instance, then one more per lane.
    fn spawn(&mut self) -> std::io::Result<usize> {
        let lane = self.lanes.len();
        let mut guarded = match self.first.take() {
            Some(g) => g,
            None => Guarded::new(self.template.another(), &self.retry),
        };
        let (tx, rx): (Sender<Job>, Receiver<Job>) = crossbeam_channel::bounded(1);
        let (source, sink, done) = (self.source.clone(), self.sink, self.done.clone());
        let name = format!(
            "flumen-{}-{}-s{sink}.{lane}",
            source.topic, source.partition
        );
        let span = tracing::Span::current();
        std::thread::Builder::new().name(name).spawn(move || {
            let _span = span.entered();
            for job in rx {
                if done
                    .send(run(&mut guarded, &source, sink, lane, job))
                    .is_err()
                {
                    break;
                }
            }
        })?;
        self.lanes.push(tx);
        Ok(lane)
    }
}
