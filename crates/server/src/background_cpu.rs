//! CPU-heavy background work — classifying a repository's commits — runs on a thread pool of its
//! own whose threads have a lower scheduling priority (nice + 10 on Linux) than the threads that
//! answer requests. On a small machine a burst of webhooks and the classifications it causes
//! compete for the same cores; the kernel then runs the acknowledgements first and the
//! classifications in the time left, which is plenty: they wait on nothing but the CPU
//! (ADR 0034). Elsewhere, or when the priority cannot be lowered, the pool runs at the
//! process's priority; nothing else changes.

use std::sync::OnceLock;

/// How much lower the pool's threads run (Linux nice levels; 19 at most).
pub const NICE_DELTA: i32 = 10;

static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();

/// Run `f` on the background pool (its `rayon` work too: `par_iter` inside `f` uses the pool),
/// blocking the calling thread until it is done. Call it from a blocking context
/// (`tokio::task::spawn_blocking`).
pub fn run<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    match pool() {
        Some(p) => p.install(f),
        None => f(),
    }
}

fn pool() -> Option<&'static rayon::ThreadPool> {
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("cg-background-{i}"))
            .start_handler(|_| {
                lower_priority();
            })
            .build()
            .map_err(|e| tracing::warn!(error = %e, "no background thread pool; classifying on the caller's threads"))
            .ok()
    })
    .as_ref()
}

/// The calling thread's nice level raised by [`NICE_DELTA`]: `Some(new)`, or `None` where that is
/// not possible (not Linux, or refused).
pub fn lower_priority() -> Option<i32> {
    #[cfg(target_os = "linux")]
    {
        let tid = rustix::thread::gettid();
        let now = rustix::process::getpriority_process(Some(tid)).ok()?;
        let want = (now + NICE_DELTA).min(19);
        match rustix::process::setpriority_process(Some(tid), want) {
            Ok(()) => Some(want),
            Err(e) => {
                tracing::debug!(error = %e, "background thread keeps its priority");
                None
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pool's threads run below the caller's priority, and rayon work inside `run` stays on
    /// them.
    #[test]
    fn the_pool_runs_below_the_callers_priority() {
        let tid = rustix::thread::gettid();
        let mine = rustix::process::getpriority_process(Some(tid)).unwrap();
        let theirs: Vec<i32> = run(|| {
            use rayon::prelude::*;
            (0..64)
                .into_par_iter()
                .map(|_| {
                    rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap()
                })
                .collect()
        });
        let want = (mine + NICE_DELTA).min(19);
        assert!(theirs.iter().all(|&n| n == want), "{mine} → {theirs:?}");
        // The caller's own priority is untouched.
        assert_eq!(
            rustix::process::getpriority_process(Some(tid)).unwrap(),
            mine
        );
    }
}
