//! Long-running work of the process beside the requests (delivery workers, say), which must
//! end cleanly on shutdown.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The process's background tasks. On shutdown the gateway, once requests have drained, cancels
/// [`Background::stopping`] and waits for every task within what is left of the grace period:
/// a task watches the token and, when it fires, finishes or hands back what it holds (an outbox
/// worker releases its claimed rows) and returns.
///
/// Shared by every clone of the app, which each request makes: one reference count, rather
/// than a clone of the cancellation token (which takes a lock).
#[derive(Clone, Debug, Default)]
pub struct Background(std::sync::Arc<Tasks>);

#[derive(Debug, Default)]
struct Tasks {
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl Background {
    /// Runs `task` in the background; shutdown waits for it.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.0.tasks.spawn(task);
    }

    /// Cancelled when the process begins to stop.
    pub fn stopping(&self) -> CancellationToken {
        self.0.stop.clone()
    }

    /// How many background tasks are running.
    pub fn running(&self) -> usize {
        self.0.tasks.len()
    }

    /// Asks every task to stop and waits up to `within`; whether all of them ended in time.
    pub async fn shutdown(&self, within: Duration) -> bool {
        self.0.stop.cancel();
        self.0.tasks.close();
        tokio::time::timeout(within, self.0.tasks.wait())
            .await
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shutdown_waits_for_tasks_that_watch_the_token() {
        let background = Background::default();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let stopping = background.stopping();
        background.spawn(async move {
            stopping.cancelled().await;
            let _ = tx.send("released");
        });
        assert_eq!(background.running(), 1);
        assert!(background.shutdown(Duration::from_secs(5)).await);
        assert_eq!(rx.await.unwrap(), "released");

        let stuck = Background::default();
        stuck.spawn(std::future::pending());
        assert!(!stuck.shutdown(Duration::from_millis(20)).await);
    }
}
