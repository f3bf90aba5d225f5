//! SQLite writes of one process, one at a time, in arrival order; the background workers' behind
//! the requests'.
//!
//! SQLite has one writer. Two connections of one pool that both want to write do not queue: the
//! loser gets `SQLITE_BUSY`, and the busy handler sleeps and retries (1, 2, 5, 10, 15, 20, 25 …
//! 100 ms), so under load a webhook's one-row insert waited behind the delivery worker's
//! transactions in sleeps of tens of milliseconds, holding a pool connection as it slept (ADR
//! 0032). The [`WriterGate`] serialises the writes of this process before they take a
//! connection: each write transaction ([`crate::Store::begin`]) and each single-statement write
//! waits on one fair (FIFO) async lock, so a waiting writer neither sleeps nor holds a
//! connection, and is served the moment the writer ahead of it commits.
//!
//! Writes made from inside [`background`] (the delivery and notification workers, the
//! schedulers) first take a second lock of their own, so at most one background write is queued
//! among the requests' at a time: a request waits behind at most one background transaction, and
//! background work still gets every other turn under a flood of requests (it is never starved).
//!
//! Other processes on the same file (a second `serve`, the CLI) are not in this gate; between
//! processes SQLite's busy handler still applies, as before. PostgreSQL has no gate: its writers
//! run concurrently.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, OwnedMutexGuard};

/// How long a writer waits for its turn before going on without it (and meeting SQLite's own
/// busy handler, as without the gate). Matches the connections' `busy_timeout`.
const WAIT: Duration = Duration::from_secs(30);

tokio::task_local! {
    static BACKGROUND: ();
}

/// Run `f` as background work: its SQLite writes queue behind the requests' (see the module).
pub async fn background<F: Future>(f: F) -> F::Output {
    BACKGROUND.scope((), f).await
}

/// [`tokio::spawn`] `f` as background work (see [`background`]).
pub fn spawn_background<F>(f: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(background(f))
}

fn in_background() -> bool {
    BACKGROUND.try_with(|_| ()).is_ok()
}

/// The gate of one SQLite store (shared by its clones).
#[derive(Debug, Default)]
pub(crate) struct WriterGate {
    turn: Arc<Mutex<()>>,
    background: Arc<Mutex<()>>,
}

/// A writer's turn: held until its transaction ends (or its statement ran).
#[derive(Debug)]
pub struct WriteTurn {
    // Field order is drop order: the turn is given back before the background slot, so the next
    // background writer queues only once this one is done.
    _turn: Option<OwnedMutexGuard<()>>,
    _background: Option<OwnedMutexGuard<()>>,
}

impl WriterGate {
    /// Wait for this task's turn to write.
    pub(crate) async fn turn(&self) -> WriteTurn {
        let background = if in_background() {
            wait(self.background.clone()).await
        } else {
            None
        };
        let turn = wait(self.turn.clone()).await;
        WriteTurn {
            _turn: turn,
            _background: background,
        }
    }
}

async fn wait(lock: Arc<Mutex<()>>) -> Option<OwnedMutexGuard<()>> {
    match tokio::time::timeout(WAIT, lock.lock_owned()).await {
        Ok(g) => Some(g),
        Err(_) => {
            tracing::warn!(
                "waited {}s for the SQLite write turn; going on without it",
                WAIT.as_secs()
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_waits_behind_at_most_one_background_write() {
        let gate = Arc::new(WriterGate::default());
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        // A request holds the turn; three background writers and then a request queue up.
        let first = gate.turn().await;
        let mut tasks = Vec::new();
        for i in 0..3 {
            let (g, o) = (gate.clone(), order.clone());
            tasks.push(tokio::spawn(background(async move {
                let _t = g.turn().await;
                o.lock().unwrap().push(format!("bg{i}"));
                tokio::task::yield_now().await;
            })));
            tokio::task::yield_now().await;
        }
        let (g, o) = (gate.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let _t = g.turn().await;
            o.lock().unwrap().push("request".into());
        }));
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        drop(first);
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        // Only the first background writer was queued ahead of the request.
        assert_eq!(order, ["bg0", "request", "bg1", "bg2"], "{order:?}");
    }

    #[tokio::test]
    async fn background_work_is_not_starved_by_requests() {
        let gate = Arc::new(WriterGate::default());
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let first = gate.turn().await;
        let mut tasks = Vec::new();
        let (g, o) = (gate.clone(), order.clone());
        tasks.push(tokio::spawn(background(async move {
            let _t = g.turn().await;
            o.lock().unwrap().push("bg".to_string());
        })));
        tokio::task::yield_now().await;
        for i in 0..3 {
            let (g, o) = (gate.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _t = g.turn().await;
                o.lock().unwrap().push(format!("req{i}"));
            }));
            tokio::task::yield_now().await;
        }
        drop(first);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(order.lock().unwrap()[0], "bg");
    }
}
