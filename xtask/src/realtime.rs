//! `cargo xtask bench realtime`: many idle live subscriptions on one instance, what each costs
//! the server in memory, and how fast a broadcast reaches all of them.
//!
//! It loads users with one session each (`tidings demo --per-user 0 --sessions-out`) into a
//! database of its own, starts the release binary, and opens one
//! `GET /api/trpc/notifications.onNew` server-sent-event stream per user with the user's
//! `tidings_session` cookie, from a load client in this process (tokio, one HTTP/1.1
//! connection per stream read off the socket, a few opening at a time). Once every stream has
//! received `event: connected`, the server's resident memory is read again: the growth over the
//! value before opening any, divided by the streams, is the memory per idle subscriber.
//!
//! Then one `notifications.notify {allUsers: true}` (a service key, over HTTP) reaches every
//! user, and each stream timestamps the arrival of its data event. The latency of an event is
//! the time from sending the notify call to its arrival, so it includes the fan-out itself; the
//! report also shows when the call answered and when the last stream heard of it.
//!
//! The goals: under 16 KiB per idle subscriber, and a p99 latency under 100 ms. The client
//! shares the machine with the server (it runs on one thread, so it takes at most one core).
//!
//! First, unless `--no-floor`, the same client, streams and broadcast are measured against a
//! bare server that only moves bytes ([`crate::bare`]): the floor this machine sets, reported
//! beside each backend's figures so that they can be read as a ratio from one run.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::sse;

use crate::util::{
    Backend, BenchReport, Result, Server, ServerArgs, TempDir, Which, create_key, free_port,
    http_post_json, megabytes, millis, quantile, read_tokens, rss_bytes, run_backends, run_demo,
    scratch_database, start_server, tail, thousands,
};

/// Each idle subscriber may cost the server at most this much memory…
const GOAL_BYTES_PER_SUBSCRIBER: f64 = 16.0 * 1024.0;
/// …and the p99 latency from sending notify to an event's arrival must stay under this.
const GOAL_P99: Duration = Duration::from_millis(100);
/// How long opening every stream, and then delivering every event, may take at most.
const OPEN_TIMEOUT: Duration = Duration::from_secs(600);
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(120);
/// File descriptors kept for everything but the streams (database, logs, listeners).
const SPARE_FILES: u64 = 1_000;
const PATH: &str = "/api/trpc/notifications.onNew";

#[derive(Debug, Args)]
pub struct RealtimeArgs {
    /// Concurrent subscribers (users, one session and one stream each).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    subscribers: u32,
    /// Which database engines to measure.
    #[arg(long, value_enum, default_value_t = Which::Sqlite)]
    backend: Which,
    /// Spread the client's connections over this many source addresses, 127.0.0.1,
    /// 127.0.0.2, … (each has its own ephemeral ports; 1: let the kernel choose).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=250))]
    source_addresses: u8,
    /// Streams being opened at once (each until its `connected` event), well under the
    /// listener's backlog.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1024))]
    open_concurrency: u32,
    #[command(flatten)]
    server: ServerArgs,
    /// Also fail (exit status 1) when a goal is missed, not only on errors.
    #[arg(long)]
    check: bool,
    /// Skip measuring the bare server first (the floor).
    #[arg(long)]
    no_floor: bool,
}

/// What one server measured: a backend of Tidings, or the bare floor.
struct Report {
    /// `None` for the bare server.
    backend: Option<Backend>,
    subscribers: usize,
    source_addresses: u8,
    open_seconds: f64,
    rss_before: u64,
    rss_after: u64,
    notify_answered: Duration,
    received: usize,
    /// Per-event latencies from sending notify, sorted.
    latencies: Vec<Duration>,
    server_errors: usize,
    /// The bare server's figures from the same run.
    floor: Option<Floor>,
}

/// What the bare server measured: the floor of the figures.
#[derive(Clone, Copy)]
struct Floor {
    p50: Duration,
    p99: Duration,
    last: Duration,
}

impl Report {
    fn per_subscriber(&self) -> f64 {
        self.rss_after.saturating_sub(self.rss_before) as f64 / self.subscribers as f64
    }

