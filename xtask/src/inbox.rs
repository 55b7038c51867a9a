//! `cargo xtask bench inbox`: how fast the inbox reads are under HTTP load, next to the
//! fastest thing the server can answer.
//!
//! For each backend it loads demo data into a database of its own (`tidings demo`: users
//! `user-00001`…, N×M notifications, one session each), starts the release binary on a free
//! port, and drives three endpoints in turn with wrk, every request carrying a random user's
//! session cookie:
//!
//! - `GET /healthz`, the ceiling: the same HTTP stack, no session, no database;
//! - `GET /api/trpc/notifications.unreadCount`;
//! - `GET /api/trpc/notifications.list?input={"json":{"limit":20}}`.
//!
//! Before that load, every user's `unreadCount` and then `list` is read once on the freshly
//! started server (`first_reads`), so the measured load sees the steady state (each session,
//! count and first page cached until a change) rather than however much a short warm-up
//! happened to reach; that first pass is reported beside it, with no goal.
//!
//! The goal: each inbox read serves at least 40% of the ceiling's requests per second, with a
//! p99 latency under 10 ms. wrk and the server share the machine, as do the ceiling and the
//! reads, so the ratio is the number to compare between machines and runs.

use std::path::Path;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::Value;

use crate::first_reads;
use crate::util::{
    Backend, BenchReport, Result, Server, ServerArgs, TempDir, Which, http_get, millis,
    read_tokens, run_backends, run_demo, scratch_database, start_server, tail, thousands,
    url_encode,
};
use crate::wrk::{self, Load, Measurement};

/// Each inbox read must reach this share of the ceiling's requests per second…
const GOAL_RATIO: f64 = 0.40;
/// …with a p99 latency under this.
const GOAL_P99: Duration = Duration::from_millis(10);

#[derive(Debug, Args)]
pub struct InboxArgs {
    /// Users to load (each gets its own session).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    users: u32,
    /// Notifications per user.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    per_user: u32,
    /// Which database engines to measure.
    #[arg(long, value_enum, default_value_t = Which::Both)]
    backend: Which,
    /// Seconds of measured load per endpoint.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    duration: u64,
    /// Open HTTP connections (wrk -c).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    connections: u32,
    /// wrk threads (wrk -t).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    threads: u32,
    /// Seconds of unrecorded load on each endpoint before the measurements (0: none).
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    #[command(flatten)]
    server: ServerArgs,
    /// Also fail (exit status 1) when a goal is missed, not only on errors.
    #[arg(long)]
    check: bool,
}

/// One endpoint under load.
struct Endpoint {
    label: &'static str,
    path: String,
    /// The ceiling is measured for comparison; the goals apply to the others.
    ceiling: bool,
}

fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint {
            label: "GET /healthz (ceiling)",
            path: "/healthz".to_owned(),
            ceiling: true,
        },
        Endpoint {
            label: "notifications.unreadCount",
            path: "/api/trpc/notifications.unreadCount".to_owned(),
            ceiling: false,
        },
        Endpoint {
            label: "notifications.list {limit: 20}",
            path: format!(
                "/api/trpc/notifications.list?input={}",
                url_encode(r#"{"json":{"limit":20}}"#)
            ),
            ceiling: false,
        },
    ]
}

