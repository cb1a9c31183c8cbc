//! The core's accept path on a thread of its own (`--edge-socket`): a
//! current-thread runtime that runs the edges' connections and, at
//! `--durability os`, the embedded store's writer task. The main runtime
//! keeps the workers, the HTTP client to the processors, the probes and the
//! HTTP API.
//!
//! Why: with one runtime thread for everything, a payment's frame waited for
//! that thread to finish sending to processors and committing outcomes; on a
//! thread of its own the accept path answers sooner (the preview's p99
//! 2.83 vs 3.54 ms, median of six interleaved pairs, lower in each; the
//! core's CPU +5–7%, then back within noise once outcomes stopped waking the
//! writer one by one; BENCHMARKS.md). An accept and its commit run on one
//! thread, with no wake-up between threads; what crosses is the hand-off to
//! a worker and the worker's store commands.

use std::thread::JoinHandle;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// A current-thread runtime running on a thread of its own until stopped.
pub struct AcceptThread {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl AcceptThread {
    pub fn start() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("reroute-accept".into())
            .spawn(move || {
                runtime.block_on(async {
                    // A dropped sender stops it too.
                    let _ = stopped.await;
                });
                // Dropping the runtime here drops whatever it still runs.
            })?;
        Ok(Self {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Its runtime: spawn on it, or `enter` it to make a task or a socket
    /// its own.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Stops the runtime, dropping what it still runs, and waits for its
    /// thread to end. Whatever must finish first (the connections, the
    /// store's writer) is waited for before.
    pub async fn stop(self) {
        // Dropping it joins the thread: a blocking wait, off the runtime.
        let _ = tokio::task::spawn_blocking(move || drop(self)).await;
    }
}

impl Drop for AcceptThread {
    /// Stops the thread and waits for it to end (`stop`, or an app built
    /// but never run).
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the accept thread panicked");
        }
    }
}
