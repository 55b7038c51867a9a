use std::process::ExitCode;

use clap::Parser;
use tidings_gateway::cli::{Cli, Command, run};
use tidings_gateway::{Config, start};
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("TIDINGS_LOG_FORMAT").is_ok_and(|f| f == "json");
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = if json {
        fmt.json().boxed()
    } else {
        fmt.boxed()
    };
    tracing_subscriber::registry()
        .with(
            fmt.with_filter(filter_fn(no_raw_traffic))
                .with_filter(filter),
        )
        .init();
}

/// jsonrpsee logs whole requests at DEBUG and TRACE: headers with the session cookie or the
/// service key, bodies with passwords. Whatever `RUST_LOG` asks, those lines are never written.
fn no_raw_traffic(meta: &tracing::Metadata<'_>) -> bool {
    !(meta.target().starts_with("jsonrpsee") && *meta.level() > tracing::Level::INFO)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("tidings: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let server = match start(config).await {
                Ok(server) => server,
                Err(e) => {
                    eprintln!("tidings: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match server.wait().await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("tidings: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        command => match run(command, &config).await {
            Ok(out) => {
                if !out.is_empty() {
                    println!("{out}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("tidings: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