/// What one backend measured.
struct Report {
    backend: Backend,
    users: u32,
    notifications: u64,
    load_seconds: f64,
    load: Load,
    rows: Vec<(&'static str, bool, Measurement)>,
    /// Each read's first pass over every user, caches empty (no goal).
    first_reads: Vec<(&'static str, Measurement)>,
    server_errors: usize,
}

impl Report {
    fn ceiling(&self) -> f64 {
        self.rows
            .iter()
            .find(|(_, ceiling, _)| *ceiling)
            .map(|(_, _, m)| m.requests_per_second)
            .unwrap_or(f64::NAN)
    }

    /// Each read's verdict: `None` when both goals are met, else what was missed.
    fn misses(&self, m: &Measurement) -> Option<String> {
        let ratio = m.requests_per_second / self.ceiling();
        let mut missed = Vec::new();
        if ratio.is_nan() || ratio < GOAL_RATIO {
            missed.push(format!(
                "{:.0}% < {:.0}%",
                ratio * 100.0,
                GOAL_RATIO * 100.0
            ));
        }
        if m.p99 >= GOAL_P99 {
            missed.push(format!("p99 >= {}", millis(GOAL_P99)));
        }
        (!missed.is_empty()).then(|| missed.join(", "))
    }
}

impl BenchReport for Report {
    fn all_goals_met(&self) -> bool {
        self.rows
            .iter()
            .filter(|(_, ceiling, _)| !ceiling)
            .all(|(_, _, m)| self.misses(m).is_none())
    }

    fn print(&self) {
        println!();
        println!(
            "{}: {} users x {} = {} notifications (loaded in {:.1} s); wrk {} threads, {} \
             connections, {} s per endpoint",
            self.backend.title(),
            thousands(f64::from(self.users)),
            thousands(self.notifications as f64 / f64::from(self.users)),
            thousands(self.notifications as f64),
            self.load_seconds,
            self.load.threads,
            self.load.connections,
            self.load.duration.as_secs(),
        );
        println!(
            "  {:<32} {:>11} {:>9} {:>9} {:>11}   goal (>= {:.0}% of ceiling, p99 < {})",
            "endpoint",
            "requests/s",
            "p50",
            "p99",
            "vs ceiling",
            GOAL_RATIO * 100.0,
            millis(GOAL_P99),
        );
        let ceiling = self.ceiling();
        for (label, is_ceiling, m) in &self.rows {
            let verdict = if *is_ceiling {
                "-".to_owned()
            } else {
                match self.misses(m) {
                    None => "met".to_owned(),
                    Some(missed) => format!("MISSED ({missed})"),
                }
            };
            println!(
                "  {:<32} {:>11} {:>9} {:>9} {:>10.1}%   {}",
                label,
                thousands(m.requests_per_second),
                millis(m.p50),
                millis(m.p99),
                m.requests_per_second / ceiling * 100.0,
                verdict,
            );
        }
        println!(
            "  first read of every user, caches empty (each user once; {} connections; \
             unreadCount's pass also looks each session up):",
            self.load.connections
        );
        for (label, m) in &self.first_reads {
            println!(
                "  {:<32} {:>11} {:>9} {:>9} {:>10.1}%",
                label,
                thousands(m.requests_per_second),
                millis(m.p50),
                millis(m.p99),
                m.requests_per_second / ceiling * 100.0,
            );
        }
        for (label, _, m) in &self.rows {
            if m.socket_errors > 0 {
                println!(
                    "  note: {label}: wrk socket errors: {}",
                    m.socket_errors_text.as_deref().unwrap_or("?")
                );
            }
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
pub fn run(args: InboxArgs) -> Result<bool> {
    if args.connections < args.threads {
        return Err(format!(
            "--connections ({}) must be at least --threads ({})",
            args.connections, args.threads
        ));
    }
    let binary = args.server.binary()?;
    wrk::ensure_installed()?;

    let load = Load {
        connections: args.connections,
        threads: args.threads,
        duration: Duration::from_secs(args.duration),
    };
    run_backends(args.backend, args.check, "every inbox read", |backend| {
        bench_backend(backend, &args, &binary, load)
    })
}

/// Loads, serves and measures one backend; `None` when it was skipped.
fn bench_backend(
    backend: Backend,
    args: &InboxArgs,
    binary: &Path,
    load: Load,
) -> Result<Option<Report>> {
    let dir = TempDir::new("tidings-bench")?;
    let Some(database) = scratch_database(backend, &dir, &args.server.postgres_url)? else {
        return Ok(None);
    };
    let database_url = &database.url;

    // Load.
    let tokens = dir.join("tokens.txt");
    let total = u64::from(args.users) * u64::from(args.per_user);
    eprintln!(
        "Loading {} users x {} notifications ({} in all)…",
        thousands(f64::from(args.users)),
        thousands(f64::from(args.per_user)),
        thousands(total as f64)
    );
    let started = Instant::now();
    let summary = run_demo(
        binary,
        database_url,
        &[
            "--users".to_owned(),
            args.users.to_string(),
            "--per-user".to_owned(),
            args.per_user.to_string(),
            "--sessions-out".to_owned(),
            tokens.display().to_string(),
        ],
    )?;
    let load_seconds = started.elapsed().as_secs_f64();
    let notifications = summary["notifications"].as_u64().unwrap_or_default();
    if notifications != total {
        return Err(format!(
            "tidings demo loaded {notifications} notifications, expected {total}: {summary}"
        ));
    }
    eprintln!("Loaded in {load_seconds:.1} s");

    // Serve.
    let mut server = start_server(binary, database_url, &dir, &[])?;

    let endpoints = endpoints();
    let users = std::sync::Arc::new(read_tokens(&tokens)?);
    let first_user = users
        .first()
        .ok_or("tidings demo wrote no session tokens")?;
    sanity_check(&server, &endpoints, first_user, args.per_user)?;

    // Every user's reads once, caches empty, before the load that measures the steady state.
    let mut first_reads = Vec::new();
    for endpoint in endpoints.iter().filter(|e| !e.ceiling) {
        eprintln!(
            "First read of every user's {} ({} connections)…",
            endpoint.label, args.connections
        );
        let m = first_reads::measure(server.addr, &endpoint.path, users.clone(), args.connections)?;
        eprintln!("  {}", m.summary());
        first_reads.push((endpoint.label, m));
    }

    let script = dir.join("cookies.lua");
    std::fs::write(&script, wrk::cookie_script(&tokens))
        .map_err(|e| format!("cannot write {}: {e}", script.display()))?;
    let url = |e: &Endpoint| format!("http://{}{}", server.addr, e.path);

    if args.warmup > 0 {
        eprintln!("Warming up ({} s per endpoint)…", args.warmup);
        let warm = Load {
            duration: Duration::from_secs(args.warmup),
            ..load
        };
        for endpoint in &endpoints {
            let m = wrk::run(&url(endpoint), &script, warm)?;
            check_replies(endpoint, &m)?;
        }
    }
    let mut rows = Vec::new();
    for endpoint in &endpoints {
        eprintln!(
            "Measuring {} for {} s…",
            endpoint.label,
            load.duration.as_secs()
        );
        let m = wrk::run(&url(endpoint), &script, load)?;
        check_replies(endpoint, &m)?;
        eprintln!("  {}", m.summary());
        rows.push((endpoint.label, endpoint.ceiling, m));
    }
    server.stop();
    let server_errors = server.error_lines();
    if server_errors > 0 {
        eprintln!("The server logged errors:\n{}", tail(&server.log, 10));
    }
    Ok(Some(Report {
        backend,
        users: args.users,
        notifications,
        load_seconds,
        load,
        rows,
        first_reads,
        server_errors,
    }))
}

/// Before any load: the first user's reads answer 200 with what the benchmark expects, and
/// without a cookie they answer 401 (so the load really goes through the session lookup).
fn sanity_check(server: &Server, endpoints: &[Endpoint], token: &str, per_user: u32) -> Result<()> {
    let cookie = format!("tidings_session={token}");
    for endpoint in endpoints.iter().filter(|e| !e.ceiling) {
        let reply = http_get(server.addr, &endpoint.path, Some(&cookie))?;
        if reply.status != 200 {
            return Err(format!(
                "{} answered {} for a demo user: {}",
                endpoint.path, reply.status, reply.body
            ));
        }
        let body: Value = serde_json::from_str(&reply.body)
            .map_err(|e| format!("{} answered {:?}: {e}", endpoint.path, reply.body))?;
        let json = &body["result"]["data"]["json"];
        let ok = if let Some(list) = json["notifications"].as_array() {
            list.len() == per_user.min(20) as usize
        } else {
            json["count"].is_u64()
        };
        if !ok {
            return Err(format!(
                "{} answered an unexpected body: {}",
                endpoint.path, reply.body
            ));
        }
        let anonymous = http_get(server.addr, &endpoint.path, None)?;
        if anonymous.status != 401 {
            return Err(format!(
                "{} answered {} without a session, expected 401",
                endpoint.path, anonymous.status
            ));
        }
    }
    Ok(())
}

/// Fails loudly when wrk saw replies other than 2xx/3xx, or nothing at all.
fn check_replies(endpoint: &Endpoint, m: &Measurement) -> Result<()> {
    if m.non_2xx > 0 {
        return Err(format!(
            "{}: {} of {} replies were not 2xx/3xx",
            endpoint.label, m.non_2xx, m.requests
        ));
    }
    if m.requests == 0 {
        return Err(format!("{}: wrk completed no request", endpoint.label));
    }
    Ok(())
}
