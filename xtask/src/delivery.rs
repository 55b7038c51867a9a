//! `cargo xtask bench delivery`: email throughput from the outbox to a local SMTP server, and
//! the time from a notify to the email's arrival.
//!
//! 1. With the delivery worker off, `users.upsertMany` loads the users and one
//!    `notifications.notify` queues one email delivery per user.
//! 2. The server restarts with its worker on; the SMTP server (`tests/support/smtp_sink.py` on
//!    aiosmtpd, which stamps each message's arrival) receives them all. Throughput is emails
//!    over the time from the first arrival to the last.
//! 3. With the queue empty, single notifies to one user, paced apart, each carry a number in
//!    their data, which the type's title (the email's subject, `Bench #<n>`) shows; the arrival
//!    time of the email with that number minus the time the call was sent is its latency.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use serde_json::{Value, json};

use crate::smtp::Sink;
use crate::util::{
    Backend, BenchReport, Result, ServerArgs, TempDir, Which, create_key, http_post_json, millis,
    quantile, run_backends, scratch_database, start_server, thousands,
};

#[derive(Debug, Args)]
pub struct DeliveryArgs {
    /// Which database engines to measure.
    #[arg(long, value_enum, default_value_t = Which::Sqlite)]
    backend: Which,
    /// Email deliveries queued for the throughput run (at most 10,000 per notify call).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    emails: u32,
    /// Notifies timed one by one for the latency run.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    samples: u32,
    /// TIDINGS_DELIVERY_CONCURRENCY for the server (sends and SMTP connections at once).
    #[arg(long, default_value_t = 16)]
    concurrency: u32,
    /// TIDINGS_DELIVERY_BATCH for the server.
    #[arg(long, default_value_t = 200)]
    batch: u32,
    #[command(flatten)]
    server: ServerArgs,
    /// Also fail (exit status 1) when a goal is missed, not only on errors.
    #[arg(long)]
    check: bool,
}

const THROUGHPUT_GOAL: f64 = 500.0;

struct Report {
    backend: Backend,
    emails: usize,
    rate: f64,
    drained: Duration,
    p50: Duration,
    p99: Duration,
    duplicates: usize,
}

impl BenchReport for Report {
    fn all_goals_met(&self) -> bool {
        self.rate >= THROUGHPUT_GOAL && self.duplicates == 0
    }

    fn print(&self) {
        println!(
            "{:<10} {:>7} emails in {:>8} = {:>7} emails/s (goal >= {}) {}; notify -> arrival p50 {} p99 {}; duplicates {}",
            self.backend.title(),
            thousands(self.emails as f64),
            millis(self.drained),
            thousands(self.rate),
            THROUGHPUT_GOAL,
            if self.rate >= THROUGHPUT_GOAL {
                "met"
            } else {
                "MISSED"
            },
            millis(self.p50),
            millis(self.p99),
            self.duplicates,
        );
    }
}

pub fn run(args: DeliveryArgs) -> Result<bool> {
    crate::smtp::check_available()?;
    let binary = args.server.binary()?;
    run_backends(args.backend, args.check, "delivery", |backend| {
        bench_backend(backend, &args, &binary)
    })
}

fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

