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
//! The goal: each inbox read serves at least 40% of the ceiling's requests per second, with a
//! p99 latency under 10 ms. wrk and the server share the machine, as do the ceiling and the
//! reads, so the ratio is the number to compare between machines and runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use serde_json::Value;

use crate::util::{
    Result, Server, TempDir, free_port, http_get, millis, on_path, run_captured, run_inherited,
    tail, thousands, unique_suffix, url_encode, workspace_root,
};
use crate::wrk::{self, Load, Measurement};

/// Each inbox read must reach this share of the ceiling's requests per second…
const GOAL_RATIO: f64 = 0.40;
/// …with a p99 latency under this.
const GOAL_P99: Duration = Duration::from_millis(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Which {
    Sqlite,
    Postgres,
    Both,
}

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
    /// The PostgreSQL server, as a URL to a database to connect to for CREATE/DROP DATABASE;
    /// the run creates a database of its own there and drops it afterwards.
    #[arg(
        long,
        env = "TIDINGS_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres_url: String,
    /// Use target/release/tidings as it is instead of building it first.
    #[arg(long)]
    no_build: bool,
    /// Also fail (exit status 1) when a goal is missed, not only on errors.
    #[arg(long)]
    check: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn title(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
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
    let root = workspace_root();
    if !args.no_build {
        eprintln!("Building the release binary…");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        run_inherited(
            Command::new(cargo)
                .args(["build", "--release", "--quiet", "-p", "tidings-gateway"])
                .current_dir(&root),
        )?;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_relative() {
                root.join(dir)
            } else {
                dir
            }
        })
        .unwrap_or_else(|| root.join("target"));
    let binary = target.join("release").join("tidings");
    if !binary.is_file() {
        return Err(format!(
            "{} does not exist; run without --no-build",
            binary.display()
        ));
    }
    wrk::ensure_installed()?;

    let load = Load {
        connections: args.connections,
        threads: args.threads,
        duration: Duration::from_secs(args.duration),
    };
    let backends: &[Backend] = match args.backend {
        Which::Sqlite => &[Backend::Sqlite],
        Which::Postgres => &[Backend::Postgres],
        Which::Both => &[Backend::Sqlite, Backend::Postgres],
    };
    let mut reports = Vec::new();
    let mut failed = false;
    for &backend in backends {
        eprintln!("\n== {} ==", backend.title());
        match bench_backend(backend, &args, &binary, load) {
            Ok(Some(report)) => {
                report.print();
                reports.push(report);
            }
            Ok(None) => {}
            Err(e) => {
                eprintln!("{}: FAILED: {e}", backend.title());
                failed = true;
            }
        }
    }
    if reports.len() > 1 {
        println!("\nSummary");
        for report in &reports {
            report.print();
        }
    }
    let goals_met = reports.iter().all(Report::all_goals_met);
    println!();
    if failed {
        println!("Result: a backend FAILED (see above)");
    } else if reports.is_empty() {
        println!("Result: nothing was measured");
    } else if goals_met {
        println!("Result: every inbox read met its goals");
    } else {
        println!("Result: some goals were MISSED (see the tables)");
    }
    Ok(!failed && !reports.is_empty() && (goals_met || !args.check))
}

/// A PostgreSQL database of the run's own, dropped when this is dropped.
struct PgDatabase {
    admin_url: String,
    name: String,
}

impl PgDatabase {
    fn url(&self) -> String {
        with_database(&self.admin_url, &self.name)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        if let Err(e) = psql(&self.admin_url, &sql) {
            eprintln!("warning: could not drop database {}: {e}", self.name);
        }
    }
}

fn psql(url: &str, sql: &str) -> Result<String> {
    run_captured(
        Command::new("psql")
            .arg(url)
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-tA", "-c", sql])
            .env("PGCONNECT_TIMEOUT", "5"),
    )
}

/// Replaces the database name in a PostgreSQL URL.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Loads, serves and measures one backend; `None` when it was skipped.
fn bench_backend(
    backend: Backend,
    args: &InboxArgs,
    binary: &Path,
    load: Load,
) -> Result<Option<Report>> {
    let dir = TempDir::new("tidings-bench")?;
    let mut _pg = None;
    let database_url = match backend {
        Backend::Sqlite => format!("sqlite://{}?mode=rwc", dir.join("tidings.db").display()),
        Backend::Postgres => {
            if !on_path("psql") {
                println!("PostgreSQL skipped: psql is not installed");
                return Ok(None);
            }
            if let Err(e) = psql(&args.postgres_url, "SELECT 1") {
                println!(
                    "PostgreSQL skipped: the server at {} does not answer: {e}",
                    args.postgres_url
                );
                return Ok(None);
            }
            let name = format!("tidings_bench_{}", unique_suffix());
            psql(&args.postgres_url, &format!("CREATE DATABASE \"{name}\""))?;
            let db = PgDatabase {
                admin_url: args.postgres_url.clone(),
                name,
            };
            let url = db.url();
            _pg = Some(db);
            url
        }
    };

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
    let summary = run_captured(
        Command::new(binary)
            .args(["demo", "--users", &args.users.to_string()])
            .args(["--per-user", &args.per_user.to_string()])
            .arg("--sessions-out")
            .arg(&tokens)
            .env("TIDINGS_DATABASE_URL", &database_url)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::inherit()),
    )?;
    let load_seconds = started.elapsed().as_secs_f64();
    let summary: Value = serde_json::from_str(summary.trim())
        .map_err(|e| format!("tidings demo printed {summary:?}: {e}"))?;
    let notifications = summary["notifications"].as_u64().unwrap_or_default();
    if notifications != total {
        return Err(format!(
            "tidings demo loaded {notifications} notifications, expected {total}: {summary}"
        ));
    }
    eprintln!("Loaded in {load_seconds:.1} s");

    // Serve.
    let port = free_port()?;
    let log = dir.join("server.log");
    let log_file =
        std::fs::File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let child = Command::new(binary)
        .arg("serve")
        .env("TIDINGS_DATABASE_URL", &database_url)
        .env("TIDINGS_LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(
            log_file
                .try_clone()
                .map_err(|e| format!("cannot share the log file: {e}"))?,
        )
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let mut server = Server {
        child,
        addr: ([127, 0, 0, 1], port).into(),
        log: log.clone(),
    };
    server.wait_ready(Duration::from_secs(60))?;

    let endpoints = endpoints();
    sanity_check(&server, &endpoints, &tokens, args.per_user)?;

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
        eprintln!(
            "  {} requests/s, p50 {}, p99 {}",
            thousands(m.requests_per_second),
            millis(m.p50),
            millis(m.p99)
        );
        rows.push((endpoint.label, endpoint.ceiling, m));
    }
    server.stop();
    let server_errors = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("ERROR"))
        .count();
    if server_errors > 0 {
        eprintln!("The server logged errors:\n{}", tail(&log, 10));
    }
    Ok(Some(Report {
        backend,
        users: args.users,
        notifications,
        load_seconds,
        load,
        rows,
        server_errors,
    }))
}

/// Before any load: the first user's reads answer 200 with what the benchmark expects, and
/// without a cookie they answer 401 (so the load really goes through the session lookup).
fn sanity_check(
    server: &Server,
    endpoints: &[Endpoint],
    tokens: &Path,
    per_user: u32,
) -> Result<()> {
    let text = std::fs::read_to_string(tokens)
        .map_err(|e| format!("cannot read {}: {e}", tokens.display()))?;
    let token = text
        .lines()
        .next()
        .filter(|t| !t.is_empty())
        .ok_or("tidings demo wrote no session tokens")?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
    }
}
