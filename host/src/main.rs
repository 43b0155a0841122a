use clap::Parser;

use mediahost::config::{Cli, Command, LogFormat, Role};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    mediahost::logging::init(cli.options.log_format);
    let role = match cli.command {
        Command::Serve => Role::Serve,
        Command::Api => Role::Api,
        Command::Worker => Role::Worker,
        Command::Preset(args) => return mediahost::cli::preset::run(args, &cli.options).await,
        Command::Job(args) => return mediahost::cli::job::run(args, &cli.options).await,
        Command::Upload(args) => return mediahost::cli::upload::run(args, &cli.options).await,
        Command::CompilePreset(args) => return mediahost::preset::compile::child_main(&args.out),
    };
    let log_format = cli.options.log_format;
    match mediahost::server::run(role, cli.options).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) if log_format == LogFormat::Json => {
            tracing::error!(error = format!("{e:#}"), "mediahost stopped");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("mediahost: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
