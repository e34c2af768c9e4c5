//! One signal that tells every task (listener, WebSocket sessions, probes,
//! heartbeats) to finish.

use tokio::sync::watch;

/// The sending side: `trigger` once, every `Shutdown` hears it.
#[derive(Debug, Clone)]
pub struct ShutdownTrigger(watch::Sender<bool>);

/// A listener for the shutdown signal.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }

    pub fn subscribe(&self) -> Shutdown {
        Shutdown(self.0.subscribe())
    }
}

impl Shutdown {
    /// Resolves once shutdown is triggered (at once if it already was).
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|down| *down).await;
    }

    /// Whether shutdown has been triggered, without waiting.
    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }
}

/// Ctrl-C and SIGTERM, caught from the moment this is made: made before
/// the server says it listens, so that a signal sent as soon as it does is
/// a shutdown, not the default action that kills the process (the handler
/// was installed at the first wait, which could come after).
#[derive(Debug)]
pub struct OsSignals {
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl OsSignals {
    pub fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Self {
                terminate: signal(SignalKind::terminate()).ok(),
                interrupt: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// Resolves on the next Ctrl-C or SIGTERM.
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        {
            async fn next(signal: &mut Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                () = next(&mut self.terminate) => {},
                () = next(&mut self.interrupt) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

impl Default for OsSignals {
    fn default() -> Self {
        Self::new()
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn os_signal() {
    OsSignals::new().recv().await;
}
