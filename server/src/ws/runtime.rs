//! The threads the WebSocket sessions run on (`--ws-threads`), apart from
//! the ones that answer HTTP.
//!
//! A change wakes every session at once; on one runtime those thousands of
//! tasks fill the queues the HTTP tasks wait in, so near capacity the next
//! admin write waited behind the previous fan-out (its answer took 128 ms
//! instead of 12, see BENCHMARKS.md). On a runtime of their own the sessions
//! still share the CPUs, but the operating system's scheduler, not one task
//! queue, shares them: the mostly idle HTTP threads run as soon as they are
//! woken.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use tokio::runtime::{Builder, Runtime};

use super::lane::Lanes;
use crate::service::Service;

/// Where sessions run: their own runtime, or (none) the caller's, each as a
/// task of its own.
#[derive(Debug, Clone, Default)]
pub struct Sessions(Option<Arc<Owned>>, Arc<OnceLock<Arc<Lanes>>>);

/// Shut down without waiting when the last handle goes (which may be inside
/// an async task, where a blocking drop would panic): the sessions have had
/// their close frames by then, or the process is ending.
#[derive(Debug)]
struct Owned(Option<Runtime>);

impl Drop for Owned {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl Sessions {
    /// `threads` worker threads of their own; 0 for the caller's runtime.
    pub fn new(threads: usize) -> std::io::Result<Self> {
        if threads == 0 {
            return Ok(Self(None, Arc::default()));
        }
        let runtime = Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("provider-sync-ws")
            .enable_all()
            .build()?;
        Ok(Self(Some(Arc::new(Owned(Some(runtime)))), Arc::default()))
    }

    /// The fan-out lanes of `service`, started on first use where sessions
    /// run: one per thread of their own, or one per CPU on the caller's.
    pub(super) fn lanes(&self, service: &Service, room: usize) -> Arc<Lanes> {
        self.1
            .get_or_init(|| {
                let runtime = self.0.as_ref().and_then(|owned| owned.0.as_ref());
                let count = match runtime {
                    Some(runtime) => runtime.metrics().num_workers(),
                    None => Self::threads(None),
                };
                Arc::new(Lanes::start(count, service, room, |lane| match runtime {
                    Some(runtime) => drop(runtime.spawn(lane)),
                    None => drop(tokio::spawn(lane)),
                }))
            })
            .clone()
    }

    /// The default: one thread per CPU.
    pub fn threads(configured: Option<usize>) -> usize {
        configured.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
    }

    /// Whether sessions run apart from the caller's runtime.
    pub fn separate(&self) -> bool {
        self.0.is_some()
    }

    /// Starts `session` where sessions run, as a task of its own; the
    /// future waits for it (`None` when its runtime was shut down under it).
    /// Not an `async fn`: the session is moved into its task at once, so the
    /// waiting future holds a handle, not a second copy of the session's
    /// state (which doubled the memory per connection).
    pub fn run<F>(&self, session: F) -> impl Future<Output = Option<F::Output>> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        // The handle is held while the session runs: its runtime outlives it.
        let owned = self.0.clone();
        let task = match &owned {
            Some(owned) => owned
                .0
                .as_ref()
                .expect("dropped only in Drop")
                .spawn(session),
            None => tokio::spawn(session),
        };
        async move {
            let _owned = owned;
            match task.await {
                Ok(output) => Some(output),
                Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
                Err(_) => None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_session_runs_on_threads_of_its_own() {
        let sessions = Sessions::new(1).unwrap();
        assert!(sessions.separate());
        let name = sessions
            .run(async { std::thread::current().name().map(str::to_owned) })
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("provider-sync-ws"));

        let inline = Sessions::new(0).unwrap();
        assert!(!inline.separate());
        let here = std::thread::current().id();
        assert_eq!(
            inline.run(async { std::thread::current().id() }).await,
            Some(here)
        );
    }

    /// What waits for a session holds a task handle, not the session: each
    /// connection's state exists once.
    #[tokio::test]
    async fn waiting_for_a_session_does_not_hold_a_copy_of_it() {
        for sessions in [Sessions::new(1).unwrap(), Sessions::new(0).unwrap()] {
            let session = async {
                let state = [7u8; 4096];
                tokio::task::yield_now().await;
                state.iter().map(|&b| b as usize).sum::<usize>()
            };
            assert!(std::mem::size_of_val(&session) >= 4096);
            let waiting = sessions.run(session);
            assert!(
                std::mem::size_of_val(&waiting) < 256,
                "{} bytes",
                std::mem::size_of_val(&waiting)
            );
            assert_eq!(waiting.await, Some(7 * 4096));
        }
    }
}
