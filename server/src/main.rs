//! `provider-sync-server`: parse the flags, start, serve until Ctrl-C or
//! SIGTERM, then shut down gracefully.

use clap::Parser;
use provider_sync_server::config::Command;
use provider_sync_server::{Config, StartError, cli, shutdown};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let mut config = Config::parse();
    match config.command.take() {
        Some(Command::Catalog(tool)) => {
            let code = cli::run(tool, &mut std::io::stdout()).await;
            return std::process::ExitCode::from(code);
        }
        Some(Command::Store(tool)) => {
            let code = cli::store(tool, &mut std::io::stdout()).await;
            return std::process::ExitCode::from(code);
        }
        Some(Command::Backup { database, out }) => {
            let code = cli::backup(&database, &out, &mut std::io::stdout()).await;
            return std::process::ExitCode::from(code);
        }
        None => {}
    }
    let drain = std::time::Duration::from_millis(config.shutdown_timeout_ms);
    let server = match provider_sync_server::start(config).await {
        Ok(server) => server,
        Err(err) => {
            eprintln!("provider-sync-server: {err}");
            return match err {
                StartError::Catalog(_) => std::process::ExitCode::from(2),
                _ => std::process::ExitCode::FAILURE,
            };
        }
    };
    println!("provider-sync-server listening on {}", server.base_url());
    shutdown::os_signal().await;
    tracing::info!("shutting down");
    if tokio::time::timeout(drain, server.stop()).await.is_err() {
        tracing::warn!(
            timeout_ms = drain.as_millis() as u64,
            "requests still in flight at the shutdown timeout; exiting anyway"
        );
    }
    std::process::ExitCode::SUCCESS
}
