use clap::Parser;
use tracing_subscriber::EnvFilter;

use mediahost::config::{Cli, Command, Role};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let role = match cli.command {
        Command::Serve => Role::Serve,
        Command::Api => Role::Api,
        Command::Worker => Role::Worker,
        Command::Preset(args) => return mediahost::cli::run(args, &cli.options).await,
    };
    match mediahost::server::run(role, cli.options).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mediahost: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
