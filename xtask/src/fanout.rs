//! `cargo xtask bench fanout`: how long one `notifications.notify` call takes to reach a whole
//! instance, and how much memory the server needs for it.
//!
//! For each backend it loads users into a database of its own (`tidings demo --per-user 0
//! --groups 2`: users `user-00001`…, no notifications, two groups each holding about 60% of
//! the users by a hash of their numbers), creates a service key (`tidings keys create`),
//! starts the release binary, and calls `notifications.notify` over HTTP with that key:
//!
//! - `{allUsers: true}`: every user;
//! - `{userGroups: {operator: "AND", …both groups}, excludedUserIds: […1,000 users]}`: the
//!   users in both groups (about 36%) minus the exclusions.
//!
//! Each call is timed end to end (request sent to reply read) and its `usersNotified.count` is
//! checked against the recipients this task computes from the same membership hash as the
//! loader (`in_group` below; the loader's group sizes are checked against it too). While a call
//! runs, the server's resident memory (`VmRSS`) is sampled every 10 ms; the growth is the peak
//! less the value just before the call.
//!
//! The goals, at the default sizes: 100,000 users on SQLite in at most 1 s, 1,000,000 users on
//! PostgreSQL in at most 8 s (with other sizes the time allowed scales with the users), and at
//! most 100 MB of memory growth. The notification is of the built-in `general` type (in-app
//! only, required), a broadcast as an announcement would send it, so no preference is looked up
//! and no email or push delivery is queued.

use std::path::Path;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{Value, json};

use crate::util::{
    Backend, BenchReport, Result, RssSampler, Server, ServerArgs, TempDir, Which, create_key,
    http_post_json, megabytes, rss_bytes, run_backends, run_demo, scratch_database, start_server,
    tail, thousands,
};

/// Users per second each engine must reach: 100,000 users in 1 s on SQLite…
const SQLITE_USERS_PER_SECOND: f64 = 100_000.0;
/// …and 1,000,000 users in 8 s on PostgreSQL.
const POSTGRES_USERS_PER_SECOND: f64 = 125_000.0;
/// At most this much more resident memory in the server during a call.
const GOAL_RSS_GROWTH: u64 = 100_000_000;
/// Each demo group holds about this share of the users, in percent.
const GROUP_SHARE: u32 = 60;
/// The server's memory is sampled this often during a call.
const SAMPLE_EVERY: Duration = Duration::from_millis(10);
/// A call may take this long before the run gives up on it.
const CALL_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, Args)]
pub struct FanoutArgs {
    /// Which database engines to measure.
    #[arg(long, value_enum, default_value_t = Which::Both)]
    backend: Which,
    /// Users to load on SQLite.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    sqlite_users: u32,
    /// Users to load on PostgreSQL.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    postgres_users: u32,
    /// Users named in `excludedUserIds` in the group case (at most 10,000, the API's limit).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    excluded: u32,
    #[command(flatten)]
    server: ServerArgs,
    /// Also fail (exit status 1) when a goal is missed, not only on errors.
    #[arg(long)]
    check: bool,
}

/// Whether demo user number `user` is in demo group number `group` holding `share` percent of
/// the users: the same hash as `tidings_persistence::bulk::in_hashed_group`, which the loader
/// evaluates in SQL. Written out again here so the expected recipients do not come from the
/// code under test; the run fails when the loader's group sizes disagree with it.
fn in_group(group: u32, user: u64, share: u32) -> bool {
    const P: i64 = 2_147_483_647;
    let g = i64::from(group);
    let (a, b) = (1_000_003 + 7_919 * g, 12_345 + 104_729 * g);
    let h1 = ((user as i64 % P) * a + b) % P;
    let h = ((h1 * h1 % P) * 69_621 + h1) % P;
    h % 100 < i64::from(share)
}

/// The id of demo user number `n` among `users` (as `tidings demo` pads it).
fn demo_user_id(n: u64, users: u32) -> String {
    let width = users.to_string().len().max(5);
    format!("user-{n:0width$}")
}

/// The numbers of the `count` users to exclude, spread evenly over all of them.
fn excluded_users(users: u32, count: u32) -> Vec<u64> {
    let count = u64::from(count.min(users));
    if count == 0 {
        return Vec::new();
    }
    let step = u64::from(users) / count;
    (0..count).map(|i| 1 + i * step).collect()
}

/// Who the demo groups hold, as this task computes it.
#[derive(Debug, PartialEq, Eq)]
struct Membership {
    first: u64,
    second: u64,
    /// In both groups and not excluded: the group case's recipients.
    recipients: u64,
}

fn membership(users: u32, excluded: &[u64]) -> Membership {
    let mut m = Membership {
        first: 0,
        second: 0,
        recipients: 0,
    };
    let mut excluded = excluded.iter().copied().peekable();
    for n in 1..=u64::from(users) {
        let (a, b) = (in_group(1, n, GROUP_SHARE), in_group(2, n, GROUP_SHARE));
        m.first += u64::from(a);
        m.second += u64::from(b);
        let is_excluded = excluded.next_if_eq(&n).is_some();
        m.recipients += u64::from(a && b && !is_excluded);
    }
    m
}