    fn p(&self, q: f64) -> Duration {
        quantile(&self.latencies, q).unwrap_or(Duration::MAX)
    }

    fn memory_met(&self) -> bool {
        self.per_subscriber() < GOAL_BYTES_PER_SUBSCRIBER
    }

    fn latency_met(&self) -> bool {
        self.received == self.subscribers && self.p(0.99) < GOAL_P99
    }

    fn floor(&self) -> Floor {
        Floor {
            p50: self.p(0.5),
            p99: self.p(0.99),
            last: self.p(1.0),
        }
    }

    /// The bare server's figures, with no goals.
    fn print_floor(&self) {
        println!();
        println!(
            "Floor: the same {} streams and broadcast against a bare server that only writes \
             one prepared event to each (no database, no serialization)",
            thousands(self.subscribers as f64)
        );
        println!(
            "  {:<40} {:>22}",
            "memory per idle stream",
            format!("{:.1} KiB", self.per_subscriber() / 1024.0)
        );
        self.print_arrivals("broadcast answered after");
        println!(
            "  {:<40} {:>22}",
            "per-event latency p99",
            millis(self.p(0.99))
        );
    }

    /// The rows both tables share: when the broadcast (`answered`) and the events arrived,
    /// up to the p50.
    fn print_arrivals(&self, answered: &str) {
        println!("  {:<40} {:>22}", answered, millis(self.notify_answered));
        println!(
            "  {:<40} {:>22}",
            "data events received",
            format!(
                "{} of {}",
                thousands(self.received as f64),
                thousands(self.subscribers as f64)
            )
        );
        println!("  {:<40} {:>22}", "first event after", millis(self.p(0.0)));
        println!("  {:<40} {:>22}", "last event after", millis(self.p(1.0)));
        println!(
            "  {:<40} {:>22}",
            "per-event latency p50",
            millis(self.p(0.5))
        );
    }
}

/// `value` as a multiple of `floor`.
fn times(value: Duration, floor: Duration) -> String {
    format!(
        "{:.1}x",
        value.as_secs_f64() / floor.as_secs_f64().max(1e-9)
    )
}

impl BenchReport for Report {
    fn all_goals_met(&self) -> bool {
        self.memory_met() && self.latency_met()
    }

    fn print(&self) {
        let verdict = |met: bool| if met { "met" } else { "MISSED" };
        println!();
        println!(
            "{}: {} notifications.onNew streams over SSE, one user and session each ({} source \
             address{}); all connected in {:.1} s",
            self.backend.map_or("Bare server", |b| b.title()),
            thousands(self.subscribers as f64),
            self.source_addresses,
            if self.source_addresses == 1 { "" } else { "es" },
            self.open_seconds,
        );
        println!("  {:<40} {:>22}   goal", "measure", "value");
        println!(
            "  {:<40} {:>22}",
            "server RSS before opening the streams",
            megabytes(self.rss_before as f64)
        );
        println!(
            "  {:<40} {:>22}",
            "server RSS with every stream idle",
            megabytes(self.rss_after as f64)
        );
        println!(
            "  {:<40} {:>18.1} KiB   < 16 KiB: {}",
            "memory per idle subscriber",
            self.per_subscriber() / 1024.0,
            verdict(self.memory_met()),
        );
        self.print_arrivals("notify {allUsers: true} answered after");
        println!(
            "  {:<40} {:>22}   < {}: {}",
            "per-event latency p99",
            millis(self.p(0.99)),
            millis(GOAL_P99),
            verdict(self.latency_met()),
        );
        if let Some(floor) = self.floor {
            println!(
                "  {:<40} {:>22}",
                "bare server p50 / p99 / last (floor)",
                format!(
                    "{} / {} / {}",
                    millis(floor.p50),
                    millis(floor.p99),
                    millis(floor.last)
                )
            );
            println!(
                "  {:<40} {:>22}",
                "p50 / p99 / last over the floor",
                format!(
                    "{} / {} / {}",
                    times(self.p(0.5), floor.p50),
                    times(self.p(0.99), floor.p99),
                    times(self.p(1.0), floor.last)
                )
            );
        }
        if self.server_errors > 0 {
            println!(
                "  note: the server logged {} error line(s) during the run",
                self.server_errors
            );
        }
    }
}