fn bench_backend(backend: Backend, args: &DeliveryArgs, binary: &Path) -> Result<Option<Report>> {
    let dir = TempDir::new("tidings-bench-delivery")?;
    let Some(db) = scratch_database(backend, &dir, &args.server.postgres_url)? else {
        return Ok(None);
    };
    let key = create_key(binary, &db.url, "bench")?;
    let sink = Sink::start(&dir, &[])?;
    let smtp = format!("smtp://127.0.0.1:{}", sink.port);
    let env = |worker: bool| {
        vec![
            ("TIDINGS_SMTP_URL", smtp.clone()),
            (
                "TIDINGS_MAIL_FROM",
                "Tidings <bench@example.com>".to_owned(),
            ),
            ("TIDINGS_DELIVERY_WORKER", worker.to_string()),
            ("TIDINGS_DELIVERY_CONCURRENCY", args.concurrency.to_string()),
            ("TIDINGS_DELIVERY_BATCH", args.batch.to_string()),
        ]
    };
    let call = |server: &crate::util::Server, procedure: &str, input: Value| -> Result<Value> {
        let reply = http_post_json(
            server.addr,
            &format!("/api/trpc/{procedure}"),
            Some(&key),
            &json!({ "json": input }).to_string(),
            Duration::from_secs(120),
        )?;
        if reply.status != 200 {
            return Err(format!("{procedure}: {} {}", reply.status, reply.body));
        }
        serde_json::from_str(&reply.body).map_err(|e| format!("{procedure}: {e}"))
    };

    // 1. Queue one email per user with the worker off.
    let n = args.emails as usize;
    {
        let server = start_server(binary, &db.url, &dir, &env(false))?;
        let users: Vec<Value> = (0..n)
            .map(|i| json!({"id": format!("b{i:05}"), "email": format!("b{i:05}@example.com")}))
            .collect();
        call(&server, "users.upsertMany", json!({ "users": users }))?;
        call(
            &server,
            "notificationTypes.upsert",
            json!({"key": "bench", "titleTemplate": "Bench #{{ n }}",
                   "messageTemplate": "Delivery benchmark message {{ n }}.",
                   "channels": {"email": true, "inApp": true}}),
        )?;
        let ids: Vec<String> = (0..n).map(|i| format!("b{i:05}")).collect();
        call(
            &server,
            "notifications.notify",
            json!({"key": "bench", "recipients": {"userIds": ids}, "data": {"n": "0"}}),
        )?;
    }

    // 2. Drain the queue.
    eprintln!("Draining {n} queued emails…");
    let server = start_server(binary, &db.url, &dir, &env(true))?;
    let got = sink.wait_for(n, Duration::from_secs(600))?;
    let times: Vec<f64> = got.iter().filter_map(|m| m["at"].as_f64()).collect();
    let first = times.iter().cloned().fold(f64::INFINITY, f64::min);
    let last = times.iter().cloned().fold(0.0, f64::max);
    let drained = Duration::from_secs_f64((last - first).max(0.001));
    let rate = n as f64 / drained.as_secs_f64();
    std::thread::sleep(Duration::from_millis(500));
    let all = sink.messages();
    let mut per_recipient: HashMap<String, usize> = HashMap::new();
    for m in &all {
        for to in m["to"].as_array().into_iter().flatten() {
            *per_recipient
                .entry(to.as_str().unwrap_or_default().to_owned())
                .or_default() += 1;
        }
    }
    let duplicates = per_recipient.values().map(|c| c - 1).sum();

    // 3. Latency: one notify at a time to one user, 20 ms apart.
    eprintln!("Timing {} single notifies…", args.samples);
    let mut sent_at: HashMap<String, f64> = HashMap::new();
    for i in 0..args.samples {
        let ticket = format!("L{i}");
        sent_at.insert(ticket.clone(), now_seconds());
        call(
            &server,
            "notifications.notify",
            json!({"key": "bench", "recipients": {"userIds": ["b00000"]},
                   "data": {"n": ticket}}),
        )?;
        std::thread::sleep(Duration::from_millis(20));
    }
    let got = sink.wait_for(all.len() + args.samples as usize, Duration::from_secs(120))?;
    let mut latencies: Vec<Duration> = got[all.len()..]
        .iter()
        .filter_map(|m| {
            let ticket = m["subject"].as_str()?.strip_prefix("Bench #")?;
            let sent = sent_at.get(ticket)?;
            Some(Duration::from_secs_f64((m["at"].as_f64()? - sent).max(0.0)))
        })
        .collect();
    latencies.sort();
    if latencies.len() != args.samples as usize {
        return Err(format!(
            "matched {} of {} latency emails",
            latencies.len(),
            args.samples
        ));
    }
    drop(server);
    Ok(Some(Report {
        backend,
        emails: n,
        rate,
        drained,
        p50: quantile(&latencies, 0.5).unwrap_or_default(),
        p99: quantile(&latencies, 0.99).unwrap_or_default(),
        duplicates,
    }))
}
