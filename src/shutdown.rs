//! Graceful shutdown: one signal (SIGTERM, SIGINT or [`Shutdown::trigger`]) that every task
//! of the process can await.
//!
//! A [`Shutdown`] is cheap to clone; all clones share one state. Tasks take
//! [`Shutdown::wait`] (an owned, `'static` future) wherever they accept a shutdown signal:
//! the HTTP server ([`crate::server::serve`]), leader election
//! ([`crate::leader::LeaderElection::run`], which releases the Lease), the reconcilers.
//! Once triggered it stays triggered: a task that starts waiting afterwards returns at once.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let shutdown = rollgate::shutdown::Shutdown::new();
//! shutdown.listen_for_signals()?; // SIGTERM / SIGINT trigger it
//! let stop = shutdown.wait();
//! tokio::spawn(async move {
//!     stop.await;
//!     // finish the work in hand, then return
//! });
//! # Ok(()) }
//! ```

use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;

/// A process-wide shutdown signal shared by every clone.
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A signal that has not been triggered.
    #[must_use]
    pub fn new() -> Self {
        let (tx, _) = watch::channel(false);
        Self { tx: Arc::new(tx) }
    }

    /// Trigger the shutdown: every [`Shutdown::wait`] future completes. Idempotent.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether the shutdown has been triggered.
    #[must_use]
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// A future that completes once the shutdown is triggered (at once if it already
    /// was). It owns what it needs, so it can be moved into a spawned task.
    pub fn wait(&self) -> impl Future<Output = ()> + Send + Sync + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            // `wait_for` fails only when every `Shutdown` clone is gone: nobody can
            // trigger it any more, so treat that as shut down rather than wait forever.
            let _ = rx.wait_for(|triggered| *triggered).await;
        }
    }

    /// Install handlers for SIGTERM and SIGINT (Ctrl-C) that trigger this shutdown on the
    /// first of them. A second signal of either kind exits the process at once with status
    /// 130, for an operator who does not want to wait for the graceful path.
    ///
    /// Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// The I/O error of registering a signal handler.
    pub fn listen_for_signals(&self) -> std::io::Result<tokio::task::JoinHandle<()>> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let this = self.clone();
        Ok(tokio::spawn(async move {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!(signal = name, "shutting down gracefully");
            this.trigger();
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
            tracing::warn!("second signal: exiting at once");
            std::process::exit(130);
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn wait_completes_after_trigger_and_after_the_fact() {
        let s = Shutdown::new();
        let early = tokio::spawn(s.clone().wait());
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!early.is_finished(), "completed before the trigger");
        assert!(!s.is_triggered());
        s.clone().trigger();
        tokio::time::timeout(Duration::from_secs(5), early)
            .await
            .expect("wait completes after trigger")
            .expect("task ran");
        assert!(s.is_triggered());
        tokio::time::timeout(Duration::from_secs(5), s.wait())
            .await
            .expect("a late waiter returns at once");
    }
}
