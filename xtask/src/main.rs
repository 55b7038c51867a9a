//! Project automation: `cargo xtask <task>`.
//!
//! - `cargo xtask bench` lists the benchmarks;
//! - `cargo xtask bench inbox` measures the inbox reads under HTTP load (see [`inbox`]).

mod inbox;
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
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Inbox reads (unreadCount, list {limit: 20}) under wrk at 64 connections against
    /// /healthz as the ceiling, on SQLite and PostgreSQL, over 1,000,000 notifications.
    Inbox(inbox::InboxArgs),
}

/// The benchmarks, for `cargo xtask bench` without a name.
const BENCHES: &[(&str, &str)] = &[(
    "inbox",
    "load 1,000,000 notifications over 10,000 users, then measure notifications.unreadCount and \
     notifications.list {limit: 20} with wrk at 64 connections beside /healthz (the ceiling), on \
     SQLite and PostgreSQL. Goal: each read >= 40% of the ceiling's requests/s, p99 < 10 ms.",
)];

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