/// Runs the benchmark; `Ok(false)` when a backend failed (or, with `--check`, missed a goal).
pub fn run(args: RealtimeArgs) -> Result<bool> {
    // Every stream is a socket in this process and one in the server, which inherits the limit.
    let needed = u64::from(args.subscribers) + SPARE_FILES;
    let limit = rlimit::increase_nofile_limit(needed)
        .map_err(|e| format!("cannot raise the open-file limit: {e}"))?;
    if limit < needed {
        return Err(format!(
            "{} subscribers need {needed} open files, but the hard limit allows {limit} (raise \
             it, e.g. in /etc/security/limits.conf, or use --subscribers)",
            args.subscribers
        ));
    }
    let binary = args.server.binary()?;
    let floor = if args.no_floor {
        None
    } else {
        eprintln!("\n== Floor: a bare server ==");
        let report = bench_floor(&args)?;
        report.print_floor();
        Some(report.floor())
    };
    run_backends(args.backend, args.check, "every goal", |backend| {
        let mut report = bench_backend(backend, &args, &binary)?;
        if let Some(report) = &mut report {
            report.floor = floor;
        }
        Ok(report)
    })
}

/// Measures the bare server ([`crate::bare`]) with the same client, streams and broadcast.
fn bench_floor(args: &RealtimeArgs) -> Result<Report> {
    let dir = TempDir::new("tidings-realtime-floor")?;
    let me = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let mut command = Command::new(me);
    command.args(["bare-sse", "--listen", &addr.to_string()]);
    let mut server = Server::launch(
        command,
        addr,
        &dir.join("bare.log"),
        Duration::from_secs(30),
    )?;
    // The bare server takes any cookie.
    let tokens = (0..args.subscribers).map(|i| format!("floor{i}")).collect();
    let report = measure(&server, None, tokens, args, None);
    server.stop();
    report
}

/// What the streams share with the task driving them.
struct Shared {
    /// Streams that received `event: connected`.
    connected: AtomicUsize,
    /// Streams that received a data event.
    received: AtomicUsize,
    /// When each stream received its first data event.
    arrivals: Vec<OnceLock<Instant>>,
    /// Why streams failed or ended.
    failures: Mutex<Vec<String>>,
}

impl Shared {
    fn failed(&self) -> usize {
        self.failures.lock().map(|f| f.len()).unwrap_or(0)
    }

    fn first_failures(&self) -> String {
        let failures = self.failures.lock().map(|f| f.clone()).unwrap_or_default();
        let shown: Vec<&str> = failures.iter().take(3).map(String::as_str).collect();
        format!("{} stream(s) failed: {}", failures.len(), shown.join("; "))
    }
}

/// Opens one stream and reads it until the runtime ends: counts `connected` (then frees its
/// place among the streams being opened), timestamps the first data event, fails on errors.
async fn subscribe(
    index: usize,
    server: SocketAddr,
    source: Option<IpAddr>,
    cookie: String,
    opening: Arc<Semaphore>,
    shared: Arc<Shared>,
) -> Result<()> {
    let mut permit = Some(
        opening
            .acquire_owned()
            .await
            .map_err(|e| format!("stream {index}: {e}"))?,
    );
    let label = format!("stream {index}");
    sse::read(
        &label,
        server,
        source,
        PATH,
        &cookie,
        |kind, frame, arrived| {
            match kind {
                "connected" => {
                    shared.connected.fetch_add(1, Ordering::Relaxed);
                    permit = None;
                }
                "message" => {
                    if shared.arrivals[index].set(arrived).is_ok() {
                        shared.received.fetch_add(1, Ordering::Relaxed);
                    }
                }
                "ping" => {}
                other => {
                    return Err(format!(
                        "{label}: unexpected event {other}: {}",
                        frame.trim()
                    ));
                }
            }
            Ok(sse::Next::Continue)
        },
    )
    .await
}