/// One measured call.
struct Case {
    label: String,
    recipients: u64,
    elapsed: Duration,
    rss_before: u64,
    rss_peak: u64,
}

impl Case {
    fn growth(&self) -> u64 {
        self.rss_peak.saturating_sub(self.rss_before)
    }
}

/// What one backend measured.
struct Report {
    backend: Backend,
    users: u32,
    groups: (u64, u64),
    load_seconds: f64,
    goal: Duration,
    cases: Vec<Case>,
    server_errors: usize,
}

impl Report {
    fn misses(&self, case: &Case) -> Option<String> {
        let mut missed = Vec::new();
        if case.elapsed > self.goal {
            missed.push(format!("> {:.1} s", self.goal.as_secs_f64()));
        }
        if case.growth() > GOAL_RSS_GROWTH {
            missed.push(format!("growth > {}", megabytes(GOAL_RSS_GROWTH as f64)));
        }
        (!missed.is_empty()).then(|| missed.join(", "))
    }
}

impl BenchReport for Report {
    fn all_goals_met(&self) -> bool {
        self.cases.iter().all(|c| self.misses(c).is_none())
    }

    fn print(&self) {
        println!();
        println!(
            "{}: {} users; groups of {} and {} ({}% each by hash); loaded in {:.1} s",
            self.backend.title(),
            thousands(f64::from(self.users)),
            thousands(self.groups.0 as f64),
            thousands(self.groups.1 as f64),
            GROUP_SHARE,
            self.load_seconds,
        );
        println!(
            "  {:<36} {:>10} {:>8} {:>13} {:>10} {:>10} {:>9}   goal (<= {:.1} s, growth <= {})",
            "notify",
            "recipients",
            "seconds",
            "recipients/s",
            "RSS before",
            "RSS peak",
            "growth",
            self.goal.as_secs_f64(),
            megabytes(GOAL_RSS_GROWTH as f64),
        );
        for case in &self.cases {
            let seconds = case.elapsed.as_secs_f64();
            let verdict = match self.misses(case) {
                None => "met".to_owned(),
                Some(missed) => format!("MISSED ({missed})"),
            };
            println!(
                "  {:<36} {:>10} {:>8.2} {:>13} {:>10} {:>10} {:>9}   {}",
                case.label,
                thousands(case.recipients as f64),
                seconds,
                thousands(case.recipients as f64 / seconds),
                megabytes(case.rss_before as f64),
                megabytes(case.rss_peak as f64),
                megabytes(case.growth() as f64),
                verdict,
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
pub fn run(args: FanoutArgs) -> Result<bool> {
    let binary = args.server.binary()?;
    run_backends(args.backend, args.check, "every fan-out", |backend| {
        bench_backend(backend, &args, &binary)
    })
}

/// Loads, serves and measures one backend; `None` when it was skipped.
fn bench_backend(backend: Backend, args: &FanoutArgs, binary: &Path) -> Result<Option<Report>> {
    let (users, rate) = match backend {
        Backend::Sqlite => (args.sqlite_users, SQLITE_USERS_PER_SECOND),
        Backend::Postgres => (args.postgres_users, POSTGRES_USERS_PER_SECOND),
    };
    let goal = Duration::from_secs_f64(f64::from(users) / rate);
    let dir = TempDir::new("tidings-fanout")?;
    let Some(database) = scratch_database(backend, &dir, &args.server.postgres_url)? else {
        return Ok(None);
    };
    let database_url = &database.url;

    // Load.
    eprintln!(
        "Loading {} users and 2 groups of about {GROUP_SHARE}% of them…",
        thousands(f64::from(users))
    );
    let started = Instant::now();
    let summary = run_demo(
        binary,
        database_url,
        &[
            "--users".to_owned(),
            users.to_string(),
            "--per-user".to_owned(),
            "0".to_owned(),
            "--groups".to_owned(),
            "2".to_owned(),
            "--group-share".to_owned(),
            GROUP_SHARE.to_string(),
        ],
    )?;
    let load_seconds = started.elapsed().as_secs_f64();
    if summary["usersCreated"].as_u64() != Some(u64::from(users)) {
        return Err(format!(
            "tidings demo did not create {users} users: {summary}"
        ));
    }
    let excluded = excluded_users(users, args.excluded);
    let expected = membership(users, &excluded);
    let groups = summary["groups"].as_array().cloned().unwrap_or_default();
    let group = |i: usize| -> Result<(String, u64)> {
        let g = groups
            .get(i)
            .ok_or_else(|| format!("tidings demo created no group {}: {summary}", i + 1))?;
        Ok((
            g["id"].as_str().unwrap_or_default().to_owned(),
            g["members"].as_u64().unwrap_or_default(),
        ))
    };
    let ((first_id, first), (second_id, second)) = (group(0)?, group(1)?);
    if (first, second) != (expected.first, expected.second) {
        return Err(format!(
            "the loader's groups have {first} and {second} members, this task's hash says {} \
             and {}: the two copies of the membership hash differ",
            expected.first, expected.second
        ));
    }
    eprintln!("Loaded in {load_seconds:.1} s");

    let key = create_key(binary, database_url, "bench")?;

    // Serve.
    let mut server = start_server(binary, database_url, &dir, &[])?;
    let message = json!({
        "title": "Scheduled maintenance",
        "message": "Tidings will be read-only on Sunday from 02:00 to 03:00 UTC.",
    });
    // A first call to one user, unmeasured: connections, statement caches and the code paths
    // are warm before the measured calls, as on a server that has been up a while.
    let first_user = demo_user_id(1, users);
    let warm = json!({"userIds": [first_user]});
    call_notify(&server, &key, &warm, &message, 1, "warm-up")?;

    let mut cases = Vec::new();
    let all = json!({"allUsers": true});
    cases.push(measure(
        &server,
        &key,
        "allUsers".to_owned(),
        &all,
        &message,
        u64::from(users),
    )?);
    let excluded_ids: Vec<String> = excluded.iter().map(|&n| demo_user_id(n, users)).collect();
    let grouped = json!({
        "userGroups": {"operator": "AND", "userGroupIds": [first_id, second_id]},
        "excludedUserIds": excluded_ids,
    });
    cases.push(measure(
        &server,
        &key,
        format!(
            "2 groups AND, {} excluded",
            thousands(excluded.len() as f64)
        ),
        &grouped,
        &message,
        expected.recipients,
    )?);

    server.stop();
    let server_errors = server.error_lines();
    if server_errors > 0 {
        eprintln!("The server logged errors:\n{}", tail(&server.log, 10));
    }
    Ok(Some(Report {
        backend,
        users,
        groups: (first, second),
        load_seconds,
        goal,
        cases,
        server_errors,
    }))
}

/// Calls `notifications.notify` for `recipients` and checks it reached `expected` users.
fn call_notify(
    server: &Server,
    key: &str,
    recipients: &Value,
    data: &Value,
    expected: u64,
    label: &str,
) -> Result<()> {
    let body = json!({"json": {"key": "general", "recipients": recipients, "data": data}});
    let reply = http_post_json(
        server.addr,
        "/api/trpc/notifications.notify",
        Some(key),
        &body.to_string(),
        CALL_TIMEOUT,
    )?;
    if reply.status != 200 {
        return Err(format!(
            "{label}: notifications.notify answered {}: {}",
            reply.status, reply.body
        ));
    }
    let answer: Value = serde_json::from_str(&reply.body).map_err(|e| {
        format!(
            "{label}: notifications.notify answered {:?}: {e}",
            reply.body
        )
    })?;
    let count = answer["result"]["data"]["json"]["usersNotified"]["count"].as_u64();
    if count != Some(expected) {
        return Err(format!(
            "{label}: notifications.notify reached {count:?} users, expected {expected}: {}",
            reply.body
        ));
    }
    Ok(())
}

/// One measured call: end-to-end time and the server's memory while it ran.
fn measure(
    server: &Server,
    key: &str,
    label: String,
    recipients: &Value,
    data: &Value,
    expected: u64,
) -> Result<Case> {
    eprintln!(
        "Measuring notify {label} ({} recipients)…",
        thousands(expected as f64)
    );
    let pid = server.child.id();
    let rss_before = rss_bytes(pid)?;
    let sampler = RssSampler::start(pid, SAMPLE_EVERY);
    let started = Instant::now();
    let called = call_notify(server, key, recipients, data, expected, &label);
    let elapsed = started.elapsed();
    let rss_peak = sampler.stop().max(rss_before);
    called?;
    eprintln!(
        "  {:.2} s, RSS {} -> peak {}",
        elapsed.as_secs_f64(),
        megabytes(rss_before as f64),
        megabytes(rss_peak as f64)
    );
    Ok(Case {
        label,
        recipients: expected,
        elapsed,
        rss_before,
        rss_peak,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_intersect_at_about_a_third() {
        let excluded = excluded_users(100_000, 1_000);
        assert_eq!(excluded.len(), 1_000);
        assert_eq!(excluded[..3], [1, 101, 201]);
        let m = membership(100_000, &excluded);
        for size in [m.first, m.second] {
            assert!((59_000..61_000).contains(&size), "{m:?}");
        }
        assert!((34_500..36_500).contains(&m.recipients), "{m:?}");
        assert_eq!(excluded_users(10, 1_000).len(), 10);
        assert!(excluded_users(10, 0).is_empty());
    }

    #[test]
    fn user_ids_match_the_loader() {
        assert_eq!(demo_user_id(1, 100_000), "user-000001");
        assert_eq!(demo_user_id(7, 1_000), "user-00007");
        assert_eq!(demo_user_id(1_000_000, 1_000_000), "user-1000000");
    }
}
