//! The delivery workers: claim due outbox rows, send them by email or push, and record what
//! happened, retrying with exponential backoff and jitter.
//!
//! The SQL lives in `persistence`; the senders (`email.rs` over lettre, `push.rs` over
//! web-push) live here. A worker runs inside `tidings serve`; on shutdown it stops claiming,
//! finishes the sends under way and hands the rest of its batch back.

mod email;
mod push;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use rand::Rng;
use tidings_domain::Error;
use tidings_persistence::{ClaimedDelivery, Db};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::App;
pub(crate) use push::vapid_keys;

/// How deliveries are sent and retried.
#[derive(Clone, Debug)]
pub struct DeliveryConfig {
    /// `smtp://…` or `smtps://…`; `None` writes emails to the log.
    pub smtp_url: Option<String>,
    /// The `From` of every email.
    pub mail_from: String,
    /// Attempts before a delivery is marked failed.
    pub max_attempts: u32,
    /// The wait after the first failed attempt; it doubles after each.
    pub base_delay: Duration,
    /// How long a claimed row stays with its claimer before others may claim it again.
    pub lease: Duration,
    /// Rows claimed at once.
    pub batch: u32,
    /// Sends under way at once (and SMTP connections kept open).
    pub concurrency: usize,
    /// How often an idle worker looks for due rows queued by other processes or retries.
    pub poll: Duration,
    /// The VAPID `sub` claim: a `mailto:` or `https:` contact for push services.
    pub vapid_subject: String,
    /// Whether this process runs a worker at all.
    pub enabled: bool,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            smtp_url: None,
            mail_from: "Tidings <tidings@localhost>".to_owned(),
            // 15 s doubling: the eighth attempt comes about 32 minutes after the first.
            max_attempts: 8,
            base_delay: Duration::from_secs(15),
            lease: Duration::from_secs(60),
            batch: 100,
            concurrency: 8,
            poll: Duration::from_secs(1),
            vapid_subject: "mailto:tidings@localhost".to_owned(),
            enabled: true,
        }
    }
}

/// How long to wait after failed attempt number `attempt` (from 1): `base · 2^(attempt−1)`,
/// spread by ±25 % so rows that failed together do not all come back together.
pub fn retry_delay(base: Duration, attempt: u32, jitter: f64) -> Duration {
    let exponent = attempt.saturating_sub(1).min(20);
    let nominal = base.as_secs_f64() * f64::from(1u32 << exponent);
    Duration::from_secs_f64(nominal * (1.0 + 0.25 * jitter.clamp(-1.0, 1.0)))
}

/// Why a send did not go through.
#[derive(Debug)]
pub(crate) enum SendError {
    /// Will not succeed later either (a 5xx SMTP reply, a bad address): fail now.
    Permanent(String),
    /// May succeed later (a 4xx reply, a refused connection, a push service's 429 or 5xx).
    Transient(String),
    /// The push subscription is gone (404/410): forget it and fail the row.
    Gone(String),
}

/// A running worker; [`DeliveryWorker::stop`] ends it cleanly.
#[derive(Debug)]
pub struct DeliveryWorker {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl DeliveryWorker {
    /// Starts the worker of `app` (SMTP transport, VAPID keys) in the background.
    pub async fn start(app: &App) -> Result<Self, Error> {
        let config = app.config.delivery.clone();
        let mailer = email::Mailer::new(&config)?;
        let pusher = push::Pusher::new(&app.db, &config).await?;
        let (stop, stopped) = watch::channel(false);
        let worker = Worker {
            db: app.db.clone(),
            outbox: app.outbox.clone(),
            config,
            mailer: Arc::new(mailer),
            pusher: Arc::new(pusher),
            stopped,
        };
        let task = tokio::spawn(worker.run());
        Ok(Self { stop, task })
    }

    /// Stops claiming, lets the sends under way finish, hands back the rest, and waits.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// A row sent and waiting to be recorded, holding its place among the sends at once.
struct Sent {
    id: Uuid,
    _place: OwnedSemaphorePermit,
}

struct Worker {
    db: Db,
    outbox: Arc<Notify>,
    config: DeliveryConfig,
    mailer: Arc<email::Mailer>,
    pusher: Arc<push::Pusher>,
    stopped: watch::Receiver<bool>,
}

impl Worker {
    async fn run(mut self) {
        loop {
            if *self.stopped.borrow() {
                return;
            }
            let lease = Uuid::now_v7();
            let lease_until = Utc::now()
                + chrono::Duration::from_std(self.config.lease).unwrap_or(chrono::Duration::MAX);
            let batch = match self
                .db
                .claim_deliveries(lease, u64::from(self.config.batch), lease_until)
                .await
            {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming deliveries failed");
                    self.idle().await;
                    continue;
                }
            };
            if batch.is_empty() {
                self.idle().await;
                continue;
            }
            self.process(lease, batch).await;
        }
    }