/// Loads, serves and measures one backend; `None` when it was skipped.
fn bench_backend(backend: Backend, args: &RealtimeArgs, binary: &Path) -> Result<Option<Report>> {
    let subscribers = args.subscribers as usize;
    let dir = TempDir::new("tidings-realtime")?;
    let Some(database) = scratch_database(backend, &dir, &args.server.postgres_url)? else {
        return Ok(None);
    };
    let database_url = &database.url;

    // Load.
    eprintln!(
        "Loading {} users with a session each…",
        thousands(subscribers as f64)
    );
    let tokens_file = dir.join("tokens.txt");
    let summary = run_demo(
        binary,
        database_url,
        &[
            "--users".to_owned(),
            args.subscribers.to_string(),
            "--per-user".to_owned(),
            "0".to_owned(),
            "--sessions-out".to_owned(),
            tokens_file.display().to_string(),
        ],
    )?;
    let tokens = read_tokens(&tokens_file)?;
    if tokens.len() != subscribers {
        return Err(format!(
            "tidings demo wrote {} session tokens for {subscribers} users: {summary}",
            tokens.len()
        ));
    }
    let key = create_key(binary, database_url, "bench")?;

    // Serve, with room for every stream.
    let mut env = Vec::new();
    if subscribers > 50_000 {
        env.push(("TIDINGS_MAX_SUBSCRIPTIONS", subscribers.to_string()));
    }
    let mut server = start_server(binary, database_url, &dir, &env)?;

    // The client: one thread, so it takes at most one of the machine's cores.
    let mut report = measure(&server, Some(&key), tokens, args, Some(backend))?;
    server.stop();
    report.server_errors = server.error_lines();
    if report.server_errors > 0 {
        eprintln!("The server logged errors:\n{}", tail(&server.log, 10));
    }
    Ok(Some(report))
}

/// Runs [`drive`] on a load client of one thread, so it takes at most one of the machine's
/// cores.
fn measure(
    server: &Server,
    key: Option<&str>,
    tokens: Vec<String>,
    args: &RealtimeArgs,
    backend: Option<Backend>,
) -> Result<Report> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the load client: {e}"))?;
    let measured = runtime.block_on(drive(server, key, tokens, args, backend));
    // Ends every stream (the tasks are dropped, their connections closed).
    runtime.shutdown_timeout(Duration::from_secs(5));
    measured
}

