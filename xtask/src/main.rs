//! Project automation: `cargo xtask <task>`.
//!
//! - `cargo xtask bench` lists the benchmarks;
//! - `cargo xtask bench inbox` measures the inbox reads under HTTP load (see [`inbox`]);
//! - `cargo xtask bench fanout` measures one notify call reaching a whole instance (see
//!   [`fanout`]);
//! - `cargo xtask bench realtime` measures many idle live subscriptions and one broadcast to
//!   them (see [`realtime`]);
//! - `cargo xtask e2e` drives the web inbox in headless Chromium (see [`e2e`]).
//! - `cargo xtask soak` runs a bounded mixed load and audits that nothing was lost or
//!   duplicated and that memory came back (see [`soak`]).
//! - `cargo xtask bench delivery` measures email throughput and notify-to-inbox latency against
//!   a local SMTP server (see [`delivery`]).

mod bare;
mod delivery;
mod e2e;
mod fanout;
mod first_reads;
mod inbox;
mod realtime;
mod smtp;
mod soak;
mod sse;
mod util;
mod wrk;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "Tidings project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a benchmark; without a name, list the benchmarks.
    Bench {
        #[command(subcommand)]
        bench: Option<Bench>,
    },
    /// The web inbox in a real browser: headless Chromium (Debian's) driven by playwright-core
    /// through sign-in, live badge and panel, banner, preferences and admin; screenshots in
    /// target/e2e/.
    E2e(e2e::E2eArgs),
    /// A bounded mixed load (notify, inbox reads and marks, live streams, email to a local SMTP
    /// server), then an audit: nothing lost or duplicated, memory back to its baseline.
    Soak(soak::SoakArgs),
    /// The bare event-stream server `bench realtime` measures as its floor (started by it).
    #[command(hide = true)]
    BareSse(bare::BareArgs),
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Inbox reads (unreadCount, list {limit: 20}) under wrk at 64 connections against
    /// /healthz as the ceiling, on SQLite and PostgreSQL, over 1,000,000 notifications.
    Inbox(inbox::InboxArgs),
    /// notifications.notify {allUsers: true} and two groups AND minus 1,000 exclusions, over
    /// 100,000 users on SQLite and 1,000,000 on PostgreSQL: time and server memory growth.
    Fanout(fanout::FanoutArgs),
    /// 10,000 concurrent notifications.onNew SSE streams on one instance: memory per idle
    /// subscriber, then notify {allUsers: true} and each stream's event latency.
    Realtime(realtime::RealtimeArgs),
    /// 10,000 queued email deliveries drained to a local SMTP server (aiosmtpd): emails/s; then
    /// single notifies timed from the call to the email's arrival.
    Delivery(delivery::DeliveryArgs),
}

/// The benchmarks, for `cargo xtask bench` without a name.
const BENCHES: &[(&str, &str)] = &[
    (
        "inbox",
        "load 1,000,000 notifications over 10,000 users, then measure notifications.unreadCount \
         and notifications.list {limit: 20} with wrk at 64 connections beside /healthz (the \
         ceiling), on SQLite and PostgreSQL. Goal: each read >= 40% of the ceiling's \
         requests/s, p99 < 10 ms.",
    ),
    (
        "fanout",
        "time one notifications.notify call over HTTP, {allUsers: true} and two ~60% groups AND \
         minus 1,000 excluded users, with 100,000 users on SQLite and 1,000,000 on PostgreSQL, \
         checking usersNotified and sampling the server's RSS. Goal: 100k on SQLite <= 1 s, \
         1M on PostgreSQL <= 8 s, RSS growth <= 100 MB.",
    ),
    (
        "realtime",
        "open 10,000 notifications.onNew SSE streams (one user and session each) on one \
         instance, then send notify {allUsers: true} and time each stream's event (SQLite by \
         default, --backend postgres too), beside the same measure against a bare server that \
         only writes bytes (the floor). Goal: < 16 KiB of server memory per idle subscriber, \
         per-event latency p99 < 100 ms.",
    ),
    (
        "delivery",
        "queue 10,000 email deliveries with the worker off, then drain them to a local SMTP \
         server (aiosmtpd) and time single notifies to the email's arrival (SQLite by default, \
         --backend postgres too). Goal: >= 500 emails/s with no duplicates; latency p50/p99 \
         reported.",
    ),
];

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench { bench: None } => {
            println!("Available benchmarks (run one with `cargo xtask bench <name> --help`):");
            for (name, about) in BENCHES {
                println!("  {name:<8} {about}");
            }
            Ok(true)
        }
        Command::Bench {
            bench: Some(Bench::Inbox(args)),
        } => inbox::run(args),
        Command::Bench {
            bench: Some(Bench::Fanout(args)),
        } => fanout::run(args),
        Command::Bench {
            bench: Some(Bench::Realtime(args)),
        } => realtime::run(args),
        Command::E2e(args) => e2e::run(args),
        Command::Soak(args) => soak::run(args),
        Command::BareSse(args) => bare::run(args),
        Command::Bench {
            bench: Some(Bench::Delivery(args)),
        } => delivery::run(args),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}