    /// Waits for new rows, the next poll, or the stop.
    async fn idle(&mut self) {
        tokio::select! {
            _ = self.outbox.notified() => {}
            _ = tokio::time::sleep(self.config.poll) => {}
            _ = self.stopped.changed() => {}
        }
    }

    /// Sends a claimed batch, `concurrency` rows at once. Sent rows are recorded together, by
    /// one update per group that finished while the previous update ran, instead of one
    /// transaction per email. A row keeps its place among the `concurrency` from its send until
    /// its outcome is recorded, so a crash can repeat at most `concurrency` sends.
    async fn process(&self, lease: Uuid, batch: Vec<ClaimedDelivery>) {
        let width = self.config.concurrency.max(1);
        let places = Arc::new(Semaphore::new(width));
        let (sent, mut to_record) = mpsc::unbounded_channel::<Sent>();
        let sending = async move {
            let unsent: Vec<Uuid> = futures::stream::iter(batch)
                .map(|d| self.deliver(lease, d, &places, &sent))
                .buffer_unordered(width)
                .filter_map(|left| async move { left })
                .collect()
                .await;
            // Dropping `sent` here ends the recording once it has caught up.
            unsent
        };
        let recording = async {
            let mut done: Vec<Sent> = Vec::new();
            while to_record.recv_many(&mut done, 1024).await > 0 {
                let ids: Vec<Uuid> = done.iter().map(|s| s.id).collect();
                if let Err(e) = self.db.deliveries_sent(lease, &ids).await {
                    tracing::warn!(error = %e, rows = ids.len(), "recording sent deliveries failed; they are sent again when the lease ends");
                }
                // Frees their places.
                done.clear();
            }
        };
        let (unsent, ()) = tokio::join!(sending, recording);
        if !unsent.is_empty()
            && let Err(e) = self.db.release_deliveries(lease, &unsent).await
        {
            tracing::warn!(error = %e, "releasing deliveries failed; they return when the lease ends");
        }
    }

    /// Sends one row; a sent row goes to the recorder, any other outcome is recorded here.
    /// Returns the row's id when the worker is stopping and it was not sent.
    async fn deliver(
        &self,
        lease: Uuid,
        d: ClaimedDelivery,
        places: &Arc<Semaphore>,
        sent: &mpsc::UnboundedSender<Sent>,
    ) -> Option<Uuid> {
        if *self.stopped.borrow() {
            return Some(d.id);
        }
        let Ok(place) = places.clone().acquire_owned().await else {
            return Some(d.id);
        };
        if *self.stopped.borrow() {
            return Some(d.id);
        }
        let outcome = match d.channel.as_str() {
            "email" => self.mailer.send(&d).await,
            "push" => self.pusher.send(&d).await,
            other => Err(SendError::Permanent(format!("unknown channel {other:?}"))),
        };
        let recorded = match outcome {
            Ok(()) => {
                // The recorder outlives every send of the batch.
                let _ = sent.send(Sent {
                    id: d.id,
                    _place: place,
                });
                return None;
            }
            Err(SendError::Gone(error)) => {
                if let Err(e) = self.db.forget_push_endpoint(&d.target).await {
                    tracing::warn!(error = %e, "forgetting a push subscription failed");
                }
                self.db.delivery_failed(lease, d.id, &error).await
            }
            Err(SendError::Permanent(error)) => self.db.delivery_failed(lease, d.id, &error).await,
            Err(SendError::Transient(error)) if d.attempts >= self.config.max_attempts as i32 => {
                self.db.delivery_failed(lease, d.id, &error).await
            }
            Err(SendError::Transient(error)) => {
                let jitter = rand::rng().random_range(-1.0..=1.0);
                let delay = retry_delay(self.config.base_delay, d.attempts as u32, jitter);
                let at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
                tracing::info!(delivery = %d.id, attempts = d.attempts, %error, retry_in_ms = delay.as_millis() as u64, "delivery will be retried");
                self.db.delivery_retry(lease, d.id, at, &error).await
            }
        };
        if let Err(e) = recorded {
            tracing::warn!(delivery = %d.id, error = %e, "recording a delivery's outcome failed");
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_and_stay_within_the_jitter() {
        let base = Duration::from_secs(15);
        assert_eq!(retry_delay(base, 1, 0.0), Duration::from_secs(15));
        assert_eq!(retry_delay(base, 2, 0.0), Duration::from_secs(30));
        assert_eq!(retry_delay(base, 4, 0.0), Duration::from_secs(120));
        assert_eq!(retry_delay(base, 3, 1.0), Duration::from_secs(75));
        assert_eq!(retry_delay(base, 3, -1.0), Duration::from_secs(45));
    }

    #[test]
    fn the_default_schedule_spans_about_half_an_hour() {
        let c = DeliveryConfig::default();
        let total: Duration = (1..c.max_attempts)
            .map(|a| retry_delay(c.base_delay, a, 0.0))
            .sum();
        assert!(
            (Duration::from_secs(25 * 60)..Duration::from_secs(40 * 60)).contains(&total),
            "{total:?}"
        );
    }
}