/// Opens the streams, measures memory, sends the notification (or, to the bare server, its
/// broadcast) and collects the arrivals.
async fn drive(
    server: &Server,
    key: Option<&str>,
    tokens: Vec<String>,
    args: &RealtimeArgs,
    backend: Option<Backend>,
) -> Result<Report> {
    let pid = server.child.id();
    let subscribers = tokens.len();
    let addr = server.addr;
    let spawn_all = |shared: &Arc<Shared>, tokens: Vec<String>| {
        let opening = Arc::new(Semaphore::new(args.open_concurrency as usize));
        tokens
            .into_iter()
            .enumerate()
            .map(|(index, token)| {
                let source = (args.source_addresses > 1).then(|| {
                    IpAddr::V4(Ipv4Addr::new(
                        127,
                        0,
                        0,
                        1 + (index % usize::from(args.source_addresses)) as u8,
                    ))
                });
                let shared = shared.clone();
                let opening = opening.clone();
                tokio::spawn(async move {
                    let cookie = format!("tidings_session={token}");
                    if let Err(e) =
                        subscribe(index, addr, source, cookie, opening, shared.clone()).await
                        && let Ok(mut failures) = shared.failures.lock()
                    {
                        failures.push(e);
                    }
                })
            })
            .collect::<Vec<_>>()
    };
    let new_shared = |n: usize| {
        Arc::new(Shared {
            connected: AtomicUsize::new(0),
            received: AtomicUsize::new(0),
            arrivals: (0..n).map(|_| OnceLock::new()).collect(),
            failures: Mutex::new(Vec::new()),
        })
    };

    // A first stream, opened and closed, so the baseline includes what any first
    // subscription warms up (connections, statement caches).
    let probe = new_shared(1);
    let tasks = spawn_all(&probe, vec![tokens[0].clone()]);
    wait_for(
        &probe,
        |s| s.connected.load(Ordering::Relaxed) == 1,
        Duration::from_secs(30),
    )
    .await
    .map_err(|e| format!("the first stream did not connect: {e}"))?;
    tasks.iter().for_each(|t| t.abort());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = rss_bytes(pid)?;

    eprintln!(
        "Opening {} streams ({} at a time)…",
        thousands(subscribers as f64),
        args.open_concurrency
    );
    let shared = new_shared(subscribers);
    let started = Instant::now();
    let tasks = spawn_all(&shared, tokens);
    let mut last_report = Instant::now();
    wait_for(
        &shared,
        |s| {
            if last_report.elapsed() > Duration::from_secs(5) {
                eprintln!(
                    "  {} connected ({:.0} s)",
                    thousands(s.connected.load(Ordering::Relaxed) as f64),
                    started.elapsed().as_secs_f64()
                );
                last_report = Instant::now();
            }
            s.connected.load(Ordering::Relaxed) == subscribers
        },
        OPEN_TIMEOUT,
    )
    .await?;
    let open_seconds = started.elapsed().as_secs_f64();
    eprintln!("All {subscribers} streams connected in {open_seconds:.1} s");
    // Let the server settle (connections being set up, pages touched) before reading its RSS.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = rss_bytes(pid)?;
    if shared.failed() > 0 {
        return Err(shared.first_failures());
    }

    eprintln!("Sending notify {{allUsers: true}}…");
    let body = json!({"json": {
        "key": "general",
        "recipients": {"allUsers": true},
        "data": {"title": "Release 2.0", "message": "Tidings 2.0 is out: see what is new."},
    }})
    .to_string();
    let key = key.map(str::to_owned);
    let path = match backend {
        Some(_) => "/api/trpc/notifications.notify",
        None => "/go",
    };
    let sent = Instant::now();
    let reply = tokio::task::spawn_blocking(move || {
        let reply = http_post_json(addr, path, key.as_deref(), &body, DELIVERY_TIMEOUT);
        (reply, sent.elapsed())
    });
    let (reply, notify_answered) = reply.await.map_err(|e| format!("notify: {e}"))?;
    let reply = reply?;
    let count = serde_json::from_str::<Value>(&reply.body)
        .ok()
        .and_then(|v| v["result"]["data"]["json"]["usersNotified"]["count"].as_u64());
    if reply.status != 200 || count != Some(subscribers as u64) {
        return Err(format!(
            "notify answered {} (expected {subscribers} users notified): {}",
            reply.status, reply.body
        ));
    }
    let delivered = wait_for(
        &shared,
        |s| s.received.load(Ordering::Relaxed) == subscribers,
        DELIVERY_TIMEOUT,
    )
    .await;
    tasks.iter().for_each(|t| t.abort());
    if let Err(e) = delivered {
        eprintln!("warning: {e}");
    }
    let mut latencies: Vec<Duration> = shared
        .arrivals
        .iter()
        .filter_map(|a| a.get().map(|at| at.saturating_duration_since(sent)))
        .collect();
    latencies.sort();
    Ok(Report {
        backend,
        subscribers,
        source_addresses: args.source_addresses,
        open_seconds,
        rss_before,
        rss_after,
        notify_answered,
        received: latencies.len(),
        latencies,
        server_errors: 0,
        floor: None,
    })
}

/// Polls until `done` holds, a stream fails, or `timeout` passes.
async fn wait_for(
    shared: &Shared,
    mut done: impl FnMut(&Shared) -> bool,
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if done(shared) {
            return Ok(());
        }
        if shared.failed() > 0 {
            return Err(shared.first_failures());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "timed out after {timeout:?}: {} connected, {} data events",
                shared.connected.load(Ordering::Relaxed),
                shared.received.load(Ordering::Relaxed)
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
