use std::process::ExitCode;

use clap::Parser;
use tidings_gateway::cli::{Cli, Command, run};
use tidings_gateway::{Config, start};
use tracing_subscriber::EnvFilter;

fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("TIDINGS_LOG_FORMAT").is_ok_and(|f| f == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
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
